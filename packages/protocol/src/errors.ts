/**
 * The stable error-code registry. Every code here has a heading in docs/errors.md
 * (a test fails when the two disagree). Codes never change meaning once published.
 * What each code does on the wire (HTTP status, close code, retryable) is in `ErrorRegistry` below.
 */
export const ErrorCode = {
  // framing and validation
  BadJson: 'AM_ERR_BAD_JSON',
  UnknownFrame: 'AM_ERR_UNKNOWN_FRAME',
  InvalidFrame: 'AM_ERR_INVALID_FRAME',
  InvalidEnvelope: 'AM_ERR_INVALID_ENVELOPE',
  UnsupportedVersion: 'AM_ERR_UNSUPPORTED_VERSION',
  FrameTooLarge: 'AM_ERR_FRAME_TOO_LARGE',
  EnvelopeTooLarge: 'AM_ERR_ENVELOPE_TOO_LARGE',
  BadSignature: 'AM_ERR_BAD_SIGNATURE',
  // authentication
  NotAuthenticated: 'AM_ERR_NOT_AUTHENTICATED',
  AlreadyAuthenticated: 'AM_ERR_ALREADY_AUTHENTICATED',
  AuthFailed: 'AM_ERR_AUTH_FAILED',
  AuthReplayed: 'AM_ERR_AUTH_REPLAYED',
  AuthTimeout: 'AM_ERR_AUTH_TIMEOUT',
  SenderMismatch: 'AM_ERR_SENDER_MISMATCH',
  // routing and delivery
  UnknownRecipient: 'AM_ERR_UNKNOWN_RECIPIENT',
  InboxFull: 'AM_ERR_INBOX_FULL',
  TooManyInFlight: 'AM_ERR_TOO_MANY_IN_FLIGHT',
  TooManyConnections: 'AM_ERR_TOO_MANY_CONNECTIONS',
  InvalidCursor: 'AM_ERR_INVALID_CURSOR',
  HeartbeatTimeout: 'AM_ERR_HEARTBEAT_TIMEOUT',
  ShuttingDown: 'AM_ERR_SHUTTING_DOWN',
  Internal: 'AM_ERR_INTERNAL',
  SlowConsumer: 'AM_ERR_SLOW_CONSUMER',
  TooManyErrors: 'AM_ERR_TOO_MANY_ERRORS',
  // end-to-end encryption and certificates
  DecryptFailed: 'AM_ERR_DECRYPT_FAILED',
  MessageReplayed: 'AM_ERR_MESSAGE_REPLAYED',
  TooFarAhead: 'AM_ERR_TOO_FAR_AHEAD',
  UnknownSession: 'AM_ERR_UNKNOWN_SESSION',
  BadPrekey: 'AM_ERR_BAD_PREKEY',
  NoPrekeys: 'AM_ERR_NO_PREKEYS',
  DuplicatePrekey: 'AM_ERR_DUPLICATE_PREKEY',
  TooManyPrekeys: 'AM_ERR_TOO_MANY_PREKEYS',
  PeerKeyChanged: 'AM_ERR_PEER_KEY_CHANGED',
  PlaintextRefused: 'AM_ERR_PLAINTEXT_REFUSED',
  AttestationRefused: 'AM_ERR_ATTESTATION_REFUSED',
  StateCloned: 'AM_ERR_STATE_CLONED',
  StateRollback: 'AM_ERR_STATE_ROLLBACK',
  BadPassphrase: 'AM_ERR_BAD_PASSPHRASE',
  CertExpired: 'AM_ERR_CERT_EXPIRED',
  CertRevoked: 'AM_ERR_CERT_REVOKED',
  CertChainBroken: 'AM_ERR_CERT_CHAIN_BROKEN',
  CertInvalid: 'AM_ERR_CERT_INVALID',
  CrlOutdated: 'AM_ERR_CRL_OUTDATED',
  // first contact, policies and agent safety
  NoGrant: 'AM_ERR_NO_GRANT',
  KnockRejected: 'AM_ERR_KNOCK_REJECTED',
  InvalidKnock: 'AM_ERR_INVALID_KNOCK',
  InvalidPolicy: 'AM_ERR_INVALID_POLICY',
  RateLimited: 'AM_ERR_RATE_LIMITED',
  CircuitOpen: 'AM_ERR_CIRCUIT_OPEN',
  // chat: handles, rooms, tasks, audit (docs/protocol.md §17)
  HandleTaken: 'AM_ERR_HANDLE_TAKEN',
  UnknownHandle: 'AM_ERR_UNKNOWN_HANDLE',
  UnknownRoom: 'AM_ERR_UNKNOWN_ROOM',
  RoomExists: 'AM_ERR_ROOM_EXISTS',
  NotMember: 'AM_ERR_NOT_MEMBER',
  EncryptionRequired: 'AM_ERR_ENCRYPTION_REQUIRED',
  MembershipUnsigned: 'AM_ERR_MEMBERSHIP_UNSIGNED',
  HandleChanged: 'AM_ERR_HANDLE_CHANGED',
  UnknownTask: 'AM_ERR_UNKNOWN_TASK',
  InvalidTransition: 'AM_ERR_INVALID_TRANSITION',
  NoHandler: 'AM_ERR_NO_HANDLER',
  TaskFailed: 'AM_ERR_TASK_FAILED',
  AuditTampered: 'AM_ERR_AUDIT_TAMPERED',
  ReservedType: 'AM_ERR_RESERVED_TYPE',
  // HTTP
  NotFound: 'AM_ERR_NOT_FOUND',
  MethodNotAllowed: 'AM_ERR_METHOD_NOT_ALLOWED',
  Forbidden: 'AM_ERR_FORBIDDEN',
  BodyTooLarge: 'AM_ERR_BODY_TOO_LARGE',
  // client, CLI and local state
  InvalidArgument: 'AM_ERR_INVALID_ARGUMENT',
  InvalidConfig: 'AM_ERR_INVALID_CONFIG',
  ConnectFailed: 'AM_ERR_CONNECT_FAILED',
  ConnectionClosed: 'AM_ERR_CONNECTION_CLOSED',
  Timeout: 'AM_ERR_TIMEOUT',
  Aborted: 'AM_ERR_ABORTED',
  NoIdentity: 'AM_ERR_NO_IDENTITY',
  IdentityExists: 'AM_ERR_IDENTITY_EXISTS',
  IdentityCorrupt: 'AM_ERR_IDENTITY_CORRUPT',
  DataDir: 'AM_ERR_DATA_DIR',
  DataCorrupt: 'AM_ERR_DATA_CORRUPT',
  DataLoss: 'AM_ERR_DATA_LOSS',
  AddressInUse: 'AM_ERR_ADDRESS_IN_USE',
  StoreUnavailable: 'AM_ERR_STORE_UNAVAILABLE',
  BackplaneUnavailable: 'AM_ERR_BACKPLANE_UNAVAILABLE',
  // ---- operations: files (§18)
  UnknownFile: 'AM_ERR_UNKNOWN_FILE',
  FileTooLarge: 'AM_ERR_FILE_TOO_LARGE',
  FileQuota: 'AM_ERR_FILE_QUOTA',
  BadEncoding: 'AM_ERR_BAD_ENCODING',
  ChecksumMismatch: 'AM_ERR_CHECKSUM_MISMATCH',
  // ---- operations: system updates (§19)
  UnknownUpdate: 'AM_ERR_UNKNOWN_UPDATE',
  UpdateExpired: 'AM_ERR_UPDATE_EXPIRED',
  UpdateRequired: 'AM_ERR_UPDATE_REQUIRED',
  // ---- operations: catastrophe events, backups, read-only mode (§20)
  UnknownEvent: 'AM_ERR_UNKNOWN_EVENT',
  ReadOnly: 'AM_ERR_READ_ONLY',
  NotABackup: 'AM_ERR_NOT_A_BACKUP',
  BackupUnavailable: 'AM_ERR_BACKUP_UNAVAILABLE',
  // ---- operations: agent health and metrics (§21)
  InvalidMetric: 'AM_ERR_INVALID_METRIC',
  MetricsTooLarge: 'AM_ERR_METRICS_TOO_LARGE',
  // ---- wake-ups: wake webhooks, listen --exec, delivery receipts (§26)
  WebhookUrlInvalid: 'AM_ERR_WEBHOOK_URL_INVALID',
  WebhookAddressRefused: 'AM_ERR_WEBHOOK_ADDRESS_REFUSED',
  WebhookUnresolvable: 'AM_ERR_WEBHOOK_UNRESOLVABLE',
  ExecFailed: 'AM_ERR_EXEC_FAILED',
  // ---- dashboard: the web console (§22)
  CsrfRejected: 'AM_ERR_CSRF',
  // ---- capabilities and message schemas (§25)
  SchemaMismatch: 'AM_ERR_SCHEMA_MISMATCH',
  InvalidSchema: 'AM_ERR_INVALID_SCHEMA',
  // ---- bridges: A2A (§24)
  BridgeNotEnabled: 'AM_ERR_BRIDGE_NOT_ENABLED',
  BridgeBusy: 'AM_ERR_BRIDGE_BUSY',
  RemoteAgent: 'AM_ERR_REMOTE_AGENT',
  // ---- OpenID Connect sign-in and verified owners (§28)
  OidcUnavailable: 'AM_ERR_OIDC_UNAVAILABLE',
  OwnerLinkPending: 'AM_ERR_OWNER_LINK_PENDING',
  OwnerLimit: 'AM_ERR_OWNER_LIMIT',
  // ---- direct links: discovery and circuit relay (§30)
  PeerRecordInvalid: 'AM_ERR_PEER_RECORD_INVALID',
  PeerRecordStale: 'AM_ERR_PEER_RECORD_STALE',
  InsecureFile: 'AM_ERR_INSECURE_FILE',
  // ---- swarm mode (docs/swarm.md)
  InvalidSwarmMessage: 'AM_ERR_INVALID_SWARM_MESSAGE',
  SwarmMessageTooLarge: 'AM_ERR_SWARM_MESSAGE_TOO_LARGE',
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

const ALL_CODES = new Set<string>(Object.values(ErrorCode))

/** True when `code` is a code in this registry. */
export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && ALL_CODES.has(code)
}

