/**
 * In-memory Store: for tests and `agentmesh serve --memory`. Nothing survives the process.
 * The slices that share no state with a commit (prekeys, certificates, reputation, handles, roles,
 * tasks, settings) live in ./memory/; registry, messages, rooms and audit stay here, since one commit
 * writes inboxes, room history and the audit chain together.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { storeOptions } from './options.ts'
import type { AgentOnlineResult, AgentProfile, AgentRecord, AppendItem, AppendResult, AuditInput, AuditRecord, CursorAck, HistoryEntry, InboxState, InviteRecord, MemberRecord, RoomFeed, RoomRecord, Store, StoreInit, StoredMessage } from './types.ts'
import { profileMatches } from './registry.ts'
import { auditPruneUpTo, auditPrunedRow, batchAuditRow, chainAudit } from './audit.ts'
import { memoryCertificates } from './memory/certificates.ts'
import { memoryPrekeys } from './memory/prekeys.ts'
import { memoryUpdates } from './memory/updates.ts'
import { memoryCatastrophes } from './memory/catastrophes.ts'
import { memoryHandles } from './memory/handles.ts'
import { memoryReputation } from './memory/reputation.ts'
import { memoryRoles } from './memory/roles.ts'
import { memorySettings } from './memory/settings.ts'
import { memoryTasks } from './memory/tasks.ts'
import { memoryFiles } from './memory/files.ts'
import { memoryHealth } from './memory/health.ts'
import { memoryWebhooks } from './memory/webhooks.ts'
import { memoryOwners } from './memory/owners.ts'
import { byKey, nested } from './memory/util.ts'

interface Inbox { cursor: number, lastSeq: number, messages: StoredMessage[] }
interface Seen { seq: number, expiresAt: number }
/** A room's history: the entries kept (ascending seq) and the last seq it assigned (never reused). */
interface History { lastSeq: number, entries: HistoryEntry[] }
/** A membership with its room cursor and how the member receives the room's messages. */
interface Member extends MemberRecord { cursor: number, byCursor: boolean }
/** What an inbox copy is made of. */
type Copy = Pick<StoredMessage, 'sender' | 'id' | 'envelope' | 'receivedAt'>

const memberRecord = (m: Member): MemberRecord => ({ room: m.room, amid: m.amid, role: m.role, joinedAt: m.joinedAt })

/** The audit rows to chain, with `detail` as its JSON text reads back (what a persistent store keeps). */
function auditInputs (rows: readonly AuditInput[]): AuditInput[] {
  return rows.map(r => ({
    at: r.at,
    actor: r.actor,
    action: r.action,
    ...(r.target === undefined ? {} : { target: r.target }),
    detail: JSON.parse(JSON.stringify(r.detail ?? {})) as Record<string, unknown>,
  }))
}

