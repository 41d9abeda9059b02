/**
 * System updates with acknowledgements (docs/protocol.md §19) against a relay in this process on
 * 127.0.0.1: the REST routes (roles, validation, acknowledgement moves, the adoption view, audit),
 * the durable delivery of `system_update` events (an agent offline at creation gets it when it
 * connects) and Protocol 4 (a breaking update's required version refuses older agents' sends after
 * its deadline, and says so before), with a fake clock for the features.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signRequest, type Identity } from '@agentmesh/crypto'
import { inProcessBackplane, type Relay } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { rawAgent, startRelay, tempDir, type RawAgent } from '@agentmesh/testing'

type Json = Record<string, any>
const API_KEY = 'operator-key-for-update-tests-0123456789'
const T0 = Date.UTC(2026, 0, 1)
const HOUR = 3_600_000

interface Harness {
  relay: Relay
  clock: { t: number }
  /** a REST call: the operator, an agent (signed request), or nobody */
  call (who: Identity | 'operator', method: string, path: string, body?: unknown): Promise<{ status: number, body: Json }>
  /** an agent connected over the WebSocket (registered by it), closed at the end */
  agent (id?: Identity, extra?: Record<string, unknown>): Promise<RawAgent>
}

async function harness (t: TestContext): Promise<Harness> {
  const clock = { t: T0 }
  const relay = await startRelay({ apiKey: API_KEY }, { now: () => clock.t })
  const open: RawAgent[] = []
  t.after(async () => {
    for (const a of open) a.close()
    await relay.close()
  })
  return {
    relay,
    clock,
    async call (who, method, path, body) {
      const text = body === undefined ? '' : JSON.stringify(body)
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
      if (who === 'operator') headers['x-api-key'] = API_KEY
      else Object.assign(headers, signRequest(who, method, path, text, clock.t)) // the relay checks it on the features' clock
      const res = await fetch(relay.url + path, { method, headers, ...(body === undefined ? {} : { body: text }) })
      return { status: res.status, body: await res.json() as Json }
    },
    async agent (id = createIdentity(), extra = {}) {
      const a = await rawAgent(relay.wsUrl, id)
      open.push(a)
      const w = await a.auth(extra)
      assert.equal(w.op, 'welcome', JSON.stringify(w))
      return a
    },
  }
}

function expectError (r: { status: number, body: Json }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body))
  assert.equal(r.body.error?.code, code, JSON.stringify(r.body))
  if (message !== undefined) assert.match(r.body.error.message as string, message)
}

const updateEvents = (a: RawAgent): Json[] => a.frames.filter(f => f.op === 'event' && f.event.type === 'system_update').map(f => f.event)

/** Sends an envelope to `to`; answers the ack or error frame for it. */
async function send (from: RawAgent, to: string, text: string): Promise<Json> {
  const env = from.envelope(to, text)
  from.send({ op: 'send', env })
  const [f] = await from.collect(x => (x.op === 'ack' || x.op === 'error') && x.id === env.id, 1)
  return f!
}

