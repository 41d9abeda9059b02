/**
 * `agentmesh logs` (docs/protocol.md §17.8): the relay's audit log, newest rows first in pages,
 * followed live, and verified — against the relay's signed heads, over the API or, for a stopped
 * relay, from its data directory.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { verifyAuditHead, type AuditHead } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, MAX_PAGE, type AuditEntry } from '@agentmesh/protocol'
import { AuditVerifier, verifyAudit, type AuditCheck } from '@agentmesh/store'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'
import { AUDIT_HEADS_FILE, readAuditHeads } from '../audit-heads-file.ts'
import { output, parseInteger, parsePositive, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { apiKeyOf, apiOf, iso, optInt, pollUntil, query, stopper, withApi, MAX_LIMIT, PAGE, type Api, type ApiOpts } from './chat.ts'

export function logsCommand (program: Command, io: CliIo = processIo()): void {
  withApi(program.command('logs')
    .description('the relay\'s audit log, its newest rows (printed oldest first, as tail does; metadata only; workers see their own rows, wardens and masters all); `logs verify` checks its hash chain')
    .argument('[action]', 'verify')
    .option('--follow', 'keep printing new rows as they are written')
    .option('--action <name>', 'only rows of this action, e.g. message.send, room.join, handle.set')
    .option('--limit <n>', 'at most this many rows (default 100; not with --follow)')
    .option('--before <seq>', 'the newest rows before this audit seq (page back with the seq a "more:" note gives)')
    .option('--after <seq>', 'rows after this audit seq, oldest first (page on with the seq a "more:" note gives)')
    .option('--timeout <sec>', 'with --follow: stop after this many seconds (default: until Ctrl-C)')
    .option('--data <dir>', 'verify: check a stopped relay\'s data directory offline instead of asking the relay (against its audit-heads.jsonl)')
    .option('--heads <file>', 'verify: check against these signed heads (audit-heads.jsonl, or a saved GET /api/v1/audit/heads answer): rows deleted at the end, or rewritten and re-chained, are found'))
    .action(async (action: string | undefined, o: ApiOpts & { follow?: boolean, action?: string, limit?: string, before?: string, after?: string, timeout?: string, data?: string, heads?: string }) => {
      const out = output(o.json === true, io)
      if (action !== undefined && action !== 'verify') throw usage(`unknown action "${action.slice(0, 40)}": use \`agentmesh logs\` or \`agentmesh logs verify\``)
      if (action === 'verify') {
        const extra = (['follow', 'action', 'limit', 'before', 'after', 'timeout'] as const).find(k => o[k] !== undefined)
        if (extra !== undefined) throw usage(`--${extra} does not go with \`logs verify\``)
        if (o.heads !== undefined && o.heads.trim() === '') throw usage('--heads must name a file of signed audit heads')
        const given = o.heads === undefined ? undefined : headsFile(resolve(o.heads))
        if (o.data !== undefined) {
          if (o.data.trim() === '') throw usage('--data must name the relay\'s data directory')
          await verifyOffline(out, resolve(o.data), given)
          return
        }
        if (given !== undefined) {
          // the chain read over the API (a master or warden reads every row), checked here against the heads given
          const api = apiOf(o, io)
          const v = new AuditVerifier(given)
          let after = 0
          for (;;) {
            const page = await api.call('readAudit', '/api/v1/audit' + query({ after, limit: MAX_PAGE }))
            if (!v.add(page.entries) || page.next_after === undefined) break
            after = page.next_after
          }
          const r = checkJson(v.result())
          if (!r.ok && apiKeyOf(o.apiKey) === undefined) {
            // a worker reads only the rows about itself: the chain it sees has gaps that are not tampering
            throw new AgentMeshError(ErrorCode.AuditTampered, `the audit log as this agent reads it is broken at row ${r.seq ?? '?'}: ${r.reason ?? 'no reason given'} (${r.rows} row(s) read); an agent that is not a master or warden reads only its own rows: check the whole log with the operator's key (--api-key, AGENTMESH_API_KEY)`)
          }
          reportVerify(out, r)
          return
        }
        const r = await apiOf(o, io).call('verifyAudit', '/api/v1/audit/verify')
        reportVerify(out, r)
        return
      }
      if (o.data !== undefined) throw usage('--data goes with `logs verify`')
      if (o.heads !== undefined) throw usage('--heads goes with `logs verify`')
      if (o.action !== undefined && !/^[a-z][a-z0-9._-]{0,63}$/.test(o.action)) throw usage(`--action "${o.action.slice(0, 40)}" is not an action (like message.send, room.join or handle.set)`)
      if (o.follow === true && o.limit !== undefined) throw usage('--limit does not go with --follow')
      if (o.follow !== true && o.timeout !== undefined) throw usage('--timeout goes with --follow')
      if (o.before !== undefined && (o.after !== undefined || o.follow === true)) throw usage(`--before does not go with ${o.after !== undefined ? '--after' : '--follow'}`)
      const limit = o.limit === undefined ? (o.follow === true ? Infinity : 100) : parseInteger('--limit', o.limit, 1, MAX_LIMIT)
      const before = optInt('--before', o.before, 1)
      const seconds = o.timeout === undefined ? undefined : parsePositive('--timeout', o.timeout)
      const api = apiOf(o, io)
      if (o.after === undefined && o.follow !== true) {
        await printNewest(api, out, { limit, ...(before === undefined ? {} : { before }), ...(o.action === undefined ? {} : { action: o.action }) })
        return
      }
      let after = optInt('--after', o.after, 0) ?? 0
      let n = 0
      /** Prints the rows after `after` (up to the limit); true when there may be more. */
      const drain = async (): Promise<boolean> => {
        for (;;) {
          const want = Math.min(PAGE, limit - n)
          if (want <= 0) return true
          const r = await api.call('readAudit', '/api/v1/audit' + query({ after, limit: want, action: o.action }))
          for (const e of r.entries) {
            if (e.seq <= after) continue
            printAudit(out, e)
            after = e.seq
            n++
          }
          if (r.entries.length < want) return false
        }
      }
      const more = await drain()
      if (o.follow !== true) {
        if (n === 0) out.note('no audit rows')
        if (more) out.note(`more: \`agentmesh logs --after ${after}\``)
        return
      }
      const stop = stopper(io, seconds)
      try {
        await pollUntil(stop.signal, async () => { await drain() })
      } finally {
        stop.release()
      }
    })

}

