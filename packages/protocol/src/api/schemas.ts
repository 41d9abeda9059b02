/**
 * TypeBox schemas of the REST API (docs/protocol.md §13, §17): every route's path parameters, query,
 * body and answers. They are JSON Schema as they stand: the relay validates requests with them, the
 * OpenAPI document is generated from them (openapi.ts), and clients take their types from them.
 * A schema with an `$id` is a named component of the OpenAPI document (`#/components/schemas/<$id>`).
 */
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox'
import { AMID_PATTERN, Envelope, ID_PATTERN, ROOM_ID_PATTERN, TYPE_PATTERN } from '../schemas.ts'
import {
  AUDIT_ACTION_PATTERN, COMMAND_PATTERN, DEFAULT_PAGE, DEFAULT_SEARCH_LIMIT, HANDLE_PATTERN, MAX_CERT_CHAIN_LENGTH,
  MAX_CERT_PEM_BYTES, MAX_PAGE, MAX_PQ_PREKEYS_PER_UPLOAD, MAX_PREKEYS_PER_UPLOAD, MAX_PRESENCE_IDLE_MS, MAX_RATE_SETTING, MAX_SEARCH_LIMIT,
  MAX_SKILLS, MAX_MESSAGE_SCHEMAS, MAX_TASK_ARGS, MAX_TASK_DEADLINE_S, MAX_TASK_MESSAGE, MAX_TASK_RESULT_BYTES, MAX_TOPIC_LENGTH,
  MIN_PRESENCE_IDLE_MS, PRESENCE_STATES, RATE_LIMIT_KEYS, ROLES, ROOM_KINDS, TASK_STATES,
  FILE_TYPE_PATTERN, FILE_VISIBILITY_PATTERN, MAX_FILE_DESCRIPTION, MAX_FILE_SHARES, MAX_FILENAME_LENGTH,
} from './constants.ts'

/** One of a list of string literals (JSON Schema: anyOf of consts). */
type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> }
function OneOf<const T extends readonly string[]> (values: T, options: { description?: string, default?: T[number] } = {}): TUnion<Literals<T>> {
  return Type.Union(values.map(v => Type.Literal(v)), options) as unknown as TUnion<Literals<T>>
}

const ms = (description = 'ms since the Unix epoch') => Type.Integer({ description })
const AmidString = Type.String({ pattern: AMID_PATTERN, description: 'agent id (AMID)' })
const AgentRef = Type.String({ minLength: 1, description: 'an AMID, or @handle (a bare handle works too)' })
/** What the relay signs or a master names: an AMID, "operator" or "relay". */
const Actor = Type.String({ description: 'an AMID, "operator" or "relay"' })

// ---------------------------------------------------------------- errors

/** Every error answer: a stable code (docs/errors.md) and a message for people. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable code, see docs/errors.md', examples: ['AM_ERR_NOT_FOUND'] }),
    message: Type.String(),
  }),
}, { $id: 'Error' })
export type ErrorBody = Static<typeof ErrorBody>

// ---------------------------------------------------------------- relay

export const Health = Type.Object({ status: Type.Literal('ok') })
/** 503: shutting down, or (a PostgreSQL store) the database is not answering and writes are refused */
export const HealthDown = Type.Intersect([ErrorBody, Type.Object({ status: Type.Union([Type.Literal('shutting_down'), Type.Literal('store_unavailable')]) })])

export const RelayInfo = Type.Object({
  name: Type.Literal('agentmesh'),
  protocol: Type.String({ examples: ['agentmesh/0.2'] }),
  version: Type.String(),
  relay_id: Type.String(),
  store: OneOf(['sqlite', 'memory']),
  uptime_s: Type.Optional(Type.Number()),
  agents: Type.Optional(Type.Integer({ description: 'registered agents' })),
  pending: Type.Optional(Type.Integer({ description: 'stored messages not yet acknowledged' })),
  connections: Type.Optional(Type.Integer()),
  verify_signatures: Type.Optional(Type.Boolean()),
  relay_amid: Type.Optional(Type.String({ description: 'the relay\'s own AMID: it signs what it posts and attests REST posts (via, §17.6)' })),
  operator_api: Type.Optional(Type.Boolean({ description: 'whether the operator API (X-API-Key) is on' })),
  read_only: Type.Optional(Type.Boolean({ description: 'read-only mode (§20): reads and history work, every write is refused (AM_ERR_READ_ONLY)' })),
  read_only_reason: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'why (started with --read-only, or the database error met); null when not read-only' })),
  node: Type.Optional(Type.Object({
    id: Type.String({ description: 'this relay node\'s id on the backplane (random per start)' }),
    peers: Type.Array(Type.Object({
      id: Type.String(),
      last_seen: Type.String({ description: 'when this node last heard it (ISO 8601, this node\'s clock)' }),
    }, { additionalProperties: false }), { description: 'the other nodes heard on the shared backplane within peer_timeout_ms, most recent first (empty for a single relay)' }),
    heartbeat_ms: Type.Optional(Type.Integer({ description: 'how often each node says it is alive (with a shared backplane)' })),
    peer_timeout_ms: Type.Optional(Type.Integer({ description: 'a node not heard for this long is dropped and its agents go offline' })),
  }, { additionalProperties: false, description: 'the cluster as this node sees it (docs/architecture.md, cluster)' })),
  limits: Type.Object({
    max_envelope_bytes: Type.Optional(Type.Integer()),
    max_in_flight: Type.Optional(Type.Integer()),
    delivery_window: Type.Optional(Type.Integer()),
    heartbeat_ms: Type.Optional(Type.Integer()),
    max_connections_per_agent: Type.Optional(Type.Integer()),
    retention_ms: Type.Optional(Type.Integer()),
    max_inbox: Type.Optional(Type.Integer()),
    history_retention_ms: Type.Optional(Type.Integer({ description: 'how long room history is kept' })),
    audit_retention_ms: Type.Optional(Type.Integer({ description: 'how long audit rows are kept' })),
    audit_max_rows: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'audit rows kept at most (null: no count limit)' })),
    presence_idle_ms: Type.Optional(Type.Integer({ description: 'quiet time after which an online agent shows as idle' })),
  }, { additionalProperties: false }),
  p2p: Type.Optional(Type.Union([Type.Null(), Type.Object({
    peer_id: Type.String({ description: 'the relay\'s libp2p peer id (its relay key)' }),
    addrs: Type.Array(Type.String(), { description: 'multiaddrs (ending in /p2p/<peer_id>) registered agents reach its circuit relay and DHT bootstrap at' }),
    max_reservations: Type.Integer({ description: 'circuit-relay reservations it holds at once' }),
    reservation_ttl_ms: Type.Integer({ description: 'how long a reservation lasts before it must be renewed' }),
    circuit_duration_ms: Type.Integer({ description: 'how long one relayed connection may stay open' }),
    circuit_data_bytes: Type.Integer({ description: 'bytes one relayed connection may carry (each way)' }),
  }, { additionalProperties: false })], { description: 'the relay as a circuit relay and DHT bootstrap for registered agents (§30.3); null when off (the default)' })),
}, { additionalProperties: false })
export type RelayInfo = Static<typeof RelayInfo>

