/**
 * The two key-derivation primitives of the session layer, both Node's (OpenSSL's), and the
 * strict base64url reading the JSON forms need. Tests pin them to RFC 5869 test case 1.
 */
import { createHmac, hkdfSync } from 'node:crypto'

/** HKDF-SHA256 (RFC 5869): Extract with `salt`, Expand with `info` to `length` bytes. */
export function hkdfSha256 (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length))
}

/** info || 0x01 and info || 0x02 per `info` given (a few constants), so each HMAC of the expansion takes one update less. */
const blocks = new WeakMap<Uint8Array, [Buffer, Buffer]>()
function infoBlocks (info: Uint8Array): [Buffer, Buffer] {
  let b = blocks.get(info)
  if (b === undefined) {
    b = [Buffer.concat([info, Uint8Array.of(1)]), Buffer.concat([info, Uint8Array.of(2)])]
    blocks.set(info, b)
  }
  return b
}

/**
 * HKDF-SHA256 with at most 64 bytes of output, written out from Node's HMAC exactly as RFC 5869
 * §2.2–2.3 defines it: PRK = HMAC(salt, IKM); T(1) = HMAC(PRK, info || 0x01);
 * T(2) = HMAC(PRK, T(1) || info || 0x02). Same output as {@link hkdfSha256} (the tests hold both to
 * RFC 5869 test case 1 and to each other); the per-message key expansion uses it because
 * `hkdfSync` builds a KeyObject on every call, which costs as much as two more HMACs.
 */
export function hkdfSha256Short (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (!(length > 0 && length <= 64)) throw new RangeError('hkdfSha256Short gives 1 to 64 bytes')
  const [info1, info2] = infoBlocks(info)
  const prk = createHmac('sha256', salt).update(ikm).digest()
  const t1 = createHmac('sha256', prk).update(info1).digest()
  if (length <= 32) { prk.fill(0); return t1.subarray(0, length) }
  const t2 = createHmac('sha256', prk).update(t1).update(info2).digest()
  prk.fill(0)
  const out = Buffer.concat([t1, t2], length)
  t1.fill(0)
  t2.fill(0)
  return out
}

/** HMAC-SHA256 (RFC 2104) of `data` under `key`. */
export function hmacSha256 (key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

const B64U_RE = /^[A-Za-z0-9_-]*$/

/**
 * Decodes unpadded base64url that must hold exactly `length` bytes (any length when omitted), or
 * answers undefined. Node's decoder skips characters outside the alphabet and ignores stray low
 * bits; this one refuses both, so each byte string has one text form and keys compare as strings.
 */
export function decodeB64u (s: unknown, length?: number): Uint8Array | undefined {
  if (typeof s !== 'string' || !B64U_RE.test(s)) return undefined
  const b = Buffer.from(s, 'base64url')
  if (length !== undefined && b.length !== length) return undefined
  if (b.toString('base64url') !== s) return undefined
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** True for an integer in 0 … 2^32 − 1 (prekey ids and message counters are uint32). */
export function isUint32 (n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff
}
