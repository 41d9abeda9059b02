/**
 * The chat layer of the relay (docs/protocol.md §17): handles, roles, rooms and their members,
 * DM conversations, presence and signals, and what the relay itself posts (timeline events, task
 * requests). The relay core asks it whether a room message may go in and to whom it fans out;
 * the REST API (api-v1.ts) drives everything else through it. Durable truth is in the Store;
 * rooms and their members are cached here (one relay owns its store).
 */
import { v7 as uuidv7 } from 'uuid'
import {
  AgentMeshError, ErrorCode, ROOM_ID_PATTERN,
  type ChatEvent, type Envelope, type SignalFrame,
} from '@agentmesh/protocol'
import { DM_ROOM_PREFIX, attestEnvelope, dmRoomId, fromB64u, identityFromSecret, isAmid, signEnvelope, type Identity } from '@agentmesh/crypto'
import type {
  AgentRole, AppendResult, AuditInput, MemberRecord, RoomKind, RoomRecord, Store,
} from '@agentmesh/store'
import type { Logger } from './log.ts'
import { LruMap, LruSet, RateLimiter, type RateLimit, type TakeResult } from '@agentmesh/protocol/internal'
import type { RelayOutlet, RoomResolver } from './relay.ts'
import { EventBus } from './events.ts'
import type { Backplane, BackplaneMessage, CacheKind } from './backplane.ts'
import { sendAudit } from './audit-rows.ts'

export const GLOBAL_ROOM = 'global'
/** Handles (§17.1): 2–32 characters, a letter or digit first. */
export const HANDLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/
export const RESERVED_HANDLES = new Set(['relay', 'operator', 'system', 'all', 'everyone', 'here'])
export const GROUP_TYPE = 'e2ee.group'
export const TASK_REQUEST_TYPE = 'task.request'
export const TASK_UPDATE_TYPE = 'task.update'
export const TASK_CANCEL_TYPE = 'task.cancel'
export const NOTICE_TYPE = 'notice'
const ROOM_RE = new RegExp(ROOM_ID_PATTERN)
/** Rooms (with their member sets) kept in memory; the least recently used go first. */
const MAX_CACHED_ROOMS = 10_000
const MAX_CACHED_HANDLES = 100_000
const MAX_KNOWN_DMS = 100_000

export interface ChatLimits {
  /** Members one room may have. @default 10,000 */
  maxMembersPerRoom: number
  /** Rooms one agent may own. @default 100 */
  maxRoomsPerAgent: number
  /** Longest topic, in characters. @default 256 */
  maxTopicLength: number
}

/** Settings an operator may change while the relay runs (PATCH /api/v1/settings). */
export interface ChatSettings {
  /** Quiet time after which an online agent shows as idle. @default 5 minutes */
  presenceIdleMs: number
  /** Deadline of a task dispatched without one. @default 300 s */
  taskDefaultDeadlineS: number
  rateLimits: {
    /** REST requests per agent (and per operator key) */
    api: RateLimit
    /** REST requests per IP */
    ip: RateLimit
    /** room messages and signals per agent over the WebSocket */
    chat: RateLimit
    /** room messages and signals per IP over the WebSocket */
    chatIp: RateLimit
  }
}

export const DEFAULT_CHAT_LIMITS: ChatLimits = { maxMembersPerRoom: 10_000, maxRoomsPerAgent: 100, maxTopicLength: 256 }

export function defaultChatSettings (): ChatSettings {
  return {
    presenceIdleMs: 5 * 60_000,
    taskDefaultDeadlineS: 300,
    rateLimits: {
      api: { perMinute: 120, burst: 60 },
      ip: { perMinute: 600, burst: 200 },
      chat: { perMinute: 600, burst: 120 },
      chatIp: { perMinute: 1200, burst: 240 },
    },
  }
}

/** What the chat layer needs of the relay core. */
export type ChatOutlet = RelayOutlet

/** What the chat layer is given besides its store. */
export interface ChatInit {
  limits: ChatLimits
  settings: ChatSettings
  log: Logger
  /** posts the relay's own items, writes events to connections */
  outlet: ChatOutlet
  /** the relay's events (presence, stored messages); the chat layer tells 'room:chat' on it. @default its own */
  events?: EventBus
  /** @default Date.now */
  now?: () => number
  /** Other relay nodes: presence, cache invalidations and events for their agents go through it. @default none (one node) */
  backplane?: Backplane
  /** This node's name on the backplane. @default 'local' */
  node?: string
}

export type PresenceStatus = 'online' | 'idle' | 'offline'

interface Presence { status: 'online' | 'idle', lastActive: number }

interface RoomState {
  room: RoomRecord
  /** undefined for the global room: every agent */
  members: Map<string, MemberRecord> | undefined
}

/** Who is calling the REST API. */
export type Principal =
  | { kind: 'operator', role: 'master' }
  | { kind: 'agent', amid: string, role: AgentRole }

