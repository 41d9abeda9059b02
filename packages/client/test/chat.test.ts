/**
 * The chat platform end to end (docs/protocol.md §17): three agents on a real relay through the
 * SDK and the REST API — handles, the global room, DMs, rooms, presence, history across a restart,
 * tasks in chat, rate limits, the audit chain, private rooms with sender keys.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Relay, RelayInit } from '@agentmesh/server'
import { createIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { chat, connect, memoryState, tasks, type ClientState, type Connection, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, type ChatEvent } from '@agentmesh/protocol'
import { spawnRelay, startRelay, tempDir, waitFor, type RelayProcess, takeMessages as take } from '@agentmesh/testing'

/** Polls `fn` (the harness's waitFor) until it answers something truthy (a bound, not a timing assertion). */
async function until<T> (fn: () => T | undefined | false | Promise<T | undefined | false>, ms: number): Promise<T> {
  let got: T | undefined
  await waitFor(async () => {
    const v = await fn()
    if (v === undefined || v === false) return false
    got = v
    return true
  }, `a condition within ${ms} ms`, ms)
  return got as T
}

interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[], conn?: Connection }
type Json = Record<string, any>

/** Events of a connection collected from now on. */
function collect (conn: Connection): ChatEvent[] {
  const got: ChatEvent[] = []
  void (async () => { for await (const e of conn.events()) if ('amid' in e) got.push(e) })()
  return got
}

async function api (relay: Relay, method: string, path: string, opts: { token?: string, key?: string, body?: unknown } = {}): Promise<{ status: number, body: Json, headers: Headers }> {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.key !== undefined) headers['x-api-key'] = opts.key
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(relay.url + path, { method, headers, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) })
  return { status: res.status, body: await res.json() as Json, headers: res.headers }
}

async function token (relay: Relay, id: Identity): Promise<string> {
  const ch = await api(relay, 'POST', '/api/v1/auth/challenge', { body: { amid: id.amid } })
  assert.equal(ch.status, 200)
  const t = await api(relay, 'POST', '/api/v1/auth/token', { body: { amid: id.amid, nonce: ch.body.nonce, sig: signChallenge(id, id.amid, ch.body.nonce, ch.body.relay) } })
  assert.equal(t.status, 200)
  return t.body.token as string
}

/** Every file under dir, as text (WAL and SHM included). */
function allBytes (dir: string): string {
  return readdirSync(dir).map(f => readFileSync(join(dir, f)).toString('latin1')).join('\n')
}

