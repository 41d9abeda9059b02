/**
 * Catastrophe events and recovery (docs/protocol.md §20, docs/operations.md):
 * `agentmesh catastrophe report|list|show|recovering|resolve|protocols`, `agentmesh backup`,
 * `agentmesh restore`, `agentmesh check`. Backups and checks of a running relay go through it (it
 * holds its database's lock: SQLite's online backup API copies while it serves); with `--data` they
 * open a stopped relay's directory themselves. `restore` only ever works on a stopped relay.
 */
import { copyFileSync, chmodSync, existsSync, mkdirSync, renameSync, rmdirSync, unlinkSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { basename, dirname, join, resolve } from 'node:path'
import type { Command } from 'commander'
import {
  AgentMeshError, ErrorCode, CATASTROPHE_SEVERITIES, CATASTROPHE_STATUSES, CATASTROPHE_TYPES, MAX_AFFECTED_AGENTS,
  MAX_CATASTROPHE_TEXT, MAX_CATASTROPHE_TITLE, MAX_PAGE, stripUnsafeChars, type CatastropheEvent,
} from '@agentmesh/protocol'
import { verifyAudit } from '@agentmesh/store'
import { DB_FILE, SCHEMA_VERSION, inspectDatabase, sqliteStore } from '@agentmesh/store-sqlite'
import { output, parseInteger, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { apiOf, iso, query, withApi, type ApiOpts } from './chat.ts'
import { AUDIT_HEADS_FILE, readAuditHeads } from '../audit-heads-file.ts'
import { homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { catastrophes, connect, type Connection } from '@agentmesh/client'
import { defaultOptions } from '@agentmesh/server'
import { parsePositive } from '../output.ts'

/** Text from the relay or other agents, shown on one line without control or bidi characters. */
function shown (s: string, max = 500): string {
  // eslint-disable-next-line no-control-regex
  const t = stripUnsafeChars(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  return t.length > max ? t.slice(0, max) + '…' : t
}

function oneOf<T extends string> (flag: string, v: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(v)) throw usage(`${flag} must be one of ${values.join(', ')}, got "${shown(v, 40)}"`)
  return v as T
}

function eventLine (e: CatastropheEvent): string {
  const affected = e.affectedAgents === 'all' ? 'all agents' : `${e.affectedAgents.length} agent(s)`
  return `${e.eventId}  ${e.status.padEnd(10)} ${e.severity.padEnd(8)} ${e.eventType.padEnd(17)} ${iso(e.reportedAt)}  ${shown(e.title, 120)}  (${affected}, by ${shown(e.reportedBy, 80)})`
}

function eventText (e: CatastropheEvent): string {
  const lines = [
    `event ${e.eventId}: ${shown(e.title)}`,
    `  type ${e.eventType}, severity ${e.severity}, status ${e.status}`,
    `  reported ${iso(e.reportedAt)} by ${shown(e.reportedBy, 80)}${e.recoveringAt === undefined ? '' : `; recovering since ${iso(e.recoveringAt)}`}${e.resolvedAt === undefined ? '' : `; resolved ${iso(e.resolvedAt)}`}`,
    `  affected: ${e.affectedAgents === 'all' ? 'all agents' : e.affectedAgents.join(', ')}`,
    `  recovery protocol: ${shown(e.recoveryProtocol, 200)} (\`agentmesh catastrophe protocols\`)`,
  ]
  if (e.description !== '') lines.push(`  ${shown(e.description, 2000)}`)
  if (e.resolutionNotes !== undefined) lines.push(`  resolution: ${shown(e.resolutionNotes, 2000)}`)
  return lines.join('\n')
}

function checkText (flag: string, v: string | undefined, max: number): void {
  if (v !== undefined && v.length > max) throw usage(`${flag} is ${v.length} characters; at most ${max}`)
}

export function catastropheCommands (program: Command, io: CliIo = processIo()): void {
  const cat = program.command('catastrophe').description('catastrophe events and their recovery protocols (§20): report, list, show, recovering, resolve, protocols')

  withApi(cat.command('report')
    .description('report a catastrophe event (a master or warden): every agent (or --agents) gets a catastrophe_alert now, and on connect while it is open')
    .requiredOption('--type <type>', CATASTROPHE_TYPES.join(' | '))
    .requiredOption('--severity <severity>', CATASTROPHE_SEVERITIES.join(' | '))
    .requiredOption('--title <text>', `what happened (at most ${MAX_CATASTROPHE_TITLE} characters)`)
    .option('--description <text>', 'details')
    .option('--protocol <id>', 'the recovery protocol (default: the one for the type)')
    .option('--agents <amids>', `the affected agents, comma-separated AMIDs (at most ${MAX_AFFECTED_AGENTS}; default all)`))
    .action(async (o: ApiOpts & { type: string, severity: string, title: string, description?: string, protocol?: string, agents?: string }) => {
      const out = output(o.json === true, io)
      const eventType = oneOf('--type', o.type, CATASTROPHE_TYPES)
      const severity = oneOf('--severity', o.severity, CATASTROPHE_SEVERITIES)
      if (o.title.trim() === '') throw usage('--title must not be empty')
      checkText('--title', o.title, MAX_CATASTROPHE_TITLE)
      checkText('--description', o.description, MAX_CATASTROPHE_TEXT)
      checkText('--protocol', o.protocol, MAX_CATASTROPHE_TEXT)
      const agents = o.agents === undefined ? undefined : [...new Set(o.agents.split(',').map(s => s.trim()).filter(s => s !== ''))]
      if (agents !== undefined && (agents.length === 0 || agents.length > MAX_AFFECTED_AGENTS)) throw usage(`--agents must name 1 to ${MAX_AFFECTED_AGENTS} AMIDs`)
      const r = await apiOf(o, io).call('reportCatastrophe', '/api/v1/catastrophe', {
        eventType, severity, title: o.title,
        ...(o.description === undefined ? {} : { description: o.description }),
        ...(o.protocol === undefined ? {} : { recoveryProtocol: o.protocol }),
        ...(agents === undefined ? {} : { affectedAgents: agents }),
      })
      out.result({ ...r }, `reported ${r.eventId} (${eventType}, ${severity}); alert sent to ${r.event.affectedAgents === 'all' ? 'every agent' : `${r.event.affectedAgents.length} agent(s)`}`)
    })

  withApi(cat.command('list')
    .description('catastrophe events, newest first')
    .option('--status <status>', CATASTROPHE_STATUSES.join(' | '))
    .option('--severity <severity>', CATASTROPHE_SEVERITIES.join(' | '))
    .option('--open', 'only events not resolved (reported or recovering)')
    .option('--limit <n>', `at most this many (default 50, at most ${MAX_PAGE})`)
    .option('--before <id>', 'events reported before this one (page on with the id a "more:" note gives)'))
    .action(async (o: ApiOpts & { status?: string, severity?: string, open?: boolean, limit?: string, before?: string }) => {
      const out = output(o.json === true, io)
      const status = o.status === undefined ? undefined : oneOf('--status', o.status, CATASTROPHE_STATUSES)
      if (status !== undefined && o.open === true) throw usage('--open does not go with --status')
      const severity = o.severity === undefined ? undefined : oneOf('--severity', o.severity, CATASTROPHE_SEVERITIES)
      const limit = o.limit === undefined ? undefined : parseInteger('--limit', o.limit, 1, MAX_PAGE)
      const r = await apiOf(o, io).call('listCatastrophes', '/api/v1/catastrophe' + query({ status, severity, limit, before: o.before }))
      const events = o.open === true ? r.events.filter(e => e.status !== 'resolved') : r.events
      for (const e of events) out.result({ ...e }, eventLine(e))
      if (events.length === 0) out.note('no catastrophe events')
      if (r.nextBefore !== undefined) out.note(`more: \`agentmesh catastrophe list --before ${r.nextBefore}\``)
    })

  withApi(cat.command('show')
    .description('one catastrophe event')
    .argument('<id>', 'the event id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const r = await apiOf(o, io).call('getCatastrophe', `/api/v1/catastrophe/${encodeURIComponent(id)}`)
      out.result({ ...r.event }, eventText(r.event))
    })

  withApi(cat.command('recovering')
    .description('move a reported event to recovering (a master or warden)')
    .argument('<id>', 'the event id')
    .option('--notes <text>', 'what is being done'))
    .action(async (id: string, o: ApiOpts & { notes?: string }) => {
      const out = output(o.json === true, io)
      checkText('--notes', o.notes, MAX_CATASTROPHE_TEXT)
      const r = await apiOf(o, io).call('recoverCatastrophe', `/api/v1/catastrophe/${encodeURIComponent(id)}/recovering`, o.notes === undefined ? {} : { notes: o.notes })
      out.result({ ...r.event }, `event ${r.event.eventId} is recovering`)
    })

  withApi(cat.command('resolve')
    .description('resolve an event with notes (a master): agents hear it, and connecting agents are no longer alerted')
    .argument('<id>', 'the event id')
    .option('--notes <text>', 'how it was resolved'))
    .action(async (id: string, o: ApiOpts & { notes?: string }) => {
      const out = output(o.json === true, io)
      checkText('--notes', o.notes, MAX_CATASTROPHE_TEXT)
      const r = await apiOf(o, io).call('resolveCatastrophe', `/api/v1/catastrophe/${encodeURIComponent(id)}/resolve`, o.notes === undefined ? {} : { resolutionNotes: o.notes })
      out.result({ ...r.event }, `event ${r.event.eventId} resolved`)
    })

  withApi(cat.command('protocols')
    .description('the four recovery protocols, step by step'))
    .action(async (o: ApiOpts) => {
      const out = output(o.json === true, io)
      const r = await apiOf(o, io).call('catastropheProtocols', '/api/v1/catastrophe/protocols')
      for (const p of r.protocols) {
        const steps = p.steps.map(s => `  ${s.order}. [${s.who}] ${s.action}${s.command === undefined ? '' : `\n     $ ${s.command}`}`)
        out.result({ ...p }, [`${p.title} (${p.id}${p.eventTypes.length === 0 ? '' : `; for ${p.eventTypes.join(', ')}`})`, ...steps].join('\n'))
      }
    })

  backupCommands(program, io)
  statusCommand(program, io)
}

/** A stopped relay's database file under `dir`, which must exist. */
function dbIn (dir: string): string {
  const file = join(dir, DB_FILE)
  if (!existsSync(file)) throw new AgentMeshError(ErrorCode.DataDir, `${dir} holds no relay database (${DB_FILE}); give the --data directory of a relay that kept its data`)
  return file
}

/**
 * Whether a relay holds `file` (it keeps an exclusive lock while it runs). Read-only: the file is
 * not written (a damaged one, what a restore is for, is moved aside as it is).
 */
function inUse (file: string): boolean {
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 200 })
    db.prepare('SELECT count(*) FROM sqlite_master').get()
    return false
  } catch (err) {
    const code = (err as { code?: string }).code ?? ''
    return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
  } finally {
    try { db?.close() } catch {}
  }
}

