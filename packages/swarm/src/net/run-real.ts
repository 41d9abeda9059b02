/**
 * The real-node run the simulator is calibrated against (docs/protocol.md, "Swarm topics":
 * calibration): N real swarm nodes on 127.0.0.1, spread over several processes, each dialing
 * `--degree` others chosen by a seeded generator; after the meshes form, a few publishers publish
 * a few messages; every node records, for each message, the peer it first got it from, and counts
 * the duplicate copies gossipsub dropped. The hop count of a first delivery is its source's plus
 * one (the publisher is at 0), so the figures are the simulator's: hops to full delivery and to
 * 99.9% per message, hop percentiles, duplicates and copies per node per message — the
 * `CalibrationFigures` shape (`calibration.ts`, shared with the simulator), with `source: 'real'`.
 *
 *   node --import tsx packages/swarm/src/net/run-real.ts --nodes 200 [--procs 4] [--degree 5]
 *        [--publishers 4] [--messages 2] [--interval 100] [--body 256] [--seed 1] [--json]
 *
 * Bounded: every wait has a deadline (--timeout, 180 s by default), after which the run reports
 * what it has (`complete: false`).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createIdentity } from '@agentmesh/crypto'
import { SWARM_MESH } from '../scoring.ts'
import { swarm, type Swarm } from './swarm.ts'
import { internals } from './swarm.ts'
import { observeSeenCacheDrops } from './gossip-observer.ts'
import { seededRandom } from '@agentmesh/protocol/internal'
import type { CalibrationFigures } from '../calibration.ts'

const TOPIC = 'calibration'
/** dials in flight at once per process */
const DIAL_CONCURRENCY = 8
const SELF = fileURLToPath(import.meta.url)

interface Plan {
  nodes: number
  procs: number
  degree: number
  publishers: number
  messages: number
  intervalMs: number
  bodyBytes: number
  seed: number
  timeoutMs: number
  heartbeatMs: number
  /** progress lines (stderr in text mode) */
  progress?: (line: string) => void
}

/**
 * What one node saw: per message (content id) the peer id it first came from, the duplicates
 * gossipsub dropped, and when the topic's mesh got its first peer and D peers (ms after the dial
 * phase began; the swarm's own `mesh.peer_discovery_time`, measured from the moment every node
 * starts connecting rather than from its process start).
 */
interface NodeRecord { index: number, peerId: string, firsts: Array<[id: string, source: string]>, duplicates: number, published: string[], firstConnAt?: number, firstConnMs?: number, firstPeerMs?: number, fullMeshMs?: number }

type ToWorker =
  | { type: 'start', first: number, count: number, plan: Plan }
  | { type: 'dial', targets: Record<number, string[]>, at: number }
  | { type: 'status' }
  | { type: 'publish', index: number, n: number, intervalMs: number, bodyBytes: number }
  | { type: 'report' }
  | { type: 'stop' }
type FromWorker =
  | { type: 'ready', peers: Array<{ index: number, peerId: string, addr: string }> }
  | { type: 'dialed', failed: number }
  | { type: 'status', meshOk: number, meshSizes: number[], conns: number[], delivered: number[] }
  | { type: 'published', ids: string[] }
  | { type: 'report', records: NodeRecord[] }
  | { type: 'stopped' }


// ---------------------------------------------------------------------------------------------
// worker: hosts a slice of the nodes

