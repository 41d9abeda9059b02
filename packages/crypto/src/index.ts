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
  signEnvelope, verifyEnvelope, verifyEnvelopeAsync, envelopeSigningBytes,
  signChallenge, verifyChallenge, keyForAmid,
} from './envelope.ts'
export type { EnvelopeInit } from './envelope.ts'
export {
  createIdentity, identityFromSecret, loadIdentity, saveIdentity, defaultHome, ensureHome,
  writeSecretFile, IDENTITY_FILE,
} from './identity.ts'
export type { Identity } from './identity.ts'
export { signRequest, verifyRequest, SIGNATURE_HEADERS, HTTP_SIGNING_PREFIX, DEFAULT_HTTP_SIGNATURE_SKEW_MS } from './http-signature.ts'
export type { RequestCheck } from './http-signature.ts'