describe('updates - REST', () => {
  it('updates - a master creates (201 {updateId, broadcast}); others are refused; bad bodies are refused with a code and store nothing', async (t) => {
    const h = await harness(t)
    const bob = createIdentity()
    await h.agent(bob)
    const good = { version: '2.0.0', updateType: 'api', title: 'New send API', description: 'sends change', announcement: '# Upgrade\n\nnow' }
    expectError(await h.call(bob, 'POST', '/api/updates', good), 403, ErrorCode.Forbidden, /only a master/)
    const bad: Array<[unknown, RegExp]> = [
      [{ ...good, updateType: 'hotfix' }, /updateType/],
      [{ ...good, colour: 'red' }, /colour/],
      [{ ...good, title: '' }, /title/],
      [{ ...good, announcement: 'x'.repeat(32_001) }, /announcement/],
      [{ ...good, breakingChange: true, requiredVersion: '2.0' }, /requiredVersion/],
      [{ ...good, enforceAt: T0 + HOUR }, /^enforceAt: a deadline goes with breakingChange: true and a requiredVersion/],
      [{ ...good, requiredVersion: '2.0.0', enforceAt: T0 + HOUR }, /^enforceAt: a deadline goes with/],
      [{ ...good, expiresAt: T0 - 1 }, /^expiresAt: 2025-12-31T23:59:59.999Z is not in the future/],
      [{ ...good, expiresAt: '2026-02-30Tnope' }, /expiresAt/],
    ]
    for (const [body, message] of bad) expectError(await h.call('operator', 'POST', '/api/v1/updates', body), 400, ErrorCode.InvalidArgument, message)
    assert.deepEqual((await h.call('operator', 'GET', '/api/updates')).body, { updates: [] }, 'nothing was stored')

    const created = await h.call('operator', 'POST', '/api/updates', { ...good, expiresAt: '2026-01-08T00:00:00Z' })
    assert.equal(created.status, 201)
    assert.deepEqual(Object.keys(created.body).sort(), ['broadcast', 'updateId'])
    assert.equal(created.body.broadcast, true)
    const id = created.body.updateId as string
    const info = { updateId: id, ...good, breakingChange: false, expiresAt: Date.UTC(2026, 0, 8), createdBy: 'operator', createdAt: T0, active: true }
    assert.deepEqual((await h.call('operator', 'GET', `/api/v1/updates/${id}`)).body, info)
    assert.deepEqual((await h.call(bob, 'GET', `/api/updates/${id}`)).body, { ...info, status: 'pending' }, 'an agent reads its own answer too')
    expectError(await h.call(bob, 'GET', '/api/v1/updates/no-such-update'), 404, ErrorCode.UnknownUpdate, /^no update no-such-update/)
  })

  it('updates - list: newest first, since (ms or ISO), activeOnly, limit', async (t) => {
    const h = await harness(t)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      h.clock.t = T0 + i * HOUR
      const r = await h.call('operator', 'POST', '/api/v1/updates', { version: `1.${i}.0`, updateType: 'feature', title: `u${i}`, ...(i === 0 ? { expiresAt: T0 + 2 * HOUR } : {}) })
      ids.push(r.body.updateId as string)
    }
    h.clock.t = T0 + 2 * HOUR
    const list = async (q: string): Promise<string[]> => ((await h.call('operator', 'GET', `/api/updates${q}`)).body.updates as Json[]).map(u => u.updateId as string)
    assert.deepEqual(await list(''), [ids[2], ids[1], ids[0]])
    assert.deepEqual(await list('?activeOnly=true'), [ids[2], ids[1]], 'the first expired at T0 + 2 h')
    assert.deepEqual(await list(`?since=${T0 + HOUR}`), [ids[2], ids[1]])
    assert.deepEqual(await list('?since=2026-01-01T01:00:00Z&limit=1'), [ids[2]])
    const all = (await h.call('operator', 'GET', '/api/v1/updates')).body.updates as Json[]
    assert.deepEqual(all.map(u => u.active), [true, true, false])
    expectError(await h.call('operator', 'GET', '/api/updates?activeOnly=yes'), 400, ErrorCode.InvalidArgument, /activeOnly/)
    expectError(await h.call('operator', 'GET', '/api/updates?since=yesterday'), 400, ErrorCode.InvalidArgument, /since/)
  })

  it('updates - acknowledgements: for oneself (a master for another), the allowed moves only, not after expiry; stored unchanged when refused', async (t) => {
    const h = await harness(t)
    const bob = createIdentity()
    const carol = createIdentity()
    await h.agent(bob)
    await h.agent(carol)
    const { body: { updateId: id } } = await h.call('operator', 'POST', '/api/updates', { version: '2.0.0', updateType: 'schema', title: 'Schema 2', expiresAt: T0 + HOUR })
    const ack = (who: Identity | 'operator', body: Json, path = `/api/updates/${id as string}/acknowledge`): Promise<{ status: number, body: Json }> => h.call(who, 'POST', path, body)
    h.clock.t = T0 + 10
    const accepted = await ack(bob, { status: 'accepted', agentVersion: '1.9.0', notes: 'tonight' })
    assert.equal(accepted.status, 200)
    assert.deepEqual(accepted.body, { updateId: id, agentId: bob.amid, status: 'accepted', agentVersion: '1.9.0', notes: 'tonight', updatedAt: T0 + 10 })
    expectError(await ack(bob, { agentId: carol.amid, status: 'accepted' }), 403, ErrorCode.Forbidden, /agentId must be your own AMID/)
    expectError(await ack(bob, { status: 'pending' }), 400, ErrorCode.InvalidArgument, /status/)
    expectError(await ack(bob, { status: 'completed', notes: 'n'.repeat(2001) }), 400, ErrorCode.InvalidArgument, /notes/)
    expectError(await ack('operator', { status: 'accepted' }), 400, ErrorCode.InvalidArgument, /agentId/)
    expectError(await ack(bob, { status: 'accepted' }, '/api/v1/updates/nope/acknowledge'), 404, ErrorCode.UnknownUpdate)
    // the operator (a master) answers for carol; then carol completes it herself
    const forCarol = await ack('operator', { agentId: carol.amid, status: 'rejected', notes: 'busy' }, `/api/v1/updates/${id as string}/acknowledge`)
    assert.equal(forCarol.status, 200)
    assert.equal(forCarol.body.agentId, carol.amid)
    expectError(await ack(carol, { status: 'completed' }), 409, ErrorCode.InvalidTransition, /is rejected: it can become rejected or accepted, not completed/)
    assert.equal((await ack(carol, { status: 'accepted' })).body.status, 'accepted')
    assert.equal((await ack(carol, { status: 'completed', agentVersion: '2.0.0' })).body.status, 'completed')
    expectError(await ack(carol, { status: 'accepted' }), 409, ErrorCode.InvalidTransition, /is completed: it can become completed, not accepted/)
    expectError(await ack('operator', { agentId: createIdentity().amid, status: 'accepted' }), 404, ErrorCode.UnknownRecipient)
    h.clock.t = T0 + HOUR
    expectError(await ack(bob, { status: 'completed' }), 409, ErrorCode.UpdateExpired, /expired at 2026-01-01T01:00:00.000Z/)
    const view = (await h.call('operator', 'GET', `/api/updates/${id as string}/acknowledgments`)).body
    assert.deepEqual(view.acknowledgments.find((a: Json) => a.agentId === bob.amid), accepted.body, 'the refused acks changed nothing')
    // audited: metadata only (no notes)
    const rows = (await h.relay.store.readAudit({ limit: 1000 })).filter(r => r.action.startsWith('update.'))
    assert.deepEqual(rows.map(r => [r.action, r.actor, r.target]), [
      ['update.create', 'operator', id],
      ['update.ack', bob.amid, id],
      ['update.ack', 'operator', id],
      ['update.ack', carol.amid, id],
      ['update.ack', carol.amid, id],
    ])
    assert.deepEqual(rows[1]!.detail, { agent: bob.amid, status: 'accepted', from: 'pending', agent_version: '1.9.0' })
    assert.ok(!JSON.stringify(rows).includes('tonight'), 'notes are not audited')
  })

  it('updates - the adoption view: counts by status with the agents that have not answered, versions reported; masters and wardens only', async (t) => {
    const h = await harness(t)
    const [a, b, c, d, w] = [createIdentity(), createIdentity(), createIdentity(), createIdentity(), createIdentity()]
    await h.agent(a, { agent_version: '1.0.0' })
    await h.agent(b, { agent_version: '2.1.0' })
    await h.agent(c)
    await h.agent(d, { agent_version: '1.0.0' })
    await h.agent(w)
    assert.equal((await h.call('operator', 'PUT', `/api/v1/agents/${w.amid}/role`, { role: 'warden' })).status, 200)
    const { body: { updateId: id } } = await h.call('operator', 'POST', '/api/updates', { version: '2.0.0', updateType: 'api', title: 'v2', breakingChange: true, requiredVersion: '2.0.0' })
    await h.call(a, 'POST', `/api/updates/${id as string}/acknowledge`, { status: 'accepted' })
    await h.call(b, 'POST', `/api/updates/${id as string}/acknowledge`, { status: 'completed', agentVersion: '2.1.0' })
    await h.call(c, 'POST', `/api/updates/${id as string}/acknowledge`, { status: 'rejected' })
    expectError(await h.call(a, 'GET', `/api/updates/${id as string}/acknowledgments`), 403, ErrorCode.Forbidden, /masters and wardens/)
    const view = await h.call(w, 'GET', `/api/v1/updates/${id as string}/acknowledgments`)
    assert.equal(view.status, 200)
    assert.equal(view.body.totalAgents, 5)
    assert.deepEqual(view.body.counts, { pending: 2, accepted: 1, rejected: 1, completed: 1 })
    assert.deepEqual([...view.body.notAnswered].sort(), [d.amid, w.amid].sort())
    assert.deepEqual(view.body.versions, { '1.0.0': 2, '2.1.0': 1, unknown: 2 })
    assert.equal(view.body.belowRequired, 4, 'all but b: 1.0.0 twice and two unknown')
    assert.deepEqual((view.body.acknowledgments as Json[]).map(x => [x.agentId, x.status]).sort(), [[a.amid, 'accepted'], [b.amid, 'completed'], [c.amid, 'rejected']].sort())
  })
})