/** Copies `from` to `to` (0600) through a temporary file beside it: `to` is whole or untouched. */
function copyOut (from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`
  try {
    copyFileSync(from, tmp)
    chmodSync(tmp, 0o600)
    renameSync(tmp, to)
  } catch (err) {
    try { unlinkSync(tmp) } catch {}
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new AgentMeshError(ErrorCode.DataDir, `cannot write ${to} (${code}); ${from} is left as it was`)
  }
}

/** `--out`'s directory must exist before a backup is taken for it (usage error otherwise). */
function checkOutDir (flag: string, file: string): string {
  const to = resolve(file)
  let dir: ReturnType<typeof statSync> | undefined
  try { dir = statSync(dirname(to)) } catch {}
  if (dir === undefined || !dir.isDirectory()) throw usage(`${flag} ${file}: its directory ${dirname(to)} does not exist`)
  return to
}

function backupCommands (program: Command, io: CliIo): void {
  withApi(program.command('backup')
    .description('a consistent copy of the relay\'s database, taken while it serves (SQLite\'s online backup API), into <data>/backups/ (0600); --out copies it to FILE too')
    .option('--out <file>', 'also write the backup to this file (0600; on the relay\'s host)')
    .option('--data <dir>', 'back up a stopped relay\'s data directory directly instead of asking the running relay'))
    .action(async (o: ApiOpts & { out?: string, data?: string }) => {
      const out = output(o.json === true, io)
      const outFile = o.out === undefined ? undefined : checkOutDir('--out', o.out)
      let taken: { file: string, bytes: number, at: number, kept: number }
      if (o.data !== undefined) {
        const store = sqliteStore(dbIn(resolve(o.data)))
        // the relay's own retention (backupKeep's default) for the directory it shares
        try { taken = await store.backup!({ keep: defaultOptions().backupKeep, at: Date.now() }) } finally { await store.close() }
      } else {
        taken = await apiOf(o, io).call('takeBackup', '/api/v1/backups')
      }
      let copied: string | undefined
      if (outFile !== undefined) {
        copied = outFile
        if (!existsSync(taken.file)) throw new AgentMeshError(ErrorCode.DataDir, `the relay wrote ${taken.file}, which is not on this host; copy it from the relay's host (--out works where the relay runs)`)
        copyOut(taken.file, copied)
      }
      out.result({ ...taken, ...(copied === undefined ? {} : { out: copied }) }, `backup: ${taken.file} (${taken.bytes} bytes; ${taken.kept} kept in ${basename(resolve(taken.file, '..'))}/)${copied === undefined ? '' : `\ncopied to ${copied}`}`)
    })

  withCommon(program.command('restore')
    .description('replace a STOPPED relay\'s database with a backup: the file is checked first (integrity, schema version, relay identity, audit chain) and the replaced database kept aside')
    .argument('<file>', 'the backup (e.g. <data>/backups/agentmesh-….db)')
    .requiredOption('--data <dir>', 'the stopped relay\'s data directory'), { server: false })
    .action(async (file: string, o: CommonOpts & { data: string }) => {
      const out = output(o.json === true, io)
      const dir = resolve(o.data)
      const src = resolve(file)
      if (!existsSync(src)) throw new AgentMeshError(ErrorCode.NotABackup, `${src} does not exist; nothing was replaced`)
      const target = join(dir, DB_FILE)
      // a refused restore leaves no directory it made
      const made = !existsSync(dir)
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      // checked on a copy next to the target: the backup itself is never opened for writing
      const staging = `${target}.restore-${process.pid}`
      let restored = false
      copyOut(src, staging)
      try {
        const info = await inspectDatabase(staging, SCHEMA_VERSION, src)
        const store = sqliteStore(staging)
        /** the relay signed audit heads past the backup's end: `serve` will ask for --accept-data-loss */
        let behind: { head_seq: number, db_seq: number } | undefined
        try {
          const chain = await verifyAudit(store, 1000, [])
          if (!chain.ok) throw new AgentMeshError(ErrorCode.NotABackup, `${src}: its audit chain does not verify at row ${chain.seq} (${chain.reason}); nothing was replaced`)
          const heads = readAuditHeads(join(dir, AUDIT_HEADS_FILE), undefined, 100).heads
          const head = heads[heads.length - 1]
          const last = await store.lastAudit()
          if (head !== undefined && head.seq > (last?.seq ?? 0)) behind = { head_seq: head.seq, db_seq: last?.seq ?? 0 }
          // an online backup carries the run marker of the relay it was taken from: the relay
          // started on the restored copy did not stop uncleanly (no server_down for a restore)
          await store.endRun()
        } finally {
          await store.close()
        }
        // the relay must be stopped: its database is locked while it runs
        let aside: string | undefined
        if (existsSync(target)) {
          if (inUse(target)) throw new AgentMeshError(ErrorCode.DataDir, `${target} is in use by a running relay; stop it first (restore replaces a stopped relay's database); nothing was replaced`)
          aside = `${target}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`
          renameSync(target, aside)
          for (const ext of ['-wal', '-shm']) if (existsSync(target + ext)) renameSync(target + ext, aside + ext)
        }
        renameSync(staging, target)
        restored = true
        const start = behind === undefined ? `agentmesh serve --data ${dir}` : `agentmesh serve --data ${dir} --accept-data-loss`
        out.result({ restored: target, from: src, bytes: statSync(target).size, relay_id: info.relayId, schema: info.schema, audit_rows: info.auditRows, ...(aside === undefined ? {} : { replaced: aside }), ...(behind === undefined ? {} : { behind_signed_head: behind }) },
          `restored ${target} from ${src} (relay ${info.relayId}, schema ${info.schema}, ${info.auditRows} audit rows verified)${aside === undefined ? '' : `\nthe replaced database is kept as ${aside}`}` +
          (behind === undefined ? '' : `\nthe relay signed an audit head at row ${behind.head_seq} after this backup was taken (it ends at row ${behind.db_seq}): what was committed since is not in it, and serve refuses it (AM_ERR_DATA_LOSS) until started once with --accept-data-loss`) +
          `\nstart the relay again: ${start}`)
      } finally {
        for (const f of [staging, staging + '-wal', staging + '-shm']) { try { unlinkSync(f) } catch {} }
        if (made && !restored) { try { rmdirSync(dir) } catch {} }
      }
    })

  withApi(program.command('check')
    .description('integrity on demand: the database\'s integrity check and the audit chain\'s verification; exit 0 when both pass, 1 otherwise (a failure on a running relay reports a db_corruption event)')
    .option('--full', 'PRAGMA integrity_check (every index against its table) instead of quick_check')
    .option('--data <dir>', 'check a stopped relay\'s data directory directly instead of asking the running relay'))
    .action(async (o: ApiOpts & { full?: boolean, data?: string }) => {
      const out = output(o.json === true, io)
      let r: { ok: boolean, integrity: { ok: boolean, found: string }, audit: { ok: boolean, rows: number, seq?: number, reason?: string }, eventId?: string, readOnly?: boolean }
      if (o.data !== undefined) {
        const file = dbIn(resolve(o.data))
        let store
        try { store = sqliteStore(file) } catch (err) {
          if (AgentMeshError.is(err) && err.code === ErrorCode.DataCorrupt) {
            r = { ok: false, integrity: { ok: false, found: err.message }, audit: { ok: false, rows: 0, reason: 'not read: the file does not open' } }
            report(out, r)
            return
          }
          throw err
        }
        try {
          const integrity = await store.checkIntegrity!(o.full === true)
          const chain = await verifyAudit(store, 1000, [])
          r = { ok: integrity.ok && chain.ok, integrity, audit: chain.ok ? { ok: true, rows: chain.rows } : { ok: false, rows: chain.rows, seq: chain.seq, reason: chain.reason } }
        } finally {
          await store.close()
        }
      } else {
        r = await apiOf(o, io).call('checkStore', '/api/v1/check', o.full === true ? { full: true } : {})
      }
      report(out, r)
    })
}

