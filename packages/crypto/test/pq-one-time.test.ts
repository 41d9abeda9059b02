/** One-time ML-KEM-768 prekeys (PQXDH rev. 3 §3.2): signed with their id, used once, the last-resort key only when none is left. */
import assert from 'node:assert/strict'
import { hkdfSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { ErrorCode } from '@agentmesh/protocol'
import {
  PQ_ONE_TIME_PREKEY_SIGNING_PREFIX, acceptSession, createIdentity, createPreKeyBundle, fromB64u, generatePqOneTimePreKeys,
  initiateSession, pqOneTimePreKeyPublic, pqOneTimePreKeySigningBytes, toB64u, verifyBundle, verifyInitialMessageHeader, verifyPqOneTimePreKey,
  type AcceptedSession, type InitialMessageHeader, type PqOneTimePreKeyRecord, type PreKeyBundle,
} from '@agentmesh/crypto'
import { signBytes } from '../src/keys.ts'
import { x25519, x25519PrivateKeyObject } from '../src/x25519.ts'
import { T0, makeAgent, rejects, type Agent } from './session-fixtures.ts'

const keep = (s: AcceptedSession): AcceptedSession => s

/** An agent that also published `n` one-time PQ prekeys (ids 500…), and the relay's copy of them. */
async function withPq (name: string, n: number): Promise<Agent & { pqPublished: PqOneTimePreKeyRecord[], pqAll: PqOneTimePreKeyRecord[] }> {
  const a = await makeAgent(name, 0)
  const pqAll = generatePqOneTimePreKeys(a.id, 500, n)
  await a.store.storePqOneTimePreKeys(pqAll)
  return { ...a, pqPublished: [...pqAll], pqAll }
}

/** A bundle as the relay hands it out: one one-time PQ prekey each, then none. */
function takeBundle (a: Agent & { pqPublished: PqOneTimePreKeyRecord[] }): PreKeyBundle {
  return JSON.parse(JSON.stringify(createPreKeyBundle(a.id.amid, a.xk, a.spk, a.pq, undefined, a.pqPublished.shift()))) as PreKeyBundle
}

/** SK computed from the responder's private keys without the module under test, with the KEM secret from `kemSecret`. */
function expectedSecret (bob: Agent, header: InitialMessageHeader, kemSecret: Uint8Array): string {
  const spk = x25519PrivateKeyObject(bob.spk.secretKey, false)
  const eka = fromB64u(header.ephemeral_key)
  const parts = [
    new Uint8Array(32).fill(0xff),
    x25519(spk, fromB64u(header.exchange_key)),
    x25519(bob.xk.privateKeyObject, eka),
    x25519(spk, eka),
    ml_kem768.decapsulate(fromB64u(header.kem_ciphertext), kemSecret),
  ]
  return Buffer.from(hkdfSync('sha256', Buffer.concat(parts), new Uint8Array(32), 'AgentMesh_CURVE25519_SHA-256_ML-KEM-768', 32)).toString('hex')
}

describe('one-time PQ prekeys', () => {
  it('pq one-time - the signature covers the prefix, the id (uint32 big-endian), the KEM type byte and the key', () => {
    const id = createIdentity('bob')
    const [r] = generatePqOneTimePreKeys(id, 0x01020304, 1)
    const bytes = pqOneTimePreKeySigningBytes(r!.id, r!.publicKey)
    const prefix = Buffer.from(PQ_ONE_TIME_PREKEY_SIGNING_PREFIX)
    assert.equal(PQ_ONE_TIME_PREKEY_SIGNING_PREFIX, 'agentmesh/pq-one-time-prekey\n')
    assert.deepEqual(Buffer.from(bytes.subarray(0, prefix.length)), prefix)
    assert.deepEqual([...bytes.subarray(prefix.length, prefix.length + 5)], [1, 2, 3, 4, 0x09])
    assert.deepEqual(Buffer.from(bytes.subarray(prefix.length + 5)), Buffer.from(r!.publicKey))
    assert.equal(r!.publicKey.length, 1184)
    assert.equal(r!.secretKey.length, 2400)
    assert.deepEqual(verifyPqOneTimePreKey(id.amid, pqOneTimePreKeyPublic(r!)).key, r!.publicKey)
  })

  it('pq one-time - two sessions from two bundle fetches use two different one-time PQ prekeys, each deleted when accepted', async () => {
    const alice = await makeAgent('alice')
    const bob = await withPq('bob', 2)
    const s1 = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const s2 = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    assert.equal(s1.initialMessageHeader.pq_one_time_prekey_id, 500)
    assert.equal(s2.initialMessageHeader.pq_one_time_prekey_id, 501)
    assert.equal(s1.initialMessageHeader.pq_prekey_id, 1, 'the last-resort id is still named')
    // CT is to the one-time key: SK is what its decapsulation key gives, not the last-resort one's
    assert.equal(Buffer.from(s1.sharedSecret).toString('hex'), expectedSecret(bob, s1.initialMessageHeader, bob.pqAll[0]!.secretKey))
    assert.notEqual(Buffer.from(s1.sharedSecret).toString('hex'), expectedSecret(bob, s1.initialMessageHeader, bob.pq.secretKey))

    assert.equal(await bob.store.countPqOneTimePreKeys(), 2)
    const a1 = await acceptSession(bob.id, bob.xk, bob.store, s1.initialMessageHeader, { now: T0, open: keep })
    assert.deepEqual(a1.sharedSecret, s1.sharedSecret)
    assert.equal(await bob.store.loadPqOneTimePreKey(500), undefined, 'deleted once used')
    assert.equal(await bob.store.countPqOneTimePreKeys(), 1)
    const a2 = await acceptSession(bob.id, bob.xk, bob.store, s2.initialMessageHeader, { now: T0, open: keep })
    assert.deepEqual(a2.sharedSecret, s2.sharedSecret)
    assert.equal(await bob.store.countPqOneTimePreKeys(), 0)
    assert.ok(await bob.store.loadPqPreKey(1), 'the last-resort key stays')

    // the same initial message again: its one-time PQ prekey is gone
    let opened = 0
    await rejects(() => acceptSession(bob.id, bob.xk, bob.store, s1.initialMessageHeader, { now: T0, open: () => { opened++ } }),
      ErrorCode.BadPrekey, /^initial message: one-time PQ prekey 500 is not held: already used, or never issued$/)
    assert.equal(opened, 0)
  })

  it('pq one-time - once none is left the last-resort PQ prekey is used, and the header names none', async () => {
    const alice = await makeAgent('alice')
    const bob = await withPq('bob', 1)
    initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const bundle = takeBundle(bob)
    assert.equal(bundle.pq_one_time_prekey, undefined)
    const s = initiateSession(alice.id, alice.xk, bundle, { now: T0 })
    assert.equal('pq_one_time_prekey_id' in s.initialMessageHeader, false)
    assert.equal(Buffer.from(s.sharedSecret).toString('hex'), expectedSecret(bob, s.initialMessageHeader, bob.pq.secretKey))
    const a = await acceptSession(bob.id, bob.xk, bob.store, s.initialMessageHeader, { now: T0, open: keep })
    assert.deepEqual(a.sharedSecret, s.sharedSecret)
    assert.equal(await bob.store.countPqOneTimePreKeys(), 1, 'the one handed out but not used yet is still held')
  })

  it('pq one-time - when the first message does not open, the one-time PQ prekey is kept; two acceptances of one: exactly one succeeds', async () => {
    const alice = await makeAgent('alice')
    const bob = await withPq('bob', 1)
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const boom = new Error('does not authenticate')
    await assert.rejects(acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: () => { throw boom } }), boom)
    assert.ok(await bob.store.loadPqOneTimePreKey(500))
    const results = await Promise.allSettled([0, 1].map(() => acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: async () => 'ok' })))
    assert.deepEqual(results.map(r => r.status).sort(), ['fulfilled', 'rejected'])
    assert.match((results.find(r => r.status === 'rejected') as PromiseRejectedResult).reason.message, /one-time PQ prekey 500 (was used by another initial message meanwhile|is not held)/)
  })

  it('pq one-time - a relay that swaps, re-signs, relabels or promotes a one-time PQ prekey is refused by the initiator', async () => {
    const alice = await makeAgent('alice')
    const bob = await withPq('bob', 1)
    const genuine = takeBundle(bob)
    const relayKey = ml_kem768.keygen()
    const relay = createIdentity('relay')
    const cases: Array<[string, PreKeyBundle, RegExp]> = [
      ['its own KEM key under bob\'s signature', { ...genuine, pq_one_time_prekey: { ...genuine.pq_one_time_prekey!, key: toB64u(relayKey.publicKey) } },
        /pq_one_time_prekey\.sig does not verify with the identity of/],
      ['its own KEM key signed by the relay', {
        ...genuine,
        pq_one_time_prekey: { id: 500, key: toB64u(relayKey.publicKey), sig: toB64u(signBytes(relay.privateKeyObject, pqOneTimePreKeySigningBytes(500, relayKey.publicKey))) },
      }, /pq_one_time_prekey\.sig does not verify/],
      ['the genuine key under another id', { ...genuine, pq_one_time_prekey: { ...genuine.pq_one_time_prekey!, id: 501 } }, /pq_one_time_prekey\.sig does not verify .*for id 501/],
      ['a short key', { ...genuine, pq_one_time_prekey: { ...genuine.pq_one_time_prekey!, key: genuine.pq_one_time_prekey!.key.slice(0, 100) } }, /pq_one_time_prekey\.key is not a 1184-byte/],
      ['the one-time key passed off as the last-resort one', { ...genuine, pq_prekey: { id: 500, key: genuine.pq_one_time_prekey!.key, sig: genuine.pq_one_time_prekey!.sig } }, /pq_prekey\.sig does not verify/],
    ]
    for (const [what, bundle, message] of cases) {
      await rejects(() => initiateSession(alice.id, alice.xk, bundle, { now: T0 }), ErrorCode.BadPrekey, message)
      assert.throws(() => verifyBundle(bundle), { code: ErrorCode.BadPrekey }, what)
    }
    // the genuine bundle still works
    assert.equal(initiateSession(alice.id, alice.xk, genuine, { now: T0 }).initialMessageHeader.pq_one_time_prekey_id, 500)
  })

  it('pq one-time - a header whose pq_one_time_prekey_id is not a uint32 is refused', async () => {
    const alice = await makeAgent('alice')
    const bob = await withPq('bob', 1)
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    for (const bad of ['500', -1, 2 ** 32, 1.5]) {
      assert.throws(() => verifyInitialMessageHeader({ ...h, pq_one_time_prekey_id: bad as number }), { code: ErrorCode.BadPrekey, message: /pq_one_time_prekey_id is not an integer/ })
    }
  })
})
