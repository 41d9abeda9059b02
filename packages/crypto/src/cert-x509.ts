/**
 * The X.509 building blocks of the certificate chain: its constants (validity periods, bounds, the
 * AMID SAN prefix, AgentMesh's OID arc and certificate policies), the WebCrypto provider
 * @peculiar/x509 runs on, and the helpers that issuing, revocation, reading, verification and the
 * on-disk CA share (names, serials, validity periods, key import, parsing). Signing and verification
 * run on WebCrypto (`globalThis.crypto`), which @peculiar/x509 is built on.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import {
  AuthorityKeyIdentifierExtension, BasicConstraintsExtension, CertificatePolicyExtension, CryptoProvider, Name,
  PemConverter, SubjectKeyIdentifierExtension, X509Certificate, cryptoProvider,
  type Extension, type JsonNameParams,
} from '@peculiar/x509'
import type { webcrypto as nodeWebcrypto } from 'node:crypto'
import { AgentMeshError, ErrorCode, MAX_CERT_CHAIN_LENGTH, MAX_CERT_PEM_BYTES } from '@agentmesh/protocol'
import type { KeyPair } from './keys.ts'
import { CertificateError, type CertificateAuthority } from './cert-types.ts'

// ---------------------------------------------------------------------------------------------
// Constants

export const DAY_MS = 86_400_000
export const HOUR_MS = 3_600_000

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
export function policies (): Record<keyof typeof CERT_POLICY, string> {
  decodedPolicies ??= {
    verified: decodedOid(CERT_POLICY.verified),
    anonymous: decodedOid(CERT_POLICY.anonymous),
    session: decodedOid(CERT_POLICY.session),
  }
  return decodedPolicies
}

export const ED25519 = { name: 'Ed25519' } as const
type WebCrypto = typeof globalThis.crypto
// the DOM names @peculiar/x509's types use; Node declares them under `webcrypto`
type CryptoKey = nodeWebcrypto.CryptoKey
export type CryptoKeyPair = nodeWebcrypto.CryptoKeyPair

let providerSet = false
/** WebCrypto for @peculiar/x509: passed to every call, and set once as its default provider. */
export function webcrypto (): WebCrypto {
  if (!providerSet) {
    if (!cryptoProvider.has(CryptoProvider.DEFAULT)) cryptoProvider.set(globalThis.crypto)
    providerSet = true
  }
  return globalThis.crypto
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function invalidArg (message: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidArgument, message)
}

export function checkName (what: string, s: string): string {
  const t = s.trim()
  // eslint-disable-next-line no-control-regex
  if (t.length === 0 || t.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(t)) {
    throw invalidArg(`${what} must be 1–${MAX_NAME_LENGTH} printable characters, got "${s.slice(0, 80)}"`)
  }
  return t
}

export function checkDays (what: string, n: number, max: number): number {
  if (!Number.isFinite(n) || n <= 0 || n > max) throw invalidArg(`${what} must be more than 0 and at most ${max}, got ${n}`)
  return n
}

export function utf8Name (attrs: Array<[string, string]>): Name {
  const json: JsonNameParams = attrs.map(([type, value]) => ({ [type]: [{ utf8String: value }] }))
  return new Name(json)
}

/** A positive 127-bit serial whose first octet is non-zero, so its hex form is unique (RFC 5280 §4.1.2.2). */
export function newSerial (): string {
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

export function minDate (a: Date, b: Date): Date {
  return a.getTime() <= b.getTime() ? a : b
}

/** notBefore/notAfter with second precision (X.509 times have no fractions). */
export function validity (now: Date, lifetimeMs: number, cap?: Date): { notBefore: Date, notAfter: Date } {
  const t = Math.floor(now.getTime() / 1000) * 1000
  const notAfter = new Date(t + lifetimeMs)
  return { notBefore: new Date(t - CERT_BACKDATE_MS), notAfter: cap === undefined ? notAfter : minDate(notAfter, cap) }
}

export function sameBytes (a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

export function sameName (a: Name, b: Name): boolean {
  return sameBytes(a.toArrayBuffer(), b.toArrayBuffer())
}

export async function importSigningKey (privateKeyPem: string): Promise<CryptoKey> {
  try {
    const der = PemConverter.decodeFirst(privateKeyPem)
    return await webcrypto().subtle.importKey('pkcs8', der, ED25519, false, ['sign'])
  } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, 'the CA private key is not an Ed25519 PKCS#8 key', { cause })
  }
}

export async function keyPairSigningKey (kp: KeyPair): Promise<CryptoKey> {
  const der = kp.privateKeyObject.export({ format: 'der', type: 'pkcs8' })
  return await webcrypto().subtle.importKey('pkcs8', der, ED25519, false, ['sign'])
}

export async function importRawPublicKey (what: string, raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw invalidArg(`${what} must be a raw 32-byte Ed25519 public key, got ${raw.length} bytes`)
  return await webcrypto().subtle.importKey('raw', raw, ED25519, true, ['verify'])
}

/** The raw 32-byte Ed25519 key of a certificate, or undefined for another key type. */
export function rawEd25519Key (cert: X509Certificate): Uint8Array | undefined {
  if (cert.publicKey.algorithm.name !== 'Ed25519') return undefined
  const spki = new Uint8Array(cert.publicKey.rawData)
  return spki.length === 44 ? spki.slice(12) : undefined
}

export async function keyIdExtensions (subjectKey: CryptoKey, issuerKey: CryptoKey | X509Certificate): Promise<Extension[]> {
  const c = webcrypto()
  return [
    await SubjectKeyIdentifierExtension.create(subjectKey, false, c),
    await AuthorityKeyIdentifierExtension.create(issuerKey instanceof X509Certificate ? issuerKey.publicKey : issuerKey, false, c),
  ]
}

/** PEM ending in a newline, so that chains concatenate into a file as they are. */
export function certToPem (cert: X509Certificate): string {
  return cert.toString('pem') + '\n'
}

/**
 * An expired CA issues nothing: its certificates could never verify. (One not valid yet may
 * issue ahead; the chain verifies from its start.)
 */
export function checkIssuerValid (issuer: X509Certificate, now: Date): void {
  if (now.getTime() > issuer.notAfter.getTime()) {
    throw new CertificateError(ErrorCode.CertExpired,
      `the issuing CA ${issuer.subject} expired at ${issuer.notAfter.toISOString()} (now ${now.toISOString()})`, { subject: issuer.subject })
  }
}

export function parseCert (pem: string): X509Certificate {
  if (pem.length > MAX_PEM_BYTES) throw new Error(`larger than ${MAX_PEM_BYTES} bytes`)
  return new X509Certificate(pem)
}

export function caFromParts (cert: X509Certificate, certPem: string, privateKeyPem: string): CertificateAuthority {
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
