/**
 * Signing and verifying envelopes and auth answers (docs/protocol.md §8).
 * An envelope's signature covers the RFC 8785 canonical JSON of every field but `sig`,
 * so fields a newer minor version adds are signed too and survive any re-serialisation.
 */
import canonicalize from 'canonicalize'
import type { KeyObject } from 'node:crypto'
import { AUTH_SIGNING_PREFIX, ENVELOPE_SIGNING_PREFIX, PROTOCOL, type Envelope, type SignedEnvelope } from '@agentmesh/protocol'
import { fromB64u, publicKeyFromAmid, publicKeyObjectFromRaw, signBytes, toB64u, verifyBytes, verifyBytesAsync, type KeyPair } from './keys.ts'

const enc = new TextEncoder()

export function envelopeSigningBytes (env: Omit<Envelope, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...rest } = env
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(rest)
  if (text === undefined) throw new TypeError('envelope cannot be canonicalised')
  return enc.encode(ENVELOPE_SIGNING_PREFIX + text)
}

export interface EnvelopeInit {
  id: string
  to: string
  type: string
  payload: Record<string, unknown>
  ts?: number
}

/** Builds and signs an envelope from this key pair's agent. */
export function signEnvelope (keys: KeyPair & { amid: string }, init: EnvelopeInit): SignedEnvelope {
  const unsigned = {
    v: PROTOCOL,
    id: init.id,
    from: keys.amid,
    to: init.to,
    type: init.type,
    ts: init.ts ?? Date.now(),
    payload: init.payload,
  }
  const sig = toB64u(signBytes(keys.privateKeyObject, envelopeSigningBytes(unsigned)))
  return { ...unsigned, sig }
}

/**
 * A relay-attested envelope (docs/protocol.md §17.6): `from` is the agent that posted it over the
 * REST API, `via` the relay that signed it on the agent's behalf with its own key.
 */
export function attestEnvelope (relay: KeyPair & { amid: string }, init: EnvelopeInit & { from: string }): SignedEnvelope {
  const unsigned = {
    v: PROTOCOL,
    id: init.id,
    from: init.from,
    to: init.to,
    type: init.type,
    ts: init.ts ?? Date.now(),
    payload: init.payload,
    via: relay.amid,
  }
  const sig = toB64u(signBytes(relay.privateKeyObject, envelopeSigningBytes(unsigned)))
  return { ...unsigned, sig }
}

/** The key an envelope's signature is checked with: the relay's for a relay-attested one (`via`), else the sender's. */
export function signerOf (env: Envelope): string {
  return env.via ?? env.from
}

const keyCache = new Map<string, KeyObject>()
const MAX_KEY_CACHE = 10_000

/** Public key object for an AMID, cached (bounded). Throws RangeError for a non-AMID. */
export function keyForAmid (amid: string): KeyObject {
  let k = keyCache.get(amid)
  if (k === undefined) {
    k = publicKeyObjectFromRaw(publicKeyFromAmid(amid))
    if (keyCache.size >= MAX_KEY_CACHE) keyCache.delete(keyCache.keys().next().value as string)
    keyCache.set(amid, k)
  }
  return k
}

/** True when `env.sig` is a valid signature by the agent named in `env.from` (false for an envelope without one). */
export function verifyEnvelope (env: Envelope, key?: KeyObject): boolean {
  if (env.sig === undefined) return false
  try {
    return verifyBytes(key ?? keyForAmid(env.from), envelopeSigningBytes(env), fromB64u(env.sig))
  } catch {
    return false
  }
}

export async function verifyEnvelopeAsync (env: Envelope, key?: KeyObject): Promise<boolean> {
  if (env.sig === undefined) return false
  try {
    return await verifyBytesAsync(key ?? keyForAmid(env.from), envelopeSigningBytes(env), fromB64u(env.sig))
  } catch {
    return false
  }
}

function authBytes (nonce: string, amid: string, relay: string): Uint8Array {
  return enc.encode(`${AUTH_SIGNING_PREFIX}${nonce}\n${amid}\n${relay}`)
}

/** Signs a relay's challenge: binds the nonce, the agent and the relay's id. */
export function signChallenge (keys: KeyPair, amid: string, nonce: string, relay: string): string {
  return toB64u(signBytes(keys.privateKeyObject, authBytes(nonce, amid, relay)))
}

export function verifyChallenge (amid: string, nonce: string, relay: string, sig: string): boolean {
  try {
    return verifyBytes(keyForAmid(amid), authBytes(nonce, amid, relay), fromB64u(sig))
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// The header binding of an unsigned end-to-end encrypted envelope (docs/protocol.md §14.3)

/** The label that starts every header binding (domain separation from anything else in an AD). */
export const HEADER_BINDING_LABEL = 'agentmesh/e2ee-header'

/** The header fields a binding covers: every field of the envelope but `payload` (which the ratchet authenticates). */
export type EnvelopeHeader = Pick<Envelope, 'v' | 'id' | 'from' | 'to' | 'type' | 'ts'>

/**
 * The bytes appended to the Double Ratchet's associated data for an `agentmesh/0.3` `e2ee`
 * envelope (docs/protocol.md §14.3), so that the message decrypts only under the header it was
 * sealed with:
 *
 *   HB = LP(label) || LP(v) || LP(id) || LP(from) || LP(to) || LP(type) || uint64be(ts)
 *   LP(s) = uint16be(UTF-8 length of s) || UTF-8(s)
 *
 * Each field carries its length, so the encoding is unambiguous (no two headers give the same
 * bytes). Throws RangeError for a field longer than 65,535 bytes or a `ts` that is not an integer
 * in 0 … 2^53 − 1 (a valid envelope has neither).
 */
export function envelopeHeaderBinding (h: EnvelopeHeader): Buffer {
  const fields = [HEADER_BINDING_LABEL, h.v, h.id, h.from, h.to, h.type]
  let len = 8
  for (const f of fields) len += 2 + Buffer.byteLength(f, 'utf8')
  if (!Number.isSafeInteger(h.ts) || h.ts < 0) throw new RangeError('ts must be an integer in 0 … 2^53 − 1')
  const out = Buffer.allocUnsafe(len)
  let off = 0
  for (const f of fields) {
    const n = out.write(f, off + 2, 'utf8')
    if (n > 0xffff) throw new RangeError('a header field is longer than 65,535 bytes')
    out.writeUInt16BE(n, off)
    off += 2 + n
  }
  out.writeUInt32BE(Math.floor(h.ts / 0x100000000), off)
  out.writeUInt32BE(h.ts >>> 0, off + 4)
  return out
}
