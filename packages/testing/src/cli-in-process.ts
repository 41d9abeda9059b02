/**
 * The CLI run inside the test process: `run(argv, io)` with its own stdout, stderr, stdin,
 * environment and Ctrl-C, so that a test starts no process (a CLI process costs about a second of
 * start-up). What only a real process can show (the binary's exit, signals, a kill -9) goes
 * through `cliProcess` and `cli(args, { process: true })`.
 */
import { Readable } from 'node:stream'
import { EventEmitter } from 'node:events'
// the CLI's sources, as CLI_BIN is its binary: the testing package does not depend on the CLI.
// Loaded on first use: the relay and SDK tests that import the harness do not load the CLI.
import type { CliIo } from '../../cli/src/index.ts'
import type { CliOptions, CliResult } from './processes.ts'

/** The environment a CLI process of the harness would get (cliEnv): no AGENTMESH_HOME/SERVER of the person running the tests. */
function inProcessEnv (o: CliOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, AGENTMESH_LOG_LEVEL: 'warn' }
  delete env.AGENTMESH_SERVER
  delete env.AGENTMESH_HOME
  delete env.AGENTMESH_API_KEY
  delete env.AGENTMESH_PASSPHRASE
  const extra: Record<string, string | undefined> = { AGENTMESH_HOME: o.home, AGENTMESH_SERVER: o.server, ...o.env }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

/** A CLI command running in process (a `listen` or a follower, say), until it ends or is interrupted. */
export interface RunningCli {
  /** Complete stdout lines so far, in order. */
  readonly lines: readonly string[]
  /** Complete stderr lines so far, in order. */
  readonly errLines: readonly string[]
  stdout (): string
  stderr (): string
  /** What Ctrl-C or SIGTERM does to the command. */
  interrupt (): void
  /** Resolves when the command ended: its exit code and everything it printed. */
  readonly done: Promise<CliResult>
}

function lineCollector (into: string[]): { write (chunk: string): void, text (): string } {
  let text = ''
  let partial = ''
  return {
    write (chunk) {
      text += chunk
      const parts = (partial + chunk).split('\n')
      partial = parts.pop()!
      for (const l of parts) if (l !== '') into.push(l)
    },
    text: () => text,
  }
}

/** Starts the CLI in process; `o.input` is its stdin (empty by default). */
export function startCli (args: string[], o: CliOptions = {}): RunningCli {
  const lines: string[] = []
  const errLines: string[] = []
  const out = lineCollector(lines)
  const err = lineCollector(errLines)
  const interrupts = new EventEmitter()
  /** an interrupt no handler was listening for: the next handler gets it */
  let pending = false
  const io: CliIo = {
    stdout: out,
    stderr: err,
    stdin: Readable.from(o.input === undefined || o.input === '' ? [] : [o.input]),
    env: inProcessEnv(o),
    onInterrupt (handler) {
      // an interrupt before the command listens still stops it; one that a handler took is not
      // taken again by a handler added later (a second Ctrl-C is a second interrupt)
      if (pending) {
        pending = false
        queueMicrotask(handler)
        return () => {}
      }
      interrupts.once('interrupt', handler)
      return () => { interrupts.off('interrupt', handler) }
    },
  }
  const result = (code: number | null): CliResult => ({ code, stdout: out.text(), stderr: err.text(), lines: out.text().split('\n').filter(l => l !== '') })
  const ran = import('../../cli/src/index.ts').then(async ({ run }) => await run(args, io)).then(result, (e: unknown) => {
    // run() reports every error itself; anything else is a bug of the CLI, shown as the process would
    err.write(`uncaught: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
    return result(1)
  })
  // bounded like a CLI process of the harness (SIGKILLed after timeoutMs): code null
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<CliResult>((resolve) => {
    timer = setTimeout(() => { resolve(result(null)) }, o.timeoutMs ?? 60_000)
  })
  const done = Promise.race([ran, timedOut]).finally(() => { clearTimeout(timer) })
  return {
    lines,
    errLines,
    stdout: () => out.text(),
    stderr: () => err.text(),
    interrupt () { if (!interrupts.emit('interrupt')) pending = true },
    done,
  }
}

/** Runs the CLI in process to completion: the same result as a CLI process. */
export async function cliInProcess (args: string[], o: CliOptions = {}): Promise<CliResult> {
  return await startCli(args, o).done
}
