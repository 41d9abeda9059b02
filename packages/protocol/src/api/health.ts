/**
 * Agent health and relay metrics (docs/protocol.md §21): the bounds of a heartbeat and the schemas
 * of its routes. The operations routes use the plan's camelCase JSON names, on the canonical
 * `/api/v1/…` paths and on the plan's `/api/…` paths alike.
 */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_PAGE } from './constants.ts'

/** What an agent may say of itself; `offline` is the relay's word (no connection, or silent too long). */
export const HEALTH_STATES = ['healthy', 'degraded', 'unhealthy'] as const
export type HealthState = typeof HEALTH_STATES[number]
/** What the relay reports for an agent: its own word, `offline`, or `unknown` (connected, never heartbeated). */
export const DERIVED_HEALTH_STATES = ['healthy', 'degraded', 'unhealthy', 'offline', 'unknown'] as const
export type DerivedHealthState = typeof DERIVED_HEALTH_STATES[number]

/** Most custom metrics in one heartbeat. */
export const MAX_CUSTOM_METRICS = 32
/** A custom metric's name: 1–64 of A-Z a-z 0-9 _ . : - */
export const CUSTOM_METRIC_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$'
/** Longest string value of a custom metric, in characters. */
export const MAX_CUSTOM_METRIC_STRING = 256
/** Largest custom metrics object, as JSON. */
export const MAX_CUSTOM_METRICS_BYTES = 4096
/** Longest uptime an agent may report: 100 years, in seconds. */
export const MAX_UPTIME_SECONDS = 100 * 365 * 86_400
/** Longest version string in a heartbeat. */
export const MAX_HEALTH_VERSION_LENGTH = 64
/** Health changes kept per agent by default (relay option healthHistory). */
export const DEFAULT_HEALTH_HISTORY = 100
/** Health changes answered by GET …/health by default (`historyLimit`). */
export const DEFAULT_HEALTH_HISTORY_PAGE = 20

const State = Type.Union(HEALTH_STATES.map(s => Type.Literal(s)))
const Derived = Type.Union(DERIVED_HEALTH_STATES.map(s => Type.Literal(s)))
const ms = (description = 'ms since the Unix epoch') => Type.Integer({ description })

export const HealthParams = Type.Object({ amid: Type.String({ minLength: 1, maxLength: 128, description: 'an AMID, or @handle (a bare handle works too)' }) })
export const PlanHealthParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'an AMID, or @handle (a bare handle works too)' }) })

export const CustomMetrics = Type.Record(Type.String({ pattern: CUSTOM_METRIC_NAME_PATTERN }), Type.Union([
  Type.Number(), Type.String({ maxLength: MAX_CUSTOM_METRIC_STRING }), Type.Boolean(),
]), { maxProperties: MAX_CUSTOM_METRICS, description: `the agent's own figures: at most ${MAX_CUSTOM_METRICS} names (${CUSTOM_METRIC_NAME_PATTERN}), each a finite number, a string of at most ${MAX_CUSTOM_METRIC_STRING} characters or a boolean; at most ${MAX_CUSTOM_METRICS_BYTES} bytes as JSON` })

export const HeartbeatBody = Type.Object({
  agentId: Type.Optional(Type.String({ description: 'the agent the heartbeat is for: must be the caller (or the caller is a master); the path names it too' })),
  status: State,
  uptimeSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_UPTIME_SECONDS, description: 'seconds the agent\'s process has run' })),
  cpuUsage: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'CPU the agent\'s process used since its previous heartbeat, in % of the whole machine (all cores): 0–100' })),
  memoryUsage: Type.Optional(Type.Integer({ minimum: 0, description: 'the agent process\'s resident memory (RSS), in bytes' })),
  customMetrics: Type.Optional(CustomMetrics),
  version: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_HEALTH_VERSION_LENGTH, description: 'the agent\'s software version' })),
}, { additionalProperties: false, $id: 'HeartbeatBody' })
export type HeartbeatBody = Static<typeof HeartbeatBody>

export const HeartbeatTaken = Type.Object({
  success: Type.Literal(true),
  agentId: Type.String(),
  status: State,
  receivedAt: ms('when the relay took it'),
  offlineAfterSeconds: Type.Integer({ description: 'the agent counts as offline once it is silent this long: heartbeat more often' }),
})

export const Heartbeat = Type.Object({
  status: State,
  uptimeSeconds: Type.Optional(Type.Number()),
  cpuUsage: Type.Optional(Type.Number()),
  memoryUsage: Type.Optional(Type.Integer()),
  customMetrics: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean()]))),
  version: Type.Optional(Type.String()),
  at: ms('when the relay took it'),
}, { $id: 'Heartbeat' })

export const HealthChangeEntry = Type.Object({
  at: ms(),
  from: Derived,
  to: Derived,
  reason: Type.String({ description: 'heartbeat, silent (no heartbeat within the offline time) or disconnected' }),
}, { $id: 'HealthChange' })

export const HealthQuery = Type.Object({
  historyLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PAGE, default: DEFAULT_HEALTH_HISTORY_PAGE, description: 'how many of the newest health changes to answer' })),
})

export const AgentHealth = Type.Object({
  agentId: Type.String(),
  handle: Type.Optional(Type.String()),
  status: Derived,
  connected: Type.Boolean({ description: 'the agent has a WebSocket connection to the relay' }),
  lastHeartbeat: Type.Union([Heartbeat, Type.Null()]),
  history: Type.Array(HealthChangeEntry, { description: 'the newest health changes, newest first' }),
}, { $id: 'AgentHealth' })

export const DashboardQuery = Type.Object({
  after: Type.Optional(Type.String({ description: 'an AMID: agentList starts after it (nextAfter of the previous page)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100, description: 'agents in agentList' })),
})

export const DashboardAgent = Type.Object({
  amid: Type.String(),
  handle: Type.Optional(Type.String()),
  status: Derived,
  lastHeartbeatAt: Type.Union([ms(), Type.Null()]),
  version: Type.Optional(Type.String()),
})

export const HealthDashboard = Type.Object({
  totalAgents: Type.Integer({ description: 'agents registered on the relay: healthy + degraded + unhealthy + offline + unknown' }),
  healthy: Type.Integer(),
  degraded: Type.Integer(),
  unhealthy: Type.Integer(),
  offline: Type.Integer(),
  unknown: Type.Integer({ description: 'connected agents that never sent a heartbeat' }),
  criticalEvents: Type.Integer({ description: 'catastrophe events of severity critical not resolved (§20)' }),
  lastCatastrophe: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'the newest catastrophe event (§20), or null' }),
  agentList: Type.Array(DashboardAgent, { description: 'one page of agents by AMID' }),
  nextAfter: Type.Optional(Type.String({ description: 'pass as after for the next page; absent on the last one' })),
  offlineAfterSeconds: Type.Integer(),
  generatedAt: ms(),
}, { $id: 'HealthDashboard' })
export type HealthDashboard = Static<typeof HealthDashboard>

export const MetricsText = Type.String({ description: 'Prometheus text exposition format 0.0.4' })
