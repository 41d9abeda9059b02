/**
 * Agent health over REST in process (docs/protocol.md §21): heartbeats and their validation, who
 * may heartbeat and read, the dashboard's counts, offline by silence (fake clock) and by
 * disconnect, agent_health_change events on changes only, and GET /metrics as Prometheus text.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it, type TestContext } from 'node:test'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { rawAgent, startRelay, waitFor } from '@agentmesh/testing'
import { createIdentity } from '@agentmesh/crypto'
import { memoryStore } from '@agentmesh/store'
import { inProcessBackplane } from '../src/backplane.ts'
import { agents, healthApp, T0, type HealthApp, type Json } from './health-fixtures.ts'
import { checkHeartbeatFigures } from '../src/ops/health-input.ts'

async function setup (t: TestContext, names: string[], init = {}, feature = {}): Promise<HealthApp & { ids: ReturnType<typeof agents> }> {
  const ids = agents(...names)
  const h = await healthApp(ids, init, feature)
  t.after(async () => { await h.close() })
  return { ...h, ids }
}

const beat = (status: string, extra: Json = {}): Json => ({ status, ...extra })

describe('health - heartbeats', () => {
  it('health - an agent heartbeats for itself on both paths; the latest heartbeat reads back with every figure', async (t) => {
    const h = await setup(t, ['alice'])
    const [alice] = h.ids
    const r = await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy', { uptimeSeconds: 12.5, cpuUsage: 3.25, memoryUsage: 50_000_000, customMetrics: { queue: 4, model: 'small', warm: true }, version: '1.2.3' }))
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.body, { success: true, agentId: alice!.amid, status: 'healthy', receivedAt: T0, offlineAfterSeconds: 90 })
    h.clock.t += 1000
    const plan = await h.call(alice, 'POST', `/api/agents/${alice!.amid}/heartbeat`, beat('degraded', { agentId: alice!.amid, cpuUsage: 95 }))
    assert.equal(plan.status, 200, plan.text)
    assert.equal(plan.body.status, 'degraded')
    const got = await h.call(alice, 'GET', `/api/v1/agents/${alice!.amid}/health`)
    assert.equal(got.status, 200, got.text)
    assert.deepEqual(got.body, {
      agentId: alice!.amid, status: 'degraded', connected: false,
      lastHeartbeat: { status: 'degraded', cpuUsage: 95, at: T0 + 1000 },
      history: [
        { at: T0 + 1000, from: 'healthy', to: 'degraded', reason: 'heartbeat' },
        { at: T0, from: 'unknown', to: 'healthy', reason: 'heartbeat' },
      ],
    })
    const plain = await h.call(alice, 'GET', `/api/agents/${alice!.amid}/health?historyLimit=1`)
    assert.equal(plain.status, 200)
    assert.equal(plain.body.history.length, 1)
  })

  it('health - another agent\'s heartbeat is refused (403) to a worker, a mismatched agentId too; a master may heartbeat for anyone', async (t) => {
    const h = await setup(t, ['alice', 'bob'])
    const [alice, bob] = h.ids
    const no = await h.call(bob, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy'))
    assert.equal(no.status, 403)
    assert.equal(no.body.error.code, ErrorCode.Forbidden)
    const mismatch = await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy', { agentId: bob!.amid }))
    assert.equal(mismatch.status, 403)
    assert.equal(await h.store.getHeartbeat(alice!.amid), undefined, 'nothing stored')
    const op = await h.call('operator', 'POST', `/api/agents/${bob!.amid}/heartbeat`, beat('unhealthy'))
    assert.equal(op.status, 200, op.text)
    assert.equal((await h.store.getHeartbeat(bob!.amid))?.status, 'unhealthy')
    const unknown = await h.call('operator', 'POST', '/api/v1/agents/@nobody/heartbeat', beat('healthy'))
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.error.code, ErrorCode.UnknownHandle)
  })

  it('health - figures that are not numbers or out of range, custom metrics past their bounds: documented codes, nothing stored', async (t) => {
    const h = await setup(t, ['alice'])
    const [alice] = h.ids
    const path = `/api/v1/agents/${alice!.amid}/heartbeat`
    const cases: Array<[Json, number, string, RegExp]> = [
      [beat('healthy', { cpuUsage: '50' }), 400, ErrorCode.InvalidMetric, /cpuUsage must be a number/],
      [beat('healthy', { cpuUsage: 101 }), 400, ErrorCode.InvalidMetric, /cpuUsage must be from 0 to 100/],
      [beat('healthy', { memoryUsage: -1 }), 400, ErrorCode.InvalidMetric, /memoryUsage must be from 0/],
      [beat('healthy', { memoryUsage: 1.5 }), 400, ErrorCode.InvalidMetric, /memoryUsage must be a whole number/],
      [beat('healthy', { uptimeSeconds: null }), 400, ErrorCode.InvalidMetric, /uptimeSeconds must be a number/],
      [beat('healthy', { customMetrics: { 'bad name': 1 } }), 400, ErrorCode.InvalidMetric, /name "bad name" is not allowed/],
      [beat('healthy', { customMetrics: { nested: { a: 1 } } }), 400, ErrorCode.InvalidMetric, /must be a number, a string or a boolean, not object/],
      [beat('healthy', { customMetrics: { s: 'x'.repeat(257) } }), 400, ErrorCode.InvalidMetric, /257 characters; at most 256/],
      [beat('healthy', { customMetrics: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`m${i}`, i])) }), 413, ErrorCode.MetricsTooLarge, /33 names; at most 32/],
      [beat('healthy', { customMetrics: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`m${i}`, 'y'.repeat(250)])) }), 413, ErrorCode.MetricsTooLarge, /bytes as JSON; at most 4096/],
      [beat('sleepy'), 400, ErrorCode.InvalidArgument, /status/],
      [{ uptimeSeconds: 1 }, 400, ErrorCode.InvalidArgument, /status/],
      [beat('healthy', { extra: 1 }), 400, ErrorCode.InvalidArgument, /extra/],
    ]
    for (const [body, status, code, message] of cases) {
      const r = await h.call(alice, 'POST', path, body)
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`)
      assert.equal(r.body.error.code, code, r.text)
      assert.match(r.body.error.message, message)
    }
    assert.equal(await h.store.getHeartbeat(alice!.amid), undefined, 'nothing was stored')
    assert.deepEqual(await h.store.healthHistory(alice!.amid, 10), [])
    // a number too large for a double (1e309 in the JSON) is named as it was read, not as null
    assert.throws(() => { checkHeartbeatFigures({ status: 'healthy', cpuUsage: Infinity }) }, (e: AgentMeshError) =>
      e.code === ErrorCode.InvalidMetric && /cpuUsage must be a number \(.*\), not Infinity; nothing was stored/.test(e.message))
  })

  it('health - a worker reads its own health only; wardens and masters read anyone\'s', async (t) => {
    const h = await setup(t, ['alice', 'bob', 'wendy'])
    const [alice, bob, wendy] = h.ids
    await h.store.setRole(wendy!.amid, 'warden')
    assert.equal((await h.call(bob, 'GET', `/api/v1/agents/${alice!.amid}/health`)).status, 403)
    assert.equal((await h.call(wendy, 'GET', `/api/v1/agents/${alice!.amid}/health`)).status, 200)
    assert.equal((await h.call('operator', 'GET', `/api/v1/agents/${alice!.amid}/health`)).body.status, 'offline')
    h.online.add(alice!.amid)
    assert.equal((await h.call('operator', 'GET', `/api/v1/agents/${alice!.amid}/health`)).body.status, 'unknown', 'connected, never heartbeated')
  })
})

describe('health - dashboard, offline and events', () => {
  it('health - the dashboard counts match the heartbeats; a silent agent turns offline with the clock; events only on changes, to masters and wardens', async (t) => {
    const h = await setup(t, ['alice', 'bob', 'carol', 'dave', 'erin', 'mona', 'wendy'])
    const [alice, bob, carol, dave, erin, mona, wendy] = h.ids
    await h.store.setRole(mona!.amid, 'master')
    await h.store.setRole(wendy!.amid, 'warden')
    for (const a of [alice, bob, carol, dave, mona, wendy]) { h.online.add(a!.amid); h.chat.connected(a!.amid) }
    await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy', { version: '0.2.0' }))
    await h.call(bob, 'POST', `/api/v1/agents/${bob!.amid}/heartbeat`, beat('degraded'))
    await h.call(carol, 'POST', `/api/v1/agents/${carol!.amid}/heartbeat`, beat('unhealthy'))
    await h.call(mona, 'POST', `/api/v1/agents/${mona!.amid}/heartbeat`, beat('healthy'))
    // dave is connected and never heartbeats; erin is neither; wendy connected, no heartbeat
    const first = h.frames.length
    assert.equal(first, 4, 'one change each: unknown → their status')
    assert.deepEqual(h.frames[0]!.to, [mona!.amid, wendy!.amid].sort())
    assert.deepEqual(h.frames[0]!.event, { type: 'agent_health_change', data: { agentId: alice!.amid, from: 'unknown', to: 'healthy', at: T0, reason: 'heartbeat', lastHeartbeatAt: T0 }, ts: T0 })

    // the same status again: no event
    h.clock.t += 30_000
    await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy', { version: '0.2.0' }))
    assert.equal(h.frames.length, first)

    const dash = await h.call(wendy, 'GET', '/api/v1/health/dashboard')
    assert.equal(dash.status, 200, dash.text)
    const { agentList, ...counts } = dash.body
    assert.deepEqual(counts, { totalAgents: 7, healthy: 2, degraded: 1, unhealthy: 1, unknown: 2, offline: 1, criticalEvents: 0, lastCatastrophe: null, offlineAfterSeconds: 90, generatedAt: T0 + 30_000 })
    const byAmid = new Map((agentList as Json[]).map(a => [a.amid, a]))
    assert.equal(agentList.length, 7)
    assert.deepEqual(byAmid.get(alice!.amid), { amid: alice!.amid, status: 'healthy', lastHeartbeatAt: T0 + 30_000, version: '0.2.0' })
    assert.deepEqual(byAmid.get(dave!.amid), { amid: dave!.amid, status: 'unknown', lastHeartbeatAt: null })
    assert.deepEqual(byAmid.get(erin!.amid), { amid: erin!.amid, status: 'offline', lastHeartbeatAt: null })

    // bob, carol and mona stop heartbeating; alice keeps on: past 90 s they turn offline, alice not
    h.clock.t = T0 + 95_000
    await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy'))
    await h.health.sweep()
    const offline = h.frames.slice(first).map(f => f.event.data)
    assert.deepEqual(offline.map(d => [d.agentId, d.from, d.to, d.reason]).sort(), [
      [bob!.amid, 'degraded', 'offline', 'silent'], [carol!.amid, 'unhealthy', 'offline', 'silent'], [mona!.amid, 'healthy', 'offline', 'silent'],
    ].sort())
    await h.health.sweep()
    assert.equal(h.frames.length, first + 3, 'a second sweep tells nothing new')
    const after = (await h.call('operator', 'GET', '/api/health/dashboard')).body
    assert.deepEqual([after.healthy, after.degraded, after.unhealthy, after.unknown, after.offline], [1, 0, 0, 2, 4])
    assert.deepEqual((await h.store.healthHistory(bob!.amid, 5)).map(c => [c.from, c.to, c.reason]), [['degraded', 'offline', 'silent'], ['unknown', 'degraded', 'heartbeat']])
    const audit = await h.store.readAudit({ limit: 100 })
    assert.equal(audit.filter(r => r.action === 'health.change').length, 7, 'the changes only, not each heartbeat')

    // bob comes back
    h.clock.t += 1000
    await h.call(bob, 'POST', `/api/v1/agents/${bob!.amid}/heartbeat`, beat('healthy'))
    assert.deepEqual(h.frames.at(-1)!.event.data.from, 'offline')
    assert.deepEqual(h.frames.at(-1)!.event.data.to, 'healthy')
  })

  it('health - a disconnect turns a heartbeating agent offline at once, told once', async (t) => {
    const h = await setup(t, ['alice', 'mona'])
    const [alice, mona] = h.ids
    await h.store.setRole(mona!.amid, 'master')
    h.online.add(alice!.amid); h.online.add(mona!.amid)
    h.chat.connected(alice!.amid); h.chat.connected(mona!.amid)
    await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy'))
    h.online.delete(alice!.amid)
    h.chat.disconnected(alice!.amid)
    h.events.emit('agent:offline', { amid: alice!.amid })
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    const last = h.frames.at(-1)!.event
    assert.deepEqual([last.data.from, last.data.to, last.data.reason], ['healthy', 'offline', 'disconnected'])
    assert.equal((await h.call('operator', 'GET', `/api/v1/agents/${alice!.amid}/health`)).body.status, 'offline', 'its heartbeat is fresh but older than the disconnect')
    const n = h.frames.length
    await h.health.sweep()
    assert.equal(h.frames.length, n)
  })

  it('health - heartbeats still fresh when the relay starts are watched: a silent agent turns offline after a restart too', async (t) => {
    const h = await setup(t, ['bob', 'mona'])
    const [bob, mona] = h.ids
    await h.store.setRole(mona!.amid, 'master')
    h.chat.connected(mona!.amid)
    await h.store.putHeartbeat({ amid: bob!.amid, status: 'degraded', at: T0 - 10_000 })
    await h.health.stop?.()
    await h.health.start?.() // as a restarted relay does
    h.clock.t = T0 + 80_000
    await h.health.sweep()
    assert.equal(h.frames.length, 0, 'still fresh: 90 s old')
    h.clock.t = T0 + 80_001
    await h.health.sweep()
    assert.deepEqual(h.frames.map(f => [f.to, f.event.data.agentId, f.event.data.from, f.event.data.to, f.event.data.reason]), [[[mona!.amid], bob!.amid, 'degraded', 'offline', 'silent']])
  })

  it('health - a change seen on one relay node reaches a master connected to another (backplane)', async (t) => {
    const key = 'operator-key-0123456789abcdef'
    const store = memoryStore()
    const backplane = inProcessBackplane()
    const shared = { ...store, close: async () => {} }
    const one = await startRelay({ apiKey: key }, { store: shared, backplane })
    const two = await startRelay({ apiKey: key }, { store: shared, backplane })
    t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
    const monaId = createIdentity('mona')
    await store.upsertAgent({ amid: monaId.amid, seenAt: Date.now() })
    await store.setRole(monaId.amid, 'master')
    const mona = await rawAgent(two.wsUrl, monaId)
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { mona.close(); alice.close() })
    await mona.auth()
    await alice.auth()
    const heard = (): Json[] => mona.frames.filter(f => f.op === 'event' && f.event.type === 'agent_health_change').map(f => f.event.data as Json)
    // mona's presence reaches node one through the backplane: heartbeat (changing status) until she hears one
    let n = 0
    await waitFor(async () => {
      const r = await fetch(`${one.url}/api/agents/${alice.id.amid}/heartbeat`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ status: n++ % 2 === 0 ? 'degraded' : 'healthy' }) })
      assert.equal(r.status, 200)
      return heard().length > 0
    }, 'the master on the other node to hear a health change')
    assert.equal(heard().at(-1)!.agentId, alice.id.amid)
    assert.equal(heard().at(-1)!.reason, 'heartbeat')
  })

  it('health - the dashboard is for wardens and masters, pages by AMID, and carries the catastrophe summary it is given', async (t) => {
    const last = { eventId: 'ev-1', eventType: 'server_down', severity: 'critical', title: 'relay restarted' }
    const h = await setup(t, ['a1', 'a2', 'a3'], {}, { catastropheSummary: async () => ({ critical: 2, last }) })
    const [a1] = h.ids
    const no = await h.call(a1, 'GET', '/api/v1/health/dashboard')
    assert.equal(no.status, 403)
    assert.equal(no.body.error.code, ErrorCode.Forbidden)
    const p1 = (await h.call('operator', 'GET', '/api/v1/health/dashboard?limit=2')).body
    assert.equal(p1.agentList.length, 2)
    assert.deepEqual([p1.criticalEvents, p1.lastCatastrophe], [2, last])
    const p2 = (await h.call('operator', 'GET', `/api/v1/health/dashboard?limit=2&after=${p1.nextAfter as string}`)).body
    assert.equal(p2.agentList.length, 1)
    assert.equal(p2.nextAfter, undefined)
    const all = [...p1.agentList, ...p2.agentList].map((a: Json) => a.amid)
    assert.deepEqual(all, h.ids.map(i => i.amid).sort())
    assert.equal((await h.call('operator', 'GET', '/api/v1/health/dashboard?limit=0')).body.error.code, ErrorCode.InvalidArgument)
  })
})

/** The Prometheus text parsed by a parser of its own (parse-prometheus-text-format): families by name. */
interface Family { name: string, help: string, type: string, metrics: Array<{ value?: string, labels?: Record<string, string>, buckets?: Record<string, string>, count?: string, sum?: string }> }
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[]
function families (text: string): Map<string, Family> { return new Map(parsePrometheus(text).map(f => [f.name, f])) }
const valueOf = (f: Family | undefined, labels: Record<string, string> = {}): number | undefined => {
  const m = f?.metrics.find(x => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
  return m?.value === undefined ? undefined : Number(m.value)
}

describe('health - GET /metrics', () => {
  it('metrics - Prometheus text with the figures the relay counted: core counters, commit times, acks, errors by code, inbox depth, heartbeats', async (t) => {
    const h = await setup(t, ['alice', 'bob'])
    const [alice, bob] = h.ids
    Object.assign(h.stats, { connections: 3, agentsOnline: 2, received: 41, delivered: 40, duplicates: 1, commits: 9 })
    h.events.emit('store:committed', { seconds: 0.0004, items: 2, acks: 3 })
    h.events.emit('store:committed', { seconds: 0.02, items: 1, acks: 4 })
    await h.store.commit([{ sender: alice!.amid, id: 'm1', recipient: bob!.amid, envelope: '{}', receivedAt: T0 }, { sender: alice!.amid, id: 'm2', recipient: bob!.amid, envelope: '{}', receivedAt: T0 }], [])
    assert.equal((await h.call(alice, 'GET', '/nope')).status, 404)
    assert.equal((await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy', { cpuUsage: 500 }))).status, 400)
    await h.call(alice, 'POST', `/api/v1/agents/${alice!.amid}/heartbeat`, beat('healthy'))
    await h.call(bob, 'POST', `/api/v1/agents/${bob!.amid}/heartbeat`, beat('degraded'))
    h.events.emit('error:answered', { code: ErrorCode.InboxFull, via: 'ws' })

    const res = await h.call('operator', 'GET', '/metrics')
    assert.equal(res.status, 200, res.text)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const f = families(res.text)
    assert.equal(f.get('agentmesh_connections')?.type, 'GAUGE')
    assert.equal(valueOf(f.get('agentmesh_connections')), 3)
    assert.equal(valueOf(f.get('agentmesh_agents_online')), 2)
    assert.equal(f.get('agentmesh_messages_received_total')?.type, 'COUNTER')
    assert.equal(valueOf(f.get('agentmesh_messages_received_total')), 41)
    assert.equal(valueOf(f.get('agentmesh_messages_delivered_total')), 40)
    assert.equal(valueOf(f.get('agentmesh_messages_duplicate_total')), 1)
    assert.equal(valueOf(f.get('agentmesh_store_commits_total')), 9)
    assert.equal(valueOf(f.get('agentmesh_acks_total')), 7)
    const commit = f.get('agentmesh_store_commit_seconds')
    assert.equal(commit?.type, 'HISTOGRAM')
    assert.equal(commit?.metrics[0]?.count, '2')
    assert.equal(commit?.metrics[0]?.buckets?.['0.0005'], '1')
    assert.equal(commit?.metrics[0]?.buckets?.['0.025'], '2')
    assert.equal(valueOf(f.get('agentmesh_inbox_pending_messages')), 2)
    assert.equal(valueOf(f.get('agentmesh_agents_registered')), 2)
    const errors = f.get('agentmesh_errors_total')
    assert.equal(valueOf(errors, { code: ErrorCode.NotFound, via: 'rest' }), 1)
    assert.equal(valueOf(errors, { code: ErrorCode.InvalidMetric, via: 'rest' }), 1)
    assert.equal(valueOf(errors, { code: ErrorCode.InboxFull, via: 'ws' }), 1)
    assert.equal(valueOf(f.get('agentmesh_heartbeats_total')), 2)
    assert.equal(valueOf(f.get('agentmesh_agents_health'), { status: 'healthy' }), 1)
    assert.equal(valueOf(f.get('agentmesh_agents_health'), { status: 'degraded' }), 1)
    assert.equal(valueOf(f.get('agentmesh_health_changes_total'), { to: 'degraded' }), 1)
    assert.ok(!res.text.includes(alice!.amid), 'no label carries an AMID')

    // counters read at each scrape go on from where they were
    h.stats.received = 50
    assert.equal(valueOf(families((await h.call('operator', 'GET', '/metrics')).text).get('agentmesh_messages_received_total')), 50)
  })

  it('metrics - read by the operator, a master agent or the metrics token; refused to workers and strangers', async (t) => {
    const token = 'scrape-token-0123456789abcdef'
    const h = await setup(t, ['alice', 'mona'], { metricsToken: token })
    const [alice, mona] = h.ids
    await h.store.setRole(mona!.amid, 'master')
    assert.equal((await h.call(undefined, 'GET', '/metrics')).status, 401)
    const worker = await h.call(alice, 'GET', '/metrics')
    assert.equal(worker.status, 403)
    assert.equal(worker.body.error.code, ErrorCode.Forbidden)
    assert.equal((await h.call(mona, 'GET', '/metrics')).status, 200)
    const scraper = await h.call(undefined, 'GET', '/metrics', undefined, { authorization: `Bearer ${token}` })
    assert.equal(scraper.status, 200)
    assert.ok(families(scraper.text).has('agentmesh_connections'))
    assert.equal((await h.call(undefined, 'GET', '/metrics', undefined, { authorization: `Bearer ${token}x` })).status, 401)
  })

  it('metrics - a feature registers its own figures; names are checked', async (t) => {
    const h = await setup(t, [])
    let files = 5
    h.metrics.gauge('agentmesh_files_stored', 'Files stored', () => files)
    h.metrics.counter('agentmesh_updates_created_total', 'System updates created', async () => 2)
    h.metrics.gauge('agentmesh_updates_acks', 'Acks by status', () => [{ labels: { status: 'accepted' }, value: 3 }, { labels: { status: 'pending' }, value: 1 }], ['status'])
    assert.throws(() => { h.metrics.gauge('files_stored', 'x', () => 1) }, RangeError)
    assert.throws(() => { h.metrics.counter('agentmesh_events', 'x', () => 1) }, /ends with _total/)
    files = 6
    const f = families((await h.call('operator', 'GET', '/metrics')).text)
    assert.equal(valueOf(f.get('agentmesh_files_stored')), 6)
    assert.equal(valueOf(f.get('agentmesh_updates_created_total')), 2)
    assert.equal(valueOf(f.get('agentmesh_updates_acks'), { status: 'accepted' }), 3)
    assert.equal(valueOf(f.get('agentmesh_updates_acks'), { status: 'pending' }), 1)
  })

  it('metrics - a real relay counts what its core did: messages in and out, commits and their times, acks, inbox depth, WebSocket errors by code', async (t) => {
    const key = 'operator-key-0123456789abcdef'
    const relay = await startRelay({ apiKey: key })
    t.after(async () => { await relay.close() })
    const a = await rawAgent(relay.wsUrl)
    const b = await rawAgent(relay.wsUrl)
    t.after(() => { a.close(); b.close() })
    await a.auth()
    await b.auth()
    for (let i = 0; i < 3; i++) {
      a.send({ op: 'send', env: a.envelope(b.id.amid, `m${i}`) })
      await a.next(f => f.op === 'ack')
    }
    const got = await b.collect(f => f.op === 'deliver', 3)
    b.send({ op: 'cursor', seq: got[1]!.seq })
    await b.barrier()
    a.sendRaw('{not json')
    await a.next(f => f.op === 'error')
    const scrape = async (): Promise<Map<string, Family>> => families(await (await fetch(`${relay.url}/metrics`, { headers: { 'x-api-key': key } })).text())
    let f = await scrape()
    for (let i = 0; i < 50 && valueOf(f.get('agentmesh_acks_total')) !== 1; i++) { await new Promise(resolve => setTimeout(resolve, 20)); f = await scrape() }
    assert.equal(valueOf(f.get('agentmesh_connections')), 2)
    assert.equal(valueOf(f.get('agentmesh_messages_received_total')), 3)
    assert.equal(valueOf(f.get('agentmesh_messages_delivered_total')), 3)
    assert.equal(valueOf(f.get('agentmesh_acks_total')), 1, 'the cursor ack, committed')
    assert.equal(valueOf(f.get('agentmesh_inbox_pending_messages')), 1, 'two of three acknowledged')
    const commits = valueOf(f.get('agentmesh_store_commits_total'))!
    assert.ok(commits >= 4, `${commits} commits`)
    assert.equal(Number(f.get('agentmesh_store_commit_seconds')?.metrics[0]?.count), commits, 'one commit time per commit')
    assert.equal(valueOf(f.get('agentmesh_errors_total'), { code: ErrorCode.BadJson, via: 'ws' }), 1)
  })

  it('health - /metrics counts the operations writes by action, the open catastrophe events and the active updates', async (t: TestContext) => {
    const key = 'operator-key-for-ops-metrics-0123456789'
    const relay = await startRelay({ apiKey: key })
    t.after(async () => { await relay.close() })
    const op = async (method: string, path: string, body?: unknown): Promise<Json> => {
      const res = await fetch(`${relay.url}${path}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      assert.ok(res.status < 300, `${method} ${path}: ${res.status}`)
      return await res.json() as Json
    }
    const scrape = async (): Promise<Map<string, Family>> => families(await (await fetch(`${relay.url}/metrics`, { headers: { 'x-api-key': key } })).text())
    let f = await scrape()
    assert.equal(valueOf(f.get('agentmesh_updates_active')), 0)
    assert.equal(valueOf(f.get('agentmesh_catastrophes_open'), { severity: 'any' }), 0)
    await op('POST', '/api/updates', { version: '1.2.0', updateType: 'feature', title: 'Threads' })
    await op('POST', '/api/updates', { version: '1.3.0', updateType: 'api', title: 'Old one', expiresAt: Date.now() + 3_600_000 })
    const critical = await op('POST', '/api/catastrophe', { eventType: 'db_corruption', severity: 'critical', title: 'pages gone' })
    await op('POST', '/api/catastrophe', { eventType: 'api_crash', severity: 'minor', title: '500s' })
    f = await scrape()
    assert.equal(valueOf(f.get('agentmesh_operations_total'), { action: 'update.create' }), 2)
    assert.equal(valueOf(f.get('agentmesh_operations_total'), { action: 'catastrophe.report' }), 2)
    assert.equal(valueOf(f.get('agentmesh_updates_active')), 2)
    assert.equal(valueOf(f.get('agentmesh_catastrophes_open'), { severity: 'any' }), 2)
    assert.equal(valueOf(f.get('agentmesh_catastrophes_open'), { severity: 'critical' }), 1)
    await op('POST', `/api/catastrophe/${critical.eventId as string}/resolve`, { resolutionNotes: 'restored' })
    f = await scrape()
    assert.equal(valueOf(f.get('agentmesh_operations_total'), { action: 'catastrophe.resolve' }), 1)
    assert.equal(valueOf(f.get('agentmesh_catastrophes_open'), { severity: 'any' }), 1)
    assert.equal(valueOf(f.get('agentmesh_catastrophes_open'), { severity: 'critical' }), 0)
  })
})
