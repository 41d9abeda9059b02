/**
 * The relay's console over real HTTP and WebSocket (createRelay on 127.0.0.1): its files and
 * headers, sign-in (operator key, a warden's token; wrong ones refused, rate-limited, audited
 * without the secret), the cookie session and its expiry, CSRF and Origin refusals on writes and
 * on the events socket, and the live frames.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import WebSocket from 'ws'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { makeTestCa, startRelay } from '@agentmesh/testing'
import { buildDashboard } from '../../dashboard/build.mjs'
import { dashboardBuilt } from '@agentmesh/dashboard'
import type { Relay } from '../src/relay-server.ts'

const KEY = 'dashboard-test-key-0123456789abcdef'
type Json = Record<string, any>
/** the relay's clock (sessions, sign-in buckets); each sign-in moves it 12 s on (two tokens back in the bucket; agents' signed requests allow 300 s of skew) unless a test holds it */
let clock = Date.now()
let tick = true

async function call (relay: Relay, method: string, path: string, o: { body?: unknown, cookie?: string, csrf?: string, origin?: string | null, headers?: Record<string, string> } = {}): Promise<{ status: number, body: Json, headers: Headers }> {
  if (tick && path === '/dashboard/api/signin') clock += 12_000
  const headers: Record<string, string> = { ...o.headers }
  if (o.body !== undefined) headers['content-type'] = 'application/json'
  if (o.cookie !== undefined) headers.cookie = o.cookie
  if (o.csrf !== undefined) headers['x-agentmesh-csrf'] = o.csrf
  if (o.origin !== null) headers.origin = o.origin ?? relay.url
  const res = await fetch(relay.url + path, { method, headers, redirect: 'manual', ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) })
  const text = await res.text()
  let body: Json = {}
  try { body = JSON.parse(text) } catch { body = { text } }
  return { status: res.status, body, headers: res.headers }
}

async function signIn (relay: Relay, body: unknown): Promise<{ cookie: string, csrf: string, body: Json }> {
  const r = await call(relay, 'POST', '/dashboard/api/signin', { body })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  const set = r.headers.get('set-cookie') ?? ''
  return { cookie: set.split(';')[0]!, csrf: r.body.csrf, body: r.body }
}

