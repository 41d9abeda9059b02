/**
 * Constants of the REST contract (docs/protocol.md §13, §17): the patterns, names and bounds a relay
 * checks and a client or the CLI checks before sending. One home, so the three cannot drift.
 */

/** A chat handle: 2–32 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit (§17.1). */
export const HANDLE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$'
/** Handles no agent may take (compared lower-cased). */
export const RESERVED_HANDLES: ReadonlySet<string> = new Set(['relay', 'operator', 'system', 'all', 'everyone', 'here'])
/** A task's command, without its leading "/" (§17.7). */
export const COMMAND_PATTERN = '^[a-z][a-z0-9_-]{0,31}$'
/** An audit action, e.g. message.send or room.join. */
export const AUDIT_ACTION_PATTERN = '^[a-z][a-z0-9._-]{0,63}$'

/** The A2A task states (§17.7), in the order a task usually moves through them. */
export const TASK_STATES = ['submitted', 'working', 'input-required', 'auth-required', 'completed', 'failed', 'canceled', 'rejected'] as const
export type TaskState = typeof TASK_STATES[number]
/** States a task never leaves. */
export const FINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['completed', 'failed', 'canceled', 'rejected'])

/** An agent's role on the relay (§17.2); agents without one are workers. */
export const ROLES = ['master', 'warden', 'worker'] as const
export type AgentRole = typeof ROLES[number]
export const DEFAULT_ROLE = 'worker' satisfies AgentRole

export const ROOM_KINDS = ['global', 'public', 'private', 'dm'] as const
export type RoomKind = typeof ROOM_KINDS[number]
export const PRESENCE_STATES = ['online', 'idle', 'offline'] as const
export type PresenceStatus = typeof PRESENCE_STATES[number]

/** Longest room topic, in characters. */
export const MAX_TOPIC_LENGTH = 256
/** Longest task arguments, in characters. */
export const MAX_TASK_ARGS = 4096
/** Longest task deadline: 7 days, in seconds. */
export const MAX_TASK_DEADLINE_S = 7 * 86_400
/** Longest task message (a question, a reason), in characters. */
export const MAX_TASK_MESSAGE = 2000
/** Largest task result, as JSON. */
export const MAX_TASK_RESULT_BYTES = 64 * 1024
/** Shortest and longest presence idle time a master may set: 1 s to 7 days, in ms. */
export const MIN_PRESENCE_IDLE_MS = 1000
export const MAX_PRESENCE_IDLE_MS = 7 * 86_400_000
/** Largest token bucket rate or burst a master may set. */
export const MAX_RATE_SETTING = 1_000_000

/** Page size of a list without `limit`, and the most a page holds (REST v1). */
export const DEFAULT_PAGE = 50
export const MAX_PAGE = 200
/** Largest REST v1 body. */
export const MAX_API_BODY_BYTES = 64 * 1024
// ---- operations: files (§18)
/** A file's name: at most this many characters (a name is data, never a path). */
export const MAX_FILENAME_LENGTH = 255
/** A file's description: at most this many characters. */
export const MAX_FILE_DESCRIPTION = 1024
/** A file's MIME type: `type/subtype` with an optional `; parameter`, at most 127 characters. */
export const FILE_TYPE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$'
/** Agents a private file is shared with, at most. */
export const MAX_FILE_SHARES = 100
/** Who may see a file: `private` (its owner and the agents it is shared with), `public` (every agent), or `#room` (the room's members). */
export const FILE_VISIBILITY_PATTERN = '^(private|public|#[a-z0-9][a-z0-9_-]{0,63})$'

/** Agents GET /api/v1/presence lists at most. */
export const MAX_PRESENCE_ROWS = 10_000

/** Registry (§13): largest write body, skills per profile, prekeys per upload and held, search page. */
export const MAX_REGISTRY_BODY_BYTES = 64 * 1024
export const MAX_SKILLS = 64
/**
 * Message schemas (§25): message types an agent declares with a JSON Schema in its profile, the
 * largest schema (as JSON) and all of them together (as JSON).
 */
export const MAX_MESSAGE_SCHEMAS = 32
export const MAX_MESSAGE_SCHEMA_BYTES = 8 * 1024
export const MAX_MESSAGE_SCHEMAS_BYTES = 32 * 1024
export const MAX_PREKEYS_PER_UPLOAD = 200
export const MAX_PREKEYS_PER_AGENT = 1000
/**
 * One-time ML-KEM-768 prekeys per upload and held per agent: each is about 1.7 KB of JSON (a
 * 1,184-byte key and a signature, base64url), so 20 fit one body with 200 curve ones and the base.
 */
export const MAX_PQ_PREKEYS_PER_UPLOAD = 20
export const MAX_PQ_PREKEYS_PER_AGENT = 100
export const DEFAULT_SEARCH_LIMIT = 20
export const MAX_SEARCH_LIMIT = 100
/** Certificates in a published chain at most, and the largest PEM certificate (the same as @agentmesh/crypto's). */
export const MAX_CERT_CHAIN_LENGTH = 4
export const MAX_CERT_PEM_BYTES = 64 * 1024

/** The rate limit settings (`rate_limits` of GET /api/v1/settings), by their JSON names. */
export const RATE_LIMIT_KEYS = [
  'api_per_minute', 'api_burst', 'ip_per_minute', 'ip_burst',
  'chat_per_minute', 'chat_burst', 'chat_ip_per_minute', 'chat_ip_burst',
] as const
export type RateLimitKey = typeof RATE_LIMIT_KEYS[number]
