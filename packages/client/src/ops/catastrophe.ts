/**
 * Catastrophe events on the agent's side (docs/protocol.md §20): hear `catastrophe_alert` events
 * (live, and on connect ahead of the backlog while an event is open), report, list, read, move to
 * recovering and resolve events (REST calls the connection signs; roles decide who may), and read
 * the recovery protocols.
 *
 * @example
 * ```ts
 * const c = catastrophes(conn)
 * const stop = c.onCatastrophe((a) => { if (a.status !== 'resolved') pauseWork(a) })
 * const open = await c.list({ status: 'reported' })
 * ```
 */
import type { ApiAnswer, ApiBody, CatastropheEvent, CatastropheSeverity, CatastropheStatus, CatastropheType, RouteName } from '@agentmesh/protocol'
import type { RecoveryProtocol, ReportCatastropheBody } from '@agentmesh/protocol'
import { restCall } from '../api.ts'
import type { Connection } from '../types.ts'

/** What a catastrophe_alert event carries. */
export interface CatastropheAlert {
  eventId: string
  eventType: CatastropheType
  severity: CatastropheSeverity
  title: string
  status: CatastropheStatus
  recoveryProtocol: string
  reportedAt: number
  resolvedAt?: number
  /** the event's ts (the relay's clock) */
  ts: number
}

export interface Catastrophes {
  /**
   * Calls `handler` for the alerts of open events this connection heard already (on connect, ahead
   * of the backlog) and for every catastrophe_alert from now on; answers the function that stops it.
   */
  onCatastrophe (handler: (alert: CatastropheAlert) => void): () => void
  /** Reports an event (masters and wardens); answers the stored event. */
  report (init: ReportCatastropheBody): Promise<CatastropheEvent>
  list (q?: { status?: CatastropheStatus, severity?: CatastropheSeverity, limit?: number, before?: string }): Promise<CatastropheEvent[]>
  get (id: string): Promise<CatastropheEvent>
  /** Moves a reported event to recovering (masters and wardens). */
  recovering (id: string, notes?: string): Promise<CatastropheEvent>
  /** Resolves an event with notes (masters). */
  resolve (id: string, notes?: string): Promise<CatastropheEvent>
  /** The four recovery protocols as structured steps. */
  protocols (): Promise<RecoveryProtocol[]>
}

function alertOf (e: { type: string, data?: Record<string, unknown>, ts: number }): CatastropheAlert | undefined {
  if (e.type !== 'catastrophe_alert' || e.data === undefined || typeof e.data.eventId !== 'string') return undefined
  return { ...(e.data as unknown as Omit<CatastropheAlert, 'ts'>), ts: e.ts }
}

export function catastrophes (conn: Connection): Catastrophes {
  const r = async <N extends RouteName>(route: N, path: string, body?: ApiBody<N>): Promise<ApiAnswer<N>> =>
    await restCall(async (m, p, b) => await conn.request(m, p, b), route, path, body)
  const id = (s: string): string => encodeURIComponent(s)
  return {
    onCatastrophe (handler) {
      let stopped = false
      // subscribed first, then the open alerts the connection heard before (sent right after the
      // welcome, ahead of the backlog, maybe before this listener existed): none is missed
      const it = conn.events()[Symbol.asyncIterator]()
      const heard = (conn as { heardAlerts?: () => Array<{ type: string, data?: Record<string, unknown>, ts: number }> }).heardAlerts?.() ?? []
      for (const e of heard) {
        const a = alertOf(e)
        if (a !== undefined) handler(a)
      }
      void (async () => {
        while (!stopped) {
          const n = await it.next()
          if (n.done === true || stopped) break
          const a = alertOf(n.value as { type: string, data?: Record<string, unknown>, ts: number })
          if (a !== undefined) handler(a)
        }
      })()
      return () => { stopped = true; void it.return?.() }
    },
    async report (init) { return (await r('reportCatastrophe', '/api/v1/catastrophe', init)).event },
    async list (q = {}) {
      const p = new URLSearchParams()
      for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v))
      const qs = p.toString()
      return (await r('listCatastrophes', '/api/v1/catastrophe' + (qs === '' ? '' : '?' + qs))).events
    },
    async get (eventId) { return (await r('getCatastrophe', `/api/v1/catastrophe/${id(eventId)}`)).event },
    async recovering (eventId, notes) { return (await r('recoverCatastrophe', `/api/v1/catastrophe/${id(eventId)}/recovering`, notes === undefined ? {} : { notes })).event },
    async resolve (eventId, notes) { return (await r('resolveCatastrophe', `/api/v1/catastrophe/${id(eventId)}/resolve`, notes === undefined ? {} : { resolutionNotes: notes })).event },
    async protocols () { return (await r('catastropheProtocols', '/api/v1/catastrophe/protocols')).protocols },
  }
}

