/**
 * The Double Ratchet (Signal, "The Double Ratchet Algorithm", revision 1, §3), without header
 * encryption, on Node's crypto:
 *
 *   GENERATE_DH / DH   X25519 (x25519.ts)
 *   KDF_RK(rk, dh)     HKDF-SHA256, salt = rk, IKM = dh, info = "AgentMesh_Ratchet_RootKey" → 64 B (§5.2)
 *   KDF_CK(ck)         HMAC-SHA256(ck, 0x01) = message key, HMAC-SHA256(ck, 0x02) = next chain key (§5.2)
 *   ENCRYPT(mk, p, ad) AES-256-GCM; key and nonce = HKDF-SHA256(salt = 32 zero bytes, IKM = mk,
 *                      info = "AgentMesh_Ratchet_MessageKeys") → 32 + 12 B. §5.2 recommends this HKDF
 *                      split with CBC + HMAC (80 B: key, MAC key, IV); an AEAD needs only key + nonce,
 *                      and §3.1 allows a nonce derived from mk since each mk is used once.
 *   HEADER(dh, pn, n)  EncodeEC(dh) || uint32be(pn) || uint32be(n), 41 bytes
 *   CONCAT(ad, header) ad || header (the header has a fixed length, so the pair parses uniquely),
 *                      followed by the envelope's header binding when the caller gives one
 *                      (`binding`: envelope.ts envelopeHeaderBinding, for an agentmesh/0.3 envelope,
 *                      docs/protocol.md §14.3): AD has a fixed length per session and HEADER 41
 *                      bytes, so ad || header || binding parses uniquely too, and a message sealed
 *                      with a binding never opens without it (or with another one), nor the
 *                      other way round
 *
 * The state is plain JSON (keys in base64url), and every function answers a new state without
 * touching the one it was given: a caller persists "new state + decrypted message" together, and
 * on any error the old state is simply still current (§3.5: "changes to the state object are
 * discarded").
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { decodeB64u, hkdfSha256, hkdfSha256Short, hmacSha256, isUint32 } from './kdf.ts'
import { toB64u } from './keys.ts'
import type { InitialMessageHeader } from './pqxdh.ts'
import {
  KEY_TYPE_X25519, cacheX25519PrivateKey, forgetX25519PrivateKey, generateX25519KeyPair, x25519, x25519PrivateKeyObject,
  x25519PublicKeyObject,
} from './x25519.ts'

/**
 * Most message keys one message may make the receiver skip in a chain. §3.2: MAX_SKIP "should be
 * set high enough to tolerate routine lost or delayed messages, but low enough that a malicious
 * sender can't trigger excessive recipient computation". §3.5: exceeding it raises an error.
 */
export const DEFAULT_MAX_SKIP = 1000
/**
 * Most skipped message keys a session holds; past it the oldest are deleted. §6.4: storing skipped
 * keys lets a compromise expose them, so implementations should delete them after some number of
 * messages or some time. One message may not skip more than this in total either.
 */
export const DEFAULT_MAX_SKIPPED_TOTAL = 2000
/**
 * How long skipped message keys are kept (§6.4: "after some number of messages or some time"): a
 * message can wait at the relay for its retention (30 days), not longer, so a key skipped longer
 * ago than that opens nothing that can still arrive. Applied per chain, from the first key it skipped.
 */
export const DEFAULT_MAX_SKIPPED_AGE_MS = 30 * 24 * 60 * 60 * 1000
/**
 * Ended receiving chains remembered (their ratchet key and length), so a message from one of them
 * whose key is gone is told apart as a replay. Older chains' leftover skipped keys still work.
 */
const MAX_REMEMBERED_CHAINS = 64

const enc = new TextEncoder()
const RK_INFO = enc.encode('AgentMesh_Ratchet_RootKey')
const MK_INFO = enc.encode('AgentMesh_Ratchet_MessageKeys')
const ZERO_SALT = new Uint8Array(32)
const CK_MESSAGE = new Uint8Array([0x01])
const CK_CHAIN = new Uint8Array([0x02])
const HEADER_BYTES = 41
const TAG_BYTES = 16

