/**
 * `ops(conn)`: the operations helpers gathered for one connection (docs/protocol.md §18–§21). An
 * agent hears a system update and acknowledges it, hears a catastrophe alert, heartbeats, and
 * shares a file with another agent, all through the one object, which is the same for the same
 * connection.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ops, type CatastropheAlert, type SystemUpdate } from '@agentmesh/client'
import { startRelay, waitFor } from '@agentmesh/testing'
import { sdkHarness } from './sdk-fixtures.ts'

const API_KEY = 'operator-key-for-sdk-ops-tests-0123456'

describe('sdk - ops(conn)', () => {
  const h = sdkHarness()
  const dir = mkdtempSync(join(tmpdir(), 'am-ops-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('sdk ops - one object per connection: updates with their acks, catastrophe alerts, heartbeats and files', async () => {
    const relay = await startRelay({ apiKey: API_KEY })
    h.relays.push(relay)
    const operator = (path: string, body: unknown, method = 'POST'): Promise<Response> =>
      fetch(`${relay.url}${path}`, { method, headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const alice = await h.open(relay, h.agent('alice'))
    const bob = await h.open(relay, h.agent('bob'))
    const o = ops(alice)
    assert.equal(ops(alice), o, 'the same helpers for the same connection')
    assert.notEqual(ops(bob), o)

    const told: SystemUpdate[] = []
    const alerts: CatastropheAlert[] = []
    o.onUpdate((u) => { told.push(u) })
    o.onCatastrophe((a) => { alerts.push(a) })

    const { updateId } = await (await operator('/api/updates', { version: '2.1.0', updateType: 'feature', title: 'Threads' })).json() as { updateId: string }
    await waitFor(() => told.length === 1, 'the system update')
    assert.deepEqual([told[0]!.updateId, told[0]!.title, told[0]!.status], [updateId, 'Threads', 'pending'])
    const ack = await o.acknowledge(updateId, 'accepted', { notes: 'rolling out' })
    assert.deepEqual([ack.status, ack.agentId, ack.notes], ['accepted', alice.amid, 'rolling out'])
    const view = await (await fetch(`${relay.url}/api/updates/${updateId}/acknowledgments`, { headers: { 'x-api-key': API_KEY } })).json() as { counts: Record<string, number> }
    assert.deepEqual(view.counts, { pending: 1, accepted: 1, rejected: 0, completed: 0 })

    const { eventId } = await (await operator('/api/catastrophe', { eventType: 'network_partition', severity: 'major', title: 'rack 3 unreachable' })).json() as { eventId: string }
    await waitFor(() => alerts.length === 1, 'the catastrophe alert')
    assert.deepEqual([alerts[0]!.eventId, alerts[0]!.eventType, alerts[0]!.status], [eventId, 'network_partition', 'reported'])

    const beat = await o.heartbeat({ status: 'degraded', customMetrics: { queue: 12 } })
    assert.equal(beat.status, 'degraded')
    const seen = await (await fetch(`${relay.url}/api/agents/${alice.amid}/health`, { headers: { 'x-api-key': API_KEY } })).json() as { status: string, lastHeartbeat: { customMetrics: Record<string, number> } }
    assert.deepEqual([seen.status, seen.lastHeartbeat.customMetrics], ['degraded', { queue: 12 }])

    const up = await o.files.upload(Buffer.from('report body'), { filename: 'report.txt', type: 'text/plain', sharedWith: [bob.amid] })
    const out = join(dir, 'report.txt')
    await ops(bob).files.download(up.fileId, { to: out })
    assert.equal(readFileSync(out, 'utf8'), 'report body')
  })
})
