import type { TaskState } from '@agentmesh/protocol'
import type { CatastropheStore, FileStore, HealthStore, UpdateStore } from './ops-types.ts'
import type { WebhookStore } from './wake-types.ts'

// the operations slices (files, system updates, agent health, catastrophe events: docs/protocol.md §18–§21)
export * from './ops-types.ts'
// the wake-up slice (wake webhooks: docs/protocol.md §26)
export * from './wake-types.ts'
// the owner-link slice (verified owners: docs/protocol.md §28)
export * from './owner-types.ts'
import type { OwnerStore } from './owner-types.ts'

/** The durable truth of a relay. Every implementation passes @agentmesh/compliance-tests/store. */
export interface AgentRecord {
  amid: string
  name?: string
  /** ms since epoch */
  registeredAt: number
  lastSeenAt: number
}

export interface AppendItem {
  sender: string
  /** envelope id chosen by the sender */
  id: string
  /** an inbox (AMID), or for a room message "#" + the room id */
  recipient: string
  /**
   * A room message (docs/protocol.md §17): the room's id. The envelope is appended once to the
   * room's history (its seq is the room seq); members that read the room by cursor
   * (`setRoomDelivery(…, 'cursor')`) read it from there. It is also copied, in the same atomic
   * step, to the inbox of every agent in `fanout` that does not read the room by cursor and of
   * every member of the room (but the sender) whose delivery is 'inbox' (a client that does not read rooms by cursor); an inbox that is full
   * is skipped (it still has the history).
   */
  room?: string
  /**
   * Inboxes a room message is copied to besides the room's 'inbox' members: the global room's
   * agents (every agent is in it; only those that read rooms by cursor have a membership row).
   * An agent of `fanout` that is a member of the room reading it by cursor gets no copy (it reads
   * the log), decided in the same atomic step. Each inbox gets one copy at most.
   */
  fanout?: readonly string[]
  /**
   * The audit row of this send: appended (before the commit's own audit rows) only when the item
   * is stored, so a retry recognised as a duplicate leaves no second row.
   */
  audit?: AuditInput
  /**
   * Audited inside the commit's one `message.batch` row instead of a row of its own: that row
   * lists every stored send carrying this, as [sender, recipient, id, type, bytes] in commit
   * order, so the chain commits to each of them at one hash per commit (see batchAuditRow). A
   * duplicate is not listed. `actor` is the relay's AMID (the row's actor), `at` when it was taken.
   */
  batchAudit?: { actor: string, type: string, bytes: number, at: number }
  /** the envelope's JSON text, stored and forwarded as received */
  envelope: string
  /** ms since epoch */
  receivedAt: number
}

export type AppendResult =
  /** for a room message `seq` is the room seq and `deliveries` the inbox seq each inbox copy got */
  | { status: 'stored', seq: number, deliveries?: Array<{ recipient: string, seq: number }> }
  /** the same (sender, id) was stored before, within the retention period */
  | { status: 'duplicate', seq: number }
  /** the recipient's inbox holds `maxInbox` undelivered messages already */
  | { status: 'inbox_full' }

/**
 * A cursor ack: `recipient` processed its inbox up to `seq`, or with `room`, that room's log up to
 * the room seq `seq` (the member's room cursor; ignored when it is not a member).
 */
export interface CursorAck { recipient: string, seq: number, room?: string }

/**
 * How an agent receives room messages: 'cursor', it reads each room's log from its own cursor
 * (fan-out on read, docs/protocol.md §6.1); 'inbox', each message is copied into its inbox (a
 * client that does not declare the `room-cursor` feature).
 */
export type RoomDelivery = 'cursor' | 'inbox'

/** One agent's authentication bookkeeping (MessageStore.agentsOnline). */
export interface AgentOnline {
  amid: string
  name?: string
  seenAt: number
  delivery: RoomDelivery
  /** a membership row to make when missing (the global room's row of an agent reading by cursor) */
  join?: MemberRecord
}

export interface AgentOnlineResult {
  /** the agent was registered by this step */
  created: boolean
  /** its rooms read by cursor after the step (setRoomDelivery's answer) */
  feeds: RoomFeed[]
}

