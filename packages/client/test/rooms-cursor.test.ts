/**
 * Rooms read by cursor through the SDK (docs/protocol.md §6.1): the SDK declares "room-cursor",
 * receives room messages from the room's log with room seqs, keeps a cursor per room next to the
 * inbox's (written with the dedupe record in one step), acknowledges each room once per turn, and
 * resumes each room where it was after a restart. A client without the feature (raw frames, as an
 * agentmesh/0.2 client) in the same room still gets every message in its inbox.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { createIdentity, signRequest } from '@agentmesh/crypto'
import { chat, connect, memoryState, sqliteState, type ClientState, type Connection, type Message } from '@agentmesh/client'
import { rawAgent, startRelay, tempDir, waitFor, takeMessages } from '@agentmesh/testing'

const take = async (conn: Connection, n: number): Promise<Message[]> => await takeMessages(conn, n, 20_000)

describe('rooms read by cursor (SDK)', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close().catch(() => {})
    dir.cleanup()
  })
  const open = async (relay: Relay, name: string, state: ClientState = memoryState(), identity = createIdentity(name)): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity, state, minBackoffMs: 20, maxBackoffMs: 200 })
    conns.push(c)
    return c
  }

  it('rooms cursor - three SDK members and an old client without the feature get every message of a public room, in order, once; the SDK keeps a cursor per room', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const relayId = await relay.store.relayId()
    const alice = await open(relay, 'alice')
    const states = [memoryState(), memoryState(), memoryState()]
    const members = [await open(relay, 'bob', states[0]), await open(relay, 'carol', states[1]), await open(relay, 'dave', states[2])]
    const old = await rawAgent(relay.wsUrl)
    after(() => { old.close() })
    await old.auth()
    await chat(alice).createRoom({ id: 'ops' })
    for (const m of members) await chat(m).join('ops')
    const res = await fetch(relay.url + '/api/v1/rooms/ops/join', { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(old.id, 'POST', '/api/v1/rooms/ops/join', '') } })
    assert.equal(res.status, 200)
    const texts = Array.from({ length: 12 }, (_, i) => `m${i + 1}`)
    for (const t of texts) await chat(alice).say('ops', t)
    for (const [i, m] of members.entries()) {
      const got = await take(m, 12)
      assert.deepEqual(got.map(g => [g.text, g.room, g.seq]), texts.map((t, k) => [t, 'ops', k + 1]))
      await waitFor(() => states[i]!.cursor(relayId, 'ops') === 12, 'the room cursor in the state')
      assert.deepEqual(states[i]!.roomCursors(relayId), { ops: 12 })
      assert.equal(states[i]!.cursor(relayId), 0, 'the inbox cursor did not move: nothing came through the inbox')
      await waitFor(async () => (await relay.store.roomFeed('ops', m.amid))?.cursor === 12, 'the relay\'s room cursor')
    }
    // the old client: the same 12 as inbox deliveries, in order
    const ds = await old.collect(f => f.op === 'deliver', 12)
    assert.deepEqual(ds.map(d => [d.room, d.seq, d.env.payload.text]), texts.map((t, k) => [undefined, k + 1, t]))
  })

  it('rooms cursor - a private room (sender keys) reads the same through the SDK, and the receiver resumes each room after a restart, once', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const relayId = await relay.store.relayId()
    const alice = await open(relay, 'alice')
    const bobId = createIdentity('bob')
    const bobPath = join(dir.path, 'bob.db')
    let bob = await open(relay, 'bob', sqliteState(bobPath), bobId)
    const [ca, cb] = [chat(alice), chat(bob)]
    await ca.createRoom({ id: 'den', kind: 'private' })
    await ca.invite('den', bob.amid)
    await cb.join('den')
    await ca.createRoom({ id: 'pub' })
    await cb.join('pub')
    for (let i = 1; i <= 3; i++) { await ca.say('den', `den ${i}`); await ca.say('pub', `pub ${i}`) }
    const first = await take(bob, 6)
    const byRoom = (ms: Message[], room: string): Array<[string | undefined, boolean]> => ms.filter(m => m.room === room).map(m => [m.text, m.encrypted])
    assert.deepEqual(byRoom(first, 'den'), [['den 1', true], ['den 2', true], ['den 3', true]])
    assert.deepEqual(byRoom(first, 'pub'), [['pub 1', false], ['pub 2', false], ['pub 3', false]])
    // the relay never had the private room's plaintext
    const stored = await relay.store.readHistory('den', { limit: 10 })
    assert.ok(stored.length >= 3 && stored.every(e => !e.envelope.includes('den ')))
    // bob stops (what it handled is committed on close), alice goes on
    await bob.close()
    for (let i = 4; i <= 5; i++) { await ca.say('den', `den ${i}`); await ca.say('pub', `pub ${i}`) }
    const reopened = sqliteState(bobPath)
    const cursors = reopened.roomCursors(relayId)
    assert.deepEqual(Object.keys(cursors).sort(), ['den', 'pub'])
    bob = await open(relay, 'bob', reopened, bobId)
    const second = await take(bob, 4)
    assert.deepEqual(byRoom(second, 'den'), [['den 4', true], ['den 5', true]])
    assert.deepEqual(byRoom(second, 'pub'), [['pub 4', false], ['pub 5', false]])
    // once: the next one is new
    await ca.say('pub', 'pub 6')
    assert.deepEqual((await take(bob, 1)).map(m => m.text), ['pub 6'])
  })
})
