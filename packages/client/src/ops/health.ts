/**
 * Agent health on the agent's side (docs/protocol.md §21): `health(conn).heartbeat()` reports the
 * agent's status with its process figures (uptime, CPU since the previous heartbeat, resident
 * memory) and its own metrics; `health(conn).start()` does so periodically until `stop()`.
 * Reading an agent's health and the fleet dashboard are REST calls the connection signs.
 *
 * Periodic heartbeats are started by the agent, not by `connect()`: a CLI command or a short-lived
 * connection would otherwise show up in the fleet as healthy, then offline, at each run. A
 * heartbeat is a heartbeat: while the relay is unreachable it is skipped, never queued (the next
 * one says the same, and newer).
 *
 * @example
 * ```ts
 * const h = health(conn)
 * h.start({ intervalMs: 30_000, metrics: () => ({ customMetrics: { queue: jobs.length }, status: jobs.length > 100 ? 'degraded' : 'healthy' }) })
 * // …
 * h.stop()
 * ```
 */
import { availableParallelism } from 'node:os'
import {
  AgentMeshError, ErrorCode, MAX_HEALTH_VERSION_LENGTH,
  type ApiAnswer, type ApiBody, type HealthState, type RouteName,
} from '@agentmesh/protocol'
import { restCall } from '../api.ts'
import type { Connection } from '../types.ts'

/** Time between periodic heartbeats by default: three fit in the relay's default offline time (90 s). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000
/** Shortest and longest period `start()` takes. */
export const MIN_HEARTBEAT_INTERVAL_MS = 10
export const MAX_HEARTBEAT_INTERVAL_MS = 86_400_000

export type HeartbeatAnswer = ApiAnswer<'heartbeat'>
export type AgentHealth = ApiAnswer<'agentHealth'>
export type HealthDashboard = ApiAnswer<'healthDashboard'>
export type CustomMetrics = Record<string, number | string | boolean>

/** What the agent says of itself in a heartbeat; the process figures are filled in when left out. */
export interface HealthReport {
  /** @default 'healthy' */
  status?: HealthState
  customMetrics?: CustomMetrics
  uptimeSeconds?: number
  /** % of the machine's CPU (all cores) since the previous heartbeat, 0–100 */
  cpuUsage?: number
  /** resident memory, bytes */
  memoryUsage?: number
  /** the agent's software version */
  version?: string
}

export interface HeartbeatLoopOptions {
  /** @default 30 s */
  intervalMs?: number
  /** The agent's own status and metrics at each heartbeat (may be async); a throw counts as status unhealthy. */
  metrics?: () => HealthReport | Promise<HealthReport>
  /** Leave out the process figures (uptime, CPU, memory). @default false */
  noProcessFigures?: boolean
  /** Told after each periodic heartbeat: its answer, or why it was skipped or failed. */
  onBeat?: (r: BeatOutcome) => void
}

export type BeatOutcome =
  | { type: 'sent', answer: HeartbeatAnswer }
  | { type: 'skipped', reason: 'disconnected' | 'busy' }
  | { type: 'failed', error: Error }

export interface Health {
  /** Sends one heartbeat now (status healthy unless said), with the process figures; throws the relay's coded error. */
  heartbeat (report?: HealthReport): Promise<HeartbeatAnswer>
  /** Heartbeats every `intervalMs` from now on (the first at once); a second start replaces the first. */
  start (opts?: HeartbeatLoopOptions): void
  stop (): void
  readonly running: boolean
  /** An agent's health (this agent's by default; another's for wardens and masters). */
  get (agent?: string, opts?: { historyLimit?: number }): Promise<AgentHealth>
  /** The fleet summary (wardens and masters). */
  dashboard (q?: { after?: string, limit?: number }): Promise<HealthDashboard>
}