/** A room as one member reads it by cursor. */
export interface RoomFeed {
  room: string
  /** the highest room seq the member processed */
  cursor: number
  /** the highest room seq assigned */
  lastSeq: number
}

export interface StoredMessage {
  seq: number
  sender: string
  id: string
  envelope: string
  receivedAt: number
}

export interface InboxState {
  /** highest seq the recipient acknowledged */
  cursor: number
  /** highest seq assigned in this inbox */
  lastSeq: number
  /** messages stored and not yet acknowledged */
  pending: number
}

export interface StoreInit {
  /** Undelivered messages and dedupe memory are kept this long. @default 30 days */
  retentionMs?: number
  /**
   * Room history entries kept per room, the oldest going first; enforced as messages are appended.
   * Entries a member reading the room by cursor has not acknowledged are kept beyond it, up to the
   * room's newest `maxInbox` (see pruneHistory).
   * @default 1,000 in the in-memory store, 1,000,000 in persistent stores (which also keep history
   * for `historyRetentionMs` only, applied by pruneHistory)
   */
  historyMaxPerRoom?: number
  /** Undelivered messages one inbox may hold. @default 100,000 */
  maxInbox?: number
  /**
   * In-memory store only: envelope ids remembered for dedupe. Past it the oldest are forgotten
   * before their retention ends (a retry of such an old message would be stored again), so a
   * long-running `--memory` relay stays bounded. Persistent stores keep ids for the whole
   * retention period. @default 1,000,000
   */
  maxDedupeEntries?: number
}

/** An A2A-style skill an agent declares. */
export interface Skill {
  id: string
  name: string
  description?: string
  tags: string[]
}

export type TrustTier = 'anonymous' | 'verified' | 'organisation'

/** What the registry knows of an agent, as the agent published it. */
export interface AgentProfile {
  amid: string
  displayName?: string
  capabilities: Skill[]
  version?: string
  /** first contact as the agent published it: 'knock' (a grant is needed) or 'open' */
  contact?: 'knock' | 'open'
  /** the message types the agent accepts with their payload JSON Schemas (docs/protocol.md §25) */
  schemas?: Array<{ type: string, schema: Record<string, unknown>, description?: string }>
  /**
   * The tier of the certificate chain the agent last published (anonymous without one). The
   * registry re-derives the current tier from the stored chain on every read (docs/protocol.md §13.1).
   */
  tier: TrustTier
  /**
   * Where the agent can be reached directly (docs/protocol.md §30.1): its signed peer record as
   * published (base64url), with the addresses and sequence number the registry read from it after
   * checking it. Opaque to the Store: carried with the profile, replaced with it.
   */
  p2p?: { record: string, addrs: string[], seq: string, updatedAt: number }
  /** ms since epoch */
  updatedAt: number
}

export interface ProfileQuery {
  /** a skill id or tag, matched exactly (case-insensitive) */
  capability?: string
  /** matched case-insensitively as a substring of the display name, skill names, descriptions and tags */
  text?: string
  limit: number
}

export interface OneTimePrekey { id: number, key: string }
/** A signed one-time ML-KEM-768 prekey as uploaded: key and signature base64url, opaque to the Store (the registry checks them). */
export interface PqOneTimePrekey { id: number, key: string, sig: string }

/**
 * Public prekey material. `base` (the exchange key, signed prekey and post-quantum prekey with
 * their signatures) is opaque to the Store and replaced as a whole; one-time prekeys accumulate
 * and each is handed out once.
 */
export interface PrekeyUpload {
  base?: Record<string, unknown>
  oneTime: OneTimePrekey[]
  /** one-time PQ prekeys to add (an id already there is ignored, as for `oneTime`) */
  pqOneTime?: PqOneTimePrekey[]
  /** delete the one-time prekeys held before adding these, curve and PQ (the agent lost the secrets of the old ones) */
  replaceOneTime?: boolean
}

export interface TakenBundle {
  base: Record<string, unknown>
  /** absent when none is left (the bundle then relies on the last-resort keys) */
  oneTime?: OneTimePrekey
  /** the one-time PQ prekey handed out with it, removed in the same step; absent when none is left */
  pqOneTime?: PqOneTimePrekey
}

