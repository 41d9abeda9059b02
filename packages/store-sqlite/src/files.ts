/**
 * The files slice of the SQLite store (schema 9, docs/protocol.md §18): metadata rows (`files`),
 * the agents a private file is shared with (`file_shares`), the bytes as chunk rows of up to
 * 256 KiB (`file_chunks`, so a backup of the database carries them), and the uploads in progress
 * (`file_uploads`). A file's row is written only when its upload is complete, in one transaction
 * with the quota check; until then no read sees its chunks.
 */
import type Database from 'better-sqlite3'
import type { FileRecord, FileStore } from '@agentmesh/store'

/** The tables (created with the rest of the schema, each IF NOT EXISTS). */
export const FILE_SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL,
  sha256 TEXT NOT NULL, description TEXT, created_at INTEGER NOT NULL, visibility TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_owner ON files (owner, id);
CREATE INDEX IF NOT EXISTS files_visibility ON files (visibility, id);
CREATE TABLE IF NOT EXISTS file_shares (
  file_id TEXT NOT NULL, amid TEXT NOT NULL, PRIMARY KEY (file_id, amid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_shares_amid ON file_shares (amid, file_id);
CREATE TABLE IF NOT EXISTS file_uploads (id TEXT PRIMARY KEY, owner TEXT NOT NULL, started_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_chunks (file_id TEXT NOT NULL, idx INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (file_id, idx));
`

interface FileRow { id: string, owner: string, filename: string, type: string, size: number, sha256: string, description: string | null, created_at: number, visibility: string }

/** The slice over `db` (its schema already made); `live` throws once the store is closed. */
export function sqliteFiles (db: Database.Database, live: () => void): FileStore {
  const q = {
    uploadPut: db.prepare('INSERT INTO file_uploads (id, owner, started_at) VALUES (?, ?, ?)'),
    uploadGet: db.prepare('SELECT owner FROM file_uploads WHERE id = ?').pluck(),
    uploadDelete: db.prepare('DELETE FROM file_uploads WHERE id = ?'),
    uploadsBefore: db.prepare('SELECT id FROM file_uploads WHERE started_at < ?').pluck(),
    chunkPut: db.prepare('INSERT OR REPLACE INTO file_chunks (file_id, idx, bytes) VALUES (?, ?, ?)'),
    chunkGet: db.prepare('SELECT bytes FROM file_chunks WHERE file_id = ? AND idx = ?').pluck(),
    chunksDelete: db.prepare('DELETE FROM file_chunks WHERE file_id = ?'),
    // chunks whose upload row and file row are both gone (a crash between the two deletes)
    orphanChunks: db.prepare('DELETE FROM file_chunks WHERE file_id NOT IN (SELECT id FROM files) AND file_id NOT IN (SELECT id FROM file_uploads)'),
    filePut: db.prepare('INSERT INTO files (id, owner, filename, type, size, sha256, description, created_at, visibility) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    fileGet: db.prepare('SELECT * FROM files WHERE id = ?'),
    fileDelete: db.prepare('DELETE FROM files WHERE id = ?'),
    sharePut: db.prepare('INSERT OR IGNORE INTO file_shares (file_id, amid) VALUES (?, ?)'),
    sharesOf: db.prepare('SELECT amid FROM file_shares WHERE file_id = ? ORDER BY amid').pluck(),
    sharesDelete: db.prepare('DELETE FROM file_shares WHERE file_id = ?'),
    usage: db.prepare('SELECT coalesce(sum(size), 0) AS bytes, count(*) AS files FROM files WHERE owner = ?'),
    list: db.prepare(`SELECT * FROM files WHERE id < :before AND (:owner IS NULL OR owner = :owner) AND (:viewer IS NULL
        OR owner = :viewer OR visibility = 'public'
        OR (visibility = 'private' AND id IN (SELECT file_id FROM file_shares WHERE amid = :viewer))
        OR (substr(visibility, 1, 1) = '#' AND substr(visibility, 2) IN (SELECT value FROM json_each(:rooms))))
      ORDER BY id DESC LIMIT :limit`),
  }

  const record = (r: FileRow): FileRecord => ({
    id: r.id,
    owner: r.owner,
    filename: r.filename,
    type: r.type,
    size: r.size,
    sha256: r.sha256,
    ...(r.description === null ? {} : { description: r.description }),
    createdAt: r.created_at,
    visibility: r.visibility,
    sharedWith: q.sharesOf.all(r.id) as string[],
  })

  const completeTx = db.transaction((f: FileRecord, quota: { bytes: number, files: number }): 'stored' | 'quota' => {
    if (q.uploadGet.get(f.id) === undefined) throw new Error(`no upload ${f.id} in progress`)
    q.uploadDelete.run(f.id)
    const used = q.usage.get(f.owner) as { bytes: number, files: number }
    if (used.bytes + f.size > quota.bytes || used.files + 1 > quota.files) {
      q.chunksDelete.run(f.id)
      return 'quota'
    }
    q.filePut.run(f.id, f.owner, f.filename, f.type, f.size, f.sha256, f.description ?? null, f.createdAt, f.visibility)
    for (const a of f.sharedWith) q.sharePut.run(f.id, a)
    return 'stored'
  })
  const abortTx = db.transaction((id: string): void => {
    if (q.uploadGet.get(id) === undefined) return // a complete file keeps its chunks
    q.uploadDelete.run(id)
    q.chunksDelete.run(id)
  })
  const dropTx = db.transaction((before: number): number => {
    const ids = q.uploadsBefore.all(before) as string[]
    for (const id of ids) { q.uploadDelete.run(id); q.chunksDelete.run(id) }
    q.orphanChunks.run()
    return ids.length
  })
  const deleteTx = db.transaction((id: string): boolean => {
    const gone = q.fileDelete.run(id).changes > 0
    if (gone) { q.sharesDelete.run(id); q.chunksDelete.run(id) }
    return gone
  })

  return {
    async beginFileUpload (id, owner, startedAt) { live(); q.uploadPut.run(id, owner, startedAt) },
    async putFileChunk (id, index, bytes) {
      live()
      if (q.uploadGet.get(id) === undefined) throw new Error(`no upload ${id} in progress`)
      q.chunkPut.run(id, index, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    },
    async completeFile (file, quota) { live(); return completeTx(file, quota) },
    async abortFileUpload (id) { live(); abortTx(id) },
    async dropFileUploads (before) { live(); return dropTx(before) },
    async getFile (id) {
      live()
      const r = q.fileGet.get(id) as FileRow | undefined
      return r === undefined ? undefined : record(r)
    },
    async * readFileChunks (id) {
      live()
      if (q.fileGet.get(id) === undefined) return
      // one chunk a statement: a reader never holds a statement open across its awaits
      for (let i = 0; ; i++) {
        live()
        const b = q.chunkGet.get(id, i) as Buffer | undefined
        if (b === undefined) return
        yield new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
      }
    },
    async listFiles (query) {
      live()
      const rows = q.list.all({
        before: query.before ?? '\uffff',
        owner: query.owner ?? null,
        viewer: query.viewer?.amid ?? null,
        rooms: JSON.stringify(query.viewer?.rooms ?? []),
        limit: query.limit,
      }) as FileRow[]
      return rows.map(record)
    },
    async deleteFile (id) { live(); return deleteTx(id) },
    async fileUsage (owner) { live(); const u = q.usage.get(owner) as { bytes: number, files: number }; return { bytes: u.bytes, files: u.files } },
  }
}
