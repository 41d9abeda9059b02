/**
 * Several relays on loopback (issue 17): `agentmesh serve` processes (the CLI bundle, as operators
 * run them) over one PostgreSQL schema (fresh, dropped after) and a nats-server of the run's own.
 * Opt in with BENCH_CLUSTER=1,2,3 (the relay counts; needs the PostgreSQL at BENCH_CLUSTER_STORE,
 * default postgres://postgres@127.0.0.1:5432/postgres, and /usr/sbin/nats-server).
 *
 * - **Throughput**: BENCH_CLUSTER_PAIRS (24) sender→receiver pairs, split in one group per relay;
 *   group g's receivers on node g and its senders on node g+1 (so with two or more relays every
 *   message crosses nodes: stored by one, woken on the other through NATS). Each sender keeps
 *   BENCH_WINDOW (64) messages in flight until BENCH_CLUSTER_MESSAGES (1,500) per pair are
 *   acknowledged; measured: delivered msg/s over the whole stream, and the relays' CPU (the sum of
 *   their processes, from /proc) per delivered message.
 * - **Failover** (with three relays or more): BENCH_CLUSTER_AGENTS (30) SDK connections
 *   (@agentmesh/client, its default backoff) given every node, all on node 0; node 0 is killed
 *   with SIGKILL; measured: the time until the last one is connected again on another node.
 *
 * Figures, never assertions. On these 2-core machines the generator, the relays, PostgreSQL and
 * NATS share the same two cores: adding relays adds processes competing for them, so the figures
 * show the cost of a cluster (per-message CPU: a cross-node message is stored once, told on the
 * bus once, read by the receiver's node), not its scaling; scaling is projected from the CPU per
 * message on machines with cores to spare.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { createIdentity } from '@agentmesh/crypto'
import { NATS_SERVER, startNatsServer, tempDir, removeTempDir, type ServerHandle } from './children.ts'
import { buildFixture, connectAgentMesh } from './targets/agentmesh.ts'
import type { Client } from './targets/types.ts'
import { envInt, freePort, round, withTimeout } from './util.ts'

const CLI_BIN = fileURLToPath(new URL('../../packages/cli/bin/agentmesh.js', import.meta.url))

export interface ClusterRun {
  relays: number
  pairs: number
  messages: number
  delivered: number
  msg_per_s: number
  /** the relays' CPU (user + system, all their processes) per delivered message */
  relay_cpu_us_per_msg: number
  relay_cpu_cores: number
  wall_s: number
  failures: number
  /** kill -9 of node 0 → the last of its agents connected again elsewhere (three relays or more) */
  failover_ms?: { agents: number, last_ms: number, median_ms: number }
}

interface Node { url: string, wsUrl: string, port: number, child: ChildProcess }

function cpuUs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) * 1e4
  } catch { return 0 }
}

