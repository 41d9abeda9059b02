/**
 * The Store on PostgreSQL (pg): the same semantics and the same atomic steps as the SQLite store
 * (packages/store-sqlite), over one database that several relays may share.
 *
 * - Every write that reads before it writes (a commit, a CRL, a prekey bundle, …) is one
 *   transaction that first takes an advisory lock of the schema (db.ts WRITE_LOCK): one writer at a
 *   time across every relay, as SQLite has one writer. Inbox and room seqs, dedupe and the audit
 *   chain's tail are read inside it, so they never fork. Reads take no lock.
 * - Group commit: the relay hands over all sends of one event-loop turn as one `commit`, one
 *   transaction (committed with PostgreSQL's `synchronous_commit`, by default on: durable once
 *   answered).
 * - A bounded pool (`maxConnections`, default 10); every statement is named, so each connection
 *   prepares it once.
 * - A database that goes away makes the operations reject with AM_ERR_STORE_UNAVAILABLE (nothing
 *   is answered as stored that was not); the pool reconnects by itself when it is back.
 */
import type pg from 'pg'
import { randomBytes, randomUUID } from 'node:crypto'
import { AgentMeshError, ErrorCode, handleSkeleton } from '@agentmesh/protocol'
import {
  auditPruneUpTo, auditPrunedRow, batchAuditRow, chainAudit, compareCrls, crlPutResult, profileMatches, searchText, storeOptions,
  type AgentOnlineResult, type AgentProfile, type AgentRecord, type CatastropheRecord, type AppendItem, type AppendResult, type AuditInput, type AuditRecord, type CrlRecord,
  type CursorAck, type FeedbackRecord, type FileRecord, type HealthChange, type HeartbeatRecord, type OwnerLinkRecord, type HistoryEntry, type MemberRecord,
  type OneTimePrekey, type PqOneTimePrekey, type PutCrlResult, type ReputationFlag, type RoomDelivery, type RoomFeed, type RoomRecord,
  type Store, type StoreInit, type StoredMessage, type TakenBundle, type TaskRecord, type UpdateAckRecord, type UpdateRecord, type AgentRole,
} from '@agentmesh/store'
import { column, createPool, dbError, one, redact, rows, run, unavailable, value, WRITE_LOCK, MIGRATE_LOCK, type PoolInit, type Queryable } from './db.ts'
import { LATEST_VERSION, MIGRATIONS, MIGRATIONS_TABLE } from './schema.ts'

export interface PostgresStoreInit extends StoreInit, Omit<PoolInit, 'url'> {}


/** Task states that are not final. */
const OPEN_TASK_STATES = "'submitted', 'working', 'input-required', 'auth-required'"

/**
 * A history row no member reading by cursor still needs (see the SQLite store's UNREAD_GONE); $1 unread, $2 maxInbox.
 * PostgreSQL's greatest() skips a NULL (SQLite's max() answers NULL): a room without cursor members has no guard.
 */
const UNREAD_GONE = `(received_at <= $1 OR seq < coalesce((SELECT CASE WHEN min(m.cursor) IS NULL THEN NULL ELSE greatest(min(m.cursor) + 1, coalesce((SELECT last_seq FROM room_seqs s WHERE s.room = history.room), 0) - $2 + 1) END FROM members m WHERE m.room = history.room AND m.by_cursor = 1), 9007199254740991))`

/**
 * Applies the migrations the database lacks (creating the schema and the migrations table when
 * missing), in one transaction under an advisory lock; refuses a database of a newer schema.
 * Answers the version before and after.
 */
export async function migrate (pool: pg.Pool, where: string, schema: string): Promise<{ from: number, to: number }> {
  let c: pg.PoolClient
  try { c = await pool.connect() } catch (err) { throw dbError(where, err) }
  c.on('error', () => {})
  try {
    await c.query('BEGIN')
    await c.query(MIGRATE_LOCK, [schema])
    if (schema !== 'public') await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await c.query(MIGRATIONS_TABLE)
    const from = ((await c.query('SELECT coalesce(max(version), 0) AS v FROM agentmesh_migrations')).rows[0] as { v: number }).v
    if (from > LATEST_VERSION) {
      throw new AgentMeshError(ErrorCode.DataCorrupt,
        `${where} was written by a newer AgentMesh (schema ${from}, this one knows ${LATEST_VERSION}); upgrade AgentMesh`)
    }
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue
      await c.query(m.sql)
      await c.query('INSERT INTO agentmesh_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()])
    }
    await c.query('INSERT INTO meta (key, value) VALUES ($1, $2), ($3, $4) ON CONFLICT (key) DO NOTHING',
      ['relay_id', randomUUID(), 'relay_secret', randomBytes(32).toString('base64url')])
    await c.query('COMMIT')
    return { from, to: LATEST_VERSION }
  } catch (err) {
    try { await c.query('ROLLBACK') } catch {}
    throw dbError(where, err)
  } finally {
    c.release()
  }
}

/** `?schema=name` in a store URL: the schema the tables live in (taken out of the URL pg is given). */
export function schemaOf (url: string): { url: string, schema?: string } {
  let u: URL
  try { u = new URL(url) } catch { return { url } }
  const schema = u.searchParams.get('schema')
  if (schema === null) return { url }
  u.searchParams.delete('schema')
  return { url: u.toString(), schema }
}

/**
 * Opens the store at `url` (postgres://…; `?schema=name` puts the tables in that schema, created
 * when missing, so several relay data sets can share one database): connects, applies the migrations the database lacks and
 * answers the store. A database that is down, refuses the credentials or holds a newer schema is
 * one AgentMeshError naming it (without its password), and nothing is changed.
 */
