/**
 * Client failover (several relay addresses, one cluster): connect() takes the nodes of a cluster,
 * uses the first and, when it loses it, moves to the next with the usual backoff, resuming from its
 * cursor while the outbox sends again what was not acknowledged. Two relay nodes in this process
 * over one Store (the memory store, shared) and one in-process backplane.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { inProcessBackplane, type Relay } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { createIdentity } from '@agentmesh/crypto'
import { connect, memoryState, relayUrls, MAX_RELAY_ADDRESSES, type Message, type Status } from '@agentmesh/client'
import { ErrorCode } from '@agentmesh/protocol'
import { startRelay, waitFor } from '@agentmesh/testing'

type T = { after: (fn: () => Promise<void> | void) => void }

async function twoNodes (t: T): Promise<[Relay, Relay]> {
  const store = memoryStore()
  const backplane = inProcessBackplane()
  const shared = { ...store, close: async () => {} }
  const one = await startRelay({}, { store: shared, backplane })
  const two = await startRelay({}, { store: shared, backplane })
  t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
  return [one, two]
}

describe('client - failover across relays', () => {
  it('client - relayUrls takes an array or one string with commas, normalises each, keeps the order, drops repeats and bounds the count', () => {
    assert.deepEqual(relayUrls('ws://a:1, http://b:2/,ws://a:1'), ['ws://a:1/ws', 'ws://b:2/ws'])
    assert.deepEqual(relayUrls(['127.0.0.1:9000', 'wss://c']), ['ws://127.0.0.1:9000/ws', 'wss://c/ws'])
    assert.deepEqual(relayUrls('ws://only:7777'), ['ws://only:7777/ws'])
    assert.throws(() => relayUrls(' , '), { code: ErrorCode.InvalidArgument })
    assert.throws(() => relayUrls('ws://a,ftp://b'), { code: ErrorCode.InvalidArgument })
    assert.throws(() => relayUrls(Array.from({ length: MAX_RELAY_ADDRESSES + 1 }, (_, i) => `ws://h${i}:1`)), { code: ErrorCode.InvalidArgument })
  })

  it('client - one of two relays closes while a stream flows: both agents move to the other, every acknowledged message arrives once, in order', async (t) => {
    const [one, two] = await twoNodes(t)
    const servers = [one.url, two.url]
    const bobId = createIdentity('bob')
    const bob = await connect({ server: servers, identity: bobId, state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await bob.close() })
    const alice = await connect({ server: servers.join(','), identity: createIdentity('alice'), state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await alice.close() })
    assert.equal(alice.url, one.wsUrl)
    assert.equal(bob.url, one.wsUrl)
    const statuses: Array<Status['type']> = []
    void (async () => { for await (const s of alice.status()) statuses.push(s.type) })()

    const got: Message[] = []
    void (async () => { for await (const m of bob.messages()) got.push(m) })()
    const N = 300
    const sends: Array<Promise<unknown>> = []
    let closing: Promise<void> | undefined
    for (let i = 0; i < N; i++) {
      sends.push(alice.send(bobId.amid, { text: `m${i}` }))
      // a third of the way in, once those are acknowledged, relay one goes away (the stream goes on)
      if (i === 99) { await sends[99]; closing = one.close() }
      if (i % 20 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    await closing
    const results = await Promise.all(sends)
    assert.equal(results.length, N, 'every send acknowledged')
    await waitFor(() => got.length >= N, `bob to receive ${N} messages`, 60_000)
    assert.deepEqual(got.map(m => m.text), Array.from({ length: N }, (_, i) => `m${i}`), 'each once, in order')
    assert.equal(alice.url, two.wsUrl)
    assert.equal(bob.url, two.wsUrl)
    assert.ok(statuses.includes('disconnected') && statuses.includes('connected'))
    assert.equal(alice.pendingSends, 0)
    // nothing more arrives: a round trip through the relay after the last one
    await alice.send(bobId.amid, { text: 'last' })
    await waitFor(() => got.length >= N + 1, 'the last message')
    assert.deepEqual(got.slice(N).map(m => m.text), ['last'])
  })

  it('client - the first address does not answer: connect() uses the next', async (t) => {
    const [, two] = await twoNodes(t)
    const c = await connect({ server: ['ws://127.0.0.1:1', two.url], identity: createIdentity('carol'), state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await c.close() })
    assert.equal(c.url, two.wsUrl)
    const r = await c.send(c.amid, { text: 'to myself' })
    assert.equal(r.duplicate, false)
  })

  it('client - with queueWhenUnreachable, a dead first address does not make connect() give up before the next was tried', async (t) => {
    const [, two] = await twoNodes(t)
    const c = await connect({ server: ['ws://127.0.0.1:1', two.url], identity: createIdentity('dana'), state: memoryState(), queueWhenUnreachable: true, minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await c.close() })
    assert.equal(c.connected, true)
    assert.equal(c.url, two.wsUrl)
  })

  it('client - no address answers: AM_ERR_CONNECT_FAILED names every one', async () => {
    await assert.rejects(connect({ server: 'ws://127.0.0.1:1,ws://127.0.0.1:2', identity: createIdentity(), state: memoryState(), connectTimeoutMs: 500, minBackoffMs: 20, maxBackoffMs: 100 }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, ErrorCode.ConnectFailed)
      assert.match((err as Error).message, /ws:\/\/127\.0\.0\.1:1\/ws or ws:\/\/127\.0\.0\.1:2\/ws/)
      return true
    })
  })
})
