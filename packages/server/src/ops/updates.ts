/**
 * System updates with acknowledgements (docs/protocol.md §19): a master announces an update, every
 * agent gets it as a `system_update` event (live when connected, and at each later auth until it
 * answered rejected or completed, or the update expired: the Store's acks decide, so nothing is
 * lost to an agent that was offline), agents acknowledge it, and the operator reads the adoption.
 *
 * A breaking update with a `requiredVersion` is Protocol 4: from its `enforceAt` on, the relay
 * refuses sends (WebSocket and REST posts) from agents below that version (AM_ERR_UPDATE_REQUIRED).
 * It does so through the core's send gate (relay.ts `SendGate`): a verdict per connection, computed
 * when it authenticates and again only when `generation` moves (an update created, a version
 * reported), so a send costs a comparison.
 */
import type { Context, Hono } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import semver from 'semver'
import {
  API_ROUTES as R, AgentMeshError, ErrorCode, MAX_ADOPTION_NOT_ANSWERED, checkValue, encodeFrame,
  type ApiAnswer, type OpsEvent,
} from '@agentmesh/protocol'
import { isAmid } from '@agentmesh/crypto'
import type { UpdateAckRecord, UpdateAckStatus, UpdateRecord } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import type { SendGate, SendVerdict } from '../relay.ts'
import type { Principal } from '../chat.ts'
import { answer, paramsOf, queryOf } from '../rest.ts'
import type { OpsContext } from './context.ts'

/** Active updates an agent is told at each auth, at most (the newest). */
export const MAX_UPDATES_AT_AUTH = 50
/** Updates read at start to find the breaking ones (those with a required version) the send gate holds. */
export const MAX_BREAKING_UPDATES = 1000
/** Updates a list answers by default. */
const DEFAULT_UPDATE_LIST = 50

/** The moves an acknowledgement may make (§19): `completed` is final, a rejection may be reconsidered. */
const ACK_MOVES: Record<UpdateAckStatus, readonly UpdateAckStatus[]> = {
  pending: ['accepted', 'rejected', 'completed'],
  accepted: ['accepted', 'rejected', 'completed'],
  rejected: ['rejected', 'accepted'],
  completed: ['completed'],
}

type UpdateInfo = ApiAnswer<'getUpdate'>
type UpdateAck = ApiAnswer<'ackUpdate'>
type Adoption = ApiAnswer<'updateAcks'>

/** Whether `version` (as reported) is at or above `required` (semver); an unreported or unreadable one is not. */
export function meetsVersion (version: string | undefined, required: string): boolean {
  if (version === undefined || semver.valid(version) === null) return false
  return semver.gte(version, required)
}

/** A time given as ms or an ISO 8601 string, in ms; `field` names it in the error. */
function timeOf (v: number | string, field: string): number {
  const t = typeof v === 'number' ? v : Date.parse(v)
  if (!Number.isFinite(t) || t < 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `${field}: ${JSON.stringify(v)} is not a time (ms since the Unix epoch, or an ISO 8601 date-time such as "2026-12-31T23:59:59Z")`)
  return t
}

function iso (ms: number): string { return new Date(ms).toISOString() }

export function updateJson (u: UpdateRecord, now: number): UpdateInfo {
  return {
    updateId: u.id,
    version: u.version,
    updateType: u.updateType,
    title: u.title,
    ...(u.description === undefined ? {} : { description: u.description }),
    ...(u.requiredVersion === undefined ? {} : { requiredVersion: u.requiredVersion }),
    breakingChange: u.breakingChange,
    ...(u.announcement === undefined ? {} : { announcement: u.announcement }),
    ...(u.expiresAt === undefined ? {} : { expiresAt: u.expiresAt }),
    ...(u.enforceAt === undefined ? {} : { enforceAt: u.enforceAt }),
    createdBy: u.createdBy,
    createdAt: u.createdAt,
    active: u.expiresAt === undefined || u.expiresAt > now,
  }
}

function ackJson (a: UpdateAckRecord): UpdateAck {
  return {
    updateId: a.updateId,
    agentId: a.amid,
    status: a.status,
    ...(a.agentVersion === undefined ? {} : { agentVersion: a.agentVersion }),
    ...(a.notes === undefined ? {} : { notes: a.notes }),
    updatedAt: a.updatedAt,
  }
}

/** The refusal of a send by an agent below an update's required version. */
function updateRequired (u: UpdateRecord, version: string | undefined): AgentMeshError {
  return new AgentMeshError(ErrorCode.UpdateRequired,
    `update "${u.title}" (${u.id}) requires agent version ${u.requiredVersion!} or later since ${iso(u.enforceAt!)}, and this agent ${version === undefined ? 'reported no version' : `runs ${version}`}; ` +
    'upgrade it and connect again (the SDK reports its version in the auth frame; over REST, acknowledge the update with agentVersion); nothing was stored')
}

