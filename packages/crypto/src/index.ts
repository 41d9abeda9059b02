/**
 * @packageDocumentation
 * AgentMesh identity: Ed25519 keys on Node's crypto, AMIDs, envelope and challenge signatures,
 * and the identity file under `$AGENTMESH_HOME`.
 *
 * @example
 * ```ts
 * import { createIdentity, signEnvelope, verifyEnvelope } from '@agentmesh/crypto'
 * const me = createIdentity('alice')
 * const env = signEnvelope(me, { id: '0190…', to: peer, type: 'chat', payload: { text: 'hi' } })
 * verifyEnvelope(env) // true
 * ```
 */
export {
  generateKeyPair, keyPairFromSecret, amidFromPublicKey, publicKeyFromAmid, isAmid,
  toB64u, fromB64u, publicKeyObjectFromRaw,
} from './keys.ts'
export type { KeyPair } from './keys.ts'
export {
  signEnvelope, attestEnvelope, signerOf, verifyEnvelope, verifyEnvelopeAsync, envelopeSigningBytes,
  signChallenge, verifyChallenge, keyForAmid, envelopeHeaderBinding, HEADER_BINDING_LABEL,
} from './envelope.ts'
export type { EnvelopeInit, EnvelopeHeader } from './envelope.ts'
export {
  createIdentity, identityFromSecret, loadIdentity, saveIdentity, defaultHome, ensureHome,
  writeSecretFile, IDENTITY_FILE, identityIsSealed, resealIdentity,
} from './identity.ts'
export type { Identity } from './identity.ts'
export { signRequest, verifyRequest, SIGNATURE_HEADERS, HTTP_SIGNING_PREFIX, DEFAULT_HTTP_SIGNATURE_SKEW_MS } from './http-signature.ts'
export type { RequestCheck } from './http-signature.ts'
export {
  generateExchangeKey, deriveExchangeKey, exchangeKeyFromSecret, generateSignedPreKey, generateOneTimePreKeys, generatePqPreKey,
  needsRotation, rotatePreKeys, memoryPreKeyStore, preKeyBundleBase, oneTimePreKeyPublic, createPreKeyBundle, verifyBundle,
  encodeEd25519, encodeMlKem768, exchangeKeySigningBytes, signedPreKeySigningBytes, pqPreKeySigningBytes,
  DEFAULT_PREKEY_ROTATION_MS, DEFAULT_PREKEY_GRACE_MS, KEY_TYPE_ED25519, KEY_TYPE_ML_KEM_768,
  EXCHANGE_KEY_SIGNING_PREFIX, SIGNED_PREKEY_SIGNING_PREFIX, PQ_PREKEY_SIGNING_PREFIX,
  PQ_ONE_TIME_PREKEY_SIGNING_PREFIX, generatePqOneTimePreKeys, pqOneTimePreKeyPublic, pqOneTimePreKeySigningBytes, verifyPqOneTimePreKey,
  ML_KEM_768_PUBLIC_KEY_BYTES, ML_KEM_768_SECRET_KEY_BYTES, ML_KEM_768_CIPHERTEXT_BYTES,
} from './prekeys.ts'
export type {
  ExchangeKeyPair, SignedPreKeyRecord, OneTimePreKeyRecord, PqPreKeyRecord, PqOneTimePreKeyRecord, PreKeyStore, PreKeyBundle, PreKeyBundleBase,
  VerifiedBundle, RotateOptions, RotateResult,
} from './prekeys.ts'
export { generateX25519KeyPair, x25519KeyPairFromSecret, encodeX25519, KEY_TYPE_X25519 } from './x25519.ts'
export type { X25519KeyPair } from './x25519.ts'
export { initiateSession, acceptSession, verifyInitialMessageHeader, sessionAssociatedData, PQXDH_INFO } from './pqxdh.ts'
export type { InitialMessageHeader, InitiatedSession, InitiateOptions, AcceptedSession, AcceptOptions } from './pqxdh.ts'
export {
  ratchetInitAlice, ratchetInitBob, ratchetEncrypt, ratchetDecrypt, serializeRatchetState, deserializeRatchetState,
  DEFAULT_MAX_SKIP, DEFAULT_MAX_SKIPPED_TOTAL, DEFAULT_MAX_SKIPPED_AGE_MS, expireSkipped,
} from './ratchet.ts'
export type { RatchetState, RatchetMessage, RatchetHeader, RatchetLimits } from './ratchet.ts'
export { startSession, acceptInitialMessage } from './session.ts'
export {
  createSenderKey, senderKeyDistribution, receiverFromDistribution, senderKeyEncrypt, senderKeyDecrypt, needsSenderKeyRotation,
  DEFAULT_SENDER_KEY_MAX_SKIP, DEFAULT_SENDER_KEY_MAX_SKIPPED, DEFAULT_SENDER_KEY_MAX_MESSAGES, DEFAULT_SENDER_KEY_MAX_AGE_MS,
} from './sender-key.ts'
export type {
  SenderKeyState, SenderKeyDistribution, SenderKeyReceiver, GroupMessage, SenderKeyLimits, SenderKeyRotationOptions,
} from './sender-key.ts'
export {
  createRootCa, issueOrgCa, issueAgentCert, selfSignAgentCert, issueSessionCert, createCrl, parseCrl,
  verifyChain, describeCertificate, splitPem, normaliseSerial, saveCa, loadCa, writePublicFile, CertificateError,
  CA_FILES, AMID_URI_PREFIX, AGENTMESH_OID_ARC, CERT_POLICY, CERT_BACKDATE_MS, MAX_CHAIN_LENGTH, MAX_PEM_BYTES,
  DEFAULT_VERIFIED_CERT_VALIDITY_DAYS, DEFAULT_ANONYMOUS_CERT_VALIDITY_DAYS, DEFAULT_ROOT_CA_VALIDITY_DAYS,
  DEFAULT_ORG_CA_VALIDITY_DAYS, DEFAULT_SESSION_CERT_VALIDITY_HOURS, MAX_SESSION_CERT_VALIDITY_HOURS, DEFAULT_CRL_VALIDITY_DAYS,
  SESSION_FILES, certFromWire, certToWire, loadSession, saveSession, sessionKeyOf, sessionKeyPath, signSessionChallenge,
  signSessionEnvelope, verifySessionCert, verifySessionChallenge, verifySessionLink,
} from './certs.ts'
export type {
  CertificateAuthority, IssuedCertificate, RootCaInit, OrgCaInit, AgentCertInit, SessionCertInit, RevokedEntry, CrlInit,
  ParsedCrl, VerifyChainOptions, VerifiedChain, TrustTier, AgentCertTier, CertRole, CertificateInfo,
  Session, SessionLink, VerifiedSession,
} from './certs.ts'
export { deriveStateKey, sealRecord, openRecord, STATE_SCRYPT, STATE_SCRYPT_V1, scryptParamsText, parseScryptParams } from './at-rest.ts'
export type { ScryptParams } from './at-rest.ts'
export { safetyNumber, formatSafetyNumber, fingerprintHalf, scannableFingerprint, scannableSafetyNumber, compareScannable, SAFETY_NUMBER_ITERATIONS, SCANNABLE_VERSION } from './safety-number.ts'
export { signGrant, verifyGrant, grantAllows, GRANT_SIGNING_PREFIX, GRANT_VERSION, SCOPE_PATTERN, MAX_GRANT_SCOPES, MAX_GRANT_DURATION_MS } from './grant.ts'
export type { Grant, GrantInit, GrantStatus } from './grant.ts'
export { dmRoomId, DM_ROOM_PREFIX } from './conversation.ts'
export {
  signMembership, verifyMembershipStatement, verifyMembershipChain, applyMembership, membershipHash, extendMembership, pinMembership, unpinMembership,
  MEMBERSHIP_SIGNING_PREFIX, MEMBERSHIP_VERSION, MAX_MEMBERSHIP_STATEMENTS,
} from './membership.ts'
export type { MembershipStatement, MembershipOp, MembershipInit, VerifiedMembership, PinnedMembership } from './membership.ts'
export { signAuditHead, verifyAuditHead, AUDIT_HEAD_SIGNING_PREFIX } from './audit-head.ts'
export type { AuditHead } from './audit-head.ts'
export { signOwnerLink, verifyOwnerLink, ownerLinkSigningBytes, OWNER_LINK_SIGNING_PREFIX } from './owner-link.ts'
export type { OwnerLinkStatement } from './owner-link.ts'
