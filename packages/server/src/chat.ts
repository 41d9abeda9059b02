/**
 * The chat layer of the relay (docs/protocol.md §17), one facade over its parts in chat/: agents,
 * handles and roles (handles.ts), presence (presence.ts), DM conversations (dms.ts), settings
 * (settings.ts); rooms and their members, room messages, signals and what the relay itself posts
 * (timeline events, task requests) are here. The relay core asks it whether a room message may go
 * in and to whom it fans out (RoomResolver); the REST API (api-v1.ts) drives everything else
 * through it. Durable truth is in the Store; what is cached here is bounded and dropped when
 * another node says it changed (the backplane).
 */
import { v7 as uuidv7 } from 'uuid'
import {
  AgentMeshError, ErrorCode, ROOM_ID_PATTERN,
  type ChatEvent, type Envelope, type SignalFrame,
} from '@agentmesh/protocol'
import { DM_ROOM_PREFIX, attestEnvelope, fromB64u, identityFromSecret, signEnvelope, type Identity } from '@agentmesh/crypto'
import type { AgentRole, AppendResult, AuditInput, MemberRecord, RoomKind, RoomRecord, Store } from '@agentmesh/store'
import { LruMap, RateLimiter, type TakeResult } from '@agentmesh/protocol/internal'
import type { Logger } from './log.ts'
import type { RelayOutlet, RoomResolver } from './relay.ts'
import { EventBus } from './events.ts'
import type { Backplane, BackplaneMessage } from './backplane.ts'
import { sendAudit } from './audit-rows.ts'
import { auditTo, type ChatContext } from './chat/context.ts'
import { Handles } from './chat/handles.ts'
import { Presences } from './chat/presence.ts'
import { DmBook } from './chat/dms.ts'
import { GLOBAL_ROOM, GROUP_TYPE, NOTICE_TYPE, actorOf, type PresenceStatus, type Principal, type RoomState } from './chat/types.ts'
import { ipOf, rateLimited, settingsFromJson, type ChatLimits, type ChatSettings } from './chat/settings.ts'

export {
  GLOBAL_ROOM, HANDLE_PATTERN, RESERVED_HANDLES, GROUP_TYPE, TASK_REQUEST_TYPE, TASK_UPDATE_TYPE, TASK_CANCEL_TYPE, NOTICE_TYPE,
  actorOf, parseSlashCommand,
} from './chat/types.ts'
export type { PresenceStatus, Principal, RoomState } from './chat/types.ts'
export { DEFAULT_CHAT_LIMITS, defaultChatSettings, ipOf, rateLimited, settingsFromJson, settingsJson } from './chat/settings.ts'
export type { ChatLimits, ChatSettings } from './chat/settings.ts'

const ROOM_RE = new RegExp(ROOM_ID_PATTERN)
/** Rooms (with their member sets) kept in memory; the least recently used go first. */
export const MAX_CACHED_ROOMS = 10_000

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

