/**
 * The owner's console's direct-message history (docs/protocol.md §22.6): the relay keeps a direct
 * message only until the receiver acknowledges it, and the client keeps no content once it handed
 * a message over, so the console keeps the conversations it sees (messages received while it runs,
 * messages sent from it) in the agent's state, each record sealed with the state's key like the
 * sessions (`sealedRecords`, kind `app.dm-history`). Bounded: the newest `MAX_DM_HISTORY` messages,
 * each text at most `MAX_DM_TEXT_CHARS`; the oldest go first.
 */
import { sealedRecords, type SealedRecords } from '@agentmesh/client/internal'
import type { Connection } from '@agentmesh/client'

/** Direct messages kept at most, all conversations together (the oldest go first). */
export const MAX_DM_HISTORY = 5000
/** A kept text is cut to this many characters (the UI shows it; the agent got it whole). */
export const MAX_DM_TEXT_CHARS = 16_384
const KIND = 'app.dm-history'

export interface DmEntry {
  id: string
  /** the other agent */
  peer: string
  from: string
  direction: 'in' | 'out'
  text: string
  /** the sender's timestamp, ms since the epoch */
  ts: number
  encrypted: boolean
  /** out: queued or stored when sent (the sent log tells what became of it later) */
  state?: string
}

export class DmHistory {
  readonly #records: SealedRecords<DmEntry>
  /** oldest first, as kept */
  readonly #entries: DmEntry[] = []
  readonly #keys = new Set<string>()
  #lastAt = 0

  constructor (conn: Connection, private readonly max = MAX_DM_HISTORY) {
    this.#records = sealedRecords<DmEntry>(conn, KIND)
    for (const r of this.#records.list()) {
      this.#entries.push(r.value)
      this.#keys.add(r.key)
      this.#lastAt = Math.max(this.#lastAt, r.at)
    }
  }

  /** Keeps a message (once per peer and id); false when it was kept before. */
  add (e: DmEntry): boolean {
    const key = `${e.peer}\n${e.id}`
    if (this.#keys.has(key)) return false
    const entry = { ...e, text: e.text.length > MAX_DM_TEXT_CHARS ? e.text.slice(0, MAX_DM_TEXT_CHARS) : e.text }
    // `at` orders the records as they arrived, whatever the senders' clocks say
    const at = this.#lastAt = Math.max(Date.now(), this.#lastAt + 1)
    this.#records.atomically(() => {
      this.#records.put(key, entry, at)
      while (this.#entries.length >= this.max) {
        const old = this.#entries.shift()!
        const k = `${old.peer}\n${old.id}`
        this.#keys.delete(k)
        this.#records.delete(k)
      }
    })
    this.#entries.push(entry)
    this.#keys.add(key)
    return true
  }

  /** The last `limit` messages with `peer`, oldest first. */
  with (peer: string, limit: number): DmEntry[] {
    const out: DmEntry[] = []
    for (let i = this.#entries.length - 1; i >= 0 && out.length < limit; i--) {
      if (this.#entries[i]!.peer === peer) out.push(this.#entries[i]!)
    }
    return out.reverse()
  }

  /**
   * Every peer with its last message and how many of its messages came after `readUpTo(peer)` (a
   * sender's timestamp), most recent conversation first; one pass over the history.
   */
  peers (readUpTo: (peer: string) => number = () => Infinity): Array<{ peer: string, last: DmEntry, count: number, unread: number }> {
    const by = new Map<string, { peer: string, last: DmEntry, count: number, unread: number, at: number, read: number }>()
    this.#entries.forEach((e, i) => {
      let p = by.get(e.peer)
      if (p === undefined) { p = { peer: e.peer, last: e, count: 0, unread: 0, at: i, read: readUpTo(e.peer) }; by.set(e.peer, p) }
      p.last = e
      p.count++
      p.at = i
      if (e.direction === 'in' && e.ts > p.read) p.unread++
    })
    return [...by.values()].sort((a, b) => b.at - a.at).map(({ at: _at, read: _read, ...p }) => p)
  }

  get size (): number { return this.#entries.length }
}