/** The process figures, CPU measured since the previous call of the same sampler. */
export function processSampler (): () => { uptimeSeconds: number, cpuUsage: number, memoryUsage: number } {
  let cpu = process.cpuUsage()
  let at = process.hrtime.bigint()
  const cores = Math.max(1, availableParallelism())
  return () => {
    const nowAt = process.hrtime.bigint()
    const used = process.cpuUsage(cpu)
    const elapsedUs = Number(nowAt - at) / 1000
    cpu = process.cpuUsage()
    at = nowAt
    const pct = elapsedUs > 0 ? (used.user + used.system) / (elapsedUs * cores) * 100 : 0
    return {
      uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
      cpuUsage: Math.min(100, Math.max(0, Math.round(pct * 100) / 100)),
      memoryUsage: process.memoryUsage.rss(),
    }
  }
}

export function health (conn: Connection): Health {
  const r = async <N extends RouteName>(route: N, path: string, body?: ApiBody<N>): Promise<ApiAnswer<N>> => await restCall(async (m, p, b) => await conn.request(m, p, b), route, path, body)
  const sample = processSampler()
  let timer: NodeJS.Timeout | undefined
  let busy = false
  let generation = 0

  const heartbeat = async (report: HealthReport = {}, figures = true): Promise<HeartbeatAnswer> => {
    if (report.version !== undefined && report.version.length > MAX_HEALTH_VERSION_LENGTH) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `version is longer than ${MAX_HEALTH_VERSION_LENGTH} characters`)
    }
    const body = {
      ...(figures ? sample() : {}),
      ...report,
      status: report.status ?? 'healthy',
    }
    return await r('heartbeat', `/api/v1/agents/${conn.amid}/heartbeat`, body)
  }

  const beat = async (opts: HeartbeatLoopOptions, mine: number): Promise<void> => {
    const tell = (o: BeatOutcome): void => { if (mine === generation) opts.onBeat?.(o) }
    // a heartbeat is skipped, not queued, while the relay is away or the previous one is still out
    if (!conn.connected) { tell({ type: 'skipped', reason: 'disconnected' }); return }
    if (busy) { tell({ type: 'skipped', reason: 'busy' }); return }
    busy = true
    try {
      let report: HealthReport
      try {
        report = (await opts.metrics?.()) ?? {}
      } catch (err) {
        report = { status: 'unhealthy', customMetrics: { metricsError: String((err as Error)?.message ?? err).slice(0, 256) } }
      }
      tell({ type: 'sent', answer: await heartbeat(report, opts.noProcessFigures !== true) })
    } catch (err) {
      tell({ type: 'failed', error: err as Error })
    } finally {
      busy = false
    }
  }

  const stop = (): void => {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
    generation++
  }

  return {
    heartbeat: async (report) => await heartbeat(report),
    start (opts = {}) {
      const every = opts.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS
      if (!Number.isInteger(every) || every < MIN_HEARTBEAT_INTERVAL_MS || every > MAX_HEARTBEAT_INTERVAL_MS) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, `intervalMs must be a whole number of ms from ${MIN_HEARTBEAT_INTERVAL_MS} to ${MAX_HEARTBEAT_INTERVAL_MS}`)
      }
      stop()
      const mine = ++generation
      void beat(opts, mine)
      timer = setInterval(() => { void beat(opts, mine) }, every)
      timer.unref()
    },
    stop,
    get running () { return timer !== undefined },
    async get (agent, opts = {}) {
      const ref = encodeURIComponent(agent ?? conn.amid)
      const q = opts.historyLimit === undefined ? '' : `?historyLimit=${opts.historyLimit}`
      return await r('agentHealth', `/api/v1/agents/${ref}/health${q}`)
    },
    async dashboard (q = {}) {
      const params = new URLSearchParams()
      if (q.after !== undefined) params.set('after', q.after)
      if (q.limit !== undefined) params.set('limit', String(q.limit))
      const s = params.toString()
      return await r('healthDashboard', `/api/v1/health/dashboard${s === '' ? '' : '?' + s}`)
    },
  }
}
