/**
 * Agent health (docs/protocol.md §21): heartbeats, each agent's derived status, the fleet summary,
 * `agent_health_change` events, and the relay's metrics at GET /metrics.
 *
 * What an agent's status is, as the relay derives it (`derive`):
 * - its latest heartbeat's status while that heartbeat is fresh (taken within `healthOfflineAfterMs`)
 *   and the agent did not disconnect since;
 * - `offline` when it has no connection and no fresh heartbeat, when its heartbeat went stale (it
 *   stopped heartbeating, connected or not), or when it disconnected after its last heartbeat;
 * - `unknown` while it is connected but never sent a heartbeat (an agent without the SDK's
 *   heartbeat, a CLI command): neither well nor offline, counted apart.
 *
 * Changes (a heartbeat with another status, a heartbeat going stale, a disconnect) are found by this
 * node for the agents whose heartbeats it took: each is kept in the agent's history, audited
 * `health.change` (metadata only: from, to, reason) and told to the masters and wardens connected
 * (to this node, or to another over the backplane) as an `agent_health_change` event. Heartbeats themselves are not audited (they are
 * frequent): only the changes they make.
 */
import type { Context, Hono } from 'hono'
import {
  AgentMeshError, ErrorCode, HeartbeatBody, API_ROUTES as R, DEFAULT_HEALTH_HISTORY_PAGE, type ApiAnswer, type DerivedHealthState, type HealthState, type OpsEvent,
} from '@agentmesh/protocol'
import type { HealthChange, HeartbeatRecord } from '@agentmesh/store'
import { checkValue } from '@agentmesh/protocol'
import { timingSafeEqual } from 'node:crypto'
import type { RelayFeature } from '../feature.ts'
import type { Principal } from '../chat.ts'
import { answer, paramsOf, queryOf } from '../rest.ts'
import type { OpsContext } from './context.ts'
import { checkHeartbeatFigures } from './health-input.ts'

/** What the catastrophe feature (§20) tells the dashboard: open critical events and the newest one. */
export interface CatastropheSummary { critical: number, last: Record<string, unknown> | null }

export interface HealthFeatureInit {
  /** The catastrophe events' part of the dashboard. @default none: 0 and null */
  catastropheSummary?: () => Promise<CatastropheSummary>
}

export interface HealthFeature extends RelayFeature {
  /** Turns agents silent past the offline time offline (the feature's timer calls it; tests call it with a fake clock). */
  sweep (): Promise<void>
}

/** What this node tracks of an agent whose heartbeat it took: the status it last told, and when. */
interface Tracked { status: DerivedHealthState, heartbeatAt: number, disconnectedAt?: number }

/** Heartbeats read per page while the dashboard counts the fleet. */
const COUNT_PAGE = 1000
/** How long the list of masters and wardens (who hear the changes) is kept before it is read again. */
const WATCHERS_TTL_MS = 5000