/** Message header (§3.1 HEADER): the sender's ratchet key, previous chain length, message number. */
export interface RatchetHeader {
  /** the sender's current ratchet public key (base64url) */
  dh: string
  pn: number
  n: number
}

export interface RatchetMessage {
  header: RatchetHeader
  /** AES-256-GCM ciphertext followed by its 16-byte tag */
  ciphertext: Uint8Array
  /** PQXDH header, on the initiator's messages until it has decrypted a reply (PQXDH §3.3) */
  prekey?: InitialMessageHeader
}

/** The session state (§3.2), JSON as it is: keys in base64url, null for "None". */
export interface RatchetState {
  v: 1
  /** AD from PQXDH, the prefix of every message's associated data */
  ad: string
  /** DHs: our ratchet key pair */
  dhs: { pub: string, priv: string }
  /** DHr: the peer's ratchet public key */
  dhr: string | null
  rk: string
  cks: string | null
  ckr: string | null
  ns: number
  nr: number
  pn: number
  /** MKSKIPPED as [ratchet key, n, message key], oldest first */
  skipped: Array<[string, number, string]>
  /** ended receiving chains as [ratchet key, messages derived], oldest first */
  chains: Array<[string, number]>
  /** per chain, [ratchet key, 1 + the highest n whose skipped key was evicted], to word the replay error */
  evicted: Array<[string, number]>
  /** per chain holding skipped keys, [ratchet key, ms since the epoch when it first skipped one] (states made before have none) */
  skipped_at?: Array<[string, number]>
  /** the PQXDH ephemeral key this session was agreed with: a later initial message with the same one belongs here */
  base: string | null
  /** initiator only: the PQXDH header to send along until a reply has decrypted */
  prekey?: InitialMessageHeader
  /** ms since the epoch */
  created_at: number
}

export interface RatchetLimits {
  /** @default DEFAULT_MAX_SKIP (1000) */
  maxSkip?: number
  /** @default DEFAULT_MAX_SKIPPED_TOTAL (2000) */
  maxSkippedTotal?: number
  /** Now (ms since the epoch): given, skipped keys are dated and those older than `maxSkippedAgeMs` deleted. */
  now?: number
  /** @default DEFAULT_MAX_SKIPPED_AGE_MS (30 days) */
  maxSkippedAgeMs?: number
}

function b64 (s: string): Buffer {
  return Buffer.from(s, 'base64url')
}

/** KDF_RK (§5.2): HKDF with rk as salt and the DH output as input key material. */
function kdfRk (rk: Uint8Array, dhOut: Uint8Array): [Buffer, Buffer] {
  const out = hkdfSha256(dhOut, rk, RK_INFO, 64)
  dhOut.fill(0)
  return [out.subarray(0, 32), out.subarray(32, 64)]
}

/**
 * AD || EncodeEC(dh) for each ratchet key seen lately, as bytes, so that a message only writes its
 * pn and n instead of decoding the AD and the key from base64url again. Public values only (the
 * AD holds identity and exchange keys), bounded, oldest first out.
 */
const AAD_CACHE_MAX = 1024
const aadCache = new Map<string, { ad: string, bytes: Buffer }>()

/**
 * AD || HEADER(dh, pn, n), `dh` in base64url as a header or state holds it (already checked to be
 * a 32-byte key). The answer is only good until the next call: it is shared, and read at once by
 * setAAD, which copies it.
 */
function associatedData (ad: string, dh: string, pn: number, n: number): Buffer {
  let e = aadCache.get(dh)
  if (e === undefined || e.ad !== ad) {
    const prefix = b64(ad)
    const bytes = Buffer.alloc(prefix.length + HEADER_BYTES)
    prefix.copy(bytes, 0)
    bytes[prefix.length] = KEY_TYPE_X25519
    bytes.set(b64(dh), prefix.length + 1)
    if (e === undefined && aadCache.size >= AAD_CACHE_MAX) aadCache.delete(aadCache.keys().next().value as string)
    e = { ad, bytes }
    aadCache.set(dh, e)
  }
  const out = e.bytes
  out.writeUInt32BE(pn, out.length - 8)
  out.writeUInt32BE(n, out.length - 4)
  return out
}

