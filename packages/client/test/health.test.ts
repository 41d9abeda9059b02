/**
 * The SDK's agent health over real sockets (docs/protocol.md §21): periodic heartbeats with the
 * process figures and the agent's own metrics, agent_health_change events reaching a master, the
 * fleet dashboard, heartbeats skipped (not queued) while the relay is away, and /metrics counting
 * what happened.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { health, type BeatOutcome, type Connection } from '@agentmesh/client'
import { ErrorCode, type RelayEvent } from '@agentmesh/protocol'
import { startRelay, waitFor } from '@agentmesh/testing'
import { sdkHarness } from './sdk-fixtures.ts'

const API_KEY = 'operator-key-0123456789abcdef'
type Json = Record<string, any>

function collect (conn: Connection): RelayEvent[] {
  const got: RelayEvent[] = []
  void (async () => { for await (const e of conn.events()) got.push(e) })()
  return got
}
const healthEvents = (events: RelayEvent[]): Json[] => events.filter(e => e.type === 'agent_health_change').map(e => (e as { data: Json }).data)

describe('sdk - agent health', () => {
  const { relays, agent, open } = sdkHarness()

  it('sdk health - periodic heartbeats carry the process figures and the agent\'s metrics; a master hears the changes and reads the fleet', async () => {
    const relay = await startRelay({ apiKey: API_KEY })
    relays.push(relay)
    const alice = agent('alice')
    const mona = agent('mona')
    await relay.store.upsertAgent({ amid: mona.id.amid, seenAt: Date.now() })
    await relay.store.setRole(mona.id.amid, 'master')
    const m = await open(relay, mona)
    const heard = collect(m)
    const a = await open(relay, alice)

    const outcomes: BeatOutcome[] = []
    let queue = 3
    const h = health(a)
    h.start({ intervalMs: 40, metrics: () => ({ status: queue > 10 ? 'degraded' : 'healthy', customMetrics: { queue } }), onBeat: (o) => { outcomes.push(o) } })
    assert.equal(h.running, true)
    await waitFor(() => outcomes.filter(o => o.type === 'sent').length >= 3, 'three heartbeats')
    const stored = await relay.store.getHeartbeat(alice.id.amid)
    assert.equal(stored?.status, 'healthy')
    assert.deepEqual(stored?.customMetrics, { queue: 3 })
    assert.ok(stored!.memoryUsage! > 1_000_000, 'resident memory in bytes')
    assert.ok(stored!.cpuUsage! >= 0 && stored!.cpuUsage! <= 100)
    assert.ok(stored!.uptimeSeconds! > 0)
    assert.deepEqual(outcomes.filter(o => o.type === 'failed'), [])

    await waitFor(() => healthEvents(heard).length >= 1, 'the master to hear alice turn healthy')
    assert.deepEqual(healthEvents(heard).map(d => [d.agentId, d.from, d.to]), [[alice.id.amid, 'unknown', 'healthy']], 'one event for many heartbeats')

    queue = 50
    await waitFor(() => healthEvents(heard).length >= 2, 'the master to hear alice degrade')
    assert.deepEqual(healthEvents(heard).at(-1), { ...healthEvents(heard).at(-1), agentId: alice.id.amid, from: 'healthy', to: 'degraded', reason: 'heartbeat' })

    const dash = await health(m).dashboard()
    assert.equal(dash.degraded, 1)
    assert.equal(dash.unknown, 1, 'mona is connected without heartbeats')
    assert.equal(dash.totalAgents, 2)
    const mine = await health(a).get()
    assert.equal(mine.status, 'degraded')
    assert.equal(mine.connected, true)
    await assert.rejects(health(a).dashboard(), { code: ErrorCode.Forbidden })

    // one heartbeat by hand, with a status of its own
    const one = await h.heartbeat({ status: 'unhealthy', customMetrics: { reason: 'disk full' } })
    assert.equal(one.status, 'unhealthy')
    await assert.rejects(h.heartbeat({ cpuUsage: 150 }), { code: ErrorCode.InvalidMetric })

    // /metrics counted what happened
    const text = await (await fetch(`${relay.url}/metrics`, { headers: { 'x-api-key': API_KEY } })).text()
    const families = new Map((createRequire(import.meta.url)('parse-prometheus-text-format') as (t: string) => Json[])(text).map(f => [f.name, f]))
    assert.ok(Number(families.get('agentmesh_heartbeats_total')?.metrics[0].value) >= 4)
    assert.equal(Number(families.get('agentmesh_connections')?.metrics[0].value), 2)
    assert.ok(Number(families.get('agentmesh_store_commit_seconds')?.metrics[0].count) >= 0)
    assert.equal(Number(families.get('agentmesh_errors_total')?.metrics.find((x: Json) => x.labels.code === ErrorCode.InvalidMetric)?.value), 1)

    // alice leaves: offline at once, told to the master
    h.stop()
    assert.equal(h.running, false)
    await a.close()
    await waitFor(() => healthEvents(heard).some(d => d.to === 'offline'), 'the master to hear alice go offline')
    assert.equal(healthEvents(heard).at(-1)?.reason, 'disconnected')
  })

  it('sdk health - while the relay is away heartbeats are skipped, not queued; they resume when it is back', async () => {
    const relay = await startRelay({ apiKey: API_KEY })
    const port = relay.port
    relays.push(relay)
    const bob = agent('bob')
    const b = await open(relay, bob)
    const outcomes: BeatOutcome[] = []
    const h = health(b)
    h.start({ intervalMs: 30, onBeat: (o) => { outcomes.push(o) } })
    await waitFor(() => outcomes.some(o => o.type === 'sent'), 'a heartbeat')
    await relay.close()
    await waitFor(() => outcomes.filter(o => o.type === 'skipped' && o.reason === 'disconnected').length >= 3, 'heartbeats skipped while the relay is away')
    const again = await startRelay({ apiKey: API_KEY, port })
    relays.push(again)
    const before = outcomes.length
    await waitFor(() => outcomes.slice(before).some(o => o.type === 'sent'), 'a heartbeat once the relay is back')
    h.stop()
    assert.equal((await again.store.getHeartbeat(bob.id.amid))?.status, 'healthy')
    assert.equal(b.pendingSends, 0, 'nothing was queued in the outbox')
  })
})
