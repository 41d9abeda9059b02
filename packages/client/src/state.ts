/**
 * The client's local state: the outbox (sends not yet acknowledged by the relay), the
 * ids already handed to the application (dedupe), and the cursor per relay (and per room read by
 * cursor on that relay, docs/protocol.md §6.1). The SQLite
 * implementation (state-sqlite.ts, Node only) makes all three survive a crash of the agent; the
 * memory one here is for tests, short-lived scripts and browsers. Any other store implements
 * `ClientState` and is given to `connect({ state })`.
 */

export interface OutboxEntry { id: string, to: string, envText: string, createdAt: number }

export interface ClientState {
  outboxAdd (e: OutboxEntry): void
  outboxRemove (id: string): void
  /** In the order they were added. */
  outboxList (): OutboxEntry[]
  /** True when this (sender, id) was handed to the application before. */
  seen (from: string, id: string): boolean
  /**
   * Records a processed message and moves the cursor, in one atomic step: the inbox cursor, or with
   * `room` that room's cursor (a room seq).
   */
  commit (relay: string, seq: number, from?: string, id?: string, room?: string): void
  /** The inbox cursor, or with `room` that room's. */
  cursor (relay: string, room?: string): number
  /** Every room cursor kept for the relay, by room id. */
  roomCursors (relay: string): Record<string, number>
  /** Forgets dedupe entries older than `before` (ms since epoch). */
  prune (before: number): void

  // records of the end-to-end layer (keys, sessions, peers, held and decrypted messages), each
  // sealed by the caller (e2ee.ts), so this layer only stores bytes
  recordGet (kind: string, key: string): Uint8Array | undefined
  recordPut (kind: string, key: string, value: Uint8Array, at: number): void
  /** True when it was there. */
  recordDelete (kind: string, key: string): boolean
  /** Oldest first. */
  recordList (kind: string): Array<{ key: string, value: Uint8Array, at: number }>
  recordCount (kind: string): number
  /** The kinds that hold records (for re-sealing every record under a new key: state-rekey.ts). */
  recordKinds (): string[]
  metaGet (name: string): string | undefined
  metaSet (name: string, value: string): void
  /**
   * Runs `fn` as one atomic step (SQLite: BEGIN IMMEDIATE … COMMIT, so two processes sharing a home
   * take turns); `fn` must be synchronous.
   */
  transaction<T> (fn: () => T): T
  /**
   * Like `transaction`, for deleting key material: what `fn` deletes is overwritten in the
   * database file (SQLite secure_delete) and the write-ahead log is emptied afterwards.
   */
  secureDelete<T> (fn: () => T): T
  close (): void
}

/** Where a room's cursor is kept next to the relay's (one key space: a room id has no newline). */
export function cursorKey (relay: string, room?: string): string {
  return room === undefined ? relay : relay + '\n#' + room
}

export function memoryState (): ClientState {
  const outbox = new Map<string, OutboxEntry>()
  const seen = new Map<string, number>()
  const cursors = new Map<string, number>()
  const records = new Map<string, Map<string, { value: Uint8Array, at: number }>>()
  const meta = new Map<string, string>()
  const kindOf = (kind: string): Map<string, { value: Uint8Array, at: number }> => {
    let m = records.get(kind)
    if (m === undefined) { m = new Map(); records.set(kind, m) }
    return m
  }
  return {
    outboxAdd (e) { outbox.set(e.id, e) },
    outboxRemove (id) { outbox.delete(id) },
    outboxList () { return [...outbox.values()] },
    seen (from, id) { return seen.has(from + '\n' + id) },
    commit (relay, seq, from, id, room) {
      if (from !== undefined && id !== undefined) seen.set(from + '\n' + id, Date.now())
      const key = cursorKey(relay, room)
      if (seq > (cursors.get(key) ?? 0)) cursors.set(key, seq)
    },
    cursor (relay, room) { return cursors.get(cursorKey(relay, room)) ?? 0 },
    roomCursors (relay) {
      const prefix = cursorKey(relay, '')
      const out: Record<string, number> = {}
      for (const [k, v] of cursors) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v
      return out
    },
    prune (before) { for (const [k, t] of seen) if (t < before) seen.delete(k) },
    recordGet (kind, key) { return kindOf(kind).get(key)?.value },
    recordPut (kind, key, value, at) { const m = kindOf(kind); m.delete(key); m.set(key, { value, at }) },
    recordDelete (kind, key) {
      const r = kindOf(kind).get(key)
      if (r === undefined) return false
      r.value.fill(0)
      return kindOf(kind).delete(key)
    },
    recordList (kind) { return [...kindOf(kind)].map(([key, r]) => ({ key, ...r })).sort((a, b) => a.at - b.at) },
    recordCount (kind) { return kindOf(kind).size },
    recordKinds () { return [...records].filter(([, m]) => m.size > 0).map(([k]) => k).sort() },
    metaGet (name) { return meta.get(name) },
    metaSet (name, value) { meta.set(name, value) },
    transaction (fn) { return fn() },
    secureDelete (fn) { return fn() },
    close () {},
  }
}
