import { it } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { signSwarmMessage, createValidator, createValidatorState, encodeSwarmMessage, swarmMessageId, type SwarmMessage } from '../src/index.ts'

const alice = createIdentity('alice')
const bob = createIdentity('bob')
const relay = createIdentity('relay').amid

function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}
const msg = (seq: number, body: unknown = seq, who = alice, topic = 't'): SwarmMessage => signSwarmMessage(who, { topic, seq, body, ts: 0 })

it('validate - accepts a valid message once, then ignores the duplicate', () => {
  const v = createValidator({ topic: 't' })
  const m = msg(1)
  assert.deepEqual(v.validate(m, { from: relay }), { result: 'accept', reason: 'ok' })
  assert.deepEqual(v.validate(m, { from: relay }), { result: 'ignore', reason: 'duplicate' })
  assert.deepEqual(v.counts(), { 'accept:ok': 1, 'ignore:duplicate': 1 })
})

it('validate - rejects a forged signature, a wrong topic and an oversized message', () => {
  const v = createValidator({ topic: 't', maxBytes: 400 })
  const m = msg(1)
  const forged = { ...m, body: 'other' }
  assert.deepEqual(v.validate({ ...forged, id: swarmMessageId(forged) }, { from: relay }), { result: 'reject', reason: 'bad-signature' })
  assert.deepEqual(v.validate(msg(1, 1, alice, 'u'), { from: relay }), { result: 'reject', reason: 'wrong-topic' })
  assert.deepEqual(v.validate(m, { from: relay, size: 401 }), { result: 'reject', reason: 'too-large' })
  // the forgery did not take the place of the real message: it is still accepted
  assert.deepEqual(v.validate(m, { from: relay }), { result: 'accept', reason: 'ok' })
  assert.deepEqual(v.validateBytes(new TextEncoder().encode('{"v":1'), relay).verdict, { result: 'reject', reason: 'malformed' })
  assert.deepEqual(v.validateBytes(new Uint8Array(401), relay).verdict, { result: 'reject', reason: 'too-large' })
  const ok = v.validateBytes(encodeSwarmMessage(msg(2)), relay)
  assert.deepEqual(ok.verdict, { result: 'accept', reason: 'ok' })
  assert.equal(ok.message?.seq, 2)
})

it('validate - a forged message does not spend the author\'s rate or mark it as an equivocator', () => {
  const c = clock()
  const v = createValidator({ burst: 2, ratePerS: 1, now: c.now })
  for (let i = 0; i < 5; i++) {
    const f = { ...msg(1), body: `forged ${i}` }
    assert.equal(v.validate({ ...f, id: swarmMessageId(f) }, { from: relay }).reason, 'bad-signature')
  }
  assert.deepEqual(v.validate(msg(1), { from: relay }), { result: 'accept', reason: 'ok' })
  assert.deepEqual(v.validate(msg(2), { from: relay }), { result: 'accept', reason: 'ok' })
})

it('validate - equivocation (same author and seq, other signed content) is rejected and the author is then refused', () => {
  const v = createValidator()
  assert.equal(v.validate(msg(1, 'a'), { from: relay }).result, 'accept')
  assert.deepEqual(v.validate(msg(1, 'b'), { from: relay }), { result: 'reject', reason: 'equivocation' })
  assert.deepEqual(v.validate(msg(2), { from: relay }), { result: 'ignore', reason: 'equivocator' })
  assert.deepEqual(v.validate(msg(3), { from: alice.amid }), { result: 'reject', reason: 'equivocator' })
  assert.deepEqual(v.validate(msg(1, 1, bob), { from: relay }), { result: 'accept', reason: 'ok' }, 'other authors are not affected')
})

it('validate - per-author token bucket on an injected clock: burst, then refill; the author itself is rejected, a forwarder ignored', () => {
  const c = clock()
  const v = createValidator({ burst: 3, ratePerS: 2, now: c.now })
  const results = [1, 2, 3, 4].map(s => v.validate(msg(s), { from: relay }).reason)
  assert.deepEqual(results, ['ok', 'ok', 'ok', 'rate'])
  assert.deepEqual(v.validate(msg(5), { from: alice.amid }), { result: 'reject', reason: 'rate' })
  assert.deepEqual(v.validate(msg(5), { from: relay }), { result: 'ignore', reason: 'rate' })
  c.advance(499) // 0.998 tokens
  assert.equal(v.validate(msg(5), { from: relay }).reason, 'rate')
  c.advance(1)
  assert.equal(v.validate(msg(5), { from: relay }).reason, 'ok')
  c.advance(10_000) // refills to the burst, not beyond
  assert.deepEqual([6, 7, 8, 9].map(s => v.validate(msg(s), { from: relay }).reason), ['ok', 'ok', 'ok', 'rate'])
  assert.equal(v.validate(msg(1, 1, bob), { from: relay }).reason, 'ok', 'buckets are per author')
})

it('validate - sequence sanity: too far ahead, stale below the window, in-window reordering is fine', () => {
  const v = createValidator({ maxSeqAhead: 10, window: 5, burst: 1000 })
  assert.equal(v.validate(msg(100), { from: relay }).reason, 'ok', 'the first message sets the baseline')
  assert.deepEqual(v.validate(msg(111), { from: relay }), { result: 'ignore', reason: 'seq-too-far' })
  assert.deepEqual(v.validate(msg(111), { from: alice.amid }), { result: 'reject', reason: 'seq-too-far' })
  assert.equal(v.validate(msg(110), { from: relay }).reason, 'ok')
  assert.equal(v.validate(msg(106), { from: relay }).reason, 'ok', 'within the window, out of order')
  assert.deepEqual(v.validate(msg(105), { from: relay }), { result: 'ignore', reason: 'stale' })
})

it('validate - the schema hook rejects a body it refuses, after the signature check', () => {
  let calls = 0
  const v = createValidator({ schema: (m) => { calls++; return typeof m.body === 'number' } })
  assert.equal(v.validate(msg(1, 'text'), { from: relay }).reason, 'schema')
  assert.equal(v.validate(msg(2, 2), { from: relay }).reason, 'ok')
  const f = { ...msg(3, 3), body: 4 }
  assert.equal(v.validate({ ...f, id: swarmMessageId(f) }, { from: relay }).reason, 'bad-signature')
  assert.equal(calls, 2)
})

it('validate - the state is bounded: authors beyond the bound and seqs below the window are forgotten', () => {
  const state = createValidatorState({ maxAuthors: 2 })
  const v = createValidator({ state, window: 4, burst: 1000 })
  const carol = createIdentity('carol')
  for (const who of [alice, bob, carol]) v.validate(msg(1, 1, who), { from: relay })
  assert.equal(state.authors(), 2)
  assert.equal(v.validate(msg(1, 1, alice), { from: relay }).reason, 'ok', 'alice was forgotten (least recently seen), so her message is new again')
  for (let s = 2; s <= 20; s++) v.validate(msg(s, s, alice), { from: relay })
  assert.equal(state.idAt(alice.amid, 20), msg(20, 20, alice).id)
  assert.equal(state.idAt(alice.amid, 1), undefined)
})

it('validate - refuses nonsense bounds', () => {
  assert.throws(() => createValidator({ burst: 0 }), /burst must be a positive number/)
  assert.throws(() => createValidator({ window: Number.NaN }), /window/)
})
