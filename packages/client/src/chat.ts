/**
 * Chat over a connection (docs/protocol.md §17), as a feature function in the NATS style:
 * `const c = chat(conn)`. Rooms, members, history, handles and presence are REST calls the
 * connection signs; messages go over the connection itself (`conn.send('#room', …)`).
 *
 * @example
 * ```ts
 * const c = chat(conn)
 * await c.setHandle('alice')
 * await c.createRoom({ id: 'ops', kind: 'public' })
 * await c.say('ops', 'hello')
 * const { messages } = await c.history('ops', { limit: 20 })
 * ```
 */
import { AgentMeshError, ErrorCode, ROOM_ID_PATTERN, type ChatEvent } from '@agentmesh/protocol'
import { dmRoomId, isAmid } from '@agentmesh/crypto'
import type { Connection, SendResult } from './types.ts'

const ROOM_RE = new RegExp(ROOM_ID_PATTERN)

export interface RoomInfo {
  id: string
  kind: 'global' | 'public' | 'private' | 'dm'
  topic?: string
  owner?: string
  created_at: number
  members: number
  joined: boolean
  role?: 'owner' | 'member'
  last_seq: number
}

export interface RoomMember { amid: string, handle?: string, role: 'owner' | 'member', joined_at: number, presence: 'online' | 'idle' | 'offline', read_up_to?: number }

export interface HistoryMessage {
  seq: number
  id: string
  from: string
  from_handle?: string
  type?: string
  ts?: number
  text?: string
  payload?: Record<string, unknown>
  via?: string
  deleted?: { by: string, at: number }
  received_at: number
}

export interface PresenceEntry { amid: string, handle?: string, status: 'online' | 'idle' | 'offline', last_active_at?: number, last_seen_at?: number }

export interface Chat {
  rooms (): Promise<RoomInfo[]>
  room (id: string): Promise<RoomInfo>
  createRoom (init: { id: string, kind?: 'public' | 'private', topic?: string }): Promise<RoomInfo>
  join (id: string): Promise<RoomInfo>
  leave (id: string): Promise<void>
  invite (id: string, agent: string): Promise<void>
  kick (id: string, agent: string): Promise<void>
  setTopic (id: string, topic: string | null): Promise<RoomInfo>
  members (id: string): Promise<RoomMember[]>
  /** A page of a room's history, oldest first; `next_before` pages further back. */
  history (id: string, q?: { before?: number, after?: number, limit?: number }): Promise<{ messages: HistoryMessage[], next_before?: number, last_seq: number }>
  /** Sends a chat message to a room (encrypted with this agent's sender key in a private room). */
  say (id: string, text: string, opts?: { id?: string }): Promise<SendResult>
  deleteMessage (id: string, seq: number): Promise<void>
  /** Tells a room's members (or a DM peer: an AMID or @handle) that this agent is typing. */
  typing (id: string): Promise<void>
  /** "Read up to": a room seq in a room, a message id with a DM peer (an AMID or @handle). */
  markRead (id: string, upTo: number | string): Promise<void>
  /** Online and idle agents, or a room's members with their presence. */
  presence (room?: string): Promise<PresenceEntry[]>
  setHandle (handle: string): Promise<{ amid: string, handle: string, previous?: string }>
  /** The AMID of an @handle. */
  resolve (handle: string): Promise<string>
  /** An agent's handle (without the @), undefined when it has none. */
  handleOf (amid: string): Promise<string | undefined>
  events (): AsyncIterable<ChatEvent>
}

function roomId (id: string): string {
  const bare = id.startsWith('#') ? id.slice(1) : id
  if (!ROOM_RE.test(bare)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${id.slice(0, 80)}" is not a room id (a-z 0-9 _ -, at most 64)`)
  return bare
}

export function chat (conn: Connection): Chat {
  const r = async (method: string, path: string, body?: unknown): Promise<any> => await conn.request(method, path, body)
  const resolve = async (handle: string): Promise<string> => (await r('GET', `/api/v1/handles/${encodeURIComponent(handle.replace(/^@/, ''))}`)).amid
  /** A room, or a DM peer's conversation with this agent. */
  const signalRoom = async (id: string): Promise<string> => {
    if (isAmid(id)) return dmRoomId(conn.amid, id)
    if (id.startsWith('@')) return dmRoomId(conn.amid, await resolve(id))
    return roomId(id)
  }
  return {
    async rooms () { return (await r('GET', '/api/v1/rooms?limit=200')).rooms },
    async room (id) { return await r('GET', `/api/v1/rooms/${roomId(id)}`) },
    async createRoom (init) { return await r('POST', '/api/v1/rooms', { id: roomId(init.id), kind: init.kind ?? 'public', ...(init.topic === undefined ? {} : { topic: init.topic }) }) },
    async join (id) { return (await r('POST', `/api/v1/rooms/${roomId(id)}/join`)).room },
    async leave (id) { await r('POST', `/api/v1/rooms/${roomId(id)}/leave`) },
    async invite (id, agent) { await r('POST', `/api/v1/rooms/${roomId(id)}/invite`, { agent }) },
    async kick (id, agent) { await r('POST', `/api/v1/rooms/${roomId(id)}/kick`, { agent }) },
    async setTopic (id, topic) { return await r('PUT', `/api/v1/rooms/${roomId(id)}/topic`, { topic }) },
    async members (id) { return (await r('GET', `/api/v1/rooms/${roomId(id)}/members`)).members },
    async history (id, q = {}) {
      const qs = new URLSearchParams()
      if (q.before !== undefined) qs.set('before', String(q.before))
      if (q.after !== undefined) qs.set('after', String(q.after))
      if (q.limit !== undefined) qs.set('limit', String(q.limit))
      const a = await r('GET', `/api/v1/rooms/${roomId(id)}/history${qs.size > 0 ? '?' + qs.toString() : ''}`)
      return { messages: a.messages, ...(a.next_before === undefined ? {} : { next_before: a.next_before }), last_seq: a.last_seq }
    },
    async say (id, text, opts = {}) { return await conn.send('#' + roomId(id), { text }, { type: 'chat', ...(opts.id === undefined ? {} : { id: opts.id }) }) },
    async deleteMessage (id, seq) { await r('DELETE', `/api/v1/rooms/${roomId(id)}/messages/${seq}`) },
    async typing (id) { conn.signal('#' + await signalRoom(id), 'typing') },
    async markRead (id, upTo) { conn.signal('#' + await signalRoom(id), 'read', upTo) },
    async presence (room) { return (await r('GET', `/api/v1/presence${room === undefined ? '' : '?room=' + roomId(room)}`)).agents },
    async setHandle (handle) { return await r('POST', '/api/v1/handles', { handle }) },
    resolve,
    async handleOf (amid) {
      if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${String(amid).slice(0, 80)}" is not an AMID`)
      try {
        return (await r('GET', `/api/v1/handles/${amid}`)).handle
      } catch (err) {
        if (AgentMeshError.is(err, ErrorCode.UnknownHandle)) return undefined
        throw err
      }
    },
    events () { return conn.events() },
  }
}
