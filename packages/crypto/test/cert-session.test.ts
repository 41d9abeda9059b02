import 'reflect-metadata'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import * as x509 from '@peculiar/x509'
import { ErrorCode } from '@agentmesh/protocol'
import {
  AMID_URI_PREFIX, CERT_POLICY, CertificateError, certFromWire, certToWire, createCrl, createIdentity, createRootCa, generateKeyPair, issueAgentCert,
  issueSessionCert, loadSession, saveSession, selfSignAgentCert, sessionKeyOf, signEnvelope, signSessionEnvelope,
  verifyEnvelope, verifySessionCert, verifySessionLink,
} from '@agentmesh/crypto'

const HOUR = 3_600_000
const tmp = mkdtempSync(join(tmpdir(), 'agentmesh-session-test-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })

function codeOf (fn: () => unknown): string {
  try { fn() } catch (err) {
    assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`)
    return err.code
  }
  assert.fail('expected a CertificateError')
}

async function asyncCodeOf (p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) {
    assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`)
    return err.code
  }
  assert.fail('expected a CertificateError')
}

describe('session certificates: the last link', () => {
  const alice = createIdentity('alice')
  const bob = createIdentity('bob')
  const sessionKeys = generateKeyPair()

  it('a session certificate verifies against the AMID that signed it, and only that one', async () => {
    const s = await issueSessionCert(alice, { sessionPublicKey: sessionKeys.publicKey, validityHours: 2 })
    const link = verifySessionLink(s.certPem, alice.amid, new Date())
    assert.equal(link.amid, alice.amid)
    assert.deepEqual(Buffer.from(link.publicKey), Buffer.from(sessionKeys.publicKey))
    assert.equal(link.serial, s.serial)
    // another agent's AMID: the certificate names alice
    assert.equal(codeOf(() => verifySessionLink(s.certPem, bob.amid, new Date())), ErrorCode.CertInvalid)
  })

  it('refuses a certificate signed by another key, an expired one, and one of another role', async () => {
    // bob's own session certificate presented for alice
    const bobs = await issueSessionCert(bob, { sessionPublicKey: sessionKeys.publicKey })
    assert.equal(codeOf(() => verifySessionLink(bobs.certPem, alice.amid, new Date())), ErrorCode.CertInvalid)
    // one that claims alice in every name but bob's key signed
    const forged = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: `CN=${alice.amid}, OU=session`,
      issuer: `CN=${alice.amid}`,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + HOUR),
      publicKey: await crypto.subtle.importKey('raw', sessionKeys.publicKey, { name: 'Ed25519' }, true, ['verify']),
      signingKey: await crypto.subtle.importKey('pkcs8', bob.privateKeyObject.export({ format: 'der', type: 'pkcs8' }), { name: 'Ed25519' }, false, ['sign']),
      signingAlgorithm: { name: 'Ed25519' },
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: AMID_URI_PREFIX + alice.amid }]),
        new x509.CertificatePolicyExtension([CERT_POLICY.session]),
      ],
    }, crypto)
    assert.equal(codeOf(() => verifySessionLink(forged.toString('pem'), alice.amid, new Date())), ErrorCode.CertChainBroken)

    const old = await issueSessionCert(alice, { sessionPublicKey: sessionKeys.publicKey, validityHours: 1, now: new Date(Date.now() - 3 * HOUR) })
    assert.equal(codeOf(() => verifySessionLink(old.certPem, alice.amid, new Date())), ErrorCode.CertExpired)

    const agentCert = await selfSignAgentCert(alice)
    assert.equal(codeOf(() => verifySessionLink(agentCert.certPem, alice.amid, new Date())), ErrorCode.CertInvalid)
    assert.equal(codeOf(() => verifySessionLink('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', alice.amid, new Date())), ErrorCode.CertInvalid)
  })

  it('refuses a tampered certificate (one byte of its key changed): its signature breaks', async () => {
    const s = await issueSessionCert(alice, { sessionPublicKey: sessionKeys.publicKey })
    const der = Buffer.from(certToWire(s.certPem), 'base64url')
    const at = der.indexOf(Buffer.from(sessionKeys.publicKey))
    assert.ok(at > 0)
    der[at + 5] = der[at + 5]! ^ 0xff
    const tampered = certFromWire(der.toString('base64url'))
    assert.equal(codeOf(() => verifySessionLink(tampered, alice.amid, new Date())), ErrorCode.CertChainBroken)
  })

  it('with the agent chain above it, the tier is the chain\'s; a revoked agent certificate refuses the session', async () => {
    const root = await createRootCa({ name: 'Session Test Root' })
    const agentCert = await issueAgentCert(root, { amid: alice.amid, tier: 'verified' })
    const s = await issueSessionCert(alice, { sessionPublicKey: sessionKeys.publicKey, agentChainPem: agentCert.chainPem })
    assert.equal(s.chainPem.length, 2)
    const v = await verifySessionCert(s.chainPem, { amid: alice.amid, roots: [root.certPem] })
    assert.equal(v.tier, 'verified')
    assert.equal(v.serial, s.serial)
    // alone, the session certificate gives the anonymous tier
    assert.equal((await verifySessionCert([s.certPem], { amid: alice.amid })).tier, 'anonymous')
    // the chain does not verify without its root
    assert.equal(await asyncCodeOf(verifySessionCert(s.chainPem, { amid: alice.amid })), ErrorCode.CertChainBroken)
    const crl = await createCrl(root, [agentCert.serial])
    assert.equal(await asyncCodeOf(verifySessionCert(s.chainPem, { amid: alice.amid, roots: [root.certPem], crls: [crl] })), ErrorCode.CertRevoked)
  })
})

