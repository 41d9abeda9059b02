/**
 * REST API v1 of the chat platform (docs/protocol.md §17; OpenAPI in openapi.ts): rooms, members,
 * history, messages, presence, handles, roles, tasks, the audit log and settings. Every route but
 * the token exchange needs a principal (auth.ts); every route is rate limited per IP and per
 * principal (429 with Retry-After); errors are `{ error: { code, message } }`.
 */
import type { IncomingMessage } from 'node:http'
import type { Context, Hono } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import { AgentMeshError, ErrorCode, ID_PATTERN, TYPE_PATTERN, type Envelope, validateEnvelope } from '@agentmesh/protocol'
import { isAmid, verifyEnvelope } from '@agentmesh/crypto'
import { verifyAudit, type AuditRecord, type HistoryEntry, type Store } from '@agentmesh/store'
import {
  GROUP_TYPE, NOTICE_TYPE, actorOf, ipOf, rateLimited, settingsFromJson, settingsJson,
  type ChatService, type Principal,
} from './chat.ts'
import type { Authenticator } from './auth.ts'
import { RateLimiter } from '@agentmesh/protocol/internal'
import { FINAL_STATES, TaskService, taskJson } from './tasks.ts'

/** Largest REST v1 body. */
export const MAX_API_BODY_BYTES = 64 * 1024
export const DEFAULT_PAGE = 50
export const MAX_PAGE = 200
const ID_RE = new RegExp(ID_PATTERN)
const TYPE_RE = new RegExp(TYPE_PATTERN)

export interface ApiDeps {
  store: Store
  chat: ChatService
  tasks: TaskService
  auth: Authenticator
}

/** The client's IP (the socket's peer; "local" for in-process requests). */
export function remoteOf (c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress ?? 'local'
}

/** An integer query parameter within bounds (undefined when absent). */
function intQuery (c: Context, name: string, min: number, max: number): number | undefined {
  const v = c.req.query(name)
  if (v === undefined) return undefined
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `${name} must be a whole number from ${min} to ${max}, got "${v.slice(0, 20)}"`)
  }
  return Number(v)
}

function limitOf (c: Context): number { return intQuery(c, 'limit', 1, MAX_PAGE) ?? DEFAULT_PAGE }

function obj (body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the body must be a JSON object')
  return body as Record<string, unknown>
}

function only (body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new AgentMeshError(ErrorCode.InvalidArgument, `unknown field "${k.slice(0, 40)}"; expected ${allowed.join(', ')}`)
  }
}

/** A history entry as the API shows it. */
async function entryJson (chat: ChatService, e: HistoryEntry): Promise<Record<string, unknown>> {
  const base = { seq: e.seq, id: e.id, from: e.sender, ...await handleOf(chat, e.sender), received_at: e.receivedAt }
  if (e.deleted !== undefined || e.envelope === '') return { ...base, deleted: { by: e.deleted?.by ?? 'unknown', at: e.deleted?.at ?? 0 } }
  const env = JSON.parse(e.envelope) as Envelope
  return {
    ...base,
    type: env.type,
    ts: env.ts,
    ...(env.type !== GROUP_TYPE && typeof env.payload.text === 'string' ? { text: env.payload.text } : {}),
    payload: env.payload,
    ...(env.via === undefined ? {} : { via: env.via }),
    envelope: env,
  }
}

async function handleOf (chat: ChatService, amid: string): Promise<{ from_handle?: string }> {
  if (amid === chat.relayAmid) return { from_handle: 'relay' }
  const h = await chat.handleOf(amid)
  return h === undefined ? {} : { from_handle: h }
}

function auditJson (r: AuditRecord): Record<string, unknown> {
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, ...(r.target === undefined ? {} : { target: r.target }), detail: r.detail, prev: r.prev, hash: r.hash }
}

