/**
 * The AgentMesh certificate chain (DESIGN.md, layer 1 "identity"): X.509 with Ed25519 (RFC 8410),
 *
 *     root CA → organisation CA → agent certificate → session certificate
 *
 * - A **root CA** is self-signed and trusted out of band (`verifyChain(…, { roots })`).
 * - An **organisation CA** is issued by a root; agents under it get the `organisation` tier.
 * - An **agent certificate** binds an AMID to its Ed25519 key: the AMID is the subject CN and a URI
 *   SAN `agentmesh:amid:<amid>`, and must be the key's own AMID. Its tier (`verified` or
 *   `anonymous`) is a certificate policy, the way the CA/Browser Forum marks DV/OV/EV. An
 *   anonymous agent may sign its own certificate: that proves only that it holds the AMID's key.
 * - A **session certificate** is signed by the agent's own key (an end entity issuing for itself,
 *   as RFC 3820 proxy certificates do), so a short-lived key can act for the agent.
 *
 * Revocation is by CRL (RFC 5280 §5), one per issuer. Signing and verification run on WebCrypto
 * (`globalThis.crypto`), which @peculiar/x509 is built on.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import {
  BasicConstraintsExtension, CertificatePolicyExtension, CryptoProvider, KeyUsageFlags, KeyUsagesExtension, Name,
  PemConverter, SubjectAlternativeNameExtension, SubjectKeyIdentifierExtension, AuthorityKeyIdentifierExtension,
  X509Certificate, X509CertificateGenerator, X509Crl, X509CrlGenerator, cryptoProvider,
  type Extension, type JsonNameParams,
} from '@peculiar/x509'
import { createPrivateKey, createPublicKey, type webcrypto as nodeWebcrypto } from 'node:crypto'
import { chmodSync, lstatSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode, MAX_CERT_CHAIN_LENGTH, MAX_CERT_PEM_BYTES } from '@agentmesh/protocol'
import { writeSecretFile } from './identity.ts'
import { amidFromPublicKey, isAmid, publicKeyFromAmid, type KeyPair } from './keys.ts'

// ---------------------------------------------------------------------------------------------
// Constants

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

/** DESIGN.md layer 1: "expiry (verified: 1 year, …)". */
export const DEFAULT_VERIFIED_CERT_VALIDITY_DAYS = 365
/** DESIGN.md layer 1: "expiry (…, anonymous: 90 days)". */
export const DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS = 90
/** Not fixed by the design: ten years, the usual life of an offline root. */
export const DEFAULT_ROOT_CA_VALIDITY_DAYS = 3650
/** Not fixed by the design: five years, and never past the root's own expiry. */
export const DEFAULT_ORG_CA_VALIDITY_DAYS = 1825
/** Not fixed by the design: a session key lives for a day, and never past its agent certificate. */
export const DEFAULT_SESSION_CERT_VALIDITY_HOURS = 24
/** A session certificate may ask for at most 30 days. */
export const MAX_SESSION_CERT_VALIDITY_HOURS = 30 * 24
/** Not fixed by the design: verifiers should fetch a fresh CRL within a week. */
export const DEFAULT_CRL_VALIDITY_DAYS = 7
/**
 * notBefore is set this far in the past, so a certificate verifies at once on a machine whose
 * clock is a little behind the issuer's.
 */
export const CERT_BACKDATE_MS = 5 * 60_000
/** session → agent → organisation CA → root: the longest chain the design has (the REST contract's bound). */
export const MAX_CHAIN_LENGTH = MAX_CERT_CHAIN_LENGTH
/** Bound on one PEM block (an Ed25519 certificate is ~600 bytes; the REST contract's bound). */
export const MAX_PEM_BYTES = MAX_CERT_PEM_BYTES
/** Prefix of the URI subject alternative name that carries an agent's AMID. */
export const AMID_URI_PREFIX = 'agentmesh:amid:'
/** X.520 ub-common-name / ub-organization-name. */
const MAX_NAME_LENGTH = 64

/**
 * AgentMesh's OID arc: a UUID-derived OID (ITU-T X.667, `2.25.<uuid>`), which needs no registration.
 * Certificate policies under it mark the tier of an agent certificate and a session certificate.
 */
export const AGENTMESH_OID_ARC = '2.25.68698103002877587646724763652903867359'
export const CERT_POLICY = {
  verified: `${AGENTMESH_OID_ARC}.1.1`,
  anonymous: `${AGENTMESH_OID_ARC}.1.2`,
  session: `${AGENTMESH_OID_ARC}.2.1`,
} as const

