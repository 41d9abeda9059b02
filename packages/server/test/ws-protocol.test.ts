/**
 * The relay's WebSocket protocol, spoken with raw frames (`rawAgent`) against real relays started
 * in process. Every refusal is checked for its code, message and envelope id, for storing nothing
 * (the next valid send gets the seq the refused one would have taken, and the Store agrees), and
 * for leaving the connection and the relay serving.
 *
 * Nothing here measures time: small limits (authTimeoutMs, retransmitMs) make the timers fire
 * soon, and every wait is bounded by `collect`/`waitFor`.
 */
import assert from 'node:assert/strict'
import { sign } from 'node:crypto'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { CloseCode, ErrorCode, PROTOCOL, constants, encodeSend, type Envelope } from '@agentmesh/protocol'
import { createIdentity, envelopeSigningBytes, signChallenge, signEnvelope, toB64u, verifyEnvelope, type Identity } from '@agentmesh/crypto'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'
import { memoryStore, type Store } from '@agentmesh/store'
import { createRelay, silentLogger, type Relay, type RelayInit } from '@agentmesh/server'
import { rawAgent, startRelay as startTestRelay, tempDir, waitFor, type RawAgent } from '@agentmesh/testing'

type Frame = Record<string, any>

// ---------------------------------------------------------------- harness

type Backend = 'memory' | 'sqlite'

async function startRelay (t: TestContext, init: RelayInit = {}, backend: Backend = 'memory'): Promise<Relay> {
  let storage: RelayInit
  if (backend === 'sqlite' && init.dataDir === undefined) {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    storage = { dataDir: dir.path }
  } else if (backend === 'sqlite') {
    storage = {}
  } else {
    storage = { memory: true }
  }
  const relay = await startTestRelay({ ...storage, ...init })
  t.after(async () => { await relay.close() })
  return relay
}

async function connect (t: TestContext, relay: Relay, id?: Identity): Promise<RawAgent> {
  const a = await rawAgent(relay.wsUrl, id)
  t.after(() => { a.close() })
  return a
}

async function authed (t: TestContext, relay: Relay, id?: Identity, extra?: Record<string, unknown>): Promise<RawAgent> {
  const a = await connect(t, relay, id)
  const w = await a.auth(extra)
  assert.equal(w.op, 'welcome', `expected a welcome, got ${JSON.stringify(w)}`)
  return a
}

const errorsOf = (a: RawAgent): Frame[] => a.frames.filter(f => f.op === 'error')
const deliveriesOf = (a: RawAgent): Frame[] => a.frames.filter(f => f.op === 'deliver')
const acksOf = (a: RawAgent): Frame[] => a.frames.filter(f => f.op === 'ack')

function sendEnv (a: RawAgent, env: unknown): void {
  a.sendRaw(encodeSend(JSON.stringify(env)))
}

async function ackOf (a: RawAgent, id: string): Promise<Frame> {
  const [ack] = await a.collect(f => (f.op === 'ack' || f.op === 'error') && f.id === id, 1)
  return ack!
}

async function errorFor (a: RawAgent, id: string): Promise<Frame> {
  const [e] = await a.collect(f => (f.op === 'ack' || f.op === 'error') && f.id === id, 1)
  assert.equal(e!.op, 'error', `expected an error for ${id}, got ${JSON.stringify(e)}`)
  return e!
}

/** Sends a fresh envelope and checks it is acked and delivered to `to` with `seq`. */
async function roundTrip (from: RawAgent, to: RawAgent, seq: number, text = `check ${seq}`): Promise<Envelope> {
  const env = from.envelope(to.id.amid, text)
  sendEnv(from, env)
  assert.deepEqual(await ackOf(from, env.id), { op: 'ack', id: env.id })
  const [d] = await to.collect(f => f.op === 'deliver' && f.env.id === env.id, 1)
  assert.deepEqual(d, { op: 'deliver', seq, env })
  return env
}

/** Signs an envelope with arbitrary fields (another version, extra fields), as a sender of that version would. */
function signRaw (who: Identity, unsigned: Record<string, unknown>): Envelope {
  const bytes = envelopeSigningBytes(unsigned as Omit<Envelope, 'sig'>)
  return { ...unsigned, sig: toB64u(sign(null, bytes, who.privateKeyObject)) } as Envelope
}

async function inboxOf (relay: Relay, amid: string): Promise<{ cursor: number, lastSeq: number, pending: number }> {
  return await relay.store.inbox(amid)
}

/** Every close the relay makes sends an error frame first; this checks both. */
async function expectClosed (a: RawAgent, code: number, errorCode: string): Promise<Frame> {
  const closed = await a.closed
  assert.deepEqual(closed, { code, reason: errorCode })
  const errs = errorsOf(a)
  assert.ok(errs.length > 0, 'an error frame precedes the close')
  const last = errs[errs.length - 1]!
  assert.equal(last.code, errorCode)
  return last
}

/** Two agents, alice and bob, authenticated on a fresh relay. */
async function pair (t: TestContext, init: RelayInit = {}, backend: Backend = 'memory'): Promise<{ relay: Relay, alice: RawAgent, bob: RawAgent }> {
  const relay = await startRelay(t, init, backend)
  const alice = await authed(t, relay)
  const bob = await authed(t, relay)
  return { relay, alice, bob }
}

// ---------------------------------------------------------------- framing