/** AES-256-GCM's associated data is aad || binding: two setAAD calls feed GHASH the concatenation. */
function seal (mk: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, binding?: Uint8Array): Uint8Array {
  const okm = hkdfSha256Short(mk, ZERO_SALT, MK_INFO, 44)
  const c = createCipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44))
  c.setAAD(aad)
  if (binding !== undefined) c.setAAD(binding)
  const body = c.update(plaintext)
  const last = c.final()
  const tag = c.getAuthTag()
  okm.fill(0)
  const out = new Uint8Array(body.length + last.length + TAG_BYTES)
  out.set(body, 0)
  out.set(last, body.length)
  out.set(tag, body.length + last.length)
  return out
}

function open (mk: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array, binding?: Uint8Array): Uint8Array {
  const okm = hkdfSha256Short(mk, ZERO_SALT, MK_INFO, 44)
  try {
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44))
    d.setAAD(aad)
    if (binding !== undefined) d.setAAD(binding)
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES))
    const body = d.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES))
    const last = d.final()
    return last.length === 0 ? body : Buffer.concat([body, last])
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DecryptFailed,
      'the message did not authenticate: it was altered, or encrypted for another session', { cause })
  } finally {
    okm.fill(0)
  }
}

function tooFarAhead (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.TooFarAhead, what)
}

/**
 * RatchetInitAlice (§3.3) for the PQXDH initiator: `peerRatchetKey` is the responder's signed
 * prekey (§5.1). Pass the PQXDH header as `prekey` so it goes out with each message until a reply.
 */
export function ratchetInitAlice (
  sharedSecret: Uint8Array, associatedData: Uint8Array, peerRatchetKey: Uint8Array, opts: { now: number, prekey?: InitialMessageHeader },
): RatchetState {
  const dhs = generateX25519KeyPair()
  const [rk, cks] = kdfRk(sharedSecret, x25519(dhs.privateKeyObject, peerRatchetKey))
  cacheX25519PrivateKey(dhs)
  return {
    v: 1,
    ad: toB64u(associatedData),
    dhs: { pub: toB64u(dhs.publicKey), priv: toB64u(dhs.secretKey) },
    dhr: toB64u(peerRatchetKey),
    rk: toB64u(rk),
    cks: toB64u(cks),
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: [],
    chains: [],
    evicted: [],
    base: opts.prekey?.ephemeral_key ?? null,
    ...(opts.prekey === undefined ? {} : { prekey: opts.prekey }),
    created_at: opts.now,
  }
}

/** RatchetInitBob (§3.3) for the PQXDH responder: `myRatchetKey` is its signed prekey (§5.1). */
export function ratchetInitBob (
  sharedSecret: Uint8Array, associatedData: Uint8Array, myRatchetKey: { publicKey: Uint8Array, secretKey: Uint8Array },
  opts: { now: number, base?: string },
): RatchetState {
  return {
    v: 1,
    ad: toB64u(associatedData),
    dhs: { pub: toB64u(myRatchetKey.publicKey), priv: toB64u(myRatchetKey.secretKey) },
    dhr: null,
    rk: toB64u(sharedSecret),
    cks: null,
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: [],
    chains: [],
    evicted: [],
    base: opts.base ?? null,
    created_at: opts.now,
  }
}

/**
 * RatchetEncrypt (§3.4). Answers the message and the state to keep; `state` is left as it was.
 * `binding`: the envelope's header binding (envelopeHeaderBinding), appended to the associated
 * data; the receiver must give the same one to ratchetDecrypt.
 */