describe('dashboard - the relay console', async () => {
  if (!dashboardBuilt()) await buildDashboard()
  const relay = await startRelay({ apiKey: KEY, host: '127.0.0.1' }, { now: () => clock })
  const conns: Connection[] = []
  after(async () => { for (const c of conns) await c.close(); await relay.close() })
  const agent = async (name: string): Promise<{ id: Identity, conn: Connection }> => {
    const id = createIdentity(name)
    const conn = await connect({ server: relay.url, identity: id, state: memoryState() })
    conns.push(conn)
    return { id, conn }
  }

  it('dashboard - serves the UI at /dashboard/ with its security headers', async () => {
    const r = await call(relay, 'GET', '/dashboard', { origin: null })
    assert.equal(r.status, 301)
    assert.equal(r.headers.get('location'), '/dashboard/')
    const page = await call(relay, 'GET', '/dashboard/', { origin: null })
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    assert.match(page.body.text, /<script type="module" src="app.js"><\/script>/)
    assert.doesNotMatch(page.body.text, /<script>|style=/, 'no inline script or style')
    const csp = page.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff')
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer')
    const js = await call(relay, 'GET', '/dashboard/app.js', { origin: null })
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/)
    assert.ok(js.body.text.length < 120_000, `app.js is ${js.body.text.length} bytes`)
    const missing = await call(relay, 'GET', '/dashboard/nope.js', { origin: null })
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, ErrorCode.NotFound)
  })

  it('dashboard - sign-in: a wrong key is refused and audited without the key; the right one gives an HttpOnly SameSite=Strict cookie', async () => {
    const none = await call(relay, 'GET', '/dashboard/api/session')
    assert.equal(none.status, 401)
    assert.equal(none.body.error.code, ErrorCode.NotAuthenticated)
    const bad = await call(relay, 'POST', '/dashboard/api/signin', { body: { key: 'wrong-key-value-xyz' } })
    assert.equal(bad.status, 401)
    assert.equal(bad.body.error.code, ErrorCode.AuthFailed)
    assert.equal(bad.headers.get('set-cookie'), null)
    const empty = await call(relay, 'POST', '/dashboard/api/signin', { body: {} })
    assert.equal(empty.body.error.code, ErrorCode.InvalidArgument)
    const r = await call(relay, 'POST', '/dashboard/api/signin', { body: { key: KEY } })
    assert.equal(r.status, 200)
    const set = r.headers.get('set-cookie') ?? ''
    assert.match(set, /^am_console=[\w-]{43}; Path=\/dashboard; HttpOnly; SameSite=Strict; Max-Age=28800$/)
    assert.deepEqual(r.body.principal, { kind: 'operator', role: 'master' })
    assert.equal(r.body.mode, 'relay')
    const s = await call(relay, 'GET', '/dashboard/api/session', { cookie: set.split(';')[0] })
    assert.equal(s.status, 200)
    assert.equal(s.body.csrf, r.body.csrf)
    // audited, success and failure, never the key
    const audit = await call(relay, 'GET', '/api/v1/audit?action=console.signin_failed', { headers: { 'x-api-key': KEY } })
    assert.equal(audit.body.entries.length, 1)
    assert.equal(audit.body.entries[0].detail.via, 'key')
    const all = JSON.stringify((await call(relay, 'GET', '/api/v1/audit?limit=200', { headers: { 'x-api-key': KEY } })).body)
    assert.ok(all.includes('console.signin'))
    assert.ok(!all.includes('wrong-key-value-xyz') && !all.includes(KEY), 'no key in the audit log')
  })

  it('dashboard - writes need the CSRF header and the console\'s Origin; reads go through with the cookie', async () => {
    const { cookie, csrf } = await signIn(relay, { key: KEY })
    const rooms = await call(relay, 'GET', '/dashboard/api/v1/rooms', { cookie })
    assert.equal(rooms.status, 200)
    assert.ok(rooms.body.rooms.some((r: Json) => r.id === 'global'))
    const post = { to: '#global', text: 'from the console' }
    const noCsrf = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie, body: post })
    assert.equal(noCsrf.status, 403)
    assert.equal(noCsrf.body.error.code, ErrorCode.CsrfRejected)
    const wrongCsrf = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie, csrf: csrf + 'x', body: post })
    assert.equal(wrongCsrf.body.error.code, ErrorCode.CsrfRejected)
    const evil = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie, csrf, body: post, origin: 'http://evil.example' })
    assert.equal(evil.body.error.code, ErrorCode.CsrfRejected)
    const noOrigin = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie, csrf, body: post, origin: null })
    assert.equal(noOrigin.body.error.code, ErrorCode.CsrfRejected)
    const history = async (): Promise<string[]> => ((await call(relay, 'GET', '/api/v1/rooms/global/history', { headers: { 'x-api-key': KEY } })).body.messages as Json[]).map(m => m.text)
    assert.deepEqual(await history(), [], 'nothing refused was stored')
    const ok = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie, csrf, body: post })
    assert.equal(ok.status, 201, JSON.stringify(ok.body))
    assert.deepEqual(await history(), ['from the console'])
    // the console's headers override nothing of the caller's: a key sent by the page is ignored, the session's principal acts
    const notMine = await call(relay, 'GET', '/dashboard/api/v1/rooms', { headers: { 'x-api-key': 'forged' } })
    assert.equal(notMine.status, 401)
    // a sign-in posted by another site's page is refused
    const cross = await call(relay, 'POST', '/dashboard/api/signin', { body: { key: KEY }, origin: 'http://evil.example' })
    assert.equal(cross.body.error.code, ErrorCode.CsrfRejected)
  })

  it('dashboard - the events socket checks Origin and the cookie, then streams presence and room messages', async () => {
    const { cookie } = await signIn(relay, { key: KEY })
    const url = relay.url.replace('http', 'ws') + '/dashboard/api/events'
    const refused = async (headers: Record<string, string>): Promise<number> => await new Promise((resolve) => {
      const ws = new WebSocket(url, { headers })
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
      ws.on('open', () => { ws.close(); resolve(101) })
      ws.on('error', () => {})
    })
    assert.equal(await refused({ cookie, origin: 'http://evil.example' }), 403)
    assert.equal(await refused({ origin: relay.url }), 401)
    const ws = new WebSocket(url, { headers: { cookie, origin: relay.url } })
    const frames: Json[] = []
    ws.on('message', (d) => { frames.push(JSON.parse(String(d))) })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const until = async (pred: () => boolean): Promise<void> => { for (let i = 0; i < 200 && !pred(); i++) await new Promise(r => setTimeout(r, 25)); assert.ok(pred(), JSON.stringify(frames)) }
    await until(() => frames.some(f => f.type === 'hello'))
    const a = await agent('live-a')
    await until(() => frames.some(f => f.type === 'presence' && f.data.amid === a.id.amid && f.data.status === 'online'))
    await call(relay, 'POST', '/api/v1/messages', { headers: { 'x-api-key': KEY }, body: { to: '#global', text: 'tick' } })
    await until(() => frames.some(f => (f.type === 'message' || f.type === 'room') && f.data.room === 'global'))
    for (const f of frames) { assert.equal(typeof f.ts, 'number'); assert.equal(typeof f.data, 'object') }
    assert.ok(!JSON.stringify(frames).includes('tick'), 'the stream carries no message text: the page reads it through the API')
    ws.close()
  })

  it('dashboard - a warden signs in with its bearer token; a worker is refused', async () => {
    const w = await agent('warden-1')
    const token = async (id: Identity): Promise<string> => {
      const ch = await call(relay, 'POST', '/api/v1/auth/challenge', { body: { amid: id.amid } })
      const t = await call(relay, 'POST', '/api/v1/auth/token', { body: { amid: id.amid, nonce: ch.body.nonce, sig: signChallenge(id, id.amid, ch.body.nonce, ch.body.relay) } })
      return t.body.token
    }
    const asWorker = await call(relay, 'POST', '/dashboard/api/signin', { body: { token: await token(w.id) } })
    assert.equal(asWorker.status, 403)
    assert.equal(asWorker.body.error.code, ErrorCode.Forbidden)
    const bogus = await call(relay, 'POST', '/dashboard/api/signin', { body: { token: 'eyJhbGciOiJFZERTQSJ9.e30.c2ln' } })
    assert.equal(bogus.body.error.code, ErrorCode.AuthFailed)
    const role = await call(relay, 'PUT', `/api/v1/agents/${w.id.amid}/role`, { headers: { 'x-api-key': KEY }, body: { role: 'warden' } })
    assert.equal(role.status, 200, JSON.stringify(role.body))
    const s = await signIn(relay, { token: await token(w.id) })
    assert.deepEqual(s.body.principal, { kind: 'agent', amid: w.id.amid, role: 'warden' })
    // the session acts as the warden: its post is from the warden
    const posted = await call(relay, 'POST', '/dashboard/api/v1/messages', { cookie: s.cookie, csrf: s.csrf, body: { to: '#global', text: 'warden here' } })
    assert.equal(posted.status, 201, JSON.stringify(posted.body))
    assert.equal(posted.body.from, w.id.amid)
    // its live stream: rooms it may read, not another pair's private room; no audit frames
    const ws = new WebSocket(relay.url.replace('http', 'ws') + '/dashboard/api/events', { headers: { cookie: s.cookie, origin: relay.url } })
    const frames: Json[] = []
    ws.on('message', (d) => { frames.push(JSON.parse(String(d))) })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const x = await agent('private-x')
    const { chat } = await import('@agentmesh/client')
    await chat(x.conn).createRoom({ id: 'hidden', kind: 'private' })
    await chat(x.conn).say('hidden', 'sealed for x')
    await chat(x.conn).say('global', 'public hello')
    const until = async (pred: () => boolean): Promise<void> => { for (let i = 0; i < 200 && !pred(); i++) await new Promise(r => setTimeout(r, 25)); assert.ok(pred(), JSON.stringify(frames)) }
    await until(() => frames.some(f => f.type === 'message' && f.data.room === 'global' && f.data.from === x.id.amid))
    assert.ok(!frames.some(f => f.data.room === 'hidden' || f.data.room === '#hidden'), 'nothing of a private room the warden is not in')
    assert.ok(!frames.some(f => f.type === 'audit'), 'audit frames are the operator\'s and masters\'')
    ws.close()
  })

  it('dashboard - sessions expire and sign out ends them', async () => {
    const { cookie, csrf } = await signIn(relay, { key: KEY })
    const out = await call(relay, 'POST', '/dashboard/api/signout', { cookie, csrf })
    assert.equal(out.status, 200)
    assert.match(out.headers.get('set-cookie') ?? '', /^am_console=; .*Max-Age=0/)
    assert.equal((await call(relay, 'GET', '/dashboard/api/session', { cookie })).status, 401)
    const later = await signIn(relay, { key: KEY })
    clock += 8 * 60 * 60 * 1000 + 1
    const gone = await call(relay, 'GET', '/dashboard/api/v1/rooms', { cookie: later.cookie })
    assert.equal(gone.status, 401)
    assert.equal(gone.body.error.code, ErrorCode.NotAuthenticated)
  })

  it('dashboard - sign-in attempts are rate limited per address (429 with Retry-After) and the refusal is audited', async () => {
    tick = false
    let limited: Awaited<ReturnType<typeof call>> | undefined
    for (let i = 0; i < 12 && limited === undefined; i++) {
      const r = await call(relay, 'POST', '/dashboard/api/signin', { body: { key: 'guess-' + i } })
      if (r.status === 429) limited = r
      else assert.equal(r.status, 401)
    }
    assert.ok(limited !== undefined, 'a 429 came')
    assert.equal(limited.body.error.code, ErrorCode.RateLimited)
    assert.ok(Number(limited.headers.get('retry-after')) >= 1)
    // even the right key waits
    assert.equal((await call(relay, 'POST', '/dashboard/api/signin', { body: { key: KEY } })).status, 429)
    const audit = await call(relay, 'GET', '/api/v1/audit?action=console.signin_refused', { headers: { 'x-api-key': KEY } })
    assert.ok(audit.body.entries.length >= 1)
  })
})

