/**
 * The global room read by cursor (docs/protocol.md §6.1): an agent whose auth declares
 * "room-cursor" gets a membership row in `global` (its cursor starting at the room's last seq) and
 * reads the room from its log like any other room; no inbox copy is stored for it. Agents without
 * the feature (agentmesh/0.2 clients) keep their inbox copies. The global room's member count and
 * presence are every agent's, as before.
 *
 * Nothing here measures time: every wait is bounded by `collect`/`waitFor`, and "nothing more
 * arrived" is checked after a ping barrier (every frame written before the pong has arrived).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createIdentity } from '@agentmesh/crypto'
import { rawAgent, startRelay, tempDir, waitFor, type RawAgent } from '@agentmesh/testing'
import { FEATURES, agent, errorsOf, inboxDeliveries, post, rest, roomDeliveries, start, type Frame } from './room-cursor-fixtures.ts'

const globalDeliveries = (a: RawAgent): Frame[] => roomDeliveries(a, 'global')
const postGlobal = async (from: RawAgent, n: number, tag = 'g'): ReturnType<typeof post> => await post(from, n, 'global', tag)

describe('the global room read by cursor', () => {
  it('global cursor - agents with the feature get every global message in order from the log, no inbox copy; one without gets inbox copies; the room still counts every agent', async (t) => {
    const relay = await start(t)
    const alice = await agent(t, relay)
    const readers = [await agent(t, relay), await agent(t, relay), await agent(t, relay)]
    const old = await agent(t, relay, createIdentity(), {})
    assert.equal(old.welcome.rooms, undefined)
    for (const r of [alice, ...readers]) assert.deepEqual(r.welcome.rooms, { global: 0 })
    const envs = await postGlobal(alice, 30)
    for (const r of readers) {
      const ds = await r.collect(f => f.op === 'deliver', 30)
      assert.deepEqual(ds, envs.map((env, i) => ({ op: 'deliver', room: 'global', seq: i + 1, env })))
      r.send({ op: 'cursor', room: 'global', seq: 30 })
    }
    for (const r of readers) {
      await waitFor(async () => (await relay.store.roomFeed('global', r.id.amid))?.cursor === 30, 'the global cursor to be committed')
      assert.deepEqual(await relay.store.inbox(r.id.amid), { cursor: 0, lastSeq: 0, pending: 0 }, 'no inbox copy')
      await r.barrier()
      assert.equal(r.frames.filter(f => f.op === 'deliver').length, 30)
      assert.deepEqual(errorsOf(r), [])
    }
    // the agent without the feature: inbox copies, in order
    const copies = await old.collect(f => f.op === 'deliver', 30)
    assert.deepEqual(copies.map(d => d.env.id), envs.map(e => e.id))
    assert.deepEqual(globalDeliveries(old), [])
    assert.equal((await relay.store.inbox(old.id.amid)).lastSeq, 30)
    // the sender is not sent its own
    await alice.barrier()
    assert.deepEqual(alice.frames.filter(f => f.op === 'deliver'), [])
    // the global room is every agent's, as before: 5, not the 4 with a membership row
    const info = await rest(relay, alice.id, 'GET', '/api/v1/rooms/global')
    assert.equal(info.members, 5)
    assert.equal(info.joined, true)
    const oldInfo = await rest(relay, old.id, 'GET', '/api/v1/rooms/global')
    assert.equal(oldInfo.joined, true)
  })

  it('global cursor - a reconnect resumes from the stored cursor; an existing cursor does not move at auth; back to inbox, what was not read is copied', async (t) => {
    const relay = await start(t)
    const alice = await agent(t, relay)
    const bobId = createIdentity()
    const bob = await agent(t, relay, bobId)
    const envs = await postGlobal(alice, 10)
    await bob.collect(f => f.op === 'deliver', 10)
    bob.send({ op: 'cursor', room: 'global', seq: 4 })
    await waitFor(async () => (await relay.store.roomFeed('global', bobId.amid))?.cursor === 4, 'cursor 4 committed')
    bob.close()
    envs.push(...await postGlobal(alice, 5, 'late'))
    const bob2 = await agent(t, relay, bobId)
    assert.deepEqual(bob2.welcome.rooms, { global: 4 }, 'the cursor it had, not the room\'s last seq')
    const ds = await bob2.collect(f => f.op === 'deliver', 11)
    assert.deepEqual(ds.map(d => [d.room, d.seq, d.env.id]), envs.slice(4).map((e, i) => ['global', i + 5, e.id]))
    bob2.send({ op: 'cursor', room: 'global', seq: 12 })
    await waitFor(async () => (await relay.store.roomFeed('global', bobId.amid))?.cursor === 12, 'cursor 12 committed')
    assert.deepEqual(await relay.store.inbox(bobId.amid), { cursor: 0, lastSeq: 0, pending: 0 })
    bob2.close()
    // an old client of the same agent: 13..15 (not read) are copied into its inbox, then new ones too
    const old = await agent(t, relay, bobId, {})
    const copied = await old.collect(f => f.op === 'deliver', 3)
    assert.deepEqual(copied.map(d => [d.room, d.env.id]), envs.slice(12).map(e => [undefined, e.id]))
    const [next] = await postGlobal(alice, 1, 'next')
    const more = await old.collect(f => f.op === 'deliver', 4)
    assert.deepEqual(more[3]!.env.id, next!.id)
    assert.equal(more[3]!.room, undefined)
    old.send({ op: 'cursor', seq: 4 })
    await waitFor(async () => (await relay.store.inbox(bobId.amid)).cursor === 4, 'the inbox cursor')
    old.close()
    // and back to cursor: it starts at the global room's last seq (what came before is in its inbox)
    const again = await agent(t, relay, bobId)
    assert.deepEqual(again.welcome.rooms, { global: 16 })
    const [last] = await postGlobal(alice, 1, 'last')
    assert.deepEqual(await again.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', room: 'global', seq: 17, env: last }])
    await again.barrier()
    assert.deepEqual(inboxDeliveries(again), [])
  })

  it('global cursor - a SQLite relay restarted: a reader resumes its backlog of the global room from its cursor, with no inbox copy', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const [aliceId, bobId] = [createIdentity(), createIdentity()]
    const relay1 = await startRelay({ dataDir: dir.path })
    const alice = await rawAgent(relay1.wsUrl, aliceId)
    await alice.auth(FEATURES)
    const bob = await rawAgent(relay1.wsUrl, bobId)
    await bob.auth(FEATURES)
    const envs = await postGlobal(alice, 6)
    await bob.collect(f => f.op === 'deliver', 6)
    bob.send({ op: 'cursor', room: 'global', seq: 2 })
    await waitFor(async () => (await relay1.store.roomFeed('global', bobId.amid))?.cursor === 2, 'cursor 2 committed')
    await relay1.close()
    alice.close()
    bob.close()

    const relay2 = await start(t, { dataDir: dir.path, memory: false })
    const alice2 = await agent(t, relay2, aliceId)
    envs.push(...await postGlobal(alice2, 2, 'after'))
    const bob2 = await agent(t, relay2, bobId)
    assert.deepEqual(bob2.welcome.rooms, { global: 2 })
    const ds = await bob2.collect(f => f.op === 'deliver', 6)
    assert.deepEqual(ds, envs.slice(2).map((env, i) => ({ op: 'deliver', room: 'global', seq: i + 3, env })))
    await bob2.barrier()
    assert.deepEqual(inboxDeliveries(bob2), [])
    assert.deepEqual(await relay2.store.inbox(bobId.amid), { cursor: 0, lastSeq: 0, pending: 0 })
  })
})
