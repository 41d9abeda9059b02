import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'
import { checkTrustRoots } from './certificates.ts'
import { DEFAULT_REPUTATION, reputationOptions, type ReputationOptions } from './reputation.ts'
import type { RateLimit } from '@agentmesh/protocol/internal'

export const DEFAULT_HISTORY_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
export const DEFAULT_AUDIT_RETENTION_MS = 90 * 24 * 60 * 60 * 1000
/** Audit rows a `memory` relay keeps (a persistent one keeps what its retention allows). */
export const DEFAULT_MEMORY_AUDIT_MAX_ROWS = 100_000

/** User options of a relay. Every limit has a default; see docs/configuration in the README. */
export interface RelayInit {
  /** @default '127.0.0.1' */
  host?: string
  /** 0 picks a free port. @default 7777 */
  port?: number
  /** Directory of the SQLite database. @default './data' */
  dataDir?: string
  /** Keep everything in memory (nothing survives a restart). @default false */
  memory?: boolean
  /** A ready Store; overrides dataDir and memory. */
  store?: Store
  /** SQLite durability: 'normal' survives a process crash, 'full' also power loss. @default 'normal' */
  sync?: 'normal' | 'full'
  /** Largest envelope accepted, in bytes. @default 1 MiB */
  maxEnvelopeBytes?: number
  /** Sends one connection may have awaiting their ack. @default 1024 */
  maxInFlight?: number
  /** Deliveries sent ahead of the receiver's cursor, per connection. @default 1024 */
  deliveryWindow?: number
  /** Authenticated connections per agent. @default 8 */
  maxConnectionsPerAgent?: number
  /** Connections in total. @default 10,000 */
  maxConnections?: number
  /** WebSocket ping interval; a connection silent for a whole interval is closed. @default 30 s */
  heartbeatMs?: number
  /** Time allowed to answer the challenge. @default 10 s */
  authTimeoutMs?: number
  /** Unacknowledged deliveries are sent again after this long. @default 15 s */
  retransmitMs?: number
  /** How long undelivered messages and dedupe memory are kept. @default 30 days */
  retentionMs?: number
  /** Undelivered messages per inbox. @default 100,000 */
  maxInbox?: number
  /** Check every envelope's Ed25519 signature before storing it. @default true */
  verifySignatures?: boolean
  /**
   * Root CA certificates (PEM texts; one may hold several) that agents' published certificate
   * chains are verified against (docs/protocol.md §13.1). `loadTrustRoots(path)` reads them from a
   * file. @default none: only self-signed (anonymous) certificates verify
   */
  trustRoots?: readonly string[]
  /**
   * Reputation rules (docs/protocol.md §15); fields left out keep their defaults:
   * `anonymousWeight` 0.5, `mutualDiscount` 0.2, `flagDelta` 0.2, `flagWindowMs` 24 h,
   * `maxFeedbackPerHour` 60.
   */
  reputation?: Partial<ReputationOptions>
  /**
   * The operator's API key (`X-API-Key`, docs/protocol.md §17.8), at least 16 characters.
   * @default a persistent relay makes one in `<dataDir>/api-key` (0600); a memory relay has none
   */
  apiKey?: string
  /** Room history is kept this long (persistent stores). @default 30 days */
  historyRetentionMs?: number
  /** Room history entries kept per room. @default 1,000 with `memory`, 1,000,000 persisted */
  historyMaxPerRoom?: number
  /** An online agent that sent nothing for this long shows as idle. @default 5 minutes */
  presenceIdleMs?: number
  /** Audit rows are kept this long (checked every minute; docs/protocol.md §17.8). @default 90 days */
  auditRetentionMs?: number
  /** Audit rows kept at most. @default 100,000 with `memory`, no count limit persisted */
  auditMaxRows?: number
  /**
   * Rate limits (token buckets, per minute with a burst), docs/protocol.md §17.8: REST per agent
   * 120/60, per IP 600/200; chat events per agent 600/120, per IP 1,200/240.
   */
  rateLimits?: Partial<Record<RateLimitName, Partial<RateLimit>>>
  /** @default a pino logger at 'info' on stderr */
  logger?: Logger
}

export type RateLimitName = 'api' | 'ip' | 'chat' | 'chatIp'

export interface RelayOptions {
  host: string
  port: number
  dataDir: string
  memory: boolean
  sync: 'normal' | 'full'
  maxEnvelopeBytes: number
  maxInFlight: number
  deliveryWindow: number
  maxConnectionsPerAgent: number
  maxConnections: number
  heartbeatMs: number
  authTimeoutMs: number
  retransmitMs: number
  retentionMs: number
  maxInbox: number
  verifySignatures: boolean
  /** One PEM root CA certificate per entry. */
  trustRoots: string[]
  reputation: ReputationOptions
  apiKey: string | undefined
  historyRetentionMs: number
  historyMaxPerRoom: number | undefined
  presenceIdleMs: number | undefined
  auditRetentionMs: number
  auditMaxRows: number | undefined
  rateLimits: Partial<Record<RateLimitName, Partial<RateLimit>>>
}

