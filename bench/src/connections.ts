/**
 * The connections load: BENCH_CONNECTIONS (10,000) idle connections to one server, each its own
 * agent for AgentMesh (connect → challenge → auth signed with signChallenge → welcome; the relay
 * registers the agent the first time), opened BENCH_CONN_CONCURRENCY (200) at a time from the
 * generator's main thread. Figures:
 *  - authentications per second: connections ÷ the time from the first connect to the last
 *    welcome (for the bare forwarder: to the last `open`);
 *  - bytes of server memory per idle connection: (RSS after − RSS before) ÷ connections, and the
 *    same for the V8 heap and for external memory (buffers), each measured in the server child
 *    after two full garbage collections, once the connections have been idle for a second.
 * The identities are made and the server started before anything is timed. Every step is bounded
 * in time: no connection starts after BENCH_CONN_SECONDS (25 s); those open by then are measured. Each process needs a file descriptor
 * per connection: the generator reads its own limit and opens fewer (and says so) when it is low.
 */
import { readFileSync } from 'node:fs'
import type { WebSocket } from 'ws'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { startNodeServer, tempDir, removeTempDir, type MemorySample, type ServerHandle } from './children.ts'
import { authFeatures } from './fanout/room-receiver.ts'
import { authenticate } from './targets/agentmesh.ts'
import { open as openWs } from './targets/bare.ts'
import { envInt, round, sleep, withTimeout } from './util.ts'

export interface ConnectionsResult {
  label: string
  connections: number
  asked: number
  /** connections (authenticated, for AgentMesh) per second */
  auth_per_s: number
  open_s: number
  rss_bytes_per_conn: number
  heap_bytes_per_conn: number
  external_bytes_per_conn: number
  before: MemorySample
  after: MemorySample
  server_cpu_us_per_auth: number
  note?: string
  failed?: string
  wall_s: number
}

/** The soft limit of open files of this process (from /proc), or undefined. */
export function openFilesLimit (): number | undefined {
  try {
    const m = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)
    return m === null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

interface ConnTarget {
  name: string
  label: string
  start (): Promise<ServerHandle>
  /** opens connection i; resolves once it is usable (authenticated) */
  open (server: ServerHandle, i: number): Promise<WebSocket>
  cleanup? (): void
}

function agentMeshConns (memory: boolean, ids: () => Identity[]): ConnTarget {
  let dataDir: string | undefined
  const extra = authFeatures()
  return {
    name: `agentmesh_${memory ? 'memory' : 'durable'}`,
    label: `AgentMesh ${memory ? 'memory' : 'durable (SQLite)'}`,
    async start () {
      if (!memory) dataDir = tempDir('relay-conn')
      return await startNodeServer({ kind: 'agentmesh', memory, ...(dataDir === undefined ? {} : { dataDir }) })
    },
    async open (server, i) {
      return (await authenticate(server.url, ids()[i]!, () => {}, () => {}, extra, 60_000)).ws
    },
    cleanup () {
      if (dataDir !== undefined) removeTempDir(dataDir)
      dataDir = undefined
    },
  }
}

function bareConns (): ConnTarget {
  return {
    name: 'bare_ws',
    label: 'bare ws server',
    start: async () => await startNodeServer({ kind: 'bare' }),
    open: async (server, i) => await openWs(`${server.url}?id=c${i}`),
  }
}

async function runOne (t: ConnTarget, n: number, asked: number, concurrency: number, log: (s: string) => void): Promise<ConnectionsResult> {
  const t0 = performance.now()
  log(`▶ ${t.label}: ${n} idle connections`)
  const server = await t.start()
  const sockets: WebSocket[] = []
  try {
    await sleep(500)
    const before = await server.memory!()
    const cpu0 = await server.cpu()
    const start = performance.now()
    // bounded: no new connection starts after BENCH_CONN_SECONDS; those open by then are measured
    const deadline = start + envInt('BENCH_CONN_SECONDS', 25) * 1000
    let next = 0
    await withTimeout(Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n && performance.now() < deadline) sockets.push(await t.open(server, next++))
    })), envInt('BENCH_CONN_SECONDS', 25) * 1000 + 60_000, `opening ${n} connections`)
    const openS = (performance.now() - start) / 1000
    const cpu1 = await server.cpu()
    await sleep(1000) // idle
    const after = await server.memory!()
    const r: ConnectionsResult = {
      label: t.label,
      connections: sockets.length,
      asked,
      auth_per_s: Math.round(sockets.length / openS),
      open_s: round(openS, 2),
      rss_bytes_per_conn: Math.round((after.rss - before.rss) / sockets.length),
      heap_bytes_per_conn: Math.round((after.heapUsed - before.heapUsed) / sockets.length),
      external_bytes_per_conn: Math.round((after.external - before.external) / sockets.length),
      before,
      after,
      server_cpu_us_per_auth: round(((cpu1.userUs + cpu1.systemUs) - (cpu0.userUs + cpu0.systemUs)) / sockets.length, 1),
      wall_s: 0,
    }
    if (n < asked) r.note = `opened ${n}, not ${asked}: the open-files limit is too low (ulimit -n)`
    if (sockets.length < n) r.note = `${sockets.length} of ${n} opened within BENCH_CONN_SECONDS (${envInt('BENCH_CONN_SECONDS', 25)} s); figures are for those`
    log(`  ${r.connections} in ${r.open_s} s: ${r.auth_per_s} /s (${r.server_cpu_us_per_auth} µs of server CPU each); ` +
      `${r.rss_bytes_per_conn} B RSS, ${r.heap_bytes_per_conn} B heap, ${r.external_bytes_per_conn} B external per connection`)
    return r
  } finally {
    // the server first (killed: closing 10,000 connections one by one is not what is measured), then the sockets
    await server.kill()
    for (const ws of sockets) ws.terminate()
    t.cleanup?.()
    log(`  (${round((performance.now() - t0) / 1000, 1)} s)`)
  }
}