export const AnyObject = Type.Object({}, { additionalProperties: true })

// ---------------------------------------------------------------- registry (§13)

export const AmidParams = Type.Object({ amid: Type.String({ pattern: AMID_PATTERN, description: 'agent id' }) })
const SKILL_ID = '^[A-Za-z0-9._-]{1,64}$'
const B64U = '^[A-Za-z0-9_-]+$'
const Short = (max: number) => Type.String({ minLength: 1, maxLength: max })
export const TRUST_TIERS = ['anonymous', 'verified', 'organisation'] as const
export const CERT_STATES = ['valid', 'expired', 'revoked', 'untrusted'] as const
export const CONTACT_MODES = ['knock', 'open'] as const

export const Skill = Type.Object({
  id: Type.String({ pattern: SKILL_ID }),
  name: Short(128),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  tags: Type.Optional(Type.Array(Type.String({ pattern: SKILL_ID }), { maxItems: 32 })),
}, { additionalProperties: false, $id: 'Skill' })
export type Skill = Static<typeof Skill>

/**
 * A message type an agent accepts, with the JSON Schema (2020-12) its payload must match (§25). The
 * registry compiles the schema when it is published and refuses one that is not a valid schema.
 */
export const MessageSchema = Type.Object({
  type: Type.String({ pattern: TYPE_PATTERN, description: 'the envelope type the schema is for (not e2ee*, agentmesh.*)' }),
  schema: Type.Record(Type.String(), Type.Unknown(), { description: 'a JSON Schema (draft 2020-12) for the payload; at most 8 KiB as JSON' }),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
}, { additionalProperties: false, $id: 'MessageSchema' })
export type MessageSchema = Static<typeof MessageSchema>

export const ProfileBody = Type.Object({
  display_name: Type.Optional(Short(128)),
  capabilities: Type.Optional(Type.Array(Skill, { maxItems: MAX_SKILLS })),
  version: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.+_-]{1,32}$' })),
  contact: Type.Optional(OneOf(CONTACT_MODES, { description: 'first contact: `knock` (the agent takes direct messages only from agents it granted: knock first) or `open`; the SDK publishes it from the agent\'s policy' })),
  schemas: Type.Optional(Type.Array(MessageSchema, { maxItems: MAX_MESSAGE_SCHEMAS, description: 'the message types the agent accepts, with their payload schemas (§25); replaces the list held; [] clears it' })),
}, { additionalProperties: false })
export type ProfileBody = Static<typeof ProfileBody>

export const PrekeyBody = Type.Object({
  /** exchange key, signed prekey and post-quantum prekey with their signatures (public parts) */
  base: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
  one_time: Type.Optional(Type.Array(Type.Object({
    id: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    key: Type.String({ pattern: B64U, minLength: 43, maxLength: 43, description: 'X25519 public key, base64url' }),
  }, { additionalProperties: false }), { maxItems: MAX_PREKEYS_PER_UPLOAD })),
  /** signed one-time ML-KEM-768 prekeys; the registry checks each signature against the AMID */
  pq_one_time: Type.Optional(Type.Array(Type.Object({
    id: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    key: Type.String({ pattern: B64U, maxLength: 1600, description: 'ML-KEM-768 encapsulation key (1,184 bytes), base64url' }),
    sig: Type.String({ pattern: B64U, maxLength: 100, description: 'Ed25519 signature by the agent of "agentmesh/pq-one-time-prekey\\n" ‖ id (uint32 big-endian) ‖ 0x09 ‖ key, base64url' }),
  }, { additionalProperties: false }), { maxItems: MAX_PQ_PREKEYS_PER_UPLOAD })),
  /** delete the one-time prekeys (curve and PQ) held before adding these: the agent lost their secrets (a new state) */
  replace_one_time: Type.Optional(Type.Boolean()),
}, { additionalProperties: false })
export type PrekeyBody = Static<typeof PrekeyBody>

export const CertificateBody = Type.Object({
  chain: Type.Array(Type.String({ minLength: 1, maxLength: MAX_CERT_PEM_BYTES }), {
    minItems: 1,
    maxItems: MAX_CERT_CHAIN_LENGTH,
    description: 'PEM certificates, one per entry: the agent certificate first, then its issuers; the trusted root may be left out',
  }),
}, { additionalProperties: false })
export type CertificateBody = Static<typeof CertificateBody>

export const FeedbackBody = Type.Object({
  score: Type.Number({ minimum: 0, maximum: 1, description: 'from 0 (worst) to 1 (best)' }),
  comment: Type.Optional(Type.String({ maxLength: 500 })),
  interaction: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'the rater\'s id of the interaction it rates' })),
}, { additionalProperties: false })
export type FeedbackBody = Static<typeof FeedbackBody>

export const SearchQuery = Type.Object({
  capability: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SEARCH_LIMIT, default: DEFAULT_SEARCH_LIMIT })),
})

// ---- direct links: an agent's signed peer record (§30.1)
export const P2pRecord = Type.Object({
  addrs: Type.Array(Type.String(), { maxItems: 16, description: 'the multiaddrs the record lists (1–16), as the relay read them: verify `record` before dialling (the relay is not trusted with it)' }),
  seq: Type.String({ pattern: '^[0-9]{1,20}$', description: 'the record\'s sequence number (an unsigned 64-bit integer, in decimal): a newer record has a higher one' }),
  record: Type.String({ pattern: B64U, description: 'the signed envelope (libp2p RFC 0002 envelope holding an RFC 0003 peer record, signed by the AMID key), base64url' }),
  updated_at: ms('when the relay stored it'),
}, { additionalProperties: false })
export type P2pRecord = Static<typeof P2pRecord>
export const P2pRecordBody = Type.Object({
  record: Type.String({ pattern: B64U, minLength: 1, maxLength: 5464, description: 'the signed envelope, base64url (at most 4096 bytes decoded)' }),
}, { additionalProperties: false })
export type P2pRecordBody = Static<typeof P2pRecordBody>

