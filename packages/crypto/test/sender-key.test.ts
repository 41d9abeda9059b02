import assert from 'node:assert/strict'
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import {
  DEFAULT_SENDER_KEY_MAX_AGE_MS, DEFAULT_SENDER_KEY_MAX_MESSAGES, DEFAULT_SENDER_KEY_MAX_SKIP, DEFAULT_SENDER_KEY_MAX_SKIPPED,
  createSenderKey, needsSenderKeyRotation, receiverFromDistribution, senderKeyDecrypt, senderKeyDistribution, senderKeyEncrypt,
  type GroupMessage, type SenderKeyLimits, type SenderKeyReceiver, type SenderKeyState,
} from '@agentmesh/crypto'
import { T0, prng, rejects, shuffle } from './session-fixtures.ts'

const ROOM = '#ops'
const ALICE = 'amAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const BOB = 'amBobBobBobBobBobBobBobBobBobBobBobBobBobBobBob'

/** JSON round trip, as states are stored and messages travel. */
function json<T> (v: T): T {
  return JSON.parse(JSON.stringify(v)) as T
}

/** A sender and the receiving side one member keeps for it (replace on success only). */
class Room {
  constructor (public sender: SenderKeyState, public receiver: SenderKeyReceiver, readonly limits: SenderKeyLimits = {}) {}

  static create (room = ROOM, sender = ALICE, limits: SenderKeyLimits = {}): Room {
    const s = createSenderKey(room, sender, T0)
    return new Room(s, receiverFromDistribution(json(senderKeyDistribution(s)), { room, sender }), limits)
  }

  send (i: number, type = 'chat'): GroupMessage {
    const r = senderKeyEncrypt(this.sender, type, { text: `message ${i}`, i })
    this.sender = json(r.state)
    return json(r.message)
  }

  receive (m: GroupMessage): number {
    const r = senderKeyDecrypt(this.receiver, this.sender.room, this.sender.sender, m, this.limits)
    assert.equal(r.type, 'chat')
    assert.equal(r.payload.text, `message ${r.payload.i as number}`)
    this.receiver = json(r.receiver)
    return r.payload.i as number
  }
}

/** Asserts that opening `m` fails with `code` and leaves the receiver exactly as it was. */
async function refused (
  receiver: SenderKeyReceiver, m: unknown, code: ErrorCode, message?: RegExp,
  opts: { room?: string, sender?: string, limits?: SenderKeyLimits } = {},
): Promise<void> {
  const before = structuredClone(receiver)
  await rejects(() => senderKeyDecrypt(receiver, opts.room ?? receiver.room, opts.sender ?? receiver.sender, m, opts.limits), code, message)
  assert.deepEqual(receiver, before, 'the receiver is unchanged')
}

/** `ct` with one bit flipped at byte `i`. */
function flip (m: GroupMessage, i: number): GroupMessage {
  const b = Buffer.from(m.ct, 'base64url')
  b[i]! ^= 0x01
  return { ...m, ct: b.toString('base64url') }
}