export async function postgresStore (url: string, init: PostgresStoreInit = {}): Promise<Store & { readonly url: string, available (): boolean }> {
  const opts = storeOptions(init, true)
  const split = schemaOf(url)
  url = split.url
  const where = `PostgreSQL at ${redact(url)}`
  const schema = init.schema ?? split.schema ?? 'public'
  const pool = createPool({ ...init, url, schema })
  let relayId: string
  let relaySecret: string
  try {
    await migrate(pool, where, schema)
    const meta = await rows<{ key: string, value: string }>(pool, 'SELECT key, value FROM meta')
    relayId = meta.find(m => m.key === 'relay_id')!.value
    relaySecret = meta.find(m => m.key === 'relay_secret')!.value
  } catch (err) {
    await pool.end().catch(() => {})
    throw dbError(where, err)
  }

  let closed = false
  const live = (): void => {
    if (closed) throw new AgentMeshError(ErrorCode.Internal, 'the store is closed')
  }
  /** Whether the database answered the last operation (or probe); what `available()` tells /healthz. */
  let up = true
  let probedAt = 0
  const saw = (err: unknown): unknown => {
    if (unavailable(err) || (AgentMeshError.is(err, ErrorCode.StoreUnavailable))) up = false
    return err
  }
  /** A read, its failure as an AgentMeshError. */
  const read = async <T>(fn: (c: Queryable) => Promise<T>): Promise<T> => {
    live()
    try {
      const r = await fn(pool)
      up = true
      return r
    } catch (err) { throw dbError(where, saw(err)) }
  }
  // this process's writers queue here, so they do not hold several connections waiting on the lock
  let tail: Promise<unknown> = Promise.resolve()
  const guarded = new WeakSet<pg.PoolClient>()
  /** A write transaction: the write lock first, then `fn`; rolled back whole when anything fails. */
  const write = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    live()
    const turn = tail.then(async () => {
      let c: pg.PoolClient
      try { c = await pool.connect() } catch (err) { throw dbError(where, err) }
      // a connection the database drops while checked out: its query rejects; the event must not crash the process
      if (!guarded.has(c)) { guarded.add(c); c.on('error', () => {}) }
      let broken: unknown
      try {
        await c.query('BEGIN')
        await c.query(WRITE_LOCK, [schema])
        const r = await fn(c)
        await c.query('COMMIT')
        return r
      } catch (err) {
        try { await c.query('ROLLBACK') } catch (e) { broken = e }
        if (err instanceof AgentMeshError) throw err
        // a statement error (not the database gone) is a bug or bad input: let it through as it is
        const e = dbError(where, err)
        if (e.code === ErrorCode.StoreUnavailable) throw e
        throw err
      } finally {
        c.release(broken !== undefined ? (broken as Error) : undefined)
      }
    })
    tail = turn.catch(() => {})
    try {
      const r = await turn
      up = true
      return r
    } catch (err) { throw saw(err) }
  }
  const limitOf = (n: number): number => Math.max(0, Math.trunc(n))

  // ---------------------------------------------------------------- messages

  interface Box { cursor: number, last_seq: number, pending: number }
  const getBox = async (c: Queryable, touched: Map<string, Box>, r: string): Promise<Box> => {
    let b = touched.get(r)
    if (b === undefined) {
      b = (await one<Box>(c, 'SELECT cursor, last_seq, pending FROM inboxes WHERE recipient = $1', [r])) ?? { cursor: 0, last_seq: 0, pending: 0 }
      touched.set(r, b)
    }
    return b
  }
  const putBoxes = async (c: Queryable, touched: Map<string, Box>): Promise<void> => {
    for (const [r, b] of touched) {
      await run(c, 'INSERT INTO inboxes (recipient, cursor, last_seq, pending) VALUES ($1, $2, $3, $4) ON CONFLICT (recipient) DO UPDATE SET cursor = excluded.cursor, last_seq = excluded.last_seq, pending = excluded.pending',
        [r, b.cursor, b.last_seq, b.pending])
    }
  }
  const MSG_PUT = 'INSERT INTO messages (recipient, seq, sender, id, envelope, received_at) VALUES ($1, $2, $3, $4, $5, $6)'
  /** Appends a copy to an inbox (inside a transaction); undefined when the inbox is full. */
  const toInbox = async (c: Queryable, touched: Map<string, Box>, r: string, m: { sender: string, id: string, envelope: string, receivedAt: number }): Promise<number | undefined> => {
    const box = await getBox(c, touched, r)
    if (box.pending >= opts.maxInbox) return undefined
    const s = ++box.last_seq
    box.pending++
    await run(c, MSG_PUT, [r, s, m.sender, m.id, m.envelope, m.receivedAt])
    return s
  }
  interface RoomSeq { last_seq: number, entries: number }
  const lastRoomSeq = async (c: Queryable, room: string): Promise<number> =>
    (await value<number>(c, 'SELECT last_seq FROM room_seqs WHERE room = $1', [room])) ?? 0
  const minCursor = async (c: Queryable, room: string): Promise<number | null> =>
    (await value<number | null>(c, 'SELECT min(cursor) FROM members WHERE room = $1 AND by_cursor = 1', [room])) ?? null
  /** Drops the oldest `n` history entries of a room below `below`; answers how many went. */
  const dropOldest = async (c: Queryable, room: string, below: number, n: number): Promise<number> =>
    (await run(c, 'DELETE FROM history WHERE room = $1 AND seq IN (SELECT seq FROM history WHERE room = $1 AND seq < $2 ORDER BY seq LIMIT $3)', [room, below, n])).rowCount ?? 0

  // ---------------------------------------------------------------- audit

  interface AuditRow { seq: number, at: number, actor: string, action: string, target: string | null, detail: string, prev: string, hash: string }
  const auditOf = (r: AuditRow): AuditRecord => {
    let detail: Record<string, unknown>
    try { detail = JSON.parse(r.detail) as Record<string, unknown> } catch { detail = r.detail as unknown as Record<string, unknown> }
    return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, ...(r.target === null ? {} : { target: r.target }), detail, prev: r.prev, hash: r.hash }
  }
  const AUDIT_COLS = 'seq, at, actor, action, target, detail, prev, hash'
  const auditLast = async (c: Queryable): Promise<AuditRow | undefined> => await one<AuditRow>(c, `SELECT ${AUDIT_COLS} FROM audit ORDER BY seq DESC LIMIT 1`)
  /** Chains and inserts audit rows after the last one (inside a write transaction: the tail cannot move). */
  const insertAudit = async (c: Queryable, input: readonly AuditInput[]): Promise<AuditRecord[]> => {
    if (input.length === 0) return []
    const texts: string[] = []
    const inputs = input.map((r): AuditInput => {
      const text = JSON.stringify(r.detail ?? {})
      texts.push(text)
      return { at: r.at, actor: r.actor, action: r.action, ...(r.target === undefined ? {} : { target: r.target }), detail: JSON.parse(text) as Record<string, unknown> }
    })
    const last = await auditLast(c)
    const recs = chainAudit(last === undefined ? undefined : { seq: last.seq, hash: last.hash }, inputs)
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i]!
      await run(c, 'INSERT INTO audit (seq, at, actor, action, target, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [r.seq, r.at, r.actor, r.action, r.target ?? null, texts[i], r.prev, r.hash])
    }
    return recs
  }

  /**
   * The group commit, as the SQLite store's (same results, same rows) but in a constant number of
   * statements whatever the batch: what it reads first in one statement per table (dedupe records,
   * inboxes, room seqs, members), then decided here, then written in one statement per table
   * (unnest of arrays). Inside the write transaction: nothing read can change meanwhile.
   */
  const commitTx = async (c: Queryable, appends: readonly AppendItem[], acks: readonly CursorAck[], audit: readonly AuditInput[] | undefined): Promise<AppendResult[]> => {
    // the detail of every audit row must be storable before anything is written
    for (const a of audit ?? []) JSON.stringify(a.detail ?? {})
    const key = (sender: string, id: string): string => sender + '\n' + id
    // ---- read
    const seen = new Map<string, number>()
    if (appends.length > 0) {
      for (const r of await rows<{ sender: string, id: string, seq: number }>(c,
        'SELECT d.sender, d.id, d.seq FROM dedupe d JOIN unnest($1::text[], $2::text[]) AS k(sender, id) ON d.sender = k.sender AND d.id = k.id',
        [appends.map(a => a.sender), appends.map(a => a.id)])) seen.set(key(r.sender, r.id), r.seq)
    }
    const roomIds = [...new Set([...appends.flatMap(a => a.room === undefined ? [] : [a.room]), ...acks.flatMap(a => a.room === undefined ? [] : [a.room])])]
    const rooms = new Map<string, RoomSeq & { dirty: boolean }>()
    const inboxMembers = new Map<string, string[]>()
    const cursorMembers = new Map<string, Set<string>>()
    if (roomIds.length > 0) {
      for (const r of await rows<{ room: string, last_seq: number, entries: number }>(c, 'SELECT room, last_seq, entries FROM room_seqs WHERE room = ANY($1::text[])', [roomIds])) rooms.set(r.room, { last_seq: r.last_seq, entries: r.entries, dirty: false })
      const withMessages = [...new Set(appends.flatMap(a => a.room === undefined ? [] : [a.room]))]
      for (const id of withMessages) { inboxMembers.set(id, []); cursorMembers.set(id, new Set()) }
      if (withMessages.length > 0) {
        for (const m of await rows<{ room: string, amid: string, by_cursor: number }>(c, 'SELECT room, amid, by_cursor FROM members WHERE room = ANY($1::text[]) ORDER BY room, amid', [withMessages])) {
          if (m.by_cursor === 1) cursorMembers.get(m.room)!.add(m.amid)
          else inboxMembers.get(m.room)!.push(m.amid)
        }
      }
    }
    const roomSeq = (room: string): RoomSeq & { dirty: boolean } => {
      let r = rooms.get(room)
      if (r === undefined) { r = { last_seq: 0, entries: 0, dirty: false }; rooms.set(room, r) }
      return r
    }
    const recipients = new Set<string>()
    for (const a of appends) {
      if (a.room === undefined) { recipients.add(a.recipient); continue }
      for (const r of a.fanout ?? []) recipients.add(r)
      for (const r of inboxMembers.get(a.room) ?? []) recipients.add(r)
    }
    for (const a of acks) if (a.room === undefined) recipients.add(a.recipient)
    const boxes = new Map<string, Box & { dirty: boolean }>()
    if (recipients.size > 0) {
      for (const b of await rows<Box & { recipient: string }>(c, 'SELECT recipient, cursor, last_seq, pending FROM inboxes WHERE recipient = ANY($1::text[])', [[...recipients]])) {
        boxes.set(b.recipient, { cursor: b.cursor, last_seq: b.last_seq, pending: b.pending, dirty: false })
      }
    }
    const box = (r: string): Box & { dirty: boolean } => {
      let b = boxes.get(r)
      if (b === undefined) { b = { cursor: 0, last_seq: 0, pending: 0, dirty: false }; boxes.set(r, b) }
      return b
    }
    // ---- decide
    const dedupe = { sender: [] as string[], id: [] as string[], seq: [] as number[], expires: [] as number[] }
    const msgs = { recipient: [] as string[], seq: [] as number[], sender: [] as string[], id: [] as string[], envelope: [] as string[], at: [] as number[] }
    const hist = { room: [] as string[], seq: [] as number[], sender: [] as string[], id: [] as string[], envelope: [] as string[], at: [] as number[] }
    const remember = (m: AppendItem, seq: number): void => {
      seen.set(key(m.sender, m.id), seq)
      dedupe.sender.push(m.sender); dedupe.id.push(m.id); dedupe.seq.push(seq); dedupe.expires.push(m.receivedAt + opts.retentionMs)
    }
    const toBox = (r: string, m: AppendItem): number | undefined => {
      const b = box(r)
      if (b.pending >= opts.maxInbox) return undefined // a full inbox misses the copy: it is in the history
      const s = ++b.last_seq
      b.pending++
      b.dirty = true
      msgs.recipient.push(r); msgs.seq.push(s); msgs.sender.push(m.sender); msgs.id.push(m.id); msgs.envelope.push(m.envelope); msgs.at.push(m.receivedAt)
      return s
    }
    const out: AppendResult[] = []
    for (const m of appends) {
      const dup = seen.get(key(m.sender, m.id))
      if (m.room !== undefined) {
        if (dup !== undefined) { out.push({ status: 'duplicate', seq: dup }); continue }
        const rs = roomSeq(m.room)
        const seq = ++rs.last_seq
        rs.entries++
        rs.dirty = true
        remember(m, seq)
        hist.room.push(m.room); hist.seq.push(seq); hist.sender.push(m.sender); hist.id.push(m.id); hist.envelope.push(m.envelope); hist.at.push(m.receivedAt)
        const deliveries: Array<{ recipient: string, seq: number }> = []
        const copied = new Set<string>()
        const copy = (r: string): void => {
          if (copied.has(r)) return
          copied.add(r)
          const s = toBox(r, m)
          if (s !== undefined) deliveries.push({ recipient: r, seq: s })
        }
        if (m.fanout !== undefined && m.fanout.length > 0) {
          const readers = cursorMembers.get(m.room)!
          for (const r of m.fanout) if (!readers.has(r)) copy(r)
        }
        for (const r of inboxMembers.get(m.room)!) if (r !== m.sender) copy(r)
        out.push({ status: 'stored', seq, deliveries })
        continue
      }
      const b = box(m.recipient)
      if (b.pending >= opts.maxInbox) {
        out.push(dup !== undefined ? { status: 'duplicate', seq: dup } : { status: 'inbox_full' })
        continue
      }
      if (dup !== undefined) { out.push({ status: 'duplicate', seq: dup }); continue }
      const seq = toBox(m.recipient, m)!
      remember(m, seq)
      out.push({ status: 'stored', seq })
    }
    // ---- write the appends
    if (dedupe.sender.length > 0) {
      await run(c, 'INSERT INTO dedupe (sender, id, seq, expires_at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])',
        [dedupe.sender, dedupe.id, dedupe.seq, dedupe.expires])
    }
    if (hist.room.length > 0) {
      await run(c, 'INSERT INTO history (room, seq, sender, id, envelope, received_at) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])',
        [hist.room, hist.seq, hist.sender, hist.id, hist.envelope, hist.at])
    }
    if (msgs.recipient.length > 0) {
      await run(c, 'INSERT INTO messages (recipient, seq, sender, id, envelope, received_at) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])',
        [msgs.recipient, msgs.seq, msgs.sender, msgs.id, msgs.envelope, msgs.at])
    }
    // ---- the acks, after the appends (an ack may cover a message of this batch)
    const upTo = new Map<string, number>()
    const roomAcks = new Map<string, { room: string, amid: string, seq: number }>()
    for (const a of acks) {
      if (a.room !== undefined) {
        const seq = Math.min(a.seq, rooms.get(a.room)?.last_seq ?? 0)
        const k = key(a.room, a.recipient)
        const prev = roomAcks.get(k)
        if (prev === undefined || seq > prev.seq) roomAcks.set(k, { room: a.room, amid: a.recipient, seq })
        continue
      }
      const b = box(a.recipient)
      const seq = Math.min(a.seq, b.last_seq)
      if (seq <= b.cursor) continue
      b.cursor = seq
      b.dirty = true
      upTo.set(a.recipient, seq)
    }
    if (upTo.size > 0) {
      const gone = await column<string>(c, 'DELETE FROM messages m USING unnest($1::text[], $2::bigint[]) AS a(recipient, seq) WHERE m.recipient = a.recipient AND m.seq <= a.seq RETURNING m.recipient',
        [[...upTo.keys()], [...upTo.values()]])
      for (const r of gone) { const b = box(r); b.pending = Math.max(0, b.pending - 1) }
    }
    if (roomAcks.size > 0) {
      const ra = [...roomAcks.values()]
      await run(c, 'UPDATE members m SET cursor = a.seq FROM unnest($1::text[], $2::text[], $3::bigint[]) AS a(room, amid, seq) WHERE m.room = a.room AND m.amid = a.amid AND m.by_cursor = 1 AND m.cursor < a.seq',
        [ra.map(x => x.room), ra.map(x => x.amid), ra.map(x => x.seq)])
    }
    const dirty = [...boxes].filter(([, b]) => b.dirty)
    if (dirty.length > 0) {
      await run(c, `INSERT INTO inboxes (recipient, cursor, last_seq, pending) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
        ON CONFLICT (recipient) DO UPDATE SET cursor = excluded.cursor, last_seq = excluded.last_seq, pending = excluded.pending`,
      [dirty.map(([r]) => r), dirty.map(([, b]) => b.cursor), dirty.map(([, b]) => b.last_seq), dirty.map(([, b]) => b.pending)])
    }
    const grown = [...rooms].filter(([, r]) => r.dirty)
    for (const [room, rs] of grown) {
      if (rs.entries > opts.historyMaxPerRoom) {
        // none a member reading by cursor has not read (within the newest maxInbox)
        const min = await minCursor(c, room)
        const guard = min === null ? Number.MAX_SAFE_INTEGER : Math.max(min + 1, rs.last_seq - opts.maxInbox + 1)
        rs.entries -= await dropOldest(c, room, guard, rs.entries - opts.historyMaxPerRoom)
      }
    }
    if (grown.length > 0) {
      await run(c, `INSERT INTO room_seqs (room, last_seq, entries) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
        ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq, entries = excluded.entries`,
      [grown.map(([r]) => r), grown.map(([, r]) => r.last_seq), grown.map(([, r]) => r.entries)])
    }
    // ---- the audit rows: the batch row, the stored sends' own rows, then the commit's
    const auditRows: AuditInput[] = []
    const batch = batchAuditRow(appends, out)
    if (batch !== undefined) auditRows.push(batch)
    out.forEach((r, i) => { const a = appends[i]!.audit; if (r.status === 'stored' && a !== undefined) auditRows.push(a) })
    if (audit !== undefined) auditRows.push(...audit)
    if (auditRows.length > 0) await insertAudit(c, auditRows)
    return out
  }

  interface FeedRow { room: string, cursor: number, last_seq: number }
  const feedOf = (r: FeedRow): RoomFeed => ({ room: r.room, cursor: r.cursor, lastSeq: r.last_seq })
  const FEEDS_OF = 'SELECT m.room AS room, m.cursor AS cursor, coalesce(s.last_seq, 0) AS last_seq FROM members m LEFT JOIN room_seqs s ON s.room = m.room WHERE m.amid = $1 AND m.by_cursor = 1 ORDER BY m.room'

  const upsertAgentIn = async (c: Queryable, a: { amid: string, name?: string, seenAt: number }): Promise<boolean> => {
    const r = await run(c, 'INSERT INTO agents (amid, name, registered_at, last_seen_at) VALUES ($1, $2, $3, $3) ON CONFLICT (amid) DO NOTHING', [a.amid, a.name ?? null, a.seenAt])
    if (r.rowCount === 0) await run(c, 'UPDATE agents SET last_seen_at = $1, name = coalesce($2, name) WHERE amid = $3', [a.seenAt, a.name ?? null, a.amid])
    return r.rowCount === 1
  }

  const addMemberIn = async (c: Queryable, m: MemberRecord): Promise<boolean> => {
    const r = await run(c, `INSERT INTO members (room, amid, role, joined_at, cursor, by_cursor) VALUES ($1, $2, $3, $4,
      coalesce((SELECT last_seq FROM room_seqs WHERE room = $1), 0), CASE WHEN EXISTS (SELECT 1 FROM room_cursor_agents WHERE amid = $2) THEN 1 ELSE 0 END)
      ON CONFLICT DO NOTHING`, [m.room, m.amid, m.role, m.joinedAt])
    if (r.rowCount === 0) return false
    await run(c, 'DELETE FROM invites WHERE room = $1 AND amid = $2', [m.room, m.amid])
    return true
  }

  const roomDeliveryIn = async (c: Queryable, amid: string, delivery: RoomDelivery): Promise<RoomFeed[]> => {
    if (delivery === 'cursor') {
      await run(c, 'INSERT INTO room_cursor_agents (amid) VALUES ($1) ON CONFLICT DO NOTHING', [amid])
      await run(c, 'UPDATE members SET by_cursor = 1, cursor = coalesce((SELECT last_seq FROM room_seqs WHERE room_seqs.room = members.room), 0) WHERE amid = $1 AND by_cursor = 0', [amid])
      return (await rows<FeedRow>(c, FEEDS_OF, [amid])).map(feedOf)
    }
    await run(c, 'DELETE FROM room_cursor_agents WHERE amid = $1', [amid])
    const touched = new Map<string, Box>()
    for (const r of await rows<{ room: string, cursor: number }>(c, 'SELECT room, cursor FROM members WHERE amid = $1 AND by_cursor = 1 ORDER BY room', [amid])) {
      const room = Math.max(0, opts.maxInbox - (await getBox(c, touched, amid)).pending)
      const entries = await rows<{ seq: number, sender: string, id: string, envelope: string, received_at: number }>(c,
        'SELECT seq, sender, id, envelope, received_at FROM history WHERE room = $1 AND seq > $2 AND deleted_at IS NULL AND sender != $3 ORDER BY seq LIMIT $4', [r.room, r.cursor, amid, room])
      for (const e of entries) await toInbox(c, touched, amid, { sender: e.sender, id: e.id, envelope: e.envelope, receivedAt: e.received_at })
    }
    await putBoxes(c, touched)
    await run(c, 'UPDATE members SET by_cursor = 0, cursor = coalesce((SELECT last_seq FROM room_seqs WHERE room_seqs.room = members.room), 0) WHERE amid = $1 AND by_cursor = 1', [amid])
    return []
  }

  // ---------------------------------------------------------------- rows to records

  interface FeedbackRow { rater: string, subject: string, score: number, comment: string | null, interaction: string | null, at: number }
  const feedbackOf = (r: FeedbackRow): FeedbackRecord => ({
    rater: r.rater,
    subject: r.subject,
    score: r.score,
    ...(r.comment === null ? {} : { comment: r.comment }),
    ...(r.interaction === null ? {} : { interaction: r.interaction }),
    at: r.at,
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
  interface RoomRow { id: string, kind: RoomRecord['kind'], topic: string | null, owner: string | null, created_at: number }
  const roomOf = (r: RoomRow): RoomRecord => ({
    id: r.id,
    kind: r.kind,
    ...(r.topic === null ? {} : { topic: r.topic }),
    ...(r.owner === null ? {} : { owner: r.owner }),
    createdAt: r.created_at,
  })
  interface MemberRow { room: string, amid: string, role: MemberRecord['role'], joined_at: number }
  const memberOf = (r: MemberRow): MemberRecord => ({ room: r.room, amid: r.amid, role: r.role, joinedAt: r.joined_at })
  interface HistoryRow { seq: number, sender: string, id: string, envelope: string, received_at: number, deleted_by: string | null, deleted_at: number | null }
  const historyOf = (r: HistoryRow): HistoryEntry => ({
    seq: r.seq,
    sender: r.sender,
    id: r.id,
    envelope: r.envelope,
    receivedAt: r.received_at,
    ...(r.deleted_at === null ? {} : { deleted: { by: r.deleted_by ?? '', at: r.deleted_at } }),
  })
  const HIST_COLS = 'seq, sender, id, envelope, received_at, deleted_by, deleted_at'
  const taskColumns = (t: TaskRecord): unknown[] => [t.room ?? null, t.requester, t.assignee, t.state, t.createdAt, t.deadline, JSON.stringify(t)]
  const likePattern = (text: string | undefined): string =>
    text === undefined ? '%' : `%${text.toLowerCase().replace(/[\\%_]/g, (ch) => '\\' + ch)}%`

  interface FileRow { id: string, owner: string, filename: string, type: string, size: number, sha256: string, description: string | null, created_at: number, visibility: string }
  const fileOf = async (c: Queryable, r: FileRow): Promise<FileRecord> => ({
    id: r.id,
    owner: r.owner,
    filename: r.filename,
    type: r.type,
    size: r.size,
    sha256: r.sha256,
    ...(r.description === null ? {} : { description: r.description }),
    createdAt: r.created_at,
    visibility: r.visibility,
    sharedWith: await column<string>(c, 'SELECT amid FROM file_shares WHERE file_id = $1 ORDER BY amid', [r.id]),
  })
  const usage = async (c: Queryable, owner: string): Promise<{ bytes: number, files: number }> =>
    (await one<{ bytes: number, files: number }>(c, 'SELECT coalesce(sum(size), 0) AS bytes, count(*) AS files FROM files WHERE owner = $1', [owner]))!
  const settingsOf = async (c: Queryable): Promise<Record<string, unknown>> => {
    const out: Record<string, unknown> = {}
    for (const r of await rows<{ key: string, value: string }>(c, 'SELECT key, value FROM settings ORDER BY key')) out[r.key] = JSON.parse(r.value)
    return out
  }
  const parse = <T>(t: string | undefined): T | undefined => t === undefined ? undefined : JSON.parse(t) as T

  return {
    kind: 'postgres',
    url: redact(url),
    /**
     * False while the database is not answering (the last operation found it gone). Answers at
     * once; at most once a second it also starts a probe (`SELECT 1`) in the background, so that a
     * health check polled by a load balancer sees the database go and come back without traffic.
     */
    available (): boolean {
      const now = Date.now()
      if (!closed && now - probedAt >= 1000) {
        probedAt = now
        pool.query('SELECT 1').then(() => { up = true }, (err: unknown) => { saw(err) })
      }
      return up && !closed
    },
    async relayId () { live(); return relayId },
    async relaySecret () { live(); return relaySecret },
    async upsertAgent (a) {
      return await read(async (c) => ({ created: await upsertAgentIn(c, a) }))
    },
    async agentsOnline (batch) {
      // each agent in its own write (the write lock is held per transaction; every step can be done again)
      const out: AgentOnlineResult[] = []
      for (const a of batch) {
        out.push(await write(async (c) => {
          const created = await upsertAgentIn(c, a)
          if (a.join !== undefined) await addMemberIn(c, a.join)
          return { created, feeds: await roomDeliveryIn(c, a.amid, a.delivery) }
        }))
      }
      return out
    },
    async getAgent (amid): Promise<AgentRecord | undefined> {
      const r = await read(async (c) => await one<{ amid: string, name: string | null, registered_at: number, last_seen_at: number }>(c, 'SELECT amid, name, registered_at, last_seen_at FROM agents WHERE amid = $1', [amid]))
      if (r === undefined) return undefined
      return { amid: r.amid, ...(r.name === null ? {} : { name: r.name }), registeredAt: r.registered_at, lastSeenAt: r.last_seen_at }
    },
    async listAgents (q) {
      return await read(async (c) => q.after === undefined
        ? await column<string>(c, 'SELECT amid FROM agents ORDER BY amid LIMIT $1', [limitOf(q.limit)])
        : await column<string>(c, 'SELECT amid FROM agents WHERE amid > $1 ORDER BY amid LIMIT $2', [q.after, limitOf(q.limit)]))
    },
    async putProfile (p: AgentProfile) {
      await read(async (c) => await run(c, 'INSERT INTO profiles (amid, profile, search, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (amid) DO UPDATE SET profile = excluded.profile, search = excluded.search, updated_at = excluded.updated_at',
        [p.amid, JSON.stringify(p), searchText(p), p.updatedAt]))
    },
    async getProfile (amid) {
      return parse<AgentProfile>(await read(async (c) => await value<string>(c, 'SELECT profile FROM profiles WHERE amid = $1', [amid])))
    },
    async searchProfiles (query) {
      const texts = await read(async (c) => await column<string>(c, "SELECT profile FROM profiles WHERE search LIKE $1 ESCAPE '\\' ORDER BY amid", [likePattern(query.text)]))
      const out: AgentProfile[] = []
      for (const t of texts) {
        const p = JSON.parse(t) as AgentProfile
        if (profileMatches(p, query)) out.push(p)
        if (out.length >= query.limit) break
      }
      return out
    },
    async putPrekeys (amid, up) {
      return await write(async (c) => {
        if (up.base !== undefined) await run(c, 'INSERT INTO prekey_bases (amid, base) VALUES ($1, $2) ON CONFLICT (amid) DO UPDATE SET base = excluded.base', [amid, JSON.stringify(up.base)])
        if (up.replaceOneTime === true) {
          await run(c, 'DELETE FROM one_time_prekeys WHERE amid = $1', [amid])
          await run(c, 'DELETE FROM pq_one_time_prekeys WHERE amid = $1', [amid])
        }
        for (const k of up.oneTime) await run(c, 'INSERT INTO one_time_prekeys (amid, id, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [amid, k.id, k.key])
        for (const k of up.pqOneTime ?? []) await run(c, 'INSERT INTO pq_one_time_prekeys (amid, id, key, sig) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [amid, k.id, k.key, k.sig])
        return {
          oneTime: (await value<number>(c, 'SELECT count(*) FROM one_time_prekeys WHERE amid = $1', [amid]))!,
          pqOneTime: (await value<number>(c, 'SELECT count(*) FROM pq_one_time_prekeys WHERE amid = $1', [amid]))!,
        }
      })
    },
    async takePrekeyBundle (amid) {
      return await write(async (c): Promise<TakenBundle | undefined> => {
        const base = await value<string>(c, 'SELECT base FROM prekey_bases WHERE amid = $1', [amid])
        if (base === undefined) return undefined
        const out: TakenBundle = { base: JSON.parse(base) as Record<string, unknown> }
        const otk = await one<OneTimePrekey>(c, 'DELETE FROM one_time_prekeys WHERE amid = $1 AND id = (SELECT min(id) FROM one_time_prekeys WHERE amid = $1) RETURNING id, key', [amid])
        if (otk !== undefined) out.oneTime = { id: otk.id, key: otk.key }
        const pq = await one<PqOneTimePrekey>(c, 'DELETE FROM pq_one_time_prekeys WHERE amid = $1 AND id = (SELECT min(id) FROM pq_one_time_prekeys WHERE amid = $1) RETURNING id, key, sig', [amid])
        if (pq !== undefined) out.pqOneTime = { id: pq.id, key: pq.key, sig: pq.sig }
        return out
      })
    },
    async countOneTimePrekeys (amid) { return (await read(async (c) => await value<number>(c, 'SELECT count(*) FROM one_time_prekeys WHERE amid = $1', [amid])))! },
    async countPqOneTimePrekeys (amid) { return (await read(async (c) => await value<number>(c, 'SELECT count(*) FROM pq_one_time_prekeys WHERE amid = $1', [amid])))! },

    // ---- messages
    async commit (appends, acks, audit) { return await write(async (c) => await commitTx(c, appends, acks, audit)) },
    async read (recipient, afterSeq, limit): Promise<StoredMessage[]> {
      const rs = await read(async (c) => await rows<{ seq: number, sender: string, id: string, envelope: string, received_at: number }>(c,
        'SELECT seq, sender, id, envelope, received_at FROM messages WHERE recipient = $1 AND seq > $2 ORDER BY seq LIMIT $3', [recipient, afterSeq, limitOf(limit)]))
      return rs.map(r => ({ seq: r.seq, sender: r.sender, id: r.id, envelope: r.envelope, receivedAt: r.received_at }))
    },
    async inbox (recipient) {
      const b = await read(async (c) => await one<Box>(c, 'SELECT cursor, last_seq, pending FROM inboxes WHERE recipient = $1', [recipient]))
      return b === undefined ? { cursor: 0, lastSeq: 0, pending: 0 } : { cursor: b.cursor, lastSeq: b.last_seq, pending: b.pending }
    },
    async prune (now) {
      return await write(async (c) => {
        const cutoff = now - opts.retentionMs
        const counts = await rows<{ recipient: string, n: number }>(c, 'SELECT recipient, count(*) AS n FROM messages WHERE received_at <= $1 GROUP BY recipient', [cutoff])
        for (const x of counts) await run(c, 'UPDATE inboxes SET pending = greatest(0, pending - $1) WHERE recipient = $2', [x.n, x.recipient])
        const messages = (await run(c, 'DELETE FROM messages WHERE received_at <= $1', [cutoff])).rowCount ?? 0
        const dedupe = (await run(c, 'DELETE FROM dedupe WHERE expires_at <= $1', [now])).rowCount ?? 0
        return { messages, dedupe }
      })
    },
    async stats () {
      return await read(async (c) => ({
        agents: (await value<number>(c, 'SELECT count(*) FROM agents'))!,
        pending: (await value<number>(c, 'SELECT coalesce(sum(pending), 0) FROM inboxes'))!,
      }))
    },
    async setRoomDelivery (amid: string, delivery: RoomDelivery) {
      return await write(async (c) => await roomDeliveryIn(c, amid, delivery))
    },
    async roomFeeds (amid) { return (await read(async (c) => await rows<FeedRow>(c, FEEDS_OF, [amid]))).map(feedOf) },
    async roomFeed (room, amid) {
      const r = await read(async (c) => await one<FeedRow>(c, 'SELECT m.room AS room, m.cursor AS cursor, coalesce(s.last_seq, 0) AS last_seq FROM members m LEFT JOIN room_seqs s ON s.room = m.room WHERE m.room = $1 AND m.amid = $2 AND m.by_cursor = 1', [room, amid]))
      return r === undefined ? undefined : feedOf(r)
    },

    // ---- certificates
    async putCertificate (r) {
      await read(async (c) => await run(c, 'INSERT INTO certificates (amid, record, published_at) VALUES ($1, $2, $3) ON CONFLICT (amid) DO UPDATE SET record = excluded.record, published_at = excluded.published_at', [r.amid, JSON.stringify(r), r.publishedAt]))
    },
    async getCertificate (amid) { return parse(await read(async (c) => await value<string>(c, 'SELECT record FROM certificates WHERE amid = $1', [amid]))) },
    async putCaCertificate (ca) {
      await read(async (c) => await run(c, 'INSERT INTO ca_certificates (key, subject, pem, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [ca.key, ca.subject, ca.pem, ca.addedAt]))
    },
    async findCaCertificates (subject) {
      const rs = await read(async (c) => await rows<{ key: string, subject: string, pem: string, added_at: number }>(c, 'SELECT key, subject, pem, added_at FROM ca_certificates WHERE subject = $1 ORDER BY key', [subject]))
      return rs.map(r => ({ key: r.key, subject: r.subject, pem: r.pem, addedAt: r.added_at }))
    },
    async putCrl (crl) {
      return await write(async (c): Promise<PutCrlResult> => {
        const row = await one<CrlRow>(c, 'SELECT * FROM crls WHERE issuer_key = $1', [crl.issuerKey])
        const r = crlPutResult(row === undefined ? undefined : crlOf(row), crl)
        if (r.status === 'stored') {
          await run(c, 'INSERT INTO crls (issuer_key, issuer, this_update, next_update, revoked_count, pem, stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (issuer_key) DO UPDATE SET issuer = excluded.issuer, this_update = excluded.this_update, next_update = excluded.next_update, revoked_count = excluded.revoked_count, pem = excluded.pem, stored_at = excluded.stored_at',
            [crl.issuerKey, crl.issuer, crl.thisUpdate, crl.nextUpdate ?? null, crl.revokedCount, crl.pem, crl.storedAt])
        }
        return r
      })
    },
    async listCrls () { return (await read(async (c) => await rows<CrlRow>(c, 'SELECT * FROM crls'))).map(crlOf).sort(compareCrls) },

    // ---- reputation
    async putFeedback (f) {
      return await write(async (c) => {
        const row = await one<FeedbackRow>(c, 'SELECT * FROM feedback WHERE rater = $1 AND subject = $2', [f.rater, f.subject])
        await run(c, 'INSERT INTO feedback (rater, subject, score, comment, interaction, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rater, subject) DO UPDATE SET score = excluded.score, comment = excluded.comment, interaction = excluded.interaction, at = excluded.at',
          [f.rater, f.subject, f.score, f.comment ?? null, f.interaction ?? null, f.at])
        return row === undefined ? {} : { previous: feedbackOf(row) }
      })
    },
    async getFeedback (rater, subject) {
      const row = await read(async (c) => await one<FeedbackRow>(c, 'SELECT * FROM feedback WHERE rater = $1 AND subject = $2', [rater, subject]))
      return row === undefined ? undefined : feedbackOf(row)
    },
    async listFeedbackFor (subject) { return (await read(async (c) => await rows<FeedbackRow>(c, 'SELECT * FROM feedback WHERE subject = $1 ORDER BY rater', [subject]))).map(feedbackOf) },
    async listFeedbackBy (rater) { return (await read(async (c) => await rows<FeedbackRow>(c, 'SELECT * FROM feedback WHERE rater = $1 ORDER BY subject', [rater]))).map(feedbackOf) },
    async addScorePoint (subject, point, keep) {
      await write(async (c) => {
        await run(c, 'INSERT INTO score_points (subject, at, score) VALUES ($1, $2, $3)', [subject, point.at, point.score])
        const last = await value<number | null>(c, 'SELECT max(id) FROM score_points WHERE subject = $1 AND at < $2', [subject, keep.since])
        if (last !== null && last !== undefined) await run(c, 'DELETE FROM score_points WHERE subject = $1 AND at < $2 AND id < $3', [subject, keep.since, last])
        await run(c, 'DELETE FROM score_points WHERE subject = $1 AND id <= (SELECT id FROM score_points WHERE subject = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)', [subject, limitOf(keep.max)])
      })
    },
    async listScorePoints (subject, since) {
      return await read(async (c) => {
        const last = await value<number | null>(c, 'SELECT max(id) FROM score_points WHERE subject = $1 AND at < $2', [subject, since])
        const rs = await rows<{ at: number, score: number }>(c, 'SELECT at, score FROM score_points WHERE subject = $1 AND (at >= $2 OR id = $3) ORDER BY id', [subject, since, last ?? -1])
        return rs.map(r => ({ at: r.at, score: r.score }))
      })
    },
    async addReputationFlag (subject, flag, max) {
      await write(async (c) => {
        await run(c, 'INSERT INTO reputation_flags (subject, flag) VALUES ($1, $2)', [subject, JSON.stringify(flag)])
        await run(c, 'DELETE FROM reputation_flags WHERE subject = $1 AND id <= (SELECT id FROM reputation_flags WHERE subject = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)', [subject, limitOf(max)])
      })
    },
    async listReputationFlags (subject) {
      return (await read(async (c) => await column<string>(c, 'SELECT flag FROM reputation_flags WHERE subject = $1 ORDER BY id DESC', [subject]))).map(t => JSON.parse(t) as ReputationFlag)
    },

    // ---- handles and roles
    async setHandle (amid, handle) {
      return await write(async (c): Promise<{ status: 'set', previous?: string } | { status: 'taken', by: string }> => {
        const key = handle.toLowerCase()
        const holder = await value<string>(c, 'SELECT amid FROM handles WHERE handle_key = $1', [key])
        if (holder !== undefined && holder !== amid) return { status: 'taken', by: holder }
        const skel = handleSkeleton(handle)
        const lookalike = await value<string>(c, 'SELECT amid FROM handles WHERE handle_skel = $1 AND amid != $2 LIMIT 1', [skel, amid])
        if (lookalike !== undefined) return { status: 'taken', by: lookalike }
        const previous = await value<string>(c, 'SELECT handle FROM handles WHERE amid = $1', [amid])
        await run(c, 'INSERT INTO handles (amid, handle, handle_key, handle_skel) VALUES ($1, $2, $3, $4) ON CONFLICT (amid) DO UPDATE SET handle = excluded.handle, handle_key = excluded.handle_key, handle_skel = excluded.handle_skel', [amid, handle, key, skel])
        return previous === undefined ? { status: 'set' } : { status: 'set', previous }
      })
    },
    async handleOf (amid) { return await read(async (c) => await value<string>(c, 'SELECT handle FROM handles WHERE amid = $1', [amid])) },
    async resolveHandle (handle) { return await read(async (c) => await value<string>(c, 'SELECT amid FROM handles WHERE handle_key = $1', [handle.toLowerCase()])) },
    async setRole (amid, role) {
      await read(async (c) => role === 'worker'
        ? await run(c, 'DELETE FROM roles WHERE amid = $1', [amid])
        : await run(c, 'INSERT INTO roles (amid, role) VALUES ($1, $2) ON CONFLICT (amid) DO UPDATE SET role = excluded.role', [amid, role]))
    },
    async roleOf (amid) { return (await read(async (c) => await value<AgentRole>(c, 'SELECT role FROM roles WHERE amid = $1', [amid]))) ?? 'worker' },
    async listRoles () { return await read(async (c) => await rows<{ amid: string, role: AgentRole }>(c, 'SELECT amid, role FROM roles ORDER BY amid')) },

    // ---- rooms
    async createRoom (room) {
      return await write(async (c) => {
        const r = await run(c, 'INSERT INTO rooms (id, kind, topic, owner, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [room.id, room.kind, room.topic ?? null, room.owner ?? null, room.createdAt])
        if (r.rowCount === 0) return false
        if (room.owner !== undefined) {
          await run(c, `INSERT INTO members (room, amid, role, joined_at, cursor, by_cursor) VALUES ($1, $2, $3, $4,
            coalesce((SELECT last_seq FROM room_seqs WHERE room = $1), 0), CASE WHEN EXISTS (SELECT 1 FROM room_cursor_agents WHERE amid = $2) THEN 1 ELSE 0 END)
            ON CONFLICT (room, amid) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at`, [room.id, room.owner, 'owner', room.createdAt])
        }
        return true
      })
    },
    async getRoom (id) {
      const r = await read(async (c) => await one<RoomRow>(c, 'SELECT id, kind, topic, owner, created_at FROM rooms WHERE id = $1', [id]))
      return r === undefined ? undefined : roomOf(r)
    },
    async setTopic (id, topic) { return (await read(async (c) => await run(c, 'UPDATE rooms SET topic = $1 WHERE id = $2', [topic ?? null, id]))).rowCount === 1 },
    async listRooms (query) {
      const cols = 'id, kind, topic, owner, created_at'
      const values: unknown[] = [limitOf(query.limit)]
      const p = (v: unknown): string => { values.push(v); return '$' + values.length }
      const after = query.after === undefined ? undefined : p(query.after)
      const byKind = (): string => `SELECT ${cols} FROM rooms WHERE kind = ANY(${p([...query.kinds!])}::text[])${after === undefined ? '' : ` AND id > ${after}`} ORDER BY id LIMIT $1`
      const byMember = (): string => `SELECT r.id AS id, r.kind AS kind, r.topic AS topic, r.owner AS owner, r.created_at AS created_at FROM members m JOIN rooms r ON r.id = m.room WHERE m.amid = ${p(query.member)}${after === undefined ? '' : ` AND m.room > ${after}`} ORDER BY m.room LIMIT $1`
      let sql: string
      if (query.kinds !== undefined && query.member !== undefined) sql = `SELECT * FROM ((${byKind()}) UNION (${byMember()})) u ORDER BY id LIMIT $1`
      else if (query.kinds !== undefined) sql = byKind()
      else if (query.member !== undefined) sql = byMember()
      else sql = `SELECT ${cols} FROM rooms${after === undefined ? '' : ` WHERE id > ${after}`} ORDER BY id LIMIT $1`
      return (await read(async (c) => await rows<RoomRow>(c, sql, values))).map(roomOf)
    },
    async addMember (m) {
      return await write(async (c) => await addMemberIn(c, m))
    },
    async removeMember (room, amid) { return await write(async (c) => (await run(c, 'DELETE FROM members WHERE room = $1 AND amid = $2', [room, amid])).rowCount === 1) },
    async getMember (room, amid) {
      const r = await read(async (c) => await one<MemberRow>(c, 'SELECT room, amid, role, joined_at FROM members WHERE room = $1 AND amid = $2', [room, amid]))
      return r === undefined ? undefined : memberOf(r)
    },
    async listMembers (room) { return (await read(async (c) => await rows<MemberRow>(c, 'SELECT room, amid, role, joined_at FROM members WHERE room = $1 ORDER BY joined_at, amid', [room]))).map(memberOf) },
    async countMembers (room) { return (await read(async (c) => await value<number>(c, 'SELECT count(*) FROM members WHERE room = $1', [room])))! },
    async putInvite (i) {
      await read(async (c) => await run(c, 'INSERT INTO invites (room, amid, invited_by, at) VALUES ($1, $2, $3, $4) ON CONFLICT (room, amid) DO UPDATE SET invited_by = excluded.invited_by, at = excluded.at', [i.room, i.amid, i.by, i.at]))
    },
    async getInvite (room, amid) {
      const r = await read(async (c) => await one<{ room: string, amid: string, invited_by: string, at: number }>(c, 'SELECT room, amid, invited_by, at FROM invites WHERE room = $1 AND amid = $2', [room, amid]))
      return r === undefined ? undefined : { room: r.room, amid: r.amid, by: r.invited_by, at: r.at }
    },
    async appendMembership (room, seq, statement) {
      return await write(async (c) => {
        const last = await value<number | null>(c, 'SELECT max(seq) FROM membership WHERE room = $1', [room])
        if (seq !== (last === null || last === undefined ? 0 : last + 1)) return false
        await run(c, 'INSERT INTO membership (room, seq, statement) VALUES ($1, $2, $3)', [room, seq, statement])
        return true
      })
    },
    async listMembership (room) { return await read(async (c) => await column<string>(c, 'SELECT statement FROM membership WHERE room = $1 ORDER BY seq', [room])) },
    async readHistory (room, query) {
      const limit = limitOf(query.limit)
      return await read(async (c) => {
        if (query.after !== undefined) return (await rows<HistoryRow>(c, `SELECT ${HIST_COLS} FROM history WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [room, query.after, limit])).map(historyOf)
        const rs = query.before !== undefined
          ? await rows<HistoryRow>(c, `SELECT ${HIST_COLS} FROM history WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, [room, query.before, limit])
          : await rows<HistoryRow>(c, `SELECT ${HIST_COLS} FROM history WHERE room = $1 ORDER BY seq DESC LIMIT $2`, [room, limit])
        return rs.reverse().map(historyOf)
      })
    },
    async getHistoryEntry (room, seq) {
      const r = await read(async (c) => await one<HistoryRow>(c, `SELECT ${HIST_COLS} FROM history WHERE room = $1 AND seq = $2`, [room, seq]))
      return r === undefined ? undefined : historyOf(r)
    },
    async lastRoomSeq (room) { return await read(async (c) => await lastRoomSeq(c, room)) },
    async deleteHistoryEntry (room, seq, by, at) {
      return (await read(async (c) => await run(c, "UPDATE history SET envelope = '', deleted_by = $1, deleted_at = $2 WHERE room = $3 AND seq = $4 AND deleted_at IS NULL", [by, at, room, seq]))).rowCount === 1
    },
    async pruneHistory (olderThan, maxPerRoom, unreadOlderThan) {
      return await write(async (c) => {
        const unread = unreadOlderThan ?? olderThan
        const counts = await rows<{ room: string, n: number }>(c, `SELECT room, count(*) AS n FROM history WHERE received_at <= $3 AND ${UNREAD_GONE} GROUP BY room`, [unread, opts.maxInbox, olderThan])
        for (const x of counts) await run(c, 'UPDATE room_seqs SET entries = greatest(0, entries - $1) WHERE room = $2', [x.n, x.room])
        let removed = (await run(c, `DELETE FROM history WHERE received_at <= $3 AND ${UNREAD_GONE}`, [unread, opts.maxInbox, olderThan])).rowCount ?? 0
        const keep = limitOf(maxPerRoom)
        for (const r of await rows<{ room: string, entries: number }>(c, 'SELECT room, entries FROM room_seqs WHERE entries > $1', [keep])) {
          const min = await minCursor(c, r.room)
          const last = await lastRoomSeq(c, r.room)
          const guard = min === null ? Number.MAX_SAFE_INTEGER : Math.max(min + 1, last - opts.maxInbox + 1)
          const n = await dropOldest(c, r.room, guard, r.entries - keep)
          removed += n
          await run(c, 'UPDATE room_seqs SET entries = $1 WHERE room = $2', [r.entries - n, r.room])
        }
        return removed
      })
    },
    async setReadUpTo (room, amid, seq) {
      return (await read(async (c) => await value<number>(c, 'INSERT INTO read_markers (room, amid, up_to) VALUES ($1, $2, greatest($3::bigint, 0)) ON CONFLICT (room, amid) DO UPDATE SET up_to = greatest(read_markers.up_to, excluded.up_to) RETURNING up_to', [room, amid, seq])))!
    },
    async readMarkers (room) {
      return (await read(async (c) => await rows<{ amid: string, up_to: number }>(c, 'SELECT amid, up_to FROM read_markers WHERE room = $1 ORDER BY amid', [room]))).map(r => ({ amid: r.amid, upTo: r.up_to }))
    },

    // ---- tasks
    async putTask (t) {
      return (await read(async (c) => await run(c, 'INSERT INTO tasks (id, room, requester, assignee, state, created_at, deadline, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING', [t.id, ...taskColumns(t)]))).rowCount === 1
    },
    async getTask (id) { return parse<TaskRecord>(await read(async (c) => await value<string>(c, 'SELECT record FROM tasks WHERE id = $1', [id]))) },
    async updateTask (t, expect) {
      return (await read(async (c) => await run(c, 'UPDATE tasks SET room = $1, requester = $2, assignee = $3, state = $4, created_at = $5, deadline = $6, record = $7 WHERE id = $8 AND state = $9', [...taskColumns(t), t.id, expect]))).rowCount === 1
    },
    async listTasks (query) {
      return await read(async (c) => {
        const values: unknown[] = [limitOf(query.limit)]
        const p = (v: unknown): string => { values.push(v); return '$' + values.length }
        const conds: string[] = []
        if (query.room !== undefined) conds.push(`room = ${p(query.room)}`)
        if (query.state !== undefined) conds.push(`state = ${p(query.state)}`)
        if (query.before !== undefined) {
          const created = await value<number>(c, 'SELECT created_at FROM tasks WHERE id = $1', [query.before])
          const bid = p(query.before)
          if (created === undefined) conds.push(`id < ${bid}`)
          else conds.push(`(created_at, id) < (${p(created)}::bigint, ${bid})`)
        }
        const order = 'ORDER BY created_at DESC, id DESC LIMIT $1'
        const select = (extra: string[]): string => {
          const where = [...extra, ...conds]
          return `SELECT id, created_at, record FROM tasks${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')} ${order}`
        }
        let sql: string
        if (query.agent !== undefined) {
          const a = p(query.agent)
          sql = `SELECT record FROM ((${select([`requester = ${a}`])}) UNION (${select([`assignee = ${a}`])})) u ${order}`
        } else {
          sql = `SELECT record FROM (${select([])}) u`
        }
        return (await column<string>(c, sql, values)).map(t => JSON.parse(t) as TaskRecord)
      })
    },
    async overdueTasks (now, limit) {
      return (await read(async (c) => await column<string>(c, `SELECT record FROM tasks WHERE state IN (${OPEN_TASK_STATES}) AND deadline <= $1 ORDER BY deadline, id LIMIT $2`, [now, limitOf(limit)]))).map(t => JSON.parse(t) as TaskRecord)
    },

    // ---- audit
    async appendAudit (input) { return await write(async (c) => await insertAudit(c, input)) },
    async readAudit (query) {
      const back = query.after === undefined && query.before !== undefined
      const values: unknown[] = [limitOf(query.limit), back ? query.before : (query.after ?? 0)]
      const conds = [back ? 'seq < $2' : 'seq > $2']
      if (query.actor !== undefined) { values.push(query.actor); conds.push(`actor = $${values.length}`) }
      if (query.action !== undefined) { values.push(query.action); conds.push(`action = $${values.length}`) }
      const sql = `SELECT ${AUDIT_COLS} FROM audit WHERE ${conds.join(' AND ')} ORDER BY seq${back ? ' DESC' : ''} LIMIT $1`
      const rs = (await read(async (c) => await rows<AuditRow>(c, sql, values))).map(auditOf)
      return back ? rs.reverse() : rs
    },
    async lastAudit () {
      const r = await read(async (c) => await auditLast(c))
      return r === undefined ? undefined : auditOf(r)
    },
    async pruneAudit (olderThan, keep, note) {
      return await write(async (c) => {
        const last = await auditLast(c)
        if (last === undefined) return 0
        const first = (await value<number>(c, 'SELECT seq FROM audit ORDER BY seq LIMIT 1'))!
        const newer = await value<number>(c, 'SELECT seq FROM audit WHERE at > $1 ORDER BY seq LIMIT 1', [olderThan])
        const upTo = auditPruneUpTo(last.seq, newer, keep)
        if (upTo < first) return 0
        const n = (await run(c, 'DELETE FROM audit WHERE seq <= $1', [upTo])).rowCount ?? 0
        await insertAudit(c, [auditPrunedRow(note, n, upTo)])
        return n
      })
    },

    // ---- settings
    async getSettings () { return await read(settingsOf) },
    async putSettings (patch) {
      return await write(async (c) => {
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) await run(c, 'DELETE FROM settings WHERE key = $1', [k])
          else if (v !== undefined) await run(c, 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [k, JSON.stringify(v)])
        }
        return await settingsOf(c)
      })
    },

    // ---- files
    async beginFileUpload (id, owner, startedAt) {
      await read(async (c) => await run(c, 'INSERT INTO file_uploads (id, owner, started_at) VALUES ($1, $2, $3)', [id, owner, startedAt]))
    },
    async putFileChunk (id, index, bytes) {
      const stored = await read(async (c) => await run(c, `INSERT INTO file_chunks (file_id, idx, bytes) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM file_uploads WHERE id = $1)
        ON CONFLICT (file_id, idx) DO UPDATE SET bytes = excluded.bytes`, [id, index, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]))
      if (stored.rowCount !== 1) throw new Error(`no upload ${id} in progress`)
    },
    async completeFile (f, quota) {
      return await write(async (c): Promise<'stored' | 'quota'> => {
        if ((await run(c, 'DELETE FROM file_uploads WHERE id = $1', [f.id])).rowCount !== 1) throw new Error(`no upload ${f.id} in progress`)
        const used = await usage(c, f.owner)
        if (used.bytes + f.size > quota.bytes || used.files + 1 > quota.files) {
          await run(c, 'DELETE FROM file_chunks WHERE file_id = $1', [f.id])
          return 'quota'
        }
        await run(c, 'INSERT INTO files (id, owner, filename, type, size, sha256, description, created_at, visibility) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          [f.id, f.owner, f.filename, f.type, f.size, f.sha256, f.description ?? null, f.createdAt, f.visibility])
        for (const a of f.sharedWith) await run(c, 'INSERT INTO file_shares (file_id, amid) VALUES ($1, $2) ON CONFLICT DO NOTHING', [f.id, a])
        return 'stored'
      })
    },
    async abortFileUpload (id) {
      await write(async (c) => {
        if ((await run(c, 'DELETE FROM file_uploads WHERE id = $1', [id])).rowCount !== 1) return // a complete file keeps its chunks
        await run(c, 'DELETE FROM file_chunks WHERE file_id = $1', [id])
      })
    },
    async dropFileUploads (before) {
      return await write(async (c) => {
        const ids = await column<string>(c, 'DELETE FROM file_uploads WHERE started_at < $1 RETURNING id', [before])
        for (const id of ids) await run(c, 'DELETE FROM file_chunks WHERE file_id = $1', [id])
        await run(c, 'DELETE FROM file_chunks WHERE file_id NOT IN (SELECT id FROM files) AND file_id NOT IN (SELECT id FROM file_uploads)')
        return ids.length
      })
    },
    async getFile (id) {
      return await read(async (c) => {
        const r = await one<FileRow>(c, 'SELECT * FROM files WHERE id = $1', [id])
        return r === undefined ? undefined : await fileOf(c, r)
      })
    },
    async * readFileChunks (id) {
      live()
      if (await read(async (c) => await one(c, 'SELECT 1 FROM files WHERE id = $1', [id])) === undefined) return
      // one chunk a statement: a reader holds no connection across its awaits
      for (let i = 0; ; i++) {
        const b = await read(async (c) => await value<Buffer>(c, 'SELECT bytes FROM file_chunks WHERE file_id = $1 AND idx = $2', [id, i]))
        if (b === undefined) return
        yield new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
      }
    },
    async listFiles (query) {
      return await read(async (c) => {
        const rs = await rows<FileRow>(c, `SELECT * FROM files WHERE ($1::text IS NULL OR id < $1) AND ($2::text IS NULL OR owner = $2) AND ($3::text IS NULL
            OR owner = $3 OR visibility = 'public'
            OR (visibility = 'private' AND id IN (SELECT file_id FROM file_shares WHERE amid = $3))
            OR (substr(visibility, 1, 1) = '#' AND substr(visibility, 2) = ANY($4::text[])))
          ORDER BY id DESC LIMIT $5`, [query.before ?? null, query.owner ?? null, query.viewer?.amid ?? null, [...(query.viewer?.rooms ?? [])], limitOf(query.limit)])
        const out: FileRecord[] = []
        for (const r of rs) out.push(await fileOf(c, r))
        return out
      })
    },
    async deleteFile (id) {
      return await write(async (c) => {
        const gone = (await run(c, 'DELETE FROM files WHERE id = $1', [id])).rowCount === 1
        if (gone) {
          await run(c, 'DELETE FROM file_shares WHERE file_id = $1', [id])
          await run(c, 'DELETE FROM file_chunks WHERE file_id = $1', [id])
        }
        return gone
      })
    },
    async fileUsage (owner) { return await read(async (c) => await usage(c, owner)) },

    // ---- system updates
    async putUpdate (u) {
      return (await read(async (c) => await run(c, 'INSERT INTO updates (id, created_at, expires_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [u.id, u.createdAt, u.expiresAt ?? null, JSON.stringify(u)]))).rowCount === 1
    },
    async getUpdate (id) { return parse<UpdateRecord>(await read(async (c) => await value<string>(c, 'SELECT body FROM updates WHERE id = $1', [id]))) },
    async listUpdates (query) {
      return (await read(async (c) => await column<string>(c, `SELECT body FROM updates
        WHERE ($1::bigint IS NULL OR created_at >= $1) AND ($2::bigint IS NULL OR expires_at IS NULL OR expires_at > $2)
        ORDER BY created_at DESC, id DESC LIMIT $3`, [query.since ?? null, query.activeAt ?? null, limitOf(query.limit)]))).map(t => JSON.parse(t) as UpdateRecord)
    },
    async putUpdateAck (ack, expect) {
      const body = JSON.stringify(ack)
      const r = await read(async (c) => expect === 'pending'
        ? await run(c, 'INSERT INTO update_acks (update_id, amid, status, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [ack.updateId, ack.amid, ack.status, body])
        : await run(c, 'UPDATE update_acks SET status = $1, body = $2 WHERE update_id = $3 AND amid = $4 AND status = $5', [ack.status, body, ack.updateId, ack.amid, expect]))
      return r.rowCount === 1
    },
    async getUpdateAck (updateId, amid) { return parse<UpdateAckRecord>(await read(async (c) => await value<string>(c, 'SELECT body FROM update_acks WHERE update_id = $1 AND amid = $2', [updateId, amid]))) },
    async listUpdateAcks (updateId) {
      return (await read(async (c) => await column<string>(c, 'SELECT body FROM update_acks WHERE update_id = $1 ORDER BY amid', [updateId]))).map(t => JSON.parse(t) as UpdateAckRecord)
    },
    async agentUpdateAcks (amid, updateIds) {
      const found = await read(async (c) => await column<string>(c, 'SELECT body FROM update_acks WHERE amid = $1 AND update_id = ANY($2::text[])', [amid, [...updateIds]]))
      const byId = new Map(found.map(t => { const a = JSON.parse(t) as UpdateAckRecord; return [a.updateId, a] }))
      const out: UpdateAckRecord[] = []
      for (const id of updateIds) { const a = byId.get(id); if (a !== undefined) out.push(a) }
      return out
    },
    async setAgentVersion (amid, version, at) {
      await read(async (c) => await run(c, 'INSERT INTO agent_versions (amid, version, at) VALUES ($1, $2, $3) ON CONFLICT (amid) DO UPDATE SET version = excluded.version, at = excluded.at', [amid, version, at]))
    },
    async listAgentVersions () { return await read(async (c) => await rows<{ amid: string, version: string, at: number }>(c, 'SELECT amid, version, at FROM agent_versions ORDER BY amid')) },

    // ---- agent health
    async putHeartbeat (hb: HeartbeatRecord) {
      await read(async (c) => await run(c, 'INSERT INTO heartbeats (amid, record, at) VALUES ($1, $2, $3) ON CONFLICT (amid) DO UPDATE SET record = excluded.record, at = excluded.at', [hb.amid, JSON.stringify(hb), hb.at]))
    },
    async getHeartbeat (amid) { return parse<HeartbeatRecord>(await read(async (c) => await value<string>(c, 'SELECT record FROM heartbeats WHERE amid = $1', [amid]))) },
    async listHeartbeats (query) {
      if (query.limit <= 0) return []
      return (await read(async (c) => await column<string>(c, 'SELECT record FROM heartbeats WHERE amid > $1 ORDER BY amid LIMIT $2', [query.after ?? '', limitOf(query.limit)]))).map(t => JSON.parse(t) as HeartbeatRecord)
    },
    async addHealthChange (amid, change, keep) {
      await write(async (c) => {
        const n = ((await value<number | null>(c, 'SELECT max(n) FROM health_changes WHERE amid = $1', [amid])) ?? 0) + 1
        await run(c, 'INSERT INTO health_changes (amid, n, at, change) VALUES ($1, $2, $3, $4)', [amid, n, change.at, JSON.stringify(change)])
        await run(c, 'DELETE FROM health_changes WHERE amid = $1 AND n <= $2', [amid, n - Math.max(0, keep)])
      })
    },
    async healthHistory (amid, limit) {
      if (limit <= 0) return []
      return (await read(async (c) => await column<string>(c, 'SELECT change FROM health_changes WHERE amid = $1 ORDER BY n DESC LIMIT $2', [amid, limitOf(limit)]))).map(t => JSON.parse(t) as HealthChange)
    },

    // ---- wake webhooks (§26)
    async putWebhook (rec) {
      await read(async (c) => await run(c, 'INSERT INTO webhooks (amid, url, created_at) VALUES ($1, $2, $3) ON CONFLICT (amid) DO UPDATE SET url = excluded.url, created_at = excluded.created_at', [rec.amid, rec.url, rec.createdAt]))
    },
    async getWebhook (amid) {
      const r = await read(async (c) => await rows<{ amid: string, url: string, created_at: string | number }>(c, 'SELECT amid, url, created_at FROM webhooks WHERE amid = $1', [amid]))
      const x = r[0]
      return x === undefined ? undefined : { amid: x.amid, url: x.url, createdAt: Number(x.created_at) }
    },
    async deleteWebhook (amid) {
      return (await read(async (c) => await run(c, 'DELETE FROM webhooks WHERE amid = $1', [amid]))).rowCount === 1
    },

    // ---- owner links (§28)
    async putOwnerLink (l) {
      await read(async (c) => await run(c, `INSERT INTO owner_links (amid, issuer, subject, linked_at, record) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (amid) DO UPDATE SET issuer = excluded.issuer, subject = excluded.subject, linked_at = excluded.linked_at, record = excluded.record`, [l.amid, l.issuer, l.subject, l.linkedAt, JSON.stringify(l)]))
    },
    async getOwnerLink (amid) { return parse<OwnerLinkRecord>(await read(async (c) => await value<string>(c, 'SELECT record FROM owner_links WHERE amid = $1', [amid]))) },
    async deleteOwnerLink (amid) { return ((await read(async (c) => await run(c, 'DELETE FROM owner_links WHERE amid = $1', [amid]))).rowCount ?? 0) > 0 },
    async countOwnerLinks (issuer, subject) {
      return Number(await read(async (c) => await value<string | number>(c, 'SELECT count(*) FROM owner_links WHERE issuer = $1 AND subject = $2', [issuer, subject])))
    },
    // ---- catastrophe events and the run marker (backups and integrity checks are PostgreSQL's own: pg_dump, amcheck)
    async putCatastrophe (e) {
      return (await read(async (c) => await run(c, 'INSERT INTO catastrophes (id, status, severity, reported_at, record) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [e.id, e.status, e.severity, e.reportedAt, JSON.stringify(e)]))).rowCount === 1
    },
    async getCatastrophe (id) { return parse<CatastropheRecord>(await read(async (c) => await value<string>(c, 'SELECT record FROM catastrophes WHERE id = $1', [id]))) },
    async updateCatastrophe (e, expect) {
      return (await read(async (c) => await run(c, 'UPDATE catastrophes SET status = $1, record = $2 WHERE id = $3 AND status = $4', [e.status, JSON.stringify(e), e.id, expect]))).rowCount === 1
    },
    async listCatastrophes (query) {
      return await read(async (c) => {
        const values: unknown[] = [limitOf(query.limit)]
        const p = (v: unknown): string => { values.push(v); return '$' + values.length }
        const conds: string[] = []
        if (query.status !== undefined) conds.push(`status = ${p(query.status)}`)
        if (query.severity !== undefined) conds.push(`severity = ${p(query.severity)}`)
        if (query.before !== undefined) {
          const at = await value<number>(c, 'SELECT reported_at FROM catastrophes WHERE id = $1', [query.before])
          if (at === undefined) return []
          conds.push(`(reported_at, id) < (${p(at)}::bigint, ${p(query.before)}::text)`)
        }
        const sql = `SELECT record FROM catastrophes${conds.length === 0 ? '' : ' WHERE ' + conds.join(' AND ')} ORDER BY reported_at DESC, id DESC LIMIT $1`
        return (await column<string>(c, sql, values)).map(t => JSON.parse(t) as CatastropheRecord)
      })
    },
    async openCatastrophes (limit) {
      return (await read(async (c) => await column<string>(c, "SELECT record FROM catastrophes WHERE status <> 'resolved' ORDER BY reported_at, id LIMIT $1", [limitOf(limit)]))).map(t => JSON.parse(t) as CatastropheRecord)
    },
    async beginRun (at) {
      return await write(async (c) => {
        const prev = await value<string>(c, "SELECT value FROM meta WHERE key = 'running_since'")
        await run(c, "INSERT INTO meta (key, value) VALUES ('running_since', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(at)])
        return prev === undefined ? undefined : { since: Number(prev) }
      })
    },
    async endRun () { await read(async (c) => await run(c, "DELETE FROM meta WHERE key = 'running_since'")) },

    async close () {
      if (closed) return
      closed = true
      await tail.catch(() => {})
      await pool.end()
    },
  }
}
