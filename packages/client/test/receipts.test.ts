import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { connect, memoryState, receipts, type Connection, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { silentLogger, type Relay } from '@agentmesh/server'
import { startRelay, tempDir, waitFor } from '@agentmesh/testing'

/** Delivery receipts (docs/protocol.md §26): queued → delivered → processed, inside the E2EE session. */

describe('delivery receipts', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
    dir.cleanup()
  })
  const track = (c: Connection): Connection => { conns.push(c); return c }

  it('receipts - the sender sees delivered, then processed; a message without receipts stays stored', async () => {
    const relay = await startRelay({ logger: silentLogger })
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const b = track(await connect({ server: relay.url, identity: bob, state: memoryState() }))
    const a = track(await connect({ server: relay.url, identity: alice, state: memoryState() }))
    // receipts are applied as alice's connection handles its deliveries: her application reads them
    const aliceReads = new AbortController()
    const aliceGot: Message[] = []
    const reading = (async () => { for await (const m of a.messages({ signal: aliceReads.signal })) aliceGot.push(m) })()
    const plain = await a.send(bob.amid, { text: 'no receipts asked' })
    const asked = await a.send(bob.amid, { text: 'tell me' }, { receipts: true })
    assert.equal(receipts(a).state(asked.id)?.status, 'stored', 'queued: the relay acknowledged it')
    const ac = new AbortController()
    const it = b.messages({ signal: ac.signal })
    const m1 = (await it.next()).value as Message
    assert.equal(m1.text, 'no receipts asked')
    assert.equal(m1.receiptRequested, undefined)
    const m2p = it.next() // processes m1
    const m2 = (await m2p).value as Message
    assert.equal(m2.text, 'tell me')
    assert.equal(m2.receiptRequested, true)
    // handed to bob's application, not yet moved past
    const delivered = await receipts(a).waitFor(asked.id, 'delivered', { timeoutMs: 10_000 })
    assert.equal(delivered.status, 'delivered')
    assert.equal(delivered.processedAt, undefined)
    assert.equal(typeof delivered.deliveredAt, 'number')
    const next = it.next() // bob moves past m2: processed
    const processed = await receipts(a).waitFor(asked.id, 'processed', { timeoutMs: 10_000 })
    assert.equal(processed.status, 'processed')
    assert.ok(processed.processedAt! >= processed.deliveredAt!)
    const log = a.sent({ peer: bob.amid })
    assert.deepEqual(log.map(e => [e.id, e.status]), [[plain.id, 'stored'], [asked.id, 'processed']])
    ac.abort()
    await next
    aliceReads.abort()
    await reading
    assert.deepEqual(aliceGot, [], 'receipts never reach the application')
    // waiting on a message that will not get there: a timeout with a code
    await assert.rejects(receipts(a).waitFor(plain.id, 'delivered', { timeoutMs: 50 }), (e: unknown) => AgentMeshError.is(e, ErrorCode.Timeout))
  })

  it('receipts - queued at the relay while the sender is away, they hold no readable content, and reach it when it is back', async () => {
    const relay = await startRelay({ logger: silentLogger, dataDir: dir.path })
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const aliceState = memoryState()
    const b = track(await connect({ server: relay.url, identity: bob, state: memoryState() }))
    const a = await connect({ server: relay.url, identity: alice, state: aliceState, requestReceipts: true })
    const sent = [await a.send(bob.amid, { text: 'first' }), await a.send(bob.amid, { text: 'second' })]
    await a.close()
    // bob takes both with manual acknowledgement, out of order: processed only in order
    const ac = new AbortController()
    const it = b.messages({ signal: ac.signal, manualAck: true })
    const m1 = (await it.next()).value as Message
    const m2 = (await it.next()).value as Message
    assert.deepEqual([m1.text, m2.text], ['first', 'second'])
    b.ack(m2)
    b.ack(m1)
    // bob's receipts wait in alice's inbox: delivered ×2 and processed ×2, in at most a few messages
    await waitFor(async () => (await relay.store.inbox(alice.amid)).pending >= 1, 'the receipts queued for alice')
    await waitFor(async () => (await relay.store.inbox(bob.amid)).pending === 0, 'bob\'s cursor past both')
    const queued = await relay.store.read(alice.amid, 0, 100)
    assert.ok(queued.length >= 1)
    for (const q of queued) {
      const env = JSON.parse(q.envelope) as { type: string, from: string }
      assert.equal(env.from, bob.amid)
      assert.equal(env.type, 'e2ee', 'the relay sees an encrypted envelope, not a receipt')
      assert.ok(!q.envelope.includes('agentmesh.receipt') && !q.envelope.includes('processed') && !q.envelope.includes(sent[0]!.id), 'no receipt content in the relay\'s database')
    }
    // alice comes back with a connection that only sends (as `agentmesh sent` does): the receipts are applied
    const a2 = track(await connect({ server: relay.url, identity: alice, state: aliceState, deliver: false }))
    await receipts(a2).waitFor(sent[1]!.id, 'processed', { timeoutMs: 10_000 })
    await receipts(a2).waitFor(sent[0]!.id, 'processed', { timeoutMs: 10_000 })
    assert.deepEqual(a2.sent({ peer: bob.amid }).map(e => e.status), ['processed', 'processed'])
    ac.abort()
    await it.next()
  })

  it('manual ack - the cursor moves only over a run of acknowledged messages; what it did not pass is handed over again after a restart', async () => {
    const relay = await startRelay({ logger: silentLogger })
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const bobState = memoryState()
    const a = track(await connect({ server: relay.url, identity: alice, state: memoryState() }))
    const b = await connect({ server: relay.url, identity: bob, state: bobState })
    for (const text of ['m1', 'm2', 'm3']) await a.send(bob.amid, { text })
    const ac = new AbortController()
    const it = b.messages({ signal: ac.signal, manualAck: true })
    const got: Message[] = []
    for (let i = 0; i < 3; i++) got.push((await it.next()).value as Message)
    assert.deepEqual(got.map(m => m.text), ['m1', 'm2', 'm3'], 'handed over without waiting for acks')
    b.ack(got[2]!)
    b.ack(got[1]!)
    // m1 is not acknowledged: nothing is committed, the relay still holds all three
    await new Promise(resolve => setImmediate(resolve))
    assert.equal((await relay.store.inbox(bob.amid)).pending, 3)
    ac.abort()
    await it.next()
    await b.close()
    // a restart: the three come again, in order; acknowledging the first commits the run
    const b2 = track(await connect({ server: relay.url, identity: bob, state: bobState }))
    const it2 = b2.messages({ manualAck: true })
    const again: Message[] = []
    for (let i = 0; i < 3; i++) again.push((await it2.next()).value as Message)
    assert.deepEqual(again.map(m => m.text), ['m1', 'm2', 'm3'])
    b2.ack(again[1]!)
    b2.ack(again[0]!)
    await waitFor(async () => (await relay.store.inbox(bob.amid)).pending === 1, 'm1 and m2 acknowledged at the relay')
    b2.ack(again[2]!)
    await waitFor(async () => (await relay.store.inbox(bob.amid)).pending === 0, 'all three acknowledged')
  })

  it('receipts - asked for a message that cannot carry them: refused with a code', async () => {
    const relay = await startRelay({ logger: silentLogger })
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    track(await connect({ server: relay.url, identity: bob, state: memoryState() }))
    const a = track(await connect({ server: relay.url, identity: alice, state: memoryState() }))
    await assert.rejects(a.send(bob.amid, { text: 'x' }, { receipts: true, encrypt: false }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /end-to-end/.test((e as Error).message))
  })
})
