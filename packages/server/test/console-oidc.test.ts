/**
 * Operators and wardens sign in to the relay console with a real OpenID Connect provider
 * (oidc-provider on 127.0.0.1, its login form driven with fetch): docs/protocol.md §28.3. A mapped
 * subject (or group) gets a console session with its role; an unmapped one is kept out (403, an
 * audit row); a tampered state, a sign-in finished in another browser and a tampered nonce are refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signRequest } from '@agentmesh/crypto'
import type { Relay } from '@agentmesh/server'
import { freePort, startRelay } from '@agentmesh/testing'
import { signInAt, startOidcProvider, type TestProvider } from '@agentmesh/testing/oidc'

type Json = Record<string, any>
const API_KEY = 'operator-key-for-console-oidc-0123'

let provider: TestProvider
let relay: Relay
let host: string

before(async () => {
  const relayPort = await freePort()
  host = `127.0.0.1:${relayPort}`
  provider = await startOidcProvider({
    port: await freePort(),
    redirectUris: [`http://${host}/api/v1/owner/callback`, `http://${host}/dashboard/api/oidc/callback`],
    groups: { gary: ['relay-admins'], olga: ['staff'] },
  })
  relay = await startRelay({
    host: '127.0.0.1', port: relayPort, apiKey: API_KEY,
    oidcIssuer: provider.issuer, oidcClientId: provider.clientId, oidcClientSecret: provider.clientSecret,
    oidcRoles: { subjects: { wendy: 'warden', olga: 'operator' }, groups: { 'relay-admins': 'warden' } },
  })
})
after(async () => {
  await relay?.close()
  await provider?.close()
})

/** A person signs in from the console's sign-in screen; answers where the relay sent them and the session's cookie. */
async function consoleSignIn (login: string): Promise<{ status: number, url: string, body: string, cookie: string }> {
  const r = await signInAt(`${relay.url}/dashboard/api/oidc/start`, login, { stopAt: (u) => u.pathname === '/dashboard/' })
  return { status: r.status, url: r.url, body: r.body, cookie: r.cookie(host) }
}

async function session (cookie: string): Promise<{ status: number, json: Json }> {
  const res = await fetch(`${relay.url}/dashboard/api/session`, { headers: { cookie } })
  return { status: res.status, json: await res.json() as Json }
}

