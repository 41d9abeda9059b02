/**
 * Requests to the relay's REST API (docs/protocol.md §13, §17) from the CLI's --server address,
 * through the client's `apiRequest`: every answer is typed by the route table of
 * @agentmesh/protocol, the one the relay validates with and documents.
 */
import { signRequest } from '@agentmesh/crypto'
import { apiRequest, httpOrigin, relayUrls, type RegistryRequest } from '@agentmesh/client'
import type { ApiAnswer, RouteName } from '@agentmesh/protocol'

/**
 * Route `route` at `path` (parameters filled in, with its query) of the relay at `server`; of
 * several addresses (a cluster, `ws://a,ws://b`), the first (a REST call does not fail over).
 */
export async function registryRequest<R extends RouteName> (
  server: string, route: R, path: string, opts: RegistryRequest = {},
): Promise<ApiAnswer<R>> {
  const { identity, ...rest } = opts
  return await apiRequest(httpOrigin(relayUrls(server)[0]!), route, path, {
    ...rest,
    ...(identity === undefined ? {} : { sign: (m: string, p: string, b: string) => signRequest(identity, m, p, b) }),
  })
}
