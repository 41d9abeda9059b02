/**
 * The stable error-code registry. Every code here has a heading in docs/errors.md
 * (a test fails when the two disagree). Codes never change meaning once published.
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
  // end-to-end encryption and certificates
  DecryptFailed: 'AM_ERR_DECRYPT_FAILED',
  MessageReplayed: 'AM_ERR_MESSAGE_REPLAYED',
  TooFarAhead: 'AM_ERR_TOO_FAR_AHEAD',
  UnknownSession: 'AM_ERR_UNKNOWN_SESSION',
  BadPrekey: 'AM_ERR_BAD_PREKEY',
  NoPrekeys: 'AM_ERR_NO_PREKEYS',
  PeerKeyChanged: 'AM_ERR_PEER_KEY_CHANGED',
  PlaintextRefused: 'AM_ERR_PLAINTEXT_REFUSED',
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
  UnknownTask: 'AM_ERR_UNKNOWN_TASK',
  InvalidTransition: 'AM_ERR_INVALID_TRANSITION',
  NoHandler: 'AM_ERR_NO_HANDLER',
  AuditTampered: 'AM_ERR_AUDIT_TAMPERED',
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
  AddressInUse: 'AM_ERR_ADDRESS_IN_USE',
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

const ALL_CODES = new Set<string>(Object.values(ErrorCode))

/** True when `code` is a code in this registry. */
export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && ALL_CODES.has(code)
}

/**
 * WebSocket close codes paired with the protocol errors that end a connection
 * (RFC 6455 §7.4; 4000–4999 are private-use codes).
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
} as const

/** HTTP status for each code that can appear in a REST answer. */
export const HttpStatus: Partial<Record<ErrorCode, number>> = {
  AM_ERR_BAD_JSON: 400,
  AM_ERR_INVALID_FRAME: 400,
  AM_ERR_INVALID_ENVELOPE: 400,
  AM_ERR_INVALID_ARGUMENT: 400,
  AM_ERR_NOT_AUTHENTICATED: 401,
  AM_ERR_AUTH_FAILED: 401,
  AM_ERR_AUTH_REPLAYED: 401,
  AM_ERR_FORBIDDEN: 403,
  AM_ERR_RATE_LIMITED: 429,
  AM_ERR_NOT_FOUND: 404,
  AM_ERR_BODY_TOO_LARGE: 413,
  AM_ERR_METHOD_NOT_ALLOWED: 405,
  AM_ERR_ENVELOPE_TOO_LARGE: 413,
  // a well-formed request whose certificate or CRL does not verify
  AM_ERR_CERT_EXPIRED: 422,
  AM_ERR_CERT_REVOKED: 422,
  AM_ERR_CERT_CHAIN_BROKEN: 422,
  AM_ERR_CERT_INVALID: 422,
  AM_ERR_CRL_OUTDATED: 409,
  AM_ERR_SENDER_MISMATCH: 403,
  AM_ERR_BAD_SIGNATURE: 400,
  AM_ERR_HANDLE_TAKEN: 409,
  AM_ERR_UNKNOWN_HANDLE: 404,
  AM_ERR_UNKNOWN_ROOM: 404,
  AM_ERR_ROOM_EXISTS: 409,
  AM_ERR_NOT_MEMBER: 403,
  AM_ERR_ENCRYPTION_REQUIRED: 422,
  AM_ERR_UNKNOWN_TASK: 404,
  AM_ERR_INVALID_TRANSITION: 409,
  AM_ERR_NO_HANDLER: 422,
  AM_ERR_AUDIT_TAMPERED: 500,
  AM_ERR_UNKNOWN_RECIPIENT: 404,
  AM_ERR_INBOX_FULL: 503,
  AM_ERR_SHUTTING_DOWN: 503,
  AM_ERR_INTERNAL: 500,
}

/** Base class of every AgentMesh error: a stable `code` and a sentence a person can act on. */
export class AgentMeshError extends Error {
  readonly code: ErrorCode
  /** WebSocket close code when this error ends a connection. */
  readonly closeCode?: number

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, closeCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AgentMeshError'
    this.code = code
    if (options?.closeCode !== undefined) this.closeCode = options.closeCode
  }

  /** Narrowing guard: `AgentMeshError.is(err, ErrorCode.UnknownRecipient)`. */
  static is (err: unknown, code?: ErrorCode): err is AgentMeshError {
    if (!(err instanceof Error)) return false
    const c = (err as { code?: unknown }).code
    if (!isErrorCode(c)) return false
    return code === undefined || c === code
  }

  toJSON (): { code: ErrorCode, message: string } {
    return { code: this.code, message: this.message }
  }
}