/**
 * An agent's published certificate chain and what the registry found when it verified it
 * (docs/protocol.md §13.1). The tier holds while `now <= notAfter`, no link is in a CRL the relay
 * holds and the anchor is still a trusted root; the registry checks that on every read.
 */
export interface CertificateRecord {
  amid: string
  /** PEM certificates, leaf (the agent certificate) first, as published. */
  chain: string[]
  /** The tier the chain granted when it was verified. */
  tier: TrustTier
  /** The organisation of the organisation CA, for the `organisation` tier. */
  organisation?: string
  /** ms since epoch: the earliest expiry in the verified path. */
  notAfter: number
  /** The root that anchors the chain, as a key id (base64url SHA-256 of its SubjectPublicKeyInfo); absent for a self-signed certificate. */
  anchorKey?: string
  /** Every certificate of the path that a CA issued: what a CRL of that CA can revoke. */
  links: CertificateLink[]
  /** ms since epoch */
  publishedAt: number
}

export interface CertificateLink {
  /** Position in the published chain (leaf = 0). */
  index: number
  subject: string
  /** Serial number, lower-case hex. */
  serial: string
  /** Key id of the CA that issued it (base64url SHA-256 of the CA's SubjectPublicKeyInfo). */
  issuerKey: string
}

/** A CA certificate the relay learnt from a verified chain (an organisation CA): CRLs it signs are accepted. */
export interface CaCertificateRecord {
  /** Key id: base64url SHA-256 of its SubjectPublicKeyInfo. */
  key: string
  /** Its subject, as `CN=…, O=…`. */
  subject: string
  pem: string
  /** ms since epoch */
  addedAt: number
}

/** A certificate revocation list, one (the newest) per issuing CA. */
export interface CrlRecord {
  /** Key id of the CA that signed it. */
  issuerKey: string
  /** The issuer's name, as `CN=…, O=…`. */
  issuer: string
  /** ms since epoch */
  thisUpdate: number
  nextUpdate?: number
  revokedCount: number
  pem: string
  /** ms since epoch */
  storedAt: number
}

export type PutCrlResult =
  | { status: 'stored' }
  /** the same CRL (same thisUpdate, same PEM) is already stored */
  | { status: 'unchanged' }
  /** a CRL of this issuer with the same or a later thisUpdate is stored: it stays */
  | { status: 'outdated', current: CrlRecord }

/**
 * One agent's standing rating of another (docs/protocol.md §15): the latest feedback `rater` gave
 * `subject`. A new one from the same rater replaces it.
 */
export interface FeedbackRecord {
  rater: string
  subject: string
  /** 0 (worst) to 1 (best) */
  score: number
  comment?: string
  /** the rater's id of the interaction it rates */
  interaction?: string
  /** ms since epoch: when the relay accepted it */
  at: number
}

/** A subject's reputation score as a feedback write left it (ms since epoch, 0 to 1). */
export interface ScorePoint { at: number, score: number }

/** A score that moved more than allowed within the flag window, for review. */
export interface ReputationFlag {
  /** ms since epoch: when it was raised */
  at: number
  /** the earlier of the two scores that lie furthest apart in the window, and when it held */
  from: number
  fromAt: number
  /** the later of the two, and when it held */
  to: number
  toAt: number
  reason: string
}

// ---------------------------------------------------------------- chat (docs/protocol.md §17)

/** global: every agent is a member; dm: the one conversation of a pair of agents */
export type RoomKind = 'global' | 'public' | 'private' | 'dm'

export interface RoomRecord {
  /** "global", a name chosen at creation (ROOM_ID_PATTERN), or "dm-…" for a DM */
  id: string
  kind: RoomKind
  topic?: string
  /** the agent that created it (absent for global) */
  owner?: string
  /** ms since epoch */
  createdAt: number
}

export type MemberRole = 'owner' | 'member'

export interface MemberRecord {
  room: string
  amid: string
  role: MemberRole
  /** ms since epoch */
  joinedAt: number
}

export interface InviteRecord { room: string, amid: string, by: string, at: number }

