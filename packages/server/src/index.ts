/**
 * @packageDocumentation
 * The AgentMesh relay: WebSocket store-and-forward with at-least-once delivery, and the HTTP API,
 * on one port, over a pluggable Store (SQLite by default).
 *
 * @example
 * ```ts
 * import { createRelay } from '@agentmesh/server'
 * const relay = await createRelay({ port: 7777, dataDir: './data' })
 * console.log(relay.url) // http://127.0.0.1:7777
 * await relay.close()
 * ```
 */
export { createRelay, VERSION } from './relay-server.ts'
export type { Relay } from './relay-server.ts'
export { relayOptions, defaultOptions, relayOptionSpecs, literalsOf, jsonTypeOf, storageOf } from './options.ts'
export type { RelayInit, RelayOptions, RelayConfig, RelayOptionName, OptionSpec, FlagSpec, Storage } from './options.ts'
export { defaultLogger, silentLogger } from './log.ts'
export { loadTrustRoots, MAX_TRUST_ROOTS } from './certificates.ts'
export type { Logger } from './log.ts'
export type { RelayStats } from './relay.ts'
