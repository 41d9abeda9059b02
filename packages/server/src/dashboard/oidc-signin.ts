/**
 * Operators and wardens sign in to the relay console with the relay's OpenID Connect provider
 * (docs/protocol.md §28.3), as an alternative to the operator key or an agent token:
 *
 *   GET /dashboard/api/oidc          → { enabled, issuer }: whether the sign-in screen offers it
 *   GET /dashboard/api/oidc/start    → 303 to the provider (PKCE, state, nonce; a browser-binding cookie)
 *   GET /dashboard/api/oidc/callback → state, PKCE, nonce and id token checked; the subject or its
 *                                      groups mapped by `oidcRoles`; a console session, 303 to /dashboard/
 *
 * An `operator` acts as the operator (the operator key, kept on the server). A `warden` acts as a
 * console agent of its own: an AMID derived from the relay's secret and the person's issuer and
 * subject (HKDF), registered with the warden role at each sign-in, so every permission and audit row
 * is the REST API's own. An unmapped subject is refused (403) and audited.
 */
import { hkdfSync, randomBytes } from 'node:crypto'
import type { Context } from 'hono'
import { SignJWT } from 'jose'
import { AgentMeshError, DEFAULT_ROLE, ErrorCode } from '@agentmesh/protocol'
import { identityFromSecret } from '@agentmesh/crypto'
import type { Store } from '@agentmesh/store'
import type { OidcClient, OidcIdentity } from '../oidc.ts'
import type { OidcRole, OidcRoles } from '../options.ts'
import { cookieValue, secretEquals, type ConsolePrincipal, type ConsoleSession } from './sessions.ts'

/** The cookie binding a sign-in under way to the browser that started it. */
export const OIDC_BROWSER_COOKIE = 'am_oidc'
export const CONSOLE_OIDC_CALLBACK = '/dashboard/api/oidc/callback'

/** The role a provider identity is given: its subject's entry, else the strongest of its groups'. */
export function roleOf (roles: OidcRoles, id: OidcIdentity): OidcRole | undefined {
  const own = roles.subjects[id.subject]
  if (own !== undefined) return own
  const mapped = id.groups.map(g => roles.groups[g]).filter((r): r is OidcRole => r !== undefined)
  return mapped.includes('operator') ? 'operator' : mapped[0]
}

export interface OidcSignInInit {
  oidc: OidcClient
  roles: OidcRoles
  store: Store
  relayId: string
  relay: { privateKeyObject: import('node:crypto').KeyObject }
  apiKey: string | undefined
  baseUrl: () => string
  now: () => number
  audience: string
  /** how long a console session lasts (its token as long) */
  ttlMs: number
}

export function oidcSignIn (init: OidcSignInInit): {
  start: (c: Context, secure: boolean) => Promise<Response>
  finish: (c: Context) => Promise<{ principal: ConsolePrincipal, credential: ConsoleSession['credential'], identity: OidcIdentity }>
} {
  const flow = init.oidc.flow<{ browser: string }>()

  /** the warden's console agent: the same AMID at every sign-in of that person on this relay */
  const wardenIdentity = async (id: OidcIdentity): Promise<string> => {
    const secret = await init.store.relaySecret()
    const seed = new Uint8Array(hkdfSync('sha256', secret, 'agentmesh/console-oidc', `${id.issuer}\n${id.subject}`, 32))
    return identityFromSecret(seed).amid
  }

  return {
    async start (c, secure) {
      const browser = randomBytes(24).toString('base64url')
      const started = await flow.start(init.baseUrl() + CONSOLE_OIDC_CALLBACK, { browser })
      // Lax: the provider's redirect back is a top-level navigation from another site
      const cookie = `${OIDC_BROWSER_COOKIE}=${browser}; Path=/dashboard/api/oidc; HttpOnly; SameSite=Lax; Max-Age=600${secure ? '; Secure' : ''}`
      const res = c.redirect(started.url, 303)
      res.headers.append('Set-Cookie', cookie)
      return res
    },
    async finish (c) {
      const { identity, data } = await flow.finish(new URL(c.req.url))
      const browser = cookieValue(c.req.header('cookie'), OIDC_BROWSER_COOKIE)
      if (browser === undefined || !secretEquals(browser, data.browser)) {
        throw new AgentMeshError(ErrorCode.AuthFailed, 'this sign-in was started in another browser: start it again from the console\'s sign-in screen')
      }
      const role = roleOf(init.roles, identity)
      if (role !== 'warden') {
        // a person no longer mapped as warden: its console agent loses the role now (open sessions end with their lifetime)
        const former = await wardenIdentity(identity)
        if (await init.store.getAgent(former) !== undefined && await init.store.roleOf(former) === 'warden') await init.store.setRole(former, DEFAULT_ROLE)
      }
      if (role === undefined) {
        throw Object.assign(new AgentMeshError(ErrorCode.Forbidden, `${identity.subject} at ${identity.issuer} may not sign in to this relay's console: the operator maps subjects or groups to roles (oidcRoles)`), { identity })
      }
      const person = { issuer: identity.issuer, subject: identity.subject, ...(identity.name === undefined ? {} : { name: identity.name }) }
      if (role === 'operator') {
        if (init.apiKey === undefined) throw new AgentMeshError(ErrorCode.AuthFailed, 'this relay has no operator API key, so nobody signs in as the operator (start it with --api-key, or let `agentmesh serve` make one)')
        return { principal: { kind: 'operator', role: 'master', person }, credential: { header: 'x-api-key', value: init.apiKey }, identity }
      }
      const amid = await wardenIdentity(identity)
      // the provider's text is untrusted: no control, bidi or invisible characters in the agent's name
      const name = (identity.name ?? identity.subject).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '').slice(0, 64)
      await init.store.upsertAgent({ amid, ...(name === '' ? {} : { name }), seenAt: init.now() })
      if (await init.store.roleOf(amid) !== 'warden') await init.store.setRole(amid, 'warden')
      const t = init.now()
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(init.relayId).setAudience(init.audience).setSubject(amid)
        .setIssuedAt(Math.floor(t / 1000)).setExpirationTime(Math.floor((t + init.ttlMs) / 1000)).sign(init.relay.privateKeyObject)
      return { principal: { kind: 'agent', amid, role: 'warden', person }, credential: { header: 'authorization', value: `Bearer ${token}` }, identity }
    },
  }
}
