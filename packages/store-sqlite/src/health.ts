/**
 * The agent health slice of the SQLite store (docs/protocol.md §21; schema 9): each agent's latest
 * heartbeat (one row, replaced) and its health changes, the newest `keep` kept per agent.
 */
import type Database from 'better-sqlite3'
import type { HealthChange, HealthStore, HeartbeatRecord } from '@agentmesh/store'

/** The tables (created with the rest of the schema, each IF NOT EXISTS). */
export const HEALTH_SCHEMA = `
CREATE TABLE IF NOT EXISTS heartbeats (amid TEXT PRIMARY KEY, record TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS health_changes (
  amid TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL, change TEXT NOT NULL, PRIMARY KEY (amid, n)) WITHOUT ROWID;
`

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteHealth (db: Database.Database, live: () => void): HealthStore {
  const q = {
    put: db.prepare('INSERT INTO heartbeats (amid, record, at) VALUES (?, ?, ?) ON CONFLICT (amid) DO UPDATE SET record = excluded.record, at = excluded.at'),
    get: db.prepare('SELECT record FROM heartbeats WHERE amid = ?').pluck(),
    list: db.prepare('SELECT record FROM heartbeats WHERE amid > ? ORDER BY amid LIMIT ?').pluck(),
    lastN: db.prepare('SELECT max(n) FROM health_changes WHERE amid = ?').pluck(),
    add: db.prepare('INSERT INTO health_changes (amid, n, at, change) VALUES (?, ?, ?, ?)'),
    trim: db.prepare('DELETE FROM health_changes WHERE amid = ? AND n <= ?'),
    history: db.prepare('SELECT change FROM health_changes WHERE amid = ? ORDER BY n DESC LIMIT ?').pluck(),
  }
  const addTx = db.transaction((amid: string, change: HealthChange, keep: number) => {
    const n = ((q.lastN.get(amid) as number | null) ?? 0) + 1
    q.add.run(amid, n, change.at, JSON.stringify(change))
    q.trim.run(amid, n - Math.max(0, keep))
  })
  return {
    async putHeartbeat (hb) { live(); q.put.run(hb.amid, JSON.stringify(hb), hb.at) },
    async getHeartbeat (amid) {
      live()
      const t = q.get.get(amid) as string | undefined
      return t === undefined ? undefined : JSON.parse(t) as HeartbeatRecord
    },
    async listHeartbeats (query) {
      live()
      if (query.limit <= 0) return []
      return (q.list.all(query.after ?? '', query.limit) as string[]).map(t => JSON.parse(t) as HeartbeatRecord)
    },
    async addHealthChange (amid, change, keep) { live(); addTx(amid, change, keep) },
    async healthHistory (amid, limit) {
      live()
      if (limit <= 0) return []
      return (q.history.all(amid, limit) as string[]).map(t => JSON.parse(t) as HealthChange)
    },
  }
}
