/**
 * Verified owners (docs/protocol.md §28) against a real OpenID Connect provider (oidc-provider) on
 * 127.0.0.1 and a real relay: an owner signs in, the agent signs the link, the registry shows the
 * owner and the verified tier; unlinking (agent or operator) takes it away; a statement signed by
 * another key, a tampered state and a relay whose provider does not answer are refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signOwnerLink, signRequest, type Identity } from '@agentmesh/crypto'
import type { Relay } from '@agentmesh/server'
import { freePort, startRelay } from '@agentmesh/testing'
import { signInAt, startOidcProvider, type TestProvider } from '@agentmesh/testing/oidc'

type Json = Record<string, any>
const API_KEY = 'operator-key-for-owner-tests-0123'

let provider: TestProvider
let relay: Relay
/** a free port for a relay with a fake clock, registered at the provider too */
let clockPort: number

async function call (who: Identity | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: Json }> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const h: Record<string, string> = { 'content-type': 'application/json', ...headers }
  if (who !== undefined) Object.assign(h, signRequest(who, method, path, text))
  const res = await fetch(relay.url + path, { method, headers: h, ...(text === '' ? {} : { body: text }) })
  return { status: res.status, json: await res.json() as Json }
}

async function register (who: Identity): Promise<void> {
  const r = await call(who, 'PUT', `/api/v1/agents/${who.amid}`, { display_name: 'worker', capabilities: [] })
  assert.equal(r.status, 200, JSON.stringify(r.json))
}

/** Starts a link as `who`, signs `login` in at the provider; answers the link id and the callback page. */
async function startAndSignIn (who: Identity, login: string): Promise<{ id: string, page: { status: number, body: string } }> {
  const started = await call(who, 'POST', `/api/v1/agents/${who.amid}/owner/link`)
  assert.equal(started.status, 201, JSON.stringify(started.json))
  assert.match(started.json.authorization_url, /code_challenge_method=S256/)
  assert.match(started.json.authorization_url, /nonce=/)
  const page = await signInAt(started.json.authorization_url, login)
  return { id: started.json.link_id, page }
}

before(async () => {
  const relayPort = await freePort()
  const providerPort = await freePort()
  clockPort = await freePort()
  provider = await startOidcProvider({ port: providerPort, redirectUris: [`http://127.0.0.1:${relayPort}/api/v1/owner/callback`, `http://127.0.0.1:${relayPort}/dashboard/api/oidc/callback`, `http://127.0.0.1:${clockPort}/api/v1/owner/callback`] })
  relay = await startRelay({ host: '127.0.0.1', port: relayPort, apiKey: API_KEY, oidcIssuer: provider.issuer, oidcClientId: provider.clientId, oidcClientSecret: provider.clientSecret })
})
after(async () => {
  await relay?.close()
  await provider?.close()
})

