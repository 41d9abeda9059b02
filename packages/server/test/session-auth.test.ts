/**
 * Auth and sends with a session key (docs/protocol.md §3, §8), raw frames against relays started in
 * process: an auth frame signed by a session key with its certificate (and the agent's chain) is
 * welcomed with what the relay accepted; every refusal answers its code and no welcome; envelopes
 * carrying a session certificate are stored only on the connection that presented it, and arrive
 * with it. Nothing here measures time: expired certificates are issued in the past.
 */
import 'reflect-metadata'
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as x509 from '@peculiar/x509'
import { CloseCode, ErrorCode, encodeSend } from '@agentmesh/protocol'
import {
  AMID_URI_PREFIX, CERT_POLICY, certFromWire, certToWire, createCrl, createIdentity, createRootCa, generateKeyPair, issueAgentCert,
  issueSessionCert, selfSignAgentCert, signChallenge, signSessionEnvelope, verifyEnvelope, type Identity, type KeyPair,
} from '@agentmesh/crypto'
import type { Relay, RelayInit } from '@agentmesh/server'
import { rawAgent, startRelay, type RawAgent } from '@agentmesh/testing'

const HOUR = 3_600_000

async function relayFor (t: TestContext, init: RelayInit = {}): Promise<Relay> {
  const relay = await startRelay({ memory: true, ...init })
  t.after(async () => { await relay.close() })
  return relay
}

async function agent (t: TestContext, relay: Relay, id: Identity): Promise<RawAgent> {
  const a = await rawAgent(relay.wsUrl, id)
  t.after(() => { a.close() })
  return a
}

/** The auth frame fields of a session: signed by `keys`, with the certificate (and chain) on the wire. */
function sessionAuth (a: RawAgent, keys: KeyPair, chainPem: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sig: signChallenge(keys, a.id.amid, a.challenge.nonce, a.challenge.relay),
    session_cert: certToWire(chainPem[0]!),
    ...(chainPem.length > 1 ? { session_chain: chainPem.slice(1).map(certToWire) } : {}),
    ...extra,
  }
}

/** A certificate that claims to be `claimed`'s session certificate, signed by `signer`'s key. */
async function forgedSessionCert (claimed: string, signer: Identity, sessionKey: Uint8Array): Promise<string> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: `CN=${claimed}, OU=session`,
    issuer: `CN=${claimed}`,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + HOUR),
    publicKey: await crypto.subtle.importKey('raw', sessionKey, { name: 'Ed25519' }, true, ['verify']),
    signingKey: await crypto.subtle.importKey('pkcs8', signer.privateKeyObject.export({ format: 'der', type: 'pkcs8' }), { name: 'Ed25519' }, false, ['sign']),
    signingAlgorithm: { name: 'Ed25519' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: AMID_URI_PREFIX + claimed }]),
      new x509.CertificatePolicyExtension([CERT_POLICY.session]),
    ],
  }, crypto)
  return cert.toString('pem') + '\n'
}

async function answerOf (a: RawAgent, id: string): Promise<Record<string, any>> {
  const [f] = await a.collect(f => (f.op === 'ack' || f.op === 'error') && f.id === id, 1)
  return f!
}

