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
  close (): Promise<void>
}
