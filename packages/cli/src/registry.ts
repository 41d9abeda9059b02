/** Requests to the relay's registry (REST, docs/protocol.md §13) from the CLI's --server address. */
import { httpOrigin, registryRequest as request, relayUrl, type RegistryRequest } from '@agentmesh/client'

export async function registryRequest (
  server: string, method: string, path: string, opts: RegistryRequest = {},
): Promise<any> {
  return await request(httpOrigin(relayUrl(server)), method, path, opts)
}