describe('sender-key', () => {
  it('sender-key - a new key has a random 16-byte key id and 32-byte chain key and starts at 0', () => {
    const a = createSenderKey(ROOM, ALICE, T0)
    const b = createSenderKey(ROOM, ALICE, T0)
    assert.deepEqual(Object.keys(a).sort(), ['chainKey', 'createdAt', 'keyId', 'n', 'room', 'sender', 'sent'])
    assert.equal(Buffer.from(a.keyId, 'base64url').length, 16)
    assert.match(a.keyId, /^[A-Za-z0-9_-]{22}$/)
    assert.equal(Buffer.from(a.chainKey, 'base64url').length, 32)
    assert.equal(a.n, 0)
    assert.equal(a.sent, 0)
    assert.equal(a.createdAt, T0)
    assert.equal(a.room, ROOM)
    assert.equal(a.sender, ALICE)
    assert.notEqual(a.keyId, b.keyId)
    assert.notEqual(a.chainKey, b.chainKey)
    const now = Date.now()
    assert.ok(createSenderKey(ROOM, ALICE).createdAt >= now)
    assert.deepEqual(senderKeyDistribution(a), { room: ROOM, sender: ALICE, key_id: a.keyId, chain_key: a.chainKey, n: 0 })
  })

  it('sender-key - refuses a room or sender that is empty, not a string or holds a newline', async () => {
    await rejects(() => createSenderKey('', ALICE), ErrorCode.InvalidArgument, /room/)
    await rejects(() => createSenderKey('#a\nb', ALICE), ErrorCode.InvalidArgument, /room must not contain a newline/)
    await rejects(() => createSenderKey(ROOM, 'am\nx'), ErrorCode.InvalidArgument, /sender must not contain a newline/)
    await rejects(() => createSenderKey(ROOM, 7 as unknown as string), ErrorCode.InvalidArgument, /sender must be a string/)
    await rejects(() => createSenderKey(ROOM, ALICE, Number.NaN), ErrorCode.InvalidArgument, /now/)
  })

  it('sender-key - a round trip of 10 messages in order', () => {
    const r = Room.create()
    for (let i = 0; i < 10; i++) {
      const m = r.send(i)
      assert.deepEqual(Object.keys(m).sort(), ['ct', 'key_id', 'n', 'v'])
      assert.equal(m.v, 1)
      assert.equal(m.n, i)
      assert.equal(m.key_id, r.sender.keyId)
      assert.equal(r.receive(m), i)
      assert.equal(r.receiver.n, i + 1)
      assert.equal(r.receiver.chainKey, r.sender.chainKey, 'both sides hold the same chain key')
      assert.deepEqual(r.receiver.skipped, {})
    }
    assert.equal(r.sender.n, 10)
    assert.equal(r.sender.sent, 10)
  })

  it('sender-key - encrypt and decrypt answer new states and leave their inputs alone', () => {
    const s = createSenderKey(ROOM, ALICE, T0)
    const recv = receiverFromDistribution(senderKeyDistribution(s))
    const sBefore = structuredClone(s)
    const rBefore = structuredClone(recv)
    const e = senderKeyEncrypt(s, 'chat', { text: 'hi' })
    assert.deepEqual(s, sBefore)
    assert.notEqual(e.state.chainKey, s.chainKey)
    assert.equal(e.state.n, 1)
    assert.equal(e.state.sent, 1)
    const d = senderKeyDecrypt(recv, ROOM, ALICE, e.message)
    assert.deepEqual(recv, rBefore)
    assert.deepEqual({ type: d.type, payload: d.payload }, { type: 'chat', payload: { text: 'hi' } })
    assert.equal(d.receiver.n, 1)
    // the same message against the old receiver opens again: the caller keeps the new one
    assert.equal(senderKeyDecrypt(recv, ROOM, ALICE, e.message).payload.text, 'hi')
  })

  it('sender-key - decrypts in order and out of order within the skip bound', () => {
    const r = Room.create()
    const msgs = Array.from({ length: 30 }, (_, i) => r.send(i))
    const order = shuffle(msgs, prng(7))
    const got = order.map(m => r.receive(m))
    assert.deepEqual(got, order.map(m => m.n))
    assert.equal(r.receiver.n, 30)
    assert.deepEqual(r.receiver.skipped, {}, 'every skipped key was used and deleted')

    // the last one first: 9 keys skipped and kept, then the rest
    const r2 = Room.create()
    const ten = Array.from({ length: 10 }, (_, i) => r2.send(i))
    assert.equal(r2.receive(ten[9]!), 9)
    assert.deepEqual(Object.keys(r2.receiver.skipped).map(Number), [0, 1, 2, 3, 4, 5, 6, 7, 8])
    for (const m of ten.slice(0, 9).reverse()) r2.receive(m)
    assert.deepEqual(r2.receiver.skipped, {})
  })

  it('sender-key - a replay is refused with MessageReplayed', async () => {
    const r = Room.create()
    const m0 = r.send(0)
    const m1 = r.send(1)
    const m2 = r.send(2)
    r.receive(m0)
    await refused(r.receiver, m0, ErrorCode.MessageReplayed, /message 0 is older than this chain/)
    r.receive(m2) // skips 1
    await refused(r.receiver, m2, ErrorCode.MessageReplayed)
    r.receive(m1) // from the skipped keys
    await refused(r.receiver, m1, ErrorCode.MessageReplayed)
  })

  it('sender-key - a message too far ahead is refused with TooFarAhead', async () => {
    assert.equal(DEFAULT_SENDER_KEY_MAX_SKIP, 2000)
    const r = Room.create()
    const msgs = Array.from({ length: DEFAULT_SENDER_KEY_MAX_SKIP + 2 }, (_, i) => r.send(i))
    // n = 2001 would skip 2001 keys
    await refused(r.receiver, msgs[DEFAULT_SENDER_KEY_MAX_SKIP + 1], ErrorCode.TooFarAhead, /skip 2001 message keys; at most 2000/)
    // n = 2000 skips exactly 2000: allowed, and then all the skipped ones still open
    assert.equal(r.receive(msgs[DEFAULT_SENDER_KEY_MAX_SKIP]!), DEFAULT_SENDER_KEY_MAX_SKIP)
    assert.equal(Object.keys(r.receiver.skipped).length, DEFAULT_SENDER_KEY_MAX_SKIP)
    assert.equal(r.receive(msgs[0]!), 0)
    assert.equal(r.receive(msgs[1999]!), 1999)

    // a smaller bound
    const s = Room.create(ROOM, ALICE, { maxSkip: 3 })
    const few = Array.from({ length: 6 }, (_, i) => s.send(i))
    await refused(s.receiver, few[4], ErrorCode.TooFarAhead, /skip 4/, { limits: { maxSkip: 3 } })
    assert.equal(s.receive(few[3]!), 3)
    assert.equal(s.receive(few[5]!), 5)
    await rejects(() => senderKeyDecrypt(s.receiver, ROOM, ALICE, few[0], { maxSkip: -1 }), ErrorCode.InvalidArgument, /maxSkip/)
  })

  it('sender-key - skipped keys are bounded, the oldest dropped first', async () => {
    assert.equal(DEFAULT_SENDER_KEY_MAX_SKIPPED, 2000)
    const limits = { maxSkipped: 3 }
    const r = Room.create(ROOM, ALICE, limits)
    const msgs = Array.from({ length: 10 }, (_, i) => r.send(i))
    r.receive(msgs[5]!) // skips 0…4, keeps 2, 3, 4
    assert.deepEqual(Object.keys(r.receiver.skipped).map(Number), [2, 3, 4])
    await refused(r.receiver, msgs[0], ErrorCode.MessageReplayed, /dropped/, { limits })
    r.receive(msgs[7]!) // skips 6 too: keeps 3, 4, 6
    assert.deepEqual(Object.keys(r.receiver.skipped).map(Number), [3, 4, 6])
    await refused(r.receiver, msgs[2], ErrorCode.MessageReplayed, undefined, { limits })
    for (const i of [3, 4, 6]) assert.equal(r.receive(msgs[i]!), i)
    assert.deepEqual(r.receiver.skipped, {})
    assert.equal(r.receive(msgs[9]!), 9)
    assert.deepEqual(Object.keys(r.receiver.skipped).map(Number), [8])
  })

  it('sender-key - tampered ciphertext, wrong room and wrong sender fail with DecryptFailed and change nothing', async () => {
    const r = Room.create()
    r.receive(r.send(0))
    r.send(1)
    const m = r.send(2)
    r.receive(m) // so that 1 is a skipped key
    const m3 = r.send(3)
    const m4 = r.send(4)
    for (const i of [0, 5, Buffer.from(m3.ct, 'base64url').length - 1]) {
      await refused(r.receiver, flip(m3, i), ErrorCode.DecryptFailed, /did not authenticate/)
    }
    // ahead of the chain (skipping) and from a skipped key: still nothing changes
    await refused(r.receiver, flip(m4, 3), ErrorCode.DecryptFailed)
    await refused(r.receiver, { ...m3, n: 1 }, ErrorCode.DecryptFailed)
    await refused(r.receiver, { ...m3, n: 4 }, ErrorCode.DecryptFailed)
    await refused(r.receiver, { ...m3, ct: Buffer.from(m3.ct, 'base64url').subarray(0, 20).toString('base64url') }, ErrorCode.DecryptFailed)

    // the caller names another room or sender than the key's
    await refused(r.receiver, m3, ErrorCode.DecryptFailed, /not "amBob.*in "#ops"/, { sender: BOB })
    await refused(r.receiver, m3, ErrorCode.DecryptFailed, /in "#other"/, { room: '#other' })

    // a key handed out under another room or sender name: the associated data does not match
    const d = senderKeyDistribution(r.sender)
    for (const forged of [{ ...d, room: '#other' }, { ...d, sender: BOB }]) {
      const recv = receiverFromDistribution(forged)
      await refused(recv, r.send(5), ErrorCode.DecryptFailed, /did not authenticate/)
    }
    // the genuine message still opens for the untouched receiver
    assert.equal(r.receive(m3), 3)
    assert.equal(r.receive(m4), 4)
  })

  it('sender-key - a message under another key id fails with UnknownSession', async () => {
    const r = Room.create()
    const m = r.send(0)
    const other = createSenderKey(ROOM, ALICE, T0) // Alice rotated
    const fromNew = senderKeyEncrypt(other, 'chat', { text: 'message 0', i: 0 }).message
    await refused(r.receiver, fromNew, ErrorCode.UnknownSession, new RegExp(`sealed with sender key ${other.keyId}`))
    await refused(r.receiver, { ...m, key_id: 'AAAAAAAAAAAAAAAAAAAAAA' }, ErrorCode.UnknownSession)
    // once the new key is distributed, its messages open
    const recv = receiverFromDistribution(senderKeyDistribution(other), { room: ROOM, sender: ALICE })
    assert.equal(senderKeyDecrypt(recv, ROOM, ALICE, fromNew).payload.text, 'message 0')
  })

  it('sender-key - a malformed distribution is refused naming the field', async () => {
    const d = senderKeyDistribution(createSenderKey(ROOM, ALICE, T0))
    const bad: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      ['x', /not an object/],
      [[d], /not an object/],
      [{ ...d, room: undefined }, /room must be a string/],
      [{ ...d, room: '' }, /room must not be empty/],
      [{ ...d, room: 'a\nb' }, /room must not contain a newline/],
      [{ ...d, sender: 1 }, /sender must be a string/],
      [{ ...d, key_id: undefined }, /key_id must be base64url of 16 bytes/],
      [{ ...d, key_id: d.key_id.slice(1) }, /key_id/],
      [{ ...d, key_id: d.key_id + 'AA' }, /key_id/],
      [{ ...d, key_id: Buffer.from(d.key_id, 'base64url').toString('base64') + '==' }, /key_id/],
      [{ ...d, chain_key: 'AAAA' }, /chain_key must be base64url of 32 bytes/],
      [{ ...d, chain_key: d.chain_key.replace(/.$/, '*') }, /chain_key/],
      [{ ...d, n: -1 }, /n must be an integer/],
      [{ ...d, n: 1.5 }, /n must be an integer/],
      [{ ...d, n: '0' }, /n must be an integer/],
      [{ ...d, n: 2 ** 32 }, /n must be an integer/],
    ]
    for (const [v, re] of bad) await rejects(() => receiverFromDistribution(v), ErrorCode.InvalidArgument, re)
    await rejects(() => receiverFromDistribution(d, { sender: BOB }), ErrorCode.InvalidArgument, /sender is "amAlice.*expected "amBob/)
    await rejects(() => receiverFromDistribution(d, { room: '#other' }), ErrorCode.InvalidArgument, /room is "#ops", expected "#other"/)
    // unknown fields are ignored, as elsewhere on the wire
    const recv = receiverFromDistribution({ ...d, extra: true }, { room: ROOM, sender: ALICE })
    assert.deepEqual(recv, { room: ROOM, sender: ALICE, keyId: d.key_id, chainKey: d.chain_key, n: 0, skipped: {} })
  })

  it('sender-key - a malformed message is refused with InvalidEnvelope naming the field', async () => {
    const r = Room.create()
    const m = r.send(0)
    const bad: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      ['m', /not an object/],
      [[m], /not an object/],
      [{ ...m, v: 2 }, /v must be 1, not 2/],
      [{ ...m, v: undefined }, /v must be 1/],
      [{ ...m, key_id: 5 }, /key_id must be base64url of 16 bytes/],
      [{ ...m, key_id: 'AAAA' }, /key_id/],
      [{ ...m, n: -1 }, /n must be an integer/],
      [{ ...m, n: '0' }, /n must be an integer/],
      [{ ...m, n: Number.NaN }, /n must be an integer/],
      [{ ...m, ct: undefined }, /ct must be base64url/],
      [{ ...m, ct: m.ct + '=' }, /ct must be base64url/],
      [{ ...m, ct: 'AAAA' }, /ct is shorter than its 16-byte tag/],
    ]
    for (const [v, re] of bad) await refused(r.receiver, v, ErrorCode.InvalidEnvelope, re)
    assert.equal(r.receive(m), 0)
  })

  it('sender-key - encrypt refuses a bad type or payload', async () => {
    const s = createSenderKey(ROOM, ALICE, T0)
    await rejects(() => senderKeyEncrypt(s, '', {}), ErrorCode.InvalidArgument, /type must match/)
    await rejects(() => senderKeyEncrypt(s, 'Chat!', {}), ErrorCode.InvalidArgument, /type must match/)
    await rejects(() => senderKeyEncrypt(s, 'chat', [] as unknown as Record<string, unknown>), ErrorCode.InvalidArgument, /payload must be an object/)
    await rejects(() => senderKeyEncrypt(s, 'chat', null as unknown as Record<string, unknown>), ErrorCode.InvalidArgument, /payload/)
    await rejects(() => senderKeyEncrypt(s, 'chat', { big: 1n }), ErrorCode.InvalidArgument, /JSON/)
    await rejects(() => senderKeyEncrypt({ ...s, chainKey: 'x' }, 'chat', {}), ErrorCode.InvalidArgument, /chainKey/)
    await rejects(() => senderKeyEncrypt({ ...s, n: 2 ** 32 }, 'chat', {}), ErrorCode.InvalidArgument, /exhausted/)
  })

  it('sender-key - rotation is due after 100 messages or 7 days', () => {
    assert.equal(DEFAULT_SENDER_KEY_MAX_MESSAGES, 100)
    assert.equal(DEFAULT_SENDER_KEY_MAX_AGE_MS, 7 * 24 * 60 * 60 * 1000)
    let s = createSenderKey(ROOM, ALICE, T0)
    assert.equal(needsSenderKeyRotation(s, T0), false)
    for (let i = 0; i < 99; i++) s = senderKeyEncrypt(s, 'chat', { i }).state
    assert.equal(s.sent, 99)
    assert.equal(needsSenderKeyRotation(s, T0 + 1), false)
    s = senderKeyEncrypt(s, 'chat', { i: 99 }).state
    assert.equal(s.sent, 100)
    assert.equal(needsSenderKeyRotation(s, T0 + 1), true)

    const fresh = createSenderKey(ROOM, ALICE, T0)
    assert.equal(needsSenderKeyRotation(fresh, T0 + DEFAULT_SENDER_KEY_MAX_AGE_MS - 1), false)
    assert.equal(needsSenderKeyRotation(fresh, T0 + DEFAULT_SENDER_KEY_MAX_AGE_MS), true)
    // custom thresholds
    const one = senderKeyEncrypt(fresh, 'chat', {}).state
    assert.equal(needsSenderKeyRotation(one, T0, { maxMessages: 1 }), true)
    assert.equal(needsSenderKeyRotation(one, T0, { maxMessages: 2 }), false)
    assert.equal(needsSenderKeyRotation(fresh, T0 + 1000, { maxAgeMs: 1000 }), true)
    assert.equal(needsSenderKeyRotation(fresh, T0 + 999, { maxAgeMs: 1000 }), false)
  })

  it('sender-key - two senders\' keys are independent', async () => {
    const a = Room.create(ROOM, ALICE)
    const b = Room.create(ROOM, BOB)
    assert.notEqual(a.sender.keyId, b.sender.keyId)
    const ma = [a.send(0), a.send(1)]
    const mb = [b.send(0)]
    assert.equal(b.receive(mb[0]!), 0)
    assert.equal(a.receive(ma[1]!), 1)
    assert.equal(a.receive(ma[0]!), 0)
    // Alice's receiver does not open Bob's messages, nor under Bob's name
    await refused(a.receiver, mb[0], ErrorCode.UnknownSession)
    await refused(a.receiver, mb[0], ErrorCode.DecryptFailed, undefined, { sender: BOB })
    // same key id forced: still the other chain key, so it does not authenticate
    await refused({ ...b.receiver, keyId: a.sender.keyId, sender: ALICE, n: 0 }, ma[0], ErrorCode.DecryptFailed)
    assert.equal(a.receiver.n, 2)
    assert.equal(b.receiver.n, 1)
  })

  it('sender-key - a member given the key later opens only the messages from then on', async () => {
    let s = createSenderKey(ROOM, ALICE, T0)
    const early = senderKeyEncrypt(s, 'chat', { text: 'before you joined' })
    s = early.state
    const recv = receiverFromDistribution(json(senderKeyDistribution(s)), { room: ROOM, sender: ALICE })
    assert.equal(recv.n, 1)
    await refused(recv, early.message, ErrorCode.MessageReplayed, /sent before this member got the key/)
    const late = senderKeyEncrypt(s, 'chat', { text: 'welcome' })
    assert.equal(senderKeyDecrypt(recv, ROOM, ALICE, late.message).payload.text, 'welcome')
  })

  it('sender-key - fixed vector: chain key 32 × 0x01, key id AAAAAAAAAAAAAAAAAAAAAA', () => {
    const ck = Buffer.alloc(32, 0x01)
    const keyId = 'AAAAAAAAAAAAAAAAAAAAAA'
    const state: SenderKeyState = { room: ROOM, sender: ALICE, keyId, chainKey: ck.toString('base64url'), n: 0, createdAt: T0, sent: 0 }
    const recv = receiverFromDistribution(senderKeyDistribution(state))
    const { state: next, message } = senderKeyEncrypt(state, 'chat', { text: 'hello room' })
    assert.deepEqual({ v: message.v, key_id: message.key_id, n: message.n }, { v: 1, key_id: keyId, n: 0 })

    // KDF_CK computed independently
    const mk = createHmac('sha256', ck).update(Buffer.from([0x01])).digest()
    const nextCk = createHmac('sha256', ck).update(Buffer.from([0x02])).digest()
    assert.equal(next.chainKey, nextCk.toString('base64url'))
    // and the message opened independently with that message key
    const okm = Buffer.from(hkdfSync('sha256', mk, Buffer.alloc(32), Buffer.from('AgentMesh_SenderKey_MessageKeys'), 44))
    const ct = Buffer.from(message.ct, 'base64url')
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32))
    d.setAAD(Buffer.from(`agentmesh/room\n${ROOM}\n${ALICE}\n${keyId}\n0`, 'utf8'))
    d.setAuthTag(ct.subarray(ct.length - 16))
    const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString('utf8')
    assert.equal(plain, '{"type":"chat","payload":{"text":"hello room"}}')

    // deterministic from the chain key: the same state seals the same bytes
    assert.equal(senderKeyEncrypt(state, 'chat', { text: 'hello room' }).message.ct, message.ct)
    const out = senderKeyDecrypt(recv, ROOM, ALICE, message)
    assert.deepEqual({ type: out.type, payload: out.payload }, { type: 'chat', payload: { text: 'hello room' } })
    assert.equal(out.receiver.chainKey, nextCk.toString('base64url'))
    assert.equal(out.receiver.n, 1)

    // message 1 skipped, message 2 opened: the skipped key is HMAC-SHA256(ck1, 0x01)
    const m1 = senderKeyEncrypt(next, 'chat', { text: 'one' })
    const m2 = senderKeyEncrypt(m1.state, 'chat', { text: 'two' })
    const r2 = senderKeyDecrypt(out.receiver, ROOM, ALICE, m2.message)
    assert.deepEqual(r2.receiver.skipped, { 1: createHmac('sha256', nextCk).update(Buffer.from([0x01])).digest().toString('base64url') })
    assert.equal(senderKeyDecrypt(r2.receiver, ROOM, ALICE, m1.message).payload.text, 'one')
  })
})
