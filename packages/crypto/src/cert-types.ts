/**
 * The certificate chain's public types (CAs, issued certificates, the options of issuing, CRLs and
 * `verifyChain`, and what a verified chain or a described certificate says), and
 * {@link CertificateError}, the error every check of the chain throws. They are shared by the
 * issuing, revocation, reading, verification and on-disk parts of the chain (see certs.ts), so
 * they live apart from all of them.
 */
import { AgentMeshError, type ErrorCode } from '@agentmesh/protocol'

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
