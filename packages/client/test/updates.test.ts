/**
 * The SDK's system updates (docs/protocol.md §19): a connection reports its agent version (the
 * SDK's by default), `updates(conn).onUpdate` gets the `system_update` events (also for an update
 * created while the agent was offline, at its next connect), `acknowledge` answers, `list`, `get`,
 * `acks` and a master's `create` are signed REST calls; a connection below a breaking update's
 * required version is refused past the deadline with the relay's code.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { connect, memoryState, SDK_VERSION, updates, type SystemUpdate } from '@agentmesh/client'
import { createIdentity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { startRelay, waitFor } from '@agentmesh/testing'
import { sdkHarness } from './sdk-fixtures.ts'

const API_KEY = 'operator-key-for-sdk-update-tests-0123'

describe('sdk - system updates', () => {
  const h = sdkHarness()

  it('sdk - SDK_VERSION is the package\'s version; a bad agentVersion is refused before connecting', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(SDK_VERSION, pkg.version)
    await assert.rejects(connect({ server: 'ws://127.0.0.1:1', identity: createIdentity(), state: memoryState(), agentVersion: '1.0 beta' }),
      (err: unknown) => AgentMeshError.is(err) && err.code === ErrorCode.InvalidArgument && /agentVersion must be a version such as "1.4.0"/.test(err.message))
  })

  it('sdk - onUpdate gets an update created while offline at connect, acknowledge answers it, and the adoption view shows the reported version', async () => {
    const relay = await startRelay({ apiKey: API_KEY })
    h.relays.push(relay)
    const master = h.agent('master')
    const m = await h.open(relay, master)
    await fetch(`${relay.url}/api/v1/agents/${master.id.amid}/role`, { method: 'PUT', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'master' }) })
    const bob = h.agent('bob')
    const first = await h.open(relay, bob)
    await first.close()
    const { updateId, broadcast } = await updates(m).create({ version: '1.1.0', updateType: 'feature', title: 'Polls', announcement: '# Polls' })
    assert.equal(broadcast, true)
    // bob was offline: told at connect, with the default version (the SDK's)
    const b = await h.open(relay, bob)
    const got: SystemUpdate[] = []
    updates(b).onUpdate((u) => { got.push(u) })
    await waitFor(() => got.length === 1, 'bob to be told of the update')
    assert.equal(got[0]!.updateId, updateId)
    assert.equal(got[0]!.title, 'Polls')
    assert.equal(got[0]!.status, 'pending')
    assert.equal(got[0]!.announcement, '# Polls')
    const ack = await updates(b).acknowledge(updateId, 'completed', { notes: 'done', agentVersion: '1.1.0' })
    assert.deepEqual({ ...ack, updatedAt: 0 }, { updateId, agentId: bob.id.amid, status: 'completed', agentVersion: '1.1.0', notes: 'done', updatedAt: 0 })
    const view = await updates(m).acks(updateId)
    assert.deepEqual(view.counts, { pending: 1, accepted: 0, rejected: 0, completed: 1 })
    assert.deepEqual(view.notAnswered, [master.id.amid])
    assert.deepEqual(view.versions, { [SDK_VERSION]: 1, '1.1.0': 1 })
    assert.deepEqual((await updates(b).list({ activeOnly: true })).map(u => u.updateId), [updateId])
    assert.equal((await updates(b).get(updateId)).title, 'Polls')
    await assert.rejects(updates(b).create({ version: '9.0.0', updateType: 'api', title: 'nope' }), (err: unknown) => AgentMeshError.is(err) && err.code === ErrorCode.Forbidden)
  })

  it('sdk - a connection below a breaking update\'s required version is refused after the deadline with AM_ERR_UPDATE_REQUIRED', async () => {
    const clock = { t: Date.now() }
    const relay = await startRelay({ apiKey: API_KEY }, { now: () => clock.t })
    h.relays.push(relay)
    const carol = h.agent('carol')
    const peer = h.agent('peer')
    const p = await h.open(relay, peer)
    const c = await h.open(relay, carol, { agentVersion: '0.9.0' })
    const warned: SystemUpdate[] = []
    updates(c).onUpdate((u) => { warned.push(u) })
    const res = await fetch(`${relay.url}/api/updates`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '1.0.0', updateType: 'api', title: 'v1', breakingChange: true, requiredVersion: '1.0.0', enforceAt: clock.t + 60_000 }),
    })
    assert.equal(res.status, 201)
    await waitFor(() => warned.length === 1, 'carol to be warned')
    assert.equal(warned[0]!.belowRequired, true)
    assert.equal(warned[0]!.requiredVersion, '1.0.0')
    await c.send(peer.id.amid, { text: 'before the deadline' })
    clock.t += 60_000
    await assert.rejects(c.send(peer.id.amid, { text: 'after the deadline' }),
      (err: unknown) => AgentMeshError.is(err) && err.code === ErrorCode.UpdateRequired && /requires agent version 1\.0\.0 or later/.test(err.message) && /runs 0\.9\.0/.test(err.message))
    await p.send(carol.id.amid, { text: 'the default version (the SDK\'s) meets 1.0.0? no: 0.2.0 is below' }).then(
      () => { assert.fail('0.2.0 is below 1.0.0') },
      (err: unknown) => { assert.ok(AgentMeshError.is(err) && err.code === ErrorCode.UpdateRequired) },
    )
  })
})