export function apiV1Routes (app: Hono, deps: ApiDeps): void {
  const { store, chat, tasks, auth } = deps
  const apiLimiter = new RateLimiter(chat.settings.rateLimits.api, chat.now)
  const ipLimiter = new RateLimiter(chat.settings.rateLimits.ip, chat.now)

  const limitIp = (c: Context): void => {
    const r = ipLimiter.take(ipOf(remoteOf(c)))
    if (!r.ok) throw rateLimited(r.retryAfterS, 'requests from this address')
  }

  /** Authenticates and rate limits a request; answers the principal and the JSON body. */
  const enter = async (c: Context): Promise<{ p: Principal, body: unknown }> => {
    limitIp(c)
    const { principal, body } = await auth.principal(c)
    const r = apiLimiter.take(actorOf(principal))
    if (!r.ok) throw rateLimited(r.retryAfterS, `requests by ${principal.kind === 'operator' ? 'the operator' : principal.amid}`)
    return { p: principal, body }
  }

  // ---- tokens
  app.post('/api/v1/auth/challenge', async (c) => {
    limitIp(c)
    const body = obj(await readJson(c))
    return c.json(auth.challenge(body.amid))
  })
  app.post('/api/v1/auth/token', async (c) => {
    limitIp(c)
    return c.json(await auth.token(obj(await readJson(c))))
  })

  // ---- rooms
  app.get('/api/v1/rooms', async (c) => {
    const { p } = await enter(c)
    const after = c.req.query('after')
    const rooms = await chat.listRooms(p, { ...(after === undefined ? {} : { after }), limit: limitOf(c) })
    return c.json({ rooms: await Promise.all(rooms.map(s => chat.roomJson(p, s))) })
  })
  app.post('/api/v1/rooms', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['id', 'kind', 'topic'])
    const s = await chat.createRoom(p, b)
    return c.json(await chat.roomJson(p, s), 201)
  })
  app.get('/api/v1/rooms/:id', async (c) => {
    const { p } = await enter(c)
    return c.json(await chat.roomJson(p, await chat.visibleRoom(p, c.req.param('id'))))
  })
  app.get('/api/v1/rooms/:id/members', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, c.req.param('id'))
    if (s.room.kind === 'global') throw new AgentMeshError(ErrorCode.InvalidArgument, 'every agent is in the global room: see GET /api/v1/presence for who is online')
    return c.json({ room: s.room.id, members: await chat.membersJson(s) })
  })
  app.post('/api/v1/rooms/:id/join', async (c) => {
    const { p } = await enter(c)
    const r = await chat.join(p, c.req.param('id'))
    return c.json({ room: await chat.roomJson(p, r.state), joined: true, already: r.already })
  })
  app.post('/api/v1/rooms/:id/leave', async (c) => {
    const { p } = await enter(c)
    const s = await chat.leave(p, c.req.param('id'))
    return c.json({ room: s.room.id, left: true })
  })
  app.post('/api/v1/rooms/:id/invite', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['agent'])
    return c.json({ ...await chat.invite(p, c.req.param('id'), b.agent), invited: true })
  })
  app.post('/api/v1/rooms/:id/kick', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['agent'])
    return c.json({ ...await chat.kick(p, c.req.param('id'), b.agent), kicked: true })
  })
  app.put('/api/v1/rooms/:id/topic', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['topic'])
    return c.json(await chat.roomJson(p, await chat.setTopic(p, c.req.param('id'), b.topic)))
  })
  app.get('/api/v1/rooms/:id/history', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, c.req.param('id'))
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.EncryptionRequired, 'DMs are end-to-end encrypted and the relay keeps them only until they are delivered: each agent keeps its own history')
    if (s.room.kind === 'public' && p.role !== 'master' && !(p.kind === 'agent' && chat.isMember(s, p.amid))) {
      throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} to read its history (\`agentmesh room join ${s.room.id}\`)`)
    }
    const before = intQuery(c, 'before', 1, Number.MAX_SAFE_INTEGER)
    const after = intQuery(c, 'after', 0, Number.MAX_SAFE_INTEGER)
    const limit = limitOf(c)
    const rows = await store.readHistory(s.room.id, { ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }), limit })
    const messages = await Promise.all(rows.map(e => entryJson(chat, e)))
    const first = rows[0]?.seq
    return c.json({
      room: s.room.id,
      messages,
      ...(after === undefined && first !== undefined && first > 1 && rows.length === limit ? { next_before: first } : {}),
      ...(after !== undefined && rows.length === limit ? { next_after: rows[rows.length - 1]!.seq } : {}),
      last_seq: await store.lastRoomSeq(s.room.id),
    })
  })
  app.delete('/api/v1/rooms/:id/messages/:seq', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, c.req.param('id'))
    const seqText = c.req.param('seq')
    if (!/^\d{1,16}$/.test(seqText)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'seq must be the message\'s room seq (a whole number)')
    const seq = Number(seqText)
    const e = await store.getHistoryEntry(s.room.id, seq)
    if (e === undefined || e.deleted !== undefined) throw new AgentMeshError(ErrorCode.NotFound, `no message ${seq} in ${s.room.id}`)
    const mine = p.kind === 'agent' && e.sender === p.amid
    const moderator = p.role === 'master' || (p.kind === 'agent' && s.room.owner === p.amid) || (p.role === 'warden' && s.room.kind !== 'private')
    if (!mine && !moderator) throw new AgentMeshError(ErrorCode.Forbidden, 'a message is deleted by its sender, the room\'s owner, a warden (public rooms) or a master')
    await store.deleteHistoryEntry(s.room.id, seq, actorOf(p), chat.now())
    await chat.audit(p, 'message.delete', '#' + s.room.id, { seq, id: e.id, sender: e.sender })
    if (s.room.kind !== 'private') {
      // members (and clients showing the room) learn of it in the timeline, as with a topic change
      await chat.postToRoom(s, NOTICE_TYPE, { text: `message ${seq} was deleted`, deleted: { seq, id: e.id }, by: actorOf(p) })
    }
    return c.json({ room: s.room.id, seq, deleted: true })
  })

  // ---- messages
  app.post('/api/v1/messages', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    const remote = remoteOf(c)
    let env: Envelope
    let attested = false
    if (b.envelope !== undefined) {
      only(b, ['envelope'])
      if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'an envelope is posted by the agent that signed it')
      const bad = validateEnvelope(b.envelope, Buffer.byteLength(JSON.stringify(b.envelope)), MAX_API_BODY_BYTES)
      if (bad !== undefined) throw new AgentMeshError(bad.code === ErrorCode.EnvelopeTooLarge ? ErrorCode.BodyTooLarge : ErrorCode.InvalidEnvelope, bad.message)
      env = b.envelope as Envelope
      if (env.from !== p.amid) throw new AgentMeshError(ErrorCode.SenderMismatch, `the envelope is from ${env.from} but you are ${p.amid}`)
      if (env.via !== undefined) throw new AgentMeshError(ErrorCode.InvalidEnvelope, 'via is set by the relay only')
      if (!verifyEnvelope(env)) throw new AgentMeshError(ErrorCode.BadSignature, 'the envelope signature does not verify with the sender\'s key; nothing was stored')
    } else {
      only(b, ['to', 'text', 'payload', 'type', 'id', 'plaintext'])
      if (b.text !== undefined && typeof b.text !== 'string') throw new AgentMeshError(ErrorCode.InvalidArgument, 'text must be a string')
      if (b.payload !== undefined && (typeof b.payload !== 'object' || b.payload === null || Array.isArray(b.payload))) throw new AgentMeshError(ErrorCode.InvalidArgument, 'payload must be an object')
      if (b.text === undefined && b.payload === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'send "text" (or a "payload" object, or a signed "envelope")')
      const type = b.type ?? 'chat'
      if (typeof type !== 'string' || !TYPE_RE.test(type) || type.startsWith('e2ee') || type.startsWith('task.') || type === 'notice') {
        throw new AgentMeshError(ErrorCode.InvalidArgument, 'type must match ^[a-z][a-z0-9._-]{0,63}$ and not be one the relay or the SDK reserves (e2ee*, task.*, notice)')
      }
      const id = b.id ?? uuidv7()
      if (typeof id !== 'string' || !ID_RE.test(id)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'id must be 8–128 characters of A-Z a-z 0-9 _ -')
      const to = await addressOf(chat, b.to)
      if (!to.startsWith('#') && b.plaintext !== true) {
        throw new AgentMeshError(ErrorCode.EncryptionRequired, 'direct messages are end-to-end encrypted: post a signed "envelope" the SDK made, or set "plaintext": true to send this one unencrypted (the relay can read it)')
      }
      const payload = { ...(b.payload as Record<string, unknown> | undefined), ...(b.text === undefined ? {} : { text: b.text }) }
      const from = p.kind === 'agent' ? p.amid : chat.relayAmid
      env = chat.attest(from, { id, to, type, payload })
      attested = p.kind === 'agent'
    }
    const { result } = await chat.postMessage(p, env, remote, attested)
    if (result.status === 'inbox_full') throw new AgentMeshError(ErrorCode.InboxFull, `the inbox of ${env.to} is full; try again later`)
    return c.json({ id: env.id, to: env.to, from: env.from, ...(env.to.startsWith('#') ? { seq: result.seq } : {}), duplicate: result.status === 'duplicate' }, result.status === 'duplicate' ? 200 : 201)
  })

  // ---- presence and handles
  app.get('/api/v1/presence', async (c) => {
    const { p } = await enter(c)
    const room = c.req.query('room')
    const rows: Array<Record<string, unknown>> = []
    const row = async (amid: string): Promise<Record<string, unknown>> => {
      const h = await chat.handleOf(amid)
      const status = chat.presenceOf(amid)
      const active = chat.lastActive(amid)
      const rec = status === 'offline' ? await store.getAgent(amid) : undefined
      return { amid, ...(h === undefined ? {} : { handle: h }), status, ...(active === undefined ? {} : { last_active_at: active }), ...(rec === undefined ? {} : { last_seen_at: rec.lastSeenAt }) }
    }
    if (room !== undefined && room !== 'global' && room !== '#global') {
      const s = await chat.visibleRoom(p, room)
      for (const m of chat.membersOf(s)) rows.push(await row(m))
    } else {
      for (const a of chat.onlineAgents().slice(0, 10_000)) rows.push(await row(a))
    }
    return c.json({ agents: rows })
  })
  app.post('/api/v1/handles', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['handle', 'amid'])
    let amid: string
    if (p.kind === 'agent' && (b.amid === undefined || b.amid === p.amid)) amid = p.amid
    else if (p.role === 'master' && typeof b.amid === 'string' && isAmid(b.amid)) amid = b.amid
    else throw new AgentMeshError(p.kind === 'operator' ? ErrorCode.InvalidArgument : ErrorCode.Forbidden, p.kind === 'operator' ? 'the operator names the agent: {"handle", "amid"}' : 'an agent sets its own handle (only a master sets another agent\'s)')
    const r = await chat.setHandle(p, amid, b.handle)
    return c.json(r, r.previous === undefined ? 201 : 200)
  })
  app.get('/api/v1/handles/:handle', async (c) => {
    await enter(c)
    const h = c.req.param('handle').replace(/^@/, '')
    if (isAmid(h)) {
      // the other way round: an agent's handle
      const handle = await chat.handleOf(h)
      if (handle === undefined) throw new AgentMeshError(ErrorCode.UnknownHandle, `${h} has no handle`)
      return c.json({ handle, amid: h })
    }
    const amid = await chat.resolveAgent('@' + h, 'handle')
    return c.json({ handle: (await chat.handleOf(amid)) ?? h, amid })
  })

  // ---- roles
  app.put('/api/v1/agents/:amid/role', async (c) => {
    const { p, body } = await enter(c)
    const amid = c.req.param('amid')
    if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${amid.slice(0, 80)}" is not an AMID`)
    const b = obj(body)
    only(b, ['role'])
    return c.json(await chat.setRole(p, amid, b.role))
  })
  app.get('/api/v1/roles', async (c) => {
    await enter(c)
    return c.json({ roles: (await store.listRoles()).map(r => ({ amid: r.amid, role: r.role })), default: 'worker' })
  })

  // ---- tasks
  app.post('/api/v1/tasks', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['to', 'command', 'args', 'room', 'deadline_s'])
    return c.json(taskJson(await tasks.dispatch(p, b)), 201)
  })
  app.get('/api/v1/tasks', async (c) => {
    const { p } = await enter(c)
    const room = c.req.query('room')
    const state = c.req.query('state')
    const before = c.req.query('before')
    const limit = limitOf(c)
    const list = await tasks.list(p, { ...(room === undefined ? {} : { room }), ...(state === undefined ? {} : { state }), ...(before === undefined ? {} : { before }), limit })
    return c.json({ tasks: list.map(taskJson), ...(list.length === limit ? { next_before: list[list.length - 1]!.id } : {}) })
  })
  app.get('/api/v1/tasks/:id', async (c) => {
    const { p } = await enter(c)
    return c.json(taskJson(await tasks.visible(p, c.req.param('id'))))
  })
  app.post('/api/v1/tasks/:id/status', async (c) => {
    const { p, body } = await enter(c)
    const b = obj(body)
    only(b, ['state', 'message', 'result'])
    return c.json(taskJson(await tasks.report(p, c.req.param('id'), b)))
  })
  app.post('/api/v1/tasks/:id/cancel', async (c) => {
    const { p, body } = await enter(c)
    const b = body === undefined ? {} : obj(body)
    only(b, ['reason'])
    return c.json(taskJson(await tasks.cancel(p, c.req.param('id'), b.reason)))
  })

  // ---- audit
  app.get('/api/v1/audit', async (c) => {
    const { p } = await enter(c)
    const after = intQuery(c, 'after', 0, Number.MAX_SAFE_INTEGER)
    const limit = limitOf(c)
    const action = c.req.query('action')
    if (action !== undefined && !/^[a-z][a-z0-9._-]{0,63}$/.test(action)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'action is like message.send or room.join')
    let actor = c.req.query('actor')
    if (p.role !== 'master' && p.role !== 'warden') {
      if (actor !== undefined && actor !== actorOf(p)) throw new AgentMeshError(ErrorCode.Forbidden, 'workers read their own audit rows only')
      actor = actorOf(p)
    }
    const rows = await store.readAudit({ ...(after === undefined ? {} : { after }), limit, ...(actor === undefined ? {} : { actor }), ...(action === undefined ? {} : { action }) })
    return c.json({ entries: rows.map(auditJson), ...(rows.length === limit ? { next_after: rows[rows.length - 1]!.seq } : {}) })
  })
  app.get('/api/v1/audit/verify', async (c) => {
    await enter(c)
    const r = await verifyAudit(store)
    return c.json(r.ok
      ? { ok: true, rows: r.rows, ...(r.last === undefined ? {} : { last_seq: r.last.seq, last_hash: r.last.hash }), ...(r.from === undefined ? {} : { from_seq: r.from }) }
      : { ok: false, rows: r.rows, seq: r.seq, reason: r.reason, code: ErrorCode.AuditTampered })
  })

  // ---- settings
  app.get('/api/v1/settings', async (c) => {
    await enter(c)
    return c.json({ settings: settingsJson(chat.settings) })
  })
  app.patch('/api/v1/settings', async (c) => {
    const { p, body } = await enter(c)
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'only a master changes settings')
    const b = obj(body)
    only(b, ['presence_idle_ms', 'task_default_deadline_s', 'rate_limits'])
    const merged = { ...settingsJson(chat.settings), ...b }
    if (b.rate_limits !== undefined) {
      const rl = obj(b.rate_limits)
      const names = Object.keys((settingsJson(chat.settings).rate_limits as Record<string, unknown>))
      only(rl, names)
      merged.rate_limits = { ...(settingsJson(chat.settings).rate_limits as Record<string, unknown>), ...rl }
    }
    const next = settingsFromJson(merged, chat.settings)
    // a value settingsFromJson did not take was out of range: say which
    const applied = settingsJson(next)
    for (const [k, v] of Object.entries(b)) {
      if (k === 'rate_limits') {
        for (const [rk, rv] of Object.entries(v as Record<string, unknown>)) {
          if ((applied.rate_limits as Record<string, unknown>)[rk] !== rv) throw new AgentMeshError(ErrorCode.InvalidArgument, `rate_limits.${rk} must be a whole number from 1 to 1,000,000`)
        }
      } else if (applied[k] !== v) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, k === 'presence_idle_ms' ? 'presence_idle_ms must be a whole number of ms from 1,000 to 7 days' : 'task_default_deadline_s must be a whole number of seconds from 1 to 7 days')
      }
    }
    await store.putSettings(applied)
    chat.applySettings(next)
    apiLimiter.set(next.rateLimits.api)
    ipLimiter.set(next.rateLimits.ip)
    await chat.audit(p, 'settings.set', undefined, { keys: Object.keys(b) })
    return c.json({ settings: applied })
  })

  void FINAL_STATES
}

