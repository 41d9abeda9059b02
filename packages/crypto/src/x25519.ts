/**
 * X25519 on Node's crypto (OpenSSL). Raw 32-byte keys move in as JWK and never out through a JWK
 * export: STACK.md records Node 20 hanging on a JWK export right after `generateKeyPairSync`.
 *
 * What it costs here (Node 20, OpenSSL 3): importing a private key as PKCS#8 DER ~0.4 ms (OpenSSL's
 * decoder), as a JWK ~20 µs; exporting a generated pair as DER ~0.3 ms. So a key pair is made from
 * 32 random bytes imported as a JWK, and its public key is X25519(k, 9), the Diffie-Hellman with the
 * base point (RFC 7748 §6.1: that is what the public key is), ~50 µs, with no export at all. The key
 * objects of ratchet keys and signed prekeys are also kept in a small bounded cache keyed by the key
 * itself: a DH ratchet step then imports only the peer's public key. A key leaves the cache when it
 * is replaced ({@link forgetX25519PrivateKey}) or evicted.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto'

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

/** The base point (u = 9, RFC 7748 §4.1): X25519(k, 9) is the public key of k. */
const BASE_POINT = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.concat([Buffer.from([9]), Buffer.alloc(31)]).toString('base64url') }, format: 'jwk' })

/**
 * A private key object from the raw key, imported as a JWK. Node reads only `d` for a private OKP
 * key (the public part is derived from it); `x` must be a string, so the base point's is given. A
 * test holds the public key derived this way to OpenSSL's own for keys it generated.
 */
function importPrivate (secretKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(secretKey.buffer, secretKey.byteOffset, secretKey.byteLength).toString('base64url'), x: 'CQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    format: 'jwk',
  })
}

/** The public key of a private key object: X25519(k, 9). */
function publicOf (privateKey: KeyObject): Uint8Array {
  return new Uint8Array(diffieHellman({ privateKey, publicKey: BASE_POINT }))
}

/** A fresh key pair: 32 bytes from the system's CSPRNG, clamped as OpenSSL's generator stores them (RFC 7748 §5). */
export function generateX25519KeyPair (): X25519KeyPair {
  const secretKey = new Uint8Array(randomBytes(32))
  secretKey[0]! &= 248
  secretKey[31]! &= 127
  secretKey[31]! |= 64
  const privateKeyObject = importPrivate(secretKey)
  return { publicKey: publicOf(privateKeyObject), secretKey, privateKeyObject }
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
    key = importPrivate(secretKey)
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
  return { publicKey: publicOf(privateKeyObject), secretKey: Uint8Array.from(secretKey), privateKeyObject }
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
