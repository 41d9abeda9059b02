import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { createPartitionDetector, swarm } from '@agentmesh/swarm/net'
import { TopicLog, deliveryOf } from '../src/net/topic-log.ts'
import { DecodeCache } from '../src/net/msg-id.ts'

test('partition detector - reports a loss of half the recent peers once, then the heal with its duration', () => {
  const d = createPartitionDetector({ lossShare: 0.5, healShare: 0.75, minPeers: 3 })
  const seen: unknown[] = []
  const feed = (peers: number, at: number): void => { const e = d.observe(peers, at); if (e !== undefined) seen.push(e) }
  for (let t = 0; t < 5; t++) feed(8, t * 1000)
  feed(5, 5000) // lost 3 of 8: not half
  assert.deepEqual(seen, [])
  feed(4, 6000) // 4 > 0.5 x 7.92 (the reference decays 1% a round without a new high)
  assert.deepEqual(seen, [])
  feed(3, 6000)
  assert.equal(seen.length, 1)
  assert.deepEqual(seen[0], { type: 'detected', at: 6000, peers: 3, reference: 8 * 0.99 ** 2 })
  assert.equal(d.partitioned, true)
  assert.equal(d.since, 6000)
  feed(2, 7000); feed(5, 8000) // still partitioned, no second report
  assert.equal(seen.length, 1)
  feed(6, 9000) // ceil(0.75 x 7.84) = 6
  assert.equal(seen.length, 2)
  assert.deepEqual(seen[1], { type: 'healed', at: 9000, peers: 6, reference: 8 * 0.99 ** 2, durationMs: 3000 })
  assert.equal(d.partitioned, false)
})

test('partition detector - a node with fewer than minPeers is never partitioned; slow churn raises no alarm', () => {
  const d = createPartitionDetector({ lossShare: 0.5, healShare: 0.75, minPeers: 3 })
  assert.equal(d.observe(2, 0), undefined)
  assert.equal(d.observe(0, 1), undefined)
  const e = createPartitionDetector({ lossShare: 0.5, healShare: 0.75, minPeers: 3 })
  let events = 0
  // lose one peer every 100 rounds, from 10 down to 3: the reference follows, no alarm
  let peers = 10
  for (let r = 0; r < 700; r++) { if (r % 100 === 99) peers--; if (e.observe(peers, r) !== undefined) events++ }
  assert.equal(events, 0)
})

test('topic log - each subscriber reads every delivery once, in order; a reader past the bound ends with AM_ERR_SLOW_CONSUMER', async () => {
  const id = createIdentity()
  const log = new TopicLog('t', 3)
  const m = (seq: number) => deliveryOf(signSwarmMessage(id, { topic: 't', seq, body: seq }), 'gossip', seq)
  const early = log.subscribe()
  log.push(m(1))
  const late = log.subscribe({ from: 'now' })
  log.push(m(2))
  assert.deepEqual((await early.next()).value?.seq, 1)
  assert.deepEqual((await early.next()).value?.seq, 2)
  assert.deepEqual((await late.next()).value?.seq, 2)
  const pending = late.next()
  log.push(m(3))
  assert.equal((await pending).value?.seq, 3)
  for (let s = 4; s <= 8; s++) log.push(m(s))
  await assert.rejects(early.next(), (e: unknown) => AgentMeshError.is(e, ErrorCode.SlowConsumer))
  const fresh = log.subscribe()
  assert.deepEqual([(await fresh.next()).value?.seq, (await fresh.next()).value?.seq, (await fresh.next()).value?.seq], [6, 7, 8])
  log.close()
  assert.equal((await fresh.next()).done, true)
})

test('gossip id - covers content and signature: a re-signed or tampered copy gets another id, another encoding of the same message the same one', () => {
  const a = createIdentity()
  const c = new DecodeCache(64 * 1024)
  const m = signSwarmMessage(a, { topic: 't', seq: 1, body: { x: 1 } })
  const id = Buffer.from(c.msgId(encodeSwarmMessage(m))).toString('hex')
  const reordered = new TextEncoder().encode(JSON.stringify({ sig: m.sig, body: m.body, ts: m.ts, id: m.id, seq: m.seq, author: m.author, topic: m.topic, v: m.v }))
  assert.equal(Buffer.from(c.msgId(reordered)).toString('hex'), id)
  const badSig = { ...m, sig: m.sig.slice(0, -2) + (m.sig.endsWith('AA') ? 'BA' : 'AA') }
  assert.notEqual(Buffer.from(c.msgId(encodeSwarmMessage(badSig))).toString('hex'), id)
  const tampered = { ...m, body: { x: 2 } } // claims m's id, other content
  assert.notEqual(Buffer.from(c.msgId(encodeSwarmMessage(tampered))).toString('hex'), id)
  assert.equal(c.msgId(new TextEncoder().encode('not json')).length, 20)
})

test('swarm options - bad limits, region, bootstrap and topics are refused with AM_ERR_INVALID_ARGUMENT before any I/O', async () => {
  const keys = createIdentity()
  const bad = async (init: object, re: RegExp): Promise<void> => {
    await assert.rejects(swarm({ keys, ...init }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && re.test(e.message))
  }
  await bad({ limits: { maxTopics: -1 } }, /maxTopics/)
  await bad({ limits: { partitionLossShare: 1.5 } }, /partitionLossShare/)
  await bad({ limits: { meshDegreeLow: 9, meshDegree: 6 } }, /meshDegreeLow/)
  await bad({ region: 'Not A Region' }, /region/)
  await bad({ bootstrap: ['not-a-multiaddr'] }, /bootstrap/)
  const s = await swarm({ keys, limits: { maxTopics: 1 }, lastSeq: (t) => t === 'one' ? 41 : -1 })
  try {
    assert.throws(() => { s.join('bad topic!') }, (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    s.join('one')
    assert.equal(s.lastSeq('one'), 41)
    assert.equal((await s.publish('one', 'next')).seq, 42)
    assert.throws(() => s.lastSeq('two'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /lastSeq/.test(e.message))
    assert.throws(() => { s.join('two') }, (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /maxTopics/.test(e.message))
    assert.deepEqual(s.topics(), ['one'])
  } finally {
    await s.close()
  }
})
