/**
 * A real OpenID Connect provider on 127.0.0.1 for tests (`oidc-provider`, its built-in login form:
 * devInteractions), with one static confidential client, and a small browser (fetch with a cookie
 * jar) that signs a person in there: follows redirects, posts the login and consent forms.
 */
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import Provider from 'oidc-provider'

export interface TestProvider {
  issuer: string
  clientId: string
  clientSecret: string
  close: () => Promise<void>
}

/** Groups each test account is in (the `groups` claim). */
export type Groups = Record<string, string[]>

export async function startOidcProvider (o: { port: number, redirectUris: string[], groups?: Groups }): Promise<TestProvider> {
  const issuer = `http://127.0.0.1:${o.port}`
  const clientId = 'agentmesh-relay'
  const clientSecret = 'relay-client-secret-for-tests-0123456789'
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId, client_secret: clientSecret, redirect_uris: o.redirectUris,
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post',
    }],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ['sub'], profile: ['name', 'groups'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: false,
    cookies: { keys: ['test-cookie-key-0123456789'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60 },
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, name: `Person ${id}`, groups: o.groups?.[id] ?? [], email: `${id}@example.org`, email_verified: true }),
    }),
  } as never)
  const server = await new Promise<Server>((resolve) => {
    const s = provider.listen(o.port, '127.0.0.1', () => { resolve(s) })
  })
  return {
    issuer, clientId, clientSecret,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    },
  }
}

/** The port a TestProvider listens on. */
export const portOf = (s: Server): number => (s.address() as AddressInfo).port

/**
 * A person's browser: GETs `url`, follows redirects with its cookies, signs in as `login` on the
 * provider's form and consents; answers the first answer that is not a redirect nor one of the
 * provider's forms (the relay's callback page), or the redirect `stopAt` matches, unfollowed.
 */
export async function signInAt (url: string, login: string, o: { stopAt?: (location: URL) => boolean, maxSteps?: number } = {}): Promise<{ status: number, url: string, body: string, cookie: (host: string) => string }> {
  const jar = new Map<string, string>()
  const cookieOf = (host: string): string => [...jar].filter(([k]) => k.startsWith(`${host}|`)).map(([k, v]) => `${k.slice(host.length + 1)}=${v}`).join('; ')
  let next: { url: string, method: 'GET' | 'POST', form?: URLSearchParams } = { url, method: 'GET' }
  for (let step = 0; step < (o.maxSteps ?? 20); step++) {
    const host = new URL(next.url).host
    const cookie = cookieOf(host)
    const res = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: { ...(cookie === '' ? {} : { cookie }), ...(next.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(next.form === undefined ? {} : { body: next.form.toString() }),
    })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair!.indexOf('=')
      jar.set(`${host}|${pair!.slice(0, i).trim()}`, pair!.slice(i + 1).trim())
    }
    const location = res.headers.get('location')
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const to = new URL(location, next.url)
      if (o.stopAt?.(to) === true) return { status: res.status, url: to.href, body: '', cookie: cookieOf }
      next = { url: to.href, method: 'GET' }
      continue
    }
    const body = await res.text()
    const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1]
    if (action !== undefined && body.includes('name="prompt" value="login"')) {
      next = { url: new URL(action, next.url).href, method: 'POST', form: new URLSearchParams({ prompt: 'login', login, password: 'any' }) }
      continue
    }
    if (action !== undefined && body.includes('name="prompt" value="consent"')) {
      next = { url: new URL(action, next.url).href, method: 'POST', form: new URLSearchParams({ prompt: 'consent' }) }
      continue
    }
    return { status: res.status, url: next.url, body, cookie: cookieOf }
  }
  throw new Error(`signInAt: more than ${o.maxSteps ?? 20} steps`)
}