// asn1js (under @peculiar/x509) encodes arcs above 2^53 correctly but decodes them into its own
// notation, so policies read back from a certificate are compared with our OIDs after the same
// round trip.
function decodedOid (oid: string): string {
  const ext = new CertificatePolicyExtension([oid])
  return new CertificatePolicyExtension(ext.rawData).policies[0]!
}
let decodedPolicies: Record<keyof typeof CERT_POLICY, string> | undefined
function policies (): Record<keyof typeof CERT_POLICY, string> {
  decodedPolicies ??= {
    verified: decodedOid(CERT_POLICY.verified),
    anonymous: decodedOid(CERT_POLICY.anonymous),
    session: decodedOid(CERT_POLICY.session),
  }
  return decodedPolicies
}

const ED25519 = { name: 'Ed25519' } as const
type WebCrypto = typeof globalThis.crypto
// the DOM names @peculiar/x509's types use; Node declares them under `webcrypto`
type CryptoKey = nodeWebcrypto.CryptoKey
type CryptoKeyPair = nodeWebcrypto.CryptoKeyPair

let providerSet = false
/** WebCrypto for @peculiar/x509: passed to every call, and set once as its default provider. */
function webcrypto (): WebCrypto {
  if (!providerSet) {
    if (!cryptoProvider.has(CryptoProvider.DEFAULT)) cryptoProvider.set(globalThis.crypto)
    providerSet = true
  }
  return globalThis.crypto
}

// ---------------------------------------------------------------------------------------------
// Types

/** The trust tier a verified chain gives an agent (DESIGN.md layer 1). */
export type TrustTier = 'anonymous' | 'verified' | 'organisation'
/** The tier an issuer writes into an agent certificate; `organisation` follows from the chain. */
export type AgentCertTier = 'verified' | 'anonymous'

/** A certificate authority: its certificate and its Ed25519 private key. */
export interface CertificateAuthority {
  readonly kind: 'root' | 'organisation'
  /** This CA's certificate, PEM. */
  readonly certPem: string
  /** Its Ed25519 private key, PKCS#8 PEM. Keep it secret (`saveCa` writes it 0600). */
  readonly privateKeyPem: string
  readonly subject: string
  readonly serial: string
  readonly notAfter: Date
  /** The organisation of an organisation CA. */
  readonly org?: string
  /**
   * What follows a certificate this CA issues in a chain (leaf first), up to but not including
   * the root, which verifiers hold themselves: `[]` for a root, `[certPem]` for an organisation CA.
   */
  readonly chainPem: readonly string[]
}

export interface IssuedCertificate {
  readonly certPem: string
  /** Serial number, lower-case hex: what `createCrl` and `agentmesh cert revoke` take. */
  readonly serial: string
  readonly notBefore: Date
  readonly notAfter: Date
  /** The chain to present, leaf first, without the root. */
  readonly chainPem: readonly string[]
}

export interface RootCaInit {
  /** Subject CN, 1–64 characters. */
  name: string
  /** @default DEFAULT_ROOT_CA_VALIDITY_DAYS (10 years) */
  validityDays?: number
  /** @default new Date() */
  now?: Date
}

export interface OrgCaInit {
  /** The organisation (subject O), 1–64 characters. */
  org: string
  /** Subject CN. @default `${org} CA` */
  name?: string
  /** @default DEFAULT_ORG_CA_VALIDITY_DAYS (5 years), cut to the root's expiry */
  validityDays?: number
  now?: Date
}

export interface AgentCertInit {
  amid: string
  /** The agent's raw 32-byte Ed25519 public key. @default the key inside the AMID */
  publicKey?: Uint8Array
  tier: AgentCertTier
  /** Subject O. @default the organisation of an organisation CA; a root cannot vouch for one */
  org?: string
  /** At most, and by default, 1 year (verified) or 90 days (anonymous); cut to the issuer's expiry. */
  validityDays?: number
  now?: Date
}

export interface SessionCertInit {
  /** The session's raw 32-byte Ed25519 public key. */
  sessionPublicKey: Uint8Array
  /** @default DEFAULT_SESSION_CERT_VALIDITY_HOURS (24), at most MAX_SESSION_CERT_VALIDITY_HOURS */
  validityHours?: number
  /**
   * The agent's own chain (leaf first). Gives the session certificate its issuer name, caps its
   * expiry at the agent certificate's and is appended to the returned `chainPem`.
   * @default none: the issuer is `CN=<amid>`, which matches a certificate without an organisation
   */
  agentChainPem?: readonly string[]
  now?: Date
}

export interface RevokedEntry {
  serial: string
  /** @default the CRL's thisUpdate */
  revokedAt?: Date
}

export interface CrlInit {
  /** @default new Date() */
  now?: Date
  /** nextUpdate = now + this. @default DEFAULT_CRL_VALIDITY_DAYS */
  validityDays?: number
}

export interface ParsedCrl {
  issuer: string
  thisUpdate: Date
  nextUpdate?: Date
  revoked: Array<{ serial: string, revokedAt: Date }>
}

