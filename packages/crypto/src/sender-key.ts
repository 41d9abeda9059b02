/**
 * Sender Keys for end-to-end encrypted private rooms, after Signal's group messaging (the "Sender
 * Keys" scheme of libsignal's group_cipher; Signal, "The Double Ratchet Algorithm", rev. 1, §5.2 for
 * the chain step), on Node's crypto:
 *
 *   SENDER KEY         per (room, sender): keyId = base64url of 16 random bytes, a 32-byte chain
 *                      key ck and an iteration counter n (starts at 0). Each member makes its own
 *                      and sends it to every other member over their pairwise E2EE session
 *                      (ratchet.ts) as a distribution { room, sender, key_id, chain_key, n }.
 *   KDF_CK(ck)         HMAC-SHA256(ck, 0x01) = message key, HMAC-SHA256(ck, 0x02) = next chain key
 *                      (as the Double Ratchet's symmetric chain, §5.2). No DH ratchet: a sender key
 *                      has forward secrecy (old message keys cannot be derived from the current
 *                      chain key) but no post-compromise security, so it is replaced regularly
 *                      (after DEFAULT_SENDER_KEY_MAX_MESSAGES messages or DEFAULT_SENDER_KEY_MAX_AGE_MS)
 *                      and whenever a member leaves.
 *   ENCRYPT(mk, p, ad) AES-256-GCM; key and nonce = HKDF-SHA256(salt = 32 zero bytes, IKM = mk,
 *                      info = "AgentMesh_SenderKey_MessageKeys") → 32 + 12 B. Each mk is used once,
 *                      so a nonce derived from it never repeats under its key.
 *   AD                 UTF-8 of "agentmesh/room\n" + room + "\n" + sender + "\n" + keyId + "\n" + n
 *                      (n in decimal). Room and sender may not contain "\n", and keyId and n have
 *                      fixed alphabets, so the string parses uniquely: a message opens only for the
 *                      room, sender, key and position it was sealed for.
 *   PLAINTEXT          UTF-8 of the JSON { type, payload }.
 *   MESSAGE            { v: 1, key_id, n, ct } with ct = base64url(ciphertext || 16-byte tag).
 *
 * A receiver keeps the chain key for the next expected n and the message keys it skipped over
 * (out-of-order delivery), at most `maxSkipped` of them, oldest dropped first (§6.4: stored skipped
 * keys are a liability). One message may not make it skip more than `maxSkip` keys (§3.2 MAX_SKIP).
 *
 * Sender keys give confidentiality and integrity among the members holding the key, not sender
 * authentication between members: any member holding Alice's sender key could seal a message as
 * Alice. The envelope signature authenticates the sender; and a distribution must be accepted only
 * from its `sender` over that agent's own pairwise session (see `receiverFromDistribution`'s
 * `expect`).
 *
 * All states are plain JSON (keys in base64url), and every function answers a new state without
 * touching the one it was given: a caller persists "new state + decrypted message" together, and on
 * any error the old state is simply still current. Unknown fields of a distribution or a message are
 * ignored, as elsewhere on the wire (they are not authenticated and change nothing).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { AgentMeshError, ErrorCode, TYPE_PATTERN } from '@agentmesh/protocol'
import { decodeB64u, hkdfSha256Short, hmacSha256, isUint32 } from './kdf.ts'
import { toB64u } from './keys.ts'

/** Most message keys one message may make a receiver skip (§3.2 MAX_SKIP). */
export const DEFAULT_SENDER_KEY_MAX_SKIP = 2000
/** Most skipped message keys a receiver holds; past it the oldest are dropped (§6.4). */
export const DEFAULT_SENDER_KEY_MAX_SKIPPED = 2000
/** Messages a sender key seals before it should be replaced. */
export const DEFAULT_SENDER_KEY_MAX_MESSAGES = 100
/** Age after which a sender key should be replaced: 7 days. */
export const DEFAULT_SENDER_KEY_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000

const enc = new TextEncoder()
const MK_INFO = enc.encode('AgentMesh_SenderKey_MessageKeys')
const AD_PREFIX = 'agentmesh/room\n'
const ZERO_SALT = new Uint8Array(32)
const CK_MESSAGE = new Uint8Array([0x01])
const CK_CHAIN = new Uint8Array([0x02])
const KEY_ID_BYTES = 16
const CHAIN_KEY_BYTES = 32
const TAG_BYTES = 16
const TYPE_RE = new RegExp(TYPE_PATTERN)

/** The sender's own state of its sender key for a room. */
export interface SenderKeyState {
  room: string
  /** the sender's AMID */
  sender: string
  /** base64url of 16 random bytes */
  keyId: string
  /** the chain key for message `n` (base64url, 32 bytes) */
  chainKey: string
  /** the number of the next message */
  n: number
  /** ms since the epoch */
  createdAt: number
  /** messages sealed with this key */
  sent: number
}