export function ratchetEncrypt (state: RatchetState, plaintext: Uint8Array, binding?: Uint8Array): { state: RatchetState, message: RatchetMessage } {
  if (state.cks === null) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, 'this session cannot send yet: the responder sends only after decrypting the first message')
  }
  if (state.ns > 0xffffffff) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this sending chain is exhausted (2^32 messages)')
  const ck = b64(state.cks)
  const mk = hmacSha256(ck, CK_MESSAGE)
  const nextCk = hmacSha256(ck, CK_CHAIN)
  const header: RatchetHeader = { dh: state.dhs.pub, pn: state.pn, n: state.ns }
  const ciphertext = seal(mk, plaintext, associatedData(state.ad, state.dhs.pub, state.pn, state.ns), binding)
  mk.fill(0)
  return {
    state: { ...state, cks: toB64u(nextCk), ns: state.ns + 1 },
    message: state.prekey === undefined ? { header, ciphertext } : { header, ciphertext, prekey: state.prekey },
  }
}

function malformed (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.DecryptFailed, `malformed message: ${what}`)
}

/** The eviction marks after deleting `gone` skipped keys. */
function evictedAfter (state: RatchetState, gone: RatchetState['skipped']): RatchetState['evicted'] {
  const marks = new Map(state.evicted)
  for (const [dh, n] of gone) {
    if ((marks.get(dh) ?? 0) <= n) { marks.delete(dh); marks.set(dh, n + 1) }
  }
  const evicted = [...marks]
  return evicted.length > MAX_REMEMBERED_CHAINS ? evicted.slice(evicted.length - MAX_REMEMBERED_CHAINS) : evicted
}

/** The chains' dates, with `added`'s chains dated `now` when new, and chains without skipped keys left out. */
function datedSkipped (state: RatchetState, skipped: RatchetState['skipped'], added: RatchetState['skipped'], now: number | undefined): Pick<RatchetState, 'skipped_at'> {
  if (now === undefined && state.skipped_at === undefined) return {}
  const at = new Map(state.skipped_at ?? [])
  if (now !== undefined) for (const [dh] of added) if (!at.has(dh)) at.set(dh, now)
  const holding = new Set(skipped.map(s => s[0]))
  return { skipped_at: [...at].filter(([dh]) => holding.has(dh)) }
}

/** Appends newly skipped keys, deleting the oldest past the bound (§6.4) and noting what went. */
function withSkipped (state: RatchetState, added: RatchetState['skipped'], max: number, now?: number): Pick<RatchetState, 'skipped' | 'evicted' | 'skipped_at'> {
  if (added.length === 0) return { skipped: state.skipped, evicted: state.evicted, ...(state.skipped_at === undefined ? {} : { skipped_at: state.skipped_at }) }
  const all = state.skipped.concat(added)
  if (all.length <= max) return { skipped: all, evicted: state.evicted, ...datedSkipped(state, all, added, now) }
  const gone = all.length - max
  const skipped = all.slice(gone)
  return { skipped, evicted: evictedAfter(state, all.slice(0, gone)), ...datedSkipped(state, skipped, added, now) }
}

/**
 * Deletes the skipped keys of chains that first skipped one longer than `maxAgeMs` before `now`
 * (§6.4), noting them as evicted so a late copy is told apart as such. `state` is left as it was.
 */
export function expireSkipped (state: RatchetState, now: number, maxAgeMs = DEFAULT_MAX_SKIPPED_AGE_MS): RatchetState {
  // the usual case, on every message: no skipped keys, or none old enough (nothing allocated)
  const dated = state.skipped_at
  if (dated === undefined || !dated.some(([, at]) => at < now - maxAgeMs)) return state
  const old = new Set(dated.filter(([, at]) => at < now - maxAgeMs).map(([dh]) => dh))
  if (old.size === 0) return state
  const gone = state.skipped.filter(s => old.has(s[0]))
  return {
    ...state,
    skipped: state.skipped.filter(s => !old.has(s[0])),
    evicted: evictedAfter(state, gone),
    skipped_at: state.skipped_at!.filter(([dh]) => !old.has(dh)),
  }
}

/** The state after a successful decrypt: the initiator stops sending its PQXDH header (PQXDH §3.3). */
function received (state: RatchetState, changes: Partial<RatchetState>): RatchetState {
  const next = { ...state, ...changes }
  if (next.prekey !== undefined) delete next.prekey
  return next
}