export const Profile = Type.Object({
  amid: Type.String(),
  display_name: Type.Optional(Type.String()),
  capabilities: Type.Array(Skill),
  version: Type.Optional(Type.String()),
  tier: OneOf(TRUST_TIERS, { description: 'what the agent\'s certificate chain gives now; verified with a verified owner (§28) when the chain gives less; anonymous without either' }),
  owner: Type.Optional(Type.Object({
    issuer: Type.String({ description: 'the OpenID Connect provider that vouched for the owner' }),
    subject: Type.String({ description: 'the owner\'s subject at that provider' }),
    name: Type.Optional(Type.String({ description: 'the owner\'s name as the provider gave it (untrusted text)' })),
    linked_at: ms(),
  }, { description: 'the agent\'s verified owner (§28), when it linked one' })),
  organisation: Type.Optional(Type.String({ description: 'the organisation of the organisation tier' })),
  cert_status: Type.Optional(OneOf(CERT_STATES, { description: 'present when the agent published a certificate chain' })),
  cert_expires_at: Type.Optional(Type.Integer({ description: 'the chain\'s earliest expiry, ms since the Unix epoch; present with cert_status' })),
  handle: Type.Optional(Type.String({ description: 'the agent\'s chat handle (§17.1), when it has one; in GET /api/v1/agents/{amid} only' })),
  contact: Type.Optional(OneOf(CONTACT_MODES, { description: 'first contact as the agent published it: `knock` (knock first) or `open`; absent when it never said' })),
  schemas: Type.Optional(Type.Array(MessageSchema, { description: 'the message types the agent accepts with their payload schemas (§25); absent when it declared none' })),
  p2p: Type.Optional({ ...P2pRecord, description: 'where the agent can be reached directly (§30.1), when it published a signed peer record; in GET /api/v1/agents/{amid} only' }),
  updated_at: ms(),
}, { $id: 'Profile' })
export type Profile = Static<typeof Profile>

export const AgentList = Type.Object({ agents: Type.Array(Profile) })
export const PrekeyCount = Type.Object({
  one_time: Type.Integer({ description: 'one-time (X25519) prekeys left' }),
  pq_one_time: Type.Integer({ description: 'one-time ML-KEM-768 prekeys left' }),
})
export const PrekeyBundle = Type.Object({
  amid: Type.String(),
  one_time_prekey: Type.Optional(Type.Object({ id: Type.Integer(), key: Type.String() })),
  pq_one_time_prekey: Type.Optional(Type.Object({ id: Type.Integer(), key: Type.String(), sig: Type.String() })),
}, { additionalProperties: true })

export const Certificate = Type.Object({
  amid: Type.String(),
  chain: Type.Array(Type.String(), { description: 'PEM certificates as published, the agent certificate first' }),
  status: OneOf(CERT_STATES),
  tier: OneOf(TRUST_TIERS, { description: 'the tier it gives now: the chain\'s while valid, else anonymous' }),
  organisation: Type.Optional(Type.String()),
  expires_at: Type.Integer({ description: 'the earliest notAfter of the chain, ms since the Unix epoch' }),
  published_at: ms(),
  reason: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() }, {
    description: 'why it is not valid (AM_ERR_CERT_EXPIRED, AM_ERR_CERT_REVOKED, AM_ERR_CERT_CHAIN_BROKEN), naming the link',
  })),
}, { $id: 'Certificate' })
export type Certificate = Static<typeof Certificate>

export const Crl = Type.Object({
  issuer: Type.String({ examples: ['CN=Acme CA, O=Acme'] }),
  issuer_key: Type.String({ description: 'base64url SHA-256 of the issuing CA\'s SubjectPublicKeyInfo' }),
  this_update: ms(),
  next_update: Type.Optional(ms()),
  revoked_count: Type.Integer(),
  stored_at: ms(),
  pem: Type.String(),
}, { $id: 'Crl' })
export type Crl = Static<typeof Crl>
export const CrlList = Type.Object({ crls: Type.Array(Crl) })
export const CrlBody = Type.String({ description: 'one PEM "X509 CRL" block' })
export const CrlStored = Type.Object({ status: OneOf(['stored', 'unchanged']), crl: Crl })

export const Feedback = Type.Object({
  rater: Type.String({ description: 'the AMID that signed it' }),
  subject: Type.String({ description: 'the AMID rated' }),
  score: Type.Number({ minimum: 0, maximum: 1 }),
  comment: Type.Optional(Type.String()),
  interaction: Type.Optional(Type.String()),
  at: ms('when the relay accepted it, ms since the Unix epoch'),
}, { $id: 'Feedback' })
export type Feedback = Static<typeof Feedback>

export const Reputation = Type.Object({
  amid: Type.String(),
  score: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description: 'weighted mean of the standing ratings (6 decimals); null without ratings' }),
  ratings: Type.Integer({ description: 'standing ratings: one per rater, its latest' }),
  weight_total: Type.Number({ description: 'the sum of their weights (1 each; × anonymousWeight for an anonymous-tier rater; × (1 − mutualDiscount) when the agent rated the rater too)' }),
  updated_at: Type.Union([Type.Integer(), Type.Null()], { description: 'when the newest standing rating was given, ms since the Unix epoch; null without ratings' }),
  flagged: Type.Boolean({ description: 'a flag was raised within the last reputation.flagWindowMs (see …/reputation/flags)' }),
}, { $id: 'Reputation' })
export type Reputation = Static<typeof Reputation>
export const FeedbackStored = Type.Object({ feedback: Feedback, replaced: Type.Boolean(), reputation: Reputation })

export const ReputationFlag = Type.Object({
  at: ms('when it was raised, ms since the Unix epoch'),
  from: Type.Number({ description: 'the earlier of the highest and lowest score within the window' }),
  from_at: Type.Integer({ description: 'when the score was `from` (the window\'s start for a score set before it)' }),
  to: Type.Number({ description: 'the later of the two' }),
  to_at: Type.Integer(),
  reason: Type.String(),
}, { $id: 'ReputationFlag' })
export type ReputationFlag = Static<typeof ReputationFlag>
export const ReputationFlags = Type.Object({ amid: Type.String(), flags: Type.Array(ReputationFlag) })

// ---------------------------------------------------------------- chat REST API v1 (§17): tokens

export const ChallengeBody = Type.Object({ amid: AmidString })
export const Challenge = Type.Object({
  nonce: Type.String({ description: 'base64url, single use' }),
  relay: Type.String({ description: 'the relay id to sign with (as in the WebSocket auth, §3)' }),
  expires_at: ms(),
}, { additionalProperties: false })
export type Challenge = Static<typeof Challenge>
export const TokenBody = Type.Object({ amid: AmidString, nonce: Type.String(), sig: Type.String({ description: 'base64url Ed25519 signature' }) })
export const Token = Type.Object({ token: Type.String(), token_type: Type.Literal('Bearer'), expires_at: ms() }, { additionalProperties: false })
export type Token = Static<typeof Token>

// ---------------------------------------------------------------- rooms