describe('relay: auth with a session key', () => {
  it('welcomes a session (the tier anonymous without a chain); its envelopes are stored and delivered with their certificate', async (t) => {
    const relay = await relayFor(t)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, validityHours: 2 })
    const b = await agent(t, relay, bob)
    assert.equal((await b.auth()).op, 'welcome')
    const a = await agent(t, relay, alice)
    const w = await a.auth(sessionAuth(a, keys, s.chainPem))
    assert.equal(w.op, 'welcome', JSON.stringify(w))
    assert.equal(w.amid, alice.amid)
    assert.deepEqual(w.session, { serial: s.serial, expires_at: s.notAfter.getTime(), tier: 'anonymous' })

    const env = signSessionEnvelope({ amid: alice.amid, keys, cert: certToWire(s.certPem) }, { id: 'session-send-1', to: bob.amid, type: 'chat', payload: { text: 'from a session' } })
    a.sendRaw(encodeSend(JSON.stringify(env)))
    assert.deepEqual(await answerOf(a, env.id), { op: 'ack', id: env.id })
    const [d] = await b.collect(f => f.op === 'deliver' && f.env.id === env.id, 1)
    assert.deepEqual(d!.env, env)
    // an envelope signed by the identity key still goes on a session connection
    const plain = a.envelope(bob.amid, 'from the identity', 'session-send-2')
    a.sendRaw(encodeSend(JSON.stringify(plain)))
    assert.deepEqual(await answerOf(a, plain.id), { op: 'ack', id: plain.id })
    // a default connection is welcomed without a session
    assert.equal(b.frames.find(f => f.op === 'welcome')!.session, undefined)
  })

  it('with the agent chain, the session gets the chain\'s tier; a chain the relay cannot anchor or a revoked one is refused', async (t) => {
    const root = await createRootCa({ name: 'Session Relay Root' })
    const other = await createRootCa({ name: 'Another Root' })
    const relay = await relayFor(t, { trustRoots: [root.certPem] })
    const alice = createIdentity('alice')
    const keys = generateKeyPair()
    const agentCert = await issueAgentCert(root, { amid: alice.amid, tier: 'verified' })
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, agentChainPem: agentCert.chainPem })
    const a = await agent(t, relay, alice)
    const w = await a.auth(sessionAuth(a, keys, s.chainPem))
    assert.equal(w.op, 'welcome', JSON.stringify(w))
    assert.equal(w.session.tier, 'verified')
    assert.equal(w.session.expires_at, s.notAfter.getTime())

    const elsewhere = await issueAgentCert(other, { amid: alice.amid, tier: 'verified' })
    const s2 = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, agentChainPem: elsewhere.chainPem })
    const a2 = await agent(t, relay, alice)
    const e2 = await a2.auth(sessionAuth(a2, keys, s2.chainPem))
    assert.equal(e2.code, ErrorCode.CertChainBroken, JSON.stringify(e2))
    assert.match(e2.message, /neither the next certificate in the chain nor a trusted root/)

    // the root revokes alice's agent certificate: her session is refused from then on
    const res = await fetch(`${relay.url}/api/v1/crls`, { method: 'PUT', body: await createCrl(root, [agentCert.serial]) })
    assert.equal(res.status, 200, await res.text())
    const a3 = await agent(t, relay, alice)
    const e3 = await a3.auth(sessionAuth(a3, keys, s.chainPem))
    assert.equal(e3.code, ErrorCode.CertRevoked, JSON.stringify(e3))
  })

  it('refuses expired, foreign-signed, forged, wrong-role, tampered and unreadable certificates, and a signature by another key', async (t) => {
    const relay = await relayFor(t)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const keys = generateKeyPair()
    const good = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    const expired = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, validityHours: 1, now: new Date(Date.now() - 3 * HOUR) })
    const bobs = await issueSessionCert(bob, { sessionPublicKey: keys.publicKey })
    const forged = await forgedSessionCert(alice.amid, bob, keys.publicKey)
    const agentCert = await selfSignAgentCert(alice)
    const der = Buffer.from(certToWire(good.certPem), 'base64url')
    der[der.length - 3] = der[der.length - 3]! ^ 0x01
    const tampered = certFromWire(der.toString('base64url'))

    const cases: Array<[string, (a: RawAgent) => Record<string, unknown>, string, RegExp]> = [
      ['expired', a => sessionAuth(a, keys, [expired.certPem]), ErrorCode.CertExpired, /expired at/],
      ['another agent\'s', a => sessionAuth(a, keys, [bobs.certPem]), ErrorCode.CertInvalid, new RegExp(`session certificate of ${bob.amid}, not of ${alice.amid}`)],
      ['forged (signed by another key)', a => sessionAuth(a, keys, [forged]), ErrorCode.CertChainBroken, new RegExp(`does not verify with the key of ${alice.amid}`)],
      ['an agent certificate', a => sessionAuth(a, alice, [agentCert.certPem]), ErrorCode.CertInvalid, /not a session certificate/],
      ['tampered', a => sessionAuth(a, keys, [tampered]), ErrorCode.CertChainBroken, /does not verify/],
      ['not DER', a => sessionAuth(a, keys, [good.certPem], { session_cert: 'AAAA' }), ErrorCode.CertInvalid, /cannot be parsed/],
      ['signed by the identity key, not the session key', a => sessionAuth(a, alice, [good.certPem]), ErrorCode.AuthFailed, /session certificate/],
      ['a chain without its session certificate', a => ({ session_chain: [certToWire(agentCert.certPem)] }), ErrorCode.InvalidFrame, /session_cert/],
    ]
    for (const [what, extra, code, message] of cases) {
      const a = await agent(t, relay, alice)
      const e = await a.auth(extra(a))
      assert.equal(e.op, 'error', `${what}: ${JSON.stringify(e)}`)
      assert.equal(e.code, code, `${what}: ${e.message as string}`)
      assert.match(e.message, message, what)
      await a.barrier()
      assert.equal(a.frames.filter(f => f.op === 'welcome').length, 0, what)
      // the connection may try again, and with the same nonce (not consumed) a good session passes
      assert.equal((await a.auth(sessionAuth(a, keys, [good.certPem]))).op, 'welcome', what)
    }
  })

  it('three refused session auths close the connection with 4401', async (t) => {
    const relay = await relayFor(t)
    const alice = createIdentity('alice')
    const keys = generateKeyPair()
    const expired = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, validityHours: 1, now: new Date(Date.now() - 3 * HOUR) })
    const a = await agent(t, relay, alice)
    for (let i = 0; i < 3; i++) assert.equal((await a.auth(sessionAuth(a, keys, [expired.certPem]))).code, ErrorCode.CertExpired)
    const closed = await a.closed
    assert.equal(closed.code, CloseCode.AuthFailed)
    assert.equal(closed.reason, ErrorCode.CertExpired)
  })
})

