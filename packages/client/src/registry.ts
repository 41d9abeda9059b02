/**
 * Requests to a relay's REST API (docs/protocol.md §13, §17) signed by an identity when given: the
 * Node side of api.ts (signing needs @agentmesh/crypto). Typed calls are `apiRequest` / `restCall`.
 */
import { signRequest, type Identity } from '@agentmesh/crypto'
import { DEFAULT_API_TIMEOUT_MS, httpRequest } from './api.ts'

export const REGISTRY_TIMEOUT_MS = DEFAULT_API_TIMEOUT_MS

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
export async function registryRequest (origin: string, method: string, path: string, opts: RegistryRequest = {}): Promise<unknown> {
  const { identity, ...rest } = opts
  return await httpRequest(origin, method, path, { ...rest, ...(identity === undefined ? {} : { sign: (m, p, b) => signRequest(identity, m, p, b) }) })
}
