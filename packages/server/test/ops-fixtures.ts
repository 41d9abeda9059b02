/**
 * The features of createRelay() for an in-process app (httpApp's `features`): registry,
 * reputation, the chat REST API and the operations features (docs/protocol.md §18–§21), so tests
 * that hold the served routes against the OpenAPI document see every route the relay serves.
 */
import { relayOptions, silentLogger, type RelayOutlet } from '@agentmesh/server'
import type { Store } from '@agentmesh/store'
import type { ChatService } from '../src/chat.ts'
import type { TaskService } from '../src/tasks.ts'
import type { RelayFeature } from '../src/feature.ts'
import { inProcessBackplane } from '../src/backplane.ts'
import { chatFeature } from '../src/features/chat.ts'
import { opsFeatures } from '../src/features/ops.ts'
import { a2aFeature } from '../src/features/a2a.ts'
import { registryFeature, reputationFeature } from '../src/features/registry.ts'
import { relayMetrics, zeroStats } from '../src/ops/metrics.ts'
import { wakeFeature } from '../src/wake/webhooks.ts'
import { ownersFeature } from '../src/features/owners.ts'
import { peerRecordsFeature } from '../src/p2p/records.ts'

export { zeroStats }

export function relayFeatures (c: { store: Store, chat: ChatService, tasks: TaskService, relayId: string, apiKey: string | undefined, outlet: RelayOutlet, now?: () => number }): RelayFeature[] {
  const now = c.now ?? Date.now
  const { store, chat } = c
  const registry = registryFeature({ store, now, trustRoots: [] })
  const chatApi = chatFeature({ chat, tasks: c.tasks, store, relayId: c.relayId, apiKey: c.apiKey, registry: () => registry.helpers() })
  const stats = zeroStats()
  const ctx = {
    store, logger: silentLogger, events: chat.events, relay: c.outlet, backplane: inProcessBackplane(), options: relayOptions(c.apiKey === undefined ? {} : { apiKey: c.apiKey }), now, chat,
    gate: () => chatApi.gate(), metrics: relayMetrics({ stats: () => stats, store, events: chat.events }), stats: () => stats,
  }
  const ops = opsFeatures(ctx)
  const a2a = a2aFeature({ store, logger: silentLogger, events: chat.events, relay: c.outlet, backplane: inProcessBackplane(), options: relayOptions({}), now, chat, tasks: c.tasks, gate: () => chatApi.gate() })
  // verified owners (§28; no provider: its routes answer AM_ERR_OIDC_UNAVAILABLE)
  const owners = ownersFeature({ store, oidc: undefined, registry: () => registry.helpers(), relayAmid: () => chat.relayAmid, audit: async (a, action, target, detail) => { await chat.audit(a, action, target, detail) }, apiKey: c.apiKey, baseUrl: () => 'http://127.0.0.1', now, log: silentLogger })
  // the wake-ups (§26): wake webhooks; the A2A bridge (§24)
  // direct links (§30): the signed peer records (the circuit relay has no routes)
  const peerRecords = peerRecordsFeature({ store, now, registry: () => registry.helpers() })
  return [registry, reputationFeature({ store, now, registry }), chatApi, ...ops, owners, wakeFeature(ctx), a2a, peerRecords]
}
