/**
 * Safety numbers, as Signal computes them (libsignal's NumericFingerprintGenerator, fingerprint
 * version 0 of the hash, version 1 of the scannable form): for each side, 5,200 rounds of SHA-512
 * — the first over version ‖ public key ‖ stable identifier ‖ public key, each next one over the
 * previous hash ‖ public key — give 30 digits (six 5-byte big-endian chunks, each mod 100,000); the
 * two halves, lower first, make the 60-digit number both sides see. `fingerprintHalf` reproduces
 * libsignal's test vector (crypto/test/safety-number.test.ts).
 *
 * What differs from Signal is only what goes in: an agent's public key here is its Ed25519 identity
 * and its X25519 exchange key, each with its type byte (0x06 ‖ Ed25519 key ‖ 0x05 ‖ X25519 key, the
 * `Encode(IK)` of docs/protocol.md §14.2), where Signal has one curve25519 key (0x05 ‖ key); the
 * stable identifier is the AMID (UTF-8), where Signal has a phone number or ACI. So the number
 * changes when either key changes.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { encodeEd25519 } from './prekeys.ts'
import { encodeX25519 } from './x25519.ts'
import { publicKeyFromAmid } from './keys.ts'

const VERSION = Buffer.from([0x00, 0x00])
export const SAFETY_NUMBER_ITERATIONS = 5200
/** Version of the scannable form (libsignal's CombinedFingerprints.version). */
export const SCANNABLE_VERSION = 1

/** libsignal's per-side fingerprint hash (64 bytes) of a public key and a stable identifier. */
function fingerprintHash (publicKey: Uint8Array, stableId: Uint8Array): Buffer {
  let hash: Buffer = createHash('sha512').update(VERSION).update(publicKey).update(stableId).update(publicKey).digest()
  for (let i = 1; i < SAFETY_NUMBER_ITERATIONS; i++) hash = createHash('sha512').update(hash).update(publicKey).digest()
  return hash
}

function digits (hash: Buffer): string {
  let out = ''
  for (let i = 0; i < 30; i += 5) out += String(hash.readUIntBE(i, 5) % 100000).padStart(5, '0')
  return out
}

/** One side's 30 digits, for any public key and stable identifier (libsignal's displayable fingerprint half). */
export function fingerprintHalf (publicKey: Uint8Array, stableId: string): string {
  return digits(fingerprintHash(publicKey, Buffer.from(stableId, 'utf8')))
}

function agentKey (amid: string, exchangeKey: Uint8Array): Buffer {
  return Buffer.concat([encodeEd25519(publicKeyFromAmid(amid)), encodeX25519(exchangeKey)])
}

/** The 60-digit safety number of two agents (the same whichever side computes it). */
export function safetyNumber (a: { amid: string, exchangeKey: Uint8Array }, b: { amid: string, exchangeKey: Uint8Array }): string {
  const x = fingerprintHalf(agentKey(a.amid, a.exchangeKey), a.amid)
  const y = fingerprintHalf(agentKey(b.amid, b.exchangeKey), b.amid)
  return x < y ? x + y : y + x
}

/** 60 digits as 12 groups of 5, as Signal shows them. */
export function formatSafetyNumber (digits: string): string {
  return digits.match(/.{1,5}/g)?.join(' ') ?? digits
}

/**
 * libsignal's scannable form (protobuf CombinedFingerprints, version 1): the first 32 bytes of
 * each side's hash, `local` first. Put it in a QR code; the other side checks it with
 * {@link compareScannable}.
 */
function scannableBytes (localHash: Buffer, remoteHash: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([0x08, SCANNABLE_VERSION, 0x12, 0x22, 0x0a, 0x20]), localHash.subarray(0, 32),
    Buffer.from([0x1a, 0x22, 0x0a, 0x20]), remoteHash.subarray(0, 32),
  ])
}

/** libsignal's scannable fingerprint bytes for any keys and stable identifiers (`local` first). */
export function scannableFingerprint (local: { publicKey: Uint8Array, stableId: string }, remote: { publicKey: Uint8Array, stableId: string }): Buffer {
  return scannableBytes(fingerprintHash(local.publicKey, Buffer.from(local.stableId, 'utf8')), fingerprintHash(remote.publicKey, Buffer.from(remote.stableId, 'utf8')))
}

/** The scannable safety number `me` shows to `peer`, base64url (74 bytes). */
export function scannableSafetyNumber (me: { amid: string, exchangeKey: Uint8Array }, peer: { amid: string, exchangeKey: Uint8Array }): string {
  return scannableFingerprint(
    { publicKey: agentKey(me.amid, me.exchangeKey), stableId: me.amid },
    { publicKey: agentKey(peer.amid, peer.exchangeKey), stableId: peer.amid },
  ).toString('base64url')
}

/**
 * Whether a scanned form (the peer's {@link scannableSafetyNumber} for this agent) matches the keys
 * this agent holds: its local half is the peer's, its remote half this agent's. Throws
 * AM_ERR_INVALID_ARGUMENT for a form that is not one (another version, another length).
 */
export function compareScannable (scanned: string, me: { amid: string, exchangeKey: Uint8Array }, peer: { amid: string, exchangeKey: Uint8Array }): boolean {
  const got = Buffer.from(scanned, 'base64url')
  const expected = Buffer.from(scannableSafetyNumber(peer, me), 'base64url')
  if (got.length !== expected.length || got[0] !== 0x08 || got[2] !== 0x12) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, 'not a scannable safety number (version 1, 74 bytes)')
  }
  if (got[1] !== SCANNABLE_VERSION) throw new AgentMeshError(ErrorCode.InvalidArgument, `a scannable safety number of version ${got[1]}; this agent reads version ${SCANNABLE_VERSION}`)
  return timingSafeEqual(got, expected)
}
