/**
 * The owner-link slice of the SQLite store (docs/protocol.md §28; schema 11): one row per agent,
 * the link as JSON, indexed by the owner identity for the per-owner count.
 */
import type Database from 'better-sqlite3'
import type { OwnerLinkRecord, OwnerStore } from '@agentmesh/store'

/** The table (created with the rest of the schema, IF NOT EXISTS). */
export const OWNER_SCHEMA = `
CREATE TABLE IF NOT EXISTS owner_links (
  amid TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, linked_at INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS owner_links_owner ON owner_links (issuer, subject);
`

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteOwners (db: Database.Database, live: () => void): OwnerStore {
  const q = {
    put: db.prepare(`INSERT INTO owner_links (amid, issuer, subject, linked_at, record) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (amid) DO UPDATE SET issuer = excluded.issuer, subject = excluded.subject, linked_at = excluded.linked_at, record = excluded.record`),
    get: db.prepare('SELECT record FROM owner_links WHERE amid = ?').pluck(),
    del: db.prepare('DELETE FROM owner_links WHERE amid = ?'),
    count: db.prepare('SELECT count(*) FROM owner_links WHERE issuer = ? AND subject = ?').pluck(),
  }
  return {
    async putOwnerLink (l) { live(); q.put.run(l.amid, l.issuer, l.subject, l.linkedAt, JSON.stringify(l)) },
    async getOwnerLink (amid) {
      live()
      const t = q.get.get(amid) as string | undefined
      return t === undefined ? undefined : JSON.parse(t) as OwnerLinkRecord
    },
    async deleteOwnerLink (amid) { live(); return q.del.run(amid).changes > 0 },
    async countOwnerLinks (issuer, subject) { live(); return q.count.get(issuer, subject) as number },
  }
}
