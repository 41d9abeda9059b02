/** The SQLite client state (Node only): outbox, dedupe and cursors (the inbox's, each room's) survive a crash of the agent. */
import Database from 'better-sqlite3'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { cursorKey, type ClientState } from './state.ts'
import { GENERATION_EVERY, GENERATION_SUFFIX, readGeneration, rollbackError, writeGeneration } from './state-generation.ts'

/** Atomic steps between two truncations of the write-ahead log (and after every secure delete). */
export const WAL_TRUNCATE_EVERY = 1000
/** Truncations of the log between two rewrites of the whole file (VACUUM); also at close. */
export const VACUUM_EVERY = 100

export function sqliteState (path: string): ClientState {
  let db: Database.Database
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    // the outbox holds message bodies: owner-only (SQLite gives -wal/-shm the same mode)
    closeSync(openSync(path, 'a', 0o600))
    db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    // secure_delete is on for the steps that delete key material (secureDelete below), off for the
    // rest: zeroing every freed page on every message tripled the cost of a send (measured). What
    // other steps leave in free pages goes with the periodic VACUUM and the one at close, and
    // short-lived plaintext is sealed under daily keys that are destroyed (docs/security.md)
    db.exec(`
      CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, recipient TEXT NOT NULL, env TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS seen (sender TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sender, id)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
      CREATE TABLE IF NOT EXISTS cursors (relay TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    `)
  } catch (cause) {
    const code = (cause as { code?: string }).code
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new AgentMeshError(ErrorCode.DataCorrupt, `${path} is not a usable state database (${(cause as Error).message}); move it aside`, { cause })
    }
    throw new AgentMeshError(ErrorCode.DataDir, `cannot open the agent state ${path}: ${(cause as Error).message}`, { cause })
  }
  const q = {
    add: db.prepare('INSERT OR IGNORE INTO outbox (id, recipient, env, created_at) VALUES (?, ?, ?, ?)'),
    remove: db.prepare('DELETE FROM outbox WHERE id = ?'),
    list: db.prepare('SELECT id, recipient, env, created_at FROM outbox ORDER BY n'),
    seen: db.prepare('SELECT 1 FROM seen WHERE sender = ? AND id = ?').pluck(),
    markSeen: db.prepare('INSERT OR IGNORE INTO seen (sender, id, at) VALUES (?, ?, ?)'),
    setCursor: db.prepare('INSERT INTO cursors (relay, seq) VALUES (?, ?) ON CONFLICT (relay) DO UPDATE SET seq = max(seq, excluded.seq)'),
    cursor: db.prepare('SELECT seq FROM cursors WHERE relay = ?').pluck(),
    // a room's cursor is kept under the relay's key + "\n#" + the room id (cursorKey)
    roomCursors: db.prepare('SELECT relay, seq FROM cursors WHERE relay > ? AND relay < ?'),
    prune: db.prepare('DELETE FROM seen WHERE at < ?'),
    recGet: db.prepare('SELECT value FROM records WHERE kind = ? AND key = ?').pluck(),
    recPut: db.prepare('INSERT INTO records (kind, key, value, at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, at = excluded.at'),
    recDelete: db.prepare('DELETE FROM records WHERE kind = ? AND key = ?'),
    recList: db.prepare('SELECT key, value, at FROM records WHERE kind = ? ORDER BY at, key'),
    recCount: db.prepare('SELECT count(*) FROM records WHERE kind = ?').pluck(),
    recKinds: db.prepare('SELECT DISTINCT kind FROM records ORDER BY kind').pluck(),
    metaGet: db.prepare('SELECT value FROM meta WHERE name = ?').pluck(),
    metaSet: db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
  }
  // one wrapper for every atomic step (better-sqlite3 prepares BEGIN/COMMIT per wrapper)
  const run = db.transaction((fn: () => unknown) => fn())
  const commitStep = db.transaction((relay: string, seq: number, from?: string, id?: string, room?: string) => {
    if (from !== undefined && id !== undefined) q.markSeen.run(from, id, Date.now())
    q.setCursor.run(cursorKey(relay, room), seq)
  })
  /**
   * The write-ahead log keeps every version of every page written since the last checkpoint (old
   * ratchet states, kept plaintexts, each sealed with the state key): it is checkpointed and
   * truncated to zero bytes every WAL_TRUNCATE_EVERY steps, after a secure delete, and at close.
   * Best effort: another process of the agent reading at that moment leaves it for the next time.
   */
  let steps = 0
  let truncations = 0
  const truncateWal = (): void => {
    steps = 0
    if (!db.open || db.inTransaction) return
    try { db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* busy: the next one */ }
  }
  /**
   * secure_delete zeroes a deleted cell; SQLite does not promise as much for the unused gap of a
   * b-tree page it rebuilds (a split, a merge), where copies of earlier records may be left. VACUUM writes every page anew,
   * from a fresh copy of the live rows only; then the log is truncated. Best effort, as above.
   */
  const compact = (): void => {
    truncations = 0
    if (!db.open || db.inTransaction) return
    try { db.exec('VACUUM') } catch { /* busy: the next one */ }
    truncateWal()
  }
  /**
   * A new generation (state-generation.ts): committed with a synced write, then recorded next to
   * the file, so the record is never ahead of the state.
   */
  const sidecar = path + GENERATION_SUFFIX
  let sinceBump = 0
  const bumpTx = db.transaction((): number => {
    const g = Number(q.metaGet.get('generation') ?? '0') + 1
    q.metaSet.run('generation', String(g))
    return g
  })
  const bump = (): void => {
    sinceBump = 0
    if (!db.open || db.inTransaction) return
    let g: number
    db.pragma('synchronous = FULL')
    try { g = bumpTx.immediate() } catch { return } finally { db.pragma('synchronous = NORMAL') }
    writeGeneration(sidecar, g)
  }
  const stepped = (): void => {
    if (++sinceBump >= GENERATION_EVERY) bump()
    if (++steps < WAL_TRUNCATE_EVERY) return
    if (++truncations >= VACUUM_EVERY) compact()
    else truncateWal()
  }
  const commit = (relay: string, seq: number, from?: string, id?: string, room?: string): void => { commitStep(relay, seq, from, id, room); stepped() }
  // an older copy put in place of the live state is refused; a new one continues the count
  const have = q.metaGet.get('generation') as string | undefined
  const recorded = readGeneration(sidecar)
  if (have !== undefined && recorded !== undefined && Number(have) < recorded) {
    db.close()
    throw rollbackError(path, sidecar, Number(have), recorded)
  }
  if (have === undefined && recorded !== undefined) q.metaSet.run('generation', String(recorded))
  bump()
  // what an unclean stop left in the log goes at once
  truncateWal()
  return {
    outboxAdd (e) { q.add.run(e.id, e.to, e.envText, e.createdAt) },
    outboxRemove (id) { q.remove.run(id); if (!db.inTransaction) stepped() },
    outboxList () {
      return (q.list.all() as Array<{ id: string, recipient: string, env: string, created_at: number }>)
        .map(r => ({ id: r.id, to: r.recipient, envText: r.env, createdAt: r.created_at }))
    },
    seen (from, id) { return q.seen.get(from, id) !== undefined },
    commit (relay, seq, from, id, room) { commit(relay, seq, from, id, room) },
    cursor (relay, room) { return (q.cursor.get(cursorKey(relay, room)) as number | undefined) ?? 0 },
    roomCursors (relay) {
      const prefix = cursorKey(relay, '')
      const out: Record<string, number> = {}
      // every key after the prefix and before the prefix with its last character raised ('#' → '$')
      for (const r of q.roomCursors.all(prefix, relay + '\n$') as Array<{ relay: string, seq: number }>) out[r.relay.slice(prefix.length)] = r.seq
      return out
    },
    prune (before) { q.prune.run(before) },
    recordGet (kind, key) { return q.recGet.get(kind, key) as Buffer | undefined },
    recordPut (kind, key, value, at) { q.recPut.run(kind, key, value, at); if (!db.inTransaction) stepped() },
    recordDelete (kind, key) {
      const gone = q.recDelete.run(kind, key).changes > 0
      if (!db.inTransaction) stepped()
      return gone
    },
    recordList (kind) { return q.recList.all(kind) as Array<{ key: string, value: Buffer, at: number }> },
    recordCount (kind) { return q.recCount.get(kind) as number },
    recordKinds () { return q.recKinds.all() as string[] },
    metaGet (name) { return q.metaGet.get(name) as string | undefined },
    metaSet (name, value) { q.metaSet.run(name, value) },
    transaction (fn) {
      if (db.inTransaction) return fn()
      const out = run.immediate(fn) as ReturnType<typeof fn>
      stepped()
      return out
    },
    secureDelete (fn) {
      if (db.inTransaction) return fn()
      db.pragma('secure_delete = ON')
      try {
        return run.immediate(fn) as ReturnType<typeof fn>
      } finally {
        db.pragma('secure_delete = OFF')
        truncateWal()
      }
    },
    close () {
      if (!db.open) return
      bump()
      compact()
      db.close()
    },
  }
}
