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
 *
 * An adapter built for one slice of the Store runs that slice's suite only:
 *
 * ```ts
 * import { auditSuite } from '@agentmesh/compliance-tests'
 * auditSuite({ name: 'my audit log', setup: async () => myAuditStore(), teardown: async (s) => { await s.close() } })
 * ```
 */
export { default as storeSuite } from './store.ts'
export type { StoreSuiteInit } from './store.ts'
export type { SuiteInit, WithStore } from './store/fixtures.ts'
export { auditSuite } from './store/audit.ts'
export type { AuditSuiteStore } from './store/audit.ts'
export { certificatesSuite } from './store/certificates.ts'
export type { CertificatesSuiteStore } from './store/certificates.ts'
export { handlesSuite } from './store/handles.ts'
export type { HandlesSuiteStore } from './store/handles.ts'
export { messagesSuite } from './store/messages.ts'
export type { MessagesSuiteStore } from './store/messages.ts'
export { registrySuite } from './store/registry.ts'
export type { RegistrySuiteStore } from './store/registry.ts'
export { reputationSuite } from './store/reputation.ts'
export type { ReputationSuiteStore } from './store/reputation.ts'
export { rolesSuite } from './store/roles.ts'
export type { RolesSuiteStore } from './store/roles.ts'
export { roomsSuite } from './store/rooms.ts'
export type { RoomsSuiteStore } from './store/rooms.ts'
export { settingsSuite } from './store/settings.ts'
export type { SettingsSuiteStore } from './store/settings.ts'
export { tasksSuite } from './store/tasks.ts'
export type { TasksSuiteStore } from './store/tasks.ts'
export { filesSuite } from './store/files.ts'
export type { FilesSuiteStore } from './store/files.ts'
export { updatesSuite } from './store/updates.ts'
export type { UpdatesSuiteStore } from './store/updates.ts'
export { healthSuite } from './store/health.ts'
export type { HealthSuiteStore } from './store/health.ts'
export { webhooksSuite } from './store/webhooks.ts'
export type { WebhooksSuiteStore } from './store/webhooks.ts'
