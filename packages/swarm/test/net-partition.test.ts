import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PeerId } from '@libp2p/interface'
import { internals } from '@agentmesh/swarm/net/internal'
import { startNet, stopNet, until, collect } from './net-helpers.ts'

test('swarm net - a partition made by cutting links is detected, both sides keep working, and the heal delivers every message once on both sides', { timeout: 120_000 }, async () => {
  const N = 8
  const blocked = Array.from({ length: N }, () => new Set<string>())
  const gater = (i: number) => ({
    denyDialPeer: (p: PeerId) => blocked[i]!.has(p.toString()),
    denyInboundEncryptedConnection: (p: PeerId) => blocked[i]!.has(p.toString()),
    denyOutboundEncryptedConnection: (p: PeerId) => blocked[i]!.has(p.toString()),
  })
  // a lower loss share than the default: in this small net most nodes lose a third to a half of their peers
  const net = await startNet(N, (i) => ({ connectionGater: gater(i), limits: { partitionLossShare: 0.3 } }))
  const side = (i: number): 'A' | 'B' => i < N / 2 ? 'A' : 'B'
  const detected = new Set<number>()
  const healed = new Set<number>()
  net.nodes.forEach((s, i) => {
    s.on('partition:detected', () => detected.add(i))
    s.on('partition:healed', () => healed.add(i))
  })
  try {
    const topic = 'ops'
    const logs = net.nodes.map(s => collect(s.subscribe(topic)))
    await until(() => net.nodes.every(s => s.peers(topic).some(p => p.mesh)), 15_000, 'every node to have a mesh peer')
    const before = await net.nodes[0]!.publish(topic, 'before the cut')
    await until(() => logs.every(l => l.length === 1), 15_000, 'the first message everywhere')

    // cut: block every cross-side peer and close the links
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (side(i) !== side(j)) blocked[i]!.add(net.nodes[j]!.peerId)
    await Promise.all(net.nodes.map(async (s, i) => {
      const node = internals(s).node
      await Promise.all(node.getPeers().filter(p => blocked[i]!.has(p.toString())).map(async p => await node.hangUp(p)))
    }))
    await until(() => [...detected].some(i => side(i) === 'A') && [...detected].some(i => side(i) === 'B'), 15_000, 'a partition detected on both sides')

    // both sides keep working on their own
    const a1 = await net.nodes[1]!.publish(topic, 'A one')
    const a2 = await net.nodes[2]!.publish(topic, 'A two')
    const b1 = await net.nodes[6]!.publish(topic, 'B one')
    const b2 = await net.nodes[6]!.publish(topic, 'B two')
    const sideIds = { A: [before.id, a1.id, a2.id], B: [before.id, b1.id, b2.id] }
    await until(() => logs.every((l, i) => l.length === 3), 15_000, 'each side to deliver its own messages')
    for (const [i, l] of logs.entries()) assert.deepEqual(l.map(d => d.id).sort(), [...sideIds[side(i)]].sort(), `node ${i} during the cut`)

    // heal: unblock; the nodes redial and reconcile
    for (const b of blocked) b.clear()
    const all = [before.id, a1.id, a2.id, b1.id, b2.id].sort()
    await until(() => logs.every(l => l.length >= 5), 30_000, 'every node to have all five messages')
    await until(() => [...detected].every(i => healed.has(i)), 15_000, 'every detecting node to report the heal')
    await new Promise(resolve => setTimeout(resolve, 1000)) // anything duplicated would show up now
    for (const [i, l] of logs.entries()) {
      assert.deepEqual(l.map(d => d.id).sort(), all, `node ${i} after the heal: each message once`)
    }
    const viaReconcile = logs.flat().filter(d => d.via === 'reconcile').length
    assert.ok(viaReconcile >= 1, 'the reconcile protocol recovered at least one message')
  } finally {
    await stopNet(net)
  }
})
