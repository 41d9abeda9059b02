/**
 * The chat layer of the relay (docs/protocol.md §17), one facade over its parts in chat/: agents,
 * handles and roles (handles.ts), presence (presence.ts), signals (signals.ts), rooms and their
 * members (rooms.ts), DM conversations (dms.ts), what the relay posts itself (posts.ts), limits
 * (limits.ts); runtime settings are ../settings.ts. Room messages from agents (admission, REST
 * posts) are handled here. The relay core asks it whether a room message may go
 * in and to whom it fans out (RoomResolver); the REST API (api-v1.ts) drives everything else
 * through it. Durable truth is in the Store; what is cached here is bounded and dropped when
 * another node says it changed (the backplane).
 */
import {
  AgentMeshError, ErrorCode,
  type RelayEvent, type Envelope, type SignalFrame,
} from '@agentmesh/protocol'
import type { RoomInfo, RoomMember } from '@agentmesh/protocol'
import { fromB64u, identityFromSecret, type Identity } from '@agentmesh/crypto'
import type { AgentRole, AppendResult, AuditInput, MemberRecord, Store } from '@agentmesh/store'
import { RateLimiter, type TakeResult } from '@agentmesh/protocol/internal'
import type { Logger } from './log.ts'
import { tsTooFarAhead, type RelayOutlet, type RoomAdmission, type RoomResolver } from './relay.ts'
import { DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_PRESENCE_INTERVAL_MS } from './options.ts'
import { EventBus } from './events.ts'
import type { Backplane, BackplaneMessage } from './backplane.ts'
import { sendAudit } from './audit-rows.ts'
import { auditTo, type ChatContext } from './chat/context.ts'
import { Handles } from './chat/handles.ts'
import { Presences } from './chat/presence.ts'
import { DmBook } from './chat/dms.ts'
import { Rooms } from './chat/rooms.ts'
import { RelayPosts } from './chat/posts.ts'
import { handleSignal } from './chat/signals.ts'
import { GLOBAL_ROOM, GROUP_TYPE, type Checked, type PresenceStatus, type Principal, type RoomState } from './chat/types.ts'
import { ipKey, rateLimited, type ChatLimits } from './chat/limits.ts'
import { settingsFromJson, type ChatSettings } from './settings.ts'

export {
  GLOBAL_ROOM, HANDLE_PATTERN, RESERVED_HANDLES, GROUP_TYPE, TASK_REQUEST_TYPE, TASK_UPDATE_TYPE, TASK_CANCEL_TYPE, NOTICE_TYPE,
  actorOf, parseSlashCommand,
} from './chat/types.ts'
export type { Checked, PresenceStatus, Principal, RoomState } from './chat/types.ts'
export { DEFAULT_CHAT_LIMITS, ipKey, rateLimited } from './chat/limits.ts'
export type { ChatLimits } from './chat/limits.ts'
// runtime settings live in settings.ts (one table: defaults, bounds, JSON names); kept here for importers
export { defaultChatSettings, settingsFromJson, settingsJson, type ChatSettings } from './settings.ts'


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
  /** Presence changes are gathered this long, in ms, before they are told. @default 1,000 */
  presenceIntervalMs?: number
  /** How far ahead of the relay's clock a posted envelope's ts may be, in ms. @default 10 minutes */
  maxClockSkewMs?: number
}

/**
 * Where a room message goes (RoomAdmission): the room's members but the sender, who read it by
 * cursor or get an inbox copy as the Store decides by their delivery. Every agent is in the global
 * room; only those that read rooms by cursor have a membership row there (cursorJoin): its
 * agents are both `members` (those reading by cursor get it live) and `fanout` (the Store copies
 * it to the inbox of each that does not read the room by cursor, in the commit).
 */
