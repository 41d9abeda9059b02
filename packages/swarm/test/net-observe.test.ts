import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { swarm, type Swarm } from '@agentmesh/swarm/net'
import { internals } from '@agentmesh/swarm/net/internal'
import { createAntiEntropy } from '../src/net/anti-entropy.ts'
import { createDiscoveryClock, observeSeenCacheDrops } from '../src/net/gossip-observer.ts'
import { DecodeCache } from '../src/net/msg-id.ts'
import { LOOPBACK, TEST_LIMITS, until, collect } from './net-helpers.ts'

class InMemoryReader extends MetricReader {
  protected override async onForceFlush (): Promise<void> {}
  protected override async onShutdown (): Promise<void> {}
}

/** Sums of a counter's data points by one attribute's value, and a histogram's counts by one attribute's value. */
async function read (reader: InMemoryReader): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect()
  assert.deepEqual(errors, [])
  return resourceMetrics
}
/** Per value of attribute `key`, the sum over the data points of metric `name` of `valueOf(point)`. */
function sumBy (rm: ResourceMetrics, name: string, key: string, valueOf: (v: unknown) => number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== name) continue
      for (const dp of m.dataPoints) {
        const k = String(dp.attributes[key])
        out[k] = (out[k] ?? 0) + valueOf(dp.value)
      }
    }
  }
  return out
}
const counterBy = (rm: ResourceMetrics, name: string, key: string): Record<string, number> => sumBy(rm, name, key, v => v as number)
const histogramCountBy = (rm: ResourceMetrics, name: string, key: string): Record<string, number> => sumBy(rm, name, key, v => (v as { count: number }).count)
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)

test('gossip observer - counts each seen-cache drop once with its topic, chains to the score, and refuses a gossipsub without the hook', () => {
  const calls: string[] = []
  const gossip = { score: { duplicateMessage (from: string, id: string, topic: string) { calls.push(`${from}/${id}/${topic}`) } } }
  const drops: string[] = []
  const undo = observeSeenCacheDrops(gossip, (t) => { drops.push(t) })
  gossip.score.duplicateMessage('p1', 'm1', 'ops')
  gossip.score.duplicateMessage('p2', 'm1', 'ops')
  assert.deepEqual(drops, ['ops', 'ops'])
  assert.deepEqual(calls, ['p1/m1/ops', 'p2/m1/ops'])
  undo()
  gossip.score.duplicateMessage('p3', 'm1', 'ops')
  assert.deepEqual(drops, ['ops', 'ops'])
  assert.equal(calls.length, 3)
  assert.throws(() => observeSeenCacheDrops({ score: {} }, () => {}), { name: 'TypeError', message: /score\.duplicateMessage/ })
})

test('fast id - the same bytes give one fast id, other bytes (another encoding, a forgery) another; the validator check reuses the content id and still refuses a changed message', () => {
  const id = createIdentity()
  const m = signSwarmMessage(id, { topic: 'fast', seq: 1, body: { a: 1, b: 2 } })
  const bytes = encodeSwarmMessage(m)
  const dc = new DecodeCache(64 * 1024)
  assert.equal(dc.fastMsgId(bytes), dc.fastMsgId(new Uint8Array(bytes)))
  assert.match(dc.fastMsgId(bytes), /^[A-Za-z0-9_-]{22}$/)
  // the same signed message in other key order: another fast id, the same gossip id
  const { sig, ...rest } = m
  const reordered = new TextEncoder().encode(JSON.stringify({ sig, ...rest }))
  assert.notEqual(dc.fastMsgId(reordered), dc.fastMsgId(bytes))
  assert.deepEqual(dc.msgId(reordered), dc.msgId(bytes))
  const forged = encodeSwarmMessage({ ...m, body: { a: 1, b: 3 } })
  assert.notEqual(dc.fastMsgId(forged), dc.fastMsgId(bytes))
  assert.notDeepEqual(dc.msgId(forged), dc.msgId(bytes))
  const d = dc.decode(bytes)
  assert.ok(d.ok)
  assert.equal(dc.verify(d.msg), true)
  const f = dc.decode(forged)
  assert.ok(f.ok)
  assert.equal(dc.verify(f.msg), false)
  // a message not decoded here (the reconcile path) is checked in full
  assert.equal(dc.verify({ ...m }), true)
  assert.equal(dc.verify({ ...m, seq: 2 }), false)
})

