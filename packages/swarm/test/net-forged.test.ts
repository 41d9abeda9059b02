import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeSwarmMessage, signSwarmMessage, swarmMessageId } from '@agentmesh/swarm'
import { internals } from '@agentmesh/swarm/net/internal'
import { startNet, stopNet, until, collect } from './net-helpers.ts'

test('swarm net - a node that forwards forged messages is pushed out by scoring and its forgeries never reach the application', { timeout: 90_000 }, async () => {
  const FORGER = 2
  const net = await startNet(8)
  try {
    const topic = 'market'
    const logs = net.nodes.map(s => collect(s.subscribe(topic)))
    await until(() => net.nodes.every(s => s.peers(topic).some(p => p.mesh)), 15_000, 'every node to have a mesh peer')
    const forger = net.nodes[FORGER]!
    const fid = net.ids[FORGER]!
    const victim = net.ids[5]!
    const neighbours = net.nodes.map((s, i) => i).filter(i => i !== FORGER && net.nodes[i]!.peers().some(p => p.amid === fid.amid))
    assert.ok(neighbours.length >= 3, `the forger has ${neighbours.length} neighbours`)

    // forgeries: another author's AMID under the forger's signature, and a body changed after signing
    const forged: Uint8Array[] = []
    for (let seq = 1; seq <= 3; seq++) {
      const own = signSwarmMessage({ ...fid }, { topic, seq, body: { pay: seq } })
      const asVictim = { ...own, author: victim.amid }
      forged.push(encodeSwarmMessage({ ...asVictim, id: swarmMessageId(asVictim) }))
      const tampered = { ...own, body: { pay: 1000 * seq } }
      forged.push(encodeSwarmMessage(tampered))
    }
    for (const f of forged) await internals(forger).publishRaw(topic, f)

    // every neighbour scores the forger below zero and drops it from its mesh
    await until(() => neighbours.every(i => {
      const p = net.nodes[i]!.peers(topic).find(q => q.amid === fid.amid)
      return p === undefined || (p.score < 0 && !p.mesh)
    }), 15_000, 'the neighbours to prune the forger')
    for (const i of neighbours) {
      const gossip = internals(net.nodes[i]!).gossip
      const score = gossip.getScore(forger.peerId)
      assert.ok(score <= -400, `node ${i} scores the forger ${score}, not below the graylist threshold`)
      assert.equal(gossip.getMeshPeers(topic).includes(forger.peerId), false, `node ${i} keeps the forger in its mesh`)
    }

    // honest traffic still flows everywhere else
    const ok = await net.nodes[5]!.publish(topic, { honest: true })
    const honest = logs.filter((_, i) => i !== FORGER)
    await until(() => honest.every(l => l.some(d => d.id === ok.id)), 15_000, 'the honest message to reach every honest node')
    for (const [i, log] of logs.entries()) {
      if (i === FORGER) continue
      assert.deepEqual(log.map(d => [d.author, d.seq, d.body]), [[victim.amid, 1, { honest: true }]], `node ${i} delivered only the honest message`)
    }
  } finally {
    await stopNet(net)
  }
})
