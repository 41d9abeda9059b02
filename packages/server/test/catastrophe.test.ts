/**
 * Catastrophe events and recovery (docs/protocol.md §20) against a relay in process: the REST routes
 * (roles, validation, filters, transitions, the plan's paths), the catastrophe_alert ahead of a
 * backlog over real sockets, the unclean stop found at start, read-only mode (by choice and on a
 * damaged database), integrity checks and online backups.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { encodeSend, ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { rawAgent, startRelay, tempDir, type RawAgent } from '@agentmesh/testing'
import type { Relay } from '@agentmesh/server'
import { silentLogger } from '@agentmesh/server'
import { ReadOnlyMode, guardStore, isCorruption } from '../src/ops/read-only.ts'

type Json = Record<string, any>
const KEY = 'operator-key-for-catastrophe-tests-0123'

async function api (relay: Relay, method: string, path: string, opts: { token?: string, key?: string, body?: unknown } = {}): Promise<{ status: number, body: Json }> {
  const headers: Record<string, string> = {}
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  if (opts.key !== undefined) headers['x-api-key'] = opts.key
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(relay.url + path, { method, headers, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) })
  return { status: res.status, body: await res.json() as Json }
}
const op = (relay: Relay, method: string, path: string, body?: unknown) => api(relay, method, path, { key: KEY, ...(body === undefined ? {} : { body }) })

async function token (relay: Relay, id: Identity): Promise<string> {
  const ch = await api(relay, 'POST', '/api/v1/auth/challenge', { body: { amid: id.amid } })
  const t = await api(relay, 'POST', '/api/v1/auth/token', { body: { amid: id.amid, nonce: ch.body.nonce, sig: signChallenge(id, id.amid, ch.body.nonce, ch.body.relay) } })
  assert.equal(t.status, 200)
  return t.body.token as string
}

/** An agent connected (so registered), authenticated. */
async function agent (relay: Relay, id: Identity = createIdentity()): Promise<RawAgent> {
  const a = await rawAgent(relay.wsUrl, id)
  const w = await a.auth()
  assert.equal(w.op, 'welcome')
  return a
}

const report = { eventType: 'db_corruption', severity: 'critical', title: 'disk errors on node 2', description: 'EIO on /var/lib/agentmesh' }