describe('verified owners (OpenID Connect)', () => {
  it('owners - an owner signs in, the agent signs the link: the registry reads tier verified with the owner; unlinking takes it away, both audited', async () => {
    const agent = createIdentity()
    await register(agent)
    assert.equal((await call(undefined, 'GET', `/api/v1/agents/${agent.amid}`)).json.tier, 'anonymous')
    const { id, page } = await startAndSignIn(agent, 'alice')
    assert.equal(page.status, 200, page.body)
    assert.match(page.body, /Person alice/)
    const polled = await call(agent, 'GET', `/api/v1/agents/${agent.amid}/owner/link/${id}`)
    assert.equal(polled.json.status, 'verified')
    assert.equal(polled.json.issuer, provider.issuer)
    assert.equal(polled.json.subject, 'alice')
    assert.equal(polled.json.relay, relay.relayAmid)
    const ts = Date.now()
    const signed = signOwnerLink(agent, { issuer: polled.json.issuer, subject: polled.json.subject, relay: polled.json.relay, ts })
    const confirmed = await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'alice', relay: relay.relayAmid, ts, sig: signed.sig })
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.json))
    assert.equal(confirmed.json.subject, 'alice')

    const profile = (await call(undefined, 'GET', `/api/v1/agents/${agent.amid}`)).json
    assert.equal(profile.tier, 'verified')
    assert.deepEqual({ ...profile.owner, linked_at: 0 }, { issuer: provider.issuer, subject: 'alice', name: 'Person alice', linked_at: 0 })
    const owner = (await call(undefined, 'GET', `/api/v1/agents/${agent.amid}/owner`)).json
    assert.equal(owner.sig, signed.sig)
    assert.equal(owner.ts, ts)

    // the same link cannot be confirmed twice
    assert.equal((await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'alice', relay: relay.relayAmid, ts, sig: signed.sig })).json.error.code, ErrorCode.NotFound)

    const unlinked = await call(agent, 'DELETE', `/api/v1/agents/${agent.amid}/owner`)
    assert.deepEqual(unlinked.json, { amid: agent.amid, unlinked: true })
    const after = (await call(undefined, 'GET', `/api/v1/agents/${agent.amid}`)).json
    assert.equal(after.tier, 'anonymous')
    assert.equal(after.owner, undefined)
    assert.equal((await call(undefined, 'GET', `/api/v1/agents/${agent.amid}/owner`)).status, 404)

    const rows = await relay.store.readAudit({ limit: 1000 })
    const mine = rows.filter(r => r.target === agent.amid && r.action.startsWith('owner.')).map(r => [r.action, r.actor, (r.detail as Json).subject])
    assert.deepEqual(mine, [['owner.link', agent.amid, 'alice'], ['owner.unlink', agent.amid, 'alice']])
  })

  it('owners - a link statement signed by another key is refused (AM_ERR_BAD_SIGNATURE) and nothing is stored', async () => {
    const agent = createIdentity()
    const other = createIdentity()
    await register(agent)
    const { id } = await startAndSignIn(agent, 'bob')
    const ts = Date.now()
    const forged = signOwnerLink(other, { issuer: provider.issuer, subject: 'bob', relay: relay.relayAmid, ts })
    const r = await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'bob', relay: relay.relayAmid, ts, sig: forged.sig })
    assert.equal(r.status, 400)
    assert.equal(r.json.error.code, ErrorCode.BadSignature)
    // a statement naming another subject than the provider vouched for is refused too
    const wrong = signOwnerLink(agent, { issuer: provider.issuer, subject: 'mallory', relay: relay.relayAmid, ts })
    assert.equal((await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'mallory', relay: relay.relayAmid, ts, sig: wrong.sig })).json.error.code, ErrorCode.InvalidArgument)
    // another agent may not confirm (nor poll) this agent's link
    assert.equal((await call(other, 'GET', `/api/v1/agents/${agent.amid}/owner/link/${id}`)).json.error.code, ErrorCode.Forbidden)
    assert.equal((await call(undefined, 'GET', `/api/v1/agents/${agent.amid}`)).json.tier, 'anonymous')
    assert.equal((await call(undefined, 'GET', `/api/v1/agents/${agent.amid}/owner`)).status, 404)
  })

  it('owners - confirming before the owner signed in is AM_ERR_OWNER_LINK_PENDING; a tampered state is refused at the callback and the link stays waiting', async () => {
    const agent = createIdentity()
    await register(agent)
    const started = await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link`)
    const id = started.json.link_id as string
    const ts = Date.now()
    const s = signOwnerLink(agent, { issuer: provider.issuer, subject: 'carol', relay: relay.relayAmid, ts })
    const early = await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'carol', relay: relay.relayAmid, ts, sig: s.sig })
    assert.equal(early.status, 409)
    assert.equal(early.json.error.code, ErrorCode.OwnerLinkPending)
    // the person signs in, but the state coming back is not the one the relay sent
    const atCallback = await signInAt(started.json.authorization_url, 'carol', { stopAt: (u) => u.pathname === '/api/v1/owner/callback' })
    const tampered = new URL(atCallback.url)
    tampered.searchParams.set('state', tampered.searchParams.get('state')! + 'x')
    const refused = await fetch(tampered)
    assert.equal(refused.status, 401)
    assert.equal(((await refused.json()) as Json).error.code, ErrorCode.AuthFailed)
    assert.equal((await call(agent, 'GET', `/api/v1/agents/${agent.amid}/owner/link/${id}`)).json.status, 'waiting')
    // the real callback still works once (state used once)
    const ok = await fetch(atCallback.url)
    assert.equal(ok.status, 200)
    assert.equal((await fetch(atCallback.url)).status, 401)
    assert.equal((await call(agent, 'GET', `/api/v1/agents/${agent.amid}/owner/link/${id}`)).json.status, 'verified')
  })

  it('owners - the operator unlinks an agent with its key (audited as operator); unsigned writes are refused', async () => {
    const agent = createIdentity()
    await register(agent)
    const { id } = await startAndSignIn(agent, 'dave')
    const ts = Date.now()
    const s = signOwnerLink(agent, { issuer: provider.issuer, subject: 'dave', relay: relay.relayAmid, ts })
    assert.equal((await call(agent, 'POST', `/api/v1/agents/${agent.amid}/owner/link/${id}/confirm`, { issuer: provider.issuer, subject: 'dave', relay: relay.relayAmid, ts, sig: s.sig })).status, 200)
    assert.equal((await call(undefined, 'DELETE', `/api/v1/agents/${agent.amid}/owner`)).json.error.code, ErrorCode.NotAuthenticated)
    assert.equal((await call(undefined, 'DELETE', `/api/v1/agents/${agent.amid}/owner`, undefined, { 'x-api-key': 'wrong-key-0123456789' })).json.error.code, ErrorCode.NotAuthenticated)
    const r = await call(undefined, 'DELETE', `/api/v1/agents/${agent.amid}/owner`, undefined, { 'x-api-key': API_KEY })
    assert.equal(r.status, 200)
    assert.equal((await call(undefined, 'GET', `/api/v1/agents/${agent.amid}`)).json.tier, 'anonymous')
    const rows = await relay.store.readAudit({ limit: 1000, action: 'owner.unlink' })
    assert.deepEqual(rows.filter(x => x.target === agent.amid).map(x => x.actor), ['operator'])
  })

  it('owners - a link under way expires after 10 minutes: the callback is refused and polling answers 404 (fake clock)', async () => {
    let t = Date.now()
    const clocked = await startRelay({ host: '127.0.0.1', port: clockPort, oidcIssuer: provider.issuer, oidcClientId: provider.clientId, oidcClientSecret: provider.clientSecret }, { now: () => t })
    try {
      const agent = createIdentity()
      const put = `/api/v1/agents/${agent.amid}`
      const body = JSON.stringify({ capabilities: [] })
      assert.equal((await fetch(clocked.url + put, { method: 'PUT', headers: { 'content-type': 'application/json', ...signRequest(agent, 'PUT', put, body) }, body })).status, 200)
      const path = `/api/v1/agents/${agent.amid}/owner/link`
      const started = await (await fetch(clocked.url + path, { method: 'POST', headers: signRequest(agent, 'POST', path, '') })).json() as Json
      assert.equal(started.expires_at, t + 10 * 60 * 1000)
      t += 10 * 60 * 1000 + 1
      const page = await signInAt(started.authorization_url, 'frank')
      assert.equal(page.status, 401)
      assert.equal((JSON.parse(page.body) as Json).error.code, ErrorCode.AuthFailed)
      const poll = `${path}/${started.link_id}`
      const r = await fetch(clocked.url + poll, { headers: signRequest(agent, 'GET', poll, '', t) })
      assert.equal(r.status, 404)
      assert.equal(((await r.json()) as Json).error.code, ErrorCode.NotFound)
    } finally {
      await clocked.close()
    }
  })

  it('owners - a relay without a provider answers AM_ERR_OIDC_UNAVAILABLE; one whose provider does not answer does not start (one line)', async () => {
    const plain = await startRelay({ host: '127.0.0.1' })
    try {
      const agent = createIdentity()
      const path = `/api/v1/agents/${agent.amid}/owner/link`
      const res = await fetch(plain.url + path, { method: 'POST', headers: signRequest(agent, 'POST', path, '') })
      assert.equal(res.status, 503)
      assert.equal(((await res.json()) as Json).error.code, ErrorCode.OidcUnavailable)
    } finally {
      await plain.close()
    }
    const dead = await freePort()
    await assert.rejects(startRelay({ host: '127.0.0.1', oidcIssuer: `http://127.0.0.1:${dead}`, oidcClientId: 'x' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, ErrorCode.InvalidConfig)
      assert.match(err.message, new RegExp(`^the OpenID Connect provider http://127\\.0\\.0\\.1:${dead} did not answer its discovery document \\(.*\\); check --oidc-issuer and that the provider is up$`))
      assert.ok(!err.message.includes('\n'))
      return true
    })
  })
})
