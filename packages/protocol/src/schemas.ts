/**
 * JSON Schemas of the envelope and of every WebSocket frame (docs/protocol.md).
 * TypeBox builds plain JSON Schema objects, so these are both the runtime schemas
 * (exported as JSON) and, through `Static<>`, the TypeScript types: one source of truth.
 * Objects accept unknown properties so that a newer minor version's fields are tolerated.
 */
import { Type, type Static } from '@sinclair/typebox'

/** AMID: "am" + base58btc of the agent's 32-byte Ed25519 public key. */
export const AMID_PATTERN = '^am[1-9A-HJ-NP-Za-km-z]{42,46}$'
/** Envelope ids: chosen by the sender once (UUIDv7 or ULID recommended). */
export const ID_PATTERN = '^[0-9A-Za-z_-]{8,128}$'
export const TYPE_PATTERN = '^[a-z][a-z0-9._-]{0,63}$'
export const VERSION_PATTERN = '^agentmesh/[0-9]+\\.[0-9]+$'
/** An agent's software version as it reports it (§3, §19): a semantic version such as "1.4.0" or "2.0.0-rc.1+build.5". */
export const AGENT_VERSION_PATTERN = '^[0-9A-Za-z][0-9A-Za-z.+-]*$'
export const MAX_AGENT_VERSION_LENGTH = 64
const B64URL = '^[A-Za-z0-9_-]*$'

/** A room address in an envelope's `to`: "#" + the room id (docs/protocol.md §17). */
export const ROOM_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$'
export const ROOM_ADDRESS_PATTERN = '^#[a-z0-9][a-z0-9_-]{0,63}$'
/** Where an envelope goes: an agent (AMID) or a room ("#" + room id). */
export const ADDRESS_PATTERN = '^(am[1-9A-HJ-NP-Za-km-z]{42,46}|#[a-z0-9][a-z0-9_-]{0,63})$'

export const Amid = Type.String({ pattern: AMID_PATTERN, description: 'Agent id (AMID)' })
export const Address = Type.String({ pattern: ADDRESS_PATTERN, description: 'An AMID, or "#" + a room id' })
export const EnvelopeId = Type.String({ pattern: ID_PATTERN })
export const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
/** Most characters of one certificate on the wire: base64url of its DER (an Ed25519 session certificate is ~600). */
export const MAX_WIRE_CERT_CHARS = 4096
/** A certificate on the wire (docs/protocol.md §3, §8): base64url of its DER, without padding. */
export const WireCert = Type.String({ pattern: B64URL, minLength: 1, maxLength: MAX_WIRE_CERT_CHARS })

export const Envelope = Type.Object({
  v: Type.String({ pattern: VERSION_PATTERN }),
  id: EnvelopeId,
  from: Amid,
  to: Address,
  type: Type.String({ pattern: TYPE_PATTERN }),
  ts: Type.Integer({ minimum: 0, description: 'milliseconds since the Unix epoch, set by the sender' }),
  payload: Type.Record(Type.String(), Type.Unknown()),
  /**
   * Relay-attested (§17.6): the relay signed this envelope on behalf of `from`, who posted it through
   * the REST API with a bearer token. `sig` is then the relay's signature, and `via` its AMID.
   */
  via: Type.Optional(Amid),
  /** Signed by a session key (§8): that key's session certificate, which `from`'s key signed. */
  session_cert: Type.Optional(WireCert),
  /**
   * Ed25519 signature, base64url (§8). Absent only on an `agentmesh/0.3` (or later minor) envelope of
   * type `e2ee` to an agent, whose header the encryption authenticates instead (§14.3); validateEnvelope
   * refuses every other envelope without it.
   */
  sig: Type.Optional(Type.String({ pattern: B64URL, minLength: 86, maxLength: 86, description: 'Ed25519 signature, base64url' })),
}, { $id: 'Envelope' })
export type Envelope = Static<typeof Envelope>
/** An envelope with its Ed25519 signature: every envelope but an agentmesh/0.3 `e2ee` one (§4). */
export type SignedEnvelope = Envelope & { sig: string }

/** What a client declares it understands in `auth.features` (docs/protocol.md §3, §6.1). */
export const FEATURE_ROOM_CURSOR = 'room-cursor'
/** Most rooms one `rooms` map of an auth or resume frame names. */
export const MAX_ROOMS_PER_FRAME = 10_000
/** A room id (without "#"), as in deliver and cursor frames of rooms read by cursor (§6.1). */
export const RoomId = Type.String({ pattern: ROOM_ID_PATTERN })
/** Per room, the room seq a client has processed: where deliveries of that room resume (§6.1). */
export const RoomSeqs = Type.Record(Type.String({ pattern: ROOM_ID_PATTERN }), Seq, { maxProperties: MAX_ROOMS_PER_FRAME })