/**
 * RatchetDecrypt (§3.5). Answers the plaintext and the state to keep; `state` is left as it was,
 * also when it throws:
 * - AM_ERR_DECRYPT_FAILED: the message is malformed or does not authenticate (altered, another session);
 * - AM_ERR_MESSAGE_REPLAYED: its message key was already used (or, if it was skipped, since evicted);
 * - AM_ERR_TOO_FAR_AHEAD: it would skip more than `maxSkip` keys in a chain or `maxSkippedTotal` in all.
 * `binding`: the header binding of the envelope that carried the message, as the sender gave it to
 * ratchetEncrypt (none for an agentmesh/0.2 envelope); another one fails as AM_ERR_DECRYPT_FAILED.
 */
export function ratchetDecrypt (
  given: RatchetState, message: RatchetMessage, limits: RatchetLimits = {}, binding?: Uint8Array,
): { state: RatchetState, plaintext: Uint8Array } {
  const maxSkip = limits.maxSkip ?? DEFAULT_MAX_SKIP
  const maxTotal = limits.maxSkippedTotal ?? DEFAULT_MAX_SKIPPED_TOTAL
  const now = limits.now
  const state = now === undefined ? given : expireSkipped(given, now, limits.maxSkippedAgeMs ?? DEFAULT_MAX_SKIPPED_AGE_MS)
  const header = message?.header
  if (typeof header !== 'object' || header === null || typeof header.dh !== 'string') throw malformed('no header')
  const { dh, pn, n } = header
  if (!isUint32(pn) || !isUint32(n)) throw malformed('pn and n must be integers in 0…4294967295')
  const ciphertext = message.ciphertext
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < TAG_BYTES) throw malformed('the ciphertext is shorter than its tag')

  if (dh === state.dhr) {
    if (state.ckr === null) throw new AgentMeshError(ErrorCode.DecryptFailed, 'no message was sent with this ratchet key: forged or altered')
    if (n >= state.nr) {
      // the hot path: this chain, in order or ahead (SkipMessageKeys(n), then KDF_CK)
      const skip = n - state.nr
      if (skip > maxSkip) throw tooFarAhead(`message ${n} would skip ${skip} message keys in one chain; at most ${maxSkip} may be`)
      if (skip > maxTotal) throw tooFarAhead(`message ${n} would skip ${skip} message keys; at most ${maxTotal} are held`)
      let ck = b64(state.ckr)
      const added: RatchetState['skipped'] = []
      for (let i = state.nr; i < n; i++) {
        added.push([dh, i, toB64u(hmacSha256(ck, CK_MESSAGE))])
        ck = hmacSha256(ck, CK_CHAIN)
      }
      const mk = hmacSha256(ck, CK_MESSAGE)
      const plaintext = open(mk, ciphertext, associatedData(state.ad, dh, pn, n), binding)
      const ckr = toB64u(hmacSha256(ck, CK_CHAIN))
      // nothing skipped and no PQXDH header to stop sending (the usual case): one copy of the state
      if (added.length === 0 && state.prekey === undefined) return { state: { ...state, ckr, nr: n + 1 }, plaintext }
      return { state: received(state, added.length === 0 ? { ckr, nr: n + 1 } : { ckr, nr: n + 1, ...withSkipped(state, added, maxTotal, now) }), plaintext }
    }
    return fromSkipped(state, dh, pn, n, ciphertext, binding) ?? replayed(state, dh, n)
  }

  const fromOld = fromSkipped(state, dh, pn, n, ciphertext, binding)
  if (fromOld !== undefined) return fromOld
  const ended = state.chains.find(c => c[0] === dh)
  if (ended !== undefined) {
    if (n < ended[1]) replayed(state, dh, n)
    throw new AgentMeshError(ErrorCode.DecryptFailed, `message ${n} of a chain that ended after ${ended[1]} messages does not exist: forged or altered`)
  }
  return dhRatchetThenDecrypt(state, dh, pn, n, ciphertext, maxSkip, maxTotal, now, binding)
}