export function memoryStore (init: StoreInit = {}): Store {
  const opts = storeOptions(init)
  const id = randomUUID()
  const agents = new Map<string, AgentRecord>()
  const inboxes = new Map<string, Inbox>()
  const dedupe = new Map<string, Seen>()
  const profiles = new Map<string, AgentProfile>()
  const secret = randomBytes(32).toString('base64url')
  const rooms = new Map<string, RoomRecord>()
  /** room → amid → membership, and amid → the rooms it is a member of */
  const members = new Map<string, Map<string, Member>>()
  /** agents whose delivery is 'cursor' (setRoomDelivery) */
  const byCursor = new Set<string>()
  const memberOf = new Map<string, Set<string>>()
  const invites = new Map<string, Map<string, InviteRecord>>()
  /** room → its membership statements, by seq */
  const membership = new Map<string, string[]>()
  const histories = new Map<string, History>()
  const readUpTo = new Map<string, Map<string, number>>()
  const audit: AuditRecord[] = []
  let closed = false

  const inboxOf = (r: string): Inbox => {
    let i = inboxes.get(r)
    if (i === undefined) { i = { cursor: 0, lastSeq: 0, messages: [] }; inboxes.set(r, i) }
    return i
  }
  const live = (): void => { if (closed) throw new AgentMeshError(ErrorCode.Internal, 'the store is closed') }
  const historyOf = (room: string): History => {
    let h = histories.get(room)
    if (h === undefined) { h = { lastSeq: 0, entries: [] }; histories.set(room, h) }
    return h
  }
  /** The entry of `seq` in a room's history (entries are in seq order). */
  const findEntry = (room: string, seq: number): HistoryEntry | undefined => {
    const entries = histories.get(room)?.entries
    if (entries === undefined) return undefined
    let lo = 0
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const s = entries[mid]!.seq
      if (s === seq) return entries[mid]
      if (s < seq) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }
  const copyEntry = (e: HistoryEntry): HistoryEntry => ({ ...e, ...(e.deleted === undefined ? {} : { deleted: { ...e.deleted } }) })
  const copyAudit = (r: AuditRecord): AuditRecord => structuredClone(r)
  /** Appends `m` to an inbox; undefined when the inbox is full. */
  const toInbox = (recipient: string, m: Copy): number | undefined => {
    const box = inboxOf(recipient)
    if (box.messages.length >= opts.maxInbox) return undefined
    const seq = ++box.lastSeq
    box.messages.push({ seq, sender: m.sender, id: m.id, envelope: m.envelope, receivedAt: m.receivedAt })
    return seq
  }
  /**
   * The first seq of a room's log that some member reading by cursor has not read, within the
   * newest maxInbox (what trimming keeps); Infinity when none.
   */
  const unreadFrom = (room: string, h: History): number => {
    let min = Infinity
    for (const mem of members.get(room)?.values() ?? []) if (mem.byCursor && mem.cursor < min) min = mem.cursor
    return min === Infinity ? min : Math.max(min + 1, h.lastSeq - opts.maxInbox + 1)
  }
  /** Drops the oldest entries beyond historyMaxPerRoom, but none a member has not read (unreadFrom). */
  const trimHistory = (room: string, h: History): void => {
    const over = h.entries.length - opts.historyMaxPerRoom
    if (over <= 0) return
    const guard = unreadFrom(room, h)
    let n = 0
    while (n < over && h.entries[n]!.seq < guard) n++
    if (n > 0) h.entries.splice(0, n)
  }
  const feedOf = (mem: Member): RoomFeed => ({ room: mem.room, cursor: mem.cursor, lastSeq: histories.get(mem.room)?.lastSeq ?? 0 })
  const newMember = (m: MemberRecord): Member => ({ room: m.room, amid: m.amid, role: m.role, joinedAt: m.joinedAt, cursor: histories.get(m.room)?.lastSeq ?? 0, byCursor: byCursor.has(m.amid) })
  const remember = (key: string, seq: number, receivedAt: number): void => {
    dedupe.set(key, { seq, expiresAt: receivedAt + opts.retentionMs })
    // bounded: forget the oldest ids first (Map keeps insertion order)
    if (dedupe.size > opts.maxDedupeEntries) dedupe.delete(dedupe.keys().next().value as string)
  }
  const appendAuditRows = (rows: readonly AuditInput[]): AuditRecord[] => {
    if (rows.length === 0) return []
    const recs = chainAudit(audit[audit.length - 1], auditInputs(rows))
    audit.push(...recs)
    return recs.map(copyAudit)
  }

  return {
    kind: 'memory',
    async relayId () { live(); return id },
    async upsertAgent (a) {
      live()
      const old = agents.get(a.amid)
      if (old !== undefined) {
        old.lastSeenAt = a.seenAt
        if (a.name !== undefined) old.name = a.name
        return { created: false }
      }
      agents.set(a.amid, { amid: a.amid, ...(a.name === undefined ? {} : { name: a.name }), registeredAt: a.seenAt, lastSeenAt: a.seenAt })
      return { created: true }
    },
    async getAgent (amid) { live(); const a = agents.get(amid); return a === undefined ? undefined : { ...a } },
    async commit (appends: readonly AppendItem[], acks: readonly CursorAck[], auditRows?: readonly AuditInput[]) {
      live()
      // prepared first: a row that cannot be stored fails the commit before it changed anything
      const auditIn = auditRows === undefined || auditRows.length === 0 ? undefined : auditInputs(auditRows)
      const itemAudit = appends.map(m => m.audit === undefined ? undefined : auditInputs([m.audit])[0])
      const out: AppendResult[] = []
      /** rooms that grew: trimmed after the acks (what they read is known then) */
      const trimmed = new Set<string>()
      for (const m of appends) {
        const key = m.sender + '\n' + m.id
        const seen = dedupe.get(key)
        if (seen !== undefined) { out.push({ status: 'duplicate', seq: seen.seq }); continue }
        if (m.room !== undefined) {
          // a room message: once in the history (the room seq); members reading by cursor read it
          // there, the fan-out inboxes and the members whose delivery is 'inbox' get a copy
          const h = historyOf(m.room)
          const seq = ++h.lastSeq
          h.entries.push({ seq, sender: m.sender, id: m.id, envelope: m.envelope, receivedAt: m.receivedAt })
          trimmed.add(m.room)
          const deliveries: Array<{ recipient: string, seq: number }> = []
          const copied = new Set<string>()
          const copy = (r: string): void => {
            if (copied.has(r)) return
            copied.add(r)
            const s = toInbox(r, m)
            if (s !== undefined) deliveries.push({ recipient: r, seq: s })
          }
          // a fan-out inbox of an agent reading the room by cursor gets no copy: it reads the log
          const room = members.get(m.room)
          for (const r of m.fanout ?? []) if (room?.get(r)?.byCursor !== true) copy(r)
          const inboxMembers: string[] = []
          for (const mem of room?.values() ?? []) if (!mem.byCursor && mem.amid !== m.sender) inboxMembers.push(mem.amid)
          for (const r of inboxMembers.sort(byKey)) copy(r)
          remember(key, seq, m.receivedAt)
          out.push({ status: 'stored', seq, deliveries })
          continue
        }
        const seq = toInbox(m.recipient, m)
        if (seq === undefined) { out.push({ status: 'inbox_full' }); continue }
        remember(key, seq, m.receivedAt)
        out.push({ status: 'stored', seq })
      }
      for (const a of acks) {
        if (a.room !== undefined) {
          const mem = members.get(a.room)?.get(a.recipient)
          if (mem?.byCursor === true) mem.cursor = Math.max(mem.cursor, Math.min(a.seq, histories.get(a.room)?.lastSeq ?? 0))
          continue
        }
        const box = inboxOf(a.recipient)
        const seq = Math.min(a.seq, box.lastSeq)
        if (seq <= box.cursor) continue
        box.cursor = seq
        let n = 0
        while (n < box.messages.length && box.messages[n]!.seq <= seq) n++
        box.messages.splice(0, n)
      }
      for (const room of trimmed) trimHistory(room, historyOf(room))
      const rows: AuditInput[] = []
      const batch = batchAuditRow(appends, out)
      if (batch !== undefined) rows.push(...auditInputs([batch]))
      out.forEach((r, i) => { const a = itemAudit[i]; if (r.status === 'stored' && a !== undefined) rows.push(a) })
      if (auditIn !== undefined) rows.push(...auditIn)
      if (rows.length > 0) audit.push(...chainAudit(audit[audit.length - 1], rows))
      return out
    },
    async read (recipient, afterSeq, limit): Promise<StoredMessage[]> {
      live()
      const box = inboxes.get(recipient)
      if (box === undefined) return []
      const out: StoredMessage[] = []
      for (const m of box.messages) {
        if (m.seq > afterSeq) { out.push({ ...m }); if (out.length >= limit) break }
      }
      return out
    },
    async inbox (recipient): Promise<InboxState> {
      live()
      const box = inboxes.get(recipient)
      return box === undefined ? { cursor: 0, lastSeq: 0, pending: 0 } : { cursor: box.cursor, lastSeq: box.lastSeq, pending: box.messages.length }
    },
    async prune (now) {
      live()
      let messages = 0
      let removed = 0
      for (const box of inboxes.values()) {
        const before = box.messages.length
        box.messages = box.messages.filter(m => m.receivedAt + opts.retentionMs > now)
        messages += before - box.messages.length
      }
      for (const [k, s] of dedupe) if (s.expiresAt <= now) { dedupe.delete(k); removed++ }
      return { messages, dedupe: removed }
    },
    async stats () {
      live()
      let pending = 0
      for (const b of inboxes.values()) pending += b.messages.length
      return { agents: agents.size, pending }
    },
    async agentsOnline (batch) {
      live()
      const out: AgentOnlineResult[] = []
      for (const a of batch) {
        const { created } = await this.upsertAgent({ amid: a.amid, ...(a.name === undefined ? {} : { name: a.name }), seenAt: a.seenAt })
        if (a.join !== undefined) await this.addMember(a.join)
        out.push({ created, feeds: await this.setRoomDelivery(a.amid, a.delivery) })
      }
      return out
    },
    async setRoomDelivery (amid, delivery) {
      live()
      const mine = [...(memberOf.get(amid) ?? [])].sort(byKey).map(r => members.get(r)!.get(amid)!)
      if (delivery === 'cursor') {
        byCursor.add(amid)
        for (const mem of mine) if (!mem.byCursor) { mem.byCursor = true; mem.cursor = histories.get(mem.room)?.lastSeq ?? 0 }
        return mine.map(feedOf)
      }
      byCursor.delete(amid)
      for (const mem of mine) {
        if (!mem.byCursor) continue
        // what it has not read yet goes to its inbox, as copies would have
        for (const e of histories.get(mem.room)?.entries ?? []) {
          if (e.seq > mem.cursor && e.deleted === undefined && e.sender !== amid) toInbox(amid, e)
        }
        mem.byCursor = false
        mem.cursor = histories.get(mem.room)?.lastSeq ?? 0
      }
      return []
    },
    async roomFeeds (amid) {
      live()
      return [...(memberOf.get(amid) ?? [])].sort(byKey).map(r => members.get(r)!.get(amid)!).filter(m => m.byCursor).map(feedOf)
    },
    async roomFeed (room, amid) {
      live()
      const mem = members.get(room)?.get(amid)
      return mem?.byCursor === true ? feedOf(mem) : undefined
    },
    async putProfile (p) { live(); profiles.set(p.amid, structuredClone(p)) },
    async getProfile (amid) { live(); const p = profiles.get(amid); return p === undefined ? undefined : structuredClone(p) },
    async searchProfiles (q) {
      live()
      return [...profiles.values()].filter(p => profileMatches(p, q)).sort((a, b) => a.amid < b.amid ? -1 : 1).slice(0, q.limit).map(p => structuredClone(p))
    },
    // ---- chat
    async relaySecret () { live(); return secret },
    async listAgents (q) {
      live()
      const out: string[] = []
      for (const amid of agents.keys()) if (q.after === undefined || amid > q.after) out.push(amid)
      return out.sort(byKey).slice(0, Math.max(0, q.limit))
    },
    async createRoom (room) {
      live()
      if (rooms.has(room.id)) return false
      rooms.set(room.id, { ...room })
      if (room.owner !== undefined) {
        nested(members, room.id).set(room.owner, newMember({ room: room.id, amid: room.owner, role: 'owner', joinedAt: room.createdAt }))
        let set = memberOf.get(room.owner)
        if (set === undefined) { set = new Set(); memberOf.set(room.owner, set) }
        set.add(room.id)
      }
      return true
    },
    async getRoom (id) { live(); const r = rooms.get(id); return r === undefined ? undefined : { ...r } },
    async setTopic (id, topic) {
      live()
      const r = rooms.get(id)
      if (r === undefined) return false
      if (topic === undefined) delete r.topic
      else r.topic = topic
      return true
    },
    async listRooms (q) {
      live()
      const kinds = q.kinds === undefined ? undefined : new Set(q.kinds)
      const mine = q.member === undefined ? undefined : memberOf.get(q.member) ?? new Set<string>()
      const out: RoomRecord[] = []
      for (const r of rooms.values()) {
        if (q.after !== undefined && r.id <= q.after) continue
        if (kinds !== undefined || mine !== undefined) {
          if (!(kinds?.has(r.kind) === true || mine?.has(r.id) === true)) continue
        }
        out.push(r)
      }
      return out.sort((a, b) => byKey(a.id, b.id)).slice(0, Math.max(0, q.limit)).map(r => ({ ...r }))
    },
    async addMember (m) {
      live()
      const room = nested(members, m.room)
      if (room.has(m.amid)) return false
      room.set(m.amid, newMember(m))
      let set = memberOf.get(m.amid)
      if (set === undefined) { set = new Set(); memberOf.set(m.amid, set) }
      set.add(m.room)
      invites.get(m.room)?.delete(m.amid)
      return true
    },
    async removeMember (room, amid) {
      live()
      const had = members.get(room)?.delete(amid) ?? false
      if (had) memberOf.get(amid)?.delete(room)
      return had
    },
    async getMember (room, amid) { live(); const m = members.get(room)?.get(amid); return m === undefined ? undefined : memberRecord(m) },
    async listMembers (room) {
      live()
      return [...(members.get(room)?.values() ?? [])]
        .sort((a, b) => a.joinedAt !== b.joinedAt ? a.joinedAt - b.joinedAt : byKey(a.amid, b.amid))
        .map(memberRecord)
    },
    async countMembers (room) { live(); return members.get(room)?.size ?? 0 },
    async putInvite (i) { live(); nested(invites, i.room).set(i.amid, { room: i.room, amid: i.amid, by: i.by, at: i.at }) },
    async getInvite (room, amid) { live(); const i = invites.get(room)?.get(amid); return i === undefined ? undefined : { ...i } },
    async appendMembership (room, seq, statement) {
      live()
      const chain = membership.get(room) ?? []
      if (seq !== chain.length) return false
      chain.push(statement)
      membership.set(room, chain)
      return true
    },
    async listMembership (room) { live(); return [...(membership.get(room) ?? [])] },
    async readHistory (room, q) {
      live()
      const entries = histories.get(room)?.entries ?? []
      let picked: HistoryEntry[]
      if (q.after !== undefined) {
        const after = q.after
        picked = entries.filter(e => e.seq > after).slice(0, Math.max(0, q.limit))
      } else {
        const before = q.before
        const older = before === undefined ? entries : entries.filter(e => e.seq < before)
        picked = q.limit <= 0 ? [] : older.slice(Math.max(0, older.length - q.limit))
      }
      return picked.map(copyEntry)
    },
    async getHistoryEntry (room, seq) {
      live()
      const e = findEntry(room, seq)
      return e === undefined ? undefined : copyEntry(e)
    },
    async lastRoomSeq (room) { live(); return histories.get(room)?.lastSeq ?? 0 },
    async deleteHistoryEntry (room, seq, by, at) {
      live()
      const e = findEntry(room, seq)
      if (e === undefined || e.deleted !== undefined) return false
      e.envelope = ''
      e.deleted = { by, at }
      return true
    },
    async pruneHistory (olderThan, maxPerRoom, unreadOlderThan = olderThan) {
      live()
      let removed = 0
      for (const [room, h] of histories) {
        const before = h.entries.length
        // an entry a member has not read stays until unreadOlderThan
        const guard = unreadFrom(room, h)
        const fresh = h.entries.filter(e => e.receivedAt > olderThan || (e.seq >= guard && e.receivedAt > unreadOlderThan))
        let n = 0
        while (n < fresh.length - maxPerRoom && fresh[n]!.seq < guard) n++
        h.entries = fresh.slice(n)
        removed += before - h.entries.length
      }
      return removed
    },
    async setReadUpTo (room, amid, seq) {
      live()
      const marks = nested(readUpTo, room)
      const upTo = Math.max(marks.get(amid) ?? 0, seq)
      marks.set(amid, upTo)
      return upTo
    },
    async readMarkers (room) {
      live()
      return [...(readUpTo.get(room) ?? [])].sort((a, b) => byKey(a[0], b[0])).map(([amid, upTo]) => ({ amid, upTo }))
    },
    async appendAudit (rows) { live(); return appendAuditRows(rows) },
    async readAudit (q) {
      live()
      const out: AuditRecord[] = []
      // seqs run without gaps from the oldest row kept: row n is at index n - that row's seq
      const base = audit[0]?.seq ?? 1
      const keep = (r: AuditRecord): boolean => (q.actor === undefined || r.actor === q.actor) && (q.action === undefined || r.action === q.action)
      if (q.after === undefined && q.before !== undefined) {
        for (let i = Math.min(audit.length, q.before - base) - 1; i >= 0 && out.length < q.limit; i--) if (keep(audit[i]!)) out.push(copyAudit(audit[i]!))
        return out.reverse()
      }
      for (let i = Math.max(0, (q.after ?? 0) + 1 - base); i < audit.length && out.length < q.limit; i++) {
        const r = audit[i]!
        if (q.actor !== undefined && r.actor !== q.actor) continue
        if (q.action !== undefined && r.action !== q.action) continue
        out.push(copyAudit(r))
      }
      return out
    },
    async lastAudit () { live(); const r = audit[audit.length - 1]; return r === undefined ? undefined : copyAudit(r) },
    async pruneAudit (olderThan, keep, note) {
      live()
      const first = audit[0]
      if (first === undefined) return 0
      const upTo = auditPruneUpTo(audit[audit.length - 1]!.seq, audit.find(r => r.at > olderThan)?.seq, keep)
      if (upTo < first.seq) return 0
      const drop = upTo - first.seq + 1 // seqs run without gaps
      audit.splice(0, drop)
      appendAuditRows([auditPrunedRow(note, drop, upTo)])
      return drop
    },
    ...memoryCertificates(live),
    ...memoryPrekeys(live),
    ...memoryReputation(live),
    ...memoryHandles(live),
    ...memoryRoles(live),
    ...memoryTasks(live),
    ...memorySettings(live),
    ...memoryFiles(live),
    ...memoryUpdates(live),
    ...memoryHealth(live),
    ...memoryWebhooks(live),
    ...memoryOwners(live),
    ...memoryCatastrophes(live),
    async close () { closed = true },
  }
}
