/**
 * The swarm message (docs/swarm.md, "The message"): signed by its author's AMID key, named by a
 * content id, numbered per author.
 *
 *   { v: 1, topic, author, seq, id, ts, type?, body, sig }
 *   id  = base64url(SHA-256("agentmesh/swarm-id\n" + JCS(every field but id and sig)))[first 16 bytes]
 *   sig = Ed25519(author, "agentmesh/swarm\n" + JCS(every field but sig))
 *
 * The id is derived from the content, so two messages with the same (author, seq) and different
 * content have different ids: a validator sees the equivocation instead of a gossip cache hiding it.
 */
import canonicalize from 'canonicalize'
import { createHash, sign, verify, type KeyObject } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { isAmid, keyForAmid, type KeyPair } from '@agentmesh/crypto'
import {
  DEFAULT_MAX_SWARM_MESSAGE_BYTES, DEFAULT_VERIFY_CACHE, MAX_SWARM_BODY_DEPTH, MAX_SWARM_TOPIC_LENGTH,
  SWARM_ID_PREFIX, SWARM_MESSAGE_VERSION, SWARM_SIGNING_PREFIX,
} from './constants.ts'

export interface SwarmMessage {
  v: 1
  /** the swarm topic it was published to */
  topic: string
  /** the AMID of the agent that wrote and signed it */
  author: string
  /** the author's sequence number in this topic: 1, 2, 3 … */
  seq: number
  /** content id (22 base64url characters), see the module comment */
  id: string
  /** ms since the epoch, the author's clock (informative; validation does not trust it) */
  ts: number
  /** an application type, like an envelope's */
  type?: string
  /** any JSON value */
  body: unknown
  /** base64url Ed25519 signature by `author` */
  sig: string
}

export interface SwarmMessageInit {
  topic: string
  seq: number
  body: unknown
  type?: string
  ts?: number
}