describe('console sign-in with OpenID Connect', () => {
  it('console oidc - the sign-in screen learns the provider; without one the start answers AM_ERR_OIDC_UNAVAILABLE', async () => {
    assert.deepEqual(await (await fetch(`${relay.url}/dashboard/api/oidc`)).json(), { enabled: true, issuer: provider.issuer })
    const plain = await startRelay({ host: '127.0.0.1' })
    try {
      assert.deepEqual(await (await fetch(`${plain.url}/dashboard/api/oidc`)).json(), { enabled: false })
      const r = await fetch(`${plain.url}/dashboard/api/oidc/start`, { redirect: 'manual' })
      assert.equal(r.status, 503)
      assert.equal(((await r.json()) as Json).error.code, ErrorCode.OidcUnavailable)
    } finally {
      await plain.close()
    }
  })

  it('console oidc - a mapped subject gets into the console as warden, acting with the REST API\'s warden permissions; audited', async () => {
    const r = await consoleSignIn('wendy')
    assert.equal(r.status, 303)
    assert.equal(new URL(r.url).pathname, '/dashboard/')
    assert.match(r.cookie, /am_console=/)
    const s = await session(r.cookie)
    assert.equal(s.status, 200)
    assert.equal(s.json.principal.role, 'warden')
    assert.equal(s.json.principal.kind, 'agent')
    assert.deepEqual(s.json.principal.person, { issuer: provider.issuer, subject: 'wendy', name: 'Person wendy' })
    const amid = s.json.principal.amid as string
    // the same person gets the same console agent at the next sign-in
    assert.equal((await session((await consoleSignIn('wendy')).cookie)).json.principal.amid, amid)
    // the console's API answers as the REST API answers that warden
    const me = await fetch(`${relay.url}/dashboard/api/v1/agents/${amid}`, { headers: { cookie: r.cookie } })
    assert.equal(me.status, 200)
    const rows = await relay.store.readAudit({ limit: 1000, action: 'console.signin' })
    const mine = rows.filter(x => (x.detail as Json).subject === 'wendy')
    assert.equal(mine.length, 2)
    assert.deepEqual({ actor: mine[0]!.actor, via: (mine[0]!.detail as Json).via, role: (mine[0]!.detail as Json).role }, { actor: amid, via: 'oidc', role: 'warden' })
  })

  it('console oidc - a group maps to warden; a subject mapped to operator is the operator', async () => {
    const gary = await session((await consoleSignIn('gary')).cookie)
    assert.equal(gary.json.principal.role, 'warden')
    assert.equal(gary.json.principal.person.subject, 'gary')
    const olga = await session((await consoleSignIn('olga')).cookie)
    assert.equal(olga.json.principal.kind, 'operator')
    assert.equal(olga.json.principal.role, 'master')
  })

  it('console oidc - an unmapped subject is kept out: 403 AM_ERR_FORBIDDEN, no session, an audit row', async () => {
    const r = await consoleSignIn('mallory')
    assert.equal(r.status, 403)
    assert.equal((JSON.parse(r.body) as Json).error.code, ErrorCode.Forbidden)
    assert.doesNotMatch(r.cookie, /am_console=[^;]/)
    assert.equal((await session(r.cookie)).status, 401)
    const rows = await relay.store.readAudit({ limit: 1000, action: 'console.signin_refused' })
    const refused = rows.filter(x => (x.detail as Json).subject === 'mallory')
    assert.equal(refused.length, 1)
    assert.deepEqual({ ...(refused[0]!.detail as Json), ip: undefined }, { ip: undefined, via: 'oidc', reason: ErrorCode.Forbidden, issuer: provider.issuer, subject: 'mallory' })
  })

  it('console oidc - a tampered state, and a sign-in finished in another browser, are refused with AM_ERR_AUTH_FAILED', async () => {
    const atCallback = await signInAt(`${relay.url}/dashboard/api/oidc/start`, 'wendy', { stopAt: (u) => u.pathname === '/dashboard/api/oidc/callback' })
    const cookie = atCallback.cookie(host)
    const tampered = new URL(atCallback.url)
    tampered.searchParams.set('state', 'not-the-state')
    const bad = await fetch(tampered, { headers: { cookie }, redirect: 'manual' })
    assert.equal(bad.status, 401)
    assert.equal(((await bad.json()) as Json).error.code, ErrorCode.AuthFailed)
    // the right state, but from a browser without the cookie the sign-in was started with
    const other = await fetch(atCallback.url, { redirect: 'manual' })
    assert.equal(other.status, 401)
    assert.equal(((await other.json()) as Json).error.code, ErrorCode.AuthFailed)
  })

  it('console oidc - a tampered nonce (the id token answers another one) is refused and nothing is linked', async () => {
    const agent = createIdentity()
    const put = `/api/v1/agents/${agent.amid}`
    const body = JSON.stringify({ capabilities: [] })
    assert.equal((await fetch(relay.url + put, { method: 'PUT', headers: { 'content-type': 'application/json', ...signRequest(agent, 'PUT', put, body) }, body })).status, 200)
    const path = `/api/v1/agents/${agent.amid}/owner/link`
    const started = await (await fetch(relay.url + path, { method: 'POST', headers: signRequest(agent, 'POST', path, '') })).json() as Json
    const url = new URL(started.authorization_url)
    url.searchParams.set('nonce', 'a-nonce-the-relay-did-not-send')
    const r = await signInAt(url.href, 'wendy')
    assert.equal(r.status, 401)
    assert.equal((JSON.parse(r.body) as Json).error.code, ErrorCode.AuthFailed)
    const poll = `${path}/${started.link_id}`
    const state = await (await fetch(relay.url + poll, { headers: signRequest(agent, 'GET', poll, '') })).json() as Json
    assert.equal(state.status, 'waiting')
  })
})
