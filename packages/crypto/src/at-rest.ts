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
export interface ScryptParams { N: number, r: number, p: number }
/**
 * scrypt cost for a passphrase of a new state: N = 2^17, r = 8, p = 1 (128 MiB, a few hundred ms),
 * OWASP's current guidance for scrypt. A state records the parameters it was made with
 * (`scryptParamsText`), so raising them later leaves existing states openable.
 */
export const STATE_SCRYPT: ScryptParams = { N: 1 << 17, r: 8, p: 1 }
/** What states made before the parameters were recorded used: N = 2^14, r = 8, p = 1 (16 MiB). */
export const STATE_SCRYPT_V1: ScryptParams = { N: 1 << 14, r: 8, p: 1 }

/** `N=131072,r=8,p=1`, as a state records it. */
export function scryptParamsText (p: ScryptParams): string { return `N=${p.N},r=${p.r},p=${p.p}` }

/** Reads what `scryptParamsText` wrote; AM_ERR_DATA_CORRUPT for anything else or out of bounds. */
export function parseScryptParams (text: string): ScryptParams {
  const m = /^N=(\d{1,10}),r=(\d{1,3}),p=(\d{1,3})$/.exec(text)
  const p = m === null ? undefined : { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }
  // N a power of two ≥ 2^14 and at most 2^20 (1 GiB with r = 8): no state may ask for less, or for an unbounded amount
  if (p === undefined || p.N < (1 << 14) || p.N > (1 << 20) || (p.N & (p.N - 1)) !== 0 || p.r < 8 || p.r > 32 || p.p < 1 || p.p > 16) {
    throw new AgentMeshError(ErrorCode.DataCorrupt, `the state's recorded scrypt parameters "${text}" are not valid`)
  }
  return p
}

/** The 32-byte key that seals an agent's local state. */
export function deriveStateKey (identitySecret: Uint8Array, salt: Uint8Array, passphrase?: string, params: ScryptParams = STATE_SCRYPT): Buffer {
  let ikm: Uint8Array = identitySecret
  if (passphrase !== undefined && passphrase !== '') {
    const stretched = scryptSync(passphrase.normalize('NFKC'), salt, 32, { ...params, maxmem: 256 * params.N * params.r * params.p })
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
