/**
 * @packageDocumentation
 * The AgentMesh Store on PostgreSQL: one database (or schema) that several relays may share.
 *
 * @example
 * ```ts
 * import { postgresStore } from '@agentmesh/store-postgres'
 * const store = await postgresStore('postgres://agentmesh@127.0.0.1:5432/agentmesh', { maxConnections: 10 })
 * ```
 */
export { postgresStore, migrate, schemaOf } from './pg-store.ts'
export type { PostgresStoreInit } from './pg-store.ts'
export { LATEST_VERSION, MIGRATIONS } from './schema.ts'
export { createPool, redact } from './db.ts'
export type { PoolInit } from './db.ts'

/** True for a `--store` value that names a PostgreSQL database. */
export const isPostgresUrl = (s: string): boolean => /^postgres(ql)?:\/\//i.test(s)
