import { spawn, type ChildProcess } from 'node:child_process'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { cliInProcess } from './cli-in-process.ts'

export const CLI_BIN = fileURLToPath(new URL('../../cli/bin/agentmesh.js', import.meta.url))

/** A temp directory removed by `cleanup()`. */
export function tempDir (prefix = 'agentmesh-test-'): { path: string, cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, cleanup: () => { rmSync(path, { recursive: true, force: true }) } }
}

function cliEnv (extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTMESH_LOG_LEVEL: 'warn' }
  delete env.AGENTMESH_SERVER
  delete env.AGENTMESH_HOME
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

export interface RelayProcess {
  url: string
  port: number
  child: ChildProcess
  /** stderr so far */
  stderr (): string
  /** stdout lines so far (with --json: the listening line and later events) */
  stdout (): string[]
  kill (signal?: NodeJS.Signals): Promise<number | null>
}

/** Runs `agentmesh serve` as a child process and resolves once it listens. */
export async function spawnRelay (opts: { dataDir?: string, memory?: boolean, port?: number, args?: string[], env?: Record<string, string> } = {}): Promise<RelayProcess> {
  const args = [CLI_BIN, 'serve', '--json', '--port', String(opts.port ?? 0)]
  if (opts.memory === true) args.push('--memory')
  if (opts.dataDir !== undefined) args.push('--data', opts.dataDir)
  args.push(...(opts.args ?? []))
  const child = spawn(process.execPath, args, { env: cliEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  const lines = createInterface({ input: child.stdout! })
  const outLines: string[] = []
  lines.on('line', (l) => { outLines.push(l) })
  const listening = await new Promise<{ url: string, port: number }>((resolve, reject) => {
    const t = setTimeout(() => { reject(new Error(`relay did not start: ${err}`)) }, 30_000)
    lines.on('line', (l) => {
      try {
        const j = JSON.parse(l) as { event?: string, url: string, port: number }
        if (j.event === 'listening') { clearTimeout(t); resolve(j) }
      } catch {}
    })
    void exited.then((code) => { clearTimeout(t); reject(new Error(`relay exited with ${String(code)} before listening: ${err}`)) })
  })
  return {
    ...listening,
    child,
    stderr: () => err,
    stdout: () => outLines,
    async kill (signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      return await exited
    },
  }
}

export interface CliResult { code: number | null, stdout: string, stderr: string, lines: string[] }

/** Asserts a failed run: its exit code, one line on stderr with the error code, no stack trace, nothing on stdout. */
export function assertCliError (r: CliResult, code: string, exit: number, also?: RegExp): void {
  assert.equal(r.code, exit, `exit code; stdout: ${r.stdout} stderr: ${r.stderr}`)
  const errLines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(errLines.length, 1, `exactly one line on stderr, got: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  assert.match(errLines[0]!, new RegExp(`^agentmesh: error ${code}: .{10,}`))
  if (also !== undefined) assert.match(errLines[0]!, also)
  assert.equal(r.stdout, '', 'nothing on stdout')
}

export interface CliOptions {
  home?: string
  server?: string
  /** stdin */
  input?: string
  env?: Record<string, string>
  timeoutMs?: number
  /** Run the binary as a child process instead of in process (its exit, signals, start-up). */
  process?: boolean
}

/** Starts the CLI as a child process. */
export function cliProcess (args: string[], o: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [CLI_BIN, ...args], {
    env: cliEnv({ AGENTMESH_HOME: o.home, AGENTMESH_SERVER: o.server, ...o.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
}

/**
 * Runs the CLI to completion: in process (cliInProcess), or with `process: true` as a child
 * process of the binary (bounded by timeoutMs, then SIGKILL).
 */
export async function cli (args: string[], o: CliOptions = {}): Promise<CliResult> {
  if (o.process !== true) return await cliInProcess(args, o)
  const child = cliProcess(args, o)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin!.on('error', () => {})
  child.stdin!.end(o.input ?? '')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, o.timeoutMs ?? 60_000)
  const code = await new Promise<number | null>((resolve) => { child.once('close', (c) => { resolve(c) }) })
  clearTimeout(timer)
  return { code, stdout, stderr, lines: stdout.split('\n').filter(l => l !== '') }
}