/** Sends of a message.batch row printed in the human form (the JSON form has them all). */
const BATCH_LINES = 5

function printAudit (out: Out, e: AuditEntry): void {
  const sends = e.action === 'message.batch' && Array.isArray(e.detail.sends) ? e.detail.sends as unknown[] : undefined
  if (sends !== undefined) {
    // one row per commit of WebSocket sends: a line per send under it (fields quoted as JSON: they come from agents)
    const shown = sends.slice(0, BATCH_LINES)
    const lines = shown.map(s => Array.isArray(s) ? `  ${s.map(v => JSON.stringify(v)).join(' ')}` : `  ${JSON.stringify(s)}`)
    if (sends.length > shown.length) lines.push(`  … and ${sends.length - shown.length} more (--json lists every send)`)
    out.result({ ...e }, [`${iso(e.at)} #${e.seq} ${e.actor} ${e.action} ${sends.length} send${sends.length === 1 ? '' : 's'} (from to id type bytes)`, ...lines].join('\n'))
    return
  }
  out.result({ ...e }, `${iso(e.at)} #${e.seq} ${e.actor} ${e.action}${e.target === undefined ? '' : ' ' + e.target} ${JSON.stringify(e.detail)}`)
}

/**
 * `logs` without --after: the newest `limit` rows (before `before`), read page by page backwards
 * and printed oldest first, as `tail` does; a note names the seq to page back from.
 */
async function printNewest (api: Api, out: Out, q: { limit: number, before?: number, action?: string }): Promise<void> {
  // the relay reads backwards from `before`; past the last seq is the end of the log
  let before = q.before ?? Number.MAX_SAFE_INTEGER
  let rows: AuditEntry[] = []
  let more = false
  for (;;) {
    const want = Math.min(PAGE, q.limit - rows.length)
    const r = await api.call('readAudit', '/api/v1/audit' + query({ before, limit: want, action: q.action }))
    rows = [...r.entries.filter(e => e.seq < before), ...rows]
    const first = r.entries[0]?.seq
    if (r.next_before === undefined || first === undefined || first >= before) break
    before = first
    if (rows.length >= q.limit) { more = first > 1; break }
  }
  for (const e of rows) printAudit(out, e)
  if (rows.length === 0) out.note('no audit rows')
  if (more) out.note(`more: \`agentmesh logs --before ${rows[0]!.seq}\``)
}