describe('envelopes signed by a session key', () => {
  const alice = createIdentity('alice')
  const bob = createIdentity('bob')

  it('verify with the key the session certificate names; the identity key path stays as it was', async () => {
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    const env = signSessionEnvelope({ amid: alice.amid, keys, cert: certToWire(s.certPem) }, { id: 'session-env-1', to: bob.amid, type: 'chat', payload: { text: 'hi' } })
    assert.equal(env.from, alice.amid)
    assert.equal(env.session_cert, certToWire(s.certPem))
    assert.equal(verifyEnvelope(env), false, 'not the identity key')
    assert.equal(verifyEnvelope(env, sessionKeyOf(env)), true)
    // the certificate is covered by the signature: swapping it breaks the envelope
    const other = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    assert.equal(verifyEnvelope({ ...env, session_cert: certToWire(other.certPem) }, keys.publicKeyObject), false)
    // a plain envelope is untouched
    assert.equal(verifyEnvelope(signEnvelope(alice, { id: 'plain-env-1', to: bob.amid, type: 'chat', payload: {} })), true)
  })

  it('refuses a session certificate of another agent, and an envelope dated outside the certificate', async () => {
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey, validityHours: 1 })
    const cert = certToWire(s.certPem)
    // mallory (bob here) puts alice's session certificate on his own envelope
    const forged = signSessionEnvelope({ amid: bob.amid, keys, cert }, { id: 'session-env-2', to: alice.amid, type: 'chat', payload: {} })
    assert.equal(codeOf(() => sessionKeyOf(forged)), ErrorCode.CertInvalid)
    const late = signSessionEnvelope({ amid: alice.amid, keys, cert }, { id: 'session-env-3', to: bob.amid, type: 'chat', payload: {}, ts: Date.now() + 2 * HOUR })
    assert.equal(codeOf(() => sessionKeyOf(late)), ErrorCode.CertExpired)
  })
})

describe('a session on disk', () => {
  it('saves the key 0600 and loads it back with its chain; a key of another certificate is refused', async () => {
    const alice = createIdentity('alice')
    const keys = generateKeyPair()
    const s = await issueSessionCert(alice, { sessionPublicKey: keys.publicKey })
    const paths = { cert: join(tmp, 'session.pem'), key: join(tmp, 'session.key') }
    saveSession(paths, keys, s.chainPem)
    assert.equal(statSync(paths.key).mode & 0o777, 0o600)
    assert.match(readFileSync(paths.key, 'utf8'), /BEGIN PRIVATE KEY/)
    const loaded = loadSession(paths.cert)
    assert.equal(loaded.amid, alice.amid)
    assert.equal(loaded.serial, s.serial)
    assert.deepEqual(Buffer.from(loaded.keys.publicKey), Buffer.from(keys.publicKey))
    assert.deepEqual(loaded.chain, [])

    writeFileSync(paths.key, generateKeyPair().privateKeyObject.export({ format: 'pem', type: 'pkcs8' }))
    assert.equal(codeOf(() => loadSession(paths.cert)), ErrorCode.CertInvalid)
  })
})
