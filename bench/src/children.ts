/**
 * Server processes: every target's server runs in its own child process so that its CPU time
 * is measured apart from the load generator's. Node servers (server-child.ts) report
 * process.cpuUsage() over IPC; nats-server's CPU time is read from /proc/<pid>/stat.
 *
 * Every child and temporary directory is registered here and removed on exit, on an error
 * and on SIGINT/SIGTERM.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HOST, withTimeout } from './util.ts'
import type { AgentMeshServerSpec } from './targets/agentmesh.ts'

export interface CpuSample {
  /** µs of CPU time (all threads of the server process) since it started */
  userUs: number
  systemUs: number
  /** performance.now() of the generator when the sample arrived */
  atMs: number
  /** target-specific counters (the relay's stats) */
  stats?: Record<string, number>
}

/** A Node server child's memory after a full garbage collection (bytes). */
export interface MemorySample { rss: number, heapUsed: number, external: number, arrayBuffers: number, gc: boolean }

export interface ServerHandle {
  readonly pid: number
  /** ws://… or nats://… */
  readonly url: string
  readonly port: number
  cpu (): Promise<CpuSample>
  /** Node server children only */
  memory? (): Promise<MemorySample>
  stop (): Promise<void>
  /** SIGKILL, no graceful shutdown */
  kill (): Promise<void>
}

// ---------------------------------------------------------------- cleanup registry

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()

export function tempDir (prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `agentmesh-bench-${prefix}-`))
  tempDirs.add(d)
  return d
}

export function removeTempDir (d: string): void {
  try { rmSync(d, { recursive: true, force: true }) } catch {}
  tempDirs.delete(d)
}

/** Kills every child still running and removes every temporary directory (synchronous). */
export function cleanupAll (): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.kill('SIGKILL') } catch {}
    }
  }
  children.clear()
  for (const d of [...tempDirs]) removeTempDir(d)
}

