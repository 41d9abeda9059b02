/**
 * REST API v1 of the chat platform (docs/protocol.md §17): rooms, members, history, messages,
 * presence, handles, roles, tasks, the audit log and settings (and POST /api/messages, the operations
 * plan's {from, to, content} form of POST /api/v1/messages). Every route but the token exchange
 * needs a principal (auth.ts); every route is rate limited per IP and per principal (429 with
 * Retry-After); errors are `{ error: { code, message } }`. Params, queries and bodies are checked
 * against the route table of @agentmesh/protocol (src/api), which the OpenAPI document is made from,
 * and the answers are typed by it. Where a route refuses a kind of principal outright (the operator
 * creating a room or dispatching a task, an agent naming another agent's handle), a body's shape
 * (a JSON object of known fields) is checked first, then who asks, then the rest of the body: such a
 * request answers 403 however its fields are wrong, as the relay always answered.
 */
import type { IncomingMessage } from 'node:http'
import type { Context, Hono } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import {
  API_ROUTES, AgentMeshError, DEFAULT_PAGE, DEFAULT_ROLE, ErrorCode, MAX_API_BODY_BYTES, MAX_PRESENCE_ROWS,
  PostEnvelopeBody, PostTextBody, ROOM_ADDRESS_PATTERN, checkShape, checkValue, isRelayType, validateEnvelope,
  type AuditEntry, type Envelope, type HistoryMessage, type MessagePosted, type PresenceEntry,
} from '@agentmesh/protocol'
import { isAmid, verifyEnvelope } from '@agentmesh/crypto'
import { verifyAudit, type AuditRecord, type HistoryEntry, type Store } from '@agentmesh/store'
import {
  GROUP_TYPE, NOTICE_TYPE, actorOf, ipKey, rateLimited, settingsFromJson, settingsJson,
  type ChatService, type Principal, type RoomState,
} from './chat.ts'
import type { Authenticator } from './auth.ts'
import { RateLimiter, type RateLimit } from '@agentmesh/protocol/internal'
import { TaskService, taskJson } from './tasks.ts'
import { answer, paramsOf, queryOf } from './rest.ts'
import { validHeads, type AuditHeadLog } from './audit-heads.ts'

const ROOM_ADDRESS_RE = new RegExp(ROOM_ADDRESS_PATTERN)
const R = API_ROUTES

export interface ApiDeps {
  store: Store
  chat: ChatService
  tasks: TaskService
  auth: Authenticator
  /** the signed heads of the audit chain (GET /api/v1/audit/heads); none when absent */
  auditHeads?: AuditHeadLog
  /** the rate limits shared with other features' routes; its own when absent */
  gate?: ApiGate
}

/**
 * One rule for what a public room shows (docs/protocol.md §17.3): its info (topic, owner, member
 * count) to anyone, its members (with their presence and read markers) and its history to members
 * and masters. Private rooms and DMs are unknown to non-members already (visibleRoom).
 */
function membersOnly (p: Principal, s: RoomState, what: string): void {
  if (s.room.kind !== 'public' || p.role === 'master' || (p.kind === 'agent' && s.members?.has(p.amid) === true)) return
  throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} to ${what} (\`agentmesh room join ${s.room.id}\`)`)
}

/** The client's IP (the socket's peer; "local" for in-process requests). */
export function remoteOf (c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket.remoteAddress ?? 'local'
}

/** A history entry as the API shows it. */
async function entryJson (chat: ChatService, e: HistoryEntry): Promise<HistoryMessage> {
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

function auditJson (r: AuditRecord): AuditEntry {
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, ...(r.target === undefined ? {} : { target: r.target }), detail: r.detail, prev: r.prev, hash: r.hash }
}

/**
 * The way into every authenticated REST route, shared by the chat API and the features that add
 * routes of their own (operations): the per-IP and per-principal rate limits (one bucket each,
 * whichever route is called) and the authenticator.
 */
export interface ApiGate {
  readonly auth: Authenticator
  /** Rate limits the caller's address (429 AM_ERR_RATE_LIMITED past it). */
  limitIp (c: Context): void
  /** Authenticates and rate limits a request; answers the principal and the JSON body (read by `readBody` when given: Authenticator.principal). */
  enter (c: Context, readBody?: (c: Context) => Promise<unknown>): Promise<{ p: Principal, body: unknown }>
  /** New rates (PATCH /api/v1/settings). */
  setLimits (api: RateLimit, ip: RateLimit): void
  /** The per-principal (`api`) and per-IP (`ip`) buckets, for a cluster to share (rate-share.ts). */
  readonly limiters: { readonly api: RateLimiter, readonly ip: RateLimiter }
}