/** What a sender sends each member over their pairwise E2EE session (JSON, snake_case as on the wire). */
export interface SenderKeyDistribution {
  room: string
  sender: string
  key_id: string
  /** the chain key for message `n` (base64url, 32 bytes) */
  chain_key: string
  n: number
}

/** A member's state for receiving one sender's key in one room. */
export interface SenderKeyReceiver {
  room: string
  sender: string
  keyId: string
  /** the chain key for message `n` (base64url, 32 bytes) */
  chainKey: string
  /** the next message number expected in order */
  n: number
  /** message keys skipped over, by message number (decimal) → message key (base64url) */
  skipped: Record<string, string>
}

/** A message sealed with a sender key. */
export interface GroupMessage {
  v: 1
  key_id: string
  n: number
  /** base64url of the AES-256-GCM ciphertext followed by its 16-byte tag */
  ct: string
}

export interface SenderKeyLimits {
  /** @default DEFAULT_SENDER_KEY_MAX_SKIP (2000) */
  maxSkip?: number
  /** @default DEFAULT_SENDER_KEY_MAX_SKIPPED (2000) */
  maxSkipped?: number
}

export interface SenderKeyRotationOptions {
  /** @default DEFAULT_SENDER_KEY_MAX_MESSAGES (100) */
  maxMessages?: number
  /** @default DEFAULT_SENDER_KEY_MAX_AGE_MS (7 days) */
  maxAgeMs?: number
}

function invalid (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidArgument, what)
}

/** Why `v` cannot be a room or sender name, or undefined when it can. */
function badName (v: unknown): string | undefined {
  if (typeof v !== 'string') return 'must be a string'
  if (v.length === 0) return 'must not be empty'
  if (v.includes('\n')) return 'must not contain a newline'
  return undefined
}

function associatedData (room: string, sender: string, keyId: string, n: number): Buffer {
  return Buffer.from(`${AD_PREFIX}${room}\n${sender}\n${keyId}\n${n}`, 'utf8')
}

function seal (mk: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const okm = hkdfSha256Short(mk, ZERO_SALT, MK_INFO, 44)
  try {
    const c = createCipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44))
    c.setAAD(aad)
    const body = Buffer.concat([c.update(plaintext), c.final()])
    return Buffer.concat([body, c.getAuthTag()])
  } finally {
    okm.fill(0)
  }
}

function open (mk: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Buffer {
  const okm = hkdfSha256Short(mk, ZERO_SALT, MK_INFO, 44)
  try {
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32, 44))
    d.setAAD(aad)
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES))
    return Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES)), d.final()])
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.DecryptFailed,
      'the group message did not authenticate: it was altered, or sealed for another room, sender or key', { cause })
  } finally {
    okm.fill(0)
  }
}

/** A new sender key for `sender` in `room`: random key id and chain key, n = 0. */
export function createSenderKey (room: string, sender: string, now: number = Date.now()): SenderKeyState {
  const r = badName(room)
  if (r !== undefined) throw invalid(`room ${r}`)
  const s = badName(sender)
  if (s !== undefined) throw invalid(`sender ${s}`)
  if (typeof now !== 'number' || !Number.isFinite(now)) throw invalid('now must be a finite number (ms since the epoch)')
  const ck = randomBytes(CHAIN_KEY_BYTES)
  const state: SenderKeyState = {
    room,
    sender,
    keyId: toB64u(randomBytes(KEY_ID_BYTES)),
    chainKey: toB64u(ck),
    n: 0,
    createdAt: now,
    sent: 0,
  }
  ck.fill(0)
  return state
}

/**
 * The distribution of the sender's current key: from it a member can open message `n` and later
 * ones, not earlier ones. Send it to each member over the pairwise E2EE session only.
 */
export function senderKeyDistribution (state: SenderKeyState): SenderKeyDistribution {
  return { room: state.room, sender: state.sender, key_id: state.keyId, chain_key: state.chainKey, n: state.n }
}

/**
 * The receiving state for a distribution, checked field by field (AM_ERR_INVALID_ARGUMENT naming the
 * field). Give `expect.sender` as the AMID of the pairwise session it arrived over (and `expect.room`
 * as the room it is for): a member must not be able to hand out a key in another member's name.
 */
