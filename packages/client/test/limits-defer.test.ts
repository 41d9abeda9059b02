/**
 * A limit delays, it never drops (docs/policy.md "Rate limits", "Circuit breaker"): the gate on its
 * own with a fake clock, then agents over a relay.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, sqliteState, type ClientState, type Connection, type Message } from '@agentmesh/client'
import { tempDir } from '@agentmesh/testing'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import { E2ee } from '../src/e2ee.ts'
import { DeferralFull, Gate, KNOCK_TYPE, type DeliveryNotice } from '../src/knock.ts'
import { parsePolicy, type PolicyFile } from '../src/policy.ts'

const T0 = Date.now()

/** Waits on the real clock (tests here may mock Date). */
async function until (cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

// ---------------------------------------------------------------------------------------------
// The gate alone: messages in, a fake clock, the connection's part played by the test

interface GateRig {
  gate: Gate
  state: ClientState
  me: Identity
  warnings: AgentMeshError[]
  notices: Array<[string, DeliveryNotice]>
  /** reopens the gate over the same state: a restart of the receiver */
  restart: () => Promise<GateRig>
}

async function gateRig (policy: PolicyFile, state: ClientState = memoryState(), me: Identity = createIdentity('bob')): Promise<GateRig> {
  const warnings: AgentMeshError[] = []
  const notices: Array<[string, DeliveryNotice]> = []
  const e2ee = new E2ee({ identity: me, state, httpBase: 'http://127.0.0.1:9', prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e9, onWarning: (w) => { warnings.push(w) } })
  const gate = await Gate.open({
    identity: me,
    e2ee,
    policy: parsePolicy(JSON.stringify(policy), 'test'),
    onWarning: (w) => { warnings.push(w) },
    onKnock: () => {},
    send: async () => ({}),
    notify: (peer, n) => { notices.push([peer, n]) },
  })
  return { gate, state, me, warnings, notices, restart: async () => await gateRig(policy, state, me) }
}

let nextId = 0
function msg (from: string, to: string, text: string, type = 'chat', payload: Record<string, unknown> = { text }): Message {
  const id = `msg-${String(nextId++).padStart(8, '0')}`
  const envelope = { v: 1, id, from, to, type: 'e2ee', ts: T0, payload: { ct: 'x' }, sig: 'x' } as unknown as Envelope
  return { id, from, to, type, ts: T0, seq: nextId, payload, ...(typeof payload.text === 'string' ? { text: payload.text } : {}), encrypted: true, envelope }
}

/** The peer knocks and the policy (accept) grants it. */
async function granted (r: GateRig, peer: Identity): Promise<void> {
  const k = msg(peer.amid, r.me.amid, '', KNOCK_TYPE, { id: `knock-${peer.amid.slice(2, 12)}`, intent: { category: 'question', summary: 'hi', scopes: ['chat'], duration_s: 365 * 86400 } })
  assert.equal(await r.gate.inbound(k, T0), undefined)
  assert.equal(r.gate.grants(T0).issued.length > 0, true)
}

/** What the connection does with released messages: judge each again, then commit it. */
async function release (r: GateRig, now: number): Promise<string[]> {
  const out: string[] = []
  for (const m of r.gate.releasable(now)) {
    const judged = await r.gate.inbound(m, now)
    if (judged !== undefined) out.push(judged.text!)
    r.gate.released(m)
  }
  return out
}

describe('limits defer - the gate', () => {
  it('defer - over the rate limit, messages are held back, then taken in order as the window allows; the sender is told once per window', async () => {
    const r = await gateRig({ version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 5 } })
    const alice = createIdentity('alice')
    await granted(r, alice)
    const sent = Array.from({ length: 12 }, (_, i) => msg(alice.amid, r.me.amid, `m${i}`))
    const got: string[] = []
    for (const m of sent) { const j = await r.gate.inbound(m, T0); if (j !== undefined) got.push(j.text!) }
    assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4'])
    // every held-back message is named in a warning; the sender is told once, with the time
    const held = r.warnings.filter(w => w.code === ErrorCode.RateLimited)
    assert.deepEqual(held.map(w => sent.findIndex(m => w.message.includes(`held back message ${m.id} `))), [5, 6, 7, 8, 9, 10, 11])
    assert.equal(r.notices.length, 1)
    const [peer, notice] = r.notices[0]!
    assert.equal(peer, alice.amid)
    assert.deepEqual({ ...notice, until: undefined }, { id: sent[5]!.id, status: 'held', code: ErrorCode.RateLimited, reason: notice.reason, until: undefined })
    assert.ok(notice.until! > T0 && notice.until! <= T0 + 61_000, String(notice.until! - T0))
    assert.doesNotMatch(notice.reason, /m5/, 'no content')
    // nothing is due before the window moves on
    assert.deepEqual(r.gate.releasable(T0 + 30_000), [])
    // a message arriving meanwhile waits behind the held-back ones, even once the window allows
    const late = msg(alice.amid, r.me.amid, 'late')
    assert.equal(await r.gate.inbound(late, T0 + 61_000), undefined)
    got.push(...await release(r, T0 + 61_000))
    got.push(...await release(r, T0 + 122_000))
    assert.deepEqual(got, [...sent.map(m => m.text), 'late'], 'all 13, in order')
    assert.deepEqual(r.gate.deferredCounts(), new Map())
    assert.equal(r.notices.length, 2, 'told again in the next window (the window the second batch waited in)')
  })

  it('defer - a peer\'s backlog does not hold up another peer', async () => {
    const r = await gateRig({ version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 2 } })
    const [alice, carol] = [createIdentity('alice'), createIdentity('carol')]
    await granted(r, alice)
    await granted(r, carol)
    const judged: string[] = []
    for (const m of [msg(alice.amid, r.me.amid, 'a0'), msg(alice.amid, r.me.amid, 'a1'), msg(alice.amid, r.me.amid, 'a2'), msg(carol.amid, r.me.amid, 'c0'), msg(alice.amid, r.me.amid, 'a3'), msg(carol.amid, r.me.amid, 'c1')]) {
      const j = await r.gate.inbound(m, T0)
      if (j !== undefined) judged.push(j.text!)
    }
    assert.deepEqual(judged, ['a0', 'a1', 'c0', 'c1'])
    assert.deepEqual(r.gate.deferredCounts(), new Map([[alice.amid, 2]]))
  })

  it('defer - held-back messages survive a restart of the receiver and are taken once', async () => {
    const r = await gateRig({ version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 2 } })
    const alice = createIdentity('alice')
    await granted(r, alice)
    const sent = Array.from({ length: 6 }, (_, i) => msg(alice.amid, r.me.amid, `m${i}`))
    const got: string[] = []
    for (const m of sent) { const j = await r.gate.inbound(m, T0); if (j !== undefined) got.push(j.text!) }
    // the relay delivers a held-back one again (its ack was lost in the crash): it is not taken twice
    assert.equal(await r.gate.inbound(sent[3]!, T0 + 1), undefined)
    r.gate.close()
    const r2 = await r.restart()
    assert.deepEqual(r2.gate.deferredCounts(), new Map([[alice.amid, 4]]))
    for (let t = 1; t <= 3; t++) got.push(...await release(r2, T0 + t * 61_000))
    assert.deepEqual(got, sent.map(m => m.text))
    assert.deepEqual(r2.gate.releasable(T0 + 10 * 61_000), [])
  })

  it('defer - bounded: beyond deferred_per_peer the message is not taken (DeferralFull: the connection leaves it at the relay)', async () => {
    const r = await gateRig({ version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 1, deferred_per_peer: 2 } })
    const alice = createIdentity('alice')
    await granted(r, alice)
    const sent = Array.from({ length: 4 }, (_, i) => msg(alice.amid, r.me.amid, `m${i}`))
    assert.equal((await r.gate.inbound(sent[0]!, T0))?.text, 'm0')
    assert.equal(await r.gate.inbound(sent[1]!, T0), undefined)
    assert.equal(await r.gate.inbound(sent[2]!, T0), undefined)
    await assert.rejects(r.gate.inbound(sent[3]!, T0), (e: unknown) => e instanceof DeferralFull && AgentMeshError.is(e, ErrorCode.RateLimited) && e.message.includes(sent[3]!.id))
    // once one held-back message went, the next one finds room
    assert.deepEqual(await release(r, T0 + 61_000), ['m1'])
    assert.equal(await r.gate.inbound(sent[3]!, T0 + 61_000), undefined)
    assert.deepEqual(r.gate.deferredCounts(), new Map([[alice.amid, 2]]))
  })

  it('breaker - a one-way stream of thousands never trips the loop guard; a ping-pong does, its messages are held back and sends refused', async () => {
    const r = await gateRig({ version: 1, default_action: 'accept', breaker: { threshold: 4, cooldown_s: 30 } })
    const alice = createIdentity('alice')
    await granted(r, alice)
    for (let i = 0; i < 5000; i++) assert.equal((await r.gate.inbound(msg(alice.amid, r.me.amid, 'same words'), T0))?.text, 'same words')
    assert.equal(r.warnings.length, 0, JSON.stringify(r.warnings))
    // a ping-pong at once (10 s after the stream: the first ping is no turn): the 5th turn trips it
    const t = T0 + 10_000
    for (let i = 0; i < 2; i++) {
      r.gate.beforeSend(alice.amid, t, { type: 'chat', payload: { text: 'ping' } })
      assert.ok(await r.gate.inbound(msg(alice.amid, r.me.amid, 'pong'), t))
    }
    r.gate.beforeSend(alice.amid, t, { type: 'chat', payload: { text: 'ping' } }) // turn 4
    const tripping = msg(alice.amid, r.me.amid, 'pong')
    assert.equal(await r.gate.inbound(tripping, t), undefined) // 5: held back
    assert.ok(r.warnings.some(w => w.code === ErrorCode.CircuitOpen && w.message.includes(`opened by message ${tripping.id}`)))
    assert.throws(() => { r.gate.beforeSend(alice.amid, t + 1000) }, (e: unknown) => AgentMeshError.is(e, ErrorCode.CircuitOpen) && e.message.includes(alice.amid) && e.message.includes(new Date(t + 30_000).toISOString()))
    assert.deepEqual(r.notices.map(([, n]) => [n.id, n.status, n.code, n.until]), [[tripping.id, 'held', ErrorCode.CircuitOpen, t + 30_000]])
    assert.deepEqual(r.gate.safetyLog().map(e => e.event), ['knock_accepted', 'breaker_open'])
    // after the cooldown it comes through; nothing was blocked
    assert.deepEqual(await release(r, t + 30_000), ['pong'])
    assert.deepEqual(r.gate.blocks(), [])
  })

  it('breaker - a loop between a receiving process and sending processes of the same agent (listen | bot | send) trips it too', async () => {
    const policy: PolicyFile = { version: 1, default_action: 'accept', breaker: { threshold: 4, cooldown_s: 30 } }
    const listen = await gateRig(policy)
    const alice = createIdentity('alice')
    await granted(listen, alice)
    // each answer goes out through a `send` process of its own: a gate of its own over the same state
    const sendOnce = async (t: number): Promise<void> => {
      const send = await gateRig(policy, listen.state, listen.me)
      try { send.gate.beforeSend(alice.amid, t, { type: 'chat', payload: { text: 'ping' } }) } finally { send.gate.close() }
    }
    const t = T0
    const passed: boolean[] = []
    for (let i = 0; i < 3; i++) {
      passed.push((await listen.gate.inbound(msg(alice.amid, listen.me.amid, 'pong'), t + i * 100)) !== undefined)
      await sendOnce(t + i * 100 + 50)
    }
    // in, out, in, out, in, out: 5 turns; the next answer is held back
    assert.deepEqual(passed, [true, true, true])
    assert.equal(await listen.gate.inbound(msg(alice.amid, listen.me.amid, 'pong'), t + 400), undefined)
    assert.ok(listen.warnings.some(w => w.code === ErrorCode.CircuitOpen && /opened by a message this agent sent/.test(w.message)), JSON.stringify(listen.warnings.map(w => w.message)))
    // and a new send process sees the open breaker through the state
    await assert.rejects(sendOnce(t + 500), { code: ErrorCode.CircuitOpen })
  })

  it('breaker - trip counts survive a restart; with auto_block_after the peer is blocked (logged, warned, told), and unblocked by the owner', async () => {
    // deny_action reject: a blocked peer is told (under the default, silent, it is not)
    const policy: PolicyFile = { version: 1, default_action: 'accept', deny_action: 'reject', breaker: { threshold: 1, cooldown_s: 10, auto_block_after: 2 } }
    const r = await gateRig(policy)
    const alice = createIdentity('alice')
    await granted(r, alice)
    const loop = async (g: GateRig, t: number): Promise<void> => {
      g.gate.beforeSend(alice.amid, t)
      await g.gate.inbound(msg(alice.amid, g.me.amid, 'pong'), t)
      try { g.gate.beforeSend(alice.amid, t) } catch {}
    }
    await loop(r, T0)
    assert.equal(r.gate.safetyLog().filter(e => e.event === 'breaker_open').length, 1)
    r.gate.close()
    const r2 = await r.restart()
    // still open after the restart: a send is refused
    assert.throws(() => { r2.gate.beforeSend(alice.amid, T0 + 1) }, { code: ErrorCode.CircuitOpen })
    await loop(r2, T0 + 60_000)
    assert.deepEqual(r2.gate.blocks().map(b => b.peer), [alice.amid], 'the second trip, counted across the restart, blocks')
    assert.ok(r2.warnings.some(w => w.code === ErrorCode.CircuitOpen && /now blocked/.test(w.message)))
    const blocked = msg(alice.amid, r2.me.amid, 'let me in')
    assert.equal(await r2.gate.inbound(blocked, T0 + 120_000), undefined)
    assert.deepEqual(r2.notices.filter(([, n]) => n.status === 'refused').map(([p, n]) => [p, n.id, n.code]), [[alice.amid, blocked.id, ErrorCode.NoGrant]])
    assert.deepEqual(r2.gate.safetyLog().map(e => e.event).slice(-2), ['breaker_open', 'peer_blocked'])
    assert.equal(r2.gate.unblock(alice.amid), true)
    assert.equal(r2.gate.unblock(alice.amid), false)
    assert.equal((await r2.gate.inbound(msg(alice.amid, r2.me.amid, 'back'), T0 + 130_000))?.text, 'back')
    assert.throws(() => r2.gate.block('not-an-amid'), { code: ErrorCode.InvalidArgument })
  })

  it('block - the owner\'s block holds without a policy file, and is logged', async () => {
    const state = memoryState()
    const me = createIdentity('bob')
    const e2ee = new E2ee({ identity: me, state, httpBase: 'http://127.0.0.1:9', prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e9, onWarning: () => {} })
    const warnings: AgentMeshError[] = []
    const gate = await Gate.open({ identity: me, e2ee, onWarning: (w) => { warnings.push(w) }, onKnock: () => {}, send: async () => ({}) })
    const mallory = createIdentity('mallory')
    assert.equal((await gate.inbound(msg(mallory.amid, me.amid, 'hi'), T0))?.text, 'hi')
    const b = gate.block(mallory.amid, { reason: 'spam' }, T0)
    assert.deepEqual(b, { peer: mallory.amid, at: T0, reason: 'spam', already: false })
    assert.equal(gate.block(mallory.amid).already, true)
    const m = msg(mallory.amid, me.amid, 'hi again')
    assert.equal(await gate.inbound(m, T0), undefined)
    assert.ok(warnings.some(w => w.code === ErrorCode.NoGrant && w.message.includes(m.id)))
    assert.deepEqual(gate.blocks(), [{ peer: mallory.amid, at: T0, reason: 'spam' }])
    assert.deepEqual(gate.safetyLog().map(e => [e.event, e.peer, e.detail]), [['peer_blocked', mallory.amid, 'spam']])
  })
})

