/**
 * @packageDocumentation
 * Shared compliance suites: every implementation of a pluggable role runs the same cases,
 * so the in-memory, SQLite and later PostgreSQL stores are held to one contract.
 *
 * @example
 * ```ts
 * import storeSuite from '@agentmesh/compliance-tests/store'
 * import { memoryStore } from '@agentmesh/store'
 *
 * storeSuite({
 *   name: 'memory',
 *   setup: async (init) => memoryStore(init),
 *   teardown: async (store) => { await store.close() },
 * })
 * ```
 */
export { default as storeSuite } from './store.ts'
export type { StoreSuiteInit } from './store.ts'