let installed = false
export function installCleanupHandlers (): void {
  if (installed) return
  installed = true
  process.on('exit', cleanupAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping servers and removing temporary files\n`)
      cleanupAll()
      process.exit(130)
    })
  }
}

function track (c: ChildProcess): void {
  children.add(c)
  c.once('exit', () => { children.delete(c) })
}

function waitExit (c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { c.kill('SIGKILL') } catch {} resolve() }, ms)
    c.once('exit', () => { clearTimeout(t); resolve() })
  })
}

// ---------------------------------------------------------------- Node server children

export type ChildSpec =
  | ({ kind: 'agentmesh' } & AgentMeshServerSpec)
  | { kind: 'bare' }
  | { kind: 'socketio' }

type FromChild =
  | { t: 'ready', port: number, url: string }
  | { t: 'cpu', id: number, user: number, system: number, stats?: Record<string, number> }
  | { t: 'mem', id: number, mem: MemorySample }
  | { t: 'error', message: string }

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url))
const BUNDLED_CHILD = fileURLToPath(new URL('../results/server-child.mjs', import.meta.url))
let bundling: Promise<string> | undefined

/**
 * The server child as users run the relay: `npm start` runs an esbuild bundle of the sources
 * (scripts/build-cli.mjs), not the TypeScript through tsx, whose transform keeps function names
 * with a defineProperty on every closure made (measurably more CPU and memory per connection and
 * per message). So the child is bundled the same way, once per run, into bench/results/ (next to
 * node_modules for the externals). BENCH_SERVER_TSX=1 runs it from the sources instead.
 */
async function serverChild (): Promise<{ file: string, tsx: boolean }> {
  if (process.env.BENCH_SERVER_TSX === '1') return { file: CHILD, tsx: true }
  bundling ??= (async () => {
    const { build } = await import('esbuild')
    await build({
      entryPoints: [CHILD],
      outfile: BUNDLED_CHILD,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // as scripts/build-cli.mjs: the native addon, the logger's worker internals, ws's optional helpers
      external: ['better-sqlite3', 'pino', 'bufferutil', 'utf-8-validate'],
      banner: { js: "import { createRequire as __amCreateRequire } from 'node:module'; const require = __amCreateRequire(import.meta.url);" },
      logLevel: 'warning',
    })
    return BUNDLED_CHILD
  })()
  return { file: await bundling, tsx: false }
}

/** The generator's Node flags without tsx's loader (`--import tsx`, `--import=tsx`). */
function withoutTsx (argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if ((a === '--import' || a === '--require' || a === '--loader') && /tsx/.test(argv[i + 1] ?? '')) { i++; continue }
    if (/^--(import|require|loader)=.*tsx/.test(a)) continue
    out.push(a)
  }
  return out
}

/**
 * Starts a server child. `profileDir` turns on --cpu-prof: profiles are written to
 * `profileDir/profileName/` when the child exits normally (one file per thread: with tsx, Node 20
 * runs the module loader hooks on a thread of their own; the main thread's is the largest).
 */
export async function startNodeServer (spec: ChildSpec, opts: { profileDir?: string, profileName?: string } = {}): Promise<ServerHandle> {
  const { file, tsx } = await serverChild()
  // --expose-gc: the connections load reads memory after a full collection; a bundled child needs no tsx
  const execArgv = [...(tsx ? process.execArgv : withoutTsx(process.execArgv)), '--expose-gc']
  // extra flags for the Node server children, e.g. BENCH_SERVER_NODE_ARGS="--trace-gc"
  const extra = process.env.BENCH_SERVER_NODE_ARGS
  if (extra !== undefined && extra.trim() !== '') execArgv.push(...extra.trim().split(/\s+/))
  if (opts.profileDir !== undefined) {
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(opts.profileDir, opts.profileName ?? 'server')}`)
  }
  const child = fork(file, [JSON.stringify(spec)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  track(child)
  let nextId = 1
  const waiting = new Map<number, (s: CpuSample) => void>()
  const waitingMem = new Map<number, (s: MemorySample) => void>()
  let failure: string | undefined
  const ready = new Promise<{ port: number, url: string }>((resolve, reject) => {
    child.on('message', (m: FromChild) => {
      if (m.t === 'ready') resolve(m)
      else if (m.t === 'error') { failure = m.message; reject(new Error(`${spec.kind} server: ${m.message}`)) }
      else if (m.t === 'mem') {
        const w = waitingMem.get(m.id)
        waitingMem.delete(m.id)
        w?.(m.mem)
      } else if (m.t === 'cpu') {
        const w = waiting.get(m.id)
        waiting.delete(m.id)
        w?.({ userUs: m.user, systemUs: m.system, atMs: performance.now(), ...(m.stats === undefined ? {} : { stats: m.stats }) })
      }
    })
    child.once('exit', (code, signal) => {
      reject(new Error(`${spec.kind} server exited before it was ready (${failure ?? `code ${code}, signal ${signal}`})`))
    })
  })
  let info: { port: number, url: string }
  try {
    info = await withTimeout(ready, 30_000, `starting the ${spec.kind} server`)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return {
    pid: child.pid!,
    url: info.url,
    port: info.port,
    async cpu () {
      // CPU time from /proc (a busy server answers IPC late); the relay's counters over IPC, when they come
      const at = performance.now()
      const cpu = procCpu(child.pid!)
      // only the relay has counters; a server swamped for seconds answers late: then without them
      if (spec.kind !== 'agentmesh') return { ...cpu, atMs: at }
      const id = nextId++
      const answer = await withTimeout(new Promise<CpuSample>((resolve, reject) => {
        if (!child.connected) { reject(new Error(`${spec.kind} server is gone`)); return }
        waiting.set(id, resolve)
        child.send({ t: 'cpu', id })
      }), 10_000, `${spec.kind} server counters`).catch(() => undefined)
      return { ...cpu, atMs: at, ...(answer?.stats === undefined ? {} : { stats: answer.stats }) }
    },
    async memory () {
      const id = nextId++
      return await withTimeout(new Promise<MemorySample>((resolve, reject) => {
        if (!child.connected) { reject(new Error(`${spec.kind} server is gone`)); return }
        waitingMem.set(id, resolve)
        child.send({ t: 'mem', id })
      }), 30_000, `${spec.kind} server memory sample`)
    },
    async kill () {
      try { child.kill('SIGKILL') } catch {}
      await waitExit(child, 5000)
    },
    async stop () {
      if (child.connected) child.send({ t: 'stop' })
      // a normal exit writes the --cpu-prof profile; give it time
      await waitExit(child, 10_000)
    },
  }
}

// ---------------------------------------------------------------- nats-server

export const NATS_SERVER = '/usr/sbin/nats-server'

const CLK_TCK = 100 // Linux USER_HZ: /proc/<pid>/stat reports CPU time in 1/100 s

function procCpu (pid: number): { userUs: number, systemUs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the ")" that closes the command name: state is field 3; utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(rest[11])
  const stime = Number(rest[12])
  return { userUs: utime * 1e6 / CLK_TCK, systemUs: stime * 1e6 / CLK_TCK }
}

/** Starts `nats-server` on its own free port: with JetStream (`-js`) and a temporary store directory when `storeDir` is given. */
export async function startNatsServer (port: number, storeDir?: string): Promise<ServerHandle> {
  const js = storeDir === undefined ? [] : ['-js', '-sd', storeDir]
  const child = spawn(NATS_SERVER, [...js, '-a', HOST, '-p', String(port), '-n', 'agentmesh-bench'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  track(child)
  let log = ''
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (chunk: string) => {
      if (log.length < 20_000) log += chunk
      if (log.includes('Server is ready')) resolve()
    })
    child.once('error', reject)
    child.once('exit', (code) => { reject(new Error(`nats-server exited with code ${code}: ${log.slice(-500)}`)) })
  })
  try {
    await withTimeout(ready, 15_000, 'starting nats-server')
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  // keep draining stderr so the pipe never fills
  child.stderr!.resume()
  const pid = child.pid!
  return {
    pid,
    url: `nats://${HOST}:${port}`,
    port,
    async cpu () {
      return { ...procCpu(pid), atMs: performance.now() }
    },
    async stop () {
      child.kill('SIGTERM')
      await waitExit(child, 5000)
    },
    async kill () {
      child.kill('SIGKILL')
      await waitExit(child, 5000)
    },
  }
}
