/**
 * ML-KEM-768 (FIPS 203) for PQXDH's encapsulation and decapsulation, behind one synchronous
 * interface: @noble/post-quantum (audited, pure JavaScript; Node 20's crypto has no ML-KEM).
 *
 * Faster implementations were measured behind this same interface (docs/dependencies.md): liboqs
 * compiled to WebAssembly (@oqs/liboqs-js) encapsulates about six times faster here, but Open
 * Quantum Safe presents liboqs for prototyping and evaluation, its Node binding calls itself
 * research-grade and declares Node ≥ 22, and it frees its buffers without zeroing them; a session's
 * key agreement is not where the product takes that trade. Swapping it in is a change to this file
 * only; crypto/test/ml-kem.test.ts holds any implementation to FIPS 203's sizes, to implicit
 * rejection and to refusing a malformed key.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'

interface Kem {
  encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array }
  decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array
}

const noble: Kem = {
  encapsulate: (pk) => ml_kem768.encapsulate(pk),
  decapsulate: (ct, sk) => ml_kem768.decapsulate(ct, sk),
}

/** Resolves once the implementation is ready (noble needs no set-up: at once). Kept so callers need not change if one that loads asynchronously is used. */
export const mlKem768Ready: Promise<'noble'> = Promise.resolve('noble')

/** The implementation in use. */
export function mlKem768Implementation (): 'noble' {
  return 'noble'
}

/** (CT, SS) = ML-KEM-768.Encaps(ek). Throws for a malformed encapsulation key. */
export function mlKem768Encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array } {
  return noble.encapsulate(publicKey)
}

/** SS = ML-KEM-768.Decaps(dk, CT) (an altered ciphertext gives an unrelated secret, FIPS 203's implicit rejection). */
export function mlKem768Decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return noble.decapsulate(cipherText, secretKey)
}

/** For tests: the implementation by name. */
export function mlKem768Implementations (): Promise<{ noble: Kem }> {
  return Promise.resolve({ noble })
}
