/**
 * Rooms read by cursor (fan-out on read, docs/protocol.md §6.1), spoken with raw frames: a room
 * message is stored once; members whose auth declares "room-cursor" get
 * {"op":"deliver","room","seq","env"} from the room's log and acknowledge with
 * {"op":"cursor","room","seq"}; members without it (agentmesh/0.2 clients) get inbox copies as before.
 *
 * Nothing here measures time: every wait is bounded by `collect`/`waitFor`, and "nothing more
 * arrived" is checked after a ping barrier (every frame written before the pong has arrived).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { rawAgent, spawnRelay, startRelay, tempDir, waitFor } from '@agentmesh/testing'
import { FEATURES, agent, errorsOf, inboxDeliveries, post, rest, roomDeliveries, start } from './room-cursor-fixtures.ts'

/** A public room "ops" owned by `owner`, joined by `members` (each registered first, by connecting once with the feature). */
async function opsRoom (relay: { url: string, wsUrl: string }, owner: Identity, members: Identity[]): Promise<void> {
  for (const id of [owner, ...members]) {
    const a = await rawAgent(relay.wsUrl, id)
    assert.equal((await a.auth(FEATURES)).op, 'welcome')
    a.close()
  }
  await rest(relay, owner, 'POST', '/api/v1/rooms', { id: 'ops', kind: 'public' })
  for (const m of members) await rest(relay, m, 'POST', '/api/v1/rooms/ops/join')
}