export interface VerifyChainOptions {
  /** Trusted root certificates (PEM). */
  roots: readonly string[]
  /** CRLs (PEM) of any issuer in the chain; a certificate listed in its issuer's CRL is revoked. */
  crls?: readonly string[]
  /** @default new Date() */
  now?: Date
}

export interface VerifiedChain {
  tier: TrustTier
  amid: string
  /** The organisation of the organisation CA, for the `organisation` tier. */
  org?: string
  /** The session key, when the leaf is a session certificate. */
  sessionPublicKey?: Uint8Array
  /** The earliest expiry in the chain: the result holds until then (or until a revocation). */
  notAfter: Date
}

export type CertRole = 'root-ca' | 'organisation-ca' | 'agent' | 'session' | 'unknown'

/** What a certificate says about itself (`agentmesh cert show`); nothing here is verified. */
export interface CertificateInfo {
  subject: string
  issuer: string
  serial: string
  notBefore: Date
  notAfter: Date
  role: CertRole
  /** The tier written into an agent certificate. */
  tier?: AgentCertTier
  amid?: string
  org?: string
  /** Subject and issuer are the same name. */
  selfIssued: boolean
  keyAlgorithm: string
}

/**
 * A certificate that does not verify. `code` says why (expired, revoked, chain broken, invalid);
 * `index` is its position in the chain as given (leaf = 0), absent for a trusted root or a CRL.
 */
export class CertificateError extends AgentMeshError {
  readonly index?: number
  readonly subject?: string

