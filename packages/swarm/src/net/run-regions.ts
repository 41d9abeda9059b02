/**
 * Regions on real nodes, measured (docs/swarm.md, "Regions on real nodes"): N nodes in one
 * process on 127.0.0.1, in R regions, each dialing `--local` earlier nodes of its own region and
 * one earlier node of each other region (a bootstrap list a deployment would give). Prints, as
 * JSON: links elected per region (against k: the partial-view effect), mesh edges that cross
 * regions, messages delivered (complete or not, each once), time to full delivery, and the
 * rounds a region takes to replace a closed link. Run `--regions 0` (every node `default`, one
 * mesh, `--local` + 2 dials to any earlier node; edges counted as if nodes were in 3 regions by
 * index) to compare. Never asserts; every wait is bounded.
 *
 *   node --import tsx packages/swarm/src/net/run-regions.ts --nodes 30 --regions 3
 */
import { parseArgs } from 'node:util'
import { createIdentity } from '@agentmesh/crypto'
import { seededRandom } from '@agentmesh/protocol/internal'
import { swarm, type Swarm, type SwarmDelivery } from './index.ts'
import { internals } from './internal.ts'

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '30' },
    regions: { type: 'string', default: '3' },
    local: { type: 'string', default: '3' },
    links: { type: 'string', default: '3' },
    messages: { type: 'string', default: '6' },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '60' },
  },
})
const N = Number(a.nodes); const R = Number(a.regions); const local = Number(a.local)
const M = Number(a.messages); const timeoutMs = Number(a.timeout) * 1000
const rnd = seededRandom(Number(a.seed))
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
const regionOf = (i: number): string => R === 0 ? 'default' : `r${i % R}`
const topic = 'bench'
const heartbeatMs = 200

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return true
}

const nodes: Swarm[] = []
const logs: SwarmDelivery[][] = []
const t0 = Date.now()
for (let i = 0; i < N; i++) {
  const mine = nodes.map((_, j) => j).filter(j => regionOf(j) === regionOf(i))
  const dial = new Set<number>()
  for (let k = 0; k < local && mine.length > 0; k++) dial.add(pick(mine))
  for (let r = 0; r < R; r++) {
    const theirs = nodes.map((_, j) => j).filter(j => regionOf(j) === `r${r}` && regionOf(i) !== `r${r}`)
    if (theirs.length > 0) dial.add(pick(theirs))
  }
  // one mesh: the same number of dials, to any earlier node
  if (R === 0) for (let k = 0; k < local + 2 && i > 0; k++) dial.add(Math.floor(rnd() * i))
  const s = await swarm({
    keys: createIdentity(), region: regionOf(i), ipColocationWhitelist: ['127.0.0.1'],
    bootstrap: [...dial].map(j => nodes[j]!.multiaddrs()[0]!),
    limits: { heartbeatMs, reconcileIntervalMs: 0, regionLinks: Number(a.links), inboundConnectionsPerHostPerS: 1000 },
  })
  nodes.push(s)
  const log: SwarmDelivery[] = []
  logs.push(log)
  void (async () => { for await (const d of s.subscribe(topic)) log.push(d) })().catch(() => {})
}
const startMs = Date.now() - t0
// let the meshes and the elections settle: a few rounds after every node has a mesh peer
await until(() => nodes.every(s => s.peers(topic).some(p => p.mesh)), timeoutMs)
await new Promise(resolve => setTimeout(resolve, 20 * heartbeatMs))

const linkCount = (): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const s of nodes) if (internals(s).regions.state(topic)?.link === true) out[s.region] = (out[s.region] ?? 0) + 1
  return out
}
// with --regions 0 the nodes still count as r0, r1, r2 by index (what would cross with 3 regions)
const label = (i: number): string => `r${i % (R === 0 ? 3 : R)}`
const regionById = new Map(nodes.map((s, i) => [s.peerId, label(i)]))
let edges = 0; let crossEdges = 0
for (const [i, s] of nodes.entries()) {
  for (const gt of internals(s).regions.gossipTopics(topic)) {
    for (const p of internals(s).gossip.getMeshPeers(gt)) { edges++; if (regionById.get(p) !== label(i)) crossEdges++ }
  }
}
const linksBefore = linkCount()

const sent = new Set<string>()
const t1 = Date.now()
for (let m = 0; m < M; m++) sent.add((await pick(nodes).publish(topic, { m })).id)
const complete = await until(() => logs.every(l => l.length >= M), timeoutMs)
const deliverMs = Date.now() - t1
await new Promise(resolve => setTimeout(resolve, 1000))
const onceEach = logs.every(l => l.length === M && new Set(l.map(d => d.id)).size === M && l.every(d => sent.has(d.id)))
const got = logs.reduce((n, l) => n + l.length, 0)

// failover: close one link of the first region and count rounds until a member of it takes over
let failover: { rounds: number, links: number } | undefined
if (R > 0) {
  const r0 = nodes.filter(s => s.region === 'r0')
  const link = r0.find(s => internals(s).regions.state(topic)?.link === true)
  if (link !== undefined) {
    const before = new Map(r0.map(s => [s.peerId, internals(s).regions.state(topic)!.elected]))
    const t2 = Date.now()
    await link.close()
    nodes.splice(nodes.indexOf(link), 1)
    const rest = r0.filter(s => s !== link)
    const ok = await until(() => rest.some(s => internals(s).regions.state(topic)!.elected > before.get(s.peerId)!) || rest.filter(s => internals(s).regions.state(topic)!.link).length >= Number(a.links), timeoutMs)
    failover = ok ? { rounds: Math.ceil((Date.now() - t2) / heartbeatMs), links: rest.filter(s => internals(s).regions.state(topic)!.link).length } : undefined
  }
}

console.log(JSON.stringify({
  nodes: N, regions: R, localDials: local, k: Number(a.links), startMs,
  linksPerRegion: linksBefore,
  meshEdges: edges, crossRegionMeshEdges: crossEdges,
  messages: M, delivered: got, complete, onceEach, deliverMs,
  failover: failover ?? null,
}, null, 1))
await Promise.all(nodes.map(async s => await s.close()))