describe('catastrophe events - REST', () => {
  const relays: Relay[] = []
  const agents: RawAgent[] = []
  after(async () => { for (const a of agents) a.close(); for (const r of relays) await r.close() })
  const start = async (init: Json = {}, store?: Store): Promise<Relay> => {
    const r = await startRelay({ apiKey: KEY, ...init }, store === undefined ? {} : { store })
    relays.push(r)
    return r
  }

  it('catastrophe - a master reports, a warden moves to recovering, a master resolves; both paths, camelCase, audited', async () => {
    const relay = await start()
    const warden = createIdentity()
    const worker = createIdentity()
    agents.push(await agent(relay, warden), await agent(relay, worker))
    assert.equal((await op(relay, 'PUT', `/api/v1/agents/${warden.amid}/role`, { role: 'warden' })).status, 200)
    const wt = await token(relay, warden)
    const kt = await token(relay, worker)

    const r = await op(relay, 'POST', '/api/catastrophe', report)
    assert.equal(r.status, 201, JSON.stringify(r.body))
    assert.equal(r.body.broadcast, true)
    const id = r.body.eventId as string
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/)
    assert.deepEqual({ ...r.body.event, reportedAt: 0 }, {
      eventId: id, ...report, recoveryProtocol: 'database-corruption', affectedAgents: 'all', status: 'reported', reportedBy: 'operator', reportedAt: 0,
    })
    assert.deepEqual((await op(relay, 'GET', `/api/v1/catastrophe/${id}`)).body.event, r.body.event)
    assert.deepEqual((await op(relay, 'GET', `/api/catastrophe/${id}`)).body.event, r.body.event)

    // a worker may not report, move or resolve; a warden may not resolve
    const wk = await api(relay, 'POST', '/api/v1/catastrophe', { token: kt, body: report })
    assert.deepEqual([wk.status, wk.body.error.code], [403, ErrorCode.Forbidden])
    assert.equal(wk.body.error.message, 'reporting a catastrophe is for masters or wardens; this caller is a worker')
    assert.equal((await api(relay, 'POST', `/api/v1/catastrophe/${id}/recovering`, { token: kt })).status, 403)
    const wr = await api(relay, 'POST', `/api/v1/catastrophe/${id}/resolve`, { token: wt, body: { notes: 'x' } })
    assert.deepEqual([wr.status, wr.body.error.code], [403, ErrorCode.Forbidden])
    // a warden reports as itself only
    const other = await api(relay, 'POST', '/api/v1/catastrophe', { token: wt, body: { ...report, agentId: worker.amid } })
    assert.deepEqual([other.status, other.body.error.code], [403, ErrorCode.Forbidden])
    const byWarden = await api(relay, 'POST', '/api/v1/catastrophe', { token: wt, body: { eventType: 'network_partition', severity: 'minor', title: 'eu-west split', agentId: warden.amid, affectedAgents: [worker.amid] } })
    assert.equal(byWarden.status, 201)
    assert.equal(byWarden.body.event.reportedBy, warden.amid)
    assert.deepEqual(byWarden.body.event.affectedAgents, [worker.amid])

    const rec = await api(relay, 'POST', `/api/v1/catastrophe/${id}/recovering`, { token: wt })
    assert.equal(rec.status, 200)
    assert.equal(rec.body.event.status, 'recovering')
    assert.equal(typeof rec.body.event.recoveringAt, 'number')
    const again = await api(relay, 'POST', `/api/v1/catastrophe/${id}/recovering`, { token: wt })
    assert.deepEqual([again.status, again.body.error.code], [409, ErrorCode.InvalidTransition])

    const res = await op(relay, 'POST', `/api/catastrophe/${id}/resolve`, { resolutionNotes: 'restored from the 03:00 backup' })
    assert.equal(res.status, 200)
    assert.equal(res.body.event.status, 'resolved')
    assert.equal(res.body.event.resolutionNotes, 'restored from the 03:00 backup')
    const twice = await op(relay, 'POST', `/api/v1/catastrophe/${id}/resolve`, { notes: 'again' })
    assert.deepEqual([twice.status, twice.body.error.code], [409, ErrorCode.InvalidTransition])
    assert.equal((await op(relay, 'GET', `/api/v1/catastrophe/${id}`)).body.event.resolutionNotes, 'restored from the 03:00 backup', 'unchanged by the refused resolve')

    const audit = await op(relay, 'GET', '/api/v1/audit?limit=200')
    const rows = (audit.body.entries as Json[]).filter(x => String(x.action).startsWith('catastrophe.'))
    assert.deepEqual(rows.map(x => [x.action, x.target]), [
      ['catastrophe.report', id], ['catastrophe.report', byWarden.body.eventId], ['catastrophe.recovering', id], ['catastrophe.resolve', id],
    ])
    assert.ok(!JSON.stringify(rows).includes('03:00 backup'), 'the notes are not in the audit log')
  })

  it('catastrophe - backups and checks are for masters; a master may report naming another agent', async () => {
    const relay = await start()
    const warden = createIdentity()
    const other = createIdentity()
    agents.push(await agent(relay, warden), await agent(relay, other))
    await op(relay, 'PUT', `/api/v1/agents/${warden.amid}/role`, { role: 'warden' })
    const wt = await token(relay, warden)
    for (const path of ['/api/v1/backups', '/api/v1/check']) {
      const r = await api(relay, 'POST', path, { token: wt })
      assert.deepEqual([r.status, r.body.error.code], [403, ErrorCode.Forbidden], path)
    }
    const byMaster = await op(relay, 'POST', '/api/catastrophe', { ...report, agentId: other.amid })
    assert.equal(byMaster.status, 201)
    assert.equal(byMaster.body.event.reportedBy, other.amid)
  })

  it('catastrophe - list filters by status and severity, pages newest first; bad input is refused and stores nothing', async () => {
    const relay = await start()
    const ids: string[] = []
    for (const [severity, title] of [['minor', 'a'], ['critical', 'b'], ['major', 'c'], ['critical', 'd']] as const) {
      ids.push((await op(relay, 'POST', '/api/v1/catastrophe', { eventType: 'api_crash', severity, title })).body.eventId)
    }
    await op(relay, 'POST', `/api/v1/catastrophe/${ids[1]}/resolve`, {})
    const titles = (b: Json): string[] => (b.events as Json[]).map(e => e.title)
    assert.deepEqual(titles((await op(relay, 'GET', '/api/v1/catastrophe')).body), ['d', 'c', 'b', 'a'])
    assert.deepEqual(titles((await op(relay, 'GET', '/api/catastrophe?severity=critical')).body), ['d', 'b'])
    assert.deepEqual(titles((await op(relay, 'GET', '/api/catastrophe?status=reported&severity=critical')).body), ['d'])
    assert.deepEqual(titles((await op(relay, 'GET', '/api/v1/catastrophe?status=resolved')).body), ['b'])
    const page = await op(relay, 'GET', '/api/v1/catastrophe?limit=2')
    assert.deepEqual(titles(page.body), ['d', 'c'])
    assert.equal(page.body.nextBefore, ids[2])
    assert.deepEqual(titles((await op(relay, 'GET', `/api/v1/catastrophe?limit=2&before=${page.body.nextBefore as string}`)).body), ['b', 'a'])

    for (const [q, field] of [['status=gone', 'status'], ['severity=huge', 'severity'], ['limit=0', 'limit']]) {
      const bad = await op(relay, 'GET', `/api/v1/catastrophe?${q}`)
      assert.equal(bad.status, 400)
      assert.equal(bad.body.error.code, ErrorCode.InvalidArgument)
      assert.match(bad.body.error.message, new RegExp(field))
    }
    const bodies: Json[] = [
      { ...report, eventType: 'meteor' },
      { ...report, severity: 'apocalyptic' },
      { ...report, title: '' },
      { ...report, title: 'x'.repeat(201) },
      { ...report, affectedAgents: ['not-an-amid'] },
      { ...report, affectedAgents: [] },
      { ...report, colour: 'red' },
      { severity: 'minor', title: 'no type' },
    ]
    for (const b of bodies) {
      const r = await op(relay, 'POST', '/api/v1/catastrophe', b)
      assert.deepEqual([r.status, r.body.error.code], [400, ErrorCode.InvalidArgument], JSON.stringify(b))
    }
    assert.equal((await op(relay, 'GET', '/api/v1/catastrophe')).body.events.length, 4, 'nothing stored')
    const unknown = await op(relay, 'GET', '/api/v1/catastrophe/0190b7a0-0000-7000-8000-000000000000')
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, ErrorCode.UnknownEvent])
    assert.equal((await op(relay, 'POST', '/api/catastrophe/nope/resolve', {})).body.error.code, ErrorCode.UnknownEvent)
    assert.equal((await api(relay, 'GET', '/api/v1/catastrophe')).status, 401)
  })

  it('catastrophe - the four recovery protocols as structured steps', async () => {
    const relay = await start()
    for (const path of ['/api/v1/catastrophe/protocols', '/api/catastrophe/protocols']) {
      const r = await op(relay, 'GET', path)
      assert.equal(r.status, 200)
      const ps = r.body.protocols as Json[]
      assert.deepEqual(ps.map(p => p.id), ['server-crash', 'database-corruption', 'network-partition', 'breaking-update'])
      for (const p of ps) {
        assert.ok(p.steps.length >= 3)
        assert.deepEqual(p.steps.map((s: Json) => s.order), p.steps.map((_: unknown, i: number) => i + 1))
      }
      assert.ok(ps[1]!.steps.some((s: Json) => s.command?.startsWith('agentmesh restore')))
    }
  })

  it('catastrophe - an alert reaches the affected agents online now, and an agent that connects while it is open before its backlog', async () => {
    const relay = await start()
    const alice = await agent(relay)
    const bob = await agent(relay)
    const carol = await agent(relay)
    agents.push(alice, carol)
    bob.close()
    await bob.closed
    // a backlog for bob
    for (let i = 0; i < 5; i++) {
      const env = alice.envelope(bob.id.amid, `queued ${i}`)
      alice.sendRaw(encodeSend(JSON.stringify(env)))
      await alice.next(f => f.op === 'ack' && f.id === env.id)
    }
    const r = await op(relay, 'POST', '/api/v1/catastrophe', { ...report, affectedAgents: [bob.id.amid, carol.id.amid] })
    const id = r.body.eventId as string
    const live = await carol.next(f => f.op === 'event' && f.event.type === 'catastrophe_alert')
    assert.deepEqual({ ...live.event, ts: 0, data: { ...live.event.data, reportedAt: 0 } }, {
      type: 'catastrophe_alert', ts: 0,
      data: { eventId: id, eventType: 'db_corruption', severity: 'critical', title: report.title, status: 'reported', recoveryProtocol: 'database-corruption', reportedAt: 0 },
    })
    await alice.barrier()
    assert.equal(alice.frames.filter(f => f.op === 'event' && f.event.type === 'catastrophe_alert').length, 0, 'alice is not affected')

    const back = await agent(relay, bob.id)
    agents.push(back)
    await back.collect(f => f.op === 'deliver', 5)
    const kinds = back.frames.map(f => f.op === 'event' ? f.event.type : f.op)
    assert.deepEqual(kinds.slice(0, 3), ['challenge', 'welcome', 'catastrophe_alert'], 'the alert right after the welcome')
    assert.ok(kinds.indexOf('catastrophe_alert') < kinds.indexOf('deliver'))
    assert.deepEqual(back.frames.filter(f => f.op === 'deliver').map(f => f.env.payload?.text ?? f.env.id).length, 5)

    // resolved: told live, and no longer told on connect
    await op(relay, 'POST', `/api/v1/catastrophe/${id}/resolve`, { notes: 'ok' })
    const resolved = await carol.next(f => f.op === 'event' && f.event.data?.status === 'resolved')
    assert.equal(resolved.event.data.eventId, id)
    const later = await agent(relay, bob.id)
    agents.push(later)
    await later.barrier()
    assert.equal(later.frames.filter(f => f.op === 'event').length, 0)
  })
})