/** The name audit rows carry for a principal. */
export function actorOf (p: Principal): string { return p.kind === 'operator' ? 'operator' : p.amid }

/** Parses `/command args` or `@agent /command args` (§17.7). */
export function parseSlashCommand (text: string): { target?: string, command: string, args: string } | undefined {
  const m = /^\s*(?:@([A-Za-z0-9][A-Za-z0-9_.-]{1,63})\s+)?\/([a-z][a-z0-9_-]{0,31})(?:\s+([\s\S]*))?$/.exec(text)
  if (m === null) return undefined
  return { ...(m[1] === undefined ? {} : { target: m[1] }), command: m[2]!, args: (m[3] ?? '').trim().slice(0, 4096) }
}

export class ChatService implements RoomResolver {
  readonly relay: Identity
  readonly events: EventBus
  private readonly out: ChatOutlet
  private readonly backplane: Backplane | undefined
  private readonly node: string
  private started = false
  private readonly rooms = new LruMap<string, Promise<RoomState | undefined>>(MAX_CACHED_ROOMS)
  private readonly agents = new Set<string>()
  private readonly handles = new LruMap<string, string | null>(MAX_CACHED_HANDLES)
  private readonly presence = new Map<string, Presence>()
  /** agents online on other nodes (by the nodes they are on), as their presence messages tell */
  private readonly remote = new Map<string, Set<string>>()
  private readonly knownDms = new LruSet<string>(MAX_KNOWN_DMS)
  settings: ChatSettings
  readonly chatLimiter: RateLimiter
  readonly chatIpLimiter: RateLimiter
  private idleTimer: NodeJS.Timeout | undefined
  readonly limits: ChatLimits
  readonly now: () => number
  private readonly log: Logger

  private constructor (readonly store: Store, relaySecret: string, init: ChatInit) {
    this.relay = identityFromSecret(fromB64u(relaySecret), 'relay')
    this.limits = init.limits
    this.settings = init.settings
    this.log = init.log
    this.now = init.now ?? Date.now
    this.out = init.outlet
    this.backplane = init.backplane
    this.node = init.node ?? 'local'
    this.events = init.events ?? new EventBus(init.log)
    this.chatLimiter = new RateLimiter(this.settings.rateLimits.chat, this.now)
    this.chatIpLimiter = new RateLimiter(this.settings.rateLimits.chatIp, this.now)
    // listening from the moment it exists: a message stored before start() still gets its DM
    // bookkeeping, and presence follows every connection
    const ev = this.events
    ev.on('agent:online', (e) => { this.connected(e.amid) })
    ev.on('agent:active', (e) => { this.active(e.amid) })
    ev.on('agent:offline', (e) => { this.disconnected(e.amid) })
    ev.on('message:stored', (e) => {
      if (e.room !== undefined) this.afterRoomMessage(e.room, e.env, e.seq)
      else this.afterDm(e.env.from, e.env.to)
    })
    this.backplane?.subscribe((m) => { this.fromBackplane(m) })
  }

  // ---------------------------------------------------------------- other nodes

  private tell (msg: BackplaneMessage): void {
    this.backplane?.publish(msg).catch((err) => { this.log.warn({ err, type: msg.type }, 'could not tell other nodes') })
  }

  /** A cached row changed here: other nodes drop their copy. */
  private invalidate (kind: CacheKind, key: string): void {
    this.tell({ type: 'cache:invalidate', origin: this.node, kind, key })
  }

  private fromBackplane (m: BackplaneMessage): void {
    if (m.origin === this.node) return // applied here already
    switch (m.type) {
      case 'cache:invalidate':
        if (m.kind === 'room' || m.kind === 'members') this.rooms.delete(m.key)
        else if (m.kind === 'handle') this.handles.delete(m.key)
        else this.agents.add(m.key)
        return
      case 'presence': {
        const nodes = this.remote.get(m.amid) ?? new Set<string>()
        if (m.status === 'online') nodes.add(m.origin)
        else nodes.delete(m.origin)
        if (nodes.size > 0) this.remote.set(m.amid, nodes)
        else this.remote.delete(m.amid)
        if (m.status === 'online') this.agents.add(m.amid)
        return
      }
      default:
    }
  }

  /** Loads the relay's key, the stored settings, the global room and the agent list. */
  static async open (store: Store, init: ChatInit): Promise<ChatService> {
    const chat = new ChatService(store, await store.relaySecret(), init)
    const stored = await store.getSettings()
    chat.applySettings(settingsFromJson(stored, chat.settings))
    if (await store.getRoom(GLOBAL_ROOM) === undefined) {
      await store.createRoom({ id: GLOBAL_ROOM, kind: 'global', topic: 'everyone', createdAt: chat.now() })
    }
    let after: string | undefined
    for (;;) {
      const page = await store.listAgents({ ...(after === undefined ? {} : { after }), limit: 1000 })
      for (const a of page) chat.agents.add(a)
      if (page.length < 1000) break
      after = page[page.length - 1]
    }
    return chat
  }