describe('relay ws - framing errors', () => {
  it('relay ws - malformed JSON answers AM_ERR_BAD_JSON and the connection keeps serving', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const env = alice.envelope(bob.id.amid, 'never stored')
    const bad = ['not json', '', '{"op":"send","env":' + JSON.stringify(env), '{"op":"send","env":{"v":}']
    for (const text of bad) alice.sendRaw(text)
    await alice.barrier()
    assert.deepEqual(errorsOf(alice), bad.map(() => ({ op: 'error', code: ErrorCode.BadJson, message: 'frame is not valid JSON' })))
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
    assert.equal(deliveriesOf(bob).length, 1)
    assert.equal(relay.stats().rejected, bad.length)
  })

  it('relay ws - unknown op answers AM_ERR_UNKNOWN_FRAME, also for prototype keys', async (t) => {
    const { alice, bob } = await pair(t)
    for (const op of ['subscribe', 'toString', '__proto__', 'constructor']) alice.send({ op, env: alice.envelope(bob.id.amid, 'x') })
    await alice.barrier()
    assert.deepEqual(errorsOf(alice).map(e => [e.code, e.message, e.id]), ['subscribe', 'toString', '__proto__', 'constructor'].map(op =>
      [ErrorCode.UnknownFrame, `unknown frame op "${op}"; expected one of: auth, send, cursor, resume, ping, signal, watch`, undefined]))
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - a frame that is not an object, or has no op, answers AM_ERR_INVALID_FRAME', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const cases: Array<[string, string]> = [
      ['[{"op":"ping"}]', 'frame must be a JSON object with an "op" field'],
      ['"send"', 'frame must be a JSON object with an "op" field'],
      ['42', 'frame must be a JSON object with an "op" field'],
      ['null', 'frame must be a JSON object with an "op" field'],
      ['{"seq":1}', 'frame has no "op" string field'],
      ['{"op":7,"seq":1}', 'frame has no "op" string field'],
      [JSON.stringify({ env: alice.envelope(bob.id.amid, 'no op') }), 'frame has no "op" string field'],
      ['{"op":"send"}', 'invalid send frame, field env: Expected required property'],
      ['{"op":"cursor","seq":-1}', 'invalid cursor frame, field seq: Expected integer to be greater or equal to 0'],
      ['{"op":"resume","after":"3"}', 'invalid resume frame, field after: Expected integer'],
    ]
    for (const [text] of cases) alice.sendRaw(text)
    await alice.barrier()
    assert.deepEqual(errorsOf(alice), cases.map(([, message]) => ({ op: 'error', code: ErrorCode.InvalidFrame, message })))
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - a binary frame answers AM_ERR_INVALID_FRAME and is not processed', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const env = alice.envelope(bob.id.amid, 'sent as binary')
    alice.ws.send(Buffer.from(encodeSend(JSON.stringify(env))), { binary: true })
    await alice.barrier()
    assert.deepEqual(errorsOf(alice), [{
      op: 'error', code: ErrorCode.InvalidFrame, message: 'binary frames are not part of the protocol; send UTF-8 JSON text frames',
    }])
    assert.equal(acksOf(alice).length, 0)
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - ping answers pong with ts echoed, before and after auth', async (t) => {
    const relay = await startRelay(t)
    const a = await connect(t, relay)
    a.send({ op: 'ping', ts: 1_700_000_000_123.5 })
    a.send({ op: 'ping' })
    const pongs = await a.collect(f => f.op === 'pong', 2)
    assert.deepEqual(pongs, [{ op: 'pong', ts: 1_700_000_000_123.5 }, { op: 'pong' }])
    await a.auth()
    a.send({ op: 'ping', ts: 7 })
    const after = await a.collect(f => f.op === 'pong', 3)
    assert.deepEqual(after[2], { op: 'pong', ts: 7 })
    assert.equal(errorsOf(a).length, 0)
  })
})

// ---------------------------------------------------------------- envelopes

describe('relay ws - envelope validation', () => {
  it('relay ws - a send missing an envelope field answers AM_ERR_INVALID_ENVELOPE naming the field', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const fields = ['v', 'id', 'from', 'to', 'type', 'ts', 'payload', 'sig'] as const
    const sent: Array<{ field: string, id: string }> = []
    for (const field of fields) {
      const env: Record<string, unknown> = { ...alice.envelope(bob.id.amid, `missing ${field}`) }
      sent.push({ field, id: env.id as string })
      delete env[field]
      sendEnv(alice, env)
    }
    await alice.barrier()
    const errs = errorsOf(alice)
    assert.equal(errs.length, fields.length)
    for (const [i, { field, id }] of sent.entries()) {
      assert.deepEqual(errs[i], {
        op: 'error',
        code: ErrorCode.InvalidEnvelope,
        message: `invalid envelope, field ${field}: Expected required property`,
        // the error names the envelope it refuses, when the envelope has an id
        ...(field === 'id' ? {} : { id }),
      })
    }
    assert.equal(acksOf(alice).length, 0)
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - a send without a signature answers AM_ERR_INVALID_ENVELOPE, also with verifySignatures off', async (t) => {
    for (const verifySignatures of [true, false]) {
      const { relay, alice, bob } = await pair(t, { verifySignatures })
      const { sig: _sig, ...unsigned } = alice.envelope(bob.id.amid, 'unsigned')
      sendEnv(alice, unsigned)
      const e = await errorFor(alice, unsigned.id)
      assert.deepEqual(e, { op: 'error', code: ErrorCode.InvalidEnvelope, message: 'invalid envelope, field sig: Expected required property', id: unsigned.id })
      assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
      await roundTrip(alice, bob, 1)
    }
  })

  it('relay ws - with --verify-signatures, an envelope changed after signing answers AM_ERR_BAD_SIGNATURE with its id', async (t) => {
    const { relay, alice, bob } = await pair(t, { verifySignatures: true })
    const tampered = { ...alice.envelope(bob.id.amid, 'pay 10'), payload: { text: 'pay 1000' } }
    const otherKey = signEnvelope(createIdentity(), { id: 'forgedsig1', to: bob.id.amid, type: 'chat', payload: { text: 'x' } })
    const wrongSig = { ...alice.envelope(bob.id.amid, 'sig of another key'), sig: otherKey.sig }
    sendEnv(alice, tampered)
    sendEnv(alice, wrongSig)
    const message = 'envelope signature does not verify with the sender\'s key; nothing was stored'
    assert.deepEqual(await errorFor(alice, tampered.id), { op: 'error', code: ErrorCode.BadSignature, message, id: tampered.id })
    assert.deepEqual(await errorFor(alice, wrongSig.id), { op: 'error', code: ErrorCode.BadSignature, message, id: wrongSig.id })
    await roundTrip(alice, bob, 1)
    assert.deepEqual(deliveriesOf(bob).map(d => d.seq), [1])
    assert.equal((await relay.store.stats()).pending, 1)
  })

  it('relay ws - an envelope over maxEnvelopeBytes answers AM_ERR_ENVELOPE_TOO_LARGE and the connection survives', async (t) => {
    const { relay, alice, bob } = await pair(t, { maxEnvelopeBytes: 2048 })
    const env = alice.envelope(bob.id.amid, 'x'.repeat(3000))
    const bytes = Buffer.byteLength(JSON.stringify(env))
    assert.ok(bytes > 2048 && bytes + 100 < 2 * 2048 + constants.FRAME_OVERHEAD_BYTES, 'between the envelope limit and the frame limit')
    sendEnv(alice, env)
    assert.deepEqual(await errorFor(alice, env.id), {
      op: 'error', code: ErrorCode.EnvelopeTooLarge, message: `envelope is ${bytes} bytes, larger than the limit of 2048 bytes`, id: env.id,
    })
    // the same through the non-canonical (fully parsed) path
    const env2 = alice.envelope(bob.id.amid, 'y'.repeat(3000))
    alice.sendRaw(JSON.stringify({ env: env2, op: 'send' }))
    assert.equal((await errorFor(alice, env2.id)).code, ErrorCode.EnvelopeTooLarge)
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
    assert.equal(relay.stats().connections, 2)
  })

  it('relay ws - a frame beyond the WebSocket maxPayload closes that socket with 1009 and nothing else', async (t) => {
    const { relay, alice, bob } = await pair(t, { maxEnvelopeBytes: 2048 })
    const carol = await authed(t, relay)
    const env = alice.envelope(bob.id.amid, 'z'.repeat(2 * 2048 + constants.FRAME_OVERHEAD_BYTES + 1))
    sendEnv(alice, env)
    const closed = await alice.closed
    assert.equal(closed.code, CloseCode.MessageTooBig)
    assert.equal(acksOf(alice).length, 0)
    await waitFor(() => relay.stats().connections === 2, 'the relay to drop the closed connection')
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    // the relay keeps serving, the other connections and the same agent reconnecting
    await roundTrip(carol, bob, 1)
    const alice2 = await authed(t, relay, alice.id)
    await roundTrip(alice2, bob, 2)
  })

  it('relay ws - another major version in an envelope answers AM_ERR_UNSUPPORTED_VERSION', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const env = signRaw(alice.id, { v: 'agentmesh/1.0', id: 'v1envelope', from: alice.id.amid, to: bob.id.amid, type: 'chat', ts: 1, payload: {} })
    sendEnv(alice, env)
    assert.deepEqual(await errorFor(alice, env.id), {
      op: 'error', code: ErrorCode.UnsupportedVersion, id: env.id,
      message: 'protocol version "agentmesh/1.0" is not supported: this relay speaks agentmesh/0.x',
    })
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - a newer minor version with unknown fields is accepted and forwarded intact', async (t) => {
    const { alice, bob } = await pair(t)
    const env = signRaw(alice.id, {
      v: 'agentmesh/0.7', id: 'minor07env', from: alice.id.amid, to: bob.id.amid, type: 'chat.v2',
      ts: 1_700_000_000_000, payload: { text: 'hi', extra: [1, { deep: true }] }, thread: 'th-1', future: { a: 1 },
    })
    sendEnv(alice, env)
    assert.deepEqual(await ackOf(alice, env.id), { op: 'ack', id: env.id })
    const [d] = await bob.collect(f => f.op === 'deliver', 1)
    assert.deepEqual(d, { op: 'deliver', seq: 1, env })
    assert.equal(verifyEnvelope(d!.env as Envelope), true, 'the unknown fields are signed and survive the relay')
  })
})