function replayed (state: RatchetState, dh: string, n: number): never {
  const mark = state.evicted.find(e => e[0] === dh)
  throw new AgentMeshError(ErrorCode.MessageReplayed, mark !== undefined && n < mark[1]
    ? `message ${n} of this chain was already decrypted, or was skipped and its key since evicted (at most maxSkippedTotal are held)`
    : `message ${n} of this chain was already decrypted`)
}

/** TrySkippedMessageKeys (§3.5). */
function fromSkipped (
  state: RatchetState, dh: string, pn: number, n: number, ciphertext: Uint8Array, binding: Uint8Array | undefined,
): { state: RatchetState, plaintext: Uint8Array } | undefined {
  const i = state.skipped.findIndex(s => s[1] === n && s[0] === dh)
  if (i < 0) return undefined
  const plaintext = open(b64(state.skipped[i]![2]), ciphertext, associatedData(state.ad, dh, pn, n), binding)
  const skipped = state.skipped.filter((_, j) => j !== i)
  const changes: Partial<RatchetState> = { skipped }
  if (state.skipped_at !== undefined && !skipped.some(s => s[0] === dh)) changes.skipped_at = state.skipped_at.filter(([k]) => k !== dh)
  return { state: received(state, changes), plaintext }
}

/** A new ratchet key from the peer: SkipMessageKeys(pn), DHRatchet, SkipMessageKeys(n), decrypt (§3.5). */
function dhRatchetThenDecrypt (
  state: RatchetState, dh: string, pn: number, n: number, ciphertext: Uint8Array, maxSkip: number, maxTotal: number,
  now: number | undefined, binding: Uint8Array | undefined,
): { state: RatchetState, plaintext: Uint8Array } {
  const peer = decodeB64u(dh, 32)
  if (peer === undefined) throw malformed('header.dh is not a 32-byte base64url key')
  // the bounds first, before any work (§3.5 SkipMessageKeys raises when Nr + MAX_SKIP < until)
  if (state.nr + maxSkip < pn) throw tooFarAhead(`the previous chain would skip ${pn - state.nr} message keys; at most ${maxSkip} may be`)
  if (maxSkip < n) throw tooFarAhead(`message ${n} would skip ${n} message keys in a new chain; at most ${maxSkip} may be`)
  const skipOld = state.ckr !== null ? Math.max(0, pn - state.nr) : 0
  if (skipOld + n > maxTotal) throw tooFarAhead(`message ${n} would skip ${skipOld + n} message keys; at most ${maxTotal} are held`)

  const added: RatchetState['skipped'] = []
  let chains = state.chains
  if (state.dhr !== null) {
    let nr = state.nr
    if (state.ckr !== null) {
      let ck = b64(state.ckr)
      for (; nr < pn; nr++) {
        added.push([state.dhr, nr, toB64u(hmacSha256(ck, CK_MESSAGE))])
        ck = hmacSha256(ck, CK_CHAIN)
      }
    }
    chains = [...chains, [state.dhr, nr] as [string, number]]
    if (chains.length > MAX_REMEMBERED_CHAINS) chains = chains.slice(chains.length - MAX_REMEMBERED_CHAINS)
  }

  // DHRatchet (§3.5)
  let peerKey
  try {
    peerKey = x25519PublicKeyObject(peer)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DecryptFailed, 'malformed message: header.dh is not an X25519 key', { cause })
  }
  const oldPriv = b64(state.dhs.priv)
  let dhOut: Buffer
  try {
    dhOut = x25519(x25519PrivateKeyObject(oldPriv, true, b64(state.dhs.pub)), peerKey)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DecryptFailed, 'malformed message: header.dh is a small-order X25519 key', { cause })
  }
  const [rk1, ckr] = kdfRk(b64(state.rk), dhOut)
  const dhs = generateX25519KeyPair()
  const [rk2, cks] = kdfRk(rk1, x25519(dhs.privateKeyObject, peerKey))

  let ck: Buffer = ckr
  for (let i = 0; i < n; i++) {
    added.push([dh, i, toB64u(hmacSha256(ck, CK_MESSAGE))])
    ck = hmacSha256(ck, CK_CHAIN)
  }
  const plaintext = open(hmacSha256(ck, CK_MESSAGE), ciphertext, associatedData(state.ad, dh, pn, n), binding)

  cacheX25519PrivateKey(dhs)
  // the replaced key is not needed again, except a responder's first one: its signed prekey, shared by sessions
  if (state.dhr !== null) forgetX25519PrivateKey(oldPriv)
  return {
    state: received(state, {
      dhs: { pub: toB64u(dhs.publicKey), priv: toB64u(dhs.secretKey) },
      dhr: dh,
      rk: toB64u(rk2),
      cks: toB64u(cks),
      ckr: toB64u(hmacSha256(ck, CK_CHAIN)),
      ns: 0,
      nr: n + 1,
      pn: state.ns,
      ...withSkipped(state, added, maxTotal, now),
      chains,
    }),
    plaintext,
  }
}

