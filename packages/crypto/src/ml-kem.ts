/**
 * ML-KEM-768 (FIPS 203) for PQXDH's encapsulation and decapsulation, behind one synchronous
 * interface: Node's own (OpenSSL 3.5, `crypto.encapsulate` / `crypto.decapsulate`, Node ≥ 24.7)
 * where the running Node has it, else @noble/post-quantum (audited, pure JavaScript; Node 20's
 * crypto has no ML-KEM). Measured here on Node 24 (CPU per operation, key import included):
 * OpenSSL encapsulates in 53–100 µs and decapsulates in 154–232 µs, noble in 590–950 and 740–1030.
 * Both give the same secrets for the same keys and ciphertexts (FIPS 203 is deterministic given
 * its inputs): the tests hold them to each other, so two agents on different Nodes agree.
 *
 * Keys stay in noble's forms (what the prekey records store): the 1,184-byte encapsulation key,
 * imported as `raw-public`, and the 2,400-byte expanded decapsulation key, imported as PKCS#8 in
 * its `expandedKey` form (IETF LAMPS, ML-KEM in X.509), whose copy is wiped after the import.
 *
 * Other implementations were measured behind this same interface (docs/dependencies.md): liboqs
 * compiled to WebAssembly (@oqs/liboqs-js) and PQClean as a native addon (`pqclean`), both about
 * seven times faster than noble on Node 20, were not taken (see there). Swapping one in is a
 * change to this file only; crypto/test/ml-kem.test.ts holds any implementation to FIPS 203's
 * sizes, to implicit rejection and to refusing a malformed key.
 */
import * as nodeCrypto from 'node:crypto'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'

interface Kem {
  encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array }
  decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array
}

const noble: Kem = {
  encapsulate: (pk) => ml_kem768.encapsulate(pk),
  decapsulate: (ct, sk) => ml_kem768.decapsulate(ct, sk),
}

/** Node ≥ 24.7's KEM calls (not in Node 20's types). */
interface NodeKemCalls {
  encapsulate (key: nodeCrypto.KeyObject): { sharedKey: Buffer, ciphertext: Buffer }
  decapsulate (key: nodeCrypto.KeyObject, ciphertext: Uint8Array): Buffer
}

const PUBLIC_KEY_BYTES = 1184
const SECRET_KEY_BYTES = 2400
/**
 * PKCS#8 OneAsymmetricKey v0 for id-alg-ml-kem-768 (2.16.840.1.101.3.4.4.2) whose privateKey is the
 * `expandedKey` choice: an OCTET STRING of the 2,400-byte decapsulation key, inside the PKCS#8 OCTET STRING.
 */
const PKCS8_EXPANDED_PREFIX = Buffer.from('30820978020100300b06096086480165030404020482096404820960', 'hex')

/** Node's ML-KEM-768, or undefined where this Node has none (checked once: a key pair made and used). */
function nodeKem (): Kem | undefined {
  const calls = nodeCrypto as unknown as Partial<NodeKemCalls>
  if (typeof calls.encapsulate !== 'function' || typeof calls.decapsulate !== 'function') return undefined
  const { encapsulate, decapsulate } = calls as NodeKemCalls
  const kem: Kem = {
    encapsulate (pk) {
      if (pk.length !== PUBLIC_KEY_BYTES) throw new RangeError(`an ML-KEM-768 encapsulation key is ${PUBLIC_KEY_BYTES} bytes`)
      const key = nodeCrypto.createPublicKey({ key: Buffer.from(pk.buffer, pk.byteOffset, pk.byteLength), format: 'raw-public', asymmetricKeyType: 'ml-kem-768' } as unknown as nodeCrypto.PublicKeyInput)
      const r = encapsulate(key)
      return { cipherText: new Uint8Array(r.ciphertext), sharedSecret: new Uint8Array(r.sharedKey) }
    },
    decapsulate (ct, sk) {
      if (sk.length !== SECRET_KEY_BYTES) throw new RangeError(`an ML-KEM-768 decapsulation key is ${SECRET_KEY_BYTES} bytes`)
      const der = Buffer.alloc(PKCS8_EXPANDED_PREFIX.length + SECRET_KEY_BYTES)
      PKCS8_EXPANDED_PREFIX.copy(der, 0)
      der.set(sk, PKCS8_EXPANDED_PREFIX.length)
      let key: nodeCrypto.KeyObject
      try {
        key = nodeCrypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      } finally {
        der.fill(0)
      }
      return new Uint8Array(decapsulate(key, ct))
    },
  }
  try {
    const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync('ml-kem-768' as 'x25519')
    const raw = publicKey.export({ format: 'raw-public' } as unknown as nodeCrypto.KeyExportOptions<'der'>) as Buffer
    const e = kem.encapsulate(new Uint8Array(raw))
    if (!Buffer.from(decapsulate(privateKey, e.cipherText)).equals(Buffer.from(e.sharedSecret))) return undefined
    return kem
  } catch {
    return undefined // an OpenSSL without ML-KEM, or a Node without raw key formats
  }
}

const native = nodeKem()
const impl: Kem = native ?? noble
const name: 'node' | 'noble' = native === undefined ? 'noble' : 'node'

/** Resolves once the implementation is ready (both need no set-up: at once), with its name. Kept so callers need not change if one that loads asynchronously is used. */
export const mlKem768Ready: Promise<'node' | 'noble'> = Promise.resolve(name)

/** The implementation in use: Node's own (OpenSSL) where present, else noble. */
export function mlKem768Implementation (): 'node' | 'noble' {
  return name
}

/** (CT, SS) = ML-KEM-768.Encaps(ek). Throws for a malformed encapsulation key. */
export function mlKem768Encapsulate (publicKey: Uint8Array): { cipherText: Uint8Array, sharedSecret: Uint8Array } {
  return impl.encapsulate(publicKey)
}

/** SS = ML-KEM-768.Decaps(dk, CT) (an altered ciphertext gives an unrelated secret, FIPS 203's implicit rejection). */
export function mlKem768Decapsulate (cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return impl.decapsulate(cipherText, secretKey)
}

/** For tests: the implementations by name (`node` only where this Node has ML-KEM). */
export function mlKem768Implementations (): Promise<{ noble: Kem, node?: Kem }> {
  return Promise.resolve(native === undefined ? { noble } : { noble, node: native })
}
