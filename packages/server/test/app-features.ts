/**
 * The features createRelay() serves (registry, reputation, the chat REST API v1, tasks and the
 * operations features), for tests that mount them on `httpApp` in process: the route tests hold
 * every route the app serves against the OpenAPI document, so they serve all of them.
 */
import type { Store } from '@agentmesh/store'
import { silentLogger } from '@agentmesh/server'
import type { RelayFeature } from '../src/feature.ts'
import type { ChatService } from '../src/chat.ts'
import type { TaskService } from '../src/tasks.ts'
import type { RelayOutlet } from '../src/relay.ts'
import { inProcessBackplane } from '../src/backplane.ts'
import { EventBus } from '../src/events.ts'
import { relayOptions } from '../src/options.ts'
import { chatFeature } from '../src/features/chat.ts'
import { opsFeatures } from '../src/features/ops.ts'
import { registryFeature, reputationFeature } from '../src/features/registry.ts'

export async function relayFeatures (c: { store: Store, chat: ChatService, tasks: TaskService, outlet: RelayOutlet, apiKey?: string }): Promise<RelayFeature[]> {
  const { store, chat, tasks, outlet } = c
  const registry = registryFeature({ store, now: Date.now, trustRoots: [] })
  const chatApi = chatFeature({ chat, tasks, store, relayId: await store.relayId(), apiKey: c.apiKey, registry: () => registry.helpers() })
  const components = { store, logger: silentLogger, events: new EventBus(), relay: outlet, backplane: inProcessBackplane(), options: relayOptions(), now: Date.now }
  return [registry, reputationFeature({ store, now: Date.now, registry }), chatApi, ...opsFeatures({ ...components, chat, gate: () => chatApi.gate() })]
}
