/** Requests to a relay's registry (REST, docs/protocol.md §13), signed by an identity when given. */
import { signRequest, type Identity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, isErrorCode } from '@agentmesh/protocol'

export const REGISTRY_TIMEOUT_MS = 10_000

export interface RegistryRequest {
  /** signs the request (X-AgentMesh-* headers) */
  identity?: Identity
  /** the operator's API key (X-API-Key), for the operator's routes */
  apiKey?: string
  /** the body as sent (JSON unless `contentType` says otherwise) */
  body?: string
  contentType?: string
  timeoutMs?: number
}

/**
 * `method path` at the relay's HTTP origin; answers the JSON body, or throws the relay's coded
 * error (`{ error: { code, message } }`), AM_ERR_CONNECT_FAILED when it does not answer.
 */
export async function registryRequest (origin: string, method: string, path: string, opts: RegistryRequest = {}): Promise<any> {
  const body = opts.body ?? ''
  const headers: Record<string, string> = opts.identity === undefined ? {} : signRequest(opts.identity, method, path, body)
  if (opts.apiKey !== undefined) headers['x-api-key'] = opts.apiKey
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json'
  let res: Response
  try {
    res = await fetch(origin + path, { method, headers, ...(opts.body === undefined ? {} : { body }), signal: AbortSignal.timeout(opts.timeoutMs ?? REGISTRY_TIMEOUT_MS) })
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.ConnectFailed, `cannot reach the relay at ${origin}: ${(cause as Error).message}. Is \`agentmesh serve\` running there?`, { cause })
  }
  const answer = await res.json().catch(() => undefined) as any
  if (!res.ok) {
    const e = answer?.error
    throw new AgentMeshError(isErrorCode(e?.code) ? e.code : ErrorCode.Internal, typeof e?.message === 'string' ? e.message : `${method} ${path} answered HTTP ${res.status}`)
  }
  return answer
}
