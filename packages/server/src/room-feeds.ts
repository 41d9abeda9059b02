/**
 * Rooms read by cursor (fan-out on read, docs/protocol.md §6.1): a room message is stored once, in
 * the room's log; each member whose client declared the `room-cursor` feature reads the log from
 * its own durable cursor. This is the delivery side of it on one relay node: what each agent reads
 * (its feeds: room, cursor, the room's last seq), what each connection passed of each room, the
 * live deliveries right after a commit, the pump from the Store for a member that is behind, room
 * cursor frames, and retransmits. The relay core (relay.ts) calls it; the Store holds the truth
 * (room logs, cursors), this holds what a node keeps in memory, bounded by its connections.
 *
 * Room deliveries count in the connection's delivery window and byte bounds like the inbox's: the
 * host's `windowLeft` answers what is left of both.
 */
import { AgentMeshError, ErrorCode, MAX_ROOMS_PER_FRAME, encodeRoomDeliver } from '@agentmesh/protocol'
import type { CursorAck, RoomFeed, Store } from '@agentmesh/store'
import type { Logger } from './log.ts'

/** Log entries read from the Store at once for a member that is behind. */
const READ_BATCH = 256
/**
 * The room deliveries committed last on this node are kept encoded (all rooms together, the oldest
 * going first past either bound) so that a member a little behind (its window was full, its socket
 * paused) is served from memory rather than from the Store; kept RECENT_MS at most, so a message
 * deleted since is not served from here for long. @default 8,192 entries, 16 MiB, 5 s
 */
export const RECENT_MAX_ENTRIES = 8192
export const RECENT_MAX_BYTES = 16 * 1024 * 1024
export const RECENT_MS = 5000

interface RecentFrame { frame: Buffer, sender: string, at: number }

/** The deliver frames of the room messages committed last (see RECENT_*). */
class RecentFrames {
  private readonly byRoom = new Map<string, Map<number, RecentFrame>>()
  private readonly order: Array<{ room: string, seq: number, bytes: number }> = []
  private head = 0
  private bytes = 0

  add (room: string, seq: number, frame: Buffer, sender: string, now: number): void {
    let m = this.byRoom.get(room)
    if (m === undefined) { m = new Map(); this.byRoom.set(room, m) }
    if (m.has(seq)) return
    m.set(seq, { frame, sender, at: now })
    this.order.push({ room, seq, bytes: frame.length })
    this.bytes += frame.length
    while (this.order.length - this.head > RECENT_MAX_ENTRIES || this.bytes > RECENT_MAX_BYTES) this.evict()
    // the array is compacted now and then (the evicted head is only skipped)
    if (this.head > 4096 && this.head * 2 > this.order.length) { this.order.splice(0, this.head); this.head = 0 }
  }

  get (room: string, seq: number, now: number): RecentFrame | undefined {
    const e = this.byRoom.get(room)?.get(seq)
    return e === undefined || now - e.at > RECENT_MS ? undefined : e
  }

  private evict (): void {
    const o = this.order[this.head++]!
    this.bytes -= o.bytes
    const m = this.byRoom.get(o.room)
    m?.delete(o.seq)
    if (m?.size === 0) this.byRoom.delete(o.room)
  }
}

/** A room an agent reads by cursor, as this node knows it. */
export interface Feed {
  room: string
  /** the highest room seq the agent acknowledged (durable once the next group commit is) */
  cursor: number
  /** the highest room seq known to be stored */
  lastSeq: number
  /** false while its cursor is being read from the Store (a room joined since the agent authenticated) */
  ready: boolean
}

/** What a connection passed of one room: the highest seq sent or skipped, and the highest sent in a deliver frame. */
interface RoomSent { sent: number, frame: number }

/** A connection's side of the rooms it reads by cursor. */
export interface ConnFeeds {
  /** the connection declared `room-cursor` in its auth */
  on: boolean
  rooms: Map<string, RoomSent>
  /** per room, the seq the client told it processed (auth or resume `rooms`) */
  after: Map<string, number> | undefined
  /** room deliveries (seqs) sent and not acknowledged: counted in the delivery window */
  out: number
  pumping: boolean
  again: boolean
}