export const RoomParams = Type.Object({
  id: Type.String({ description: 'room id ("global", a public or private room\'s id, or "dm-…"); a leading "#" (%23) is accepted' }),
})
export const MessageParams = Type.Object({
  id: RoomParams.properties.id,
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the message\'s room seq (from 1; 0 names no message)' }),
})
const Limit = Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE })
const Topic = Type.Union([Type.String({ maxLength: MAX_TOPIC_LENGTH }), Type.Null()], {
  description: `at most ${MAX_TOPIC_LENGTH} characters; null, "" or left out: no topic`,
})

export const RoomInfo = Type.Object({
  id: Type.String(),
  kind: OneOf(ROOM_KINDS),
  topic: Type.Optional(Type.String()),
  owner: Type.Optional(Type.String({ pattern: AMID_PATTERN, description: 'the agent that created it (absent for global and DMs)' })),
  created_at: ms(),
  members: Type.Integer({ description: 'how many members (for global: registered agents)' }),
  joined: Type.Boolean({ description: 'the calling agent is a member' }),
  role: Type.Optional(OneOf(['owner', 'member'], { description: 'the calling agent\'s role in the room, when it is a member (not for global)' })),
  last_seq: Type.Integer({ description: 'the newest room seq (0 when empty)' }),
}, { additionalProperties: false, $id: 'Room' })
export type RoomInfo = Static<typeof RoomInfo>

export const RoomMember = Type.Object({
  amid: AmidString,
  handle: Type.Optional(Type.String()),
  role: OneOf(['owner', 'member']),
  joined_at: ms(),
  presence: OneOf(PRESENCE_STATES),
  read_up_to: Type.Optional(Type.Integer({ description: 'the room seq it read up to (read signals, §17.4)' })),
}, { additionalProperties: false, $id: 'Member' })
export type RoomMember = Static<typeof RoomMember>

export const RoomsQuery = Type.Object({ after: Type.Optional(Type.String({ description: 'room ids after this one' })), limit: Type.Optional(Limit) })
export const RoomList = Type.Object({ rooms: Type.Array(RoomInfo) }, { additionalProperties: false })
/**
 * A private room's membership statement (docs/protocol.md §17.5), signed by the agent that makes
 * the change: `sig` = Ed25519(by, "agentmesh/membership\n" + RFC 8785 JSON of every field but sig);
 * `prev` = base64url(SHA-256(RFC 8785 JSON of the statement before, sig included)).
 */
export const MembershipStatement = Type.Object({
  v: Type.Literal(1),
  room: Type.String({ pattern: ROOM_ID_PATTERN }),
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: '0 for the genesis (create), then +1 per statement' }),
  prev: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'hash of the statement before (absent in the genesis)' })),
  op: OneOf(['create', 'add', 'remove', 'leave', 'admin', 'unadmin']),
  agent: AmidString,
  by: AmidString,
  at: ms(),
  sig: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$', description: 'Ed25519 signature by `by`, base64url' }),
}, { additionalProperties: false, $id: 'MembershipStatement' })
export type MembershipStatement = Static<typeof MembershipStatement>

export const CreateRoomBody = Type.Object({
  id: Type.String({ pattern: ROOM_ID_PATTERN, description: '"global" and ids starting with "dm-" are reserved' }),
  kind: Type.Optional(OneOf(['public', 'private'], { default: 'public' })),
  topic: Type.Optional(Topic),
  membership: Type.Optional(MembershipStatement),
}, { additionalProperties: false })
export type CreateRoomBody = Static<typeof CreateRoomBody>
export const MemberList = Type.Object({ room: Type.String(), members: Type.Array(RoomMember) }, { additionalProperties: false })
export const Joined = Type.Object({ room: RoomInfo, joined: Type.Literal(true), already: Type.Boolean() }, { additionalProperties: false })
export const Left = Type.Object({ room: Type.String(), left: Type.Literal(true) }, { additionalProperties: false })
export const AgentBody = Type.Object({ agent: AgentRef }, { additionalProperties: false })
export const MemberChangeBody = Type.Object({
  agent: AgentRef,
  statement: Type.Optional(MembershipStatement),
}, { additionalProperties: false })
export const LeaveBody = Type.Object({
  statement: Type.Optional(MembershipStatement),
}, { additionalProperties: false })
export const MembershipBody = Type.Object({ statement: MembershipStatement }, { additionalProperties: false })
export const Membership = Type.Object({
  room: Type.String({ description: 'room id' }),
  statements: Type.Array(MembershipStatement, { description: 'the signed chain as the relay holds it, genesis first; clients verify it themselves' }),
}, { additionalProperties: false })
export const Invited = Type.Object({ room: Type.String({ description: 'room id' }), agent: AmidString, invited: Type.Literal(true) }, { additionalProperties: false })
export const Kicked = Type.Object({ room: Type.String({ description: 'room id' }), agent: AmidString, kicked: Type.Literal(true) }, { additionalProperties: false })
export const TopicBody = Type.Object({ topic: Type.Optional(Topic) }, { additionalProperties: false })

export const HistoryQuery = Type.Object({
  before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'messages with a smaller room seq' })),
  after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'messages with a larger room seq (wins over before)' })),
  limit: Type.Optional(Limit),
})
export const HistoryMessage = Type.Object({
  seq: Type.Integer({ description: 'room seq, from 1' }),
  id: Type.String(),
  from: AmidString,
  from_handle: Type.Optional(Type.String({ description: 'the sender\'s handle ("relay" for the relay)' })),
  received_at: ms(),
  type: Type.Optional(Type.String()),
  ts: Type.Optional(ms('the sender\'s timestamp, ms since the Unix epoch')),
  text: Type.Optional(Type.String({ description: 'payload.text, when a string (not for e2ee.group)' })),
  payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  via: Type.Optional(Type.String({ pattern: AMID_PATTERN, description: 'the relay that signed it for the sender (§17.6)' })),
  envelope: Type.Optional(Envelope),
  deleted: Type.Optional(Type.Object({ by: Type.String(), at: ms() }, { additionalProperties: false })),
}, {
  additionalProperties: false,
  $id: 'HistoryMessage',
  description: 'A stored room message, or the tombstone of a deleted one (deleted, without its content).',
  oneOf: [{ required: ['type', 'ts', 'payload', 'envelope'] }, { required: ['deleted'] }],
})
export type HistoryMessage = Static<typeof HistoryMessage>
export const HistoryPage = Type.Object({
  room: Type.String(),
  messages: Type.Array(HistoryMessage),
  next_before: Type.Optional(Type.Integer({ description: 'present when older messages may remain (paging backwards)' })),
  next_after: Type.Optional(Type.Integer({ description: 'present when newer messages may remain (paging with after)' })),
  last_seq: Type.Integer({ description: 'the room\'s newest seq (0 when empty)' }),
}, { additionalProperties: false })
export type HistoryPage = Static<typeof HistoryPage>
export const MessageDeleted = Type.Object({ room: Type.String(), seq: Type.Integer(), deleted: Type.Literal(true) }, { additionalProperties: false })

