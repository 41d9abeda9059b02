import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { swarm, type Swarm, type SwarmInit } from '@agentmesh/swarm/net'
import { internals } from '@agentmesh/swarm/net/internal'
import { chooseLinks, encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { RTT_TAG, linkScope } from '../src/net/region-links.ts'
import { LOOPBACK, TEST_LIMITS, until, collect, stopNet } from './net-helpers.ts'

/** Starts nodes with the given regions; each dials every node started before it (a small full mesh of connections). */
async function startRegions (regions: readonly string[], extra: Partial<SwarmInit> = {}): Promise<{ nodes: Swarm[], ids: Identity[] }> {
  const nodes: Swarm[] = []
  const ids: Identity[] = []
  for (const region of regions) {
    const id = createIdentity()
    ids.push(id)
    nodes.push(await swarm({
      keys: id, region, ipColocationWhitelist: LOOPBACK, ...extra,
      bootstrap: nodes.map(s => s.multiaddrs()[0]!),
      // one link per region (regions of 3); every node here dials up to 9 others from one address at once
      limits: { ...TEST_LIMITS, regionLinks: 1, inboundConnectionsPerHostPerS: 100, ...extra.limits },
    }))
  }
  return { nodes, ids }
}

const topic = 'ops'
const isLink = (s: Swarm): boolean => internals(s).regions.state(topic)?.link === true
const regionMesh = (s: Swarm): string[] => internals(s).gossip.getMeshPeers(`${topic}#region/${s.region}`)
const backboneMesh = (s: Swarm): string[] => internals(s).gossip.getMeshPeers(topic)

test('swarm regions - three regions of three and a node without region: local meshes, one link per region, every message reaches every node once, a failed link is replaced', { timeout: 90_000 }, async () => {
  const regions = ['eu', 'eu', 'eu', 'us', 'us', 'us', 'ap', 'ap', 'ap', 'default']
  const net = await startRegions(regions)
  const { nodes } = net
  const regionOf = new Map(nodes.map(s => [s.peerId, s.region]))
  const live = new Set(nodes.map((_, i) => i))
  const inRegion = (r: string): number[] => [...live].filter(i => nodes[i]!.region === r)
  try {
    const logs = nodes.map(s => collect(s.subscribe(topic)))
    const settled = (): boolean => ['eu', 'us', 'ap'].every((r) => {
      const members = inRegion(r)
      const links = members.filter(i => isLink(nodes[i]!))
      // (at start every node is briefly its own link: until its former backbone peers have
      // processed its unsubscription, a region-mate can still be in a link's backbone mesh)
      return links.length === 1 &&
        members.every(i => internals(nodes[i]!).regions.state(topic)!.links.join(',') === nodes[links[0]!]!.peerId) &&
        members.every(i => regionMesh(nodes[i]!).length === members.length - 1) &&
        backboneMesh(nodes[links[0]!]!).length >= 1 &&
        backboneMesh(nodes[links[0]!]!).every(p => regionOf.get(p) !== r)
    }) && backboneMesh(nodes[9]!).length >= 3
    await until(settled, 30_000, 'one link per region that all its members elect, full regional meshes, links meshed on the backbone with other regions only')

    // every node of a region elects the same link; the node without region stays on the backbone only
    for (const r of ['eu', 'us', 'ap']) {
      const views = inRegion(r).map(i => internals(nodes[i]!).regions.state(topic)!.links)
      assert.equal(new Set(views.map(v => v.join(','))).size, 1, `region ${r}: one view of its links`)
      assert.deepEqual(views[0], [nodes[inRegion(r).find(i => isLink(nodes[i]!))!]!.peerId])
    }
    assert.equal(internals(nodes[9]!).regions.state(topic), undefined)
    assert.deepEqual(internals(nodes[9]!).gossip.getTopics(), [topic])

    // a non-link node: subscribed to its region topic only, mesh peers only in its region
    for (const i of live) {
      const s = nodes[i]!
      if (s.region === 'default') continue
      for (const p of regionMesh(s)) assert.equal(regionOf.get(p), s.region, `node ${i}: mesh peer in its region`)
      if (isLink(s)) {
        assert.deepEqual(internals(s).gossip.getTopics().sort(), [topic, `${topic}#region/${s.region}`].sort())
        for (const p of backboneMesh(s)) assert.ok(regionOf.get(p) !== s.region, `link ${i}: backbone mesh peers are other regions' links or default nodes`)
      } else {
        assert.deepEqual(internals(s).gossip.getTopics(), [`${topic}#region/${s.region}`], `node ${i}: region topic only`)
        assert.deepEqual(backboneMesh(s), [])
        assert.ok(s.peers(topic).every(p => regionOf.get(p.peerId) === s.region), `node ${i}: peers(topic) lists its region's members`)
      }
    }

    // latency-aware pruning: a region-mate is worth 50 or more to the connection manager, any
    // other peer at most 49 (its RTT part; libp2p's connection monitor measures it every 10 s)
    const tagsOf = async (s: Swarm): Promise<Map<string, number | undefined>> => {
      const node = internals(s).node
      const out = new Map<string, number | undefined>()
      for (const p of node.getPeers()) out.set(p.toString(), (await node.peerStore.get(p)).tags.get(RTT_TAG)?.value)
      return out
    }
    let tags = new Map<string, number | undefined>()
    const tagged = (p: string, v: number | undefined): boolean => v !== undefined && (v >= 50) === (regionOf.get(p) === 'eu')
    await until(() => { void tagsOf(nodes[0]!).then((t) => { tags = t }); return tags.size === 9 && [...tags].every(([p, v]) => tagged(p, v)) }, 15_000, 'tags on node 0')
    for (const [p, v] of tags) assert.ok(tagged(p, v), `node 0's tag on a peer of ${regionOf.get(p)}: ${v}`)

    // from a non-link node of eu, from a node of ap, from the node without region
    const from = [inRegion('eu').find(i => !isLink(nodes[i]!))!, inRegion('ap')[0]!, 9]
    const sent = []
    for (const i of from) sent.push(await nodes[i]!.publish(topic, { from: i }))
    await until(() => [...live].every(i => logs[i]!.length >= 3), 20_000, 'every node to deliver the three messages')
    await new Promise(resolve => setTimeout(resolve, 600)) // a duplicate would show up now
    for (const i of live) assert.deepEqual(logs[i]!.map(d => d.id).sort(), sent.map(p => p.id).sort(), `node ${i}: each message once`)

    // the link of us fails: the next-ranked member of us takes over, the other links stay
    const oldLink = inRegion('us').find(i => isLink(nodes[i]!))!
    const otherLinks = ['eu', 'ap'].map(r => inRegion(r).find(i => isLink(nodes[i]!))!)
    const electedBefore = new Map(inRegion('us').map(i => [i, internals(nodes[i]!).regions.state(topic)!.elected]))
    await nodes[oldLink]!.close()
    live.delete(oldLink)
    const linksSeen = (i: number): string => internals(nodes[i]!).regions.state(topic)!.links.join(',')
    await until(() => {
      const links = inRegion('us').filter(i => isLink(nodes[i]!))
      return links.length === 1 && inRegion('us').every(i => linksSeen(i) === nodes[links[0]!]!.peerId)
    }, 15_000, 'a new link in us, seen by both members')
    const newLink = inRegion('us').find(i => isLink(nodes[i]!))!
    // the next-ranked of the region's three by the rendezvous rule
    assert.deepEqual(chooseLinks(linkScope(topic, 'us'), [...inRegion('us'), oldLink].map(i => nodes[i]!.peerId), 2), [nodes[oldLink]!.peerId, nodes[newLink]!.peerId])
    assert.equal(internals(nodes[newLink]!).regions.state(topic)!.elected, electedBefore.get(newLink)! + 1, 'the new link was elected once more')
    assert.deepEqual(['eu', 'ap'].map(r => inRegion(r).find(i => isLink(nodes[i]!))!), otherLinks)

    const before = logs.map(l => l.length)
    const m = await nodes[inRegion('eu').find(i => !isLink(nodes[i]!))!]!.publish(topic, 'after the failover')
    const m2 = await nodes[inRegion('us').find(i => !isLink(nodes[i]!))!]!.publish(topic, 'from us after the failover')
    await until(() => [...live].every(i => logs[i]!.length >= before[i]! + 2), 30_000, 'both messages everywhere after the failover')
    await new Promise(resolve => setTimeout(resolve, 600))
    for (const i of live) assert.deepEqual(logs[i]!.slice(before[i]!).map(d => d.id).sort(), [m.id, m2.id].sort(), `node ${i}: each once after the failover`)
  } finally {
    await stopNet({ nodes: [...live].map(i => nodes[i]!), ids: [] })
  }
})

test('swarm regions - region auto: takes the region most of its lowest-RTT first peers advertise, then advertises it; no peer: default', { timeout: 60_000 }, async () => {
  const net = await startRegions(['eu', 'eu', 'us'], { limits: { regionLinks: 3 } })
  const started: Swarm[] = []
  try {
    const auto = await swarm({ keys: createIdentity(), region: 'auto', ipColocationWhitelist: LOOPBACK, bootstrap: net.nodes.map(s => s.multiaddrs()[0]!), limits: { ...TEST_LIMITS } })
    started.push(auto)
    assert.equal(auto.region, 'eu')
    const alone = await swarm({ keys: createIdentity(), region: 'auto', limits: { ...TEST_LIMITS, autoRegionTimeoutMs: 200 } })
    started.push(alone)
    assert.equal(alone.region, 'default')
    // a node that connects now reads region=eu in the auto node's identify answer
    const later = await swarm({ keys: createIdentity(), ipColocationWhitelist: LOOPBACK, bootstrap: [auto.multiaddrs()[0]!], limits: { ...TEST_LIMITS } })
    started.push(later)
    const node = internals(later).node
    await until(() => node.getPeers().length === 1, 10_000, 'the connection')
    let agent = ''
    await until(() => {
      void node.peerStore.get(node.getPeers()[0]!).then((p) => { agent = new TextDecoder().decode(p.metadata.get('AgentVersion')) }).catch(() => {})
      return agent !== ''
    }, 10_000, 'identify')
    assert.equal(agent, 'agentmesh-swarm/1 region=eu')
    // and it gossips with the eu nodes on the eu region topic
    const log = collect(auto.subscribe(topic))
    net.nodes.forEach(s => { s.join(topic) })
    await until(() => regionMesh(auto).length === 2, 15_000, 'the auto node in the eu mesh')
    const p = await net.nodes[0]!.publish(topic, 'to eu')
    await until(() => log.length === 1, 10_000, 'the message at the auto node')
    assert.equal(log[0]!.id, p.id)
  } finally {
    await stopNet({ nodes: [...started, ...net.nodes], ids: [] })
  }
})

test('swarm regions - a link whose score drops below 0 (it forwards forgeries) is replaced in its region, and messages keep crossing', { timeout: 60_000 }, async () => {
  const net = await startRegions(['eu', 'eu', 'eu', 'us', 'us', 'us'])
  const { nodes } = net
  try {
    const logs = nodes.map(s => collect(s.subscribe(topic)))
    const eu = [0, 1, 2]
    const linksSeen = (i: number): string => internals(nodes[i]!).regions.state(topic)!.links.join(',')
    await until(() => [eu, [3, 4, 5]].every(r => r.filter(i => isLink(nodes[i]!)).length === 1 && new Set(r.map(linksSeen)).size === 1), 20_000, 'one agreed link per region')
    const bad = eu.find(i => isLink(nodes[i]!))!
    const honest = eu.filter(i => i !== bad)
    // five forgeries: -100 each, under the graylist threshold (-400), so nothing it sends counts
    // any more and the messages below can only cross through the new link
    for (let k = 1; k <= 5; k++) {
      const m = signSwarmMessage(net.ids[bad]!, { topic, seq: k, body: 'real' })
      await internals(nodes[bad]!).publishRaw(`${topic}#region/eu`, encodeSwarmMessage({ ...m, body: 'forged' }))
    }
    await until(() => honest.every(i => internals(nodes[i]!).gossip.getScore(nodes[bad]!.peerId) < -400), 10_000, 'the forger graylisted by its region-mates')
    await until(() => new Set(honest.map(linksSeen)).size === 1 && honest.some(i => isLink(nodes[i]!)), 10_000, 'a new link agreed by the honest members')
    assert.deepEqual(honest.filter(i => isLink(nodes[i]!)).map(i => nodes[i]!.peerId), [linksSeen(honest[0]!)])
    assert.ok(!linksSeen(honest[0]!).includes(nodes[bad]!.peerId))

    const fromUs = await nodes[[3, 4, 5].find(i => !isLink(nodes[i]!))!]!.publish(topic, 'from us')
    const fromEu = await nodes[honest.find(i => !isLink(nodes[i]!))!]!.publish(topic, 'from eu')
    const good = [...honest, 3, 4, 5]
    await until(() => good.every(i => logs[i]!.length >= 2), 20_000, 'both messages at every honest node')
    await new Promise(resolve => setTimeout(resolve, 600))
    for (const i of good) assert.deepEqual(logs[i]!.map(d => d.id).sort(), [fromUs.id, fromEu.id].sort(), `node ${i}: each once, the forgery never`)
  } finally {
    await stopNet(net)
  }
})
