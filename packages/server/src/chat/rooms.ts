/**
 * Rooms and their members (§17.2): the global room (every agent), public and private rooms, DM
 * conversations; who may see, join, invite, kick and set topics. Rooms with their member sets are
 * cached (least recently used go first); a change here tells other nodes to drop their copy.
 */
import { AgentMeshError, ErrorCode, ROOM_ID_PATTERN, unsafeCharIn, type RoomInfo, type RoomMember } from '@agentmesh/protocol'
import { DM_ROOM_PREFIX, applyMembership, verifyMembershipChain, verifyMembershipStatement, type MembershipStatement, type VerifiedMembership } from '@agentmesh/crypto'
import { LruMap } from '@agentmesh/protocol/internal'
import type { AppendResult, MemberRecord, RoomKind, RoomRecord } from '@agentmesh/store'
import type { ChatContext } from './context.ts'
import type { Handles } from './handles.ts'
import type { Presences } from './presence.ts'
import type { ChatLimits } from './limits.ts'
import { GLOBAL_ROOM, NOTICE_TYPE, actorOf, type Checked, type Principal, type RoomState } from './types.ts'

const ROOM_RE = new RegExp(ROOM_ID_PATTERN)
/** Rooms (with their member sets) kept in memory; the least recently used go first. @default 10,000 */
export const MAX_CACHED_ROOMS = 10_000
/** Rooms of one agent whose members hear its presence changes. @default 1,000 */
export const MAX_PRESENCE_ROOMS = 1000

function unsigned (why: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.MembershipUnsigned, why)
}

function agentOf (p: Principal): string {
  if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'this is done by an agent for itself; use an agent\'s token or signed request')
  return p.amid
}

export class Rooms {
  private readonly rooms = new LruMap<string, Promise<RoomState | undefined>>(MAX_CACHED_ROOMS)

  constructor (
    private readonly ctx: ChatContext,
    private readonly handles: Handles,
    private readonly presences: Presences,
    private readonly limits: ChatLimits,
    /** posts a notice the relay signs to a room (topic changes) */
    private readonly post: (s: RoomState, type: string, payload: Record<string, unknown>) => Promise<AppendResult>,
  ) {}

  /** Drops a cached room (it changed here or on another node). */
  forget (id: string): void { this.rooms.delete(id) }

  /** Drops every cached room (the backplane may have lost other nodes' changes). */
  forgetAll (): void { this.rooms.clear() }