export class ChatService implements RoomResolver {
  readonly relay: Identity
  readonly events: EventBus
  private readonly out: ChatOutlet
  private readonly ctx: ChatContext
  private readonly handles: Handles
  private readonly presences: Presences
  private readonly dms: DmBook
  private started = false
  /** rooms with their member sets; the least recently used go first, other nodes' changes drop them */
  private readonly rooms = new LruMap<string, Promise<RoomState | undefined>>(MAX_CACHED_ROOMS)
  settings: ChatSettings
  readonly chatLimiter: RateLimiter
  readonly chatIpLimiter: RateLimiter
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
    this.events = init.events ?? new EventBus(init.log)
    const backplane = init.backplane
    const node = init.node ?? 'local'
    const log = init.log
    const tell = (msg: BackplaneMessage): void => {
      backplane?.publish(msg).catch((err) => { log.warn({ err, type: msg.type }, 'could not tell other nodes') })
    }
    this.ctx = {
      store,
      log,
      now: this.now,
      relay: this.relay,
      out: this.out,
      node,
      tell,
      invalidate: (kind, key) => { tell({ type: 'cache:invalidate', origin: node, kind, key }) },
      audit: auditTo(store, this.now),
    }
    this.handles = new Handles(this.ctx)
    this.presences = new Presences(this.ctx, this.handles, () => this.settings.presenceIdleMs)
    this.dms = new DmBook(this.ctx, (id) => { this.rooms.delete(id) })
    this.chatLimiter = new RateLimiter(this.settings.rateLimits.chat, this.now)
    this.chatIpLimiter = new RateLimiter(this.settings.rateLimits.chatIp, this.now)
    // listening from the moment it exists: a message stored before start() still gets its DM
    // bookkeeping, and presence follows every connection
    const ev = this.events
    ev.on('agent:online', (e) => { this.presences.connected(e.amid) })
    ev.on('agent:active', (e) => { this.presences.active(e.amid) })
    ev.on('agent:offline', (e) => { this.presences.disconnected(e.amid) })
    ev.on('message:stored', (e) => {
      if (e.room !== undefined) this.afterRoomMessage(e.room, e.env, e.seq)
      else this.dms.afterDm(e.env.from, e.env.to)
    })
    backplane?.subscribe((m) => { this.fromNode(m) })
  }

  /** What another relay node tells: cached rows it changed, its agents' presence. */
  private fromNode (m: BackplaneMessage): void {
    if (m.origin === this.ctx.node) return // applied here already
    if (m.type === 'cache:invalidate') {
      if (m.kind === 'room' || m.kind === 'members') this.rooms.delete(m.key)
      else if (m.kind === 'handle') this.handles.forgetHandle(m.key)
      else this.handles.noteAgent(m.key)
    } else if (m.type === 'presence') {
      this.presences.fromNode(m)
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
    await chat.handles.load()
    return chat
  }

  get relayAmid (): string { return this.relay.amid }

  /** Starts the presence clock (online agents turn idle). */
  start (): void {
    this.started = true
    this.presences.startClock()
  }

  /** Stops the presence clock; presence, DM bookkeeping and events keep working while the core drains. */
  stop (): void {
    this.started = false
    this.presences.stopClock()
  }

  applySettings (s: ChatSettings): void {
    this.settings = s
    this.chatLimiter.set(s.rateLimits.chat)
    this.chatIpLimiter.set(s.rateLimits.chatIp)
    if (this.started) this.presences.startClock()
  }

  // ---------------------------------------------------------------- agents and handles

  /** A newly authenticated agent (it is a member of the global room from now on). */
  noteAgent (amid: string): void { this.handles.noteAgent(amid) }

  isAgent (amid: string): boolean { return this.handles.isAgent(amid) }

  async handleOf (amid: string): Promise<string | undefined> { return await this.handles.handleOf(amid) }

  async setHandle (p: Principal, amid: string, handle: unknown): Promise<{ amid: string, handle: string, previous?: string }> {
    return await this.handles.setHandle(p, amid, handle)
  }

  /** An AMID, or `@handle` (or a bare handle) resolved to its AMID. */
  async resolveAgent (ref: unknown, what = 'agent'): Promise<string> { return await this.handles.resolveAgent(ref, what) }

  async setRole (p: Principal, amid: string, role: unknown): Promise<{ amid: string, role: AgentRole }> {
    return await this.handles.setRole(p, amid, role)
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
    return s.members === undefined ? this.handles.isAgent(amid) : s.members.has(amid)
  }

  /** Everyone in the room (for the global room: every agent). */
  membersOf (s: RoomState): Iterable<string> {
    return s.members === undefined ? this.handles.all() : s.members.keys()
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
    this.ctx.invalidate('room', id)
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
    this.ctx.invalidate('members', s.room.id)
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
    this.ctx.invalidate('members', s.room.id)
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
    this.ctx.invalidate('room', s.room.id)
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
      members: s.members === undefined ? this.handles.all().size : s.members.size,
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

  private async handleField (amid: string): Promise<{ handle?: string }> { return await this.handles.handleField(amid) }

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
    if (!this.handles.isAgent(env.to)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${env.to} is registered on this relay; it registers by connecting once`)
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
  presenceOf (amid: string): PresenceStatus { return this.presences.presenceOf(amid) }

  lastActive (amid: string): number | undefined { return this.presences.lastActive(amid) }

  onlineAgents (): string[] { return this.presences.onlineAgents() }

  /** The agent's first connection authenticated. */
  connected (amid: string): void { this.presences.connected(amid) }

  /** The agent's last connection closed. */
  disconnected (amid: string): void { this.presences.disconnected(amid) }

  /** The agent sent something: online again if it was idle. */
  active (amid: string): void { this.presences.active(amid) }

  /** Writes an event to those of `amids` that are online (here, or on other nodes through the backplane). */
  emit (amids: Iterable<string>, event: ChatEvent): void { this.presences.emit(amids, event) }

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
    await this.ctx.audit(p, action, target, detail)
  }

  private agentOf (p: Principal): string {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'this is done by an agent for itself; use an agent\'s token or signed request')
    return p.amid
  }
}
