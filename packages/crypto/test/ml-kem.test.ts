/**
 * The two ML-KEM-768 implementations behind PQXDH (ml-kem.ts): liboqs (WebAssembly) and
 * @noble/post-quantum answer the same bytes, so either side of a session may run either.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { mlKem768Implementation, mlKem768Implementations, mlKem768Ready } from '@agentmesh/crypto/internal'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('ml-kem', () => {
  it('ml-kem - liboqs is in use once ready', async () => {
    assert.equal(await mlKem768Ready, 'liboqs')
    assert.equal(mlKem768Implementation(), 'liboqs')
  })

  it('ml-kem - each decapsulates what the other encapsulated, to the same secret; sizes as FIPS 203 gives them', async () => {
    const { noble, liboqs } = await mlKem768Implementations()
    assert.ok(liboqs !== undefined)
    for (let i = 0; i < 8; i++) {
      const { publicKey, secretKey } = ml_kem768.keygen()
      for (const [enc, dec] of [[liboqs, noble], [noble, liboqs], [liboqs, liboqs]] as const) {
        const e = enc.encapsulate(publicKey)
        assert.deepEqual([e.cipherText.length, e.sharedSecret.length], [1088, 32])
        assert.equal(hex(dec.decapsulate(e.cipherText, secretKey)), hex(e.sharedSecret))
      }
    }
  })

  it('ml-kem - an altered ciphertext gives the same implicit-rejection secret from both (FIPS 203: J(z || c))', async () => {
    const { noble, liboqs } = await mlKem768Implementations()
    const { publicKey, secretKey } = ml_kem768.keygen()
    const e = noble.encapsulate(publicKey)
    const bad = Uint8Array.from(e.cipherText)
    bad[17]! ^= 0x40
    const a = noble.decapsulate(bad, secretKey)
    assert.notEqual(hex(a), hex(e.sharedSecret))
    assert.equal(hex(liboqs!.decapsulate(bad, secretKey)), hex(a))
  })

  it('ml-kem - both refuse an encapsulation key of the wrong length or with an unreduced coefficient', async () => {
    const { noble, liboqs } = await mlKem768Implementations()
    const { publicKey } = ml_kem768.keygen()
    const unreduced = Uint8Array.from(publicKey)
    unreduced[0] = 0xff // the first 12-bit coefficient becomes ≥ 3329
    unreduced[1] = 0xff
    for (const kem of [noble, liboqs!]) {
      assert.throws(() => kem.encapsulate(publicKey.subarray(1)))
      assert.throws(() => kem.encapsulate(unreduced))
    }
  })
})