export function apiGate (chat: ChatService, auth: Authenticator): ApiGate {
  const apiLimiter = new RateLimiter(chat.settings.rateLimits.api, chat.now)
  const ipLimiter = new RateLimiter(chat.settings.rateLimits.ip, chat.now)
  const limitIp = (c: Context): void => {
    const r = ipLimiter.take(ipKey(remoteOf(c)))
    if (!r.ok) throw rateLimited(r.retryAfterS, 'requests from this address')
  }
  return {
    auth,
    limitIp,
    async enter (c, readBody) {
      limitIp(c)
      const { principal, body } = await auth.principal(c, readBody)
      const r = apiLimiter.take(actorOf(principal))
      if (!r.ok) throw rateLimited(r.retryAfterS, `requests by ${principal.kind === 'operator' ? 'the operator' : principal.amid}`)
      if (principal.kind === 'agent') chat.requested(principal.amid) // a call by the agent is activity (presence)
      return { p: principal, body }
    },
    setLimits (api, ip) { apiLimiter.set(api); ipLimiter.set(ip) },
    limiters: { api: apiLimiter, ip: ipLimiter },
  }
}

export function apiV1Routes (app: Hono, deps: ApiDeps): void {
  const { store, chat, tasks, auth } = deps
  const gate = deps.gate ?? apiGate(chat, auth)
  const { limitIp, enter } = gate

  // ---- tokens
  app.post('/api/v1/auth/challenge', async (c) => {
    limitIp(c)
    const b = checkValue(R.authChallenge.body, await readJson(c))
    return answer(c, 'authChallenge', auth.challenge(b.amid))
  })
  app.post('/api/v1/auth/token', async (c) => {
    limitIp(c)
    return answer(c, 'authToken', await auth.token(checkValue(R.authToken.body, await readJson(c))))
  })

  // ---- rooms
  app.get('/api/v1/rooms', async (c) => {
    const { p } = await enter(c)
    const { after, limit = DEFAULT_PAGE } = queryOf(c, R.listRooms.query)
    const rooms = await chat.listRooms(p, { ...(after === undefined ? {} : { after }), limit })
    return answer(c, 'listRooms', { rooms: await Promise.all(rooms.map(s => chat.roomJson(p, s))) })
  })
  app.post('/api/v1/rooms', async (c) => {
    const { p, body } = await enter(c)
    checkShape(R.createRoom.body, body)
    const s = await chat.createRoom(p, () => checkValue(R.createRoom.body, body))
    return answer(c, 'createRoom', await chat.roomJson(p, s), 201)
  })
  app.get('/api/v1/rooms/:id', async (c) => {
    const { p } = await enter(c)
    const { id } = paramsOf(c, R.getRoom.params)
    return answer(c, 'getRoom', await chat.roomJson(p, await chat.visibleRoom(p, id)))
  })
  app.get('/api/v1/rooms/:id/members', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, paramsOf(c, R.listMembers.params).id)
    if (s.room.kind === 'global') throw new AgentMeshError(ErrorCode.InvalidArgument, 'every agent is in the global room: see GET /api/v1/presence for who is online')
    membersOnly(p, s, 'see its members')
    return answer(c, 'listMembers', { room: s.room.id, members: await chat.membersJson(s) })
  })
  app.post('/api/v1/rooms/:id/join', async (c) => {
    const { p } = await enter(c)
    const r = await chat.join(p, paramsOf(c, R.joinRoom.params).id)
    return answer(c, 'joinRoom', { room: await chat.roomJson(p, r.state), joined: true, already: r.already })
  })
  app.post('/api/v1/rooms/:id/leave', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.leaveRoom.params)
    const b = body === undefined ? {} : checkValue(R.leaveRoom.body, body)
    const s = await chat.leave(p, id, b.statement)
    return answer(c, 'leaveRoom', { room: s.room.id, left: true })
  })
  app.get('/api/v1/rooms/:id/membership', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, paramsOf(c, R.roomMembership.params).id)
    return answer(c, 'roomMembership', { room: s.room.id, statements: await chat.membershipStatements(s) as never })
  })
  app.post('/api/v1/rooms/:id/membership', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.postMembership.params)
    const b = checkValue(R.postMembership.body, body)
    await chat.postMembership(p, id, b.statement)
    const s = await chat.visibleRoom(p, id)
    return answer(c, 'postMembership', { room: s.room.id, statements: await chat.membershipStatements(s) as never })
  })
  app.post('/api/v1/rooms/:id/invite', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.inviteToRoom.params)
    const b = checkValue(R.inviteToRoom.body, body)
    return answer(c, 'inviteToRoom', { ...await chat.invite(p, id, b.agent, b.statement), invited: true })
  })
  app.post('/api/v1/rooms/:id/kick', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.kickFromRoom.params)
    const b = checkValue(R.kickFromRoom.body, body)
    return answer(c, 'kickFromRoom', { ...await chat.kick(p, id, b.agent, b.statement), kicked: true })
  })
  app.put('/api/v1/rooms/:id/topic', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.setRoomTopic.params)
    const b = checkValue(R.setRoomTopic.body, body)
    return answer(c, 'setRoomTopic', await chat.roomJson(p, await chat.setTopic(p, id, b.topic)))
  })
  app.get('/api/v1/rooms/:id/history', async (c) => {
    const { p } = await enter(c)
    const s = await chat.visibleRoom(p, paramsOf(c, R.roomHistory.params).id)
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.EncryptionRequired, 'DMs are end-to-end encrypted and the relay keeps them only until they are delivered: each agent keeps its own history')
    membersOnly(p, s, 'read its history')
    // the query is checked once the room is known to be readable, as it always was
    const { before, after, limit = DEFAULT_PAGE } = queryOf(c, R.roomHistory.query)
    const rows = await store.readHistory(s.room.id, { ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }), limit })
    const messages = await Promise.all(rows.map(e => entryJson(chat, e)))
    const first = rows[0]?.seq
    return answer(c, 'roomHistory', {
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
    // the seq is checked once the room is known to be visible, as it always was
    const { seq } = paramsOf(c, R.deleteMessage.params)
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
    return answer(c, 'deleteMessage', { room: s.room.id, seq, deleted: true })
  })

  // ---- messages
  /** The envelope the relay builds (and signs) for a text/payload body of POST /api/v1/messages. */
  const relayBuilt = async (p: Principal, b: PostTextBody): Promise<Envelope> => {
    // one of the two the schema says (anyOf), which the check of the body does not look at
    if (b.text === undefined && b.payload === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'send "text" (or a "payload" object, or a signed "envelope")')
    const type = b.type ?? 'chat'
    if (type.startsWith('e2ee') || type.startsWith('task.') || type === 'notice') {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'type must match ^[a-z][a-z0-9._-]{0,63}$ and not be one the relay or the SDK reserves (e2ee*, task.*, notice)')
    }
    const id = b.id ?? uuidv7()
    const to = await addressOf(chat, b.to)
    if (!to.startsWith('#') && p.kind === 'agent') {
      if (b.plaintext !== true) {
        throw new AgentMeshError(ErrorCode.EncryptionRequired, 'direct messages are end-to-end encrypted: post a signed "envelope" the SDK made (`agentmesh send`), or a signed plaintext one; the relay does not build an agent\'s DMs')
      }
      // receivers take the relay's word (via) for room posts only: a DM built here would be stored
      // and then dropped by its receiver
      throw new AgentMeshError(ErrorCode.AttestationRefused, 'a direct message the relay signs on your behalf is refused by its receiver (it takes the relay\'s word for room posts only): post a signed "envelope" (`agentmesh send`, or `agentmesh send --plaintext` for one the relay may read); nothing was stored')
    }
    const payload = { ...b.payload, ...(b.text === undefined ? {} : { text: b.text }) }
    const from = p.kind === 'agent' ? p.amid : chat.relayAmid
    // the operator's DM comes from the relay itself, as a notice: the one kind of DM receivers take from the relay
    return chat.attest(from, { id, to, type: to.startsWith('#') ? type : 'notice', payload })
  }

  /** Stores (or fans out) a posted message; answers the body and status of POST /api/v1/messages. */
  const post = async (p: Principal, env: Envelope, remote: string, attested: boolean): Promise<[MessagePosted, 200 | 201]> => {
    const { result } = await chat.postMessage(p, env, remote, attested)
    if (result.status === 'inbox_full') throw new AgentMeshError(ErrorCode.InboxFull, `the inbox of ${env.to} is full; try again later`)
    return [{ id: env.id, to: env.to, from: env.from, ...(env.to.startsWith('#') ? { seq: result.seq } : {}), duplicate: result.status === 'duplicate' }, result.status === 'duplicate' ? 200 : 201]
  }

  app.post('/api/v1/messages', async (c) => {
    const { p, body } = await enter(c)
    let env: Envelope
    let attested = false
    // the route's body is one of two (PostMessageBody): a signed envelope alone, or what the relay signs
    if (typeof body === 'object' && body !== null && (body as { envelope?: unknown }).envelope !== undefined) {
      // the envelope itself is checked below by the codec, which answers the wire protocol's codes
      const b = checkValue(PostEnvelopeBody, body, 'body', { defer: ['/envelope'] })
      if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'an envelope is posted by the agent that signed it')
      const bad = validateEnvelope(b.envelope, Buffer.byteLength(JSON.stringify(b.envelope)), MAX_API_BODY_BYTES)
      if (bad !== undefined) throw new AgentMeshError(bad.code === ErrorCode.EnvelopeTooLarge ? ErrorCode.BodyTooLarge : ErrorCode.InvalidEnvelope, bad.message)
      env = b.envelope
      if (env.from !== p.amid) throw new AgentMeshError(ErrorCode.SenderMismatch, `the envelope is from ${env.from} but you are ${p.amid}`)
      if (env.via !== undefined) throw new AgentMeshError(ErrorCode.InvalidEnvelope, 'via is set by the relay only')
      if (isRelayType(env.type)) throw new AgentMeshError(ErrorCode.ReservedType, `type "${env.type}" is posted by the relay only (task.*, notice, relay.*, system.*); nothing was stored`)
      // an unsigned one is an agentmesh/0.3 e2ee DM (validateEnvelope lets no other kind go unsigned): from is the caller, checked above
      if (env.sig !== undefined && !verifyEnvelope(env)) throw new AgentMeshError(ErrorCode.BadSignature, 'the envelope signature does not verify with the sender\'s key; nothing was stored')
    } else {
      env = await relayBuilt(p, checkValue(PostTextBody, body))
      attested = p.kind === 'agent'
    }
    return answer(c, 'postMessage', ...await post(p, env, remoteOf(c), attested))
  })
  // the operations plan's shape of the same (a text message the relay builds), {from, to, content}
  app.post('/api/messages', async (c) => {
    const { p, body } = await enter(c)
    const b = checkValue(R.sendMessage.body, body)
    const self = p.kind === 'agent' ? p.amid : chat.relayAmid
    if (b.from !== self) {
      throw new AgentMeshError(ErrorCode.Forbidden, p.kind === 'agent' ? `from must be your own AMID (${p.amid})` : `with the operator's key, from must be the relay's AMID (${chat.relayAmid})`)
    }
    // the relay would build (and so read) an agent's DM itself: DMs stay end-to-end encrypted, sent by the SDK
    if (p.kind === 'agent' && !(await addressOf(chat, b.to)).startsWith('#')) {
      throw new AgentMeshError(ErrorCode.EncryptionRequired, 'direct messages are end-to-end encrypted: send this one with the SDK or `agentmesh send` (or post its signed envelope to POST /api/v1/messages); nothing was stored')
    }
    const env = await relayBuilt(p, { to: b.to, text: b.content })
    return answer(c, 'sendMessage', ...await post(p, env, remoteOf(c), p.kind === 'agent'))
  })

  // ---- presence and handles
  app.get('/api/v1/presence', async (c) => {
    const { p } = await enter(c)
    const { room } = queryOf(c, R.presence.query)
    const rows: PresenceEntry[] = []
    const row = async (amid: string): Promise<PresenceEntry> => {
      const h = await chat.handleOf(amid)
      const status = chat.presenceOf(amid)
      const active = chat.lastActive(amid)
      const rec = status === 'offline' ? await store.getAgent(amid) : undefined
      return { amid, ...(h === undefined ? {} : { handle: h }), status, ...(active === undefined ? {} : { last_active_at: active }), ...(rec === undefined ? {} : { last_seen_at: rec.lastSeenAt }) }
    }
    if (room !== undefined && room !== 'global' && room !== '#global') {
      const s = await chat.visibleRoom(p, room)
      membersOnly(p, s, 'see its members\' presence')
      for (const m of chat.membersOf(s)) rows.push(await row(m))
    } else {
      for (const a of chat.onlineAgents().slice(0, MAX_PRESENCE_ROWS)) rows.push(await row(a))
    }
    return answer(c, 'presence', { agents: rows })
  })
  app.post('/api/v1/handles', async (c) => {
    const { p, body } = await enter(c)
    const raw = checkShape(R.setHandle.body, body)
    // the agent named: agent_id (an AMID or @handle) or amid (an AMID); the caller when neither is given
    const ref = raw.agent_id ?? raw.amid
    const self = p.kind === 'agent' && (ref === undefined || ref === p.amid || await isOwnHandle(chat, p.amid, ref))
    if (!self && p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'an agent sets its own handle (only a master sets another agent\'s)')
    if (!self && (typeof ref !== 'string' || (raw.agent_id === undefined && !isAmid(ref)))) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, p.kind === 'operator' ? 'the operator names the agent: {"handle", "agent_id"} (an AMID or @handle)' : 'amid must be an AMID (agent_id takes an AMID or @handle)')
    }
    const b = checkValue(R.setHandle.body, body)
    if (b.agent_id !== undefined && b.amid !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'name the agent in agent_id or in amid, not both')
    const amid = self && p.kind === 'agent' ? p.amid : await chat.resolveAgent(ref, raw.agent_id === undefined ? 'amid' : 'agent_id')
    const r = await chat.setHandle(p, amid, b.handle)
    return answer(c, 'setHandle', r, r.previous === undefined ? 201 : 200)
  })
  app.get('/api/v1/handles/:handle', async (c) => {
    await enter(c)
    const h = paramsOf(c, R.resolveHandle.params).handle.replace(/^@/, '')
    if (isAmid(h)) {
      // the other way round: an agent's handle
      const handle = await chat.handleOf(h)
      if (handle === undefined) throw new AgentMeshError(ErrorCode.UnknownHandle, `${h} has no handle`)
      return answer(c, 'resolveHandle', { handle, amid: h })
    }
    const amid = await chat.resolveAgent('@' + h, 'handle')
    return answer(c, 'resolveHandle', { handle: (await chat.handleOf(amid)) ?? h, amid })
  })

  // ---- roles
  app.put('/api/v1/agents/:amid/role', async (c) => {
    const { p, body } = await enter(c)
    const { amid } = paramsOf(c, R.setRole.params)
    const b = checkValue(R.setRole.body, body)
    return answer(c, 'setRole', await chat.setRole(p, amid, b.role))
  })
  app.get('/api/v1/roles', async (c) => {
    await enter(c)
    return answer(c, 'listRoles', { roles: (await store.listRoles()).map(r => ({ amid: r.amid, role: r.role })), default: DEFAULT_ROLE })
  })

  // ---- tasks
  app.post('/api/v1/tasks', async (c) => {
    const { p, body } = await enter(c)
    checkShape(R.dispatchTask.body, body)
    return answer(c, 'dispatchTask', taskJson(await tasks.dispatch(p, () => checkValue(R.dispatchTask.body, body))), 201)
  })
  app.get('/api/v1/tasks', async (c) => {
    const { p } = await enter(c)
    const { room, state, before, limit = DEFAULT_PAGE } = queryOf(c, R.listTasks.query)
    const list = await tasks.list(p, { ...(room === undefined ? {} : { room }), ...(state === undefined ? {} : { state }), ...(before === undefined ? {} : { before }), limit })
    return answer(c, 'listTasks', { tasks: list.map(taskJson), ...(list.length === limit ? { next_before: list[list.length - 1]!.id } : {}) })
  })
  app.get('/api/v1/tasks/:id', async (c) => {
    const { p } = await enter(c)
    return answer(c, 'getTask', taskJson(await tasks.visible(p, paramsOf(c, R.getTask.params).id)))
  })
  app.post('/api/v1/tasks/:id/status', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.reportTask.params)
    return answer(c, 'reportTask', taskJson(await tasks.report(p, id, checkValue(R.reportTask.body, body))))
  })
  app.post('/api/v1/tasks/:id/cancel', async (c) => {
    const { p, body } = await enter(c)
    const { id } = paramsOf(c, R.cancelTask.params)
    const b = checkValue(R.cancelTask.body, body ?? {})
    return answer(c, 'cancelTask', taskJson(await tasks.cancel(p, id, b.reason)))
  })

  // ---- audit
  app.get('/api/v1/audit', async (c) => {
    const { p } = await enter(c)
    const q = queryOf(c, R.readAudit.query)
    const { after, before, action, limit = DEFAULT_PAGE } = q
    let actor = q.actor
    if (p.role !== 'master' && p.role !== 'warden') {
      if (actor !== undefined && actor !== actorOf(p)) throw new AgentMeshError(ErrorCode.Forbidden, 'workers read their own audit rows only')
      actor = actorOf(p)
    }
    const back = after === undefined && before !== undefined
    const rows = await store.readAudit({ ...(after === undefined ? {} : { after }), ...(back ? { before } : {}), limit, ...(actor === undefined ? {} : { actor }), ...(action === undefined ? {} : { action }) })
    const full = rows.length === limit
    return answer(c, 'readAudit', { entries: rows.map(auditJson), ...(full ? (back ? { next_before: rows[0]!.seq } : { next_after: rows[rows.length - 1]!.seq }) : {}) })
  })
  app.get('/api/v1/audit/verify', async (c) => {
    await enter(c)
    // checked against the heads the relay signed: rows deleted at the end, or re-chained, show
    const heads = deps.auditHeads === undefined ? [] : validHeads(await deps.auditHeads.list(), chat.relayAmid)
    const r = await verifyAudit(store, 1000, heads)
    return answer(c, 'verifyAudit', r.ok
      ? { ok: true, rows: r.rows, ...(r.last === undefined ? {} : { last_seq: r.last.seq, last_hash: r.last.hash }), ...(r.from === undefined ? {} : { from_seq: r.from }), ...(r.head === undefined ? {} : { signed_head_seq: r.head }) }
      : { ok: false, rows: r.rows, seq: r.seq, reason: r.reason, ...(r.problem === undefined ? {} : { problem: r.problem }), code: ErrorCode.AuditTampered })
  })
  app.get('/api/v1/audit/heads', async (c) => {
    await enter(c)
    const { limit = DEFAULT_PAGE } = queryOf(c, R.auditHeads.query)
    const heads = deps.auditHeads === undefined ? [] : await deps.auditHeads.list()
    return answer(c, 'auditHeads', { relay: chat.relayAmid, heads: heads.slice(-limit).map(h => ({ seq: h.seq, hash: h.hash, at: h.at, relay: h.relay, sig: h.sig })) })
  })

  // ---- settings
  app.get('/api/v1/settings', async (c) => {
    await enter(c)
    return answer(c, 'getSettings', { settings: settingsJson(chat.settings) })
  })
  app.patch('/api/v1/settings', async (c) => {
    const { p, body } = await enter(c)
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'only a master changes settings')
    // the schema holds every value within the bounds settingsFromJson takes, so all of it applies
    const b = checkValue(R.patchSettings.body, body)
    const now = settingsJson(chat.settings)
    const next = settingsFromJson({ ...now, ...b, rate_limits: { ...now.rate_limits, ...b.rate_limits } }, chat.settings)
    const applied = settingsJson(next)
    await store.putSettings(applied)
    chat.applySettings(next)
    gate.setLimits(next.rateLimits.api, next.rateLimits.ip)
    await chat.audit(p, 'settings.set', undefined, { keys: Object.keys(b) })
    return answer(c, 'patchSettings', { settings: applied })
  })
}

/** `to` of a REST message: "#room", an AMID or "@handle". */
async function addressOf (chat: ChatService, to: string): Promise<string> {
  if (to === '') throw new AgentMeshError(ErrorCode.InvalidArgument, 'to must be "#room", an AMID or "@handle"')
  if (to.startsWith('#')) {
    if (!ROOM_ADDRESS_RE.test(to)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${to.slice(0, 80)}" is not a room address (#room-id)`)
    return to
  }
  return await chat.resolveAgent(to, 'to')
}

/** Is `ref` (an @handle or bare handle) the handle `amid` holds? Unknown handles are not resolved. */
async function isOwnHandle (chat: ChatService, amid: string, ref: unknown): Promise<boolean> {
  if (typeof ref !== 'string') return false
  const own = await chat.handleOf(amid)
  return own !== undefined && ref.replace(/^@/, '').toLowerCase() === own.toLowerCase()
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
