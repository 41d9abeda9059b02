/**
 * Grants (issue 4, KNOCK): the answer "yes" to a first-contact request, signed by the agent that
 * grants it, so either side (and later the relay) can check it without asking. A grant names who
 * may write to whom, with which scopes, until when.
 *
 *   sig = Ed25519(grantor, "agentmesh/grant\n" + RFC 8785 JSON of every field but sig)
 */
import canonicalize from 'canonicalize'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { keyForAmid } from './envelope.ts'
import { fromB64u, isAmid, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'

export const GRANT_SIGNING_PREFIX = 'agentmesh/grant\n'
export const GRANT_VERSION = 1
/** Scopes: lowercase, `chat`, `task:<name>`, `command:<name>`, `command:*` … */
export const SCOPE_PATTERN = /^[a-z][a-z0-9:._*-]{0,63}$/
export const MAX_GRANT_SCOPES = 16
/** Longest a grant may last. */
export const MAX_GRANT_DURATION_MS = 365 * 24 * 60 * 60 * 1000

export interface Grant {
  v: 1
  /** unique id, chosen by the grantor */
  id: string
  /** who grants (the receiver of the knock) */
  grantor: string
  /** who may now write to the grantor */
  grantee: string
  scopes: string[]
  /** ms since the epoch */
  issued_at: number
  expires_at: number
  /** the knock it answers */
  knock_id?: string
  sig: string
}

export interface GrantInit {
  id: string
  grantee: string
  scopes: readonly string[]
  expiresAt: number
  issuedAt?: number
  knockId?: string
}

const enc = new TextEncoder()

function signingBytes (g: Omit<Grant, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...rest } = g
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(rest)
  if (text === undefined) throw new TypeError('grant cannot be canonicalised')
  return enc.encode(GRANT_SIGNING_PREFIX + text)
}

function invalid (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidKnock, `grant: ${what}`)
}

function checkFields (g: Record<string, unknown>): void {
  if (g.v !== GRANT_VERSION) throw invalid(`unknown version ${JSON.stringify(g.v)}`)
  if (typeof g.id !== 'string' || !/^[0-9A-Za-z_-]{8,128}$/.test(g.id)) throw invalid('id must be 8 to 128 characters of A-Z a-z 0-9 _ -')
  for (const f of ['grantor', 'grantee'] as const) if (typeof g[f] !== 'string' || !isAmid(g[f] as string)) throw invalid(`${f} is not an AMID`)
  if (g.grantor === g.grantee) throw invalid('an agent does not grant itself')
  if (!Array.isArray(g.scopes) || g.scopes.length > MAX_GRANT_SCOPES || !g.scopes.every(s => typeof s === 'string' && SCOPE_PATTERN.test(s))) {
    throw invalid(`scopes must be at most ${MAX_GRANT_SCOPES} strings like "chat" or "command:status"`)
  }
  for (const f of ['issued_at', 'expires_at'] as const) if (!Number.isSafeInteger(g[f]) || (g[f] as number) < 0) throw invalid(`${f} must be ms since the epoch`)
  const life = (g.expires_at as number) - (g.issued_at as number)
  if (life <= 0 || life > MAX_GRANT_DURATION_MS) throw invalid('expires_at must be after issued_at, by at most 365 days')
  if (g.knock_id !== undefined && (typeof g.knock_id !== 'string' || !/^[0-9A-Za-z_-]{8,128}$/.test(g.knock_id))) throw invalid('knock_id is not an id')
}

/** Signs a grant from `keys` (the grantor). Throws AM_ERR_INVALID_KNOCK for out-of-range fields. */
export function signGrant (keys: KeyPair & { amid: string }, init: GrantInit): Grant {
  const issuedAt = init.issuedAt ?? Date.now()
  const unsigned: Omit<Grant, 'sig'> = {
    v: GRANT_VERSION,
    id: init.id,
    grantor: keys.amid,
    grantee: init.grantee,
    scopes: [...new Set(init.scopes)].sort(),
    issued_at: issuedAt,
    expires_at: init.expiresAt,
    ...(init.knockId === undefined ? {} : { knock_id: init.knockId }),
  }
  checkFields(unsigned as unknown as Record<string, unknown>)
  return { ...unsigned, sig: toB64u(signBytes(keys.privateKeyObject, signingBytes(unsigned))) }
}

export type GrantStatus = 'valid' | 'expired' | 'not-yet-valid'

/**
 * Checks a grant's shape and its grantor's signature (AM_ERR_INVALID_KNOCK when either fails) and
 * answers whether it is in force at `now`.
 */
export function verifyGrant (grant: unknown, now = Date.now()): { grant: Grant, status: GrantStatus } {
  if (typeof grant !== 'object' || grant === null || Array.isArray(grant)) throw invalid('not an object')
  const g = grant as Record<string, unknown>
  checkFields(g)
  if (typeof g.sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(g.sig)) throw invalid('sig is not an Ed25519 signature')
  if (!verifyBytes(keyForAmid(g.grantor as string), signingBytes(g as unknown as Grant), fromB64u(g.sig))) {
    throw invalid(`the signature does not verify with the identity of ${g.grantor as string}`)
  }
  const status: GrantStatus = now < (g.issued_at as number) - 5 * 60_000 ? 'not-yet-valid' : now >= (g.expires_at as number) ? 'expired' : 'valid'
  return { grant: g as unknown as Grant, status }
}

/** True when the grant's scopes allow `scope` (exactly, or by a `prefix:*` wildcard). */
export function grantAllows (grant: Pick<Grant, 'scopes'>, scope: string): boolean {
  if (grant.scopes.includes(scope)) return true
  const colon = scope.indexOf(':')
  return colon > 0 && grant.scopes.includes(scope.slice(0, colon) + ':*')
}
