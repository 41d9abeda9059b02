import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Relay, RelayInit } from '@agentmesh/server'
import { createIdentity, saveIdentity } from '@agentmesh/crypto'
import { connect, memoryState, sqliteState, relayUrl, type Connection, type Message, type Status } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { rawAgent, startRelay, tempDir, waitFor } from '@agentmesh/testing'

async function take (conn: Connection, n: number, signal = AbortSignal.timeout(20_000)): Promise<Message[]> {
  const out: Message[] = []
  if (n === 0) return out
  for await (const m of conn.messages({ signal })) {
    out.push(m)
    if (out.length === n) break
  }
  return out
}

/** Each test agent's local state (its keys and sessions live there, so it must outlive a connection). */
const states = new Map<string, ReturnType<typeof memoryState>>()
function stateOf (id: { amid: string }): ReturnType<typeof memoryState> {
  let s = states.get(id.amid)
  if (s === undefined) { s = memoryState(); states.set(id.amid, s) }
  return s
}

async function register (relay: Relay, id = createIdentity()): Promise<ReturnType<typeof createIdentity>> {
  const c = await connect({ server: relay.url, identity: id, state: stateOf(id), deliver: false })
  await c.close()
  return id
}

describe('client', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const start = async (init: RelayInit = {}): Promise<Relay> => {
    const r = await startRelay(init)
    relays.push(r)
    return r
  }
  after(async () => {
    for (const r of relays) await r.close()
    dir.cleanup()
  })

  it('client - relayUrl normalises addresses and refuses other schemes', () => {
    assert.equal(relayUrl('http://127.0.0.1:7777'), 'ws://127.0.0.1:7777/ws')
    assert.equal(relayUrl('https://relay.example:443/'), 'wss://relay.example/ws')
    assert.equal(relayUrl('127.0.0.1:9000'), 'ws://127.0.0.1:9000/ws')
    assert.equal(relayUrl('ws://h:1/custom'), 'ws://h:1/custom')
    assert.throws(() => relayUrl('ftp://h'), { code: ErrorCode.InvalidArgument })
  })

  it('client - an offline agent receives 1,000 messages in order, once, when it comes back', async () => {
    const relay = await start()
    const bob = await register(relay)
    const alice = await connect({ server: relay.url, identity: createIdentity('alice') })
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => alice.send(bob.amid, { text: `m${i}` })))
    assert.equal(new Set(results.map(r => r.id)).size, 1000)
    assert.ok(results.every(r => !r.duplicate))
    const state = stateOf(bob)
    const b = await connect({ server: relay.url, identity: bob, state })
    const got = await take(b, 1000)
    assert.deepEqual(got.map(m => m.text), Array.from({ length: 1000 }, (_, i) => `m${i}`))
    assert.deepEqual(got.map(m => m.id), results.map(r => r.id))
    assert.ok(got.every(m => m.from === alice.amid && m.to === bob.amid && m.type === 'chat'))
    await b.close()
    // a new connection with the same state gets nothing again
    const b2 = await connect({ server: relay.url, identity: bob, state })
    assert.deepEqual(await take(b2, 0), [])
    // the next message it gets is one sent after all of them: nothing came again before it
    const last = await alice.send(bob.amid, { text: 'after the thousand' })
    assert.deepEqual((await take(b2, 1)).map(m => [m.id, m.text]), [[last.id, 'after the thousand']])
    await b2.close()
    await alice.close()
    assert.equal((await relay.store.stats()).pending, 0, 'acknowledged messages are gone from the relay')
  })

  it('client - a message being processed when the loop stops is handed over again; one that was finished is not', async () => {
    const relay = await start()
    const bob = await register(relay)
    const alice = await connect({ server: relay.url, identity: createIdentity() })
    for (const t of ['one', 'two', 'three']) await alice.send(bob.amid, { text: t })
    const state = stateOf(bob)
    const b1 = await connect({ server: relay.url, identity: bob, state })
    const it = b1.messages()
    assert.equal((await it.next()).value?.text, 'one')
    assert.equal((await it.next()).value?.text, 'two') // 'one' is now processed
    await b1.close() // crash-like: 'two' was never finished
    const b2 = await connect({ server: relay.url, identity: bob, state })
    assert.deepEqual((await take(b2, 2)).map(m => m.text), ['two', 'three'])
    await b2.close()
    await alice.close()
  })

  it('client - the outbox survives the agent: sends made while the relay is down are delivered after a restart of both', async () => {
    const data = `${dir.path}/outbox-relay`
    let relay = await start({ dataDir: data })
    const port = relay.port
    const bob = await register(relay)
    const aliceId = createIdentity('alice')
    const home = `${dir.path}/alice-home`
    saveIdentity(home, aliceId)
    const a1 = await connect({ server: relay.url, home })
    await a1.send(bob.amid, { text: 'before' })
    await relay.close()
    const pending = [a1.send(bob.amid, { text: 'while down 1' }), a1.send(bob.amid, { text: 'while down 2' })]
    for (const p of pending) p.catch(() => {})
    await waitFor(() => a1.pendingSends === 2, 'the sends to be queued')
    await a1.close() // the agent goes away with two sends unacknowledged
    for (const p of pending) await assert.rejects(p, { code: ErrorCode.ConnectionClosed })
    const st = sqliteState(`${home}/state.db`)
    // end-to-end encrypted in the outbox already: the relay will never see the text
    const queued = st.outboxList()
    assert.deepEqual(queued.map(e => JSON.parse(e.envText).type), ['e2ee', 'e2ee'])
    assert.ok(queued.every(e => !e.envText.includes('while down')))
    st.close()

    relay = await start({ dataDir: data, port })
    const a2 = await connect({ server: relay.url, home })
    await a2.flush({ signal: AbortSignal.timeout(20_000) })
    assert.equal(a2.pendingSends, 0)
    const b = await connect({ server: relay.url, identity: bob, state: stateOf(bob) })
    assert.deepEqual((await take(b, 3)).map(m => m.text), ['before', 'while down 1', 'while down 2'])
    await b.close()
    await a2.close()
  })

  it('client - reports status changes across a relay restart and keeps sending', async () => {
    const data = `${dir.path}/status-relay`
    let relay = await start({ dataDir: data })
    const port = relay.port
    const bob = await register(relay)
    const a = await connect({ server: relay.url, identity: createIdentity(), minBackoffMs: 20, maxBackoffMs: 200 })
    const seen: Status['type'][] = []
    const watching = (async () => { for await (const s of a.status()) seen.push(s.type) })()
    await relay.close()
    await waitFor(() => seen.includes('disconnected'), 'disconnected')
    relay = await start({ dataDir: data, port })
    await waitFor(() => seen.includes('connected'), 'reconnected')
    const r = await a.send(bob.amid, { text: 'after restart' })
    assert.equal(r.duplicate, false)
    await a.close()
    await watching
    assert.equal(seen[0], 'disconnected')
    assert.ok(seen.includes('reconnecting'))
    assert.deepEqual(seen.slice(-2), ['connected', 'closed'])
  })

  it('client - send errors reject with the relay\'s code and leave nothing in the outbox', async () => {
    const relay = await start({ maxEnvelopeBytes: 2048 })
    const a = await connect({ server: relay.url, identity: createIdentity() })
    const stranger = createIdentity()
    await assert.rejects(a.send(stranger.amid, { text: 'hi' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRecipient) && /not registered|no agent/.test(e.message))
    await assert.rejects(a.send(a.amid, { text: 'x'.repeat(4000) }), { code: ErrorCode.EnvelopeTooLarge })
    await assert.rejects(a.send(a.amid, { text: 'x' }, { type: 'Not A Type' }), { code: ErrorCode.InvalidEnvelope })
    assert.equal(a.pendingSends, 0)
    const ok = await a.send(a.amid, { text: 'to myself' })
    assert.equal(ok.duplicate, false)
    await a.close()
  })

  it('client - a retried send with the same id is acknowledged as a duplicate and received once', async () => {
    const relay = await start()
    const bob = await register(relay)
    const a = await connect({ server: relay.url, identity: createIdentity() })
    const first = await a.send(bob.amid, { text: 'once' }, { id: 'retry-0000001' })
    const again = await a.send(bob.amid, { text: 'once' }, { id: 'retry-0000001' })
    assert.deepEqual([first, again], [{ id: 'retry-0000001', duplicate: false }, { id: 'retry-0000001', duplicate: true }])
    const b = await connect({ server: relay.url, identity: bob, state: stateOf(bob) })
    assert.deepEqual((await take(b, 1)).map(m => m.id), ['retry-0000001'])
    // the next message it gets is one sent after the retry: the retry was not delivered again
    await a.send(bob.amid, { text: 'next' }, { id: 'after-retry-01' })
    assert.deepEqual((await take(b, 1)).map(m => m.id), ['after-retry-01'])
    await b.close()
    await a.close()
  })

  it('client - deliveries with a bad signature are dropped with a warning, the stream goes on', async () => {
    const relay = await start({ verifySignatures: false })
    const bob = await register(relay)
    const evil = await rawAgent(relay.wsUrl)
    assert.equal((await evil.auth()).op, 'welcome')
    const forged = evil.envelope(bob.amid, 'original')
    evil.send({ op: 'send', env: { ...forged, payload: { text: 'tampered' } } })
    await evil.next(f => f.op === 'ack')
    evil.send({ op: 'send', env: evil.envelope(bob.amid, 'genuine') })
    await evil.next(f => f.op === 'ack')
    const warnings: AgentMeshError[] = []
    const b = await connect({ server: relay.url, identity: bob, state: stateOf(bob), onWarning: (w) => { warnings.push(w) } })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['genuine'])
    assert.deepEqual(warnings.map(w => w.code), [ErrorCode.BadSignature])
    await b.close()
    evil.close()
    assert.equal((await relay.store.stats()).pending, 0, 'the dropped one was acknowledged too')
  })

  it('client - connect fails with AM_ERR_CONNECT_FAILED for an unreachable relay and AM_ERR_ABORTED when aborted', async () => {
    const id = createIdentity()
    await assert.rejects(connect({ server: 'ws://127.0.0.1:1', identity: id, connectTimeoutMs: 500 }),
      (e: unknown) => AgentMeshError.is(e, ErrorCode.ConnectFailed) && /ECONNREFUSED/.test(e.message))
    await assert.rejects(connect({ server: 'ws://127.0.0.1:1', identity: id, signal: AbortSignal.timeout(200) }), { code: ErrorCode.Aborted })
    await assert.rejects(connect({ server: 'ws://127.0.0.1:1', identity: id, connectTimeoutMs: -1 }), { code: ErrorCode.InvalidArgument })
  })

  it('client - an aborted send stops waiting but the envelope is still delivered', async () => {
    const relay = await start()
    const bob = await register(relay)
    const a = await connect({ server: relay.url, identity: createIdentity() })
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(a.send(bob.amid, { text: 'x' }, { signal: ac.signal }), { code: ErrorCode.Aborted })
    const ac2 = new AbortController()
    const p = a.send(bob.amid, { text: 'late' }, { signal: ac2.signal })
    ac2.abort()
    await assert.rejects(p, { code: ErrorCode.Aborted })
    await a.flush({ signal: AbortSignal.timeout(10_000) })
    const b = await connect({ server: relay.url, identity: bob, state: stateOf(bob) })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['late'])
    await b.close()
    await a.close()
  })
})
