/**
 * Encrypted swarm topics (docs/protocol.md §32): real swarm nodes on 127.0.0.1 (the non-member D in
 * the middle of a star, so every message passes through it) and a real in-process relay for the
 * key distribution over the pairwise sessions.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Relay } from '@agentmesh/server'
import { createIdentity, createSenderKey, senderKeyDistribution, senderKeyEncrypt, signMembership, type Identity } from '@agentmesh/crypto'
import { encryptedTopic, connect, SWARM_KEY_TYPE, memoryState, AgentMeshError, ErrorCode, type Connection, type EncryptedDelivery, type EncryptedTopic, type UndecryptedDelivery } from '@agentmesh/client'
import { encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'
import { swarm, type Swarm, type SwarmDelivery } from '@agentmesh/swarm/net'
import { internals } from '@agentmesh/swarm/net/internal'
import { startRelay, waitFor } from '@agentmesh/testing'

const TOPIC = 'ops'
const LIMITS = { heartbeatMs: 200, reconcileIntervalMs: 0 } as const

/** Reads an iterator into an array in the background. */
function collect<T> (it: AsyncIterableIterator<T>): T[] {
  const out: T[] = []
  void (async () => { for await (const x of it) out.push(x) })().catch(() => {})
  return out
}

describe('encrypted swarm topics', () => {
  let relay: Relay | undefined
  const conns: Connection[] = []
  const nodes: Swarm[] = []
  const stops: AbortController[] = []
  after(async () => {
    for (const s of stops) s.abort()
    await Promise.all(nodes.map(async n => await n.close()))
    for (const c of conns) await c.close()
    await relay?.close()
  })

  it('swarm-topic - members read each message once, a non-member forwards ciphertext only and its own key and messages are refused, a tampered ciphertext is dropped and counted, a removed member cannot read after the rotation', async () => {
    relay = await startRelay()
    const ids: Record<'a' | 'b' | 'c' | 'd', Identity> = { a: createIdentity(), b: createIdentity(), c: createIdentity(), d: createIdentity() }
    const conn: Record<string, Connection> = {}
    for (const k of ['a', 'b', 'c', 'd'] as const) {
      const c = await connect({ server: relay.url, identity: ids[k], state: memoryState() })
      conns.push(c)
      conn[k] = c
      // the application reads its messages: key distributions are taken by the connection's stage on the way
      const stop = new AbortController()
      stops.push(stop)
      void (async () => { for await (const _ of c.messages({ signal: stop.signal })) { /* none expected */ } })().catch(() => {})
    }
    // a star around the non-member D: every message between members passes through it
    const node: Record<string, Swarm> = {}
    node.d = await swarm({ keys: ids.d, ipColocationWhitelist: ['127.0.0.1'], limits: LIMITS })
    nodes.push(node.d)
    for (const k of ['a', 'b', 'c'] as const) {
      node[k] = await swarm({ keys: ids[k], ipColocationWhitelist: ['127.0.0.1'], bootstrap: [node.d.multiaddrs()[0]!], limits: LIMITS })
      nodes.push(node[k])
    }
    const a = ids.a.amid
    const b = ids.b.amid
    const c = ids.c.amid
    const t: Record<string, EncryptedTopic> = {
      a: encryptedTopic(conn.a!, node.a!, TOPIC, { members: [b, c] }),
      b: encryptedTopic(conn.b!, node.b!, TOPIC, { owner: a }),
      c: encryptedTopic(conn.c!, node.c!, TOPIC, { owner: a, keyWaitMs: 1500 }),
      // D opens the topic too, knowing its owner: it is in no statement, so it gets no key
      d: encryptedTopic(conn.d!, node.d!, TOPIC, { owner: a, keyWaitMs: 1500 }),
    }
    const got: Record<string, EncryptedDelivery[]> = {}
    const undecrypted: Record<string, UndecryptedDelivery[]> = {}
    for (const k of ['a', 'b', 'c', 'd']) {
      got[k] = collect(t[k]!.subscribe())
      undecrypted[k] = []
      t[k]!.on('message:undecrypted', (e) => { undecrypted[k]!.push(e.detail) })
    }
    const raw: SwarmDelivery[] = collect(node.d.subscribe(TOPIC))
    await waitFor(() => ['a', 'b', 'c'].every(k => node[k]!.peers(TOPIC).length === 1) && node.d!.peers(TOPIC).length === 3, 'the star meshes')

    // the owner's chain: A owns it, A, B and C are members, D is not
    assert.deepEqual([...t.a.membership()!.members.keys()].sort(), [a, b, c].sort())
    assert.equal(t.a.statements().length, 3, 'create + two adds')

    // D cannot publish: no chain proves it (none even reached it)
    await assert.rejects(t.d.publish({ text: 'let me in' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NotMember))

    await t.a.publish({ text: 'alpha' }, { type: 'note' })
    await waitFor(() => got.b!.length === 1 && got.c!.length === 1, 'B and C decrypt A\'s first message')
    // B and C pinned A's chain from the key; now they publish (each hands its own key to the others first)
    await t.b.publish({ text: 'bravo' })
    await t.c.publish({ text: 'charlie' })
    await waitFor(() => got.a!.length === 3 && got.b!.length === 3 && got.c!.length === 3, 'every member has the three messages')
    for (const k of ['a', 'b', 'c']) {
      const seen = got[k]!.map(m => [m.author, m.seq, (m.body as { text: string }).text, m.encrypted])
      assert.deepEqual(seen.slice().sort(), [[a, 1, 'alpha', true], [b, 1, 'bravo', true], [c, 1, 'charlie', true]].sort(), `${k} reads each message once`)
      assert.equal(new Set(got[k]!.map(m => m.id)).size, 3)
    }
    assert.equal(got.b!.find(m => m.author === a)!.type, 'note', 'the application type travels inside')
    // D forwarded all three (it is the only path) and holds only ciphertext
    await waitFor(() => raw.length === 3, 'D delivered the three ciphertexts')
    assert.deepEqual(raw.map(m => m.type), ['e2ee.swarm', 'e2ee.swarm', 'e2ee.swarm'])
    for (const m of raw) {
      assert.deepEqual(Object.keys(m.body as object).sort(), ['ct', 'key_id', 'n', 'v'])
      assert.doesNotMatch(JSON.stringify(m.body), /alpha|bravo|charlie|note/)
    }
    await waitFor(() => undecrypted.d!.length === 3, 'D reports the three messages it cannot decrypt')
    assert.deepEqual(undecrypted.d!.map(u => u.error.code), [ErrorCode.UnknownSession, ErrorCode.UnknownSession, ErrorCode.UnknownSession])
    assert.equal(got.d!.length, 0)

    // D tries to join in by itself: a key of its own with a chain of its own (D's genesis adding B)
    // is refused by B (not the pinned chain), and D's messages are refused as from a non-member
    const dKey = createSenderKey('swarm/' + TOPIC, ids.d.amid)
    const dGenesis = signMembership(ids.d, { room: TOPIC, op: 'create', agent: ids.d.amid })
    const dChain = [dGenesis, signMembership(ids.d, { room: TOPIC, op: 'add', agent: b, after: dGenesis })]
    await conn.d!.send(b, { v: 1, topic: TOPIC, ...senderKeyDistribution(dKey), membership: dChain }, { type: SWARM_KEY_TYPE })
    await waitFor(() => t.b.stats().keysRefused === 1, 'B refuses D\'s key')
    await node.d.publish(TOPIC, senderKeyEncrypt(dKey, 'swarm.message', { seq: 1, body: 'from an outsider' }).message, { type: 'e2ee.swarm' })
    await waitFor(() => t.b.stats().refused === 1, 'B refuses D\'s message')
    assert.equal(undecrypted.b!.at(-1)!.error.code, ErrorCode.MembershipUnsigned)
    assert.equal(got.b!.length, 3)

    // a tampered ciphertext under a valid outer signature (B's key; a seq B will not reach in this
    // test, so its next real messages are no equivocation): every node
    // validates and forwards it; members drop it, count it, and report it
    const body = structuredClone(raw.find(m => m.author === b)!.body) as { ct: string }
    const ct = Buffer.from(body.ct, 'base64url')
    ct[0] = ct[0]! ^ 0x01
    body.ct = ct.toString('base64url')
    const forged = signSwarmMessage(ids.b, { topic: TOPIC, seq: 500, body, type: 'e2ee.swarm' })
    await internals(node.d).publishRaw(TOPIC, encodeSwarmMessage(forged))
    await waitFor(() => t.a.stats().decryptFailed === 1 && t.c.stats().decryptFailed === 1, 'A and C drop the tampered message')
    assert.equal(undecrypted.a!.at(-1)!.error.code, ErrorCode.DecryptFailed)
    assert.equal(undecrypted.a!.at(-1)!.seq, 500)
    // an old ciphertext of A's under another seq of A's (a replay): refused as well
    const replayed = signSwarmMessage(ids.a, { topic: TOPIC, seq: 600, body: raw.find(m => m.author === a)!.body, type: 'e2ee.swarm' })
    await internals(node.d).publishRaw(TOPIC, encodeSwarmMessage(replayed))
    await waitFor(() => t.b.stats().decryptFailed === 1 && t.c.stats().decryptFailed === 2, 'B and C drop the replayed ciphertext (B saw no tampered message: that one was in its own name)')
    assert.deepEqual([undecrypted.c!.at(-1)!.seq, undecrypted.c!.at(-1)!.error.code], [600, ErrorCode.DecryptFailed])
    assert.equal(got.a!.length + got.b!.length + got.c!.length, 9, 'nothing tampered or replayed was delivered')

    // A removes C: A's new key goes to B with the new chain; B rotates at its next publish
    const keyBefore = (await t.b.publish({ text: 'before' })).keyId
    await waitFor(() => got.a!.length === 4 && got.c!.length === 4, 'the last message C may read')
    await t.a.remove(c)
    await waitFor(() => t.b.membership()!.members.has(c) === false, 'B learns the new chain with A\'s new key')
    await t.a.publish({ text: 'after-a' })
    const afterB = await t.b.publish({ text: 'after-b' })
    assert.notEqual(afterB.keyId, keyBefore, 'B started a new key: C was removed')
    await waitFor(() => got.a!.length === 6 && got.b!.length === 6, 'A and B read each other after the removal')
    assert.deepEqual(got.b!.slice(-2).map(m => (m.body as { text: string }).text).sort(), ['after-a', 'after-b'])
    await waitFor(() => undecrypted.c!.filter(u => u.error.code === ErrorCode.UnknownSession).length === 2, 'C reports the two messages it has no key for')
    assert.deepEqual(got.c!.map(m => (m.body as { text: string }).text), ['alpha', 'bravo', 'charlie', 'before'])
    assert.equal(t.c.stats().noKey, 2)
  })

  it('swarm-topic - bad options are refused before anything is done', () => {
    const fake = { amid: 'am1', join: () => {}, publish: async () => ({ id: '', seq: 1 }), subscribe: () => { throw new Error('unused') }, lastSeq: () => 0 }
    const c = conns[0]!
    assert.throws(() => encryptedTopic(c, { ...fake, amid: c.amid }, 'Ops!', { owner: c.amid }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /topic must be 1 to 64/.test(e.message))
    assert.throws(() => encryptedTopic(c, fake, 'ops2', { owner: c.amid }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /same agent/.test(e.message))
    assert.throws(() => encryptedTopic(c, { ...fake, amid: c.amid }, 'ops2', { owner: c.amid, members: [] } as never), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /exactly one of/.test(e.message))
    assert.throws(() => encryptedTopic(c, { ...fake, amid: c.amid }, 'ops2', { members: ['bob'] }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /not an AMID/.test(e.message))
    assert.throws(() => encryptedTopic(c, { ...fake, amid: c.amid }, 'ops2', { owner: 'alice' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /owner "alice" is not an AMID/.test(e.message))
    assert.throws(() => encryptedTopic(c, { ...fake, amid: c.amid }, 'ops2', { owner: c.amid, keyWaitMs: -1 }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /keyWaitMs/.test(e.message))
  })
})
