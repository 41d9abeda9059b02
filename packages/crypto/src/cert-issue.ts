/**
 * Issuing the certificate chain: a self-signed root CA, an organisation CA under a root, an agent
 * certificate (from a CA, or self-signed for the anonymous tier) and a session certificate signed
 * by the agent's own key. Each checks its input, caps the validity at the issuer's and writes the
 * extensions the verifier (cert-verify.ts) expects of that role.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import {
  BasicConstraintsExtension, CertificatePolicyExtension, KeyUsageFlags, KeyUsagesExtension, PemConverter,
  SubjectAlternativeNameExtension, SubjectKeyIdentifierExtension, X509CertificateGenerator, type X509Certificate,
  type Extension,
} from '@peculiar/x509'
import { ErrorCode } from '@agentmesh/protocol'
import { amidFromPublicKey, isAmid, publicKeyFromAmid, type KeyPair } from './keys.ts'
import {
  CertificateError, type AgentCertInit, type AgentCertTier, type CertificateAuthority, type IssuedCertificate,
  type OrgCaInit, type RootCaInit, type SessionCertInit,
} from './cert-types.ts'
import {
  AMID_URI_PREFIX, CERT_POLICY, DAY_MS, DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS, DEFAULT_ORG_CA_VALIDITY_DAYS,
  DEFAULT_ROOT_CA_VALIDITY_DAYS, DEFAULT_SESSION_CERT_VALIDITY_HOURS, DEFAULT_VERIFIED_CERT_VALIDITY_DAYS, ED25519,
  HOUR_MS, MAX_SESSION_CERT_VALIDITY_HOURS, caFromParts, certToPem, checkDays, checkIssuerValid, checkName,
  importRawPublicKey, importSigningKey, invalidArg, keyIdExtensions, keyPairSigningKey, newSerial, parseCert,
  rawEd25519Key, utf8Name, validity, webcrypto, type CryptoKeyPair,
} from './cert-x509.ts'

/** Creates a self-signed root CA with a new Ed25519 key. */
export async function createRootCa (init: RootCaInit): Promise<CertificateAuthority> {
  const name = checkName('root CA name', init.name)
  const days = checkDays('validityDays', init.validityDays ?? DEFAULT_ROOT_CA_VALIDITY_DAYS, 100 * 365)
  const c = webcrypto()
  const keys = await c.subtle.generateKey(ED25519, true, ['sign', 'verify']) as CryptoKeyPair
  const subject = utf8Name([['CN', name]])
  const cert = await X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject,
    issuer: subject,
    ...validity(init.now ?? new Date(), days * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ED25519,
    extensions: [
      // pathLen 1: an organisation CA may follow, nothing below it may be a CA
      new BasicConstraintsExtension(true, 1, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      await SubjectKeyIdentifierExtension.create(keys.publicKey, false, c),
    ],
  }, c)
  const pkcs8 = await c.subtle.exportKey('pkcs8', keys.privateKey)
  return caFromParts(cert, certToPem(cert), PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n')
}

/** Issues an organisation CA under a root, with a new Ed25519 key. */
export async function issueOrgCa (root: CertificateAuthority, init: OrgCaInit): Promise<CertificateAuthority> {
  if (root.kind !== 'root') throw invalidArg(`an organisation CA is issued by a root CA, and ${root.subject} is an organisation CA`)
  const org = checkName('organisation', init.org)
  const cn = checkName('organisation CA name', init.name ?? `${org} CA`)
  const days = checkDays('validityDays', init.validityDays ?? DEFAULT_ORG_CA_VALIDITY_DAYS, 100 * 365)
  const c = webcrypto()
  const now = init.now ?? new Date()
  const rootCert = parseCert(root.certPem)
  checkIssuerValid(rootCert, now)
  const signingKey = await importSigningKey(root.privateKeyPem)
  const keys = await c.subtle.generateKey(ED25519, true, ['sign', 'verify']) as CryptoKeyPair
  const cert = await X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: utf8Name([['CN', cn], ['O', org]]),
    issuer: rootCert.subjectName,
    ...validity(now, days * DAY_MS, rootCert.notAfter),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: ED25519,
    extensions: [
      // pathLen 0: it issues agent certificates, never another CA
      new BasicConstraintsExtension(true, 0, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      ...await keyIdExtensions(keys.publicKey, rootCert),
    ],
  }, c)
  const pkcs8 = await c.subtle.exportKey('pkcs8', keys.privateKey)
  return caFromParts(cert, certToPem(cert), PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n')
}

function agentExtensions (amid: string, policy: string): Extension[] {
  return [
    new BasicConstraintsExtension(false, undefined, true),
    // digitalSignature only: it signs messages and its own session certificates, never a CA's work
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new SubjectAlternativeNameExtension([{ type: 'url', value: AMID_URI_PREFIX + amid }]),
    new CertificatePolicyExtension([policy]),
  ]
}

function agentLifetimeDays (tier: AgentCertTier, validityDays: number | undefined): number {
  const max = tier === 'verified' ? DEFAULT_VERIFIED_CERT_VALIDITY_DAYS : DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS
  return checkDays(`validityDays of a ${tier} certificate`, validityDays ?? max, max)
}

function issued (cert: X509Certificate, rest: readonly string[]): IssuedCertificate {
  const certPem = certToPem(cert)
  return { certPem, serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter, chainPem: [certPem, ...rest] }
}

/**
 * Issues an agent certificate: the AMID as subject CN and as URI SAN `agentmesh:amid:<amid>`, the
 * tier as a certificate policy, valid 1 year (verified) or 90 days (anonymous).
 */
export async function issueAgentCert (issuer: CertificateAuthority, init: AgentCertInit): Promise<IssuedCertificate> {
  if (!isAmid(init.amid)) throw invalidArg(`"${init.amid.slice(0, 80)}" is not an AMID`)
  const publicKey = init.publicKey ?? publicKeyFromAmid(init.amid)
  if (amidFromPublicKey(publicKey) !== init.amid) throw invalidArg(`the public key is not the key of ${init.amid}`)
  if (init.tier !== 'verified' && init.tier !== 'anonymous') throw invalidArg(`tier must be "verified" or "anonymous", got "${String(init.tier)}"`)
  let org: string | undefined
  if (issuer.kind === 'organisation') {
    org = issuer.org
    if (init.org !== undefined && checkName('organisation', init.org) !== org) {
      throw invalidArg(`the organisation CA ${issuer.subject} issues for "${org ?? ''}", not "${init.org}"`)
    }
  } else if (init.org !== undefined) {
    throw invalidArg('a root CA cannot vouch for an organisation: issue from that organisation\'s CA')
  }
  const days = agentLifetimeDays(init.tier, init.validityDays)
  const c = webcrypto()
  const now = init.now ?? new Date()
  const issuerCert = parseCert(issuer.certPem)
  checkIssuerValid(issuerCert, now)
  const signingKey = await importSigningKey(issuer.privateKeyPem)
  const subjectKey = await importRawPublicKey('publicKey', publicKey)
  const cert = await X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: utf8Name(org === undefined ? [['CN', init.amid]] : [['CN', init.amid], ['O', org]]),
    issuer: issuerCert.subjectName,
    ...validity(now, days * DAY_MS, issuerCert.notAfter),
    publicKey: subjectKey,
    signingKey,
    signingAlgorithm: ED25519,
    extensions: [...agentExtensions(init.amid, CERT_POLICY[init.tier]), ...await keyIdExtensions(subjectKey, issuerCert)],
  }, c)
  return issued(cert, issuer.chainPem)
}

