/**
 * What the operations features (files, system updates, catastrophe events, agent health: docs/
 * protocol.md §18–§21) are built from: the relay's components, the chat layer (roles, audit,
 * the relay's identity) and the REST gate they share with the chat API (authentication and rate
 * limits), given once the chat feature's routes exist.
 */
import type { ChatService } from '../chat.ts'
import type { ApiGate } from '../api-v1.ts'
import type { FeatureComponents } from '../feature.ts'
import type { RelayStats } from '../relay.ts'
import type { RelayMetrics } from './metrics.ts'
import type { ReadOnlyMode } from './read-only.ts'

export interface OpsContext extends FeatureComponents {
  chat: ChatService
  /** the REST gate (authenticator, rate limits); call it in routes(), not before */
  gate: () => ApiGate
  /** the relay's Prometheus metrics (GET /metrics): register a feature's figures with metrics.gauge / metrics.counter */
  metrics: RelayMetrics
  /** the core's counters (connections, messages in and out…) */
  stats: () => RelayStats
  /** read-only mode (§20): whether writes are refused, and why; the relay's own. @default off, never entered */
  readOnly?: ReadOnlyMode
  /**
   * Whether this node is the only one over its Store, so the run marker tells an unclean stop
   * (§20.2); nodes sharing a Store over a backplane would see each other's. @default true
   */
  soleNode?: boolean
}
