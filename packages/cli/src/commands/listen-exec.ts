/**
 * `agentmesh listen --exec '<command>'` (docs/protocol.md §26): a sleeping agent's wake path. The
 * command runs once per message through `sh -c` (the command line is the user's; message text is
 * never put into it): the message as one JSON object on its stdin (the fields of `listen --json`),
 * its id, sender, type… in AGENTMESH_MESSAGE_* variables. A message counts as processed (the cursor
 * moves past it, its `processed` receipt goes) only when its command exits 0, and only once every
 * message before it did (manual acknowledgement, in delivery order). A command that fails (non-zero,
 * killed, past --exec-timeout) runs again with backoff, at most --exec-retries more times; then
 * listen stops with AM_ERR_EXEC_FAILED and the message stays: it is handed over again at the next
 * listen. At most --exec-concurrency commands run at once (1, the default, keeps the order).
 */
import { spawn } from 'node:child_process'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Connection, Message } from '@agentmesh/client'
import type { Out } from '../output.ts'
import type { CliIo } from '../io.ts'

/** The first retry's delay; each next one doubles, up to EXEC_BACKOFF_MAX_MS. */
export const EXEC_BACKOFF_BASE_MS = 1000
export const EXEC_BACKOFF_MAX_MS = 30_000
/** After a timeout's SIGTERM, the command's process group gets this long before SIGKILL. */
const KILL_GRACE_MS = 2000
export const DEFAULT_EXEC_RETRIES = 3
export const MAX_EXEC_RETRIES = 100
export const DEFAULT_EXEC_TIMEOUT_S = 60
export const MAX_EXEC_CONCURRENCY = 64

export interface ExecOptions {
  command: string
  concurrency: number
  retries: number
  timeoutMs: number
  /** stop after this many messages were processed */
  count?: number
  signal: AbortSignal
  /** the message as `listen --json` shows it (what goes to the command's stdin) */
  json: (m: Message) => Promise<Record<string, unknown>>
}

interface Outcome { code: number | null, signal: NodeJS.Signals | null, timedOut: boolean, error?: string }

/** The variables a command gets besides listen's own environment. */
function messageEnv (m: Message, attempt: number): Record<string, string> {
  return {
    AGENTMESH_MESSAGE_ID: m.id,
    AGENTMESH_MESSAGE_FROM: m.from,
    AGENTMESH_MESSAGE_TO: m.to,
    AGENTMESH_MESSAGE_TYPE: m.type,
    AGENTMESH_MESSAGE_SEQ: String(m.seq),
    AGENTMESH_MESSAGE_ENCRYPTED: m.encrypted ? '1' : '0',
    ...(m.room === undefined ? {} : { AGENTMESH_MESSAGE_ROOM: m.room }),
    AGENTMESH_EXEC_ATTEMPT: String(attempt),
  }
}

/** Runs the command once: stdin the message, stdout and stderr to listen's stderr. */
async function runOnce (io: CliIo, o: ExecOptions, m: Message, input: string, attempt: number): Promise<Outcome> {
  return await new Promise<Outcome>((resolve) => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(io.env)) if (typeof v === 'string') env[k] = v
    const child = spawn('sh', ['-c', o.command], { env: { ...env, ...messageEnv(m, attempt) }, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    let timedOut = false
    let killTimer: ReturnType<typeof setTimeout> | undefined
    const killGroup = (sig: NodeJS.Signals): void => {
      try { if (child.pid !== undefined) process.kill(-child.pid, sig) } catch {}
    }
    const stop = (): void => {
      killGroup('SIGTERM')
      killTimer = setTimeout(() => { killGroup('SIGKILL') }, KILL_GRACE_MS)
    }
    const timer = setTimeout(() => { timedOut = true; stop() }, o.timeoutMs)
    const onAbort = (): void => { stop() }
    o.signal.addEventListener('abort', onAbort, { once: true })
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (t: string) => { io.stderr.write(t) })
    child.stderr.on('data', (t: string) => { io.stderr.write(t) })
    // a command that does not read its stdin closes it: not an error of listen's
    child.stdin.on('error', () => {})
    child.stdin.end(input)
    let spawnError: string | undefined
    child.on('error', (err) => { spawnError = (err as NodeJS.ErrnoException).code ?? err.message })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(killTimer)
      o.signal.removeEventListener('abort', onAbort)
      resolve({ code, signal, timedOut, ...(spawnError === undefined ? {} : { error: spawnError }) })
    })
  })
}

function describe (r: Outcome, timeoutMs: number): string {
  if (r.error !== undefined) return `could not start (${r.error})`
  if (r.timedOut) return `ran past --exec-timeout (${timeoutMs / 1000} s) and was killed`
  if (r.signal !== null) return `was killed by ${r.signal}`
  return `exited with code ${r.code ?? '?'}`
}

/**
 * Runs the command for each message; answers how many were processed. Throws AM_ERR_EXEC_FAILED
 * when a message's command failed every attempt (after the commands running meanwhile ended).
 */
export async function execLoop (conn: Connection, io: CliIo, out: Out, o: ExecOptions): Promise<number> {
  const it = conn.messages({ signal: o.signal, manualAck: true })
  const running = new Set<Promise<void>>()
  let failure: AgentMeshError | undefined
  let failed!: () => void
  const onFailure = new Promise<void>((resolve) => { failed = resolve })
  let started = 0
  let processed = 0

  const run = async (m: Message): Promise<void> => {
    const input = JSON.stringify(await o.json(m)) + '\n'
    const attempts = 1 + o.retries
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (o.signal.aborted) return // left unacknowledged: handed over again at the next listen
      const r = await runOnce(io, o, m, input, attempt)
      if (r.code === 0 && !r.timedOut && r.error === undefined) {
        conn.ack(m)
        processed++
        out.result({ id: m.id, from: m.from, type: m.type, status: 'processed', attempts: attempt }, `${m.id} from ${m.from}: processed (attempt ${attempt})`)
        return
      }
      if (o.signal.aborted) return
      const what = describe(r, o.timeoutMs)
      if (attempt === attempts) {
        throw new AgentMeshError(ErrorCode.ExecFailed, `the command for message ${m.id} from ${m.from} ${what}, ${attempts} time(s) (--exec-retries ${o.retries}); the message stays unacknowledged and is handed over again at the next listen`)
      }
      const delay = Math.min(EXEC_BACKOFF_MAX_MS, EXEC_BACKOFF_BASE_MS * 2 ** (attempt - 1))
      io.stderr.write(`agentmesh: the command for message ${m.id} ${what} (attempt ${attempt} of ${attempts}); again in ${delay / 1000} s\n`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, delay)
        function done (): void { clearTimeout(t); o.signal.removeEventListener('abort', done); resolve() }
        o.signal.addEventListener('abort', done, { once: true })
      })
    }
  }

  while (failure === undefined && !o.signal.aborted && (o.count === undefined || started < o.count)) {
    if (running.size >= o.concurrency) {
      await Promise.race([...running, onFailure])
      continue
    }
    const next = await Promise.race([it.next(), onFailure.then(() => undefined)])
    if (next === undefined || next.done === true) break
    const m = next.value
    started++
    const p: Promise<void> = run(m).catch((err: unknown) => {
      failure ??= AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.ExecFailed, (err as Error).message)
      failed()
    }).finally(() => { running.delete(p) })
    running.add(p)
  }
  await Promise.all([...running])
  if (failure !== undefined) throw failure
  return processed
}
