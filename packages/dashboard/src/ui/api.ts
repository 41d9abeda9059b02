/**
 * The console's calls: relative URLs only (`api/…` under /dashboard/), the session's CSRF token on
 * every write, errors as `{error: {code, message}}` turned into ApiError. The live stream is
 * `api/events` (a WebSocket on the same origin), reconnecting with a backoff.
 */
export interface Principal { kind: 'operator' | 'agent', amid?: string, handle?: string, role?: string }
export interface Session { mode: 'relay' | 'owner', principal: Principal, csrf: string, expiresAt: number, relay?: string }
export interface LiveEvent { type: string, data: Record<string, any>, ts: number }

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly mode?: string) { super(message) }
}

let csrf = ''
export function setCsrf (token: string): void { csrf = token }

export async function api<T = any> (path: string, init: { method?: string, body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET'
  const headers: Record<string, string> = { accept: 'application/json' }
  if (method !== 'GET') headers['x-agentmesh-csrf'] = csrf
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) })
  } catch {
    throw new ApiError(0, 'AM_ERR_CONNECT_FAILED', 'the console cannot reach its server: is it still running?')
  }
  const text = await res.text()
  let json: any
  try { json = text === '' ? {} : JSON.parse(text) } catch { json = {} }
  if (!res.ok) {
    const e = json?.error ?? {}
    throw new ApiError(res.status, String(e.code ?? 'AM_ERR_INTERNAL'), String(e.message ?? `${res.status} ${res.statusText}`), res.headers.get('x-agentmesh-console-mode') ?? e.mode)
  }
  return json as T
}

/** The live stream; `onEvent` for every frame, `onState` for connected/disconnected. Answers a stop function. */
export function liveEvents (onEvent: (e: LiveEvent) => void, onState: (up: boolean) => void): () => void {
  let ws: WebSocket | undefined
  let stopped = false
  let delay = 500
  let timer: ReturnType<typeof setTimeout> | undefined
  const open = (): void => {
    const url = new URL('api/events', location.href)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    ws = new WebSocket(url.href)
    ws.onopen = () => { delay = 500; onState(true) }
    ws.onmessage = (m) => {
      try {
        const e = JSON.parse(String(m.data))
        if (e !== null && typeof e === 'object' && typeof e.type === 'string') onEvent({ type: e.type, data: e.data ?? {}, ts: Number(e.ts) || Date.now() })
      } catch { /* not a frame: ignored */ }
    }
    ws.onclose = () => {
      onState(false)
      if (stopped) return
      timer = setTimeout(open, delay)
      delay = Math.min(delay * 2, 15_000)
    }
  }
  open()
  return () => { stopped = true; if (timer !== undefined) clearTimeout(timer); ws?.close() }
}
