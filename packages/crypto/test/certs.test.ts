import 'reflect-metadata'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import type { webcrypto } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as x509 from '@peculiar/x509'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  AMID_URI_PREFIX, CA_FILES, CERT_POLICY, CertificateError, DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS, DEFAULT_VERIFIED_CERT_VALIDITY_DAYS,
  createCrl, createIdentity, createRootCa, describeCertificate, generateKeyPair, issueAgentCert, issueOrgCa, issueSessionCert,
  loadCa, normaliseSerial, parseCrl, saveCa, selfSignAgentCert, splitPem, verifyChain,
  type CertificateAuthority, type Identity, type IssuedCertificate,
} from '@agentmesh/crypto'

const DAY = 86_400_000
const tmp = mkdtempSync(join(tmpdir(), 'agentmesh-certs-test-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })

/** Awaits `p` and answers the CertificateError it rejected with; fails on anything else. */
async function rejection (p: Promise<unknown>): Promise<CertificateError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`)
    assert.equal(err.name, 'CertificateError')
    assert.ok(AgentMeshError.is(err))
    return err
  }
  assert.fail('expected verification to fail')
}

/** Asserts code, the failing link (index and subject) and that the message names both. */
async function assertFails (p: Promise<unknown>, code: ErrorCode, index: number | undefined, subject: string | undefined, why: RegExp): Promise<void> {
  const err = await rejection(p)
  assert.equal(err.code, code, err.message)
  assert.equal(err.index, index, err.message)
  assert.equal(err.subject, subject, err.message)
  if (index !== undefined) assert.ok(err.message.startsWith(subject === undefined ? `certificate ${index}: ` : `certificate ${index} (${subject}`), err.message)
  assert.match(err.message, why)
}

/** A certificate made directly with @peculiar/x509, to build what our issuers refuse to. */
async function rawCert (o: {
  issuer: CertificateAuthority
  publicKey: webcrypto.CryptoKey
  subject: string | x509.Name
  san?: string
  policy?: string
  ca?: boolean
}): Promise<string> {
  const c = globalThis.crypto
  const issuerCert = new x509.X509Certificate(o.issuer.certPem)
  const signingKey = await c.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(o.issuer.privateKeyPem), 'Ed25519', false, ['sign'])
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0102',
    subject: o.subject,
    issuer: issuerCert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY),
    publicKey: o.publicKey,
    signingKey,
    signingAlgorithm: { name: 'Ed25519' },
    extensions: [
      new x509.BasicConstraintsExtension(o.ca === true, undefined, true),
      ...(o.san === undefined ? [] : [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: o.san }])]),
      new x509.CertificatePolicyExtension([o.policy ?? CERT_POLICY.verified]),
    ],
  }, c)
  return cert.toString('pem')
}

/** The PKCS#8 PEM of an identity's key, so a test can make it pose as a CA. */
function pkcs8Pem (id: Identity): string {
  return id.privateKeyObject.export({ format: 'pem', type: 'pkcs8' }).toString()
}

describe('certs', () => {
  let root: CertificateAuthority
  let org: CertificateAuthority
  let alice: Identity
  let orgChain: IssuedCertificate // alice under the organisation CA
  let rootChain: IssuedCertificate // alice directly under the root
  const agentSubject = (): string => `CN=${alice.amid}`
  const orgAgentSubject = (): string => `CN=${alice.amid}, O=Acme`

  before(async () => {
    root = await createRootCa({ name: 'AgentMesh Test Root' })
    org = await issueOrgCa(root, { org: 'Acme' })
    alice = createIdentity('alice')
    orgChain = await issueAgentCert(org, { amid: alice.amid, publicKey: alice.publicKey, tier: 'verified' })
    rootChain = await issueAgentCert(root, { amid: alice.amid, publicKey: alice.publicKey, tier: 'verified' })
  })

  describe('issuing', () => {
    it('certs - the agent certificate carries the AMID as subject CN and as URI SAN agentmesh:amid:<amid>', async () => {
      const cert = new x509.X509Certificate(rootChain.certPem)
      assert.deepEqual(cert.subjectName.getField('CN'), [alice.amid])
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!
      assert.deepEqual(san.names.items.map(n => [n.type, n.value]), [['url', `${AMID_URI_PREFIX}${alice.amid}`]])
      assert.equal(AMID_URI_PREFIX, 'agentmesh:amid:')
      assert.equal(cert.publicKey.algorithm.name, 'Ed25519')
      assert.deepEqual(new Uint8Array(cert.publicKey.rawData).slice(12), alice.publicKey)
      assert.equal(cert.getExtension(x509.BasicConstraintsExtension)!.ca, false)
      assert.equal(cert.serialNumber, rootChain.serial)
    })

    it('certs - verified certificates last 1 year, anonymous 90 days (DESIGN.md), backdated a few minutes', async () => {
      const now = new Date('2030-01-01T00:00:00Z')
      const ca = await createRootCa({ name: 'Validity Root', now })
      const v = await issueAgentCert(ca, { amid: alice.amid, tier: 'verified', now })
      const a = await issueAgentCert(ca, { amid: alice.amid, tier: 'anonymous', now })
      const s = await selfSignAgentCert(alice, { now })
      assert.equal(DEFAULT_VERIFIED_CERT_VALIDITY_DAYS, 365)
      assert.equal(DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS, 90)
      assert.equal(v.notAfter.getTime() - now.getTime(), 365 * DAY)
      assert.equal(a.notAfter.getTime() - now.getTime(), 90 * DAY)
      assert.equal(s.notAfter.getTime() - now.getTime(), 90 * DAY)
      assert.equal(now.getTime() - v.notBefore.getTime(), 5 * 60_000)
      // never past the issuer's own expiry
      const shortRoot = await createRootCa({ name: 'Short Root', validityDays: 10, now })
      const capped = await issueAgentCert(shortRoot, { amid: alice.amid, tier: 'verified', now })
      assert.equal(capped.notAfter.getTime(), now.getTime() + 10 * DAY)
      // an expired CA issues nothing
      await assert.rejects(issueAgentCert(shortRoot, { amid: alice.amid, tier: 'verified', now: new Date(now.getTime() + 11 * DAY) }),
        (e: unknown) => AgentMeshError.is(e, ErrorCode.CertExpired) && /the issuing CA CN=Short Root expired at .* \(now /.test(e.message))
    })

    it('certs - issuing refuses a key that is not the AMID\'s, an organisation under a root, a longer validity, another org', async () => {
      const other = createIdentity()
      const cases: Array<[Promise<unknown>, RegExp]> = [
        [issueAgentCert(root, { amid: alice.amid, publicKey: other.publicKey, tier: 'verified' }), /not the key of am/],
        [issueAgentCert(root, { amid: 'amNOTANAMID', tier: 'verified' }), /not an AMID/],
        [issueAgentCert(root, { amid: alice.amid, tier: 'verified', org: 'Acme' }), /root CA cannot vouch for an organisation/],
        [issueAgentCert(org, { amid: alice.amid, tier: 'verified', org: 'Evil Corp' }), /issues for "Acme", not "Evil Corp"/],
        [issueAgentCert(root, { amid: alice.amid, tier: 'anonymous', validityDays: 91 }), /at most 90/],
        [issueAgentCert(root, { amid: alice.amid, tier: 'gold' as 'verified' }), /tier must be/],
        [issueOrgCa(org, { org: 'Sub' }), /issued by a root CA/],
        [createRootCa({ name: '' }), /root CA name must be 1–64/],
        [issueSessionCert(alice, { sessionPublicKey: new Uint8Array(31) }), /32-byte/],
      ]
      for (const [p, re] of cases) {
        await assert.rejects(p, (err: unknown) => {
          assert.ok(AgentMeshError.is(err, ErrorCode.InvalidArgument), String(err))
          assert.match(err.message, re)
          return true
        })
      }
    })

    it('certs - describeCertificate reports role, tier, AMID and organisation without verifying', async () => {
      const a = describeCertificate(orgChain.certPem)
      assert.equal(a.role, 'agent')
      assert.equal(a.tier, 'verified')
      assert.equal(a.amid, alice.amid)
      assert.equal(a.org, 'Acme')
      assert.equal(a.subject, orgAgentSubject())
      assert.equal(a.issuer, 'CN=Acme CA, O=Acme')
      assert.equal(a.keyAlgorithm, 'Ed25519')
      assert.equal(describeCertificate(org.certPem).role, 'organisation-ca')
      const r = describeCertificate(root.certPem)
      assert.equal(r.role, 'root-ca')
      assert.equal(r.selfIssued, true)
      const s = await issueSessionCert(alice, { sessionPublicKey: generateKeyPair().publicKey, agentChainPem: orgChain.chainPem })
      assert.equal(describeCertificate(s.certPem).role, 'session')
      assert.equal(describeCertificate(s.certPem).amid, alice.amid)
      await assert.rejects(async () => describeCertificate('nonsense'), (e: unknown) => AgentMeshError.is(e, ErrorCode.CertInvalid))
    })

    it('certs - splitPem finds each block; serials normalise to lower-case hex', () => {
      const text = `junk\n${orgChain.chainPem.join('')}more junk\n-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n`
      assert.deepEqual(splitPem(text, 'CERTIFICATE'), orgChain.chainPem)
      assert.equal(splitPem(text).length, 3)
      assert.equal(splitPem(text, 'X509 CRL').length, 1)
      assert.equal(normaliseSerial('0x0A:BC:de'), '0abcde')
      assert.equal(normaliseSerial('abc'), '0abc')
      assert.throws(() => normaliseSerial('xyz'), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    })
  })

  describe('verifyChain - tiers', () => {
    it('certs - root → organisation CA → agent verifies as organisation, with or without the root in the chain', async () => {
      assert.deepEqual(orgChain.chainPem, [orgChain.certPem, org.certPem])
      const r = await verifyChain(orgChain.chainPem, { roots: [root.certPem] })
      assert.deepEqual(r, { tier: 'organisation', amid: alice.amid, org: 'Acme', notAfter: orgChain.notAfter })
      const withRoot = await verifyChain([...orgChain.chainPem, root.certPem], { roots: [root.certPem] })
      assert.equal(withRoot.tier, 'organisation')
    })

    it('certs - root → agent (tier verified) verifies as verified', async () => {
      assert.deepEqual(rootChain.chainPem, [rootChain.certPem])
      const r = await verifyChain(rootChain.chainPem, { roots: [root.certPem] })
      assert.deepEqual(r, { tier: 'verified', amid: alice.amid, notAfter: rootChain.notAfter })
      const other = await createRootCa({ name: 'Another Root' })
      // the matching root is found among several
      assert.equal((await verifyChain(rootChain.chainPem, { roots: [other.certPem, root.certPem] })).tier, 'verified')
    })

    it('certs - a self-signed agent certificate, or tier anonymous from any CA, verifies as anonymous', async () => {
      const self = await selfSignAgentCert(alice)
      assert.deepEqual(await verifyChain(self.chainPem, { roots: [] }), { tier: 'anonymous', amid: alice.amid, notAfter: self.notAfter })
      const fromRoot = await issueAgentCert(root, { amid: alice.amid, tier: 'anonymous' })
      assert.equal((await verifyChain(fromRoot.chainPem, { roots: [root.certPem] })).tier, 'anonymous')
      const fromOrg = await issueAgentCert(org, { amid: alice.amid, tier: 'anonymous' })
      const r = await verifyChain(fromOrg.chainPem, { roots: [root.certPem] })
      assert.equal(r.tier, 'anonymous')
      assert.equal(r.org, undefined)
    })

    it('certs - a session certificate signed by the agent key verifies with the agent\'s tier and gives the session key', async () => {
      const session = generateKeyPair()
      const s = await issueSessionCert(alice, { sessionPublicKey: session.publicKey, agentChainPem: orgChain.chainPem })
      assert.deepEqual(s.chainPem, [s.certPem, ...orgChain.chainPem])
      assert.equal(s.notAfter.getTime() - s.notBefore.getTime(), 24 * 3_600_000 + 5 * 60_000)
      const r = await verifyChain(s.chainPem, { roots: [root.certPem] })
      assert.equal(r.tier, 'organisation')
      assert.equal(r.amid, alice.amid)
      assert.deepEqual(r.sessionPublicKey, session.publicKey)
      assert.deepEqual(r.notAfter, s.notAfter)
      // without the agent chain the issuer is CN=<amid>: fine under a root or self-signed
      const s2 = await issueSessionCert(alice, { sessionPublicKey: session.publicKey })
      assert.equal((await verifyChain([s2.certPem, rootChain.certPem], { roots: [root.certPem] })).tier, 'verified')
    })
  })

  describe('verifyChain - failures name the link', () => {
    it('certs - an expired agent certificate is AM_ERR_CERT_EXPIRED at certificate 0', async () => {
      const later = new Date(rootChain.notAfter.getTime() + 1000)
      await assertFails(verifyChain(rootChain.chainPem, { roots: [root.certPem], now: later }),
        ErrorCode.CertExpired, 0, agentSubject(), /expired at \d{4}-.*\(now /)
      // issued long ago: expired today
      const old = await issueAgentCert(root, { amid: alice.amid, tier: 'anonymous', now: new Date(Date.now() - 91 * DAY) })
      await assertFails(verifyChain(old.chainPem, { roots: [root.certPem] }), ErrorCode.CertExpired, 0, agentSubject(), /expired at/)
    })

    it('certs - a certificate not valid yet is AM_ERR_CERT_EXPIRED, naming which link', async () => {
      const early = new Date(rootChain.notBefore.getTime() - 1000)
      await assertFails(verifyChain(rootChain.chainPem, { roots: [root.certPem], now: early }),
        ErrorCode.CertExpired, 0, agentSubject(), /is not valid before/)
      // an organisation CA that starts next week, over an agent certificate valid today
      const future = await issueOrgCa(root, { org: 'Future', now: new Date(Date.now() + 7 * DAY) })
      const agent = await issueAgentCert(future, { amid: alice.amid, tier: 'verified' })
      assert.ok(agent.notBefore.getTime() < Date.now())
      await assertFails(verifyChain(agent.chainPem, { roots: [root.certPem] }),
        ErrorCode.CertExpired, 1, 'CN=Future CA, O=Future', /is not valid before/)
    })

    it('certs - a certificate in its issuer\'s CRL is AM_ERR_CERT_REVOKED: the agent, or the organisation CA', async () => {
      const crl = await createCrl(org, [orgChain.serial, 'ff01'])
      assert.match(crl, /^-----BEGIN X509 CRL-----/)
      const parsed = parseCrl(crl)
      assert.equal(parsed.issuer, 'CN=Acme CA, O=Acme')
      assert.deepEqual(parsed.revoked.map(e => e.serial), [orgChain.serial, 'ff01'])
      await assertFails(verifyChain(orgChain.chainPem, { roots: [root.certPem], crls: [crl] }),
        ErrorCode.CertRevoked, 0, orgAgentSubject(), new RegExp(`revoked by "CN=Acme CA, O=Acme" on .* \\(serial ${orgChain.serial}\\)`))
      const rootCrl = await createCrl(root, [org.serial])
      await assertFails(verifyChain(orgChain.chainPem, { roots: [root.certPem], crls: [rootCrl] }),
        ErrorCode.CertRevoked, 1, 'CN=Acme CA, O=Acme', /revoked by "CN=AgentMesh Test Root"/)
      // a CRL of other serials, or of another issuer, changes nothing
      const unrelated = await createCrl(org, ['0a0b'])
      assert.equal((await verifyChain(orgChain.chainPem, { roots: [root.certPem], crls: [unrelated] })).tier, 'organisation')
      assert.equal((await verifyChain(rootChain.chainPem, { roots: [root.certPem], crls: [crl] })).tier, 'verified')
    })

    it('certs - a CRL in the issuer\'s name but not signed by its key is AM_ERR_CERT_INVALID', async () => {
      const impostor = await issueOrgCa(await createRootCa({ name: 'AgentMesh Test Root' }), { org: 'Acme' })
      const forged = await createCrl(impostor, [orgChain.serial])
      const err = await rejection(verifyChain(orgChain.chainPem, { roots: [root.certPem], crls: [forged] }))
      assert.equal(err.code, ErrorCode.CertInvalid)
      assert.match(err.message, /^CRL 0 names "CN=Acme CA, O=Acme" as its issuer but is not signed by the key of certificate 1/)
      await assertFails(verifyChain(orgChain.chainPem, { roots: [root.certPem], crls: ['garbage'] }), ErrorCode.CertInvalid, undefined, undefined, /^CRL 0: cannot be parsed/)
    })

    it('certs - an agent certificate signed by another CA is AM_ERR_CERT_CHAIN_BROKEN at certificate 0', async () => {
      // another root with another name: no trusted issuer at all
      const other = await createRootCa({ name: 'Other Root' })
      const fromOther = await issueAgentCert(other, { amid: alice.amid, tier: 'verified' })
      await assertFails(verifyChain(fromOther.chainPem, { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, agentSubject(), /its issuer "CN=Other Root" is neither the next certificate in the chain nor a trusted root/)
      // another root with the same name: the signature gives it away
      const twin = await createRootCa({ name: 'AgentMesh Test Root' })
      const fromTwin = await issueAgentCert(twin, { amid: alice.amid, tier: 'verified' })
      await assertFails(verifyChain(fromTwin.chainPem, { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, agentSubject(), /signature does not verify with the key of the trusted root/)
      // an organisation CA of the same name under the real root: agent from one, presented with the other
      const twinOrg = await issueOrgCa(root, { org: 'Acme' })
      const fromTwinOrg = await issueAgentCert(twinOrg, { amid: alice.amid, tier: 'verified' })
      await assertFails(verifyChain([fromTwinOrg.certPem, org.certPem], { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, orgAgentSubject(), /its signature does not verify with the key of its issuer certificate 1 \(CN=Acme CA, O=Acme\)/)
    })

    it('certs - the organisation CA removed from the chain is AM_ERR_CERT_CHAIN_BROKEN at the agent certificate', async () => {
      await assertFails(verifyChain([orgChain.certPem], { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, orgAgentSubject(), /its issuer "CN=Acme CA, O=Acme" is neither the next certificate in the chain nor a trusted root/)
      await assertFails(verifyChain([orgChain.certPem, root.certPem], { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, orgAgentSubject(), /names its issuer "CN=Acme CA, O=Acme", but the next certificate is "CN=AgentMesh Test Root"/)
      // a session certificate without its agent certificate
      const s = await issueSessionCert(alice, { sessionPublicKey: generateKeyPair().publicKey, agentChainPem: orgChain.chainPem })
      await assertFails(verifyChain([s.certPem], { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, `CN=${alice.amid}, OU=session`, /the agent certificate\) is missing from the chain/)
    })

    it('certs - an issuer that is not a CA is AM_ERR_CERT_CHAIN_BROKEN', async () => {
      // alice's (non-CA) agent certificate and key posing as a CA for bob
      const bob = createIdentity()
      const posing: CertificateAuthority = {
        kind: 'root', certPem: rootChain.certPem, privateKeyPem: pkcs8Pem(alice), subject: agentSubject(),
        serial: rootChain.serial, notAfter: rootChain.notAfter, chainPem: [rootChain.certPem],
      }
      const forged = await issueAgentCert(posing, { amid: bob.amid, tier: 'verified' })
      await assertFails(verifyChain(forged.chainPem, { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, `CN=${bob.amid}`, new RegExp(`its issuer certificate 1 \\(CN=${alice.amid}\\) is not a CA`))
      // a session certificate signed by someone else's key
      const s = await issueSessionCert(bob, { sessionPublicKey: generateKeyPair().publicKey })
      await assertFails(verifyChain([s.certPem, rootChain.certPem], { roots: [root.certPem] }),
        ErrorCode.CertInvalid, 0, `CN=${bob.amid}, OU=session`, /must carry the AMID of its agent/)
    })

    it('certs - a chain under an untrusted root is AM_ERR_CERT_CHAIN_BROKEN (wrong root)', async () => {
      const other = await createRootCa({ name: 'Other Root' })
      await assertFails(verifyChain(orgChain.chainPem, { roots: [other.certPem] }),
        ErrorCode.CertChainBroken, 1, 'CN=Acme CA, O=Acme', /its issuer "CN=AgentMesh Test Root" is neither the next certificate in the chain nor a trusted root/)
      await assertFails(verifyChain([...orgChain.chainPem, root.certPem], { roots: [other.certPem] }),
        ErrorCode.CertChainBroken, 2, 'CN=AgentMesh Test Root', /is a self-signed root that is not among the trusted roots/)
      await assertFails(verifyChain(rootChain.chainPem, { roots: [] }),
        ErrorCode.CertChainBroken, 0, agentSubject(), /neither the next certificate in the chain nor a trusted root/)
    })

    it('certs - a self-signed certificate claiming tier verified is AM_ERR_CERT_CHAIN_BROKEN', async () => {
      const posing: CertificateAuthority = {
        kind: 'root', certPem: rootChain.certPem, privateKeyPem: pkcs8Pem(alice), subject: agentSubject(),
        serial: rootChain.serial, notAfter: rootChain.notAfter, chainPem: [],
      }
      // alice signs a verified certificate for herself, with herself as issuer
      const pk = await globalThis.crypto.subtle.importKey('raw', alice.publicKey, 'Ed25519', true, ['verify'])
      const subject = new x509.X509Certificate(rootChain.certPem).subjectName // the same encoding (UTF8String) as the issuer name
      const self = await rawCert({ issuer: posing, publicKey: pk, subject, san: AMID_URI_PREFIX + alice.amid })
      await assertFails(verifyChain([self], { roots: [root.certPem] }),
        ErrorCode.CertChainBroken, 0, agentSubject(), /is self-signed: only an anonymous certificate may be/)
    })

    it('certs - garbage, an empty chain, a wrong key type, a missing or foreign AMID are AM_ERR_CERT_INVALID', async () => {
      await assertFails(verifyChain(['garbage'], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, undefined, /^certificate 0: cannot be parsed/)
      await assertFails(verifyChain([orgChain.certPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'], { roots: [root.certPem] }),
        ErrorCode.CertInvalid, 1, undefined, /^certificate 1: cannot be parsed/)
      await assertFails(verifyChain([], { roots: [root.certPem] }), ErrorCode.CertInvalid, undefined, undefined, /the chain is empty/)
      await assertFails(verifyChain(rootChain.chainPem, { roots: ['not a root'] }), ErrorCode.CertInvalid, undefined, undefined, /^trusted root 0: cannot be parsed/)
      // an ECDSA key signed by the real root
      const ec = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
      const ecCert = await rawCert({ issuer: root, publicKey: ec.publicKey, subject: `CN=${alice.amid}`, san: AMID_URI_PREFIX + alice.amid })
      await assertFails(verifyChain([ecCert], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, agentSubject(), /its key is ECDSA, not Ed25519/)
      // Ed25519 but no AMID
      const pk = await globalThis.crypto.subtle.importKey('raw', alice.publicKey, 'Ed25519', true, ['verify'])
      const noAmid = await rawCert({ issuer: root, publicKey: pk, subject: 'CN=someone' })
      await assertFails(verifyChain([noAmid], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, 'CN=someone', /carries no AMID/)
      // bob's AMID on alice's key
      const bob = createIdentity()
      const foreign = await rawCert({ issuer: root, publicKey: pk, subject: `CN=${bob.amid}`, san: AMID_URI_PREFIX + bob.amid })
      await assertFails(verifyChain([foreign], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, `CN=${bob.amid}`, new RegExp(`its key is not the key of ${bob.amid}`))
      // CN and SAN disagree
      const split = await rawCert({ issuer: root, publicKey: pk, subject: `CN=${bob.amid}`, san: AMID_URI_PREFIX + alice.amid })
      await assertFails(verifyChain([split], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, `CN=${bob.amid}`, /subject CN .* is not its AMID/)
      // a CA certificate as the leaf
      await assertFails(verifyChain([org.certPem], { roots: [root.certPem] }), ErrorCode.CertInvalid, 0, 'CN=Acme CA, O=Acme', /is a CA certificate; the chain must start with an agent/)
    })
  })

  describe('on disk', () => {
    it('certs - saveCa writes the key 0600 (PKCS#8 Ed25519) in a 0700 directory; loadCa gives a CA that issues verifiable chains', async () => {
      const dir = join(tmp, 'org-ca')
      const crlPem = await createCrl(org, [])
      saveCa(dir, org, { crlPem })
      assert.equal(statSync(dir).mode & 0o777, 0o700)
      assert.equal(statSync(join(dir, CA_FILES.key)).mode & 0o777, 0o600)
      assert.equal(statSync(join(dir, CA_FILES.cert)).mode & 0o777, 0o644)
      assert.equal(statSync(join(dir, CA_FILES.crl)).mode & 0o777, 0o644)
      assert.match(readFileSync(join(dir, CA_FILES.key), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
      const loaded = loadCa(dir)
      assert.equal(loaded.kind, 'organisation')
      assert.equal(loaded.org, 'Acme')
      assert.deepEqual(loaded.chainPem, [org.certPem])
      const bob = createIdentity()
      const c = await issueAgentCert(loaded, { amid: bob.amid, tier: 'verified' })
      assert.equal((await verifyChain(c.chainPem, { roots: [root.certPem] })).tier, 'organisation')
      assert.throws(() => { saveCa(dir, root) }, (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /already holds a CA/.test(e.message))
    })

    it('certs - loadCa: a missing directory is AM_ERR_INVALID_ARGUMENT, a key of another certificate AM_ERR_CERT_INVALID', () => {
      assert.throws(() => loadCa(join(tmp, 'nope')), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument) && /does not exist/.test(e.message))
      const dir = join(tmp, 'mixed')
      saveCa(dir, root)
      writeFileSync(join(dir, CA_FILES.key), org.privateKeyPem)
      assert.throws(() => loadCa(dir), (e: unknown) => AgentMeshError.is(e, ErrorCode.CertInvalid) && /is not the key of/.test(e.message))
      writeFileSync(join(dir, CA_FILES.cert), 'junk')
      assert.throws(() => loadCa(dir), (e: unknown) => AgentMeshError.is(e, ErrorCode.CertInvalid) && /is not a certificate/.test(e.message))
    })

    const openssl = '/usr/bin/openssl'
    it('certs - OpenSSL accepts the root → organisation → agent chain and sees the CRL revocation', { skip: !existsSync(openssl) }, async () => {
      const dir = mkdtempSync(join(tmp, 'openssl-'))
      writeFileSync(join(dir, 'root.pem'), root.certPem)
      writeFileSync(join(dir, 'org.pem'), org.certPem)
      writeFileSync(join(dir, 'agent.pem'), orgChain.certPem)
      const ok = execFileSync(openssl, ['verify', '-CAfile', 'root.pem', '-untrusted', 'org.pem', 'agent.pem'], { cwd: dir }).toString()
      assert.match(ok, /agent.pem: OK/)
      writeFileSync(join(dir, 'crl.pem'), await createCrl(org, [orgChain.serial]))
      assert.throws(() => execFileSync(openssl, ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'org.pem', 'agent.pem'], { cwd: dir, stdio: 'pipe' }),
        (e: { stdout?: Buffer, stderr?: Buffer }) => /certificate revoked/.test(`${String(e.stdout)}${String(e.stderr)}`))
    })
  })
})
