/**
 * The audit log's hash chain (docs/protocol.md §17.8). Every row carries the hash of the row
 * before it, and its own hash covers that link and every field of the row, so editing, removing
 * or reordering a stored row breaks the chain from there on: `verifyAuditChain` finds where.
 *
 *   hash = hex(SHA-256("agentmesh/audit\n" + prev + "\n" + JCS({seq, at, actor, action, target?, detail})))
 *
 * JCS is RFC 8785 (the `canonicalize` package, as for envelope signatures).
 */
import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { AppendItem, AppendResult, AuditInput, AuditRecord } from './types.ts'

export const AUDIT_HASH_PREFIX = 'agentmesh/audit\n'

const jcs = canonicalize as unknown as (v: unknown) => string | undefined

/** The hash of a row at `seq` chained after `prev`. */
export function auditHash (row: AuditInput & { seq: number }, prev: string): string {
  const body = batchBody(row) ?? jcs({
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    ...(row.target === undefined ? {} : { target: row.target }),
    detail: row.detail,
  }) ?? ''
  return createHash('sha256').update(AUDIT_HASH_PREFIX + prev + '\n' + body).digest('hex')
}

/** The action of the one row a commit writes for its batch-audited sends (AppendItem.batchAudit). */
export const AUDIT_BATCH_ACTION = 'message.batch'

/**
 * The `message.batch` row of a commit: every stored item carrying `batchAudit`, as
 * [sender, recipient, id, type, bytes] in commit order (detail `{sends: [...]}`); undefined when
 * there is none. One row, one hash and one insert per commit instead of one per send.
 */
export function batchAuditRow (appends: readonly AppendItem[], results: readonly AppendResult[]): AuditInput | undefined {
  let sends: Array<[string, string, string, string, number]> | undefined
  let at = 0
  let actor = 'relay'
  for (let i = 0; i < appends.length; i++) {
    const m = appends[i]!
    const b = m.batchAudit
    if (b === undefined || results[i]!.status !== 'stored') continue
    ;(sends ??= []).push([m.sender, m.recipient, m.id, b.type, b.bytes])
    if (b.at > at) at = b.at
    actor = b.actor
  }
  return sends === undefined ? undefined : { at, actor, action: AUDIT_BATCH_ACTION, detail: { sends } }
}

/**
 * The JCS text of a `message.batch` row whose detail is exactly `{sends}` with lists of strings
 * and safe integers, written directly: JSON.stringify gives the same text as RFC 8785 for those
 * (and for keys put in sorted order), at a tenth of the cost of a generic canonicaliser on a
 * thousand sends. Any other shape (a changed row too) goes through canonicalize.
 */
function batchBody (row: AuditInput & { seq: number }): string | undefined {
  if (row.action !== AUDIT_BATCH_ACTION || row.target !== undefined) return undefined
  const d = row.detail
  const keys = Object.keys(d)
  if (keys.length !== 1 || keys[0] !== 'sends' || !Array.isArray(d.sends)) return undefined
  for (const s of d.sends as unknown[]) {
    if (!Array.isArray(s)) return undefined
    for (const v of s as unknown[]) if (typeof v !== 'string' && !Number.isSafeInteger(v)) return undefined
  }
  if (!Number.isSafeInteger(row.at) || !Number.isSafeInteger(row.seq)) return undefined
  return '{"action":' + JSON.stringify(row.action) + ',"actor":' + JSON.stringify(row.actor) + ',"at":' + String(row.at) +
    ',"detail":{"sends":' + JSON.stringify(d.sends) + '},"seq":' + String(row.seq) + '}'
}

/** The rows that follow `last` (undefined: the chain is empty), each chained to the one before. */
export function chainAudit (last: { seq: number, hash: string } | undefined, rows: readonly AuditInput[]): AuditRecord[] {
  let seq = last?.seq ?? 0
  let prev = last?.hash ?? ''
  const out: AuditRecord[] = []
  for (const r of rows) {
    seq++
    const rec: AuditRecord = {
      seq,
      at: r.at,
      actor: r.actor,
      action: r.action,
      ...(r.target === undefined ? {} : { target: r.target }),
      detail: r.detail,
      prev,
      hash: '',
    }
    rec.hash = auditHash(rec, prev)
    prev = rec.hash
    out.push(rec)
  }
  return out
}

