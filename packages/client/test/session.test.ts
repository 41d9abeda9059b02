/**
 * The SDK acting with a session key (docs/protocol.md §3, §8): `connect({ session })` authenticates
 * and signs with the session key; a peer checks the session certificate of every envelope that
 * carries one and drops what does not hold, with the reason; envelopes without one are untouched.
 */
import 'reflect-metadata'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode, encodeSend, type Envelope } from '@agentmesh/protocol'
import {
  certToWire, createIdentity, generateKeyPair, issueSessionCert, loadSession, saveIdentity, saveSession, signEnvelope,
  signSessionChallenge, signSessionEnvelope,
  verifyEnvelope, type Identity, type KeyPair,
} from '@agentmesh/crypto'
import { connect, memoryState, type Connection, type Message } from '@agentmesh/client'
import { sessionEnvelopeError } from '../src/session.ts'
import { rawAgent, startRelay, tempDir, waitFor } from '@agentmesh/testing'

const HOUR = 3_600_000

async function first (conn: Connection, ms = 15_000): Promise<Message> {
  for await (const m of conn.messages({ signal: AbortSignal.timeout(ms) })) return m
  throw new Error('no message')
}

async function sessionFile (dir: string, id: Identity, opts: { hours?: number, now?: Date } = {}): Promise<{ path: string, keys: KeyPair, cert: string }> {
  const keys = generateKeyPair()
  const s = await issueSessionCert(id, { sessionPublicKey: keys.publicKey, ...(opts.hours === undefined ? {} : { validityHours: opts.hours }), ...(opts.now === undefined ? {} : { now: opts.now }) })
  const path = join(dir, `session-${s.serial}.pem`)
  saveSession({ cert: path, key: path.slice(0, -4) + '.key' }, keys, s.chainPem)
  return { path, keys, cert: certToWire(s.certPem) }
}