/** What the feeds need of a connection (the relay's Conn has it all). */
export interface FeedConnection {
  readonly id: number
  amid?: string
  closed: boolean
  deliver: boolean
  lastProgress: number
  rf: ConnFeeds
}

/** One agent's rooms read by cursor on this node, and its connections here. */
export interface AgentFeeds {
  readonly amid: string
  /** its delivery is 'cursor' (set by its last auth on this node) */
  byCursor: boolean
  feeds: Map<string, Feed>
  readonly conns: Set<FeedConnection>
}

/** What the relay core gives the feeds. */
export interface FeedHost {
  store: Store
  log: Logger
  /** the agent's state on this node, while it has one */
  agent (amid: string): AgentFeeds | undefined
  write (c: FeedConnection, text: string | Buffer): void
  /** deliveries the connection may still be sent now (the window less what is out, inbox and rooms); 0 while it is paused */
  windowLeft (c: FeedConnection): number
  /** the connection holds more than it may be written now (deliveries pause until it drains) */
  overSoft (c: FeedConnection): boolean
  /** a deliver frame was written */
  delivered (): void
  /** room acks are pending: a group commit should run */
  scheduleFlush (): void
  /** a room cursor moved: the agent's connections may send more (of the inbox too) */
  progressed (agent: AgentFeeds): void
  /** a room's members (cached by the chat layer); undefined for an unknown room or the global room */
  membersOf? (room: string): Promise<Iterable<string> | undefined>
}

export function connFeeds (on: boolean, after?: Record<string, number>): ConnFeeds {
  return { on, rooms: new Map(), after: after === undefined ? undefined : new Map(Object.entries(after)), out: 0, pumping: false, again: false }
}

export class RoomFeeds {
  /** room → the agents on this node that read it by cursor (for other nodes' room:stored and membership changes) */
  private readonly index = new Map<string, Set<AgentFeeds>>()
  /** amid → room → the room cursor to commit */
  private acks = new Map<string, Map<string, number>>()
  private readonly recent = new RecentFrames()

  constructor (private readonly host: FeedHost) {}

  /** Room cursor acks waiting for the group commit (taken: the caller commits them). */
  takeAcks (): CursorAck[] {
    const out: CursorAck[] = []
    for (const [amid, rooms] of this.acks) for (const [room, seq] of rooms) out.push({ recipient: amid, room, seq })
    this.acks = new Map()
    return out
  }

  get acksPending (): boolean { return this.acks.size > 0 }

  /** The agent has room acks to commit (its state is kept until they are). */
  acking (amid: string): boolean { return this.acks.has(amid) }

  // ---------------------------------------------------------------- what an agent reads

  /**
   * An auth of the agent answered by the Store: its delivery now, and (for 'cursor') its rooms with
   * their cursors. Feeds known here already keep the higher values.
   */
  authenticated (agent: AgentFeeds, byCursor: boolean, feeds: readonly RoomFeed[]): void {
    agent.byCursor = byCursor
    if (!byCursor) {
      // its room messages go to its inbox from now on
      for (const room of [...agent.feeds.keys()]) this.drop(agent, room)
      return
    }
    for (const f of feeds) {
      const known = agent.feeds.get(f.room)
      if (known !== undefined) {
        known.cursor = Math.max(known.cursor, f.cursor)
        known.lastSeq = Math.max(known.lastSeq, f.lastSeq)
        known.ready = true
      } else {
        this.add(agent, { room: f.room, cursor: f.cursor, lastSeq: f.lastSeq, ready: true })
      }
    }
  }

  /** The rooms the agent reads here whose cursor was read from the Store (what a catch-up compares). */
  readyFeeds (agent: AgentFeeds): Feed[] {
    return [...agent.feeds.values()].filter(f => f.ready)
  }

