/**
 * Prekeys for PQXDH (Signal, "The PQXDH Key Agreement Protocol", revision 3, §3.2).
 *
 * An agent's identity is its Ed25519 key (the AMID). Signal's identity key IK is one curve25519
 * key that both signs (XEdDSA) and does Diffie-Hellman; here those two roles are two keys: an
 * X25519 *exchange key* plays IK in every DH, and the Ed25519 identity signs it. The identity
 * also signs the signed prekey SPK, the ML-KEM-768 last-resort prekey PQSPK and each ML-KEM-768
 * one-time prekey PQOPK (§3.2: "a set of signed one-time pqkem prekeys"). One-time curve prekeys
 * OPK are unsigned, as in the spec.
 *
 * Every signature covers a domain-separation prefix followed by the encoded key. (The spec signs
 * Encode(PK) alone; here one Ed25519 key also signs envelopes, HTTP requests and challenges, and
 * the exchange key and the signed prekey encode alike, so each use gets its own prefix.) A one-time
 * PQ prekey's signature also covers its id (uint32, big-endian, between the prefix and the key):
 * a relay can neither pass one off as the last-resort key nor hand one out under another id.
 *
 * Private parts live in a {@link PreKeyStore}; the public parts travel as a {@link PreKeyBundle}.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import { keyForAmid } from './envelope.ts'
import { decodeB64u, hkdfSha256, isUint32 } from './kdf.ts'
import { isAmid, publicKeyFromAmid, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'
import { encodeX25519, forgetX25519PrivateKey, generateX25519KeyPair, x25519KeyPairFromSecret, type X25519KeyPair } from './x25519.ts'

/** Type byte of EncodeKEM for ML-KEM-768 (PQXDH §2.1 asks for one distinct from the curve's). AgentMesh's own value. */
export const KEY_TYPE_ML_KEM_768 = 0x09
/** Type byte of an encoded Ed25519 identity key in the associated data. AgentMesh's own value. */
export const KEY_TYPE_ED25519 = 0x06
/** FIPS 203 Table 3: ML-KEM-768 sizes in bytes. */
export const ML_KEM_768_PUBLIC_KEY_BYTES = 1184
export const ML_KEM_768_SECRET_KEY_BYTES = 2400
export const ML_KEM_768_CIPHERTEXT_BYTES = 1088

/** Domain-separation prefixes of the prekey signatures (see the file comment). */
export const EXCHANGE_KEY_SIGNING_PREFIX = 'agentmesh/exchange-key\n'
export const SIGNED_PREKEY_SIGNING_PREFIX = 'agentmesh/signed-prekey\n'
export const PQ_PREKEY_SIGNING_PREFIX = 'agentmesh/pq-prekey\n'
export const PQ_ONE_TIME_PREKEY_SIGNING_PREFIX = 'agentmesh/pq-one-time-prekey\n'

/**
 * How often the signed prekey and the last-resort PQ prekey are replaced. PQXDH §3.2: Bob uploads
 * new signed prekeys "periodically (e.g. once a week or once a month)".
 */
export const DEFAULT_PREKEY_ROTATION_MS = 7 * 24 * 60 * 60 * 1000
/**
 * How long a replaced signed / PQ prekey's private key is kept. X3DH §3.2 (which PQXDH follows):
 * Bob "may keep the private key corresponding to the previous signed prekey around for some period
 * of time, to handle messages using it that have been delayed in transit. Eventually, Bob should
 * delete this private key for forward secrecy." An initial message can wait at the relay for its
 * whole retention, so the default is the relay's retention (docs/protocol.md §5).
 */
export const DEFAULT_PREKEY_GRACE_MS = constants.DEFAULT_RETENTION_MS