// ---------------------------------------------------------------------------------------------
// Agents over a relay

interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[], got: Message[], conn?: Connection, stop?: () => Promise<void> }

describe('limits defer - agents', () => {
  const relays: Relay[] = []
  const agents: Agent[] = []
  after(async () => {
    for (const a of agents) { await a.stop?.(); await a.conn?.close() }
    for (const r of relays) await r.close()
  })
  const agent = (name: string): Agent => {
    const a: Agent = { id: createIdentity(name), state: memoryState(), warnings: [], got: [] }
    agents.push(a)
    return a
  }
  const open = async (relay: Relay, a: Agent, opts: Parameters<typeof connect>[0] = {}): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) }, ...opts })
    a.conn = c
    const ac = new AbortController()
    const done = (async () => { for await (const m of c.messages({ signal: ac.signal })) a.got.push(m) })()
    a.stop = async () => { ac.abort(); await done; a.stop = undefined }
    return c
  }
  const texts = (a: Agent): string[] => a.got.map(m => m.text ?? '')
  const pair = async (policy: PolicyFile, bobState?: ClientState, alicePolicy?: PolicyFile): Promise<{ relay: Relay, bob: Agent, alice: Agent, a: Connection, b: Connection }> => {
    const relay = await createRelay({ port: 0, logger: silentLogger })
    relays.push(relay)
    const [bob, alice] = [agent('bob'), agent('alice')]
    if (bobState !== undefined) bob.state = bobState
    const b = await open(relay, bob, { policy })
    const a = await open(relay, alice, alicePolicy === undefined ? {} : { policy: alicePolicy })
    await a.knock(bob.id.amid, { category: 'task', summary: 'a stream of results' })
    await until(() => a.grants().received.length === 1, 'alice\'s grant')
    return { relay, bob, alice, a, b }
  }

  it('stream - 3,000 DMs between granted peers arrive whole and in order under the default policy', async (t) => {
    // both under a policy: the sender's loop guard notes every send too
    const { bob, alice, a } = await pair({ version: 1, default_action: 'accept' }, undefined, { version: 1 })
    const sent = Array.from({ length: 3000 }, (_, i) => `r${i}`)
    const started = performance.now()
    await Promise.all(sent.map(async text => await a.send(bob.id.amid, { text })))
    await until(() => bob.got.length >= 3000, '3,000 messages', 120_000)
    t.diagnostic(`3,000 DMs sent and handed over in ${Math.round(performance.now() - started)} ms`)
    assert.deepEqual(texts(bob), sent)
    assert.deepEqual(bob.warnings.map(w => w.code), [])
    assert.deepEqual(alice.warnings.map(w => w.code), [])
  })

  it('stream - over a low rate limit, a stream arrives whole and in order once the windows pass; held back, not dropped, across a restart', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    const policy: PolicyFile = { version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 4 } }
    const dir = tempDir()
    const file = join(dir.path, 'state.db')
    const { relay, bob, a } = await pair(policy, sqliteState(file))
    const sent = Array.from({ length: 14 }, (_, i) => `s${i}`)
    for (const text of sent) await a.send(bob.id.amid, { text })
    await until(() => bob.got.length === 4 && bob.warnings.filter(w => w.code === ErrorCode.RateLimited).length === 10, 'the first 4, and 10 held back')
    assert.deepEqual(texts(bob), sent.slice(0, 4))
    // bob restarts: what was held back is in his state.db, not at the relay (it was acknowledged)
    await bob.stop?.()
    await bob.conn!.close()
    bob.state.close()
    bob.state = sqliteState(file)
    await open(relay, bob, { policy })
    t.mock.timers.tick(61_000)
    await until(() => bob.got.length === 8, 'the next window')
    t.mock.timers.tick(61_000)
    await until(() => bob.got.length === 12, 'the window after')
    t.mock.timers.tick(61_000)
    await until(() => bob.got.length === 14, 'the rest')
    assert.deepEqual(texts(bob), sent)
    assert.equal(new Set(bob.got.map(m => m.id)).size, 14, 'none twice')
    await bob.stop?.()
    await bob.conn!.close()
    bob.conn = undefined
    bob.state.close()
    dir.cleanup()
  })

  it('stream - beyond the backlog cap the rest waits at the relay (the cursor stops), then arrives in order', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    const { bob, a } = await pair({ version: 1, default_action: 'accept', rate_limits: { messages_per_minute: 3, deferred_per_peer: 2 } })
    const sent = Array.from({ length: 10 }, (_, i) => `c${i}`)
    for (const text of sent) await a.send(bob.id.amid, { text })
    await until(() => bob.got.length === 3 && bob.warnings.some(w => /waits unacknowledged at the relay/.test(w.message)), 'the first 3, then a full backlog')
    for (let i = 0; bob.got.length < 10 && i < 10; i++) {
      t.mock.timers.tick(61_000)
      const had = bob.got.length
      await until(() => bob.got.length > had, `window ${i}`)
    }
    assert.deepEqual(texts(bob), sent)
  })
})
