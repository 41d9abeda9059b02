/**
 * X25519 on Node's crypto (OpenSSL). Raw 32-byte keys move in and out through the fixed
 * RFC 8410 DER prefixes, never JWK: STACK.md records Node 20 hanging on a JWK export right after
 * `generateKeyPairSync('x25519')`.
 *
 * Importing a PKCS#8 private key costs ~0.4 ms here (OpenSSL 3's decoder), ten times a Diffie-
 * Hellman, so the key objects of ratchet keys and signed prekeys are kept in a small bounded cache
 * keyed by the key itself: a DH ratchet step then imports only the peer's public key. A key leaves
 * the cache when it is replaced ({@link forgetX25519PrivateKey}) or evicted.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'

// RFC 8410 §7 (PKCS#8 OneAsymmetricKey v1) and §4 (SubjectPublicKeyInfo) for id-X25519 (1.3.101.110)
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** Type byte of EncodeEC for curve25519 (PQXDH §2.1); 0x05 is also libsignal's. */
export const KEY_TYPE_X25519 = 0x05

export interface X25519KeyPair {
  /** 32-byte public key (little-endian u-coordinate, RFC 7748). */
  readonly publicKey: Uint8Array
  /** 32-byte private key (the scalar before clamping, RFC 7748). */
  readonly secretKey: Uint8Array
  readonly privateKeyObject: KeyObject
}

/** Bound of the private-key-object cache (entries, oldest evicted). */
const MAX_PRIVATE_KEY_CACHE = 1024
const privateKeyCache = new Map<string, KeyObject>()

function rememberPrivate (secretKey: Uint8Array, key: KeyObject): void {
  const id = Buffer.from(secretKey.buffer, secretKey.byteOffset, secretKey.byteLength).toString('base64url')
  if (privateKeyCache.size >= MAX_PRIVATE_KEY_CACHE) privateKeyCache.delete(privateKeyCache.keys().next().value as string)
  privateKeyCache.set(id, key)
}

/** A fresh key pair (OpenSSL's generator), raw keys read from the DER encodings. */
export function generateX25519KeyPair (): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  const spki = publicKey.export({ format: 'der', type: 'spki' })
  return { publicKey: Uint8Array.from(spki.subarray(spki.length - 32)), secretKey: Uint8Array.from(der.subarray(der.length - 32)), privateKeyObject: privateKey }
}

/** Keeps this pair's key object for a later {@link x25519PrivateKeyObject} (a ratchet key used again after a JSON round trip). */
export function cacheX25519PrivateKey (kp: X25519KeyPair): void {
  rememberPrivate(kp.secretKey, kp.privateKeyObject)
}

/**
 * The key object for a raw private key: from the cache when it is there, else imported (and
 * cached when `cache`; leave that off for a key used once, such as a one-time prekey).
 */
export function x25519PrivateKeyObject (secretKey: Uint8Array, cache = true): KeyObject {
  if (secretKey.length !== 32) throw new RangeError('an X25519 private key is 32 bytes')
  const id = Buffer.from(secretKey.buffer, secretKey.byteOffset, secretKey.byteLength).toString('base64url')
  let key = privateKeyCache.get(id)
  if (key === undefined) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
    if (cache) rememberPrivate(secretKey, key)
  }
  return key
}

/** Drops a private key from the cache once it is replaced (forward secrecy: keep it no longer). */
export function forgetX25519PrivateKey (secretKey: Uint8Array): void {
  privateKeyCache.delete(Buffer.from(secretKey.buffer, secretKey.byteOffset, secretKey.byteLength).toString('base64url'))
}

/** The key pair for a raw private key. */
export function x25519KeyPairFromSecret (secretKey: Uint8Array): X25519KeyPair {
  const privateKeyObject = x25519PrivateKeyObject(secretKey, false)
  const spki = createPublicKey(privateKeyObject).export({ format: 'der', type: 'spki' })
  return { publicKey: Uint8Array.from(spki.subarray(spki.length - 32)), secretKey: Uint8Array.from(secretKey), privateKeyObject }
}

export function x25519PublicKeyObject (publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== 32) throw new RangeError('an X25519 public key is 32 bytes')
  // as a JWK: Node 20 imports it several times faster than the same key as SPKI DER
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64url') }, format: 'jwk' })
}

/**
 * X25519(private, public): the 32-byte shared secret. OpenSSL refuses an all-zero result (a
 * small-order public key, RFC 7748 §6.1), which surfaces here as a thrown error.
 */
export function x25519 (privateKey: KeyObject, publicKey: KeyObject | Uint8Array): Buffer {
  const pub = publicKey instanceof Uint8Array ? x25519PublicKeyObject(publicKey) : publicKey
  return diffieHellman({ privateKey, publicKey: pub })
}

/** EncodeEC (PQXDH §2.1): the curve's type byte followed by the 32-byte u-coordinate. */
export function encodeX25519 (publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(33)
  out[0] = KEY_TYPE_X25519
  out.set(publicKey, 1)
  return out
}