/** `to` of a REST message: "#room", an AMID or "@handle". */
async function addressOf (chat: ChatService, to: unknown): Promise<string> {
  if (typeof to !== 'string' || to === '') throw new AgentMeshError(ErrorCode.InvalidArgument, 'to must be "#room", an AMID or "@handle"')
  if (to.startsWith('#')) {
    if (!/^#[a-z0-9][a-z0-9_-]{0,63}$/.test(to)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${to.slice(0, 80)}" is not a room address (#room-id)`)
    return to
  }
  return await chat.resolveAgent(to, 'to')
}

/** The JSON body of an unauthenticated request (at most MAX_API_BODY_BYTES). */
export async function readJson (c: Context): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > MAX_API_BODY_BYTES) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${declared} bytes; the API takes at most ${MAX_API_BODY_BYTES}`)
  const raw = new Uint8Array(await c.req.arrayBuffer())
  if (raw.byteLength > MAX_API_BODY_BYTES) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${raw.byteLength} bytes; the API takes at most ${MAX_API_BODY_BYTES}`)
  if (raw.byteLength === 0) return undefined
  try { return JSON.parse(new TextDecoder().decode(raw)) } catch {
    throw new AgentMeshError(ErrorCode.BadJson, 'the body is not valid JSON')
  }
}
