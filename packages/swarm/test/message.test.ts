import { it } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import {
  signSwarmMessage, verifySwarmMessage, encodeSwarmMessage, decodeSwarmMessage, memoizeVerifier, swarmMessageId,
  type SwarmMessage,
} from '../src/index.ts'

const alice = createIdentity('alice')
const mallory = createIdentity('mallory')

it('swarm message - signs, encodes, decodes and verifies, with a content id', () => {
  const m = signSwarmMessage(alice, { topic: 'weather/eu', seq: 1, type: 'reading', body: { t: 21.5, tags: ['a'] }, ts: 1_700_000_000_000 })
  assert.equal(m.v, 1)
  assert.equal(m.author, alice.amid)
  assert.equal(m.seq, 1)
  assert.match(m.id, /^[A-Za-z0-9_-]{22}$/)
  assert.equal(m.id, swarmMessageId(m))
  const back = decodeSwarmMessage(encodeSwarmMessage(m))
  assert.deepEqual(back, m)
  assert.equal(verifySwarmMessage(back), true)
})

it('swarm message - the same content has the same id, other content another id', () => {
  const a = signSwarmMessage(alice, { topic: 't', seq: 7, body: 'x', ts: 5 })
  const b = signSwarmMessage(alice, { topic: 't', seq: 7, body: 'x', ts: 5 })
  const c = signSwarmMessage(alice, { topic: 't', seq: 7, body: 'y', ts: 5 })
  assert.equal(a.id, b.id)
  assert.notEqual(a.id, c.id)
})

it('swarm message - a changed body, a changed id, another author or another signer fail verification', () => {
  const m = signSwarmMessage(alice, { topic: 't', seq: 1, body: { n: 1 } })
  assert.equal(verifySwarmMessage({ ...m, body: { n: 2 } }), false, 'body changed: the id no longer matches')
  const body2 = { ...m, body: { n: 2 } }
  assert.equal(verifySwarmMessage({ ...body2, id: swarmMessageId(body2) }), false, 'id recomputed: the signature no longer matches')
  assert.equal(verifySwarmMessage({ ...m, author: mallory.amid, id: swarmMessageId({ ...m, author: mallory.amid }) }), false)
  // mallory signs a message claiming alice as author
  const forged = { ...signSwarmMessage(mallory, { topic: 't', seq: 1, body: { n: 1 } }) }
  const claimed = { ...forged, author: alice.amid }
  const withId = { ...claimed, id: swarmMessageId(claimed) }
  assert.equal(verifySwarmMessage(withId), false)
  assert.equal(verifySwarmMessage({ ...m, sig: 'A'.repeat(86) }), false)
})

it('swarm message - decode refuses malformed and oversized input with stable codes', () => {
  const m = signSwarmMessage(alice, { topic: 't', seq: 1, body: 'hello' })
  const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
  const cases: Array<[unknown, RegExp]> = [
    [{ ...m, v: 2 }, /unknown version/],
    [{ ...m, topic: '' }, /topic/],
    [{ ...m, topic: 'a b' }, /topic/],
    [{ ...m, topic: 'x'.repeat(129) }, /topic/],
    [{ ...m, author: 'bob' }, /author/],
    [{ ...m, seq: 0 }, /seq/],
    [{ ...m, seq: 1.5 }, /seq/],
    [{ ...m, id: 'short' }, /id/],
    [{ ...m, ts: -1 }, /ts/],
    [{ ...m, type: 'Bad Type' }, /type/],
    [{ ...m, body: undefined }, /body/],
    [{ ...m, sig: 'x' }, /sig/],
    [{ ...m, extra: 1 }, /unknown field/],
    [[1, 2], /JSON object/],
  ]
  for (const [o, re] of cases) {
    assert.throws(() => decodeSwarmMessage(enc(o)), (e: Error & { code?: string }) => e.code === 'AM_ERR_INVALID_SWARM_MESSAGE' && re.test(e.message), JSON.stringify(o).slice(0, 80))
  }
  assert.throws(() => decodeSwarmMessage(new Uint8Array([0xff, 0xfe])), { code: 'AM_ERR_INVALID_SWARM_MESSAGE' })
  let deep: unknown = 1
  for (let i = 0; i < 40; i++) deep = [deep]
  assert.throws(() => decodeSwarmMessage(enc({ ...m, body: deep })), /nested deeper/)
  assert.throws(() => decodeSwarmMessage(encodeSwarmMessage(m), { maxBytes: 100 }), { code: 'AM_ERR_SWARM_MESSAGE_TOO_LARGE' })
  assert.throws(() => signSwarmMessage(alice, { topic: 'no spaces', seq: 1, body: 1 }), { code: 'AM_ERR_INVALID_SWARM_MESSAGE' })
})

it('swarm message - a memoised verifier checks each distinct message once and keeps verdicts apart', () => {
  let inner = 0
  const v = memoizeVerifier((m: SwarmMessage) => { inner++; return verifySwarmMessage(m) }, 1) // one id at a time
  const a = signSwarmMessage(alice, { topic: 't', seq: 1, body: 1 })
  const b = signSwarmMessage(alice, { topic: 't', seq: 2, body: 2 })
  const badB = { ...b, sig: a.sig }
  assert.deepEqual([v(a), v(a), v(b), v(badB), v(b), v(badB)], [true, true, true, false, true, false])
  assert.equal(inner, 3)
  assert.equal(v.calls(), 3)
  v(a) // evicted by the bound (b's id took its place): verified again
  assert.equal(inner, 4)
})