// ---------------------------------------------------------------- authentication

describe('relay ws - authentication', () => {
  it('relay ws - the challenge and welcome carry the protocol, relay id, cursor and limits', async (t) => {
    const relay = await startRelay(t)
    const a = await connect(t, relay)
    assert.deepEqual(a.frames[0], { op: 'challenge', v: PROTOCOL, nonce: a.challenge.nonce, relay: await relay.store.relayId() })
    assert.match(a.challenge.nonce, /^[A-Za-z0-9_-]{32}$/)
    const b = await connect(t, relay)
    assert.notEqual(b.challenge.nonce, a.challenge.nonce)
    const w = await a.auth({ name: 'alice' })
    assert.deepEqual(w, {
      op: 'welcome', amid: a.id.amid, relay: a.challenge.relay, cursor: 0,
      limits: {
        max_envelope_bytes: constants.DEFAULT_MAX_ENVELOPE_BYTES,
        max_in_flight: constants.DEFAULT_MAX_IN_FLIGHT,
        delivery_window: constants.DEFAULT_DELIVERY_WINDOW,
        heartbeat_ms: constants.DEFAULT_HEARTBEAT_MS,
      },
      relay_amid: relay.relayAmid,
      last_seq: 0,
    })
    assert.match(String(w.relay_amid), /^am[1-9A-HJ-NP-Za-km-z]{42,46}$/)
    assert.equal((await relay.store.getAgent(a.id.amid))?.name, 'alice')
    // last_seq: how far the inbox goes at auth (a connection that only sends knows when it has seen its backlog)
    const sender = await authed(t, relay)
    for (const text of ['one', 'two']) {
      const env = sender.envelope(a.id.amid, text)
      sendEnv(sender, env)
      await sender.next(f => f.op === 'ack' && f.id === env.id)
    }
    const again = await connect(t, relay, a.id)
    const w2 = await again.auth({ deliver: false })
    assert.deepEqual([w2.cursor, w2.last_seq], [0, 2])
  })

  it('relay ws - frames that need auth answer AM_ERR_NOT_AUTHENTICATED before it', async (t) => {
    const relay = await startRelay(t)
    const bob = await authed(t, relay)
    const alice = await connect(t, relay)
    const env = alice.envelope(bob.id.amid, 'too early')
    sendEnv(alice, env)
    alice.send({ op: 'cursor', seq: 1 })
    alice.send({ op: 'resume', after: 0 })
    await alice.barrier()
    assert.deepEqual(errorsOf(alice), [
      { op: 'error', code: ErrorCode.NotAuthenticated, message: 'authenticate (answer the challenge with an auth frame) before sending', id: env.id },
      { op: 'error', code: ErrorCode.NotAuthenticated, message: 'authenticate before acknowledging' },
      { op: 'error', code: ErrorCode.NotAuthenticated, message: 'authenticate before resuming' },
    ])
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    // the same connection authenticates and sends afterwards; the early envelope was not kept
    assert.equal((await alice.auth()).op, 'welcome')
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - an auth frame replayed on another connection answers AM_ERR_AUTH_REPLAYED and does not authenticate', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const captured = alice.authFrame() // what connection 1 sent for its challenge
    const eve = await connect(t, relay)
    eve.send(captured)
    await eve.barrier()
    assert.deepEqual(errorsOf(eve), [{
      op: 'error', code: ErrorCode.AuthReplayed,
      message: 'the auth frame answers a challenge this connection was not given (replayed or stale); sign the nonce of this connection\'s challenge',
    }])
    assert.equal(eve.frames.some(f => f.op === 'welcome'), false)
    // still not authenticated as alice: sending in her name is refused
    const forged = alice.envelope(bob.id.amid, 'from the replayer')
    sendEnv(eve, forged)
    assert.equal((await errorFor(eve, forged.id)).code, ErrorCode.NotAuthenticated)
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    // the connection may still authenticate as its own agent; alice's connection is untouched
    assert.equal((await eve.auth()).op, 'welcome')
    await roundTrip(eve, bob, 1)
    await roundTrip(alice, bob, 2)
  })

  it('relay ws - a wrong challenge signature answers AM_ERR_AUTH_FAILED', async (t) => {
    const { relay, bob } = await pair(t)
    const a = await connect(t, relay)
    const mallory = createIdentity()
    const message = 'the challenge signature does not verify for this AMID'
    // signed by another key
    a.send({ ...a.authFrame(), sig: signChallenge(mallory, a.id.amid, a.challenge.nonce, a.challenge.relay) })
    await a.barrier()
    assert.deepEqual(errorsOf(a), [{ op: 'error', code: ErrorCode.AuthFailed, message }])
    // signed for another relay
    a.send({ ...a.authFrame(), sig: signChallenge(a.id, a.id.amid, a.challenge.nonce, 'another-relay') })
    await a.barrier()
    assert.deepEqual(errorsOf(a).map(e => e.code), [ErrorCode.AuthFailed, ErrorCode.AuthFailed])
    assert.equal(a.frames.some(f => f.op === 'welcome'), false)
    const env = a.envelope(bob.id.amid, 'x')
    sendEnv(a, env)
    assert.equal((await errorFor(a, env.id)).code, ErrorCode.NotAuthenticated)
    // two failures leave room for a correct answer
    assert.equal((await a.auth()).op, 'welcome')
    await roundTrip(a, bob, 1)
    assert.equal(relay.stats().connections, 3)
  })

  it('relay ws - three failed auths close the connection with 4401', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const a = await connect(t, relay)
    const bad = { ...a.authFrame(), sig: signChallenge(createIdentity(), a.id.amid, a.challenge.nonce, a.challenge.relay) }
    a.send(bad)
    a.send(bad)
    a.send(bad)
    await expectClosed(a, CloseCode.AuthFailed, ErrorCode.AuthFailed)
    const message = 'the challenge signature does not verify for this AMID'
    assert.deepEqual(errorsOf(a), [
      { op: 'error', code: ErrorCode.AuthFailed, message },
      { op: 'error', code: ErrorCode.AuthFailed, message },
      { op: 'error', code: ErrorCode.AuthFailed, message: `${message} (3 failed attempts: closing)` },
    ])
    await waitFor(() => relay.stats().connections === 2, 'the relay to drop the closed connection')
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - a second auth answers AM_ERR_ALREADY_AUTHENTICATED and the connection keeps serving', async (t) => {
    const { alice, bob } = await pair(t)
    alice.send(alice.authFrame())
    const other = createIdentity()
    alice.send({ ...alice.authFrame(), amid: other.amid, sig: signChallenge(other, other.amid, alice.challenge.nonce, alice.challenge.relay) })
    await alice.barrier()
    const message = `this connection is already authenticated as ${alice.id.amid}`
    assert.deepEqual(errorsOf(alice), [
      { op: 'error', code: ErrorCode.AlreadyAuthenticated, message },
      { op: 'error', code: ErrorCode.AlreadyAuthenticated, message },
    ])
    assert.equal(alice.frames.filter(f => f.op === 'welcome').length, 1)
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - no auth within authTimeoutMs answers AM_ERR_AUTH_TIMEOUT and closes with 4408', async (t) => {
    const relay = await startRelay(t, { authTimeoutMs: 100 })
    const a = await connect(t, relay)
    const e = await expectClosed(a, CloseCode.AuthTimeout, ErrorCode.AuthTimeout)
    assert.equal(e.message, 'no valid auth frame within 100 ms of the challenge')
    assert.deepEqual(a.frames.map(f => f.op), ['challenge', 'error'])
    await waitFor(() => relay.stats().connections === 0, 'the relay to drop the closed connection')
    assert.deepEqual(await relay.store.stats(), { agents: 0, pending: 0 })
    // the relay still serves: a new connection is challenged
    const b = await connect(t, relay)
    assert.equal(b.frames[0]?.op, 'challenge')
    assert.notEqual(b.challenge.nonce, a.challenge.nonce)
  })

  it('relay ws - another major version in auth answers AM_ERR_UNSUPPORTED_VERSION; a newer minor with extra fields is accepted', async (t) => {
    const { relay, bob } = await pair(t)
    const a = await connect(t, relay)
    a.send(a.authFrame({ v: 'agentmesh/1.0' }))
    a.send(a.authFrame({ v: 'agentmesh/2.3' }))
    await a.barrier()
    assert.deepEqual(errorsOf(a), ['1.0', '2.3'].map(v => ({
      op: 'error', code: ErrorCode.UnsupportedVersion, message: `protocol version "agentmesh/${v}" is not supported: this relay speaks agentmesh/0.x`,
    })))
    assert.equal(a.frames.some(f => f.op === 'welcome'), false)
    // refused versions are not failed attempts, and the nonce is still unanswered
    const w = await a.auth({ v: 'agentmesh/0.7', capabilities: ['chat'], future: { x: 1 } })
    assert.equal(w.op, 'welcome')
    assert.equal(w.amid, a.id.amid)
    await roundTrip(a, bob, 1)
  })

  it('relay ws - a third connection of one agent is closed with 4429 AM_ERR_TOO_MANY_CONNECTIONS', async (t) => {
    const { relay, alice } = await pair(t, { maxConnectionsPerAgent: 2 })
    const bob = createIdentity()
    const b1 = await authed(t, relay, bob)
    const b2 = await authed(t, relay, bob)
    const b3 = await connect(t, relay, bob)
    b3.send(b3.authFrame())
    const e = await expectClosed(b3, CloseCode.TooManyConnections, ErrorCode.TooManyConnections)
    assert.equal(e.message, `agent ${bob.amid} already has 2 connections (limit 2)`)
    assert.equal(b3.frames.some(f => f.op === 'welcome'), false)
    // the two admitted connections both keep receiving
    const env = await roundTrip(alice, b1, 1)
    const [d2] = await b2.collect(f => f.op === 'deliver', 1)
    assert.deepEqual(d2, { op: 'deliver', seq: 1, env })
    // a slot freed by a close is available again
    b1.close()
    await waitFor(() => relay.stats().connections === 3, 'the relay to drop the closed connection')
    const b4 = await authed(t, relay, bob)
    await roundTrip(alice, b4, 2)
  })

  it('relay ws - concurrent auths of one agent cannot exceed maxConnectionsPerAgent on a slow store', async (t) => {
    // a Store whose auth bookkeeping waits (as a networked store would) until all three auths are in it
    const inner = memoryStore()
    let waiting = 0
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    const store: Store = {
      ...inner,
      kind: 'memory',
      async agentsOnline (batch) {
        waiting += batch.length
        if (waiting >= 3) release()
        await gate
        return await inner.agentsOnline(batch)
      },
    }
    const relay = await createRelay({ port: 0, logger: silentLogger, maxConnectionsPerAgent: 2 }, { store })
    t.after(async () => { await relay.close(); await inner.close() })
    const bob = createIdentity()
    const conns = [await connect(t, relay, bob), await connect(t, relay, bob), await connect(t, relay, bob)]
    const answers = await Promise.all(conns.map(async c => await c.auth()))
    assert.deepEqual(answers.map(a => a.op).sort(), ['error', 'welcome', 'welcome'])
    const refused = conns[answers.findIndex(a => a.op === 'error')]!
    await expectClosed(refused, CloseCode.TooManyConnections, ErrorCode.TooManyConnections)
    await waitFor(() => relay.stats().connections === 2, 'the relay to drop the refused connection')
  })

  it('relay ws - a message committed while the receiver\'s auth waits for a slow store is delivered at once', async (t) => {
    // a Store whose inbox() read (the receiver's starting point) answers only after a message was committed
    const inner = memoryStore()
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    let gated = false
    // resolved when the receiver's auth has read its inbox and waits on the gate
    let reached!: () => void
    const waiting = new Promise<void>((resolve) => { reached = resolve })
    const store: Store = {
      ...inner,
      kind: 'memory',
      async inbox (r) {
        const snapshot = await inner.inbox(r)
        if (gated) { reached(); await gate }
        return snapshot
      },
    }
    const relay = await createRelay({ port: 0, logger: silentLogger }, { store })
    t.after(async () => { await relay.close(); await inner.close() })
    const alice = await authed(t, relay)
    const bobId = createIdentity()
    const bob1 = await authed(t, relay, bobId) // registers bob
    bob1.close()
    await waitFor(() => relay.stats().agentsOnline === 1, 'bob to go offline')
    gated = true
    const bob = await connect(t, relay, bobId)
    bob.send(bob.authFrame())
    await waitFor(() => (relay.stats() as { connections: number }).connections === 2, 'bob\'s auth to be under way')
    await waiting
    const env = alice.envelope(bobId.amid, 'sent while bob authenticates')
    sendEnv(alice, env)
    assert.equal((await ackOf(alice, env.id)).op, 'ack')
    release()
    const [d] = await bob.collect(f => f.op === 'deliver', 1)
    assert.deepEqual(d, { op: 'deliver', seq: 1, env })
  })

  it('relay ws - a second auth while the first waits for the store answers AM_ERR_ALREADY_AUTHENTICATED', async (t) => {
    const inner = memoryStore()
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    const store: Store = { ...inner, kind: 'memory', async upsertAgent (a) { await gate; return await inner.upsertAgent(a) } }
    const relay = await createRelay({ port: 0, logger: silentLogger }, { store })
    t.after(async () => { await relay.close(); await inner.close() })
    const a = await connect(t, relay)
    a.send(a.authFrame())
    a.send(a.authFrame())
    const [e] = await a.collect(f => f.op === 'error', 1)
    assert.equal(e!.code, ErrorCode.AlreadyAuthenticated)
    assert.equal(e!.message, 'this connection is already authenticating')
    release()
    const [w] = await a.collect(f => f.op === 'welcome', 1)
    assert.equal(w!.amid, a.id.amid)
  })
})

