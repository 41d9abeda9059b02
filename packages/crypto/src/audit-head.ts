/**
 * Signed heads of the relay's audit log (docs/protocol.md §17.8): the relay signs, with its own
 * Ed25519 identity, "the chain had row `seq` with hash `hash` at `at`". A head kept outside the
 * database (a file, an auditor's copy) makes two tamperings visible that the unkeyed hash chain
 * alone cannot show: rows deleted at the end, and rows rewritten with the rest re-chained.
 *
 *   sig = Ed25519(relay key, "agentmesh/audit-head\n" + JCS({seq, hash, at, relay}))
 */
import canonicalize from 'canonicalize'
import { keyForAmid } from './envelope.ts'
import { fromB64u, isAmid, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'

export const AUDIT_HEAD_SIGNING_PREFIX = 'agentmesh/audit-head\n'

/** A signed audit head, as kept in `<data>/audit-heads.jsonl` and answered by GET /api/v1/audit/heads. */
export interface AuditHead {
  /** the newest audit row's seq when signed */
  seq: number
  /** that row's hash (hex SHA-256) */
  hash: string
  /** ms since the epoch */
  at: number
  /** the relay's AMID (its public key) */
  relay: string
  /** base64url Ed25519 signature */
  sig: string
}

const enc = new TextEncoder()
const HASH = /^[0-9a-f]{64}$/

function signingBytes (h: Omit<AuditHead, 'sig'>): Uint8Array {
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)({ seq: h.seq, hash: h.hash, at: h.at, relay: h.relay })
  if (text === undefined) throw new TypeError('audit head cannot be canonicalised')
  return enc.encode(AUDIT_HEAD_SIGNING_PREFIX + text)
}

/** Signs the head `{seq, hash, at}` with the relay's identity. */
export function signAuditHead (relay: KeyPair & { amid: string }, head: { seq: number, hash: string, at: number }): AuditHead {
  const h = { seq: head.seq, hash: head.hash, at: head.at, relay: relay.amid }
  return { ...h, sig: toB64u(signBytes(relay.privateKeyObject, signingBytes(h))) }
}

/** Whether `value` is a well-formed head whose signature verifies with the key of its `relay` (and, when given, is that relay's). */
export function verifyAuditHead (value: unknown, relay?: string): value is AuditHead {
  if (typeof value !== 'object' || value === null) return false
  const h = value as Record<string, unknown>
  if (!Number.isSafeInteger(h.seq) || (h.seq as number) < 0 || typeof h.hash !== 'string' || (h.hash !== '' && !HASH.test(h.hash)) ||
    !Number.isSafeInteger(h.at) || typeof h.relay !== 'string' || !isAmid(h.relay) || typeof h.sig !== 'string') return false
  if (relay !== undefined && h.relay !== relay) return false
  return verifyBytes(keyForAmid(h.relay), signingBytes(h as unknown as AuditHead), fromB64u(h.sig))
}