async function worker (): Promise<void> {
  const send = (m: FromWorker): void => { process.send!(m) }
  let nodes: Swarm[] = []
  let first = 0
  let dialAt = 0
  const records: NodeRecord[] = []
  process.on('message', (raw) => {
    const m = raw as ToWorker
    void (async () => {
      switch (m.type) {
        case 'start': {
          first = m.first
          nodes = []
          for (let i = 0; i < m.count; i++) {
            const s = await swarm({
              keys: createIdentity(),
              ipColocationWhitelist: ['127.0.0.1'],
              limits: { heartbeatMs: m.plan.heartbeatMs, reconcileIntervalMs: 0, maxConnections: 4 * m.plan.degree + 16, inboundConnectionsPerHostPerS: 10_000, maxPendingInbound: 4 * m.plan.degree + 16 },
            })
            const rec: NodeRecord = { index: first + i, peerId: s.peerId, firsts: [], duplicates: 0, published: [] }
            const gossip = internals(s).gossip as unknown as {
              addEventListener: (t: string, fn: (e: CustomEvent<{ propagationSource: { toString: () => string }, msg: { data: Uint8Array } }>) => void) => void
              score: unknown
            }
            gossip.addEventListener('gossipsub:message', (e) => {
              try {
                const id = (JSON.parse(new TextDecoder().decode(e.detail.msg.data)) as { id: string }).id
                rec.firsts.push([id, e.detail.propagationSource.toString()])
              } catch {}
            })
            // every copy gossipsub drops as already seen (the same hook as the swarm's mesh.duplicates stage seen-cache)
            observeSeenCacheDrops(gossip, () => { rec.duplicates++ })
            // the first connection (in or out): separates the harness's dial queue from gossipsub's mesh forming
            internals(s).node.addEventListener('peer:connect', () => { rec.firstConnAt ??= Date.now() })
            s.join(TOPIC)
            nodes.push(s)
            records.push(rec)
          }
          send({ type: 'ready', peers: nodes.map((s, i) => ({ index: first + i, peerId: s.peerId, addr: s.multiaddrs()[0]! })) })
          break
        }
        case 'dial': {
          // each node dials its targets one after the other, a failed dial is tried twice more
          // (a loaded machine times handshakes out); the count of links that never came up is reported
          // at most DIAL_CONCURRENCY handshakes in flight per process: on a loaded host more
          // of them at once time out
          let failed = 0
          dialAt = m.at
          const jobs = nodes.flatMap((s, i) => (m.targets[first + i] ?? []).map(a => ({ s, a })))
          await Promise.all(Array.from({ length: DIAL_CONCURRENCY }, async () => {
            for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
              for (let attempt = 0; ; attempt++) {
                try { await job.s.dial(job.a); break } catch {
                  if (attempt >= 4) { failed++; break }
                  await new Promise(resolve => setTimeout(resolve, 250 * (attempt + 1)))
                }
              }
            }
          }))
          send({ type: 'dialed', failed })
          break
        }
        case 'status': {
          const meshOk = nodes.filter(s => s.peers(TOPIC).filter(p => p.mesh).length >= Math.min(SWARM_MESH.Dlo, 2)).length
          if (process.env.RUN_REAL_DEBUG !== undefined) process.stderr.write(`worker ${first}: conns ${nodes.map(s => s.peers().length).join(',')} subs ${nodes.map(s => s.peers(TOPIC).length).join(',')}\n`)
          send({ type: 'status', meshOk, meshSizes: nodes.map(s => s.peers(TOPIC).filter(p => p.mesh).length), conns: nodes.map(s => s.peers().length), delivered: records.map(r => r.firsts.length + r.published.length) })
          break
        }
        case 'publish': {
          const s = nodes[m.index - first]!
          const ids: string[] = []
          for (let k = 0; k < m.n; k++) {
            if (k > 0) await new Promise(resolve => setTimeout(resolve, m.intervalMs))
            const r = await s.publish(TOPIC, 'x'.repeat(m.bodyBytes))
            records[m.index - first]!.published.push(r.id)
            ids.push(r.id)
          }
          send({ type: 'published', ids })
          break
        }
        case 'report':
          nodes.forEach((s, i) => {
            const d = internals(s).discovery(TOPIC)
            if (records[i]!.firstConnAt !== undefined) records[i]!.firstConnMs = Math.max(0, records[i]!.firstConnAt! - dialAt)
            if (d?.firstPeerAt !== undefined) records[i]!.firstPeerMs = Math.max(0, d.firstPeerAt - dialAt)
            if (d?.fullMeshAt !== undefined) records[i]!.fullMeshMs = Math.max(0, d.fullMeshAt - dialAt)
          })
          send({ type: 'report', records })
          break
        case 'stop':
          await Promise.all(nodes.map(async s => await s.close()))
          send({ type: 'stopped' })
          process.exit(0)
      }
    })()
  })
}

// ---------------------------------------------------------------------------------------------
// coordinator

class Worker {
  private readonly waiting: Array<{ type: string, resolve: (m: FromWorker) => void }> = []
  constructor (readonly child: ChildProcess) {
    child.on('message', (raw) => {
      const m = raw as FromWorker
      const i = this.waiting.findIndex(w => w.type === m.type)
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(m)
    })
  }

  async ask<T extends FromWorker['type']> (msg: ToWorker, answer: T, ms: number): Promise<Extract<FromWorker, { type: T }>> {
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error(`worker did not answer ${msg.type} within ${ms} ms`)) }, ms)
      this.waiting.push({ type: answer, resolve: (m) => { clearTimeout(t); resolve(m as Extract<FromWorker, { type: T }>) } })
      this.child.send(msg)
    })
  }
}

/** Percentiles of a set of times (ms), and how many nodes reached the milestone. */
export interface TimeStats { nodes: number, p50: number, p90: number, p99: number, max: number }