  get relayAmid (): string { return this.relay.amid }

  /** Starts the presence clock (online agents turn idle). */
  start (): void {
    this.started = true
    this.scheduleIdle()
  }

  private scheduleIdle (): void {
    clearInterval(this.idleTimer)
    const tick = Math.max(250, Math.min(15_000, Math.floor(this.settings.presenceIdleMs / 4)))
    this.idleTimer = setInterval(() => { this.checkIdle() }, tick).unref()
  }

  /** Stops the presence clock; presence, DM bookkeeping and events keep working while the core drains. */
  stop (): void {
    this.started = false
    clearInterval(this.idleTimer)
  }

  applySettings (s: ChatSettings): void {
    this.settings = s
    this.chatLimiter.set(s.rateLimits.chat)
    this.chatIpLimiter.set(s.rateLimits.chatIp)
    if (this.started) this.scheduleIdle()
  }

  // ---------------------------------------------------------------- agents and handles

  /** A newly authenticated agent (it is a member of the global room from now on). */
  noteAgent (amid: string): void { this.agents.add(amid) }

  isAgent (amid: string): boolean { return this.agents.has(amid) }

  async handleOf (amid: string): Promise<string | undefined> {
    const cached = this.handles.get(amid)
    if (cached !== undefined) return cached ?? undefined
    const h = await this.store.handleOf(amid)
    this.handles.set(amid, h ?? null)
    return h
  }