/** One entry of a room's history: an envelope as stored and forwarded. */
export interface HistoryEntry {
  /** the room seq, from 1, never reused */
  seq: number
  sender: string
  id: string
  /** the envelope's JSON text; "" once deleted */
  envelope: string
  receivedAt: number
  /** set when the message was deleted (its envelope is gone) */
  deleted?: { by: string, at: number }
}

export interface HistoryQuery {
  /** entries with seq < before (the newest of them), for paging backwards */
  before?: number
  /** entries with seq > after (the oldest of them), for paging forwards; wins over before */
  after?: number
  limit: number
}

/** Agent roles (docs/protocol.md §17.2). */
export type AgentRole = 'master' | 'warden' | 'worker'

/** A2A task states: the REST contract's (@agentmesh/protocol). */
export type { TaskState } from '@agentmesh/protocol'

export interface TaskTransition { state: TaskState, at: number, by: string, message?: string }

export interface TaskRecord {
  id: string
  /** the room it was dispatched in (absent for a task dispatched directly) */
  room?: string
  requester: string
  assignee: string
  command: string
  args: string
  state: TaskState
  createdAt: number
  updatedAt: number
  /** ms since epoch: a task not ended by then fails */
  deadline: number
  /** what the assignee answered (JSON), for completed / failed */
  result?: unknown
  /** the last transition's message (a question for input-required, a reason for failed/rejected) */
  message?: string
  /** every state it went through, oldest first */
  history: TaskTransition[]
}

export interface TaskQuery {
  room?: string
  /** tasks this agent requested or is assigned */
  agent?: string
  state?: TaskState
  /** tasks created before this task id's creation (paging); ids are time-ordered */
  before?: string
  limit: number
}

/** What the relay records of an event; the store gives it its place in the chain. */
export interface AuditInput {
  at: number
  /** the AMID that acted, or "operator" for the API key, or "relay" */
  actor: string
  /** e.g. message.send, message.delete, room.join, role.set, handle.set */
  action: string
  target?: string
  /** metadata only: never message content */
  detail: Record<string, unknown>
}

/** An audit row: hash = sha256(prev + "\n" + canonical JSON of the row without hash), see auditHash(). */
export interface AuditRecord extends AuditInput {
  /** from 1, no gaps */
  seq: number
  /** the previous row's hash ("" for seq 1) */
  prev: string
  hash: string
}

export interface AuditQuery {
  after?: number
  /**
   * Without `after`: the newest `limit` rows with a smaller seq (still answered in seq order), so
   * that a reader can start at the end of the log and page back. `after` wins over it.
   */
  before?: number
  limit: number
  actor?: string
  action?: string
}

// ---------------------------------------------------------------- the Store, slice by slice

/**
 * What every store has whatever slices it implements: its kind and a way to release it.
 */
export interface StoreBase {
  /** "memory", "sqlite", … */
  readonly kind: string
  close (): Promise<void>
}

/**
 * The registry (docs/protocol.md §13): who the relay is (its id and signing secret) and the agents
 * it knows, their profiles and their prekeys.
 */
export interface RegistryStore {
  /** A stable id of this relay's data, created with it; clients key their cursors by it. */
  relayId (): Promise<string>
  /** The relay's own Ed25519 secret (32 bytes, base64url), created with the data: the relay signs with it. */
  relaySecret (): Promise<string>
  /** Registers an agent or refreshes its last-seen time; `created` is true the first time. */
  upsertAgent (agent: { amid: string, name?: string, seenAt: number }): Promise<{ created: boolean }>
  getAgent (amid: string): Promise<AgentRecord | undefined>
  /** Every registered agent's AMID, by amid, from after `after`. */
  listAgents (q: { after?: string, limit: number }): Promise<string[]>
  putProfile (profile: AgentProfile): Promise<void>
  getProfile (amid: string): Promise<AgentProfile | undefined>
  /** Profiles matching every given criterion, by amid. */
  searchProfiles (query: ProfileQuery): Promise<AgentProfile[]>
  /**
   * Replaces `base` when given and adds the one-time prekeys, curve and PQ (an id already there is
   * ignored; with `replaceOneTime` the old ones of both kinds are deleted first, in the same atomic
   * step); answers how many of each remain.
   */
  putPrekeys (amid: string, upload: PrekeyUpload): Promise<{ oneTime: number, pqOneTime: number }>
  /**
   * The bundle with one one-time prekey and one one-time PQ prekey (each the lowest id held), which
   * are removed in the same atomic step: never handed out twice.
   */
  takePrekeyBundle (amid: string): Promise<TakenBundle | undefined>
  countOneTimePrekeys (amid: string): Promise<number>
  countPqOneTimePrekeys (amid: string): Promise<number>
}

