/**
 * A sealed local mailbox for applications that hand messages over in batches, later than they
 * arrive (the MCP server's `wait_for_messages`, docs/protocol.md §23). The connection's cursor moves
 * past a message once the application asks for the next one; an application that keeps the message
 * here first (sealed in the agent's state, like the other records of the end-to-end layer) has it
 * even if it stops before handing it over. Each kept message gets a local cursor (1, 2, 3…);
 * `after(cursor)` reads what came after it, and `ack(cursor)` says everything up to it was handed
 * over: at most MAX_KEPT_ACKNOWLEDGED of those are kept for `list`, the older ones are deleted.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { E2ee } from './e2ee.ts'
import type { Connection, Message } from './types.ts'

/** Messages kept and not yet acknowledged at most: a pump waits (the relay keeps the rest) while this many wait. */
export const MAX_MAILBOX = 10_000
/** Acknowledged messages kept for `list`, newest. */
export const MAX_KEPT_ACKNOWLEDGED = 1_000

const KIND = 'mailbox'
const IDS = 'mailbox-id'
const META = 'mailbox-meta'

/** A message as kept: what `Message` holds, without the envelope, with its local cursor. */
export interface KeptMessage {
  cursor: number
  id: string
  from: string
  to: string
  type: string
  ts: number
  payload: Record<string, unknown>
  text?: string
  encrypted: boolean
  room?: string
  via?: string
  provenance?: Message['provenance']
  schemaError?: string
  /** when it was kept, ms since the epoch */
  keptAt: number
}

export interface Mailbox {
  /** Keeps `m` (once per sender and id) and answers it with its cursor; undefined when it was kept before. */
  keep (m: Message, now?: number): KeptMessage | undefined
  /** Kept messages after `cursor`, oldest first, at most `limit`. */
  after (cursor: number, limit: number): KeptMessage[]
  /** Everything up to `cursor` was handed over. */
  ack (cursor: number): void
  /** The newest cursor given, and the one acknowledged last (0: none). */
  position (): { last: number, acked: number }
  /** Messages kept and not yet acknowledged. */
  pending (): number
  /** Kept messages (acknowledged or not), newest last, at most `limit`; only from or to `peer`, or in `room`, when given. */
  list (opts: { limit: number, peer?: string, room?: string }): KeptMessage[]
}

const mailboxes = new WeakMap<object, Mailbox>()
const sealedStates = new WeakMap<object, E2ee>()

/** Set by connect(): the end-to-end layer whose sealed records the mailbox uses. */
export function attachMailboxState (conn: Connection, e2ee: E2ee): void { sealedStates.set(conn, e2ee) }

const keyOf = (cursor: number): string => String(cursor).padStart(15, '0')

/** The connection's mailbox (one per connection; the records are the agent's, across runs). */
export function mailbox (conn: Connection): Mailbox {
  const had = mailboxes.get(conn)
  if (had !== undefined) return had
  const e2ee = sealedStates.get(conn)
  if (e2ee === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection has no local state for a mailbox; it was not made by connect() with end-to-end encryption')
  const meta = (): { last: number, acked: number } => e2ee.record<{ last: number, acked: number }>(META, 'position') ?? { last: 0, acked: 0 }
  // the kept cursors, ascending: read once, then kept in step with every write (one process serves a home)
  const kept: number[] = e2ee.recordKeys(KIND).map(r => Number(r.key)).sort((a, b) => a - b)
  const cursors = (): readonly number[] => kept
  /** index of the first kept cursor above `c` */
  const above = (c: number): number => {
    let lo = 0
    let hi = kept.length
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (kept[mid]! <= c) lo = mid + 1; else hi = mid }
    return lo
  }
  const mb: Mailbox = {
    keep (m, now = Date.now()) {
      return e2ee.atomically(() => {
        const idKey = `${m.from}\n${m.id}`
        if (e2ee.record(IDS, idKey) !== undefined) return undefined
        const pos = meta()
        const k: KeptMessage = {
          cursor: pos.last + 1,
          id: m.id,
          from: m.from,
          to: m.to,
          type: m.type,
          ts: m.ts,
          payload: m.payload,
          ...(m.text === undefined ? {} : { text: m.text }),
          encrypted: m.encrypted,
          ...(m.room === undefined ? {} : { room: m.room }),
          ...(m.via === undefined ? {} : { via: m.via }),
          ...(m.provenance === undefined ? {} : { provenance: m.provenance }),
          ...(m.schemaError === undefined ? {} : { schemaError: m.schemaError }),
          keptAt: now,
        }
        e2ee.saveRecord(KIND, keyOf(k.cursor), k, now)
        e2ee.saveRecord(IDS, idKey, k.cursor, now)
        e2ee.saveRecord(META, 'position', { last: k.cursor, acked: pos.acked }, now)
        kept.push(k.cursor)
        return k
      })
    },
    after (cursor, limit) {
      const out: KeptMessage[] = []
      for (const c of kept.slice(above(cursor))) {
        const k = e2ee.record<KeptMessage>(KIND, keyOf(c))
        if (k !== undefined) out.push(k)
        if (out.length >= limit) break
      }
      return out
    },
    ack (cursor) {
      e2ee.atomically(() => {
        const pos = meta()
        const acked = Math.min(Math.max(pos.acked, Math.floor(cursor)), pos.last)
        if (acked === pos.acked) return
        e2ee.saveRecord(META, 'position', { last: pos.last, acked })
        const drop = Math.max(0, above(acked) - MAX_KEPT_ACKNOWLEDGED)
        for (const c of kept.slice(0, drop)) {
          const k = e2ee.record<KeptMessage>(KIND, keyOf(c))
          e2ee.dropRecord(KIND, keyOf(c))
          if (k !== undefined) e2ee.dropRecord(IDS, `${k.from}\n${k.id}`)
        }
        kept.splice(0, drop)
      })
    },
    position: meta,
    pending () { return kept.length - above(meta().acked) },
    list ({ limit, peer, room }) {
      const out: KeptMessage[] = []
      const all = cursors()
      for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
        const k = e2ee.record<KeptMessage>(KIND, keyOf(all[i]!))
        if (k === undefined) continue
        if (peer !== undefined && k.from !== peer && k.to !== peer) continue
        if (room !== undefined && k.room !== room) continue
        out.push(k)
      }
      return out.reverse()
    },
  }
  mailboxes.set(conn, mb)
  return mb
}
