/**
 * The in-process backplane runs the shared Backplane suite; two relays over one Store and one
 * backplane deliver to each other's agents.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import backplaneSuite from '@agentmesh/compliance-tests/backplane'
import { inProcessBackplane } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { createIdentity } from '@agentmesh/crypto'
import { rawAgent, startRelay, waitFor, takeMessages as take } from '@agentmesh/testing'
import { chat, connect, memoryState, type Connection } from '@agentmesh/client'
import type { ChatEvent } from '@agentmesh/protocol'
import type { Backplane, Relay } from '@agentmesh/server'

/** Two relays over one Store and one backplane (neither closes what they share). */
async function twoNodes (t: { after: (fn: () => Promise<void>) => void }): Promise<[Relay, Relay]> {
  const store = memoryStore()
  const backplane = inProcessBackplane()
  const shared = { ...store, close: async () => {} }
  const one = await startRelay({}, { store: shared, backplane })
  const two = await startRelay({}, { store: shared, backplane })
  t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
  return [one, two]
}

async function open (t: { after: (fn: () => Promise<void>) => void }, relay: Relay, name: string): Promise<Connection> {
  const c = await connect({ server: relay.url, identity: createIdentity(name), state: memoryState() })
  t.after(async () => { await c.close() })
  return c
}

backplaneSuite({
  name: 'in-process',
  setup: async () => {
    const bp = inProcessBackplane()
    await bp.start()
    return { a: bp, b: bp }
  },
  teardown: async ({ a }) => { await a.stop() },
})

describe('backplane - relays sharing a store', () => {
  it('backplane - a message sent on one relay is delivered to the receiver connected to the other', async (t) => {
    const store = memoryStore()
    const backplane = inProcessBackplane()
    // the store and the backplane are shared: neither relay closes them
    const shared = { ...store, close: async () => {} }
    const one = await startRelay({}, { store: shared, backplane })
    const two = await startRelay({}, { store: shared, backplane })
    t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
    const bobId = createIdentity('bob')
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const env = alice.envelope(bobId.amid, 'across nodes')
    alice.send({ op: 'send', env })
    const [ack] = await alice.collect(f => f.op === 'ack', 1)
    assert.deepEqual(ack, { op: 'ack', id: env.id })
    const [d] = await bob.collect(f => f.op === 'deliver', 1)
    assert.deepEqual(d, { op: 'deliver', seq: 1, env })
  })
})

