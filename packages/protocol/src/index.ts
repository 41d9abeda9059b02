/**
 * @packageDocumentation
 * The AgentMesh wire protocol (`agentmesh/0.2`): envelope and frame types, their JSON
 * Schemas, the codec, and the stable error-code registry. See docs/protocol.md.
 *
 * @example
 * ```ts
 * import { decodeClientFrame, ErrorCode } from '@agentmesh/protocol'
 * const d = decodeClientFrame('{"op":"ping"}', 1 << 20)
 * if (!d.ok && d.error.code === ErrorCode.BadJson) { ... }
 * ```
 */
export * as constants from './constants.ts'
export {
  PROTOCOL, PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_E2EE, UNSIGNED_ENVELOPE_TYPES, DEFAULT_PORT, DEFAULT_HOST,
  AUTH_SIGNING_PREFIX, ENVELOPE_SIGNING_PREFIX, RELAY_TYPES, RELAY_TYPE_PREFIXES, isRelayType,
} from './constants.ts'
export { AgentMeshError, ErrorCode, CloseCode, ErrorRegistry, HttpStatus, isErrorCode, httpStatusOf, closeCodeOf, isRetryable } from './errors.ts'
export type { AgentMeshErrorOptions, ErrorInfo } from './errors.ts'
export {
  decodeClientFrame, decodeRelayFrame, encodeSend, encodeDeliver, encodeRoomDeliver, encodeError, encodeFrame,
  validateEnvelope, checkVersion, isUnsignedKind,
} from './codec.ts'
export type { DecodedClientFrame } from './codec.ts'
export {
  Envelope as EnvelopeSchema, ClientFrameSchemas, RelayFrameSchemas,
  AMID_PATTERN, ID_PATTERN, TYPE_PATTERN, ROOM_ID_PATTERN, ROOM_ADDRESS_PATTERN, ADDRESS_PATTERN, FEATURE_ROOM_CURSOR, MAX_ROOMS_PER_FRAME, OPS_EVENT_TYPES, AGENT_VERSION_PATTERN, MAX_AGENT_VERSION_LENGTH,
} from './schemas.ts'
export type * from './types.ts'
export {
  HANDLE_PATTERN, RESERVED_HANDLES, COMMAND_PATTERN, AUDIT_ACTION_PATTERN, TASK_STATES, FINAL_TASK_STATES, ROLES,
  DEFAULT_ROLE, ROOM_KINDS, PRESENCE_STATES, MAX_TOPIC_LENGTH, MAX_TASK_ARGS, MAX_TASK_DEADLINE_S, MAX_TASK_MESSAGE,
  MAX_TASK_RESULT_BYTES, MIN_PRESENCE_IDLE_MS, MAX_PRESENCE_IDLE_MS, MAX_RATE_SETTING, DEFAULT_PAGE, MAX_PAGE,
  MAX_API_BODY_BYTES, MAX_PRESENCE_ROWS, MAX_REGISTRY_BODY_BYTES, MAX_SKILLS, MAX_MESSAGE_SCHEMAS, MAX_MESSAGE_SCHEMA_BYTES, MAX_MESSAGE_SCHEMAS_BYTES, MAX_PREKEYS_PER_UPLOAD,
  MAX_PREKEYS_PER_AGENT, MAX_PQ_PREKEYS_PER_UPLOAD, MAX_PQ_PREKEYS_PER_AGENT, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, MAX_CERT_CHAIN_LENGTH, MAX_CERT_PEM_BYTES,
  RATE_LIMIT_KEYS, MAX_FILENAME_LENGTH, MAX_FILE_DESCRIPTION, FILE_TYPE_PATTERN, MAX_FILE_SHARES, FILE_VISIBILITY_PATTERN,
} from './api/constants.ts'
export { schemaShapeError, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES } from './api/schema-shape.ts'
export type { TaskState, AgentRole, RoomKind, PresenceStatus, RateLimitKey } from './api/constants.ts'
export {
  ErrorBody, Health, HealthDown, RelayInfo, AnyObject, AmidParams, Skill, MessageSchema, ProfileBody, PrekeyBody, CertificateBody,
  FeedbackBody, SearchQuery, Profile, AgentList, PrekeyCount, PrekeyBundle, Certificate, Crl, CrlList, CrlBody,
  CrlStored, Feedback, Reputation, FeedbackStored, ReputationFlag, ReputationFlags, TRUST_TIERS, CERT_STATES,
  ChallengeBody, Challenge, TokenBody, Token, RoomParams, MessageParams, RoomInfo, RoomMember, RoomsQuery, RoomList,
  CreateRoomBody, MemberList, Joined, Left, AgentBody, Invited, Kicked, TopicBody, HistoryQuery, HistoryMessage,
  HistoryPage, MessageDeleted, PostTextBody, PostEnvelopeBody, PostMessageBody, SendMessageBody, MessagePosted, PresenceQuery,
  PresenceEntry, PresenceList, HandleBody, HandleSet, HandleParams, HandleOf, RoleBody, RoleSet, RoleList, TaskParams,
  TaskTransition, TaskInfo, DispatchTaskBody, TasksQuery, TaskList, TaskStatusBody, CancelTaskBody, AuditQuery,
  AuditEntry, AuditPage, AuditVerdict, AuditHeadsQuery, AuditHeadEntry, AuditHeadList, Settings, SettingsPatch, SettingsAnswer, NAMED_SCHEMAS,
  FileParams, FileInfo, UploadFileBody, UploadFileQuery, FileUploaded, FilesQuery, FileList, FileDeleted, FileContent,
  UPDATE_TYPES, UPDATE_ACK_STATUSES, UPDATE_STATUSES, MAX_UPDATE_TITLE, MAX_UPDATE_DESCRIPTION, MAX_UPDATE_ANNOUNCEMENT, MAX_UPDATE_NOTES,
  MAX_ADOPTION_NOT_ANSWERED, UpdateParams, CreateUpdateBody, UpdateCreated, UpdateInfo, UpdatesQuery, UpdateList, AckUpdateBody, UpdateAck, UpdateAdoption,
  P2pRecord, P2pRecordBody,
} from './api/schemas.ts'
export { API_ROUTES } from './api/routes.ts'
export {
  A2A_COMMAND, MAX_A2A_BODY_BYTES, DEFAULT_A2A_TASKS_PER_AGENT, DEFAULT_A2A_OPEN_REQUESTS, DEFAULT_A2A_STREAM_MS, MAX_A2A_TASK_VIEWS,
} from './api/a2a.ts'
export type { A2aSetting } from './api/a2a.ts'
export {
  HEALTH_STATES, DERIVED_HEALTH_STATES, MAX_CUSTOM_METRICS, CUSTOM_METRIC_NAME_PATTERN, MAX_CUSTOM_METRIC_STRING, MAX_CUSTOM_METRICS_BYTES,
  MAX_UPTIME_SECONDS, MAX_HEALTH_VERSION_LENGTH, DEFAULT_HEALTH_HISTORY, DEFAULT_HEALTH_HISTORY_PAGE, HeartbeatBody, HealthDashboard,
} from './api/health.ts'
export type { HealthState, DerivedHealthState } from './api/health.ts'
export {
  CATASTROPHE_TYPES, CATASTROPHE_SEVERITIES, CATASTROPHE_STATUSES, RECOVERY_PROTOCOL_IDS, MAX_AFFECTED_AGENTS,
  MAX_CATASTROPHE_TITLE, MAX_CATASTROPHE_TEXT, CatastropheEvent, ReportCatastropheBody, CatastropheReported,
  CatastropheParams, CatastropheQuery, CatastropheList, CatastropheNotesBody, CatastropheAnswer, RecoveryStep,
  RecoveryProtocol, RecoveryProtocolList, BackupTaken, CheckBody, CheckResult,
} from './api/catastrophe.ts'
export type { CatastropheType, CatastropheSeverity, CatastropheStatus, RecoveryProtocolId } from './api/catastrophe.ts'
export {
  MAX_WEBHOOK_URL_LENGTH, WAKE_SIGNING_PREFIX, WAKE_HEADERS, DEFAULT_WAKE_MAX_SKEW_MS, PutWebhookBody, WebhookInfo, WebhookRemoved, WakeNotice,
} from './api/wake.ts'
export { handleSkeleton, isReservedHandle, unsafeCharIn, stripUnsafeChars } from './api/text.ts'
export type { Static, TSchema } from '@sinclair/typebox'
export type { ApiRoute, ApiRoutes, ApiResponse, ApiHeader, RouteName, ApiAnswer, ApiBody, ApiQuery, HttpMethod, Security } from './api/routes.ts'
export { openApiDocument } from './api/openapi.ts'
export type { OpenApiInit } from './api/openapi.ts'
export { checkShape, checkValue, typedQuery } from './api/validate.ts'
export type { Where, CheckOptions } from './api/validate.ts'
