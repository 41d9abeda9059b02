/**
 * One-time ML-KEM-768 prekeys through the SDK and a real relay (PQXDH rev. 3 §3.2): each session
 * set-up takes its own, the receiver deletes the private part when it is used, the last-resort key
 * takes over when none is left, the SDK tops them up, and a relay that swaps one in a bundle is
 * refused (docs/security.md).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { signEnvelope, toB64u } from '@agentmesh/crypto'
import { connect, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import { inProcessBackplane, type Relay } from '@agentmesh/server'
import { memoryStore, type Store } from '@agentmesh/store'
import { startRelay, drainUntil, takeMessages as take } from '@agentmesh/testing'
import { codes, sdkHarness } from './sdk-fixtures.ts'

interface Header { pq_prekey_id: number, pq_one_time_prekey_id?: number }

const headerOf = (m: Message): Header => (m.envelope.payload as { prekey: Header }).prekey

async function counts (relay: Relay, amid: string): Promise<{ one_time: number, pq_one_time: number }> {
  const r = await fetch(`${relay.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/api/v1/agents/${amid}/prekeys`)
  return await r.json() as { one_time: number, pq_one_time: number }
}

describe('one-time PQ prekeys through the SDK', () => {
  const { relays, agent, open } = sdkHarness()
  const relayOver = async (store: Store): Promise<{ relay: Relay, inject: (to: string, env: Envelope) => Promise<void> }> => {
    const backplane = inProcessBackplane()
    const relay = await startRelay({}, { store, backplane })
    relays.push(relay)
    // the operator stores an envelope in an inbox as if it had been sent, and has it delivered
    const inject = async (to: string, env: Envelope): Promise<void> => {
      const [r] = await store.commit([{ sender: env.from, id: env.id, recipient: to, envelope: JSON.stringify(env), receivedAt: Date.now() }], [])
      if (r?.status !== 'stored') throw new Error(`not stored: ${JSON.stringify(r)}`)
      await backplane.publish({ type: 'inbox:stored', origin: 'operator', inboxes: [{ recipient: to, seq: r.seq }] })
    }
    return { relay, inject }
  }

  it('pq prekeys - sessions from separate bundle fetches use separate one-time PQ prekeys, each deleted by the receiver when used; then the last-resort key; then a top-up', async () => {
    const { relay } = await relayOver(memoryStore())
    const bob = agent('bob')
    const policy = { prekeys: { pqLowWater: 2, pqTarget: 3 } }
    const b = await open(relay, bob, policy)
    assert.deepEqual(await counts(relay, bob.id.amid), { one_time: 100, pq_one_time: 3 })
    assert.equal(bob.state.recordCount('pqo'), 3, 'the private parts are sealed in bob\'s state')

    const senders = ['carol', 'dave', 'erin', 'frank'].map(agent)
    const used: Header[] = []
    for (const s of senders) {
      const c = await open(relay, s)
      await c.send(bob.id.amid, { text: `from ${s.id.name ?? ''}` })
      const [m] = await take(b, 1)
      assert.equal(m!.encrypted, true)
      used.push(headerOf(m!))
    }
    assert.deepEqual(used.map(h => h.pq_one_time_prekey_id), [1, 2, 3, undefined], 'one each, in order; the fourth found none left')
    assert.deepEqual(used.map(h => h.pq_prekey_id), [1, 1, 1, 1], 'the last-resort key, named by every header, used by the fourth')
    assert.equal(bob.state.recordCount('pqo'), 0, 'bob deleted each private part as it was used')
    assert.deepEqual(codes(bob), [])
    assert.equal((await counts(relay, bob.id.amid)).pq_one_time, 0)

    // the next check (on connect, then every checkMs) sees the count below the low-water mark
    await b.close()
    await open(relay, bob, policy)
    assert.deepEqual(await counts(relay, bob.id.amid), { one_time: 96, pq_one_time: 3 }, 'topped up to the target (the curve ones are still above theirs)')
    assert.deepEqual(bob.state.recordList('pqo').map(r => r.key), ['4', '5', '6'], 'new ids: a used id is never issued again')
    await assert.rejects(connect({ server: relay.url, identity: bob.id, prekeys: { pqTarget: 101 } }), { code: ErrorCode.InvalidArgument, message: /pqTarget must be at most 100/ })
    await assert.rejects(connect({ server: relay.url, identity: bob.id, prekeys: { pqLowWater: 5, pqTarget: 4 } }), { code: ErrorCode.InvalidArgument })
  })

  it('pq prekeys - a first message replayed after its session is gone is AM_ERR_MESSAGE_REPLAYED; its one-time PQ prekey is gone already', async () => {
    const store = memoryStore()
    const { relay, inject } = await relayOver(store)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob, { prekeys: { pqLowWater: 1, pqTarget: 2 } })
    await a.send(bob.id.amid, { text: 'first' })
    const [m1] = await take(b, 1)
    const h = headerOf(m1!)
    assert.equal(h.pq_one_time_prekey_id, 1)
    assert.equal(bob.state.recordGet('pqo', '1'), undefined, 'the decapsulation key is deleted')
    assert.ok(bob.state.recordGet('pqo', '2'))
    assert.equal(await b.resetSession(alice.id.amid), true)
    await inject(bob.id.amid, signEnvelope(alice.id, { id: 'replayed-first-01', to: bob.id.amid, type: 'e2ee', payload: m1!.envelope.payload }))
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 1, 'bob to refuse the replay'), [], 'not handed over twice')
    assert.deepEqual(codes(bob), [ErrorCode.MessageReplayed])
    assert.match(bob.warnings[0]!.message, /replayed-first-01.*accepted before/)
    assert.deepEqual(b.sessions(), [], 'no session was started from it')
    assert.ok(bob.state.recordGet('pqo', '2'), 'the replay used up nothing')
  })

  it('pq prekeys - a relay that swaps in a KEM key of its own is refused: AM_ERR_BAD_PREKEY, nothing sent', async () => {
    const store = memoryStore()
    const takeBundle = store.takePrekeyBundle.bind(store)
    const relayKem = ml_kem768.keygen()
    let swapped = 0
    store.takePrekeyBundle = async (amid) => {
      const t = await takeBundle(amid)
      if (t?.pqOneTime === undefined) return t
      swapped++
      // the operator keeps the decapsulation key: with it, it could read what this session carries
      return { ...t, pqOneTime: { ...t.pqOneTime, key: toB64u(relayKem.publicKey) } }
    }
    const { relay } = await relayOver(store)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    await open(relay, bob)
    await assert.rejects(a.send(bob.id.amid, { text: 'for bob only' }), (err: AgentMeshError) => {
      assert.equal(err.code, ErrorCode.BadPrekey)
      assert.match(err.message, /pq_one_time_prekey\.sig does not verify with the identity of/)
      return true
    })
    assert.equal(swapped, 1)
    assert.deepEqual(a.sessions(), [], 'no session started with the relay\'s key')
    assert.equal((await store.inbox(bob.id.amid)).lastSeq, 0, 'nothing was sent')
  })
})