/**
 * What a verifier found wrong: a row missing inside the chain (`missing`), at the start (`start`)
 * or after the newest row (`tail`: a signed head names a later row); a row whose fields do not
 * match its hash (`changed`) or whose link is broken (`unlinked`); a chain that links but was
 * re-computed (`rechained`: the row a signed head names has another hash now).
 */
export type AuditProblem = 'missing' | 'start' | 'tail' | 'changed' | 'unlinked' | 'rechained'

export type AuditCheck =
  | { ok: true, rows: number, last?: AuditRecord, from?: number, /** the signed head's seq the chain was checked against */ head?: number }
  | { ok: false, rows: number, seq: number, reason: string, problem?: AuditProblem }

/** A head the chain is checked against (a signed one, its signature checked by the caller). */
export interface AuditHeadRef { seq: number, hash: string, at?: number }

/** The action of the row a store appends when it drops the oldest rows (detail `{rows, up_to_seq}`). */
export const AUDIT_PRUNED_ACTION = 'audit.pruned'

/**
 * Where Store.pruneAudit cuts: the last seq to drop, given the newest row's seq, the first row
 * written after the cut-off time (undefined: none) and how many rows to leave with the note;
 * never the newest row. Nothing goes when the answer is below the first row's seq.
 */
export function auditPruneUpTo (last: number, firstNewer: number | undefined, keep: number): number {
  return Math.min(last - 1, Math.max((firstNewer ?? last + 1) - 1, last - Math.max(1, keep) + 1))
}

/** The row that says `rows` rows up to `upTo` were dropped. */
export function auditPrunedRow (note: { at: number, actor: string }, rows: number, upTo: number): AuditInput {
  return { at: note.at, actor: note.actor, action: AUDIT_PRUNED_ACTION, detail: { rows, up_to_seq: upTo } }
}

/**
 * Checks rows read in seq order, page after page. A log whose oldest rows were dropped for
 * retention starts later: its first row is taken as it links, and the newest `audit.pruned` row
 * must say that the rows before it were dropped (`up_to_seq` = the first row's seq - 1), so that
 * rows removed at the start by anyone else are found too.
 */
export class AuditVerifier {
  private readonly head: AuditHeadRef | undefined
  /** seq → the hash the heads signed for it */
  private readonly signedAt = new Map<number, AuditHeadRef>()
  /** the first row whose hash is not the one a head signed, and the last before it whose hash is */
  private rechained: AuditHeadRef | undefined
  private matchedHead = 0

  /**
   * `heads`: signed heads in the order they were written (signatures checked by the caller). The
   * chain must reach the newest one's row, and every row a head names must have the hash it signed.
   */
  constructor (heads?: AuditHeadRef | readonly AuditHeadRef[]) {
    const list = heads === undefined ? [] : Array.isArray(heads) ? heads as readonly AuditHeadRef[] : [heads as AuditHeadRef]
    const current = currentHeads(list)
    this.head = current[current.length - 1]
    for (const h of current) if (h.seq > 0) this.signedAt.set(h.seq, h)
  }

  /** the hash of the row the newest head names, when read */
  private headRowHash: string | undefined
  private expectSeq = 1
  private prev = ''
  private count = 0
  private first: number | undefined
  private prunedUpTo = 0
  private failure: { seq: number, reason: string, problem: AuditProblem } | undefined
  private last: AuditRecord | undefined