describe('updates - system_update events', () => {
  it('updates - connected agents get the event live; an agent offline at creation gets it when it connects, until it completed it', async (t) => {
    const h = await harness(t)
    const bob = await h.agent()
    const carolId = createIdentity()
    const carol0 = await h.agent(carolId)
    carol0.close()
    await carol0.closed
    const { body: { updateId: id } } = await h.call('operator', 'POST', '/api/updates', { version: '3.1.0', updateType: 'feature', title: 'Threads', announcement: '**threads**' })
    const [live] = await bob.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.deepEqual(live!.event, {
      type: 'system_update',
      data: { updateId: id, version: '3.1.0', updateType: 'feature', title: 'Threads', breakingChange: false, announcement: '**threads**', createdBy: 'operator', createdAt: T0, status: 'pending' },
      ts: T0,
    })
    // carol was offline: she gets it at her next auth (from the Store)
    const carol = await h.agent(carolId)
    const [later] = await carol.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(later!.event.data.updateId, id)
    assert.equal(later!.event.data.status, 'pending')
    // accepted: still told; completed: no more
    await h.call(carolId, 'POST', `/api/updates/${id as string}/acknowledge`, { status: 'accepted' })
    const again = await h.agent(carolId)
    const [accepted] = await again.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(accepted!.event.data.status, 'accepted')
    await h.call(carolId, 'POST', `/api/updates/${id as string}/acknowledge`, { status: 'completed' })
    const { body: { updateId: next } } = await h.call('operator', 'POST', '/api/updates', { version: '3.2.0', updateType: 'feature', title: 'Reactions' })
    const done = await h.agent(carolId)
    // the events of one auth are written together: once the newer one is here, the older would be too
    await done.collect(f => f.op === 'event' && f.event.type === 'system_update' && f.event.data.updateId === next, 1)
    await done.barrier()
    assert.deepEqual(updateEvents(done).map(e => e.data.updateId), [next], 'a completed update is not told again')
  })

  it('updates - an expired update is not told at auth', async (t) => {
    const h = await harness(t)
    await h.call('operator', 'POST', '/api/updates', { version: '1.0.1', updateType: 'emergency', title: 'Short', expiresAt: T0 + 1000 })
    const { body: { updateId: kept } } = await h.call('operator', 'POST', '/api/updates', { version: '1.0.2', updateType: 'emergency', title: 'Long' })
    h.clock.t = T0 + 1000
    const a = await h.agent()
    const [e] = await a.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    await a.barrier()
    assert.equal(e!.event.data.updateId, kept)
    assert.equal(updateEvents(a).length, 1)
  })
})

