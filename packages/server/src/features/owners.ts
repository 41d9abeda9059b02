/**
 * Verified owners (docs/protocol.md §28): an agent's owner signs in at the relay's OpenID Connect
 * provider and the agent signs a statement linking that identity to it; the registry then shows the
 * owner and gives the agent the verified tier. Flow:
 *
 *   1. the agent (signed request) POST /api/v1/agents/{amid}/owner/link → an authorization URL;
 *   2. the person signs in at the provider, which redirects to GET /api/v1/owner/callback: the
 *      relay checks state, PKCE, nonce and the id token and keeps the identity as pending;
 *   3. the agent polls GET …/owner/link/{id} and, once verified, signs
 *      {amid, issuer, subject, relay, ts} and POSTs it to …/owner/link/{id}/confirm: stored, audited.
 *
 * DELETE /api/v1/agents/{amid}/owner (the agent, or the operator's key) unlinks, audited.
 * Pending links live in this node's memory, bounded, for 10 minutes.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context, Hono } from 'hono'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { verifyOwnerLink } from '@agentmesh/crypto'
import type { OwnerLinkRecord, Store } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import type { Logger } from '../log.ts'
import { amidParam, type RegistryHelpers } from '../registry.ts'
import { MAX_OIDC_PENDING, OIDC_PENDING_MS, type OidcClient, type OidcIdentity } from '../oidc.ts'

/** Agents one owner identity may link at most. */
export const MAX_AGENTS_PER_OWNER = 100
/** How far a link statement's ts may be from the relay's clock. */
export const OWNER_LINK_SKEW_MS = 5 * 60 * 1000
/** The callback path the provider redirects owners to (under publicUrl). */
export const OWNER_CALLBACK_PATH = '/api/v1/owner/callback'

/** The wire form of an owner link. */
export interface OwnerJson { amid: string, issuer: string, subject: string, name?: string, relay: string, ts: number, sig: string, linked_at: number }

export function ownerJson (l: OwnerLinkRecord): OwnerJson {
  return { amid: l.amid, issuer: l.issuer, subject: l.subject, ...(l.name === undefined ? {} : { name: l.name }), relay: l.relay, ts: l.ts, sig: l.sig, linked_at: l.linkedAt }
}

interface PendingLink { amid: string, expiresAt: number, identity?: OidcIdentity }

