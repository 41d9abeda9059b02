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
  recipient: string
  /** the envelope's JSON text, stored and forwarded as received */
  envelope: string
  /** ms since epoch */
  receivedAt: number
}

export type AppendResult =
  | { status: 'stored', seq: number }
  /** the same (sender, id) was stored before, within the retention period */
  | { status: 'duplicate', seq: number }
  /** the recipient's inbox holds `maxInbox` undelivered messages already */
  | { status: 'inbox_full' }

export interface CursorAck { recipient: string, seq: number }

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
  tier: TrustTier
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

/**
 * Public prekey material. `base` (the exchange key, signed prekey and post-quantum prekey with
 * their signatures) is opaque to the Store and replaced as a whole; one-time prekeys accumulate
 * and each is handed out once.
 */
export interface PrekeyUpload {
  base?: Record<string, unknown>
  oneTime: OneTimePrekey[]
}

export interface TakenBundle {
  base: Record<string, unknown>
  /** absent when none is left (the bundle then relies on the last-resort keys) */
  oneTime?: OneTimePrekey
}

export interface Store {
  /** "memory", "sqlite", … */
  readonly kind: string
  /** A stable id of this relay's data, created with it; clients key their cursors by it. */
  relayId (): Promise<string>
  /** Registers an agent or refreshes its last-seen time; `created` is true the first time. */
  upsertAgent (agent: { amid: string, name?: string, seenAt: number }): Promise<{ created: boolean }>
  getAgent (amid: string): Promise<AgentRecord | undefined>
  /**
   * One atomic step: appends each item in order (or recognises it as a duplicate), then
   * applies the cursor acks. Nothing of the batch is visible before the promise resolves,
   * and after it resolves everything survives a crash of the process.
   */
  commit (appends: readonly AppendItem[], acks: readonly CursorAck[]): Promise<AppendResult[]>
  /** Undelivered messages of an inbox with seq > afterSeq, in seq order. */
  read (recipient: string, afterSeq: number, limit: number): Promise<StoredMessage[]>
  inbox (recipient: string): Promise<InboxState>
  /** Deletes what is older than the retention period; answers what it deleted. */
  prune (now: number): Promise<{ messages: number, dedupe: number }>
  stats (): Promise<{ agents: number, pending: number }>
  // ---- registry
  putProfile (profile: AgentProfile): Promise<void>
  getProfile (amid: string): Promise<AgentProfile | undefined>
  /** Profiles matching every given criterion, by amid. */
  searchProfiles (query: ProfileQuery): Promise<AgentProfile[]>
  /** Replaces `base` when given and adds the one-time prekeys (an id already there is ignored); answers how many one-time prekeys remain. */
  putPrekeys (amid: string, upload: PrekeyUpload): Promise<{ oneTime: number }>
  /** The bundle with one one-time prekey, which is removed in the same atomic step: never handed out twice. */
  takePrekeyBundle (amid: string): Promise<TakenBundle | undefined>
  countOneTimePrekeys (amid: string): Promise<number>
  close (): Promise<void>
}