// ---------------------------------------------------------------- messages

/** A message the relay builds and signs (§17.6). */
export const PostTextBody = Type.Object({
  to: Type.String({ description: '"#room", an AMID or @handle' }),
  text: Type.Optional(Type.String()),
  payload: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'merged under text' })),
  type: Type.Optional(Type.String({ pattern: TYPE_PATTERN, default: 'chat', description: 'not e2ee*, task.* or notice' })),
  id: Type.Optional(Type.String({ pattern: ID_PATTERN, description: 'the envelope id; a UUIDv7 when left out' })),
  plaintext: Type.Optional(Type.Boolean({ description: 'for a DM: refused either way (422 AM_ERR_ATTESTATION_REFUSED with it, AM_ERR_ENCRYPTION_REQUIRED without): receivers take the relay\'s word for room posts only; post a signed envelope' })),
}, { additionalProperties: false, anyOf: [{ required: ['text'] }, { required: ['payload'] }] })
export type PostTextBody = Static<typeof PostTextBody>
/** An envelope the calling agent signed. */
export const PostEnvelopeBody = Type.Object({ envelope: Envelope }, { additionalProperties: false })
export const PostMessageBody = Type.Union([PostTextBody, PostEnvelopeBody], { $id: 'PostMessage' })
export type PostMessageBody = Static<typeof PostMessageBody>
/** The body of POST /api/messages, the operations plan's shape of a relay-built message (§17.6). */
export const SendMessageBody = Type.Object({
  from: Type.String({ minLength: 1, description: 'the caller\'s own AMID (the relay\'s AMID with the operator\'s key)' }),
  to: Type.String({ minLength: 1, description: '"#room", an AMID or @handle' }),
  content: Type.String({ description: 'the text' }),
}, { additionalProperties: false })
export type SendMessageBody = Static<typeof SendMessageBody>
export const MessagePosted = Type.Object({
  id: Type.String(),
  to: Type.String(),
  from: AmidString,
  seq: Type.Optional(Type.Integer({ description: 'the room seq (room messages only)' })),
  duplicate: Type.Boolean(),
}, { additionalProperties: false, $id: 'MessagePosted' })
export type MessagePosted = Static<typeof MessagePosted>

// ---------------------------------------------------------------- presence, handles, roles

export const PresenceQuery = Type.Object({ room: Type.Optional(Type.String({ description: 'a room id (with or without "#"); "global" is the same as none' })) })
export const PresenceEntry = Type.Object({
  amid: AmidString,
  handle: Type.Optional(Type.String()),
  status: OneOf(PRESENCE_STATES),
  last_active_at: Type.Optional(ms('last send or signal, while connected')),
  last_seen_at: Type.Optional(ms('last connection (offline agents)')),
}, { additionalProperties: false, $id: 'Presence' })
export type PresenceEntry = Static<typeof PresenceEntry>
export const PresenceList = Type.Object({ agents: Type.Array(PresenceEntry) }, { additionalProperties: false })

export const HandleBody = Type.Object({
  handle: Type.String({ pattern: HANDLE_PATTERN }),
  amid: Type.Optional(Type.String({ pattern: AMID_PATTERN, description: 'the agent to name; the caller when left out (required with the operator\'s key, unless agent_id is given)' })),
  agent_id: Type.Optional(Type.String({ minLength: 1, description: 'the agent to name, an AMID or @handle (as amid; give one of the two); only a master names another agent' })),
}, { additionalProperties: false })
export const HandleSet = Type.Object({
  amid: AmidString,
  handle: Type.String(),
  previous: Type.Optional(Type.String({ description: 'the handle it replaced' })),
}, { additionalProperties: false, $id: 'HandleSet' })
export type HandleSet = Static<typeof HandleSet>
export const HandleParams = Type.Object({ handle: Type.String({ description: 'a handle, or an AMID to look up its handle' }) })
export const HandleOf = Type.Object({ handle: Type.String(), amid: AmidString }, { additionalProperties: false })
export type HandleOf = Static<typeof HandleOf>

export const RoleBody = Type.Object({ role: OneOf(ROLES) }, { additionalProperties: false })
export const RoleSet = Type.Object({ amid: AmidString, role: OneOf(ROLES) }, { additionalProperties: false })
export type RoleSet = Static<typeof RoleSet>
export const RoleList = Type.Object({
  roles: Type.Array(Type.Object({ amid: AmidString, role: OneOf(ROLES) }, { additionalProperties: false })),
  default: Type.Literal('worker'),
}, { additionalProperties: false })
export type RoleList = Static<typeof RoleList>

// ---------------------------------------------------------------- tasks (§17.7)

export const TaskParams = Type.Object({ id: Type.String({ description: 'task id' }) })
const TaskStateSchema = OneOf(TASK_STATES)
export const TaskTransition = Type.Object({
  state: TaskStateSchema,
  at: ms(),
  by: Actor,
  message: Type.Optional(Type.String()),
}, { additionalProperties: false, $id: 'TaskTransition' })
export type TaskTransition = Static<typeof TaskTransition>
export const TaskInfo = Type.Object({
  id: Type.String(),
  room: Type.Optional(Type.String({ description: 'the room it was dispatched in' })),
  requester: AmidString,
  assignee: AmidString,
  command: Type.String({ pattern: COMMAND_PATTERN }),
  args: Type.String(),
  state: TaskStateSchema,
  created_at: ms(),
  updated_at: ms(),
  deadline: ms('ms since the Unix epoch: not final by then, it fails'),
  result: Type.Optional(Type.Unknown({ description: 'what the assignee answered (any JSON)' })),
  message: Type.Optional(Type.String({ description: 'the last transition\'s message' })),
  history: Type.Array(TaskTransition),
}, { additionalProperties: false, $id: 'Task' })
export type TaskInfo = Static<typeof TaskInfo>
export const DispatchTaskBody = Type.Object({
  to: Type.String({ minLength: 1, description: 'the assignee: an AMID or @handle' }),
  command: Type.String({ pattern: '^/?' + COMMAND_PATTERN.slice(1), description: 'e.g. "status" (a leading "/" is dropped)' }),
  args: Type.Optional(Type.String({ maxLength: MAX_TASK_ARGS, default: '' })),
  room: Type.Optional(Type.String({ description: 'a room id (not a DM) both the caller and the assignee are members of' })),
  deadline_s: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASK_DEADLINE_S, description: 'seconds; default the task_default_deadline_s setting' })),
}, { additionalProperties: false })
export type DispatchTaskBody = Static<typeof DispatchTaskBody>
export const TasksQuery = Type.Object({
  room: Type.Optional(Type.String()),
  state: Type.Optional(TaskStateSchema),
  before: Type.Optional(Type.String({ description: 'a task id: tasks created before it' })),
  limit: Type.Optional(Limit),
})
export const TaskList = Type.Object({
  tasks: Type.Array(TaskInfo),
  next_before: Type.Optional(Type.String({ description: 'present when the page is full' })),
}, { additionalProperties: false })
export type TaskList = Static<typeof TaskList>
export const TaskStatusBody = Type.Object({
  state: TaskStateSchema,
  message: Type.Optional(Type.String({ maxLength: MAX_TASK_MESSAGE, description: 'a question for input-required, a reason for failed / rejected' })),
  result: Type.Optional(Type.Unknown({ description: `any JSON, at most ${MAX_TASK_RESULT_BYTES / 1024} KiB` })),
}, { additionalProperties: false })
export type TaskStatusBody = Static<typeof TaskStatusBody>
export const CancelTaskBody = Type.Object({
  reason: Type.Optional(Type.String({ maxLength: MAX_TASK_MESSAGE, default: 'canceled' })),
}, { additionalProperties: false })

