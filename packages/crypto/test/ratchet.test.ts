import assert from 'node:assert/strict'
import { createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import {
  DEFAULT_MAX_SKIP, DEFAULT_MAX_SKIPPED_AGE_MS, DEFAULT_MAX_SKIPPED_TOTAL, acceptInitialMessage, expireSkipped, deserializeRatchetState, fromB64u, generateX25519KeyPair,
  ratchetDecrypt, ratchetEncrypt, ratchetInitAlice, ratchetInitBob, serializeRatchetState, startSession, toB64u,
  type RatchetLimits, type RatchetMessage, type RatchetState,
} from '@agentmesh/crypto'
import { T0, makeAgent, prng, rejects, shuffle, str, takeBundle, text, type Agent } from './session-fixtures.ts'

/** A message as it travels: JSON with the ciphertext in base64url. */
function wire (m: RatchetMessage): RatchetMessage {
  const json = JSON.parse(JSON.stringify({ ...m, ciphertext: toB64u(m.ciphertext) })) as RatchetMessage & { ciphertext: string }
  return { ...json, ciphertext: fromB64u(json.ciphertext) }
}

/** One side of a conversation: keeps its state the way an app would (replace on success only). */
class Peer {
  constructor (public state: RatchetState, readonly limits: RatchetLimits = {}) {}
  send (s: string): RatchetMessage {
    const r = ratchetEncrypt(this.state, text(s))
    this.state = r.state
    return wire(r.message)
  }

  receive (m: RatchetMessage): string {
    const r = ratchetDecrypt(this.state, m, this.limits)
    this.state = r.state
    return str(r.plaintext)
  }

  /** Saves and reloads the state through JSON text. */
  reload (): void {
    this.state = deserializeRatchetState(serializeRatchetState(this.state))
  }
}

/** Alice starts from Bob's bundle and sends `first`; Bob accepts it. */
async function begin (alice: Agent, bob: Agent, first = 'hello bob', limits: RatchetLimits = {}): Promise<{ a: Peer, b: Peer }> {
  const { state, peer } = startSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
  assert.equal(peer, bob.id.amid)
  const a = new Peer(state, limits)
  const m = a.send(first)
  const acc = await acceptInitialMessage(bob.id, bob.xk, bob.store, m, { now: T0 + 1, ...limits })
  assert.equal(acc.peer, alice.id.amid)
  assert.equal(str(acc.plaintext), first)
  return { a, b: new Peer(acc.state, limits) }
}

/** An established pair: both have sent and received once. */
async function established (limits: RatchetLimits = {}): Promise<{ a: Peer, b: Peer }> {
  const { a, b } = await begin(await makeAgent('alice'), await makeAgent('bob'), 'hello bob', limits)
  assert.equal(a.receive(b.send('hello alice')), 'hello alice')
  return { a, b }
}

/** Asserts that decrypting `m` fails with `code` and leaves the state exactly as it was. */
async function refused (p: Peer, m: RatchetMessage, code: ErrorCode, message?: RegExp): Promise<void> {
  const before = serializeRatchetState(p.state)
  await rejects(() => ratchetDecrypt(p.state, m, p.limits), code, message)
  assert.equal(serializeRatchetState(p.state), before, 'the state is unchanged')
}

describe('ratchet', () => {
  it('ratchet - a session starts from a bundle both ways and carries messages in both directions', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    // Alice → Bob from Bob's bundle, and independently Bob → Alice from Alice's bundle
    for (const [x, y] of [[alice, bob], [bob, alice]] as const) {
      const { a, b } = await begin(x, y, `hi ${y.id.name ?? ''}`)
      assert.equal(a.receive(b.send('reply 1')), 'reply 1')
      assert.equal(b.receive(a.send('two')), 'two')
      assert.equal(b.receive(a.send('three')), 'three')
      assert.equal(a.receive(b.send('reply 2')), 'reply 2')
    }
  })

  it('ratchet - the initiator sends its PQXDH header until a reply has decrypted, the responder never', async () => {
    const { a, b } = await begin(await makeAgent('alice'), await makeAgent('bob'))
    const m2 = a.send('still no answer')
    assert.ok(m2.prekey !== undefined)
    assert.equal(m2.prekey.ephemeral_key, a.state.base)
    assert.equal(b.state.base, a.state.base, 'both sides name the session by the PQXDH ephemeral key')
    const r = b.send('answer')
    assert.equal(r.prekey, undefined)
    assert.equal(b.receive(m2), 'still no answer')
    assert.equal(a.receive(r), 'answer')
    assert.equal(a.state.prekey, undefined)
    assert.equal(a.send('after the answer').prekey, undefined)
  })

  it('ratchet - a session without a one-time prekey (last resort only) works', async () => {
    const bob = await makeAgent('bob', 0)
    const { a, b } = await begin(await makeAgent('alice'), bob)
    assert.equal(a.state.prekey?.one_time_prekey_id, undefined)
    assert.equal(a.receive(b.send('pong')), 'pong')
    assert.equal(b.receive(a.send('ping')), 'ping')
  })

  it('ratchet - a second initial message with a used one-time prekey starts nothing; the duplicate is a replay of its session', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { state } = startSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const a = new Peer(state)
    const m = a.send('once')
    const acc = await acceptInitialMessage(bob.id, bob.xk, bob.store, m, { now: T0 })
    await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, m, { now: T0 }), ErrorCode.BadPrekey, /one-time prekey 100 is not held/)
    // routed by base key to the session it started, the duplicate is a replay
    assert.equal(m.prekey?.ephemeral_key, acc.state.base)
    await refused(new Peer(acc.state), m, ErrorCode.MessageReplayed, /^message 0 of this chain was already decrypted$/)
  })

  it('ratchet - a tampered initial message is AM_ERR_DECRYPT_FAILED and keeps the one-time prekey for the genuine one', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { state } = startSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const m = new Peer(state).send('genuine')
    const bad = { ...m, ciphertext: Uint8Array.from(m.ciphertext) }
    bad.ciphertext[0]! ^= 1
    await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, bad, { now: T0 }), ErrorCode.DecryptFailed)
    assert.ok(await bob.store.loadOneTimePreKey(100))
    assert.equal(str((await acceptInitialMessage(bob.id, bob.xk, bob.store, m, { now: T0 })).plaintext), 'genuine')
    assert.equal(await bob.store.loadOneTimePreKey(100), undefined)
    const plain = { header: m.header, ciphertext: m.ciphertext }
    await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, plain, { now: T0 }), ErrorCode.UnknownSession, /carries no PQXDH header/)
  })

  it('ratchet - an initial message from someone claiming another identity does not decrypt', async () => {
    const alice = await makeAgent('alice')
    const mallory = await makeAgent('mallory')
    const bob = await makeAgent('bob')
    const { state } = startSession(mallory.id, mallory.xk, takeBundle(bob), { now: T0 })
    const m = new Peer(state).send('I am alice')
    // Alice's genuine signed exchange key in the header, without its private key: SK and AD differ
    const forged = { ...m, prekey: { ...m.prekey!, amid: alice.id.amid, exchange_key: toB64u(alice.xk.publicKey), exchange_key_sig: toB64u(alice.xk.signature) } }
    await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, forged, { now: T0 }), ErrorCode.DecryptFailed)
  })

  it('ratchet - interleaved messages in both directions decrypt', async () => {
    const { a, b } = await established()
    const m1 = a.send('a1')
    const n1 = b.send('b1')
    const m2 = a.send('a2')
    assert.equal(a.receive(n1), 'b1')
    const n2 = b.send('b2')
    assert.equal(b.receive(m1), 'a1')
    const m3 = a.send('a3')
    assert.equal(b.receive(m2), 'a2')
    assert.equal(a.receive(n2), 'b2')
    assert.equal(b.receive(m3), 'a3')
    assert.equal(a.receive(b.send('b3')), 'b3')
  })

  it('ratchet - out-of-order messages within a chain and from an earlier chain decrypt, each once', async () => {
    const { a, b } = await established()
    const chain1 = [0, 1, 2, 3, 4].map(i => a.send(`c1-${i}`))
    assert.equal(b.receive(chain1[3]!), 'c1-3')
    assert.equal(b.receive(chain1[1]!), 'c1-1')
    assert.equal(b.state.skipped.length, 2)
    // a DH ratchet step in between: Alice answers Bob, then starts a new chain
    assert.equal(a.receive(b.send('turn')), 'turn')
    const chain2 = [0, 1, 2].map(i => a.send(`c2-${i}`))
    assert.equal(chain2[0]!.header.pn, 5)
    assert.equal(b.receive(chain2[2]!), 'c2-2') // skips c1-4 (to pn) and c2-0, c2-1
    assert.equal(b.state.skipped.length, 5)
    assert.equal(b.receive(chain1[4]!), 'c1-4')
    assert.equal(b.receive(chain1[0]!), 'c1-0')
    assert.equal(b.receive(chain2[0]!), 'c2-0')
    assert.equal(b.receive(chain1[2]!), 'c1-2')
    assert.equal(b.receive(chain2[1]!), 'c2-1')
    assert.equal(b.state.skipped.length, 0)
    for (const m of [...chain1, ...chain2]) await refused(b, m, ErrorCode.MessageReplayed)
  })

  it('ratchet - skipped keys expire by age as well as count: a late message past it is AM_ERR_MESSAGE_REPLAYED (evicted)', async () => {
    const limits: RatchetLimits = { now: T0 }
    const { a, b } = await established(limits)
    const chain = [0, 1, 2, 3].map(i => a.send(`late-${i}`))
    assert.equal(b.receive(chain[2]!), 'late-2') // skips late-0 and late-1, dated T0
    assert.equal(b.state.skipped.length, 2)
    assert.deepEqual(b.state.skipped_at?.map(([, at]) => at), [T0])
    // within the age: a skipped key still opens its message
    limits.now = T0 + DEFAULT_MAX_SKIPPED_AGE_MS
    assert.equal(b.receive(chain[0]!), 'late-0')
    b.reload()
    // past it: the next message deletes what is left, and the late one is told apart as evicted
    limits.now = T0 + DEFAULT_MAX_SKIPPED_AGE_MS + 1
    assert.equal(b.receive(chain[3]!), 'late-3')
    assert.deepEqual([b.state.skipped.length, b.state.skipped_at], [0, []])
    await refused(b, chain[1]!, ErrorCode.MessageReplayed, /skipped and its key since evicted/)
    // a state without dates (saved before) keeps its keys: nothing to date them by
    const undated = { ...b.state, skipped: [[b.state.dhr!, 9, b.state.rk]] as RatchetState['skipped'] }
    delete undated.skipped_at
    assert.equal(expireSkipped(undated, T0 * 2).skipped.length, 1)
  })

  it('ratchet - a long conversation with random batches, random delivery order and reloads through JSON', async () => {
    const { a, b } = await established()
    const rnd = prng(20251123)
    const inbox = { a: [] as Array<[RatchetMessage, string]>, b: [] as Array<[RatchetMessage, string]> }
    let sent = 0
    let received = 0
    let steps = 0
    let lastSender = ''
    const deliver = (to: 'a' | 'b', count: number): void => {
      const box = inbox[to]
      const picked = shuffle(box.splice(0, Math.min(count, box.length)), rnd)
      for (const [m, expected] of picked) {
        assert.equal((to === 'a' ? a : b).receive(m), expected)
        received++
      }
    }
    for (let round = 0; round < 150; round++) {
      const from = rnd() < 0.5 ? 'a' : 'b'
      if (from !== lastSender) steps++
      lastSender = from
      const k = 1 + Math.floor(rnd() * 4)
      for (let i = 0; i < k; i++) {
        const body = `${from}-${round}-${i}`
        inbox[from === 'a' ? 'b' : 'a'].push([(from === 'a' ? a : b).send(body), body])
        sent++
      }
      // deliver part of what is in flight, in random order; the rest waits (later rounds, or the end)
      deliver('a', Math.floor(rnd() * (inbox.a.length + 1)))
      deliver('b', Math.floor(rnd() * (inbox.b.length + 1)))
      if (round % 17 === 0) { a.reload(); b.reload() }
    }
    deliver('a', Infinity)
    deliver('b', Infinity)
    assert.equal(received, sent)
    assert.ok(steps > 50, `many DH ratchet steps (${steps})`)
    assert.equal(a.state.skipped.length + b.state.skipped.length, 0, 'every skipped key was used')
  })

  it('ratchet - many DH ratchet steps in strict alternation', async () => {
    const { a, b } = await established()
    for (let i = 0; i < 100; i++) {
      assert.equal(b.receive(a.send(`a${i}`)), `a${i}`)
      assert.equal(a.receive(b.send(`b${i}`)), `b${i}`)
    }
    // each received message was a DH ratchet step: Alice's next chain is fresh, her previous one had 1 message
    assert.deepEqual([a.state.ns, a.state.pn, a.state.nr], [0, 1, 1])
    assert.equal(a.state.chains.length, 64, 'ended chains remembered are bounded')
  })

  it('ratchet - the state round-trips through JSON mid-conversation, skipped keys included', async () => {
    const { a, b } = await established()
    const early = a.send('early')
    const late = a.send('late')
    assert.equal(b.receive(late), 'late')
    const text1 = serializeRatchetState(b.state)
    const parsed = deserializeRatchetState(text1)
    assert.deepEqual(parsed, b.state)
    assert.equal(serializeRatchetState(parsed), text1)
    // also from an object already parsed (state saved inside a larger JSON record)
    const record = JSON.parse(JSON.stringify({ state: b.state, message: 'late' })) as { state: unknown }
    const b2 = new Peer(deserializeRatchetState(record.state))
    assert.equal(b2.receive(early), 'early')
    assert.equal(a.receive(b2.send('from the reloaded state')), 'from the reloaded state')
    // the private-key cache is not needed: a state from another process works (fresh import of DHs)
    const a2 = new Peer(deserializeRatchetState(serializeRatchetState(a.state)))
    assert.equal(b2.receive(a2.send('and back')), 'and back')
  })

  it('ratchet - a damaged saved state is AM_ERR_DATA_CORRUPT naming the field', async () => {
    const { a } = await established()
    const good = JSON.parse(serializeRatchetState(a.state)) as Record<string, unknown>
    const cases: Array<[unknown, RegExp]> = [
      ['{"v":1', /not valid JSON/],
      [42, /not an object/],
      [{ ...good, v: 2 }, /unknown version 2/],
      [{ ...good, rk: 'short' }, /: rk$/],
      [{ ...good, dhs: { pub: good.dhr } }, /: dhs$/],
      [{ ...good, ns: -1 }, /: ns$/],
      [{ ...good, skipped: [['x', 1, 'y']] }, /: skipped$/],
      [{ ...good, chains: {} }, /: chains$/],
      [{ ...good, evicted: undefined }, /: evicted$/],
      [{ ...good, created_at: 'yesterday' }, /: created_at$/],
    ]
    for (const [saved, message] of cases) {
      await rejects(() => deserializeRatchetState(saved), ErrorCode.DataCorrupt, message)
    }
  })

  it('ratchet - decrypt and encrypt never change the state they are given', async () => {
    const { a, b } = await established()
    const m = a.send('x')
    const beforeA = serializeRatchetState(a.state)
    const beforeB = serializeRatchetState(b.state)
    const e = ratchetEncrypt(a.state, text('y'))
    const d = ratchetDecrypt(b.state, m)
    assert.equal(serializeRatchetState(a.state), beforeA)
    assert.equal(serializeRatchetState(b.state), beforeB)
    assert.notEqual(serializeRatchetState(e.state), beforeA)
    assert.notEqual(serializeRatchetState(d.state), beforeB)
  })

  it('ratchet - tampered ciphertext, tag, header or associated data is AM_ERR_DECRYPT_FAILED and the genuine message still decrypts', async () => {
    const { a, b } = await established()
    const m = a.send('secret')
    const flip = (bytes: Uint8Array, i: number): Uint8Array => { const c = Uint8Array.from(bytes); c[i]! ^= 1; return c }
    const other = toB64u(generateX25519KeyPair().publicKey)
    const tampered: Array<[RatchetMessage, RegExp]> = [
      [{ ...m, ciphertext: flip(m.ciphertext, 0) }, /did not authenticate/],
      [{ ...m, ciphertext: flip(m.ciphertext, m.ciphertext.length - 1) }, /did not authenticate/],
      [{ ...m, ciphertext: m.ciphertext.subarray(0, m.ciphertext.length - 1) }, /did not authenticate/],
      [{ ...m, header: { ...m.header, n: m.header.n + 1 } }, /did not authenticate/],
      [{ ...m, header: { ...m.header, pn: m.header.pn + 1 } }, /did not authenticate/],
      [{ ...m, header: { ...m.header, dh: other } }, /did not authenticate/],
      [{ ...m, header: { ...m.header, dh: m.header.dh.slice(0, -1) + (m.header.dh.endsWith('A') ? 'B' : 'A') } }, /malformed message|did not authenticate/],
      [{ ...m, header: { ...m.header, dh: toB64u(new Uint8Array(32)) } }, /small-order/],
      [{ ...m, header: { ...m.header, n: -1 } }, /malformed message: pn and n/],
      [{ ...m, header: { ...m.header, n: 1.5 } }, /malformed message/],
      [{ ...m, ciphertext: new Uint8Array(15) }, /malformed message: the ciphertext is shorter than its tag/],
      [{ ciphertext: m.ciphertext } as unknown as RatchetMessage, /malformed message: no header/],
      [{ ...m, header: { ...m.header, dh: 'not*a*key' } }, /malformed message: header\.dh/],
    ]
    for (const [bad, message] of tampered) await refused(b, bad, ErrorCode.DecryptFailed, message)
    // associated data: a receiver whose session AD differs (another identity) cannot decrypt it
    const ad = fromB64u(b.state.ad)
    ad[40]! ^= 1
    await refused(new Peer({ ...b.state, ad: toB64u(ad) }), m, ErrorCode.DecryptFailed, /did not authenticate/)
    assert.equal(b.receive(m), 'secret')
  })

  it('ratchet - the same message twice is AM_ERR_MESSAGE_REPLAYED (current chain, skipped key, ended chain)', async () => {
    const { a, b } = await established()
    const m0 = a.send('m0')
    const m1 = a.send('m1')
    const m2 = a.send('m2')
    assert.equal(b.receive(m0), 'm0')
    await refused(b, m0, ErrorCode.MessageReplayed, /^message 0 of this chain was already decrypted$/)
    assert.equal(b.receive(m2), 'm2')
    assert.equal(b.receive(m1), 'm1')
    await refused(b, m1, ErrorCode.MessageReplayed, /^message 1 of this chain was already decrypted$/)
    // after a DH ratchet step the old chain's messages are still replays, not DH steps
    assert.equal(a.receive(b.send('turn')), 'turn')
    assert.equal(b.receive(a.send('new chain')), 'new chain')
    await refused(b, m2, ErrorCode.MessageReplayed, /^message 2 of this chain was already decrypted$/)
    // a message number past the end of an ended chain was never sent
    await refused(b, { ...m2, header: { ...m2.header, n: 3 } }, ErrorCode.DecryptFailed, /ended after 3 messages does not exist/)
  })

  it('ratchet - too far ahead in one chain is AM_ERR_TOO_FAR_AHEAD (default MAX_SKIP 1000)', async () => {
    assert.equal(DEFAULT_MAX_SKIP, 1000)
    assert.equal(DEFAULT_MAX_SKIPPED_TOTAL, 2000)
    const { a, b } = await established()
    assert.equal(b.receive(a.send('m0')), 'm0') // Bob is on Alice's current chain, at n = 1
    const ms = Array.from({ length: DEFAULT_MAX_SKIP + 2 }, (_, i) => a.send(`m${i + 1}`))
    await refused(b, ms[DEFAULT_MAX_SKIP + 1]!, ErrorCode.TooFarAhead, /^message 1002 would skip 1001 message keys in one chain; at most 1000 may be$/)
    assert.equal(b.receive(ms[DEFAULT_MAX_SKIP]!), 'm1001')
    assert.equal(b.state.skipped.length, 1000)
    assert.equal(b.receive(ms[DEFAULT_MAX_SKIP + 1]!), 'm1002')
    assert.equal(b.receive(ms[0]!), 'm1')
    assert.equal(b.receive(ms[999]!), 'm1000')
  })

  it('ratchet - too far ahead across a DH step: the previous chain (pn) and the new chain are bounded', async () => {
    const { a, b } = await established({ maxSkip: 5 })
    assert.equal(b.receive(a.send('first')), 'first')
    for (let i = 0; i < 7; i++) a.send('lost')
    // Bob answers from a new chain (he saw Alice's new key); Alice's next message opens a new chain too
    assert.equal(a.receive(b.send('turn')), 'turn')
    const m = a.send('new chain')
    assert.equal(m.header.pn, 8)
    await refused(b, m, ErrorCode.TooFarAhead, /^the previous chain would skip 7 message keys; at most 5 may be$/)

    const c = await established({ maxSkip: 5 })
    const six = Array.from({ length: 7 }, () => c.a.send('x'))
    await refused(c.b, six[6]!, ErrorCode.TooFarAhead, /^message 6 would skip 6 message keys in a new chain; at most 5 may be$/)
    assert.equal(c.b.receive(six[5]!), 'x')
  })

  it('ratchet - the total of skipped keys is bounded: too many at once is refused, past the bound the oldest are evicted', async () => {
    const limits = { maxSkip: 10, maxSkippedTotal: 15 }
    const { a, b } = await established(limits)
    assert.equal(b.receive(a.send('prime')), 'prime')
    // 8 left behind in the old chain + 8 in the new one = 16 > 15
    const old = Array.from({ length: 8 }, (_, i) => a.send(`old${i}`))
    assert.equal(a.receive(b.send('turn')), 'turn')
    const fresh = Array.from({ length: 9 }, (_, i) => a.send(`new${i}`))
    await refused(b, fresh[8]!, ErrorCode.TooFarAhead, /^message 8 would skip 16 message keys; at most 15 are held$/)
    // within the bound: 8 + 6 = 14 held
    assert.equal(b.receive(fresh[6]!), 'new6')
    assert.equal(b.state.skipped.length, 14)
    // a later chain: the previous one's new7, new8 (to pn) and third0…2 are skipped, 14 + 5 = 19 > 15,
    // so the 4 oldest (old0…old3) are evicted
    assert.equal(a.receive(b.send('turn 2')), 'turn 2')
    const third = Array.from({ length: 4 }, (_, i) => a.send(`third${i}`))
    assert.equal(b.receive(third[3]!), 'third3')
    assert.equal(b.state.skipped.length, 15)
    await refused(b, old[0]!, ErrorCode.MessageReplayed, /or was skipped and its key since evicted/)
    await refused(b, old[3]!, ErrorCode.MessageReplayed, /or was skipped and its key since evicted/)
    assert.equal(b.receive(old[4]!), 'old4')
    assert.equal(b.receive(fresh[8]!), 'new8')
    assert.equal(b.receive(third[0]!), 'third0')
    // a plain replay on a chain that never lost a key keeps the plain wording
    await refused(b, third[3]!, ErrorCode.MessageReplayed, /^message 3 of this chain was already decrypted$/)
  })

  it('ratchet - a responder cannot send before it has received', () => {
    const kp = generateX25519KeyPair()
    const s = ratchetInitBob(new Uint8Array(32), new Uint8Array(132), kp, { now: T0 })
    assert.throws(() => ratchetEncrypt(s, text('x')), { code: ErrorCode.InvalidArgument, message: /cannot send yet/ })
  })

  it('ratchet - a message is AES-256-GCM under HKDF(HMAC(CKs, 0x01)) over AD || header, and CKs advances by HMAC(CKs, 0x02) (§3.1, §5.2)', () => {
    const sk = new Uint8Array(32).fill(7)
    const ad = new Uint8Array(132).fill(9)
    const bobKey = generateX25519KeyPair()
    const s0 = ratchetInitAlice(sk, ad, bobKey.publicKey, { now: T0 })
    const { state: s1, message } = ratchetEncrypt(s0, text('spec check'))
    const ck = fromB64u(s0.cks!)
    const mk = createHmac('sha256', ck).update(Buffer.from([0x01])).digest()
    assert.equal(s1.cks, toB64u(createHmac('sha256', ck).update(Buffer.from([0x02])).digest()))
    const okm = Buffer.from(hkdfSync('sha256', mk, new Uint8Array(32), 'AgentMesh_Ratchet_MessageKeys', 44))
    const header = Buffer.alloc(41)
    header[0] = 0x05
    Buffer.from(fromB64u(message.header.dh)).copy(header, 1)
    header.writeUInt32BE(message.header.pn, 33)
    header.writeUInt32BE(message.header.n, 37)
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32))
    d.setAAD(Buffer.concat([ad, header]))
    d.setAuthTag(message.ciphertext.subarray(-16))
    const plain = Buffer.concat([d.update(message.ciphertext.subarray(0, -16)), d.final()])
    assert.equal(plain.toString(), 'spec check')
    assert.equal(message.header.dh, s0.dhs.pub)
    assert.deepEqual([message.header.pn, message.header.n], [0, 0])
    // and the responder, initialised with SK and its signed prekey as the ratchet key, reads it
    const b = ratchetInitBob(sk, ad, bobKey, { now: T0 })
    assert.equal(str(ratchetDecrypt(b, message).plaintext), 'spec check')
  })

  it('ratchet - KDF_RK is HKDF with the root key as salt and the DH output as input (§5.2)', () => {
    const sk = new Uint8Array(32).fill(3)
    const ad = new Uint8Array(132)
    const bobKey = generateX25519KeyPair()
    const s = ratchetInitAlice(sk, ad, bobKey.publicKey, { now: T0 })
    // DH(DHs, DHr), computed from Bob's side
    const dhOut = diffieHellmanRaw(bobKey.secretKey, fromB64u(s.dhs.pub))
    const okm = Buffer.from(hkdfSync('sha256', dhOut, sk, 'AgentMesh_Ratchet_RootKey', 64))
    assert.equal(s.rk, toB64u(okm.subarray(0, 32)))
    assert.equal(s.cks, toB64u(okm.subarray(32)))
  })
})

/** X25519 from raw keys, independent of the module under test (RFC 8410 DER prefixes). */
function diffieHellmanRaw (secret: Uint8Array, pub: Uint8Array): Buffer {
  return diffieHellman({
    privateKey: createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]), format: 'der', type: 'pkcs8' }),
    publicKey: createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), pub]), format: 'der', type: 'spki' }),
  })
}
