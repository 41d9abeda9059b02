/**
 * @packageDocumentation
 * The AgentMesh client: `connect()` gives a connection that survives relay restarts, keeps
 * its sends in an on-disk outbox until the relay has persisted them, end-to-end encrypts direct
 * messages (PQXDH + Double Ratchet), and hands every message to the application once.
 *
 * @example
 * ```ts
 * import { connect } from '@agentmesh/client'
 * const conn = await connect({ server: 'ws://127.0.0.1:7777', home: './alice' })
 * await conn.send(bobAmid, { text: 'hello' })
 * for await (const msg of conn.messages()) console.log(msg.from, msg.text)
 * ```
 *
 * Features are functions over a connection: `chat(conn)`, `tasks(conn)`, `knock(conn)`. What a
 * delivery goes through before the application sees it is a list of stages (`inbound(conn)` in
 * `@agentmesh/client/internal`). `@agentmesh/client/browser` is the part that runs in a browser
 * (REST over fetch, the memory state, types); `connect({ WebSocket })` takes a browser's socket.
 */
export { connect, relayUrl, relayUrls, MAX_RELAY_ADDRESSES, defaultServer, httpOrigin, STATE_FILE, POLICY_FILE, MAX_PREKEY_TARGET, MAX_PQ_PREKEY_TARGET } from './connect.ts'
export { trustRelayCa, trustRelayCaFromEnv } from './relay-tls.ts'
export { resolveSession } from './session.ts'
export type { Session } from './session.ts'
export {
  E2EE_TYPE, E2EE_RESET_TYPE, DEFAULT_PREKEY_LOW_WATER, DEFAULT_PREKEY_TARGET, DEFAULT_PREKEY_CHECK_MS, DEFAULT_SESSION_IDLE_MS,
  DEFAULT_PQ_PREKEY_LOW_WATER, DEFAULT_PQ_PREKEY_TARGET, MAX_LOCAL_ONE_TIME_PREKEYS, MAX_LOCAL_PQ_ONE_TIME_PREKEYS, MAX_PREVIOUS_SESSIONS,
} from './e2ee.ts'
export type { PeerStatus, PrekeyPolicy, EncryptedPayload } from './e2ee.ts'
export { memoryState } from './state.ts'
export { sqliteState } from './state-sqlite.ts'
export { rekeyState } from './state-rekey.ts'
export type { RekeyResult } from './state-rekey.ts'
export { chat } from './chat.ts'
export type { Chat, RoomInfo, RoomMember, HistoryMessage, HistoryEntry, UndecryptedReason, PresenceEntry, VerifiedRoomMembership } from './chat.ts'
export type { HandlePin } from './handle-pins.ts'
export { tasks, FINAL_TASK_STATES } from './tasks.ts'
export { a2a, a2aSend, a2aCard, MAX_A2A_REPLY_TEXT } from './a2a.ts'
export type { A2a, A2aSetting, A2aReply, A2aUpdate, A2aSendOptions } from './a2a.ts'
export { updates, systemUpdateOf } from './ops/updates.ts'
export type { Updates, SystemUpdate, UpdateInfo, UpdateAck, UpdateAdoption, UpdateAckStatus, CreateUpdate } from './ops/updates.ts'
export { SDK_VERSION } from './version.ts'
export { CURSOR_ACK_DELAY_MS, CURSOR_ACK_EAGER } from './connection.ts'
export type { Tasks, TaskInfo, TaskRequest, TaskState, CommandHandler } from './tasks.ts'
export { files, FILE_MESSAGE_TYPE } from './ops/files.ts'
export type { Files, FileEndpoint, FileSource, UploadOptions, DownloadOptions, Downloaded, SentFile, FileKey } from './ops/files.ts'
export { MAX_FILE_KEYS } from './file-keys.ts'
// ---- operations: agent health (§21)
export { health, processSampler, DEFAULT_HEARTBEAT_INTERVAL_MS } from './ops/health.ts'
export type { Health, HealthReport, HeartbeatLoopOptions, BeatOutcome, HeartbeatAnswer, AgentHealth, HealthDashboard, CustomMetrics } from './ops/health.ts'
export { GROUP_TYPE, SENDER_KEY_TYPE } from './rooms.ts'
// ---- encrypted swarm topics (§32)
export {
  encryptedTopic, SWARM_KEY_TYPE, SWARM_E2EE_TYPE, ENCRYPTED_TOPIC_PATTERN, DEFAULT_SWARM_KEY_WAIT_MS, DEFAULT_MAX_PENDING_SWARM_DELIVERIES,
  MAX_SWARM_KEYS_PER_AUTHOR, MAX_SWARM_KEY_INBOX,
} from './swarm-topic.ts'
export type {
  EncryptedTopic, EncryptedTopicInit, EncryptedTopicLimits, EncryptedTopicStats, EncryptedTopicEvents, EncryptedDelivery, UndecryptedDelivery,
  SwarmLike, SwarmLikeDelivery,
} from './swarm-topic.ts'
export { knock } from './knock.ts'
export type { Knocks, HeldKnock, SafetyEvent, MessageProvenance, BlockedPeer } from './knock.ts'
export { registryRequest, REGISTRY_TIMEOUT_MS } from './registry.ts'
export type { RegistryRequest } from './registry.ts'
export { apiRequest, httpRequest, restCall, DEFAULT_API_TIMEOUT_MS } from './api.ts'
export { linkOwner, ownerOf, unlinkOwner, OWNER_POLL_MS, OWNER_LINK_TIMEOUT_MS } from './owner.ts'
export type { LinkOwnerOptions, OwnerLink } from './owner.ts'
export type { ApiRequestInit, RequestSigner, RestRequest } from './api.ts'
export type { ClientState, OutboxEntry } from './state.ts'
export type { Connection, ConnectOptions, LinkStatus, Message, P2POptions, PeerInfo, SendOptions, SendResult, Status } from './types.ts'
export { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
export {
  parsePolicy, loadPolicy, defaultPolicy, evaluateKnock, parseKnockIntent, scopeCovered, PolicyWatcher,
  InvalidPolicyError, InvalidKnockError, KNOCK_ACTIONS, TRUST_TIERS, INTENT_CATEGORIES, SCOPE_PATTERN, POLICY_VERSION, POLICY_CHANGE_CHANNEL,
} from './policy.ts'
export type { Policy, PeerList, Knock, KnockIntent, KnockContext, KnockDecision, KnockAction, KnockRule, IntentCategory, PolicyWatcherInit, PolicyChangeEvent } from './policy.ts'
export { RateLimiter, CircuitBreaker, knockLimiterInit, messageLimiterInit, breakerInit } from './breaker.ts'
export type { RateLimiterInit, TakeResult, AgentPair, BreakerState, BreakerStateName, BreakerTrip, BreakerResult, CircuitBreakerInit } from './breaker.ts'
export { fenceUntrusted, isSlashCommand, parseSlashCommand, commandAllowed, UNTRUSTED_NOTICE } from './untrusted.ts'
export type { Provenance, FenceOptions, SlashCommand } from './untrusted.ts'
export { MAX_SENT_LOG, SENT_LOG_TTL_MS } from './sent.ts'
export type { SentEntry, SentStatus, SentStatusEntry } from './sent.ts'
export { DELIVERY_NOTICE_TYPE } from './knock.ts'
export type { DeliveryNotice } from './knock.ts'
export { catastrophes } from './ops/catastrophe.ts'
// ---- bridges: the MCP server's sealed mailbox (§23)
export { mailbox, MAX_MAILBOX, MAX_KEPT_ACKNOWLEDGED } from './mailbox.ts'
export type { Mailbox, KeptMessage } from './mailbox.ts'
// ---- capabilities and message schemas (§25)
export { schemas, declaredSchemas, schemaModeOf, SCHEMA_CACHE_MS, MAX_CACHED_PEER_SCHEMAS, MAX_SCHEMA_NOTICES_PER_MINUTE } from './schemas.ts'
export type { Schemas, SchemaMode, SchemaOptions, MessageSchema } from './schemas.ts'
export { ops } from './ops.ts'
// ---- wake-ups: wake webhooks, delivery receipts (§26)
export { receipts, RECEIPT_TYPE, MAX_RECEIPTS_PER_MESSAGE } from './receipts.ts'
export type { Receipts, ReceiptEvent, ReceiptState } from './receipts.ts'
export { webhook, verifyWakeNotice } from './wake.ts'
export type { Webhook, WebhookInfo, WakeNotice, VerifyWakeNoticeInit } from './wake.ts'
export type { Ops } from './ops.ts'
export type { Catastrophes, CatastropheAlert } from './ops/catastrophe.ts'