  constructor (code: ErrorCode, message: string, options: { index?: number, subject?: string, cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CertificateError'
    if (options.index !== undefined) this.index = options.index
    if (options.subject !== undefined) this.subject = options.subject
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function invalidArg (message: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidArgument, message)
}

function checkName (what: string, s: string): string {
  const t = s.trim()
  // eslint-disable-next-line no-control-regex
  if (t.length === 0 || t.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(t)) {
    throw invalidArg(`${what} must be 1–${MAX_NAME_LENGTH} printable characters, got "${s.slice(0, 80)}"`)
  }
  return t
}

function checkDays (what: string, n: number, max: number): number {
  if (!Number.isFinite(n) || n <= 0 || n > max) throw invalidArg(`${what} must be more than 0 and at most ${max}, got ${n}`)
  return n
}

function utf8Name (attrs: Array<[string, string]>): Name {
  const json: JsonNameParams = attrs.map(([type, value]) => ({ [type]: [{ utf8String: value }] }))
  return new Name(json)
}

/** A positive 127-bit serial whose first octet is non-zero, so its hex form is unique (RFC 5280 §4.1.2.2). */
function newSerial (): string {
  const b = webcrypto().getRandomValues(new Uint8Array(16))
  b[0] = (b[0]! & 0x7f) | 0x01
  return Buffer.from(b).toString('hex')
}

/** Lower-case hex without separators or a `0x` prefix; throws InvalidArgument when it is not hex. */
export function normaliseSerial (serial: string): string {
  let s = serial.trim().toLowerCase().replace(/^0x/, '').replaceAll(':', '')
  if (!/^[0-9a-f]{1,40}$/.test(s)) throw invalidArg(`serial "${serial.slice(0, 80)}" is not a hexadecimal serial number of at most 20 octets`)
  if (s.length % 2 === 1) s = '0' + s
  return s
}

function minDate (a: Date, b: Date): Date {
  return a.getTime() <= b.getTime() ? a : b
}

/** notBefore/notAfter with second precision (X.509 times have no fractions). */
function validity (now: Date, lifetimeMs: number, cap?: Date): { notBefore: Date, notAfter: Date } {
  const t = Math.floor(now.getTime() / 1000) * 1000
  const notAfter = new Date(t + lifetimeMs)
  return { notBefore: new Date(t - CERT_BACKDATE_MS), notAfter: cap === undefined ? notAfter : minDate(notAfter, cap) }
}

function sameBytes (a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

function sameName (a: Name, b: Name): boolean {
  return sameBytes(a.toArrayBuffer(), b.toArrayBuffer())
}

async function importSigningKey (privateKeyPem: string): Promise<CryptoKey> {
  try {
    const der = PemConverter.decodeFirst(privateKeyPem)
    return await webcrypto().subtle.importKey('pkcs8', der, ED25519, false, ['sign'])
  } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, 'the CA private key is not an Ed25519 PKCS#8 key', { cause })
  }
}

async function keyPairSigningKey (kp: KeyPair): Promise<CryptoKey> {
  const der = kp.privateKeyObject.export({ format: 'der', type: 'pkcs8' })
  return await webcrypto().subtle.importKey('pkcs8', der, ED25519, false, ['sign'])
}

async function importRawPublicKey (what: string, raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw invalidArg(`${what} must be a raw 32-byte Ed25519 public key, got ${raw.length} bytes`)
  return await webcrypto().subtle.importKey('raw', raw, ED25519, true, ['verify'])
}

/** The raw 32-byte Ed25519 key of a certificate, or undefined for another key type. */
function rawEd25519Key (cert: X509Certificate): Uint8Array | undefined {
  if (cert.publicKey.algorithm.name !== 'Ed25519') return undefined
  const spki = new Uint8Array(cert.publicKey.rawData)
  return spki.length === 44 ? spki.slice(12) : undefined
}

async function keyIdExtensions (subjectKey: CryptoKey, issuerKey: CryptoKey | X509Certificate): Promise<Extension[]> {
  const c = webcrypto()
  return [
    await SubjectKeyIdentifierExtension.create(subjectKey, false, c),
    await AuthorityKeyIdentifierExtension.create(issuerKey instanceof X509Certificate ? issuerKey.publicKey : issuerKey, false, c),
  ]
}

/** PEM ending in a newline, so that chains concatenate into a file as they are. */
function certToPem (cert: X509Certificate): string {
  return cert.toString('pem') + '\n'
}

/**
 * An expired CA issues nothing: its certificates could never verify. (One not valid yet may
 * issue ahead; the chain verifies from its start.)
 */
function checkIssuerValid (issuer: X509Certificate, now: Date): void {
  if (now.getTime() > issuer.notAfter.getTime()) {
    throw new CertificateError(ErrorCode.CertExpired,
      `the issuing CA ${issuer.subject} expired at ${issuer.notAfter.toISOString()} (now ${now.toISOString()})`, { subject: issuer.subject })
  }
}

function parseCert (pem: string): X509Certificate {
  if (pem.length > MAX_PEM_BYTES) throw new Error(`larger than ${MAX_PEM_BYTES} bytes`)
  return new X509Certificate(pem)
}

function caFromParts (cert: X509Certificate, certPem: string, privateKeyPem: string): CertificateAuthority {
  const bc = cert.getExtension(BasicConstraintsExtension)
  if (bc === null || !bc.ca) throw new CertificateError(ErrorCode.CertInvalid, `${cert.subject} is not a CA certificate`, { subject: cert.subject })
  const root = sameName(cert.subjectName, cert.issuerName)
  const org = cert.subjectName.getField('O')[0]
  if (!root && org === undefined) throw new CertificateError(ErrorCode.CertInvalid, `organisation CA ${cert.subject} has no organisation (O) in its subject`, { subject: cert.subject })
  return {
    kind: root ? 'root' : 'organisation',
    certPem,
    privateKeyPem,
    subject: cert.subject,
    serial: cert.serialNumber,
    notAfter: cert.notAfter,
    ...(root || org === undefined ? {} : { org }),
    chainPem: root ? [] : [certPem],
  }
}

// ---------------------------------------------------------------------------------------------
// Issuing

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

// ---------------------------------------------------------------------------------------------
// Revocation

/** A CRL (RFC 5280 §5) signed by `issuer`, listing `revoked` serials; PEM (`X509 CRL`, as OpenSSL writes it). */
export async function createCrl (issuer: CertificateAuthority, revoked: Iterable<string | RevokedEntry>, init: CrlInit = {}): Promise<string> {
  const now = init.now ?? new Date()
  const days = checkDays('validityDays', init.validityDays ?? DEFAULT_CRL_VALIDITY_DAYS, 366)
  const seen = new Set<string>()
  const entries: Array<{ serialNumber: string, revocationDate: Date }> = []
  for (const r of revoked) {
    const e = typeof r === 'string' ? { serial: r } : r
    const serial = normaliseSerial(e.serial)
    if (seen.has(serial)) continue
    seen.add(serial)
    entries.push({ serialNumber: serial, revocationDate: e.revokedAt ?? now })
  }
  const issuerCert = parseCert(issuer.certPem)
  const crl = await X509CrlGenerator.create({
    issuer: issuerCert.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + days * DAY_MS),
    entries,
    signingKey: await importSigningKey(issuer.privateKeyPem),
    signingAlgorithm: ED25519,
    extensions: [await AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, webcrypto())],
  }, webcrypto())
  return PemConverter.encode(crl.rawData, 'X509 CRL') + '\n'
}

function parseCrlObject (pem: string): X509Crl {
  if (pem.length > 16 * MAX_PEM_BYTES) throw new Error(`larger than ${16 * MAX_PEM_BYTES} bytes`)
  return new X509Crl(pem)
}