/** An anonymous agent certificate signed by the agent's own key (90 days): proof that it holds the AMID's key. */
export async function selfSignAgentCert (agent: KeyPair, init: { validityDays?: number, now?: Date } = {}): Promise<IssuedCertificate> {
  const amid = amidFromPublicKey(agent.publicKey)
  const days = agentLifetimeDays('anonymous', init.validityDays)
  const c = webcrypto()
  const subject = utf8Name([['CN', amid]])
  const subjectKey = await importRawPublicKey('publicKey', agent.publicKey)
  const cert = await X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject,
    issuer: subject,
    ...validity(init.now ?? new Date(), days * DAY_MS),
    publicKey: subjectKey,
    signingKey: await keyPairSigningKey(agent),
    signingAlgorithm: ED25519,
    extensions: [...agentExtensions(amid, CERT_POLICY.anonymous), await SubjectKeyIdentifierExtension.create(subjectKey, false, c)],
  }, c)
  return issued(cert, [])
}

/** A session certificate for `sessionPublicKey`, signed by the agent's identity key. */
export async function issueSessionCert (agent: KeyPair, init: SessionCertInit): Promise<IssuedCertificate> {
  const amid = amidFromPublicKey(agent.publicKey)
  const hours = checkDays('validityHours', init.validityHours ?? DEFAULT_SESSION_CERT_VALIDITY_HOURS, MAX_SESSION_CERT_VALIDITY_HOURS)
  let issuerName = utf8Name([['CN', amid]])
  let cap: Date | undefined
  const agentChain = init.agentChainPem ?? []
  if (agentChain.length > 0) {
    let agentCert: X509Certificate
    try { agentCert = parseCert(agentChain[0]!) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `the agent certificate cannot be parsed: ${(cause as Error).message}`, { cause })
    }
    const key = rawEd25519Key(agentCert)
    if (key === undefined || !Buffer.from(key).equals(Buffer.from(agent.publicKey))) {
      throw invalidArg(`agentChainPem[0] (${agentCert.subject}) is not the certificate of ${amid}`)
    }
    issuerName = agentCert.subjectName
    cap = agentCert.notAfter
  }
  const c = webcrypto()
  const subjectKey = await importRawPublicKey('sessionPublicKey', init.sessionPublicKey)
  const agentKey = await importRawPublicKey('publicKey', agent.publicKey)
  const cert = await X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: utf8Name([['CN', amid], ['OU', 'session']]),
    issuer: issuerName,
    ...validity(init.now ?? new Date(), hours * HOUR_MS, cap),
    publicKey: subjectKey,
    signingKey: await keyPairSigningKey(agent),
    signingAlgorithm: ED25519,
    extensions: [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
      new SubjectAlternativeNameExtension([{ type: 'url', value: AMID_URI_PREFIX + amid }]),
      new CertificatePolicyExtension([CERT_POLICY.session]),
      ...await keyIdExtensions(subjectKey, agentKey),
    ],
  }, c)
  return issued(cert, agentChain)
}
