/**
 * Owner links (docs/protocol.md §28): an agent says "my owner is the person `subject` at the
 * OpenID Connect provider `issuer`", for the relay `relay`, at `ts`, signed with its Ed25519 key.
 * The relay stores the statement with its signature, so anyone may check it again later.
 *
 *   sig = Ed25519(agent key, "agentmesh/owner-link\n" + JCS({amid, issuer, subject, relay, ts}))
 */
import canonicalize from 'canonicalize'
import { keyForAmid } from './envelope.ts'
import { fromB64u, isAmid, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'

export const OWNER_LINK_SIGNING_PREFIX = 'agentmesh/owner-link\n'

/** What an agent signs to link its owner's identity. */
export interface OwnerLinkStatement {
  /** the agent */
  amid: string
  /** the provider's issuer URL */
  issuer: string
  /** the owner's subject at the provider */
  subject: string
  /** the relay's AMID */
  relay: string
  /** ms since the epoch */
  ts: number
}

const enc = new TextEncoder()

/** The bytes signed: the prefix, then the statement's JCS form. */
export function ownerLinkSigningBytes (s: OwnerLinkStatement): Uint8Array {
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)({ amid: s.amid, issuer: s.issuer, subject: s.subject, relay: s.relay, ts: s.ts })
  if (text === undefined) throw new TypeError('owner link statement cannot be canonicalised')
  return enc.encode(OWNER_LINK_SIGNING_PREFIX + text)
}

/** Signs the statement with the agent's key; answers the base64url signature. */
export function signOwnerLink (agent: KeyPair & { amid: string }, s: Omit<OwnerLinkStatement, 'amid'>): { statement: OwnerLinkStatement, sig: string } {
  const statement: OwnerLinkStatement = { amid: agent.amid, issuer: s.issuer, subject: s.subject, relay: s.relay, ts: s.ts }
  return { statement, sig: toB64u(signBytes(agent.privateKeyObject, ownerLinkSigningBytes(statement))) }
}

/** Whether `sig` is the signature of the statement's `amid` over it (false for anything malformed). */
export function verifyOwnerLink (s: OwnerLinkStatement, sig: string): boolean {
  if (typeof s.amid !== 'string' || !isAmid(s.amid) || typeof s.issuer !== 'string' || typeof s.subject !== 'string' ||
    typeof s.relay !== 'string' || !Number.isSafeInteger(s.ts) || typeof sig !== 'string') return false
  try {
    return verifyBytes(keyForAmid(s.amid), ownerLinkSigningBytes(s), fromB64u(sig))
  } catch {
    return false
  }
}
