/**
 * @packageDocumentation
 * The default AgentMesh Store: an embedded SQLite file in WAL mode.
 *
 * @example
 * ```ts
 * import { sqliteStore } from '@agentmesh/store-sqlite'
 * const store = sqliteStore('./data/agentmesh.db', { synchronous: 'normal' })
 * ```
 */
export { sqliteStore, SCHEMA_VERSION, DB_FILE } from './sqlite-store.ts'
export type { SqliteStoreInit } from './sqlite-store.ts'
export { inspectDatabase, BACKUP_DIR } from './catastrophes.ts'
export type { DatabaseInfo } from './catastrophes.ts'
