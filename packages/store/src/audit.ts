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
import type { AuditInput, AuditRecord } from './types.ts'

export const AUDIT_HASH_PREFIX = 'agentmesh/audit\n'

const jcs = canonicalize as unknown as (v: unknown) => string | undefined

/** The hash of a row at `seq` chained after `prev`. */
export function auditHash (row: AuditInput & { seq: number }, prev: string): string {
  const body = jcs({
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    ...(row.target === undefined ? {} : { target: row.target }),
    detail: row.detail,
  }) ?? ''
  return createHash('sha256').update(AUDIT_HASH_PREFIX + prev + '\n' + body).digest('hex')
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

export type AuditCheck =
  | { ok: true, rows: number, last?: AuditRecord, from?: number }
  | { ok: false, rows: number, seq: number, reason: string }

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
  private expectSeq = 1
  private prev = ''
  private count = 0
  private first: number | undefined
  private prunedUpTo = 0
  private failure: { seq: number, reason: string } | undefined
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
      if (r.seq !== this.expectSeq) { this.failure = { seq: this.expectSeq, reason: `row ${this.expectSeq} is missing (the next row is ${r.seq})` }; return false }
      if (r.prev !== this.prev) { this.failure = { seq: r.seq, reason: `row ${r.seq} does not link to row ${r.seq - 1} (its prev hash differs)` }; return false }
      if (auditHash(r, r.prev) !== r.hash) { this.failure = { seq: r.seq, reason: `row ${r.seq} was changed after it was written (its hash does not match its fields)` }; return false }
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
      return { ok: false, rows: this.count, seq: first - 1, reason: `rows ${this.prunedUpTo + 1}-${first - 1} are missing at the start and ${said}` }
    }
    return { ok: true, rows: this.count, ...(this.last === undefined ? {} : { last: this.last }), ...(first > 1 ? { from: first } : {}) }
  }
}

/** Reads a store's whole audit log in seq order, a page at a time, and checks the chain. */
export async function verifyAudit (store: { readAudit: (q: { after: number, limit: number }) => Promise<AuditRecord[]> }, pageSize = 1000): Promise<AuditCheck> {
  const v = new AuditVerifier()
  let after = 0
  for (;;) {
    const rows = await store.readAudit({ after, limit: pageSize })
    if (!v.add(rows) || rows.length < pageSize) break
    after = rows[rows.length - 1]!.seq
  }
  return v.result()
}