export function defaultOptions (): RelayOptions {
  return {
    host: constants.DEFAULT_HOST,
    port: constants.DEFAULT_PORT,
    dataDir: './data',
    memory: false,
    sync: 'normal',
    maxEnvelopeBytes: constants.DEFAULT_MAX_ENVELOPE_BYTES,
    maxInFlight: constants.DEFAULT_MAX_IN_FLIGHT,
    deliveryWindow: constants.DEFAULT_DELIVERY_WINDOW,
    maxConnectionsPerAgent: constants.DEFAULT_MAX_CONNECTIONS_PER_AGENT,
    maxConnections: constants.DEFAULT_MAX_CONNECTIONS,
    heartbeatMs: constants.DEFAULT_HEARTBEAT_MS,
    authTimeoutMs: constants.DEFAULT_AUTH_TIMEOUT_MS,
    retransmitMs: constants.DEFAULT_RETRANSMIT_MS,
    retentionMs: constants.DEFAULT_RETENTION_MS,
    maxInbox: constants.DEFAULT_MAX_INBOX,
    verifySignatures: true,
    trustRoots: [],
    reputation: { ...DEFAULT_REPUTATION },
    apiKey: undefined,
    historyRetentionMs: DEFAULT_HISTORY_RETENTION_MS,
    historyMaxPerRoom: undefined,
    presenceIdleMs: undefined,
    auditRetentionMs: DEFAULT_AUDIT_RETENTION_MS,
    auditMaxRows: undefined,
    rateLimits: {},
  }
}

const INT_FIELDS = [
  'port', 'maxEnvelopeBytes', 'maxInFlight', 'deliveryWindow', 'maxConnectionsPerAgent', 'maxConnections',
  'heartbeatMs', 'authTimeoutMs', 'retransmitMs', 'retentionMs', 'maxInbox', 'historyRetentionMs', 'auditRetentionMs',
] as const

/** Merges user options over the defaults and validates them, before any I/O. */
export function relayOptions (init: RelayInit = {}): RelayOptions {
  const o = defaultOptions()
  const bad = (field: string, why: string): AgentMeshError =>
    new AgentMeshError(ErrorCode.InvalidConfig, `relay option ${field} ${why}`)
  for (const k of INT_FIELDS) {
    const v = init[k]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'port' ? 0 : 1)) throw bad(k, `must be a ${k === 'port' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`)
    o[k] = v
  }
  if (o.port > 65535) throw bad('port', `must be at most 65535, got ${o.port}`)
  if (init.host !== undefined) {
    if (typeof init.host !== 'string' || init.host === '') throw bad('host', 'must be a non-empty string')
    o.host = init.host
  }
  if (init.dataDir !== undefined) {
    if (typeof init.dataDir !== 'string' || init.dataDir === '') throw bad('dataDir', 'must be a non-empty path')
    o.dataDir = init.dataDir
  }
  for (const k of ['memory', 'verifySignatures'] as const) {
    // a string such as "false" from a config source must not silently mean the opposite
    if (init[k] !== undefined && typeof init[k] !== 'boolean') throw bad(k, `must be true or false, got ${JSON.stringify(init[k])}`)
  }
  if (init.memory !== undefined) o.memory = init.memory === true
  if (init.memory === true && init.dataDir !== undefined) throw bad('memory', 'and dataDir are mutually exclusive')
  if (init.sync !== undefined) {
    if (init.sync !== 'normal' && init.sync !== 'full') throw bad('sync', `must be "normal" or "full", got ${JSON.stringify(init.sync)}`)
    o.sync = init.sync
  }
  if (init.verifySignatures !== undefined) o.verifySignatures = init.verifySignatures !== false
  if (init.trustRoots !== undefined) {
    if (!Array.isArray(init.trustRoots)) throw bad('trustRoots', `must be a list of PEM texts, got ${typeof init.trustRoots}`)
    o.trustRoots = checkTrustRoots(init.trustRoots, (why) => bad('trustRoots', why))
  }
  o.reputation = reputationOptions(init.reputation, bad)
  for (const k of ['historyMaxPerRoom', 'presenceIdleMs', 'auditMaxRows'] as const) {
    const v = init[k]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(k, `must be a positive integer, got ${JSON.stringify(v)}`)
    o[k] = v
  }
  if (o.presenceIdleMs !== undefined && o.presenceIdleMs < 1000) throw bad('presenceIdleMs', 'must be at least 1000 (ms)')
  if (init.apiKey !== undefined) {
    if (typeof init.apiKey !== 'string' || init.apiKey.length < 16 || init.apiKey.length > 256 || /\s/.test(init.apiKey)) throw bad('apiKey', 'must be 16–256 characters without spaces')
    o.apiKey = init.apiKey
  }
  if (init.rateLimits !== undefined) {
    if (typeof init.rateLimits !== 'object' || init.rateLimits === null) throw bad('rateLimits', 'must be an object')
    for (const [name, lim] of Object.entries(init.rateLimits)) {
      if (!['api', 'ip', 'chat', 'chatIp'].includes(name)) throw bad(`rateLimits.${name}`, 'is not a limit (api, ip, chat, chatIp)')
      if (typeof lim !== 'object' || lim === null) throw bad(`rateLimits.${name}`, 'must be an object { perMinute, burst }')
      const out: Partial<RateLimit> = {}
      for (const [f, v] of Object.entries(lim)) {
        if (f !== 'perMinute' && f !== 'burst') throw bad(`rateLimits.${name}.${f}`, 'is not a field (perMinute, burst)')
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000) throw bad(`rateLimits.${name}.${f}`, `must be a whole number from 1 to 1,000,000, got ${JSON.stringify(v)}`)
        out[f] = v
      }
      o.rateLimits[name as RateLimitName] = out
    }
  }
  return o
}
