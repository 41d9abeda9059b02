/** Requests to the relay's registry (REST, docs/protocol.md §13) from the CLI's --server address. */
import type { Identity } from '@agentmesh/crypto'
import { httpOrigin, registryRequest as request, relayUrl } from '@agentmesh/client'

export async function registryRequest (
  server: string, method: string, path: string, opts: { identity?: Identity, body?: string, contentType?: string, timeoutMs?: number } = {},
): Promise<any> {
  return await request(httpOrigin(relayUrl(server)), method, path, opts)
}