describe('updates - Protocol 4: a breaking update with a required version', () => {
  it('updates - warns an older agent before the deadline, refuses its sends (WebSocket and REST) after it, naming the version and the update; newer agents send on', async (t) => {
    const h = await harness(t)
    const oldId = createIdentity()
    const old = await h.agent(oldId, { agent_version: '1.4.2' })
    const fresh = await h.agent(undefined, { agent_version: '2.0.1' })
    const bare = await h.agent() // reports no version
    const { body: { updateId: id } } = await h.call('operator', 'POST', '/api/v1/updates', {
      version: '2.0.0', updateType: 'api', title: 'Wire v2', breakingChange: true, requiredVersion: '2.0.0', enforceAt: '2026-01-01T06:00:00Z',
    })
    const deadline = Date.UTC(2026, 0, 1, 6)
    // before the deadline: told, and still sending
    const [warned] = await old.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(warned!.event.data.belowRequired, true)
    assert.equal(warned!.event.data.requiredVersion, '2.0.0')
    assert.equal(warned!.event.data.enforceAt, deadline)
    const [fine] = await fresh.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(fine!.event.data.belowRequired, false)
    assert.equal((await send(old, fresh.id.amid, 'before')).op, 'ack')
    // a reconnect before the deadline is told again, with the verdict
    const again = await h.agent(oldId, { agent_version: '1.4.2' })
    const [atAuth] = await again.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(atAuth!.event.data.belowRequired, true)
    again.close()

    h.clock.t = deadline
    const refused = await send(old, fresh.id.amid, 'after')
    assert.equal(refused.op, 'error')
    assert.equal(refused.code, ErrorCode.UpdateRequired)
    assert.equal(refused.message, `update "Wire v2" (${id as string}) requires agent version 2.0.0 or later since 2026-01-01T06:00:00.000Z, and this agent runs 1.4.2; upgrade it and connect again (the SDK reports its version in the auth frame; over REST, acknowledge the update with agentVersion); nothing was stored`)
    assert.equal((await send(bare, fresh.id.amid, 'unknown version')).code, ErrorCode.UpdateRequired)
    assert.equal((await send(fresh, old.id.amid, 'newer')).op, 'ack')
    // REST posts too (the version it last reported)
    const post = await h.call(oldId, 'POST', '/api/v1/messages', { to: '#global', text: 'hello' })
    expectError(post, 403, ErrorCode.UpdateRequired, /requires agent version 2\.0\.0 or later/)
    // upgraded: a new connection reporting 2.0.0 sends
    old.close()
    const upgraded = await h.agent(oldId, { agent_version: '2.0.0' })
    assert.equal((await send(upgraded, fresh.id.amid, 'upgraded')).op, 'ack')
    assert.equal((await h.call(oldId, 'POST', '/api/v1/messages', { to: '#global', text: 'hello again' })).status, 201)
  })

  it('updates - a requiredVersion without breakingChange is told (belowRequired) and never enforced', async (t) => {
    const h = await harness(t)
    const old = await h.agent(undefined, { agent_version: '1.0.0' })
    const peer = await h.agent(undefined, { agent_version: '1.0.0' })
    const r = await h.call('operator', 'POST', '/api/updates', { version: '2.0.0', updateType: 'feature', title: 'Advice', requiredVersion: '2.0.0' })
    assert.equal(r.status, 201)
    const info = (await h.call('operator', 'GET', `/api/updates/${r.body.updateId as string}`)).body
    assert.equal(info.requiredVersion, '2.0.0')
    assert.equal('enforceAt' in info, false)
    const [e] = await old.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(e!.event.data.belowRequired, true)
    h.clock.t = T0 + 365 * 24 * HOUR
    assert.equal((await send(old, peer.id.amid, 'a year on')).op, 'ack')
  })

  it('updates - the deadline defaults to expiresAt, else creation + updateGraceMs; an ack with agentVersion lifts the refusal over REST', async (t) => {
    const h = await harness(t)
    const a = createIdentity()
    await h.agent(a)
    const r1 = await h.call('operator', 'POST', '/api/updates', { version: '2.0.0', updateType: 'api', title: 'A', breakingChange: true, requiredVersion: '2.0.0', expiresAt: T0 + HOUR })
    const r2 = await h.call('operator', 'POST', '/api/updates', { version: '3.0.0', updateType: 'api', title: 'B', breakingChange: true, requiredVersion: '3.0.0' })
    assert.equal((await h.call(a, 'GET', `/api/updates/${r1.body.updateId as string}`)).body.enforceAt, T0 + HOUR)
    assert.equal((await h.call(a, 'GET', `/api/updates/${r2.body.updateId as string}`)).body.enforceAt, T0 + 7 * 24 * HOUR)
    h.clock.t = T0 + HOUR
    expectError(await h.call(a, 'POST', '/api/v1/messages', { to: '#global', text: 'x' }), 403, ErrorCode.UpdateRequired, /update "A"/)
    h.clock.t = T0 + HOUR - 1
    await h.call(a, 'POST', `/api/updates/${r1.body.updateId as string}/acknowledge`, { status: 'completed', agentVersion: '2.5.0' })
    h.clock.t = T0 + HOUR
    assert.equal((await h.call(a, 'POST', '/api/v1/messages', { to: '#global', text: 'y' })).status, 201, '2.5.0 meets A; B is not due yet')
    h.clock.t = T0 + 7 * 24 * HOUR
    expectError(await h.call(a, 'POST', '/api/v1/messages', { to: '#global', text: 'z' }), 403, ErrorCode.UpdateRequired, /update "B"/)
  })

  it('updates - an auth frame with an agent_version that is not a version is refused (AM_ERR_INVALID_FRAME); nothing is recorded', async (t) => {
    const h = await harness(t)
    for (const v of ['1 0', '', 'v'.repeat(65), '-1.0.0', 7]) {
      const a = await rawAgent(h.relay.wsUrl)
      t.after(() => { a.close() })
      const answer = await a.auth({ agent_version: v })
      assert.equal(answer.op, 'error', JSON.stringify(v))
      assert.equal(answer.code, ErrorCode.InvalidFrame)
    }
    assert.deepEqual(await h.relay.store.listAgentVersions(), [])
  })

  it('updates - survive a restart: an agent offline through it is told at connect, and the requirement still refuses an older agent', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const clock = { t: T0 }
    const old = createIdentity()
    let relay = await startRelay({ apiKey: API_KEY, dataDir: dir.path }, { now: () => clock.t })
    const first = await rawAgent(relay.wsUrl, old)
    assert.equal((await first.auth({ agent_version: '1.0.0' })).op, 'welcome')
    const peer = await rawAgent(relay.wsUrl)
    assert.equal((await peer.auth({ agent_version: '2.0.0' })).op, 'welcome')
    first.close()
    peer.close()
    const res = await fetch(`${relay.url}/api/v1/updates`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '2.0.0', updateType: 'schema', title: 'Schema 2', breakingChange: true, requiredVersion: '2.0.0', enforceAt: T0 + HOUR }),
    })
    const { updateId } = await res.json() as Json
    await relay.close()
    relay = await startRelay({ apiKey: API_KEY, dataDir: dir.path }, { now: () => clock.t })
    t.after(async () => { await relay.close() })
    clock.t = T0 + HOUR
    const again = await rawAgent(relay.wsUrl, old)
    t.after(() => { again.close() })
    assert.equal((await again.auth()).op, 'welcome', 'no version in this auth: the one it reported before the restart counts')
    const [e] = await again.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(e!.event.data.updateId, updateId)
    assert.equal(e!.event.data.belowRequired, true)
    const peer2 = await rawAgent(relay.wsUrl, peer.id)
    t.after(() => { peer2.close() })
    await peer2.auth()
    const refused = await send(again, peer.id.amid, 'after the restart')
    assert.equal(refused.code, ErrorCode.UpdateRequired)
    assert.match(refused.message as string, /this agent runs 1\.0\.0/)
  })

  it('updates - two relay nodes over one Store: an update created on one is told, and enforced, on the other at its agents\' next auth', async (t) => {
    const clock = { t: T0 }
    const store = memoryStore()
    const backplane = inProcessBackplane()
    const shared = { ...store, close: async () => {} }
    const one = await startRelay({ apiKey: API_KEY }, { store: shared, backplane, now: () => clock.t })
    const two = await startRelay({ apiKey: API_KEY }, { store: shared, backplane, now: () => clock.t })
    t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
    const res = await fetch(`${one.url}/api/updates`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '5.0.0', updateType: 'api', title: 'Five', breakingChange: true, requiredVersion: '5.0.0', enforceAt: T0 + 1000 }),
    })
    const { updateId } = await res.json() as Json
    const peer = await rawAgent(two.wsUrl)
    t.after(() => { peer.close() })
    await peer.auth({ agent_version: '5.0.0' })
    const old = await rawAgent(two.wsUrl)
    t.after(() => { old.close() })
    await old.auth({ agent_version: '4.9.9' })
    const [e] = await old.collect(f => f.op === 'event' && f.event.type === 'system_update', 1)
    assert.equal(e!.event.data.updateId, updateId)
    clock.t = T0 + 1000
    assert.equal((await send(old, peer.id.amid, 'on node two')).code, ErrorCode.UpdateRequired)
    assert.equal((await send(peer, old.id.amid, 'newer')).op, 'ack')
  })
})
