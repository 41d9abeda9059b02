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
  /**
   * The tier of the certificate chain the agent last published (anonymous without one). The
   * registry re-derives the current tier from the stored chain on every read (docs/protocol.md §13.1).
   */
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
  /** delete the one-time prekeys held before adding these (the agent lost the secrets of the old ones) */
  replaceOneTime?: boolean
}

export interface TakenBundle {
  base: Record<string, unknown>
  /** absent when none is left (the bundle then relies on the last-resort keys) */
  oneTime?: OneTimePrekey
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
  /**
   * Replaces `base` when given and adds the one-time prekeys (an id already there is ignored; with
   * `replaceOneTime` the old ones are deleted first, in the same atomic step); answers how many remain.
   */
  putPrekeys (amid: string, upload: PrekeyUpload): Promise<{ oneTime: number }>
  /** The bundle with one one-time prekey, which is removed in the same atomic step: never handed out twice. */
  takePrekeyBundle (amid: string): Promise<TakenBundle | undefined>
  countOneTimePrekeys (amid: string): Promise<number>
  // ---- certificates (docs/protocol.md §13.1)
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
  // ---- reputation (docs/protocol.md §15)
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
  close (): Promise<void>
}
