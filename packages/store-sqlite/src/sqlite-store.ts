/**
 * The default Store: one SQLite file in WAL mode (better-sqlite3).
 *
 * Durability: every commit() is one transaction. With `synchronous: 'normal'` (the default)
 * a committed transaction survives a crash or SIGKILL of the process; a power loss may roll
 * back the last commits. `synchronous: 'full'` also survives power loss, at an fsync per commit.
 * The file is opened with an exclusive lock, so two relays can never share one data directory.
 */
import Database from 'better-sqlite3'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { randomUUID } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { compareCrls, crlPutResult, profileMatches, searchText, storeOptions, type AgentProfile, type CaCertificateRecord, type CertificateRecord, type CrlRecord, type FeedbackRecord, type ReputationFlag, type ScorePoint, type PutCrlResult, type OneTimePrekey, type PrekeyUpload, type TakenBundle, type AgentRecord, type AppendItem, type AppendResult, type CursorAck, type InboxState, type Store, type StoreInit, type StoredMessage } from '@agentmesh/store'

/**
 * 1: relay; 2: + registry (profiles, prekeys); 3: + certificates, CA certificates, CRLs;
 * 4: + reputation (feedback, score history, flags).
 * Every step is CREATE … IF NOT EXISTS, so older files upgrade in place.
 */
export const SCHEMA_VERSION = 4
export const DB_FILE = 'agentmesh.db'