/**
 * Store-and-forward (docs/protocol.md §5, §6): inboxes, sequence numbers, dedupe, acks and retention.
 * A commit also writes the room history of room messages and the audit rows given with it, in the
 * same atomic step, so an implementation of this slice holds the history of `RoomStore` and the
 * chain of `AuditStore` too.
 */
export interface MessageStore {
  /**
   * One atomic step: appends each item in order (or recognises it as a duplicate), then
   * applies the cursor acks, then appends the audit rows (chained after the last one). Nothing of the batch is visible before the promise resolves,
   * and after it resolves everything survives a crash of the process.
   */
  commit (appends: readonly AppendItem[], acks: readonly CursorAck[], audit?: readonly AuditInput[]): Promise<AppendResult[]>
  /** Undelivered messages of an inbox with seq > afterSeq, in seq order. */
  read (recipient: string, afterSeq: number, limit: number): Promise<StoredMessage[]>
  inbox (recipient: string): Promise<InboxState>
  /** Deletes what is older than the retention period; answers what it deleted. */
  prune (now: number): Promise<{ messages: number, dedupe: number }>
  /** `agents` counts the registered agents (RegistryStore.upsertAgent), `pending` the undelivered messages of every inbox. */
  stats (): Promise<{ agents: number, pending: number }>
  /**
   * Sets how `amid` receives room messages from now on (its membership rows of later joins follow
   * it), in one atomic step with the change: to 'cursor', the cursor of each room where it was
   * 'inbox' starts at the room's last seq (what came before is in its inbox); to 'inbox', what the
   * log holds after each cursor (not deleted, not its own) is copied into its inbox first (up to
   * `maxInbox`). Answers its rooms read by cursor (none for 'inbox'), by room id.
   */
  setRoomDelivery (amid: string, delivery: RoomDelivery): Promise<RoomFeed[]>
  /**
   * What an agent's authentication writes, for several agents at once (the relay gathers the
   * authentications of one turn): for each item in order, `upsertAgent`, then `addMember(join)`
   * when `join` is given (a row it has is left as it is), then `setRoomDelivery(amid, delivery)`.
   * SQLite and memory do the whole batch in one atomic step; a store may take each item in steps,
   * each atomic, since each step can be done again. Answers per item, in order.
   */
  agentsOnline (batch: readonly AgentOnline[]): Promise<AgentOnlineResult[]>
  /** The rooms `amid` reads by cursor, by room id. */
  roomFeeds (amid: string): Promise<RoomFeed[]>
  /** One room as `amid` reads it by cursor; undefined when it is not a member or its delivery is 'inbox'. */
  roomFeed (room: string, amid: string): Promise<RoomFeed | undefined>
}

/**
 * Certificates, CA certificates and CRLs (docs/protocol.md §13.1).
 */
export interface CertificateStore {
  /** Stores an agent's certificate record, replacing the one it had. */
  putCertificate (record: CertificateRecord): Promise<void>
  getCertificate (amid: string): Promise<CertificateRecord | undefined>
  /** Remembers a CA certificate; one whose key is already known is left as it was. */
  putCaCertificate (ca: CaCertificateRecord): Promise<void>
  /** The CA certificates with this subject, by key. */
  findCaCertificates (subject: string): Promise<CaCertificateRecord[]>
  /**
   * Stores a CRL unless one of the same issuer (`issuerKey`) with the same or a later
   * `thisUpdate` is stored; one atomic step, so the newest always wins.
   */
  putCrl (crl: CrlRecord): Promise<PutCrlResult>
  /** Every stored CRL, by issuer name then issuer key. */
  listCrls (): Promise<CrlRecord[]>
}

/**
 * Reputation (docs/protocol.md §15): standing ratings, score history and flags.
 */
