import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'
import { checkTrustRoots } from './certificates.ts'
import { DEFAULT_REPUTATION, reputationOptions, type ReputationOptions } from './reputation.ts'

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
  /** @default a pino logger at 'info' on stderr */
  logger?: Logger
}

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
  }
}

const INT_FIELDS = [
  'port', 'maxEnvelopeBytes', 'maxInFlight', 'deliveryWindow', 'maxConnectionsPerAgent', 'maxConnections',
  'heartbeatMs', 'authTimeoutMs', 'retransmitMs', 'retentionMs', 'maxInbox',
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
  return o
}
