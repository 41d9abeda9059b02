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
import { apiGate, apiV1Routes, readJson, type ApiDeps, type ApiGate } from '../api-v1.ts'
import { authenticator } from '../auth.ts'

/** The REST API v1 routes, given the registry's helpers (what httpApp's `api` option builds). */
export function apiFeature (api: () => ApiDeps): RelayFeature {
  return { name: 'api-v1', routes (app) { apiV1Routes(app, api()) } }
}

export interface ChatFeature extends RelayFeature {
  /** The authenticator and the shared rate limits of the REST API, once routes() ran (other features' routes go through it). */
  gate (): ApiGate
}

export function chatFeature (c: { chat: ChatService, tasks: TaskService, store: Store, relayId: string, apiKey: string | undefined, registry: () => RegistryHelpers, auditHeads?: AuditHeadLog }): ChatFeature {
  let gate: ApiGate | undefined
  const api = apiFeature(() => {
    const auth = authenticator({ store: c.store, relay: c.chat.relay, relayId: c.relayId, apiKey: c.apiKey, signed: c.registry().signed, readBody: readJson })
    gate = apiGate(c.chat, auth)
    return {
      ...(c.auditHeads === undefined ? {} : { auditHeads: c.auditHeads }),
      store: c.store,
      chat: c.chat,
      tasks: c.tasks,
      auth,
      gate,
    }
  })
  return {
    name: 'chat',
    routes: api.routes,
    gate () {
      if (gate === undefined) throw new Error('the chat feature has no routes yet: its API gate exists once routes() ran')
      return gate
    },
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