// ---------------------------------------------------------------- routing and flow control

describe('relay ws - routing and flow control', () => {
  it('relay ws - a send to an unregistered agent answers AM_ERR_UNKNOWN_RECIPIENT', async (t) => {
    for (const verifySignatures of [true, false]) {
      const { relay, alice, bob } = await pair(t, { verifySignatures })
      const nobody = createIdentity().amid
      const env = alice.envelope(nobody, 'to nobody')
      sendEnv(alice, env)
      assert.deepEqual(await errorFor(alice, env.id), {
        op: 'error', code: ErrorCode.UnknownRecipient, id: env.id,
        message: `no agent ${nobody} is registered on this relay; it registers by connecting once`,
      })
      assert.equal((await inboxOf(relay, nobody)).lastSeq, 0)
      assert.equal(await relay.store.getAgent(nobody), undefined)
      await roundTrip(alice, bob, 1)
    }
  })

  it('relay ws - an agent-signed envelope of a type only the relay posts answers AM_ERR_RESERVED_TYPE; nothing is stored, to #global or an agent', async (t) => {
    const { relay, alice, bob } = await pair(t)
    let n = 0
    for (const to of ['#global', bob.id.amid]) {
      for (const type of ['notice', 'task.request', 'task.update', 'task.cancel', 'relay.shutdown', 'system.notice']) {
        const env = signEnvelope(alice.id, { id: `reserved-${++n}`, to, type, payload: { text: 'relay: rotate your keys at evil.example' } })
        sendEnv(alice, env)
        assert.deepEqual(await errorFor(alice, env.id), {
          op: 'error', code: ErrorCode.ReservedType, id: env.id,
          message: `type "${type}" is posted by the relay only (task.*, notice, relay.*, system.*); nothing was stored`,
        })
      }
    }
    assert.deepEqual(await relay.store.readHistory('global', { limit: 10 }), [])
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    // the connection goes on serving
    await roundTrip(alice, bob, 1)
  })

  it('relay ws - an envelope from another agent answers AM_ERR_SENDER_MISMATCH, even signed by that agent', async (t) => {
    const { relay, alice, bob } = await pair(t)
    const carol = await authed(t, relay)
    // carol's own, validly signed envelope, sent on alice's connection
    const forged = signEnvelope(carol.id, { id: 'forged-from-carol', to: bob.id.amid, type: 'chat', payload: { text: 'hi from "carol"' } })
    sendEnv(alice, forged)
    assert.deepEqual(await errorFor(alice, forged.id), {
      op: 'error', code: ErrorCode.SenderMismatch, id: forged.id,
      message: `envelope "from" is ${carol.id.amid} but this connection is authenticated as ${alice.id.amid}`,
    })
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 0)
    await roundTrip(alice, bob, 1)
    // carol sending the same envelope herself is not a duplicate of the refused one
    sendEnv(carol, forged)
    assert.deepEqual(await ackOf(carol, forged.id), { op: 'ack', id: forged.id })
    const [, d] = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(d, { op: 'deliver', seq: 2, env: forged })
  })

  it('relay ws - sends beyond maxInFlight answer AM_ERR_TOO_MANY_IN_FLIGHT for the excess only', async (t) => {
    const { relay, alice, bob } = await pair(t, { maxInFlight: 2, verifySignatures: true })
    const envs = Array.from({ length: 5 }, (_, i) => alice.envelope(bob.id.amid, `burst ${i}`))
    // one socket write: the relay reads all five in one turn, before any signature check finishes
    alice.sendBatch(envs.map(e => encodeSend(JSON.stringify(e))))
    const answers = await alice.collect(f => f.op === 'ack' || f.op === 'error', 5)
    const byId = new Map(answers.map(a => [a.id, a]))
    assert.equal(byId.size, 5)
    assert.deepEqual(byId.get(envs[0]!.id), { op: 'ack', id: envs[0]!.id })
    assert.deepEqual(byId.get(envs[1]!.id), { op: 'ack', id: envs[1]!.id })
    for (const e of envs.slice(2)) {
      assert.deepEqual(byId.get(e.id), {
        op: 'error', code: ErrorCode.TooManyInFlight, id: e.id,
        message: 'more than 2 sends awaiting their ack on this connection; wait for acks before sending more',
      })
    }
    const ds = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(ds.map(d => d.env.id), [envs[0]!.id, envs[1]!.id])
    // acks free the window: the refused ones go through when sent again
    sendEnv(alice, envs[2])
    assert.deepEqual(await alice.collect(f => f.op === 'ack' && f.id === envs[2]!.id, 1), [{ op: 'ack', id: envs[2]!.id }])
    await roundTrip(alice, bob, 4)
    assert.equal((await inboxOf(relay, bob.id.amid)).lastSeq, 4)
  })

  it('relay ws - the send past maxInbox answers AM_ERR_INBOX_FULL; acking makes room again', async (t) => {
    const { relay, alice, bob } = await pair(t, { maxInbox: 3 })
    const envs = Array.from({ length: 4 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
    for (const e of envs) sendEnv(alice, e)
    for (const e of envs.slice(0, 3)) assert.deepEqual(await ackOf(alice, e.id), { op: 'ack', id: e.id })
    assert.deepEqual(await ackOf(alice, envs[3]!.id), {
      op: 'error', code: ErrorCode.InboxFull, id: envs[3]!.id,
      message: `the inbox of ${bob.id.amid} holds 3 undelivered messages; try again later`,
    })
    const ds = await bob.collect(f => f.op === 'deliver', 3)
    assert.deepEqual(ds.map(d => [d.seq, d.env.id]), envs.slice(0, 3).map((e, i) => [i + 1, e.id]))
    assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 0, lastSeq: 3, pending: 3 })
    // still full: another sender is refused too
    const carol = await authed(t, relay)
    const c1 = carol.envelope(bob.id.amid, 'from carol')
    sendEnv(carol, c1)
    assert.equal((await errorFor(carol, c1.id)).code, ErrorCode.InboxFull)
    // the receiver acks: room again, and the refused id was not remembered as a duplicate
    bob.send({ op: 'cursor', seq: 3 })
    await waitFor(async () => (await inboxOf(relay, bob.id.amid)).pending === 0, 'the cursor ack to be committed')
    sendEnv(alice, envs[3])
    const acks = await alice.collect(f => f.op === 'ack' && f.id === envs[3]!.id, 1)
    assert.deepEqual(acks, [{ op: 'ack', id: envs[3]!.id }])
    const [d4] = await bob.collect(f => f.op === 'deliver' && f.seq === 4, 1)
    assert.deepEqual(d4, { op: 'deliver', seq: 4, env: envs[3] })
  })

  it('relay ws - a cursor beyond what was delivered answers AM_ERR_INVALID_CURSOR and changes nothing', async (t) => {
    const { relay, alice, bob } = await pair(t)
    bob.send({ op: 'cursor', seq: 1 })
    await bob.barrier()
    assert.deepEqual(errorsOf(bob), [{
      op: 'error', code: ErrorCode.InvalidCursor, message: 'cursor 1 is beyond the last seq delivered on this connection (0)',
    }])
    await roundTrip(alice, bob, 1)
    await roundTrip(alice, bob, 2)
    bob.send({ op: 'cursor', seq: 3 })
    await bob.barrier()
    assert.deepEqual(errorsOf(bob).map(e => e.message), [
      'cursor 1 is beyond the last seq delivered on this connection (0)',
      'cursor 3 is beyond the last seq delivered on this connection (2)',
    ])
    assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 0, lastSeq: 2, pending: 2 })
    // a valid cursor still works on the same connection
    bob.send({ op: 'cursor', seq: 2 })
    await waitFor(async () => (await inboxOf(relay, bob.id.amid)).cursor === 2, 'the cursor ack to be committed')
    assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 2, lastSeq: 2, pending: 0 })
    await bob.barrier()
    assert.equal(errorsOf(bob).length, 2)
  })
})