describe('dashboard - over the relay\'s TLS', () => {
  it('dashboard - the session cookie is Secure when the console is served over https', async () => {
    const ca = makeTestCa()
    const { certFile, keyFile } = ca.issue('relay')
    const relay = await startRelay({ apiKey: KEY, host: '127.0.0.1', tlsCert: certFile, tlsKey: keyFile })
    try {
      assert.match(relay.url, /^https:/)
      const body = JSON.stringify({ key: KEY })
      const res = await new Promise<{ status: number, cookie: string }>((resolve, reject) => {
        const req = httpsRequest(relay.url + '/dashboard/api/signin', { method: 'POST', ca: readFileSync(ca.caFile), headers: { 'content-type': 'application/json', origin: relay.url, 'content-length': Buffer.byteLength(body) } }, (r) => {
          r.resume()
          r.on('end', () => { resolve({ status: r.statusCode ?? 0, cookie: String(r.headers['set-cookie'] ?? '') }) })
        })
        req.on('error', reject)
        req.end(body)
      })
      assert.equal(res.status, 200)
      assert.match(res.cookie, /HttpOnly; SameSite=Strict; Max-Age=28800; Secure$/)
    } finally {
      await relay.close()
      rmSync(ca.dir, { recursive: true, force: true })
    }
  })
})