/**
 * WebSocket close codes the relay ends a connection with (RFC 6455 §7.4; 4000–4999 are
 * private-use codes). `ErrorRegistry` pairs each protocol error that closes with its code.
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  AuthFailed: 4401,
  AuthTimeout: 4408,
  TooManyConnections: 4429,
  HeartbeatTimeout: 4410,
  SlowConsumer: 4008,
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

/** What a code means on the wire. */
export interface ErrorInfo {
  /** The HTTP status of a REST answer with this code; absent for codes no route answers with (500 if one ever does). */
  readonly status?: number
  /** The WebSocket close code when the relay ends a connection for this error; absent when the connection goes on. */
  readonly close?: CloseCode
  /**
   * Whether the same request, unchanged, can succeed later: after `retryAfterS` for a rate limit,
   * once the peer caught up, after a reconnect. A caller may retry these and no others.
   */
  readonly retryable: boolean
}

/**
 * The one table of what each code does: its HTTP status, its close code, whether it is worth
 * retrying. `HttpStatus`, `httpStatusOf`, `closeCodeOf` and `isRetryable` read it, so a REST
 * answer, a close frame and the docs cannot disagree (docs/errors.md lists the same per code, and
 * a test compares them).
 */
export const ErrorRegistry: { readonly [C in ErrorCode]: ErrorInfo } = {
  // framing and validation
  [ErrorCode.BadJson]: { status: 400, retryable: false },
  [ErrorCode.UnknownFrame]: { retryable: false },
  [ErrorCode.InvalidFrame]: { status: 400, retryable: false },
  [ErrorCode.InvalidEnvelope]: { status: 400, retryable: false },
  [ErrorCode.UnsupportedVersion]: { retryable: false },
  [ErrorCode.FrameTooLarge]: { close: CloseCode.MessageTooBig, retryable: false },
  [ErrorCode.EnvelopeTooLarge]: { status: 413, retryable: false },
  [ErrorCode.BadSignature]: { status: 400, retryable: false },
  // authentication
  [ErrorCode.NotAuthenticated]: { status: 401, retryable: false },
  [ErrorCode.AlreadyAuthenticated]: { retryable: false },
  [ErrorCode.AuthFailed]: { status: 401, close: CloseCode.AuthFailed, retryable: false },
  [ErrorCode.AuthReplayed]: { status: 401, close: CloseCode.AuthFailed, retryable: false },
  [ErrorCode.AuthTimeout]: { close: CloseCode.AuthTimeout, retryable: true },
  [ErrorCode.SenderMismatch]: { status: 403, retryable: false },
  // routing and delivery
  [ErrorCode.UnknownRecipient]: { status: 404, retryable: false },
  [ErrorCode.InboxFull]: { status: 503, retryable: true },
  [ErrorCode.TooManyInFlight]: { retryable: true },
  [ErrorCode.TooManyConnections]: { close: CloseCode.TooManyConnections, retryable: true },
  [ErrorCode.InvalidCursor]: { retryable: false },
  [ErrorCode.HeartbeatTimeout]: { close: CloseCode.HeartbeatTimeout, retryable: true },
  [ErrorCode.ShuttingDown]: { status: 503, close: CloseCode.GoingAway, retryable: true },
  [ErrorCode.Internal]: { status: 500, close: CloseCode.InternalError, retryable: true },
  [ErrorCode.SlowConsumer]: { close: CloseCode.SlowConsumer, retryable: true },
  [ErrorCode.TooManyErrors]: { close: CloseCode.PolicyViolation, retryable: false },
  // end-to-end encryption and certificates
  [ErrorCode.DecryptFailed]: { retryable: false },
  [ErrorCode.MessageReplayed]: { retryable: false },
  [ErrorCode.TooFarAhead]: { retryable: false },
  [ErrorCode.UnknownSession]: { retryable: false },
  [ErrorCode.BadPrekey]: { status: 400, retryable: false },
  [ErrorCode.NoPrekeys]: { retryable: false },
  [ErrorCode.DuplicatePrekey]: { status: 400, retryable: false },
  [ErrorCode.TooManyPrekeys]: { status: 400, retryable: false },
  [ErrorCode.PeerKeyChanged]: { retryable: false },
  [ErrorCode.PlaintextRefused]: { retryable: false },
  [ErrorCode.AttestationRefused]: { status: 422, retryable: false },
  [ErrorCode.StateCloned]: { retryable: false },
  [ErrorCode.StateRollback]: { retryable: false },
  [ErrorCode.BadPassphrase]: { retryable: false },
  [ErrorCode.CertExpired]: { status: 422, retryable: false },
  [ErrorCode.CertRevoked]: { status: 422, retryable: false },
  [ErrorCode.CertChainBroken]: { status: 422, retryable: false },
  [ErrorCode.CertInvalid]: { status: 422, retryable: false },
  [ErrorCode.CrlOutdated]: { status: 409, retryable: false },
  // first contact, policies and agent safety
  [ErrorCode.NoGrant]: { retryable: false },
  [ErrorCode.KnockRejected]: { retryable: false },
  [ErrorCode.InvalidKnock]: { retryable: false },
  [ErrorCode.InvalidPolicy]: { retryable: false },
  [ErrorCode.RateLimited]: { status: 429, retryable: true },
  [ErrorCode.CircuitOpen]: { retryable: true },
  // chat: handles, rooms, tasks, audit (docs/protocol.md §17)
  [ErrorCode.HandleTaken]: { status: 409, retryable: false },
  [ErrorCode.UnknownHandle]: { status: 404, retryable: false },
  [ErrorCode.UnknownRoom]: { status: 404, retryable: false },
  [ErrorCode.RoomExists]: { status: 409, retryable: false },
  [ErrorCode.NotMember]: { status: 403, retryable: false },
  [ErrorCode.EncryptionRequired]: { status: 422, retryable: false },
  [ErrorCode.MembershipUnsigned]: { status: 403, retryable: false },
  [ErrorCode.HandleChanged]: { retryable: false },
  [ErrorCode.UnknownTask]: { status: 404, retryable: false },
  [ErrorCode.InvalidTransition]: { status: 409, retryable: false },
  [ErrorCode.NoHandler]: { status: 422, retryable: false },
  [ErrorCode.TaskFailed]: { retryable: false },
  [ErrorCode.AuditTampered]: { status: 500, retryable: false },
  [ErrorCode.ReservedType]: { status: 403, retryable: false },
  // HTTP
  [ErrorCode.NotFound]: { status: 404, retryable: false },
  [ErrorCode.MethodNotAllowed]: { status: 405, retryable: false },
  [ErrorCode.Forbidden]: { status: 403, retryable: false },
  [ErrorCode.BodyTooLarge]: { status: 413, retryable: false },
  // client, CLI and local state
  [ErrorCode.InvalidArgument]: { status: 400, retryable: false },
  [ErrorCode.InvalidConfig]: { retryable: false },
  [ErrorCode.ConnectFailed]: { retryable: true },
  [ErrorCode.ConnectionClosed]: { retryable: true },
  [ErrorCode.Timeout]: { retryable: true },
  [ErrorCode.Aborted]: { retryable: false },
  [ErrorCode.NoIdentity]: { retryable: false },
  [ErrorCode.IdentityExists]: { retryable: false },
  [ErrorCode.IdentityCorrupt]: { retryable: false },
  [ErrorCode.DataDir]: { retryable: false },
  [ErrorCode.DataCorrupt]: { retryable: false },
  [ErrorCode.DataLoss]: { retryable: false },
  [ErrorCode.AddressInUse]: { retryable: false },
  [ErrorCode.StoreUnavailable]: { status: 503, retryable: true },
  [ErrorCode.BackplaneUnavailable]: { retryable: true },
  // ---- operations: files (§18)
  [ErrorCode.UnknownFile]: { status: 404, retryable: false },
  [ErrorCode.FileTooLarge]: { status: 413, retryable: false },
  [ErrorCode.FileQuota]: { status: 413, retryable: false },
  [ErrorCode.OidcUnavailable]: { status: 503, retryable: false },
  [ErrorCode.OwnerLinkPending]: { status: 409, retryable: true },
  [ErrorCode.OwnerLimit]: { status: 409, retryable: false },
  [ErrorCode.PeerRecordInvalid]: { status: 400, retryable: false },
  [ErrorCode.PeerRecordStale]: { status: 409, retryable: false },
  [ErrorCode.InsecureFile]: { retryable: false },
  // ---- swarm mode (docs/swarm.md)
  [ErrorCode.InvalidSwarmMessage]: { retryable: false },
  [ErrorCode.SwarmMessageTooLarge]: { retryable: false },
  [ErrorCode.BadEncoding]: { status: 400, retryable: false },
  [ErrorCode.ChecksumMismatch]: { status: 400, retryable: false },
  // ---- operations: system updates (§19)
  [ErrorCode.UnknownUpdate]: { status: 404, retryable: false },
  [ErrorCode.UpdateExpired]: { status: 409, retryable: false },
  [ErrorCode.UpdateRequired]: { status: 403, retryable: false },
  // ---- operations: catastrophe events, backups, read-only mode (§20)
  [ErrorCode.UnknownEvent]: { status: 404, retryable: false },
  [ErrorCode.ReadOnly]: { status: 503, retryable: true },
  [ErrorCode.NotABackup]: { retryable: false },
  [ErrorCode.BackupUnavailable]: { status: 409, retryable: false },
  // ---- operations: agent health and metrics (§21)
  [ErrorCode.InvalidMetric]: { status: 400, retryable: false },
  [ErrorCode.MetricsTooLarge]: { status: 413, retryable: false },
  // ---- wake-ups (§26)
  [ErrorCode.WebhookUrlInvalid]: { status: 400, retryable: false },
  [ErrorCode.WebhookAddressRefused]: { status: 403, retryable: false },
  [ErrorCode.WebhookUnresolvable]: { status: 422, retryable: true },
  [ErrorCode.ExecFailed]: { retryable: true },
  [ErrorCode.CsrfRejected]: { status: 403, retryable: false },
  // ---- capabilities and message schemas (§25)
  [ErrorCode.SchemaMismatch]: { retryable: false },
  [ErrorCode.InvalidSchema]: { status: 400, retryable: false },
  // ---- bridges: A2A (§24)
  [ErrorCode.BridgeNotEnabled]: { status: 404, retryable: false },
  [ErrorCode.BridgeBusy]: { status: 429, retryable: true },
  [ErrorCode.RemoteAgent]: { status: 502, retryable: true },
}

