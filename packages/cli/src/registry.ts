/** Requests to the relay's registry (REST, docs/protocol.md §13), signed by the local identity when given. */
import { signRequest, type Identity } from '@agentmesh/crypto'
import { httpOrigin, relayUrl } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, isErrorCode } from '@agentmesh/protocol'

export async function registryRequest (
  server: string, method: string, path: string, opts: { identity?: Identity, body?: string, contentType?: string, timeoutMs?: number } = {},
): Promise<any> {
  const origin = httpOrigin(relayUrl(server))
  const body = opts.body ?? ''
  const headers: Record<string, string> = opts.identity === undefined ? {} : signRequest(opts.identity, method, path, body)
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json'
  let res: Response
  try {
    res = await fetch(origin + path, { method, headers, ...(opts.body === undefined ? {} : { body }), signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) })
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
