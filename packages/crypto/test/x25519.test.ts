import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { generateX25519KeyPair, x25519KeyPairFromSecret } from '@agentmesh/crypto'
import { x25519, x25519PrivateKeyObject } from '../src/x25519.ts'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('x25519 keys', () => {
  it('x25519 - RFC 7748 §6.1: the public keys of Alice and Bob, and their shared secret', () => {
    const alice = x25519KeyPairFromSecret(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
    const bob = x25519KeyPairFromSecret(hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'))
    assert.equal(toHex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    assert.equal(toHex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
    assert.equal(x25519(alice.privateKeyObject, bob.publicKey).toString('hex'), shared)
    assert.equal(x25519(bob.privateKeyObject, alice.publicKey).toString('hex'), shared)
  })

  it('x25519 - for keys OpenSSL generates, the public key derived here is OpenSSL\'s own', () => {
    for (let i = 0; i < 50; i++) {
      const { privateKey, publicKey } = generateKeyPairSync('x25519')
      const der = privateKey.export({ format: 'der', type: 'pkcs8' })
      const spki = publicKey.export({ format: 'der', type: 'spki' })
      const kp = x25519KeyPairFromSecret(new Uint8Array(der.subarray(der.length - 32)))
      assert.equal(toHex(kp.publicKey), toHex(spki.subarray(spki.length - 32)))
    }
  })

  it('x25519 - a generated pair\'s key object is its secret, and two pairs agree (200 in a loop, none hangs)', () => {
    const PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
    const seen = new Set<string>()
    let prev = generateX25519KeyPair()
    for (let i = 0; i < 200; i++) {
      const kp = generateX25519KeyPair()
      seen.add(toHex(kp.publicKey))
      // the key object holds exactly the raw secret: OpenSSL's own import of it gives the same public key
      const viaDer = createPublicKey(createPrivateKey({ key: Buffer.concat([PKCS8, kp.secretKey]), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' })
      if (i < 20) assert.equal(toHex(viaDer.subarray(viaDer.length - 32)), toHex(kp.publicKey))
      assert.equal(x25519(kp.privateKeyObject, prev.publicKey).toString('hex'), x25519(prev.privateKeyObject, kp.publicKey).toString('hex'))
      assert.equal(x25519(x25519PrivateKeyObject(kp.secretKey, false), prev.publicKey).toString('hex'), x25519(prev.privateKeyObject, kp.publicKey).toString('hex'))
      assert.equal(x25519(x25519PrivateKeyObject(kp.secretKey, false, kp.publicKey), prev.publicKey).toString('hex'), x25519(prev.privateKeyObject, kp.publicKey).toString('hex'))
      prev = kp
    }
    assert.equal(seen.size, 200)
  })

  it('x25519 - a private key imported with its public key (as a JWK) is the RFC 7748 §6.1 key, as through DER', () => {
    const aliceSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
    const alicePublic = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const key = x25519PrivateKeyObject(aliceSecret, false, alicePublic)
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
    assert.equal(toHex(spki.subarray(spki.length - 32)), toHex(alicePublic))
    assert.equal(x25519(key, bobPublic).toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  })

  it('x25519 - a private key given with a public key that is not its own is still its own key (a damaged state changes nothing, on every Node)', () => {
    const aliceSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
    const key = x25519PrivateKeyObject(aliceSecret, false, bobPublic)
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
    assert.equal(toHex(spki.subarray(spki.length - 32)), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
    assert.equal(x25519(key, bobPublic).toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  })
})
