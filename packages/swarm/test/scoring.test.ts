import { it } from 'node:test'
import assert from 'node:assert/strict'
import { peerScore, scoreDecay, chooseLinks, linkWeight, SWARM_SCORE_THRESHOLDS as T, SWARM_MESH } from '../src/index.ts'

const zero = { timeInMeshMs: 0, firstDeliveries: 0, invalidDeliveries: 0, behaviourPenalty: 0 }

it('scoring - one invalid message takes a peer under the gossip threshold, three under the graylist threshold', () => {
  assert.equal(peerScore(zero), 0)
  const best = { timeInMeshMs: 10 * 3600_000, firstDeliveries: 1000, invalidDeliveries: 0, behaviourPenalty: 0 }
  assert.equal(peerScore(best), 30, 'P1 caps at 10, P2 at 20')
  assert.ok(peerScore({ ...best, invalidDeliveries: 1 }) < T.gossipThreshold)
  assert.ok(peerScore({ ...best, invalidDeliveries: 3 }) < T.graylistThreshold)
  assert.equal(peerScore({ ...zero, behaviourPenalty: 2 }), 0, 'at the behaviour threshold: no penalty')
  assert.equal(peerScore({ ...zero, behaviourPenalty: 4 }), -40)
  assert.ok(SWARM_MESH.Dlo < SWARM_MESH.D && SWARM_MESH.D < SWARM_MESH.Dhi)
})

it('scoring - scoreDecay takes a counter to 1% in the given time', () => {
  const d = scoreDecay(10_000)
  assert.ok(Math.abs(Math.pow(d, 10) - 0.01) < 1e-12)
})

it('regions - links are deterministic, independent of input order, and move only the failed one', () => {
  const nodes = Array.from({ length: 50 }, (_, i) => `node-${i}`)
  const links = chooseLinks('t/eu', nodes, 3)
  assert.equal(links.length, 3)
  assert.deepEqual(chooseLinks('t/eu', [...nodes].reverse(), 3), links)
  const failed = links[1]
  const again = chooseLinks('t/eu', nodes.filter(n => n !== failed), 3)
  assert.deepEqual(again.slice(0, 2), [links[0], links[2]])
  assert.ok(!again.includes(failed))
  assert.notDeepEqual(chooseLinks('t/us', nodes, 3), links, 'another scope ranks differently')
  assert.equal(linkWeight('a', 'b'), linkWeight('a', 'b'))
  assert.deepEqual(chooseLinks('x', [], 3), [])
})
