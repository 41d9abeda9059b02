/**
 * Verified owners from the agent's side (docs/protocol.md §28): `linkOwner` starts a link at the
 * relay, hands the provider's sign-in URL to the caller (the CLI prints it), polls until the owner
 * signed in, then signs the statement {amid, issuer, subject, relay, ts} with the agent's key and
 * confirms. `ownerOf` reads an agent's owner, `unlinkOwner` removes the agent's own.
 */
import { signOwnerLink, signRequest, type Identity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, type ApiAnswer } from '@agentmesh/protocol'
import { apiRequest } from './api.ts'

/** How often a link under way is polled. */
export const OWNER_POLL_MS = 1000
/** How long linkOwner waits for the owner to sign in (the relay forgets the link after 10 minutes). */
export const OWNER_LINK_TIMEOUT_MS = 10 * 60 * 1000

export type OwnerLink = ApiAnswer<'getOwner'>

export interface LinkOwnerOptions {
  /** the relay's HTTP origin (httpOrigin of its address) */
  origin: string
  identity: Identity
  /** given the provider's sign-in URL: show it to the owner (or open a browser) */
  onAuthorizationUrl: (url: string, expiresAt: number) => void
  /** @default OWNER_POLL_MS */
  pollMs?: number
  /** @default OWNER_LINK_TIMEOUT_MS */
  timeoutMs?: number
  /** @default Date.now */
  now?: () => number
  signal?: AbortSignal
}

const signer = (id: Identity) => (m: string, p: string, b: string): Record<string, string> => signRequest(id, m, p, b)

export async function linkOwner (o: LinkOwnerOptions): Promise<OwnerLink> {
  const { origin, identity: id } = o
  const now = o.now ?? Date.now
  const base = `/api/v1/agents/${id.amid}/owner/link`
  const started = await apiRequest(origin, 'startOwnerLink', base, { sign: signer(id) })
  o.onAuthorizationUrl(started.authorization_url, started.expires_at)
  const until = Math.min(started.expires_at, now() + (o.timeoutMs ?? OWNER_LINK_TIMEOUT_MS))
  for (;;) {
    if (o.signal?.aborted === true) throw new AgentMeshError(ErrorCode.Aborted, 'owner link aborted')
    const state = await apiRequest(origin, 'getOwnerLink', `${base}/${started.link_id}`, { sign: signer(id) })
    if (state.status === 'verified' && state.issuer !== undefined && state.subject !== undefined && state.relay !== undefined) {
      const { statement, sig } = signOwnerLink(id, { issuer: state.issuer, subject: state.subject, relay: state.relay, ts: now() })
      const body = JSON.stringify({ issuer: statement.issuer, subject: statement.subject, relay: statement.relay, ts: statement.ts, sig })
      return await apiRequest(origin, 'confirmOwnerLink', `${base}/${started.link_id}/confirm`, { sign: signer(id), body })
    }
    if (now() >= until) throw new AgentMeshError(ErrorCode.Timeout, 'the owner did not sign in at the provider in time: run the link again')
    await new Promise<void>((resolve) => { setTimeout(resolve, o.pollMs ?? OWNER_POLL_MS) })
  }
}

/** The agent's verified owner on the relay at `origin`, or undefined without one. */
export async function ownerOf (origin: string, amid: string): Promise<OwnerLink | undefined> {
  try {
    return await apiRequest(origin, 'getOwner', `/api/v1/agents/${amid}/owner`)
  } catch (err) {
    if (AgentMeshError.is(err, ErrorCode.NotFound)) return undefined
    throw err
  }
}

/** Removes the agent's own owner link (signed by it). */
export async function unlinkOwner (origin: string, identity: Identity): Promise<ApiAnswer<'deleteOwner'>> {
  return await apiRequest(origin, 'deleteOwner', `/api/v1/agents/${identity.amid}/owner`, { sign: signer(identity) })
}