export function receiverFromDistribution (d: unknown, expect: { room?: string, sender?: string } = {}): SenderKeyReceiver {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw invalid('invalid sender key distribution: not an object')
  const o = d as Record<string, unknown>
  const bad = (what: string): AgentMeshError => invalid(`invalid sender key distribution: ${what}`)
  const r = badName(o.room)
  if (r !== undefined) throw bad(`room ${r}`)
  const s = badName(o.sender)
  if (s !== undefined) throw bad(`sender ${s}`)
  if (decodeB64u(o.key_id, KEY_ID_BYTES) === undefined) throw bad(`key_id must be base64url of ${KEY_ID_BYTES} bytes`)
  if (decodeB64u(o.chain_key, CHAIN_KEY_BYTES) === undefined) throw bad(`chain_key must be base64url of ${CHAIN_KEY_BYTES} bytes`)
  if (!isUint32(o.n)) throw bad('n must be an integer in 0…4294967295')
  const room = o.room as string
  const sender = o.sender as string
  if (expect.room !== undefined && room !== expect.room) throw bad(`room is ${JSON.stringify(room)}, expected ${JSON.stringify(expect.room)}`)
  if (expect.sender !== undefined && sender !== expect.sender) {
    throw bad(`sender is ${JSON.stringify(sender)}, expected ${JSON.stringify(expect.sender)}`)
  }
  return { room, sender, keyId: o.key_id as string, chainKey: o.chain_key as string, n: o.n, skipped: {} }
}

/**
 * Seals `{ type, payload }` with the next message key. Answers the message and the state to keep
 * (n + 1, sent + 1); `state` is left as it was. AM_ERR_INVALID_ARGUMENT for a bad type or payload
 * or a damaged state.
 */
export function senderKeyEncrypt (
  state: SenderKeyState, type: string, payload: Record<string, unknown>,
): { state: SenderKeyState, message: GroupMessage } {
  if (typeof type !== 'string' || !TYPE_RE.test(type)) throw invalid(`type must match ${TYPE_PATTERN}`)
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('payload must be an object')
  const ck = decodeB64u(state.chainKey, CHAIN_KEY_BYTES)
  if (ck === undefined) throw invalid('sender key state: chainKey must be base64url of 32 bytes')
  if (!isUint32(state.n)) throw invalid('this sender key is exhausted (2^32 messages): create a new one')
  let json: string
  try {
    json = JSON.stringify({ type, payload })
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, 'payload cannot be written as JSON', { cause })
  }
  const mk = hmacSha256(ck, CK_MESSAGE)
  const nextCk = hmacSha256(ck, CK_CHAIN)
  const ct = seal(mk, enc.encode(json), associatedData(state.room, state.sender, state.keyId, state.n))
  mk.fill(0)
  const next: SenderKeyState = { ...state, chainKey: toB64u(nextCk), n: state.n + 1, sent: state.sent + 1 }
  nextCk.fill(0)
  return { state: next, message: { v: 1, key_id: state.keyId, n: state.n, ct: toB64u(ct) } }
}

function malformed (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidEnvelope, `malformed group message: ${what}`)
}

function limit (v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be a non-negative integer`)
  return v
}

/** `skipped` with `added` merged in, at most `max` kept, the lowest message numbers dropped first. */
function withSkipped (skipped: Record<string, string>, added: Array<[number, string]>, max: number): Record<string, string> {
  const all: Array<[number, string]> = Object.entries(skipped).map(([k, v]) => [Number(k), v])
  all.push(...added)
  all.sort((a, b) => a[0] - b[0])
  const out: Record<string, string> = {}
  for (const [k, v] of all.slice(Math.max(0, all.length - max))) out[String(k)] = v
  return out
}

/** The `{ type, payload }` inside an authenticated plaintext. */
function readPlaintext (plaintext: Uint8Array): { type: string, payload: Record<string, unknown> } {
  let p: unknown
  try {
    p = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext))
  } catch {
    throw malformed('the plaintext is not UTF-8 JSON')
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw malformed('the plaintext is not a JSON object')
  const { type, payload } = p as Record<string, unknown>
  if (typeof type !== 'string' || !TYPE_RE.test(type)) throw malformed(`the plaintext's type must match ${TYPE_PATTERN}`)
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw malformed("the plaintext's payload is not an object")
  return { type, payload: payload as Record<string, unknown> }
}

/**
 * Opens a group message from `sender` in `room` (as the envelope carrying it says). Answers the
 * content and the receiver to keep; `receiver` is left as it was, also when it throws:
 * - AM_ERR_INVALID_ENVELOPE: the message (or its plaintext) is malformed; the error names the field;
 * - AM_ERR_DECRYPT_FAILED: `room` or `sender` is not the receiver's, or the message does not
 *   authenticate (altered, or sealed for another room, sender or key);
 * - AM_ERR_UNKNOWN_SESSION: it was sealed with another key id (ask the sender for its current key);
 * - AM_ERR_MESSAGE_REPLAYED: it is older than the chain and its key is not held (already decrypted,
 *   dropped past `maxSkipped`, or sent before this member got the key);
 * - AM_ERR_TOO_FAR_AHEAD: it would skip more than `maxSkip` message keys.
 */
