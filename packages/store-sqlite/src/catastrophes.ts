/**
 * The catastrophe slice of the SQLite store (schema 9): events (docs/protocol.md §20), the run
 * marker that tells an unclean stop at the next start, and online backups with SQLite's backup API
 * (the relay keeps serving while the pages are copied).
 */
import Database from 'better-sqlite3'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { BackupResult, CatastropheRecord, CatastropheStore } from '@agentmesh/store'

/** The tables (created with the rest of the schema, IF NOT EXISTS). */
export const CATASTROPHE_SCHEMA = `
-- schema 9: catastrophe events; the run marker is the meta row 'running_since'
CREATE TABLE IF NOT EXISTS catastrophes (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, severity TEXT NOT NULL, reported_at INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS catastrophes_reported ON catastrophes (reported_at, id);
CREATE INDEX IF NOT EXISTS catastrophes_open ON catastrophes (reported_at, id) WHERE status <> 'resolved';
`

/** Backups are named so that their names sort by time. */
export const BACKUP_PREFIX = 'agentmesh-'
export const BACKUP_SUFFIX = '.db'
export const BACKUP_DIR = 'backups'

function backupName (at: number): string {
  return `${BACKUP_PREFIX}${new Date(at).toISOString().replace(/[:.]/g, '-')}${BACKUP_SUFFIX}`
}

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteCatastrophes (db: Database.Database, file: string, live: () => void): CatastropheStore {
  const q = {
    put: db.prepare('INSERT OR IGNORE INTO catastrophes (id, status, severity, reported_at, record) VALUES (?, ?, ?, ?, ?)'),
    get: db.prepare('SELECT record FROM catastrophes WHERE id = ?').pluck(),
    update: db.prepare('UPDATE catastrophes SET status = ?, record = ? WHERE id = ? AND status = ?'),
    open: db.prepare("SELECT record FROM catastrophes WHERE status <> 'resolved' ORDER BY reported_at, id LIMIT ?").pluck(),
    ref: db.prepare('SELECT reported_at FROM catastrophes WHERE id = ?').pluck(),
    runGet: db.prepare("SELECT value FROM meta WHERE key = 'running_since'").pluck(),
    runPut: db.prepare("INSERT INTO meta (key, value) VALUES ('running_since', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    runDel: db.prepare("DELETE FROM meta WHERE key = 'running_since'"),
  }
  const beginTx = db.transaction((at: number): { since: number } | undefined => {
    const prev = q.runGet.get() as string | undefined
    q.runPut.run(String(at))
    return prev === undefined ? undefined : { since: Number(prev) }
  })
  const parse = (t: string): CatastropheRecord => JSON.parse(t) as CatastropheRecord

  const slice: CatastropheStore = {
    async putCatastrophe (e) { live(); return q.put.run(e.id, e.status, e.severity, e.reportedAt, JSON.stringify(e)).changes === 1 },
    async getCatastrophe (id) { live(); const t = q.get.get(id) as string | undefined; return t === undefined ? undefined : parse(t) },
    async updateCatastrophe (e, expect) { live(); return q.update.run(e.status, JSON.stringify(e), e.id, expect).changes === 1 },
    async listCatastrophes (query) {
      live()
      const conds: string[] = []
      const params: Record<string, unknown> = { limit: query.limit }
      if (query.status !== undefined) { conds.push('status = @status'); params.status = query.status }
      if (query.severity !== undefined) { conds.push('severity = @severity'); params.severity = query.severity }
      if (query.before !== undefined) {
        const at = q.ref.get(query.before) as number | undefined
        if (at === undefined) return []
        conds.push('(reported_at, id) < (@bat, @bid)')
        params.bat = at
        params.bid = query.before
      }
      const sql = `SELECT record FROM catastrophes${conds.length === 0 ? '' : ' WHERE ' + conds.join(' AND ')} ORDER BY reported_at DESC, id DESC LIMIT @limit`
      return (db.prepare(sql).pluck().all(params) as string[]).map(parse)
    },
    async openCatastrophes (limit) { live(); return (q.open.all(limit) as string[]).map(parse) },
    async beginRun (at) { live(); return beginTx(at) },
    async endRun () { live(); q.runDel.run() },
  }
  if (file !== ':memory:') {
    slice.backup = async ({ keep, at }): Promise<BackupResult> => {
      live()
      const dir = join(dirname(file), BACKUP_DIR)
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      const name = backupName(at)
      const dest = join(dir, name)
      const partial = `${dest}.partial`
      // owner-only before a page is written (the relay's data is private), and never seen half-written
      closeSync(openSync(partial, 'w', 0o600))
      try {
        await db.backup(partial)
        chmodSync(partial, 0o600)
        renameSync(partial, dest)
      } catch (err) {
        try { unlinkSync(partial) } catch {}
        throw err
      }
      const all = readdirSync(dir).filter(f => f.startsWith(BACKUP_PREFIX) && f.endsWith(BACKUP_SUFFIX)).sort()
      const drop = all.slice(0, Math.max(0, all.length - Math.max(1, keep)))
      for (const f of drop) { try { unlinkSync(join(dir, f)) } catch {} }
      return { file: dest, bytes: statSync(dest).size, at, kept: all.length - drop.length }
    }
    slice.checkIntegrity = async (full) => {
      live()
      const rows = db.prepare(full ? 'PRAGMA integrity_check(20)' : 'PRAGMA quick_check(20)').pluck().all() as string[]
      const found = rows.join('; ')
      return { ok: found === 'ok', found: found.slice(0, 2000) }
    }
  }
  return slice
}

/** What `inspectDatabase` found in a valid AgentMesh database. */
export interface DatabaseInfo { relayId: string, schema: number, auditRows: number }

/**
 * Checks, read-only, that `file` is an AgentMesh relay database one could serve from: SQLite opens
 * it, `PRAGMA integrity_check` passes, its schema version is one this AgentMesh knows, and it holds
 * a relay identity. AM_ERR_NOT_A_BACKUP naming what is wrong otherwise. (The audit chain is checked
 * by the caller through a store, `verifyAudit`.) `shownAs` names the file in the error (the file
 * the operator gave, when `file` is a copy of it).
 */
export async function inspectDatabase (file: string, schemaVersion: number, shownAs: string = file): Promise<DatabaseInfo> {
  const refuse = (why: string, cause?: unknown): never => {
    throw new AgentMeshError(ErrorCode.NotABackup, `${shownAs} is not a valid AgentMesh database: ${why}; nothing was replaced`, cause === undefined ? undefined : { cause })
  }
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: true, fileMustExist: true })
    const found = (db.prepare('PRAGMA integrity_check(20)').pluck().all() as string[]).join('; ')
    if (found !== 'ok') refuse(`its integrity check found: ${found.slice(0, 300)}`)
    const schema = db.prepare('PRAGMA user_version').pluck().get() as number
    if (schema < 1) refuse('it has no AgentMesh schema (user_version 0)')
    if (schema > schemaVersion) refuse(`it was written by a newer AgentMesh (schema ${schema}, this one knows ${schemaVersion})`)
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[])
    for (const t of ['meta', 'agents', 'inboxes', 'messages']) if (!tables.has(t)) refuse(`it has no ${t} table`)
    const relayId = db.prepare("SELECT value FROM meta WHERE key = 'relay_id'").pluck().get() as string | undefined
    if (relayId === undefined) refuse('it holds no relay identity (meta relay_id)')
    const auditRows = tables.has('audit') ? db.prepare('SELECT count(*) FROM audit').pluck().get() as number : 0
    return { relayId: relayId!, schema, auditRows }
  } catch (err) {
    if (err instanceof AgentMeshError) throw err
    return refuse((err as Error).message, err)
  } finally {
    try { db?.close() } catch {}
  }
}