describe('client: a session key', () => {
  it('connect({ session }) - an encrypted message from a session arrives; its envelopes carry the certificate and verify with the session key', async (t) => {
    const relay = await startRelay({ memory: true })
    const dir = tempDir('agentmesh-client-session-')
    t.after(async () => { await relay.close(); dir.cleanup() })
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const s = await sessionFile(dir.path, alice)
    const b = await connect({ server: relay.url, identity: bob, state: memoryState() })
    const a = await connect({ server: relay.url, identity: alice, state: memoryState(), session: s.path })
    t.after(async () => { await a.close(); await b.close() })
    await a.send(bob.amid, { text: 'hello from a session' })
    const m = await first(b)
    assert.equal(m.from, alice.amid)
    assert.equal(m.encrypted, true)
    assert.deepEqual(m.payload, { text: 'hello from a session' })

    // what goes on the wire: a raw receiver sees the certificate and the session key's signature
    const raw = await rawAgent(relay.wsUrl)
    t.after(() => { raw.close() })
    assert.equal((await raw.auth()).op, 'welcome')
    await a.send(raw.id.amid, { text: 'plain' }, { encrypt: false })
    const [d] = await raw.collect(f => f.op === 'deliver', 1)
    const env = d!.env as Envelope
    assert.equal(env.session_cert, s.cert)
    assert.equal(verifyEnvelope(env), false, 'not signed by the identity key')
    assert.equal(verifyEnvelope(env, s.keys.publicKeyObject), true)
  })

  it('connect() refuses an expired session and one of another agent before dialling; AGENTMESH_SESSION is read, "" means none', async (t) => {
    const relay = await startRelay({ memory: true })
    const dir = tempDir('agentmesh-client-session-')
    t.after(async () => { await relay.close(); dir.cleanup() })
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const expired = await sessionFile(dir.path, alice, { hours: 1, now: new Date(Date.now() - 3 * HOUR) })
    const bobs = await sessionFile(dir.path, bob)
    await assert.rejects(connect({ server: relay.url, identity: alice, state: memoryState(), session: expired.path }),
      (e: unknown) => AgentMeshError.is(e, ErrorCode.CertExpired) && /agentmesh cert session/.test(e.message))
    await assert.rejects(connect({ server: relay.url, identity: alice, state: memoryState(), session: bobs.path }),
      (e: unknown) => AgentMeshError.is(e, ErrorCode.CertInvalid) && e.message.includes(`of ${bob.amid}, not of this agent`))
    await assert.rejects(connect({ server: relay.url, identity: alice, state: memoryState(), session: join(dir.path, 'none.pem') }),
      (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /does not exist/.test(e.message))

    const home = join(dir.path, 'home')
    saveIdentity(home, alice)
    const prev = process.env.AGENTMESH_SESSION
    process.env.AGENTMESH_SESSION = expired.path
    t.after(() => { if (prev === undefined) delete process.env.AGENTMESH_SESSION; else process.env.AGENTMESH_SESSION = prev })
    await assert.rejects(connect({ server: relay.url, home }), { code: ErrorCode.CertExpired })
    const c = await connect({ server: relay.url, home, session: '' })
    await c.close()
  })

  it('a peer drops an envelope whose signature is not its session key\'s, with the reason, and takes the next one', async (t) => {
    // a relay that does not check signatures: what the peer checks is all there is
    const relay = await startRelay({ memory: true, verifySignatures: false })
    const dir = tempDir('agentmesh-client-session-')
    t.after(async () => { await relay.close(); dir.cleanup() })
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const s = await sessionFile(dir.path, alice)
    const warnings: AgentMeshError[] = []
    const b = await connect({ server: relay.url, identity: bob, state: memoryState(), onWarning: (w) => { warnings.push(w) } })
    t.after(async () => { await b.close() })
    const raw = await rawAgent(relay.wsUrl, alice)
    t.after(() => { raw.close() })
    const session = loadSession(s.path)
    assert.equal((await raw.auth(signSessionChallenge(session, raw.challenge.nonce, raw.challenge.relay))).op, 'welcome')
    // signed by the identity key, claiming the session certificate
    const bad = signSessionEnvelope({ ...session, keys: alice }, { id: 'session-bad-1', to: bob.amid, type: 'chat', payload: { text: 'forged' } })
    const good = signSessionEnvelope(session, { id: 'session-good-1', to: bob.amid, type: 'chat', payload: { text: 'real' } })
    raw.sendRaw(encodeSend(JSON.stringify(bad)))
    raw.sendRaw(encodeSend(JSON.stringify(good)))
    const m = await first(b)
    assert.equal(m.id, good.id)
    await waitFor(() => warnings.length > 0, 'the warning for the dropped envelope')
    assert.equal(warnings[0]!.code, ErrorCode.BadSignature)
    assert.match(warnings[0]!.message, /dropped delivery 1 \(session-bad-1\)/)
  })

  it('sessionEnvelopeError - another agent\'s certificate, an envelope dated after the certificate, a tampered payload; none for a good one', async () => {
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, validityHours: 1 })
    const session = { amid: alice.amid, keys, cert: certToWire(s.certPem) }
    const good = signSessionEnvelope(session, { id: 'check-1', to: bob.amid, type: 'chat', payload: { text: 'x' } })
    assert.equal(sessionEnvelopeError(good), undefined)
    assert.equal(sessionEnvelopeError(signSessionEnvelope({ ...session, amid: bob.amid }, { id: 'check-2', to: alice.amid, type: 'chat', payload: {} }))?.code, ErrorCode.CertInvalid)
    assert.equal(sessionEnvelopeError(signSessionEnvelope(session, { id: 'check-3', to: bob.amid, type: 'chat', payload: {}, ts: Date.now() + 2 * HOUR }))?.code, ErrorCode.CertExpired)
    assert.equal(sessionEnvelopeError({ ...good, payload: { text: 'y' } })?.code, ErrorCode.BadSignature)
    // a plain envelope has no session path: the identity key verifies it as before
    assert.equal(verifyEnvelope(signEnvelope(alice, { id: 'check-4', to: bob.amid, type: 'chat', payload: {} })), true)
  })
})