const enc = new TextEncoder()
const EXCHANGE_PREFIX = enc.encode(EXCHANGE_KEY_SIGNING_PREFIX)
const SPK_PREFIX = enc.encode(SIGNED_PREKEY_SIGNING_PREFIX)
const PQ_PREFIX = enc.encode(PQ_PREKEY_SIGNING_PREFIX)
const PQ_ONE_TIME_PREFIX = enc.encode(PQ_ONE_TIME_PREKEY_SIGNING_PREFIX)

/** EncodeKEM (PQXDH §2.1): the KEM's type byte followed by the encapsulation key. */
export function encodeMlKem768 (publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + publicKey.length)
  out[0] = KEY_TYPE_ML_KEM_768
  out.set(publicKey, 1)
  return out
}

/** An Ed25519 identity key with its type byte, for the associated data. */
export function encodeEd25519 (publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(33)
  out[0] = KEY_TYPE_ED25519
  out.set(publicKey, 1)
  return out
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

export function exchangeKeySigningBytes (publicKey: Uint8Array): Uint8Array { return concat(EXCHANGE_PREFIX, encodeX25519(publicKey)) }
export function signedPreKeySigningBytes (publicKey: Uint8Array): Uint8Array { return concat(SPK_PREFIX, encodeX25519(publicKey)) }
export function pqPreKeySigningBytes (publicKey: Uint8Array): Uint8Array { return concat(PQ_PREFIX, encodeMlKem768(publicKey)) }
/** What a one-time PQ prekey's signature covers: the prefix, its id (uint32 big-endian), EncodeKEM(key). */
export function pqOneTimePreKeySigningBytes (id: number, publicKey: Uint8Array): Uint8Array {
  const idBytes = new Uint8Array(4)
  new DataView(idBytes.buffer).setUint32(0, id)
  return concat(concat(PQ_ONE_TIME_PREFIX, idBytes), encodeMlKem768(publicKey))
}

// ---------------------------------------------------------------------------------------------
// private records

/** The agent's X25519 exchange identity key, signed by its Ed25519 identity. */
export interface ExchangeKeyPair extends X25519KeyPair {
  /** Ed25519 signature over {@link exchangeKeySigningBytes} by the identity. */
  readonly signature: Uint8Array
}

export interface SignedPreKeyRecord {
  readonly id: number
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
  readonly signature: Uint8Array
  /** ms since the epoch */
  readonly createdAt: number
}

export interface OneTimePreKeyRecord {
  readonly id: number
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
}

/** The ML-KEM-768 last-resort prekey (PQSPK). */
export interface PqPreKeyRecord {
  readonly id: number
  /** 1,184-byte encapsulation key */
  readonly publicKey: Uint8Array
  /** 2,400-byte decapsulation key */
  readonly secretKey: Uint8Array
  readonly signature: Uint8Array
  /** ms since the epoch */
  readonly createdAt: number
}

/** An ML-KEM-768 one-time prekey (PQOPK): signed, used by one session set-up, then deleted. */
export interface PqOneTimePreKeyRecord {
  readonly id: number
  /** 1,184-byte encapsulation key */
  readonly publicKey: Uint8Array
  /** 2,400-byte decapsulation key */
  readonly secretKey: Uint8Array
  /** Ed25519 signature over {@link pqOneTimePreKeySigningBytes} by the identity */
  readonly signature: Uint8Array
}

/** A new exchange key for `identity`. The caller keeps its secretKey next to the identity's. */
export function generateExchangeKey (identity: KeyPair): ExchangeKeyPair {
  return signExchangeKey(identity, generateX25519KeyPair())
}

const EXCHANGE_DERIVE_SALT = new TextEncoder().encode('agentmesh exchange key')
const EXCHANGE_DERIVE_INFO = new TextEncoder().encode('v1')

/**
 * The exchange key derived from the identity key (HKDF-SHA-256): the same identity always has the
 * same exchange key, so an agent that lost its state (sessions, prekeys) still publishes the key
 * its peers first saw, and they need not re-verify it. Whoever holds the identity key holds this
 * key anyway: the identity key signs it and seals the agent's state.
 */
export function deriveExchangeKey (identity: KeyPair): ExchangeKeyPair {
  const secret = hkdfSha256(identity.secretKey, EXCHANGE_DERIVE_SALT, EXCHANGE_DERIVE_INFO, 32)
  try {
    return exchangeKeyFromSecret(identity, secret)
  } finally {
    secret.fill(0)
  }
}

/** The exchange key from its saved 32-byte secret (the signature is deterministic, RFC 8032). */
export function exchangeKeyFromSecret (identity: KeyPair, secretKey: Uint8Array): ExchangeKeyPair {
  return signExchangeKey(identity, x25519KeyPairFromSecret(secretKey))
}

function signExchangeKey (identity: KeyPair, kp: X25519KeyPair): ExchangeKeyPair {
  return { ...kp, signature: signBytes(identity.privateKeyObject, exchangeKeySigningBytes(kp.publicKey)) }
}

function checkId (id: number, what: string): void {
  if (!isUint32(id)) throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} id must be an integer in 0…4294967295, got ${String(id)}`)
}

export function generateSignedPreKey (identity: KeyPair, id: number, opts: { now: number }): SignedPreKeyRecord {
  checkId(id, 'signed prekey')
  const kp = generateX25519KeyPair()
  return {
    id,
    publicKey: kp.publicKey,
    secretKey: kp.secretKey,
    signature: signBytes(identity.privateKeyObject, signedPreKeySigningBytes(kp.publicKey)),
    createdAt: opts.now,
  }
}

/** `count` one-time prekeys with ids `firstId`, `firstId + 1`, … */
export function generateOneTimePreKeys (firstId: number, count: number): OneTimePreKeyRecord[] {
  checkId(firstId, 'one-time prekey')
  checkId(firstId + Math.max(count - 1, 0), 'one-time prekey')
  const out: OneTimePreKeyRecord[] = []
  for (let i = 0; i < count; i++) {
    const kp = generateX25519KeyPair()
    out.push({ id: firstId + i, publicKey: kp.publicKey, secretKey: kp.secretKey })
  }
  return out
}

export function generatePqPreKey (identity: KeyPair, id: number, opts: { now: number }): PqPreKeyRecord {
  checkId(id, 'PQ prekey')
  const { publicKey, secretKey } = ml_kem768.keygen()
  return {
    id,
    publicKey,
    secretKey,
    signature: signBytes(identity.privateKeyObject, pqPreKeySigningBytes(publicKey)),
    createdAt: opts.now,
  }
}

/**
 * `count` signed one-time ML-KEM-768 prekeys with ids `firstId`, `firstId + 1`, … An ML-KEM-768 key
 * generation takes about 1.3 ms (measured with @noble/post-quantum on one core), so a batch of 20
 * about 25 ms; each record holds 1,184 + 2,400 bytes of keys.
 */
export function generatePqOneTimePreKeys (identity: KeyPair, firstId: number, count: number): PqOneTimePreKeyRecord[] {
  checkId(firstId, 'one-time PQ prekey')
  checkId(firstId + Math.max(count - 1, 0), 'one-time PQ prekey')
  const out: PqOneTimePreKeyRecord[] = []
  for (let i = 0; i < count; i++) {
    const id = firstId + i
    const { publicKey, secretKey } = ml_kem768.keygen()
    out.push({ id, publicKey, secretKey, signature: signBytes(identity.privateKeyObject, pqOneTimePreKeySigningBytes(id, publicKey)) })
  }
  return out
}

/** True when a signed or PQ prekey created at `createdAt` is due for replacement at `now`. */
export function needsRotation (prekey: { readonly createdAt: number }, now: number, intervalMs = DEFAULT_PREKEY_ROTATION_MS): boolean {
  return now - prekey.createdAt >= intervalMs
}

// ---------------------------------------------------------------------------------------------
// the store

/**
 * Where an agent keeps its prekeys' private parts (libsignal's PreKeyStore / SignedPreKeyStore /
 * KyberPreKeyStore in one). Records are handed out as they were stored.
 */
export interface PreKeyStore {
  storeSignedPreKey (record: SignedPreKeyRecord): Promise<void>
  loadSignedPreKey (id: number): Promise<SignedPreKeyRecord | undefined>
  listSignedPreKeys (): Promise<SignedPreKeyRecord[]>
  removeSignedPreKey (id: number): Promise<void>

  storeOneTimePreKeys (records: readonly OneTimePreKeyRecord[]): Promise<void>
  loadOneTimePreKey (id: number): Promise<OneTimePreKeyRecord | undefined>
  /**
   * Deletes it, answering whether it was there. Atomic: of concurrent calls for one id exactly one
   * answers true, which is what makes a one-time prekey usable once.
   */
  removeOneTimePreKey (id: number): Promise<boolean>
  countOneTimePreKeys (): Promise<number>

  storePqPreKey (record: PqPreKeyRecord): Promise<void>
  loadPqPreKey (id: number): Promise<PqPreKeyRecord | undefined>
  listPqPreKeys (): Promise<PqPreKeyRecord[]>
  removePqPreKey (id: number): Promise<void>

  storePqOneTimePreKeys (records: readonly PqOneTimePreKeyRecord[]): Promise<void>
  loadPqOneTimePreKey (id: number): Promise<PqOneTimePreKeyRecord | undefined>
  /** Deletes it, answering whether it was there; atomic like {@link removeOneTimePreKey}. */
  removePqOneTimePreKey (id: number): Promise<boolean>
  countPqOneTimePreKeys (): Promise<number>
}

/** A {@link PreKeyStore} in memory (tests, short-lived agents). */
export function memoryPreKeyStore (): PreKeyStore {
  const signed = new Map<number, SignedPreKeyRecord>()
  const oneTime = new Map<number, OneTimePreKeyRecord>()
  const pq = new Map<number, PqPreKeyRecord>()
  const pqOneTime = new Map<number, PqOneTimePreKeyRecord>()
  return {
    async storeSignedPreKey (r) { signed.set(r.id, r) },
    async loadSignedPreKey (id) { return signed.get(id) },
    async listSignedPreKeys () { return [...signed.values()] },
    async removeSignedPreKey (id) { signed.delete(id) },
    async storeOneTimePreKeys (rs) { for (const r of rs) oneTime.set(r.id, r) },
    async loadOneTimePreKey (id) { return oneTime.get(id) },
    async removeOneTimePreKey (id) { return oneTime.delete(id) },
    async countOneTimePreKeys () { return oneTime.size },
    async storePqPreKey (r) { pq.set(r.id, r) },
    async loadPqPreKey (id) { return pq.get(id) },
    async listPqPreKeys () { return [...pq.values()] },
    async removePqPreKey (id) { pq.delete(id) },
    async storePqOneTimePreKeys (rs) { for (const r of rs) pqOneTime.set(r.id, r) },
    async loadPqOneTimePreKey (id) { return pqOneTime.get(id) },
    async removePqOneTimePreKey (id) { return pqOneTime.delete(id) },
    async countPqOneTimePreKeys () { return pqOneTime.size },
  }
}

export interface RotateOptions {
  now: number
  /** @default DEFAULT_PREKEY_ROTATION_MS (7 days) */
  intervalMs?: number
  /** @default DEFAULT_PREKEY_GRACE_MS (the relay's retention, 30 days) */
  graceMs?: number
}

export interface RotateResult {
  /** The current signed prekey, new when `rotated.signed` */
  signedPreKey: SignedPreKeyRecord
  pqPreKey: PqPreKeyRecord
  rotated: { signed: boolean, pq: boolean }
  /** Ids of replaced keys deleted because their grace period ended */
  removed: { signed: number[], pq: number[] }
}

/**
 * Makes sure a current signed prekey and PQ last-resort prekey exist and are younger than the
 * rotation interval (a new one gets the next id), and deletes replaced ones whose grace period is
 * over. Upload the bundle base again when anything `rotated`.
 */
export async function rotatePreKeys (identity: KeyPair, store: PreKeyStore, opts: RotateOptions): Promise<RotateResult> {
  const intervalMs = opts.intervalMs ?? DEFAULT_PREKEY_ROTATION_MS
  const graceMs = opts.graceMs ?? DEFAULT_PREKEY_GRACE_MS
  if (!(intervalMs > 0)) throw new AgentMeshError(ErrorCode.InvalidArgument, `intervalMs must be > 0, got ${intervalMs}`)
  if (!(graceMs >= 0)) throw new AgentMeshError(ErrorCode.InvalidArgument, `graceMs must be ≥ 0, got ${graceMs}`)

  const signed = rotateOne(await store.listSignedPreKeys(), opts.now, intervalMs, graceMs,
    (id) => generateSignedPreKey(identity, id, { now: opts.now }))
  if (signed.created) await store.storeSignedPreKey(signed.current)
  for (const r of signed.expired) {
    await store.removeSignedPreKey(r.id)
    forgetX25519PrivateKey(r.secretKey)
  }

  const pq = rotateOne(await store.listPqPreKeys(), opts.now, intervalMs, graceMs,
    (id) => generatePqPreKey(identity, id, { now: opts.now }))
  if (pq.created) await store.storePqPreKey(pq.current)
  for (const r of pq.expired) await store.removePqPreKey(r.id)

  return {
    signedPreKey: signed.current,
    pqPreKey: pq.current,
    rotated: { signed: signed.created, pq: pq.created },
    removed: { signed: signed.expired.map(r => r.id), pq: pq.expired.map(r => r.id) },
  }
}

function rotateOne<R extends { id: number, createdAt: number }> (
  records: R[], now: number, intervalMs: number, graceMs: number, make: (id: number) => R,
): { current: R, created: boolean, expired: R[] } {
  const sorted = [...records].sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
  let current = sorted.at(-1)
  let created = false
  if (current === undefined || needsRotation(current, now, intervalMs)) {
    const next = sorted.length === 0 ? 1 : ((Math.max(...sorted.map(r => r.id)) + 1) % 0x100000000)
    current = make(next)
    sorted.push(current)
    created = true
  }
  // a key stopped being current when its successor was made; keep it for the grace period after that
  const expired: R[] = []
  for (let i = 0; i < sorted.length - 1; i++) {
    if (now - sorted[i + 1]!.createdAt >= graceMs) expired.push(sorted[i]!)
  }
  return { current, created, expired }
}

// ---------------------------------------------------------------------------------------------
// the bundle (public, JSON, base64url)

/**
 * What a peer needs to start a session (PQXDH §3.2): the owner's identity (AMID), its signed
 * exchange key, signed prekey, ML-KEM-768 last-resort prekey and, while any are left, one one-time
 * curve prekey and one signed one-time ML-KEM-768 prekey (used instead of the last-resort one).
 * The relay stores the fields other than `amid`, `one_time_prekey` and `pq_one_time_prekey` as the
 * prekey upload's `base` (docs/protocol.md, registry).
 */
export interface PreKeyBundle {
  amid: string
  exchange_key: string
  exchange_key_sig: string
  signed_prekey: { id: number, key: string, sig: string }
  one_time_prekey?: { id: number, key: string }
  pq_prekey: { id: number, key: string, sig: string }
  pq_one_time_prekey?: { id: number, key: string, sig: string }
}

/** The bundle fields uploaded as `base` (everything but `amid` and the one-time prekeys). */
export type PreKeyBundleBase = Omit<PreKeyBundle, 'amid' | 'one_time_prekey' | 'pq_one_time_prekey'>

export function preKeyBundleBase (exchangeKey: ExchangeKeyPair, spk: SignedPreKeyRecord, pq: PqPreKeyRecord): PreKeyBundleBase {
  return {
    exchange_key: toB64u(exchangeKey.publicKey),
    exchange_key_sig: toB64u(exchangeKey.signature),
    signed_prekey: { id: spk.id, key: toB64u(spk.publicKey), sig: toB64u(spk.signature) },
    pq_prekey: { id: pq.id, key: toB64u(pq.publicKey), sig: toB64u(pq.signature) },
  }
}

/** The public form of a one-time prekey, as uploaded and as put in a bundle. */
export function oneTimePreKeyPublic (opk: OneTimePreKeyRecord): { id: number, key: string } {
  return { id: opk.id, key: toB64u(opk.publicKey) }
}

/** The public form of a one-time PQ prekey, as uploaded and as put in a bundle. */
export function pqOneTimePreKeyPublic (r: PqOneTimePreKeyRecord): { id: number, key: string, sig: string } {
  return { id: r.id, key: toB64u(r.publicKey), sig: toB64u(r.signature) }
}

export function createPreKeyBundle (
  amid: string, exchangeKey: ExchangeKeyPair, spk: SignedPreKeyRecord, pq: PqPreKeyRecord, opk?: OneTimePreKeyRecord, pqOpk?: PqOneTimePreKeyRecord,
): PreKeyBundle {
  return {
    amid,
    ...preKeyBundleBase(exchangeKey, spk, pq),
    ...(opk === undefined ? {} : { one_time_prekey: oneTimePreKeyPublic(opk) }),
    ...(pqOpk === undefined ? {} : { pq_one_time_prekey: pqOneTimePreKeyPublic(pqOpk) }),
  }
}

/**
 * Checks a one-time PQ prekey `{ id, key, sig }` (as uploaded or bundled) against the identity in
 * `amid` and answers it decoded. Throws AM_ERR_BAD_PREKEY naming `field` and what failed (the
 * registry checks uploads with it, the initiator every bundle).
 */
export function verifyPqOneTimePreKey (amid: string, value: unknown, field = 'pq_one_time_prekey'): { id: number, key: Uint8Array } {
  const v = value as Record<string, unknown> | null
  if (typeof v !== 'object' || v === null || !isUint32(v.id)) throw new AgentMeshError(ErrorCode.BadPrekey, `${field}.id is not an integer in 0…4294967295`)
  const key = decodeB64u(v.key, ML_KEM_768_PUBLIC_KEY_BYTES)
  if (key === undefined) throw new AgentMeshError(ErrorCode.BadPrekey, `${field}.key is not a ${ML_KEM_768_PUBLIC_KEY_BYTES}-byte base64url ML-KEM-768 key`)
  const sig = decodeB64u(v.sig, 64)
  if (sig === undefined || !verifyBytes(keyForAmid(amid), pqOneTimePreKeySigningBytes(v.id, key), sig)) {
    throw new AgentMeshError(ErrorCode.BadPrekey, `${field}.sig does not verify with the identity of ${amid} (for id ${v.id})`)
  }
  return { id: v.id, key }
}

/** A bundle whose signatures verified, with its keys decoded. */
export interface VerifiedBundle {
  amid: string
  identityKey: Uint8Array
  exchangeKey: Uint8Array
  signedPreKey: { id: number, key: Uint8Array }
  oneTimePreKey?: { id: number, key: Uint8Array }
  pqPreKey: { id: number, key: Uint8Array }
  /** the one-time PQ prekey, signature checked: the initiator encapsulates to it instead of `pqPreKey` */
  pqOneTimePreKey?: { id: number, key: Uint8Array }
}

function badPrekey (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.BadPrekey, `prekey bundle: ${what}`)
}

/**
 * Checks a bundle's shape and its signatures (three, four with a one-time PQ prekey) against the identity in `amid`, and answers it
 * decoded. Throws AM_ERR_BAD_PREKEY naming the field that failed.
 */
export function verifyBundle (bundle: PreKeyBundle): VerifiedBundle {
  const b = bundle as unknown as Record<string, any>
  if (typeof b !== 'object' || b === null) throw badPrekey('not an object')
  if (typeof b.amid !== 'string' || !isAmid(b.amid)) throw badPrekey('amid is not an AMID')
  const identity = keyForAmid(b.amid)
  const identityKey = publicKeyFromAmid(b.amid)

  const exchangeKey = decodeB64u(b.exchange_key, 32)
  if (exchangeKey === undefined) throw badPrekey('exchange_key is not a 32-byte base64url key')
  const exchangeSig = decodeB64u(b.exchange_key_sig, 64)
  if (exchangeSig === undefined || !verifyBytes(identity, exchangeKeySigningBytes(exchangeKey), exchangeSig)) {
    throw badPrekey(`exchange_key_sig does not verify with the identity of ${b.amid}`)
  }

  const spk = b.signed_prekey
  if (typeof spk !== 'object' || spk === null || !isUint32(spk.id)) throw badPrekey('signed_prekey.id is not an integer in 0…4294967295')
  const spkKey = decodeB64u(spk.key, 32)
  if (spkKey === undefined) throw badPrekey('signed_prekey.key is not a 32-byte base64url key')
  const spkSig = decodeB64u(spk.sig, 64)
  if (spkSig === undefined || !verifyBytes(identity, signedPreKeySigningBytes(spkKey), spkSig)) {
    throw badPrekey(`signed_prekey.sig does not verify with the identity of ${b.amid}`)
  }

  const pq = b.pq_prekey
  if (typeof pq !== 'object' || pq === null || !isUint32(pq.id)) throw badPrekey('pq_prekey.id is not an integer in 0…4294967295')
  const pqKey = decodeB64u(pq.key, ML_KEM_768_PUBLIC_KEY_BYTES)
  if (pqKey === undefined) throw badPrekey(`pq_prekey.key is not a ${ML_KEM_768_PUBLIC_KEY_BYTES}-byte base64url ML-KEM-768 key`)
  const pqSig = decodeB64u(pq.sig, 64)
  if (pqSig === undefined || !verifyBytes(identity, pqPreKeySigningBytes(pqKey), pqSig)) {
    throw badPrekey(`pq_prekey.sig does not verify with the identity of ${b.amid}`)
  }

  let oneTimePreKey: VerifiedBundle['oneTimePreKey']
  const opk = b.one_time_prekey
  if (opk !== undefined && opk !== null) { // absent (or null) when the relay had none left
    if (typeof opk !== 'object' || opk === null || !isUint32(opk.id)) throw badPrekey('one_time_prekey.id is not an integer in 0…4294967295')
    const key = decodeB64u(opk.key, 32)
    if (key === undefined) throw badPrekey('one_time_prekey.key is not a 32-byte base64url key')
    oneTimePreKey = { id: opk.id, key }
  }

  // a relay that swaps in a KEM key of its own cannot sign it: the bundle is refused
  let pqOneTimePreKey: VerifiedBundle['pqOneTimePreKey']
  if (b.pq_one_time_prekey !== undefined && b.pq_one_time_prekey !== null) {
    try {
      pqOneTimePreKey = verifyPqOneTimePreKey(b.amid, b.pq_one_time_prekey)
    } catch (err) {
      throw badPrekey((err as Error).message)
    }
  }

  return {
    amid: b.amid,
    identityKey,
    exchangeKey,
    signedPreKey: { id: spk.id, key: spkKey },
    ...(oneTimePreKey === undefined ? {} : { oneTimePreKey }),
    pqPreKey: { id: pq.id, key: pqKey },
    ...(pqOneTimePreKey === undefined ? {} : { pqOneTimePreKey }),
  }
}
