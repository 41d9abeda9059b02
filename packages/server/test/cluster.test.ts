/**
 * Cluster membership (cluster.ts): nodes on one shared backplane hear each other's heartbeats,
 * `GET /api/v1/info` and `/metrics` show the node and its peers, and a node that goes silent (no
 * heartbeat, no goodbye: kill -9) is dropped and its agents go offline on the others.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { memoryStore } from '@agentmesh/store'
import { createIdentity } from '@agentmesh/crypto'
import { connect, memoryState } from '@agentmesh/client'
import type { ChatEvent } from '@agentmesh/protocol'
import { startRelay, waitFor } from '@agentmesh/testing'
import { inProcessBackplane, type BackplaneMessage } from '../src/backplane.ts'
import { ClusterView } from '../src/cluster.ts'
import { relayOptions } from '../src/options.ts'

describe('cluster - membership by heartbeat', () => {
  it('cluster - a peer is listed once heard and dropped once silent for peerTimeoutMs (fake clock); onPeerGone names it once', async () => {
    const bp = inProcessBackplane()
    let t = 1_000_000
    const gone: string[] = []
    const said: BackplaneMessage[] = []
    bp.subscribe((m) => { said.push(m) })
    const view = new ClusterView({ node: 'me', backplane: bp, now: () => t, heartbeatMs: 1000, peerTimeoutMs: 3000, onPeerGone: (id) => { gone.push(id) }, onError: (err) => { throw err } })
    await bp.publish({ type: 'node:heartbeat', origin: 'other' })
    await bp.publish({ type: 'node:heartbeat', origin: 'me' })
    assert.deepEqual(view.list(), [{ id: 'other', lastSeen: 1_000_000 }], 'its own heartbeat is not a peer')
    t += 2000
    // any message counts as hearing the node
    await bp.publish({ type: 'presence', origin: 'other', amid: 'am-x', status: 'online' })
    t += 2000
    view.tick()
    assert.deepEqual(view.list(), [{ id: 'other', lastSeen: 1_002_000 }])
    assert.deepEqual(gone, [])
    t += 1000
    view.tick()
    assert.deepEqual([view.list(), gone, view.peersLost], [[], ['other'], 1])
    view.tick()
    assert.deepEqual(gone, ['other'], 'told once')
    await Promise.resolve()
    assert.ok(said.some(m => m.type === 'node:heartbeat' && m.origin === 'me'), 'tick says its heartbeat')
    view.stop()
  })

  it('cluster - a node whose own timer ran past peerTimeoutMs (it stood still) keeps its peers and says so once (fake clock)', async () => {
    const bp = inProcessBackplane()
    let t = 0
    const gone: string[] = []
    let stalls = 0
    const view = new ClusterView({ node: 'me', backplane: bp, now: () => t, heartbeatMs: 1000, peerTimeoutMs: 3000, onPeerGone: (id) => { gone.push(id) }, onStalled: () => { stalls++ }, onError: (err) => { throw err } })
    await bp.publish({ type: 'node:heartbeat', origin: 'other' })
    view.tick()
    t += 10_000 // frozen: neither its timer nor the bus were read
    view.tick()
    assert.deepEqual([view.list().map(p => p.id), gone, stalls], [['other'], [], 1])
    t += 1000
    view.tick()
    assert.equal(stalls, 1)
    t += 3000
    view.tick()
    assert.deepEqual(gone, ['other'], 'a peer that stays silent afterwards is dropped as usual')
    view.stop()
  })

  it('cluster - a peer that says node:leaving is dropped at once, not counted as lost; onPeerLeft names it; leave() says it last (fake clock)', async () => {
    const bp = inProcessBackplane()
    let t = 0
    const gone: string[] = []
    const left: string[] = []
    const said: BackplaneMessage[] = []
    bp.subscribe((m) => { said.push(m) })
    const view = new ClusterView({ node: 'me', backplane: bp, now: () => t, heartbeatMs: 1000, peerTimeoutMs: 3000, onPeerGone: (id) => { gone.push(id) }, onPeerLeft: (id) => { left.push(id) }, onError: (err) => { throw err } })
    await bp.publish({ type: 'node:heartbeat', origin: 'other' })
    await bp.publish({ type: 'node:heartbeat', origin: 'third' })
    t += 100
    await bp.publish({ type: 'node:leaving', origin: 'other' })
    assert.deepEqual([view.list().map(p => p.id), left, view.peersLeft, view.peersLost], [['third'], ['other'], 1, 0], 'dropped before any tick')
    await bp.publish({ type: 'presence', origin: 'other', amid: 'am-x', status: 'offline' })
    assert.deepEqual(view.list().map(p => p.id), ['third'], 'a straggler from a node that left does not make it a peer again')
    t += 10_000
    view.tick()
    assert.deepEqual([gone, view.peersLost], [['third'], 1], 'the silent one is lost, the one that left is not')
    // its own node:leaving is no peer's
    await bp.publish({ type: 'node:leaving', origin: 'me' })
    assert.deepEqual(left, ['other'])
    said.length = 0
    await view.leave()
    assert.deepEqual(said, [{ type: 'node:leaving', origin: 'me' }])
    await bp.publish({ type: 'node:leaving', origin: 'late' })
    assert.deepEqual(left, ['other'], 'no longer listening once it left')
    // a stopped backplane: leave() does not reject, the error goes to onError
    const errors: unknown[] = []
    const bp2 = inProcessBackplane()
    const view2 = new ClusterView({ node: 'me', backplane: bp2, now: () => t, heartbeatMs: 1000, peerTimeoutMs: 3000, onPeerGone: () => {}, onError: (err) => { errors.push(err) } })
    bp2.stop()
    await view2.leave()
    assert.equal((errors[0] as { code?: string }).code, 'AM_ERR_SHUTTING_DOWN')
  })

  it('cluster - peers kept, and ids that left, are bounded by maxPeers', async () => {
    const bp = inProcessBackplane()
    const view = new ClusterView({ node: 'me', backplane: bp, now: () => 1, heartbeatMs: 1000, peerTimeoutMs: 3000, maxPeers: 2, onPeerGone: () => {}, onError: () => {} })
    for (const id of ['a', 'b', 'c']) await bp.publish({ type: 'node:heartbeat', origin: id })
    assert.deepEqual(view.list().map(p => p.id).sort(), ['a', 'b'])
    // the ids that left are kept as many: the oldest is forgotten first
    for (const id of ['a', 'b', 'c']) await bp.publish({ type: 'node:leaving', origin: id })
    for (const id of ['a', 'b', 'c']) await bp.publish({ type: 'node:heartbeat', origin: id })
    assert.deepEqual(view.list().map(p => p.id), ['a'], 'b and c are remembered as left, a (the oldest) was forgotten')
    view.stop()
  })

  it('cluster - clusterPeerTimeoutMs must be more than clusterHeartbeatMs', () => {
    assert.throws(() => relayOptions({ clusterHeartbeatMs: 5000, clusterPeerTimeoutMs: 5000 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'AM_ERR_INVALID_CONFIG')
      assert.equal(err.message, 'relay option clusterPeerTimeoutMs must be more than clusterHeartbeatMs (5000), got 5000')
      return true
    })
  })
})

describe('cluster - two relays on one backplane', () => {
  it('cluster - /api/v1/info and /metrics show the node and its peer; a node that goes silent is dropped and its agent goes offline for a watcher on the other node', async (t) => {
    const store = memoryStore()
    const shared = { ...store, close: async () => {} }
    const bp = inProcessBackplane()
    const apiKey = 'cluster-test-operator-key-0123456789'
    const init = { clusterHeartbeatMs: 20, clusterPeerTimeoutMs: 200, apiKey }
    const scrape = async (url: string): Promise<string> => await (await fetch(`${url}/metrics`, { headers: { 'X-API-Key': apiKey } })).text()
    const one = await startRelay(init, { store: shared, backplane: bp })
    const two = await startRelay(init, { store: shared, backplane: bp })
    t.after(async () => { await one.close(); await two.close(); await store.close() })
    type Info = { node: { id: string, peers: Array<{ id: string, last_seen: string }>, heartbeat_ms: number, peer_timeout_ms: number } }
    const info = async (url: string): Promise<Info> => (await (await fetch(`${url}/api/v1/info`)).json()) as Info
    await waitFor(async () => (await info(one.url)).node.peers.length === 1 && (await info(two.url)).node.peers.length === 1, 'each relay to hear the other')
    const [a, b] = [await info(one.url), await info(two.url)]
    assert.notEqual(a.node.id, b.node.id)
    assert.deepEqual([a.node.peers[0]!.id, b.node.peers[0]!.id], [b.node.id, a.node.id])
    assert.ok(!Number.isNaN(Date.parse(a.node.peers[0]!.last_seen)))
    assert.deepEqual([a.node.heartbeat_ms, a.node.peer_timeout_ms], [20, 200])
    const metrics = await scrape(one.url)
    assert.ok(metrics.includes(`agentmesh_node_info{node="${a.node.id}"} 1`), 'node id in /metrics')
    assert.match(metrics, /^agentmesh_cluster_peers 1$/m)
    assert.ok(metrics.includes(`agentmesh_cluster_peer_last_seen_seconds{peer="${b.node.id}"}`))

    // a third node that says dave is online on it, then dies without a word
    const carol = await connect({ server: one.url, identity: createIdentity('carol'), state: memoryState() })
    t.after(async () => { await carol.close() })
    const dave = createIdentity('dave')
    const heard: string[] = []
    carol.watch([dave.amid])
    void (async () => { for await (const e of carol.events() as AsyncIterable<ChatEvent>) if (e.type === 'presence' && e.amid === dave.amid) heard.push(String(e.status)) })()
    const ghost = setInterval(() => { void bp.publish({ type: 'node:heartbeat', origin: 'ghost' }) }, 20)
    await bp.publish({ type: 'presence', origin: 'ghost', amid: dave.amid, status: 'online' })
    await waitFor(() => heard.includes('online'), 'carol to hear dave online (on the ghost node)')
    await waitFor(async () => (await info(one.url)).node.peers.some(p => p.id === 'ghost'), 'the ghost to be a peer')
    clearInterval(ghost)
    await waitFor(() => heard.includes('offline'), 'carol to hear dave offline once the ghost is silent')
    assert.deepEqual(heard, ['online', 'offline'])
    const after = await info(one.url)
    assert.deepEqual(after.node.peers.map(p => p.id), [b.node.id], 'the live peer stays, the silent one is gone')
    assert.match(await scrape(one.url), /^agentmesh_cluster_peers_lost_total 1$/m)
  })
})

describe('cluster - a relay that stops cleanly', () => {
  it('cluster - the other node drops it at once (long before clusterPeerTimeoutMs), counts it as left not lost, and its agent goes offline for a watcher there', async (t) => {
    const store = memoryStore()
    const shared = { ...store, close: async () => {} }
    const bp = inProcessBackplane()
    const apiKey = 'cluster-test-operator-key-0123456789'
    // a peer timeout no test waits out: only node:leaving can drop the closed node in time
    const init = { clusterHeartbeatMs: 20, clusterPeerTimeoutMs: 600_000, apiKey }
    const scrape = async (url: string): Promise<string> => await (await fetch(`${url}/metrics`, { headers: { 'X-API-Key': apiKey } })).text()
    const one = await startRelay(init, { store: shared, backplane: bp })
    const two = await startRelay(init, { store: shared, backplane: bp })
    t.after(async () => { await one.close(); await two.close(); await store.close() })
    type Info = { node: { id: string, peers: Array<{ id: string }> } }
    const info = async (url: string): Promise<Info> => (await (await fetch(`${url}/api/v1/info`)).json()) as Info
    await waitFor(async () => (await info(two.url)).node.peers.length === 1, 'two to hear one')
    const carol = await connect({ server: two.url, identity: createIdentity('carol'), state: memoryState() })
    t.after(async () => { await carol.close() })
    const dave = createIdentity('dave')
    const heard: string[] = []
    carol.watch([dave.amid])
    void (async () => { for await (const e of carol.events() as AsyncIterable<ChatEvent>) if (e.type === 'presence' && e.amid === dave.amid) heard.push(String(e.status)) })()
    const dc = await connect({ server: one.url, identity: dave, state: memoryState() })
    t.after(async () => { await dc.close() })
    await waitFor(() => heard.includes('online'), 'carol to hear dave online (on node one)')
    const said: BackplaneMessage[] = []
    bp.subscribe((m) => { said.push(m) })
    await one.close()
    await waitFor(async () => (await info(two.url)).node.peers.length === 0, 'two to drop one')
    await waitFor(() => heard.lastIndexOf('offline') > heard.indexOf('online'), 'carol to hear dave offline')
    // (the watch may first answer dave's status then: offline)
    assert.deepEqual(heard.slice(heard.indexOf('online')), ['online', 'offline'])
    const oneId = said.find(m => m.type === 'node:leaving')?.origin
    assert.ok(oneId !== undefined, 'node:leaving said')
    const fromOne = said.filter(m => m.origin === oneId)
    assert.deepEqual(fromOne.at(-1), { type: 'node:leaving', origin: oneId }, 'node:leaving is the last thing it says')
    assert.equal(fromOne.filter(m => m.type === 'node:leaving').length, 1)
    assert.ok(fromOne.some(m => m.type === 'presence' && m.amid === dave.amid && m.status === 'offline'), 'its agent\'s offline presence before it')
    const metrics = await scrape(two.url)
    assert.match(metrics, /^agentmesh_cluster_peers_left_total 1$/m)
    assert.match(metrics, /^agentmesh_cluster_peers_lost_total 0$/m)
  })
})
