/**
 * Catastrophe events and recovery (docs/protocol.md §20): report, list, get, move to recovering,
 * resolve; the catastrophe_alert event to agents live and, while an event is open, to every agent
 * as it connects, ahead of its backlog (the core's greeting hook); the events the relay reports
 * itself (an unclean stop found at start, a damaged database); integrity checks and online backups
 * on demand and on a schedule.
 */
import type { Hono } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import {
  API_ROUTES as R, AgentMeshError, ErrorCode, checkValue, DEFAULT_PAGE,
  type CatastropheEvent, type CatastropheSeverity, type CatastropheType, type ChatEvent, type Static,
  type ReportCatastropheBody,
} from '@agentmesh/protocol'
import { verifyAudit, type CatastropheRecord, type CatastropheState } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import type { OpsContext } from './context.ts'
import type { Principal } from '../chat/types.ts'
import { answer, paramsOf, queryOf } from '../rest.ts'
import { ReadOnlyMode } from './read-only.ts'
import { RECOVERY_PROTOCOLS, defaultProtocolFor } from './recovery-protocols.ts'

/** What the catastrophe features of all nodes hear when an event changed: an event frame for no agent. */
const CHANGED_ORIGIN = 'ops:catastrophe'
const CHANGED_FRAME = '{"op":"event","event":{"type":"catastrophe_alert","data":{},"ts":0}}'

/** Open events kept in memory for the greeting of connecting agents (the oldest ones past it are told live only). */
export const MAX_OPEN_ALERTS = 100

/** The event as the REST API and the alert carry it. */
export function catastropheJson (e: CatastropheRecord): CatastropheEvent {
  const { id, ...rest } = e
  return { eventId: id, ...rest }
}

/** What a catastrophe_alert event carries (§20). */
export function alertData (e: CatastropheRecord): Record<string, unknown> {
  return {
    eventId: e.id,
    eventType: e.eventType,
    severity: e.severity,
    title: e.title,
    status: e.status,
    recoveryProtocol: e.recoveryProtocol,
    reportedAt: e.reportedAt,
    ...(e.resolvedAt === undefined ? {} : { resolvedAt: e.resolvedAt }),
  }
}

function affects (e: CatastropheRecord, amid: string): boolean {
  return e.affectedAgents === 'all' || e.affectedAgents.includes(amid)
}

export interface CatastropheFeature extends RelayFeature {
  /** Reports an event as the relay (what it detects itself); kept in memory only when the store refuses it (read-only). */
  reportByRelay (r: { eventType: CatastropheType, severity: CatastropheSeverity, title: string, description: string }): Promise<CatastropheRecord>
  /** The health dashboard's part (§21.3): open critical events, and the newest event (any status) as the API shows it. */
  summary (): Promise<{ critical: number, last: Record<string, unknown> | null }>
}