  async setHandle (p: Principal, amid: string, handle: unknown): Promise<{ amid: string, handle: string, previous?: string }> {
    if (typeof handle !== 'string' || !HANDLE_PATTERN.test(handle)) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'a handle is 2–32 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit')
    }
    if (RESERVED_HANDLES.has(handle.toLowerCase())) throw new AgentMeshError(ErrorCode.InvalidArgument, `the handle "${handle}" is reserved; choose another`)
    if (!this.agents.has(amid)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${amid} is registered on this relay`)
    const r = await this.store.setHandle(amid, handle)
    if (r.status === 'taken') {
      throw new AgentMeshError(ErrorCode.HandleTaken, r.by === amid ? `you hold "${handle}" already` : `the handle "${handle}" is taken by another agent; choose another`)
    }
    this.handles.set(amid, handle)
    this.invalidate('handle', amid)
    await this.audit(p, 'handle.set', amid, { handle, ...(r.previous === undefined ? {} : { previous: r.previous }) })
    return { amid, handle, ...(r.previous === undefined ? {} : { previous: r.previous }) }
  }

  /** An AMID, or `@handle` (or a bare handle) resolved to its AMID. */
  async resolveAgent (ref: unknown, what = 'agent'): Promise<string> {
    if (typeof ref !== 'string' || ref === '') throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} must be an AMID or @handle`)
    if (isAmid(ref)) {
      if (!this.agents.has(ref)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${ref} is registered on this relay; it registers by connecting once`)
      return ref
    }
    const h = ref.startsWith('@') ? ref.slice(1) : ref
    if (!HANDLE_PATTERN.test(h)) throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} "${ref.slice(0, 80)}" is neither an AMID nor a @handle`)
    const amid = await this.store.resolveHandle(h)
    if (amid === undefined) throw new AgentMeshError(ErrorCode.UnknownHandle, `no agent has the handle @${h}`)
    return amid
  }

  async setRole (p: Principal, amid: string, role: unknown): Promise<{ amid: string, role: AgentRole }> {
    if (role !== 'master' && role !== 'warden' && role !== 'worker') throw new AgentMeshError(ErrorCode.InvalidArgument, 'role must be master, warden or worker')
    if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, 'only a master (the operator) sets roles')
    if (!this.agents.has(amid)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${amid} is registered on this relay`)
    const before = await this.store.roleOf(amid)
    await this.store.setRole(amid, role)
    await this.audit(p, 'role.set', amid, { role, previous: before })
    return { amid, role }
  }

  // ---------------------------------------------------------------- rooms

  /** The room with its members (cached), or undefined. */
  async roomState (id: string): Promise<RoomState | undefined> {
    let p = this.rooms.get(id)
    if (p === undefined) {
      p = (async () => {
        const room = await this.store.getRoom(id)
        if (room === undefined) return undefined
        if (room.kind === 'global') return { room, members: undefined }
        const list = await this.store.listMembers(id)
        return { room, members: new Map(list.map(m => [m.amid, m])) }
      })()
      this.rooms.set(id, p)
      p.then((s) => { if (s === undefined && this.rooms.peek(id) === p) this.rooms.delete(id) }, () => { this.rooms.delete(id) })
    }
    return await p
  }

  isMember (s: RoomState, amid: string): boolean {
    return s.members === undefined ? this.agents.has(amid) : s.members.has(amid)
  }

  /** Everyone in the room (for the global room: every agent). */
  membersOf (s: RoomState): Iterable<string> {
    return s.members === undefined ? this.agents : s.members.keys()
  }

  /**
   * The room as `p` may see it: a private room or a DM is unknown to anyone outside it (masters see
   * every room).
   */
  async visibleRoom (p: Principal, id: string): Promise<RoomState> {
    const bare = id.startsWith('#') ? id.slice(1) : id
    const s = ROOM_RE.test(bare) ? await this.roomState(bare) : undefined
    if (s === undefined || ((s.room.kind === 'private' || s.room.kind === 'dm') && p.role !== 'master' && !(p.kind === 'agent' && this.isMember(s, p.amid)))) {
      throw new AgentMeshError(ErrorCode.UnknownRoom, `no room "${bare.slice(0, 80)}" that you can see; \`agentmesh rooms\` lists yours`)
    }
    return s
  }

  async createRoom (p: Principal, body: { id?: unknown, kind?: unknown, topic?: unknown }): Promise<RoomState> {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'rooms are created by agents (they own them); use an agent\'s token or signed request')
    const id = body.id
    if (typeof id !== 'string' || !ROOM_RE.test(id)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'a room id is 1–64 characters of a-z 0-9 _ -, starting with a letter or digit')
    if (id === GLOBAL_ROOM || id.startsWith(DM_ROOM_PREFIX)) throw new AgentMeshError(ErrorCode.InvalidArgument, `the room id "${id}" is reserved`)
    const kind = body.kind ?? 'public'
    if (kind !== 'public' && kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, 'kind must be "public" or "private"')
    const topic = this.checkTopic(body.topic)
    const owned = await this.store.listRooms({ member: p.amid, limit: 10_000 })
    if (owned.filter(r => r.owner === p.amid).length >= this.limits.maxRoomsPerAgent) {
      throw new AgentMeshError(ErrorCode.Forbidden, `you own ${this.limits.maxRoomsPerAgent} rooms already (the limit); an agent owns at most that many`)
    }
    const room: RoomRecord = { id, kind, ...(topic === undefined ? {} : { topic }), owner: p.amid, createdAt: this.now() }
    if (!await this.store.createRoom(room)) {
      const other = await this.roomState(id)
      // a private room someone else created stays invisible: the id is just "taken"
      throw new AgentMeshError(ErrorCode.RoomExists, other !== undefined && other.room.kind === 'private' && !this.isMember(other, p.amid)
        ? `the room id "${id}" is taken; choose another`
        : `a room "${id}" exists already; join it with \`agentmesh room join ${id}\``)
    }
    this.rooms.delete(id)
    this.invalidate('room', id)
    await this.audit(p, 'room.create', '#' + id, { kind })
    return (await this.roomState(id))!
  }

  private checkTopic (topic: unknown): string | undefined {
    if (topic === undefined || topic === null || topic === '') return undefined
    if (typeof topic !== 'string' || topic.length > this.limits.maxTopicLength) throw new AgentMeshError(ErrorCode.InvalidArgument, `a topic is a string of at most ${this.limits.maxTopicLength} characters`)
    return topic
  }

  async join (p: Principal, id: string): Promise<{ state: RoomState, already: boolean }> {
    const amid = this.agentOf(p)
    const s = await this.roomState(id.replace(/^#/, ''))
    const hidden = (): AgentMeshError => new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id.slice(0, 80)}" that you can join; \`agentmesh rooms\` lists the public ones`)
    if (s === undefined || s.room.kind === 'dm') throw hidden()
    if (s.room.kind === 'global') return { state: s, already: true }
    if (s.members!.has(amid)) return { state: s, already: true }
    if (s.room.kind === 'private' && await this.store.getInvite(s.room.id, amid) === undefined) throw hidden()
    if (s.members!.size >= this.limits.maxMembersPerRoom) throw new AgentMeshError(ErrorCode.Forbidden, `the room ${s.room.id} is full: it has ${this.limits.maxMembersPerRoom} members (the limit)`)
    const m: MemberRecord = { room: s.room.id, amid, role: 'member', joinedAt: this.now() }
    await this.store.addMember(m)
    s.members!.set(amid, m)
    this.invalidate('members', s.room.id)
    await this.audit(p, 'room.join', '#' + s.room.id, {})
    this.emit(this.membersOf(s), { type: 'presence', amid, status: this.presenceOf(amid), room: '#' + s.room.id, change: 'joined', ...await this.handleField(amid), ts: this.now() })
    return { state: s, already: false }
  }

  async leave (p: Principal, id: string): Promise<RoomState> {
    const amid = this.agentOf(p)
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global') throw new AgentMeshError(ErrorCode.InvalidArgument, 'the global room cannot be left: every agent is in it')
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, 'a DM conversation cannot be left')
    if (!s.members!.has(amid)) throw new AgentMeshError(ErrorCode.NotMember, `you are not a member of ${s.room.id}`)
    await this.removeMember(s, amid)
    await this.audit(p, 'room.leave', '#' + s.room.id, {})
    this.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'left', ts: this.now() })
    return s
  }

  private async removeMember (s: RoomState, amid: string): Promise<void> {
    await this.store.removeMember(s.room.id, amid)
    s.members!.delete(amid)
    this.invalidate('members', s.room.id)
  }

  /** Owner of the room, or a master; wardens too for public rooms and the global room. */
  private mayModerate (p: Principal, s: RoomState): boolean {
    if (p.role === 'master') return true
    if (p.kind === 'agent' && s.room.owner === p.amid) return true
    return p.role === 'warden' && (s.room.kind === 'public' || s.room.kind === 'global')
  }

  async invite (p: Principal, id: string, agentRef: unknown): Promise<{ room: string, agent: string }> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global' || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, `${s.room.id} takes no invitations`)
    if (s.room.kind === 'private' && !this.mayModerate(p, s)) throw new AgentMeshError(ErrorCode.Forbidden, `only the owner of ${s.room.id} (or a master) invites to it`)
    if (s.room.kind === 'public' && p.kind === 'agent' && !s.members!.has(p.amid) && p.role !== 'master') throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} before inviting to it`)
    const amid = await this.resolveAgent(agentRef)
    await this.store.putInvite({ room: s.room.id, amid, by: actorOf(p), at: this.now() })
    await this.audit(p, 'room.invite', '#' + s.room.id, { agent: amid })
    this.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'invited', ts: this.now() })
    return { room: s.room.id, agent: amid }
  }

  async kick (p: Principal, id: string, agentRef: unknown): Promise<{ room: string, agent: string }> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global' || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, `nobody can be removed from ${s.room.id}`)
    if (!this.mayModerate(p, s)) throw new AgentMeshError(ErrorCode.Forbidden, `only the owner of ${s.room.id}${s.room.kind === 'public' ? ', a warden' : ''} or a master kicks members`)
    const amid = await this.resolveAgent(agentRef)
    if (!s.members!.has(amid)) throw new AgentMeshError(ErrorCode.NotMember, `${amid} is not a member of ${s.room.id}`)
    if (amid === s.room.owner) throw new AgentMeshError(ErrorCode.Forbidden, 'the owner cannot be kicked from its own room')
    await this.removeMember(s, amid)
    await this.audit(p, 'room.kick', '#' + s.room.id, { agent: amid })
    this.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'kicked', ts: this.now() })
    return { room: s.room.id, agent: amid }
  }

  async setTopic (p: Principal, id: string, topic: unknown): Promise<RoomState> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, 'a DM has no topic')
    if (!this.mayModerate(p, s)) throw new AgentMeshError(ErrorCode.Forbidden, `only the owner of ${s.room.id}${s.room.kind === 'private' ? '' : ', a warden'} or a master sets its topic`)
    const t = this.checkTopic(topic)
    await this.store.setTopic(s.room.id, t)
    if (t === undefined) delete s.room.topic
    else s.room.topic = t
    this.invalidate('room', s.room.id)
    await this.audit(p, 'room.topic', '#' + s.room.id, { length: t?.length ?? 0 })
    if (s.room.kind !== 'private') {
      await this.postToRoom(s, NOTICE_TYPE, { text: t === undefined ? 'the topic was cleared' : `topic: ${t}`, topic: t ?? null, by: actorOf(p) })
    }
    return s
  }

  /** The JSON a room is shown as to `p`. */
  async roomJson (p: Principal, s: RoomState): Promise<Record<string, unknown>> {
    const me = p.kind === 'agent' ? p.amid : undefined
    const member = me !== undefined && s.members !== undefined ? s.members.get(me) : undefined
    return {
      id: s.room.id,
      kind: s.room.kind,
      ...(s.room.topic === undefined ? {} : { topic: s.room.topic }),
      ...(s.room.owner === undefined ? {} : { owner: s.room.owner }),
      created_at: s.room.createdAt,
      members: s.members === undefined ? this.agents.size : s.members.size,
      joined: me !== undefined && this.isMember(s, me),
      ...(member === undefined ? {} : { role: member.role }),
      ...(s.room.kind === 'dm' && me !== undefined ? { peer: [...s.members!.keys()].find(x => x !== me) ?? me } : {}),
      last_seq: await this.store.lastRoomSeq(s.room.id),
    }
  }

  /** Rooms `p` can see: global, public ones and its own (masters: all of every kind but DMs, plus its own DMs). */
  async listRooms (p: Principal, q: { after?: string, limit: number }): Promise<RoomState[]> {
    const kinds: RoomKind[] = p.role === 'master' ? ['global', 'public', 'private'] : ['global', 'public']
    const recs = await this.store.listRooms({ kinds, ...(p.kind === 'agent' ? { member: p.amid } : {}), ...(q.after === undefined ? {} : { after: q.after }), limit: q.limit })
    const out: RoomState[] = []
    for (const r of recs) {
      const s = await this.roomState(r.id)
      if (s !== undefined) out.push(s)
    }
    return out
  }

  async membersJson (s: RoomState): Promise<Array<Record<string, unknown>>> {
    const marks = new Map((await this.store.readMarkers(s.room.id)).map(m => [m.amid, m.upTo]))
    const out: Array<Record<string, unknown>> = []
    for (const m of s.members?.values() ?? []) {
      out.push({
        amid: m.amid,
        ...await this.handleField(m.amid),
        role: m.role,
        joined_at: m.joinedAt,
        presence: this.presenceOf(m.amid),
        ...(marks.has(m.amid) ? { read_up_to: marks.get(m.amid) } : {}),
      })
    }
    return out
  }

  private async handleField (amid: string): Promise<{ handle?: string }> {
    const h = await this.handleOf(amid)
    return h === undefined ? {} : { handle: h }
  }

  // ---------------------------------------------------------------- room messages (from the relay core)

  /**
   * May `sender` post `env` (addressed to "#room")? Answers the room and the inboxes it fans out
   * to, or the error to send back. `remote` is the connection's IP, for the per-IP limit.
   */
  async admitRoomMessage (sender: string, env: Envelope, remote: string): Promise<{ room: string, fanout: string[] } | AgentMeshError> {
    const limited = this.takeChat(sender, remote)
    if (!limited.ok) return rateLimited(limited.retryAfterS, 'room messages and signals')
    const id = env.to.slice(1)
    const s = await this.roomState(id)
    if (s === undefined || s.room.kind === 'dm' || (s.room.kind === 'private' && !this.isMember(s, sender))) {
      return new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id}" that you can post to; \`agentmesh rooms\` lists yours`)
    }
    if (!this.isMember(s, sender)) return new AgentMeshError(ErrorCode.NotMember, `join ${id} before posting to it (\`agentmesh room join ${id}\`)`)
    if (s.room.kind === 'private' && env.type !== GROUP_TYPE) {
      return new AgentMeshError(ErrorCode.EncryptionRequired, `${id} is a private room: messages to it must be end-to-end encrypted (type ${GROUP_TYPE}); nothing was stored`)
    }
    const fanout: string[] = []
    for (const m of this.membersOf(s)) if (m !== sender) fanout.push(m)
    return { room: id, fanout }
  }

  takeChat (amid: string, remote: string): TakeResult {
    const a = this.chatLimiter.take(amid)
    if (!a.ok) return a
    return this.chatIpLimiter.take(ipOf(remote))
  }

  /** A room message was stored with this room seq: plaintext chat is told as 'room:chat' (tasks in chat). */
  private afterRoomMessage (room: string, env: Envelope, seq: number): void {
    if (env.type !== 'chat' || typeof env.payload.text !== 'string' || env.from === this.relay.amid) return
    if (!this.events.listening('room:chat')) return
    void this.roomState(room).then((s) => {
      if (s !== undefined && s.room.kind !== 'private') this.events.emit('room:chat', { room: s.room, env, seq })
    }).catch((err) => { this.log.error({ err }, 'room message hook failed') })
  }

  /** A DM was stored: the pair's conversation exists from now on (§17.3). */
  private afterDm (from: string, to: string): void {
    if (from === to || from === this.relay.amid || to === this.relay.amid) return
    const id = dmRoomId(from, to)
    if (this.knownDms.has(id)) return
    this.knownDms.add(id)
    void (async () => {
      const at = this.now()
      if (await this.store.createRoom({ id, kind: 'dm', createdAt: at })) {
        for (const amid of [from, to]) await this.store.addMember({ room: id, amid, role: 'member', joinedAt: at })
        this.rooms.delete(id)
        this.invalidate('room', id)
      }
    })().catch((err) => { this.knownDms.delete(id); this.log.error({ err }, 'could not record a DM conversation') })
  }

  /** The audit row of a send (metadata only). */
  sendAudit (env: Envelope, bytes: number, via?: string): AuditInput {
    return sendAudit(env, bytes, this.now(), via)
  }

  /** Posts an envelope the relay signs itself to a room: timeline events, notices. */
  async postToRoom (s: RoomState, type: string, payload: Record<string, unknown>): Promise<AppendResult> {
    const env = signEnvelope(this.relay, { id: uuidv7(), to: '#' + s.room.id, type, payload })
    return await this.out.post({
      sender: this.relay.amid, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.now(),
      room: s.room.id, fanout: [...this.membersOf(s)],
    })
  }

  /** Sends an envelope the relay signs itself to one agent's inbox (task requests). */
  async postToAgent (amid: string, type: string, payload: Record<string, unknown>): Promise<AppendResult> {
    const env = signEnvelope(this.relay, { id: uuidv7(), to: amid, type, payload })
    return await this.out.post({ sender: this.relay.amid, id: env.id, recipient: amid, envelope: JSON.stringify(env), receivedAt: this.now() })
  }

  /**
   * A message posted over REST (§17.6): built and signed by the relay on the agent's behalf (or
   * from the relay itself for the operator), or an envelope the agent signed; stored like a send.
   */
  async postMessage (p: Principal, env: Envelope, remote: string, attested: boolean): Promise<{ result: AppendResult, env: Envelope }> {
    const bytes = Buffer.byteLength(JSON.stringify(env))
    if (env.to.startsWith('#')) {
      const admitted = p.kind === 'operator'
        ? await this.operatorFanout(env.to.slice(1))
        : await this.admitRoomMessage(env.from, env, remote)
      if (admitted instanceof AgentMeshError) throw admitted
      const result = await this.out.post({
        sender: env.from, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.now(), room: admitted.room, fanout: admitted.fanout,
      }, [this.sendAudit(env, bytes, attested ? 'rest' : undefined)])
      if (result.status === 'stored') this.events.emit('message:stored', { env, seq: result.seq, room: admitted.room, via: 'rest' })
      return { result, env }
    }
    if (!this.agents.has(env.to)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${env.to} is registered on this relay; it registers by connecting once`)
    const result = await this.out.post({ sender: env.from, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.now() },
      [this.sendAudit(env, bytes, attested ? 'rest' : undefined)])
    if (result.status === 'stored') this.events.emit('message:stored', { env, seq: result.seq, via: 'rest' })
    return { result, env }
  }

  private async operatorFanout (id: string): Promise<{ room: string, fanout: string[] }> {
    const s = await this.roomState(id)
    if (s === undefined || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id}"`)
    if (s.room.kind === 'private') throw new AgentMeshError(ErrorCode.EncryptionRequired, `${id} is a private room: the relay cannot post readable messages to it`)
    return { room: id, fanout: [...this.membersOf(s)] }
  }

  attest (from: string, init: { id: string, to: string, type: string, payload: Record<string, unknown> }): Envelope {
    return from === this.relay.amid ? signEnvelope(this.relay, init) : attestEnvelope(this.relay, { ...init, from })
  }

  // ---------------------------------------------------------------- presence and signals

  /** As this node sees it; an agent connected only to other nodes shows as online. */
  presenceOf (amid: string): PresenceStatus { return this.presence.get(amid)?.status ?? (this.remote.has(amid) ? 'online' : 'offline') }

  lastActive (amid: string): number | undefined { return this.presence.get(amid)?.lastActive }

  onlineAgents (): string[] {
    if (this.remote.size === 0) return [...this.presence.keys()]
    return [...new Set([...this.presence.keys(), ...this.remote.keys()])]
  }

  /** The agent's first connection authenticated. */
  connected (amid: string): void {
    this.noteAgent(amid)
    if (this.presence.has(amid)) { this.active(amid); return }
    this.presence.set(amid, { status: 'online', lastActive: this.now() })
    this.tell({ type: 'presence', origin: this.node, amid, status: 'online' })
    this.broadcastPresence(amid, 'online')
  }

  /** The agent's last connection closed. */
  disconnected (amid: string): void {
    if (!this.presence.delete(amid)) return
    this.tell({ type: 'presence', origin: this.node, amid, status: 'offline' })
    this.broadcastPresence(amid, 'offline')
  }

  /** The agent sent something: online again if it was idle. */
  active (amid: string): void {
    const p = this.presence.get(amid)
    if (p === undefined) return
    p.lastActive = this.now()
    if (p.status === 'idle') { p.status = 'online'; this.broadcastPresence(amid, 'online') }
  }

  private checkIdle (): void {
    const t = this.now()
    for (const [amid, p] of this.presence) {
      if (p.status === 'online' && t - p.lastActive >= this.settings.presenceIdleMs) {
        p.status = 'idle'
        this.broadcastPresence(amid, 'idle')
      }
    }
  }

  private broadcastPresence (amid: string, status: PresenceStatus): void {
    const others = this.onlineAgents().filter(a => a !== amid)
    if (others.length === 0) return
    void this.handleField(amid).then((h) => { this.emit(others, { type: 'presence', amid, status, ...h, ts: this.now() }) }).catch(() => {})
  }

  /** Writes an event to those of `amids` that are online (here, or on other nodes through the backplane). */
  emit (amids: Iterable<string>, event: ChatEvent): void {
    const frame = JSON.stringify({ op: 'event', event })
    const online: string[] = []
    const elsewhere: string[] = []
    for (const a of amids) {
      if (this.presence.has(a)) online.push(a)
      // connections of the same agent on other nodes hear it too
      if (this.remote.has(a)) elsewhere.push(a)
    }
    if (online.length > 0) this.out.event(online, frame)
    if (elsewhere.length > 0) this.tell({ type: 'event', origin: this.node, amids: elsewhere, frame })
  }

  /** A signal frame from an authenticated agent; answers an error to send back, if any. */
  async signal (amid: string, f: SignalFrame, remote: string): Promise<AgentMeshError | undefined> {
    const limited = this.takeChat(amid, remote)
    if (!limited.ok) return rateLimited(limited.retryAfterS, 'room messages and signals')
    const id = f.room.slice(1)
    const s = await this.roomState(id)
    if (s === undefined || !this.isMember(s, amid)) {
      return new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id}" you are a member of`)
    }
    this.active(amid)
    const others = [...this.membersOf(s)].filter(a => a !== amid)
    if (f.kind === 'typing') {
      this.emit(others, { type: 'typing', amid, room: f.room, ts: this.now() })
      return undefined
    }
    if (s.room.kind === 'dm') {
      // the peer learns which of its messages were read; the relay keeps nothing
      if (f.id === undefined) return new AgentMeshError(ErrorCode.InvalidFrame, 'a read signal in a DM conversation needs id: the envelope id read up to')
      this.emit(others, { type: 'read', amid, room: f.room, id: f.id, ts: this.now() })
      return undefined
    }
    if (f.up_to === undefined) return new AgentMeshError(ErrorCode.InvalidFrame, 'a read signal needs up_to: the room seq read up to')
    const last = await this.store.lastRoomSeq(id)
    if (f.up_to > last) return new AgentMeshError(ErrorCode.InvalidCursor, `up_to ${f.up_to} is beyond the newest message of ${id} (${last})`)
    const upTo = await this.store.setReadUpTo(id, amid, f.up_to)
    this.emit(others, { type: 'read', amid, room: f.room, up_to: upTo, ts: this.now() })
    return undefined
  }

  // ---------------------------------------------------------------- audit

  async audit (p: Principal | string, action: string, target: string | undefined, detail: Record<string, unknown>): Promise<void> {
    await this.store.appendAudit([{ at: this.now(), actor: typeof p === 'string' ? p : actorOf(p), action, ...(target === undefined ? {} : { target }), detail }])
  }

  private agentOf (p: Principal): string {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'this is done by an agent for itself; use an agent\'s token or signed request')
    return p.amid
  }
}

