/**
 * A malicious relay operator (docs/security.md): honest about storing and forwarding, malicious
 * about everything else. The operator holds the relay's signing key (its Store's relay secret) and
 * writes into the relay's Store directly, as anyone with its database can; the relay then delivers
 * what was written like any stored message. Each attack must fail with a stable code.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { attestEnvelope, createIdentity, fromB64u, identityFromSecret, signEnvelope, type Identity } from '@agentmesh/crypto'
import { ErrorCode, type Envelope } from '@agentmesh/protocol'
import { inProcessBackplane, type Relay } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { startRelay, waitFor, drainUntil, takeMessages as take } from '@agentmesh/testing'
import { codes, sdkHarness } from './sdk-fixtures.ts'

/** A relay whose operator is malicious: its key, its Store, and a way to have what it writes delivered. */
async function evilRelay (opts: { dropOneTimePrekeys?: boolean } = {}): Promise<{
  relay: Relay
  key: Identity
  /** stores `env` in `to`'s inbox as if it had been sent, and has it delivered */
  inject: (to: string, env: Envelope) => Promise<void>
}> {
  const store = memoryStore()
  if (opts.dropOneTimePrekeys === true) {
    // the operator hands out bundles without their one-time prekey (PQXDH then runs without DH4)
    const take = store.takePrekeyBundle.bind(store)
    store.takePrekeyBundle = async (amid) => {
      const b = await take(amid)
      if (b === undefined) return undefined
      const { oneTime: _dropped, ...rest } = b
      return rest
    }
  }
  const backplane = inProcessBackplane()
  const relay = await startRelay({}, { store, backplane })
  const key = identityFromSecret(fromB64u(await store.relaySecret()), 'relay')
  const inject = async (to: string, env: Envelope): Promise<void> => {
    const [r] = await store.commit([{ sender: env.from, id: env.id, recipient: to, envelope: JSON.stringify(env), receivedAt: Date.now() }], [])
    if (r?.status !== 'stored') throw new Error(`not stored: ${JSON.stringify(r)}`)
    // as another node of the relay would announce it: the node holding the agent's connection pumps it
    await backplane.publish({ type: 'inbox:stored', origin: 'operator', inboxes: [{ recipient: to, seq: r.seq }] })
  }
  return { relay, key, inject }
}

