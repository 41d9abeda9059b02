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
 *
 * The code is split by concern; this file gathers its public names (re-exported from index.ts):
 *
 * - cert-types.ts: the public types and `CertificateError`
 * - cert-x509.ts: constants, OIDs, the WebCrypto provider and the shared X.509 helpers
 * - cert-issue.ts: issuing root, organisation, agent and session certificates
 * - cert-crl.ts: CRLs
 * - cert-inspect.ts: splitting PEM and describing a certificate without verifying it
 * - cert-verify.ts: `verifyChain` and the trust tiers
 * - cert-files.ts: a CA directory on disk
 * - cert-session.ts: session certificates in use: the last link checked alone (peers) or with the
 *   chain above it (the relay), the wire form, signing with a session key, a session's files
 *
 * Every file that loads @peculiar/x509 imports 'reflect-metadata' first, so the Reflect API is
 * there whichever of them is evaluated first.
 */
export {
  AGENTMESH_OID_ARC, AMID_URI_PREFIX, CERT_BACKDATE_MS, CERT_POLICY, DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS,
  DEFAULT_CRL_VALIDITY_DAYS, DEFAULT_ORG_CA_VALIDITY_DAYS, DEFAULT_ROOT_CA_VALIDITY_DAYS,
  DEFAULT_SESSION_CERT_VALIDITY_HOURS, DEFAULT_VERIFIED_CERT_VALIDITY_DAYS, MAX_CHAIN_LENGTH, MAX_PEM_BYTES,
  MAX_SESSION_CERT_VALIDITY_HOURS, normaliseSerial,
} from './cert-x509.ts'
export { CertificateError } from './cert-types.ts'
export type {
  AgentCertInit, AgentCertTier, CertificateAuthority, CertificateInfo, CertRole, CrlInit, IssuedCertificate, OrgCaInit,
  ParsedCrl, RevokedEntry, RootCaInit, SessionCertInit, TrustTier, VerifiedChain, VerifyChainOptions,
} from './cert-types.ts'
export { createRootCa, issueAgentCert, issueOrgCa, issueSessionCert, selfSignAgentCert } from './cert-issue.ts'
export { createCrl, parseCrl } from './cert-crl.ts'
export { describeCertificate, splitPem } from './cert-inspect.ts'
export { verifyChain } from './cert-verify.ts'
export { CA_FILES, loadCa, saveCa, writePublicFile } from './cert-files.ts'
export {
  SESSION_FILES, certFromWire, certToWire, loadSession, saveSession, sessionKeyOf, sessionKeyPath, signSessionChallenge,
  signSessionEnvelope, verifySessionCert, verifySessionChallenge, verifySessionLink,
} from './cert-session.ts'
export type { Session, SessionLink, VerifiedSession } from './cert-session.ts'
