/**
 * The HTTP side of the relay (hono): health, info and the OpenAPI document.
 * Errors are always `{ "error": { "code", "message" } }` with a matching status.
 */
import { Hono, type Context } from 'hono'
import { AgentMeshError, ErrorCode, PROTOCOL, httpStatusOf } from '@agentmesh/protocol'
import { openapi } from './openapi.ts'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'
import type { EventBus } from './events.ts'
import type { ReputationOptions } from './reputation.ts'
import type { ApiDeps } from './api-v1.ts'
import type { RegistryHelpers } from './registry.ts'
import type { RelayFeature } from './feature.ts'
import { registryFeature, reputationFeature } from './features/registry.ts'
import { apiFeature } from './features/chat.ts'

export interface HttpDeps {
  info: () => Promise<Record<string, unknown>>
  healthy: () => boolean
  log: Logger
  /** the registry's data */
  store: Store
  /** root CA certificates (PEM, one per entry) for published certificate chains. @default none */
  trustRoots?: readonly string[]
  /** the reputation rules (docs/protocol.md §15). @default DEFAULT_REPUTATION */
  reputation?: ReputationOptions
  /** the registry's clock (tests). @default Date.now */
  now?: () => number
  /** the chat REST API v1 (rooms, messages, handles, tasks, audit…), given the registry's helpers. @default not served */
  api?: (registry: RegistryHelpers) => ApiDeps
  /**
   * The features whose routes the app serves, in order (createRelay gives its own). @default the
   * registry, reputation and, with `api`, the REST API v1 over `store`
   */
  features?: readonly RelayFeature[]
  /** where each error answer is told ('error:answered', for the relay's metrics). @default not told */
  events?: EventBus
}

/** The registry, reputation and (with `api`) REST API v1 features of an app over `deps.store`. */
function defaultFeatures (deps: HttpDeps): RelayFeature[] {
  const now = deps.now ?? Date.now
  const registry = registryFeature({ store: deps.store, now, trustRoots: deps.trustRoots ?? [] })
  const out: RelayFeature[] = [registry, reputationFeature({ store: deps.store, now, ...(deps.reputation === undefined ? {} : { options: deps.reputation }), registry })]
  const api = deps.api
  if (api !== undefined) {
    let built: ApiDeps | undefined
    out.push(apiFeature(() => (built ??= api(registry.helpers()))))
  }
  return out
}

/**
 * Methods the app serves on `path` (hono has no 405 of its own): derived from its route list. A
 * path a route names exactly (`/api/files/upload`) is that route's, not a parameter's (`/api/files/:id`).
 */
function allowedMethods (app: Hono, path: string): string[] {
  const methods = new Set<string>()
  const exact = app.routes.filter(r => r.path === path)
  for (const r of exact.length > 0 ? exact : app.routes) {
    const re = new RegExp('^' + r.path.split('/').map(seg => seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('/') + '$')
    if (re.test(path)) methods.add(r.method)
  }
  return [...methods].sort()
}

export function errorResponse (c: Context, err: AgentMeshError): Response {
  if (err.retryAfterS !== undefined) c.header('Retry-After', String(err.retryAfterS))
  return c.json({ error: { code: err.code, message: err.message } }, httpStatusOf(err.code) as 400)
}

export function httpApp (deps: HttpDeps): Hono {
  const app = new Hono()
  const events = deps.events
  /** The error answer, told on the event bus first (metrics). */
  const told = (c: Context, err: AgentMeshError): Response => {
    if (events?.listening('error:answered') === true) events.emit('error:answered', { code: err.code, via: 'rest' })
    return errorResponse(c, err)
  }
  app.get('/healthz', (c) => deps.healthy()
    ? c.json({ status: 'ok' })
    // an error like every other: { error } for API clients, `status` kept for health probes
    : c.json({ status: 'shutting_down', error: { code: ErrorCode.ShuttingDown, message: 'the relay is shutting down' } }, 503))
  app.get('/api/v1/info', async (c) => c.json(await deps.info()))
  app.get('/api/v1/openapi.json', (c) => c.json(openapi))
  // RFC 9110 §15.5.22: a 426 response MUST carry an Upgrade header naming the protocol to switch to
  app.get('/ws', (c) => c.json({ error: { code: ErrorCode.InvalidArgument, message: `this is the WebSocket endpoint: connect with a WebSocket client speaking ${PROTOCOL}` } }, 426, { Upgrade: 'websocket' }))
  for (const f of deps.features ?? defaultFeatures(deps)) f.routes?.(app)
  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path)
    if (allowed.length > 0) {
      c.header('Allow', allowed.join(', '))
      return told(c, new AgentMeshError(ErrorCode.MethodNotAllowed, `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(' or ')}`))
    }
    return told(c, new AgentMeshError(ErrorCode.NotFound, `no route ${c.req.method} ${c.req.path}; see /api/v1/openapi.json`))
  })
  app.onError((err, c) => {
    if (err instanceof AgentMeshError) return told(c, err)
    deps.log.error({ err }, 'unhandled HTTP error')
    return told(c, new AgentMeshError(ErrorCode.Internal, 'internal error; the relay logged the details'))
  })
  return app
}
