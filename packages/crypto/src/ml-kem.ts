/**
 * ML-KEM-768 (FIPS 203) for PQXDH's encapsulation and decapsulation, behind one synchronous
 * interface. Two implementations of the same standard, interchangeable byte for byte (keys,
 * ciphertexts and shared secrets; crypto/test/ml-kem.test.ts holds them to each other and to
 * FIPS 203 sizes):
 *
 * - liboqs (Open Quantum Safe's C implementation, compiled to WebAssembly: @oqs/liboqs-js), about
 *   six times faster here; its module is instantiated asynchronously, once, when this file loads;
 * - @noble/post-quantum, pure JavaScript, used until that instance is ready and wherever it cannot
 *   be made (a bundle that cannot load the WebAssembly file, a runtime that refuses it).
 *
 * Which one ran never shows: both check their input as FIPS 203 asks (an encapsulation key whose
 * coefficients are not reduced is refused) and answer the same bytes for the same inputs.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { createMLKEM768 } from '@oqs/liboqs-js/kem'

interface Kem {
  encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array }
  decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array
}

const noble: Kem = {
  encapsulate: (pk) => ml_kem768.encapsulate(pk),
  decapsulate: (ct, sk) => ml_kem768.decapsulate(ct, sk),
}

let fast: Kem | undefined

/** Resolves once the liboqs instance is in use, or when it could not be made (then noble stays). */
export const mlKem768Ready: Promise<'liboqs' | 'noble'> = createMLKEM768().then((k) => {
  fast = {
    encapsulate: (pk) => {
      const r = k.encapsulate(pk)
      return { cipherText: r.ciphertext, sharedSecret: r.sharedSecret }
    },
    decapsulate: (ct, sk) => k.decapsulate(ct, sk),
  }
  return 'liboqs' as const
}, () => 'noble' as const)

/** The implementation in use now: 'liboqs' once its WebAssembly instance is ready, 'noble' before or without it. */
export function mlKem768Implementation (): 'liboqs' | 'noble' {
  return fast === undefined ? 'noble' : 'liboqs'
}

/** (CT, SS) = ML-KEM-768.Encaps(ek). Throws for a malformed encapsulation key. */
export function mlKem768Encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array } {
  return (fast ?? noble).encapsulate(publicKey)
}

/** SS = ML-KEM-768.Decaps(dk, CT) (an altered ciphertext gives an unrelated secret, FIPS 203's implicit rejection). */
export function mlKem768Decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return (fast ?? noble).decapsulate(cipherText, secretKey)
}

/** For tests: the two implementations by name. */
export function mlKem768Implementations (): Promise<{ noble: Kem, liboqs: Kem | undefined }> {
  return mlKem768Ready.then(() => ({ noble, liboqs: fast }))
}