  /**
   * The Store's view of the agent's rooms, read again (a catch-up after the backplane lost
   * messages): higher seqs are taken, rooms not known here are added, its connections pump; a
   * room of `before` (its ready feeds before the Store was asked) missing from the answer was left
   * (the member left or was removed on another node, unannounced) and is dropped: nothing more of it
   * is delivered. Answers how many rooms had grown or were new, and how many were dropped.
   */
  caughtUp (agent: AgentFeeds, feeds: readonly RoomFeed[], before: readonly Feed[]): { grown: number, left: number } {
    if (!agent.byCursor) return { grown: 0, left: 0 }
    let grown = 0
    let left = 0
    const inStore = new Set(feeds.map(f => f.room))
    for (const feed of before) {
      if (!inStore.has(feed.room) && agent.feeds.get(feed.room) === feed) { this.drop(agent, feed.room); left++ }
    }
    for (const f of feeds) {
      const known = agent.feeds.get(f.room)
      if (known === undefined || (known.ready && f.lastSeq > known.lastSeq)) grown++
    }
    this.authenticated(agent, true, feeds)
    if (grown > 0) for (const c of agent.conns) void this.pump(c)
    return { grown, left }
  }

  /**
   * The rooms the agent reads by cursor with the cursors this node holds (the welcome frame's
   * `rooms`), at most MAX_ROOMS_PER_FRAME of them (the rest are delivered all the same).
   */
  cursors (agent: AgentFeeds): Record<string, number> {
    const out: Record<string, number> = {}
    let n = 0
    for (const f of agent.feeds.values()) {
      if (!f.ready) continue
      if (++n > MAX_ROOMS_PER_FRAME) break
      out[f.room] = f.cursor
    }
    return out
  }

  /** The agent's state on this node goes (no connection, nothing to commit). */
  forget (agent: AgentFeeds): void {
    for (const room of agent.feeds.keys()) {
      const set = this.index.get(room)
      set?.delete(agent)
      if (set?.size === 0) this.index.delete(room)
    }
  }

  private add (agent: AgentFeeds, feed: Feed): void {
    agent.feeds.set(feed.room, feed)
    let set = this.index.get(feed.room)
    if (set === undefined) { set = new Set(); this.index.set(feed.room, set) }
    set.add(agent)
  }

  /** The agent no longer reads `room` by cursor (it left, or its delivery is 'inbox'). */
  private drop (agent: AgentFeeds, room: string): void {
    const feed = agent.feeds.get(room)
    if (feed === undefined) return
    agent.feeds.delete(room)
    for (const c of agent.conns) {
      const rs = c.rf.rooms.get(room)
      if (rs === undefined) continue
      c.rf.out -= Math.max(0, rs.sent - feed.cursor)
      c.rf.rooms.delete(room)
    }
    const set = this.index.get(room)
    set?.delete(agent)
    if (set?.size === 0) this.index.delete(room)
  }

  /** A room the agent reads but this node did not know of (joined since it authenticated): its cursor is read, then it is pumped. */
  private load (agent: AgentFeeds, room: string, seq: number): void {
    const feed: Feed = { room, cursor: 0, lastSeq: seq, ready: false }
    this.add(agent, feed)
    this.host.store.roomFeed(room, agent.amid).then((f) => {
      if (agent.feeds.get(room) !== feed) return
      if (f === undefined) { this.drop(agent, room); return }
      feed.cursor = Math.max(feed.cursor, f.cursor)
      feed.lastSeq = Math.max(feed.lastSeq, f.lastSeq)
      feed.ready = true
      for (const c of agent.conns) void this.pump(c)
    }, (err: unknown) => {
      this.host.log.error({ err, room }, 'could not read a room cursor')
      if (agent.feeds.get(room) === feed) this.drop(agent, room)
    })
  }