// ---------------------------------------------------------------- audit (§17.8)

export const AuditQuery = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'rows with a larger seq' })),
  before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the newest rows with a smaller seq, in seq order (after wins over before); a large value reads the end of the log' })),
  limit: Type.Optional(Limit),
  actor: Type.Optional(Type.String({ description: 'an AMID, "operator" or "relay"; a worker may only name itself' })),
  action: Type.Optional(Type.String({ pattern: AUDIT_ACTION_PATTERN, description: 'e.g. message.send, room.join' })),
})
export const AuditEntry = Type.Object({
  seq: Type.Integer({ description: 'from 1, no gaps' }),
  at: ms(),
  actor: Actor,
  action: Type.String({ examples: ['message.send'] }),
  target: Type.Optional(Type.String({ description: 'an AMID, "#room" or a task id' })),
  detail: Type.Record(Type.String(), Type.Unknown(), { description: 'metadata only, never message content' }),
  prev: Type.String({ description: 'the previous row\'s hash ("" for row 1)' }),
  hash: Type.String({ description: 'SHA-256 of "agentmesh/audit\\n" + prev + "\\n" + JCS(row without prev and hash)' }),
}, { additionalProperties: false, $id: 'AuditEntry' })
export type AuditEntry = Static<typeof AuditEntry>
export const AuditPage = Type.Object({
  entries: Type.Array(AuditEntry),
  next_after: Type.Optional(Type.Integer({ description: 'present when the page is full' })),
  next_before: Type.Optional(Type.Integer({ description: 'with before: present when the page is full; the seq to page back from' })),
}, { additionalProperties: false })
export type AuditPage = Static<typeof AuditPage>
export const AuditVerdict = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    rows: Type.Integer(),
    last_seq: Type.Optional(Type.Integer()),
    last_hash: Type.Optional(Type.String()),
    from_seq: Type.Optional(Type.Integer({ description: 'the first row kept, when older rows were dropped for retention (audit.pruned rows say so)' })),
    signed_head_seq: Type.Optional(Type.Integer({ description: 'the row of the newest signed head (GET /api/v1/audit/heads) the chain was checked against: rows up to it are exactly the ones the relay signed' })),
  }, { additionalProperties: false }),
  Type.Object({
    ok: Type.Literal(false),
    rows: Type.Integer(),
    seq: Type.Integer({ description: 'the first bad row' }),
    reason: Type.String(),
    problem: Type.Optional(Type.Union(['missing', 'start', 'tail', 'changed', 'unlinked', 'rechained'].map(p => Type.Literal(p)), { description: 'missing: a row inside the chain; start: rows at its start; tail: rows after the newest row (a signed head names a later one); changed: a row\'s fields do not match its hash; unlinked: a broken link; rechained: the chain links but a signed head holds another hash for its row' })),
    code: Type.Literal('AM_ERR_AUDIT_TAMPERED'),
  }, { additionalProperties: false }),
])
export type AuditVerdict = Static<typeof AuditVerdict>
export const AuditHeadsQuery = Type.Object({
  limit: Type.Optional(Limit),
})
export const AuditHeadEntry = Type.Object({
  seq: Type.Integer({ minimum: 0, description: 'the newest audit row when signed' }),
  hash: Type.String({ description: 'that row\'s hash' }),
  at: ms(),
  relay: Type.String({ description: 'the relay\'s AMID (its Ed25519 public key)' }),
  sig: Type.String({ description: 'base64url Ed25519 signature of "agentmesh/audit-head\\n" + JCS({seq, hash, at, relay})' }),
}, { additionalProperties: false, $id: 'AuditHead' })
export type AuditHeadEntry = Static<typeof AuditHeadEntry>
export const AuditHeadList = Type.Object({
  relay: Type.String({ description: 'the relay\'s AMID: every head is signed with its key' }),
  heads: Type.Array(AuditHeadEntry, { description: 'the newest heads, oldest first' }),
}, { additionalProperties: false })
export type AuditHeadList = Static<typeof AuditHeadList>

// ---------------------------------------------------------------- settings

const RateSetting = Type.Integer({ minimum: 1, maximum: MAX_RATE_SETTING })
const rateProps = Object.fromEntries(RATE_LIMIT_KEYS.map(k => [k, RateSetting])) as Record<typeof RATE_LIMIT_KEYS[number], typeof RateSetting>
const PresenceIdle = Type.Integer({ minimum: MIN_PRESENCE_IDLE_MS, maximum: MAX_PRESENCE_IDLE_MS, description: 'quiet time after which an online agent shows as idle' })
const TaskDefaultDeadline = Type.Integer({ minimum: 1, maximum: MAX_TASK_DEADLINE_S, description: 'deadline of a task dispatched without one' })
const rateText = 'token buckets: REST requests per agent (api_*) and per IP (ip_*), room messages and signals over the WebSocket per agent (chat_*) and per IP (chat_ip_*)'

export const Settings = Type.Object({
  presence_idle_ms: PresenceIdle,
  task_default_deadline_s: TaskDefaultDeadline,
  rate_limits: Type.Object(rateProps, { additionalProperties: false, description: rateText }),
}, { additionalProperties: false, $id: 'Settings' })
export type Settings = Static<typeof Settings>
export const SettingsPatch = Type.Object({
  presence_idle_ms: Type.Optional(PresenceIdle),
  task_default_deadline_s: Type.Optional(TaskDefaultDeadline),
  rate_limits: Type.Optional(Type.Partial(Type.Object(rateProps), { additionalProperties: false, description: rateText })),
}, { additionalProperties: false, $id: 'SettingsPatch', description: 'any subset of the settings; what is left out keeps its value' })
export type SettingsPatch = Static<typeof SettingsPatch>
export const SettingsAnswer = Type.Object({ settings: Settings }, { additionalProperties: false })
export type SettingsAnswer = Static<typeof SettingsAnswer>

