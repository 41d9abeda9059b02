import { it } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { RangeSet, diff, checkSummary, createSwarmStore, createValidator, signSwarmMessage, swarmMessageId, type SwarmMessage } from '../src/index.ts'

const alice = createIdentity('alice')
const bob = createIdentity('bob')
const msg = (who: typeof alice, seq: number): SwarmMessage => signSwarmMessage(who, { topic: 't', seq, body: `${who.name ?? ''}#${seq}`, ts: 0 })

it('reconcile - a range set joins adjacent numbers, answers membership and what another set adds', () => {
  const s = new RangeSet()
  for (const n of [5, 1, 2, 3, 9, 4, 12, 11]) s.add(n)
  assert.deepEqual(s.ranges(), [[1, 5], [9, 9], [11, 12]])
  assert.equal(s.count(), 8)
  assert.deepEqual([0, 1, 5, 6, 9, 10, 12, 13].map(n => s.has(n)), [false, true, true, false, true, false, true, false])
  assert.deepEqual(s.missingFrom([[1, 15]]), [[6, 8], [10, 10], [13, 15]])
  assert.deepEqual(s.missingFrom([[2, 4], [9, 9]]), [])
  s.addRange(6, 10)
  assert.deepEqual(s.ranges(), [[1, 12]])
  assert.throws(() => s.add(0), RangeError)
})

it('reconcile - a range set beyond its bound joins its two lowest ranges (and only those)', () => {
  const s = new RangeSet(3)
  for (const n of [1, 3, 5, 7]) s.add(n)
  assert.deepEqual(s.ranges(), [[1, 3], [5, 5], [7, 7]])
})

it('reconcile - diff asks for exactly what the peer has and we do not, bounded, lowest first', () => {
  const mine = { A: [[1, 10], [15, 15]] as const, B: [[1, 2]] as const }
  const theirs = { A: [[1, 20]] as const, C: [[3, 4]] as const }
  assert.deepEqual(diff(mine, theirs), { A: [[11, 14], [16, 20]], C: [[3, 4]] })
  assert.deepEqual(diff(mine, theirs, 6), { A: [[11, 14], [16, 17]] })
  assert.deepEqual(diff(theirs, theirs), {})
})

it('reconcile - checkSummary refuses untrusted summaries that are malformed or too big', () => {
  assert.deepEqual(checkSummary({ A: [[1, 2], [4, 9]] }), { A: [[1, 2], [4, 9]] })
  for (const bad of [null, [], { A: [[2, 1]] }, { A: [[1, 5], [3, 9]] }, { A: [[0, 1]] }, { A: [[1.5, 2]] }, { A: 'x' }, { A: Array.from({ length: 257 }, (_, i) => [2 * i + 1, 2 * i + 1]) }]) {
    assert.throws(() => checkSummary(bad), RangeError, JSON.stringify(bad).slice(0, 60))
  }
})

it('reconcile - two sides of a partition exchange summaries and end with the union, each message delivered once', () => {
  const v1 = createValidator(); const v2 = createValidator()
  const left = createSwarmStore(); const right = createSwarmStore()
  const delivered = { left: [] as string[], right: [] as string[] }
  const recv = (side: 'left' | 'right', store: typeof left, v: typeof v1, m: SwarmMessage): void => {
    if (v.validate(m).result === 'accept' && store.add(m)) delivered[side].push(m.id)
  }
  // before the cut both sides saw alice 1..3
  for (let s = 1; s <= 3; s++) { recv('left', left, v1, msg(alice, s)); recv('right', right, v2, msg(alice, s)) }
  // during the cut: alice (left) publishes 4..6, bob (right) 1..4
  for (let s = 4; s <= 6; s++) recv('left', left, v1, msg(alice, s))
  for (let s = 1; s <= 4; s++) recv('right', right, v2, msg(bob, s))
  // heal: each asks the other for its diff, twice over (a repeated exchange must deliver nothing more)
  for (let round = 0; round < 2; round++) {
    const wantL = diff(left.summary(), checkSummary(right.summary()))
    const wantR = diff(right.summary(), checkSummary(left.summary()))
    for (const m of left.merge(right.serve(wantL), m => v1.validate(m).result === 'accept')) delivered.left.push(m.id)
    for (const m of right.merge(left.serve(wantR), m => v2.validate(m).result === 'accept')) delivered.right.push(m.id)
  }
  const all = [1, 2, 3, 4, 5, 6].map(s => msg(alice, s).id).concat([1, 2, 3, 4].map(s => msg(bob, s).id))
  assert.deepEqual([...delivered.left].sort(), [...all].sort())
  assert.deepEqual([...delivered.right].sort(), [...all].sort())
  assert.equal(new Set(delivered.left).size, delivered.left.length, 'no duplicate on the left')
  assert.equal(new Set(delivered.right).size, delivered.right.length, 'no duplicate on the right')
  assert.deepEqual(left.summary(), right.summary())
  assert.deepEqual(left.summary()[alice.amid], [[1, 6]])
})

it('reconcile - a merge refuses what the validator refuses (a forged message in a peer\'s answer)', () => {
  const v = createValidator()
  const store = createSwarmStore()
  const real = msg(alice, 1)
  const f = { ...real, body: 'forged' }
  const forged = { ...f, id: swarmMessageId(f) }
  const got = store.merge([forged, msg(alice, 2)], m => v.validate(m).result === 'accept')
  assert.deepEqual(got.map(m => m.seq), [2])
  assert.equal(store.knows(alice.amid, 1), false, 'the forgery did not mark seq 1 as known')
  assert.deepEqual(store.merge([real], m => v.validate(m).result === 'accept').map(m => m.id), [real.id])
})

it('reconcile - the store is bounded by count, bytes and retention (fake clock), and never re-delivers a forgotten message', () => {
  let t = 0
  const store = createSwarmStore({ maxMessages: 3, retentionMs: 1000, now: () => t })
  for (let s = 1; s <= 5; s++) assert.equal(store.add(msg(alice, s)), true)
  assert.equal(store.held().messages, 3)
  assert.deepEqual(store.serve({ [alice.amid]: [[1, 5]] }).map(m => m.seq), [3, 4, 5])
  t = 1001
  store.prune()
  assert.equal(store.held().messages, 0)
  assert.equal(store.held().bytes, 0)
  assert.equal(store.add(msg(alice, 2)), false, 'known though no longer held')
  assert.deepEqual(store.summary(), { [alice.amid]: [[1, 5]] })
  const small = createSwarmStore({ maxBytes: 1 })
  small.add(msg(bob, 1))
  assert.equal(small.held().messages, 0)
})

it('reconcile - serve walks what it holds, not the range asked for (a huge range answers at once)', () => {
  const store = createSwarmStore()
  store.add(msg(alice, 7))
  assert.deepEqual(store.serve({ [alice.amid]: [[1, Number.MAX_SAFE_INTEGER]] }).map(m => m.seq), [7])
  assert.deepEqual(store.serve({ [alice.amid]: [[1, 6]] }), [])
})
