import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, saveIdentity, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, type ClientState, type Connection, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Gate } from '../src/knock.ts'
import { policyApplied, tempDir, waitFor } from '@agentmesh/testing'

/** What a sender learns about its direct messages (docs/policy.md "What the sender is told"). */

interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[], got: Message[], stop?: () => Promise<void>, conns: Connection[] }

const texts = (a: Agent): string[] => a.got.map(m => m.text ?? '')
const KNOCK_FIRST = { version: 1 as const, default_action: 'hold' as const }

describe('delivery feedback', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const agents: Agent[] = []
  after(async () => {
    for (const a of agents) { await a.stop?.(); for (const c of a.conns) await c.close() }
    for (const r of relays) await r.close()
    dir.cleanup()
  })
  const start = async (): Promise<Relay> => {
    const r = await createRelay({ port: 0, logger: silentLogger })
    relays.push(r)
    return r
  }
  const agent = (name: string): Agent => {
    const a: Agent = { id: createIdentity(name), state: memoryState(), warnings: [], got: [], conns: [] }
    agents.push(a)
    return a
  }
  const open = async (relay: Relay, a: Agent, opts: Parameters<typeof connect>[0] = {}): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) }, ...opts })
    a.conns.push(c)
    if (opts.deliver !== false) {
      const ac = new AbortController()
      const done = (async () => { for await (const m of c.messages({ signal: ac.signal })) a.got.push(m) })()
      const prev = a.stop
      a.stop = async () => { ac.abort(); await done; await prev?.() }
    }
    return c
  }

  /** Bob is knock-first; Alice knocked and Bob accepted: she holds his grant. */
  const granted = async (): Promise<{ relay: Relay, alice: Agent, bob: Agent, a: Connection, b: Connection }> => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const b = await open(relay, bob, { policy: KNOCK_FIRST })
    const a = await open(relay, alice)
    const k = await a.knock(bob.id.amid, { category: 'question', summary: 'may I write?' })
    await waitFor(() => b.knocks().length === 1, 'the knock to be held')
    await b.answerKnock(k.id, 'accept')
    await waitFor(() => a.grants().received.length === 1, 'alice\'s grant')
    return { relay, alice, bob, a, b }
  }

  it('a message the receiver refuses is marked refused at the sender, with the code and what to do', async () => {
    const relay = await start()
    const alice = agent('alice')
    const home = join(dir.path, 'bob')
    const bobId = createIdentity('bob')
    saveIdentity(home, bobId)
    const bob: Agent = { id: bobId, state: memoryState(), warnings: [], got: [], conns: [] }
    agents.push(bob)
    // bob starts open (no policy file): alice writes without a grant
    const b = await connect({ server: relay.url, home, onWarning: (w) => { bob.warnings.push(w) } })
    bob.conns.push(b)
    const ac = new AbortController()
    const reading = (async () => { for await (const m of b.messages({ signal: ac.signal })) bob.got.push(m) })()
    bob.stop = async () => { ac.abort(); await reading }
    const a = await open(relay, alice)
    await a.send(bobId.amid, { text: 'open door' })
    await waitFor(() => texts(bob).includes('open door'), 'the first message')
    // bob turns knock-first while alice's view of his profile is still the open one
    const applied = policyApplied(join(home, 'policy.json'))
    writeFileSync(join(home, 'policy.json'), JSON.stringify(KNOCK_FIRST))
    await applied
    const second = await a.send(bobId.amid, { text: 'closed door' })
    await waitFor(() => a.sent().some(e => e.id === second.id && e.status === 'refused'), 'alice to learn of the refusal')
    const entry = a.sent().find(e => e.id === second.id)!
    assert.equal(entry.code, ErrorCode.NoGrant)
    assert.match(entry.reason!, new RegExp(`knock first: agentmesh knock ${bobId.amid}`))
    assert.equal(JSON.stringify(a.sent()).includes('closed door'), false, 'the status list holds no content')
    assert.ok(alice.warnings.some(w => w.code === ErrorCode.NoGrant && w.message.includes(second.id)), 'alice is warned, naming the message')
    assert.deepEqual(texts(bob), ['open door'])
    // the profile now says knock: alice's next attempt fails before it is sent
    const fresh = agent('fresh')
    const f = await open(relay, fresh)
    await assert.rejects(f.send(bobId.amid, { text: 'hi' }), { code: ErrorCode.NoGrant })
  })

  it('a peer that lost its state: the grant it issued comes back with the sender\'s next messages, and nothing is lost', async () => {
    const { relay, alice, bob, a, b } = await granted()
    await a.send(bob.id.amid, { text: 'before' })
    await waitFor(() => texts(bob).includes('before'), 'the first message')
    // bob loses state.db: no sessions, no grants
    await bob.stop!()
    bob.stop = undefined
    await b.close()
    bob.state = memoryState()
    bob.got = []
    const b2 = await open(relay, bob, { policy: KNOCK_FIRST })
    assert.deepEqual(b2.grants().issued, [])
    const sends = []
    for (let i = 0; i < 5; i++) sends.push(await a.send(bob.id.amid, { text: `after ${i}` }))
    await waitFor(() => bob.got.length === 5, 'all five after the loss')
    assert.deepEqual(bob.got.map(m => [m.id, m.text]), sends.map((s, i) => [s.id, `after ${i}`]), 'whole, in order, under the ids alice knows')
    assert.equal(b2.grants().issued.length, 1, 'the grant is back')
    assert.ok(b2.safetyLog().some(e => e.event === 'grant_restored' && e.peer === alice.id.amid))
    assert.equal(bob.warnings.some(w => w.code === ErrorCode.NoGrant), false, 'nothing refused for want of a grant')
  })

  it('a grant bob never issued, or one he revoked, is not restored', async () => {
    const { alice, a, b } = await granted()
    const grant = a.grants().received[0]!
    assert.equal(await b.revokeGrant(alice.id.amid), true)
    await waitFor(() => a.grants().received.length === 0, 'alice to drop the revoked grant')
    // a revoked grant presented again (say alice kept a copy) is refused
    const gate = (b as unknown as { cfg: { gate: Gate } }).cfg.gate // the gate's restore(), as a new session's grant reaches it
    gate.restore(alice.id.amid, grant)
    assert.deepEqual(b.grants().issued, [])
    // a grant signed by someone else, naming bob, is not bob's to restore
    const mallory = createIdentity('mallory')
    gate.restore(alice.id.amid, { ...grant, grantor: mallory.amid })
    assert.deepEqual(b.grants().issued, [])
  })

  it('a connection that only sends acts on a knock answer waiting for it, and leaves ordinary messages for the listener', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const b = await open(relay, bob, { policy: KNOCK_FIRST })
    // alice knocks and goes away before the answer
    const a1 = await open(relay, alice, { deliver: false })
    const k = await a1.knock(bob.id.amid, { category: 'question', summary: 'may I write?' })
    await a1.close()
    await waitFor(() => b.knocks().length === 1, 'the knock to be held')
    await b.answerKnock(k.id, 'accept')
    await b.send(alice.id.amid, { text: 'welcome, alice' }) // an ordinary message, after the answer
    // a send-only connection: the answer is acted on before connect() returns
    const a2 = await open(relay, alice, { deliver: false })
    assert.equal(a2.grants().received.length, 1, 'the grant arrived through a connection that only sends')
    await a2.send(bob.id.amid, { text: 'thanks' })
    await waitFor(() => texts(bob).includes('thanks'), 'alice\'s message')
    await a2.close()
    // the ordinary message is still there for alice's listener, once
    const a3 = await open(relay, alice)
    await waitFor(() => alice.got.length >= 1, 'bob\'s message')
    assert.deepEqual(texts(alice), ['welcome, alice'])
    await a3.close()
  })
})