function report (out: Out, r: { ok: boolean, integrity: { ok: boolean, found: string }, audit: { ok: boolean, rows: number, seq?: number, reason?: string }, eventId?: string, readOnly?: boolean }): void {
  // quick_check answers a line per problem: one per line here too, the first ten
  const found = r.integrity.found.split('\n').map(l => shown(l, 300).trim()).filter(l => l !== '')
  const problems = found.slice(0, 10).map(l => `\n  ${l}`).join('') + (found.length > 10 ? `\n  … ${found.length - 10} more (--json has them all)` : '')
  const lines = [
    `integrity: ${r.integrity.ok ? 'ok' : `FAILED:${problems}`}`,
    `audit chain: ${r.audit.ok ? `ok (${r.audit.rows} rows)` : `FAILED at row ${r.audit.seq ?? '?'}: ${shown(r.audit.reason ?? '', 500)}`}`,
  ]
  if (r.eventId !== undefined) lines.push(`reported as catastrophe event ${r.eventId}`)
  if (r.readOnly === true) lines.push('the relay is in read-only mode')
  out.result({ ...r }, lines.join('\n'))
  if (!r.ok) {
    throw new AgentMeshError(r.integrity.ok ? ErrorCode.AuditTampered : ErrorCode.DataCorrupt,
      r.integrity.ok ? 'the audit chain does not verify' : 'the database failed its integrity check: restore a backup (`agentmesh restore`, docs/operations.md)')
  }
}

