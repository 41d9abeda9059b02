/**
 * What the relay holds for a connection that stops reading (docs/protocol.md §6 "Bounds on what is
 * queued"): deliveries pause past sendBufferBytes and go on once the connection drained, a connection
 * past sendBufferMaxBytes is closed as a slow consumer (4008), error answers are rate-limited and a
 * flood of refused frames closes the connection (1008). First the core with a stub Peer whose queue
 * the test drains by hand, then real sockets: a raw agent that pauses its socket.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode, PROTOCOL } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope, type Identity } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { EventBus, relayOptions, silentLogger, type Logger, type RelayEvents, type RelayInit, type RoomResolver } from '@agentmesh/server'
import { RelayCore } from '@agentmesh/server/internal'
import { rawAgent, startRelay, waitFor, type RawAgent } from '@agentmesh/testing'

type Json = Record<string, any>

/** A peer whose sent bytes stay queued until the test reads them (a reader that stalls at will). */
function stallingPeer (): {
  frames: Json[]
  closed: Array<[number, string]>
  queued: () => number
  maxQueued: () => number
  read: () => void
  peer: { send: (t: string) => void, close: (c: number, r: string) => void, buffered: () => number }
  handlers?: ReturnType<RelayCore['open']>
} {
  const frames: Json[] = []
  const closed: Array<[number, string]> = []
  let queued = 0
  let max = 0
  const p = {
    frames,
    closed,
    queued: () => queued,
    maxQueued: () => max,
    /** the reader takes everything queued; the transport reports the drain */
    read: () => { queued = 0; p.handlers?.drain() },
    peer: {
      send: (t: string) => { frames.push(JSON.parse(t) as Json); queued += Buffer.byteLength(t); max = Math.max(max, queued) },
      close: (c: number, r: string) => { closed.push([c, r]) },
      buffered: () => queued,
    },
    handlers: undefined as ReturnType<RelayCore['open']> | undefined,
  }
  return p
}

const noRooms: RoomResolver = { admitRoomMessage: async () => { throw new Error('no rooms here') }, signal: async () => undefined }

async function core (init: RelayInit, logger: Logger = silentLogger): Promise<{ core: RelayCore, store: Store, relayId: string }> {
  const store = memoryStore()
  const relayId = await store.relayId()
  const c = new RelayCore({ relayId, relayAmid: 'am-relay', options: relayOptions({ verifySignatures: false, ...init }), node: 'n' },
    { store, logger, events: new EventBus<RelayEvents>(), rooms: noRooms })
  return { core: c, store, relayId }
}

async function login (c: RelayCore, relayId: string, p: ReturnType<typeof stallingPeer>, id: Identity): Promise<void> {
  p.handlers = c.open(p.peer, { address: '127.0.0.1', port: 1 })
  const nonce = p.frames[0]!.nonce as string
  p.handlers.message(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce, sig: signChallenge(id, id.amid, nonce, relayId) }))
  await waitFor(() => p.frames.some(f => f.op === 'welcome'), 'the welcome')
  p.read()
}

const deliveries = (p: { frames: Json[] }): Json[] => p.frames.filter(f => f.op === 'deliver')