describe('a malicious relay', () => {
  const { relays, agent, open } = sdkHarness()

  it('malicious relay - a relay-attested plaintext DM, reset, knock and replayed ciphertext are refused with AM_ERR_ATTESTATION_REFUSED', async () => {
    const evil = await evilRelay()
    relays.push(evil.relay)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(evil.relay, alice)
    const b = await open(evil.relay, bob)
    const first = await a.send(bob.id.amid, { text: 'hello bob' })
    const [m1] = await take(b, 1)
    await b.send(alice.id.amid, { text: 'hello alice' })
    await take(a, 1)
    assert.equal(b.relayAmid, evil.key.amid, 'the operator holds the key the agents know as the relay\'s')

    // 1. a plaintext DM "from alice", signed by the relay: a command bob might run under alice's grant
    await evil.inject(bob.id.amid, attestEnvelope(evil.key, { id: 'forged-dm-0000001', from: alice.id.amid, to: bob.id.amid, type: 'chat', payload: { text: '/deploy production' } }))
    // 2. alice's ciphertext replayed under a new envelope id (the relay re-signs it, with via)
    await evil.inject(bob.id.amid, attestEnvelope(evil.key, { id: 'forged-replay-001', from: alice.id.amid, to: bob.id.amid, type: 'e2ee', payload: m1!.envelope.payload }))
    // 3. a knock "from a stranger", relay-signed
    const stranger = createIdentity('stranger')
    await evil.inject(bob.id.amid, attestEnvelope(evil.key, { id: 'forged-knock-0001', from: stranger.amid, to: bob.id.amid, type: 'agentmesh.knock', payload: { id: 'knock-000000001' } }))
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 3, 'bob to refuse the three'), [], 'none reaches the application')
    assert.deepEqual(codes(bob), [ErrorCode.AttestationRefused, ErrorCode.AttestationRefused, ErrorCode.AttestationRefused])
    assert.match(bob.warnings[0]!.message, /forged-dm-0000001.*signed by the relay/)

    // 4. a reset "from bob" to alice: she would start over and send her messages again
    await evil.inject(alice.id.amid, attestEnvelope(evil.key, { id: 'forged-reset-0001', from: bob.id.amid, to: alice.id.amid, type: 'e2ee.reset', payload: { id: first.id, code: ErrorCode.UnknownSession } }))
    assert.deepEqual(await drainUntil(a, () => alice.warnings.length >= 1, 'alice to refuse the reset'), [])
    assert.deepEqual(codes(alice), [ErrorCode.AttestationRefused])
    assert.deepEqual(a.sessions().map(s => s.peer), [bob.id.amid], 'her session with bob is not marked for replacement')
    assert.deepEqual(a.sent({ peer: bob.id.amid }).map(e => e.status), ['stored'], 'nothing was sent again')

    // the conversation goes on in the same session, nothing lost or repeated
    await a.send(bob.id.amid, { text: 'still here' })
    assert.deepEqual((await take(b, 1)).map(m => [m.text, m.encrypted]), [['still here', true]])
    assert.equal(codes(bob).length, 3)
  })

  it('malicious relay - a reset signed by the peer acts once: the same notice delivered again is dropped as a duplicate', async () => {
    const evil = await evilRelay()
    relays.push(evil.relay)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(evil.relay, alice)
    const b = await open(evil.relay, bob)
    const sent = await a.send(bob.id.amid, { text: 'one' })
    await take(b, 1)
    // bob (genuinely) could not decrypt and says so, signed by himself
    const reset = signEnvelope(bob.id, { id: 'genuine-reset-001', to: alice.id.amid, type: 'e2ee.reset', payload: { id: sent.id, code: ErrorCode.UnknownSession } })
    await evil.inject(alice.id.amid, reset)
    await waitFor(() => a.sent({ peer: bob.id.amid }).some(e => e.status === 'resent'), 'alice to send it again')
    // the resend is shown under the first id, which bob handed over already: dropped; the new session goes on
    await a.send(bob.id.amid, { text: 'two' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['two'])
    const log = a.sent({ peer: bob.id.amid }).map(e => e.status)
    assert.deepEqual(log, ['resent', 'stored', 'stored'])
    await a.close()
    // the operator delivers the same signed notice again, from a store that forgot it was delivered
    const evil2 = await evilRelay()
    relays.push(evil2.relay)
    const a2 = await open(evil2.relay, alice)
    await evil2.inject(alice.id.amid, reset)
    // a message after it, to know the notice was dealt with
    const carol = createIdentity('carol')
    await evil2.inject(alice.id.amid, signEnvelope(carol, { id: 'after-the-reset-1', to: alice.id.amid, type: 'chat', payload: { text: 'next' } }))
    assert.deepEqual((await take(a2, 1)).map(m => m.text), ['next'])
    assert.deepEqual(a2.sent({ peer: bob.id.amid }).map(e => e.status), log, 'nothing sent again')
    assert.deepEqual(a2.sessions().map(s => s.peer), [bob.id.amid], 'the session is not marked for replacement')
    assert.deepEqual(codes(alice).filter(c => c !== ErrorCode.UnknownSession), [])
  })

  it('malicious relay - a first message replayed after the session was deleted is AM_ERR_MESSAGE_REPLAYED, even when the relay dropped one-time prekeys', async () => {
    const evil = await evilRelay({ dropOneTimePrekeys: true })
    relays.push(evil.relay)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(evil.relay, alice)
    const b = await open(evil.relay, bob)
    await a.send(bob.id.amid, { text: 'first' })
    const [m1] = await take(b, 1)
    const header = (m1!.envelope.payload as { prekey?: Record<string, unknown> }).prekey!
    assert.equal(header.one_time_prekey_id, undefined, 'the relay handed out a bundle without a one-time prekey')
    // bob's session goes (idle cleanup, a reset, pushed out): only the signed and PQ prekeys remain
    assert.equal(await b.resetSession(alice.id.amid), true)
    // the same initial message again: the relay keeps envelopes, and bob's dedupe memory (30 days)
    // ends before the prekeys it names (37 days); the new id stands for that, signed by alice as the original was
    await evil.inject(bob.id.amid, signEnvelope(alice.id, { id: 'replayed-first-01', to: bob.id.amid, type: 'e2ee', payload: m1!.envelope.payload }))
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 1, 'bob to refuse the replay'), [], 'not handed over twice')
    assert.deepEqual(codes(bob), [ErrorCode.MessageReplayed])
    assert.match(bob.warnings[0]!.message, /replayed-first-01.*accepted before/)
    assert.deepEqual(b.sessions(), [], 'no session was started from it')
    assert.deepEqual(codes(alice), [], 'alice was not told to start over: a replay is not a lost session')
    // alice writes again: bob has no session, tells her, and she starts a new one with a new initial message
    await a.send(bob.id.amid, { text: 'second' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['second'])
    assert.deepEqual(codes(bob), [ErrorCode.MessageReplayed, ErrorCode.UnknownSession])
  })

  it('malicious relay - plaintext from a peer with a session is refused; an unencrypted message carries no grant', async () => {
    const evil = await evilRelay()
    relays.push(evil.relay)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(evil.relay, alice)
    const b = await open(evil.relay, bob, {
      policy: { version: 1, default_action: 'accept', grant: { default_scopes: ['chat', 'command:deploy'], allowed_scopes: ['chat', 'command:*'] } },
    })
    // both read: the knock is answered, and the answer taken, on the way
    const reading = take(b, 1)
    const stopA = new AbortController()
    const aReads = (async () => { try { for await (const _ of a.messages({ signal: stopA.signal })) { /* none expected */ } } catch { /* aborted */ } })()
    await a.knock(bob.id.amid, { category: 'task', summary: 'deploys', scopes: ['chat', 'command:deploy'] })
    await waitFor(() => a.grants().received.length === 1, 'alice to get her grant')
    await a.send(bob.id.amid, { text: '/deploy staging' })
    const [enc] = await reading
    stopA.abort()
    await aReads
    assert.deepEqual([enc!.encrypted, enc!.command?.allowed, enc!.provenance?.grant?.scopes], [true, true, ['chat', 'command:deploy']])
    // a plaintext envelope signed by alice while she and bob have a session: a downgrade, refused
    await evil.inject(bob.id.amid, signEnvelope(alice.id, { id: 'plain-downgrade-1', to: bob.id.amid, type: 'chat', payload: { text: '/deploy production' } }))
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 1, 'bob to refuse the plaintext'), [])
    assert.deepEqual(codes(bob), [ErrorCode.PlaintextRefused])
    assert.match(bob.warnings[0]!.message, /end-to-end session/)
    // without a session (bob's is gone), alice's signed plaintext is taken, but under no grant
    await b.resetSession(alice.id.amid)
    await evil.inject(bob.id.amid, signEnvelope(alice.id, { id: 'plain-nosession-1', to: bob.id.amid, type: 'chat', payload: { text: '/deploy production' } }))
    const [plain] = await take(b, 1)
    assert.deepEqual([plain!.encrypted, plain!.text, plain!.command?.allowed, plain!.provenance?.grant], [false, '/deploy production', false, undefined])
  })
})

