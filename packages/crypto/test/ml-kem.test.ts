/**
 * The ML-KEM-768 implementation behind PQXDH (ml-kem.ts): FIPS 203 sizes, a round trip, implicit
 * rejection of an altered ciphertext and refusal of a malformed key — what any implementation
 * swapped in behind this interface must also do. Where the running Node has ML-KEM (OpenSSL 3.5,
 * Node ≥ 24.7) it is the one in use, and it is held to noble: each opens the other's ciphertexts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import * as nodeCrypto from 'node:crypto'
import { mlKem768Decapsulate, mlKem768Encapsulate, mlKem768Implementation, mlKem768Implementations, mlKem768Ready } from '@agentmesh/crypto/internal'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('ml-kem', () => {
  const nodeHasKem = typeof (nodeCrypto as unknown as { encapsulate?: unknown }).encapsulate === 'function'

  it('ml-kem - Node\'s own where this Node has ML-KEM, else @noble/post-quantum', async () => {
    const expected = nodeHasKem ? 'node' : 'noble'
    assert.equal(await mlKem768Ready, expected)
    assert.equal(mlKem768Implementation(), expected)
    assert.equal((await mlKem768Implementations()).node === undefined, !nodeHasKem)
  })

  it('ml-kem - Node\'s and noble\'s open each other\'s ciphertexts to the same secret, altered ones to the same rejection secret', { skip: nodeHasKem ? false : `this Node (${process.version}) has no ML-KEM` }, async () => {
    const { noble, node: maybeNode } = await mlKem768Implementations()
    if (maybeNode === undefined) throw new Error('no Node ML-KEM although crypto.encapsulate exists')
    const node = maybeNode
    for (let i = 0; i < 3; i++) {
      const { publicKey, secretKey } = ml_kem768.keygen()
      const byNode = node.encapsulate(publicKey)
      const byNoble = noble.encapsulate(publicKey)
      assert.equal(hex(noble.decapsulate(byNode.cipherText, secretKey)), hex(byNode.sharedSecret))
      assert.equal(hex(node.decapsulate(byNoble.cipherText, secretKey)), hex(byNoble.sharedSecret))
      const bad = Uint8Array.from(byNoble.cipherText)
      bad[i * 100]! ^= 0x01
      const rejected = noble.decapsulate(bad, secretKey)
      assert.notEqual(hex(rejected), hex(byNoble.sharedSecret))
      assert.equal(hex(node.decapsulate(bad, secretKey)), hex(rejected))
    }
    // a decapsulation key whose H(ek) does not match its ek (FIPS 203 §7.3's input check) is refused, not used
    const { secretKey } = ml_kem768.keygen()
    const damaged = Uint8Array.from(secretKey)
    damaged[2400 - 40]! ^= 0x01
    assert.throws(() => node.decapsulate(noble.encapsulate(ml_kem768.keygen().publicKey).cipherText, damaged))
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