// ---------------------------------------------------------------------------------------------
// persistence

/** The state as JSON text (the state is plain JSON already; this is `JSON.stringify`). */
export function serializeRatchetState (state: RatchetState): string {
  return JSON.stringify(state)
}

function corrupt (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.DataCorrupt, `saved session state is damaged: ${what}`)
}

/** Reads a state back from its JSON text (or the parsed object), checking every field. Throws AM_ERR_DATA_CORRUPT. */
export function deserializeRatchetState (saved: string | unknown): RatchetState {
  let s: any
  if (typeof saved === 'string') {
    try { s = JSON.parse(saved) } catch { throw corrupt('not valid JSON') }
  } else {
    s = saved
  }
  if (typeof s !== 'object' || s === null) throw corrupt('not an object')
  if (s.v !== 1) throw corrupt(`unknown version ${JSON.stringify(s.v)}`)
  const key = (v: unknown, len: number): boolean => decodeB64u(v, len) !== undefined
  const keyOrNull = (v: unknown, len: number): boolean => v === null || key(v, len)
  if (decodeB64u(s.ad) === undefined) throw corrupt('ad')
  if (typeof s.dhs !== 'object' || s.dhs === null || !key(s.dhs.pub, 32) || !key(s.dhs.priv, 32)) throw corrupt('dhs')
  if (!keyOrNull(s.dhr, 32)) throw corrupt('dhr')
  if (!key(s.rk, 32)) throw corrupt('rk')
  if (!keyOrNull(s.cks, 32)) throw corrupt('cks')
  if (!keyOrNull(s.ckr, 32)) throw corrupt('ckr')
  for (const f of ['ns', 'nr', 'pn'] as const) if (!isUint32(s[f]) && !(f === 'ns' && s[f] === 0x100000000)) throw corrupt(f)
  if (!Array.isArray(s.skipped) || !s.skipped.every((e: unknown) =>
    Array.isArray(e) && e.length === 3 && key(e[0], 32) && isUint32(e[1]) && key(e[2], 32))) throw corrupt('skipped')
  const marks = (v: unknown): boolean => Array.isArray(v) && v.every((e: unknown) =>
    Array.isArray(e) && e.length === 2 && key(e[0], 32) && (isUint32(e[1]) || e[1] === 0x100000000))
  if (!marks(s.chains)) throw corrupt('chains')
  if (!marks(s.evicted)) throw corrupt('evicted')
  if (s.skipped_at !== undefined && !(Array.isArray(s.skipped_at) && s.skipped_at.every((e: unknown) =>
    Array.isArray(e) && e.length === 2 && key(e[0], 32) && Number.isSafeInteger(e[1])))) throw corrupt('skipped_at')
  if (!keyOrNull(s.base, 32)) throw corrupt('base')
  if (s.prekey !== undefined && (typeof s.prekey !== 'object' || s.prekey === null)) throw corrupt('prekey')
  if (typeof s.created_at !== 'number' || !Number.isFinite(s.created_at)) throw corrupt('created_at')
  return s as RatchetState
}