function reportVerify (out: Out, r: { ok: boolean, rows: number, last_seq?: number, from_seq?: number, signed_head_seq?: number, seq?: number, reason?: string }): void {
  if (!r.ok) {
    throw new AgentMeshError(ErrorCode.AuditTampered, `the audit log is broken at row ${r.seq ?? '?'}: ${r.reason ?? 'no reason given'} (${r.rows} row(s) read)`)
  }
  const from = r.from_seq === undefined ? '' : ` (from row ${r.from_seq}: the rows before it were dropped for retention)`
  const head = r.signed_head_seq === undefined
    ? '; no signed head to check against (rows deleted at the end, or re-chained, would not show)'
    : `, all verified up to the signed head at row ${r.signed_head_seq}${r.last_seq !== undefined && r.last_seq > r.signed_head_seq ? ` (rows ${r.signed_head_seq + 1}-${r.last_seq} are newer than it)` : ''}`
  out.result({ ok: true, rows: r.rows, ...(r.last_seq === undefined ? {} : { last_seq: r.last_seq }), ...(r.from_seq === undefined ? {} : { from_seq: r.from_seq }), ...(r.signed_head_seq === undefined ? {} : { signed_head_seq: r.signed_head_seq }) }, `audit log verified: ${r.rows} rows${from}${head}`)
}

/** A verifier's result as the API answers it. */
function checkJson (r: AuditCheck): { ok: boolean, rows: number, last_seq?: number, from_seq?: number, signed_head_seq?: number, seq?: number, reason?: string } {
  return r.ok
    ? { ok: true, rows: r.rows, ...(r.last === undefined ? {} : { last_seq: r.last.seq }), ...(r.from === undefined ? {} : { from_seq: r.from }), ...(r.head === undefined ? {} : { signed_head_seq: r.head }) }
    : r
}

/** `--heads FILE`: JSON lines of heads (audit-heads.jsonl), or a saved GET /api/v1/audit/heads answer; only heads whose signature verifies count. */
function headsFile (path: string): AuditHead[] {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (err) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `cannot read --heads ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let heads: AuditHead[] = []
  let bad = 0
  try {
    const j = JSON.parse(text) as { heads?: unknown }
    if (typeof j === 'object' && j !== null && Array.isArray(j.heads)) {
      for (const h of j.heads) { if (verifyAuditHead(h)) heads.push(h); else bad++ }
    } else if (verifyAuditHead(j)) heads = [j as unknown as AuditHead]
    else bad++
  } catch {
    ({ heads, bad } = readAuditHeads(path))
  }
  if (heads.length === 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `--heads ${path} holds no signed audit head whose signature verifies${bad > 0 ? ` (${bad} entr${bad === 1 ? 'y does' : 'ies do'} not)` : ''}`)
  const relays = new Set(heads.map(h => h.relay))
  if (relays.size > 1) throw new AgentMeshError(ErrorCode.InvalidArgument, `--heads ${path} holds heads of ${relays.size} relays; give the heads of one`)
  return heads
}

/** `logs verify --data DIR`: reads a stopped relay's SQLite store and checks the chain (against `heads`, else the directory's audit-heads.jsonl). */
async function verifyOffline (out: Out, dir: string, heads: AuditHead[] | undefined): Promise<void> {
  const file = join(dir, DB_FILE)
  if (!existsSync(file)) throw new AgentMeshError(ErrorCode.DataDir, `${dir} holds no relay database (${DB_FILE}); give the --data directory of a relay that kept its data`)
  const store = sqliteStore(file)
  try {
    const r = await verifyAudit(store, 1000, heads ?? readAuditHeads(join(dir, AUDIT_HEADS_FILE)).heads)
    reportVerify(out, checkJson(r))
  } finally {
    await store.close()
  }
}
