/**
 * @packageDocumentation
 * The AgentMesh relay: WebSocket store-and-forward with at-least-once delivery, and the HTTP API,
 * on one port, over a pluggable Store given as a component (in memory when none is given; the
 * CLI's `serve` opens SQLite).
 *
 * @example
 * ```ts
 * import { createRelay } from '@agentmesh/server'
 * import { sqliteStore } from '@agentmesh/store-sqlite'
 * const relay = await createRelay({ port: 7777 }, { store: sqliteStore('./data/agentmesh.db') })
 * console.log(relay.url) // http://127.0.0.1:7777
 * await relay.close()
 * ```
 */
export { createRelay, VERSION } from './relay-server.ts'
export type { Relay, RelayComponents, RelayServerInit } from './relay-server.ts'
export { relayOptions, defaultOptions, relayOptionSpecs, literalsOf, jsonTypeOf, storageOf } from './options.ts'
export type { RelayInit, RelayOptions, RelayConfig, RelayOptionName, OptionSpec, FlagSpec, Storage } from './options.ts'
export { defaultLogger, silentLogger } from './log.ts'
export { loadTrustRoots, MAX_TRUST_ROOTS } from './certificates.ts'
export { loadTls, readClientTls, isLoopbackHost, HSTS_HEADER, TLS_WATCH_INTERVAL_MS } from './tls.ts'
export type { ClientTls } from './tls.ts'
export type { Logger } from './log.ts'
export type { CatchUpResult, RelayStats, RelayOutlet, RoomResolver } from './relay.ts'
export { inProcessBackplane, MAX_IN_PROCESS_SUBSCRIBERS } from './backplane.ts'
export type { Backplane, BackplaneMessage, CacheKind } from './backplane.ts'
export { EventBus } from './events.ts'
export type { RelayEvents } from './events.ts'
export type { RelayFeature, FeatureComponents, FeatureFactory } from './feature.ts'
export { memoryAuditHeads, newestValidHead, validHeads, AuditHeadSigner, DEFAULT_AUDIT_HEAD_EVERY_ROWS, DEFAULT_AUDIT_HEAD_INTERVAL_MS } from './audit-heads.ts'
export type { AuditHeadLog, AuditHead } from './audit-heads.ts'