export function admission (s: RoomState, members: Iterable<string>, sender?: string): RoomAdmission {
  const list: string[] = []
  for (const m of members) if (m !== sender) list.push(m)
  return s.members === undefined ? { room: s.room.id, members: list, fanout: list } : { room: s.room.id, members: list }
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
  private readonly offBackplane: (() => void) | undefined
  private readonly offGap: (() => void) | undefined
  private readonly rooms: Rooms
  private readonly posts: RelayPosts
  settings: ChatSettings
  readonly chatLimiter: RateLimiter
  readonly chatIpLimiter: RateLimiter
  readonly limits: ChatLimits
  readonly now: () => number
  private readonly log: Logger
  private readonly maxClockSkewMs: number
  /** agents known to have their membership row in the global room (cursorJoin); one per agent, as the agents known */
  private readonly globalRows = new Set<string>()

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
    this.maxClockSkewMs = init.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
    this.presences = new Presences(this.ctx, this.handles, () => this.settings.presenceIdleMs,
      async (amid) => await this.rooms.sharersOf(amid), init.presenceIntervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS)
    this.rooms = new Rooms(this.ctx, this.handles, this.presences, this.limits, async (st, type, payload) => await this.postToRoom(st, type, payload))
    this.posts = new RelayPosts(this.ctx, (st) => this.rooms.membersOf(st))
    this.dms = new DmBook(this.ctx, (id) => { this.rooms.forget(id) })
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
    this.offBackplane = backplane?.subscribe((m) => { this.fromNode(m) })
    // cache invalidations and presence the bus lost while it was away: what is cached is read
    // again, and the nodes tell each other again who is online
    this.offGap = backplane?.onGap?.(() => {
      this.presences.resync()
      this.rooms.forgetAll()
      this.handles.forgetAll().catch((err: unknown) => { log.error({ err }, 'could not read the agent list again after a backplane gap') })
    })
  }

  /** What another relay node tells: cached rows it changed, its agents' presence. */
  private fromNode (m: BackplaneMessage): void {
    if (m.origin === this.ctx.node) return // applied here already
    if (m.type === 'cache:invalidate') {
      if (m.kind === 'room' || m.kind === 'members') {
        this.rooms.forget(m.key)
        // members reading the room by cursor on this node: one that left stops receiving it
        if (m.kind === 'members') this.out.membersChanged?.(m.key)
      }
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

  /** A node of the cluster went silent (its heartbeat stopped): its agents are offline here. Answers how many. */
  nodeGone (node: string): number { return this.presences.nodeGone(node) }

  /** This node stood still past the peer timeout: the others dropped its agents, it tells them again. */
  retellPresence (): void { this.presences.retell() }

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

  /** Stops listening to other nodes (the relay closed: a shared backplane lives on). */
  close (): void {
    this.stop()
    this.offBackplane?.()
    this.offGap?.()
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

  // ---------------------------------------------------------------- rooms (chat/rooms.ts)

  /** The room with its members (cached), or undefined. */
  async roomState (id: string): Promise<RoomState | undefined> { return await this.rooms.roomState(id) }

  isMember (s: RoomState, amid: string): boolean { return this.rooms.isMember(s, amid) }

  /** Everyone in the room (for the global room: every agent). */
  membersOf (s: RoomState): Iterable<string> { return this.rooms.membersOf(s) }

  /** The room as `p` may see it: a private room or a DM is unknown to anyone outside it (masters see every room). */
  async visibleRoom (p: Principal, id: string): Promise<RoomState> { return await this.rooms.visibleRoom(p, id) }

  async createRoom (p: Principal, body: Checked<{ id?: unknown, kind?: unknown, topic?: unknown, membership?: unknown }>): Promise<RoomState> { return await this.rooms.createRoom(p, body) }

  async join (p: Principal, id: string): Promise<{ state: RoomState, already: boolean }> { return await this.rooms.join(p, id) }

  async leave (p: Principal, id: string, statement?: unknown): Promise<RoomState> { return await this.rooms.leave(p, id, statement) }

  async invite (p: Principal, id: string, agentRef: unknown, statement?: unknown): Promise<{ room: string, agent: string }> { return await this.rooms.invite(p, id, agentRef, statement) }

  async kick (p: Principal, id: string, agentRef: unknown, statement?: unknown): Promise<{ room: string, agent: string }> { return await this.rooms.kick(p, id, agentRef, statement) }

  /** A private room's signed membership statements as stored, oldest first (§17.5). */
  async membershipStatements (s: RoomState): Promise<unknown[]> { return await this.rooms.statementsOf(s) }

  /** Appends a signed membership statement to a private room (§17.5). */
  async postMembership (p: Principal, id: string, statement: unknown): Promise<void> { await this.rooms.postStatement(p, id, statement) }

  async setTopic (p: Principal, id: string, topic: unknown): Promise<RoomState> { return await this.rooms.setTopic(p, id, topic) }

  /** The JSON a room is shown as to `p`. */
  async roomJson (p: Principal, s: RoomState): Promise<RoomInfo> { return await this.rooms.roomJson(p, s) }

  /** Rooms `p` can see: global, public ones and its own (masters: all of every kind but DMs, plus its own DMs). */
  async listRooms (p: Principal, q: { after?: string, limit: number }): Promise<RoomState[]> { return await this.rooms.listRooms(p, q) }

  async membersJson (s: RoomState): Promise<RoomMember[]> { return await this.rooms.membersJson(s) }

  // ---------------------------------------------------------------- room messages (from the relay core)

  /**
   * May `sender` post `env` (addressed to "#room")? Answers the room and its members but the sender
   * (the global room: the inboxes it is copied to), or the error to send back. `remote` is the
   * client's IP address (no port), for the per-IP limit.
   */
  async admitRoomMessage (sender: string, env: Envelope, remote: string): Promise<RoomAdmission | AgentMeshError> {
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
    return admission(s, this.membersOf(s), sender)
  }

  /** A room's members (cached), for the relay core; undefined for an unknown room or the global room (every agent). */
  async roomMembers (room: string): Promise<Iterable<string> | undefined> {
    const s = await this.roomState(room)
    return s?.members?.keys()
  }

  /**
   * The agent reads rooms by cursor from now on: it gets a membership row in the global room (its
   * room cursor starts at the room's last seq; one it has is left as it is, cursor and all). The
   * row is not what lists the global room's members (every agent) nor its presence.
   */
  cursorJoin (amid: string): MemberRecord | undefined {
    return this.globalRows.has(amid) ? undefined : { room: GLOBAL_ROOM, amid, role: 'member', joinedAt: this.now() }
  }

  cursorJoined (amid: string): void {
    this.globalRows.add(amid)
  }

  takeChat (amid: string, remote: string): TakeResult {
    const a = this.chatLimiter.take(amid)
    if (!a.ok) return a
    return this.chatIpLimiter.take(ipKey(remote))
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

  /**
   * A message posted over REST (§17.6): built and signed by the relay on the agent's behalf (or
   * from the relay itself for the operator), or an envelope the agent signed; stored like a send.
   */
  async postMessage (p: Principal, env: Envelope, remote: string, attested: boolean): Promise<{ result: AppendResult, env: Envelope }> {
    if (p.kind === 'agent') {
      // a feature's say over this agent's sends (§19: a required version past its deadline)
      const refused = this.out.sendRefusal?.(p.amid)
      if (refused !== undefined) throw refused
    }
    const bytes = Buffer.byteLength(JSON.stringify(env))
    if (!attested) {
      const ahead = tsTooFarAhead(env.ts, Date.now(), this.maxClockSkewMs)
      if (ahead !== undefined) throw ahead
    }
    if (env.to.startsWith('#')) {
      const admitted = p.kind === 'operator'
        ? await this.operatorFanout(env.to.slice(1))
        : await this.admitRoomMessage(env.from, env, remote)
      if (admitted instanceof AgentMeshError) throw admitted
      const result = await this.out.post({
        sender: env.from, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.now(), room: admitted.room,
        ...(admitted.fanout === undefined ? {} : { fanout: admitted.fanout }),
      }, [this.sendAudit(env, bytes, attested ? 'rest' : undefined)], admitted.members)
      if (result.status === 'stored') this.events.emit('message:stored', { env, seq: result.seq, room: admitted.room, via: 'rest' })
      return { result, env }
    }
    if (!this.handles.isAgent(env.to)) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${env.to} is registered on this relay; it registers by connecting once`)
    const result = await this.out.post({ sender: env.from, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.now() },
      [this.sendAudit(env, bytes, attested ? 'rest' : undefined)])
    if (result.status === 'stored') this.events.emit('message:stored', { env, seq: result.seq, via: 'rest' })
    return { result, env }
  }

  private async operatorFanout (id: string): Promise<RoomAdmission> {
    const s = await this.roomState(id)
    if (s === undefined || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id}"`)
    if (s.room.kind === 'private') throw new AgentMeshError(ErrorCode.EncryptionRequired, `${id} is a private room: the relay cannot post readable messages to it`)
    return admission(s, this.membersOf(s))
  }

  // ---------------------------------------------------------------- relay posts (chat/posts.ts)

  /** Posts an envelope the relay signs itself to a room: timeline events, notices. */
  async postToRoom (s: RoomState, type: string, payload: Record<string, unknown>): Promise<AppendResult> { return await this.posts.postToRoom(s, type, payload) }

  /** Sends an envelope the relay signs itself to one agent's inbox (task requests). */
  async postToAgent (amid: string, type: string, payload: Record<string, unknown>): Promise<AppendResult> { return await this.posts.postToAgent(amid, type, payload) }

  /** The relay's own envelope (signed) or one it attests for another sender (a REST post). */
  attest (from: string, init: { id: string, to: string, type: string, payload: Record<string, unknown> }): Envelope { return this.posts.attest(from, init) }

  // ---------------------------------------------------------------- presence (chat/presence.ts) and signals

  /** As this node sees it; an agent connected only to other nodes shows as online. */
  presenceOf (amid: string): PresenceStatus { return this.presences.presenceOf(amid) }

  lastActive (amid: string): number | undefined { return this.presences.lastActive(amid) }

  /** Whether the agent has an open connection here or on another node (wake webhooks, §26); REST calls do not count. */
  hasConnection (amid: string): boolean { return this.presences.hasConnection(amid) }

  onlineAgents (): string[] { return this.presences.onlineAgents() }

  /** An agent made an authenticated REST call (activity, docs/protocol.md §17.4). */
  requested (amid: string): void { this.presences.requested(amid) }

  /** The agent's first connection authenticated. */
  connected (amid: string): void { this.presences.connected(amid) }

  /** The agent's last connection closed. */
  disconnected (amid: string): void { this.presences.disconnected(amid) }

  /** The agent sent something: online again if it was idle. */
  active (amid: string): void { this.presences.active(amid) }

  /** Writes an event (chat's, or an operations event) to those of `amids` that are online (here, or on other nodes through the backplane). */
  emit (amids: Iterable<string>, event: RelayEvent): void { this.presences.emit(amids, event) }

  /** A watch frame: the agents whose presence changes `amid` hears besides those sharing a room with it (§17.4). */
  watch (amid: string, agents: readonly string[]): AgentMeshError | undefined {
    this.presences.watch(amid, agents)
    return undefined
  }

  /** Tells the presence changes gathered so far now (tests, shutdown). */
  async flushPresence (): Promise<void> { await this.presences.flush() }

  /** Presence frames written so far (one per recipient agent). */
  get presenceEvents (): number { return this.presences.counters.presenceEvents }

  /** A signal frame from an authenticated agent; answers an error to send back, if any (chat/signals.ts). */
  async signal (amid: string, f: SignalFrame, remote: string): Promise<AgentMeshError | undefined> {
    return await handleSignal({ ctx: this.ctx, rooms: this.rooms, presences: this.presences, take: (a, r) => this.takeChat(a, r) }, amid, f, remote)
  }

  // ---------------------------------------------------------------- audit

  async audit (p: Principal | string, action: string, target: string | undefined, detail: Record<string, unknown>): Promise<void> {
    await this.ctx.audit(p, action, target, detail)
    this.events.emit('audit:written', { action })
  }
}