test('discovery clock - first peer and full mesh once per join, from the later of start and join', () => {
  let t = 1000
  let size = 0
  const seen: Array<[string, string, number]> = []
  const c = createDiscoveryClock({ startedAt: 1000, now: () => t, meshDegree: 3, meshSize: () => size, onMilestone: (topic, m, ms) => { seen.push([topic, m, ms]) } })
  c.joined('a')
  t = 1500; c.check('a')
  assert.deepEqual(seen, [])
  size = 1; t = 1700; c.check('a')
  size = 2; t = 1800; c.check('a')
  size = 3; t = 2100; c.check('a')
  size = 1; t = 2500; c.check('a') // a shrunk mesh reports nothing again
  assert.deepEqual(seen, [['a', 'first_peer', 700], ['a', 'full_mesh', 1100]])
  assert.deepEqual(c.times('a'), { since: 1000, firstPeerAt: 1700, fullMeshAt: 2100 })
  // joined later: measured from the join; a mesh at D at once reports both milestones together
  t = 5000; c.joined('b'); size = 3; t = 5040; c.check('b')
  assert.deepEqual(seen.slice(2), [['b', 'first_peer', 40], ['b', 'full_mesh', 40]])
  c.left('a')
  assert.equal(c.times('a'), undefined)
  c.check('a')
  assert.equal(seen.length, 4)
})

test('anti-entropy - each round one subscribed peer, topics in turn, peers in turn per topic, only the shared topics', () => {
  const subs: Record<string, string[]> = { a: ['pB', 'pE'], b: ['pC', 'pE'], c: [] }
  let joined = ['b', 'a', 'c']
  const ae = createAntiEntropy({ topics: () => joined, subscribers: (t) => subs[t] ?? [] })
  const rounds = Array.from({ length: 6 }, () => ae.next())
  assert.deepEqual(rounds, [
    { peer: 'pB', topics: ['a'] },
    { peer: 'pC', topics: ['b'] },
    // c has no subscriber: skipped, the turn goes on to a
    { peer: 'pE', topics: ['a', 'b'] },
    { peer: 'pE', topics: ['a', 'b'] },
    { peer: 'pB', topics: ['a'] },
    { peer: 'pC', topics: ['b'] },
  ])
  joined = ['c']
  assert.equal(ae.next(), undefined)
  joined = []
  assert.equal(ae.next(), undefined)
})

/** n nodes, each dialing every earlier one: a full mesh (D ≥ n - 1). */
async function fullMesh (n: number, readers: InMemoryReader[], limits: Record<string, number>): Promise<{ nodes: Swarm[], ids: Identity[], providers: MeterProvider[] }> {
  const nodes: Swarm[] = []
  const ids: Identity[] = []
  const providers: MeterProvider[] = []
  for (let i = 0; i < n; i++) {
    const id = createIdentity()
    const reader = new InMemoryReader()
    const meterProvider = new MeterProvider({ readers: [reader] })
    readers.push(reader); providers.push(meterProvider); ids.push(id)
    nodes.push(await swarm({ keys: id, ipColocationWhitelist: LOOPBACK, meterProvider, bootstrap: nodes.map(s => s.multiaddrs()[0]!), limits: { ...TEST_LIMITS, ...limits } }))
  }
  return { nodes, ids, providers }
}

