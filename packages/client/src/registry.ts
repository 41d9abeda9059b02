/** Requests to a relay's registry (REST, docs/protocol.md §13), signed by an identity when given. */
import { signRequest, type Identity } from '@agentmesh/crypto'
import { apiRequest } from './api.ts'

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
  const { identity, ...rest } = opts
  return await apiRequest(origin, method, path, { ...rest, ...(identity === undefined ? {} : { sign: (m, p, b) => signRequest(identity, m, p, b) }) })
}
