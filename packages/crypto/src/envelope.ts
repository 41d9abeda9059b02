/**
 * Signing and verifying envelopes and auth answers (docs/protocol.md §8).
 * An envelope's signature covers the RFC 8785 canonical JSON of every field but `sig`,
 * so fields a newer minor version adds are signed too and survive any re-serialisation.
 */
import canonicalize from 'canonicalize'
import type { KeyObject } from 'node:crypto'
import { AUTH_SIGNING_PREFIX, ENVELOPE_SIGNING_PREFIX, PROTOCOL, type Envelope } from '@agentmesh/protocol'
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
export function signEnvelope (keys: KeyPair & { amid: string }, init: EnvelopeInit): Envelope {
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
export function attestEnvelope (relay: KeyPair & { amid: string }, init: EnvelopeInit & { from: string }): Envelope {
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

/** True when `env.sig` is a valid signature by the agent named in `env.from`. */
export function verifyEnvelope (env: Envelope, key?: KeyObject): boolean {
  try {
    return verifyBytes(key ?? keyForAmid(env.from), envelopeSigningBytes(env), fromB64u(env.sig))
  } catch {
    return false
  }
}

export async function verifyEnvelopeAsync (env: Envelope, key?: KeyObject): Promise<boolean> {
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
