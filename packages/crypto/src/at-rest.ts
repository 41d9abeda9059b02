/**
 * Encryption of an agent's local secrets (sessions, prekeys, held messages) at rest.
 *
 * The state key is HKDF-SHA-256 over the identity's Ed25519 secret key, joined (when a passphrase
 * is set) by scrypt(passphrase), with a random per-database salt. Every record is sealed with
 * AES-256-GCM under a fresh 96-bit nonce; its associated data names the record (kind and key), so
 * a record moved to another row does not open. A check record sealed at creation tells a wrong
 * passphrase from damaged data.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { hkdfSha256 } from './kdf.ts'

const INFO = new TextEncoder().encode('agentmesh/state-key/v1')
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** scrypt cost for a passphrase: N = 2^14, r = 8, p = 1 (16 MiB, tens of ms). */
export const STATE_SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const

/** The 32-byte key that seals an agent's local state. */
export function deriveStateKey (identitySecret: Uint8Array, salt: Uint8Array, passphrase?: string): Buffer {
  let ikm: Uint8Array = identitySecret
  if (passphrase !== undefined && passphrase !== '') {
    const stretched = scryptSync(passphrase.normalize('NFKC'), salt, 32, { ...STATE_SCRYPT, maxmem: 64 * 1024 * 1024 })
    ikm = Buffer.concat([identitySecret, stretched])
    stretched.fill(0)
  }
  const key = hkdfSha256(ikm, salt, INFO, 32)
  if (ikm !== identitySecret) ikm.fill(0)
  return key
}

function aadOf (kind: string, key: string): Buffer {
  return Buffer.from(`agentmesh/state\n${kind}\n${key}`, 'utf8')
}

/** nonce ‖ ciphertext ‖ tag */
export function sealRecord (stateKey: Uint8Array, kind: string, key: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES)
  const c = createCipheriv('aes-256-gcm', stateKey, nonce)
  c.setAAD(aadOf(kind, key))
  const body = c.update(plaintext)
  const last = c.final()
  return Buffer.concat([nonce, body, last, c.getAuthTag()])
}

/** Opens a sealed record; AM_ERR_DATA_CORRUPT when it does not authenticate. */
export function openRecord (stateKey: Uint8Array, kind: string, key: string, sealed: Uint8Array): Buffer {
  if (sealed.byteLength < NONCE_BYTES + TAG_BYTES) throw new AgentMeshError(ErrorCode.DataCorrupt, `stored ${kind} record ${key} is truncated`)
  const d = createDecipheriv('aes-256-gcm', stateKey, sealed.subarray(0, NONCE_BYTES))
  d.setAAD(aadOf(kind, key))
  d.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES))
  try {
    return Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.byteLength - TAG_BYTES)), d.final()])
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataCorrupt, `stored ${kind} record ${key} does not authenticate (damaged, or sealed with another key)`, { cause })
  }
}
