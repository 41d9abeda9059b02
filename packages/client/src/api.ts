/**
 * The relay's REST API (docs/protocol.md §13, §17) over `fetch`, for Node and browsers alike: it
 * imports nothing Node-only. Answers are typed by the route table of @agentmesh/protocol (src/api),
 * the one the relay validates with and documents in its OpenAPI document. Signing is given as a
 * function (`sign`), so that a caller with its own keys (a dashboard) can use it; `registryRequest`
 * (registry.ts) signs with an identity.
 */
import { API_ROUTES, AgentMeshError, ErrorCode, isErrorCode, type ApiAnswer, type ApiBody, type RouteName } from '@agentmesh/protocol'

/** A REST call gives up after this long. */
export const DEFAULT_API_TIMEOUT_MS = 10_000

/** The headers that sign a request (X-AgentMesh-*), for its method, path and body as sent. */
export type RequestSigner = (method: string, path: string, body: string) => Record<string, string>

export interface ApiRequestInit {
  sign?: RequestSigner
  /** the operator's API key (X-API-Key), for the operator's routes */
  apiKey?: string
  /** the body as sent (JSON unless `contentType` says otherwise) */
  body?: string
  contentType?: string
  /** @default DEFAULT_API_TIMEOUT_MS */
  timeoutMs?: number
}

/**
 * `method path` at the relay's HTTP origin; answers the JSON body (unchecked: `unknown`), or throws
 * the relay's coded error (`{ error: { code, message } }`), AM_ERR_CONNECT_FAILED when it does not
 * answer. `apiRequest` is the typed form.
 */
/**
 * What `fetch` is given as its `dispatcher` for every request to a relay (Node: an undici Agent
 * trusting a private CA, set by `trustRelayCa()`); undefined: the platform's own.
 */
let relayDispatcher: object | undefined
/** Sets (or clears) the dispatcher of every relay request (relay-tls.ts; not for browsers). */
export function setRelayDispatcher (d: object | undefined): void { relayDispatcher = d }

export async function httpRequest (origin: string, method: string, path: string, opts: ApiRequestInit = {}): Promise<unknown> {
  const body = opts.body ?? ''
  const headers: Record<string, string> = opts.sign === undefined ? {} : opts.sign(method, path, body)
  if (opts.apiKey !== undefined) headers['x-api-key'] = opts.apiKey
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json'
  let res: Response
  try {
    res = await fetch(origin + path, { method, headers, ...(opts.body === undefined ? {} : { body }), signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_API_TIMEOUT_MS), ...(relayDispatcher === undefined ? {} : { dispatcher: relayDispatcher }) } as RequestInit)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.ConnectFailed, `cannot reach the relay at ${origin}: ${(cause as Error).message}. Is \`agentmesh serve\` running there?`, { cause })
  }
  const answer: unknown = await res.json().catch(() => undefined)
  if (!res.ok) {
    const e = (answer as { error?: { code?: unknown, message?: unknown } } | undefined)?.error
    // Retry-After (a rate limit): kept on the error, as the WebSocket's retry_after is
    const retryAfter = Number(res.headers.get('retry-after') ?? NaN)
    throw new AgentMeshError(isErrorCode(e?.code) ? e.code : ErrorCode.Internal, typeof e?.message === 'string' ? e.message : `${method} ${path} answered HTTP ${res.status}`,
      Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterS: retryAfter } : undefined)
  }
  return answer
}

/**
 * Route `route` of the relay's REST API at `path` (the route's path with its parameters filled in,
 * and its query); answers its success body as the route table types it. The relay's answers are
 * held to those schemas by its tests, so they are not checked again here.
 */
export async function apiRequest<R extends RouteName> (origin: string, route: R, path: string, opts: ApiRequestInit = {}): Promise<ApiAnswer<R>> {
  return await httpRequest(origin, API_ROUTES[route].method.toUpperCase(), path, opts) as ApiAnswer<R>
}

/** A REST call made by a connection (signed by its agent): method, path, JSON body. */
export type RestRequest = (method: string, path: string, body?: unknown) => Promise<unknown>

/** Route `route` through a connection's `request`, typed as apiRequest is. */
export async function restCall<R extends RouteName> (request: RestRequest, route: R, path: string, body?: ApiBody<R>): Promise<ApiAnswer<R>> {
  return await request(API_ROUTES[route].method.toUpperCase(), path, body) as ApiAnswer<R>
}
