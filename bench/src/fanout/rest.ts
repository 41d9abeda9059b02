/**
 * Signed REST calls to the relay (docs/protocol.md §13, §17): what the SDK's `conn.request()` does,
 * without the SDK (bench/ measures the relay; the SDK is changing under other hands).
 */
import { signRequest, type Identity } from '@agentmesh/crypto'

export async function rest (base: string, id: Identity, method: string, path: string, body?: unknown): Promise<unknown> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const headers: Record<string, string> = { ...signRequest(id, method, path, text), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }
  const res = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body: text }), signal: AbortSignal.timeout(15_000) })
  const answer = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${answer.slice(0, 300)}`)
  return answer === '' ? undefined : JSON.parse(answer)
}