export const TOPIC_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,${MAX_SWARM_TOPIC_LENGTH - 1}}$`)
export const SWARM_TYPE_PATTERN = /^[a-z][a-z0-9._:-]{0,63}$/
const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/
const SIG_PATTERN = /^[A-Za-z0-9_-]{86}$/

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })
const jcs = canonicalize as unknown as (v: unknown) => string | undefined

function invalid (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidSwarmMessage, `swarm message: ${what}`)
}

function canonical (v: unknown): string {
  const text = jcs(v)
  if (text === undefined) throw invalid('cannot be canonicalised')
  return text
}

/** The content id of a message: everything but `id` and `sig` (see the module comment). */
export function swarmMessageId (m: Omit<SwarmMessage, 'id' | 'sig'> & { id?: string, sig?: string }): string {
  const { id: _id, sig: _sig, ...rest } = m
  return createHash('sha256').update(SWARM_ID_PREFIX + canonical(rest)).digest().subarray(0, 16).toString('base64url')
}

/** The bytes the author signs: everything but `sig`. */
export function swarmSigningBytes (m: Omit<SwarmMessage, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...rest } = m
  return enc.encode(SWARM_SIGNING_PREFIX + canonical(rest))
}

function depthOk (v: unknown, max: number): boolean {
  // iterative, so a deep body cannot exhaust the stack before it is refused
  const stack: Array<[unknown, number]> = [[v, 1]]
  while (stack.length > 0) {
    const [x, d] = stack.pop() as [unknown, number]
    if (x === null || typeof x !== 'object') continue
    if (d > max) return false
    for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push([c, d + 1])
  }
  return true
}

/** Throws AM_ERR_INVALID_SWARM_MESSAGE when a field is missing or out of range (the signature is not checked here). */
export function checkSwarmFields (m: Record<string, unknown>): asserts m is SwarmMessage & Record<string, unknown> {
  if (m.v !== SWARM_MESSAGE_VERSION) throw invalid(`unknown version ${JSON.stringify(m.v)}`)
  if (typeof m.topic !== 'string' || !TOPIC_PATTERN.test(m.topic)) throw invalid(`topic must be 1 to ${MAX_SWARM_TOPIC_LENGTH} characters of A-Z a-z 0-9 . _ : / - (starting with a letter or digit)`)
  if (typeof m.author !== 'string' || !isAmid(m.author)) throw invalid('author is not an AMID')
  if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 1) throw invalid('seq must be an integer from 1')
  if (typeof m.id !== 'string' || !ID_PATTERN.test(m.id)) throw invalid('id must be 22 base64url characters')
  if (!Number.isSafeInteger(m.ts) || (m.ts as number) < 0) throw invalid('ts must be ms since the epoch')
  if (m.type !== undefined && (typeof m.type !== 'string' || !SWARM_TYPE_PATTERN.test(m.type))) throw invalid('type must be 1 to 64 characters of a-z 0-9 . _ : - starting with a letter')
  if (!('body' in m) || m.body === undefined) throw invalid('body is missing')
  if (!depthOk(m.body, MAX_SWARM_BODY_DEPTH)) throw invalid(`body is nested deeper than ${MAX_SWARM_BODY_DEPTH} levels`)
  if (typeof m.sig !== 'string' || !SIG_PATTERN.test(m.sig)) throw invalid('sig must be 86 base64url characters')
  for (const k of Object.keys(m)) if (!FIELDS.has(k)) throw invalid(`unknown field ${JSON.stringify(k.slice(0, 32))}`)
}
const FIELDS = new Set(['v', 'topic', 'author', 'seq', 'id', 'ts', 'type', 'body', 'sig'])

/** Builds and signs a swarm message from `keys` (the author). Throws AM_ERR_INVALID_SWARM_MESSAGE for out-of-range fields. */
export function signSwarmMessage (keys: KeyPair & { amid: string }, init: SwarmMessageInit): SwarmMessage {
  const unsigned: Omit<SwarmMessage, 'id' | 'sig'> = {
    v: SWARM_MESSAGE_VERSION,
    topic: init.topic,
    author: keys.amid,
    seq: init.seq,
    ts: init.ts ?? Date.now(),
    ...(init.type === undefined ? {} : { type: init.type }),
    body: init.body,
  }
  const withId = { ...unsigned, id: swarmMessageId(unsigned) }
  const sig = sign(null, swarmSigningBytes(withId), keys.privateKeyObject).toString('base64url')
  const msg = { ...withId, sig } as SwarmMessage
  checkSwarmFields(msg as unknown as Record<string, unknown>)
  return msg
}

/**
 * True when `m.id` is its content id and `m.sig` a valid signature by `m.author`. Never throws.
 * This is the expensive check (Ed25519 verify, ~100+ µs here): see `memoizeVerifier`.
 * `contentId`, when the caller already computed `swarmMessageId(m)` for this very object, spares
 * hashing the content twice.
 */
export function verifySwarmMessage (m: SwarmMessage, key?: KeyObject, contentId?: string): boolean {
  try {
    if ((contentId ?? swarmMessageId(m)) !== m.id) return false
    const sig = Buffer.from(m.sig, 'base64url')
    if (sig.length !== 64) return false
    return verify(null, swarmSigningBytes(m), key ?? keyForAmid(m.author), sig)
  } catch {
    return false
  }
}

/** A signature check, injectable so a simulator (or a node) can cache verdicts. */
export type SwarmVerifier = (m: SwarmMessage) => boolean

/**
 * Wraps a verifier with a bounded memo keyed by id and signature (at most `max` ids, four signatures each): a message that arrives again
 * (from another peer, or at another simulated node) is verified once. The key includes the
 * signature, and the id is the hash of everything else, so a changed message never hits a
 * verdict cached for another one. The oldest verdict goes first beyond `max`.
 */
export function memoizeVerifier (inner: SwarmVerifier = verifySwarmMessage, max = DEFAULT_VERIFY_CACHE): SwarmVerifier & { readonly calls: () => number } {
  // id → the (signature, verdict) pairs seen with it (a few: a forger may reuse an id with other
  // signatures). The id is the hash of everything but the signature, so the same id with the same
  // signature is the same message; lookups compare strings, no key is built per call.
  const memo = new Map<string, Array<[string, boolean]>>()
  let calls = 0
  const fn = (m: SwarmMessage): boolean => {
    let seen = memo.get(m.id)
    if (seen !== undefined) for (const [sig, ok] of seen) if (sig === m.sig) return ok
    calls++
    const ok = inner(m)
    if (seen === undefined) {
      if (memo.size >= max) memo.delete(memo.keys().next().value as string)
      seen = []
      memo.set(m.id, seen)
    }
    if (seen.length >= 4) seen.shift()
    seen.push([m.sig, ok])
    return ok
  }
  return Object.assign(fn, { calls: () => calls })
}

/** The bytes a node sends: the message's JSON (UTF-8). The signature does not depend on this encoding. */
export function encodeSwarmMessage (m: SwarmMessage): Uint8Array {
  return enc.encode(JSON.stringify(m))
}

export interface DecodeOptions {
  /** largest accepted encoding, bytes (default DEFAULT_MAX_SWARM_MESSAGE_BYTES, 64 KiB) */
  maxBytes?: number
}

/**
 * Parses and checks the fields of an encoded swarm message (not its signature). Throws
 * AM_ERR_SWARM_MESSAGE_TOO_LARGE beyond `maxBytes`, AM_ERR_INVALID_SWARM_MESSAGE for anything malformed.
 */
export function decodeSwarmMessage (bytes: Uint8Array, opts: DecodeOptions = {}): SwarmMessage {
  const max = opts.maxBytes ?? DEFAULT_MAX_SWARM_MESSAGE_BYTES
  if (bytes.byteLength > max) throw new AgentMeshError(ErrorCode.SwarmMessageTooLarge, `swarm message: ${bytes.byteLength} bytes, the limit is ${max}`)
  let v: unknown
  try {
    v = JSON.parse(dec.decode(bytes))
  } catch {
    throw invalid('not UTF-8 JSON')
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid('not a JSON object')
  checkSwarmFields(v as Record<string, unknown>)
  return v as SwarmMessage
}