export interface RealFigures extends CalibrationFigures {
  source: 'real'
  /** the run itself */
  run: { procs: number, degree: number, failedDials: number, meshDegreeMean: number, startMs: number, meshMs: number, deliverMs: number }
  /** peer discovery: ms from the start of the dial phase to the topic's first mesh peer and to D mesh peers, over the nodes that got there */
  discovery: {
    firstConnection: TimeStats
    firstPeer: TimeStats
    fullMesh: TimeStats
    /** the same two milestones measured from each node's own first connection (without the harness's dial queue) */
    firstPeerAfterConnection: TimeStats
    fullMeshAfterConnection: TimeStats
  }
}

function timeStats (xs: number[]): TimeStats {
  const s = [...xs].sort((a, b) => a - b)
  return { nodes: s.length, p50: percentile(s, 0.5), p90: percentile(s, 0.9), p99: percentile(s, 0.99), max: s.at(-1) ?? 0 }
}

/** Discovery figures from the node records. */
export function discoveryFrom (records: NodeRecord[]): RealFigures['discovery'] {
  return {
    firstConnection: timeStats(records.flatMap(r => r.firstConnMs === undefined ? [] : [r.firstConnMs])),
    firstPeer: timeStats(records.flatMap(r => r.firstPeerMs === undefined ? [] : [r.firstPeerMs])),
    fullMesh: timeStats(records.flatMap(r => r.fullMeshMs === undefined ? [] : [r.fullMeshMs])),
    firstPeerAfterConnection: timeStats(records.flatMap(r => r.firstPeerMs === undefined || r.firstConnMs === undefined ? [] : [Math.max(0, r.firstPeerMs - r.firstConnMs)])),
    fullMeshAfterConnection: timeStats(records.flatMap(r => r.fullMeshMs === undefined || r.firstConnMs === undefined ? [] : [Math.max(0, r.fullMeshMs - r.firstConnMs)])),
  }
}

