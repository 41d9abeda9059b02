/**
 * The owner's console API (docs/protocol.md §22.6), under `/dashboard/api/`: the agent's
 * conversations (direct messages decrypted here, from the local history; rooms from the relay's
 * history, private ones decrypted with the sender keys the agent holds), held knocks, grants, the
 * safety log, tasks, files and health, all through the agent's own connection. The browser never
 * sees a key: it sees what this process decrypted.
 */
import type { Hono, Context } from 'hono'
import { chat, files, health, tasks, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, ID_PATTERN, ROOM_ID_PATTERN } from '@agentmesh/protocol'
import { isAmid } from '@agentmesh/crypto'
import type { DmHistory } from './history.ts'
import type { ConsoleSession } from './security.ts'

/** Largest request body read, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024
/** Longest message text the console sends, in characters. */
export const MAX_SEND_TEXT_CHARS = 16_384
/** Messages a page of `…/messages` holds at most. @default 50 */
export const MAX_MESSAGES_LIMIT = 200
export const DEFAULT_MESSAGES_LIMIT = 50
/** Safety log entries answered at most (the newest). */
export const MAX_SAFETY_LOG_ENTRIES = 500
/** How long the console waits for the relay to store a message before answering `queued`. */
export const SEND_WAIT_MS = 10_000

const ID_RE = new RegExp(ID_PATTERN)
const ROOM_RE = new RegExp(ROOM_ID_PATTERN)

export interface RouteDeps {
  conn: Connection
  history: DmHistory
  /** a handle per AMID, cached (undefined when none, or the relay does not answer) */
  handleOf: (amid: string) => Promise<string | undefined>
  /** what the browser is told about the relay */
  relay: string
  /** an event to the browsers (`knock`, `grant`, `task`…) */
  publish: (type: string, data: unknown) => void
  /** per conversation, when the owner last read it (unread counts) */
  readAt: Map<string, number>
}

export type Conversation = { kind: 'dm', peer: string } | { kind: 'room', room: string }

/** `dm:<amid>` or `room:<id>`, or AM_ERR_INVALID_ARGUMENT. */
export function parseConversation (id: string): Conversation {
  if (id.startsWith('dm:') && isAmid(id.slice(3))) return { kind: 'dm', peer: id.slice(3) }
  if (id.startsWith('room:') && ROOM_RE.test(id.slice(5))) return { kind: 'room', room: id.slice(5) }
  throw new AgentMeshError(ErrorCode.InvalidArgument, `"${id.slice(0, 80)}" is not a conversation id (dm:<AMID> or room:<room id>, as GET api/owner/conversations lists them)`)
}