/** Reads a CRL (its signature is checked by `verifyChain`, against the issuer in the chain). */
export function parseCrl (pem: string): ParsedCrl {
  let crl: X509Crl
  try { crl = parseCrlObject(pem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `the CRL cannot be parsed: ${(cause as Error).message}`, { cause })
  }
  return {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate === undefined ? {} : { nextUpdate: crl.nextUpdate }),
    revoked: crl.entries.map(e => ({ serial: e.serialNumber, revokedAt: e.revocationDate })),
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/** The PEM blocks in `text` (optionally only those of one label, e.g. `CERTIFICATE` or `X509 CRL`). */
export function splitPem (text: string, label?: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(PEM_BLOCK)) if (label === undefined || m[1] === label) out.push(m[0] + '\n')
  return out
}

function policySet (cert: X509Certificate): Set<string> {
  const ext = cert.getExtension(CertificatePolicyExtension)
  return new Set(ext === null ? [] : ext.policies)
}

function declaredTier (cert: X509Certificate): AgentCertTier | 'both' | undefined {
  const p = policySet(cert)
  const v = p.has(policies().verified)
  const a = p.has(policies().anonymous)
  return v && a ? 'both' : v ? 'verified' : a ? 'anonymous' : undefined
}

function isCa (cert: X509Certificate): boolean {
  return cert.getExtension(BasicConstraintsExtension)?.ca === true
}

function roleOf (cert: X509Certificate): CertRole {
  if (isCa(cert)) return sameName(cert.subjectName, cert.issuerName) ? 'root-ca' : 'organisation-ca'
  if (policySet(cert).has(policies().session)) return 'session'
  if (declaredTier(cert) !== undefined) return 'agent'
  return 'unknown'
}

function amidsOf (cert: X509Certificate): { cn?: string, san: string[] } {
  const cn = cert.subjectName.getField('CN')[0]
  const sanExt = cert.getExtension(SubjectAlternativeNameExtension)
  const san = sanExt === null
    ? []
    : sanExt.names.items.filter(n => n.type === 'url' && n.value.startsWith(AMID_URI_PREFIX)).map(n => n.value.slice(AMID_URI_PREFIX.length))
  return { ...(cn === undefined ? {} : { cn }), san }
}

/** What a certificate says about itself, without verifying anything. */
export function describeCertificate (pem: string): CertificateInfo {
  let cert: X509Certificate
  try { cert = parseCert(pem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `the certificate cannot be parsed: ${(cause as Error).message}`, { cause })
  }
  const role = roleOf(cert)
  const tier = declaredTier(cert)
  const { san } = amidsOf(cert)
  const org = cert.subjectName.getField('O')[0]
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    role,
    ...(role === 'agent' && (tier === 'verified' || tier === 'anonymous') ? { tier } : {}),
    ...(san[0] === undefined ? {} : { amid: san[0] }),
    ...(org === undefined ? {} : { org }),
    selfIssued: sameName(cert.subjectName, cert.issuerName),
    keyAlgorithm: cert.publicKey.algorithm.name,
  }
}

// ---------------------------------------------------------------------------------------------
// Verification

interface Link {
  cert: X509Certificate
  /** Position in the chain as given; undefined for a trusted root added as the anchor. */
  index?: number
  /** "certificate 1 (CN=Acme CA, O=Acme)" or "trusted root (CN=…)" */
  where: string
}

function fail (code: ErrorCode, link: Link, why: string, cause?: unknown): CertificateError {
  return new CertificateError(code, `${link.where}: ${why}`, {
    ...(link.index === undefined ? {} : { index: link.index }),
    subject: link.cert.subject,
    ...(cause === undefined ? {} : { cause }),
  })
}

function checkEd25519 (link: Link): void {
  const alg = link.cert.publicKey.algorithm.name
  if (rawEd25519Key(link.cert) === undefined) throw fail(ErrorCode.CertInvalid, link, `its key is ${alg}, not Ed25519`)
  const sig = (link.cert.signatureAlgorithm as { name?: string }).name ?? 'an unknown algorithm'
  if (sig !== 'Ed25519') throw fail(ErrorCode.CertInvalid, link, `it is signed with ${sig}, not Ed25519`)
}

async function signedBy (child: X509Certificate, parent: X509Certificate): Promise<boolean> {
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true }, webcrypto())
  } catch {
    return false
  }
}

function keyUsage (cert: X509Certificate): number | undefined {
  return cert.getExtension(KeyUsagesExtension)?.usages
}