describe('backpressure - the core with a stub peer', () => {
  it('backpressure - a stalled reader: deliveries stop past sendBufferBytes, others are served, all arrive in order once it reads', async () => {
    const soft = 10_000
    const { core: c, store, relayId } = await core({ sendBufferBytes: soft, sendBufferMaxBytes: 100_000 })
    const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(n => createIdentity(n)) as [Identity, Identity, Identity, Identity]
    const [pa, pb, pc, pd] = [stallingPeer(), stallingPeer(), stallingPeer(), stallingPeer()]
    for (const [p, id] of [[pa, alice], [pb, bob], [pc, carol], [pd, dave]] as const) await login(c, relayId, p, id)
    const text = 'x'.repeat(2000)
    // bob stops reading; alice sends him 50 messages of ~2 KB (100 KB in all)
    for (let i = 0; i < 50; i++) pa.handlers!.message(JSON.stringify({ op: 'send', env: signEnvelope(alice, { id: `to-bob-${String(i).padStart(3, '0')}`, to: bob.amid, type: 'chat', payload: { text } }) }))
    await waitFor(() => pa.frames.filter(f => f.op === 'ack').length === 50, 'the 50 acks')
    const frame = JSON.stringify(deliveries(pb)[0]).length
    assert.ok(pb.queued() <= soft + frame, `queued for bob ${pb.queued()} <= ${soft} + one frame (${frame})`)
    const sent = deliveries(pb).length
    assert.ok(sent < 50 && sent <= Math.ceil(soft / frame) + 1, `only what fits the bound was written: ${sent}`)
    assert.equal(c.stats().pausedConnections, 1)
    assert.equal(c.stats().queuedBytes, pb.queued() + pa.queued())

    // meanwhile carol and dave talk as usual
    pc.handlers!.message(JSON.stringify({ op: 'send', env: signEnvelope(carol, { id: 'to-dave-1', to: dave.amid, type: 'chat', payload: { text: 'hi dave' } }) }))
    await waitFor(() => deliveries(pd).length === 1, 'dave\'s message')
    assert.equal(deliveries(pd)[0]!.env.payload.text, 'hi dave')

    // bob reads: every drain lets the next batch out, never more than the bound
    while (deliveries(pb).length < 50) {
      const before = deliveries(pb).length
      pb.read()
      await waitFor(() => deliveries(pb).length > before, 'more deliveries after a drain')
    }
    assert.deepEqual(deliveries(pb).map(f => f.seq), Array.from({ length: 50 }, (_, i) => i + 1))
    assert.ok(pb.maxQueued() <= soft + frame, `never more than the bound and one frame: ${pb.maxQueued()}`)
    pb.read()
    assert.equal(c.stats().pausedConnections, 0)
    await c.shutdown()
    await store.close()
  })

  it('backpressure - a connection past sendBufferMaxBytes is closed with 4008 AM_ERR_SLOW_CONSUMER and a log line without content', async () => {
    const lines: Array<[Json, string]> = []
    const logger: Logger = { ...silentLogger, warn: (o: unknown, m?: string) => { lines.push([o as Json, m ?? '']) } } as Logger
    const { core: c, store, relayId } = await core({ sendBufferBytes: 500, sendBufferMaxBytes: 1000 }, logger)
    const bob = createIdentity('bob')
    const pb = stallingPeer()
    await login(c, relayId, pb, bob)
    // bob never reads, and asks for pongs: they are queued (not paused) until the hard bound
    for (let i = 0; i < 100 && pb.closed.length === 0; i++) pb.handlers!.message(JSON.stringify({ op: 'ping', ts: 1_000_000_000 + i }))
    assert.deepEqual(pb.closed, [[4008, ErrorCode.SlowConsumer]])
    const last = pb.frames.at(-1)!
    assert.deepEqual([last.op, last.code], ['error', ErrorCode.SlowConsumer])
    const pongs = pb.frames.filter(f => f.op === 'pong').length
    assert.ok(pongs < 100 && pongs >= 1000 / 40, `closed once past 1,000 bytes: ${pongs} pongs`)
    assert.equal(c.stats().slowConsumers, 1)
    assert.equal(c.stats().connections, 0)
    const [fields, message] = lines.find(([, m]) => m.startsWith('slow consumer'))!
    assert.equal(message, 'slow consumer: closing the connection')
    assert.deepEqual(Object.keys(fields).sort(), ['amid', 'conn', 'limit', 'queued', 'remote'])
    assert.equal(fields.amid, bob.amid)
    await c.shutdown()
    await store.close()
  })

  it('backpressure - error answers are rate-limited per connection; a flood of refused frames closes it with 1008 AM_ERR_TOO_MANY_ERRORS', async () => {
    const { core: c, store } = await core({ errorBurst: 5, errorsPerMinute: 1, errorFloodClose: 20 })
    const p = stallingPeer()
    p.handlers = c.open(p.peer, { address: '127.0.0.1', port: 1 })
    for (let i = 0; i < 100; i++) p.handlers.message('not json')
    const errors = p.frames.filter(f => f.op === 'error')
    // 5 answers (the burst), 20 left out, then the last word and the close
    assert.deepEqual(errors.map(f => f.code), [...Array(5).fill(ErrorCode.BadJson), ErrorCode.TooManyErrors])
    assert.deepEqual(p.closed, [[1008, ErrorCode.TooManyErrors]])
    assert.deepEqual([c.stats().errorsLeftOut, c.stats().errorFloods, c.stats().connections], [20, 1, 0])
    await c.shutdown()
    await store.close()
  })
})