describe('rooms read by cursor (fan-out on read)', () => {
  it('room cursor - three members get every message once, in room seq order, from one stored copy; their cursors are durable', async (t) => {
    const relay = await start(t)
    const [aliceId, bobId, carolId, daveId] = [createIdentity(), createIdentity(), createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId, carolId, daveId])
    const alice = await agent(t, relay, aliceId)
    const members = [await agent(t, relay, bobId), await agent(t, relay, carolId), await agent(t, relay, daveId)]
    for (const m of members) assert.deepEqual(m.welcome.rooms, { global: 0, ops: 0 })
    const envs = await post(alice, 25)
    for (const m of members) {
      const ds = await m.collect(f => f.op === 'deliver', 25)
      assert.deepEqual(ds, envs.map((env, i) => ({ op: 'deliver', room: 'ops', seq: i + 1, env })))
      m.send({ op: 'cursor', room: 'ops', seq: 25 })
    }
    for (const m of members) {
      await waitFor(async () => (await relay.store.roomFeed('ops', m.id.amid))?.cursor === 25, 'the room cursor to be committed')
      // no inbox copy was made
      assert.deepEqual(await relay.store.inbox(m.id.amid), { cursor: 0, lastSeq: 0, pending: 0 })
      await m.barrier()
      assert.equal(m.frames.filter(f => f.op === 'deliver').length, 25)
      assert.deepEqual(errorsOf(m), [])
    }
    // the sender is not sent its own messages: its cursor passes over them
    await waitFor(async () => (await relay.store.roomFeed('ops', aliceId.amid))?.cursor === 25, 'the sender\'s cursor passes its own messages')
    const [reply] = await post(members[0]!, 1, 'ops', 'reply')
    assert.deepEqual(await alice.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', room: 'ops', seq: 26, env: reply }])
    await alice.barrier()
    assert.equal(alice.frames.filter(f => f.op === 'deliver').length, 1, 'the sender got nothing of its own back')
  })

  it('room cursor - after a reconnect the backlog comes from the log after the stored cursor, or after what auth.rooms says was processed', async (t) => {
    const relay = await start(t)
    const [aliceId, bobId] = [createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId])
    const alice = await agent(t, relay, aliceId)
    const bob = await agent(t, relay, bobId)
    const envs = await post(alice, 10)
    await bob.collect(f => f.op === 'deliver', 10)
    bob.send({ op: 'cursor', room: 'ops', seq: 3 })
    await waitFor(async () => (await relay.store.roomFeed('ops', bobId.amid))?.cursor === 3, 'cursor 3 committed')
    bob.close()
    envs.push(...await post(alice, 5, 'ops', 'late'))
    const bob2 = await agent(t, relay, bobId)
    assert.deepEqual(bob2.welcome.rooms, { global: 0, ops: 3 })
    const ds = await bob2.collect(f => f.op === 'deliver', 12)
    assert.deepEqual(ds.map(d => [d.seq, d.env.id]), envs.slice(3).map((e, i) => [i + 4, e.id]))
    bob2.close()
    // the client processed up to 8 (its cursor frame was lost): it says so in auth
    const bob3 = await agent(t, relay, bobId, { ...FEATURES, rooms: { ops: 8 } })
    const ds3 = await bob3.collect(f => f.op === 'deliver', 7)
    assert.deepEqual(ds3.map(d => d.seq), [9, 10, 11, 12, 13, 14, 15])
    bob3.send({ op: 'cursor', room: 'ops', seq: 15 })
    await waitFor(async () => (await relay.store.roomFeed('ops', bobId.amid))?.cursor === 15, 'cursor 15 committed')
  })

  it('room cursor - a member that joins later starts at the room\'s seq then; one that leaves stops receiving', async (t) => {
    const relay = await start(t)
    const [aliceId, bobId, daveId] = [createIdentity(), createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId])
    const alice = await agent(t, relay, aliceId)
    const bob = await agent(t, relay, bobId)
    const dave = await agent(t, relay, daveId)
    assert.deepEqual(dave.welcome.rooms, { global: 0 }, 'dave is registered by this auth, a member of the global room only')
    await post(alice, 3)
    // dave joins while connected: it gets what is posted from now on
    await rest(relay, daveId, 'POST', '/api/v1/rooms/ops/join')
    const later = await post(alice, 2, 'ops', 'after-join')
    const ds = await dave.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(ds, later.map((env, i) => ({ op: 'deliver', room: 'ops', seq: i + 4, env })))
    await bob.collect(f => f.op === 'deliver', 5)
    // bob leaves: the next message is not delivered to it (dave, still a member, gets it)
    await rest(relay, bobId, 'POST', '/api/v1/rooms/ops/leave')
    const [last] = await post(alice, 1, 'ops', 'after-leave')
    await dave.collect(f => f.op === 'deliver' && f.env.id === last!.id, 1)
    await bob.barrier()
    assert.equal(roomDeliveries(bob).length, 5)
    assert.equal(await relay.store.roomFeed('ops', bobId.amid), undefined)
    // and a reconnect does not bring it back
    bob.close()
    const bob2 = await agent(t, relay, bobId)
    assert.deepEqual(bob2.welcome.rooms, { global: 0 }, 'the global room only')
    await bob2.barrier()
    assert.deepEqual(bob2.frames.filter(f => f.op === 'deliver'), [])
  })

  it('room cursor - a cursor beyond what was delivered, of a room not read by cursor, or on a connection without the feature is refused', async (t) => {
    const relay = await start(t)
    const [aliceId, bobId, carolId] = [createIdentity(), createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId, carolId])
    const alice = await agent(t, relay, aliceId)
    const bob = await agent(t, relay, bobId)
    await post(alice, 2)
    await bob.collect(f => f.op === 'deliver', 2)
    bob.send({ op: 'cursor', room: 'ops', seq: 5 })
    bob.send({ op: 'cursor', room: 'lab', seq: 1 })
    bob.send({ op: 'cursor', room: 'Not A Room', seq: 1 })
    const errs = await bob.collect(f => f.op === 'error', 3)
    assert.deepEqual(errs.map(e => e.code), [ErrorCode.InvalidCursor, ErrorCode.InvalidCursor, ErrorCode.InvalidFrame])
    assert.match(errs[0]!.message, /beyond the last room seq delivered on this connection \(2\)/)
    assert.match(errs[1]!.message, /room lab is not one this agent reads by cursor/)
    assert.equal((await relay.store.roomFeed('ops', bobId.amid))?.cursor, 0)
    // a connection without the feature
    const carol = await agent(t, relay, carolId, {})
    carol.send({ op: 'cursor', room: 'ops', seq: 1 })
    const [e] = await carol.collect(f => f.op === 'error', 1)
    assert.equal(e!.code, ErrorCode.InvalidCursor)
    assert.match(e!.message, /room-cursor/)
  })

  it('room cursor - an agentmesh/0.2 client without the feature and a new one in the same room both get every message', async (t) => {
    const relay = await start(t)
    const [aliceId, oldId, newId] = [createIdentity(), createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [oldId, newId])
    const alice = await agent(t, relay, aliceId)
    const old = await agent(t, relay, oldId, {})
    const neu = await agent(t, relay, newId)
    assert.equal(old.welcome.rooms, undefined)
    const envs = await post(alice, 5)
    // the old client: inbox copies, the DM frame shape it knows
    assert.deepEqual(await old.collect(f => f.op === 'deliver', 5), envs.map((env, i) => ({ op: 'deliver', seq: i + 1, env })))
    assert.deepEqual(await neu.collect(f => f.op === 'deliver', 5), envs.map((env, i) => ({ op: 'deliver', room: 'ops', seq: i + 1, env })))
    old.send({ op: 'cursor', seq: 5 })
    await waitFor(async () => (await relay.store.inbox(oldId.amid)).cursor === 5, 'the old client\'s inbox cursor')
    // the old client upgrades: it reads the room from the seq it had reached, nothing comes twice
    old.close()
    const upgraded = await agent(t, relay, oldId)
    assert.deepEqual(upgraded.welcome.rooms, { global: 0, ops: 5 })
    const [six] = await post(alice, 1, 'ops', 'six')
    assert.deepEqual(await upgraded.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', room: 'ops', seq: 6, env: six }])
    await neu.collect(f => f.op === 'deliver', 6)
    // the new one goes back to an old client before acknowledging 6: 6 is copied into its inbox
    neu.send({ op: 'cursor', room: 'ops', seq: 5 })
    await waitFor(async () => (await relay.store.roomFeed('ops', newId.amid))?.cursor === 5, 'cursor 5 committed')
    neu.close()
    const downgraded = await agent(t, relay, newId, {})
    assert.deepEqual(await downgraded.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', seq: 1, env: six }])
    const [seven] = await post(alice, 1, 'ops', 'seven')
    assert.deepEqual((await downgraded.collect(f => f.op === 'deliver', 2))[1], { op: 'deliver', seq: 2, env: seven })
    await upgraded.collect(f => f.op === 'deliver' && f.env.id === seven!.id, 1)
  })

  it('room cursor - a member that does not acknowledge is held at the delivery window, room and inbox deliveries together; acks let the rest through in order', async (t) => {
    const relay = await start(t, { deliveryWindow: 8 })
    const [aliceId, bobId, carolId] = [createIdentity(), createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId, carolId])
    const alice = await agent(t, relay, aliceId)
    const bob = await agent(t, relay, bobId)
    const carol = await agent(t, relay, carolId)
    await post(alice, 30)
    const dm = alice.envelope(bobId.amid, 'a dm')
    alice.send({ op: 'send', env: dm })
    await alice.collect(f => f.op === 'ack' && f.id === dm.id, 1)
    // carol acknowledges as she goes and gets all 30
    let acked = 0
    while (acked < 30) {
      const ds = await carol.collect(f => f.op === 'deliver', acked + 1)
      acked = ds.length
      carol.send({ op: 'cursor', room: 'ops', seq: ds.at(-1)!.seq })
    }
    assert.deepEqual(roomDeliveries(carol).map(d => d.seq), Array.from({ length: 30 }, (_, i) => i + 1))
    // bob never acknowledged: 8 deliveries out, nothing more (the DM waits too)
    await bob.barrier()
    assert.deepEqual(roomDeliveries(bob).map(d => d.seq), [1, 2, 3, 4, 5, 6, 7, 8])
    assert.deepEqual(inboxDeliveries(bob), [])
    bob.send({ op: 'cursor', room: 'ops', seq: 8 })
    await bob.collect(f => f.op === 'deliver', 16)
    await bob.barrier()
    // 8 more, no more (room deliveries and the DM share the window), the room in order, each once
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 16)
    const rooms = roomDeliveries(bob).map(d => d.seq)
    assert.deepEqual(rooms, Array.from({ length: rooms.length }, (_, i) => i + 1))
    // the rest after the acks, the DM among them
    while (roomDeliveries(bob).length < 30) {
      const before = bob.frames.filter(f => f.op === 'deliver').length
      bob.send({ op: 'cursor', room: 'ops', seq: roomDeliveries(bob).at(-1)!.seq })
      if (inboxDeliveries(bob).length > 0) bob.send({ op: 'cursor', seq: 1 })
      await bob.collect(f => f.op === 'deliver', before + 1)
    }
    assert.deepEqual(roomDeliveries(bob).map(d => d.seq), Array.from({ length: 30 }, (_, i) => i + 1))
    const [got] = await bob.collect(f => f.op === 'deliver' && f.room === undefined, 1)
    assert.equal(got!.env.id, dm.id)
    assert.deepEqual(roomDeliveries(bob).map(d => d.seq), Array.from({ length: 30 }, (_, i) => i + 1))
  })

  it('room cursor - what is not acknowledged is sent again after retransmitMs', async (t) => {
    const relay = await start(t, { retransmitMs: 100 })
    const [aliceId, bobId] = [createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId])
    const alice = await agent(t, relay, aliceId)
    const bob = await agent(t, relay, bobId)
    const [env] = await post(alice, 1)
    const twice = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(twice, [{ op: 'deliver', room: 'ops', seq: 1, env }, { op: 'deliver', room: 'ops', seq: 1, env }])
    bob.send({ op: 'cursor', room: 'ops', seq: 1 })
    await waitFor(async () => (await relay.store.roomFeed('ops', bobId.amid))?.cursor === 1, 'cursor committed')
  })

  it('room cursor - a deleted message is passed over, and the ack before it covers it', async (t) => {
    const relay = await start(t)
    const [aliceId, bobId] = [createIdentity(), createIdentity()]
    await opsRoom(relay, aliceId, [bobId])
    const alice = await agent(t, relay, aliceId)
    const envs = await post(alice, 4)
    // (in the Store: a DELETE over the API posts a timeline notice after it, the last entry here must stay deleted)
    assert.equal(await relay.store.deleteHistoryEntry('ops', 2, aliceId.amid, Date.now()), true)
    assert.equal(await relay.store.deleteHistoryEntry('ops', 4, aliceId.amid, Date.now()), true)
    const bob = await agent(t, relay, bobId)
    const ds = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(ds.map(d => [d.seq, d.env.id]), [[1, envs[0]!.id], [3, envs[2]!.id]])
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 2)
    bob.send({ op: 'cursor', room: 'ops', seq: 3 })
    await waitFor(async () => (await relay.store.roomFeed('ops', bobId.amid))?.cursor === 4, 'the cursor passes the deleted last one')
  })

  it('room cursor - cursors and the log survive a restart of a SQLite relay: a member resumes where it acknowledged', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const [aliceId, bobId, carolId] = [createIdentity(), createIdentity(), createIdentity()]
    const relay1 = await startRelay({ dataDir: dir.path })
    await opsRoom(relay1, aliceId, [bobId, carolId])
    const alice = await rawAgent(relay1.wsUrl, aliceId)
    await alice.auth(FEATURES)
    const bob = await rawAgent(relay1.wsUrl, bobId)
    await bob.auth(FEATURES)
    const envs = await post(alice, 4)
    await bob.collect(f => f.op === 'deliver', 4)
    bob.send({ op: 'cursor', room: 'ops', seq: 2 })
    await waitFor(async () => (await relay1.store.roomFeed('ops', bobId.amid))?.cursor === 2, 'cursor 2 committed')
    await relay1.close()
    alice.close()
    bob.close()

    const relay2 = await start(t, { dataDir: dir.path, memory: false })
    const bob2 = await agent(t, relay2, bobId)
    assert.deepEqual(bob2.welcome.rooms, { global: 0, ops: 2 })
    assert.deepEqual(await bob2.collect(f => f.op === 'deliver', 2), envs.slice(2).map((env, i) => ({ op: 'deliver', room: 'ops', seq: i + 3, env })))
    // carol did not connect since she joined: she reads from the seq she joined at (0)
    const carol = await agent(t, relay2, carolId)
    assert.deepEqual((await carol.collect(f => f.op === 'deliver', 4)).map(d => d.seq), [1, 2, 3, 4])
  })

  it('room cursor - a relay killed with SIGKILL loses no acknowledged send nor room cursor: members resume after their last ack', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const [aliceId, bobId] = [createIdentity(), createIdentity()]
    const spawned = await spawnRelay({ dataDir: dir.path })
    t.after(async () => { await spawned.kill('SIGKILL').catch(() => {}) })
    const relay1 = { url: spawned.url, wsUrl: spawned.url.replace(/^http/, 'ws') + '/ws' }
    await opsRoom(relay1, aliceId, [bobId])
    const alice = await rawAgent(relay1.wsUrl, aliceId)
    t.after(() => { alice.close() })
    await alice.auth(FEATURES)
    const bob = await rawAgent(relay1.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth(FEATURES)
    const envs = await post(alice, 6)
    await bob.collect(f => f.op === 'deliver', 6)
    bob.send({ op: 'cursor', room: 'ops', seq: 4 })
    // the relay read bob's ack (the pong comes after it); a send acked after that was committed with
    // it or after it (group commits run one after another): the ack is durable then
    await bob.barrier()
    envs.push(...await post(alice, 1, 'ops', 'last'))
    assert.equal(await spawned.kill('SIGKILL'), null)
    await Promise.all([alice.closed, bob.closed])

    const relay2 = await start(t, { dataDir: dir.path, memory: false })
    const bob2 = await agent(t, relay2, bobId)
    // every acknowledged send is there, the acknowledged cursor too, and deliveries resume after it
    assert.deepEqual(bob2.welcome.rooms, { global: 0, ops: 4 })
    assert.equal(await relay2.store.lastRoomSeq('ops'), 7)
    const ds = await bob2.collect(f => f.op === 'deliver', 3)
    assert.deepEqual(ds, envs.slice(4).map((env, i) => ({ op: 'deliver', room: 'ops', seq: i + 5, env })))
  })
})