  /**
   * A room's membership changed (here, or on another node): the agents here that read it check
   * with the Store that they still belong (one that left stops receiving it).
   */
  membersChanged (room: string): void {
    for (const agent of [...this.index.get(room) ?? []]) {
      const feed = agent.feeds.get(room)
      if (feed === undefined || !feed.ready) continue
      this.host.store.roomFeed(room, agent.amid).then((f) => {
        if (f === undefined && agent.feeds.get(room) === feed) this.drop(agent, room)
      }, (err: unknown) => { this.host.log.error({ err, room }, 'could not read a room cursor') })
    }
  }

  // ---------------------------------------------------------------- delivery

  /** What the connection passed of the room, made when first needed: from what the client processed or the cursor. */
  private sentOf (c: FeedConnection, feed: Feed): RoomSent {
    let rs = c.rf.rooms.get(feed.room)
    if (rs === undefined) {
      const from = Math.min(Math.max(c.rf.after?.get(feed.room) ?? 0, feed.cursor), feed.lastSeq)
      rs = { sent: from, frame: from }
      c.rf.rooms.set(feed.room, rs)
      c.rf.out += from - feed.cursor
    }
    return rs
  }

  /** Moves what `c` passed of a room to `seq`, keeping `out` (its unacknowledged room seqs) right. */
  private advance (c: FeedConnection, rs: RoomSent, feed: Feed, seq: number): void {
    c.rf.out += Math.max(0, seq - feed.cursor) - Math.max(0, rs.sent - feed.cursor)
    rs.sent = seq
  }

  /** Raises the agent's cursor of a room and queues it for the group commit. */
  private ack (agent: AgentFeeds, feed: Feed, seq: number): void {
    const c0 = feed.cursor
    if (seq <= c0) return
    feed.cursor = seq
    for (const c of agent.conns) {
      const rs = c.rf.rooms.get(feed.room)
      if (rs !== undefined) c.rf.out -= Math.max(0, rs.sent - c0) - Math.max(0, rs.sent - seq)
    }
    let mine = this.acks.get(agent.amid)
    if (mine === undefined) { mine = new Map(); this.acks.set(agent.amid, mine) }
    mine.set(feed.room, seq)
    this.host.scheduleFlush()
  }

  /**
   * A room message was just committed with room seq `seq`: sent from memory to the connections of
   * `members` (the room's members but its sender) that are exactly caught up; others pump from
   * the Store. Answers the agents whose connections should pump (the caller pumps them once).
   * The sender's own connections pass over it (a member is not sent its own messages).
   */
  committed (room: string, seq: number, envText: string, members: Iterable<string>, touched: Set<AgentFeeds>, sender: string): void {
    const own = this.host.agent(sender)
    const ownFeed = own?.byCursor === true ? own.feeds.get(room) : undefined
    if (own !== undefined && ownFeed !== undefined && ownFeed.ready) {
      if (seq > ownFeed.lastSeq) ownFeed.lastSeq = seq
      for (const c of own.conns) {
        if (!c.rf.on || !c.deliver || c.closed) continue
        const rs = this.sentOf(c, ownFeed)
        if (!c.rf.pumping && rs.sent === seq - 1) this.skip(c, own, ownFeed, rs, seq)
        else { c.rf.again = true; touched.add(own) }
      }
    }
    /** the deliver frame, encoded once for every member it goes to (kept for those a little behind) */
    let frame: Buffer | undefined
    const frameOf = (): Buffer => {
      if (frame === undefined) {
        frame = Buffer.from(encodeRoomDeliver(room, seq, envText))
        this.recent.add(room, seq, frame, sender, Date.now())
      }
      return frame
    }
    for (const amid of members) {
      const agent = this.host.agent(amid)
      if (agent === undefined || !agent.byCursor) continue
      const feed = agent.feeds.get(room)
      if (feed === undefined) { this.load(agent, room, seq); continue }
      if (seq > feed.lastSeq) feed.lastSeq = seq
      if (!feed.ready) continue
      for (const c of agent.conns) {
        if (!c.rf.on || !c.deliver || c.closed) continue
        const rs = this.sentOf(c, feed)
        if (!c.rf.pumping && rs.sent === seq - 1 && this.host.windowLeft(c) > 0) {
          if (c.rf.out === 0) c.lastProgress = Date.now()
          this.advance(c, rs, feed, seq)
          rs.frame = seq
          this.host.delivered()
          this.host.write(c, frameOf())
        } else {
          frameOf()
          c.rf.again = true
          touched.add(agent)
        }
      }
    }
  }

