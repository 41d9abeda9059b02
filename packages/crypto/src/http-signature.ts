/**
 * Signed HTTP requests (docs/protocol.md §13): every registry write is signed by the agent.
 * The signature covers the method, the path with its query, a timestamp, a nonce and the
 * SHA-256 of the body, so a captured request cannot be replayed elsewhere or changed.
 *
 *   X-AgentMesh-Agent:     <amid>
 *   X-AgentMesh-Timestamp: <ms since epoch>
 *   X-AgentMesh-Nonce:     <16–64 base64url chars, fresh per request>
 *   X-AgentMesh-Signature: base64url(Ed25519("agentmesh/http\n" + METHOD + "\n" + path?query + "\n" + ts + "\n" + nonce + "\n" + hex(sha256(body))))
 */
import { createHash } from 'node:crypto'
import { randomBytes } from 'node:crypto'
import { fromB64u, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'
import { keyForAmid } from './envelope.ts'

export const HTTP_SIGNING_PREFIX = 'agentmesh/http\n'
/** How far a request's timestamp may be from the server's clock. */
export const DEFAULT_HTTP_SIGNATURE_SKEW_MS = 5 * 60 * 1000

export const SIGNATURE_HEADERS = {
  agent: 'x-agentmesh-agent',
  timestamp: 'x-agentmesh-timestamp',
  nonce: 'x-agentmesh-nonce',
  signature: 'x-agentmesh-signature',
} as const

function signingText (method: string, pathAndQuery: string, ts: string, nonce: string, body: string | Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(body).digest('hex')
  return new TextEncoder().encode(`${HTTP_SIGNING_PREFIX}${method.toUpperCase()}\n${pathAndQuery}\n${ts}\n${nonce}\n${digest}`)
}

/** Headers that sign a request as `keys`' agent. */
export function signRequest (keys: KeyPair & { amid: string }, method: string, pathAndQuery: string, body: string | Uint8Array = '', now = Date.now()): Record<string, string> {
  const ts = String(now)
  const nonce = randomBytes(18).toString('base64url')
  return {
    [SIGNATURE_HEADERS.agent]: keys.amid,
    [SIGNATURE_HEADERS.timestamp]: ts,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: toB64u(signBytes(keys.privateKeyObject, signingText(method, pathAndQuery, ts, nonce, body))),
  }
}

export type RequestCheck =
  | { ok: true, amid: string, nonce: string, ts: number }
  | { ok: false, reason: 'missing' | 'malformed' | 'stale' | 'bad_signature', message: string }

/** Checks a signed request's headers (the caller checks the nonce was not seen before). */
export function verifyRequest (headers: (name: string) => string | undefined, method: string, pathAndQuery: string, body: string | Uint8Array, now = Date.now(), skewMs = DEFAULT_HTTP_SIGNATURE_SKEW_MS): RequestCheck {
  const amid = headers(SIGNATURE_HEADERS.agent)
  const ts = headers(SIGNATURE_HEADERS.timestamp)
  const nonce = headers(SIGNATURE_HEADERS.nonce)
  const sig = headers(SIGNATURE_HEADERS.signature)
  if (amid === undefined || ts === undefined || nonce === undefined || sig === undefined) {
    return { ok: false, reason: 'missing', message: 'this request must be signed: send the X-AgentMesh-Agent, -Timestamp, -Nonce and -Signature headers' }
  }
  if (!/^\d{1,16}$/.test(ts) || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce) || !/^[A-Za-z0-9_-]{86}$/.test(sig)) {
    return { ok: false, reason: 'malformed', message: 'X-AgentMesh-Timestamp must be ms since the epoch, the nonce 16–64 base64url characters, the signature 86' }
  }
  const t = Number(ts)
  if (Math.abs(now - t) > skewMs) {
    return { ok: false, reason: 'stale', message: `X-AgentMesh-Timestamp is ${Math.round((now - t) / 1000)} s away from the relay's clock (at most ${skewMs / 1000} s allowed)` }
  }
  let ok = false
  try {
    ok = verifyBytes(keyForAmid(amid), signingText(method, pathAndQuery, ts, nonce, body), fromB64u(sig))
  } catch {
    ok = false
  }
  if (!ok) return { ok: false, reason: 'bad_signature', message: 'the request signature does not verify for X-AgentMesh-Agent' }
  return { ok: true, amid, nonce, ts: t }
}
