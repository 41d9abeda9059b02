/**
 * System updates on the agent's side (docs/protocol.md §19): `updates(conn).onUpdate(fn)` runs `fn`
 * for each `system_update` event the relay sends (live when a master announces one, and at each
 * connect for those the agent has not completed or rejected), `acknowledge` answers one, and the
 * REST reads (`list`, `get`, `acks`) and a master's `create` are signed by the connection.
 *
 * @example
 * ```ts
 * const u = updates(conn)
 * u.onUpdate(async (up) => {
 *   if (up.belowRequired === true) console.warn(`upgrade to ${up.requiredVersion} before ${new Date(up.enforceAt!)}`)
 *   await u.acknowledge(up.updateId, 'accepted', { notes: 'scheduled tonight' })
 * })
 * ```
 */
import {
  type ApiAnswer, type ApiBody, type RelayEvent, type RouteName,
} from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { restCall } from '../api.ts'
import type { Connection } from '../types.ts'

export type UpdateInfo = ApiAnswer<'getUpdate'>
export type UpdateAck = ApiAnswer<'ackUpdate'>
export type UpdateAdoption = ApiAnswer<'updateAcks'>
export type CreateUpdate = ApiBody<'createUpdate'>
export type UpdateAckStatus = 'accepted' | 'rejected' | 'completed'

/** What a `system_update` event tells an agent: the update, its own answer so far, and whether it is below the required version. */
export interface SystemUpdate {
  updateId: string
  version: string
  updateType: string
  title: string
  description?: string
  requiredVersion?: string
  breakingChange: boolean
  announcement?: string
  expiresAt?: number
  /** from then on the relay refuses sends from agents below requiredVersion */
  enforceAt?: number
  createdBy: string
  createdAt: number
  /** this agent's answer so far */
  status: 'pending' | UpdateAckStatus
  /** with a requiredVersion: this agent's reported version is below it (it will be refused after enforceAt) */
  belowRequired?: boolean
  /** when the relay sent the event (ms) */
  ts: number
}

export interface Updates {
  /**
   * Runs `handler` for each system update told to this connection (each update once per status),
   * starting with the active ones the agent has not completed or rejected (read over REST, so
   * those told at connect before this call are not missed); answers a function that stops it.
   */
  onUpdate (handler: (u: SystemUpdate) => unknown, opts?: { catchUp?: boolean }): () => void
  /** Answers an update for this agent: accepted, rejected or completed (with the version it now runs, and notes). */
  acknowledge (updateId: string, status: UpdateAckStatus, opts?: { notes?: string, agentVersion?: string }): Promise<UpdateAck>
  /** Updates, newest first. */
  list (q?: { activeOnly?: boolean, since?: number | string, limit?: number }): Promise<UpdateInfo[]>
  get (updateId: string): Promise<UpdateInfo>
  /** The adoption view (masters and wardens). */
  acks (updateId: string): Promise<UpdateAdoption>
  /** Announces an update (masters). */
  create (u: CreateUpdate): Promise<{ updateId: string, broadcast: true }>
}

/** Events told per connection, remembered to tell each (update, status) once. */
const MAX_SEEN = 1024

/** The update in a `system_update` event, or undefined when the event is not one (or is malformed). */
export function systemUpdateOf (e: RelayEvent): SystemUpdate | undefined {
  if (e.type !== 'system_update' || !('data' in e)) return undefined
  const d = e.data as Record<string, unknown>
  if (typeof d.updateId !== 'string' || typeof d.title !== 'string' || typeof d.version !== 'string') return undefined
  return { ...(d as unknown as Omit<SystemUpdate, 'ts'>), status: (typeof d.status === 'string' ? d.status : 'pending') as SystemUpdate['status'], breakingChange: d.breakingChange === true, ts: e.ts }
}

export function updates (conn: Connection): Updates {
  const r = async <N extends RouteName>(route: N, path: string, body?: ApiBody<N>): Promise<ApiAnswer<N>> =>
    await restCall(async (m, p, b) => await conn.request(m, p, b), route, path, body)
  const enc = encodeURIComponent
  return {
    onUpdate (handler, opts = {}) {
      let stopped = false
      const seen = new LruMap<string, true>(MAX_SEEN)
      // one at a time, in the order told; an agent with several connections is told at each one's
      // auth: once per (update, status) here
      let chain = Promise.resolve()
      const tell = (u: SystemUpdate): void => {
        const key = `${u.updateId} ${u.status} ${String(u.belowRequired)}`
        if (stopped || seen.get(key) !== undefined) return
        seen.set(key, true)
        chain = chain.then(async () => { if (!stopped) await handler(u) }).catch(() => { /* the handler's own failure is its own */ })
      }
      const events = conn.events() // subscribed now: nothing told from here on is missed
      void (async () => {
        for await (const e of events) {
          if (stopped) return
          const u = systemUpdateOf(e)
          if (u !== undefined) tell(u)
        }
      })()
      if (opts.catchUp !== false) {
        void r('listUpdates', '/api/v1/updates?activeOnly=true').then(({ updates: list }) => {
          for (const info of list.reverse()) {
            const status = info.status ?? 'pending'
            if ((status === 'completed' || status === 'rejected') && info.belowRequired !== true) continue
            const { active: _active, ...rest } = info
            tell({ ...rest, status, ts: Date.now() })
          }
        }, () => { /* offline: the relay tells them at the next connect */ })
      }
      return () => { stopped = true }
    },
    async acknowledge (updateId, status, opts = {}) {
      return await r('ackUpdate', `/api/v1/updates/${enc(updateId)}/acknowledge`, {
        status,
        ...(opts.notes === undefined ? {} : { notes: opts.notes }),
        ...(opts.agentVersion === undefined ? {} : { agentVersion: opts.agentVersion }),
      })
    },
    async list (q = {}) {
      const qs = new URLSearchParams()
      if (q.activeOnly === true) qs.set('activeOnly', 'true')
      if (q.since !== undefined) qs.set('since', String(q.since))
      if (q.limit !== undefined) qs.set('limit', String(q.limit))
      const s = qs.toString()
      return (await r('listUpdates', `/api/v1/updates${s === '' ? '' : '?' + s}`)).updates
    },
    async get (updateId) { return await r('getUpdate', `/api/v1/updates/${enc(updateId)}`) },
    async acks (updateId) { return await r('updateAcks', `/api/v1/updates/${enc(updateId)}/acknowledgments`) },
    async create (u) { return await r('createUpdate', '/api/v1/updates', u) },
  }
}
