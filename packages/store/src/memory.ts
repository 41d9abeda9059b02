/** In-memory Store: for tests and `agentmesh serve --memory`. Nothing survives the process. */
import { randomUUID } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { storeOptions } from './options.ts'
import type { AgentProfile, AgentRecord, AppendItem, AppendResult, CaCertificateRecord, CertificateRecord, CrlRecord, CursorAck, FeedbackRecord, InboxState, OneTimePrekey, ReputationFlag, ScorePoint, Store, StoreInit, StoredMessage } from './types.ts'
import { compareCrls, crlPutResult, profileMatches } from './registry.ts'

interface Inbox { cursor: number, lastSeq: number, messages: StoredMessage[] }
interface Seen { seq: number, expiresAt: number }

export function memoryStore (init: StoreInit = {}): Store {
  const opts = storeOptions(init)
  const id = randomUUID()
  const agents = new Map<string, AgentRecord>()
  const inboxes = new Map<string, Inbox>()
  const dedupe = new Map<string, Seen>()
  const profiles = new Map<string, AgentProfile>()
  const prekeys = new Map<string, { base?: Record<string, unknown>, oneTime: Map<number, OneTimePrekey> }>()
  const certificates = new Map<string, CertificateRecord>()
  const cas = new Map<string, CaCertificateRecord>()
  const crls = new Map<string, CrlRecord>()
  /** subject → rater → standing rating, and rater → subject → the same record */
  const feedbackFor = new Map<string, Map<string, FeedbackRecord>>()
  const feedbackBy = new Map<string, Map<string, FeedbackRecord>>()
  const scorePoints = new Map<string, ScorePoint[]>()
  const flags = new Map<string, ReputationFlag[]>()
  let closed = false

  const inboxOf = (r: string): Inbox => {
    let i = inboxes.get(r)
    if (i === undefined) { i = { cursor: 0, lastSeq: 0, messages: [] }; inboxes.set(r, i) }
    return i
  }
  const live = (): void => { if (closed) throw new AgentMeshError(ErrorCode.Internal, 'the store is closed') }
  const nested = <V>(m: Map<string, Map<string, V>>, k: string): Map<string, V> => {
    let inner = m.get(k)
    if (inner === undefined) { inner = new Map(); m.set(k, inner) }
    return inner
  }
  const byKey = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

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
    async commit (appends: readonly AppendItem[], acks: readonly CursorAck[]) {
      live()
      const out: AppendResult[] = []
      for (const m of appends) {
        const key = m.sender + '\n' + m.id
        const seen = dedupe.get(key)
        if (seen !== undefined) { out.push({ status: 'duplicate', seq: seen.seq }); continue }
        const box = inboxOf(m.recipient)
        if (box.messages.length >= opts.maxInbox) { out.push({ status: 'inbox_full' }); continue }
        const seq = ++box.lastSeq
        box.messages.push({ seq, sender: m.sender, id: m.id, envelope: m.envelope, receivedAt: m.receivedAt })
        dedupe.set(key, { seq, expiresAt: m.receivedAt + opts.retentionMs })
        // bounded: forget the oldest ids first (Map keeps insertion order)
        if (dedupe.size > opts.maxDedupeEntries) dedupe.delete(dedupe.keys().next().value as string)
        out.push({ status: 'stored', seq })
      }
      for (const a of acks) {
        const box = inboxOf(a.recipient)
        const seq = Math.min(a.seq, box.lastSeq)
        if (seq <= box.cursor) continue
        box.cursor = seq
        let n = 0
        while (n < box.messages.length && box.messages[n]!.seq <= seq) n++
        box.messages.splice(0, n)
      }
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
    async putProfile (p) { live(); profiles.set(p.amid, structuredClone(p)) },
    async getProfile (amid) { live(); const p = profiles.get(amid); return p === undefined ? undefined : structuredClone(p) },
    async searchProfiles (q) {
      live()
      return [...profiles.values()].filter(p => profileMatches(p, q)).sort((a, b) => a.amid < b.amid ? -1 : 1).slice(0, q.limit).map(p => structuredClone(p))
    },
    async putPrekeys (amid, up) {
      live()
      let entry = prekeys.get(amid)
      if (entry === undefined) { entry = { oneTime: new Map() }; prekeys.set(amid, entry) }
      if (up.base !== undefined) entry.base = structuredClone(up.base)
      if (up.replaceOneTime === true) entry.oneTime.clear()
      for (const k of up.oneTime) if (!entry.oneTime.has(k.id)) entry.oneTime.set(k.id, { id: k.id, key: k.key })
      return { oneTime: entry.oneTime.size }
    },
    async takePrekeyBundle (amid) {
      live()
      const entry = prekeys.get(amid)
      if (entry?.base === undefined) return undefined
      let first: OneTimePrekey | undefined
      for (const k of entry.oneTime.values()) if (first === undefined || k.id < first.id) first = k
      if (first !== undefined) entry.oneTime.delete(first.id)
      return first === undefined ? { base: structuredClone(entry.base) } : { base: structuredClone(entry.base), oneTime: { ...first } }
    },
    async countOneTimePrekeys (amid) { live(); return prekeys.get(amid)?.oneTime.size ?? 0 },
    async putCertificate (r) { live(); certificates.set(r.amid, structuredClone(r)) },
    async getCertificate (amid) { live(); const r = certificates.get(amid); return r === undefined ? undefined : structuredClone(r) },
    async putCaCertificate (ca) { live(); if (!cas.has(ca.key)) cas.set(ca.key, { ...ca }) },
    async findCaCertificates (subject) {
      live()
      return [...cas.values()].filter(c => c.subject === subject).sort((a, b) => a.key < b.key ? -1 : 1).map(c => ({ ...c }))
    },
    async putCrl (crl) {
      live()
      const r = crlPutResult(crls.get(crl.issuerKey), crl)
      if (r.status === 'stored') crls.set(crl.issuerKey, { ...crl })
      return r.status === 'outdated' ? { status: 'outdated', current: { ...r.current } } : r
    },
    async listCrls () { live(); return [...crls.values()].sort(compareCrls).map(c => ({ ...c })) },
    async putFeedback (f) {
      live()
      const previous = feedbackFor.get(f.subject)?.get(f.rater)
      const copy = { ...f }
      nested(feedbackFor, f.subject).set(f.rater, copy)
      nested(feedbackBy, f.rater).set(f.subject, copy)
      return previous === undefined ? {} : { previous: { ...previous } }
    },
    async getFeedback (rater, subject) { live(); const f = feedbackFor.get(subject)?.get(rater); return f === undefined ? undefined : { ...f } },
    async listFeedbackFor (subject) {
      live()
      return [...(feedbackFor.get(subject)?.values() ?? [])].sort((a, b) => byKey(a.rater, b.rater)).map(f => ({ ...f }))
    },
    async listFeedbackBy (rater) {
      live()
      return [...(feedbackBy.get(rater)?.values() ?? [])].sort((a, b) => byKey(a.subject, b.subject)).map(f => ({ ...f }))
    },
    async addScorePoint (subject, point, keep) {
      live()
      const points = [...(scorePoints.get(subject) ?? []), { at: point.at, score: point.score }]
      // the newest point before `since` stays: it is the score in effect at `since`
      let older = -1
      for (let i = 0; i < points.length; i++) if (points[i]!.at < keep.since) older = i
      const kept = points.filter((p, i) => p.at >= keep.since || i === older)
      scorePoints.set(subject, kept.slice(Math.max(0, kept.length - keep.max)))
    },
    async listScorePoints (subject, since) {
      live()
      const points = scorePoints.get(subject) ?? []
      let older = -1
      for (let i = 0; i < points.length; i++) if (points[i]!.at < since) older = i
      return points.filter((p, i) => p.at >= since || i === older).map(p => ({ ...p }))
    },
    async addReputationFlag (subject, flag, max) {
      live()
      const list = [...(flags.get(subject) ?? []), { ...flag }]
      flags.set(subject, list.slice(Math.max(0, list.length - max)))
    },
    async listReputationFlags (subject) { live(); return [...(flags.get(subject) ?? [])].reverse().map(f => ({ ...f })) },
    async close () { closed = true },
  }
}
