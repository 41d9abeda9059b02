/**
 * Requests to the relay's REST API (docs/protocol.md §13, §17) from the CLI's --server address,
 * through the client's `apiRequest`: every answer is typed by the route table of
 * @agentmesh/protocol, the one the relay validates with and documents.
 */
import { signRequest } from '@agentmesh/crypto'
import { apiRequest, httpOrigin, relayUrls, type RegistryRequest } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, type ApiAnswer, type RouteName } from '@agentmesh/protocol'

/** Errors of a request that never reached the relay (refused, no such host): another node may take it. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

function neverSent (err: unknown): boolean {
  if (!AgentMeshError.is(err, ErrorCode.ConnectFailed)) return false
  const code = ((err.cause as { cause?: { code?: unknown } } | undefined)?.cause)?.code
  return typeof code === 'string' && NOT_SENT.has(code)
}

/**
 * Route `route` at `path` (parameters filled in, with its query) of the relay at `server`; of
 * several addresses (a cluster, `ws://a,ws://b`), the first that takes the connection: the next is
 * tried only when a request never reached one (refused, unknown host), never after a timeout (a
 * request that may have been applied is not sent twice).
 */
export async function registryRequest<R extends RouteName> (
  server: string, route: R, path: string, opts: RegistryRequest = {},
): Promise<ApiAnswer<R>> {
  const { identity, ...rest } = opts
  const origins = relayUrls(server).map(httpOrigin)
  for (let i = 0; ; i++) {
    try {
      return await apiRequest(origins[i]!, route, path, {
        ...rest,
        ...(identity === undefined ? {} : { sign: (m: string, p: string, b: string) => signRequest(identity, m, p, b) }),
      })
    } catch (err) {
      if (i + 1 < origins.length && neverSent(err)) continue
      throw err
    }
  }
}