export interface ReputationStore {
  /**
   * Stores `rater`'s standing rating of `subject`, replacing the one it had (one atomic step);
   * answers the replaced one.
   */
  putFeedback (feedback: FeedbackRecord): Promise<{ previous?: FeedbackRecord }>
  getFeedback (rater: string, subject: string): Promise<FeedbackRecord | undefined>
  /** The standing ratings of `subject`, by rater. */
  listFeedbackFor (subject: string): Promise<FeedbackRecord[]>
  /** The standing ratings `rater` gave, by subject. */
  listFeedbackBy (rater: string): Promise<FeedbackRecord[]>
  /**
   * Appends a point to the subject's score history, then forgets its points older than
   * `keep.since` except the newest of them (the score in effect at `since`), and all but the
   * newest `keep.max` points.
   */
  addScorePoint (subject: string, point: ScorePoint, keep: { since: number, max: number }): Promise<void>
  /**
   * The scores the subject had from `since` on, oldest first (in the order they were added): the
   * points at or after `since`, preceded by the newest one before it when there is one.
   */
  listScorePoints (subject: string, since: number): Promise<ScorePoint[]>
  /** Appends a flag to the subject's flags and keeps only the newest `max`. */
  addReputationFlag (subject: string, flag: ReputationFlag, max: number): Promise<void>
  /** The subject's flags, newest first. */
  listReputationFlags (subject: string): Promise<ReputationFlag[]>
}

/**
 * Handles (docs/protocol.md §17.1): one unique, case-insensitive name per agent.
 */
export interface HandleStore {
  /**
   * Sets an agent's handle (unique case-insensitively and by confusable skeleton, `handleSkeleton`
   * of @agentmesh/protocol: `b0b` is taken while another agent holds `bob`; the old one is freed).
   * Handles are stored as given.
   */
  setHandle (amid: string, handle: string): Promise<{ status: 'set', previous?: string } | { status: 'taken', by: string }>
  handleOf (amid: string): Promise<string | undefined>
  /** The agent holding `handle` (case-insensitive). */
  resolveHandle (handle: string): Promise<string | undefined>
}

/**
 * Agent roles (docs/protocol.md §17.2).
 */
export interface RoleStore {
  setRole (amid: string, role: AgentRole): Promise<void>
  /** @returns worker when none was set */
  roleOf (amid: string): Promise<AgentRole>
  /** Agents with a role other than worker. */
  listRoles (): Promise<Array<{ amid: string, role: AgentRole }>>
}

/**
 * Rooms (docs/protocol.md §17.3): rooms, members, invites, history and read markers. History entries
 * are written by `MessageStore.commit`; this slice reads, deletes and prunes them.
 */