  /** The room with its members (cached), or undefined. */
  async roomState (id: string): Promise<RoomState | undefined> {
    let p = this.rooms.get(id)
    if (p === undefined) {
      p = (async () => {
        const room = await this.ctx.store.getRoom(id)
        if (room === undefined) return undefined
        if (room.kind === 'global') return { room, members: undefined }
        const list = await this.ctx.store.listMembers(id)
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

  /**
   * The agents sharing a room other than the global one with `amid` (its public and private rooms,
   * its DM conversations): who hears its presence changes. The first MAX_PRESENCE_ROOMS rooms count.
   */
  async sharersOf (amid: string): Promise<Set<string>> {
    const out = new Set<string>()
    for (const r of await this.ctx.store.listRooms({ member: amid, limit: MAX_PRESENCE_ROOMS })) {
      if (r.kind === 'global') continue
      const s = await this.roomState(r.id)
      for (const m of s?.members?.keys() ?? []) if (m !== amid) out.add(m)
    }
    return out
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

  async createRoom (p: Principal, checked: Checked<{ id?: unknown, kind?: unknown, topic?: unknown, membership?: unknown }>): Promise<RoomState> {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'rooms are created by agents (they own them); use an agent\'s token or signed request')
    const body = checked()
    const id = body.id
    if (typeof id !== 'string' || !ROOM_RE.test(id)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'a room id is 1–64 characters of a-z 0-9 _ -, starting with a letter or digit')
    if (id === GLOBAL_ROOM || id.startsWith(DM_ROOM_PREFIX)) throw new AgentMeshError(ErrorCode.InvalidArgument, `the room id "${id}" is reserved`)
    const kind = body.kind ?? 'public'
    if (kind !== 'public' && kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, 'kind must be "public" or "private"')
    const topic = this.checkTopic(body.topic)
    let genesis: MembershipStatement | undefined
    if (kind === 'private') {
      // a private room's membership starts with its creator's signed genesis (§17.5)
      if (body.membership === undefined) throw unsigned(`a private room is created with its signed genesis (membership): use the SDK or \`agentmesh room create ${id} --private\`, which sign it`)
      const v = applyMembership(undefined, body.membership)
      genesis = body.membership as MembershipStatement
      if (v.room !== id || v.owner !== p.amid) throw unsigned(`the genesis must name room ${id} and be signed by its creator ${p.amid}`)
    } else if (body.membership !== undefined) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'membership is for private rooms only: a public room\'s members are not signed for')
    }
    const owned = await this.ctx.store.listRooms({ member: p.amid, limit: 10_000 })
    if (owned.filter(r => r.owner === p.amid).length >= this.limits.maxRoomsPerAgent) {
      throw new AgentMeshError(ErrorCode.Forbidden, `you own ${this.limits.maxRoomsPerAgent} rooms already (the limit); an agent owns at most that many`)
    }
    const room: RoomRecord = { id, kind, ...(topic === undefined ? {} : { topic }), owner: p.amid, createdAt: this.ctx.now() }
    if (!await this.ctx.store.createRoom(room)) {
      const other = await this.roomState(id)
      // a private room someone else created stays invisible: the id is just "taken"
      throw new AgentMeshError(ErrorCode.RoomExists, other !== undefined && other.room.kind === 'private' && !this.isMember(other, p.amid)
        ? `the room id "${id}" is taken; choose another`
        : `a room "${id}" exists already; join it with \`agentmesh room join ${id}\``)
    }
    if (genesis !== undefined) await this.ctx.store.appendMembership(id, 0, JSON.stringify(genesis))
    this.rooms.delete(id)
    this.ctx.invalidate('room', id)
    await this.ctx.audit(p, 'room.create', '#' + id, { kind })
    return (await this.roomState(id))!
  }

  private checkTopic (topic: unknown): string | undefined {
    if (topic === undefined || topic === null || topic === '') return undefined
    if (typeof topic !== 'string' || topic.length > this.limits.maxTopicLength) throw new AgentMeshError(ErrorCode.InvalidArgument, `a topic is a string of at most ${this.limits.maxTopicLength} characters`)
    const bad = unsafeCharIn(topic)
    if (bad !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, `topic holds ${bad}, a bidi control, invisible or control character; remove it`)
    return topic
  }

  async join (p: Principal, id: string): Promise<{ state: RoomState, already: boolean }> {
    const amid = agentOf(p)
    const s = await this.roomState(id.replace(/^#/, ''))
    const hidden = (): AgentMeshError => new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id.slice(0, 80)}" that you can join; \`agentmesh rooms\` lists the public ones`)
    if (s === undefined || s.room.kind === 'dm') throw hidden()
    if (s.room.kind === 'global') return { state: s, already: true }
    if (s.members!.has(amid)) return { state: s, already: true }
    if (s.room.kind === 'private' && await this.ctx.store.getInvite(s.room.id, amid) === undefined) throw hidden()
    // and the room's signed membership says so (an invitation whose statement was revoked since is void)
    if (s.room.kind === 'private' && !(await this.membershipOf(s)).members.has(amid)) throw hidden()
    if (s.members!.size >= this.limits.maxMembersPerRoom) throw new AgentMeshError(ErrorCode.Forbidden, `the room ${s.room.id} is full: it has ${this.limits.maxMembersPerRoom} members (the limit)`)
    const m: MemberRecord = { room: s.room.id, amid, role: 'member', joinedAt: this.ctx.now() }
    await this.ctx.store.addMember(m)
    s.members!.set(amid, m)
    this.ctx.invalidate('members', s.room.id)
    await this.ctx.audit(p, 'room.join', '#' + s.room.id, {})
    this.presences.emit(this.membersOf(s), { type: 'presence', amid, status: this.presences.presenceOf(amid), room: '#' + s.room.id, change: 'joined', ...await this.handles.handleField(amid), ts: this.ctx.now() })
    return { state: s, already: false }
  }

  async leave (p: Principal, id: string, statement?: unknown): Promise<RoomState> {
    const amid = agentOf(p)
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global') throw new AgentMeshError(ErrorCode.InvalidArgument, 'the global room cannot be left: every agent is in it')
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, 'a DM conversation cannot be left')
    if (!s.members!.has(amid)) throw new AgentMeshError(ErrorCode.NotMember, `you are not a member of ${s.room.id}`)
    if (statement !== undefined) {
      if (s.room.kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, 'statement is for private rooms only')
      await this.appendStatement(s, statement, 'leave', amid)
    }
    await this.removeMember(s, amid)
    await this.ctx.audit(p, 'room.leave', '#' + s.room.id, {})
    this.presences.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'left', ts: this.ctx.now() })
    return s
  }

