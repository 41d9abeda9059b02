/**
 * Room messages sent while the relay is down (docs/protocol.md §17.5): they wait in the agent's
 * state like DMs in the outbox, a private room's without any of its plaintext leaving the agent,
 * and are delivered once the relay is back, in order within each conversation, once.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { createIdentity, saveIdentity } from '@agentmesh/crypto'
import { chat, connect, memoryState, sqliteState, type Connection, type Message } from '@agentmesh/client'
import { ErrorCode } from '@agentmesh/protocol'
import { startRelay, tempDir, waitFor, takeMessages } from '@agentmesh/testing'

const take = async (conn: Connection, n: number): Promise<Message[]> => await takeMessages(conn, n, 20_000)

describe('rooms offline', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close().catch(() => {})
    dir.cleanup()
  })
  const fast = { minBackoffMs: 20, maxBackoffMs: 200 }

  it('rooms offline - room sends while the relay is down are queued, then delivered in order with a DM, once, the private room\'s sealed', async () => {
    const data = join(dir.path, 'relay-a')
    let relay = await startRelay({ dataDir: data })
    relays.push(relay)
    const port = relay.port
    const bob = await connect({ server: relay.url, identity: createIdentity('bob'), state: memoryState(), ...fast })
    const aliceState = memoryState()
    const alice = await connect({ server: relay.url, identity: createIdentity('alice'), state: aliceState, ...fast })
    conns.push(bob, alice)
    const [ca, cb] = [chat(alice), chat(bob)]
    await ca.createRoom({ id: 'den', kind: 'private' })
    await ca.invite('den', bob.amid)
    await cb.join('den')
    await ca.createRoom({ id: 'pub' })
    await cb.join('pub')
    await ca.say('den', 'before')
    assert.deepEqual((await take(bob, 1)).map(m => m.text), ['before'])

    await relay.close()
    const queued: string[] = []
    const onQueued = (id: string): void => { queued.push(id) }
    const sends = [
      alice.send('#den', { text: 'den 1' }, { onQueued }),
      alice.send(bob.amid, { text: 'dm 2' }, { onQueued }),
      alice.send('#pub', { text: 'pub 3' }, { onQueued }),
      alice.send('#den', { text: 'den 4' }, { onQueued }),
    ]
    for (const p of sends) p.catch(() => {})
    await waitFor(() => queued.length === 4, 'the four sends to be queued')
    assert.equal(alice.pendingSends, 4)
    // nothing of the private room's text is in the outbox: it is kept sealed until it can be encrypted
    assert.ok(aliceState.outboxList().every(e => !e.envText.includes('den 1') && !e.envText.includes('den 4')))

    relay = await startRelay({ dataDir: data, port })
    relays.push(relay)
    const acked = await Promise.all(sends)
    assert.deepEqual(acked.map(r => r.id), queued)
    assert.ok(acked.every(r => !r.duplicate))
    assert.equal(alice.pendingSends, 0)
    const got = await take(bob, 4)
    // in order within each conversation (rooms are read by cursor, each from its own log: §6.1)
    const conv = (room: string | undefined): Array<[string | undefined, string | undefined, boolean]> => got.filter(m => m.room === room).map(m => [m.text, m.room, m.encrypted])
    assert.deepEqual(conv('den'), [['den 1', 'den', true], ['den 4', 'den', true]])
    assert.deepEqual(conv(undefined), [['dm 2', undefined, true]])
    assert.deepEqual(conv('pub'), [['pub 3', 'pub', false]])
    assert.deepEqual(got.map(m => m.id).sort(), [...queued].sort())
    // once: the next message bob gets is one sent after them
    await ca.say('den', 'after')
    assert.deepEqual((await take(bob, 1)).map(m => m.text), ['after'])
    // the relay stored the private room's messages sealed
    const h = await cb.history('den')
    assert.ok(h.messages.every(m => m.type === 'e2ee.group' && m.text === undefined))
    assert.deepEqual((await cb.readHistory('den')).messages.map(m => m.text), ['before', 'den 1', 'den 4', 'after'])
  })

  it('rooms offline - an agent that never reached the relay queues a room message, and its next connection sends it (the room looked up then)', async () => {
    const data = join(dir.path, 'relay-b')
    let relay = await startRelay({ dataDir: data })
    relays.push(relay)
    const port = relay.port
    const bobState = memoryState()
    const bobId = createIdentity('bob')
    const bob = await connect({ server: relay.url, identity: bobId, state: bobState, ...fast })
    const home = join(dir.path, 'alice')
    saveIdentity(home, createIdentity('alice'))
    const a1 = await connect({ server: relay.url, home, ...fast })
    await chat(a1).createRoom({ id: 'vault', kind: 'private' })
    await chat(a1).invite('vault', bob.amid)
    await chat(bob).join('vault')
    await a1.close()
    await bob.close()
    await relay.close()

    // a new process of alice: the relay cannot be reached, and this process knows nothing of the room
    const a2 = await connect({ server: `ws://127.0.0.1:${port}`, home, queueWhenUnreachable: true, connectTimeoutMs: 20_000, ...fast })
    assert.equal(a2.connected, false)
    let id: string | undefined
    const sent = a2.send('#vault', { text: 'kept for later' }, { onQueued: (q) => { id = q } })
    sent.catch(() => {})
    await waitFor(() => id !== undefined, 'the send to be queued')
    await a2.close()
    await assert.rejects(sent, { code: ErrorCode.ConnectionClosed })
    const st = sqliteState(join(home, 'state.db'))
    assert.deepEqual(st.outboxList(), [], 'nothing in the outbox: the room could not be looked up')
    st.close()

    relay = await startRelay({ dataDir: data, port })
    relays.push(relay)
    const a3 = await connect({ server: relay.url, home, ...fast })
    conns.push(a3)
    await a3.flush({ signal: AbortSignal.timeout(20_000) })
    assert.equal(a3.pendingSends, 0)
    const b2 = await connect({ server: relay.url, identity: bobId, state: bobState, ...fast })
    conns.push(b2)
    const got = await take(b2, 1)
    assert.deepEqual(got.map(m => [m.id, m.text, m.room, m.encrypted]), [[id, 'kept for later', 'vault', true]])
  })

  it('rooms offline - a deferred send the relay refuses once it answers (no such room) fails alone; the sends after it still go', async () => {
    const data = join(dir.path, 'relay-c')
    let relay = await startRelay({ dataDir: data })
    relays.push(relay)
    const port = relay.port
    const bob = await connect({ server: relay.url, identity: createIdentity('bob'), state: memoryState(), ...fast })
    const alice = await connect({ server: relay.url, identity: createIdentity('alice'), state: memoryState(), ...fast })
    conns.push(bob, alice)
    await chat(alice).createRoom({ id: 'open' })
    await chat(bob).join('open')
    await relay.close()
    const nowhere = alice.send('#nowhere', { text: 'lost' })
    const after = alice.send('#open', { text: 'still goes' })
    nowhere.catch(() => {})
    await waitFor(() => alice.pendingSends === 2, 'both sends to be deferred')
    relay = await startRelay({ dataDir: data, port })
    relays.push(relay)
    await assert.rejects(nowhere, { code: ErrorCode.UnknownRoom })
    assert.equal((await after).duplicate, false)
    assert.deepEqual((await take(bob, 1)).map(m => [m.room, m.text]), [['open', 'still goes']])
  })
})