export interface RoomStore {
  /** Creates a room and, with `owner`, its owner's membership, in one atomic step; false when the id is taken. */
  createRoom (room: RoomRecord): Promise<boolean>
  getRoom (id: string): Promise<RoomRecord | undefined>
  /** Sets or clears (undefined) the topic; false for an unknown room. */
  setTopic (id: string, topic: string | undefined): Promise<boolean>
  /** Rooms by id: of the given kinds, or those `member` belongs to, or both (either matches). */
  listRooms (q: { kinds?: readonly RoomKind[], member?: string, after?: string, limit: number }): Promise<RoomRecord[]>
  /**
   * Adds a member (and removes its invite); false when it was one already (its role is kept). Its
   * room cursor starts at the room's last seq (it reads what is posted after it joined), its
   * delivery is the agent's (setRoomDelivery; 'inbox' for an agent that never set one).
   */
  addMember (m: MemberRecord): Promise<boolean>
  removeMember (room: string, amid: string): Promise<boolean>
  getMember (room: string, amid: string): Promise<MemberRecord | undefined>
  /** By joinedAt, then amid. */
  listMembers (room: string): Promise<MemberRecord[]>
  countMembers (room: string): Promise<number>
  putInvite (invite: InviteRecord): Promise<void>
  getInvite (room: string, amid: string): Promise<InviteRecord | undefined>
  /**
   * Appends a private room's signed membership statement (docs/protocol.md §17.5) as its `seq`
   * (0 for the genesis); false when the room has a statement with that seq already. The store keeps
   * the JSON text as given: the relay checks it before, clients check it again.
   */
  appendMembership (room: string, seq: number, statement: string): Promise<boolean>
  /** A room's membership statements (JSON texts) in seq order. */
  listMembership (room: string): Promise<string[]>
  /** A room's history in seq order (see HistoryQuery). */
  readHistory (room: string, q: HistoryQuery): Promise<HistoryEntry[]>
  getHistoryEntry (room: string, seq: number): Promise<HistoryEntry | undefined>
  /** Highest room seq assigned (0 for none). */
  lastRoomSeq (room: string): Promise<number>
  /** Deletes a message's envelope, keeping a tombstone; false when absent or deleted already. */
  deleteHistoryEntry (room: string, seq: number, by: string, at: number): Promise<boolean>
  /**
   * Applies history retention: entries received at or before `olderThan`, and all but the newest
   * `maxPerRoom` of every room; answers how many went. An entry a member reading by cursor has not
   * read yet (above its cursor, and among the room's newest `maxInbox`) stays unless it was
   * received at or before `unreadOlderThan` (@default olderThan); the same holds for the trim to
   * `historyMaxPerRoom` as messages are appended.
   */
  pruneHistory (olderThan: number, maxPerRoom: number, unreadOlderThan?: number): Promise<number>
  /** Raises (never lowers) what `amid` read up to in `room`; answers the value in force. */
  setReadUpTo (room: string, amid: string, seq: number): Promise<number>
  readMarkers (room: string): Promise<Array<{ amid: string, upTo: number }>>
}

/**
 * A2A tasks (docs/protocol.md §17.7).
 */
export interface TaskStore {
  /** Inserts a task; false when its id exists. */
  putTask (task: TaskRecord): Promise<boolean>
  getTask (id: string): Promise<TaskRecord | undefined>
  /** Replaces a task when its stored state is still `expect` (compare-and-set); false otherwise. */
  updateTask (task: TaskRecord, expect: TaskState): Promise<boolean>
  /** Newest first. */
  listTasks (q: TaskQuery): Promise<TaskRecord[]>
  /** Tasks not in an end state whose deadline is at or before `now`. */
  overdueTasks (now: number, limit: number): Promise<TaskRecord[]>
}

/**
 * The tamper-evident audit log (docs/protocol.md §17.8): rows chained by hash (see auditHash()). Rows are appended here on
 * their own or by `MessageStore.commit` with the messages they record; both continue one chain.
 */
export interface AuditStore {
  /** Appends audit rows on their own (outside a message commit), chained after the last one. */
  appendAudit (rows: readonly AuditInput[]): Promise<AuditRecord[]>
  /** Audit rows in seq order. */
  readAudit (q: AuditQuery): Promise<AuditRecord[]>
  lastAudit (): Promise<AuditRecord | undefined>
  /**
   * Drops the oldest audit rows for retention: those up to the first row written after
   * `olderThan`, and as many more as it takes for `keep` rows to be left with the note below;
   * never the newest row. In the same step it appends an `audit.pruned` row by `note.actor`
   * (detail `{rows, up_to_seq}`), which lets a verifier tell this from rows removed by anyone else.
   * Answers how many rows were dropped.
   */
  pruneAudit (olderThan: number, keep: number, note: { at: number, actor: string }): Promise<number>
}

/**
 * Runtime settings the operator changes through the API, as one JSON object.
 */
export interface SettingsStore {
  getSettings (): Promise<Record<string, unknown>>
  /** Merges `patch` into the settings (a key set to null is removed). */
  putSettings (patch: Record<string, unknown>): Promise<Record<string, unknown>>
}

/**
 * A whole store: every slice. The relay takes one; an adapter may be built slice by slice, and each
 * slice has its own suite in @agentmesh/compliance-tests (storeSuite runs them all).
 */
export interface Store extends
  StoreBase, RegistryStore, MessageStore, CertificateStore, ReputationStore, HandleStore,
  RoleStore, RoomStore, TaskStore, AuditStore, SettingsStore, FileStore, UpdateStore, CatastropheStore, HealthStore, WebhookStore, OwnerStore {}