/** An agent certificate's AMID: CN and URI SAN agree, and it is the AMID of the certificate's own key. */
function agentAmid (link: Link): string {
  const { cert } = link
  if (isCa(cert)) throw fail(ErrorCode.CertInvalid, link, 'an agent certificate must not be a CA (basicConstraints cA is set)')
  const ku = keyUsage(cert)
  if (ku !== undefined && (ku & KeyUsageFlags.digitalSignature) === 0) throw fail(ErrorCode.CertInvalid, link, 'its key usage does not allow digitalSignature')
  const tier = declaredTier(cert)
  if (tier === 'both') throw fail(ErrorCode.CertInvalid, link, 'it claims both the verified and the anonymous tier')
  const { cn, san } = amidsOf(cert)
  if (san.length === 0) throw fail(ErrorCode.CertInvalid, link, `it carries no AMID (no ${AMID_URI_PREFIX}<amid> subject alternative name)`)
  if (san.length > 1) throw fail(ErrorCode.CertInvalid, link, 'it carries more than one AMID')
  const amid = san[0]!
  if (!isAmid(amid)) throw fail(ErrorCode.CertInvalid, link, `"${amid.slice(0, 80)}" in its subject alternative name is not an AMID`)
  if (cn !== amid) throw fail(ErrorCode.CertInvalid, link, `its subject CN "${cn ?? ''}" is not its AMID ${amid}`)
  // the AMID is derived from the key: a certificate for someone else's AMID proves nothing
  if (amidFromPublicKey(rawEd25519Key(cert)!) !== amid) throw fail(ErrorCode.CertInvalid, link, `its key is not the key of ${amid}`)
  return amid
}

function checkCa (link: Link, role: string): void {
  const ku = keyUsage(link.cert)
  if (ku !== undefined && (ku & KeyUsageFlags.keyCertSign) === 0) throw fail(ErrorCode.CertInvalid, link, `a ${role} must have the keyCertSign key usage`)
}

/**
 * Verifies a chain (leaf first: [session,] agent [, organisation CA] [, root]) against trusted
 * roots and CRLs, and derives the agent's tier from it:
 * an agent certificate directly under a trusted root with tier verified → `verified`;
 * under an organisation CA → `organisation`; tier anonymous or self-signed → `anonymous`.
 *
 * Failures are {@link CertificateError}s that name the failing link (its index and subject):
 * AM_ERR_CERT_INVALID (unparsable, not Ed25519, no or wrong AMID, wrong role),
 * AM_ERR_CERT_CHAIN_BROKEN (issuer name or signature mismatch, issuer not a CA, no trusted root),
 * AM_ERR_CERT_EXPIRED (outside its validity period at `now`),
 * AM_ERR_CERT_REVOKED (listed in its issuer's CRL).
 */
