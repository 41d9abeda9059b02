/**
 * Wake-ups on the agent's side (docs/protocol.md §26): `webhook(conn)` registers, shows and removes
 * the agent's wake webhook (REST calls the connection signs); `verifyWakeNotice()` is what the
 * receiving HTTP endpoint runs on each POST: it checks the relay's Ed25519 signature over the
 * timestamp header and the body, the timestamp's age, and answers the notice `{ amid, pending, ts }`.
 *
 * @example
 * ```ts
 * const { relay_amid } = await webhook(conn).set('https://hooks.example.com/agentmesh/<secret>')
 * // in the endpoint (any HTTP framework), with the raw body as received:
 * const notice = verifyWakeNotice({ body: rawBody, headers: req.headers, relayAmid: relay_amid })
 * // notice.pending messages wait: start the agent (it connects, reads them, and goes back to sleep)
 * ```
 */
import { createPublicKey, verify } from 'node:crypto'
import {
  AgentMeshError, DEFAULT_WAKE_MAX_SKEW_MS, ErrorCode, WAKE_HEADERS, WAKE_SIGNING_PREFIX,
  type ApiAnswer, type WakeNotice,
} from '@agentmesh/protocol'
import { isAmid, publicKeyFromAmid } from '@agentmesh/crypto'
import { restCall } from './api.ts'
import type { Connection } from './types.ts'

export type WebhookInfo = ApiAnswer<'getWebhook'>
export type { WakeNotice }

export interface Webhook {
  /** Registers (or replaces) the agent's wake webhook; the relay checks the URL and where it resolves. */
  set (url: string): Promise<WebhookInfo>
  /** The registered webhook (url null when none) and who signs its notices (relay_amid). */
  show (): Promise<WebhookInfo>
  /** Removes it; whether there was one. */
  clear (): Promise<boolean>
}

/** The agent's wake webhook, over a connection (its REST calls are signed by the agent). */
export function webhook (conn: Connection): Webhook {
  const request = async (m: string, p: string, b?: unknown): Promise<unknown> => await conn.request(m, p, b)
  return {
    async set (url) {
      if (typeof url !== 'string') throw new AgentMeshError(ErrorCode.WebhookUrlInvalid, 'the webhook URL must be a string')
      return await restCall(request, 'putWebhook', '/api/v1/webhook', { url })
    },
    async show () { return await restCall(request, 'getWebhook', '/api/v1/webhook') },
    async clear () { return (await restCall(request, 'deleteWebhook', '/api/v1/webhook')).removed },
  }
}

export interface VerifyWakeNoticeInit {
  /** the request body exactly as received (bytes or text), before any JSON parsing */
  body: string | Uint8Array
  /** the request's headers (names in any case; Node's IncomingHttpHeaders, a Headers object or a plain record) */
  headers: Headers | Record<string, string | string[] | undefined>
  /** the relay's AMID, as `webhook(conn).set()` / `show()` answered it (or GET /api/v1/info relay_amid) */
  relayAmid: string
  /** @default Date.now() */
  now?: number
  /** how far the timestamp may be from `now`. @default 5 minutes */
  maxSkewMs?: number
}

function header (h: VerifyWakeNoticeInit['headers'], name: string): string | undefined {
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(name) ?? undefined
  for (const [k, v] of Object.entries(h as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v
  }
  return undefined
}

const failed = (why: string): AgentMeshError => new AgentMeshError(ErrorCode.BadSignature, `not a valid wake notice: ${why}`)

/**
 * Checks a wake notice as received by the webhook's endpoint: the relay's signature
 * (`X-AgentMesh-Signature: ed25519=<base64url>` over `agentmesh-wake/1\n<X-AgentMesh-Timestamp>\n<body>`,
 * by the key of `relayAmid`), the timestamp within `maxSkewMs`, and the body's shape. Answers the
 * notice; throws AM_ERR_BAD_SIGNATURE saying what is wrong. Answer the POST with a 2xx once checked
 * (anything else makes the relay try again).
 */
export function verifyWakeNotice (init: VerifyWakeNoticeInit): WakeNotice {
  if (!isAmid(init.relayAmid)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'relayAmid must be the relay\'s AMID')
  const ts = header(init.headers, WAKE_HEADERS.timestamp)
  const sig = header(init.headers, WAKE_HEADERS.signature)
  if (ts === undefined || !/^\d{1,16}$/.test(ts)) throw failed(`no ${WAKE_HEADERS.timestamp} header of digits`)
  if (sig === undefined || !sig.startsWith('ed25519=')) throw failed(`no ${WAKE_HEADERS.signature}: ed25519=… header`)
  const now = init.now ?? Date.now()
  const skew = init.maxSkewMs ?? DEFAULT_WAKE_MAX_SKEW_MS
  if (Math.abs(now - Number(ts)) > skew) throw failed(`its timestamp is ${Math.round((now - Number(ts)) / 1000)} s away from now (at most ${skew / 1000} s): a replay, or a clock off`)
  const bodyBytes = typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : Buffer.from(init.body)
  const signed = Buffer.concat([Buffer.from(`${WAKE_SIGNING_PREFIX}\n${ts}\n`, 'utf8'), bodyBytes])
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKeyFromAmid(init.relayAmid)).toString('base64url') }, format: 'jwk' })
  const signature = Buffer.from(sig.slice('ed25519='.length), 'base64url')
  if (signature.length !== 64 || !verify(null, signed, key, signature)) throw failed(`the signature is not the relay ${init.relayAmid}'s over this timestamp and body`)
  let n: unknown
  try { n = JSON.parse(bodyBytes.toString('utf8')) } catch { throw failed('the body is not JSON') }
  const o = n as Partial<WakeNotice>
  if (typeof o !== 'object' || o === null || typeof o.amid !== 'string' || !Number.isSafeInteger(o.pending) || !Number.isSafeInteger(o.ts)) throw failed('the body is not { amid, pending, ts }')
  if (String(o.ts) !== ts) throw failed('the body\'s ts is not the timestamp header')
  return { amid: o.amid, pending: o.pending!, ts: o.ts! }
}