export function senderKeyDecrypt (
  receiver: SenderKeyReceiver, room: string, sender: string, message: unknown, limits: SenderKeyLimits = {},
): { receiver: SenderKeyReceiver, type: string, payload: Record<string, unknown> } {
  const maxSkip = limit(limits.maxSkip, DEFAULT_SENDER_KEY_MAX_SKIP, 'maxSkip')
  const maxSkipped = limit(limits.maxSkipped, DEFAULT_SENDER_KEY_MAX_SKIPPED, 'maxSkipped')
  if (typeof message !== 'object' || message === null || Array.isArray(message)) throw malformed('not an object')
  const m = message as Record<string, unknown>
  if (m.v !== 1) throw malformed(`v must be 1, not ${JSON.stringify(m.v) ?? 'missing'}`)
  if (decodeB64u(m.key_id, KEY_ID_BYTES) === undefined) throw malformed(`key_id must be base64url of ${KEY_ID_BYTES} bytes`)
  if (!isUint32(m.n)) throw malformed('n must be an integer in 0…4294967295')
  const ct = decodeB64u(m.ct)
  if (ct === undefined) throw malformed('ct must be base64url')
  if (ct.length < TAG_BYTES) throw malformed(`ct is shorter than its ${TAG_BYTES}-byte tag`)
  const keyId = m.key_id as string
  const n = m.n

  if (room !== receiver.room || sender !== receiver.sender) {
    throw new AgentMeshError(ErrorCode.DecryptFailed,
      `this sender key is ${JSON.stringify(receiver.sender)}'s in ${JSON.stringify(receiver.room)}, not ${JSON.stringify(sender)}'s in ${JSON.stringify(room)}`)
  }
  if (keyId !== receiver.keyId) {
    throw new AgentMeshError(ErrorCode.UnknownSession,
      `the message was sealed with sender key ${keyId}, not the one held for ${sender} in ${room} (${receiver.keyId})`)
  }
  const aad = associatedData(room, sender, keyId, n)

  if (n < receiver.n) {
    const k = String(n)
    const mk = Object.hasOwn(receiver.skipped, k) ? decodeB64u(receiver.skipped[k], 32) : undefined
    if (mk === undefined) {
      throw new AgentMeshError(ErrorCode.MessageReplayed,
        `message ${n} is older than this chain (next is ${receiver.n}) and its key is not held: already decrypted, ` +
        'dropped (at most maxSkipped are kept), or sent before this member got the key')
    }
    const content = readPlaintext(open(mk, ct, aad))
    const skipped = { ...receiver.skipped }
    delete skipped[k]
    return { receiver: { ...receiver, skipped }, ...content }
  }

  const skip = n - receiver.n
  if (skip > maxSkip) throw new AgentMeshError(ErrorCode.TooFarAhead, `message ${n} would skip ${skip} message keys; at most ${maxSkip} may be`)
  const start = decodeB64u(receiver.chainKey, CHAIN_KEY_BYTES)
  if (start === undefined) throw invalid('sender key receiver: chainKey must be base64url of 32 bytes')
  let ck: Uint8Array = start
  const added: Array<[number, string]> = []
  for (let i = receiver.n; i < n; i++) {
    // keys that would be dropped at once are not kept
    if (n - i <= maxSkipped) added.push([i, toB64u(hmacSha256(ck, CK_MESSAGE))])
    ck = hmacSha256(ck, CK_CHAIN)
  }
  const mk = hmacSha256(ck, CK_MESSAGE)
  const content = readPlaintext(open(mk, ct, aad))
  mk.fill(0)
  const next = hmacSha256(ck, CK_CHAIN)
  const state: SenderKeyReceiver = {
    ...receiver,
    chainKey: toB64u(next),
    n: n + 1,
    // nothing skipped (the usual case): the same record
    skipped: added.length === 0 ? receiver.skipped : withSkipped(receiver.skipped, added, maxSkipped),
  }
  next.fill(0)
  return { receiver: state, ...content }
}

/**
 * True when the sender should replace its key (create a new one and distribute it): after
 * `maxMessages` messages sealed with it, or once it is `maxAgeMs` old.
 */
export function needsSenderKeyRotation (state: SenderKeyState, now: number, opts: SenderKeyRotationOptions = {}): boolean {
  const maxMessages = opts.maxMessages ?? DEFAULT_SENDER_KEY_MAX_MESSAGES
  const maxAgeMs = opts.maxAgeMs ?? DEFAULT_SENDER_KEY_MAX_AGE_MS
  return state.sent >= maxMessages || now - state.createdAt >= maxAgeMs
}