export async function verifyChain (chainPem: readonly string[], opts: VerifyChainOptions): Promise<VerifiedChain> {
  const now = opts.now ?? new Date()
  if (chainPem.length === 0) throw new CertificateError(ErrorCode.CertInvalid, 'the chain is empty: expected the agent (or session) certificate first')
  if (chainPem.length > MAX_CHAIN_LENGTH) {
    throw new CertificateError(ErrorCode.CertChainBroken, `the chain has ${chainPem.length} certificates; at most ${MAX_CHAIN_LENGTH} (session → agent → organisation CA → root)`)
  }

  // 1. parse: every certificate and CRL, Ed25519 only
  const links: Link[] = chainPem.map((pem, index) => {
    let cert: X509Certificate
    try { cert = parseCert(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `certificate ${index}: cannot be parsed (${(cause as Error).message})`, { index, cause })
    }
    const link = { cert, index, where: `certificate ${index} (${cert.subject})` }
    checkEd25519(link)
    return link
  })
  const roots: Link[] = opts.roots.map((pem, i) => {
    let cert: X509Certificate
    try { cert = parseCert(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `trusted root ${i}: cannot be parsed (${(cause as Error).message})`, { cause })
    }
    const link = { cert, where: `trusted root (${cert.subject})` }
    checkEd25519(link)
    return link
  })
  const crls = (opts.crls ?? []).map((pem, i) => {
    try { return parseCrlObject(pem) } catch (cause) {
      throw new CertificateError(ErrorCode.CertInvalid, `CRL ${i}: cannot be parsed (${(cause as Error).message})`, { cause })
    }
  })

  // 2. roles: [session] agent [organisation CA] [root]
  let at = 0
  let session: Link | undefined
  if (roleOf(links[0]!.cert) === 'session') session = links[at++]
  const agent = links[at]
  if (agent === undefined) {
    throw fail(ErrorCode.CertChainBroken, links[0]!, `its issuer "${links[0]!.cert.issuer}" (the agent certificate) is missing from the chain`)
  }
  const agentRole = roleOf(agent.cert)
  if (agentRole === 'root-ca' || agentRole === 'organisation-ca') {
    throw fail(ErrorCode.CertInvalid, agent, session === undefined
      ? 'is a CA certificate; the chain must start with an agent or session certificate'
      : 'issued the session certificate but is a CA, not an agent certificate')
  }
  const amid = agentAmid(agent)
  const tier = declaredTier(agent.cert)
  if (tier === undefined) throw fail(ErrorCode.CertInvalid, agent, 'it carries no AgentMesh tier policy (verified or anonymous)')
  if (session !== undefined) {
    const s = amidsOf(session.cert).san
    if (s.length !== 1 || s[0] !== amid) throw fail(ErrorCode.CertInvalid, session, `a session certificate must carry the AMID of its agent ${amid}, got ${s.join(', ') || 'none'}`)
    if (isCa(session.cert)) throw fail(ErrorCode.CertInvalid, session, 'a session certificate must not be a CA')
  }
  const rest = links.slice(at + 1)
  const agentSelfSigned = sameName(agent.cert.subjectName, agent.cert.issuerName)
  if (agentSelfSigned) {
    if (tier !== 'anonymous') {
      throw fail(ErrorCode.CertChainBroken, agent, 'is self-signed: only an anonymous certificate may be; a verified one must be issued by a trusted root or an organisation CA')
    }
    if (!await signedBy(agent.cert, agent.cert)) throw fail(ErrorCode.CertChainBroken, agent, 'its self-signature does not verify')
    if (rest.length > 0) throw fail(ErrorCode.CertChainBroken, rest[0]!, `does not belong in the chain: certificate ${agent.index!} is self-signed`)
  }

  // 3. links: each certificate is named and signed by the next; the last one by a trusted root
  const path: Link[] = [...(session === undefined ? [] : [session]), agent, ...rest]
  if (!agentSelfSigned) {
    const last = path[path.length - 1]!
    if (sameName(last.cert.subjectName, last.cert.issuerName)) {
      const trusted = roots.some(r => sameBytes(r.cert.rawData, last.cert.rawData))
      if (!trusted) throw fail(ErrorCode.CertChainBroken, last, 'is a self-signed root that is not among the trusted roots')
      last.where = `certificate ${last.index!} (${last.cert.subject}, a trusted root)`
    } else {
      const named = roots.filter(r => sameName(r.cert.subjectName, last.cert.issuerName))
      if (named.length === 0) {
        throw fail(ErrorCode.CertChainBroken, last, `its issuer "${last.cert.issuer}" is neither the next certificate in the chain nor a trusted root`)
      }
      let anchor: Link | undefined
      for (const r of named) if (await signedBy(last.cert, r.cert)) { anchor = r; break }
      if (anchor === undefined) throw fail(ErrorCode.CertChainBroken, last, `its signature does not verify with the key of the trusted root "${last.cert.issuer}" (signed by another CA of that name?)`)
      path.push(anchor)
    }
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!
    const parent = path[i + 1]!
    if (!sameName(child.cert.issuerName, parent.cert.subjectName)) {
      throw fail(ErrorCode.CertChainBroken, child, `names its issuer "${child.cert.issuer}", but the next certificate is "${parent.cert.subject}"`)
    }
    const parentRole = roleOf(parent.cert)
    if (child === session) {
      if (parent !== agent) throw fail(ErrorCode.CertChainBroken, child, 'a session certificate must be issued by an agent certificate')
    } else if (child === agent) {
      if (!isCa(parent.cert)) throw fail(ErrorCode.CertChainBroken, child, `its issuer ${parent.where} is not a CA`)
      checkCa(parent, parentRole === 'root-ca' ? 'root CA' : 'organisation CA')
    } else {
      // child is the agent's issuer: a root ends the chain, an organisation CA is issued by a root
      if (roleOf(child.cert) === 'root-ca') throw fail(ErrorCode.CertChainBroken, parent, `does not belong in the chain: ${child.where} is a root`)
      if (parentRole !== 'root-ca') throw fail(ErrorCode.CertChainBroken, child, `an organisation CA must be issued by a root CA, and its issuer ${parent.where} is not one`)
      checkCa(parent, 'root CA')
      if (child.cert.subjectName.getField('O')[0] === undefined) throw fail(ErrorCode.CertInvalid, child, 'an organisation CA must name its organisation (O)')
    }
    if (!await signedBy(child.cert, parent.cert)) {
      throw fail(ErrorCode.CertChainBroken, child, `its signature does not verify with the key of its issuer ${parent.where}`)
    }
  }
  const issuerOfAgent = agentSelfSigned ? undefined : path[path.indexOf(agent) + 1]!

  // 4. validity at `now`, trusted root included
  for (const link of path) {
    if (now.getTime() < link.cert.notBefore.getTime()) {
      throw fail(ErrorCode.CertExpired, link, `is not valid before ${link.cert.notBefore.toISOString()} (now ${now.toISOString()})`)
    }
    if (now.getTime() > link.cert.notAfter.getTime()) {
      throw fail(ErrorCode.CertExpired, link, `expired at ${link.cert.notAfter.toISOString()} (now ${now.toISOString()})`)
    }
  }

  // 5. revocation: each certificate against the CRLs of its issuer
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!
    const parent = path[i + 1]!
    for (const [n, crl] of crls.entries()) {
      if (!sameName(crl.issuerName, parent.cert.subjectName)) continue
      let ok = false
      try { ok = await crl.verify({ publicKey: parent.cert }, webcrypto()) } catch {}
      if (!ok) {
        throw new CertificateError(ErrorCode.CertInvalid, `CRL ${n} names "${crl.issuer}" as its issuer but is not signed by the key of ${parent.where}`)
      }
      const entry = crl.findRevoked(child.cert)
      if (entry !== null) {
        throw fail(ErrorCode.CertRevoked, child, `was revoked by "${crl.issuer}" on ${entry.revocationDate.toISOString()} (serial ${child.cert.serialNumber})`)
      }
    }
  }

  let result: TrustTier
  let org: string | undefined
  if (tier === 'anonymous' || issuerOfAgent === undefined) {
    result = 'anonymous'
  } else if (roleOf(issuerOfAgent.cert) === 'organisation-ca') {
    result = 'organisation'
    org = issuerOfAgent.cert.subjectName.getField('O')[0]
  } else {
    result = 'verified'
  }
  const notAfter = path.reduce((d, l) => minDate(d, l.cert.notAfter), path[0]!.cert.notAfter)
  return {
    tier: result,
    amid,
    ...(org === undefined ? {} : { org }),
    ...(session === undefined ? {} : { sessionPublicKey: rawEd25519Key(session.cert)! }),
    notAfter,
  }
}