export interface UpdatesFeature extends RelayFeature {
  readonly sendGate: SendGate
}

export function updatesFeature (ctx: OpsContext): UpdatesFeature {
  const { store, logger: log, now } = ctx
  /** breaking updates with a required version (and so an enforceAt), oldest first */
  let breaking: UpdateRecord[] = []
  const breakingIds = new Set<string>()
  /** the version each agent last reported (auth frame or acknowledgement) */
  const versions = new Map<string, string>()
  let generation = 0
  const unsubscribe: Array<() => void> = []

  /** The earliest-enforced breaking update `version` does not meet, if any. */
  const unmet = (version: string | undefined): UpdateRecord | undefined => {
    let first: UpdateRecord | undefined
    for (const u of breaking) {
      if (meetsVersion(version, u.requiredVersion!)) continue
      if (first === undefined || u.enforceAt! < first.enforceAt!) first = u
    }
    return first
  }

  const sendGate: SendGate = {
    get generation () { return generation },
    verdict (amid, agentVersion): SendVerdict | undefined {
      if (breaking.length === 0) return undefined
      const version = agentVersion ?? versions.get(amid)
      const u = unmet(version)
      return u === undefined ? undefined : { from: u.enforceAt!, error: () => updateRequired(u, version) }
    },
    now,
  }

  /**
   * Breaking updates read from the Store that the gate does not hold yet (created through another
   * relay node over the same Store): held from now on, and every connection's verdict recomputed.
   */
  const learn = (us: readonly UpdateRecord[]): void => {
    const fresh = us.filter(u => u.requiredVersion !== undefined && u.enforceAt !== undefined && !breakingIds.has(u.id))
    if (fresh.length === 0) return
    for (const u of fresh) breakingIds.add(u.id)
    breaking = [...breaking, ...fresh]
    generation++
  }

  /** Records a reported version (the Store, the gate's map); a change moves the gate's generation. */
  const reported = async (amid: string, version: string): Promise<void> => {
    if (versions.get(amid) === version) return
    versions.set(amid, version)
    // verdicts depend on versions only while a breaking update is held
    if (breaking.length > 0) generation++
    // a read-only relay (§20) keeps it in memory only: the agent is still told its pending updates
    if (ctx.readOnly?.active !== true) await store.setAgentVersion(amid, version, now())
  }

  /** The event of `u` for an agent whose version is `version` (known or not). */
  const eventOf = (u: UpdateRecord, status: UpdateAckStatus, version: string | undefined): string => {
    const data: Record<string, unknown> = { ...updateJson(u, now()), status }
    delete data.active
    if (u.requiredVersion !== undefined) {
      data.belowRequired = !meetsVersion(version, u.requiredVersion)
    }
    const event: OpsEvent = { type: 'system_update', data, ts: now() }
    return encodeFrame({ op: 'event', event })
  }

  /** Tells an agent that authenticated the active updates it has not settled (and those it is below). */
  const tellPending = async (amid: string, connVersion: string | undefined): Promise<void> => {
    const active = await store.listUpdates({ activeAt: now(), limit: MAX_UPDATES_AT_AUTH })
    if (active.length === 0) return
    learn(active)
    const acks = new Map((await store.agentUpdateAcks(amid, active.map(u => u.id))).map(a => [a.updateId, a.status]))
    const version = connVersion ?? versions.get(amid)
    for (const u of active.reverse()) { // oldest first
      const status = acks.get(u.id) ?? 'pending'
      const below = u.requiredVersion !== undefined && u.enforceAt !== undefined && !meetsVersion(version, u.requiredVersion)
      if ((status === 'completed' || status === 'rejected') && !below) continue
      ctx.relay.event([amid], eventOf(u, status, version))
    }
  }

  /** Live: every agent connected here now (two frames: those below a required version, the others). */
  const broadcast = (u: UpdateRecord): void => {
    const online = [...ctx.relay.online()]
    if (u.requiredVersion === undefined) {
      ctx.relay.event(online, eventOf(u, 'pending', undefined))
      return
    }
    const below: string[] = []
    const meets: string[] = []
    for (const a of online) (meetsVersion(versions.get(a), u.requiredVersion) ? meets : below).push(a)
    if (below.length > 0) ctx.relay.event(below, eventOf(u, 'pending', undefined))
    if (meets.length > 0) ctx.relay.event(meets, eventOf(u, 'pending', u.requiredVersion))
  }

  const enter = async (c: Context): Promise<{ p: Principal, body: unknown }> => await ctx.gate().enter(c)

  const create = async (c: Context): Promise<Response> => {
    const { p, body } = await enter(c)
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'only a master (or the operator\'s X-API-Key) announces system updates')
    const b = checkValue(R.createUpdate.body, body)
    const at = now()
    const expiresAt = b.expiresAt === undefined ? undefined : timeOf(b.expiresAt, 'expiresAt')
    if (expiresAt !== undefined && expiresAt <= at) throw new AgentMeshError(ErrorCode.InvalidArgument, `expiresAt: ${iso(expiresAt)} is not in the future (the relay's clock says ${iso(at)})`)
    const breakingChange = b.breakingChange ?? false
    // a requiredVersion without breakingChange is told (belowRequired) but not enforced
    const enforced = breakingChange && b.requiredVersion !== undefined
    if (b.enforceAt !== undefined && !enforced) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'enforceAt: a deadline goes with breakingChange: true and a requiredVersion (it is when older agents start being refused)')
    }
    const enforceAt = !enforced
      ? undefined
      : b.enforceAt !== undefined ? timeOf(b.enforceAt, 'enforceAt') : expiresAt ?? at + ctx.options.updateGraceMs
    const u: UpdateRecord = {
      id: uuidv7(),
      version: b.version,
      updateType: b.updateType,
      title: b.title,
      ...(b.description === undefined ? {} : { description: b.description }),
      ...(b.requiredVersion === undefined ? {} : { requiredVersion: b.requiredVersion }),
      breakingChange,
      ...(b.announcement === undefined ? {} : { announcement: b.announcement }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(enforceAt === undefined ? {} : { enforceAt }),
      createdBy: p.kind === 'operator' ? 'operator' : p.amid,
      createdAt: at,
    }
    await store.putUpdate(u)
    await ctx.chat.audit(p, 'update.create', u.id, {
      version: u.version, update_type: u.updateType, breaking: breakingChange,
      ...(u.requiredVersion === undefined ? {} : { required_version: u.requiredVersion, enforce_at: u.enforceAt }),
    })
    learn([u])
    broadcast(u)
    return answer(c, 'createUpdate', { updateId: u.id, broadcast: true }, 201)
  }

  /** The updates as an agent reads them: with its own answer and whether it is below a required version. */
  const forCaller = async (p: Principal, us: UpdateRecord[], at: number): Promise<UpdateInfo[]> => {
    if (p.kind !== 'agent') return us.map(u => updateJson(u, at))
    const acks = new Map((await store.agentUpdateAcks(p.amid, us.map(u => u.id))).map(a => [a.updateId, a.status]))
    const version = versions.get(p.amid)
    return us.map(u => ({
      ...updateJson(u, at),
      status: acks.get(u.id) ?? 'pending',
      ...(u.requiredVersion === undefined ? {} : { belowRequired: !meetsVersion(version, u.requiredVersion) }),
    }))
  }

  const list = async (c: Context): Promise<Response> => {
    const { p } = await enter(c)
    const q = queryOf(c, R.listUpdates.query)
    const since = q.since === undefined ? undefined : timeOf(/^\d+$/.test(q.since) ? Number(q.since) : q.since, 'since')
    const at = now()
    const updates = await store.listUpdates({
      ...(since === undefined ? {} : { since }),
      ...(q.activeOnly === 'true' ? { activeAt: at } : {}),
      limit: q.limit ?? DEFAULT_UPDATE_LIST,
    })
    return answer(c, 'listUpdates', { updates: await forCaller(p, updates, at) })
  }

  const known = async (id: string): Promise<UpdateRecord> => {
    const u = await store.getUpdate(id)
    if (u === undefined) throw new AgentMeshError(ErrorCode.UnknownUpdate, `no update ${id}; list them with GET /api/v1/updates (\`agentmesh update list\`)`)
    return u
  }

  const get = async (c: Context): Promise<Response> => {
    const { p } = await enter(c)
    const { id } = paramsOf(c, R.getUpdate.params)
    const [info] = await forCaller(p, [await known(id)], now())
    return answer(c, 'getUpdate', info!)
  }

  const acknowledge = async (c: Context): Promise<Response> => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.ackUpdate.params)
    const b = checkValue(R.ackUpdate.body, body)
    const amid = b.agentId ?? (p.kind === 'agent' ? p.amid : undefined)
    if (amid === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'agentId: the operator\'s key acknowledges for an agent it names (agentId)')
    if (p.kind === 'agent' && amid !== p.amid && p.role !== 'master') {
      throw new AgentMeshError(ErrorCode.Forbidden, `agentId must be your own AMID (${p.amid}): an agent acknowledges for itself (a master may for another)`)
    }
    if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `agentId: ${JSON.stringify(amid)} is not an AMID`)
    const u = await known(id)
    const at = now()
    if (u.expiresAt !== undefined && u.expiresAt <= at) {
      throw new AgentMeshError(ErrorCode.UpdateExpired, `update "${u.title}" (${u.id}) expired at ${iso(u.expiresAt)}; it takes no more acknowledgements`)
    }
    if (amid !== (p.kind === 'agent' ? p.amid : undefined) && await store.getAgent(amid) === undefined) {
      throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${amid} is registered on this relay`)
    }
    const old = await store.getUpdateAck(id, amid)
    const from: UpdateAckStatus = old?.status ?? 'pending'
    if (!ACK_MOVES[from].includes(b.status)) {
      throw new AgentMeshError(ErrorCode.InvalidTransition, `the answer of ${amid} to update ${id} is ${from}: it can become ${ACK_MOVES[from].join(' or ')}, not ${b.status}`)
    }
    const rec: UpdateAckRecord = {
      updateId: id,
      amid,
      status: b.status,
      ...(b.agentVersion === undefined ? {} : { agentVersion: b.agentVersion }),
      ...(b.notes === undefined ? {} : { notes: b.notes }),
      updatedAt: at,
    }
    if (!await store.putUpdateAck(rec, from)) {
      throw new AgentMeshError(ErrorCode.InvalidTransition, `the answer of ${amid} to update ${id} changed meanwhile; read it and acknowledge again`)
    }
    if (b.agentVersion !== undefined) await reported(amid, b.agentVersion)
    await ctx.chat.audit(p, 'update.ack', id, { agent: amid, status: b.status, from, ...(b.agentVersion === undefined ? {} : { agent_version: b.agentVersion }) })
    return answer(c, 'ackUpdate', ackJson(rec))
  }

  const adoption = async (c: Context): Promise<Response> => {
    const { p } = await enter(c)
    if (p.role !== 'master' && p.role !== 'warden') throw new AgentMeshError(ErrorCode.Forbidden, 'the adoption view is for masters and wardens')
    const { id } = paramsOf(c, R.updateAcks.params)
    const u = await known(id)
    const acks = await store.listUpdateAcks(id)
    const byAgent = new Map(acks.map(a => [a.amid, a]))
    const reportedVersions = new Map((await store.listAgentVersions()).map(v => [v.amid, v.version]))
    const relayAmid = ctx.chat.relayAmid
    const counts = { pending: 0, accepted: 0, rejected: 0, completed: 0 }
    const notAnswered: string[] = []
    const versionCounts: Record<string, number> = {}
    let belowRequired = 0
    let total = 0
    let after: string | undefined
    for (;;) {
      const page = await store.listAgents({ ...(after === undefined ? {} : { after }), limit: 1000 })
      for (const amid of page) {
        if (amid === relayAmid) continue
        total++
        const a = byAgent.get(amid)
        counts[a?.status ?? 'pending']++
        if (a === undefined && notAnswered.length < MAX_ADOPTION_NOT_ANSWERED) notAnswered.push(amid)
        const v = reportedVersions.get(amid)
        versionCounts[v ?? 'unknown'] = (versionCounts[v ?? 'unknown'] ?? 0) + 1
        if (u.requiredVersion !== undefined && !meetsVersion(v, u.requiredVersion)) belowRequired++
      }
      if (page.length < 1000) break
      after = page[page.length - 1]
    }
    const body: Adoption = {
      updateId: id,
      totalAgents: total,
      counts,
      notAnswered,
      acknowledgments: acks.map(ackJson),
      versions: versionCounts,
      ...(u.requiredVersion === undefined ? {} : { belowRequired }),
    }
    return answer(c, 'updateAcks', body)
  }

  return {
    name: 'updates',
    sendGate,
    routes (app: Hono) {
      for (const prefix of ['/api/v1', '/api']) {
        app.post(`${prefix}/updates`, create)
        app.get(`${prefix}/updates`, list)
        app.get(`${prefix}/updates/:id`, get)
        app.post(`${prefix}/updates/:id/acknowledge`, acknowledge)
        app.get(`${prefix}/updates/:id/acknowledgments`, adoption)
      }
    },
    async start () {
      const all = await store.listUpdates({ limit: MAX_BREAKING_UPDATES })
      learn(all.reverse())
      for (const v of await store.listAgentVersions()) versions.set(v.amid, v.version)
      generation++
      unsubscribe.push(ctx.events.on('agent:authenticated', ({ amid, agentVersion }) => {
        void (async () => {
          if (agentVersion !== undefined) await reported(amid, agentVersion)
          await tellPending(amid, agentVersion)
        })().catch((err: unknown) => { log.error({ err, amid }, 'system updates: could not tell an agent its pending updates') })
      }))
    },
    stop () { for (const u of unsubscribe.splice(0)) u() },
  }
}