// ---- operations: files (§18). camelCase names, as the plan has them, on both path forms.
export const FileParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$', description: 'file id (a UUID v7)' }) })
const Filename = Type.String({ minLength: 1, maxLength: MAX_FILENAME_LENGTH, description: 'the name the owner gave it: data, never a path (control characters refused)' })
const FileType = Type.String({ pattern: FILE_TYPE_PATTERN, maxLength: 127, description: 'MIME type, e.g. "application/pdf"' })
const Visibility = Type.String({ pattern: FILE_VISIBILITY_PATTERN, description: '"private" (the owner and sharedWith), "public" (every agent) or "#room" (its members)' })
const SharedWith = Type.Array(AmidString, { maxItems: MAX_FILE_SHARES, description: 'agents a private file is shared with' })
const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the bytes, lower-case hex' })
export const FileInfo = Type.Object({
  fileId: Type.String(),
  ownerAmid: AmidString,
  filename: Filename,
  type: Type.String(),
  size: Type.Integer({ minimum: 0, description: 'bytes' }),
  sha256: Sha256Hex,
  description: Type.Optional(Type.String()),
  createdAt: ms(),
  visibility: Visibility,
  sharedWith: Type.Optional(Type.Array(AmidString, { description: 'shown to the owner and masters only' })),
  url: Type.String({ description: 'where the bytes are: /api/v1/files/{id}/content' }),
}, { additionalProperties: false, $id: 'FileInfo' })
export type FileInfo = Static<typeof FileInfo>
export const UploadFileBody = Type.Object({
  agentId: Type.Optional(Type.String({ description: 'the owner: the caller\'s own AMID (a master may name any registered agent)' })),
  filename: Filename,
  fileType: Type.Optional(FileType),
  type: Type.Optional(FileType),
  fileData: Type.String({ description: 'the bytes, Base64 (standard or URL-safe, padding optional)' }),
  description: Type.Optional(Type.String({ maxLength: MAX_FILE_DESCRIPTION })),
  visibility: Type.Optional(Visibility),
  sharedWith: Type.Optional(SharedWith),
  sha256: Type.Optional(Sha256Hex),
}, { additionalProperties: false })
export type UploadFileBody = Static<typeof UploadFileBody>
export const UploadFileQuery = Type.Object({
  filename: Filename,
  type: Type.Optional(FileType),
  description: Type.Optional(Type.String({ maxLength: MAX_FILE_DESCRIPTION })),
  visibility: Type.Optional(Visibility),
  sharedWith: Type.Optional(Type.String({ description: 'comma-separated AMIDs' })),
  sha256: Type.Optional(Sha256Hex),
  agentId: Type.Optional(Type.String({ description: 'the owner; a master may name any registered agent' })),
})
export const FileUploaded = Type.Object({
  fileId: Type.String(),
  url: Type.String(),
  success: Type.Literal(true),
  size: Type.Integer(),
  sha256: Sha256Hex,
}, { additionalProperties: false })
export type FileUploaded = Static<typeof FileUploaded>
export const FilesQuery = Type.Object({
  agentId: Type.Optional(Type.String({ pattern: AMID_PATTERN, description: 'only files this agent owns' })),
  after: Type.Optional(Type.String({ description: 'nextAfter of the page before' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE })),
})
export const FileList = Type.Object({
  files: Type.Array(FileInfo),
  nextAfter: Type.Optional(Type.String({ description: 'present when the page is full' })),
}, { additionalProperties: false })
export type FileList = Static<typeof FileList>
export const FileDeleted = Type.Object({ fileId: Type.String(), success: Type.Literal(true) }, { additionalProperties: false })
export type FileDeleted = Static<typeof FileDeleted>
/** The bytes of a file (application/octet-stream or the file's type). */
export const FileContent = Type.String({ contentMediaType: 'application/octet-stream', description: 'the file\'s bytes' })

/** Every named schema (with an `$id`), for the OpenAPI components; `Envelope` is the wire protocol's. */
export const NAMED_SCHEMAS: readonly TSchema[] = [
  ErrorBody, Envelope, RoomInfo, RoomMember, HistoryMessage, PostMessageBody, MessagePosted, HandleSet, PresenceEntry,
  TaskInfo, TaskTransition, AuditEntry, Settings, SettingsPatch, Skill, MessageSchema, Profile, Certificate, Feedback, Reputation,
  ReputationFlag, Crl, MembershipStatement, AuditHeadEntry,
  FileInfo,
]

// ---------------------------------------------------------------- operations: system updates (§19)
// camelCase field names, as the operations plan writes them, on /api/v1/updates… and /api/updates…

export const UPDATE_TYPES = ['api', 'schema', 'emergency', 'feature'] as const
/** What an agent answers; `pending` is the status of an agent that has not answered. */
export const UPDATE_ACK_STATUSES = ['accepted', 'rejected', 'completed'] as const
export const UPDATE_STATUSES = ['pending', ...UPDATE_ACK_STATUSES] as const
export const MAX_UPDATE_TITLE = 200
export const MAX_UPDATE_DESCRIPTION = 4000
/** An announcement's Markdown, in characters (the body is at most 64 KiB as a whole). */
export const MAX_UPDATE_ANNOUNCEMENT = 32_000
export const MAX_UPDATE_NOTES = 2000
/** Agents listed by name in the adoption view's `notAnswered` (the count is always whole). */
export const MAX_ADOPTION_NOT_ANSWERED = 1000
export const SEMVER_PATTERN = '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$'
const SoftwareVersion = Type.String({ pattern: '^[0-9A-Za-z][0-9A-Za-z.+-]*$', maxLength: 64, description: 'a software version, e.g. "1.4.0"' })
/** A time as ms since the Unix epoch, or an ISO 8601 date-time string (answers are ms). */
const TimeInput = Type.Union([
  Type.Integer({ minimum: 0, description: 'ms since the Unix epoch' }),
  Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$', description: 'an ISO 8601 date or date-time, e.g. "2026-12-31T23:59:59Z"' }),
])
const UpdateTypeSchema = OneOf(UPDATE_TYPES)

