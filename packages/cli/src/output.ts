/** How the CLI speaks: results on stdout (text or one JSON object per line), errors as one line on stderr. */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { processIo, type CliIo } from './io.ts'

export interface Out {
  json: boolean
  /** A result: `text` in text mode, `obj` as one JSON line in --json mode. */
  result (obj: Record<string, unknown>, text: string): void
  /** A remark for people (stderr, text mode only). */
  note (text: string): void
  /** Something went wrong that does not stop the command (stderr, both modes). */
  warn (w: AgentMeshError): void
}

/** Speaks through `io` (the process's streams by default). */
export function output (json: boolean, io: Pick<CliIo, 'stdout' | 'stderr'> = processIo()): Out {
  return {
    json,
    result (obj, text) { io.stdout.write((json ? JSON.stringify(obj) : text) + '\n') },
    note (text) { if (!json) io.stderr.write(text + '\n') },
    warn (w) {
      io.stderr.write((json
        ? JSON.stringify({ warning: { code: w.code, message: w.message } })
        : `agentmesh: warning ${w.code}: ${w.message}`).replaceAll('\n', ' ') + '\n')
    },
  }
}

/** Exit codes: 1 for runtime errors, 2 for usage errors. */
export const EXIT_ERROR = 1
export const EXIT_USAGE = 2

export function usage (message: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidArgument, message)
}

/** Prints an error as one line (never a stack trace) and answers the exit code. */
export function reportError (err: unknown, json: boolean, io: Pick<CliIo, 'stderr'> = processIo()): number {
  const e = AgentMeshError.is(err)
    ? err
    : new AgentMeshError(ErrorCode.Internal, `unexpected error: ${err instanceof Error ? err.message : String(err)}`)
  const line = json
    ? JSON.stringify({ error: { code: e.code, message: e.message } })
    : `agentmesh: error ${e.code}: ${e.message}`
  io.stderr.write(line.replaceAll('\n', ' ') + '\n')
  return e.code === ErrorCode.InvalidArgument || e.code === ErrorCode.InvalidConfig ? EXIT_USAGE : EXIT_ERROR
}

export function parseInteger (name: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw usage(`${name} must be a whole number, got "${value}"`)
  const n = Number(value)
  if (n < min || n > max) throw usage(`${name} must be between ${min} and ${max}, got ${n}`)
  return n
}

export function parsePositive (name: string, value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw usage(`${name} must be a positive number of seconds, got "${value}"`)
  return n
}
