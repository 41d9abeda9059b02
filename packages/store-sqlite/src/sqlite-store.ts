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
import { randomBytes, randomUUID } from 'node:crypto'
import { AgentMeshError, ErrorCode, handleSkeleton } from '@agentmesh/protocol'
import { PREKEY_SCHEMA, sqlitePrekeys } from './prekeys.ts'
import { FILE_SCHEMA, sqliteFiles } from './files.ts'
import { UPDATE_SCHEMA, sqliteUpdates } from './updates.ts'
import { HEALTH_SCHEMA, sqliteHealth } from './health.ts'
import { WEBHOOK_SCHEMA, sqliteWebhooks } from './webhooks.ts'
import { OWNER_SCHEMA, sqliteOwners } from './owners.ts'
import { CATASTROPHE_SCHEMA, sqliteCatastrophes } from './catastrophes.ts'
import { auditPruneUpTo, auditPrunedRow, batchAuditRow, chainAudit, compareCrls, crlPutResult, profileMatches, searchText, storeOptions, type AgentProfile, type CaCertificateRecord, type CertificateRecord, type CrlRecord, type FeedbackRecord, type ReputationFlag, type ScorePoint, type PutCrlResult, type AgentOnline, type AgentOnlineResult, type AgentRecord, type AppendItem, type AppendResult, type CursorAck, type RoomDelivery, type RoomFeed, type InboxState, type Store, type StoreInit, type StoredMessage, type AgentRole, type AuditInput, type AuditRecord, type HistoryEntry, type InviteRecord, type MemberRecord, type MemberRole, type RoomKind, type RoomRecord, type TaskRecord, type TaskState } from '@agentmesh/store'

/**
 * 1: relay; 2: + registry (profiles, prekeys); 3: + certificates, CA certificates, CRLs;
 * 4: + reputation (feedback, score history, flags); 5: + chat (handles, roles, rooms, members,
 * invites, room history and seqs, read markers, tasks, the audit log, settings); 6: + handles'
 * confusable skeleton (`handle_skel`, filled in for handles written before); 7: + one-time PQ
 * prekeys (prekeys.ts); 8: room fan-out on
 * read: each membership's room cursor and delivery (`members.cursor`, `members.by_cursor`; rows
 * written before start at their room's last seq, delivery 'inbox' as before), the agents whose
 * delivery is 'cursor' (`room_cursor_agents`); 9: operations (§18–§21): files (files.ts: `files`,
 * `file_shares`, `file_uploads`, `file_chunks`); system updates, their
 * acknowledgements and the agents' reported versions (`updates`, `update_acks`, `agent_versions`:
 * updates.ts); agent health (health.ts: `heartbeats`, `health_changes`); owner links (owners.ts: `owner_links`, schema 11).
 * delivery is 'cursor' (`room_cursor_agents`); 9: operations: catastrophe events (`catastrophes`,
 * catastrophes.ts) and the run marker (meta `running_since`); 10: wake webhooks (webhooks.ts:
 * `webhooks`, docs/protocol.md §26).
 * Every step is CREATE … IF NOT EXISTS (or a column added when missing), so older files upgrade in place.
 */
export const SCHEMA_VERSION = 11
export const DB_FILE = 'agentmesh.db'