describe('relay: envelopes carrying a session certificate', () => {
  it('are refused on a connection without that session, and (with --verify-signatures) with a signature by another key; nothing is stored', async (t) => {
    const relay = await relayFor(t, { verifySignatures: true })
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    const s2 = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    const b = await agent(t, relay, bob)
    assert.equal((await b.auth()).op, 'welcome')
    const plainConn = await agent(t, relay, alice)
    assert.equal((await plainConn.auth()).op, 'welcome')
    const sessionConn = await agent(t, relay, alice)
    assert.equal((await sessionConn.auth(sessionAuth(sessionConn, keys, s.chainPem))).op, 'welcome')

    const session = { amid: alice.amid, keys, cert: certToWire(s.certPem) }
    const e1 = signSessionEnvelope(session, { id: 'refused-1', to: bob.amid, type: 'chat', payload: {} })
    plainConn.sendRaw(encodeSend(JSON.stringify(e1)))
    const r1 = await answerOf(plainConn, e1.id)
    assert.equal(r1.code, ErrorCode.CertInvalid)
    assert.match(r1.message, /did not authenticate with one/)

    const e2 = signSessionEnvelope({ ...session, cert: certToWire(s2.certPem) }, { id: 'refused-2', to: bob.amid, type: 'chat', payload: {} })
    sessionConn.sendRaw(encodeSend(JSON.stringify(e2)))
    assert.equal((await answerOf(sessionConn, e2.id)).code, ErrorCode.CertInvalid)

    // the identity key signs an envelope that claims the session certificate
    const e3 = signSessionEnvelope({ ...session, keys: alice }, { id: 'refused-3', to: bob.amid, type: 'chat', payload: {} })
    assert.equal(verifyEnvelope(e3), true)
    sessionConn.sendRaw(encodeSend(JSON.stringify(e3)))
    assert.equal((await answerOf(sessionConn, e3.id)).code, ErrorCode.BadSignature)

    // nothing of those reached bob: the next good one is his first delivery after nothing
    const ok = signSessionEnvelope(session, { id: 'accepted-1', to: bob.amid, type: 'chat', payload: {} })
    sessionConn.sendRaw(encodeSend(JSON.stringify(ok)))
    assert.equal((await answerOf(sessionConn, ok.id)).op, 'ack')
    const [d] = await b.collect(f => f.op === 'deliver', 1)
    assert.equal(d!.env.id, ok.id)
    assert.equal(d!.seq, 1)
  })
})