  /**
   * Rooms grew on another node, up to these seqs: connections here that read them pump. Members
   * connected here that joined since they authenticated (on another node, say) start reading it.
   */
  stored (rooms: ReadonlyArray<{ room: string, seq: number }>): void {
    for (const { room, seq } of rooms) {
      for (const agent of this.index.get(room) ?? []) {
        const feed = agent.feeds.get(room)
        if (feed === undefined || seq <= feed.lastSeq) continue
        feed.lastSeq = seq
        for (const c of agent.conns) void this.pump(c)
      }
      this.host.membersOf?.(room).then((members) => {
        for (const amid of members ?? []) {
          const agent = this.host.agent(amid)
          if (agent !== undefined && agent.byCursor && !agent.feeds.has(room)) this.load(agent, room, seq)
        }
      }, (err: unknown) => { this.host.log.error({ err, room }, 'could not read a room\'s members') })
    }
  }

  /** Sends what the connection has not been sent of its rooms, from the Store, within its window. */
  async pump (c: FeedConnection): Promise<void> {
    if (!c.rf.on || !c.deliver || c.closed) return
    if (c.rf.pumping) { c.rf.again = true; return }
    c.rf.pumping = true
    try {
      do {
        c.rf.again = false
        const agent = this.agentOf(c)
        if (agent === undefined) break
        for (const feed of [...agent.feeds.values()]) {
          if (c.closed || this.host.windowLeft(c) <= 0) break
          if (!feed.ready || agent.feeds.get(feed.room) !== feed) continue
          const rs = this.sentOf(c, feed)
          if (rs.sent >= feed.lastSeq) continue
          await this.pumpRoom(c, agent, feed, rs)
        }
      } while (c.rf.again && !c.closed)
    } catch (err) {
      this.host.log.error({ err, conn: c.id }, 'store read failed while delivering a room')
    } finally {
      c.rf.pumping = false
    }
  }

  /** The agent a connection belongs to, while it is one of its connections here. */
  private agentOf (c: FeedConnection): AgentFeeds | undefined {
    if (c.amid === undefined) return undefined
    const a = this.host.agent(c.amid)
    return a?.conns.has(c) === true ? a : undefined
  }

  private async pumpRoom (c: FeedConnection, agent: AgentFeeds, feed: Feed, rs: RoomSent): Promise<void> {
    if (rs.sent < feed.cursor) this.advance(c, rs, feed, feed.cursor)
    while (!c.closed && rs.sent < feed.lastSeq) {
      const left = this.host.windowLeft(c)
      if (left <= 0) return
      // just committed here: from memory
      const now = Date.now()
      let cached = this.recent.get(feed.room, rs.sent + 1, now)
      if (cached !== undefined) {
        if (rs.sent === feed.cursor && c.rf.out === 0) c.lastProgress = now
        while (cached !== undefined && this.host.windowLeft(c) > 0 && !c.closed) {
          if (cached.sender === agent.amid) {
            this.skip(c, agent, feed, rs, rs.sent + 1)
          } else {
            this.advance(c, rs, feed, rs.sent + 1)
            rs.frame = rs.sent
            this.host.delivered()
            this.host.write(c, cached.frame)
          }
          cached = rs.sent < feed.lastSeq ? this.recent.get(feed.room, rs.sent + 1, now) : undefined
        }
        continue
      }
      const limit = Math.min(left, READ_BATCH)
      const rows = await this.host.store.readHistory(feed.room, { after: rs.sent, limit })
      if (c.closed || agent.feeds.get(feed.room) !== feed) return
      if (rs.sent === feed.cursor && c.rf.out === 0) c.lastProgress = Date.now()
      let all = true
      for (const r of rows) {
        if (r.seq <= rs.sent) continue
        if (r.seq > feed.lastSeq) feed.lastSeq = r.seq
        // the rest are read again once the connection drained
        if (c.closed || this.host.windowLeft(c) <= 0) { all = false; break }
        // nothing to deliver: a deleted message, or the member's own
        if (r.deleted !== undefined || r.envelope === '' || r.sender === agent.amid) { this.skip(c, agent, feed, rs, r.seq); continue }
        this.advance(c, rs, feed, r.seq)
        rs.frame = r.seq
        this.host.delivered()
        this.host.write(c, encodeRoomDeliver(feed.room, r.seq, r.envelope))
      }
      // fewer than asked: nothing more is kept up to lastSeq (trimmed past the backlog bound or retention)
      if (all && rows.length < limit && rs.sent < feed.lastSeq) this.skip(c, agent, feed, rs, feed.lastSeq)
      if (!all) return
    }
  }

