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
 * // a private room's messages decrypted with the sender keys this agent holds
 * for (const m of (await c.readHistory('secret')).messages) console.log(m.decrypted, m.text)
 * ```
 */
import {
  AgentMeshError, ErrorCode, ROOM_ID_PATTERN,
  type ApiAnswer, type ApiBody, type ChatEvent, type RelayEvent, type HistoryMessage, type PresenceEntry, type RoomInfo, type RoomMember, type RouteName,
} from '@agentmesh/protocol'
import { dmRoomId, isAmid } from '@agentmesh/crypto'
import { restCall } from './api.ts'
import { GROUP_TYPE, type Rooms, type UndecryptedReason } from './rooms.ts'
import type { Connection, SendResult } from './types.ts'

const ROOM_RE = new RegExp(ROOM_ID_PATTERN)

// the REST answers are typed by the protocol's route table (src/api), under the names the SDK has always used
export type { RoomInfo, RoomMember, HistoryMessage, PresenceEntry }
export type { UndecryptedReason }

/**
 * A history entry as `readHistory` and `decryptHistory` give it. A private room's sealed message
 * (`e2ee.group`) has `decrypted`: true when this agent held the sender key (`type`, `payload` and
 * `text` are then the plaintext's; `envelope` stays as stored), false when not, with
 * `not_decrypted` saying why (`no_key`: sent before this agent joined, or the sender's key has not
 * reached it; `before_key`: sent with that key before it was handed to this agent; `failed`: it did
 * not verify or open). Other entries are as `history` gives them, without `decrypted`.
 */
export type HistoryEntry = HistoryMessage & {
  decrypted?: boolean
  not_decrypted?: { reason: UndecryptedReason, message: string }
}

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
  /**
   * A private room's membership as this agent verified it from the signed chain (§17.5): the
   * owner, admins, each member with who added it and when, and `unsigned`: agents the relay lists
   * that no signed statement adds (ghost members: they get no sender key).
   */
  membership (id: string): Promise<VerifiedRoomMembership>
  /** The owner names (or unnames, `on` false) an admin of a private room: admins add and remove members. */
  setAdmin (id: string, agent: string, on?: boolean): Promise<VerifiedRoomMembership>
  /** A page of a room's history, oldest first; `next_before` pages further back. */
  history (id: string, q?: { before?: number, after?: number, limit?: number }): Promise<{ messages: HistoryMessage[], next_before?: number, last_seq: number }>
  /**
   * A page of a room's history as `history` gives it, with a private room's messages decrypted with
   * the sender keys this agent holds (its own, and those the other members handed it); a message it
   * holds no key for stays sealed, marked `decrypted: false` with the reason.
   */
  readHistory (id: string, q?: { before?: number, after?: number, limit?: number }): Promise<{ messages: HistoryEntry[], next_before?: number, last_seq: number }>
  /** Decrypts what it can of history entries already read (see `readHistory`); never throws for a message it cannot open. */
  decryptHistory (id: string, messages: HistoryMessage[]): HistoryEntry[]
  /** Sends a chat message to a room (encrypted with this agent's sender key in a private room). */
  say (id: string, text: string, opts?: { id?: string }): Promise<SendResult>
  deleteMessage (id: string, seq: number): Promise<void>
  /** Tells a room's members (or a DM peer: an AMID or @handle) that this agent is typing. */
  typing (id: string): Promise<void>
  /** "Read up to": a room seq in a room, a message id with a DM peer (an AMID or @handle). */
  markRead (id: string, upTo: number | string): Promise<void>
  /** Online and idle agents, or a room's members with their presence. */
  presence (room?: string): Promise<PresenceEntry[]>
  setHandle (handle: string): Promise<ApiAnswer<'setHandle'>>
  /** The AMID of an @handle. */
  resolve (handle: string): Promise<string>
  /** An agent's handle (without the @), undefined when it has none. */
  handleOf (amid: string): Promise<string | undefined>
  events (): AsyncIterable<ChatEvent>
}

/** A private room's membership as verified from its signed chain (see `Chat.membership`). */
export interface VerifiedRoomMembership {
  room: string
  owner: string
  admins: string[]
  members: Array<{ amid: string, added_by: string, added_at: number, listed: boolean }>
  /** agents the relay lists as members that no signed statement adds */
  unsigned: string[]
}

function roomId (id: string): string {
  const bare = id.startsWith('#') ? id.slice(1) : id
  if (!ROOM_RE.test(bare)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${id.slice(0, 80)}" is not a room id (a-z 0-9 _ -, at most 64)`)
  return bare
}