describe('chat', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const spawned: RelayProcess[] = []
  const conns: Connection[] = []
  const start = async (init: RelayInit = {}): Promise<Relay> => {
    const r = await startRelay(init)
    relays.push(r)
    return r
  }
  const agent = (name: string): Agent => ({ id: createIdentity(name), state: memoryState(), warnings: [] })
  const open = async (relay: Relay | RelayProcess | string, a: Agent): Promise<Connection> => {
    const c = await connect({ server: typeof relay === 'string' ? relay : relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) } })
    conns.push(c)
    a.conn = c
    return c
  }
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close().catch(() => {})
    for (const r of spawned) await r.kill()
    dir.cleanup()
  })

  it('chat - handles are unique case-insensitively (409), resolve as @handle, and are audited', async () => {
    const relay = await start()
    const [a, b] = [agent('alice'), agent('bob')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    assert.deepEqual(await chat(ca).setHandle('Alice'), { amid: a.id.amid, handle: 'Alice' })
    const tb = await token(relay, b.id)
    const taken = await api(relay, 'POST', '/api/v1/handles', { token: tb, body: { handle: 'alice' } })
    assert.equal(taken.status, 409)
    assert.equal(taken.body.error.code, ErrorCode.HandleTaken)
    await assert.rejects(chat(cb).setHandle('ALICE'), (e: unknown) => AgentMeshError.is(e, ErrorCode.HandleTaken))
    const set = await api(relay, 'POST', '/api/v1/handles', { token: tb, body: { handle: 'bob' } })
    assert.equal(set.status, 201)
    assert.equal((await api(relay, 'GET', '/api/v1/handles/BOB', { token: tb })).body.amid, b.id.amid)
    // a change frees the old handle
    assert.equal((await chat(ca).setHandle('alice2')).previous, 'Alice')
    assert.equal((await chat(cb).setHandle('alice')).handle, 'alice')
    // sending to @handle works where an AMID does
    await ca.send('@alice', { text: 'to the new alice' }, { encrypt: true })
    const [m] = await take(cb, 1)
    assert.equal(m!.text, 'to the new alice')
    assert.equal(m!.from, a.id.amid)
    const bad = await api(relay, 'POST', '/api/v1/handles', { token: tb, body: { handle: 'x y' } })
    assert.equal(bad.status, 400)
    const unknown = await api(relay, 'GET', '/api/v1/handles/nobody', { token: tb })
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.error.code, ErrorCode.UnknownHandle)
    const rows = await relay.store.readAudit({ limit: 100, action: 'handle.set' })
    assert.deepEqual(rows.map(r => [r.actor, r.detail.handle]), [[a.id.amid, 'Alice'], [b.id.amid, 'bob'], [a.id.amid, 'alice2'], [b.id.amid, 'alice']])
  })

  it('chat - sends issued together leave in call order, whether they name a room, an @handle or an AMID', async () => {
    const relay = await start()
    const [a, b] = [agent('a'), agent('b')]
    const cb = await open(relay, b)
    await chat(cb).setHandle('bee')
    await chat(cb).createRoom({ id: 'line' })
    const ca = await open(relay, a) // a fresh connection: no room or handle looked up yet
    await chat(ca).join('line')
    const sends: Array<Promise<unknown>> = []
    for (let i = 1; i <= 6; i++) {
      sends.push(ca.send('#line', { text: `r${i}` }))
      sends.push(ca.send(i % 2 === 0 ? '@bee' : b.id.amid, { text: `d${i}` }))
    }
    await Promise.all(sends)
    const got = await take(cb, 12)
    assert.deepEqual(got.filter(m => m.room === 'line').map(m => m.text), ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'])
    assert.deepEqual(got.filter(m => m.room === undefined).map(m => m.text), ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'])
    assert.deepEqual((await chat(cb).history('line')).messages.map(m => m.text), ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'])
    assert.deepEqual([...a.warnings, ...b.warnings], [])
  })

  it('chat - global messages reach every connected agent; a DM reaches its peer only; a retry is stored once', async () => {
    const relay = await start()
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    const r1 = await chat(ca).say('global', 'hello everyone', { id: 'global-msg-0001' })
    const r2 = await chat(ca).say('global', 'hello everyone', { id: 'global-msg-0001' })
    assert.deepEqual([r1.duplicate, r2.duplicate], [false, true])
    for (const conn of [cb, cc]) {
      const [m] = await take(conn, 1)
      assert.equal(m!.text, 'hello everyone')
      assert.equal(m!.room, 'global')
      assert.equal(m!.from, a.id.amid)
    }
    await ca.send(b.id.amid, { text: 'just for b' })
    const [dm] = await take(cb, 1)
    assert.equal(dm!.text, 'just for b')
    assert.equal(dm!.encrypted, true)
    assert.equal(dm!.room, undefined)
    // b's DM was sent after the duplicate global post: it came next, so the duplicate never came
    const h = await chat(cb).history('global')
    assert.deepEqual(h.messages.map(m => [m.id, m.text]), [['global-msg-0001', 'hello everyone']])
    // the DM conversation exists for its two agents only
    const dms = await until(async () => { const l = (await chat(cb).rooms()).filter(r => r.kind === 'dm'); return l.length > 0 && l }, 5000)
    assert.equal(dms.length, 1, 'the pair has one DM conversation')
    assert.equal((dms[0] as unknown as Json).peer, a.id.amid)
    await ca.send(b.id.amid, { text: 'again' })
    await cb.send(a.id.amid, { text: 'back' })
    await take(cb, 1)
    await take(ca, 1)
    const both = [(await chat(ca).rooms()).filter(r => r.kind === 'dm').map(r => r.id), (await chat(cb).rooms()).filter(r => r.kind === 'dm').map(r => r.id)]
    assert.deepEqual(both[0], both[1], 'the same conversation, whichever side writes')
    assert.deepEqual((await chat(cc).rooms()).filter(r => r.kind === 'dm'), [], 'c sees no DM of theirs')
    await assert.rejects(chat(cc).room(dms[0]!.id), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
    // WebSocket sends are audited in one message.batch row per commit, each as [from, to, id, type, bytes]
    const batches = await relay.store.readAudit({ limit: 100, action: 'message.batch' })
    const sends = batches.flatMap(r => r.detail.sends as Array<[string, string, string, string, number]>)
    assert.deepEqual(sends.map(s => [s[0], s[1]]), [[a.id.amid, '#global'], [a.id.amid, b.id.amid], [a.id.amid, b.id.amid], [b.id.amid, a.id.amid]])
    assert.ok(batches.every(r => r.actor === relay.relayAmid))
    assert.ok(batches.every(r => JSON.stringify(r).includes('hello') === false && JSON.stringify(r).includes('just for b') === false), 'no content in the audit log')
    // c's first message is one sent after everything above: c got neither the DM nor the duplicate
    await ca.send(c.id.amid, { text: 'only now for c' })
    assert.deepEqual((await take(cc, 1)).map(m => m.text), ['only now for c'], 'c gets neither the DM nor the duplicate')
  })

  it('chat - a message posted over REST with a bearer token reaches SDK agents as from its poster, attested by the relay', async () => {
    const relay = await start({ apiKey: 'op-key-0123456789abcdef' })
    const [a, b] = [agent('a'), agent('b')]
    await open(relay, a)
    const cb = await open(relay, b)
    const ta = await token(relay, a.id)
    const posted = await api(relay, 'POST', '/api/v1/messages', { token: ta, body: { to: '#global', text: 'over rest', id: 'rest-msg-0001' } })
    assert.equal(posted.status, 201)
    const again = await api(relay, 'POST', '/api/v1/messages', { token: ta, body: { to: '#global', text: 'over rest', id: 'rest-msg-0001' } })
    assert.deepEqual([again.status, again.body.duplicate], [200, true])
    const op = await api(relay, 'POST', '/api/v1/messages', { key: 'op-key-0123456789abcdef', body: { to: '#global', text: 'from the operator' } })
    assert.equal(op.status, 201)
    const got = await take(cb, 2)
    assert.deepEqual(got.map(m => [m.text, m.room, m.from]), [['over rest', 'global', a.id.amid], ['from the operator', 'global', cb.relayAmid]])
    assert.equal(got[0]!.envelope.via, cb.relayAmid)
    assert.equal(got[0]!.id, 'rest-msg-0001')
    // the next message is one posted after all of them: the retried post arrived once
    await api(relay, 'POST', '/api/v1/messages', { token: ta, body: { to: '#global', text: 'the last post', id: 'rest-msg-0002' } })
    assert.deepEqual((await take(cb, 1)).map(m => m.id), ['rest-msg-0002'], 'the retried post arrives once')
    assert.deepEqual(b.warnings, [])
  })

  it('chat - rooms: create, join (emits presence to members), topic, invite, kick, leave; only members post', async () => {
    const relay = await start()
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    const eventsA = collect(ca)
    const room = await chat(ca).createRoom({ id: 'ops', topic: 'operations' })
    assert.deepEqual([room.id, room.kind, room.owner, room.joined, room.role, room.members], ['ops', 'public', a.id.amid, true, 'owner', 1])
    await assert.rejects(chat(cb).createRoom({ id: 'ops' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.RoomExists))
    // not a member: refused, nothing stored
    await assert.rejects(cb.send('#ops', { text: 'too early' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NotMember))
    await chat(cb).join('ops')
    await until(() => eventsA.some(e => e.type === 'presence' && e.amid === b.id.amid && e.room === '#ops' && e.change === 'joined'), 5000)
    const joined = eventsA.find(e => e.change === 'joined')!
    assert.equal(joined.status, 'online')
    await chat(cb).say('ops', 'hi ops')
    const [m] = await take(ca, 1)
    assert.deepEqual([m!.room, m!.text, m!.from], ['ops', 'hi ops', b.id.amid])
    const members = await chat(ca).members('ops')
    assert.deepEqual(members.map(x => [x.amid, x.role, x.presence]).sort(), [[a.id.amid, 'owner', 'online'], [b.id.amid, 'member', 'online']].sort())
    // only the owner sets the topic and kicks
    await assert.rejects(chat(cb).setTopic('ops', 'mine'), (e: unknown) => AgentMeshError.is(e, ErrorCode.Forbidden))
    assert.equal((await chat(ca).setTopic('ops', 'incidents')).topic, 'incidents')
    await assert.rejects(chat(cb).kick('ops', a.id.amid), (e: unknown) => AgentMeshError.is(e, ErrorCode.Forbidden))
    await chat(ca).kick('ops', b.id.amid)
    await assert.rejects(cb.send('#ops', { text: 'after kick' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NotMember))
    await assert.rejects(chat(cc).leave('ops'), (e: unknown) => AgentMeshError.is(e, ErrorCode.NotMember))
    await assert.rejects(chat(ca).leave('global'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    await assert.rejects(ca.send('#nowhere', { text: 'x' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
    const actions = (await relay.store.readAudit({ limit: 100 })).map(r => r.action).filter(x => x.startsWith('room.'))
    assert.deepEqual(actions, ['room.create', 'room.join', 'room.topic', 'room.kick'])
    // c's first message is one sent after everything above: nothing of ops reached c
    await ca.send(c.id.amid, { text: 'only now for c' })
    assert.deepEqual((await take(cc, 1)).map(m => m.text), ['only now for c'], 'c is not in ops')
  })

  it('chat - presence goes idle after the quiet time and back online on a send; typing and read reach the room only; offline on close', async () => {
    const relay = await start({ presenceIdleMs: 1000 })
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    await chat(ca).createRoom({ id: 'sig' })
    await chat(cb).join('sig')
    const eventsA = collect(ca)
    const eventsC = collect(cc)
    await chat(cb).say('sig', 'first')
    const r = (await chat(cb).history('sig')).messages.at(-1)!
    assert.equal(r.text, 'first')
    cb.signal('sig', 'typing')
    cb.signal('#sig', 'read', r.seq)
    await until(() => eventsA.some(e => e.type === 'read'), 5000)
    const fromB = eventsA.filter(e => e.amid === b.id.amid && (e.type === 'typing' || e.type === 'read'))
    assert.deepEqual(fromB.map(e => [e.type, e.room, e.up_to]), [['typing', '#sig', undefined], ['read', '#sig', r.seq]])
    assert.equal((await chat(ca).members('sig')).find(m => m.amid === b.id.amid)!.read_up_to, r.seq)
    // c shares no room with b: it hears b's presence by watching b
    cc.watch([b.id.amid])
    // quiet for the idle time: idle, seen by those sharing a room and watchers, then online on a send
    await until(() => eventsC.some(e => e.type === 'presence' && e.amid === b.id.amid && e.status === 'idle'), 10_000)
    assert.equal((await chat(cc).presence()).find(p => p.amid === b.id.amid)?.status, 'idle')
    await chat(cb).say('sig', 'awake')
    await until(() => eventsC.some(e => e.type === 'presence' && e.amid === b.id.amid && e.status === 'online'), 5000)
    assert.ok(!eventsC.some(e => e.type === 'typing' || e.type === 'read'), 'c is not in the room: no signals')
    await cb.close()
    await until(() => eventsA.some(e => e.type === 'presence' && e.amid === b.id.amid && e.status === 'offline'), 5000)
    assert.equal((await chat(ca).presence('sig')).find(p => p.amid === b.id.amid)?.status, 'offline')
    assert.throws(() => { ca.signal('sig', 'read') }, (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    assert.throws(() => { ca.signal('not a room', 'typing') }, (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
  })

  it('chat - in a DM, typing and "read up to" a message id reach the peer only; no conversation, no signals', async () => {
    const relay = await start()
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    await chat(cb).setHandle('bea')
    const eventsA = collect(ca)
    const eventsC = collect(cc)
    const sent = await ca.send(b.id.amid, { text: 'read me' })
    const [m] = await take(cb, 1)
    assert.equal(m!.id, sent.id)
    const dm = await until(async () => (await chat(cb).rooms()).find(r => r.kind === 'dm'), 5000)
    await chat(cb).typing(a.id.amid)
    await chat(cb).markRead(a.id.amid, m!.id)
    await until(() => eventsA.some(e => e.type === 'read'), 5000)
    assert.deepEqual(eventsA.filter(e => e.amid === b.id.amid && e.type !== 'presence').map(e => [e.type, e.room, e.id]),
      [['typing', '#' + dm.id, undefined], ['read', '#' + dm.id, sent.id]])
    // the other side, by handle
    const eventsB = collect(cb)
    await chat(ca).typing('@bea')
    await until(() => eventsB.some(e => e.type === 'typing' && e.amid === a.id.amid && e.room === '#' + dm.id), 5000)
    // c shares no conversation with a: its signals are refused, and it saw none of the above
    await chat(cc).typing(a.id.amid)
    await until(() => c.warnings.some(w => w.code === ErrorCode.UnknownRoom), 5000)
    assert.ok(!eventsC.some(e => e.type === 'typing' || e.type === 'read'))
    await assert.rejects(chat(cb).markRead(a.id.amid, 7), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    await assert.rejects(chat(cb).markRead('sig', 'not-a-seq'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
  })

  it('chat - history returns what was sent, in order, paged, across a relay restart', async () => {
    const data = join(dir.path, 'history')
    let relay = await start({ dataDir: data })
    const a = agent('a')
    let ca = await open(relay, a)
    for (let i = 1; i <= 30; i++) await chat(ca).say('global', `m${i}`)
    await ca.close()
    const port = relay.port
    await relay.close()
    relay = await start({ dataDir: data, port })
    ca = await open(relay, a)
    await chat(ca).say('global', 'after restart')
    const page1 = await chat(ca).history('global', { limit: 20 })
    assert.deepEqual(page1.messages.map(m => m.text), [...Array.from({ length: 19 }, (_, i) => `m${i + 12}`), 'after restart'])
    assert.deepEqual(page1.messages.map(m => m.seq), Array.from({ length: 20 }, (_, i) => i + 12))
    const page2 = await chat(ca).history('global', { limit: 20, before: page1.next_before })
    assert.deepEqual(page2.messages.map(m => m.text), Array.from({ length: 11 }, (_, i) => `m${i + 1}`))
    assert.equal(page2.next_before, undefined)
    const fwd = await chat(ca).history('global', { after: 28 })
    assert.deepEqual(fwd.messages.map(m => m.text), ['m29', 'm30', 'after restart'])
  })

  it('chat - history keeps the newest N per room (memory retention)', async () => {
    const relay = await start({ historyMaxPerRoom: 5 })
    const a = agent('a')
    const ca = await open(relay, a)
    for (let i = 1; i <= 8; i++) await chat(ca).say('global', `n${i}`)
    const h = await chat(ca).history('global', { limit: 50 })
    assert.deepEqual(h.messages.map(m => m.text), ['n4', 'n5', 'n6', 'n7', 'n8'])
    assert.equal(h.last_seq, 8)
  })

  it('chat - an agent answering more tasks than its REST rate limit allows at once still reports every one: refused reports are sent again after Retry-After', async () => {
    // two REST calls per task (working, completed): the worker's burst of 3 covers a task and a half,
    // the rest wait for refills (1 a second); the requester's 3 dispatches spend its own burst
    const relay = await start({ rateLimits: { api: { perMinute: 60, burst: 3 } } })
    const [a, b] = [agent('a'), agent('b')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    let ran = 0
    await tasks(cb).onCommand('echo', (t) => { ran++; return `echo ${t.args}` })
    void (async () => { for await (const _ of cb.messages()) { /* tasks run inside the loop */ } })()
    const ids: string[] = []
    for (let i = 1; i <= 3; i++) ids.push((await tasks(ca).dispatch({ to: b.id.amid, command: 'echo', args: `n${i}`, deadlineS: 60 })).id)
    const done = await Promise.all(ids.map(async id => await tasks(ca).wait(id, { signal: AbortSignal.timeout(30_000) })))
    assert.deepEqual(done.map(t => [t.state, t.result]), [['completed', 'echo n1'], ['completed', 'echo n2'], ['completed', 'echo n3']])
    assert.equal(ran, 3)
    assert.deepEqual(b.warnings.filter(w => w.code === ErrorCode.RateLimited), [], 'no report was given up')
  })

  it('chat - /status in a room makes a task; its transitions and result land in the timeline', async () => {
    const relay = await start()
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    await chat(cb).setHandle('worker-b')
    let ran = 0
    await tasks(cb).onCommand('status', (t) => { ran++; return `all good (${t.args})` })
    // b's loop runs: task requests are handled inside it, chat still comes through
    const bGot: Message[] = []
    void (async () => { for await (const m of cb.messages()) bGot.push(m) })()
    await chat(ca).say('global', '/status now')
    const done = await until(async () => {
      const list = await tasks(ca).list()
      return list.length === 1 && list[0]!.state === 'completed' ? list[0] : undefined
    }, 10_000)
    assert.equal(ran, 1)
    assert.deepEqual([done!.command, done!.args, done!.requester, done!.assignee, done!.result, done!.room], ['status', 'now', a.id.amid, b.id.amid, 'all good (now)', 'global'])
    assert.deepEqual(done!.history.map(h => h.state), ['submitted', 'working', 'completed'])
    const h = await chat(cc).history('global')
    const updates = h.messages.filter(m => m.type === 'task.update')
    assert.deepEqual(updates.map(m => (m.payload as Json).task.state), ['submitted', 'working', 'completed'])
    assert.match(updates[2]!.text!, /\/status → @worker-b: completed: all good \(now\)/)
    assert.equal(updates[2]!.from, relay.relayAmid)
    // the command message itself is ordinary chat, delivered as such
    assert.ok(bGot.some(m => m.text === '/status now' && m.room === 'global'))
    // addressed: @c /ping goes to c, who has no handler → nothing; an unaddressed command nobody handles → a notice
    await chat(ca).say('global', '/nosuch thing')
    await until(async () => (await chat(ca).history('global')).messages.some(m => m.type === 'notice' && (m.payload as Json).code === ErrorCode.NoHandler), 5000)
    // cancel and deadlines
    const t2 = await tasks(ca).dispatch({ to: c.id.amid, command: 'slow', deadlineS: 1 })
    assert.equal(t2.state, 'submitted')
    const failed = await tasks(ca).wait(t2.id, { signal: AbortSignal.timeout(8000) })
    assert.deepEqual([failed.state, failed.message], ['failed', 'deadline passed'])
    const t3 = await tasks(ca).dispatch({ to: c.id.amid, command: 'slow' })
    await assert.rejects(tasks(cb).cancel(t3.id), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownTask))
    assert.equal((await tasks(ca).cancel(t3.id)).state, 'canceled')
    await assert.rejects(tasks(cc).report(t3.id, 'completed'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidTransition))
    await assert.rejects(tasks(ca).report(t3.id, 'working'), (e: unknown) => AgentMeshError.is(e, ErrorCode.Forbidden))
    void cc
  })

  it('chat - a burst of REST requests over the limit gets 429 with Retry-After', async () => {
    const relay = await start({ rateLimits: { api: { perMinute: 60, burst: 10 } } })
    const a = agent('a')
    await open(relay, a)
    const t = await token(relay, a.id)
    const answers = await Promise.all(Array.from({ length: 25 }, async () => await api(relay, 'GET', '/api/v1/rooms', { token: t })))
    const ok = answers.filter(r => r.status === 200).length
    const limited = answers.filter(r => r.status === 429)
    assert.equal(ok, 10)
    assert.equal(limited.length, 15)
    for (const r of limited) {
      assert.equal(r.body.error.code, ErrorCode.RateLimited)
      assert.ok(Number(r.headers.get('retry-after')) >= 1)
    }
  })

  it('chat - room messages over the chat limit are refused with AM_ERR_RATE_LIMITED and not stored', async () => {
    const relay = await start({ rateLimits: { chat: { perMinute: 60, burst: 5 } } })
    const a = agent('a')
    const ca = await open(relay, a)
    const results = await Promise.allSettled(Array.from({ length: 8 }, async (_, i) => await chat(ca).say('global', `b${i}`)))
    assert.equal(results.filter(r => r.status === 'fulfilled').length, 5)
    for (const r of results.filter(r => r.status === 'rejected')) assert.ok(AgentMeshError.is((r as PromiseRejectedResult).reason, ErrorCode.RateLimited))
    assert.equal((await chat(ca).history('global')).messages.length, 5)
  })

  it('chat - every send is audited and the chain verifies; an edited row is found', async () => {
    const data = join(dir.path, 'audit')
    const relay = await start({ dataDir: data, apiKey: 'operator-key-0123456789' })
    const [a, b] = [agent('a'), agent('b')]
    const ca = await open(relay, a)
    await open(relay, b)
    await chat(ca).say('global', 'one')
    await ca.send(b.id.amid, { text: 'two' })
    await chat(ca).createRoom({ id: 'audited' })
    const v = await api(relay, 'GET', '/api/v1/audit/verify', { key: 'operator-key-0123456789' })
    assert.deepEqual([v.status, v.body.ok], [200, true])
    const all = await api(relay, 'GET', '/api/v1/audit', { key: 'operator-key-0123456789' })
    assert.deepEqual(all.body.entries.map((e: Json) => e.action), ['message.batch', 'message.batch', 'room.create'])
    assert.deepEqual(all.body.entries.map((e: Json) => (e.detail.sends as string[][] | undefined)?.map(s => [s[0], s[1], s[3]])),
      [[[a.id.amid, '#global', 'chat']], [[a.id.amid, b.id.amid, 'e2ee']], undefined])
    // a worker sees its own rows only
    const tb = await token(relay, b.id)
    assert.equal((await api(relay, 'GET', '/api/v1/audit', { token: tb })).body.entries.length, 0)
    await ca.close()
    const port = relay.port
    await relay.close()
    const db = new Database(join(data, 'agentmesh.db'))
    db.prepare("UPDATE audit SET detail = json_set(detail, '$.sends[0][3]', 'edited') WHERE seq = 2").run()
    db.close()
    const again = await start({ dataDir: data, port, apiKey: 'operator-key-0123456789' })
    const bad = await api(again, 'GET', '/api/v1/audit/verify', { key: 'operator-key-0123456789' })
    assert.deepEqual([bad.body.ok, bad.body.seq, bad.body.code], [false, 2, ErrorCode.AuditTampered])
  })

  it('chat - the audit log is bounded: a relay keeps its newest rows, says so in the chain, and still verifies; removing more at the start is found', async () => {
    const data = join(dir.path, 'audit-bound')
    const key = 'operator-key-0123456789'
    let relay = await start({ dataDir: data, apiKey: key })
    const a = agent('a')
    let ca = await open(relay, a)
    for (let i = 1; i <= 12; i++) await chat(ca).say('global', `m${i}`)
    await ca.close()
    await relay.close()
    // restarted with a bound of 5 rows: the sweep at start drops the oldest
    relay = await start({ dataDir: data, apiKey: key, auditMaxRows: 5 })
    const rows = (await api(relay, 'GET', '/api/v1/audit', { key })).body.entries as Json[]
    assert.deepEqual(rows.map(r => [r.seq, r.action]), [[9, 'message.batch'], [10, 'message.batch'], [11, 'message.batch'], [12, 'message.batch'], [13, 'audit.pruned']])
    assert.deepEqual([rows[4]!.actor, rows[4]!.detail], [relay.relayAmid, { rows: 8, up_to_seq: 8 }])
    const v = await api(relay, 'GET', '/api/v1/audit/verify', { key })
    assert.deepEqual([v.body.ok, v.body.rows, v.body.from_seq, v.body.last_seq], [true, 5, 9, 13])
    ca = await open(relay, a)
    await chat(ca).say('global', 'after')
    assert.equal((await api(relay, 'GET', '/api/v1/audit/verify', { key })).body.last_seq, 14)
    await ca.close()
    await relay.close()
    const db = new Database(join(data, 'agentmesh.db'))
    db.prepare('DELETE FROM audit WHERE seq = 9').run()
    db.close()
    relay = await start({ dataDir: data, apiKey: key })
    const bad = await api(relay, 'GET', '/api/v1/audit/verify', { key })
    assert.deepEqual([bad.body.ok, bad.body.code], [false, ErrorCode.AuditTampered])
    assert.match(bad.body.reason, /rows 9-9 are missing at the start/)
  })

  it('chat - a private room is end-to-end encrypted: members read it, the relay stores no plaintext, a kicked member cannot read on', async () => {
    const data = join(dir.path, 'private')
    // its own process, as deployed, so that the disk scan below sees only what the relay wrote
    const relay = await spawnRelay({ dataDir: data })
    spawned.push(relay)
    const [a, b, c] = [agent('a'), agent('b'), agent('c')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    const room = await chat(ca).createRoom({ id: 'secret', kind: 'private' })
    assert.equal(room.kind, 'private')
    // invisible to non-members
    await assert.rejects(chat(cc).room('secret'), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
    await assert.rejects(chat(cc).join('secret'), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
    assert.ok(!(await chat(cc).rooms()).some(r => r.id === 'secret'))
    await chat(ca).invite('secret', b.id.amid)
    await chat(cb).join('secret')
    await chat(ca).invite('secret', c.id.amid)
    await chat(cc).join('secret')
    await chat(ca).say('secret', 'zebra-one')
    await chat(cb).say('secret', 'zebra-two')
    const [b1] = await take(cb, 1)
    assert.deepEqual([b1!.text, b1!.room, b1!.encrypted], ['zebra-one', 'secret', true])
    const c12 = await take(cc, 2)
    assert.deepEqual(c12.map(m => m.text), ['zebra-one', 'zebra-two'])
    const [a2] = await take(ca, 1)
    assert.equal(a2!.text, 'zebra-two')
    // readable plaintext is refused by the relay
    await assert.rejects(ca.send('#secret', { text: 'zebra-plain' }, { encrypt: false }), (e: unknown) => AgentMeshError.is(e, ErrorCode.EncryptionRequired))
    // c is kicked: a's next message uses a new key c never gets
    await chat(ca).kick('secret', c.id.amid)
    await chat(ca).say('secret', 'zebra-three')
    const [b3] = await take(cb, 1)
    assert.equal(b3!.text, 'zebra-three')
    // c's next message is one sent after zebra-three: the kicked member did not get it
    await ca.send(c.id.amid, { text: 'a direct word' })
    assert.deepEqual((await take(cc, 1)).map(m => m.text), ['a direct word'])
    const h = await chat(cb).history('secret')
    assert.deepEqual(h.messages.map(m => [m.type, m.text]), [['e2ee.group', undefined], ['e2ee.group', undefined], ['e2ee.group', undefined]])
    assert.equal(await relay.kill(), 0, relay.stderr())
    const bytes = allBytes(data)
    assert.ok(bytes.includes('e2ee.group'), 'the scan reads the stored envelopes')
    for (const word of ['zebra-one', 'zebra-two', 'zebra-three', 'zebra-plain']) assert.ok(!bytes.includes(word), `${word} is not on the relay's disk`)
  })
})
