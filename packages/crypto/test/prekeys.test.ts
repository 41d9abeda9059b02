import assert from 'node:assert/strict'
import { hkdfSync, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import {
  DEFAULT_PREKEY_GRACE_MS, DEFAULT_PREKEY_ROTATION_MS, ML_KEM_768_PUBLIC_KEY_BYTES, createIdentity, createPreKeyBundle,
  encodeX25519, exchangeKeyFromSecret, exchangeKeySigningBytes, fromB64u, generateExchangeKey, generateOneTimePreKeys,
  generatePqPreKey, generateSignedPreKey, generateX25519KeyPair, memoryPreKeyStore, needsRotation, oneTimePreKeyPublic,
  preKeyBundleBase, pqPreKeySigningBytes, rotatePreKeys, signedPreKeySigningBytes, toB64u, verifyBundle, x25519KeyPairFromSecret,
  type PreKeyBundle,
} from '@agentmesh/crypto'
import { decodeB64u, hkdfSha256, hkdfSha256Short, hmacSha256 } from '../src/kdf.ts'
import { x25519, x25519PublicKeyObject } from '../src/x25519.ts'
import { T0, makeAgent, rejects } from './session-fixtures.ts'

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const DAY = 24 * 60 * 60 * 1000

describe('kdf', () => {
  // RFC 5869 Appendix A.1, test case 1 (SHA-256)
  const ikm = hex('0b'.repeat(22))
  const salt = hex('000102030405060708090a0b0c')
  const info = hex('f0f1f2f3f4f5f6f7f8f9')
  const prk = '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5'
  const okm = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865'

  it('kdf - hkdfSha256 gives the OKM of RFC 5869 test case 1', () => {
    assert.equal(toHex(hkdfSha256(ikm, salt, info, 42)), okm)
  })

  it('kdf - hmacSha256 gives the PRK of RFC 5869 test case 1 (HKDF-Extract = HMAC(salt, IKM))', () => {
    assert.equal(toHex(hmacSha256(salt, ikm)), prk)
  })

  it('kdf - hmacSha256 gives RFC 4231 test case 2', () => {
    assert.equal(toHex(hmacSha256(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'))),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
  })

  it('kdf - hkdfSha256Short gives the OKM of RFC 5869 test case 1 and agrees with hkdfSync for 1…64 bytes', () => {
    assert.equal(toHex(hkdfSha256Short(ikm, salt, info, 42)), okm)
    for (let len = 1; len <= 64; len++) {
      const k = randomBytes(32)
      const s = randomBytes(len % 3 === 0 ? 0 : 32)
      const i = randomBytes(len % 20)
      assert.equal(toHex(hkdfSha256Short(k, s, i, len)), Buffer.from(hkdfSync('sha256', k, s, i, len)).toString('hex'), `length ${len}`)
    }
    assert.throws(() => hkdfSha256Short(ikm, salt, info, 65), RangeError)
  })

  it('kdf - decodeB64u accepts only canonical unpadded base64url of the asked length', () => {
    const k = randomBytes(32)
    assert.deepEqual(decodeB64u(toB64u(k), 32), new Uint8Array(k))
    assert.equal(decodeB64u(toB64u(k), 31), undefined)
    assert.equal(decodeB64u(toB64u(k) + '=', 32), undefined)
    assert.equal(decodeB64u(toB64u(k).slice(0, 20) + '+' + toB64u(k).slice(21), 32), undefined)
    // standard base64's alphabet is not base64url's
    assert.deepEqual(decodeB64u('-_8', 2), new Uint8Array([0xfb, 0xff]))
    assert.equal(decodeB64u('+/8', 2), undefined)
    // 32 bytes → 43 characters whose last one carries 2 unused bits: only the zero-bits form is accepted
    const s = toB64u(new Uint8Array(32))
    assert.equal(s.at(-1), 'A')
    assert.equal(decodeB64u(s.slice(0, -1) + 'B', 32), undefined)
    assert.equal(decodeB64u(42, 32), undefined)
  })
})

describe('x25519', () => {
  it('x25519 - raw keys through the DER prefixes reproduce RFC 7748 §6.1', () => {
    const a = x25519KeyPairFromSecret(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
    const b = x25519KeyPairFromSecret(hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'))
    assert.equal(toHex(a.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    assert.equal(toHex(b.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
    assert.equal(toHex(x25519(a.privateKeyObject, b.publicKey)), k)
    assert.equal(toHex(x25519(b.privateKeyObject, x25519PublicKeyObject(a.publicKey))), k)
  })

  it('x25519 - generating 300 key pairs in a loop finishes (STACK.md: the JWK-export hang)', { timeout: 20_000 }, () => {
    const seen = new Set<string>()
    for (let i = 0; i < 300; i++) {
      const kp = generateX25519KeyPair()
      assert.equal(kp.publicKey.length, 32)
      assert.equal(kp.secretKey.length, 32)
      assert.equal(kp.privateKeyObject.asymmetricKeyType, 'x25519')
      seen.add(toB64u(kp.publicKey))
      // and the key is usable at once, as the ratchet uses it
      if (i % 50 === 0) assert.deepEqual(x25519KeyPairFromSecret(kp.secretKey).publicKey, kp.publicKey)
    }
    assert.equal(seen.size, 300)
  })

  it('x25519 - a small-order public key is refused (RFC 7748 §6.1 all-zero check)', () => {
    const kp = generateX25519KeyPair()
    assert.throws(() => x25519(kp.privateKeyObject, new Uint8Array(32)))
    assert.throws(() => x25519(kp.privateKeyObject, hex('0100000000000000000000000000000000000000000000000000000000000000')))
  })

  it('x25519 - EncodeEC is the type byte 0x05 then the key', () => {
    const kp = generateX25519KeyPair()
    const e = encodeX25519(kp.publicKey)
    assert.equal(e.length, 33)
    assert.equal(e[0], 0x05)
    assert.deepEqual(e.subarray(1), kp.publicKey)
  })
})

describe('prekeys', () => {
  it('prekeys - an exchange key is signed by the identity and comes back the same from its secret', () => {
    const id = createIdentity('alice')
    const xk = generateExchangeKey(id)
    const again = exchangeKeyFromSecret(id, xk.secretKey)
    assert.deepEqual(again.publicKey, xk.publicKey)
    assert.deepEqual(again.signature, xk.signature)
    assert.equal(xk.signature.length, 64)
    assert.deepEqual(exchangeKeySigningBytes(xk.publicKey).subarray(0, 23), new TextEncoder().encode('agentmesh/exchange-key\n'))
  })

  it('prekeys - a bundle verifies, survives JSON, and decodes to the keys it was made from', async () => {
    const bob = await makeAgent('bob', 1)
    const opk = bob.published[0]!
    const bundle = createPreKeyBundle(bob.id.amid, bob.xk, bob.spk, bob.pq, opk)
    const v = verifyBundle(JSON.parse(JSON.stringify(bundle)) as PreKeyBundle)
    assert.equal(v.amid, bob.id.amid)
    assert.deepEqual(v.identityKey, bob.id.publicKey)
    assert.deepEqual(v.exchangeKey, bob.xk.publicKey)
    assert.deepEqual(v.signedPreKey, { id: 1, key: bob.spk.publicKey })
    assert.deepEqual(v.oneTimePreKey, { id: 100, key: opk.publicKey })
    assert.deepEqual(v.pqPreKey, { id: 1, key: bob.pq.publicKey })
    assert.equal(fromB64u(bundle.pq_prekey.key).length, ML_KEM_768_PUBLIC_KEY_BYTES)
    // the relay's shape: base fields plus amid and one one-time prekey
    assert.deepEqual({ amid: bob.id.amid, ...preKeyBundleBase(bob.xk, bob.spk, bob.pq), one_time_prekey: oneTimePreKeyPublic(opk) }, bundle)
  })

  it('prekeys - a bundle without a one-time prekey (last resort) verifies', async () => {
    const bob = await makeAgent('bob', 0)
    const v = verifyBundle(createPreKeyBundle(bob.id.amid, bob.xk, bob.spk, bob.pq))
    assert.equal(v.oneTimePreKey, undefined)
  })

  it('prekeys - a bundle with a bad signature is AM_ERR_BAD_PREKEY naming the field', async () => {
    const bob = await makeAgent('bob', 1)
    const good = createPreKeyBundle(bob.id.amid, bob.xk, bob.spk, bob.pq, bob.published[0])
    const flip = (b64: string): string => { const b = fromB64u(b64); b[5]! ^= 1; return toB64u(b) }
    const cases: Array<[PreKeyBundle, RegExp]> = [
      [{ ...good, exchange_key_sig: flip(good.exchange_key_sig) }, /^prekey bundle: exchange_key_sig does not verify with the identity of am/],
      [{ ...good, exchange_key: flip(good.exchange_key) }, /exchange_key_sig does not verify/],
      [{ ...good, signed_prekey: { ...good.signed_prekey, sig: flip(good.signed_prekey.sig) } }, /^prekey bundle: signed_prekey\.sig does not verify/],
      [{ ...good, signed_prekey: { ...good.signed_prekey, key: flip(good.signed_prekey.key) } }, /signed_prekey\.sig does not verify/],
      [{ ...good, pq_prekey: { ...good.pq_prekey, sig: flip(good.pq_prekey.sig) } }, /^prekey bundle: pq_prekey\.sig does not verify/],
      [{ ...good, pq_prekey: { ...good.pq_prekey, key: flip(good.pq_prekey.key) } }, /pq_prekey\.sig does not verify/],
      // another agent's keys under this AMID
      [{ ...good, amid: createIdentity().amid }, /exchange_key_sig does not verify/],
      // a signature of one kind presented as another: the domain prefixes keep them apart
      [{ ...good, exchange_key: good.signed_prekey.key, exchange_key_sig: good.signed_prekey.sig }, /exchange_key_sig does not verify/],
    ]
    for (const [bundle, message] of cases) await rejects(() => verifyBundle(bundle), ErrorCode.BadPrekey, message)
  })

  it('prekeys - a malformed bundle is AM_ERR_BAD_PREKEY naming the field', async () => {
    const bob = await makeAgent('bob', 1)
    const good = createPreKeyBundle(bob.id.amid, bob.xk, bob.spk, bob.pq, bob.published[0])
    const cases: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      [{ ...good, amid: 'bob' }, /amid is not an AMID/],
      [{ ...good, exchange_key: good.exchange_key.slice(1) }, /exchange_key is not a 32-byte base64url key/],
      [{ ...good, signed_prekey: { ...good.signed_prekey, id: -1 } }, /signed_prekey\.id is not an integer/],
      [{ ...good, signed_prekey: { ...good.signed_prekey, id: '1' } }, /signed_prekey\.id is not an integer/],
      [{ ...good, signed_prekey: undefined }, /signed_prekey\.id/],
      [{ ...good, pq_prekey: { ...good.pq_prekey, key: toB64u(new Uint8Array(32)) } }, /pq_prekey\.key is not a 1184-byte/],
      [{ ...good, one_time_prekey: { id: 1.5, key: good.one_time_prekey!.key } }, /one_time_prekey\.id is not an integer/],
      [{ ...good, one_time_prekey: { id: 1, key: 'not*base64' } }, /one_time_prekey\.key is not a 32-byte/],
    ]
    for (const [bundle, message] of cases) await rejects(() => verifyBundle(bundle as PreKeyBundle), ErrorCode.BadPrekey, message)
  })

  it('prekeys - prekey signatures cover the encoded key under their own prefix', () => {
    const id = createIdentity()
    const spk = generateSignedPreKey(id, 7, { now: T0 })
    const pq = generatePqPreKey(id, 8, { now: T0 })
    const spkBytes = signedPreKeySigningBytes(spk.publicKey)
    assert.equal(new TextDecoder().decode(spkBytes.subarray(0, 24)), 'agentmesh/signed-prekey\n')
    assert.deepEqual(spkBytes.subarray(24), encodeX25519(spk.publicKey))
    const pqBytes = pqPreKeySigningBytes(pq.publicKey)
    assert.equal(new TextDecoder().decode(pqBytes.subarray(0, 20)), 'agentmesh/pq-prekey\n')
    assert.equal(pqBytes[20], 0x09)
    assert.equal(pqBytes.length, 20 + 1 + 1184)
    assert.equal(pq.secretKey.length, 2400)
    assert.equal(spk.createdAt, T0)
  })

  it('prekeys - ids must be uint32', async () => {
    const id = createIdentity()
    await rejects(() => generateSignedPreKey(id, -1, { now: T0 }), ErrorCode.InvalidArgument, /signed prekey id must be an integer/)
    await rejects(() => generateOneTimePreKeys(0xffffffff, 2), ErrorCode.InvalidArgument, /one-time prekey id/)
    assert.deepEqual(generateOneTimePreKeys(5, 3).map(k => k.id), [5, 6, 7])
    assert.deepEqual(generateOneTimePreKeys(5, 0), [])
  })

  it('prekeys - needsRotation after the interval (7 days by default)', () => {
    assert.equal(DEFAULT_PREKEY_ROTATION_MS, 7 * DAY)
    const spk = { createdAt: T0 }
    assert.equal(needsRotation(spk, T0), false)
    assert.equal(needsRotation(spk, T0 + 7 * DAY - 1), false)
    assert.equal(needsRotation(spk, T0 + 7 * DAY), true)
    assert.equal(needsRotation(spk, T0 + DAY, DAY), true)
  })

  it('prekeys - rotatePreKeys makes the first keys, replaces them after the interval, and deletes replaced ones after the grace period', async () => {
    const id = createIdentity()
    const store = memoryPreKeyStore()
    const first = await rotatePreKeys(id, store, { now: T0 })
    assert.deepEqual(first.rotated, { signed: true, pq: true })
    assert.equal(first.signedPreKey.id, 1)
    assert.equal(first.pqPreKey.id, 1)

    const same = await rotatePreKeys(id, store, { now: T0 + DAY })
    assert.deepEqual(same.rotated, { signed: false, pq: false })
    assert.equal(same.signedPreKey.id, 1)

    const second = await rotatePreKeys(id, store, { now: T0 + 7 * DAY })
    assert.deepEqual(second.rotated, { signed: true, pq: true })
    assert.equal(second.signedPreKey.id, 2)
    assert.equal(second.pqPreKey.id, 2)
    assert.deepEqual(second.removed, { signed: [], pq: [] })
    // the replaced key is still held for delayed initial messages
    assert.ok(await store.loadSignedPreKey(1))

    assert.equal(DEFAULT_PREKEY_GRACE_MS, 30 * DAY)
    const later = await rotatePreKeys(id, store, { now: T0 + 7 * DAY + DEFAULT_PREKEY_GRACE_MS, intervalMs: 365 * DAY })
    assert.deepEqual(later.removed, { signed: [1], pq: [1] })
    assert.equal(await store.loadSignedPreKey(1), undefined)
    assert.equal(await store.loadPqPreKey(1), undefined)
    assert.deepEqual((await store.listSignedPreKeys()).map(k => k.id), [2])
    // a fresh bundle from the current keys verifies
    const xk = generateExchangeKey(id)
    assert.equal(verifyBundle(createPreKeyBundle(id.amid, xk, later.signedPreKey, later.pqPreKey)).signedPreKey.id, 2)
    await rejects(() => rotatePreKeys(id, store, { now: T0, intervalMs: 0 }), ErrorCode.InvalidArgument, /intervalMs must be > 0/)
  })

  it('prekeys - the memory store removes a one-time prekey once, also under concurrent calls', async () => {
    const store = memoryPreKeyStore()
    await store.storeOneTimePreKeys(generateOneTimePreKeys(1, 2))
    assert.equal(await store.countOneTimePreKeys(), 2)
    const results = await Promise.all([store.removeOneTimePreKey(1), store.removeOneTimePreKey(1), store.removeOneTimePreKey(1)])
    assert.deepEqual(results.filter(Boolean).length, 1)
    assert.equal(await store.loadOneTimePreKey(1), undefined)
    assert.equal(await store.countOneTimePreKeys(), 1)
  })
})
