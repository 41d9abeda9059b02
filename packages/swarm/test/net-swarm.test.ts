import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startNet, stopNet, until, collect } from './net-helpers.ts'

test('swarm net - 8 nodes on 127.0.0.1: each message published on one node reaches every node, once each, in order per author', { timeout: 60_000 }, async () => {
  const net = await startNet(8)
  try {
    const topic = 'weather'
    const logs = net.nodes.map(s => collect(s.subscribe(topic)))
    await until(() => net.nodes.every(s => s.peers(topic).some(p => p.mesh)), 15_000, 'every node to have a mesh peer')
    const a = await net.nodes[3]!.publish(topic, { t: 21 }, { type: 'reading' })
    const b = await net.nodes[3]!.publish(topic, { t: 22 })
    const c = await net.nodes[7]!.publish(topic, 'from seven')
    assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 1])
    await until(() => logs.every(l => l.length >= 3), 15_000, 'every node to deliver 3 messages')
    for (const [i, log] of logs.entries()) {
      // once each: exactly the three ids, no more
      assert.deepEqual(log.map(d => d.id).sort(), [a.id, b.id, c.id].sort(), `node ${i}`)
      const fromThree = log.filter(d => d.author === net.ids[3]!.amid)
      assert.deepEqual(fromThree.map(d => [d.seq, d.body, d.type]), [[1, { t: 21 }, 'reading'], [2, { t: 22 }, undefined]], `node ${i}`)
      const seven = log.find(d => d.author === net.ids[7]!.amid)
      assert.equal(seven?.body, 'from seven')
      assert.equal(seven?.via, i === 7 ? 'self' : 'gossip')
    }
    // nothing more arrives later (duplicates are dropped, not delivered)
    await new Promise(resolve => setTimeout(resolve, 600))
    assert.deepEqual(logs.map(l => l.length), new Array(8).fill(3))
  } finally {
    await stopNet(net)
  }
})