export const UpdateParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'update id' }) })
export const CreateUpdateBody = Type.Object({
  version: SoftwareVersion,
  updateType: UpdateTypeSchema,
  title: Type.String({ minLength: 1, maxLength: MAX_UPDATE_TITLE }),
  description: Type.Optional(Type.String({ maxLength: MAX_UPDATE_DESCRIPTION })),
  requiredVersion: Type.Optional(Type.String({ pattern: SEMVER_PATTERN, maxLength: 64, description: 'the lowest agent version that may go on sending once the deadline passed (semver), with breakingChange: true; without it, agents below are only told (belowRequired)' })),
  breakingChange: Type.Optional(Type.Boolean({ default: false })),
  announcement: Type.Optional(Type.String({ maxLength: MAX_UPDATE_ANNOUNCEMENT, description: 'Markdown' })),
  expiresAt: Type.Optional(TimeInput),
  enforceAt: Type.Optional(TimeInput),
}, { additionalProperties: false })
export type CreateUpdateBody = Static<typeof CreateUpdateBody>
export const UpdateCreated = Type.Object({
  updateId: Type.String(),
  broadcast: Type.Literal(true),
}, { additionalProperties: false })
export type UpdateCreated = Static<typeof UpdateCreated>
export const UpdateInfo = Type.Object({
  updateId: Type.String(),
  version: Type.String(),
  updateType: UpdateTypeSchema,
  title: Type.String(),
  description: Type.Optional(Type.String()),
  requiredVersion: Type.Optional(Type.String()),
  breakingChange: Type.Boolean(),
  announcement: Type.Optional(Type.String({ description: 'Markdown' })),
  expiresAt: Type.Optional(ms()),
  enforceAt: Type.Optional(ms('ms since the Unix epoch: from then on agents below requiredVersion are refused (breaking changes with a requiredVersion only)')),
  createdBy: Type.String({ description: 'an AMID, or "operator"' }),
  createdAt: ms(),
  active: Type.Boolean({ description: 'not expired' }),
  status: Type.Optional(OneOf(UPDATE_STATUSES, { description: 'to an agent: its own answer so far' })),
  belowRequired: Type.Optional(Type.Boolean({ description: 'to an agent, with a requiredVersion: the version it last reported is below it (or it reported none)' })),
}, { additionalProperties: false })
export type UpdateInfo = Static<typeof UpdateInfo>
export const UpdatesQuery = Type.Object({
  since: Type.Optional(Type.String({ description: 'created at or after: ms since the Unix epoch or an ISO 8601 date-time' })),
  activeOnly: Type.Optional(OneOf(['true', 'false'])),
  limit: Type.Optional(Limit),
})
export const UpdateList = Type.Object({ updates: Type.Array(UpdateInfo) }, { additionalProperties: false })
export type UpdateList = Static<typeof UpdateList>
export const AckUpdateBody = Type.Object({
  agentId: Type.Optional(Type.String({ minLength: 1, description: 'the acknowledging agent: the caller (a master may name another)' })),
  status: OneOf(UPDATE_ACK_STATUSES),
  agentVersion: Type.Optional(SoftwareVersion),
  notes: Type.Optional(Type.String({ maxLength: MAX_UPDATE_NOTES })),
}, { additionalProperties: false })
export type AckUpdateBody = Static<typeof AckUpdateBody>
export const UpdateAck = Type.Object({
  updateId: Type.String(),
  agentId: Type.String(),
  status: OneOf(UPDATE_ACK_STATUSES),
  agentVersion: Type.Optional(Type.String()),
  notes: Type.Optional(Type.String()),
  updatedAt: ms(),
}, { additionalProperties: false })
export type UpdateAck = Static<typeof UpdateAck>
export const UpdateAdoption = Type.Object({
  updateId: Type.String(),
  totalAgents: Type.Integer({ minimum: 0, description: 'registered agents (the relay itself left out)' }),
  counts: Type.Object({
    pending: Type.Integer({ minimum: 0 }),
    accepted: Type.Integer({ minimum: 0 }),
    rejected: Type.Integer({ minimum: 0 }),
    completed: Type.Integer({ minimum: 0 }),
  }, { additionalProperties: false }),
  notAnswered: Type.Array(Type.String(), { description: `the agents that have not answered, by AMID (at most ${MAX_ADOPTION_NOT_ANSWERED}; counts.pending counts all)` }),
  acknowledgments: Type.Array(UpdateAck),
  versions: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'agents by the software version they last reported ("unknown": none)' }),
  belowRequired: Type.Optional(Type.Integer({ minimum: 0, description: 'agents whose last reported version is below requiredVersion (or unknown)' })),
}, { additionalProperties: false })
export type UpdateAdoption = Static<typeof UpdateAdoption>

// ---------------------------------------------------------------- verified owners (§28)

export const OwnerLinkParams = Type.Object({
  amid: Type.String({ pattern: AMID_PATTERN, description: 'agent id' }),
  id: Type.String({ minLength: 1, maxLength: 64, description: 'the link under way, as POST …/owner/link answered it' }),
})
export const OwnerLinkStarted = Type.Object({
  link_id: Type.String({ description: 'names this link under way (poll and confirm with it)' }),
  authorization_url: Type.String({ description: 'where the owner signs in at the provider (PKCE S256, state, nonce)' }),
  expires_at: ms(),
}, { $id: 'OwnerLinkStarted' })
export const OwnerLinkState = Type.Object({
  status: Type.Union([Type.Literal('waiting'), Type.Literal('verified')], { description: 'waiting: the owner has not signed in yet' }),
  issuer: Type.Optional(Type.String()),
  subject: Type.Optional(Type.String()),
  name: Type.Optional(Type.String({ description: 'as the provider gave it (untrusted text)' })),
  relay: Type.Optional(Type.String({ description: 'the relay\'s AMID, for the statement' })),
  expires_at: ms(),
}, { $id: 'OwnerLinkState' })
export const OwnerLinkBody = Type.Object({
  issuer: Type.String({ maxLength: 2048 }),
  subject: Type.String({ maxLength: 1024 }),
  relay: Type.String({ maxLength: 128 }),
  ts: Type.Integer({ description: 'ms since the Unix epoch, within 5 minutes of the relay\'s clock' }),
  sig: Type.String({ maxLength: 200, description: 'base64url Ed25519 of the agent over "agentmesh/owner-link\\n" + JCS({amid, issuer, subject, relay, ts})' }),
}, { $id: 'OwnerLinkBody' })
export const OwnerLink = Type.Object({
  amid: Type.String(),
  issuer: Type.String(),
  subject: Type.String(),
  name: Type.Optional(Type.String({ description: 'as the provider gave it (untrusted text)' })),
  relay: Type.String(),
  ts: ms(),
  sig: Type.String(),
  linked_at: ms(),
}, { $id: 'OwnerLink' })
export const OwnerUnlinked = Type.Object({ amid: Type.String(), unlinked: Type.Literal(true) })
export const HtmlPage = Type.String({ description: 'an HTML page for the person in the browser' })