// ---- client → relay ----
export const AuthFrame = Type.Object({
  op: Type.Literal('auth'),
  v: Type.String({ pattern: VERSION_PATTERN }),
  amid: Amid,
  nonce: Type.String({ pattern: B64URL, minLength: 1, maxLength: 128 }),
  sig: Type.String({ pattern: B64URL, minLength: 86, maxLength: 86 }),
  name: Type.Optional(Type.String({ maxLength: 128 })),
  after: Type.Optional(Seq),
  deliver: Type.Optional(Type.Boolean()),
  /** What the client understands: "room-cursor" (rooms read by cursor, §6.1); unknown names are ignored. */
  features: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
  /** With "room-cursor": per room, the room seq processed (the rooms' `after`). */
  rooms: Type.Optional(RoomSeqs),
  /** Signed by a session key (§3): its session certificate, and optionally the agent's chain above it. */
  session_cert: Type.Optional(WireCert),
  session_chain: Type.Optional(Type.Array(WireCert, { minItems: 1, maxItems: 3 })),
  /** The agent's software version (§3, §19): what breaking updates with a required version are compared with (semver). */
  agent_version: Type.Optional(Type.String({ pattern: AGENT_VERSION_PATTERN, maxLength: MAX_AGENT_VERSION_LENGTH })),
})
export type AuthFrame = Static<typeof AuthFrame>

export const SendFrame = Type.Object({ op: Type.Literal('send'), env: Type.Unknown() })
export type SendFrame = { op: 'send', env: Envelope }

/** Processed up to `seq`: of the inbox, or with `room` of that room's log (§6.1). */
export const CursorFrame = Type.Object({ op: Type.Literal('cursor'), seq: Seq, room: Type.Optional(RoomId) })
export type CursorFrame = Static<typeof CursorFrame>

export const ResumeFrame = Type.Object({ op: Type.Literal('resume'), after: Seq, rooms: Type.Optional(RoomSeqs) })
export type ResumeFrame = Static<typeof ResumeFrame>

export const PingFrame = Type.Object({ op: Type.Literal('ping'), ts: Type.Optional(Type.Number()) })
export type PingFrame = Static<typeof PingFrame>

/**
 * An ephemeral signal to the members of a room (§17.4): `typing` (not stored), or `read` with the
 * room seq the agent has read up to (kept by the relay, shown to members). In a DM conversation
 * (`#dm-…`) `read` names the envelope `id` read up to instead (DMs have no room seq).
 */
export const SignalFrame = Type.Object({
  op: Type.Literal('signal'),
  room: Type.String({ pattern: ROOM_ADDRESS_PATTERN }),
  kind: Type.Union([Type.Literal('typing'), Type.Literal('read')]),
  up_to: Type.Optional(Seq),
  id: Type.Optional(EnvelopeId),
})
export type SignalFrame = Static<typeof SignalFrame>

/**
 * The agents whose presence changes the sender hears besides those sharing a room with it (§17.4):
 * replaces its list (empty: none); the relay answers their presence now as events.
 */
export const WatchFrame = Type.Object({
  op: Type.Literal('watch'),
  agents: Type.Array(Amid, { maxItems: 256 }),
})
export type WatchFrame = Static<typeof WatchFrame>

// ---- relay → client ----
export const ChallengeFrame = Type.Object({
  op: Type.Literal('challenge'),
  v: Type.String(),
  nonce: Type.String(),
  relay: Type.String(),
})
export type ChallengeFrame = Static<typeof ChallengeFrame>

export const Limits = Type.Object({
  max_envelope_bytes: Type.Integer(),
  max_in_flight: Type.Integer(),
  delivery_window: Type.Integer(),
  heartbeat_ms: Type.Integer(),
})
export type Limits = Static<typeof Limits>

export const WelcomeFrame = Type.Object({
  op: Type.Literal('welcome'),
  amid: Amid,
  relay: Type.String(),
  cursor: Seq,
  limits: Limits,
  /** the relay's own AMID: it signs timeline events and task requests (§17.7) */
  relay_amid: Type.Optional(Amid),
  /** the highest seq in the agent's inbox now: a connection knows when it has seen its backlog (§6) */
  last_seq: Type.Optional(Seq),
  /** after an auth with the "room-cursor" feature: the rooms read by cursor, each with the cursor the relay holds (§6.1) */
  rooms: Type.Optional(RoomSeqs),
  /** after an auth with a session certificate (§3): what the relay accepted */
  session: Type.Optional(Type.Object({
    serial: Type.String(),
    expires_at: Type.Integer({ minimum: 0 }),
    tier: Type.String(),
    organisation: Type.Optional(Type.String()),
  })),
})
export type WelcomeFrame = Static<typeof WelcomeFrame>