function checkId (what: string, id: string): string {
  if (!ID_RE.test(id)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${id.slice(0, 80)}" is not a ${what} id (8 to 128 of A-Z a-z 0-9 _ -)`)
  return id
}

/** The JSON object a request carries, read within MAX_BODY_BYTES; `{}` for an empty body. */
export async function jsonBody (c: Context): Promise<Record<string, unknown>> {
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > MAX_BODY_BYTES) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is larger than ${MAX_BODY_BYTES} bytes`)
  const body = c.req.raw.body
  if (body === null) return {}
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {})
      throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(value)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  let v: unknown
  try { v = JSON.parse(text) } catch { throw new AgentMeshError(ErrorCode.BadJson, 'the body is not JSON (send Content-Type: application/json with an object)') }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the body must be a JSON object')
  return v as Record<string, unknown>
}

function onlyFields (body: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(body).find(k => !allowed.includes(k))
  if (extra !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, `unknown field "${extra.slice(0, 40)}" (this request takes ${allowed.length === 0 ? 'no body' : allowed.join(', ')})`)
}

function limitOf (q: string | undefined): number {
  if (q === undefined) return DEFAULT_MESSAGES_LIMIT
  if (!/^\d{1,4}$/.test(q) || Number(q) < 1 || Number(q) > MAX_MESSAGES_LIMIT) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `limit must be a whole number from 1 to ${MAX_MESSAGES_LIMIT}, got "${q.slice(0, 20)}"`)
  }
  return Number(q)
}

export interface MessageItem {
  id: string
  from: string
  fromHandle?: string
  text: string
  ts: number
  direction: 'in' | 'out'
  encrypted: boolean
  state?: string
}

/** Registers the API routes on `app` (its security middleware runs first: the session is `c.get('session')`). */
export function ownerRoutes (app: Hono<{ Variables: { session: ConsoleSession } }>, d: RouteDeps): void {
  const { conn } = d
  const api = '/dashboard/api'

  app.get(`${api}/session`, async (c) => {
    const s = c.get('session')
    const handle = await d.handleOf(conn.amid)
    return c.json({ mode: 'owner', principal: { kind: 'agent', amid: conn.amid, ...(handle === undefined ? {} : { handle }) }, csrf: s.csrf, expiresAt: s.expiresAt, relay: d.relay })
  })

  app.get(`${api}/owner/conversations`, async (c) => {
    const out: Array<Record<string, unknown>> = []
    const dmPeers = new Set<string>()
    for (const p of d.history.peers(peer => d.readAt.get(`dm:${peer}`) ?? 0)) {
      dmPeers.add(p.peer)
      const handle = await d.handleOf(p.peer)
      out.push({ id: `dm:${p.peer}`, kind: 'dm', title: handle === undefined ? p.peer : `@${handle}`, peer: { amid: p.peer, ...(handle === undefined ? {} : { handle }) }, last: { text: p.last.text, ts: p.last.ts }, unread: p.unread })
    }
    // peers the agent may talk with but has no history with yet: a conversation to start
    const { issued, received } = conn.grants()
    for (const g of [...issued.map(g => g.grantee), ...received.map(g => g.grantor)]) {
      if (dmPeers.has(g) || g === conn.amid) continue
      dmPeers.add(g)
      const handle = await d.handleOf(g)
      out.push({ id: `dm:${g}`, kind: 'dm', title: handle === undefined ? g : `@${handle}`, peer: { amid: g, ...(handle === undefined ? {} : { handle }) }, unread: 0 })
    }
    const rooms = await chat(conn).rooms().catch(() => [])
    for (const r of rooms) {
      if (r.kind === 'dm' || !r.joined) continue
      const id = `room:${r.id}`
      // a room first listed counts as read up to now: what arrives after is unread
      if (!d.readAt.has(id)) d.readAt.set(id, r.last_seq)
      out.push({ id, kind: 'room', title: `#${r.id}`, room: { id: r.id, name: r.id, private: r.kind === 'private', ...(r.topic === undefined ? {} : { topic: r.topic }) }, unread: Math.max(0, r.last_seq - d.readAt.get(id)!) })
    }
    return c.json({ conversations: out })
  })

  app.get(`${api}/owner/conversations/:id/messages`, async (c) => {
    const conv = parseConversation(c.req.param('id'))
    const limit = limitOf(c.req.query('limit'))
    if (conv.kind === 'dm') {
      const kept = d.history.with(conv.peer, limit)
      const states = new Map(conn.sent({ peer: conv.peer }).map(s => [s.id, s.status]))
      const peerHandle = await d.handleOf(conv.peer)
      const own = await d.handleOf(conn.amid)
      const messages: MessageItem[] = kept.map(e => {
        const handle = e.direction === 'in' ? peerHandle : own
        const state = e.direction === 'out' ? (states.get(e.id) ?? e.state) : undefined
        return { id: e.id, from: e.from, ...(handle === undefined ? {} : { fromHandle: handle }), text: e.text, ts: e.ts, direction: e.direction, encrypted: e.encrypted, ...(state === undefined ? {} : { state }) }
      })
      const last = kept.at(-1)
      if (last !== undefined) d.readAt.set(`dm:${conv.peer}`, Math.max(d.readAt.get(`dm:${conv.peer}`) ?? 0, last.ts))
      return c.json({ messages })
    }
    const page = await chat(conn).readHistory(conv.room, { limit })
    const messages: MessageItem[] = page.messages.filter(m => m.deleted === undefined).map(m => {
      const sealed = m.decrypted === false
      const text = sealed ? '' : (m.text ?? (m.payload === undefined ? '' : JSON.stringify(m.payload)))
      return {
        id: m.id,
        from: m.from,
        ...(m.from_handle === undefined ? {} : { fromHandle: m.from_handle }),
        text,
        ts: m.ts ?? m.received_at,
        direction: m.from === conn.amid ? 'out' : 'in',
        encrypted: m.decrypted !== undefined,
        ...(sealed ? { state: 'not_decrypted' } : {}),
      }
    })
    d.readAt.set(`room:${conv.room}`, page.last_seq)
    return c.json({ messages })
  })

  app.post(`${api}/owner/conversations/:id/messages`, async (c) => {
    const conv = parseConversation(c.req.param('id'))
    const body = await jsonBody(c)
    onlyFields(body, ['text'])
    const text = body.text
    if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_SEND_TEXT_CHARS) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `text must be a string of 1 to ${MAX_SEND_TEXT_CHARS} characters, not blank`)
    }
    const own = await d.handleOf(conn.amid)
    const item = (id: string, state: string): MessageItem => ({ id, from: conn.amid, ...(own === undefined ? {} : { fromHandle: own }), text, ts: Date.now(), direction: 'out', encrypted: conv.kind === 'dm', state })
    if (conv.kind === 'room') {
      const r = await chat(conn).say(conv.room, text)
      // the relay does not deliver a room message back to its sender: the other tabs hear it here
      d.publish('message', { ...item(r.id, 'stored'), conversation: `room:${conv.room}` })
      return c.json({ id: r.id, state: 'stored' })
    }
    if (conv.peer === conn.amid) throw new AgentMeshError(ErrorCode.InvalidArgument, 'that is this agent itself; write to a peer')
    let queuedId: string | undefined
    const sent = conn.send(conv.peer, { text }, { signal: AbortSignal.timeout(SEND_WAIT_MS), onQueued: (id) => { queuedId = id } })
    let id: string
    let state: string
    try {
      id = (await sent).id
      state = 'stored'
    } catch (err) {
      // still in the outbox: it goes out, in order, when the relay answers
      if (AgentMeshError.is(err, ErrorCode.Aborted) && queuedId !== undefined) { id = queuedId; state = 'queued' } else throw err
    }
    d.history.add({ id, peer: conv.peer, from: conn.amid, direction: 'out', text, ts: Date.now(), encrypted: true, state })
    d.publish('message', { ...item(id, state), conversation: `dm:${conv.peer}` })
    return c.json({ id, state })
  })

  app.get(`${api}/owner/knocks`, async (c) => {
    const knocks = []
    for (const k of conn.knocks()) {
      const handle = await d.handleOf(k.from)
      knocks.push({
        id: k.id, from: k.from, ...(handle === undefined ? {} : { handle }), intent: `${k.intent.category}: ${k.intent.summary}`, category: k.intent.category, summary: k.intent.summary, scopes: k.intent.scopes,
        ts: k.receivedAt, tier: k.tier, organisation: k.organisation, reputation: k.reputation, policy: k.decision.reason, wouldGrant: k.decision.scopes,
      })
    }
    return c.json({ knocks })
  })

  // the same call as `agentmesh knocks accept|reject <id>` (commands/knock.ts): the SDK's answerKnock
  app.post(`${api}/owner/knocks/:id/:decision{accept|reject}`, async (c) => {
    const id = checkId('knock', c.req.param('id'))
    const decision = c.req.param('decision') as 'accept' | 'reject'
    const body = await jsonBody(c)
    onlyFields(body, decision === 'accept' ? [] : ['reason', 'silent'])
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 280)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'reason must be a string of at most 280 characters')
    if (body.silent !== undefined && typeof body.silent !== 'boolean') throw new AgentMeshError(ErrorCode.InvalidArgument, 'silent must be true or false')
    if (!conn.knocks().some(k => k.id === id)) throw new AgentMeshError(ErrorCode.NotFound, `no knock ${id} is waiting (GET api/owner/knocks lists them)`)
    const g = await conn.answerKnock(id, decision, {
      ...(typeof body.reason === 'string' ? { reason: body.reason } : {}), ...(body.silent === true ? { silent: true } : {}),
    })
    await conn.flush({ signal: AbortSignal.timeout(SEND_WAIT_MS) }).catch(() => {}) // the answer reaches the peer when the relay answers
    if (g !== undefined) d.publish('grant', { change: 'issued', grant: g })
    return c.json({ ok: true })
  })

  app.get(`${api}/owner/grants`, async (c) => {
    const { issued, received } = conn.grants()
    const grants = []
    // `amid` is the other agent (the grantee of an issued grant, the grantor of a received one)
    for (const [direction, list] of [['issued', issued], ['received', received]] as const) {
      for (const g of list) {
        const amid = direction === 'issued' ? g.grantee : g.grantor
        const handle = await d.handleOf(amid)
        grants.push({ direction, amid, ...(handle === undefined ? {} : { handle }), scope: g.scopes.join(','), expiresAt: g.expires_at, ...g })
      }
    }
    return c.json({ grants })
  })

  app.delete(`${api}/owner/grants/:amid`, async (c) => {
    const peer = c.req.param('amid')
    if (!isAmid(peer)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${peer.slice(0, 80)}" is not an AMID`)
    const gone = await conn.revokeGrant(peer)
    if (!gone) throw new AgentMeshError(ErrorCode.NotFound, `${peer} holds no grant from this agent (GET api/owner/grants lists them)`)
    await conn.flush({ signal: AbortSignal.timeout(SEND_WAIT_MS) }).catch(() => {})
    d.publish('grant', { change: 'revoked', grantee: peer })
    return c.json({ ok: true })
  })

  app.get(`${api}/owner/safety-log`, (c) => c.json({ entries: conn.safetyLog().slice(-MAX_SAFETY_LOG_ENTRIES).map(e => ({ ...e, kind: e.event })) }))

  app.get(`${api}/owner/tasks`, async (c) => c.json({ tasks: await tasks(conn).list({ limit: 100 }) }))

  app.post(`${api}/owner/tasks/:id/cancel`, async (c) => {
    const id = checkId('task', c.req.param('id'))
    const body = await jsonBody(c)
    onlyFields(body, ['reason'])
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 280)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'reason must be a string of at most 280 characters')
    const t = await tasks(conn).cancel(id, typeof body.reason === 'string' ? body.reason : 'canceled by the owner')
    d.publish('task', t)
    return c.json({ ok: true })
  })

  app.get(`${api}/owner/files`, async (c) => c.json({ files: (await files(conn).list({ limit: 100 })).files }))

  app.get(`${api}/owner/health`, async (c) => c.json(await health(conn).get()))
}