/** BENCH_CONN_TARGETS (agentmesh_durable,agentmesh_memory,bare_ws), BENCH_CONNECTIONS (10,000). */
export async function runConnections (log: (s: string) => void): Promise<Record<string, ConnectionsResult | { label: string, failed: string }>> {
  const asked = Math.round(envInt('BENCH_CONNECTIONS', 10_000))
  const limit = openFilesLimit()
  // the generator holds one descriptor per connection, plus its own files, pipes and a margin
  const n = limit === undefined ? asked : Math.max(1, Math.min(asked, limit - 500))
  if (n < asked) log(`note: the open-files limit is ${String(limit)} (ulimit -n): opening ${n} connections, not ${asked}`)
  const concurrency = Math.round(envInt('BENCH_CONN_CONCURRENCY', 200))
  const names = (process.env.BENCH_CONN_TARGETS ?? 'agentmesh_durable,agentmesh_memory,bare_ws').split(',').map(s => s.trim()).filter(s => s !== '' && s !== 'none')
  let ids: Identity[] | undefined
  const identities = (): Identity[] => { ids ??= Array.from({ length: n }, (_, i) => createIdentity(`bench-idle-${i}`)); return ids }
  if (names.some(x => x.startsWith('agentmesh_'))) identities()
  const out: Record<string, ConnectionsResult | { label: string, failed: string }> = {}
  for (const name of names) {
    const t = name === 'agentmesh_durable' ? agentMeshConns(false, identities)
      : name === 'agentmesh_memory' ? agentMeshConns(true, identities)
        : name === 'bare_ws' ? bareConns()
          : undefined
    if (t === undefined) throw new Error(`unknown connections target ${JSON.stringify(name)}; known: agentmesh_durable, agentmesh_memory, bare_ws`)
    await sleep(500)
    try {
      out[name] = await runOne(t, n, asked, concurrency, log)
    } catch (err) {
      const failed = err instanceof Error ? err.message : String(err)
      log(`  ✗ ${t.label}: ${failed}`)
      out[name] = { label: t.label, failed }
    }
  }
  return out
}

// run alone: node --import tsx bench/src/connections.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  const { installCleanupHandlers, cleanupAll } = await import('./children.ts')
  installCleanupHandlers()
  try {
    process.stdout.write(JSON.stringify(await runConnections((s) => { process.stderr.write(s + '\n') }), null, 2) + '\n')
  } finally {
    cleanupAll()
  }
  process.exit()
}