/** Opens the sealed messages of `messages` (a page of room `room`'s history) with `rooms`' keys. */
function openHistory (rooms: Rooms | undefined, room: string, messages: HistoryMessage[]): HistoryEntry[] {
  return messages.map((m): HistoryEntry => {
    if (m.type !== GROUP_TYPE || m.deleted !== undefined || m.envelope === undefined) return m
    const o = rooms === undefined
      ? { ok: false as const, reason: 'no_key' as const, message: 'no key: this connection has no end-to-end encryption' }
      : rooms.openHistory(room, m.envelope)
    if (!o.ok) return { ...m, decrypted: false, not_decrypted: { reason: o.reason, message: o.message } }
    const { text: _text, ...rest } = m
    void _text
    return { ...rest, type: o.type, payload: o.payload, ...(typeof o.payload.text === 'string' ? { text: o.payload.text } : {}), decrypted: true }
  })
}

export function chat (conn: Connection): Chat {
  /** private rooms' sender keys (a connection opened without end-to-end encryption has none) */
  const rooms = (conn as { rooms?: Rooms }).rooms
  const r = async <N extends RouteName>(route: N, path: string, body?: ApiBody<N>): Promise<ApiAnswer<N>> => await restCall(async (m, p, b) => await conn.request(m, p, b), route, path, body)
  const resolve = async (handle: string): Promise<string> => (await r('resolveHandle', `/api/v1/handles/${encodeURIComponent(handle.replace(/^@/, ''))}`)).amid
  /** A room, or a DM peer's conversation with this agent. */
  const signalRoom = async (id: string): Promise<string> => {
    if (isAmid(id)) return dmRoomId(conn.amid, id)
    if (id.startsWith('@')) return dmRoomId(conn.amid, await resolve(id))
    return roomId(id)
  }
  const needRooms = (): Rooms => {
    if (rooms === undefined) throw new AgentMeshError(ErrorCode.EncryptionRequired, 'private rooms need end-to-end encryption: this connection has none')
    return rooms
  }
  /** An AMID as given, or an @handle resolved (and pinned: connection.resolveHandle). */
  const agentAmid = async (agent: string): Promise<string> => {
    if (isAmid(agent)) return agent
    return await conn.resolveHandle(agent.startsWith('@') ? agent : '@' + agent)
  }
  const isPrivate = async (id: string): Promise<boolean> => (await r('getRoom', `/api/v1/rooms/${id}`)).kind === 'private'
  const membership = async (id: string): Promise<VerifiedRoomMembership> => {
    const room = roomId(id)
    const v = await needRooms().membership(room)
    const listed = new Set((await r('listMembers', `/api/v1/rooms/${room}/members`)).members.map(m => m.amid))
    return {
      room,
      owner: v.owner,
      admins: [...v.admins],
      members: [...v.members].map(([amid, m]) => ({ amid, added_by: m.by, added_at: m.at, listed: listed.has(amid) })),
      unsigned: [...listed].filter(a => !v.members.has(a)),
    }
  }
  const history: Chat['history'] = async (id, q = {}) => {
    const qs = new URLSearchParams()
    if (q.before !== undefined) qs.set('before', String(q.before))
    if (q.after !== undefined) qs.set('after', String(q.after))
    if (q.limit !== undefined) qs.set('limit', String(q.limit))
    const a = await r('roomHistory', `/api/v1/rooms/${roomId(id)}/history${qs.size > 0 ? '?' + qs.toString() : ''}`)
    return { messages: a.messages, ...(a.next_before === undefined ? {} : { next_before: a.next_before }), last_seq: a.last_seq }
  }
  return {
    async rooms () { return (await r('listRooms', '/api/v1/rooms?limit=200')).rooms },
    async room (id) { return await r('getRoom', `/api/v1/rooms/${roomId(id)}`) },
    async createRoom (init) {
      const id = roomId(init.id)
      const kind = init.kind ?? 'public'
      // a private room starts with the creator's signed genesis, pinned once the relay took it
      const genesis = kind === 'private' ? needRooms().genesis(id) : undefined
      const room = await r('createRoom', '/api/v1/rooms', { id, kind, ...(init.topic === undefined ? {} : { topic: init.topic }), ...(genesis === undefined ? {} : { membership: genesis }) })
      if (genesis !== undefined) needRooms().pinGenesis(id, genesis)
      return room
    },
    async join (id) { return (await r('joinRoom', `/api/v1/rooms/${roomId(id)}/join`)).room },
    async leave (id) {
      const room = roomId(id)
      // a private room's leave is signed by the member; a room whose chain does not prove it (made
      // before signed membership) is left all the same: leaving gives nobody anything
      const statement = rooms !== undefined && await isPrivate(room)
        ? await rooms.signChange(room, 'leave', conn.amid).catch((err: unknown) => { if (AgentMeshError.is(err, ErrorCode.MembershipUnsigned)) return undefined; throw err })
        : undefined
      await r('leaveRoom', `/api/v1/rooms/${room}/leave`, statement === undefined ? undefined : { statement })
    },
    async invite (id, agent) {
      const room = roomId(id)
      if (!await isPrivate(room)) { await r('inviteToRoom', `/api/v1/rooms/${room}/invite`, { agent }); return }
      // the owner (or an admin) signs the add; the relay cannot invite anyone without it
      const amid = await agentAmid(agent)
      const statement = await needRooms().signChange(room, 'add', amid)
      await r('inviteToRoom', `/api/v1/rooms/${room}/invite`, { agent: amid, ...(statement === undefined ? {} : { statement }) })
    },
    async kick (id, agent) {
      const room = roomId(id)
      if (!await isPrivate(room)) { await r('kickFromRoom', `/api/v1/rooms/${room}/kick`, { agent }); return }
      const amid = await agentAmid(agent)
      const statement = await needRooms().signChange(room, 'remove', amid)
      await r('kickFromRoom', `/api/v1/rooms/${room}/kick`, { agent: amid, ...(statement === undefined ? {} : { statement }) })
    },
    membership,
    async setAdmin (id, agent, on = true) {
      const room = roomId(id)
      const statement = await needRooms().signChange(room, on ? 'admin' : 'unadmin', await agentAmid(agent))
      await r('postMembership', `/api/v1/rooms/${room}/membership`, { statement: statement! })
      return await membership(room)
    },
    async setTopic (id, topic) { return await r('setRoomTopic', `/api/v1/rooms/${roomId(id)}/topic`, { topic }) },
    async members (id) { return (await r('listMembers', `/api/v1/rooms/${roomId(id)}/members`)).members },
    history,
    async readHistory (id, q = {}) {
      const page = await history(id, q)
      return { ...page, messages: openHistory(rooms, roomId(id), page.messages) }
    },
    decryptHistory (id, messages) { return openHistory(rooms, roomId(id), messages) },
    async say (id, text, opts = {}) { return await conn.send('#' + roomId(id), { text }, { type: 'chat', ...(opts.id === undefined ? {} : { id: opts.id }) }) },
    async deleteMessage (id, seq) { await r('deleteMessage', `/api/v1/rooms/${roomId(id)}/messages/${seq}`) },
    async typing (id) { conn.signal('#' + await signalRoom(id), 'typing') },
    async markRead (id, upTo) { conn.signal('#' + await signalRoom(id), 'read', upTo) },
    async presence (room) { return (await r('presence', `/api/v1/presence${room === undefined ? '' : '?room=' + roomId(room)}`)).agents },
    async setHandle (handle) { return await r('setHandle', '/api/v1/handles', { handle }) },
    resolve,
    async handleOf (amid) {
      if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${String(amid).slice(0, 80)}" is not an AMID`)
      try {
        return (await r('resolveHandle', `/api/v1/handles/${amid}`)).handle
      } catch (err) {
        if (AgentMeshError.is(err, ErrorCode.UnknownHandle)) return undefined
        throw err
      }
    },
    events () { return chatEventsOf(conn.events()) },
  }
}

/** The chat events of a connection's events (the operations events left out). */
async function * chatEventsOf (events: AsyncIterable<RelayEvent>): AsyncIterable<ChatEvent> {
  for await (const e of events) if ('amid' in e) yield e
}