/** The outbox in words: "nothing queued", "1 send waiting", "3 sends waiting". */
export function outboxText (n: number): string {
  return n === 0 ? 'nothing queued' : `${n} send${n === 1 ? '' : 's'} waiting`
}

/** What happens to the outbox while the relay does not answer, as the end of a sentence. */
export function outboxFate (n: number): string {
  return n === 0 ? 'nothing is queued' : n === 1 ? 'the queued send stays in the outbox and goes out once it does' : `the ${n} queued sends stay in the outbox and go out in order once it does`
}

/**
 * `agentmesh status`: this agent's link to the relay (the network partition protocol, §20): whether
 * the relay answers, and how many sends wait in the agent's outbox. Exit 0 when connected, 1 when not.
 */
function statusCommand (program: Command, io: CliIo): void {
  withCommon(program.command('status')
    .description('this agent\'s link to the relay: connected or not, and the sends waiting in its outbox (exit 1 when the relay does not answer)')
    .option('--timeout <sec>', 'how long to try to connect', '5'))
    .action(async (o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      const ms = parsePositive('--timeout', o.timeout) * 1000
      const conn = await connect({ server: serverOf(o, io.env), home: homeOf(o, io.env), ...passphraseOf(io.env), deliver: false, connectTimeoutMs: ms, queueWhenUnreachable: true, onWarning: (w) => { out.warn(w) } })
      try {
        if (!conn.connected) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, ms)
            void (async () => { for await (const s of conn.status()) if (s.type === 'connected' || s.type === 'closed') break; clearTimeout(t); resolve() })()
          })
        }
        const l = conn.link()
        out.result({ ...l, amid: conn.amid }, `${l.state}: ${l.relay} (since ${iso(l.since)}); outbox: ${outboxText(l.outbox)}${l.lastError === undefined ? '' : `; last error: ${shown(l.lastError, 300)}`}`)
        if (l.state !== 'connected') throw new AgentMeshError(ErrorCode.ConnectFailed, `the relay at ${l.relay} does not answer; ${outboxFate(l.outbox)}`)
      } finally {
        await conn.close()
      }
    })
}

/**
 * Catastrophe alerts while `listen` runs (and those of open events the relay sent on connect), on
 * stderr: `{"catastrophe": {…}}` with --json, a line otherwise. Text from the relay, shown safely.
 */
export function watchCatastrophes (conn: Connection, io: Pick<CliIo, 'stderr'>, json: boolean): void {
  catastrophes(conn).onCatastrophe((a) => {
    io.stderr.write(json
      ? JSON.stringify({ catastrophe: a }) + '\n'
      : `agentmesh: catastrophe ${a.status}: ${a.severity} ${a.eventType} "${shown(a.title, 200)}" (${a.eventId}; recovery: ${shown(a.recoveryProtocol, 80)}; \`agentmesh catastrophe show ${a.eventId}\`)\n`)
  })
}
