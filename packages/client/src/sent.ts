/**
 * The agent's sent log (docs/policy.md "What the sender is told"): the direct messages it sent
 * lately, sealed in its state like everything else, with what became of each as far as the agent
 * was told — stored by the relay, refused or held back by the receiver, or sent again in a new
 * session after the receiver could not decrypt it (it lost its state). It is what lets a message
 * survive a peer's lost state (the Signal apps keep a "message send log" for the same reason), and
 * what `agentmesh sent` shows.
 *
 * Bounded: at most `MAX_SENT_LOG` entries and `SENT_LOG_TTL_MS` old; the oldest go first.
 */
import type { ErrorCode } from '@agentmesh/protocol'
import type { E2ee } from './e2ee.ts'

/** Entries kept at most (the oldest go first). */
export const MAX_SENT_LOG = 2000
/** How long an entry is kept: a peer that lost its state and comes back later gets no resend. */
export const SENT_LOG_TTL_MS = 24 * 3600 * 1000
/** Sends between two trims of the log. */
const TRIM_EVERY = 100

const KIND = 'sent'

/** `delivered` and `processed` come from the receiver's receipts, when the message asked for them (receipts.ts). */
export type SentStatus = 'stored' | 'refused' | 'held' | 'resent' | 'delivered' | 'processed'

/** One message as the sender keeps it. */
export interface SentEntry {
  /** the envelope id */
  id: string
  to: string
  type: string
  payload: Record<string, unknown>
  /** ms since the epoch */
  at: number
  status: SentStatus
  /** the receiver's code, for refused and held */
  code?: ErrorCode
  /** the receiver's sentence, for refused and held */
  reason?: string
  /** held: processed at the latest then */
  until?: number
  /** the id the receiver shows it under, when this is a resend */
  orig?: string
  /** the envelope id of the resend, when it was sent again */
  resentAs?: string
  /** the message asked its receiver for delivery receipts */
  receipts?: boolean
  /** when the receiver's device handed it to its application (a receipt), ms since the epoch */
  deliveredAt?: number
  /** when the receiver's application moved past it (a receipt) */
  processedAt?: number
}

/** What `sent()` shows: the entry without its content. */
export type SentStatusEntry = Omit<SentEntry, 'payload'>

export class SentLog {
  #sinceTrim = 0

  constructor (private readonly e2ee: E2ee) {}

  /** Records a sent message (inside the caller's transaction, with the outbox entry). */
  add (e: SentEntry): void {
    this.e2ee.saveRecord(KIND, e.id, e, e.at)
    if (++this.#sinceTrim >= TRIM_EVERY) {
      this.#sinceTrim = 0
      this.trim(e.at)
    }
  }

  get (id: string): SentEntry | undefined { return this.e2ee.record<SentEntry>(KIND, id) }

  update (id: string, change: Partial<SentEntry>): SentEntry | undefined {
    const e = this.get(id)
    if (e === undefined) return undefined
    const next = { ...e, ...change }
    this.e2ee.saveRecord(KIND, id, next, e.at)
    return next
  }

  /** Entries to `peer` sent at or after `at`, oldest first. */
  since (peer: string, at: number): SentEntry[] {
    return this.e2ee.records<SentEntry>(KIND).map(r => r.value).filter(e => e.to === peer && e.at >= at)
  }

  /** Newest last; without content. */
  list (opts: { peer?: string, limit?: number } = {}): SentStatusEntry[] {
    let all = this.e2ee.records<SentEntry>(KIND).map(r => r.value)
    if (opts.peer !== undefined) all = all.filter(e => e.to === opts.peer)
    if (opts.limit !== undefined) all = all.slice(-opts.limit)
    return all.map(({ payload: _payload, ...rest }) => rest)
  }

  trim (now = Date.now()): void {
    const rows = this.e2ee.recordKeys(KIND)
    const over = rows.length - MAX_SENT_LOG
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!
      if (i < over || r.at < now - SENT_LOG_TTL_MS) this.e2ee.dropRecord(KIND, r.key)
      else break
    }
  }
}
