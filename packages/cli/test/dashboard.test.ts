/**
 * The owner's console (`agentmesh dashboard`, docs/protocol.md §22.6) in process: a real relay,
 * real SDK agents, the console's HTTP and WebSocket over 127.0.0.1, and its guards (Host, Origin,
 * CSRF, the one-time sign-in link, session expiry, bounded and checked bodies).
 */
import { describe, it, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { WebSocket } from 'ws'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { chat, connect, memoryState, tasks, type ClientState, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { waitFor } from '@agentmesh/testing'
import { startOwnerConsole, type OwnerConsole } from '../src/dashboard/server.ts'

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, json: () => any }

/** One HTTP request with the headers given as they are (a browser's, or a hostile page's). */
async function http (port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) })
      })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => { req.destroy(new Error('timeout')) })
    if (body !== undefined) req.write(body)
    req.end()
  })
}

/** Polls `get` until it answers something; throws after `timeoutMs` (a bound, not a timing assertion). */
async function until<T> (get: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await get()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200)) // REST polls stay within the relay's rate limit
  }
}

interface Agent { id: Identity, state: ClientState, conn?: Connection }

describe('owner console', () => {
  let relay: Relay
  let clock = Date.now()
  let cons: OwnerConsole
  const owner: Agent = { id: createIdentity('owner'), state: memoryState() }
  const alice: Agent = { id: createIdentity('alice'), state: memoryState() }
  const conns: Connection[] = []
  let cookie = ''
  let csrf = ''
  const origin = (): string => `http://127.0.0.1:${cons.port}`
  const signedIn = (extra: Record<string, string> = {}): Record<string, string> => ({ cookie, ...extra })
  const write = (extra: Record<string, string> = {}): Record<string, string> => ({ cookie, origin: origin(), 'x-agentmesh-csrf': csrf, 'content-type': 'application/json', ...extra })
  const open = async (a: Agent, opts: Parameters<typeof connect>[0] = {}): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: a.id, state: a.state, ...opts })
    conns.push(c)
    a.conn = c
    return c
  }

  before(async () => {
    relay = await createRelay({ port: 0, logger: silentLogger })
    // the owner holds every knock for a person's decision
    const c = await open(owner, { policy: { version: 1, default_action: 'hold' } })
    await open(alice, { deliver: false })
    cons = await startOwnerConsole({ conn: c, now: () => clock, loginTtlMs: 60_000, sessionTtlMs: 3_600_000 })
  })
  after(async () => {
    await cons?.close()
    for (const c of conns) await c.close()
    await relay?.close()
  })

  it('owner console - the sign-in link works once and gives an HttpOnly SameSite=Strict cookie; the session answers the owner and a CSRF value', async () => {
    assert.match(cons.url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/)
    const link = new URL(cons.loginUrl())
    const path = link.pathname + link.search
    assert.equal(link.pathname, '/dashboard/login')
    const first = await http(cons.port, 'GET', path)
    assert.equal(first.status, 303)
    assert.equal(first.headers.location, '/dashboard/')
    const set = String(first.headers['set-cookie'])
    assert.match(set, new RegExp(`^agentmesh_owner_${cons.port}=[A-Za-z0-9_-]{43}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=3600$`))
    cookie = set.split(';')[0]!
    assert.equal(first.headers['referrer-policy'], 'no-referrer')
    // the same link again: refused, and no cookie
    const again = await http(cons.port, 'GET', path)
    assert.equal(again.status, 401)
    assert.equal(again.json().error.code, ErrorCode.AuthFailed)
    assert.match(again.json().error.message, /works once/)
    assert.equal(again.headers['set-cookie'], undefined)

    const s = await http(cons.port, 'GET', '/dashboard/api/session', signedIn())
    assert.equal(s.status, 200)
    const session = s.json()
    assert.deepEqual([session.mode, session.principal.kind, session.principal.amid, session.relay], ['owner', 'agent', owner.id.amid, owner.conn!.url])
    assert.match(session.csrf, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(session.expiresAt, clock + 3_600_000)
    csrf = session.csrf
    // every answer carries the page guards
    assert.match(String(s.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/)
    assert.equal(s.headers['x-content-type-options'], 'nosniff')
    assert.equal(s.headers['cache-control'], 'no-store')
  })

  it('owner console - refuses another Host (DNS rebinding), no cookie, a write without CSRF or from another Origin', async () => {
    const rebound = await http(cons.port, 'GET', '/dashboard/api/session', { ...signedIn(), host: `evil.example:${cons.port}` })
    assert.equal(rebound.status, 403)
    assert.equal(rebound.json().error.code, ErrorCode.Forbidden)
    const login = new URL(cons.loginUrl())
    const reboundLogin = await http(cons.port, 'GET', login.pathname + login.search, { host: `evil.example:${cons.port}` })
    assert.equal(reboundLogin.status, 403, 'a rebinding page cannot even spend a link')
    const localhost = await http(cons.port, 'GET', '/dashboard/api/session', { ...signedIn(), host: `localhost:${cons.port}` })
    assert.equal(localhost.status, 200)

    const none = await http(cons.port, 'GET', '/dashboard/api/owner/knocks')
    assert.equal(none.status, 401)
    assert.equal(none.json().error.code, ErrorCode.NotAuthenticated)
    assert.equal(none.headers['x-agentmesh-console-mode'], 'owner', 'the page shows how to sign in to an owner console')
    const forged = await http(cons.port, 'GET', '/dashboard/api/owner/knocks', { cookie: `agentmesh_owner_${cons.port}=${'A'.repeat(43)}` })
    assert.equal(forged.status, 401)

    const conv = `/dashboard/api/owner/conversations/dm:${alice.id.amid}/messages`
    const body = JSON.stringify({ text: 'hi' })
    const noCsrf = await http(cons.port, 'POST', conv, { cookie, origin: origin(), 'content-type': 'application/json' }, body)
    assert.equal(noCsrf.status, 403)
    assert.equal(noCsrf.json().error.code, ErrorCode.CsrfRejected)
    assert.match(noCsrf.json().error.message, /x-agentmesh-csrf/)
    const wrongCsrf = await http(cons.port, 'POST', conv, write({ 'x-agentmesh-csrf': 'x'.repeat(43) }), body)
    assert.equal(wrongCsrf.status, 403)
    const otherOrigin = await http(cons.port, 'POST', conv, write({ origin: 'http://evil.example' }), body)
    assert.equal(otherOrigin.status, 403)
    assert.equal(otherOrigin.json().error.code, ErrorCode.CsrfRejected)
    assert.match(otherOrigin.json().error.message, /Origin/)
    const noOrigin = await http(cons.port, 'DELETE', `/dashboard/api/owner/grants/${alice.id.amid}`, { cookie, 'x-agentmesh-csrf': csrf })
    assert.equal(noOrigin.status, 403)
    assert.deepEqual(alice.conn!.sent(), [], 'nothing was sent by the refused writes')
  })

  it('owner console - bad bodies and parameters get coded errors', async () => {
    const conv = `/dashboard/api/owner/conversations/dm:${alice.id.amid}/messages`
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ['POST', conv, '{not json', 400, ErrorCode.BadJson],
      ['POST', conv, JSON.stringify([1]), 400, ErrorCode.InvalidArgument],
      ['POST', conv, JSON.stringify({ text: '' }), 400, ErrorCode.InvalidArgument],
      ['POST', conv, JSON.stringify({ text: 'x'.repeat(16_385) }), 400, ErrorCode.InvalidArgument],
      ['POST', conv, JSON.stringify({ text: 'hi', to: 'someone' }), 400, ErrorCode.InvalidArgument],
      ['POST', conv, JSON.stringify({ text: 'y'.repeat(70_000) }), 413, ErrorCode.BodyTooLarge],
      ['POST', '/dashboard/api/owner/conversations/nope/messages', JSON.stringify({ text: 'hi' }), 400, ErrorCode.InvalidArgument],
      ['GET', `${conv}?limit=0`, undefined, 400, ErrorCode.InvalidArgument],
      ['GET', `${conv}?limit=201`, undefined, 400, ErrorCode.InvalidArgument],
      ['POST', '/dashboard/api/owner/knocks/short/accept', undefined, 400, ErrorCode.InvalidArgument],
      ['POST', '/dashboard/api/owner/knocks/0123456789abcdef/accept', undefined, 404, ErrorCode.NotFound],
      ['DELETE', '/dashboard/api/owner/grants/not-an-amid', undefined, 400, ErrorCode.InvalidArgument],
      ['DELETE', `/dashboard/api/owner/grants/${alice.id.amid}`, undefined, 404, ErrorCode.NotFound],
      ['GET', '/dashboard/api/owner/nothing-here', undefined, 404, ErrorCode.NotFound],
    ]
    for (const [method, path, body, status, code] of cases) {
      const r = await http(cons.port, method, path, method === 'GET' ? signedIn() : write(), body)
      assert.equal(r.status, status, `${method} ${path.slice(0, 80)} ${body?.slice(0, 30)}: ${r.body.slice(0, 200)}`)
      assert.equal(r.json().error.code, code, `${method} ${path.slice(0, 80)}`)
      assert.ok(r.json().error.message.length > 10)
    }
  })

  it('owner console - a held knock accepted in the console gives the peer a grant; the peer\'s DM shows decrypted, live and in the conversation; a reply goes out E2EE', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${cons.port}/dashboard/api/events`, { headers: { origin: origin(), cookie } })
    const frames: Array<{ type: string, data: any, ts: number }> = []
    ws.on('message', (d) => frames.push(JSON.parse(String(d))))
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    try {
      const a = alice.conn!
      // before the knock, alice may not write
      await assert.rejects(a.send(owner.id.amid, { text: 'let me in' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NoGrant))
      const k = await a.knock(owner.id.amid, { category: 'question', summary: 'may I ask about invoices?' })
      const listed = await until(async () => {
        const r = (await http(cons.port, 'GET', '/dashboard/api/owner/knocks', signedIn())).json()
        return r.knocks.length === 1 ? r.knocks : undefined
      }, 'the knock to be held')
      assert.deepEqual([listed[0].id, listed[0].from, listed[0].category, listed[0].summary, listed[0].intent], [k.id, alice.id.amid, 'question', 'may I ask about invoices?', 'question: may I ask about invoices?'])
      await waitFor(() => frames.some(f => f.type === 'knock' && f.data.from === alice.id.amid), 'the knock event')

      const accepted = await http(cons.port, 'POST', `/dashboard/api/owner/knocks/${k.id}/accept`, write())
      assert.equal(accepted.status, 200, accepted.body)
      assert.deepEqual(accepted.json(), { ok: true })
      await waitFor(() => a.grants().received.some(g => g.grantor === owner.id.amid), 'alice to hold a grant')
      assert.deepEqual((await http(cons.port, 'GET', '/dashboard/api/owner/knocks', signedIn())).json(), { knocks: [] })
      const grants = (await http(cons.port, 'GET', '/dashboard/api/owner/grants', signedIn())).json().grants
      assert.deepEqual(grants.map((g: any) => [g.direction, g.grantee, g.amid, g.scope]), [['issued', alice.id.amid, alice.id.amid, 'chat']])

      // alice writes, end to end encrypted: the console shows the plaintext it decrypted
      const secret = `invoice 4711 is overdue ${Math.random().toString(36).slice(2)}`
      await a.send(owner.id.amid, { text: secret })
      const live = await until(() => frames.find(f => f.type === 'message' && f.data.text === secret), 'the live message')
      assert.deepEqual([live.data.conversation, live.data.from, live.data.direction, live.data.encrypted], [`dm:${alice.id.amid}`, alice.id.amid, 'in', true])
      const convs = (await http(cons.port, 'GET', '/dashboard/api/owner/conversations', signedIn())).json().conversations
      const dm = convs.find((c: any) => c.id === `dm:${alice.id.amid}`)
      assert.deepEqual([dm.kind, dm.peer.amid, dm.last.text, dm.unread], ['dm', alice.id.amid, secret, 1])
      assert.ok(convs.some((c: any) => c.id === 'room:global' && c.kind === 'room'), 'the global room is listed')
      const page = (await http(cons.port, 'GET', `/dashboard/api/owner/conversations/dm:${alice.id.amid}/messages?limit=10`, signedIn())).json()
      assert.deepEqual(page.messages.map((m: any) => [m.from, m.text, m.direction, m.encrypted]), [[alice.id.amid, secret, 'in', true]])
      const after = (await http(cons.port, 'GET', '/dashboard/api/owner/conversations', signedIn())).json().conversations
      assert.equal(after.find((c: any) => c.id === `dm:${alice.id.amid}`).unread, 0, 'read once opened')

      // the reply from the console reaches alice (she received nothing before it)
      const aliceGot: string[] = []
      const bob = await open({ id: alice.id, state: alice.state }) // alice, now receiving
      const stop = new AbortController()
      void (async () => { for await (const m of bob.messages({ signal: stop.signal })) if (m.text !== undefined) aliceGot.push(m.text) })().catch(() => {})
      const reply = await http(cons.port, 'POST', `/dashboard/api/owner/conversations/dm:${alice.id.amid}/messages`, write(), JSON.stringify({ text: 'paid yesterday' }))
      assert.equal(reply.status, 200, reply.body)
      assert.equal(reply.json().state, 'stored')
      await waitFor(() => aliceGot.includes('paid yesterday'), 'alice to get the reply')
      stop.abort()
      const both = (await http(cons.port, 'GET', `/dashboard/api/owner/conversations/dm:${alice.id.amid}/messages`, signedIn())).json()
      assert.deepEqual(both.messages.map((m: any) => [m.direction, m.text]), [['in', secret], ['out', 'paid yesterday']])
      assert.equal(both.messages[1].id, reply.json().id)

      // revoke: alice's next message is refused
      const revoked = await http(cons.port, 'DELETE', `/dashboard/api/owner/grants/${alice.id.amid}`, write())
      assert.deepEqual(revoked.json(), { ok: true })
      await waitFor(() => !bob.grants().received.some(g => g.grantor === owner.id.amid && g.valid), 'alice to be told of the revocation')
      await assert.rejects(bob.send(owner.id.amid, { text: 'still there?' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NoGrant))
      assert.deepEqual((await http(cons.port, 'GET', '/dashboard/api/owner/grants', signedIn())).json(), { grants: [] })
      const log = (await http(cons.port, 'GET', '/dashboard/api/owner/safety-log', signedIn())).json().entries
      assert.deepEqual(log.filter((e: any) => e.peer === alice.id.amid).map((e: any) => e.event), ['knock_held', 'knock_answered', 'grant_revoked'])
      assert.equal(JSON.stringify(log).includes(secret), false, 'the safety log holds no content')
    } finally {
      ws.close()
    }
  })

  it('owner console - the event socket refuses another Origin and a missing session', async () => {
    for (const headers of [{ origin: 'http://evil.example', cookie }, { origin: origin() }, { cookie }]) {
      const ws = new WebSocket(`ws://127.0.0.1:${cons.port}/dashboard/api/events`, { headers })
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
        ws.once('open', () => { resolve(101) })
        ws.once('error', () => { resolve(-1) })
      })
      ws.terminate()
      assert.ok(status === 403 || status === 401, `refused: ${JSON.stringify(Object.keys(headers))} → ${status}`)
    }
  })

  it('owner console - a task the agent dispatched is listed and canceled from the console', async () => {
    const t = await tasks(owner.conn!).dispatch({ to: alice.id.amid, command: 'slow' })
    const listed = (await http(cons.port, 'GET', '/dashboard/api/owner/tasks', signedIn())).json().tasks
    assert.ok(listed.some((x: any) => x.id === t.id && x.state === 'submitted'))
    const r = await http(cons.port, 'POST', `/dashboard/api/owner/tasks/${t.id}/cancel`, write())
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(r.json(), { ok: true })
    assert.equal((await tasks(owner.conn!).get(t.id)).state, 'canceled')
    const health = await http(cons.port, 'GET', '/dashboard/api/owner/health', signedIn())
    assert.equal(health.status, 200)
    const files = await http(cons.port, 'GET', '/dashboard/api/owner/files', signedIn())
    assert.deepEqual(files.json(), { files: [] })
  })

  it('owner console - a private room\'s messages are shown decrypted with the sender keys the agent holds; a post from the console is encrypted for the members', async () => {
    const carol: Agent = { id: createIdentity('carol'), state: memoryState() }
    const cc = await open(carol)
    await chat(owner.conn!).createRoom({ id: 'vault', kind: 'private' })
    await chat(owner.conn!).invite('vault', carol.id.amid)
    await chat(cc).join('vault')
    const secret = `the vault opens at ${Math.random().toString(36).slice(2, 8)}`
    await chat(cc).say('vault', secret)
    const msgs = await until(async () => {
      const r = (await http(cons.port, 'GET', '/dashboard/api/owner/conversations/room:vault/messages', signedIn())).json()
      return r.messages?.some((m: any) => m.text === secret) === true ? r.messages : undefined
    }, 'carol\'s message, decrypted')
    const m = msgs.find((x: any) => x.text === secret)
    assert.deepEqual([m.from, m.direction, m.encrypted, m.state], [carol.id.amid, 'in', true, undefined])
    // what the relay holds for the room is sealed
    const raw = await chat(cc).history('vault')
    assert.deepEqual(raw.messages.map(x => [x.type, x.text]), [['e2ee.group', undefined]])
    const convs = (await http(cons.port, 'GET', '/dashboard/api/owner/conversations', signedIn())).json().conversations
    assert.deepEqual(convs.find((c: any) => c.id === 'room:vault').room, { id: 'vault', name: 'vault', private: true })

    // carol reads her messages (the owner's sender key reaches her that way, end to end encrypted)
    const got: string[] = []
    const stop = new AbortController()
    void (async () => { for await (const x of cc.messages({ signal: stop.signal })) if (x.text !== undefined) got.push(x.text) })().catch(() => {})
    const posted = await http(cons.port, 'POST', '/dashboard/api/owner/conversations/room:vault/messages', write(), JSON.stringify({ text: 'from the owner' }))
    assert.equal(posted.status, 200, posted.body)
    await waitFor(() => got.includes('from the owner'), 'carol to read the owner\'s post')
    stop.abort()
    const read = (await chat(cc).readHistory('vault')).messages.find(x => x.from === owner.id.amid)
    assert.deepEqual([read?.text, read?.decrypted], ['from the owner', true])
    const sealed = await chat(cc).history('vault')
    assert.deepEqual(sealed.messages.map(x => x.type), ['e2ee.group', 'e2ee.group'])
  })

  it('owner console - a session expires, and so does an unused link', async () => {
    const link = new URL(cons.loginUrl())
    clock += 61_000 // past the link's minute
    const late = await http(cons.port, 'GET', link.pathname + link.search)
    assert.equal(late.status, 401)
    assert.match(late.json().error.message, /expired/)
    clock += 3_600_000 // past the session's hour
    const gone = await http(cons.port, 'GET', '/dashboard/api/session', signedIn())
    assert.equal(gone.status, 401)
    assert.equal(gone.json().error.code, ErrorCode.NotAuthenticated)
  })
})
