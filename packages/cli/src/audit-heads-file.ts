/**
 * `<data>/audit-heads.jsonl`: the relay's signed audit heads (docs/protocol.md §17.8), one JSON
 * object a line, appended and fsync'd, owner-only (0600). Kept beside the database but outside it,
 * so a database rolled back, cut short or re-chained disagrees with it; `agentmesh logs verify`
 * and `serve`'s start check read it, and an auditor keeps copies (GET /api/v1/audit/heads).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { verifyAuditHead, type AuditHead } from '@agentmesh/crypto'
import type { AuditHeadLog } from '@agentmesh/server'

export const AUDIT_HEADS_FILE = 'audit-heads.jsonl'
/** Heads the relay keeps in memory (and answers) at most; the file keeps all. */
const KEPT = 1000

/** The heads of a file (its last `lastLines` lines when given): the ones whose signature verifies (oldest first), and how many lines did not. */
export function readAuditHeads (path: string, relay?: string, lastLines?: number): { heads: AuditHead[], bad: number } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { heads: [], bad: 0 }
    throw new AgentMeshError(ErrorCode.DataDir, `cannot read the audit heads ${path}: ${(err as Error).message}`, { cause: err })
  }
  const heads: AuditHead[] = []
  let bad = 0
  let lines = text.split('\n').filter(l => l.trim() !== '')
  if (lastLines !== undefined) lines = lines.slice(-lastLines)
  for (const line of lines) {
    let v: unknown
    try { v = JSON.parse(line) } catch { bad++; continue }
    if (verifyAuditHead(v, relay)) heads.push({ seq: v.seq, hash: v.hash, at: v.at, relay: v.relay, sig: v.sig })
    else bad++
  }
  return { heads, bad }
}

/** The newest head of a file (by seq, then time), or undefined. */
export function newestHead (heads: readonly AuditHead[]): AuditHead | undefined {
  let best: AuditHead | undefined
  for (const h of heads) if (best === undefined || h.seq > best.seq || (h.seq === best.seq && h.at > best.at)) best = h
  return best
}

/** The heads log of a data directory: appends each head with an fsync (the file is made 0600). */
export function fileAuditHeads (dataDir: string): AuditHeadLog & { readonly path: string } {
  const path = join(dataDir, AUDIT_HEADS_FILE)
  const kept = existsSync(path) ? readAuditHeads(path, undefined, KEPT).heads : []
  return {
    path,
    append (h) {
      const fd = openSync(path, 'a', 0o600)
      try {
        writeSync(fd, JSON.stringify({ seq: h.seq, hash: h.hash, at: h.at, relay: h.relay, sig: h.sig }) + '\n')
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      kept.push(h)
      if (kept.length > KEPT) kept.splice(0, kept.length - KEPT)
    },
    list () { return kept },
  }
}