function percentile (sorted: number[], q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

/** Hops of every first delivery of every message, from the source pointers. */
export function figuresFrom (records: NodeRecord[], messageIds: string[], publisherOf: Map<string, string>): Omit<RealFigures, 'run' | 'discovery'> {
  const n = records.length
  const allHops: number[] = []
  const roundsFull: Array<number | null> = []
  const rounds999: Array<number | null> = []
  let complete = true
  let firstsTotal = 0
  for (const id of messageIds) {
    const source = new Map<string, string>()
    for (const r of records) for (const [mid, src] of r.firsts) if (mid === id) source.set(r.peerId, src)
    firstsTotal += source.size
    const hop = new Map<string, number>([[publisherOf.get(id)!, 0]])
    const hopOf = (p: string, depth = 0): number | undefined => {
      const h = hop.get(p)
      if (h !== undefined) return h
      const s = source.get(p)
      if (s === undefined || depth > n) return undefined
      const hs = hopOf(s, depth + 1)
      if (hs === undefined) return undefined
      hop.set(p, hs + 1)
      return hs + 1
    }
    const hs: number[] = []
    for (const r of records) {
      if (r.peerId === publisherOf.get(id)) continue
      const h = hopOf(r.peerId)
      if (h !== undefined) hs.push(h)
    }
    hs.sort((a, b) => a - b)
    allHops.push(...hs)
    const expected = n - 1
    if (hs.length < expected) complete = false
    roundsFull.push(hs.length === expected ? (hs.at(-1) ?? 0) : null)
    const need = Math.ceil(0.999 * expected)
    rounds999.push(hs.length >= need ? (hs[need - 1] ?? 0) : null)
  }
  allHops.sort((a, b) => a - b)
  const dups = records.reduce((s, r) => s + r.duplicates, 0)
  const m = Math.max(1, messageIds.length)
  return {
    source: 'real',
    nodes: n,
    messages: messageIds.length,
    roundsFull,
    rounds999,
    rounds: { p50: percentile(allHops, 0.5), p90: percentile(allHops, 0.9), p99: percentile(allHops, 0.99), max: allHops.at(-1) ?? 0 },
    duplicatesPerNodePerMessage: Math.round(dups / n / m * 1000) / 1000,
    messagesPerNodePerMessage: Math.round((firstsTotal + dups) / n / m * 1000) / 1000,
    complete,
  }
}

export async function runReal (plan: Plan): Promise<RealFigures> {
  const t0 = Date.now()
  const deadline = t0 + plan.timeoutMs
  // an answer may take a while on a loaded host even past the deadline: at least 30 s
  const left = (): number => Math.max(30_000, deadline - Date.now())
  const per = Math.ceil(plan.nodes / plan.procs)
  const workers: Worker[] = []
  const owner: number[] = []
  try {
    for (let p = 0; p < plan.procs; p++) {
      const count = Math.min(per, plan.nodes - p * per)
      if (count <= 0) break
      const child = fork(SELF, ['--worker'], { execArgv: ['--import', 'tsx', '--max-old-space-size=2048'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      workers.push(new Worker(child))
      for (let i = 0; i < count; i++) owner.push(p)
    }
    const ready = await Promise.all(workers.map(async (w, p) => await w.ask({ type: 'start', first: p * per, count: Math.min(per, plan.nodes - p * per), plan }, 'ready', left())))
    const peers = ready.flatMap(r => r.peers).sort((a, b) => a.index - b.index)
    const startMs = Date.now() - t0

    // topology: node i dials `degree` distinct others, seeded
    const random = seededRandom(plan.seed)
    const targets: Record<number, string[]> = {}
    for (let i = 0; i < plan.nodes; i++) {
      const pick = new Set<number>()
      while (pick.size < Math.min(plan.degree, plan.nodes - 1)) {
        const j = Math.floor(random() * plan.nodes)
        if (j !== i) pick.add(j)
      }
      targets[i] = [...pick].map(j => peers[j]!.addr)
    }
    plan.progress?.(`${plan.nodes} nodes started in ${startMs} ms; dialing`)
    const dialAt = Date.now()
    const dialed = await Promise.all(workers.map(async w => await w.ask({ type: 'dial', targets, at: dialAt }, 'dialed', left())))
    const failedDials = dialed.reduce((n, d) => n + d.failed, 0)
    plan.progress?.(`dialed in ${Date.now() - t0 - startMs} ms (${failedDials} of ${plan.nodes * plan.degree} dials failed)`)
    const t1 = Date.now()
    // the meshes form over a few heartbeats: wait until every node has mesh peers, or until
    // ten heartbeats bring no progress (a node whose dials all failed has none to graft)
    let best = -1
    let still = 0
    for (;;) {
      const st = await Promise.all(workers.map(async w => await w.ask({ type: 'status' }, 'status', left())))
      const ok = st.reduce((s, x) => s + x.meshOk, 0)
      plan.progress?.(`meshes: ${ok} of ${plan.nodes} nodes have mesh peers`)
      if (ok > best) { best = ok; still = 0 } else still++
      if (ok >= plan.nodes || still >= 10 || Date.now() > deadline) break
      await new Promise(resolve => setTimeout(resolve, plan.heartbeatMs))
    }
    // and three more heartbeats, so the meshes are at D rather than just above Dlo
    await new Promise(resolve => setTimeout(resolve, 3 * plan.heartbeatMs))
    const meshMs = Date.now() - t1
    const sizes = (await Promise.all(workers.map(async w => await w.ask({ type: 'status' }, 'status', left())))).flatMap(x => x.meshSizes)
    const meshDegreeMean = Math.round(sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length) * 100) / 100

    // publishers spread over the index range, all starting together
    const publishers = Array.from({ length: plan.publishers }, (_, k) => Math.floor(k * plan.nodes / plan.publishers))
    const t2 = Date.now()
    const published = await Promise.all(publishers.map(async i => await workers[owner[i]!]!.ask({ type: 'publish', index: i, n: plan.messages, intervalMs: plan.intervalMs, bodyBytes: plan.bodyBytes }, 'published', left())))
    const publisherOf = new Map<string, string>()
    published.forEach((r, k) => { for (const id of r.ids) publisherOf.set(id, peers[publishers[k]!]!.peerId) })
    const total = publisherOf.size
    for (;;) {
      const st = await Promise.all(workers.map(async w => await w.ask({ type: 'status' }, 'status', left())))
      const have = st.reduce((n, x) => n + x.delivered.filter(d => d >= total).length, 0)
      const conns = st.flatMap(x => x.conns)
      const mesh = st.flatMap(x => x.meshSizes)
      plan.progress?.(`delivery: ${have} of ${plan.nodes} nodes have all ${total} messages (connections min ${Math.min(...conns)}, nodes with an empty mesh ${mesh.filter(n => n === 0).length})`)
      if (have >= plan.nodes || Date.now() > deadline) break
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    const deliverMs = Date.now() - t2
    // let the last duplicates arrive (a copy in flight when the last first delivery happened)
    await new Promise(resolve => setTimeout(resolve, 500))
    const reports = await Promise.all(workers.map(async w => await w.ask({ type: 'report' }, 'report', left())))
    const records = reports.flatMap(r => r.records).sort((a, b) => a.index - b.index)
    return { ...figuresFrom(records, [...publisherOf.keys()], publisherOf), discovery: discoveryFrom(records), run: { procs: workers.length, degree: plan.degree, failedDials, meshDegreeMean, startMs, meshMs, deliverMs } }
  } finally {
    await Promise.all(workers.map(async w => await w.ask({ type: 'stop' }, 'stopped', 30_000).catch(() => { w.child.kill('SIGKILL') })))
  }
}

/** One line: peer discovery figures (run-real's text output and the simulator's --real). */
export function formatDiscovery (d: RealFigures['discovery'], nodes: number): string {
  const one = (t: TimeStats): string => t.nodes === 0 ? 'no node' : `p50 ${t.p50} / p90 ${t.p90} / p99 ${t.p99} / max ${t.max} ms (${t.nodes} of ${nodes} nodes)`
  return `peer discovery from the start of the dial phase: first connection ${one(d.firstConnection)}; first mesh peer ${one(d.firstPeer)}; full mesh (D = ${SWARM_MESH.D}) ${one(d.fullMesh)}\n` +
    `  from each node's first connection: first mesh peer ${one(d.firstPeerAfterConnection)}; full mesh ${one(d.fullMeshAfterConnection)}`
}

async function main (): Promise<void> {
  const { values: o } = parseArgs({
    options: {
      nodes: { type: 'string', default: '200' },
      procs: { type: 'string' },
      degree: { type: 'string', default: '5' },
      publishers: { type: 'string', default: '4' },
      messages: { type: 'string', default: '2' },
      interval: { type: 'string', default: '100' },
      body: { type: 'string', default: '256' },
      seed: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '180' },
      heartbeat: { type: 'string', default: String(SWARM_MESH.heartbeatMs) },
      json: { type: 'boolean' },
    },
  })
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      process.stderr.write(`run-real: error AM_ERR_INVALID_ARGUMENT: --${name} must be an integer from ${min} to ${max}\n`)
      process.exit(2)
    }
    return n
  }
  const nodes = int('nodes', o.nodes!, 2, 5000)
  const plan: Plan = {
    nodes,
    procs: int('procs', o.procs ?? String(Math.max(1, Math.ceil(nodes / 100))), 1, 64),
    degree: int('degree', o.degree!, 1, 64),
    publishers: int('publishers', o.publishers!, 1, nodes),
    messages: int('messages', o.messages!, 1, 1000),
    intervalMs: int('interval', o.interval!, 0, 60_000),
    bodyBytes: int('body', o.body!, 1, 60_000),
    seed: int('seed', o.seed!, 0, 2 ** 31),
    timeoutMs: int('timeout', o.timeout!, 10, 3600) * 1000,
    heartbeatMs: int('heartbeat', o.heartbeat!, 50, 10_000),
    ...(o.json === true ? {} : { progress: (line: string) => { process.stderr.write(`run-real: ${line}\n`) } }),
  }
  const f = await runReal(plan)
  if (o.json === true) process.stdout.write(JSON.stringify(f) + '\n')
  else {
    process.stdout.write(`real swarm: ${f.nodes} nodes in ${f.run.procs} processes, each dialing ${f.run.degree} (${f.run.failedDials} dials failed); ${f.messages} messages\n`)
    process.stdout.write(`  started in ${f.run.startMs} ms, meshes formed in ${f.run.meshMs} ms (mean mesh degree ${f.run.meshDegreeMean}), delivered in ${f.run.deliverMs} ms, complete: ${f.complete}\n`)
    process.stdout.write(`  hops: p50 ${f.rounds.p50}, p90 ${f.rounds.p90}, p99 ${f.rounds.p99}, max ${f.rounds.max}; to full delivery per message: ${f.roundsFull.join(', ')}\n`)
    process.stdout.write(`  duplicates per node per message: ${f.duplicatesPerNodePerMessage}; copies per node per message: ${f.messagesPerNodePerMessage}\n`)
    process.stdout.write(`  ${formatDiscovery(f.discovery, f.nodes)}\n`)
    const { run: _run, discovery: _discovery, ...shape } = f
    process.stdout.write('calibration figures (compare with `npm run sim -- --calibrate` of the same scenario): ' + JSON.stringify(shape) + '\n')
  }
}

if (process.argv.includes('--worker')) void worker()
else if (process.argv[1] === SELF) {
  main().catch((err: unknown) => {
    process.stderr.write(`run-real: error ${(err as { code?: string }).code ?? 'AM_ERR_INTERNAL'}: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
