import assert from 'node:assert/strict'
import { hkdfSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { ErrorCode } from '@agentmesh/protocol'
import {
  PQXDH_INFO, acceptSession, createIdentity, createPreKeyBundle, encodeEd25519, encodeX25519, fromB64u, generateExchangeKey,
  generatePqPreKey, initiateSession, signedPreKeySigningBytes, toB64u,
  type AcceptedSession, type InitialMessageHeader,
} from '@agentmesh/crypto'
import { signBytes } from '../src/keys.ts'
import { x25519, x25519PrivateKeyObject } from '../src/x25519.ts'
import { T0, makeAgent, rejects, takeBundle, type Agent } from './session-fixtures.ts'

const keep = (s: AcceptedSession): AcceptedSession => s

/**
 * SK as PQXDH §2.2 / §3.4 define it, computed here from the responder's private keys without the
 * module under test: HKDF(salt = 0^32, IKM = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS, info).
 */
function expectedSecret (bob: Agent, header: InitialMessageHeader, opkSecret?: Uint8Array): string {
  const spk = x25519PrivateKeyObject(bob.spk.secretKey, false)
  const ika = fromB64u(header.exchange_key)
  const eka = fromB64u(header.ephemeral_key)
  const parts = [
    new Uint8Array(32).fill(0xff),
    x25519(spk, ika),
    x25519(bob.xk.privateKeyObject, eka),
    x25519(spk, eka),
    ...(opkSecret === undefined ? [] : [x25519(x25519PrivateKeyObject(opkSecret, false), eka)]),
    ml_kem768.decapsulate(fromB64u(header.kem_ciphertext), bob.pq.secretKey),
  ]
  return Buffer.from(hkdfSync('sha256', Buffer.concat(parts), new Uint8Array(32), 'AgentMesh_CURVE25519_SHA-256_ML-KEM-768', 32)).toString('hex')
}

describe('pqxdh', () => {
  it('pqxdh - both sides derive the same SK and AD, and SK is the spec\'s KDF of the four DHs and the KEM secret', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const opkSecret = bob.published[0]!.secretKey
    const init = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    assert.equal(init.peer, bob.id.amid)
    assert.equal(init.sharedSecret.length, 32)
    assert.deepEqual(init.peerSignedPreKey, bob.spk.publicKey)
    const h = init.initialMessageHeader
    assert.equal(h.amid, alice.id.amid)
    assert.equal(h.signed_prekey_id, 1)
    assert.equal(h.one_time_prekey_id, 100)
    assert.equal(h.pq_prekey_id, 1)
    assert.equal(fromB64u(h.kem_ciphertext).length, 1088)
    assert.equal(PQXDH_INFO, 'AgentMesh_CURVE25519_SHA-256_ML-KEM-768')
    assert.equal(Buffer.from(init.sharedSecret).toString('hex'), expectedSecret(bob, h, opkSecret))

    const acc = await acceptSession(bob.id, bob.xk, bob.store, JSON.parse(JSON.stringify(h)) as InitialMessageHeader, { now: T0, open: keep })
    assert.deepEqual(acc.sharedSecret, init.sharedSecret)
    assert.deepEqual(acc.associatedData, init.associatedData)
    assert.equal(acc.peer, alice.id.amid)
    assert.equal(acc.signedPreKey.id, 1)
    // AD = Encode(IK_A) || Encode(IK_B), each identity as Ed25519 key then X25519 exchange key
    assert.deepEqual(init.associatedData, new Uint8Array(Buffer.concat([
      encodeEd25519(alice.id.publicKey), encodeX25519(alice.xk.publicKey), encodeEd25519(bob.id.publicKey), encodeX25519(bob.xk.publicKey),
    ])))
  })

  it('pqxdh - the one-time prekey is deleted on acceptance and a second acceptSession with it fails', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    assert.equal(await bob.store.countOneTimePreKeys(), 3)
    await acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: keep })
    assert.equal(await bob.store.loadOneTimePreKey(100), undefined)
    assert.equal(await bob.store.countOneTimePreKeys(), 2)
    let opened = 0
    await rejects(() => acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: () => { opened++ } }),
      ErrorCode.BadPrekey, /^initial message: one-time prekey 100 is not held: already used, or never issued$/)
    assert.equal(opened, 0)
  })

  it('pqxdh - when the initial ciphertext does not open, nothing is deleted (PQXDH §3.4 order)', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const boom = new Error('does not authenticate')
    await assert.rejects(acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: () => { throw boom } }), boom)
    assert.ok(await bob.store.loadOneTimePreKey(100), 'the one-time prekey is still held')
    const acc = await acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: () => 'ok' })
    assert.equal(acc.opened, 'ok')
  })

  it('pqxdh - of two concurrent acceptances of one one-time prekey, exactly one succeeds', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const results = await Promise.allSettled([0, 1].map(() => acceptSession(bob.id, bob.xk, bob.store, h, { now: T0, open: async () => 'ok' })))
    assert.deepEqual(results.map(r => r.status).sort(), ['fulfilled', 'rejected'])
    const failed = results.find(r => r.status === 'rejected') as PromiseRejectedResult
    assert.equal(failed.reason.code, ErrorCode.BadPrekey)
    assert.match(failed.reason.message, /one-time prekey 100 was used by another initial message meanwhile|one-time prekey 100 is not held/)
  })

  it('pqxdh - without a one-time prekey (last resort) both sides still agree, and DH4 is left out', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob', 0)
    const bundle = takeBundle(bob)
    assert.equal(bundle.one_time_prekey, undefined)
    const init = initiateSession(alice.id, alice.xk, bundle, { now: T0 })
    assert.equal('one_time_prekey_id' in init.initialMessageHeader, false)
    assert.equal(Buffer.from(init.sharedSecret).toString('hex'), expectedSecret(bob, init.initialMessageHeader))
    const acc = await acceptSession(bob.id, bob.xk, bob.store, init.initialMessageHeader, { now: T0, open: keep })
    assert.deepEqual(acc.sharedSecret, init.sharedSecret)
    // a second session from the same bundle gets a different SK (fresh ephemeral key and encapsulation)
    assert.notDeepEqual(initiateSession(alice.id, alice.xk, bundle, { now: T0 }).sharedSecret, init.sharedSecret)
  })

  it('pqxdh - a bundle with a bad signature starts nothing (AM_ERR_BAD_PREKEY)', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const bundle = takeBundle(bob)
    const sig = fromB64u(bundle.signed_prekey.sig)
    sig[0]! ^= 0x80
    await rejects(() => initiateSession(alice.id, alice.xk, { ...bundle, signed_prekey: { ...bundle.signed_prekey, sig: toB64u(sig) } }, { now: T0 }),
      ErrorCode.BadPrekey, /signed_prekey\.sig does not verify/)
  })

  it('pqxdh - a signed small-order prekey is refused', async () => {
    const alice = await makeAgent('alice')
    const mallory = createIdentity('mallory')
    // Mallory signs an all-zero "signed prekey": the signatures verify, the DH is refused
    const zero = new Uint8Array(32)
    const pq = generatePqPreKey(mallory, 1, { now: T0 })
    const spk = { id: 1, publicKey: zero, secretKey: zero, createdAt: T0, signature: signBytes(mallory.privateKeyObject, signedPreKeySigningBytes(zero)) }
    const bundle = createPreKeyBundle(mallory.amid, generateExchangeKey(mallory), spk, pq)
    await rejects(() => initiateSession(alice.id, alice.xk, bundle, { now: T0 }),
      ErrorCode.BadPrekey, /^prekey bundle: signed_prekey\.key is not a usable X25519 key$/)
  })

  it('pqxdh - a bundle of someone else than the AMID asked for, and a header naming someone else than the sender, are refused', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const mallory = await makeAgent('mallory')
    // a relay handing out its own bundle when asked for Bob's
    await rejects(() => initiateSession(alice.id, alice.xk, takeBundle(mallory), { now: T0, peer: bob.id.amid }),
      ErrorCode.BadPrekey, new RegExp(`^prekey bundle: it is ${mallory.id.amid}'s, not ${bob.id.amid}'s$`))
    const init = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0, peer: bob.id.amid })
    await rejects(() => acceptSession(bob.id, bob.xk, bob.store, init.initialMessageHeader, { now: T0, from: mallory.id.amid, open: keep }),
      ErrorCode.BadPrekey, new RegExp(`^initial message: its header names ${alice.id.amid}, but it came from ${mallory.id.amid}$`))
    const acc = await acceptSession(bob.id, bob.xk, bob.store, init.initialMessageHeader, { now: T0, from: alice.id.amid, open: keep })
    assert.deepEqual(acc.sharedSecret, init.sharedSecret)
  })

  it('pqxdh - an initial message whose exchange key is not signed by the claimed identity is refused', async () => {
    const alice = await makeAgent('alice')
    const mallory = await makeAgent('mallory')
    const bob = await makeAgent('bob')
    const { initialMessageHeader: h } = initiateSession(mallory.id, mallory.xk, takeBundle(bob), { now: T0 })
    // Mallory claims to be Alice
    await rejects(() => acceptSession(bob.id, bob.xk, bob.store, { ...h, amid: alice.id.amid }, { now: T0, open: keep }),
      ErrorCode.BadPrekey, new RegExp(`^initial message: exchange_key_sig does not verify with the identity of ${alice.id.amid}$`))
    // and with Alice's real signed exchange key, Mallory does not know its private key: SK differs, AD names Alice
    const acc = await acceptSession(bob.id, bob.xk, bob.store,
      { ...h, amid: alice.id.amid, exchange_key: toB64u(alice.xk.publicKey), exchange_key_sig: toB64u(alice.xk.signature) }, { now: T0, open: keep })
    const init = initiateSession(mallory.id, mallory.xk, takeBundle(bob), { now: T0 })
    assert.notDeepEqual(acc.sharedSecret, init.sharedSecret)
  })

  it('pqxdh - an initial message naming prekeys that are not held, or malformed, is AM_ERR_BAD_PREKEY', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const { initialMessageHeader: h } = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const cases: Array<[unknown, RegExp]> = [
      [{ ...h, signed_prekey_id: 2 }, /^initial message: signed prekey 2 is not held/],
      [{ ...h, pq_prekey_id: 9 }, /^initial message: PQ prekey 9 is not held/],
      [{ ...h, one_time_prekey_id: 7 }, /^initial message: one-time prekey 7 is not held/],
      [{ ...h, kem_ciphertext: h.kem_ciphertext.slice(4) }, /kem_ciphertext is not a 1088-byte/],
      [{ ...h, ephemeral_key: 'x' }, /ephemeral_key is not a 32-byte/],
      [{ ...h, ephemeral_key: toB64u(new Uint8Array(32)) }, /is not a usable X25519 key/],
      [{ ...h, amid: 'alice' }, /amid is not an AMID/],
      [{ ...h, one_time_prekey_id: 'a' }, /one_time_prekey_id is not an integer/],
      [null, /not an object/],
    ]
    for (const [header, message] of cases) {
      await rejects(() => acceptSession(bob.id, bob.xk, bob.store, header as InitialMessageHeader, { now: T0, open: keep }), ErrorCode.BadPrekey, message)
    }
    assert.equal(await bob.store.countOneTimePreKeys(), 3, 'no failed attempt consumed a one-time prekey')
  })

  it('pqxdh - an altered KEM ciphertext gives another SK (ML-KEM implicit rejection), caught by the initial ciphertext', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const init = initiateSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const ct = fromB64u(init.initialMessageHeader.kem_ciphertext)
    ct[100]! ^= 1
    const acc = await acceptSession(bob.id, bob.xk, bob.store, { ...init.initialMessageHeader, kem_ciphertext: toB64u(ct) }, { now: T0, open: keep })
    assert.notDeepEqual(acc.sharedSecret, init.sharedSecret)
  })
})