export interface OwnersInit {
  store: Store
  oidc: OidcClient | undefined
  registry: () => RegistryHelpers
  relayAmid: () => string
  audit: (actor: string, action: string, target: string | undefined, detail: Record<string, unknown>) => Promise<void>
  apiKey: string | undefined
  /** the relay's public URL (publicUrl, or the listening URL once known) */
  baseUrl: () => string
  now: () => number
  log: Logger
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

/** The small page the person sees after the provider redirects back (their text escaped). */
function page (title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title></head>` +
    `<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(body)}</p></body></html>`
}

export function ownersFeature (c: OwnersInit): RelayFeature {
  const flow = c.oidc?.flow<{ linkId: string }>()
  const links = new LruMap<string, PendingLink>(MAX_OIDC_PENDING)

  const enabled = (): { oidc: OidcClient, flow: NonNullable<typeof flow> } => {
    if (c.oidc === undefined || flow === undefined) throw new AgentMeshError(ErrorCode.OidcUnavailable, 'this relay has no OpenID Connect provider: its operator sets --oidc-issuer and --oidc-client-id to offer owner links')
    return { oidc: c.oidc, flow }
  }
  /** the agent's own request (signed by it) */
  const own = async (ctx: Context): Promise<{ amid: string, body: unknown }> => {
    const amid = amidParam(ctx)
    const { signer, body } = await c.registry().signed(ctx)
    if (signer !== amid) throw new AgentMeshError(ErrorCode.Forbidden, `the request is signed by ${signer}; only ${amid} may change its owner link`)
    return { amid, body }
  }
  const pendingOf = (amid: string, id: string): PendingLink => {
    const p = id.length > 64 ? undefined : links.get(id)
    if (p === undefined || p.amid !== amid || p.expiresAt <= c.now()) {
      throw new AgentMeshError(ErrorCode.NotFound, 'no such owner link under way (unknown, or older than 10 minutes): start again with `agentmesh owner link`')
    }
    return p
  }
  const isOperator = (ctx: Context): boolean => {
    const given = ctx.req.header('x-api-key')
    return c.apiKey !== undefined && given !== undefined && timingSafeEqual(digest(given), digest(c.apiKey))
  }

  return {
    name: 'owners',
    routes (app: Hono) {
      app.post('/api/v1/agents/:amid/owner/link', async (ctx) => {
        const { flow } = enabled()
        const { amid } = await own(ctx)
        const linkId = randomBytes(24).toString('base64url')
        // one link under way per agent: a new one replaces the older
        for (const [id, p] of [...links]) if (p.amid === amid) links.delete(id)
        const started = await flow.start(c.baseUrl() + OWNER_CALLBACK_PATH, { linkId })
        links.set(linkId, { amid, expiresAt: started.expiresAt })
        return ctx.json({ link_id: linkId, authorization_url: started.url, expires_at: started.expiresAt }, 201)
      })

      app.get(OWNER_CALLBACK_PATH, async (ctx) => {
        const { flow } = enabled()
        const { identity, data } = await flow.finish(new URL(ctx.req.url))
        const p = links.get(data.linkId)
        if (p === undefined || p.expiresAt <= c.now()) throw new AgentMeshError(ErrorCode.NotFound, 'this owner link expired: start again with `agentmesh owner link`')
        p.identity = identity
        return ctx.html(page('Signed in', `The relay saw you as ${identity.name ?? identity.subject} at ${identity.issuer}. Go back to your terminal: the agent ${p.amid} signs the link to finish.`))
      })

      app.get('/api/v1/agents/:amid/owner/link/:id', async (ctx) => {
        enabled()
        const { amid } = await own(ctx)
        const p = pendingOf(amid, ctx.req.param('id'))
        if (p.identity === undefined) return ctx.json({ status: 'waiting', expires_at: p.expiresAt })
        const id = p.identity
        return ctx.json({ status: 'verified', issuer: id.issuer, subject: id.subject, ...(id.name === undefined ? {} : { name: id.name }), relay: c.relayAmid(), expires_at: p.expiresAt })
      })

      app.post('/api/v1/agents/:amid/owner/link/:id/confirm', async (ctx) => {
        enabled()
        const { amid, body } = await own(ctx)
        const linkId = ctx.req.param('id')
        const p = pendingOf(amid, linkId)
        if (p.identity === undefined) throw new AgentMeshError(ErrorCode.OwnerLinkPending, 'the owner has not signed in at the provider yet: open the authorization URL, sign in, then confirm')
        const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
        if (typeof b.sig !== 'string' || b.sig.length > 200 || !Number.isSafeInteger(b.ts) || typeof b.issuer !== 'string' || typeof b.subject !== 'string' || typeof b.relay !== 'string') {
          throw new AgentMeshError(ErrorCode.InvalidArgument, 'the body must be the signed statement { issuer, subject, relay, ts, sig }')
        }
        const id = p.identity
        if (b.issuer !== id.issuer || b.subject !== id.subject) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the statement names another identity than the one the provider vouched for')
        if (b.relay !== c.relayAmid()) throw new AgentMeshError(ErrorCode.InvalidArgument, `the statement names relay ${String(b.relay).slice(0, 80)}, not this one (${c.relayAmid()})`)
        const t = c.now()
        if (Math.abs((b.ts as number) - t) > OWNER_LINK_SKEW_MS) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the statement\'s ts is more than 5 minutes from the relay\'s clock: check the clock and sign again')
        const statement = { amid, issuer: id.issuer, subject: id.subject, relay: c.relayAmid(), ts: b.ts as number }
        if (!verifyOwnerLink(statement, b.sig)) throw new AgentMeshError(ErrorCode.BadSignature, `the link statement is not signed by ${amid}: the agent itself signs it`)
        const current = await c.store.getOwnerLink(amid)
        const sameOwner = current !== undefined && current.issuer === id.issuer && current.subject === id.subject
        if (!sameOwner && await c.store.countOwnerLinks(id.issuer, id.subject) >= MAX_AGENTS_PER_OWNER) {
          throw new AgentMeshError(ErrorCode.OwnerLimit, `this owner identity links ${MAX_AGENTS_PER_OWNER} agents already, the most a relay takes: unlink one first`)
        }
        const link: OwnerLinkRecord = { ...statement, ...(id.name === undefined ? {} : { name: id.name }), sig: b.sig, linkedAt: t }
        await c.store.putOwnerLink(link)
        links.delete(linkId)
        await c.audit(amid, 'owner.link', amid, { issuer: id.issuer, subject: id.subject })
        return ctx.json(ownerJson(link))
      })

      app.get('/api/v1/agents/:amid/owner', async (ctx) => {
        const amid = amidParam(ctx)
        const l = await c.store.getOwnerLink(amid)
        if (l === undefined) throw new AgentMeshError(ErrorCode.NotFound, `${amid} has no verified owner on this relay`)
        return ctx.json(ownerJson(l))
      })

      app.delete('/api/v1/agents/:amid/owner', async (ctx) => {
        let actor: string
        let amid: string
        if (isOperator(ctx)) { amid = amidParam(ctx); actor = 'operator' } else { amid = (await own(ctx)).amid; actor = amid }
        const old = await c.store.getOwnerLink(amid)
        if (old === undefined || !await c.store.deleteOwnerLink(amid)) throw new AgentMeshError(ErrorCode.NotFound, `${amid} has no verified owner on this relay`)
        await c.audit(actor, 'owner.unlink', amid, { issuer: old.issuer, subject: old.subject })
        return ctx.json({ amid, unlinked: true })
      })
    },
  }
}

/** How long a pending owner link lasts (for docs and tests). */
export const OWNER_LINK_PENDING_MS = OIDC_PENDING_MS
