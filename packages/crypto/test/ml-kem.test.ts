/**
 * The ML-KEM-768 implementation behind PQXDH (ml-kem.ts): FIPS 203 sizes, a round trip, implicit
 * rejection of an altered ciphertext and refusal of a malformed key — what any implementation
 * swapped in behind this interface must also do.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { mlKem768Decapsulate, mlKem768Encapsulate, mlKem768Implementation, mlKem768Ready } from '@agentmesh/crypto/internal'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('ml-kem', () => {
  it('ml-kem - @noble/post-quantum is in use', async () => {
    assert.equal(await mlKem768Ready, 'noble')
    assert.equal(mlKem768Implementation(), 'noble')
  })

  it('ml-kem - decapsulation gives the encapsulated secret; sizes as FIPS 203 gives them', () => {
    for (let i = 0; i < 4; i++) {
      const { publicKey, secretKey } = ml_kem768.keygen()
      const e = mlKem768Encapsulate(publicKey)
      assert.deepEqual([publicKey.length, secretKey.length, e.cipherText.length, e.sharedSecret.length], [1184, 2400, 1088, 32])
      assert.equal(hex(mlKem768Decapsulate(e.cipherText, secretKey)), hex(e.sharedSecret))
    }
  })

  it('ml-kem - an altered ciphertext gives another secret, the same each time (FIPS 203 implicit rejection: J(z || c))', () => {
    const { publicKey, secretKey } = ml_kem768.keygen()
    const e = mlKem768Encapsulate(publicKey)
    const bad = Uint8Array.from(e.cipherText)
    bad[17]! ^= 0x40
    const a = mlKem768Decapsulate(bad, secretKey)
    assert.notEqual(hex(a), hex(e.sharedSecret))
    assert.equal(hex(mlKem768Decapsulate(bad, secretKey)), hex(a))
  })

  it('ml-kem - an encapsulation key of the wrong length or with an unreduced coefficient is refused', () => {
    const { publicKey } = ml_kem768.keygen()
    const unreduced = Uint8Array.from(publicKey)
    unreduced[0] = 0xff // the first 12-bit coefficient becomes ≥ 3329
    unreduced[1] = 0xff
    assert.throws(() => mlKem768Encapsulate(publicKey.subarray(1)))
    assert.throws(() => mlKem768Encapsulate(unreduced))
  })
})
