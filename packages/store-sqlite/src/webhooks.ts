/**
 * The wake-up slice of the SQLite store (docs/protocol.md §26; schema 10): one wake webhook per
 * agent (`webhooks`), replaced by the next registration.
 */
import type Database from 'better-sqlite3'
import type { WebhookStore } from '@agentmesh/store'

/** The table (created with the rest of the schema, IF NOT EXISTS: a schema 9 file gains it in place). */
export const WEBHOOK_SCHEMA = `
CREATE TABLE IF NOT EXISTS webhooks (amid TEXT PRIMARY KEY, url TEXT NOT NULL, created_at INTEGER NOT NULL);
`

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteWebhooks (db: Database.Database, live: () => void): WebhookStore {
  const q = {
    put: db.prepare('INSERT INTO webhooks (amid, url, created_at) VALUES (?, ?, ?) ON CONFLICT (amid) DO UPDATE SET url = excluded.url, created_at = excluded.created_at'),
    get: db.prepare('SELECT amid, url, created_at FROM webhooks WHERE amid = ?'),
    del: db.prepare('DELETE FROM webhooks WHERE amid = ?'),
  }
  return {
    async putWebhook (rec) { live(); q.put.run(rec.amid, rec.url, rec.createdAt) },
    async getWebhook (amid) {
      live()
      const r = q.get.get(amid) as { amid: string, url: string, created_at: number } | undefined
      return r === undefined ? undefined : { amid: r.amid, url: r.url, createdAt: r.created_at }
    },
    async deleteWebhook (amid) { live(); return q.del.run(amid).changes > 0 },
  }
}