export function healthFeature (ctx: OpsContext, init: HealthFeatureInit = {}): HealthFeature {
  const { store, chat, now, metrics } = ctx
  const offlineAfterMs = ctx.options.healthOfflineAfterMs
  const keep = ctx.options.healthHistory
  const catastrophes = init.catastropheSummary ?? (async () => ({ critical: 0, last: null }))
  const tracked = new Map<string, Tracked>()
  let heartbeats = 0
  const changes = new Map<DerivedHealthState, number>()
  let timer: NodeJS.Timeout | undefined
  const offs: Array<() => void> = []

  metrics.counter('agentmesh_heartbeats_total', 'Agent heartbeats taken', () => heartbeats)
  metrics.counter('agentmesh_health_changes_total', 'Agent health changes, by the status changed to', () => [...changes].map(([to, value]) => ({ labels: { to }, value })), ['to'])
  metrics.gauge('agentmesh_agents_health', 'Agents whose heartbeats this node took, by status (offline ones are not tracked)', () => {
    const by = new Map<string, number>([['healthy', 0], ['degraded', 0], ['unhealthy', 0]])
    for (const t of tracked.values()) if (by.has(t.status)) by.set(t.status, by.get(t.status)! + 1)
    return [...by].map(([status, value]) => ({ labels: { status }, value }))
  }, ['status'])

  const fresh = (hb: HeartbeatRecord | undefined, at: number): boolean => hb !== undefined && at - hb.at <= offlineAfterMs
  /** The status the relay reports for an agent (see the file's comment). */
  const derive = (amid: string, hb: HeartbeatRecord | undefined, connected: boolean, at: number): DerivedHealthState => {
    const t = tracked.get(amid)
    const gone = t?.disconnectedAt !== undefined && hb !== undefined && t.disconnectedAt >= hb.at
    if (fresh(hb, at) && !gone) return hb!.status
    if (connected && hb === undefined) return 'unknown'
    return 'offline'
  }
  const onlineSet = (): Set<string> => new Set(ctx.relay.online())

  /** The masters and wardens (roles change rarely: read at most every few seconds, not per change). */
  let watching: { at: number, amids: string[] } | undefined
  const watchers = async (): Promise<string[]> => {
    const at = now()
    if (watching === undefined || at - watching.at > WATCHERS_TTL_MS || at < watching.at) {
      watching = { at, amids: (await store.listRoles()).filter(r => r.role === 'master' || r.role === 'warden').map(r => r.amid) }
    }
    return watching.amids
  }

  /** Keeps, audits and tells a change of an agent's health. */
  const changed = async (amid: string, from: DerivedHealthState, to: HealthState | 'offline', reason: string, by: Principal | string, lastHeartbeatAt?: number): Promise<void> => {
    const at = now()
    const change: HealthChange = { at, from, to, reason }
    changes.set(to, (changes.get(to) ?? 0) + 1)
    await store.addHealthChange(amid, change, keep)
    await chat.audit(by, 'health.change', amid, { from, to, reason })
    const handle = await chat.handleOf(amid)
    const event: OpsEvent = {
      type: 'agent_health_change',
      data: { agentId: amid, ...(handle === undefined ? {} : { handle }), from, to, at, reason, ...(lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt }) },
      ts: at,
    }
    // the chat layer writes it to those connected here and tells the other nodes for theirs
    chat.emit(await watchers(), event)
  }

  let sweeping = false
  const sweep = async (): Promise<void> => {
    if (sweeping) return // the previous one is still telling its changes
    sweeping = true
    try { await sweepOnce() } finally { sweeping = false }
  }
  const sweepOnce = async (): Promise<void> => {
    const at = now()
    for (const [amid, t] of [...tracked]) {
      if (t.status === 'offline') {
        // nothing a stale heartbeat could tell any more: forget it
        if (at - t.heartbeatAt > offlineAfterMs) tracked.delete(amid)
        continue
      }
      if (at - t.heartbeatAt <= offlineAfterMs) continue
      tracked.delete(amid)
      try {
        await changed(amid, t.status, 'offline', 'silent', 'relay', t.heartbeatAt)
      } catch (err) {
        ctx.logger.warn({ err, amid }, 'could not record a health change')
      }
    }
  }

  const disconnected = async (amid: string): Promise<void> => {
    const t = tracked.get(amid)
    if (t === undefined || t.status === 'offline') return
    if (chat.presenceOf(amid) !== 'offline') return // still connected (here or on another node)
    tracked.set(amid, { status: 'offline', heartbeatAt: t.heartbeatAt, disconnectedAt: now() })
    await changed(amid, t.status, 'offline', 'disconnected', 'relay', t.heartbeatAt)
  }

  /** The agent a route's path names: an AMID, @handle or handle, registered. */
  const target = async (ref: string): Promise<string> => await chat.resolveAgent(ref)
  const mayRead = (p: Principal, amid: string): void => {
    if (p.role === 'master' || p.role === 'warden') return
    if (p.kind === 'agent' && p.amid === amid) return
    throw new AgentMeshError(ErrorCode.Forbidden, 'an agent\'s health is read by the agent itself, wardens and masters')
  }

  const heartbeat = async (c: Context, refOf: () => string): Promise<ApiAnswer<'heartbeat'>> => {
    const { p, body } = await ctx.gate().enter(c)
    const ref = refOf()
    const amid = await target(ref)
    if (p.kind === 'agent' && p.amid !== amid && p.role !== 'master') {
      throw new AgentMeshError(ErrorCode.Forbidden, `an agent heartbeats for itself only: you are ${p.amid}`)
    }
    const agentId = (typeof body === 'object' && body !== null ? (body as { agentId?: unknown }).agentId : undefined)
    if (agentId !== undefined && agentId !== amid && agentId !== ref) {
      throw new AgentMeshError(ErrorCode.Forbidden, `agentId ${JSON.stringify(agentId).slice(0, 80)} is not the agent the path names (${amid}); nothing was stored`)
    }
    checkHeartbeatFigures(body)
    const b = checkValue(HeartbeatBody, body)
    const at = now()
    // what the relay knew before: what this node told last, else the stored heartbeat (another node
    // took it, or this one restarted): its status while fresh, offline once stale, unknown if none
    let prev = tracked.get(amid)?.status
    if (prev === undefined) {
      const before = await store.getHeartbeat(amid)
      prev = before === undefined ? 'unknown' : fresh(before, at) ? before.status : 'offline'
    }
    const hb: HeartbeatRecord = {
      amid,
      status: b.status,
      ...(b.uptimeSeconds === undefined ? {} : { uptimeSeconds: b.uptimeSeconds }),
      ...(b.cpuUsage === undefined ? {} : { cpuUsage: b.cpuUsage }),
      ...(b.memoryUsage === undefined ? {} : { memoryUsage: b.memoryUsage }),
      ...(b.customMetrics === undefined ? {} : { customMetrics: b.customMetrics }),
      ...(b.version === undefined ? {} : { version: b.version }),
      at,
    }
    // tracked before the writes: a heartbeat racing this one compares with it, not with the older status
    tracked.set(amid, { status: b.status, heartbeatAt: at })
    await store.putHeartbeat(hb)
    heartbeats++
    if (prev !== b.status) await changed(amid, prev, b.status, 'heartbeat', p, at)
    return { success: true, agentId: amid, status: b.status, receivedAt: at, offlineAfterSeconds: Math.round(offlineAfterMs / 1000) }
  }

  const health = async (c: Context, refOf: () => string): Promise<ApiAnswer<'agentHealth'>> => {
    const { p } = await ctx.gate().enter(c)
    const amid = await target(refOf())
    const { historyLimit = DEFAULT_HEALTH_HISTORY_PAGE } = queryOf(c, R.agentHealth.query)
    mayRead(p, amid)
    const hb = await store.getHeartbeat(amid)
    const connected = onlineSet().has(amid)
    const handle = await chat.handleOf(amid)
    const { amid: _a, ...last } = hb ?? { amid }
    return {
      agentId: amid,
      ...(handle === undefined ? {} : { handle }),
      status: derive(amid, hb, connected, now()),
      connected,
      lastHeartbeat: hb === undefined ? null : last as Omit<HeartbeatRecord, 'amid'>,
      history: await store.healthHistory(amid, historyLimit),
    }
  }

  const dashboard = async (c: Context): Promise<ApiAnswer<'healthDashboard'>> => {
    const { p } = await ctx.gate().enter(c)
    const { after, limit = 100 } = queryOf(c, R.healthDashboard.query)
    if (p.role !== 'master' && p.role !== 'warden') throw new AgentMeshError(ErrorCode.Forbidden, 'the health dashboard is for wardens and masters')
    const at = now()
    const online = onlineSet()
    const counts = { healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 }
    const reported = new Set<string>()
    for (let from: string | undefined; ;) {
      const page = await store.listHeartbeats({ ...(from === undefined ? {} : { after: from }), limit: COUNT_PAGE })
      for (const hb of page) {
        reported.add(hb.amid)
        const s = derive(hb.amid, hb, online.has(hb.amid), at)
        if (s !== 'offline') counts[s]++
      }
      if (page.length < COUNT_PAGE) break
      from = page[page.length - 1]!.amid
    }
    for (const amid of online) if (!reported.has(amid) && amid !== chat.relayAmid) counts.unknown++
    const totalAgents = Math.max((await store.stats()).agents, counts.healthy + counts.degraded + counts.unhealthy + counts.unknown)
    const list = await store.listAgents({ ...(after === undefined ? {} : { after }), limit })
    const agentList = await Promise.all(list.map(async (amid) => {
      const hb = await store.getHeartbeat(amid)
      const handle = await chat.handleOf(amid)
      return {
        amid,
        ...(handle === undefined ? {} : { handle }),
        status: derive(amid, hb, online.has(amid), at),
        lastHeartbeatAt: hb?.at ?? null,
        ...(hb?.version === undefined ? {} : { version: hb.version }),
      }
    }))
    const cat = await catastrophes()
    return {
      totalAgents,
      ...counts,
      offline: totalAgents - counts.healthy - counts.degraded - counts.unhealthy - counts.unknown,
      criticalEvents: cat.critical,
      lastCatastrophe: cat.last,
      agentList,
      ...(list.length === limit ? { nextAfter: list[list.length - 1]! } : {}),
      offlineAfterSeconds: Math.round(offlineAfterMs / 1000),
      generatedAt: at,
    }
  }

  /** GET /metrics: the operator, a master agent, or the metrics token as a bearer token. */
  const metricsRoute = async (c: Context): Promise<Response> => {
    const token = ctx.options.metricsToken
    const auth = c.req.header('authorization')
    if (token !== undefined && auth !== undefined && auth.startsWith('Bearer ')) {
      const given = Buffer.from(auth.slice(7))
      const want = Buffer.from(token)
      if (given.length === want.length && timingSafeEqual(given, want)) {
        ctx.gate().limitIp(c)
        return c.body(await metrics.text(), 200, { 'Content-Type': metrics.contentType })
      }
    }
    const { p } = await ctx.gate().enter(c)
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'the relay\'s metrics are read by the operator (X-API-Key), a master agent, or with the metrics token')
    return c.body(await metrics.text(), 200, { 'Content-Type': metrics.contentType })
  }

  return {
    name: 'health',
    routes (app: Hono) {
      for (const [path, name] of [[R.heartbeat.path, 'amid'], [R.planHeartbeat.path, 'id']] as const) {
        app.post(path.replace(`{${name}}`, `:${name}`), async (c) => {
          const ref = (): string => name === 'amid' ? paramsOf(c, R.heartbeat.params).amid : paramsOf(c, R.planHeartbeat.params).id
          return answer(c, 'heartbeat', await heartbeat(c, ref))
        })
      }
      for (const [path, name] of [[R.agentHealth.path, 'amid'], [R.planAgentHealth.path, 'id']] as const) {
        app.get(path.replace(`{${name}}`, `:${name}`), async (c) => {
          const ref = (): string => name === 'amid' ? paramsOf(c, R.agentHealth.params).amid : paramsOf(c, R.planAgentHealth.params).id
          return answer(c, 'agentHealth', await health(c, ref))
        })
      }
      for (const path of [R.healthDashboard.path, R.planHealthDashboard.path]) {
        app.get(path, async (c) => answer(c, 'healthDashboard', await dashboard(c)))
      }
      app.get(R.metrics.path, metricsRoute)
    },
    async start () {
      // heartbeats still fresh from before a restart: their agents turn offline here if they stay silent
      const at = now()
      for (let from: string | undefined; ;) {
        const page = await store.listHeartbeats({ ...(from === undefined ? {} : { after: from }), limit: COUNT_PAGE })
        for (const hb of page) if (fresh(hb, at) && !tracked.has(hb.amid)) tracked.set(hb.amid, { status: hb.status, heartbeatAt: hb.at })
        if (page.length < COUNT_PAGE) break
        from = page[page.length - 1]!.amid
      }
      offs.push(ctx.events.on('agent:offline', (e) => {
        disconnected(e.amid).catch((err: unknown) => { ctx.logger.warn({ err, amid: e.amid }, 'could not record a health change') })
      }))
      const every = Math.max(1000, Math.min(10_000, Math.floor(offlineAfterMs / 3)))
      timer = setInterval(() => { void sweep() }, every)
      timer.unref()
    },
    stop () {
      for (const off of offs.splice(0)) off()
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
    },
    sweep,
  }
}
