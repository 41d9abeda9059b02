/**
 * @packageDocumentation
 * The `Store` interface every relay backend implements, and the in-memory store.
 *
 * @example
 * ```ts
 * import { memoryStore } from '@agentmesh/store'
 * const store = memoryStore({ maxInbox: 1000 })
 * const [r] = await store.commit([{ sender, id, recipient, envelope, receivedAt: Date.now() }], [])
 * ```
 */
export { memoryStore } from './memory.ts'
export { compareCatastrophesNewestFirst } from './memory/catastrophes.ts'
export { storeOptions } from './options.ts'
export type { StoreOptions } from './options.ts'
export { auditHash, chainAudit, verifyAudit, AuditVerifier, currentHeads, AUDIT_HASH_PREFIX, AUDIT_PRUNED_ACTION, auditPruneUpTo, auditPrunedRow, batchAuditRow, AUDIT_BATCH_ACTION } from './audit.ts'
export type { AuditCheck, AuditHeadRef, AuditProblem } from './audit.ts'
export { profileMatches, searchText, crlPutResult, compareCrls } from './registry.ts'
export type {
  Store, StoreBase, RegistryStore, MessageStore, CertificateStore, ReputationStore, HandleStore, RoleStore, RoomStore,
  TaskStore, AuditStore, SettingsStore, HealthStore, HealthStatus, WebhookStore, WebhookRecord, HeartbeatRecord, HealthChange, StoreInit, AgentRecord, AppendItem, AppendResult, CursorAck, RoomDelivery, RoomFeed, AgentOnline, AgentOnlineResult, InboxState, StoredMessage,
  AgentProfile, Skill, TrustTier, ProfileQuery, PrekeyUpload, TakenBundle, OneTimePrekey, PqOneTimePrekey,
  CertificateRecord, CertificateLink, CaCertificateRecord, CrlRecord, PutCrlResult,
  FeedbackRecord, ScorePoint, ReputationFlag,
  RoomKind, RoomRecord, MemberRole, MemberRecord, InviteRecord, HistoryEntry, HistoryQuery, AgentRole,
  TaskState, TaskTransition, TaskRecord, TaskQuery, AuditInput, AuditRecord, AuditQuery,
  FileStore, FileRecord, FileQuery, FileUsage,
  UpdateStore, UpdateType, UpdateAckStatus, UpdateRecord, UpdateAckRecord, UpdateQuery,
  CatastropheStore, CatastropheRecord, CatastropheState, CatastropheQuery, BackupResult,
  OwnerStore, OwnerLinkRecord,
} from './types.ts'
export { FILE_CHUNK_BYTES } from './types.ts'