  private async removeMember (s: RoomState, amid: string): Promise<void> {
    await this.ctx.store.removeMember(s.room.id, amid)
    s.members!.delete(amid)
    this.ctx.invalidate('members', s.room.id)
    // if it reads the room by cursor on this node, it stops receiving it
    this.ctx.out.membersChanged?.(s.room.id)
  }

  /**
   * Owner of the room, or a master; wardens too for public rooms and the global room. A private
   * room's membership is not moderated by roles: it changes by signed statements (appendStatement).
   */
  private mayModerate (p: Principal, s: RoomState): boolean {
    if (p.role === 'master') return true
    if (p.kind === 'agent' && s.room.owner === p.amid) return true
    return p.role === 'warden' && (s.room.kind === 'public' || s.room.kind === 'global')
  }

  async invite (p: Principal, id: string, agentRef: unknown, statement?: unknown): Promise<{ room: string, agent: string }> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global' || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, `${s.room.id} takes no invitations`)
    if (s.room.kind === 'public' && p.kind === 'agent' && !s.members!.has(p.amid) && p.role !== 'master') throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} before inviting to it`)
    const amid = await this.handles.resolveAgent(agentRef)
    let by = actorOf(p)
    if (s.room.kind === 'private') {
      // no role invites to a private room: the owner's (or an admin's) signed statement does
      if (statement === undefined) {
        // an agent the chain proves a member already (it left without a signed leave) may be let in again
        const chain = await this.membershipOf(s)
        if (!chain.members.has(amid)) throw unsigned(`an invitation to the private room ${s.room.id} is a statement signed by its owner or an admin (statement): use the SDK or \`agentmesh room invite\`, which sign it; no role (master, warden, the operator) invites without it`)
        by = chain.members.get(amid)!.by
      } else {
        by = (await this.appendStatement(s, statement, 'add', amid)).by
      }
    } else if (statement !== undefined) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'statement is for private rooms only')
    }
    await this.ctx.store.putInvite({ room: s.room.id, amid, by, at: this.ctx.now() })
    await this.ctx.audit(p, 'room.invite', '#' + s.room.id, { agent: amid })
    this.presences.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'invited', ...(s.room.kind === 'private' ? { by } : {}), ts: this.ctx.now() })
    return { room: s.room.id, agent: amid }
  }

  /** A private room's membership chain as the relay holds it, verified (the relay checks too; clients do not trust it). */
  async membershipOf (s: RoomState): Promise<VerifiedMembership> {
    const texts = await this.ctx.store.listMembership(s.room.id)
    return verifyMembershipChain(s.room.id, texts.map(t => JSON.parse(t) as unknown))
  }

  /** A private room's membership statements as stored (JSON), oldest first. */
  async statementsOf (s: RoomState): Promise<unknown[]> {
    if (s.room.kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, `${s.room.id} is not a private room: only private rooms have a signed membership`)
    return (await this.ctx.store.listMembership(s.room.id)).map(t => JSON.parse(t) as unknown)
  }

  /**
   * Checks a signed statement against the room's chain (it must be the next one, signed by someone
   * who may make that change) and appends it. `op` and `agent`, when given, are what the route
   * asked for: the statement must say the same.
   */
  async appendStatement (s: RoomState, statement: unknown, op?: MembershipStatement['op'], agent?: string): Promise<MembershipStatement> {
    if (s.room.kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, `${s.room.id} is not a private room: only private rooms have a signed membership`)
    const st = verifyMembershipStatement(statement)
    if (op !== undefined && st.op !== op) throw unsigned(`the statement is a ${st.op}, not a ${op}`)
    if (agent !== undefined && st.agent !== agent) throw unsigned(`the statement is about ${st.agent}, not ${agent}`)
    const chain = await this.membershipOf(s)
    applyMembership(chain, st)
    if (!await this.ctx.store.appendMembership(s.room.id, st.seq, JSON.stringify(st))) {
      throw unsigned(`the statement does not follow the newest of ${s.room.id} (another change came first): sign it again`)
    }
    return st
  }

  /** POST …/membership: a signed statement of any kind (naming admins, or an add, remove or leave). */
  async postStatement (p: Principal, id: string, statement: unknown): Promise<MembershipStatement> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, `${s.room.id} is not a private room: only private rooms have a signed membership`)
    const st = verifyMembershipStatement(statement)
    if (st.op === 'add') { await this.invite(p, id, st.agent, st); return st }
    if (st.op === 'remove') { await this.kick(p, id, st.agent, st); return st }
    const appended = await this.appendStatement(s, st)
    if (st.op === 'leave' && s.members!.has(st.agent)) {
      await this.removeMember(s, st.agent)
      this.presences.emit([...this.membersOf(s), st.agent], { type: 'member', amid: st.agent, room: '#' + s.room.id, change: 'left', ts: this.ctx.now() })
    }
    await this.ctx.audit(p, 'room.membership', '#' + s.room.id, { op: st.op, agent: st.agent, by: st.by })
    return appended
  }

  async kick (p: Principal, id: string, agentRef: unknown, statement?: unknown): Promise<{ room: string, agent: string }> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'global' || s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, `nobody can be removed from ${s.room.id}`)
    if (s.room.kind === 'private') {
      if (statement === undefined) throw unsigned(`a removal from the private room ${s.room.id} is a statement signed by its owner or an admin (statement): use the SDK or \`agentmesh room kick\`, which sign it; no role (master, warden, the operator) removes without it`)
    } else {
      if (statement !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'statement is for private rooms only')
      if (!this.mayModerate(p, s)) throw new AgentMeshError(ErrorCode.Forbidden, `only the owner of ${s.room.id}, a warden or a master kicks members`)
    }
    const amid = await this.handles.resolveAgent(agentRef)
    if (s.room.kind === 'private') {
      if (amid === s.room.owner) throw new AgentMeshError(ErrorCode.Forbidden, 'the owner cannot be kicked from its own room')
      await this.appendStatement(s, statement, 'remove', amid)
      if (!s.members!.has(amid)) {
        // invited, not joined yet: the statement stands, there is no membership to end
        await this.ctx.audit(p, 'room.kick', '#' + s.room.id, { agent: amid })
        return { room: s.room.id, agent: amid }
      }
    }
    if (!s.members!.has(amid)) throw new AgentMeshError(ErrorCode.NotMember, `${amid} is not a member of ${s.room.id}`)
    if (amid === s.room.owner) throw new AgentMeshError(ErrorCode.Forbidden, 'the owner cannot be kicked from its own room')
    await this.removeMember(s, amid)
    await this.ctx.audit(p, 'room.kick', '#' + s.room.id, { agent: amid })
    this.presences.emit([...this.membersOf(s), amid], { type: 'member', amid, room: '#' + s.room.id, change: 'kicked', ts: this.ctx.now() })
    return { room: s.room.id, agent: amid }
  }

  async setTopic (p: Principal, id: string, topic: unknown): Promise<RoomState> {
    const s = await this.visibleRoom(p, id)
    if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, 'a DM has no topic')
    if (!this.mayModerate(p, s)) throw new AgentMeshError(ErrorCode.Forbidden, `only the owner of ${s.room.id}${s.room.kind === 'private' ? '' : ', a warden'} or a master sets its topic`)
    const t = this.checkTopic(topic)
    await this.ctx.store.setTopic(s.room.id, t)
    if (t === undefined) delete s.room.topic
    else s.room.topic = t
    this.ctx.invalidate('room', s.room.id)
    await this.ctx.audit(p, 'room.topic', '#' + s.room.id, { length: t?.length ?? 0 })
    if (s.room.kind !== 'private') {
      await this.post(s, NOTICE_TYPE, { text: t === undefined ? 'the topic was cleared' : `topic: ${t}`, topic: t ?? null, by: actorOf(p) })
    }
    return s
  }

  /** The JSON a room is shown as to `p`. */
  async roomJson (p: Principal, s: RoomState): Promise<RoomInfo> {
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
      last_seq: await this.ctx.store.lastRoomSeq(s.room.id),
    }
  }

  /** Rooms `p` can see: global, public ones and its own (masters: all of every kind but DMs, plus its own DMs). */
  async listRooms (p: Principal, q: { after?: string, limit: number }): Promise<RoomState[]> {
    const kinds: RoomKind[] = p.role === 'master' ? ['global', 'public', 'private'] : ['global', 'public']
    const recs = await this.ctx.store.listRooms({ kinds, ...(p.kind === 'agent' ? { member: p.amid } : {}), ...(q.after === undefined ? {} : { after: q.after }), limit: q.limit })
    const out: RoomState[] = []
    for (const r of recs) {
      const s = await this.roomState(r.id)
      if (s !== undefined) out.push(s)
    }
    return out
  }

  async membersJson (s: RoomState): Promise<RoomMember[]> {
    const marks = new Map((await this.ctx.store.readMarkers(s.room.id)).map(m => [m.amid, m.upTo]))
    const out: RoomMember[] = []
    for (const m of s.members?.values() ?? []) {
      out.push({
        amid: m.amid,
        ...await this.handles.handleField(m.amid),
        role: m.role,
        joined_at: m.joinedAt,
        presence: this.presences.presenceOf(m.amid),
        ...(marks.has(m.amid) ? { read_up_to: marks.get(m.amid) } : {}),
      })
    }
    return out
  }
}