// ---------------------------------------------------------------------------------------------
// On disk: a CA directory holds ca.pem, ca.key (0600) and crl.pem

export const CA_FILES = { cert: 'ca.pem', key: 'ca.key', crl: 'crl.pem' } as const

function readError (what: string, path: string, cause: unknown): AgentMeshError {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new AgentMeshError(ErrorCode.InvalidArgument, `${what}: ${path} does not exist`, { cause })
  return new AgentMeshError(ErrorCode.DataDir, `${what}: cannot read ${path}: ${code ?? String(cause)}`, { cause })
}

function writeError (path: string, cause: unknown): AgentMeshError {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new AgentMeshError(ErrorCode.InvalidArgument, `cannot write ${path}: its directory does not exist`, { cause })
  return new AgentMeshError(ErrorCode.DataDir, `cannot write ${path}: ${code ?? String(cause)}`, { cause })
}

/** Writes a public file (certificate, CRL) atomically, mode 0644. */
export function writePublicFile (path: string, data: string): void {
  try {
    writeSecretFile(path, data)
    chmodSync(path, 0o644)
  } catch (cause) {
    throw writeError(path, cause)
  }
}

/**
 * Saves a CA to `dir` (created 0700): `ca.pem`, `ca.key` (PKCS#8, 0600) and `crlPem` as `crl.pem`.
 * Refuses a directory that already holds a CA key unless `force`: overwriting it loses the CA.
 */
export function saveCa (dir: string, ca: CertificateAuthority, opts: { crlPem?: string, force?: boolean } = {}): void {
  try { mkdirSync(dir, { recursive: true, mode: 0o700 }) } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir, `cannot create the CA directory ${dir}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  const keyPath = join(dir, CA_FILES.key)
  if (opts.force !== true) {
    let exists = true
    try { lstatSync(keyPath) } catch (cause) { if ((cause as NodeJS.ErrnoException).code === 'ENOENT') exists = false }
    if (exists) throw invalidArg(`${dir} already holds a CA (${CA_FILES.key}); refusing to overwrite its key`)
  }
  try { writeSecretFile(keyPath, ca.privateKeyPem) } catch (cause) { throw writeError(keyPath, cause) }
  writePublicFile(join(dir, CA_FILES.cert), ca.certPem)
  if (opts.crlPem !== undefined) writePublicFile(join(dir, CA_FILES.crl), opts.crlPem)
}

function readText (what: string, path: string): string {
  try { return readFileSync(path, 'utf8') } catch (cause) { throw readError(what, path, cause) }
}

/** Loads the CA in `dir`, checking that its key belongs to its certificate. */
export function loadCa (dir: string): CertificateAuthority {
  const certPath = join(dir, CA_FILES.cert)
  const keyPath = join(dir, CA_FILES.key)
  const certPem = readText(`no CA in ${dir}`, certPath)
  const privateKeyPem = readText(`no CA key in ${dir}`, keyPath)
  let cert: X509Certificate
  try { cert = parseCert(certPem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `${certPath} is not a certificate: ${(cause as Error).message}`, { cause })
  }
  let spki: Buffer
  try {
    spki = createPublicKey(createPrivateKey({ key: privateKeyPem, format: 'pem' })).export({ format: 'der', type: 'spki' })
  } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `${keyPath} is not a PKCS#8 private key`, { cause })
  }
  if (!spki.equals(Buffer.from(cert.publicKey.rawData))) {
    throw new CertificateError(ErrorCode.CertInvalid, `${keyPath} is not the key of ${certPath}`, { subject: cert.subject })
  }
  return caFromParts(cert, certPem, privateKeyPem)
}
