/**
 * The relay as an OpenID Connect client (docs/protocol.md §28), over `openid-client`: discovery of
 * the provider at start, authorization requests with PKCE (S256), state and nonce, and the code
 * exchange that checks them and the id token. Two flows use it: owners linking an identity to
 * their agents, and operators and wardens signing in to the console. What is pending between the
 * redirect and the callback is kept in this node's memory, bounded, and expires.
 */
import * as client from 'openid-client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { isLoopbackHost } from './tls.ts'

/** How long a sign-in at the provider may take, from the authorization URL to the callback. */
export const OIDC_PENDING_MS = 10 * 60 * 1000
/** Sign-ins one node keeps pending at most, per flow (the oldest are forgotten first). */
export const MAX_OIDC_PENDING = 1000

/** The identity the provider vouched for: the id token's claims the relay uses. */
export interface OidcIdentity {
  issuer: string
  subject: string
  name?: string
  email?: string
  groups: string[]
}

/** One sign-in under way, keyed by its state. */
interface Pending<T> { verifier: string, nonce: string, redirectUri: string, expiresAt: number, data: T }

export interface OidcClientInit {
  issuer: string
  clientId: string
  /** from AGENTMESH_OIDC_CLIENT_SECRET only; none: a public client (PKCE) */
  clientSecret?: string
  now: () => number
}

/** A string claim, bounded (the provider's text is shown: untrusted). */
function claim (v: unknown, max = 256): string | undefined {
  return typeof v === 'string' && v !== '' ? v.slice(0, max) : undefined
}

export class OidcClient {
  private config: client.Configuration | undefined

  constructor (private readonly init: OidcClientInit) {}

  get issuer (): string { return this.init.issuer }

  /** Reads the provider's discovery document; one line naming the issuer when it does not answer. */
  async discover (): Promise<void> {
    const url = new URL(this.init.issuer)
    const auth = this.init.clientSecret === undefined ? client.None() : client.ClientSecretPost(this.init.clientSecret)
    try {
      // plain http only to a provider on this machine (a test or a local development provider)
      const insecure = url.protocol === 'http:' && isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))
      this.config = await client.discovery(url, this.init.clientId, undefined, auth, {
        ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
        timeout: 10,
      })
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err)
      throw new AgentMeshError(ErrorCode.InvalidConfig,
        `the OpenID Connect provider ${this.init.issuer} did not answer its discovery document (${why}); check --oidc-issuer and that the provider is up`)
    }
  }

  private cfg (): client.Configuration {
    if (this.config === undefined) throw new AgentMeshError(ErrorCode.OidcUnavailable, 'OpenID Connect sign-in is not ready: the provider\'s discovery document was not read')
    return this.config
  }

  /** A flow's pending sign-ins: the authorization URL to send the person to, and the callback's check. */
  flow<T> (): OidcFlow<T> { return new OidcFlow<T>(this, this.init.now) }

  /** @internal the authorization URL with PKCE, state and nonce */
  async authorizationUrl (redirectUri: string): Promise<{ url: string, state: string, verifier: string, nonce: string }> {
    const verifier = client.randomPKCECodeVerifier()
    const challenge = await client.calculatePKCECodeChallenge(verifier)
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(this.cfg(), {
      redirect_uri: redirectUri, scope: 'openid profile email', response_type: 'code',
      code_challenge: challenge, code_challenge_method: 'S256', state, nonce,
    })
    return { url: url.href, state, verifier, nonce }
  }

  /** @internal exchanges the callback's code; checks state, PKCE, nonce and the id token */
  async exchange (callbackUrl: URL, p: { state: string, verifier: string, nonce: string }): Promise<OidcIdentity> {
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
    try {
      tokens = await client.authorizationCodeGrant(this.cfg(), callbackUrl, {
        pkceCodeVerifier: p.verifier, expectedState: p.state, expectedNonce: p.nonce, idTokenExpected: true,
      })
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error'
      throw new AgentMeshError(ErrorCode.AuthFailed, `the provider's answer did not check out (${why}): start the sign-in again`)
    }
    const c = tokens.claims()
    if (c === undefined) throw new AgentMeshError(ErrorCode.AuthFailed, 'the provider answered no id token: start the sign-in again')
    const groups = Array.isArray(c.groups) ? (c.groups as unknown[]).filter((g): g is string => typeof g === 'string').slice(0, 100) : []
    const name = claim(c.name) ?? claim(c.preferred_username)
    const email = c.email_verified === true ? claim(c.email) : undefined
    return {
      issuer: c.iss,
      subject: c.sub,
      ...(name === undefined ? {} : { name }),
      ...(email === undefined ? {} : { email }),
      groups,
    }
  }
}

/** The pending sign-ins of one flow (owner links, console sign-in), by state. */
export class OidcFlow<T> {
  private readonly pending = new LruMap<string, Pending<T>>(MAX_OIDC_PENDING)

  constructor (private readonly oidc: OidcClient, private readonly now: () => number) {}

  /** Starts a sign-in: answers the provider's authorization URL; `data` comes back at the callback. */
  async start (redirectUri: string, data: T): Promise<{ url: string, state: string, expiresAt: number }> {
    const a = await this.oidc.authorizationUrl(redirectUri)
    const expiresAt = this.now() + OIDC_PENDING_MS
    this.pending.set(a.state, { verifier: a.verifier, nonce: a.nonce, redirectUri, expiresAt, data })
    return { url: a.url, state: a.state, expiresAt }
  }

  /**
   * The callback: the pending sign-in its `state` names (used once), the code exchanged and checked.
   * An unknown, used or expired state is refused before the provider is asked anything.
   */
  async finish (callbackUrl: URL): Promise<{ identity: OidcIdentity, data: T }> {
    const state = callbackUrl.searchParams.get('state') ?? ''
    const p = state === '' || state.length > 256 ? undefined : this.pending.get(state)
    if (p === undefined || p.expiresAt <= this.now()) {
      if (p !== undefined) this.pending.delete(state)
      throw new AgentMeshError(ErrorCode.AuthFailed, 'this sign-in is unknown or expired (the state does not match one the relay started): start it again')
    }
    this.pending.delete(state)
    const error = callbackUrl.searchParams.get('error')
    if (error !== null) throw new AgentMeshError(ErrorCode.AuthFailed, `the provider refused the sign-in (${error.slice(0, 100)}): start it again`)
    // the redirect URI the code was issued for, whatever host the request came in on
    const url = new URL(p.redirectUri)
    url.search = callbackUrl.search
    return { identity: await this.oidc.exchange(url, { state, verifier: p.verifier, nonce: p.nonce }), data: p.data }
  }
}