  /**
   * Passes over seqs with nothing to deliver (a deleted message, entries trimmed away). When the
   * agent acknowledged everything before them, its cursor moves over them too (nothing acked is
   * lost: there is nothing there); otherwise the ack of the frame before them covers them (onCursor).
   */
  private skip (c: FeedConnection, agent: AgentFeeds, feed: Feed, rs: RoomSent, seq: number): void {
    const caughtUp = rs.sent <= feed.cursor
    this.advance(c, rs, feed, seq)
    if (caughtUp) this.ack(agent, feed, seq)
  }

  /** A cursor frame with `room`: answers an error to send back, if any. */
  cursor (c: FeedConnection, agent: AgentFeeds, room: string, seq: number): AgentMeshError | undefined {
    const feed = agent.feeds.get(room)
    if (!c.rf.on) {
      return new AgentMeshError(ErrorCode.InvalidCursor, 'a cursor with "room" is for connections that declared the "room-cursor" feature in their auth frame')
    }
    if (feed === undefined || !feed.ready) {
      return new AgentMeshError(ErrorCode.InvalidCursor, `room ${room} is not one this agent reads by cursor (not a member, or not delivered here yet)`)
    }
    const rs = this.sentOf(c, feed)
    if (seq > rs.frame && seq > feed.cursor) {
      return new AgentMeshError(ErrorCode.InvalidCursor,
        `cursor ${seq} of room ${room} is beyond the last room seq delivered on this connection (${rs.frame})`)
    }
    // the ack of the last frame covers what was passed over after it (deleted, trimmed)
    const upTo = seq === rs.frame && rs.sent > rs.frame ? rs.sent : seq
    if (upTo <= feed.cursor) return undefined
    this.ack(agent, feed, upTo)
    const now = Date.now()
    for (const other of agent.conns) other.lastProgress = now
    this.host.progressed(agent)
    return undefined
  }

  /** A resume frame: deliveries of rooms start again after what the client says it processed. */
  resume (c: FeedConnection, agent: AgentFeeds, after: Record<string, number> | undefined): void {
    if (after !== undefined) c.rf.after = new Map(Object.entries(after))
    for (const [room, rs] of [...c.rf.rooms]) {
      const feed = agent.feeds.get(room)
      if (feed !== undefined) c.rf.out -= Math.max(0, rs.sent - feed.cursor)
      c.rf.rooms.delete(room)
    }
  }

  /** Nothing acknowledged for retransmitMs: what was sent and not acknowledged is sent again. Answers whether anything was. */
  rewind (c: FeedConnection, agent: AgentFeeds): boolean {
    if (c.rf.out <= 0) return false
    for (const [room, rs] of c.rf.rooms) {
      const feed = agent.feeds.get(room)
      if (feed !== undefined && rs.sent > feed.cursor) this.advance(c, rs, feed, feed.cursor)
    }
    return true
  }
}