/** The raw agent stops reading: its socket is paused, so the relay's writes queue up on the relay. */
function stall (a: RawAgent): { resume: () => void } {
  const sock = (a.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  sock.pause()
  return { resume: () => { sock.resume() } }
}

describe('backpressure - real sockets', () => {
  it('backpressure - a stalled receiver of 400 × 100 KB DMs: the relay holds at most the bound for it, others are served, all arrive once it reads', async (t) => {
    const soft = 256 * 1024
    const relay = await startRelay({ verifySignatures: false, sendBufferBytes: soft })
    t.after(async () => { await relay.close() })
    const [alice, bob, carol, dave] = await Promise.all([0, 1, 2, 3].map(async () => await rawAgent(relay.wsUrl)))
    for (const a of [alice!, bob!, carol!, dave!]) { t.after(() => { a.close() }); await a.auth() }
    const reader = stall(bob!)
    const text = 'y'.repeat(100 * 1024)
    const n = 400
    for (let i = 0; i < n; i += 50) {
      alice!.sendBatch(Array.from({ length: 50 }, (_, j) => JSON.stringify({ op: 'send', env: alice!.envelope(bob!.id.amid, text, `big-${String(i + j).padStart(4, '0')}`) })))
      await alice!.collect(f => f.op === 'ack', i + 50, 30_000)
    }
    const frame = 100 * 1024 + 1024
    // 40 MB were stored for bob; what the relay holds for him is the bound and one frame at most
    const s = relay.stats()
    assert.ok(s.queuedBytes <= soft + frame, `queued ${s.queuedBytes} <= ${soft} + ${frame}`)
    assert.ok(s.pauses >= 1 && s.pausedConnections === 1, JSON.stringify(s))
    assert.ok(s.delivered < n, `not everything was written to the stalled socket: ${s.delivered}`)

    // carol and dave are served meanwhile
    carol!.send({ op: 'send', env: carol!.envelope(dave!.id.amid, 'still here', 'carol-0001') })
    const [got] = await dave!.collect(f => f.op === 'deliver', 1)
    assert.equal(got!.env.payload.text, 'still here')

    // bob reads again: everything arrives, in order, and the relay holds nothing for him afterwards
    reader.resume()
    const all = await bob!.collect(f => f.op === 'deliver', n, 60_000)
    assert.deepEqual(all.map(f => f.seq), Array.from({ length: n }, (_, i) => i + 1))
    bob!.send({ op: 'cursor', seq: n })
    await waitFor(() => relay.stats().queuedBytes === 0 && relay.stats().pausedConnections === 0, 'nothing queued')
  })

  it('backpressure - a flood of bad frames (up to 20,000) from a client that never reads: ≤ errorBurst answers, closed with 1008; others are served', async (t) => {
    const relay = await startRelay({ verifySignatures: false })
    t.after(async () => { await relay.close() })
    const flooder = await rawAgent(relay.wsUrl)
    t.after(() => { flooder.close() })
    const [carol, dave] = [await rawAgent(relay.wsUrl), await rawAgent(relay.wsUrl)]
    for (const a of [carol, dave]) { t.after(() => { a.close() }); await a.auth() }
    const reader = stall(flooder)
    let sent = 0
    for (let i = 0; i < 20 && relay.stats().errorFloods === 0; i++) {
      flooder.sendBatch(Array.from({ length: 1000 }, () => '{"op":"nope"}'))
      sent += 1000
      // the relay read them all, or closed the connection
      await waitFor(() => relay.stats().rejected >= sent || relay.stats().errorFloods === 1, 'the batch read')
    }
    await waitFor(() => relay.stats().errorFloods === 1, 'the flood closed')
    const s = relay.stats()
    assert.equal(s.errorsLeftOut, relay.options.errorFloodClose)
    assert.ok(s.queuedBytes < 64 * 1024, `little is held: ${s.queuedBytes}`)
    carol.send({ op: 'send', env: carol.envelope(dave.id.amid, 'served', 'carol-0002') })
    const [got] = await dave.collect(f => f.op === 'deliver', 1)
    assert.equal(got!.env.payload.text, 'served')
    reader.resume()
    const closed = await flooder.closed
    assert.equal(closed.code, 1008)
    const errors = flooder.frames.filter(f => f.op === 'error')
    assert.ok(errors.length <= relay.options.errorBurst + 2, `${errors.length} error answers`)
    assert.equal(errors.at(-1)!.code, ErrorCode.TooManyErrors)
  })
})