describe('catastrophe events - unclean stop, read-only mode, checks, backups', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  after(async () => { for (const r of relays) await r.close(); dir.cleanup() })

  it('catastrophe - a start after a run that never cleared its marker reports server_down; a clean stop does not', async () => {
    const data = join(dir.path, 'unclean')
    const first = await startRelay({ dataDir: data, apiKey: KEY })
    await first.close()
    const clean = await startRelay({ dataDir: data, apiKey: KEY })
    assert.equal((await op(clean, 'GET', '/api/v1/catastrophe')).body.events.length, 0, 'a clean stop reports nothing')
    await clean.close()
    // a run that ended without its clean stop: the marker set, the file closed as a kill leaves it
    const s = sqliteStore(join(data, DB_FILE))
    await s.beginRun(Date.now() - 60_000)
    await s.close()
    const relay = await startRelay({ dataDir: data, apiKey: KEY })
    relays.push(relay)
    const events = (await op(relay, 'GET', '/api/v1/catastrophe')).body.events as Json[]
    assert.equal(events.length, 1)
    assert.equal(events[0]!.eventType, 'server_down')
    assert.equal(events[0]!.reportedBy, 'relay')
    assert.equal(events[0]!.status, 'reported')
    assert.match(events[0]!.title, /unclean stop/)
    // told to agents as they connect
    const a = await agent(relay)
    await a.barrier()
    assert.equal(a.frames.find(f => f.op === 'event')?.event.data.eventId, events[0]!.eventId)
    a.close()
  })

  it('catastrophe - serve --read-only: reads, history and backlog deliveries work; sends and REST writes are refused with AM_ERR_READ_ONLY', async () => {
    const data = join(dir.path, 'ro')
    const w = await startRelay({ dataDir: data, apiKey: KEY })
    const alice = await agent(w)
    const bob = await agent(w)
    bob.close()
    const env = alice.envelope(bob.id.amid, 'before read-only')
    alice.sendRaw(encodeSend(JSON.stringify(env)))
    await alice.next(f => f.op === 'ack' && f.id === env.id)
    assert.equal((await op(w, 'PUT', `/api/v1/agents/${alice.id.amid}/role`, { role: 'warden' })).status, 200)
    alice.close()
    await w.close()

    const relay = await startRelay({ dataDir: data, apiKey: KEY, readOnly: true })
    relays.push(relay)
    const info = await api(relay, 'GET', '/api/v1/info')
    assert.equal(info.body.read_only, true)
    assert.equal(info.body.read_only_reason, 'started with --read-only')
    const b2 = await agent(relay, bob.id)
    const [d] = await b2.collect(f => f.op === 'deliver', 1)
    assert.equal(d!.env.id, env.id, 'the backlog is delivered')
    const a2 = await agent(relay, alice.id)
    const e2 = a2.envelope(bob.id.amid, 'refused')
    // bob's ack and alice's send in the same turn: the send is refused, the ack still counts
    b2.send({ op: 'cursor', seq: d!.seq })
    a2.sendRaw(encodeSend(JSON.stringify(e2)))
    const err = await a2.next(f => (f.op === 'error' || f.op === 'ack') && f.id === e2.id)
    assert.equal(err.op, 'error')
    assert.equal(err.code, ErrorCode.ReadOnly)
    const role = await op(relay, 'PUT', `/api/v1/agents/${bob.id.amid}/role`, { role: 'warden' })
    assert.deepEqual([role.status, role.body.error.code], [503, ErrorCode.ReadOnly])
    const ev = await op(relay, 'POST', '/api/v1/catastrophe', report)
    assert.deepEqual([ev.status, ev.body.error.code], [503, ErrorCode.ReadOnly])
    const roles = (await op(relay, 'GET', '/api/v1/roles')).body
    assert.deepEqual(JSON.stringify(roles).includes(alice.id.amid), true, 'reads work')
    assert.deepEqual(JSON.stringify(roles).includes(bob.id.amid), false, 'nothing was stored')
    let inbox = await relay.store.inbox(bob.id.amid)
    for (let i = 0; i < 200 && inbox.cursor < 1; i++) { await new Promise(resolve => setTimeout(resolve, 5)); inbox = await relay.store.inbox(bob.id.amid) }
    assert.deepEqual(inbox, { cursor: 1, lastSeq: 1, pending: 0 }, 'the ack is stored, nothing else')
    a2.close(); b2.close()
  })

  it('catastrophe - a damaged-database error while running puts the relay in read-only mode and reports db_corruption, never a crash', async () => {
    const store = memoryStore()
    let broken = false
    const commit = store.commit.bind(store)
    store.commit = async (...args) => {
      if (broken && args[0].length > 0) throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' })
      return await commit(...args)
    }
    const relay = await startRelay({ apiKey: KEY }, { store })
    relays.push(relay)
    const alice = await agent(relay)
    const bob = await agent(relay)
    const ok = alice.envelope(bob.id.amid, 'fine')
    alice.sendRaw(encodeSend(JSON.stringify(ok)))
    assert.equal((await alice.next(f => f.id === ok.id && (f.op === 'ack' || f.op === 'error'))).op, 'ack')
    broken = true
    const bad = alice.envelope(bob.id.amid, 'meets the damage')
    alice.sendRaw(encodeSend(JSON.stringify(bad)))
    const e = await alice.next(f => f.id === bad.id && (f.op === 'ack' || f.op === 'error'))
    assert.deepEqual([e.op, e.code], ['error', ErrorCode.ReadOnly])
    const alert = await bob.next(f => f.op === 'event' && f.event.type === 'catastrophe_alert')
    assert.equal(alert.event.data.eventType, 'db_corruption')
    const info = await api(relay, 'GET', '/api/v1/info')
    assert.equal(info.body.read_only, true)
    assert.match(info.body.read_only_reason, /damaged: database disk image is malformed/)
    // the event could not be stored (read-only): it is listed from memory
    const list = (await op(relay, 'GET', '/api/v1/catastrophe')).body.events as Json[]
    assert.deepEqual(list.map(x => [x.eventType, x.reportedBy]), [['db_corruption', 'relay']])
    // later sends are refused before the store is touched; reads go on
    broken = false
    const later = alice.envelope(bob.id.amid, 'still refused')
    alice.sendRaw(encodeSend(JSON.stringify(later)))
    assert.equal((await alice.next(f => f.id === later.id && (f.op === 'ack' || f.op === 'error'))).code, ErrorCode.ReadOnly)
    assert.equal((await op(relay, 'GET', '/api/v1/rooms')).status, 200)
    alice.close(); bob.close()
  })

  it('catastrophe - a failed integrity check (POST /api/v1/check) reports db_corruption once and puts the relay in read-only mode', async () => {
    const store = memoryStore() as Store & { checkIntegrity?: (full: boolean) => Promise<{ ok: boolean, found: string }> }
    let found = 'ok'
    store.checkIntegrity = async () => ({ ok: found === 'ok', found })
    const relay = await startRelay({ apiKey: KEY }, { store })
    relays.push(relay)
    const good = await op(relay, 'POST', '/api/v1/check')
    assert.deepEqual(good.body, { ok: true, integrity: { ok: true, found: 'ok' }, audit: { ok: true, rows: good.body.audit.rows }, readOnly: false })
    found = '*** in database main ***\nPage 7: btreeInitPage() returns error code 11\nPage 8: never used\nPage 9: never used'
    const bad = await op(relay, 'POST', '/api/v1/check', { full: true })
    assert.equal(bad.status, 200)
    assert.equal(bad.body.ok, false)
    assert.equal(bad.body.integrity.ok, false)
    assert.equal(bad.body.readOnly, true)
    assert.equal(typeof bad.body.eventId, 'string')
    const again = await op(relay, 'POST', '/api/v1/check')
    assert.equal(again.body.eventId, bad.body.eventId, 'one event for the run')
    const events = (await op(relay, 'GET', '/api/v1/catastrophe')).body.events as Json[]
    assert.deepEqual(events.map(e => [e.eventId, e.eventType, e.title]), [[bad.body.eventId, 'db_corruption', 'An integrity check failed']])
    assert.match(events[0]!.description, /btreeInitPage/)
    const info = (await api(relay, 'GET', '/api/v1/info')).body
    assert.equal(info.read_only, true)
    // the reason is one line: the first problem and how many more (every refused write quotes it)
    assert.equal(info.read_only_reason, 'the integrity check failed: Page 7: btreeInitPage() returns error code 11 (and 2 more problems: agentmesh check lists them)')
    const w = await op(relay, 'POST', '/api/v1/catastrophe', report)
    assert.deepEqual([w.status, w.body.error.code], [503, ErrorCode.ReadOnly])
    assert.doesNotMatch(w.body.error.message, /\n/)
    const backup = await op(relay, 'POST', '/api/v1/backups')
    assert.equal(backup.status, 409, 'the memory store has nothing to back up')
    const bad400 = await op(relay, 'POST', '/api/v1/check', { full: 'yes' })
    assert.deepEqual([bad400.status, bad400.body.error.code], [400, ErrorCode.InvalidArgument])
  })

  it('catastrophe - guardStore: corruption codes in the cause chain are seen; only writes are refused', async () => {
    assert.equal(isCorruption({ code: 'SQLITE_CORRUPT_INDEX' }), true)
    assert.equal(isCorruption(new Error('x', { cause: { code: 'SQLITE_NOTADB' } })), true)
    assert.equal(isCorruption({ code: 'SQLITE_BUSY' }), false)
    const mode = new ReadOnlyMode(true)
    const s = guardStore(memoryStore(), mode, silentLogger)
    await assert.rejects(s.setRole('am-x', 'warden'), (e: Error & { code?: string }) => e.code === ErrorCode.ReadOnly)
    await assert.rejects(s.commit([{ sender: 'a', id: 'i', recipient: 'b', envelope: '{}', receivedAt: 1 }], [], []), (e: Error & { code?: string }) => e.code === ErrorCode.ReadOnly)
    assert.deepEqual(await s.commit([], [], []), [], 'a commit of cursor acks only goes on')
    assert.notEqual(await s.roleOf('am-x'), 'warden')
    await s.upsertAgent({ amid: 'am-x', seenAt: 1 })
    assert.ok(await s.getAgent('am-x'), 'bookkeeping at auth goes on')
  })

  it('catastrophe - guardStore: a damaged page met while iterating a read (a file\'s chunks) enters read-only mode too', async () => {
    const store = memoryStore()
    store.readFileChunks = async function * () {
      yield new Uint8Array([1])
      throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' })
    }
    const mode = new ReadOnlyMode(false)
    const s = guardStore(store, mode, silentLogger)
    const got: number[] = []
    await assert.rejects((async () => { for await (const c of s.readFileChunks('f')) got.push(c.byteLength) })(), (e: Error & { code?: string }) =>
      e.code === ErrorCode.ReadOnly && /this read met the damaged part of the database and failed/.test(e.message))
    assert.deepEqual(got, [1])
    assert.deepEqual([mode.active, mode.corrupt], [true, true])
    assert.match(mode.reason ?? '', /damaged: database disk image is malformed/)
  })

  it('catastrophe - scheduled backups every backupIntervalMs into <data>/backups/, the newest backupKeep kept', async () => {
    const data = join(dir.path, 'scheduled')
    const relay = await startRelay({ dataDir: data, apiKey: KEY, backupIntervalMs: 20, backupKeep: 2 })
    relays.push(relay)
    const backups = join(data, 'backups')
    const seen = new Set<string>()
    // a bound, not a timing assertion: wait until three different backups were written
    for (let i = 0; i < 400 && seen.size < 3; i++) {
      if (existsSync(backups)) for (const f of readdirSync(backups)) if (f.endsWith('.db')) seen.add(f)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    assert.ok(seen.size >= 3, `backups written: ${[...seen].join(', ')}`)
    const left = readdirSync(backups).filter(f => f.endsWith('.db'))
    assert.ok(left.length <= 2, `kept: ${left.join(', ')}`)
    for (const f of left) assert.equal(statSync(join(backups, f)).mode & 0o777, 0o600)
  })

  it('catastrophe - POST /api/v1/backups writes a consistent copy (0600) while the relay serves, keeps the newest backupKeep; check passes on it', async () => {
    const data = join(dir.path, 'backups')
    const relay = await startRelay({ dataDir: data, apiKey: KEY, backupKeep: 2 })
    relays.push(relay)
    const alice = await agent(relay)
    const bob = await agent(relay)
    let n = 0
    const sending = (async () => {
      for (; n < 200; n++) alice.sendRaw(encodeSend(JSON.stringify(alice.envelope(bob.id.amid, `m${n}`))))
    })()
    const files: string[] = []
    for (let i = 0; i < 3; i++) {
      const r = await op(relay, 'POST', '/api/v1/backups')
      assert.equal(r.status, 201, JSON.stringify(r.body))
      assert.equal(statSync(r.body.file).mode & 0o777, 0o600)
      assert.ok(r.body.bytes > 0)
      files.push(r.body.file)
      await new Promise(resolve => setTimeout(resolve, 5)) // distinct names (ms in the name)
    }
    await sending
    const left = readdirSync(join(data, 'backups'))
    assert.deepEqual(left.sort(), files.slice(1).map(f => f.split('/').pop()!).sort(), 'the oldest went')
    assert.equal(existsSync(files[0]!), false)
    const copy = sqliteStore(files[2]!, { quickCheck: true })
    assert.equal((await copy.checkIntegrity!(true)).ok, true)
    await copy.close()
    const chk = await op(relay, 'POST', '/api/v1/check', { full: true })
    assert.equal(chk.status, 200)
    assert.equal(chk.body.ok, true)
    assert.equal(chk.body.integrity.found, 'ok')
    assert.equal(chk.body.audit.ok, true)
    const mem = await startRelay({ apiKey: KEY })
    relays.push(mem)
    const none = await op(mem, 'POST', '/api/v1/backups')
    assert.deepEqual([none.status, none.body.error.code], [409, ErrorCode.BackupUnavailable])
    alice.close(); bob.close()
  })
})