describe('backplane - rooms read by cursor across relays', () => {
  it('backplane - a room message committed on one relay reaches, from the log, members reading by cursor on the other (one already reading it, one that joined there after connecting)', async (t) => {
    const [one, two] = await twoNodes(t)
    const [aliceId, bobId, carolId] = [createIdentity('alice'), createIdentity('bob'), createIdentity('carol')]
    const store = one.store
    await store.createRoom({ id: 'ops', kind: 'public', owner: aliceId.amid, createdAt: 1 })
    const connectTo = async (relay: Relay, id: typeof aliceId): Promise<Awaited<ReturnType<typeof rawAgent>>> => {
      const a = await rawAgent(relay.wsUrl, id)
      t.after(() => { a.close() })
      await a.auth({ features: ['room-cursor'] })
      return a
    }
    await store.addMember({ room: 'ops', amid: bobId.amid, role: 'member', joinedAt: 1 })
    const bob = await connectTo(two, bobId)
    const carol = await connectTo(two, carolId)
    // carol joins (in the Store, as another node would) after she connected
    await store.addMember({ room: 'ops', amid: carolId.amid, role: 'member', joinedAt: 2 })
    const alice = await connectTo(one, aliceId)
    const env = alice.envelope('#ops', 'across nodes, once')
    alice.send({ op: 'send', env })
    await alice.collect(f => f.op === 'ack', 1)
    assert.deepEqual(await bob.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', room: 'ops', seq: 1, env }])
    assert.deepEqual(await carol.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', room: 'ops', seq: 1, env }])
    bob.send({ op: 'cursor', room: 'ops', seq: 1 })
    await waitFor(async () => (await store.roomFeed('ops', bobId.amid))?.cursor === 1, 'bob\'s room cursor committed by relay two')
    assert.equal((await store.inbox(bobId.amid)).lastSeq, 0, 'no inbox copy')
  })
})

describe('backplane - chat across relays', () => {
  it('backplane - a member who joined on the other relay gets the room message: the first relay dropped its cached members', async (t) => {
    const [one, two] = await twoNodes(t)
    const alice = await open(t, one, 'alice')
    await chat(alice).createRoom({ id: 'ops' })
    // relay one caches #ops with alice alone
    await chat(alice).say('ops', 'before bob')
    const bob = await open(t, two, 'bob')
    await chat(bob).join('ops')
    await chat(alice).say('ops', 'after bob joined')
    const [m] = await take(bob, 1)
    assert.deepEqual([m!.text, m!.from, m!.room], ['after bob joined', alice.amid, 'ops'])
  })

  it('backplane - a typing signal on one relay reaches a member connected to the other', async (t) => {
    const [one, two] = await twoNodes(t)
    const alice = await open(t, one, 'alice')
    await chat(alice).createRoom({ id: 'sig' })
    const bob = await open(t, two, 'bob')
    await chat(bob).join('sig')
    const events: ChatEvent[] = []
    void (async () => { for await (const e of bob.events()) if ('amid' in e) events.push(e) })()
    await chat(alice).typing('sig')
    await waitFor(() => events.some(e => e.type === 'typing'), 'bob to hear alice typing')
    const typing = events.filter(e => e.type === 'typing')
    assert.deepEqual(typing.map(e => [e.amid, e.room]), [[alice.amid, '#sig']])
  })

  it('backplane - presence crosses nodes: a roommate and a watcher on the other relay hear an agent come online and go', async (t) => {
    const [one, two] = await twoNodes(t)
    const alice = await open(t, one, 'alice')
    await chat(alice).createRoom({ id: 'pres' })
    const bob = await open(t, two, 'bob')
    await chat(bob).join('pres')
    const carol = await open(t, two, 'carol')
    const dave = createIdentity('dave')
    carol.watch([dave.amid])
    const heard = (c: Connection): ChatEvent[] => {
      const out: ChatEvent[] = []
      void (async () => { for await (const e of c.events()) if (e.type === 'presence' && e.amid === dave.amid) out.push(e) })()
      return out
    }
    const [byBob, byCarol] = [heard(bob), heard(carol)]
    // dave connects and joins alice's room: bob shares it with him from then on, carol watches him
    const dc = await connect({ server: one.url, identity: dave, state: memoryState() })
    t.after(async () => { await dc.close() })
    await chat(dc).join('pres')
    await waitFor(() => byCarol.some(e => e.status === 'online'), 'carol (watching, other node) to hear dave online')
    await dc.close()
    await waitFor(() => byCarol.some(e => e.status === 'offline') && byBob.some(e => e.status === 'offline' && e.change === undefined), 'both to hear dave offline')
  })
})

/**
 * Two relay nodes over one memory store and a lossy bus (closed after the test). Catch-up runs
 * every `catchUpMs` (default: an hour, so only a gap brings what the bus lost); `down` starts the
 * bus losing everything.
 */
async function twoNodesOverLossyBus (t: TestContext, opts: { catchUpMs?: number, down?: boolean } = {}): Promise<{ store: ReturnType<typeof memoryStore>, lossy: ReturnType<typeof lossyBackplane>, one: Relay, two: Relay }> {
  const store = memoryStore()
  const lossy = lossyBackplane()
  if (opts.down === true) lossy.down()
  const shared = { ...store, close: async () => {} }
  const init = { backplaneCatchUpMs: opts.catchUpMs ?? 3_600_000 }
  const one = await startRelay(init, { store: shared, backplane: lossy.bp })
  const two = await startRelay(init, { store: shared, backplane: lossy.bp })
  t.after(async () => { await one.close(); await two.close(); await lossy.bp.stop(); await store.close() })
  return { store, lossy, one, two }
}

/** An in-process backplane that loses what is published while `down`, and reports a gap when it comes back. */
function lossyBackplane (): { bp: Backplane, down: () => void, up: () => void } {
  const inner = inProcessBackplane()
  let lost = false
  let gaps: Array<() => void> = []
  return {
    bp: {
      start: () => inner.start(),
      stop: () => inner.stop(),
      publish: async (msg) => { if (!lost) await inner.publish(msg) },
      subscribe: (fn) => inner.subscribe(fn),
      onGap: (fn) => { gaps = [...gaps, fn]; return () => { gaps = gaps.filter(g => g !== fn) } },
    },
    down: () => { lost = true },
    up: () => { lost = false; for (const g of gaps) g() },
  }
}

describe('backplane - catching up from the store', () => {
  it('backplane - DMs and room messages stored while the bus lost everything reach the other relay\'s agent when the bus reports the gap: each once, in order', async (t) => {
    // no timer: only the gap may bring them
    const { store, lossy, one, two } = await twoNodesOverLossyBus(t)
    const [aliceId, bobId] = [createIdentity('alice'), createIdentity('bob')]
    await store.createRoom({ id: 'ops', kind: 'public', owner: aliceId.amid, createdAt: 1 })
    await store.addMember({ room: 'ops', amid: bobId.amid, role: 'member', joinedAt: 1 })
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth({ features: ['room-cursor'] })
    const alice = await rawAgent(one.wsUrl, aliceId)
    t.after(() => { alice.close() })
    await alice.auth({ features: ['room-cursor'] })
    lossy.down()
    const dms = [1, 2].map(i => alice.envelope(bobId.amid, `dm ${i}`))
    const says = [1, 2].map(i => alice.envelope('#ops', `room ${i}`))
    for (const env of [...dms, ...says]) alice.send({ op: 'send', env })
    await alice.collect(f => f.op === 'ack', 4)
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 0, 'the bus lost the wake-ups')
    lossy.up()
    const got = await bob.collect(f => f.op === 'deliver', 4)
    assert.deepEqual(got.filter(f => f.room === undefined).map(f => [f.seq, f.env.id]), dms.map((e, i) => [i + 1, e.id]))
    assert.deepEqual(got.filter(f => f.room === 'ops').map(f => [f.seq, f.env.id]), says.map((e, i) => [i + 1, e.id]))
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 4, 'each once')
  })

  it('backplane - with a bus that loses everything and reports nothing, the catch-up timer still delivers', async (t) => {
    const { one, two } = await twoNodesOverLossyBus(t, { catchUpMs: 50, down: true })
    const bobId = createIdentity('bob')
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const env = alice.envelope(bobId.amid, 'found by the timer')
    alice.send({ op: 'send', env })
    assert.deepEqual(await bob.collect(f => f.op === 'deliver', 1), [{ op: 'deliver', seq: 1, env }])
  })

  it('backplane - presence lost by the bus is told again after the gap: an agent that came online is seen, one that went offline is dropped', async (t) => {
    const { lossy, one, two } = await twoNodesOverLossyBus(t)
    const carol = await open(t, two, 'carol')
    const dave = createIdentity('dave')
    carol.watch([dave.amid])
    const heard: string[] = []
    void (async () => { for await (const e of carol.events()) if (e.type === 'presence' && e.amid === dave.amid) heard.push(e.status ?? '') })()
    const onlineSeenByTwo = async (): Promise<boolean> => (await chat(carol).presence()).some(p => p.amid === dave.amid)

    lossy.down()
    const dc = await connect({ server: one.url, identity: dave, state: memoryState() })
    t.after(async () => { await dc.close() })
    assert.equal(await onlineSeenByTwo(), false, 'relay two did not hear dave come online')
    lossy.up()
    await waitFor(onlineSeenByTwo, 'relay two to see dave online after the gap')
    await waitFor(() => heard.includes('online'), 'carol (watching) to hear it')

    lossy.down()
    await dc.close()
    assert.equal(await onlineSeenByTwo(), true, 'relay two did not hear dave go')
    lossy.up()
    await waitFor(async () => !(await onlineSeenByTwo()), 'relay two to drop dave after the gap')
  })

  it('backplane - a member removed on another node while the bus lost the news gets nothing more of the room once this node caught up', async (t) => {
    const { store, lossy, one, two } = await twoNodesOverLossyBus(t)
    const [aliceId, bobId] = [createIdentity('alice'), createIdentity('bob')]
    await store.createRoom({ id: 'ops', kind: 'public', owner: aliceId.amid, createdAt: 1 })
    await store.addMember({ room: 'ops', amid: aliceId.amid, role: 'owner', joinedAt: 1 })
    await store.addMember({ room: 'ops', amid: bobId.amid, role: 'member', joinedAt: 1 })
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth({ features: ['room-cursor'] })
    const alice = await rawAgent(one.wsUrl, aliceId)
    t.after(() => { alice.close() })
    await alice.auth({ features: ['room-cursor'] })
    const first = alice.envelope('#ops', 'while bob is a member')
    alice.send({ op: 'send', env: first })
    assert.deepEqual((await bob.collect(f => f.op === 'deliver', 1)).map(f => f.env.id), [first.id])
    bob.send({ op: 'cursor', room: 'ops', seq: 1 })

    lossy.down()
    // bob is removed (as another node would, in the Store): the invalidation is lost
    assert.equal(await store.removeMember('ops', bobId.amid), true)
    lossy.up()
    const found = await two.catchUp()
    assert.equal(found.roomsLeft, 1)
    const after = alice.envelope('#ops', 'after bob was removed')
    alice.send({ op: 'send', env: after })
    await alice.collect(f => f.op === 'ack', 2)
    await waitFor(async () => (await store.roomFeed('ops', aliceId.amid))?.lastSeq === 2, 'the second message stored')
    await bob.barrier()
    assert.deepEqual(bob.frames.filter(f => f.op === 'deliver').map(f => f.env.id), [first.id], 'nothing of the room after the removal')
  })
})
