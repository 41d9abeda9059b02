import assert from 'node:assert/strict'
import { sign } from 'node:crypto'
import { describe, it } from 'node:test'
import { base58 } from '@scure/base'
import { PROTOCOL, type Envelope, type SignedEnvelope } from '@agentmesh/protocol'
import {
  amidFromPublicKey, createIdentity, envelopeSigningBytes, fromB64u, generateKeyPair, isAmid, keyForAmid, keyPairFromSecret,
  publicKeyFromAmid, signChallenge, signEnvelope, toB64u, verifyChallenge, verifyEnvelope, verifyEnvelopeAsync,
} from '@agentmesh/crypto'

const alice = createIdentity('alice')
const bob = createIdentity('bob')
const carol = createIdentity('carol')

function envelope (): SignedEnvelope {
  return signEnvelope(alice, { id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', to: bob.amid, type: 'chat', payload: { text: 'hello', n: 1 }, ts: 1_700_000_000_000 })
}

describe('keys', () => {
  it('keys - a generated key pair has 32-byte keys that sign and verify', () => {
    const kp = generateKeyPair()
    assert.equal(kp.secretKey.length, 32)
    assert.equal(kp.publicKey.length, 32)
    const again = keyPairFromSecret(kp.secretKey)
    assert.deepEqual(again.publicKey, kp.publicKey)
    assert.equal(kp.publicKeyObject.asymmetricKeyType, 'ed25519')
    assert.notDeepEqual(generateKeyPair().secretKey, kp.secretKey)
  })

  it('keys - keyPairFromSecret refuses a secret that is not 32 bytes', () => {
    assert.throws(() => keyPairFromSecret(new Uint8Array(31)), { name: 'RangeError', message: 'an Ed25519 secret key is 32 bytes' })
    assert.throws(() => keyPairFromSecret(new Uint8Array(64)), { name: 'RangeError', message: 'an Ed25519 secret key is 32 bytes' })
  })

  it('keys - keyPairFromSecret matches the RFC 8032 test vector 1', () => {
    const secret = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')
    const kp = keyPairFromSecret(secret)
    assert.equal(Buffer.from(kp.publicKey).toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
    // the empty message's signature from the RFC
    assert.equal(Buffer.from(sign(null, new Uint8Array(0), kp.privateKeyObject)).toString('hex'),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
  })

  it('keys - an AMID round-trips to the same public key', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = generateKeyPair()
      const amid = amidFromPublicKey(publicKey)
      assert.ok(amid.startsWith('am'))
      assert.equal(isAmid(amid), true, amid)
      assert.deepEqual(publicKeyFromAmid(amid), publicKey)
    }
    assert.equal(alice.amid, amidFromPublicKey(alice.publicKey))
  })

  it('keys - isAmid rejects what is not an AMID', () => {
    const good = alice.amid
    const bad = [
      '', 'am', 'hello', good.slice(2), 'AM' + good.slice(2), 'xx' + good.slice(2),
      // characters outside base58btc (0, O, I, l) in an otherwise good AMID
      good.slice(0, 20) + '0' + good.slice(21), good.slice(0, 20) + 'O' + good.slice(21),
      good.slice(0, 20) + 'I' + good.slice(21), good.slice(0, 20) + 'l' + good.slice(21),
      'am' + '1'.repeat(44), // 44 zero bytes
      ' ' + good, good + '\n',
      'am' + base58.encode(new Uint8Array(33).fill(7)), // right alphabet, 33 bytes
      'am' + base58.encode(new Uint8Array(31).fill(200)), // right alphabet, 31 bytes
    ]
    for (const s of bad) assert.equal(isAmid(s), false, JSON.stringify(s))
  })

  it('keys - publicKeyFromAmid throws a RangeError for a non-AMID', () => {
    assert.throws(() => publicKeyFromAmid('am-alice'), { name: 'RangeError', message: 'not an AMID' })
    assert.throws(() => publicKeyFromAmid('am' + base58.encode(new Uint8Array(33).fill(7))), { name: 'RangeError', message: 'not an AMID: wrong key length' })
    assert.throws(() => keyForAmid('nope'), RangeError)
  })

  it('keys - base64url round-trips bytes, including views into larger buffers', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    assert.deepEqual(fromB64u(toB64u(bytes)), bytes)
    const view = bytes.subarray(10, 20)
    assert.equal(toB64u(view), Buffer.from(bytes.slice(10, 20)).toString('base64url'))
    assert.doesNotMatch(toB64u(bytes), /[+/=]/)
  })
})

describe('envelope signatures', () => {
  it('envelope - signEnvelope builds a complete envelope that verifies', async () => {
    const env = envelope()
    assert.deepEqual(Object.keys(env), ['v', 'id', 'from', 'to', 'type', 'ts', 'payload', 'sig'])
    assert.equal(env.v, PROTOCOL)
    assert.equal(env.from, alice.amid)
    assert.equal(env.sig.length, 86)
    assert.equal(verifyEnvelope(env), true)
    assert.equal(await verifyEnvelopeAsync(env), true)
  })

  it('envelope - the signature survives re-serialisation in another key order', async () => {
    const env = envelope()
    const reordered = JSON.parse(JSON.stringify({ payload: { n: 1, text: 'hello' }, sig: env.sig, ts: env.ts, type: env.type, to: env.to, from: env.from, id: env.id, v: env.v })) as Envelope
    assert.equal(verifyEnvelope(reordered), true)
    assert.equal(await verifyEnvelopeAsync(reordered), true)
  })

  it('envelope - changing any signed field breaks the signature', async () => {
    const env = envelope()
    const changed: Array<[string, Envelope]> = [
      ['payload', { ...env, payload: { text: 'hellO', n: 1 } }],
      ['payload field added', { ...env, payload: { text: 'hello', n: 1, x: null } }],
      ['payload number', { ...env, payload: { text: 'hello', n: 2 } }],
      ['to', { ...env, to: carol.amid }],
      ['type', { ...env, type: 'task' }],
      ['ts', { ...env, ts: env.ts + 1 }],
      ['id', { ...env, id: env.id.replace('5b', '5c') }],
      ['v', { ...env, v: 'agentmesh/0.3' }],
      ['extra field', { ...env, thread: 'th-1' } as Envelope],
      ['from', { ...env, from: carol.amid }],
    ]
    for (const [what, e] of changed) {
      assert.equal(verifyEnvelope(e), false, what)
      assert.equal(await verifyEnvelopeAsync(e), false, what)
    }
  })

  it('envelope - a signature by another key does not verify', async () => {
    const env = envelope()
    // Bob signs Alice's envelope bytes and claims it is hers
    const forged: Envelope = { ...env, sig: toB64u(sign(null, envelopeSigningBytes(env), bob.privateKeyObject)) }
    assert.notEqual(forged.sig, env.sig)
    assert.equal(verifyEnvelope(forged), false)
    assert.equal(await verifyEnvelopeAsync(forged), false)
    // the honest envelope checked against Bob's key fails too
    assert.equal(verifyEnvelope(env, bob.publicKeyObject), false)
    assert.equal(await verifyEnvelopeAsync(env, bob.publicKeyObject), false)
    assert.equal(verifyEnvelope(env, alice.publicKeyObject), true)
  })

  it('envelope - a malformed signature or sender answers false instead of throwing', async () => {
    const env = envelope()
    const bad: Envelope[] = [
      { ...env, sig: '' },
      { ...env, sig: env.sig.slice(0, 85) },
      { ...env, sig: 'A'.repeat(86) },
      { ...env, sig: env.sig + 'AAAA' },
      { ...env, from: 'am-alice' },
    ]
    for (const e of bad) {
      assert.equal(verifyEnvelope(e), false, e.sig)
      assert.equal(await verifyEnvelopeAsync(e), false, e.sig)
    }
  })

  it('envelope - verifyEnvelopeAsync agrees with verifyEnvelope', async () => {
    const good = envelope()
    const samples = [good, { ...good, ts: 1 }, signEnvelope(bob, { id: 'id-00000001', to: alice.amid, type: 'x', payload: {} })]
    for (const e of samples) assert.equal(await verifyEnvelopeAsync(e), verifyEnvelope(e))
    assert.deepEqual(await Promise.all(samples.map(e => verifyEnvelopeAsync(e))), [true, false, true])
  })

  it('envelope - signing bytes carry the domain prefix and exclude sig', () => {
    const env = envelope()
    const text = new TextDecoder().decode(envelopeSigningBytes(env))
    assert.ok(text.startsWith('agentmesh/envelope\n{'))
    assert.doesNotMatch(text, /"sig"/)
    assert.deepEqual(envelopeSigningBytes(env), envelopeSigningBytes({ ...env, sig: 'other' }))
  })
})

describe('challenge signatures', () => {
  const nonce = 'bm9uY2UtMTIzNDU2Nzg'
  const relay = '7b0e6c2a-relay'

  it('challenge - a signed challenge verifies', () => {
    const sig = signChallenge(alice, alice.amid, nonce, relay)
    assert.equal(sig.length, 86)
    assert.equal(verifyChallenge(alice.amid, nonce, relay, sig), true)
  })

  it('challenge - the signature binds the nonce, the agent and the relay', () => {
    const sig = signChallenge(alice, alice.amid, nonce, relay)
    assert.equal(verifyChallenge(alice.amid, nonce + 'x', relay, sig), false, 'other nonce')
    assert.equal(verifyChallenge(bob.amid, nonce, relay, sig), false, 'other agent')
    assert.equal(verifyChallenge(alice.amid, nonce, relay + '2', sig), false, 'other relay')
    // moving text between the fields does not help
    assert.equal(verifyChallenge(alice.amid, nonce + '\n' + alice.amid, relay, sig), false)
  })

  it('challenge - a signature by another key, or for another agent, does not verify', () => {
    assert.equal(verifyChallenge(alice.amid, nonce, relay, signChallenge(bob, alice.amid, nonce, relay)), false)
    assert.equal(verifyChallenge(bob.amid, nonce, relay, signChallenge(alice, bob.amid, nonce, relay)), false)
    assert.equal(verifyChallenge(bob.amid, nonce, relay, signChallenge(bob, bob.amid, nonce, relay)), true)
  })

  it('challenge - garbage signatures and AMIDs answer false', () => {
    assert.equal(verifyChallenge(alice.amid, nonce, relay, ''), false)
    assert.equal(verifyChallenge(alice.amid, nonce, relay, 'A'.repeat(86)), false)
    assert.equal(verifyChallenge('am-alice', nonce, relay, signChallenge(alice, alice.amid, nonce, relay)), false)
  })
})
