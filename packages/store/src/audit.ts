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
  | { ok: true, rows: number, last?: AuditRecord }
  | { ok: false, rows: number, seq: number, reason: string }

/**
 * Checks rows read in seq order, page after page: give each page with the state the previous call
 * answered (start with `undefined`).
 */
export class AuditVerifier {
  private expectSeq = 1
  private prev = ''
  private count = 0
  private failure: { seq: number, reason: string } | undefined
  private last: AuditRecord | undefined

  add (rows: readonly AuditRecord[]): boolean {
    if (this.failure !== undefined) return false
    for (const r of rows) {
      this.count++
      if (r.seq !== this.expectSeq) { this.failure = { seq: this.expectSeq, reason: `row ${this.expectSeq} is missing (the next row is ${r.seq})` }; return false }
      if (r.prev !== this.prev) { this.failure = { seq: r.seq, reason: `row ${r.seq} does not link to row ${r.seq - 1} (its prev hash differs)` }; return false }
      if (auditHash(r, r.prev) !== r.hash) { this.failure = { seq: r.seq, reason: `row ${r.seq} was changed after it was written (its hash does not match its fields)` }; return false }
      this.prev = r.hash
      this.expectSeq++
      this.last = r
    }
    return true
  }

  result (): AuditCheck {
    if (this.failure !== undefined) return { ok: false, rows: this.count, ...this.failure }
    return { ok: true, rows: this.count, ...(this.last === undefined ? {} : { last: this.last }) }
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