async function startServe (dataDir: string, store: string, nats: string, apiKey: string): Promise<Node> {
  const child = spawn(process.execPath, [CLI_BIN, 'serve', '--json', '--port', '0', '--data', dataDir, '--store', store, '--backplane', nats], {
    env: { ...process.env, AGENTMESH_API_KEY: apiKey, AGENTMESH_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { if (err.length < 10_000) err += d.toString() })
  const lines = createInterface({ input: child.stdout! })
  const up = await withTimeout(new Promise<{ url: string, ws_url: string, port: number }>((resolve, reject) => {
    lines.on('line', (l) => { try { const j = JSON.parse(l) as { event?: string, url: string, ws_url: string, port: number }; if (j.event === 'listening') resolve(j) } catch {} })
    child.once('exit', (code) => { reject(new Error(`serve exited with ${String(code)}: ${err.slice(-500)}`)) })
  }), 30_000, 'starting agentmesh serve')
  return { url: up.url, wsUrl: up.ws_url, port: up.port, child }
}

async function kill9 (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGKILL')
  await gone
}

/** One relay count: throughput (and failover with three or more). */
async function runOne (n: number, pgUrl: string, natsUrl: string, log: (s: string) => void): Promise<ClusterRun> {
  const schema = `am_bench_cluster_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Pool({ connectionString: pgUrl, max: 1 })
  const dir = tempDir('cluster')
  const store = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${schema}`
  const apiKey = randomBytes(24).toString('hex')
  const nodes: Node[] = []
  const clients: Client[] = []
  const agents: Connection[] = []
  try {
    for (let i = 0; i < n; i++) nodes.push(await startServe(`${dir}/node-${i}`, store, natsUrl, apiKey))
    const pairs = Math.max(n, Math.round(envInt('BENCH_CLUSTER_PAIRS', 24) / n) * n)
    const per = envInt('BENCH_CLUSTER_MESSAGES', 1500)
    const window = envInt('BENCH_WINDOW', 64)
    const group = pairs / n
    const total = pairs * per
    const sent = new Int32Array(pairs)
    let delivered = 0
    let failures = 0
    let done!: () => void
    const finished = new Promise<void>((resolve) => { done = resolve })
    const send = (p: number): void => {
      const g = Math.floor(p / group)
      if (sent[p]! >= per) return
      clients[g]!.send(p % group, sent[p]!, performance.now())
      sent[p]!++
    }
    for (let g = 0; g < n; g++) {
      const fx = await buildFixture(group, 0)
      clients.push(await connectAgentMesh(nodes[g]!.wsUrl, fx, group, {
        delivered: () => { if (++delivered === total) done() },
        acked: (p) => { send(g * group + p) },
        failed: (_p, what) => { if (failures++ < 3) log(`  cluster: ${what}`) },
      }, false, undefined, nodes[(g + 1) % n]!.wsUrl))
    }
    const cpu0 = nodes.reduce((s, x) => s + cpuUs(x.child.pid!), 0)
    const t0 = performance.now()
    for (let p = 0; p < pairs; p++) for (let k = 0; k < window; k++) send(p)
    await withTimeout(finished, 300_000, `${total} deliveries on ${n} relay(s)`)
    const wallMs = performance.now() - t0
    const cpuUsed = nodes.reduce((s, x) => s + cpuUs(x.child.pid!), 0) - cpu0
    const run: ClusterRun = {
      relays: n,
      pairs,
      messages: total,
      delivered,
      msg_per_s: Math.round(delivered / (wallMs / 1000)),
      relay_cpu_us_per_msg: round(cpuUsed / delivered, 1),
      relay_cpu_cores: round(cpuUsed / 1000 / wallMs, 2),
      wall_s: round(wallMs / 1000, 1),
      failures,
    }
    for (const c of clients.splice(0)) await c.close()

    if (n >= 3) {
      const count = envInt('BENCH_CLUSTER_AGENTS', 30)
      const list = nodes.map(x => x.url)
      for (let i = 0; i < count; i++) agents.push(await connect({ server: list, identity: createIdentity(`fo-${i}`), state: memoryState() }))
      const back: number[] = []
      let t1 = 0
      const watching = agents.map(async (a) => {
        for await (const s of a.status()) {
          if (s.type === 'connected' && t1 > 0 && !s.relay.includes(`:${nodes[0]!.port}/`)) { back.push(performance.now() - t1); return }
        }
      })
      t1 = performance.now()
      await kill9(nodes[0]!.child)
      await withTimeout(Promise.race([Promise.all(watching), new Promise(resolve => { const t = setInterval(() => { if (back.length === count) { clearInterval(t); resolve(undefined) } }, 20) })]), 120_000, 'agents to fail over')
      back.sort((a, b) => a - b)
      run.failover_ms = { agents: count, last_ms: Math.round(back[back.length - 1]!), median_ms: Math.round(back[Math.floor(back.length / 2)]!) }
    }
    return run
  } finally {
    for (const c of clients) await c.close().catch(() => {})
    for (const a of agents) await a.close().catch(() => {})
    for (const x of nodes) await kill9(x.child)
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
    await admin.end()
    removeTempDir(dir)
  }
}

/** BENCH_CLUSTER=1,2,3: each relay count in turn; undefined when not asked. */
export async function runCluster (log: (s: string) => void): Promise<ClusterRun[] | undefined> {
  // on by default (one, two and three relays) when PostgreSQL answers; BENCH_CLUSTER=none leaves it out
  const asked = (process.env.BENCH_CLUSTER ?? '1,2,3').split(',').map(s => s.trim()).filter(s => s !== '' && s !== 'none').map(Number)
  if (asked.length === 0) return undefined
  const pgUrl = process.env.BENCH_CLUSTER_STORE ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  const probe = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 3000 })
  try {
    await probe.connect()
    await probe.query('SELECT 1')
  } catch (err) {
    log(`cluster: skipped (PostgreSQL at ${pgUrl.replace(/\/\/[^@/]*@/, '//')} did not answer: ${(err as Error).message}; set BENCH_CLUSTER_STORE)`)
    return undefined
  } finally {
    await probe.end().catch(() => {})
  }
  const port = await freePort()
  let nats: ServerHandle | undefined
  try {
    nats = await startNatsServer(port)
  } catch (err) {
    log(`cluster: skipped (no nats-server at ${NATS_SERVER}: ${(err as Error).message})`)
    return undefined
  }
  const runs: ClusterRun[] = []
  try {
    for (const n of asked) {
      if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`BENCH_CLUSTER: relay counts are 1 to 8, got ${n}`)
      log(`▶ cluster: ${n} relay(s) on PostgreSQL + NATS`)
      const r = await runOne(n, pgUrl, `nats://127.0.0.1:${port}`, log)
      log(`  ${r.msg_per_s} msg/s, ${r.relay_cpu_us_per_msg} µs relay CPU per message${r.failover_ms === undefined ? '' : `, failover ${r.failover_ms.last_ms} ms (last of ${r.failover_ms.agents})`}`)
      runs.push(r)
    }
  } finally {
    await nats.stop()
  }
  return runs
}

export function clusterReport (runs: ClusterRun[]): string {
  const rows = runs.map(r => `| ${r.relays} | ${r.pairs} | ${r.messages} | ${r.msg_per_s} | ${r.relay_cpu_us_per_msg} | ${r.relay_cpu_cores} | ${r.failover_ms === undefined ? '—' : `${r.failover_ms.last_ms} (median ${r.failover_ms.median_ms}, ${r.failover_ms.agents} agents)`} |`)
  return [
    'Several relays on loopback (agentmesh serve × N, one PostgreSQL schema, NATS; with N ≥ 2 every message crosses nodes):',
    '',
    '| relays | pairs | messages | msg/s | relay CPU µs/msg | relay cores busy | failover ms (kill -9 → last agent connected elsewhere) |',
    '|--:|--:|--:|--:|--:|--:|--|',
    ...rows,
    '',
    'All processes (generator, relays, PostgreSQL, NATS) share this machine\'s cores: more relays add competitors, not capacity.',
  ].join('\n')
}