  add (rows: readonly AuditRecord[]): boolean {
    if (this.failure !== undefined) return false
    for (const r of rows) {
      if (this.count === 0 && r.seq > 1) {
        // the start was dropped: checked against the audit.pruned rows in result()
        this.expectSeq = r.seq
        this.prev = r.prev
      }
      this.first ??= r.seq
      this.count++
      if (r.seq !== this.expectSeq) { this.failure = { seq: this.expectSeq, reason: `row ${this.expectSeq} is missing (the next row is ${r.seq})`, problem: 'missing' }; return false }
      if (r.prev !== this.prev) { this.failure = { seq: r.seq, reason: `row ${r.seq} does not link to row ${r.seq - 1} (its prev hash differs)`, problem: 'unlinked' }; return false }
      if (auditHash(r, r.prev) !== r.hash) { this.failure = { seq: r.seq, reason: `row ${r.seq} was changed after it was written (its hash does not match its fields)`, problem: 'changed' }; return false }
      if (this.head !== undefined && r.seq === this.head.seq) this.headRowHash = r.hash
      const signed = this.signedAt.get(r.seq)
      if (signed !== undefined) {
        if (signed.hash !== r.hash) this.rechained ??= signed
        else if (this.rechained === undefined) this.matchedHead = r.seq
      }
      if (r.action === AUDIT_PRUNED_ACTION && Number.isInteger(r.detail.up_to_seq)) this.prunedUpTo = r.detail.up_to_seq as number
      this.prev = r.hash
      this.expectSeq++
      this.last = r
    }
    return true
  }

  result (): AuditCheck {
    if (this.failure !== undefined) return { ok: false, rows: this.count, ...this.failure }
    const first = this.first ?? 1
    if (first > 1 && this.prunedUpTo !== first - 1) {
      const said = this.prunedUpTo === 0 ? 'no audit.pruned row says they were dropped' : `the newest audit.pruned row says rows up to ${this.prunedUpTo} were dropped`
      return { ok: false, rows: this.count, seq: first - 1, reason: `rows ${this.prunedUpTo + 1}-${first - 1} are missing at the start and ${said}`, problem: 'start' }
    }
    const h = this.head
    let checked: number | undefined
    const bad = this.rechained
    if (bad !== undefined) {
      const at = bad.at === undefined ? '' : ` of ${new Date(bad.at).toISOString()}`
      return { ok: false, rows: this.count, seq: bad.seq, reason: `the chain was re-computed: row ${bad.seq} links, but its hash is not the one the signed head${at} holds (a row in ${this.matchedHead + 1}-${bad.seq} was rewritten or removed, and the rows after it re-chained)`, problem: 'rechained' }
    }
    if (h !== undefined && h.seq > 0) {
      const lastSeq = this.last?.seq ?? 0
      if (lastSeq < h.seq) {
        const when = h.at === undefined ? '' : ` of ${new Date(h.at).toISOString()}`
        const missing = h.seq === lastSeq + 1 ? `row ${h.seq} is` : `rows ${lastSeq + 1}-${h.seq} are`
        return { ok: false, rows: this.count, seq: lastSeq + 1, reason: `${missing} missing after row ${lastSeq}: the signed head${when} names row ${h.seq}`, problem: 'tail' }
      }
      // a head whose row was dropped for retention is older than the chain kept: nothing to compare
      if (this.headRowHash !== undefined) checked = h.seq
    }
    return { ok: true, rows: this.count, ...(this.last === undefined ? {} : { last: this.last }), ...(first > 1 ? { from: first } : {}), ...(checked === undefined ? {} : { head: checked }) }
  }
}

/**
 * The heads that describe the chain as it is now: the newest run of heads whose seq never goes
 * down (a head with a lower seq than the one before starts again: a loss accepted at start).
 */
export function currentHeads<H extends { seq: number }> (heads: readonly H[]): H[] {
  let i = heads.length - 1
  while (i > 0 && heads[i - 1]!.seq <= heads[i]!.seq) i--
  return heads.slice(Math.max(0, i))
}

/** Reads a store's whole audit log in seq order, a page at a time, and checks the chain (against `head`, a signed head, when given). */
export async function verifyAudit (store: { readAudit: (q: { after: number, limit: number }) => Promise<AuditRecord[]> }, pageSize = 1000, heads?: AuditHeadRef | readonly AuditHeadRef[]): Promise<AuditCheck> {
  const v = new AuditVerifier(heads)
  let after = 0
  for (;;) {
    const rows = await store.readAudit({ after, limit: pageSize })
    if (!v.add(rows) || rows.length < pageSize) break
    after = rows[rows.length - 1]!.seq
  }
  return v.result()
}