export const AckFrame = Type.Object({
  op: Type.Literal('ack'),
  id: Type.String(),
  duplicate: Type.Optional(Type.Boolean()),
})
export type AckFrame = Static<typeof AckFrame>

/** An inbox delivery (`seq` the inbox seq), or with `room` one of a room read by cursor (`seq` the room seq, §6.1). */
export const DeliverFrame = Type.Object({ op: Type.Literal('deliver'), seq: Seq, room: Type.Optional(RoomId), env: Envelope })
export type DeliverFrame = Static<typeof DeliverFrame>

export const ErrorFrame = Type.Object({
  op: Type.Literal('error'),
  code: Type.String(),
  message: Type.String(),
  id: Type.Optional(Type.String({ description: 'envelope id the error is about, for send errors' })),
  retry_after: Type.Optional(Type.Integer({ minimum: 1, description: 'AM_ERR_RATE_LIMITED: seconds to wait before trying again' })),
})
export type ErrorFrame = Static<typeof ErrorFrame>

export const PongFrame = Type.Object({ op: Type.Literal('pong'), ts: Type.Optional(Type.Number()) })
export type PongFrame = Static<typeof PongFrame>

/**
 * Something that happened, sent live and never stored (§17.4): presence changes, typing, read
 * markers and membership changes in rooms the agent is in.
 */
export const ChatEvent = Type.Object({
  type: Type.Union([Type.Literal('presence'), Type.Literal('typing'), Type.Literal('read'), Type.Literal('member')]),
  amid: Amid,
  room: Type.Optional(Type.String({ pattern: ROOM_ADDRESS_PATTERN })),
  /** presence: online, idle or offline */
  status: Type.Optional(Type.String()),
  /** read: the room seq read up to */
  up_to: Type.Optional(Seq),
  /** read in a DM conversation: the envelope id read up to */
  id: Type.Optional(EnvelopeId),
  /** member: joined, left, invited, kicked; from the SDK for a private room's verified chain: added, removed */
  change: Type.Optional(Type.String()),
  /** member in a private room: the agent that signed the change (§17.5) */
  by: Type.Optional(Amid),
  handle: Type.Optional(Type.String()),
  ts: Type.Integer(),
})
export type ChatEvent = Static<typeof ChatEvent>
/** The operations events (§18–§21) by name: what each carries is in `data`, documented with its feature. */
export const OPS_EVENT_TYPES = ['system_update', 'catastrophe_alert', 'agent_health_change', 'file_available'] as const
export type OpsEventType = typeof OPS_EVENT_TYPES[number]
/**
 * An operations event (§18–§21): a new file an agent may see, a system update, a catastrophe alert,
 * an agent's health change. `data` is the event's JSON body, in the REST API's camelCase names.
 */
export const OpsEvent = Type.Object({
  type: Type.Union(OPS_EVENT_TYPES.map(t => Type.Literal(t))),
  data: Type.Record(Type.String(), Type.Unknown()),
  ts: Type.Integer(),
})
export type OpsEvent = Static<typeof OpsEvent>
/** What an event frame carries: a chat event (§17.4) or an operations event (§18–§21). */
export const RelayEvent = Type.Union([ChatEvent, OpsEvent])
export type RelayEvent = Static<typeof RelayEvent>
export const EventFrame = Type.Object({ op: Type.Literal('event'), event: RelayEvent })
export type EventFrame = Static<typeof EventFrame>

export type ClientFrame = AuthFrame | SendFrame | CursorFrame | ResumeFrame | PingFrame | SignalFrame | WatchFrame
export type RelayFrame = ChallengeFrame | WelcomeFrame | AckFrame | DeliverFrame | ErrorFrame | PongFrame | EventFrame

/** Every client frame schema by `op`. */
export const ClientFrameSchemas = {
  auth: AuthFrame,
  send: SendFrame,
  cursor: CursorFrame,
  resume: ResumeFrame,
  ping: PingFrame,
  signal: SignalFrame,
  watch: WatchFrame,
} as const

/** Every relay frame schema by `op`. */
export const RelayFrameSchemas = {
  challenge: ChallengeFrame,
  welcome: WelcomeFrame,
  ack: AckFrame,
  deliver: DeliverFrame,
  error: ErrorFrame,
  pong: PongFrame,
  event: EventFrame,
} as const
