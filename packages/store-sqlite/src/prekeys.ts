/**
 * The prekey part of the SQLite registry: bundle bases, one-time prekeys (curve) and one-time PQ
 * prekeys (ML-KEM-768, signed; schema 7). A bundle is taken in one transaction, so each one-time
 * key of either kind is handed out once, never twice to concurrent requests.
 */
import type Database from 'better-sqlite3'
import type { OneTimePrekey, PqOneTimePrekey, PrekeyUpload, RegistryStore, TakenBundle } from '@agentmesh/store'

/** The tables (created with the rest of the schema, each IF NOT EXISTS). */
export const PREKEY_SCHEMA = `
CREATE TABLE IF NOT EXISTS prekey_bases (amid TEXT PRIMARY KEY, base TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
  amid TEXT NOT NULL, id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (amid, id)) WITHOUT ROWID;
-- schema 7
CREATE TABLE IF NOT EXISTS pq_one_time_prekeys (
  amid TEXT NOT NULL, id INTEGER NOT NULL, key TEXT NOT NULL, sig TEXT NOT NULL, PRIMARY KEY (amid, id)) WITHOUT ROWID;
`

type PrekeySlice = Pick<RegistryStore, 'putPrekeys' | 'takePrekeyBundle' | 'countOneTimePrekeys' | 'countPqOneTimePrekeys'>

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqlitePrekeys (db: Database.Database, live: () => void): PrekeySlice {
  const q = {
    baseGet: db.prepare('SELECT base FROM prekey_bases WHERE amid = ?').pluck(),
    basePut: db.prepare('INSERT INTO prekey_bases (amid, base) VALUES (?, ?) ON CONFLICT (amid) DO UPDATE SET base = excluded.base'),
    otkPut: db.prepare('INSERT OR IGNORE INTO one_time_prekeys (amid, id, key) VALUES (?, ?, ?)'),
    otkFirst: db.prepare('SELECT id, key FROM one_time_prekeys WHERE amid = ? ORDER BY id LIMIT 1'),
    otkDelete: db.prepare('DELETE FROM one_time_prekeys WHERE amid = ? AND id = ?'),
    otkClear: db.prepare('DELETE FROM one_time_prekeys WHERE amid = ?'),
    otkCount: db.prepare('SELECT count(*) FROM one_time_prekeys WHERE amid = ?').pluck(),
    pqPut: db.prepare('INSERT OR IGNORE INTO pq_one_time_prekeys (amid, id, key, sig) VALUES (?, ?, ?, ?)'),
    pqFirst: db.prepare('SELECT id, key, sig FROM pq_one_time_prekeys WHERE amid = ? ORDER BY id LIMIT 1'),
    pqDelete: db.prepare('DELETE FROM pq_one_time_prekeys WHERE amid = ? AND id = ?'),
    pqClear: db.prepare('DELETE FROM pq_one_time_prekeys WHERE amid = ?'),
    pqCount: db.prepare('SELECT count(*) FROM pq_one_time_prekeys WHERE amid = ?').pluck(),
  }

  const putTx = db.transaction((amid: string, up: PrekeyUpload): { oneTime: number, pqOneTime: number } => {
    if (up.base !== undefined) q.basePut.run(amid, JSON.stringify(up.base))
    if (up.replaceOneTime === true) { q.otkClear.run(amid); q.pqClear.run(amid) }
    for (const k of up.oneTime) q.otkPut.run(amid, k.id, k.key)
    for (const k of up.pqOneTime ?? []) q.pqPut.run(amid, k.id, k.key, k.sig)
    return { oneTime: q.otkCount.get(amid) as number, pqOneTime: q.pqCount.get(amid) as number }
  })
  // one transaction: a one-time prekey is read and deleted atomically, never handed out twice
  const takeTx = db.transaction((amid: string): TakenBundle | undefined => {
    const base = q.baseGet.get(amid) as string | undefined
    if (base === undefined) return undefined
    const out: TakenBundle = { base: JSON.parse(base) as Record<string, unknown> }
    const otk = q.otkFirst.get(amid) as OneTimePrekey | undefined
    if (otk !== undefined) {
      q.otkDelete.run(amid, otk.id)
      out.oneTime = { id: otk.id, key: otk.key }
    }
    const pq = q.pqFirst.get(amid) as PqOneTimePrekey | undefined
    if (pq !== undefined) {
      q.pqDelete.run(amid, pq.id)
      out.pqOneTime = { id: pq.id, key: pq.key, sig: pq.sig }
    }
    return out
  })

  return {
    async putPrekeys (amid, up) { live(); return putTx(amid, up) },
    async takePrekeyBundle (amid) { live(); return takeTx(amid) },
    async countOneTimePrekeys (amid) { live(); return q.otkCount.get(amid) as number },
    async countPqOneTimePrekeys (amid) { live(); return q.pqCount.get(amid) as number },
  }
}