// ---------------------------------------------------------------- delivery semantics, on both stores

for (const backend of ['memory', 'sqlite'] as const) {
  describe(`relay ws - delivery semantics (${backend} store)`, () => {
    it('relay ws - a duplicate id from the same sender is acked as duplicate and delivered once', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      const e1 = alice.envelope(bob.id.amid, 'once')
      sendEnv(alice, e1)
      assert.deepEqual(await ackOf(alice, e1.id), { op: 'ack', id: e1.id })
      sendEnv(alice, e1)
      await alice.collect(f => f.op === 'ack' && f.id === e1.id, 2)
      assert.deepEqual(acksOf(alice), [{ op: 'ack', id: e1.id }, { op: 'ack', id: e1.id, duplicate: true }])
      // also a retry with other bytes under the same id, and a retry after the receiver acked it
      sendEnv(alice, alice.envelope(bob.id.amid, 'other text, same id', e1.id))
      await alice.collect(f => f.op === 'ack' && f.id === e1.id, 3)
      await bob.collect(f => f.op === 'deliver', 1)
      bob.send({ op: 'cursor', seq: 1 })
      await waitFor(async () => (await inboxOf(relay, bob.id.amid)).cursor === 1, 'the cursor ack to be committed')
      sendEnv(alice, e1)
      await alice.collect(f => f.op === 'ack' && f.id === e1.id, 4)
      assert.deepEqual(acksOf(alice).slice(2), [{ op: 'ack', id: e1.id, duplicate: true }, { op: 'ack', id: e1.id, duplicate: true }])
      await roundTrip(alice, bob, 2)
      assert.deepEqual(deliveriesOf(bob).map(d => [d.seq, d.env.id, d.env.payload.text]), [[1, e1.id, 'once'], [2, acksOf(alice)[4]!.id, 'check 2']])
      assert.equal(relay.stats().duplicates, 3)
    })

    it('relay ws - the same id from different senders is delivered from each', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      const carol = await authed(t, relay)
      const a = alice.envelope(bob.id.amid, 'from alice', 'shared-id-1')
      const c = carol.envelope(bob.id.amid, 'from carol', 'shared-id-1')
      sendEnv(alice, a)
      assert.deepEqual(await ackOf(alice, a.id), { op: 'ack', id: a.id })
      sendEnv(carol, c)
      assert.deepEqual(await ackOf(carol, c.id), { op: 'ack', id: c.id })
      const ds = await bob.collect(f => f.op === 'deliver', 2)
      assert.deepEqual(ds, [{ op: 'deliver', seq: 1, env: a }, { op: 'deliver', seq: 2, env: c }])
    })

    it('relay ws - seqs of an inbox count from 1 in send order across three senders', async (t) => {
      const relay = await startRelay(t, {}, backend)
      const bob = await authed(t, relay)
      const senders = [await authed(t, relay), await authed(t, relay), await authed(t, relay)]
      // one at a time, interleaved: the seq order is the send order
      const order: Envelope[] = []
      for (let round = 0; round < 3; round++) {
        for (const s of [senders[1]!, senders[0]!, senders[2]!]) {
          const env = s.envelope(bob.id.amid, `r${round}`)
          sendEnv(s, env)
          assert.deepEqual(await ackOf(s, env.id), { op: 'ack', id: env.id })
          order.push(env)
        }
      }
      const ds = await bob.collect(f => f.op === 'deliver', 9)
      assert.deepEqual(ds, order.map((env, i) => ({ op: 'deliver', seq: i + 1, env })))
      // all at once: seqs stay contiguous and each sender's own order is kept
      const bursts = senders.map(s => Array.from({ length: 20 }, (_, i) => s.envelope(bob.id.amid, `burst ${i}`)))
      for (const [i, s] of senders.entries()) s.sendBatch(bursts[i]!.map(e => encodeSend(JSON.stringify(e))))
      const all = await bob.collect(f => f.op === 'deliver', 69)
      assert.equal(all.length, 69)
      assert.deepEqual(all.map(d => d.seq), Array.from({ length: 69 }, (_, i) => i + 1))
      for (const [i, s] of senders.entries()) {
        assert.deepEqual(all.slice(9).filter(d => d.env.from === s.id.amid).map(d => d.env.id), bursts[i]!.map(e => e.id))
        assert.equal((await s.collect(f => f.op === 'ack', 23)).length, 23)
      }
      assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 0, lastSeq: 69, pending: 69 })
    })

    it('relay ws - an offline receiver gets everything on auth, in order', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      bob.close()
      await bob.closed
      await waitFor(() => relay.stats().agentsOnline === 1, 'bob to be offline')
      const envs = Array.from({ length: 5 }, (_, i) => alice.envelope(bob.id.amid, `while away ${i}`))
      for (const e of envs) sendEnv(alice, e)
      for (const e of envs) assert.deepEqual(await ackOf(alice, e.id), { op: 'ack', id: e.id })
      const back = await connect(t, relay, bob.id)
      assert.equal((await back.auth()).cursor, 0)
      const ds = await back.collect(f => f.op === 'deliver', 5)
      assert.deepEqual(ds, envs.map((env, i) => ({ op: 'deliver', seq: i + 1, env })))
      await roundTrip(alice, back, 6)
      assert.equal(deliveriesOf(back).length, 6)
    })

    it('relay ws - after a cursor ack a reconnecting receiver gets only what it did not ack', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      const envs = Array.from({ length: 5 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
      for (const e of envs) sendEnv(alice, e)
      await bob.collect(f => f.op === 'deliver', 5)
      bob.send({ op: 'cursor', seq: 3 })
      await waitFor(async () => (await inboxOf(relay, bob.id.amid)).cursor === 3, 'the cursor ack to be committed')
      bob.close()
      await bob.closed
      const back = await connect(t, relay, bob.id)
      assert.equal((await back.auth()).cursor, 3)
      const ds = await back.collect(f => f.op === 'deliver', 2)
      assert.deepEqual(ds, [{ op: 'deliver', seq: 4, env: envs[3] }, { op: 'deliver', seq: 5, env: envs[4] }])
      await roundTrip(alice, back, 6)
      assert.deepEqual(deliveriesOf(back).map(d => d.seq), [4, 5, 6])
      assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 3, lastSeq: 6, pending: 3 })
    })

    it('relay ws - auth with `after` skips what the receiver already has, without acking it', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      bob.close()
      await bob.closed
      const envs = Array.from({ length: 5 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
      for (const e of envs) sendEnv(alice, e)
      await alice.collect(f => f.op === 'ack', 5)
      const back = await connect(t, relay, bob.id)
      assert.equal((await back.auth({ after: 3 })).cursor, 0)
      const ds = await back.collect(f => f.op === 'deliver', 2)
      assert.deepEqual(ds.map(d => [d.seq, d.env.id]), [[4, envs[3]!.id], [5, envs[4]!.id]])
      await roundTrip(alice, back, 6)
      assert.deepEqual(deliveriesOf(back).map(d => d.seq), [4, 5, 6])
      assert.deepEqual(await inboxOf(relay, bob.id.amid), { cursor: 0, lastSeq: 6, pending: 6 })
    })

    it('relay ws - resume sends again from the given point', async (t) => {
      const { alice, bob } = await pair(t, {}, backend)
      const envs = Array.from({ length: 5 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
      for (const e of envs) sendEnv(alice, e)
      await bob.collect(f => f.op === 'deliver', 5)
      bob.send({ op: 'resume', after: 2 })
      const ds = await bob.collect(f => f.op === 'deliver', 8)
      assert.deepEqual(ds.map(d => d.seq), [1, 2, 3, 4, 5, 3, 4, 5])
      assert.deepEqual(ds.slice(5).map(d => d.env), envs.slice(2))
    })

    it('relay ws - unacknowledged deliveries are sent again after retransmitMs', async (t) => {
      const { alice, bob } = await pair(t, { retransmitMs: 200 }, backend)
      const envs = Array.from({ length: 3 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
      alice.sendBatch(envs.map(e => encodeSend(JSON.stringify(e))))
      const ds = await bob.collect(f => f.op === 'deliver', 6)
      assert.deepEqual(ds.slice(0, 6).map(d => d.seq), [1, 2, 3, 1, 2, 3])
      assert.deepEqual(ds.slice(3, 6).map(d => d.env), envs)
    })

    it('relay ws - a deliver:false connection gets no deliveries until it resumes', async (t) => {
      const { relay, alice, bob } = await pair(t, {}, backend)
      const quiet = await authed(t, relay, bob.id, { deliver: false })
      const envs = Array.from({ length: 3 }, (_, i) => alice.envelope(bob.id.amid, `m${i}`))
      for (const e of envs) sendEnv(alice, e)
      // the delivering connection of the same agent gets all three; they were written to both at once
      await bob.collect(f => f.op === 'deliver', 3)
      await quiet.barrier()
      assert.deepEqual(deliveriesOf(quiet), [])
      // it can still send
      await roundTrip(quiet, alice, 1)
      quiet.send({ op: 'resume', after: 0 })
      const ds = await quiet.collect(f => f.op === 'deliver', 3)
      assert.deepEqual(ds, envs.map((env, i) => ({ op: 'deliver', seq: i + 1, env })))
    })
  })
}

// ---------------------------------------------------------------- SQLite data directory

describe('relay ws - heartbeat', () => {
  it('relay ws - a peer that answers no ping for a whole interval is closed with 4410 AM_ERR_HEARTBEAT_TIMEOUT; a live one stays', async (t) => {
    const relay = await startRelay(t, { heartbeatMs: 150 })
    const live = await authed(t, relay)
    const dead = await authed(t, relay)
    // the dead peer stops reading: it neither sees pings nor answers them
    const sock = (dead.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
    sock.pause()
    await waitFor(() => relay.stats().connections === 1, 'the relay to drop the silent peer')
    sock.resume()
    await expectClosed(dead, CloseCode.HeartbeatTimeout, ErrorCode.HeartbeatTimeout)
    // the live one answered every ping and still works, several intervals later
    let pings = 0
    live.ws.on('ping', () => { pings++ })
    await waitFor(() => pings >= 3, 'three more pings to the live peer')
    live.send({ op: 'ping', ts: 7 })
    assert.deepEqual(await live.next(f => f.op === 'pong'), { op: 'pong', ts: 7 })
  })
})

describe('relay ws - SQLite data directory', () => {
  it('relay ws - close() commits every send it received, acks it, and closes sockets with 1001', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const relay = await startRelay(t, { dataDir: dir.path, verifySignatures: true }, 'sqlite')
    const alice = await authed(t, relay)
    const bob = await authed(t, relay)
    // enough (below maxInFlight) that acks and deliveries are still queued on the sockets at close()
    const N = 1000
    const envs = Array.from({ length: N }, (_, i) => alice.envelope(bob.id.amid, `m${i} ` + 'p'.repeat(1000)))
    alice.sendBatch(envs.map(e => encodeSend(JSON.stringify(e))))
    // close as soon as the relay has read them all, while signature checks and commits are pending
    const deadline = Date.now() + 20_000
    while (relay.stats().received < N) {
      if (Date.now() > deadline) throw new Error(`the relay read only ${relay.stats().received} of ${N} sends`)
      await new Promise(resolve => setImmediate(resolve))
    }
    await relay.close()
    const ca = await alice.closed
    const cb = await bob.closed
    assert.deepEqual(ca, { code: CloseCode.GoingAway, reason: ErrorCode.ShuttingDown })
    assert.deepEqual(cb, { code: CloseCode.GoingAway, reason: ErrorCode.ShuttingDown })
    assert.equal(errorsOf(alice).at(-1)?.code, ErrorCode.ShuttingDown)
    // every send was committed and acked before the socket closed
    assert.deepEqual(errorsOf(alice).map(e => e.code), [ErrorCode.ShuttingDown])
    assert.deepEqual(acksOf(alice).map(a => a.id), envs.map(e => e.id))
    const store = sqliteStore(join(dir.path, DB_FILE))
    try {
      assert.deepEqual(await store.inbox(bob.id.amid), { cursor: 0, lastSeq: N, pending: N })
      const rows = await store.read(bob.id.amid, 0, N + 1)
      assert.deepEqual(rows.map(r => r.id), envs.map(e => e.id))
      assert.deepEqual(rows.map(r => r.seq), envs.map((_, i) => i + 1))
      assert.deepEqual(JSON.parse(rows[0]!.envelope), envs[0])
    } finally {
      await store.close()
    }
  })

  it('relay ws - undelivered messages and the dedupe memory survive a restart', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const relay1 = await startRelay(t, { dataDir: dir.path }, 'sqlite')
    const aliceId = createIdentity()
    const bobId = createIdentity()
    const alice = await authed(t, relay1, aliceId)
    const bob = await authed(t, relay1, bobId)
    const envs = Array.from({ length: 4 }, (_, i) => alice.envelope(bobId.amid, `m${i}`))
    for (const e of envs) sendEnv(alice, e)
    await bob.collect(f => f.op === 'deliver', 4)
    bob.send({ op: 'cursor', seq: 1 })
    await waitFor(async () => (await inboxOf(relay1, bobId.amid)).cursor === 1, 'the cursor ack to be committed')
    const relayId = bob.challenge.relay
    await relay1.close()

    const relay2 = await startRelay(t, { dataDir: dir.path }, 'sqlite')
    const alice2 = await authed(t, relay2, aliceId)
    assert.equal(alice2.challenge.relay, relayId, 'the relay id is kept with the data')
    sendEnv(alice2, envs[2]) // a retry after the restart is still recognised
    assert.deepEqual(await ackOf(alice2, envs[2]!.id), { op: 'ack', id: envs[2]!.id, duplicate: true })
    const bob2 = await connect(t, relay2, bobId)
    assert.equal((await bob2.auth()).cursor, 1)
    const ds = await bob2.collect(f => f.op === 'deliver', 3)
    assert.deepEqual(ds, envs.slice(1).map((env, i) => ({ op: 'deliver', seq: i + 2, env })))
    await roundTrip(alice2, bob2, 5)
  })

  it('relay ws - a refused send is not stored on SQLite either', async (t) => {
    const { relay, alice, bob } = await pair(t, { maxEnvelopeBytes: 2048, verifySignatures: true }, 'sqlite')
    const tampered = { ...alice.envelope(bob.id.amid, 'a'), payload: { text: 'b' } }
    const big = alice.envelope(bob.id.amid, 'x'.repeat(3000))
    const forged = signEnvelope(createIdentity(), { id: 'forged-sqlite', to: bob.id.amid, type: 'chat', payload: {} })
    for (const e of [tampered, big, forged]) sendEnv(alice, e)
    assert.deepEqual([
      (await errorFor(alice, tampered.id)).code, (await errorFor(alice, big.id)).code, (await errorFor(alice, forged.id)).code,
    ], [ErrorCode.BadSignature, ErrorCode.EnvelopeTooLarge, ErrorCode.SenderMismatch])
    assert.deepEqual(await relay.store.stats(), { agents: 2, pending: 0 })
    await roundTrip(alice, bob, 1)
  })
})
