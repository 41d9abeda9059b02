/**
 * Session certificates in use (docs/protocol.md §3, §8, §13.1): a short-lived Ed25519 key that acts
 * for an agent, certified by the agent's identity key (`issueSessionCert`). This file checks the last
 * link (session certificate ← the AMID's key) on its own, synchronously, as a peer does for every
 * envelope a session key signed; checks it with the agent's chain above it, as the relay does at
 * auth; puts a certificate on the wire (base64url of its DER); signs envelopes and challenges with a
 * session key; and keeps a session (certificate chain + key) in files: the key 0600, never printed.
 */
import 'reflect-metadata' // @peculiar/x509's dependency injection (tsyringe) throws without the Reflect API
import { X509Certificate as NodeX509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { KeyUsageFlags, KeyUsagesExtension, PemConverter, type X509Certificate } from '@peculiar/x509'
import { AUTH_SIGNING_PREFIX, AgentMeshError, ErrorCode, PROTOCOL, type Envelope, type SignedEnvelope } from '@agentmesh/protocol'
import { amidFromPublicKey, fromB64u, keyPairFromSecret, publicKeyObjectFromRaw, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'
import { envelopeSigningBytes, keyForAmid, signChallenge, type EnvelopeInit } from './envelope.ts'
import { writeSecretFile } from './identity.ts'
import { CertificateError, type TrustTier } from './cert-types.ts'
import { parseCert, rawEd25519Key } from './cert-x509.ts'
import { amidsOf, isCa, roleOf, splitPem } from './cert-inspect.ts'
import { verifyChain } from './cert-verify.ts'
import { writePublicFile } from './cert-files.ts'

/** The files `agentmesh cert session` writes in the agent's home: the chain (public) and the key (0600). */
export const SESSION_FILES = { cert: 'session.pem', key: 'session.key' } as const

/** What the last link says once it verified. */
export interface SessionLink {
  amid: string
  /** The session's raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array
  serial: string
  notBefore: Date
  notAfter: Date
}

/** A session certificate checked with the agent's chain above it (what the relay checks at auth). */
export interface VerifiedSession extends SessionLink {
  /** The tier of the agent's chain; `anonymous` when only the session certificate was given. */
  tier: TrustTier
  org?: string
  /** The earliest expiry of the session certificate and the chain above it. */
  expiresAt: Date
}

/** A session ready to sign: its key and its certificate chain (session certificate first). */
export interface Session {
  amid: string
  /** The session key pair (never the identity's). */
  keys: KeyPair
  chainPem: readonly string[]
  /** The session certificate on the wire (base64url DER): an envelope's and an auth frame's `session_cert`. */
  cert: string
  /** The agent's chain above it on the wire: an auth frame's `session_chain` (empty without one). */
  chain: readonly string[]
  serial: string
  notAfter: Date
}

/** A certificate (PEM) on the wire: base64url of its DER, no padding. */
export function certToWire (pem: string): string {
  return toB64u(new Uint8Array(PemConverter.decodeFirst(pem)))
}

/** A certificate from the wire (base64url DER) as PEM. */
export function certFromWire (wire: string): string {
  return PemConverter.encode(fromB64u(wire).slice().buffer, 'CERTIFICATE') + '\n'
}

function invalid (why: string, subject?: string): CertificateError {
  return new CertificateError(ErrorCode.CertInvalid, `session certificate${subject === undefined ? '' : ` (${subject})`}: ${why}`, {
    index: 0, ...(subject === undefined ? {} : { subject }),
  })
}

/**
 * Checks the last link alone, synchronously: `pem` is a session certificate (session policy, not a
 * CA, digitalSignature, Ed25519) for `amid`, signed by `amid`'s own key, valid at `at`. Throws a
 * {@link CertificateError}: AM_ERR_CERT_INVALID (unreadable, wrong role, another agent's),
 * AM_ERR_CERT_CHAIN_BROKEN (not signed by `amid`'s key), AM_ERR_CERT_EXPIRED (outside its validity).
 */
export function verifySessionLink (pem: string, amid: string, at: Date): SessionLink {
  let cert: X509Certificate
  try { cert = parseCert(pem) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `session certificate: cannot be parsed (${(cause as Error).message})`, { index: 0, cause })
  }
  const subject = cert.subject
  const key = rawEd25519Key(cert)
  if (key === undefined) throw invalid(`its key is ${cert.publicKey.algorithm.name}, not Ed25519`, subject)
  const role = roleOf(cert)
  if (role !== 'session') throw invalid(`it is ${role === 'unknown' ? 'not an AgentMesh certificate' : `a certificate of role "${role}"`}, not a session certificate`, subject)
  if (isCa(cert)) throw invalid('a session certificate must not be a CA', subject)
  const ku = cert.getExtension(KeyUsagesExtension)?.usages
  if (ku !== undefined && (ku & KeyUsageFlags.digitalSignature) === 0) throw invalid('its key usage does not allow digitalSignature', subject)
  const { san } = amidsOf(cert)
  if (san.length !== 1 || san[0] !== amid) throw invalid(`it is the session certificate of ${san.join(', ') || 'no agent'}, not of ${amid}`, subject)
  let signed = false
  try { signed = new NodeX509Certificate(Buffer.from(cert.rawData)).verify(keyForAmid(amid)) } catch {}
  if (!signed) {
    throw new CertificateError(ErrorCode.CertChainBroken, `session certificate (${subject}): its signature does not verify with the key of ${amid}`, { index: 0, subject })
  }
  if (at.getTime() < cert.notBefore.getTime()) {
    throw new CertificateError(ErrorCode.CertExpired, `session certificate (${subject}): is not valid before ${cert.notBefore.toISOString()} (at ${at.toISOString()})`, { index: 0, subject })
  }
  if (at.getTime() > cert.notAfter.getTime()) {
    throw new CertificateError(ErrorCode.CertExpired, `session certificate (${subject}): expired at ${cert.notAfter.toISOString()} (at ${at.toISOString()}); issue a new one (\`agentmesh cert session\`)`, { index: 0, subject })
  }
  return { amid, publicKey: key, serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter }
}

/**
 * Checks a session certificate for `amid` and, when the chain goes on (agent certificate, its
 * issuers), the whole chain with `verifyChain` against `roots` and `crls`: the tier is the chain's.
 * Without a chain the last link is all there is, and the tier is `anonymous`.
 */
export async function verifySessionCert (chainPem: readonly string[], opts: {
  amid: string
  roots?: readonly string[]
  crls?: readonly string[]
  now?: Date
}): Promise<VerifiedSession> {
  const now = opts.now ?? new Date()
  if (chainPem.length === 0) throw new CertificateError(ErrorCode.CertInvalid, 'the session certificate is missing')
  const link = verifySessionLink(chainPem[0]!, opts.amid, now)
  if (chainPem.length === 1) return { ...link, tier: 'anonymous', expiresAt: link.notAfter }
  const r = await verifyChain(chainPem, { roots: opts.roots ?? [], ...(opts.crls === undefined ? {} : { crls: opts.crls }), now })
  if (r.amid !== opts.amid) throw new CertificateError(ErrorCode.CertInvalid, `the chain certifies ${r.amid}, not ${opts.amid}`, { index: 1 })
  return { ...link, tier: r.tier, ...(r.org === undefined ? {} : { org: r.org }), expiresAt: r.notAfter }
}

// ---------------------------------------------------------------------------------------------
// Signing with a session key

/** Builds an envelope from the session's agent, carrying its session certificate, signed by the session key. */
export function signSessionEnvelope (session: Pick<Session, 'amid' | 'keys' | 'cert'>, init: EnvelopeInit): SignedEnvelope {
  const unsigned = {
    v: PROTOCOL,
    id: init.id,
    from: session.amid,
    to: init.to,
    type: init.type,
    ts: init.ts ?? Date.now(),
    payload: init.payload,
    session_cert: session.cert,
  }
  return { ...unsigned, sig: toB64u(signBytes(session.keys.privateKeyObject, envelopeSigningBytes(unsigned))) }
}

/** Answers a relay's challenge with the session key: the auth frame's `sig`, `session_cert` and `session_chain`. */
export function signSessionChallenge (session: Session, nonce: string, relay: string): { sig: string, session_cert: string, session_chain?: string[] } {
  return {
    sig: signChallenge(session.keys, session.amid, nonce, relay),
    session_cert: session.cert,
    ...(session.chain.length === 0 ? {} : { session_chain: [...session.chain] }),
  }
}

/** Whether `sig` answers the challenge (docs/protocol.md §3) for `amid` with the session key `key` (raw 32 bytes). */
export function verifySessionChallenge (key: Uint8Array, amid: string, nonce: string, relay: string, sig: string): boolean {
  try {
    return verifyBytes(publicKeyObjectFromRaw(key), new TextEncoder().encode(`${AUTH_SIGNING_PREFIX}${nonce}\n${amid}\n${relay}`), fromB64u(sig))
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// A peer's check of an envelope a session key signed

const MAX_CACHED = 1024
/** sender + wire certificate → its last link's check, or why it failed */
const linkCache = new Map<string, { key: KeyObject, notBefore: number, notAfter: number } | CertificateError>()

/**
 * The key that signed `env` when it carries a session certificate: the certificate is checked for
 * `env.from` (the last link, cached per sender and certificate) and must be valid at the envelope's
 * `ts` (the relay refused it if it was sent after the certificate expired). Throws a CertificateError.
 */
export function sessionKeyOf (env: Envelope): KeyObject {
  const wire = env.session_cert
  if (wire === undefined) throw new CertificateError(ErrorCode.CertInvalid, 'the envelope carries no session certificate')
  if (env.via !== undefined) throw new CertificateError(ErrorCode.CertInvalid, 'a relay-attested envelope cannot carry a session certificate')
  const cacheKey = env.from + '\n' + wire
  let hit = linkCache.get(cacheKey)
  if (hit === undefined) {
    try {
      const pem = certFromWire(wire)
      // checked at its own start here: its validity is checked against `ts` below
      const link = verifySessionLink(pem, env.from, parseCert(pem).notBefore)
      hit = { key: publicKeyObjectFromRaw(link.publicKey), notBefore: link.notBefore.getTime(), notAfter: link.notAfter.getTime() }
    } catch (err) {
      hit = err instanceof CertificateError ? err : new CertificateError(ErrorCode.CertInvalid, `session certificate: cannot be read (${(err as Error).message})`, { cause: err })
    }
    if (linkCache.size >= MAX_CACHED) linkCache.delete(linkCache.keys().next().value as string)
    linkCache.set(cacheKey, hit)
  }
  if (hit instanceof CertificateError) throw hit
  if (env.ts < hit.notBefore || env.ts > hit.notAfter) {
    throw new CertificateError(ErrorCode.CertExpired,
      `session certificate: the envelope is dated ${new Date(env.ts).toISOString()}, outside the certificate's validity (${new Date(hit.notBefore).toISOString()} to ${new Date(hit.notAfter).toISOString()})`, { index: 0 })
  }
  return hit.key
}

// ---------------------------------------------------------------------------------------------
// On disk

/** Writes a session: `certPath` (the chain, 0644) and `keyPath` (the session key, PKCS#8 PEM, 0600). */
export function saveSession (paths: { cert: string, key: string }, keys: KeyPair, chainPem: readonly string[]): void {
  const pkcs8 = keys.privateKeyObject.export({ format: 'pem', type: 'pkcs8' }).toString()
  try { writeSecretFile(paths.key, pkcs8) } catch (cause) {
    throw new AgentMeshError(ErrorCode.DataDir, `cannot write ${paths.key}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  writePublicFile(paths.cert, chainPem.join(''))
}

function readText (path: string, what: string): string {
  try { return readFileSync(path, 'utf8') } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    throw new AgentMeshError(code === 'ENOENT' ? ErrorCode.InvalidArgument : ErrorCode.DataDir,
      code === 'ENOENT' ? `${what} ${path} does not exist; issue a session with \`agentmesh cert session\`` : `cannot read ${path}: ${code ?? String(cause)}`, { cause })
  }
}

/** The key file next to a session certificate file: `session.pem` → `session.key`. */
export function sessionKeyPath (certPath: string): string {
  return certPath.endsWith('.pem') ? certPath.slice(0, -4) + '.key' : certPath + '.key'
}

/**
 * Loads a session from its certificate file (the chain, session certificate first) and its key file
 * (default: next to it, `.key`), checking that the key is the certificate's and that the certificate
 * is a session certificate of its agent, valid `now`. The AMID is the certificate's.
 */
export function loadSession (certPath: string, opts: { keyPath?: string, now?: Date } = {}): Session {
  const keyPath = opts.keyPath ?? sessionKeyPath(certPath)
  const chainPem = splitPem(readText(certPath, 'the session certificate file'), 'CERTIFICATE')
  if (chainPem.length === 0) throw new CertificateError(ErrorCode.CertInvalid, `${certPath} holds no certificate (no "-----BEGIN CERTIFICATE-----" block)`)
  let secret: Uint8Array
  try {
    const jwk = createPrivateKey({ key: readText(keyPath, 'the session key file'), format: 'pem' }).export({ format: 'jwk' })
    if (jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') throw new Error('not Ed25519')
    secret = fromB64u(jwk.d)
  } catch (cause) {
    if (cause instanceof AgentMeshError) throw cause
    throw new AgentMeshError(ErrorCode.CertInvalid, `${keyPath} is not an Ed25519 private key (PKCS#8 PEM)`, { cause })
  }
  const keys = keyPairFromSecret(secret)
  let cert: X509Certificate
  try { cert = parseCert(chainPem[0]!) } catch (cause) {
    throw new CertificateError(ErrorCode.CertInvalid, `${certPath}: the session certificate cannot be parsed (${(cause as Error).message})`, { index: 0, cause })
  }
  const { san } = amidsOf(cert)
  const amid = san[0]
  if (amid === undefined) throw new CertificateError(ErrorCode.CertInvalid, `${certPath}: the first certificate names no agent; it is not a session certificate`)
  const link = verifySessionLink(chainPem[0]!, amid, opts.now ?? new Date())
  if (amidFromPublicKey(link.publicKey) !== amidFromPublicKey(keys.publicKey)) {
    throw new CertificateError(ErrorCode.CertInvalid, `${keyPath} is not the key of the session certificate in ${certPath}`)
  }
  return {
    amid,
    keys,
    chainPem,
    cert: certToWire(chainPem[0]!),
    chain: chainPem.slice(1).map(certToWire),
    serial: link.serial,
    notAfter: link.notAfter,
  }
}