/** HTTP status for each code that can appear in a REST answer (derived from `ErrorRegistry`). */
export const HttpStatus: Partial<Record<ErrorCode, number>> = Object.fromEntries(
  Object.entries(ErrorRegistry).flatMap(([code, info]) => info.status === undefined ? [] : [[code, info.status]]),
)

/** The HTTP status of a REST answer with `code`: its registry status, else 500 (a code no route should answer with). */
export function httpStatusOf (code: ErrorCode): number {
  return ErrorRegistry[code].status ?? 500
}

/** The close code the relay ends a connection with for `code`, or undefined when that error does not close it. */
export function closeCodeOf (code: ErrorCode): CloseCode | undefined {
  return ErrorRegistry[code].close
}

/** Whether a request refused with `code` can succeed later unchanged (see `ErrorInfo.retryable`). */
export function isRetryable (code: ErrorCode): boolean {
  return ErrorRegistry[code].retryable
}

/** What an error may carry beyond its code and message. */
export interface AgentMeshErrorOptions {
  cause?: unknown
  /** The close code it ended a connection with, when it did (the registry's `closeCodeOf` is what the relay uses). */
  closeCode?: number
  /** For AM_ERR_RATE_LIMITED: seconds to wait before trying again (REST answers carry it as `Retry-After`). */
  retryAfterS?: number
}

