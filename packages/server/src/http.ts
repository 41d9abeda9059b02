/**
 * The HTTP side of the relay (hono): health, info and the OpenAPI document.
 * Errors are always `{ "error": { "code", "message" } }` with a matching status.
 */
import { Hono, type Context } from 'hono'
import { AgentMeshError, ErrorCode, HttpStatus, PROTOCOL } from '@agentmesh/protocol'
import { openapi } from './openapi.ts'
import type { Logger } from './log.ts'

export interface HttpDeps {
  info: () => Promise<Record<string, unknown>>
  healthy: () => boolean
  log: Logger
}

const ROUTES: Record<string, string[]> = {
  '/healthz': ['GET'],
  '/api/v1/info': ['GET'],
  '/api/v1/openapi.json': ['GET'],
  '/ws': ['GET'],
}

export function errorResponse (c: Context, err: AgentMeshError): Response {
  const status = HttpStatus[err.code] ?? 500
  return c.json({ error: { code: err.code, message: err.message } }, status as 400)
}

export function httpApp (deps: HttpDeps): Hono {
  const app = new Hono()
  app.get('/healthz', (c) => deps.healthy()
    ? c.json({ status: 'ok' })
    // an error like every other: { error } for API clients, `status` kept for health probes
    : c.json({ status: 'shutting_down', error: { code: ErrorCode.ShuttingDown, message: 'the relay is shutting down' } }, 503))
  app.get('/api/v1/info', async (c) => c.json(await deps.info()))
  app.get('/api/v1/openapi.json', (c) => c.json(openapi))
  // RFC 9110 §15.5.22: a 426 response MUST carry an Upgrade header naming the protocol to switch to
  app.get('/ws', (c) => c.json({ error: { code: ErrorCode.InvalidArgument, message: `this is the WebSocket endpoint: connect with a WebSocket client speaking ${PROTOCOL}` } }, 426, { Upgrade: 'websocket' }))
  app.notFound((c) => {
    const allowed = ROUTES[c.req.path]
    if (allowed !== undefined) {
      c.header('Allow', allowed.join(', '))
      return errorResponse(c, new AgentMeshError(ErrorCode.MethodNotAllowed, `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(' or ')}`))
    }
    return errorResponse(c, new AgentMeshError(ErrorCode.NotFound, `no route ${c.req.method} ${c.req.path}; see /api/v1/openapi.json`))
  })
  app.onError((err, c) => {
    if (err instanceof AgentMeshError) return errorResponse(c, err)
    deps.log.error({ err }, 'unhandled HTTP error')
    return errorResponse(c, new AgentMeshError(ErrorCode.Internal, 'internal error; the relay logged the details'))
  })
  return app
}