test('duplicates - in a full mesh of 5 nodes every copy is counted: (n-1)(n-2) duplicates per message, all at the seen cache; discovery reaches a full mesh everywhere', { timeout: 60_000 }, async () => {
  const N = 5
  const M = 3
  const topic = 'dups'
  const readers: InMemoryReader[] = []
  // D = Dlo = n-1: every node keeps every other in its mesh, and a full mesh is D peers
  const { nodes, ids, providers } = await fullMesh(N, readers, { meshDegree: N - 1, meshDegreeLow: N - 1 })
  try {
    const logs = nodes.map(s => collect(s.subscribe(topic)))
    await until(() => nodes.every(s => s.peers(topic).filter(p => p.mesh).length === N - 1), 15_000, 'full meshes')
    // below gossipsub's IDONTWANT size (512 bytes), so no copy is withheld: the arithmetic is exact
    assert.ok(encodeSwarmMessage(signSwarmMessage(ids[0]!, { topic, seq: 1, body: 'm0' })).byteLength < 512)
    for (let k = 0; k < M; k++) {
      await nodes[k]!.publish(topic, `m${k}`)
      await until(() => logs.every(l => l.length === k + 1), 15_000, `message ${k} everywhere`)
    }
    // the publisher sends n-1 copies; each other node forwards its first copy to its n-2 mesh
    // peers other than the one it came from (the publisher included: StrictNoSign carries no
    // origin), so (n-1)² copies arrive, n-1 of them first deliveries
    const expected = M * (N - 1) * (N - 2)
    const totalDups = async (): Promise<number> => {
      let t = 0
      for (const r of readers) t += sum(counterBy(await read(r), 'mesh.duplicates', 'mesh.stage'))
      return t
    }
    const end = Date.now() + 15_000
    while (await totalDups() < expected && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
    // a few more heartbeats: a copy too many would show up now
    await new Promise(resolve => setTimeout(resolve, 3 * TEST_LIMITS.heartbeatMs))
    const byStage: Record<string, number> = {}
    let delivered = 0
    const milestones: Record<string, number> = {}
    for (const r of readers) {
      const rm = await read(r)
      for (const [k, v] of Object.entries(counterBy(rm, 'mesh.duplicates', 'mesh.stage'))) byStage[k] = (byStage[k] ?? 0) + v
      delivered += sum(counterBy(rm, 'mesh.messages_in', 'mesh.via'))
      for (const [k, v] of Object.entries(histogramCountBy(rm, 'mesh.peer_discovery_time', 'mesh.milestone'))) milestones[k] = (milestones[k] ?? 0) + v
    }
    assert.deepEqual(byStage, { 'seen-cache': expected })
    assert.equal(delivered, M * (N - 1))
    assert.deepEqual(logs.map(l => l.length), Array(N).fill(M))
    // every node reported each discovery milestone once, in order
    assert.deepEqual(milestones, { first_peer: N, full_mesh: N })
    for (const s of nodes) {
      const d = internals(s).discovery(topic)!
      assert.ok(d.firstPeerAt !== undefined && d.fullMeshAt !== undefined && d.since <= d.firstPeerAt && d.firstPeerAt <= d.fullMeshAt, JSON.stringify(d))
    }
  } finally {
    await Promise.all(nodes.map(async s => await s.close()))
    await Promise.all(providers.map(async p => await p.shutdown()))
  }
})

test('anti-entropy - background rounds ask only peers sharing a topic, each with the shared topics, and recover what gossip never carried', { timeout: 60_000 }, async () => {
  const nodes: Swarm[] = []
  try {
    // B (topic a), C (topic b) and D (topic z) each publish alone first: no gossip can carry it later
    const b = await swarm({ keys: createIdentity(), ipColocationWhitelist: LOOPBACK, limits: TEST_LIMITS }); nodes.push(b)
    const c = await swarm({ keys: createIdentity(), ipColocationWhitelist: LOOPBACK, limits: TEST_LIMITS }); nodes.push(c)
    const d = await swarm({ keys: createIdentity(), ipColocationWhitelist: LOOPBACK, limits: TEST_LIMITS }); nodes.push(d)
    await b.publish('a', 'from b')
    await c.publish('b', 'from c')
    await d.publish('z', 'from d')
    // past gossipsub's message cache (5 heartbeats), so no IHAVE offers them to A
    await new Promise(resolve => setTimeout(resolve, 8 * TEST_LIMITS.heartbeatMs))
    const a = await swarm({
      keys: createIdentity(),
      ipColocationWhitelist: LOOPBACK,
      bootstrap: [b, c, d].map(s => s.multiaddrs()[0]!),
      limits: { ...TEST_LIMITS, reconcileIntervalMs: 300 },
    })
    nodes.push(a)
    const rounds: Array<{ peer: string, topics: readonly string[], recovered: number }> = []
    a.on('reconcile:done', (e) => { rounds.push({ peer: e.detail.peer, topics: e.detail.topics, recovered: e.detail.recovered }) })
    const logA = collect(a.subscribe('a'))
    const logB = collect(a.subscribe('b'))
    await until(() => logA.length === 1 && logB.length === 1 && rounds.length >= 4, 20_000, 'both messages recovered and four rounds')
    assert.deepEqual([logA[0]!.body, logA[0]!.via, logB[0]!.body, logB[0]!.via], ['from b', 'reconcile', 'from c', 'reconcile'])
    const shared = new Map([[b.amid, ['a']], [c.amid, ['b']]])
    for (const r of rounds) assert.deepEqual(r.topics, shared.get(r.peer), `round with ${r.peer === d.amid ? 'D (shares no topic)' : r.peer}`)
    assert.equal(rounds.filter(r => r.peer === b.amid).length >= 1 && rounds.filter(r => r.peer === c.amid).length >= 1, true)
    assert.equal(rounds.reduce((n, r) => n + r.recovered, 0), 2)
  } finally {
    await Promise.all(nodes.map(async s => await s.close()))
  }
})
