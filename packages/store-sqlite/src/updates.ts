/**
 * The system updates slice of the SQLite store (docs/protocol.md §19; schema 9): updates (each
 * kept as JSON with its creation time for order), one acknowledgement row per (update, agent), and
 * the software version each agent last reported. An ack is compare-and-set in one statement, so
 * two concurrent acks of one agent cannot both move it from the same state.
 */
import type Database from 'better-sqlite3'
import type { UpdateAckRecord, UpdateRecord, UpdateStore } from '@agentmesh/store'

/** The tables (created with the rest of the schema, each IF NOT EXISTS). */
export const UPDATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS updates (
  id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS updates_created ON updates (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS update_acks (
  update_id TEXT NOT NULL, amid TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (update_id, amid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_versions (
  amid TEXT PRIMARY KEY, version TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
`

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteUpdates (db: Database.Database, live: () => void): UpdateStore {
  const q = {
    put: db.prepare('INSERT OR IGNORE INTO updates (id, created_at, expires_at, body) VALUES (?, ?, ?, ?)'),
    get: db.prepare('SELECT body FROM updates WHERE id = ?').pluck(),
    list: db.prepare(`SELECT body FROM updates
      WHERE (@since IS NULL OR created_at >= @since) AND (@active IS NULL OR expires_at IS NULL OR expires_at > @active)
      ORDER BY created_at DESC, id DESC LIMIT @limit`).pluck(),
    ackInsert: db.prepare('INSERT OR IGNORE INTO update_acks (update_id, amid, status, body) VALUES (?, ?, ?, ?)'),
    ackUpdate: db.prepare('UPDATE update_acks SET status = ?, body = ? WHERE update_id = ? AND amid = ? AND status = ?'),
    ackGet: db.prepare('SELECT body FROM update_acks WHERE update_id = ? AND amid = ?').pluck(),
    ackList: db.prepare('SELECT body FROM update_acks WHERE update_id = ? ORDER BY amid').pluck(),
    versionPut: db.prepare('INSERT INTO agent_versions (amid, version, at) VALUES (?, ?, ?) ON CONFLICT (amid) DO UPDATE SET version = excluded.version, at = excluded.at'),
    versionList: db.prepare('SELECT amid, version, at FROM agent_versions ORDER BY amid'),
  }
  const parse = <T>(t: string | undefined): T | undefined => t === undefined ? undefined : JSON.parse(t) as T

  return {
    async putUpdate (u) {
      live()
      return q.put.run(u.id, u.createdAt, u.expiresAt ?? null, JSON.stringify(u)).changes === 1
    },
    async getUpdate (id) { live(); return parse<UpdateRecord>(q.get.get(id) as string | undefined) },
    async listUpdates (query) {
      live()
      const rows = q.list.all({ since: query.since ?? null, active: query.activeAt ?? null, limit: Math.max(0, query.limit) }) as string[]
      return rows.map(t => JSON.parse(t) as UpdateRecord)
    },
    async putUpdateAck (ack, expect) {
      live()
      const body = JSON.stringify(ack)
      // one statement each way: an insert only where no row is (pending), an update only from `expect`
      const r = expect === 'pending'
        ? q.ackInsert.run(ack.updateId, ack.amid, ack.status, body)
        : q.ackUpdate.run(ack.status, body, ack.updateId, ack.amid, expect)
      return r.changes === 1
    },
    async getUpdateAck (updateId, amid) { live(); return parse<UpdateAckRecord>(q.ackGet.get(updateId, amid) as string | undefined) },
    async listUpdateAcks (updateId) {
      live()
      return (q.ackList.all(updateId) as string[]).map(t => JSON.parse(t) as UpdateAckRecord)
    },
    async agentUpdateAcks (amid, updateIds) {
      live()
      const out: UpdateAckRecord[] = []
      for (const id of updateIds) {
        const a = parse<UpdateAckRecord>(q.ackGet.get(id, amid) as string | undefined)
        if (a !== undefined) out.push(a)
      }
      return out
    },
    async setAgentVersion (amid, version, at) { live(); q.versionPut.run(amid, version, at) },
    async listAgentVersions () {
      live()
      return q.versionList.all() as Array<{ amid: string, version: string, at: number }>
    },
  }
}