export interface SqliteStoreInit extends StoreInit {
  /** `normal`: survives a process crash; `full`: survives power loss too. @default 'normal' */
  synchronous?: 'normal' | 'full'
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  amid TEXT PRIMARY KEY, name TEXT, registered_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inboxes (
  recipient TEXT PRIMARY KEY, cursor INTEGER NOT NULL, last_seq INTEGER NOT NULL, pending INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  recipient TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL,
  envelope TEXT NOT NULL, received_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS messages_inbox ON messages (recipient, seq);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
CREATE TABLE IF NOT EXISTS dedupe (
  sender TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (sender, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_expires ON dedupe (expires_at);
CREATE TABLE IF NOT EXISTS profiles (
  amid TEXT PRIMARY KEY, profile TEXT NOT NULL, search TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS prekey_bases (amid TEXT PRIMARY KEY, base TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
  amid TEXT NOT NULL, id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (amid, id)) WITHOUT ROWID;
-- schema 3
CREATE TABLE IF NOT EXISTS certificates (amid TEXT PRIMARY KEY, record TEXT NOT NULL, published_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ca_certificates (
  key TEXT PRIMARY KEY, subject TEXT NOT NULL, pem TEXT NOT NULL, added_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ca_certificates_subject ON ca_certificates (subject);
CREATE TABLE IF NOT EXISTS crls (
  issuer_key TEXT PRIMARY KEY, issuer TEXT NOT NULL, this_update INTEGER NOT NULL, next_update INTEGER,
  revoked_count INTEGER NOT NULL, pem TEXT NOT NULL, stored_at INTEGER NOT NULL);
-- schema 4
CREATE TABLE IF NOT EXISTS feedback (
  rater TEXT NOT NULL, subject TEXT NOT NULL, score REAL NOT NULL, comment TEXT, interaction TEXT, at INTEGER NOT NULL,
  PRIMARY KEY (rater, subject)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_subject ON feedback (subject, rater);
CREATE TABLE IF NOT EXISTS score_points (
  id INTEGER PRIMARY KEY, subject TEXT NOT NULL, at INTEGER NOT NULL, score REAL NOT NULL);
CREATE INDEX IF NOT EXISTS score_points_subject ON score_points (subject, id);
CREATE TABLE IF NOT EXISTS reputation_flags (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, flag TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reputation_flags_subject ON reputation_flags (subject, id);
`

function openError (path: string, cause: unknown): AgentMeshError {
  const code = (cause as { code?: string }).code ?? ''
  const msg = (cause as Error).message ?? String(cause)
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new AgentMeshError(ErrorCode.DataCorrupt,
      `${path} is not a usable AgentMesh database (${msg}); move it aside or point --data at another directory`, { cause })
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new AgentMeshError(ErrorCode.DataDir,
      `${path} is in use by another relay; stop it or point --data at another directory`, { cause })
  }
  return new AgentMeshError(ErrorCode.DataDir, `cannot open the database ${path}: ${code !== '' && !msg.startsWith(code) ? code + ': ' : ''}${msg}`, { cause })
}

/** Opens (creating if needed) the SQLite store at `path` (a file, or ':memory:'). */
export function sqliteStore (path: string, init: SqliteStoreInit = {}): Store & { readonly path: string } {
  const opts = storeOptions(init)
  const file = path === ':memory:' ? path : resolve(path)
  let db: Database.Database
  try {
    if (file !== ':memory:') {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
      // stored envelopes are private: owner-only (SQLite gives -wal/-shm the same mode)
      closeSync(openSync(file, 'a', 0o600))
    }
    db = new Database(file)
  } catch (cause) {
    throw openError(file, cause)
  }
  try {
    db.pragma('busy_timeout = 1000')
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${init.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.exec('BEGIN IMMEDIATE; COMMIT') // takes the exclusive lock now, not at the first write
    const version = db.prepare('PRAGMA user_version').pluck().get() as number
    if (version > SCHEMA_VERSION) {
      throw new AgentMeshError(ErrorCode.DataCorrupt,
        `${file} was written by a newer AgentMesh (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade AgentMesh`)
    }
    db.exec(SCHEMA)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('relay_id', randomUUID())
  } catch (cause) {
    try { db.close() } catch {}
    if (cause instanceof AgentMeshError) throw cause
    throw openError(file, cause)
  }

  const relayId = db.prepare("SELECT value FROM meta WHERE key = 'relay_id'").pluck().get() as string
  const q = {
    agentGet: db.prepare('SELECT amid, name, registered_at, last_seen_at FROM agents WHERE amid = ?'),
    agentInsert: db.prepare('INSERT OR IGNORE INTO agents (amid, name, registered_at, last_seen_at) VALUES (?, ?, ?, ?)'),
    agentTouch: db.prepare('UPDATE agents SET last_seen_at = ?, name = coalesce(?, name) WHERE amid = ?'),
    inboxGet: db.prepare('SELECT cursor, last_seq, pending FROM inboxes WHERE recipient = ?'),
    inboxPut: db.prepare('INSERT INTO inboxes (recipient, cursor, last_seq, pending) VALUES (?, ?, ?, ?) ON CONFLICT (recipient) DO UPDATE SET cursor = excluded.cursor, last_seq = excluded.last_seq, pending = excluded.pending'),
    dedupeGet: db.prepare('SELECT seq FROM dedupe WHERE sender = ? AND id = ?').pluck(),
    dedupePut: db.prepare('INSERT INTO dedupe (sender, id, seq, expires_at) VALUES (?, ?, ?, ?)'),
    msgPut: db.prepare('INSERT INTO messages (recipient, seq, sender, id, envelope, received_at) VALUES (?, ?, ?, ?, ?, ?)'),
    msgAck: db.prepare('DELETE FROM messages WHERE recipient = ? AND seq <= ?'),
    msgRead: db.prepare('SELECT seq, sender, id, envelope, received_at FROM messages WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?'),
    pruneMsgs: db.prepare('SELECT recipient, count(*) AS n FROM messages WHERE received_at <= ? GROUP BY recipient'),
    pruneMsgsDel: db.prepare('DELETE FROM messages WHERE received_at <= ?'),
    pruneDedupe: db.prepare('DELETE FROM dedupe WHERE expires_at <= ?'),
    pendingDec: db.prepare('UPDATE inboxes SET pending = max(0, pending - ?) WHERE recipient = ?'),
    countAgents: db.prepare('SELECT count(*) FROM agents').pluck(),
    sumPending: db.prepare('SELECT coalesce(sum(pending), 0) FROM inboxes').pluck(),
    profilePut: db.prepare('INSERT INTO profiles (amid, profile, search, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (amid) DO UPDATE SET profile = excluded.profile, search = excluded.search, updated_at = excluded.updated_at'),
    profileGet: db.prepare('SELECT profile FROM profiles WHERE amid = ?').pluck(),
    // a coarse SQL filter on the search text; profileMatches() decides exactly
    profileSearch: db.prepare("SELECT profile FROM profiles WHERE search LIKE ? ESCAPE '\\' ORDER BY amid").pluck(),
    baseGet: db.prepare('SELECT base FROM prekey_bases WHERE amid = ?').pluck(),
    basePut: db.prepare('INSERT INTO prekey_bases (amid, base) VALUES (?, ?) ON CONFLICT (amid) DO UPDATE SET base = excluded.base'),
    otkPut: db.prepare('INSERT OR IGNORE INTO one_time_prekeys (amid, id, key) VALUES (?, ?, ?)'),
    otkFirst: db.prepare('SELECT id, key FROM one_time_prekeys WHERE amid = ? ORDER BY id LIMIT 1'),
    otkDelete: db.prepare('DELETE FROM one_time_prekeys WHERE amid = ? AND id = ?'),
    otkClear: db.prepare('DELETE FROM one_time_prekeys WHERE amid = ?'),
    otkCount: db.prepare('SELECT count(*) FROM one_time_prekeys WHERE amid = ?').pluck(),
    certPut: db.prepare('INSERT INTO certificates (amid, record, published_at) VALUES (?, ?, ?) ON CONFLICT (amid) DO UPDATE SET record = excluded.record, published_at = excluded.published_at'),
    certGet: db.prepare('SELECT record FROM certificates WHERE amid = ?').pluck(),
    caPut: db.prepare('INSERT OR IGNORE INTO ca_certificates (key, subject, pem, added_at) VALUES (?, ?, ?, ?)'),
    caFind: db.prepare('SELECT key, subject, pem, added_at FROM ca_certificates WHERE subject = ? ORDER BY key'),
    crlGet: db.prepare('SELECT * FROM crls WHERE issuer_key = ?'),
    crlPut: db.prepare('INSERT INTO crls (issuer_key, issuer, this_update, next_update, revoked_count, pem, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (issuer_key) DO UPDATE SET issuer = excluded.issuer, this_update = excluded.this_update, next_update = excluded.next_update, revoked_count = excluded.revoked_count, pem = excluded.pem, stored_at = excluded.stored_at'),
    crlList: db.prepare('SELECT * FROM crls'),
    fbGet: db.prepare('SELECT * FROM feedback WHERE rater = ? AND subject = ?'),
    fbPut: db.prepare('INSERT INTO feedback (rater, subject, score, comment, interaction, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rater, subject) DO UPDATE SET score = excluded.score, comment = excluded.comment, interaction = excluded.interaction, at = excluded.at'),
    fbFor: db.prepare('SELECT * FROM feedback WHERE subject = ? ORDER BY rater'),
    fbBy: db.prepare('SELECT * FROM feedback WHERE rater = ? ORDER BY subject'),
    pointPut: db.prepare('INSERT INTO score_points (subject, at, score) VALUES (?, ?, ?)'),
    // the newest point before `since` is the score in effect at `since`: it stays
    pointLastBefore: db.prepare('SELECT max(id) FROM score_points WHERE subject = ? AND at < ?').pluck(),
    pointDropOld: db.prepare('DELETE FROM score_points WHERE subject = ? AND at < ? AND id < ?'),
    pointDropBeyond: db.prepare('DELETE FROM score_points WHERE subject = ? AND id <= (SELECT id FROM score_points WHERE subject = ? ORDER BY id DESC LIMIT 1 OFFSET ?)'),
    pointList: db.prepare('SELECT at, score FROM score_points WHERE subject = ? AND (at >= ? OR id = ?) ORDER BY id'),
    flagPut: db.prepare('INSERT INTO reputation_flags (subject, flag) VALUES (?, ?)'),
    flagDropBeyond: db.prepare('DELETE FROM reputation_flags WHERE subject = ? AND id <= (SELECT id FROM reputation_flags WHERE subject = ? ORDER BY id DESC LIMIT 1 OFFSET ?)'),
    flagList: db.prepare('SELECT flag FROM reputation_flags WHERE subject = ? ORDER BY id DESC').pluck(),
  }

  interface FeedbackRow { rater: string, subject: string, score: number, comment: string | null, interaction: string | null, at: number }
  const feedbackOf = (r: FeedbackRow): FeedbackRecord => ({
    rater: r.rater,
    subject: r.subject,
    score: r.score,
    ...(r.comment === null ? {} : { comment: r.comment }),
    ...(r.interaction === null ? {} : { interaction: r.interaction }),
    at: r.at,
  })
  const putFeedbackTx = db.transaction((f: FeedbackRecord): { previous?: FeedbackRecord } => {
    const row = q.fbGet.get(f.rater, f.subject) as FeedbackRow | undefined
    q.fbPut.run(f.rater, f.subject, f.score, f.comment ?? null, f.interaction ?? null, f.at)
    return row === undefined ? {} : { previous: feedbackOf(row) }
  })
  const addPointTx = db.transaction((subject: string, p: ScorePoint, keep: { since: number, max: number }) => {
    q.pointPut.run(subject, p.at, p.score)
    const last = q.pointLastBefore.get(subject, keep.since) as number | null
    if (last !== null) q.pointDropOld.run(subject, keep.since, last)
    q.pointDropBeyond.run(subject, subject, keep.max)
  })
  const addFlagTx = db.transaction((subject: string, flag: ReputationFlag, max: number) => {
    q.flagPut.run(subject, JSON.stringify(flag))
    q.flagDropBeyond.run(subject, subject, max)
  })

  interface CrlRow { issuer_key: string, issuer: string, this_update: number, next_update: number | null, revoked_count: number, pem: string, stored_at: number }
  const crlOf = (r: CrlRow): CrlRecord => ({
    issuerKey: r.issuer_key,
    issuer: r.issuer,
    thisUpdate: r.this_update,
    ...(r.next_update === null ? {} : { nextUpdate: r.next_update }),
    revokedCount: r.revoked_count,
    pem: r.pem,
    storedAt: r.stored_at,
  })
  // compare and replace in one transaction: of two concurrent uploads the newer CRL always stays
  const putCrlTx = db.transaction((crl: CrlRecord): PutCrlResult => {
    const row = q.crlGet.get(crl.issuerKey) as CrlRow | undefined
    const r = crlPutResult(row === undefined ? undefined : crlOf(row), crl)
    if (r.status === 'stored') q.crlPut.run(crl.issuerKey, crl.issuer, crl.thisUpdate, crl.nextUpdate ?? null, crl.revokedCount, crl.pem, crl.storedAt)
    return r
  })

  const putPrekeysTx = db.transaction((amid: string, up: PrekeyUpload): number => {
    if (up.base !== undefined) q.basePut.run(amid, JSON.stringify(up.base))
    if (up.replaceOneTime === true) q.otkClear.run(amid)
    for (const k of up.oneTime) q.otkPut.run(amid, k.id, k.key)
    return q.otkCount.get(amid) as number
  })
  // one transaction: a one-time prekey is read and deleted atomically, never handed out twice
  const takeBundleTx = db.transaction((amid: string): TakenBundle | undefined => {
    const base = q.baseGet.get(amid) as string | undefined
    if (base === undefined) return undefined
    const otk = q.otkFirst.get(amid) as OneTimePrekey | undefined
    if (otk === undefined) return { base: JSON.parse(base) as Record<string, unknown> }
    q.otkDelete.run(amid, otk.id)
    return { base: JSON.parse(base) as Record<string, unknown>, oneTime: { id: otk.id, key: otk.key } }
  })
  const likePattern = (text: string | undefined): string =>
    text === undefined ? '%' : `%${text.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`

  interface Box { cursor: number, last_seq: number, pending: number }
  const getBox = (touched: Map<string, Box>, r: string): Box => {
    let b = touched.get(r)
    if (b === undefined) {
      b = (q.inboxGet.get(r) as Box | undefined) ?? { cursor: 0, last_seq: 0, pending: 0 }
      touched.set(r, b)
    }
    return b
  }

  const commitTx = db.transaction((appends: readonly AppendItem[], acks: readonly CursorAck[]): AppendResult[] => {
    const touched = new Map<string, Box>()
    const out: AppendResult[] = []
    for (const m of appends) {
      const dup = q.dedupeGet.get(m.sender, m.id) as number | undefined
      if (dup !== undefined) { out.push({ status: 'duplicate', seq: dup }); continue }
      const box = getBox(touched, m.recipient)
      if (box.pending >= opts.maxInbox) { out.push({ status: 'inbox_full' }); continue }
      const seq = ++box.last_seq
      box.pending++
      q.msgPut.run(m.recipient, seq, m.sender, m.id, m.envelope, m.receivedAt)
      q.dedupePut.run(m.sender, m.id, seq, m.receivedAt + opts.retentionMs)
      out.push({ status: 'stored', seq })
    }
    for (const a of acks) {
      const box = getBox(touched, a.recipient)
      const seq = Math.min(a.seq, box.last_seq)
      if (seq <= box.cursor) continue
      box.cursor = seq
      const { changes } = q.msgAck.run(a.recipient, seq)
      box.pending = Math.max(0, box.pending - changes)
    }
    for (const [r, b] of touched) q.inboxPut.run(r, b.cursor, b.last_seq, b.pending)
    return out
  })

  const pruneTx = db.transaction((now: number) => {
    const cutoff = now - opts.retentionMs
    const counts = q.pruneMsgs.all(cutoff) as Array<{ recipient: string, n: number }>
    for (const c of counts) q.pendingDec.run(c.n, c.recipient)
    const messages = q.pruneMsgsDel.run(cutoff).changes
    const dedupe = q.pruneDedupe.run(now).changes
    return { messages, dedupe }
  })

  let closed = false
  const live = (): void => {
    if (closed) throw new AgentMeshError(ErrorCode.Internal, 'the store is closed')
  }

  return {
    kind: 'sqlite',
    path: file,
    async relayId () { return relayId },
    async upsertAgent (a) {
      live()
      const r = q.agentInsert.run(a.amid, a.name ?? null, a.seenAt, a.seenAt)
      if (r.changes === 0) q.agentTouch.run(a.seenAt, a.name ?? null, a.amid)
      return { created: r.changes > 0 }
    },
    async getAgent (amid): Promise<AgentRecord | undefined> {
      live()
      const r = q.agentGet.get(amid) as { amid: string, name: string | null, registered_at: number, last_seen_at: number } | undefined
      if (r === undefined) return undefined
      return { amid: r.amid, ...(r.name === null ? {} : { name: r.name }), registeredAt: r.registered_at, lastSeenAt: r.last_seen_at }
    },
    async commit (appends, acks) {
      live()
      return commitTx(appends, acks)
    },
    async read (recipient, afterSeq, limit): Promise<StoredMessage[]> {
      live()
      const rows = q.msgRead.all(recipient, afterSeq, limit) as Array<{ seq: number, sender: string, id: string, envelope: string, received_at: number }>
      return rows.map(r => ({ seq: r.seq, sender: r.sender, id: r.id, envelope: r.envelope, receivedAt: r.received_at }))
    },
    async inbox (recipient): Promise<InboxState> {
      live()
      const b = q.inboxGet.get(recipient) as Box | undefined
      return b === undefined ? { cursor: 0, lastSeq: 0, pending: 0 } : { cursor: b.cursor, lastSeq: b.last_seq, pending: b.pending }
    },
    async prune (now) { live(); return pruneTx(now) },
    async stats () {
      live()
      return { agents: q.countAgents.get() as number, pending: q.sumPending.get() as number }
    },
    async putProfile (p: AgentProfile) {
      live()
      q.profilePut.run(p.amid, JSON.stringify(p), searchText(p), p.updatedAt)
    },
    async getProfile (amid) {
      live()
      const t = q.profileGet.get(amid) as string | undefined
      return t === undefined ? undefined : JSON.parse(t) as AgentProfile
    },
    async searchProfiles (query) {
      live()
      const out: AgentProfile[] = []
      for (const t of q.profileSearch.iterate(likePattern(query.text)) as Iterable<string>) {
        const p = JSON.parse(t) as AgentProfile
        if (profileMatches(p, query)) out.push(p)
        if (out.length >= query.limit) break
      }
      return out
    },
    async putPrekeys (amid, up) { live(); return { oneTime: putPrekeysTx(amid, up) } },
    async takePrekeyBundle (amid) { live(); return takeBundleTx(amid) },
    async countOneTimePrekeys (amid) { live(); return q.otkCount.get(amid) as number },
    async putCertificate (r: CertificateRecord) { live(); q.certPut.run(r.amid, JSON.stringify(r), r.publishedAt) },
    async getCertificate (amid) {
      live()
      const t = q.certGet.get(amid) as string | undefined
      return t === undefined ? undefined : JSON.parse(t) as CertificateRecord
    },
    async putCaCertificate (ca: CaCertificateRecord) { live(); q.caPut.run(ca.key, ca.subject, ca.pem, ca.addedAt) },
    async findCaCertificates (subject) {
      live()
      const rows = q.caFind.all(subject) as Array<{ key: string, subject: string, pem: string, added_at: number }>
      return rows.map(r => ({ key: r.key, subject: r.subject, pem: r.pem, addedAt: r.added_at }))
    },
    async putCrl (crl) { live(); return putCrlTx(crl) },
    async listCrls () { live(); return (q.crlList.all() as CrlRow[]).map(crlOf).sort(compareCrls) },
    async putFeedback (f) { live(); return putFeedbackTx(f) },
    async getFeedback (rater, subject) {
      live()
      const row = q.fbGet.get(rater, subject) as FeedbackRow | undefined
      return row === undefined ? undefined : feedbackOf(row)
    },
    async listFeedbackFor (subject) { live(); return (q.fbFor.all(subject) as FeedbackRow[]).map(feedbackOf) },
    async listFeedbackBy (rater) { live(); return (q.fbBy.all(rater) as FeedbackRow[]).map(feedbackOf) },
    async addScorePoint (subject, point, keep) { live(); addPointTx(subject, point, keep) },
    async listScorePoints (subject, since) {
      live()
      const last = q.pointLastBefore.get(subject, since) as number | null
      return (q.pointList.all(subject, since, last ?? -1) as ScorePoint[]).map(r => ({ at: r.at, score: r.score }))
    },
    async addReputationFlag (subject, flag, max) { live(); addFlagTx(subject, flag, max) },
    async listReputationFlags (subject) { live(); return (q.flagList.all(subject) as string[]).map(t => JSON.parse(t) as ReputationFlag) },
    async close () {
      if (closed) return
      closed = true
      try { db.pragma('wal_checkpoint(TRUNCATE)') } catch {}
      db.close()
    },
  }
}