/** Base class of every AgentMesh error: a stable `code` and a sentence a person can act on. */
export class AgentMeshError extends Error {
  readonly code: ErrorCode
  /** WebSocket close code when this error ends a connection. */
  readonly closeCode?: number
  /**
   * Seconds to wait before trying again, when the error says (AM_ERR_RATE_LIMITED). Declared, not
   * initialised: an error without it has no such own property and compares as it did before.
   */
  declare readonly retryAfterS?: number

  constructor (code: ErrorCode, message: string, options?: AgentMeshErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AgentMeshError'
    this.code = code
    if (options?.closeCode !== undefined) this.closeCode = options.closeCode
    if (options?.retryAfterS !== undefined) this.retryAfterS = options.retryAfterS
  }

  /**
   * Narrowing guard: `AgentMeshError.is(err, ErrorCode.UnknownRecipient)` (then `err.code` is that
   * code). Any Error whose `code` is in the registry passes, so errors from another copy of this
   * package are recognised too.
   */
  static is<C extends ErrorCode = ErrorCode> (err: unknown, code?: C): err is AgentMeshError & { readonly code: C } {
    if (!(err instanceof Error)) return false
    const c = (err as { code?: unknown }).code
    if (!isErrorCode(c)) return false
    return code === undefined || c === code
  }

  toJSON (): { code: ErrorCode, message: string } {
    return { code: this.code, message: this.message }
  }
}
