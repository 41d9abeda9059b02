/**
 * Chat (rooms, DMs, handles, roles, presence, settings, audit) and tasks in chat as features. The
 * chat feature serves the REST API v1 (api-v1.ts) over both, authenticated with the registry's
 * signed requests, tokens or the operator key.
 */
import type { Store } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import type { ChatService } from '../chat.ts'
import type { TaskService } from '../tasks.ts'
import type { RegistryHelpers } from '../registry.ts'
import type { AuditHeadLog } from '../audit-heads.ts'
import { apiV1Routes, readJson, type ApiDeps } from '../api-v1.ts'
import { authenticator } from '../auth.ts'

/** The REST API v1 routes, given the registry's helpers (what httpApp's `api` option builds). */
export function apiFeature (api: () => ApiDeps): RelayFeature {
  return { name: 'api-v1', routes (app) { apiV1Routes(app, api()) } }
}

export function chatFeature (c: { chat: ChatService, tasks: TaskService, store: Store, relayId: string, apiKey: string | undefined, registry: () => RegistryHelpers, auditHeads?: AuditHeadLog }): RelayFeature {
  const api = apiFeature(() => ({
    ...(c.auditHeads === undefined ? {} : { auditHeads: c.auditHeads }),
    store: c.store,
    chat: c.chat,
    tasks: c.tasks,
    auth: authenticator({ store: c.store, relay: c.chat.relay, relayId: c.relayId, apiKey: c.apiKey, signed: c.registry().signed, readBody: readJson }),
  }))
  return {
    name: 'chat',
    routes: api.routes,
    start () { c.chat.start() },
    stop () { c.chat.stop() },
  }
}

export function tasksFeature (tasks: TaskService): RelayFeature {
  return {
    name: 'tasks',
    start () { tasks.start() },
    stop () { tasks.stop() },
  }
}