export function catastropheFeature (ctx: OpsContext): CatastropheFeature {
  const { store, logger: log } = ctx
  const readOnly = ctx.readOnly ?? new ReadOnlyMode(false, ctx.now)
  /** events not resolved, by id (oldest first): what a connecting agent is told */
  let open = new Map<string, CatastropheRecord>()
  /** events the relay reported but could not store (a read-only relay): listed and told like the others */
  const volatile = new Map<string, CatastropheRecord>()
  let stopGreeting: (() => void) | undefined
  let stopBackplane: (() => void) | undefined
  let backupTimer: NodeJS.Timeout | undefined
  /** the db_corruption event the relay reported in this run (one, until it is resolved) */
  let corruption: Promise<CatastropheRecord> | undefined
  let stopped = false

  const setOpen = (e: CatastropheRecord): void => {
    if (e.status === 'resolved') open.delete(e.id)
    else if (open.has(e.id) || open.size < MAX_OPEN_ALERTS) open.set(e.id, e)
  }
  const reload = async (): Promise<void> => {
    const next = new Map<string, CatastropheRecord>()
    for (const e of await store.openCatastrophes(MAX_OPEN_ALERTS)) next.set(e.id, e)
    for (const e of volatile.values()) if (e.status !== 'resolved' && next.size < MAX_OPEN_ALERTS) next.set(e.id, e)
    open = next
  }
  const frameOf = (e: CatastropheRecord): string => JSON.stringify({ op: 'event', event: { type: 'catastrophe_alert', data: alertData(e), ts: ctx.now() } })
  /** To the affected agents online here or on other nodes (chat's presence knows where). */
  const alert = (e: CatastropheRecord): void => {
    const targets = e.affectedAgents === 'all' ? ctx.chat.onlineAgents() : e.affectedAgents
    // chat.emit writes local connections and tells other nodes; the frame is an operations event
    ctx.chat.emit(targets, { type: 'catastrophe_alert', data: alertData(e), ts: ctx.now() } as unknown as ChatEvent)
    // every node (this one too) reads the open events again for the agents that connect there
    ctx.backplane.publish({ type: 'event', origin: CHANGED_ORIGIN, amids: [], frame: CHANGED_FRAME }).catch(() => {})
  }

  const may = (p: Principal, roles: readonly string[], what: string): void => {
    if (!roles.includes(p.role)) throw new AgentMeshError(ErrorCode.Forbidden, `${what} is for ${roles.map(r => `${r}s`).join(' or ')}; this caller is a ${p.role}`)
  }
  const find = async (id: string): Promise<CatastropheRecord> => {
    const e = volatile.get(id) ?? await store.getCatastrophe(id)
    if (e === undefined) throw new AgentMeshError(ErrorCode.UnknownEvent, `no catastrophe event ${id}; list them with GET /api/v1/catastrophe`)
    return e
  }
  /** Stores a transition (compare-and-set on the status), or keeps it in memory for an event only there. */
  const transition = async (next: CatastropheRecord, expect: CatastropheState): Promise<void> => {
    if (volatile.has(next.id)) { volatile.set(next.id, next); return }
    if (!await store.updateCatastrophe(next, expect)) {
      throw new AgentMeshError(ErrorCode.InvalidTransition, `event ${next.id} changed meanwhile; read it again`)
    }
  }

  const report = async (p: Principal, b: ReportCatastropheBody): Promise<CatastropheRecord> => {
    if (b.agentId !== undefined && p.kind === 'agent' && p.role !== 'master' && b.agentId !== p.amid) {
      throw new AgentMeshError(ErrorCode.Forbidden, `agentId ${b.agentId} is not the caller (${p.amid}); an agent reports as itself`)
    }
    const e: CatastropheRecord = {
      id: uuidv7(),
      eventType: b.eventType,
      severity: b.severity,
      title: b.title,
      description: b.description ?? '',
      recoveryProtocol: b.recoveryProtocol ?? defaultProtocolFor(b.eventType),
      affectedAgents: b.affectedAgents ?? 'all',
      status: 'reported',
      reportedBy: b.agentId ?? (p.kind === 'operator' ? 'operator' : p.amid),
      reportedAt: ctx.now(),
    }
    await store.putCatastrophe(e)
    await ctx.chat.audit(p, 'catastrophe.report', e.id, { eventType: e.eventType, severity: e.severity, affected: e.affectedAgents === 'all' ? 'all' : e.affectedAgents.length })
    setOpen(e)
    alert(e)
    return e
  }

  const reportByRelay: CatastropheFeature['reportByRelay'] = async (r) => {
    const e: CatastropheRecord = {
      id: uuidv7(), ...r, recoveryProtocol: defaultProtocolFor(r.eventType), affectedAgents: 'all', status: 'reported', reportedBy: 'relay', reportedAt: ctx.now(),
    }
    let stored = false
    try {
      await store.putCatastrophe(e)
      stored = true
    } catch (err) {
      // a read-only (damaged) store: the event lives in memory until the relay restarts
      log.warn({ err: (err as Error).message, event: e.id }, 'catastrophe event kept in memory only: the store refused it')
      volatile.set(e.id, e)
    }
    if (stored) {
      await ctx.chat.audit(ctx.chat.relayAmid, 'catastrophe.report', e.id, { eventType: e.eventType, severity: e.severity, affected: 'all' })
        .catch((err: unknown) => { log.warn({ err: (err as Error).message, event: e.id }, 'could not audit the catastrophe event') })
    }
    log.warn({ event: e.id, eventType: e.eventType, severity: e.severity }, `catastrophe reported by the relay: ${e.title}`)
    setOpen(e)
    alert(e)
    return e
  }

  /** Reports db_corruption once per run (until that event is resolved): later findings answer the same event. */
  const reportCorruption = async (title: string, description: string): Promise<CatastropheRecord> => {
    corruption ??= reportByRelay({ eventType: 'db_corruption', severity: 'critical', title, description: description.slice(0, 2000) })
    try { return await corruption } catch (err) { corruption = undefined; throw err }
  }

  const takeBackup = async (p: Principal | undefined): Promise<Static<typeof R.takeBackup.responses[201]['schema']>> => {
    if (store.backup === undefined) throw new AgentMeshError(ErrorCode.BackupUnavailable, `this relay's store (${store.kind}) keeps no file to back up`)
    if (readOnly.corrupt) throw readOnly.refusal('a backup (it would copy the damage)')
    const r = await store.backup({ keep: ctx.options.backupKeep, at: ctx.now() })
    if (p !== undefined) await ctx.chat.audit(p, 'backup.taken', undefined, { bytes: r.bytes, kept: r.kept }).catch(() => {})
    return r
  }

  /** What quick_check found, as one line (every refused write quotes it): the first problem and how many more. */
  const firstProblem = (found: string): string => {
    const lines = found.split('\n').map(l => l.trim()).filter(l => l !== '' && !/^\*\*\*.*\*\*\*$/.test(l))
    if (lines.length === 0) return found.trim().replace(/\s+/g, ' ')
    return lines[0]! + (lines.length > 1 ? ` (and ${lines.length - 1} more problem${lines.length > 2 ? 's' : ''}: agentmesh check lists them)` : '')
  }

  const check = async (full: boolean): Promise<Static<typeof R.checkStore.responses[200]['schema']>> => {
    let integrity = { ok: true, found: 'not applicable' }
    try {
      if (store.checkIntegrity !== undefined) integrity = await store.checkIntegrity(full)
    } catch (err) {
      integrity = { ok: false, found: (err as Error).message }
    }
    let audit: { ok: boolean, rows: number, seq?: number, reason?: string }
    try {
      const r = await verifyAudit(store, 1000, [])
      audit = r.ok ? { ok: true, rows: r.rows } : { ok: false, rows: r.rows, seq: r.seq, reason: r.reason }
    } catch (err) {
      audit = { ok: false, rows: 0, reason: (err as Error).message }
    }
    let eventId: string | undefined
    if (!integrity.ok || !audit.ok) {
      const what = !integrity.ok ? `the database's integrity check found: ${integrity.found}` : `the audit chain does not verify at row ${audit.seq ?? '?'}: ${audit.reason ?? ''}`
      // the event first: entering read-only mode would report one too, with less to say
      eventId = (await reportCorruption('An integrity check failed', what)).id
      if (!integrity.ok) readOnly.enter(`the integrity check failed: ${firstProblem(integrity.found)}`.slice(0, 300), true)
    }
    return { ok: integrity.ok && audit.ok, integrity, audit, ...(eventId === undefined ? {} : { eventId }), readOnly: readOnly.active }
  }

  const routes = (app: Hono): void => {
    const gate = ctx.gate()
    const v1 = (name: string, plan: string): [string, string] => [`/api/v1/catastrophe${name}`, `/api/catastrophe${plan}`]
    for (const path of v1('', '')) {
      app.post(path, async (c) => {
        const { p, body } = await gate.enter(c)
        may(p, ['master', 'warden'], 'reporting a catastrophe')
        const e = await report(p, checkValue(R.reportCatastrophe.body, body))
        return answer(c, 'reportCatastrophe', { eventId: e.id, broadcast: true, event: catastropheJson(e) }, 201)
      })
      app.get(path, async (c) => {
        await gate.enter(c)
        const q = queryOf(c, R.listCatastrophes.query)
        const limit = q.limit ?? DEFAULT_PAGE
        const query = { limit, ...(q.status === undefined ? {} : { status: q.status }), ...(q.severity === undefined ? {} : { severity: q.severity }), ...(q.before === undefined ? {} : { before: q.before }) }
        const stored = await store.listCatastrophes(query)
        // events only in memory (a read-only relay) are the newest: on the first page
        const mem = q.before !== undefined ? [] : [...volatile.values()].filter(e => (q.status === undefined || e.status === q.status) && (q.severity === undefined || e.severity === q.severity)).reverse()
        const events = [...mem, ...stored].slice(0, limit)
        const last = events[events.length - 1]
        return answer(c, 'listCatastrophes', { events: events.map(catastropheJson), ...(events.length === limit && last !== undefined ? { nextBefore: last.id } : {}) })
      })
    }
    for (const path of v1('/protocols', '/protocols')) {
      app.get(path, async (c) => {
        await gate.enter(c)
        return answer(c, 'catastropheProtocols', { protocols: [...RECOVERY_PROTOCOLS] })
      })
    }
    for (const path of v1('/:id', '/:id')) {
      app.get(path, async (c) => {
        await gate.enter(c)
        return answer(c, 'getCatastrophe', { event: catastropheJson(await find(paramsOf(c, R.getCatastrophe.params).id)) })
      })
    }
    for (const path of v1('/:id/recovering', '/:id/recovering')) {
      app.post(path, async (c) => {
        const { p, body } = await gate.enter(c)
        may(p, ['master', 'warden'], 'moving a catastrophe to recovering')
        const { id } = paramsOf(c, R.recoverCatastrophe.params)
        const b = checkValue(R.recoverCatastrophe.body, body ?? {})
        const e = await find(id)
        if (e.status !== 'reported') throw new AgentMeshError(ErrorCode.InvalidTransition, `event ${id} is ${e.status}; only a reported event moves to recovering`)
        const next: CatastropheRecord = { ...e, status: 'recovering', recoveringAt: ctx.now() }
        await transition(next, 'reported')
        await ctx.chat.audit(p, 'catastrophe.recovering', id, { notes: (b.notes ?? b.resolutionNotes ?? '').length })
        setOpen(next)
        alert(next)
        return answer(c, 'recoverCatastrophe', { event: catastropheJson(next) })
      })
    }
    for (const path of v1('/:id/resolve', '/:id/resolve')) {
      app.post(path, async (c) => {
        const { p, body } = await gate.enter(c)
        may(p, ['master'], 'resolving a catastrophe')
        const { id } = paramsOf(c, R.resolveCatastrophe.params)
        const b = checkValue(R.resolveCatastrophe.body, body ?? {})
        const notes = b.resolutionNotes ?? b.notes
        const e = await find(id)
        if (e.status === 'resolved') throw new AgentMeshError(ErrorCode.InvalidTransition, `event ${id} is resolved already`)
        const next: CatastropheRecord = { ...e, status: 'resolved', resolvedAt: ctx.now(), ...(notes === undefined ? {} : { resolutionNotes: notes }) }
        await transition(next, e.status)
        await ctx.chat.audit(p, 'catastrophe.resolve', id, { notes: (notes ?? '').length })
        if (corruption !== undefined && (await corruption.catch(() => undefined))?.id === id) corruption = undefined
        setOpen(next)
        alert(next)
        return answer(c, 'resolveCatastrophe', { event: catastropheJson(next) })
      })
    }
    app.post('/api/v1/backups', async (c) => {
      const { p } = await gate.enter(c)
      may(p, ['master'], 'taking a backup')
      return answer(c, 'takeBackup', await takeBackup(p), 201)
    })
    app.post('/api/v1/check', async (c) => {
      const { p, body } = await gate.enter(c)
      may(p, ['master'], 'an integrity check')
      const b = checkValue(R.checkStore.body, body ?? {})
      return answer(c, 'checkStore', await check(b.full ?? false))
    })
  }

  return {
    name: 'catastrophe',
    routes,
    reportByRelay,
    async summary () {
      let critical = 0
      for (const e of open.values()) if (e.severity === 'critical') critical++
      for (const e of volatile.values()) if (e.severity === 'critical' && e.status !== 'resolved' && !open.has(e.id)) critical++
      const [newest] = await store.listCatastrophes({ limit: 1 })
      const last = [newest, ...volatile.values()].filter((e): e is CatastropheRecord => e !== undefined)
        .sort((a, b) => b.reportedAt - a.reportedAt)[0]
      return { critical, last: last === undefined ? null : { ...catastropheJson(last) } }
    },
    async start () {
      // open alerts first on every new connection (relay.ts greeting hook), from memory: no Store read in the way
      stopGreeting = ctx.relay.greet?.((amid) => {
        const out: string[] = []
        for (const e of open.values()) if (affects(e, amid)) out.push(frameOf(e))
        return out
      })
      // another node reported or changed an event: read the open ones again
      stopBackplane = ctx.backplane.subscribe((m) => {
        if (m.type === 'event' && m.origin === CHANGED_ORIGIN) void reload().catch(() => {})
      })
      readOnly.onEnter((reason, corrupt) => {
        if (corrupt && !stopped) void reportCorruption('The database is damaged: the relay is read-only', reason).catch(() => {})
      })
      try {
        await reload()
        // the marker a clean stop clears (stop() below): found, the last run ended without one
        const prev = ctx.soleNode === false ? undefined : await store.beginRun(ctx.now())
        if (prev !== undefined) {
          await reportByRelay({
            eventType: 'server_down',
            severity: 'major',
            title: 'The relay restarted after an unclean stop',
            description: `the relay running since ${new Date(prev.since).toISOString()} stopped without a clean shutdown (killed, crashed or lost power); it started again at ${new Date(ctx.now()).toISOString()}. Messages it acknowledged are kept; agents resume from their cursors.`,
          })
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not read the catastrophe events or the run marker at start')
      }
      const every = ctx.options.backupIntervalMs
      if (every > 0 && store.backup !== undefined) {
        backupTimer = setInterval(() => {
          void takeBackup(undefined).then(
            (r) => { log.info({ file: r.file, bytes: r.bytes, kept: r.kept }, 'scheduled backup taken') },
            (err) => { log.warn({ err: (err as Error).message }, 'scheduled backup failed') })
        }, every)
        backupTimer.unref()
      }
    },
    async stop () {
      stopped = true
      stopGreeting?.()
      stopBackplane?.()
      if (backupTimer !== undefined) clearInterval(backupTimer)
      if (ctx.soleNode !== false) try { await store.endRun() } catch (err) { log.warn({ err: (err as Error).message }, 'could not clear the run marker') }
    },
  }
}