export interface SqliteStoreInit extends StoreInit {
  /** `normal`: survives a process crash; `full`: survives power loss too. @default 'normal' */
  synchronous?: 'normal' | 'full'
  /**
   * Run `PRAGMA quick_check` when opening, and refuse a file it finds damaged (overwritten pages,
   * a broken b-tree) with AM_ERR_DATA_CORRUPT. It reads every page once (about a second per few
   * hundred MB on a common disk) and stops at the first problem. `agentmesh serve` sets it. @default false
   */
  quickCheck?: boolean
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
-- schema 5
CREATE TABLE IF NOT EXISTS handles (amid TEXT PRIMARY KEY, handle TEXT NOT NULL, handle_key TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS handles_key ON handles (handle_key);
CREATE TABLE IF NOT EXISTS roles (amid TEXT PRIMARY KEY, role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, topic TEXT, owner TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS rooms_kind ON rooms (kind, id);
CREATE TABLE IF NOT EXISTS members (
  room TEXT NOT NULL, amid TEXT NOT NULL, role TEXT NOT NULL, joined_at INTEGER NOT NULL,
  PRIMARY KEY (room, amid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_joined ON members (room, joined_at, amid);
CREATE INDEX IF NOT EXISTS members_amid ON members (amid, room);
CREATE TABLE IF NOT EXISTS invites (
  room TEXT NOT NULL, amid TEXT NOT NULL, invited_by TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (room, amid)) WITHOUT ROWID;
-- per room: the last room seq assigned (never reused) and how many history entries are kept
CREATE TABLE IF NOT EXISTS room_seqs (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, entries INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
  room TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL,
  envelope TEXT NOT NULL, received_at INTEGER NOT NULL, deleted_by TEXT, deleted_at INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS history_room ON history (room, seq);
CREATE INDEX IF NOT EXISTS history_received ON history (received_at);
CREATE TABLE IF NOT EXISTS read_markers (
  room TEXT NOT NULL, amid TEXT NOT NULL, up_to INTEGER NOT NULL, PRIMARY KEY (room, amid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, room TEXT, requester TEXT NOT NULL, assignee TEXT NOT NULL, state TEXT NOT NULL,
  created_at INTEGER NOT NULL, deadline INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at, id);
CREATE INDEX IF NOT EXISTS tasks_room ON tasks (room, created_at, id);
CREATE INDEX IF NOT EXISTS tasks_requester ON tasks (requester, created_at, id);
CREATE INDEX IF NOT EXISTS tasks_assignee ON tasks (assignee, created_at, id);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (deadline, id) WHERE state IN ('submitted', 'working', 'input-required', 'auth-required');
-- every field of an audit row is a column: what readAudit answers is exactly what is stored
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT,
  detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, seq);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, seq);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- schema 5, added later (a table older code leaves alone): private rooms' signed membership statements (docs/protocol.md §17.5)
CREATE TABLE IF NOT EXISTS membership (room TEXT NOT NULL, seq INTEGER NOT NULL, statement TEXT NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
`

/**
 * A history row (of the statements below) that no member reading by cursor still needs: received
 * at or before @unread, or below the first seq some member has not read (its smallest cursor + 1,
 * at least the room's last seq - @maxInbox + 1).
 */
const UNREAD_GONE = `(received_at <= @unread OR seq < coalesce((SELECT max(min(m.cursor) + 1, coalesce((SELECT last_seq FROM room_seqs s WHERE s.room = history.room), 0) - @maxInbox + 1) FROM members m WHERE m.room = history.room AND m.by_cursor = 1), 9007199254740991))`

/** Task states that are not final: overdueTasks looks at these (as the tasks_open index does). */
const OPEN_TASK_STATES = "'submitted', 'working', 'input-required', 'auth-required'"

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
  const opts = storeOptions(init, true)
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
    if (init.quickCheck === true && file !== ':memory:') {
      const found = db.prepare('PRAGMA quick_check(1)').pluck().get() as string
      if (found !== 'ok') {
        throw new AgentMeshError(ErrorCode.DataCorrupt,
          `${file} failed its integrity check (PRAGMA quick_check: ${found.slice(0, 200)}); move it aside or point --data at another directory`)
      }
    }
    db.exec(SCHEMA)
    db.exec(PREKEY_SCHEMA)
    db.exec(FILE_SCHEMA)
    db.exec(UPDATE_SCHEMA)
    db.exec(HEALTH_SCHEMA)
    db.exec(CATASTROPHE_SCHEMA)
    db.exec(WEBHOOK_SCHEMA)
    // schema 11: owner links (verified owners, §28)
    db.exec(OWNER_SCHEMA)
    // schema 6: the confusable skeleton of each handle (two agents may not hold look-alikes)
    const handleCols = db.prepare('PRAGMA table_info(handles)').all() as Array<{ name: string }>
    if (!handleCols.some(c => c.name === 'handle_skel')) {
      db.exec('ALTER TABLE handles ADD COLUMN handle_skel TEXT')
      const fill = db.prepare('UPDATE handles SET handle_skel = ? WHERE amid = ?')
      for (const r of db.prepare('SELECT amid, handle FROM handles').all() as Array<{ amid: string, handle: string }>) fill.run(handleSkeleton(r.handle), r.amid)
    }
    db.exec('CREATE INDEX IF NOT EXISTS handles_skel ON handles (handle_skel)')
    // schema 8: room cursors (fan-out on read); a membership written before keeps its inbox copies
    // (by_cursor 0) and its cursor starts at the room's last seq (what it has is in its inbox)
    const memberCols = db.prepare('PRAGMA table_info(members)').all() as Array<{ name: string }>
    if (!memberCols.some(c => c.name === 'cursor')) {
      db.exec(`ALTER TABLE members ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE members ADD COLUMN by_cursor INTEGER NOT NULL DEFAULT 0;
        UPDATE members SET cursor = coalesce((SELECT last_seq FROM room_seqs WHERE room_seqs.room = members.room), 0);`)
    }
    db.exec(`CREATE TABLE IF NOT EXISTS room_cursor_agents (amid TEXT PRIMARY KEY) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS members_inbox ON members (room, amid) WHERE by_cursor = 0;
      CREATE INDEX IF NOT EXISTS members_cursor ON members (room, cursor) WHERE by_cursor = 1;`)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('relay_id', randomUUID())
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('relay_secret', randomBytes(32).toString('base64url'))
  } catch (cause) {
    try { db.close() } catch {}
    if (cause instanceof AgentMeshError) throw cause
    throw openError(file, cause)
  }

  const relayId = db.prepare("SELECT value FROM meta WHERE key = 'relay_id'").pluck().get() as string
  const relaySecret = db.prepare("SELECT value FROM meta WHERE key = 'relay_secret'").pluck().get() as string
  const q = {
    agentGet: db.prepare('SELECT amid, name, registered_at, last_seen_at FROM agents WHERE amid = ?'),
    agentInsert: db.prepare('INSERT OR IGNORE INTO agents (amid, name, registered_at, last_seen_at) VALUES (?, ?, ?, ?)'),
    agentTouch: db.prepare('UPDATE agents SET last_seen_at = ?, name = coalesce(?, name) WHERE amid = ?'),
    inboxGet: db.prepare('SELECT cursor, last_seq, pending FROM inboxes WHERE recipient = ?'),
    inboxPut: db.prepare('INSERT INTO inboxes (recipient, cursor, last_seq, pending) VALUES (?, ?, ?, ?) ON CONFLICT (recipient) DO UPDATE SET cursor = excluded.cursor, last_seq = excluded.last_seq, pending = excluded.pending'),
    dedupeGet: db.prepare('SELECT seq FROM dedupe WHERE sender = ? AND id = ?').pluck(),
    /** the dedupe record of a new (sender, id); no change when it was seen (one statement instead of a look-up and an insert) */
    dedupeTry: db.prepare('INSERT INTO dedupe (sender, id, seq, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
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
    // ---- chat
    handleOf: db.prepare('SELECT handle FROM handles WHERE amid = ?').pluck(),
    handleHolder: db.prepare('SELECT amid FROM handles WHERE handle_key = ?').pluck(),
    handleSkelHolder: db.prepare('SELECT amid FROM handles WHERE handle_skel = ? AND amid != ? LIMIT 1').pluck(),
    handlePut: db.prepare('INSERT INTO handles (amid, handle, handle_key, handle_skel) VALUES (?, ?, ?, ?) ON CONFLICT (amid) DO UPDATE SET handle = excluded.handle, handle_key = excluded.handle_key, handle_skel = excluded.handle_skel'),
    roleGet: db.prepare('SELECT role FROM roles WHERE amid = ?').pluck(),
    rolePut: db.prepare('INSERT INTO roles (amid, role) VALUES (?, ?) ON CONFLICT (amid) DO UPDATE SET role = excluded.role'),
    roleDelete: db.prepare('DELETE FROM roles WHERE amid = ?'),
    roleList: db.prepare('SELECT amid, role FROM roles ORDER BY amid'),
    roomPut: db.prepare('INSERT OR IGNORE INTO rooms (id, kind, topic, owner, created_at) VALUES (?, ?, ?, ?, ?)'),
    roomGet: db.prepare('SELECT id, kind, topic, owner, created_at FROM rooms WHERE id = ?'),
    roomTopic: db.prepare('UPDATE rooms SET topic = ? WHERE id = ?'),
    // a new membership reads from the room's last seq, with the agent's delivery
    memberAdd: db.prepare('INSERT OR IGNORE INTO members (room, amid, role, joined_at, cursor, by_cursor) VALUES (@room, @amid, @role, @joined, coalesce((SELECT last_seq FROM room_seqs WHERE room = @room), 0), EXISTS (SELECT 1 FROM room_cursor_agents WHERE amid = @amid))'),
    memberOwner: db.prepare('INSERT INTO members (room, amid, role, joined_at, cursor, by_cursor) VALUES (@room, @amid, @role, @joined, coalesce((SELECT last_seq FROM room_seqs WHERE room = @room), 0), EXISTS (SELECT 1 FROM room_cursor_agents WHERE amid = @amid)) ON CONFLICT (room, amid) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at'),
    membersInbox: db.prepare('SELECT amid FROM members WHERE room = ? AND by_cursor = 0 ORDER BY amid').pluck(),
    membersCursor: db.prepare('SELECT amid FROM members WHERE room = ? AND by_cursor = 1').pluck(),
    memberMinCursor: db.prepare('SELECT min(cursor) FROM members WHERE room = ? AND by_cursor = 1').pluck(),
    memberCursorAck: db.prepare('UPDATE members SET cursor = ? WHERE room = ? AND amid = ? AND by_cursor = 1 AND cursor < ?'),
    agentByCursor: db.prepare('INSERT OR IGNORE INTO room_cursor_agents (amid) VALUES (?)'),
    agentByInbox: db.prepare('DELETE FROM room_cursor_agents WHERE amid = ?'),
    feedsOf: db.prepare('SELECT m.room AS room, m.cursor AS cursor, coalesce(s.last_seq, 0) AS last_seq FROM members m LEFT JOIN room_seqs s ON s.room = m.room WHERE m.amid = ? AND m.by_cursor = 1 ORDER BY m.room'),
    feedOf: db.prepare('SELECT m.room AS room, m.cursor AS cursor, coalesce(s.last_seq, 0) AS last_seq FROM members m LEFT JOIN room_seqs s ON s.room = m.room WHERE m.room = ? AND m.amid = ? AND m.by_cursor = 1'),
    toCursor: db.prepare('UPDATE members SET by_cursor = 1, cursor = coalesce((SELECT last_seq FROM room_seqs WHERE room_seqs.room = members.room), 0) WHERE amid = ? AND by_cursor = 0'),
    cursorRooms: db.prepare('SELECT room, cursor FROM members WHERE amid = ? AND by_cursor = 1 ORDER BY room'),
    toInbox: db.prepare('UPDATE members SET by_cursor = 0, cursor = coalesce((SELECT last_seq FROM room_seqs WHERE room_seqs.room = members.room), 0) WHERE amid = ? AND by_cursor = 1'),
    unreadEntries: db.prepare('SELECT seq, sender, id, envelope, received_at FROM history WHERE room = ? AND seq > ? AND deleted_at IS NULL AND sender != ? ORDER BY seq LIMIT ?'),
    memberDelete: db.prepare('DELETE FROM members WHERE room = ? AND amid = ?'),
    memberGet: db.prepare('SELECT room, amid, role, joined_at FROM members WHERE room = ? AND amid = ?'),
    memberList: db.prepare('SELECT room, amid, role, joined_at FROM members WHERE room = ? ORDER BY joined_at, amid'),
    memberCount: db.prepare('SELECT count(*) FROM members WHERE room = ?').pluck(),
    invitePut: db.prepare('INSERT INTO invites (room, amid, invited_by, at) VALUES (?, ?, ?, ?) ON CONFLICT (room, amid) DO UPDATE SET invited_by = excluded.invited_by, at = excluded.at'),
    inviteGet: db.prepare('SELECT room, amid, invited_by, at FROM invites WHERE room = ? AND amid = ?'),
    membershipLast: db.prepare('SELECT MAX(seq) FROM membership WHERE room = ?').pluck(),
    membershipPut: db.prepare('INSERT INTO membership (room, seq, statement) VALUES (?, ?, ?)'),
    membershipList: db.prepare('SELECT statement FROM membership WHERE room = ? ORDER BY seq').pluck(),
    inviteDelete: db.prepare('DELETE FROM invites WHERE room = ? AND amid = ?'),
    roomSeqGet: db.prepare('SELECT last_seq, entries FROM room_seqs WHERE room = ?'),
    roomSeqPut: db.prepare('INSERT INTO room_seqs (room, last_seq, entries) VALUES (?, ?, ?) ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq, entries = excluded.entries'),
    roomSeqLast: db.prepare('SELECT last_seq FROM room_seqs WHERE room = ?').pluck(),
    roomEntriesSet: db.prepare('UPDATE room_seqs SET entries = ? WHERE room = ?'),
    roomEntriesDec: db.prepare('UPDATE room_seqs SET entries = max(0, entries - ?) WHERE room = ?'),
    roomsOver: db.prepare('SELECT room, entries FROM room_seqs WHERE entries > ?'),
    histPut: db.prepare('INSERT INTO history (room, seq, sender, id, envelope, received_at) VALUES (?, ?, ?, ?, ?, ?)'),
    histGet: db.prepare('SELECT seq, sender, id, envelope, received_at, deleted_by, deleted_at FROM history WHERE room = ? AND seq = ?'),
    histAfter: db.prepare('SELECT seq, sender, id, envelope, received_at, deleted_by, deleted_at FROM history WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?'),
    histBefore: db.prepare('SELECT seq, sender, id, envelope, received_at, deleted_by, deleted_at FROM history WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
    histNewest: db.prepare('SELECT seq, sender, id, envelope, received_at, deleted_by, deleted_at FROM history WHERE room = ? ORDER BY seq DESC LIMIT ?'),
    histDelete: db.prepare("UPDATE history SET envelope = '', deleted_by = ?, deleted_at = ? WHERE room = ? AND seq = ? AND deleted_at IS NULL"),
    // the oldest `n` entries of a room below a seq (the first one a member has not read)
    histDropOldest: db.prepare('DELETE FROM history WHERE rowid IN (SELECT rowid FROM history WHERE room = ? AND seq < ? ORDER BY seq LIMIT ?)'),
    // entries past retention (olderThan), but not those a member reading by cursor has not read
    // (above the room's smallest cursor, among its newest maxInbox) unless past unreadOlderThan
    histOld: db.prepare(`SELECT room, count(*) AS n FROM history INDEXED BY history_received WHERE received_at <= @older AND ${UNREAD_GONE} GROUP BY room`),
    histOldDelete: db.prepare(`DELETE FROM history WHERE received_at <= @older AND ${UNREAD_GONE}`),
    markerRaise: db.prepare('INSERT INTO read_markers (room, amid, up_to) VALUES (?, ?, max(?, 0)) ON CONFLICT (room, amid) DO UPDATE SET up_to = max(up_to, excluded.up_to) RETURNING up_to').pluck(),
    markerList: db.prepare('SELECT amid, up_to FROM read_markers WHERE room = ? ORDER BY amid'),
    taskPut: db.prepare('INSERT OR IGNORE INTO tasks (id, room, requester, assignee, state, created_at, deadline, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    taskGet: db.prepare('SELECT record FROM tasks WHERE id = ?').pluck(),
    taskCreated: db.prepare('SELECT created_at FROM tasks WHERE id = ?').pluck(),
    taskUpdate: db.prepare('UPDATE tasks SET room = ?, requester = ?, assignee = ?, state = ?, created_at = ?, deadline = ?, record = ? WHERE id = ? AND state = ?'),
    taskOverdue: db.prepare(`SELECT record FROM tasks WHERE state IN (${OPEN_TASK_STATES}) AND deadline <= ? ORDER BY deadline, id LIMIT ?`).pluck(),
    auditPut: db.prepare('INSERT INTO audit (seq, at, actor, action, target, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    auditLast: db.prepare('SELECT seq, at, actor, action, target, detail, prev, hash FROM audit ORDER BY seq DESC LIMIT 1'),
    auditFirst: db.prepare('SELECT seq FROM audit ORDER BY seq LIMIT 1').pluck(),
    // rows are appended in time order: the scan stops at the first row that stays
    auditFirstNewer: db.prepare('SELECT seq FROM audit WHERE at > ? ORDER BY seq LIMIT 1').pluck(),
    auditDropUpTo: db.prepare('DELETE FROM audit WHERE seq <= ?'),
    settingsAll: db.prepare('SELECT key, value FROM settings ORDER BY key'),
    settingPut: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    settingDelete: db.prepare('DELETE FROM settings WHERE key = ?'),
  }
  /** Statements whose text depends on the filters given (listRooms, listTasks, readAudit, listAgents), prepared once per shape. */
  const shaped = new Map<string, Database.Statement>()
  const prepared = (sql: string): Database.Statement => {
    let st = shaped.get(sql)
    if (st === undefined) { st = db.prepare(sql); shaped.set(sql, st) }
    return st
  }
  const limitOf = (n: number): number => Math.max(0, Math.trunc(n))

  interface FeedbackRow { rater: string, subject: string, score: number, comment: string | null, interaction: string | null, at: number }
  const feedbackOf = (r: FeedbackRow): FeedbackRecord => ({
    rater: r.rater,
    subject: r.subject,
    score: r.score,
    ...(r.comment === null ? {} : { comment: r.comment }),
    ...(r.interaction === null ? {} : { interaction: r.interaction }),
    at: r.at,
  })
  /** a statement goes in as the next seq only (the chain has no gaps) */
  const appendMembershipTx = db.transaction((room: string, seq: number, statement: string): boolean => {
    const last = q.membershipLast.get(room) as number | null
    if (seq !== (last === null ? 0 : last + 1)) return false
    q.membershipPut.run(room, seq, statement)
    return true
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

  /** Appends a copy to an inbox (inside a transaction); undefined when the inbox is full. */
  const toInbox = (touched: Map<string, Box>, r: string, m: { sender: string, id: string, envelope: string, receivedAt: number }): number | undefined => {
    const box = getBox(touched, r)
    if (box.pending >= opts.maxInbox) return undefined // a full inbox misses the copy: it is in the history
    const s = ++box.last_seq
    box.pending++
    q.msgPut.run(r, s, m.sender, m.id, m.envelope, m.receivedAt)
    return s
  }

  interface FeedRow { room: string, cursor: number, last_seq: number }
  const feedOf = (r: FeedRow): RoomFeed => ({ room: r.room, cursor: r.cursor, lastSeq: r.last_seq })
  const setRoomDeliveryTx = db.transaction((amid: string, delivery: RoomDelivery): RoomFeed[] => {
    if (delivery === 'cursor') q.agentByCursor.run(amid)
    else q.agentByInbox.run(amid)
    if (delivery === 'cursor') {
      q.toCursor.run(amid)
      return (q.feedsOf.all(amid) as FeedRow[]).map(feedOf)
    }
    // what it has not read yet goes to its inbox, as copies would have
    const touched = new Map<string, Box>()
    for (const r of q.cursorRooms.all(amid) as Array<{ room: string, cursor: number }>) {
      // read first (a statement being iterated cannot be written under), at most what the inbox takes
      const room = Math.max(0, opts.maxInbox - getBox(touched, amid).pending)
      for (const e of q.unreadEntries.all(r.room, r.cursor, amid, room) as Array<{ seq: number, sender: string, id: string, envelope: string, received_at: number }>) {
        toInbox(touched, amid, { sender: e.sender, id: e.id, envelope: e.envelope, receivedAt: e.received_at })
      }
    }
    for (const [r, b] of touched) q.inboxPut.run(r, b.cursor, b.last_seq, b.pending)
    q.toInbox.run(amid)
    return []
  })

  interface RoomSeq { last_seq: number, entries: number }
  const getRoomSeq = (touched: Map<string, RoomSeq>, room: string): RoomSeq => {
    let r = touched.get(room)
    if (r === undefined) {
      r = (q.roomSeqGet.get(room) as RoomSeq | undefined) ?? { last_seq: 0, entries: 0 }
      touched.set(room, r)
    }
    return r
  }

  interface AuditRow { seq: number, at: number, actor: string, action: string, target: string | null, detail: string, prev: string, hash: string }
  const auditOf = (r: AuditRow): AuditRecord => {
    let detail: Record<string, unknown>
    // exactly what is stored: text that is no longer JSON is handed on as it is (the chain check then fails on it)
    try { detail = JSON.parse(r.detail) as Record<string, unknown> } catch { detail = r.detail as unknown as Record<string, unknown> }
    return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, ...(r.target === null ? {} : { target: r.target }), detail, prev: r.prev, hash: r.hash }
  }
  // The last audit row's place in the chain: read at open, then kept here (the file is ours alone,
  // locked exclusively). A transaction that fails puts back the value it started with.
  let auditTail: { seq: number, hash: string } | undefined = (() => {
    const r = q.auditLast.get() as AuditRow | undefined
    return r === undefined ? undefined : { seq: r.seq, hash: r.hash }
  })()
  /** Chains and inserts audit rows (inside a transaction); detail is kept as its JSON text. */
  const insertAudit = (rows: readonly AuditInput[]): AuditRecord[] => {
    if (rows.length === 0) return []
    const texts: string[] = []
    const inputs = rows.map((r): AuditInput => {
      const text = JSON.stringify(r.detail ?? {})
      texts.push(text)
      // the record answered is the one readAudit will read back
      return { at: r.at, actor: r.actor, action: r.action, ...(r.target === undefined ? {} : { target: r.target }), detail: JSON.parse(text) as Record<string, unknown> }
    })
    const recs = chainAudit(auditTail, inputs)
    recs.forEach((r, i) => { q.auditPut.run(r.seq, r.at, r.actor, r.action, r.target ?? null, texts[i], r.prev, r.hash) })
    const last = recs[recs.length - 1]!
    auditTail = { seq: last.seq, hash: last.hash }
    return recs
  }
  /** Wraps a transaction that may append audit rows: when it fails, the cached chain tail is put back. */
  const keepingAuditTail = <A extends unknown[], R>(tx: (...args: A) => R) => (...args: A): R => {
    const saved = auditTail
    try {
      return tx(...args)
    } catch (err) {
      auditTail = saved
      throw err
    }
  }

  const commitTx = keepingAuditTail(db.transaction((appends: readonly AppendItem[], acks: readonly CursorAck[], audit: readonly AuditInput[] | undefined): AppendResult[] => {
    const touched = new Map<string, Box>()
    let rooms: Map<string, RoomSeq> | undefined
    /** per room: its members whose delivery is 'inbox' */
    let inboxMembers: Map<string, string[]> | undefined
    /** per room (with a fan-out): its members whose delivery is 'cursor' */
    let cursorMembers: Map<string, Set<string>> | undefined
    const out: AppendResult[] = []
    for (const m of appends) {
      if (m.room !== undefined) {
        // a room message: once in the history (the room seq); members reading by cursor read it
        // there, the fan-out inboxes and the members whose delivery is 'inbox' get a copy
        rooms ??= new Map()
        const rs = getRoomSeq(rooms, m.room)
        const seq = rs.last_seq + 1
        if (q.dedupeTry.run(m.sender, m.id, seq, m.receivedAt + opts.retentionMs).changes === 0) {
          out.push({ status: 'duplicate', seq: q.dedupeGet.get(m.sender, m.id) as number })
          continue
        }
        rs.last_seq = seq
        rs.entries++
        q.histPut.run(m.room, seq, m.sender, m.id, m.envelope, m.receivedAt)
        const deliveries: Array<{ recipient: string, seq: number }> = []
        const copied = new Set<string>()
        const copy = (r: string): void => {
          if (copied.has(r)) return
          copied.add(r)
          const s = toInbox(touched, r, m)
          if (s !== undefined) deliveries.push({ recipient: r, seq: s })
        }
        if (m.fanout !== undefined && m.fanout.length > 0) {
          // a fan-out inbox of an agent reading the room by cursor gets no copy: it reads the log
          cursorMembers ??= new Map()
          let readers = cursorMembers.get(m.room)
          if (readers === undefined) { readers = new Set(q.membersCursor.all(m.room) as string[]); cursorMembers.set(m.room, readers) }
          for (const r of m.fanout) if (!readers.has(r)) copy(r)
        }
        inboxMembers ??= new Map()
        let list = inboxMembers.get(m.room)
        if (list === undefined) { list = q.membersInbox.all(m.room) as string[]; inboxMembers.set(m.room, list) }
        for (const r of list) if (r !== m.sender) copy(r)
        out.push({ status: 'stored', seq, deliveries })
        continue
      }
      const box = getBox(touched, m.recipient)
      if (box.pending >= opts.maxInbox) {
        const dup = q.dedupeGet.get(m.sender, m.id) as number | undefined
        out.push(dup !== undefined ? { status: 'duplicate', seq: dup } : { status: 'inbox_full' })
        continue
      }
      const seq = box.last_seq + 1
      if (q.dedupeTry.run(m.sender, m.id, seq, m.receivedAt + opts.retentionMs).changes === 0) {
        out.push({ status: 'duplicate', seq: q.dedupeGet.get(m.sender, m.id) as number })
        continue
      }
      box.last_seq = seq
      box.pending++
      q.msgPut.run(m.recipient, seq, m.sender, m.id, m.envelope, m.receivedAt)
      out.push({ status: 'stored', seq })
    }
    for (const a of acks) {
      if (a.room !== undefined) {
        const last = rooms?.get(a.room)?.last_seq ?? (q.roomSeqLast.get(a.room) as number | undefined) ?? 0
        const seq = Math.min(a.seq, last)
        q.memberCursorAck.run(seq, a.room, a.recipient, seq)
        continue
      }
      const box = getBox(touched, a.recipient)
      const seq = Math.min(a.seq, box.last_seq)
      if (seq <= box.cursor) continue
      box.cursor = seq
      const { changes } = q.msgAck.run(a.recipient, seq)
      box.pending = Math.max(0, box.pending - changes)
    }
    for (const [r, b] of touched) q.inboxPut.run(r, b.cursor, b.last_seq, b.pending)
    if (rooms !== undefined) {
      for (const [room, rs] of rooms) {
        if (rs.entries > opts.historyMaxPerRoom) {
          // none a member reading by cursor has not read (within the newest maxInbox)
          const min = q.memberMinCursor.get(room) as number | null
          const guard = min === null ? Number.MAX_SAFE_INTEGER : Math.max(min + 1, rs.last_seq - opts.maxInbox + 1)
          rs.entries -= q.histDropOldest.run(room, guard, rs.entries - opts.historyMaxPerRoom).changes
        }
        q.roomSeqPut.run(room, rs.last_seq, rs.entries)
      }
    }
    const rows: AuditInput[] = []
    const batch = batchAuditRow(appends, out)
    if (batch !== undefined) rows.push(batch)
    out.forEach((r, i) => { const a = appends[i]!.audit; if (r.status === 'stored' && a !== undefined) rows.push(a) })
    if (audit !== undefined) rows.push(...audit)
    if (rows.length > 0) insertAudit(rows)
    return out
  }))
  const appendAuditTx = keepingAuditTail(db.transaction((rows: readonly AuditInput[]): AuditRecord[] => insertAudit(rows)))
  const pruneAuditTx = keepingAuditTail(db.transaction((olderThan: number, keep: number, note: { at: number, actor: string }): number => {
    if (auditTail === undefined) return 0
    const first = q.auditFirst.get() as number
    const newer = q.auditFirstNewer.get(olderThan) as number | undefined
    const upTo = auditPruneUpTo(auditTail.seq, newer, keep)
    if (upTo < first) return 0
    const rows = q.auditDropUpTo.run(upTo).changes
    insertAudit([auditPrunedRow(note, rows, upTo)])
    return rows
  }))

  interface HistoryRow { seq: number, sender: string, id: string, envelope: string, received_at: number, deleted_by: string | null, deleted_at: number | null }
  const historyOf = (r: HistoryRow): HistoryEntry => ({
    seq: r.seq,
    sender: r.sender,
    id: r.id,
    envelope: r.envelope,
    receivedAt: r.received_at,
    ...(r.deleted_at === null ? {} : { deleted: { by: r.deleted_by ?? '', at: r.deleted_at } }),
  })
  const pruneHistoryTx = db.transaction((olderThan: number, maxPerRoom: number, unreadOlderThan: number): number => {
    const params = { older: olderThan, unread: unreadOlderThan, maxInbox: opts.maxInbox }
    for (const c of q.histOld.all(params) as Array<{ room: string, n: number }>) q.roomEntriesDec.run(c.n, c.room)
    let removed = q.histOldDelete.run(params).changes
    const keep = limitOf(maxPerRoom)
    for (const r of q.roomsOver.all(keep) as Array<{ room: string, entries: number }>) {
      const min = q.memberMinCursor.get(r.room) as number | null
      const last = (q.roomSeqLast.get(r.room) as number | undefined) ?? 0
      const guard = min === null ? Number.MAX_SAFE_INTEGER : Math.max(min + 1, last - opts.maxInbox + 1)
      const n = q.histDropOldest.run(r.room, guard, r.entries - keep).changes
      removed += n
      q.roomEntriesSet.run(r.entries - n, r.room)
    }
    return removed
  })

  const setHandleTx = db.transaction((amid: string, handle: string): { status: 'set', previous?: string } | { status: 'taken', by: string } => {
    const key = handle.toLowerCase()
    const holder = q.handleHolder.get(key) as string | undefined
    if (holder !== undefined && holder !== amid) return { status: 'taken', by: holder }
    const skel = handleSkeleton(handle)
    const lookalike = q.handleSkelHolder.get(skel, amid) as string | undefined
    if (lookalike !== undefined) return { status: 'taken', by: lookalike }
    const previous = q.handleOf.get(amid) as string | undefined
    q.handlePut.run(amid, handle, key, skel)
    return previous === undefined ? { status: 'set' } : { status: 'set', previous }
  })

  interface RoomRow { id: string, kind: RoomKind, topic: string | null, owner: string | null, created_at: number }
  const roomOf = (r: RoomRow): RoomRecord => ({
    id: r.id,
    kind: r.kind,
    ...(r.topic === null ? {} : { topic: r.topic }),
    ...(r.owner === null ? {} : { owner: r.owner }),
    createdAt: r.created_at,
  })
  const createRoomTx = db.transaction((room: RoomRecord): boolean => {
    if (q.roomPut.run(room.id, room.kind, room.topic ?? null, room.owner ?? null, room.createdAt).changes === 0) return false
    if (room.owner !== undefined) q.memberOwner.run({ room: room.id, amid: room.owner, role: 'owner', joined: room.createdAt })
    return true
  })
  interface MemberRow { room: string, amid: string, role: MemberRole, joined_at: number }
  const memberOf = (r: MemberRow): MemberRecord => ({ room: r.room, amid: r.amid, role: r.role, joinedAt: r.joined_at })
  const addMemberTx = db.transaction((m: MemberRecord): boolean => {
    if (q.memberAdd.run({ room: m.room, amid: m.amid, role: m.role, joined: m.joinedAt }).changes === 0) return false
    q.inviteDelete.run(m.room, m.amid)
    return true
  })

  const upsertAgentRow = (a: { amid: string, name?: string, seenAt: number }): boolean => {
    const r = q.agentInsert.run(a.amid, a.name ?? null, a.seenAt, a.seenAt)
    if (r.changes === 0) q.agentTouch.run(a.seenAt, a.name ?? null, a.amid)
    return r.changes > 0
  }

  // one transaction for the authentications of a turn: one WAL commit instead of three per agent
  const agentsOnlineTx = db.transaction((batch: readonly AgentOnline[]): AgentOnlineResult[] => batch.map((a) => {
    const created = upsertAgentRow(a)
    if (a.join !== undefined) addMemberTx(a.join)
    return { created, feeds: setRoomDeliveryTx(a.amid, a.delivery) }
  }))

  const taskColumns = (t: TaskRecord): [string | null, string, string, TaskState, number, number, string] =>
    [t.room ?? null, t.requester, t.assignee, t.state, t.createdAt, t.deadline, JSON.stringify(t)]

  const putSettingsTx = db.transaction((patch: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) q.settingDelete.run(k)
      else if (v !== undefined) q.settingPut.run(k, JSON.stringify(v))
    }
  })
  const readSettings = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    for (const r of q.settingsAll.all() as Array<{ key: string, value: string }>) out[r.key] = JSON.parse(r.value)
    return out
  }

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
      return { created: upsertAgentRow(a) }
    },
    async agentsOnline (batch) { live(); return agentsOnlineTx(batch) },
    async getAgent (amid): Promise<AgentRecord | undefined> {
      live()
      const r = q.agentGet.get(amid) as { amid: string, name: string | null, registered_at: number, last_seen_at: number } | undefined
      if (r === undefined) return undefined
      return { amid: r.amid, ...(r.name === null ? {} : { name: r.name }), registeredAt: r.registered_at, lastSeenAt: r.last_seen_at }
    },
    async commit (appends, acks, audit) {
      live()
      return commitTx(appends, acks, audit)
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
    async setRoomDelivery (amid, delivery) { live(); return setRoomDeliveryTx(amid, delivery) },
    async roomFeeds (amid) { live(); return (q.feedsOf.all(amid) as FeedRow[]).map(feedOf) },
    async roomFeed (room, amid) {
      live()
      const r = q.feedOf.get(room, amid) as FeedRow | undefined
      return r === undefined ? undefined : feedOf(r)
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
    ...sqlitePrekeys(db, live),
    ...sqliteFiles(db, live),
    ...sqliteUpdates(db, live),
    ...sqliteHealth(db, live),
    ...sqliteWebhooks(db, live),
    ...sqliteOwners(db, live),
    ...sqliteCatastrophes(db, file, live),
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
    // ---- chat
    async relaySecret () { live(); return relaySecret },
    async listAgents (query) {
      live()
      const sql = `SELECT amid FROM agents${query.after === undefined ? '' : ' WHERE amid > @after'} ORDER BY amid LIMIT @limit`
      return prepared(sql).pluck().all({ ...(query.after === undefined ? {} : { after: query.after }), limit: limitOf(query.limit) }) as string[]
    },
    async setHandle (amid, handle) { live(); return setHandleTx(amid, handle) },
    async handleOf (amid) { live(); return q.handleOf.get(amid) as string | undefined },
    async resolveHandle (handle) { live(); return q.handleHolder.get(handle.toLowerCase()) as string | undefined },
    async setRole (amid, role) {
      live()
      if (role === 'worker') q.roleDelete.run(amid)
      else q.rolePut.run(amid, role)
    },
    async roleOf (amid) { live(); return (q.roleGet.get(amid) as AgentRole | undefined) ?? 'worker' },
    async listRoles () { live(); return (q.roleList.all() as Array<{ amid: string, role: AgentRole }>).map(r => ({ amid: r.amid, role: r.role })) },
    async createRoom (room) { live(); return createRoomTx(room) },
    async getRoom (id) {
      live()
      const r = q.roomGet.get(id) as RoomRow | undefined
      return r === undefined ? undefined : roomOf(r)
    },
    async setTopic (id, topic) { live(); return q.roomTopic.run(topic ?? null, id).changes > 0 },
    async listRooms (query) {
      live()
      const cols = 'id, kind, topic, owner, created_at'
      const byKind = `SELECT ${cols} FROM rooms WHERE kind IN (SELECT value FROM json_each(@kinds))${query.after === undefined ? '' : ' AND id > @after'} ORDER BY id LIMIT @limit`
      const byMember = `SELECT r.id AS id, r.kind AS kind, r.topic AS topic, r.owner AS owner, r.created_at AS created_at FROM members m JOIN rooms r ON r.id = m.room WHERE m.amid = @member${query.after === undefined ? '' : ' AND m.room > @after'} ORDER BY m.room LIMIT @limit`
      let sql: string
      // either matches: the first `limit` of each, merged
      if (query.kinds !== undefined && query.member !== undefined) sql = `SELECT * FROM (${byKind}) UNION SELECT * FROM (${byMember}) ORDER BY id LIMIT @limit`
      else if (query.kinds !== undefined) sql = byKind
      else if (query.member !== undefined) sql = byMember
      else sql = `SELECT ${cols} FROM rooms${query.after === undefined ? '' : ' WHERE id > @after'} ORDER BY id LIMIT @limit`
      const rows = prepared(sql).all({
        ...(query.kinds === undefined ? {} : { kinds: JSON.stringify(query.kinds) }),
        ...(query.member === undefined ? {} : { member: query.member }),
        ...(query.after === undefined ? {} : { after: query.after }),
        limit: limitOf(query.limit),
      }) as RoomRow[]
      return rows.map(roomOf)
    },
    async addMember (m) { live(); return addMemberTx(m) },
    async removeMember (room, amid) { live(); return q.memberDelete.run(room, amid).changes > 0 },
    async getMember (room, amid) {
      live()
      const r = q.memberGet.get(room, amid) as MemberRow | undefined
      return r === undefined ? undefined : memberOf(r)
    },
    async listMembers (room) { live(); return (q.memberList.all(room) as MemberRow[]).map(memberOf) },
    async countMembers (room) { live(); return q.memberCount.get(room) as number },
    async putInvite (i: InviteRecord) { live(); q.invitePut.run(i.room, i.amid, i.by, i.at) },
    async getInvite (room, amid) {
      live()
      const r = q.inviteGet.get(room, amid) as { room: string, amid: string, invited_by: string, at: number } | undefined
      return r === undefined ? undefined : { room: r.room, amid: r.amid, by: r.invited_by, at: r.at }
    },
    async appendMembership (room, seq, statement) {
      live()
      return appendMembershipTx(room, seq, statement)
    },
    async listMembership (room) { live(); return q.membershipList.all(room) as string[] },
    async readHistory (room, query) {
      live()
      const limit = limitOf(query.limit)
      if (query.after !== undefined) return (q.histAfter.all(room, query.after, limit) as HistoryRow[]).map(historyOf)
      const rows = (query.before !== undefined ? q.histBefore.all(room, query.before, limit) : q.histNewest.all(room, limit)) as HistoryRow[]
      return rows.reverse().map(historyOf)
    },
    async getHistoryEntry (room, seq) {
      live()
      const r = q.histGet.get(room, seq) as HistoryRow | undefined
      return r === undefined ? undefined : historyOf(r)
    },
    async lastRoomSeq (room) { live(); return (q.roomSeqLast.get(room) as number | undefined) ?? 0 },
    async deleteHistoryEntry (room, seq, by, at) { live(); return q.histDelete.run(by, at, room, seq).changes > 0 },
    async pruneHistory (olderThan, maxPerRoom, unreadOlderThan) { live(); return pruneHistoryTx(olderThan, maxPerRoom, unreadOlderThan ?? olderThan) },
    async setReadUpTo (room, amid, seq) { live(); return q.markerRaise.get(room, amid, seq) as number },
    async readMarkers (room) { live(); return (q.markerList.all(room) as Array<{ amid: string, up_to: number }>).map(r => ({ amid: r.amid, upTo: r.up_to })) },
    async putTask (t) { live(); return q.taskPut.run(t.id, ...taskColumns(t)).changes > 0 },
    async getTask (id) {
      live()
      const t = q.taskGet.get(id) as string | undefined
      return t === undefined ? undefined : JSON.parse(t) as TaskRecord
    },
    async updateTask (t, expect) { live(); return q.taskUpdate.run(...taskColumns(t), t.id, expect).changes > 0 },
    async listTasks (query) {
      live()
      const params: Record<string, unknown> = { limit: limitOf(query.limit) }
      const conds: string[] = []
      if (query.room !== undefined) { conds.push('room = @room'); params.room = query.room }
      if (query.state !== undefined) { conds.push('state = @state'); params.state = query.state }
      if (query.before !== undefined) {
        params.bid = query.before
        const created = q.taskCreated.get(query.before) as number | undefined
        // an unknown id still pages: ids are time-ordered
        if (created === undefined) conds.push('id < @bid')
        else { conds.push('(created_at, id) < (@bc, @bid)'); params.bc = created }
      }
      const order = 'ORDER BY created_at DESC, id DESC LIMIT @limit'
      const select = (extra: string[]): string => {
        const where = [...extra, ...conds]
        return `SELECT id, created_at, record FROM tasks${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')} ${order}`
      }
      let sql: string
      if (query.agent !== undefined) {
        params.agent = query.agent
        // requested or assigned: each side on its own index, merged
        sql = `SELECT record FROM (SELECT * FROM (${select(['requester = @agent'])}) UNION SELECT * FROM (${select(['assignee = @agent'])})) ${order}`
      } else {
        sql = `SELECT record FROM (${select([])})`
      }
      return (prepared(sql).pluck().all(params) as string[]).map(t => JSON.parse(t) as TaskRecord)
    },
    async overdueTasks (now, limit) { live(); return (q.taskOverdue.all(now, limitOf(limit)) as string[]).map(t => JSON.parse(t) as TaskRecord) },
    async appendAudit (rows) { live(); return appendAuditTx(rows) },
    async readAudit (query) {
      live()
      // without after, before reads the newest rows below it: backwards, then put in seq order
      const back = query.after === undefined && query.before !== undefined
      const conds = [back ? 'seq < @before' : 'seq > @after']
      const params: Record<string, unknown> = { limit: limitOf(query.limit), ...(back ? { before: query.before } : { after: query.after ?? 0 }) }
      if (query.actor !== undefined) { conds.push('actor = @actor'); params.actor = query.actor }
      if (query.action !== undefined) { conds.push('action = @action'); params.action = query.action }
      const sql = `SELECT seq, at, actor, action, target, detail, prev, hash FROM audit WHERE ${conds.join(' AND ')} ORDER BY seq${back ? ' DESC' : ''} LIMIT @limit`
      const rows = (prepared(sql).all(params) as AuditRow[]).map(auditOf)
      return back ? rows.reverse() : rows
    },
    async pruneAudit (olderThan, keep, note) { live(); return pruneAuditTx(olderThan, keep, note) },
    async lastAudit () {
      live()
      const r = q.auditLast.get() as AuditRow | undefined
      return r === undefined ? undefined : auditOf(r)
    },
    async getSettings () { live(); return readSettings() },
    async putSettings (patch) { live(); putSettingsTx(patch); return readSettings() },
    async close () {
      if (closed) return
      closed = true
      try { db.pragma('wal_checkpoint(TRUNCATE)') } catch {}
      db.close()
    },
  }
}