export function rateLimited (retryAfterS: number, what: string): AgentMeshError & { retryAfterS: number } {
  const e = new AgentMeshError(ErrorCode.RateLimited, `too many ${what}; try again in ${retryAfterS} s`) as AgentMeshError & { retryAfterS: number }
  e.retryAfterS = retryAfterS
  return e
}

/** The IP part of "ip:port" (IPv6 addresses keep their colons). */
export function ipOf (remote: string): string {
  const i = remote.lastIndexOf(':')
  return i > 0 ? remote.slice(0, i) : remote
}

/** Settings as stored (snake_case JSON) over the defaults; invalid stored values keep the default. */
export function settingsFromJson (j: Record<string, unknown>, base: ChatSettings): ChatSettings {
  const s: ChatSettings = structuredClone(base)
  const int = (v: unknown, min: number, max: number): number | undefined =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined
  s.presenceIdleMs = int(j.presence_idle_ms, 1000, 7 * 86_400_000) ?? s.presenceIdleMs
  s.taskDefaultDeadlineS = int(j.task_default_deadline_s, 1, 7 * 86_400) ?? s.taskDefaultDeadlineS
  const rl = j.rate_limits
  if (typeof rl === 'object' && rl !== null) {
    const r = rl as Record<string, unknown>
    const pair = (key: 'api' | 'ip' | 'chat' | 'chatIp', per: string, burst: string): void => {
      const pm = int(r[per], 1, 1_000_000)
      const b = int(r[burst], 1, 1_000_000)
      if (pm !== undefined) s.rateLimits[key].perMinute = pm
      if (b !== undefined) s.rateLimits[key].burst = b
    }
    pair('api', 'api_per_minute', 'api_burst')
    pair('ip', 'ip_per_minute', 'ip_burst')
    pair('chat', 'chat_per_minute', 'chat_burst')
    pair('chatIp', 'chat_ip_per_minute', 'chat_ip_burst')
  }
  return s
}

/** The settings as JSON (what GET /api/v1/settings answers and the store keeps). */
export function settingsJson (s: ChatSettings): Record<string, unknown> {
  return {
    presence_idle_ms: s.presenceIdleMs,
    task_default_deadline_s: s.taskDefaultDeadlineS,
    rate_limits: {
      api_per_minute: s.rateLimits.api.perMinute,
      api_burst: s.rateLimits.api.burst,
      ip_per_minute: s.rateLimits.ip.perMinute,
      ip_burst: s.rateLimits.ip.burst,
      chat_per_minute: s.rateLimits.chat.perMinute,
      chat_burst: s.rateLimits.chat.burst,
      chat_ip_per_minute: s.rateLimits.chatIp.perMinute,
      chat_ip_burst: s.rateLimits.chatIp.burst,
    },
  }
}
