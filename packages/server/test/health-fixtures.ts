/**
 * The health feature in process (docs/protocol.md §21): httpApp with the chat API (for its gate)
 * and the operations features over a memory store, a fake clock, an outlet that records the event
 * frames it is asked to write and answers the connected agents the test says.
 */
import { createIdentity, signRequest, type Identity } from '@agentmesh/crypto'
import { relayOptions, silentLogger } from '@agentmesh/server'
import { httpApp } from '@agentmesh/server/internal'
import { memoryStore, type AppendItem, type AuditInput, type Store } from '@agentmesh/store'
import { apiGate, readJson, type ApiGate } from '../src/api-v1.ts'
import { authenticator } from '../src/auth.ts'
import { ChatService, DEFAULT_CHAT_LIMITS, defaultChatSettings } from '../src/chat.ts'
import { EventBus } from '../src/events.ts'
import { inProcessBackplane } from '../src/backplane.ts'
import { apiFeature, chatFeature } from '../src/features/chat.ts'
import { registryFeature } from '../src/features/registry.ts'
import { TaskService } from '../src/tasks.ts'
import { healthFeature, type HealthFeature, type HealthFeatureInit } from '../src/ops/health.ts'
import { relayMetrics, type RelayMetrics } from '../src/ops/metrics.ts'
import type { RelayStats } from '../src/relay.ts'
import type { OpsContext } from '../src/ops/context.ts'
import type { RelayInit } from '../src/options.ts'

export type Json = Record<string, any>
export const API_KEY = 'operator-key-for-tests-0123456789'
export const T0 = 1_700_000_000_000

export interface HealthApp {
  app: ReturnType<typeof httpApp>
  store: Store
  chat: ChatService
  events: EventBus
  health: HealthFeature
  metrics: RelayMetrics
  clock: { t: number }
  /** agents the outlet says are connected */
  online: Set<string>
  /** event frames written, with their recipients */
  frames: Array<{ to: string[], event: Json }>
  stats: RelayStats
  /** a REST call: by an agent (signed request) or the operator */
  call: (who: Identity | 'operator' | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number, body: Json, text: string, headers: Headers }>
  close: () => Promise<void>
}

export async function healthApp (agents: Identity[], init: RelayInit = {}, feature: HealthFeatureInit = {}): Promise<HealthApp> {
  const store = memoryStore()
  const clock = { t: T0 }
  const now = (): number => clock.t
  for (const a of agents) await store.upsertAgent({ amid: a.amid, seenAt: T0 })
  const relayId = await store.relayId()
  const online = new Set<string>()
  const frames: Array<{ to: string[], event: Json }> = []
  const outlet = {
    post: async (item: AppendItem, audit?: AuditInput[]) => (await store.commit([item], [], audit ?? []))[0]!,
    event: (amids: Iterable<string>, frame: string) => { frames.push({ to: [...amids].sort(), event: (JSON.parse(frame) as Json).event }) },
    online: () => [...online],
  }
  const events = new EventBus(silentLogger)
  const chat = await ChatService.open(store, { limits: { ...DEFAULT_CHAT_LIMITS }, settings: defaultChatSettings(), log: silentLogger, outlet, events, now })
  const tasks = new TaskService(chat, store, silentLogger)
  const options = relayOptions({ apiKey: API_KEY, ...init })
  const stats: RelayStats = { connections: 0, agentsOnline: 0, received: 0, delivered: 0, duplicates: 0, rejected: 0, commits: 0, slowConsumers: 0, errorsLeftOut: 0, errorFloods: 0, pauses: 0, eventsDropped: 0, queuedBytes: 0, pausedConnections: 0 }
  const metrics = relayMetrics({ stats: () => stats, store, events })
  const registry = registryFeature({ store, now, trustRoots: [] })
  let gate: ApiGate | undefined
  const api = apiFeature(() => {
    const auth = authenticator({ store, relay: chat.relay, relayId, apiKey: API_KEY, signed: registry.helpers().signed, readBody: readJson })
    gate = apiGate(chat, auth)
    return { store, chat, tasks, auth, gate }
  })
  void chatFeature // the relay's own composition; here the API feature alone gives the gate
  const ctx: OpsContext = {
    store, logger: silentLogger, events, relay: outlet, backplane: inProcessBackplane(), options, now, chat,
    gate: () => gate!, metrics, stats: () => stats,
  }
  const health = healthFeature(ctx, feature)
  const app = httpApp({ log: silentLogger, store, events, healthy: () => true, info: async () => ({}), features: [registry, api, health] })
  await health.start?.()
  const call: HealthApp['call'] = async (who, method, path, body, extra = {}) => {
    const text = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = { ...(text === undefined ? {} : { 'content-type': 'application/json' }), ...extra }
    if (who === 'operator') headers['x-api-key'] = API_KEY
    else if (who !== undefined) Object.assign(headers, signRequest(who, method, path, text ?? '', clock.t))
    const res = await app.request(path, { method, headers, ...(text === undefined ? {} : { body: text }) })
    const t = await res.text()
    let json: Json = {}
    try { json = JSON.parse(t) as Json } catch {}
    return { status: res.status, body: json, text: t, headers: res.headers }
  }
  return {
    app, store, chat, events, health, metrics, clock, online, frames, stats, call,
    close: async () => { await health.stop?.(); await store.close() },
  }
}

export function agents (...names: string[]): Identity[] { return names.map(n => createIdentity(n)) }
