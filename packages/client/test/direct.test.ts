import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Relay } from '@agentmesh/server'
import { createIdentity, signEnvelope } from '@agentmesh/crypto'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { directPathOf } from '@agentmesh/client/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { DirectSender, createAgentNode } from '@agentmesh/p2p'
import { waitFor } from '@agentmesh/testing'
import type { P2PLinks } from '../src/p2p.ts'
import { readersHarness, type Reader } from './sdk-fixtures.ts'

const links = (c: Connection): P2PLinks => directPathOf(c) as P2PLinks
const texts = (a: Reader, from?: Reader): string[] => a.got.filter(m => from === undefined || m.from === from.id.amid).map(m => m.text ?? '')

describe('direct links', { timeout: 120_000 }, () => {
  const { start, agent, open } = readersHarness({ minBackoffMs: 50, maxBackoffMs: 200 })
  /** Two agents on p2p, each knowing the other's address, with an end-to-end session (made through the relay). */
  const pair = async (relay: Relay, p2p: Record<string, unknown> = {}): Promise<[Reader, Reader, Connection, Connection]> => {
    const [alice, bob] = [agent('alice'), agent('bob')]
    const b = await open(relay, bob, { p2p: { ...p2p } })
    const a = await open(relay, alice, { p2p: { ...p2p, peers: { [bob.id.amid]: b.p2pAddresses() } } })
    links(b).addPeer(alice.id.amid, a.p2pAddresses())
    return [alice, bob, a, b]
  }

  it('direct - two agents talk directly (the relay stores none of it), then keep talking with the relay stopped', async () => {
    const relay = await start()
    const [alice, bob, a, b] = await pair(relay)
    const before = relay.stats().received
    for (let i = 0; i < 5; i++) await a.send(bob.id.amid, { text: `a${i}` })
    await waitFor(() => bob.got.length === 5, 'bob to get five direct messages')
    for (let i = 0; i < 3; i++) await b.send(alice.id.amid, { text: `b${i}` })
    await waitFor(() => alice.got.length === 3, 'alice to get three direct messages')
    assert.deepEqual(texts(bob), ['a0', 'a1', 'a2', 'a3', 'a4'])
    assert.deepEqual(texts(alice), ['b0', 'b1', 'b2'])
    assert.ok(bob.got.every(m => m.path === 'direct' && m.seq === 0 && m.encrypted && m.from === alice.id.amid && m.to === bob.id.amid))
    assert.equal(relay.stats().received, before, 'the relay received none of the direct messages')
    const peers = await a.peers()
    const pb = peers.find(p => p.amid === bob.id.amid)
    assert.equal(pb?.path, 'direct')
    assert.equal(typeof pb?.rttMs, 'number')
    assert.ok(pb!.addrs.length > 0 && pb!.addrs.every(x => x.startsWith('/ip4/127.0.0.1/tcp/')))

    await relay.close()
    await waitFor(() => !a.connected && !b.connected, 'both agents to see the relay gone')
    const r1 = await a.send(bob.id.amid, { text: 'relay is down' })
    assert.deepEqual(r1, { id: r1.id, duplicate: false, path: 'direct' })
    await b.send(alice.id.amid, { text: 'still here' })
    await waitFor(() => bob.got.length === 6 && alice.got.length === 4, 'the messages sent while the relay is down')
    assert.equal(texts(bob).at(-1), 'relay is down')
    assert.equal(texts(alice).at(-1), 'still here')
    assert.equal(a.link().outbox, 0)
  })

  it('direct - a third agent without a direct path (no address, a refused dial) gets its messages through the relay', async () => {
    const relay = await start()
    const [alice, , a] = await pair(relay)
    // carol keeps her addresses private (not published in the registry): nothing to dial
    const carol = agent('carol')
    await open(relay, carol, { p2p: { publish: false } })
    const dave = agent('dave')
    await open(relay, dave, { p2p: true })
    // dave's address is a port nobody listens on: the dial is refused
    links(a).addPeer(dave.id.amid, ['/ip4/127.0.0.1/tcp/1'])
    const before = relay.stats().received
    await a.send(carol.id.amid, { text: 'to carol' })
    await a.send(dave.id.amid, { text: 'to dave' })
    await a.send(dave.id.amid, { text: 'to dave again' })
    await waitFor(() => carol.got.length === 1 && dave.got.length === 2, 'carol and dave to get their messages')
    assert.deepEqual(texts(carol), ['to carol'])
    assert.deepEqual(texts(dave), ['to dave', 'to dave again'])
    assert.ok(carol.got.every(m => m.path === undefined && m.seq > 0), 'delivered by the relay')
    assert.ok(dave.got.every(m => m.path === undefined && m.seq > 0), 'delivered by the relay')
    assert.ok(relay.stats().received >= before + 3)
    const peers = await a.peers()
    assert.equal(peers.find(p => p.amid === dave.id.amid)?.path, 'relay')
    assert.equal(peers.find(p => p.amid === dave.id.amid)?.rttMs, null)
    assert.deepEqual(alice.warnings.filter(w => w.code !== ErrorCode.ConnectionClosed).map(w => w.code), [])
  })

  it('direct - with no bootstrap peer, an agent finds another through the addresses it signed in the registry, says so, and talks directly', async () => {
    const relay = await start()
    const [alice, bob] = [agent('alice'), agent('bob')]
    const b = await open(relay, bob, { p2p: true })
    // bob's profile holds his signed peer record: his node's addresses
    const profile = await (await fetch(`${relay.url}/api/v1/agents/${bob.id.amid}`)).json() as { p2p?: { addrs: string[] } }
    assert.deepEqual(profile.p2p?.addrs, b.p2pAddresses())
    const a = await open(relay, alice, { p2p: true })
    const before = relay.stats().received
    await a.send(bob.id.amid, { text: 'found you' })
    await waitFor(() => bob.got.length === 1, 'bob to get the message')
    assert.deepEqual(bob.got.map(m => [m.text, m.path]), [['found you', 'direct']])
    assert.equal(relay.stats().received, before, 'the message did not go through the relay')
    const said = alice.warnings.filter(w => w.message.startsWith('discovery:'))
    assert.equal(said.length, 1)
    assert.match(said[0]!.message, /no DHT bootstrap peer is configured; using the addresses .* signed in the registry/)
    assert.equal((await a.peers()).find(p => p.amid === bob.id.amid)?.path, 'direct')
  })

  it('direct - a link cut while N messages are in flight loses none and hands each to the application once, in order', async () => {
    const relay = await start()
    const [alice, bob, a, b] = await pair(relay)
    const N = 200
    // when bob's application has the 20th message, his node drops the connection at once (no goodbye)
    let cutAt = -1
    bob.onMessage = (m) => {
      if (m.text !== 'm19') return
      cutAt = bob.got.length
      for (const c of links(b).node.getConnections()) c.abort(new Error('cut by the test'))
    }
    const sends: Array<Promise<unknown>> = []
    for (let i = 0; i < N; i++) sends.push(a.send(bob.id.amid, { text: `m${i}` }))
    const results = await Promise.allSettled(sends)
    assert.deepEqual(results.filter(r => r.status === 'rejected'), [])
    await waitFor(() => bob.got.length >= N, `bob to get ${N} messages`, 30_000)
    await a.flush({ signal: AbortSignal.timeout(10_000) })
    assert.equal(cutAt, 20)
    assert.deepEqual(texts(bob), Array.from({ length: N }, (_, i) => `m${i}`))
    assert.equal(new Set(bob.got.map(m => m.id)).size, N)
    // the cut happened with messages in flight: the first ones came directly, the rest (from where the link broke) through the relay
    const paths = bob.got.map(m => m.path ?? 'relay')
    const firstRelayed = paths.indexOf('relay')
    assert.ok(firstRelayed >= 20, `the relay took over at ${firstRelayed}`)
    assert.ok(paths.slice(0, 20).every(p => p === 'direct'))
    void alice
  })

  it('direct - a copy on each path (no direct ack in time) reaches the application once', async () => {
    const relay = await start()
    // every direct ack comes too late: each envelope goes through the relay too
    const [alice, bob, a] = await pair(relay, { directAckTimeoutMs: 1 })
    const N = 20
    for (let i = 0; i < N; i++) await a.send(bob.id.amid, { text: `d${i}` })
    await waitFor(() => bob.got.length >= N, 'bob to get the messages')
    // both copies had time to arrive: the direct link answers within a few ms, the relay too
    await a.flush({ signal: AbortSignal.timeout(10_000) })
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.deepEqual(texts(bob), Array.from({ length: N }, (_, i) => `d${i}`))
    assert.ok(relay.stats().received >= N, 'the relay carried them too')
    void alice
  })

  it('direct - a peer presenting another key than the AMID it claims is refused (AM_ERR_SENDER_MISMATCH)', async () => {
    const relay = await start()
    const [alice, bob, a, b] = await pair(relay)
    await a.send(bob.id.amid, { text: 'genuine' }, { encrypt: false })
    await waitFor(() => bob.got.length === 1, 'the genuine message')
    const envText = JSON.stringify(bob.got[0]!.envelope)
    const mallory = createIdentity('mallory')
    const node = await createAgentNode({ keys: mallory })
    const sender = new DirectSender(node)
    try {
      // alice's own signed envelope replayed, and a fresh one "from" alice, both by mallory's node
      const replay = await sender.send(bob.id.amid, bob.got[0]!.id, envText, b.p2pAddresses(), 5000)
      assert.equal(replay.type, 'refused')
      assert.equal((replay as { code: string }).code, ErrorCode.SenderMismatch)
      const forged = JSON.stringify({ ...bob.got[0]!.envelope, id: '0190a0a0-0000-7000-8000-000000000001' })
      const r = await sender.send(bob.id.amid, '0190a0a0-0000-7000-8000-000000000001', forged, b.p2pAddresses(), 5000)
      assert.deepEqual(r.type === 'refused' ? r.code : r.type, ErrorCode.SenderMismatch)
    } finally {
      await sender.stop()
      await node.stop()
    }
    assert.deepEqual(texts(bob), ['genuine'])
    assert.equal(bob.warnings.filter(w => w.code === ErrorCode.SenderMismatch).length, 2)
    void alice
  })

  it('direct - an acknowledged direct message is kept: a receiver that stops before processing it gets it on its next connect, once', async () => {
    const relay = await start()
    const [alice, bob] = [agent('alice'), agent('bob')]
    // bob's first connection never reads: the messages wait in its state, acknowledged
    const b1 = await connect({ server: relay.url, identity: bob.id, state: bob.state, p2p: true })
    const a = await open(relay, alice, { p2p: { peers: { [bob.id.amid]: b1.p2pAddresses() } } })
    const before = relay.stats().received
    const r = await Promise.all([0, 1, 2].map(async i => await a.send(bob.id.amid, { text: `kept${i}` })))
    assert.deepEqual(r.map(x => x.duplicate), [false, false, false])
    assert.equal(relay.stats().received, before, 'acknowledged directly, not through the relay')
    await b1.close()
    const b2 = await open(relay, bob)
    await waitFor(() => bob.got.length === 3, 'the kept messages after the restart')
    assert.deepEqual(texts(bob), ['kept0', 'kept1', 'kept2'])
    assert.ok(bob.got.every(m => m.path === 'direct'))
    assert.equal(bob.state.recordCount('direct-inbox'), 0, 'committed: the kept copies are gone')
    void b2
  })

  it('direct - the receiver\'s rate limit holds direct messages back as relayed ones (acknowledged, kept, the sender told)', async () => {
    const relay = await start()
    const [alice, bob] = [agent('alice'), agent('bob')]
    const b = await open(relay, bob, { p2p: true, policy: { version: 1, open: true, rate_limits: { messages_per_minute: 2 } } })
    const a = await open(relay, alice, { p2p: { peers: { [bob.id.amid]: b.p2pAddresses() } } })
    const sent = []
    for (let i = 0; i < 4; i++) sent.push(await a.send(bob.id.amid, { text: `r${i}` }))
    assert.deepEqual(sent.map(r => r.path), ['direct', 'direct', 'direct', 'direct'])
    await waitFor(() => bob.warnings.filter(w => w.code === ErrorCode.RateLimited).length === 2, 'bob to hold two back')
    assert.deepEqual(texts(bob), ['r0', 'r1'])
    const held = bob.warnings.filter(w => w.code === ErrorCode.RateLimited).map(w => w.message)
    assert.ok(held[0]!.includes(`held back message ${sent[2]!.id}`) && held[1]!.includes(`held back message ${sent[3]!.id}`), held.join(' | '))
    // the sender hears of it, as through the relay (a delivery notice)
    await waitFor(() => alice.warnings.some(w => w.code === ErrorCode.RateLimited && w.message.includes('held back')), 'alice to be told')
  })

  it('direct - connect refuses p2p options that are not what they should be, naming them, before it connects', async () => {
    const relay = await start()
    const id = createIdentity('x')
    const bad: Array<[unknown, RegExp]> = [
      [{ directAckTimeoutMs: -1 }, /p2p\.directAckTimeoutMs must be a positive integer/],
      [{ maxDirectPending: 1.5 }, /p2p\.maxDirectPending must be a positive integer/],
      [{ limits: { bogus: 1 } }, /p2p\.limits\.bogus is not a direct-link bound/],
      [{ limits: { maxInFlight: 0 } }, /p2p\.limits\.maxInFlight must be a positive integer/],
      [{ listen: ['tcp:4001'] }, /p2p\.listen must be a list of multiaddrs/],
      [{ peers: { 'not-an-amid': ['/ip4/127.0.0.1/tcp/1'] } }, /p2p\.peers: "not-an-amid" is not an AMID/],
    ]
    for (const [p2p, msg] of bad) {
      await assert.rejects(connect({ server: relay.url, identity: id, state: memoryState(), p2p: p2p as never }), (e: AgentMeshError) => {
        assert.equal(e.code, ErrorCode.InvalidArgument)
        assert.match(e.message, msg)
        return true
      })
    }
  })

  it('direct - what only the relay may carry is refused on a direct link, each with its code', async () => {
    const relay = await start()
    const [, bob, , b] = await pair(relay)
    const mallory = createIdentity('mallory')
    const node = await createAgentNode({ keys: mallory })
    const sender = new DirectSender(node)
    const id = (n: number): string => `0190a0a0-0000-7000-8000-00000000000${n}`
    const send = async (n: number, env: object): Promise<string> => {
      const r = await sender.send(bob.id.amid, id(n), JSON.stringify(env), b.p2pAddresses(), 5000)
      return r.type === 'refused' ? r.code : r.type
    }
    try {
      assert.equal(await send(1, signEnvelope(mallory, { id: id(1), to: bob.id.amid, type: 'task.request', payload: { command: 'status' } })), ErrorCode.ReservedType)
      assert.equal(await send(2, signEnvelope(mallory, { id: id(2), to: bob.id.amid, type: 'notice', payload: {} })), ErrorCode.ReservedType)
      assert.equal(await send(3, { ...signEnvelope(mallory, { id: id(3), to: bob.id.amid, type: 'chat', payload: { text: 'x' } }), via: relay.relayAmid }), ErrorCode.AttestationRefused)
      assert.equal(await send(4, signEnvelope(mallory, { id: id(4), to: '#general', type: 'chat', payload: { text: 'x' } })), ErrorCode.InvalidEnvelope)
      assert.equal(await send(5, { ...signEnvelope(mallory, { id: id(5), to: bob.id.amid, type: 'chat', payload: { text: 'x' } }), payload: { text: 'changed' } }), ErrorCode.BadSignature)
      assert.equal(await send(6, { v: 'agentmesh/0.2', id: id(6), from: mallory.amid }), ErrorCode.InvalidEnvelope)
      // an open agent takes a stranger's signed message: the same one answers ack, then ack duplicate
      const ok = signEnvelope(mallory, { id: id(7), to: bob.id.amid, type: 'chat', payload: { text: 'hello from mallory' } })
      assert.deepEqual(await sender.send(bob.id.amid, id(7), JSON.stringify(ok), b.p2pAddresses(), 5000), { type: 'ack', duplicate: false })
      assert.deepEqual(await sender.send(bob.id.amid, id(7), JSON.stringify(ok), b.p2pAddresses(), 5000), { type: 'ack', duplicate: true })
    } finally {
      await sender.stop()
      await node.stop()
    }
    await waitFor(() => bob.got.length === 1, 'the one message taken')
    assert.deepEqual(bob.got.map(m => [m.from, m.text, m.path, m.encrypted]), [[mallory.amid, 'hello from mallory', 'direct', false]])
  })

  it('direct - a stranger\'s direct message is refused under a knock-first policy, and the sender gets the code', async () => {
    const relay = await start()
    const [stranger, bob] = [agent('stranger'), agent('bob')]
    const b = await open(relay, bob, { p2p: true, policy: { version: 1 } })
    const s = await open(relay, stranger, { p2p: { peers: { [bob.id.amid]: b.p2pAddresses() } } })
    const before = relay.stats().received
    // unencrypted: no first-contact check before the transport, so the receiver's gate answers
    await assert.rejects(s.send(bob.id.amid, { text: 'hello?' }, { encrypt: false }), (e: AgentMeshError) => {
      assert.equal(e.code, ErrorCode.NoGrant)
      assert.match(e.message, /refused message .* on the direct link: .* takes messages only from agents it granted; knock first/)
      return true
    })
    // encrypted: refused before it leaves (the profile says knock), as through the relay
    await assert.rejects(s.send(bob.id.amid, { text: 'hello again' }), (e: AgentMeshError) => e.code === ErrorCode.NoGrant)
    assert.equal(relay.stats().received, before, 'nothing went through the relay')
    assert.deepEqual(bob.got, [])
    assert.ok(bob.warnings.some(w => w.code === ErrorCode.NoGrant && w.message.startsWith('refused direct message')))
    assert.equal(s.link().outbox, 0)
  })
})