describe('catastrophe events - read-only classification', () => {
  it('catastrophe - every Store method of the memory store is classified: reads and bookkeeping pass, writes are refused', async () => {
    const { refusedWhenReadOnly } = await import('../src/ops/read-only.ts')
    const store = memoryStore()
    const methods = Object.keys(store).filter(k => typeof (store as unknown as Record<string, unknown>)[k] === 'function' && k !== 'close')
    const refused = methods.filter(m => refusedWhenReadOnly(m, [[{}], [], []])).sort()
    assert.deepEqual(refused, [
      'abortFileUpload', 'addHealthChange', 'addMember', 'addReputationFlag', 'addScorePoint', 'appendAudit', 'appendMembership',
      'beginFileUpload', 'commit', 'completeFile', 'createRoom', 'deleteFile', 'deleteHistoryEntry', 'deleteOwnerLink', 'deleteWebhook', 'dropFileUploads',
      'putCaCertificate', 'putCatastrophe', 'putCertificate', 'putCrl', 'putFeedback', 'putFileChunk', 'putHeartbeat', 'putInvite',
      'putOwnerLink', 'putPrekeys', 'putProfile', 'putSettings', 'putTask', 'putUpdate', 'putUpdateAck', 'putWebhook', 'removeMember', 'setAgentVersion',
      'setHandle', 'setReadUpTo', 'setRole', 'setTopic', 'takePrekeyBundle', 'updateCatastrophe', 'updateTask',
    ])
    assert.equal(refusedWhenReadOnly('commit', [[], [{ recipient: 'a', seq: 1 }], []]), false, 'cursor acks only')
    assert.equal(refusedWhenReadOnly('putSomethingNew', []), true, 'a write a new slice adds is refused')
    assert.equal(refusedWhenReadOnly('addMember', [{ room: 'global', amid: 'am-x' }]), false, 'the global-room row of an agent at auth')
    assert.equal(refusedWhenReadOnly('addMember', [{ room: 'ops', amid: 'am-x' }]), true)
    assert.equal(refusedWhenReadOnly('agentsOnline', [[{ amid: 'am-x', delivery: 'cursor', join: { room: 'global', amid: 'am-x' } }, { amid: 'am-y', delivery: 'inbox' }]]), false, 'the auth bookkeeping of a turn')
    assert.equal(refusedWhenReadOnly('agentsOnline', [[{ amid: 'am-x', delivery: 'cursor', join: { room: 'ops', amid: 'am-x' } }]]), true, 'a join of another room is a write')
  })
})
