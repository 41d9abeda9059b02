/**
 * Catastrophe events on the agent's side (docs/protocol.md §20): `catastrophes(conn)` (alerts,
 * report, list, get, recovering, resolve, protocols) and the network partition protocol carried
 * out: the relay goes away, the link shows reconnecting with the outbox growing, the relay comes
 * back, and what was queued is delivered in order.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { catastrophes, connect, memoryState, type CatastropheAlert, type Connection, type LinkStatus, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Relay, RelayInit } from '@agentmesh/server'
import { startRelay, tempDir, waitFor } from '@agentmesh/testing'

const KEY = 'operator-key-for-sdk-catastrophe-0123456'

async function take (conn: Connection, n: number): Promise<Message[]> {
  const out: Message[] = []
  if (n === 0) return out
  for await (const m of conn.messages({ signal: AbortSignal.timeout(20_000) })) { out.push(m); if (out.length >= n) break }
  return out
}

describe('catastrophes(conn)', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => { for (const c of conns) await c.close(); for (const r of relays) await r.close(); dir.cleanup() })
  const start = async (init: RelayInit = {}): Promise<Relay> => { const r = await startRelay({ apiKey: KEY, ...init }); relays.push(r); return r }
  const open = async (relay: Relay, id: Identity, opts: Parameters<typeof connect>[0] = {}): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: id, state: memoryState(), ...opts })
    conns.push(c)
    return c
  }

  it('sdk catastrophe - a warden reports, every agent hears the alert, a worker may not resolve, the master resolves', async () => {
    const relay = await start()
    const wardenId = createIdentity('warden')
    const warden = await open(relay, wardenId)
    const worker = await open(relay, createIdentity('worker'))
    const put = await fetch(`${relay.url}/api/v1/agents/${wardenId.amid}/role`, { method: 'PUT', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'warden' }) })
    assert.equal(put.status, 200)
    const heard: CatastropheAlert[] = []
    const stop = catastrophes(worker).onCatastrophe((a) => { heard.push(a) })
    const e = await catastrophes(warden).report({ eventType: 'api_crash', severity: 'major', title: 'REST 500s' })
    assert.deepEqual([e.status, e.reportedBy, e.recoveryProtocol], ['reported', wardenId.amid, 'server-crash'])
    await waitFor(() => heard.length === 1, 'the alert')
    assert.deepEqual({ ...heard[0], ts: 0 }, { eventId: e.eventId, eventType: 'api_crash', severity: 'major', title: 'REST 500s', status: 'reported', recoveryProtocol: 'server-crash', reportedAt: e.reportedAt, ts: 0 })
    await assert.rejects(catastrophes(worker).report({ eventType: 'api_crash', severity: 'minor', title: 'x' }), (err: unknown) => AgentMeshError.is(err, ErrorCode.Forbidden))
    assert.equal((await catastrophes(worker).get(e.eventId)).title, 'REST 500s')
    assert.equal((await catastrophes(warden).recovering(e.eventId, 'restarting')).status, 'recovering')
    await assert.rejects(catastrophes(warden).resolve(e.eventId, 'x'), (err: unknown) => AgentMeshError.is(err, ErrorCode.Forbidden))
    const res = await fetch(`${relay.url}/api/catastrophe/${e.eventId}/resolve`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ resolutionNotes: 'fixed' }) })
    assert.equal(res.status, 200)
    await waitFor(() => heard.length === 3, 'recovering and resolved alerts')
    assert.deepEqual(heard.map(a => a.status), ['reported', 'recovering', 'resolved'])
    assert.deepEqual((await catastrophes(worker).list({ status: 'resolved' })).map(x => x.eventId), [e.eventId])
    assert.equal((await catastrophes(worker).protocols()).length, 4)
    stop()
  })

  it('sdk catastrophe - a listener added after connect hears the open events the relay sent right after the welcome', async () => {
    const relay = await start()
    const e = await (await fetch(`${relay.url}/api/v1/catastrophe`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ eventType: 'server_down', severity: 'critical', title: 'node 1 down' }) })).json() as { eventId: string }
    const late = await open(relay, createIdentity('late'))
    await late.request('GET', '/api/v1/catastrophe') // a round trip: the frames after the welcome are in
    const heard: CatastropheAlert[] = []
    const stop = catastrophes(late).onCatastrophe((a) => { heard.push(a) })
    assert.deepEqual(heard.map(a => [a.eventId, a.status]), [[e.eventId, 'reported']])
    stop()
  })

  it('sdk catastrophe - a relay started read-only on a new store: agents connect (reading rooms by cursor), sends reject with AM_ERR_READ_ONLY', async () => {
    const relay = await start({ readOnly: true })
    const a = await open(relay, createIdentity('reader'))
    assert.equal(a.link().state, 'connected')
    await assert.rejects(a.send(a.amid, { text: 'refused' }), (err: unknown) => AgentMeshError.is(err, ErrorCode.ReadOnly))
    assert.equal(a.link().outbox, 0, 'a refused send leaves the outbox')
    const info = await (await fetch(`${relay.url}/api/v1/info`)).json() as { read_only: boolean, read_only_reason: string }
    assert.deepEqual([info.read_only, info.read_only_reason], [true, 'started with --read-only'])
  })

  it('sdk catastrophe - network partition: the relay goes away, the link turns reconnecting and the outbox grows; back, the queue is delivered in order', async () => {
    const data = `${dir.path}/partition`
    let relay = await startRelay({ dataDir: data })
    const port = relay.port
    const bobId = createIdentity('bob')
    const bobState = memoryState()
    const b0 = await connect({ server: relay.url, identity: bobId, state: bobState, deliver: false })
    await b0.close()
    const a = await connect({ server: relay.url, identity: createIdentity('alice'), state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    conns.push(a)
    assert.equal(a.link().state, 'connected')
    assert.equal(a.link().outbox, 0)
    await a.send(bobId.amid, { text: 'before' })
    await relay.close()
    await waitFor(() => a.link().state === 'reconnecting', 'the link to turn reconnecting')
    const down: LinkStatus = a.link()
    const sends = [1, 2, 3, 4, 5].map(async i => await a.send(bobId.amid, { text: `queued ${i}` }))
    await waitFor(() => a.link().outbox === 5, 'five sends in the outbox')
    assert.equal(a.link().state, 'reconnecting')
    assert.equal(a.link().since, down.since, 'reconnecting since the link was lost')
    assert.equal(typeof a.link().attempt, 'number')

    relay = await startRelay({ dataDir: data, port })
    relays.push(relay)
    await Promise.all(sends)
    assert.equal(a.link().state, 'connected')
    assert.equal(a.link().outbox, 0)
    const bob = await connect({ server: relay.url, identity: bobId, state: bobState })
    conns.push(bob)
    const got = await take(bob, 6)
    assert.deepEqual(got.map(m => (m as unknown as { text: string }).text), ['before', 'queued 1', 'queued 2', 'queued 3', 'queued 4', 'queued 5'])
    await a.close()
    assert.equal(a.link().state, 'offline')
  })

  it('sdk catastrophe - a queued send a read-only relay refuses is not dropped: it stays in the state outbox and goes with the next connect()', async () => {
    const data = `${dir.path}/held`
    let relay = await startRelay({ dataDir: data })
    const port = relay.port
    const bobId = createIdentity('bob')
    const bobState = memoryState()
    const b0 = await connect({ server: relay.url, identity: bobId, state: bobState, deliver: false })
    await b0.close()
    const aliceId = createIdentity('alice')
    const aliceState = memoryState()
    const a = await connect({ server: relay.url, identity: aliceId, state: aliceState, minBackoffMs: 20, maxBackoffMs: 200 })
    await a.send(bobId.amid, { text: 'before' })
    await relay.close()
    await waitFor(() => a.link().state === 'reconnecting', 'the link to turn reconnecting')
    // queued while the relay is away, then the process goes: no caller waits on it any more
    a.send(bobId.amid, { text: 'held' }).catch(() => {})
    await waitFor(() => aliceState.outboxList().length === 1, 'the send in the state outbox')
    await a.close()

    relay = await startRelay({ dataDir: data, port, readOnly: true })
    const warnings: AgentMeshError[] = []
    const a2 = await connect({ server: relay.url, identity: aliceId, state: aliceState, onWarning: (w) => { warnings.push(w) } })
    await waitFor(() => warnings.some(w => w.code === ErrorCode.ReadOnly), 'the read-only refusal')
    assert.match(warnings.find(w => w.code === ErrorCode.ReadOnly)!.message, /stays queued in this agent's outbox/)
    assert.equal(aliceState.outboxList().length, 1, 'the refused send is still queued')
    await a2.flush({ signal: AbortSignal.timeout(5000) }) // nothing this connection still waits on
    await a2.close()
    await relay.close()

    relay = await startRelay({ dataDir: data, port })
    relays.push(relay)
    const a3 = await connect({ server: relay.url, identity: aliceId, state: aliceState })
    conns.push(a3)
    await a3.flush({ signal: AbortSignal.timeout(5000) })
    assert.equal(aliceState.outboxList().length, 0)
    const bob = await connect({ server: relay.url, identity: bobId, state: bobState })
    conns.push(bob)
    const got = await take(bob, 2)
    assert.deepEqual(got.map(m => (m as unknown as { text: string }).text), ['before', 'held'])
  })
})
