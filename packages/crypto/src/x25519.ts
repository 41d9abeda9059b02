/**
 * X25519 on Node's crypto (OpenSSL). Raw 32-byte keys move in and out without a JWK export:
 * STACK.md records Node 20 hanging on a JWK export right after `generateKeyPairSync('x25519')`.
 *
 * A private key is imported as a JWK with its true public key `x` wherever the caller holds it
 * (ratchet states, prekey records): 60–80 µs on Node 20 here, where a PKCS#8 DER import costs
 * 540–780 µs (Node 20's OpenSSL 3.0 decoder; Node 24's OpenSSL 3.5 takes ~55 µs for either).
 * The public key must be the true one: Node 20 ignores `x`, but newer Node (24, where the OpenClaw
 * plugin runs) checks it against `d` and refuses a mismatch; such a key (a damaged state) falls
 * back to DER, which needs none, so the answer is the same key on every Node. Without the public
 * key at hand, DER it is.
 *
 * The key objects of ratchet keys and signed prekeys are also kept in a small bounded cache keyed
 * by the key itself: a DH ratchet step then imports only the peer's public key. A key leaves the
 * cache when it is replaced ({@link forgetX25519PrivateKey}) or evicted.
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

/** The base point u = 9 (RFC 7748 §4.1): X25519(k, 9) is k's public key (RFC 7748 §6.1). */
const BASE_POINT = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.concat([Buffer.of(9), Buffer.alloc(31)]).toString('base64url') }, format: 'jwk' })

/**
 * A fresh key pair (OpenSSL's generator): the raw private key read from its PKCS#8 DER encoding,
 * the public key computed as X25519(k, 9) (RFC 7748 §6.1), cheaper here than OpenSSL's SPKI encoder.
 */
export function generateX25519KeyPair (): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519')
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  const publicKey = new Uint8Array(diffieHellman({ privateKey, publicKey: BASE_POINT }))
  return { publicKey, secretKey: Uint8Array.from(der.subarray(der.length - 32)), privateKeyObject: privateKey }
}

/** Keeps this pair's key object for a later {@link x25519PrivateKeyObject} (a ratchet key used again after a JSON round trip). */
export function cacheX25519PrivateKey (kp: X25519KeyPair): void {
  rememberPrivate(kp.secretKey, kp.privateKeyObject)
}

/** Imports a raw private key (`d` is its base64url): as a JWK when its public key is given, else (or when the JWK is refused) as PKCS#8 DER. */
function importPrivate (secretKey: Uint8Array, d: string, publicKey: Uint8Array | undefined): KeyObject {
  if (publicKey !== undefined && publicKey.length === 32) {
    try {
      return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: Buffer.from(publicKey.buffer, publicKey.byteOffset, 32).toString('base64url') }, format: 'jwk' })
    } catch {
      // a public key that is not d's (newer Node checks it): DER below needs none
    }
  }
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
}

/**
 * The key object for a raw private key: from the cache when it is there, else imported (and
 * cached when `cache`; leave that off for a key used once, such as a one-time prekey). Give its
 * `publicKey` when it is at hand (a state or record holds both): the import is several times cheaper.
 */
export function x25519PrivateKeyObject (secretKey: Uint8Array, cache = true, publicKey?: Uint8Array): KeyObject {
  if (secretKey.length !== 32) throw new RangeError('an X25519 private key is 32 bytes')
  const id = Buffer.from(secretKey.buffer, secretKey.byteOffset, secretKey.byteLength).toString('base64url')
  let key = privateKeyCache.get(id)
  if (key === undefined) {
    key = importPrivate(secretKey, id, publicKey)
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
