/**
 * The relay core: sessions (challenge/auth, heartbeats), routing and delivery.
 * It speaks to sockets only through the small `Peer` interface so tests and other
 * transports can drive it.
 *
 * Delivery (docs/protocol.md §5–6): a send is persisted before it is acked; sends that
 * arrive in one event-loop turn are committed in one Store transaction ("group commit");
 * every inbox has a monotonic seq; deliveries go out in seq order from memory right after
 * the commit, or from the Store when a receiver is behind; a receiver's cursor ack frees
 * the window and deletes what it acknowledged. A room message is stored once, in the room's
 * log; members whose client reads rooms by cursor get it from there (room-feeds.ts, §6.1).
 *
 * What is not delivery is not here: the core tells what happened as typed events ('agent:online',
 * 'message:stored'…) for features to act on, asks a RoomResolver where '#room' messages go, and
 * tells other relay nodes which inboxes grew when a shared Backplane is given.
 */
import { GateVerdicts, refusalNow, type SendGate } from './send-gates.ts'
import { randomBytes, type KeyObject } from 'node:crypto'
import {
  AgentMeshError, CloseCode, ErrorCode, PROTOCOL, closeCodeOf,
  FEATURE_ROOM_CURSOR, decodeClientFrame, encodeDeliver, encodeError, encodeFrame, isRelayType, stripUnsafeChars,
  type AuthFrame, type Envelope, type Limits, type SignalFrame,
} from '@agentmesh/protocol'
import { keyForAmid, verifyChallenge, verifyEnvelopeAsync } from '@agentmesh/crypto'
import type { AppendItem, AppendResult, AuditInput, CursorAck, MemberRecord, Store } from '@agentmesh/store'
import { AuthBatch } from './auth-batch.ts'
import type { RelayOptions } from './options.ts'
import type { Logger } from './log.ts'
import type { EventBus } from './events.ts'
import { LruSet } from '@agentmesh/protocol/internal'
import type { Backplane } from './backplane.ts'
import { ClusterLink, type CatchUpResult } from './relay-cluster.ts'
import type { SessionGrant, SessionVerifier } from './session-auth.ts'
import { RoomFeeds, connFeeds, type AgentFeeds, type ConnFeeds } from './room-feeds.ts'

/** The transport side of one connection. */
export interface Peer {
  send (text: string): void
  /**
   * Sends a text frame given as its UTF-8 bytes, which the same call may pass to many connections
   * (a room delivery is encoded once for all its members); optional: without it the bytes are
   * decoded and given to `send`. The bytes must not be changed.
   */
  sendShared? (utf8: Buffer): void
  close (code: number, reason: string): void
  /** Batch the writes of this turn into one system call (optional). */
  cork? (): void
  uncork? (): void
  /** Transport-level keepalive probe (optional). */
  ping? (): void
  /**
   * Bytes written to this connection that the network has not taken yet (ws's `bufferedAmount`):
   * what the relay holds for a reader that stopped reading. Optional: a peer without it is never
   * paused nor closed as a slow consumer.
   */
  buffered? (): number
}

/** What one catch-up found: agents read, inboxes and rooms that had grown unannounced, rooms left unannounced. */
export type { CatchUpResult } from './relay-cluster.ts'

/** What the relay core offers the features: posting its own items, events to connections. */
export interface RelayOutlet {
  /**
   * Commits an item the relay made (a room message or one inbox) like any send; resolves after the
   * commit. `members`: for a room message, the room's members (those reading it by cursor get it live).
   */
  post (item: AppendItem, audit?: AuditInput[], members?: readonly string[]): Promise<AppendResult>
  /** Writes a frame to every connection of these agents. */
  event (amids: Iterable<string>, frame: string): void
  /** Agents with an authenticated connection now. */
  online (): Iterable<string>
  /** A room's members changed (here or on another node): members that left stop receiving it. */
  membersChanged? (room: string): void
  /** What refuses a message post by this agent now (the features' send gates), if anything: REST posts ask it. */
  sendRefusal? (amid: string): AgentMeshError | undefined
  /**
   * Frames to write to each new connection of an agent right after its welcome, ahead of any
   * delivery of its backlog (open catastrophe alerts, §20); `frames` runs synchronously in the auth.
   * Answers the function that removes it.
   */
  greet? (frames: (amid: string) => readonly string[]): () => void
}

/**
 * Where a room message goes: `members`, the room's members but the sender (those reading the room
 * by cursor get it from its log, live when connected here); `fanout`, inboxes that get a copy
 * besides the room's 'inbox' members unless they read the room by cursor (the global room's
 * agents: only those reading by cursor have a membership row).
 */
export interface RoomAdmission { room: string, members?: readonly string[], fanout?: string[] }

/** Where a room message goes: the core asks the rooms feature (chat) for addresses starting with '#'. */
export interface RoomResolver {
  /**
   * May `sender` post `env` (addressed to "#room")? Answers the room and the inboxes it fans out
   * to, or the error to send back. `address` is the client's IP address (no port), for per-IP limits.
   */
  admitRoomMessage (sender: string, env: Envelope, address: string): Promise<RoomAdmission | AgentMeshError>
  /** A signal frame from an authenticated agent; answers an error to send back, if any. */
  signal (amid: string, f: SignalFrame, address: string): Promise<AgentMeshError | undefined>
  /** A watch frame (§17.4): whose presence changes the agent hears; answers an error to send back, if any. @default refused */
  watch? (amid: string, agents: readonly string[]): AgentMeshError | undefined
  /** A room's members (another node stored a message there); undefined for an unknown room or the global room. */
  roomMembers? (room: string): Promise<Iterable<string> | undefined>
  /**
   * The agent authenticates declaring `room-cursor`: the membership row to make before its delivery
   * is set to 'cursor' in the rooms every agent is in without joining (the global room), so that it
   * reads them by cursor too (a row it has is left as it is); undefined when it is known to have it.
   */
  cursorJoin? (amid: string): MemberRecord | undefined
  /** The row `cursorJoin` answered is stored. */
  cursorJoined? (amid: string): void
}

export type { SendGate, SendVerdict } from './send-gates.ts'

/** What the core is given (libp2p's `*Components`). */
export interface RelayCoreComponents {
  store: Store
  logger: Logger
  events: EventBus
  /** the '#room' addresses and signals */
  rooms: RoomResolver
  /** other relay nodes over the same Store. @default none: a single node has no one to tell */
  backplane?: Backplane
  /** checks auth frames signed with a session key (session-auth.ts). @default none: such frames are refused */
  sessions?: SessionVerifier
  /** the features' send gates (asked lazily: features are built after the core). @default none */
  sendGates?: () => readonly SendGate[]
}

/** What the core needs to know of the relay (validated options and identities). */
export interface RelayCoreInit {
  relayId: string
  /** the relay's own AMID, told in the welcome frame */
  relayAmid: string
  options: RelayOptions
  /** this node's name on the backplane (what it ignores when its own messages come back) */
  node: string
}

const MAX_AUTH_ATTEMPTS = 3
const READ_BATCH = 256
const MAX_KNOWN_AGENTS = 100_000

let nextConnId = 1

/**
 * An envelope's `ts` more than `skewMs` ahead of `now` (the relay's clock) is refused
 * (AM_ERR_INVALID_ENVELOPE); a `ts` in the past is accepted (messages are sent again after a while).
 */
export function tsTooFarAhead (ts: number, now: number, skewMs: number): AgentMeshError | undefined {
  if (ts <= now + skewMs) return undefined
  return new AgentMeshError(ErrorCode.InvalidEnvelope,
    `envelope ts ${ts} is more than ${skewMs} ms ahead of the relay's clock (${now}); check the sender's clock; nothing was stored`)
}

interface Conn {
  readonly id: number
  readonly peer: Peer
  /** "address:port", for the logs */
  readonly remote: string
  /** the client's IP address, for per-IP limits */
  readonly address: string
  nonce: string | undefined
  authAttempts: number
  authPending: boolean
  amid?: string
  key?: KeyObject
  /** authenticated with a session key: its certificate and key (envelopes carrying that certificate) */
  session?: SessionGrant
  sessionTimer?: NodeJS.Timeout
  deliver: boolean
  /** highest seq sent on this connection */
  sentUpTo: number
  inFlight: number
  /** sends waiting for an earlier one's async step (signature, recipient lookup) */
  chain: Promise<void> | undefined
  chainLength: number
  pumping: boolean
  pumpAgain: boolean
  lastProgress: number
  alive: boolean
  closed: boolean
  corked: boolean
  authTimer?: NodeJS.Timeout
  /** deliveries stopped because more than sendBufferBytes is queued: resumed on drain */
  paused: boolean
  /** error answers: tokens left in the bucket, when it was last filled, answers left out since it was last full */
  errTokens: number
  errAt: number
  errLeftOut: number
  /** closeWith is under way (its own error frame is not checked against the bounds again) */
  closing: boolean
  /** the rooms it reads by cursor (room-feeds.ts) */
  rf: ConnFeeds
  /** the software version its auth frame reported (§3) */
  agentVersion?: string
  /** its send gates' verdicts, kept until a gate's generation moves */
  gates: GateVerdicts
}

interface Inbox {
  conns: Set<Conn>
  cursor: number
  lastSeq: number
  /** auths of this agent waiting for the Store; the inbox is kept while any are */
  authing: number
  /** resolves once cursor and lastSeq were read from the Store */
  ready: Promise<void>
  /** the rooms it reads by cursor (room-feeds.ts); `rf.conns` is `conns` */
  rf: AgentFeeds
}

/** A send from a connection (acked on it), or an item the relay posts itself (`done` is told). */
interface PendingAppend {
  item: AppendItem
  conn?: Conn
  done?: { resolve: (r: AppendResult) => void, reject: (e: Error) => void }
  /** a room message or DM from a connection: told as 'message:stored' once stored */
  env?: Envelope
  /** a room message: the room's members but the sender (live deliveries to those reading by cursor) */
  members?: readonly string[]
}

/** A recipient check's answer: a DM's recipient is known (or not), or where a room message goes. */
type Admission = boolean | RoomAdmission | AgentMeshError

export interface RelayStats {
  connections: number
  agentsOnline: number
  received: number
  delivered: number
  duplicates: number
  rejected: number
  commits: number
  /** connections closed because they stopped reading (AM_ERR_SLOW_CONSUMER) */
  slowConsumers: number
  /** error answers not sent (rate-limited) */
  errorsLeftOut: number
  /** connections closed for a flood of refused frames (AM_ERR_TOO_MANY_ERRORS) */
  errorFloods: number
  /** times deliveries to a connection paused because too much was queued for it */
  pauses: number
  /** event frames not written to a connection over its soft bound */
  eventsDropped: number
  /** bytes queued for every connection now, not yet taken by the network */
  queuedBytes: number
  /** connections whose deliveries are paused now (over sendBufferBytes) */
  pausedConnections: number
}

export class RelayCore implements RelayOutlet {
  readonly limits: Limits
  private readonly conns = new Set<Conn>()
  private readonly inboxes = new Map<string, Inbox>()
  /** agents known to be registered (the rest are looked up in the Store) */
  private readonly known = new LruSet<string>(MAX_KNOWN_AGENTS)
  private pendingAppends: PendingAppend[] = []
  private pendingAcks = new Map<string, number>()
  private pendingAudit: AuditInput[] = []
  private flushScheduled = false
  private flushing: Promise<void> | undefined
  private readonly corkedConns: Conn[] = []
  private uncorkScheduled = false
  private shuttingDown = false
  private readonly timers: NodeJS.Timeout[] = []
  readonly counters = { received: 0, delivered: 0, duplicates: 0, rejected: 0, commits: 0, slowConsumers: 0, errorsLeftOut: 0, errorFloods: 0, pauses: 0, eventsDropped: 0 }

  private readonly store: Store
  private readonly relayId: string
  private readonly relayAmid: string
  private readonly opts: RelayOptions
  private readonly log: Logger
  private readonly events: EventBus
  private readonly rooms: RoomResolver
  /** the Store bookkeeping of the authentications of one turn, in one call (auth-batch.ts) */
  private readonly authBatch: AuthBatch
  private readonly backplane: Backplane | undefined
  private readonly sessions: SessionVerifier | undefined
  private readonly sendGates: () => readonly SendGate[]
  private readonly node: string
  private readonly unsubscribe: (() => void) | undefined
  private readonly offGap: (() => void) | undefined
  /** the other relay nodes over the same Store (relay-cluster.ts); none on a single node */
  private readonly cluster: ClusterLink<Inbox> | undefined
  /** rooms read by cursor: live deliveries, pumps, room cursors */
  private readonly feeds: RoomFeeds

  constructor (init: RelayCoreInit, components: RelayCoreComponents) {
    this.store = components.store
    this.backplane = components.backplane
    this.sessions = components.sessions
    this.sendGates = components.sendGates ?? (() => [])
    this.node = init.node
    this.log = components.logger
    this.events = components.events
    this.rooms = components.rooms
    this.authBatch = new AuthBatch(this.store)
    this.relayId = init.relayId
    this.relayAmid = init.relayAmid
    const opts = this.opts = init.options
    this.limits = {
      max_envelope_bytes: opts.maxEnvelopeBytes,
      max_in_flight: opts.maxInFlight,
      delivery_window: opts.deliveryWindow,
      heartbeat_ms: opts.heartbeatMs,
    }
    this.feeds = new RoomFeeds({
      store: this.store,
      log: this.log,
      agent: (amid) => this.inboxes.get(amid)?.rf,
      write: (c, text) => { this.write(c as Conn, text) },
      windowLeft: (c) => {
        const conn = c as Conn
        if (this.overSoft(conn)) return 0
        const box = conn.amid === undefined ? undefined : this.inboxes.get(conn.amid)
        return this.opts.deliveryWindow - (box === undefined ? 0 : conn.sentUpTo - box.cursor) - conn.rf.out
      },
      overSoft: (c) => this.overSoft(c as Conn),
      delivered: () => { this.counters.delivered++ },
      scheduleFlush: () => { this.scheduleFlush() },
      ...(this.rooms.roomMembers === undefined ? {} : { membersOf: async (room: string) => await this.rooms.roomMembers!(room) }),
      progressed: (agent) => {
        const box = this.inboxes.get(agent.amid)
        if (box === undefined) return
        for (const c of box.conns) {
          if (c.deliver && c.sentUpTo < box.lastSeq) void this.pump(c)
          void this.feeds.pump(c)
        }
      },
    })
    const backplane = this.backplane
    if (backplane !== undefined) {
      const cluster = this.cluster = new ClusterLink<Inbox>({
        node: this.node,
        store: this.store,
        feeds: this.feeds,
        log: this.log,
        inboxes: this.inboxes,
        wake: (box) => { for (const c of box.conns) if (c.deliver && !c.closed) void this.pump(c) },
        event: (amids, frame) => { this.event(amids, frame) },
        stopping: () => this.shuttingDown,
      }, backplane)
      this.unsubscribe = backplane.subscribe((m) => { cluster.receive(m) })
      // the bus only wakes: what it lost while away is read from the Store (here, and on a timer)
      this.offGap = backplane.onGap?.(() => { void cluster.catchUp() })
      this.timers.push(setInterval(() => { void cluster.catchUp() }, opts.backplaneCatchUpMs).unref())
    }
    this.timers.push(setInterval(() => { this.heartbeat() }, opts.heartbeatMs).unref())
    this.timers.push(setInterval(() => { this.retransmit() }, Math.max(50, Math.floor(opts.retransmitMs / 2))).unref())
  }

  get connectionCount (): number { return this.conns.size }

  stats (): RelayStats {
    let online = 0
    for (const box of this.inboxes.values()) if (box.conns.size > 0) online++
    let queuedBytes = 0
    let pausedConnections = 0
    for (const c of this.conns) {
      queuedBytes += this.queued(c)
      if (c.paused) pausedConnections++
    }
    return { connections: this.conns.size, agentsOnline: online, ...this.counters, queuedBytes, pausedConnections }
  }

  // ---------------------------------------------------------------- sessions

  /**
   * A new transport connection: sends the challenge. Returns the handlers the transport calls.
   * `remote` is the peer's socket address, given apart from its port so per-IP limits need not parse it.
   */
  open (peer: Peer, remote: { address: string, port?: number }): { message: (text: string) => void, binary: () => void, pong: () => void, close: () => void, drain: () => void } {
    const conn: Conn = {
      id: nextConnId++,
      peer,
      remote: remote.address.includes(':') ? `[${remote.address}]:${remote.port ?? '?'}` : `${remote.address}:${remote.port ?? '?'}`,
      address: remote.address,
      nonce: randomBytes(24).toString('base64url'),
      authAttempts: 0,
      authPending: false,
      deliver: true,
      sentUpTo: 0,
      inFlight: 0,
      chain: undefined,
      chainLength: 0,
      pumping: false,
      pumpAgain: false,
      lastProgress: Date.now(),
      alive: true,
      closed: false,
      corked: false,
      paused: false,
      errTokens: this.opts.errorBurst,
      errAt: Date.now(),
      errLeftOut: 0,
      closing: false,
      rf: connFeeds(false),
      gates: new GateVerdicts(),
    }
    this.conns.add(conn)
    if (this.shuttingDown) {
      this.closeWith(conn, new AgentMeshError(ErrorCode.ShuttingDown, 'the relay is shutting down; reconnect shortly'))
    } else {
      this.write(conn, encodeFrame({ op: 'challenge', v: PROTOCOL, nonce: conn.nonce!, relay: this.relayId }))
      conn.authTimer = setTimeout(() => {
        if (conn.amid === undefined) {
          this.closeWith(conn, new AgentMeshError(ErrorCode.AuthTimeout,
            `no valid auth frame within ${this.opts.authTimeoutMs} ms of the challenge`))
        }
      }, this.opts.authTimeoutMs)
      conn.authTimer.unref()
    }
    return {
      message: (text) => { conn.alive = true; this.onText(conn, text) },
      binary: () => {
        conn.alive = true
        this.sendError(conn, new AgentMeshError(ErrorCode.InvalidFrame, 'binary frames are not part of the protocol; send UTF-8 JSON text frames'))
      },
      pong: () => { conn.alive = true },
      close: () => { this.onClose(conn) },
      drain: () => { this.onDrain(conn) },
    }
  }

  private onText (conn: Conn, text: string): void {
    if (conn.closed) return
    const d = decodeClientFrame(text, this.opts.maxEnvelopeBytes)
    if (!d.ok) {
      this.counters.rejected++
      this.sendError(conn, d.error, d.id)
      return
    }
    const f = d.frame
    switch (f.op) {
      case 'ping':
        this.write(conn, encodeFrame(f.ts === undefined ? { op: 'pong' } : { op: 'pong', ts: f.ts }))
        return
      case 'auth':
        void this.onAuth(conn, f)
        return
      case 'send':
        if (conn.amid === undefined) {
          this.counters.rejected++
          this.sendError(conn, new AgentMeshError(ErrorCode.NotAuthenticated, 'authenticate (answer the challenge with an auth frame) before sending'), f.env.id)
          return
        }
        this.onSend(conn, f.env, 'envText' in d ? d.envText : JSON.stringify(f.env))
        return
      case 'cursor':
        if (conn.amid === undefined) { this.sendError(conn, new AgentMeshError(ErrorCode.NotAuthenticated, 'authenticate before acknowledging')); return }
        if (f.room === undefined) this.onCursor(conn, f.seq)
        else this.onRoomCursor(conn, f.room, f.seq)
        return
      case 'resume':
        if (conn.amid === undefined) { this.sendError(conn, new AgentMeshError(ErrorCode.NotAuthenticated, 'authenticate before resuming')); return }
        this.onResume(conn, f.after, f.rooms)
        return
      case 'signal':
        if (conn.amid === undefined) { this.sendError(conn, new AgentMeshError(ErrorCode.NotAuthenticated, 'authenticate before sending signals')); return }
        this.onSignal(conn, f)
        return
      case 'watch': {
        if (conn.amid === undefined) { this.sendError(conn, new AgentMeshError(ErrorCode.NotAuthenticated, 'authenticate before watching agents')); return }
        const err = this.rooms.watch === undefined
          ? new AgentMeshError(ErrorCode.UnknownFrame, 'this relay has no presence to watch')
          : this.rooms.watch(conn.amid, f.agents)
        if (err !== undefined) this.sendError(conn, err)
      }
    }
  }

  private onSignal (conn: Conn, f: SignalFrame): void {
    this.rooms.signal(conn.amid!, f, conn.address).then((err) => {
      if (err !== undefined) this.sendError(conn, err)
    }, (err) => {
      this.log.error({ err, conn: conn.id }, 'signal failed')
      this.sendError(conn, new AgentMeshError(ErrorCode.Internal, 'the relay could not handle this signal; try again'))
    })
  }

  // ---------------------------------------------------------------- the outlet (what features use)

  post (item: AppendItem, audit?: AuditInput[], members?: readonly string[]): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      if (this.shuttingDown) { reject(new AgentMeshError(ErrorCode.ShuttingDown, 'the relay is shutting down; try again shortly')); return }
      // a send's own row goes with the item (written only when it is stored), others after
      const [first, ...rest] = audit ?? []
      this.pendingAppends.push({ item: first === undefined ? item : { ...item, audit: first }, done: { resolve, reject }, ...(members === undefined ? {} : { members }) })
      if (rest.length > 0) this.pendingAudit.push(...rest)
      this.scheduleFlush()
    })
  }

  event (amids: Iterable<string>, frame: string): void {
    for (const a of amids) {
      const box = this.inboxes.get(a)
      if (box === undefined) continue
      for (const c of box.conns) {
        // events are live only (never stored): a connection that is not reading misses them
        if (this.overSoft(c)) { this.counters.eventsDropped++; continue }
        this.write(c, frame)
      }
    }
  }

  online (): string[] {
    return [...this.inboxes].filter(([, b]) => b.conns.size > 0).map(([a]) => a)
  }

  membersChanged (room: string): void { this.feeds.membersChanged(room) }

  /** What refuses a REST message post by `amid` now (its send gates, by its last reported version), if anything. */
  sendRefusal (amid: string): AgentMeshError | undefined { return refusalNow(this.sendGates(), amid) }

  /** What features write to a connection right after its welcome, before its backlog (RelayOutlet.greet). */
  private readonly greeters = new Set<(amid: string) => readonly string[]>()
  greet (frames: (amid: string) => readonly string[]): () => void {
    this.greeters.add(frames)
    return () => { this.greeters.delete(frames) }
  }

  private async onAuth (conn: Conn, f: AuthFrame): Promise<void> {
    if (conn.amid !== undefined || conn.authPending) {
      this.sendError(conn, new AgentMeshError(ErrorCode.AlreadyAuthenticated,
        conn.amid !== undefined ? `this connection is already authenticated as ${conn.amid}` : 'this connection is already authenticating'))
      return
    }
    const fail = (err: AgentMeshError): void => {
      conn.authAttempts++
      this.log.info({ conn: conn.id, remote: conn.remote, code: err.code }, 'auth refused')
      if (conn.authAttempts >= MAX_AUTH_ATTEMPTS) {
        this.closeWith(conn, new AgentMeshError(err.code, `${err.message} (${MAX_AUTH_ATTEMPTS} failed attempts: closing)`), CloseCode.AuthFailed)
      } else {
        this.sendError(conn, err)
      }
    }
    if (conn.nonce === undefined || f.nonce !== conn.nonce) {
      fail(new AgentMeshError(ErrorCode.AuthReplayed,
        'the auth frame answers a challenge this connection was not given (replayed or stale); sign the nonce of this connection\'s challenge'))
      return
    }
    let session: SessionGrant | undefined
    if (f.session_cert !== undefined || f.session_chain !== undefined) {
      // signed with a session key (§3): the certificate, its chain and the signature, off the default path
      conn.authPending = true
      try {
        session = await this.verifySession(f)
      } catch (err) {
        conn.authPending = false
        if (conn.closed) return
        if (!AgentMeshError.is(err)) this.log.error({ err, conn: conn.id }, 'session check failed')
        fail(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, 'the relay could not check the session certificate; try again'))
        return
      }
      conn.authPending = false
      if (conn.closed) return
    } else if (!verifyChallenge(f.amid, f.nonce, this.relayId, f.sig)) {
      fail(new AgentMeshError(ErrorCode.AuthFailed, 'the challenge signature does not verify for this AMID'))
      return
    }
    const amid = f.amid
    conn.nonce = undefined // a challenge is answered once
    let box = this.inboxes.get(amid)
    if (box !== undefined && box.conns.size >= this.opts.maxConnectionsPerAgent) {
      this.closeWith(conn, new AgentMeshError(ErrorCode.TooManyConnections,
        `agent ${amid} already has ${box.conns.size} connections (limit ${this.opts.maxConnectionsPerAgent})`))
      return
    }
    // the inbox exists (and counts this auth) before the Store is awaited, so a message committed
    // meanwhile moves its lastSeq: the snapshot read below can only raise it
    if (box === undefined) {
      const conns = new Set<Conn>()
      const created: Inbox = { conns, cursor: 0, lastSeq: 0, authing: 0, ready: Promise.resolve(), rf: { amid, byCursor: false, feeds: new Map(), conns } }
      created.ready = this.store.inbox(amid).then((st) => {
        created.cursor = Math.max(created.cursor, st.cursor)
        created.lastSeq = Math.max(created.lastSeq, st.lastSeq)
      })
      this.inboxes.set(amid, created)
      box = created
    }
    box.authing++
    conn.authPending = true
    // rooms read by cursor (§6.1) when the client says it understands them; else room messages are copied to its inbox
    const byCursor = f.features?.includes(FEATURE_ROOM_CURSOR) === true
    try {
      // a display name keeps no bidi control or invisible character (they disguise it)
      const name = f.name === undefined ? undefined : stripUnsafeChars(f.name)
      const join = byCursor ? this.rooms.cursorJoin?.(amid) : undefined
      const { feeds } = await this.authBatch.add({
        amid, ...(name === undefined || name === '' ? {} : { name }), seenAt: Date.now(), delivery: byCursor ? 'cursor' : 'inbox', ...(join === undefined ? {} : { join }),
      })
      if (join !== undefined) this.rooms.cursorJoined?.(amid)
      this.rememberAgent(amid)
      await box.ready
      if (!byCursor) {
        // what a switch to 'inbox' copied into the inbox is delivered now
        const st = await this.store.inbox(amid)
        box.lastSeq = Math.max(box.lastSeq, st.lastSeq)
      }
      this.feeds.authenticated(box.rf, byCursor, feeds)
    } catch (err) {
      box.authing--
      conn.authPending = false
      this.dropIfIdle(amid, box)
      this.log.error({ err, conn: conn.id }, 'store failed during auth')
      this.closeWith(conn, new AgentMeshError(ErrorCode.Internal, 'the relay could not register this agent; try again'))
      return
    }
    box.authing--
    conn.authPending = false
    if (conn.closed) { this.dropIfIdle(amid, box); return }
    // checked again: other auths of this agent may have completed while the Store was awaited
    if (box.conns.size >= this.opts.maxConnectionsPerAgent) {
      this.closeWith(conn, new AgentMeshError(ErrorCode.TooManyConnections,
        `agent ${amid} already has ${box.conns.size} connections (limit ${this.opts.maxConnectionsPerAgent})`))
      return
    }
    clearTimeout(conn.authTimer)
    conn.amid = amid
    conn.key = keyForAmid(amid)
    if (session !== undefined) this.startSession(conn, session)
    conn.deliver = f.deliver !== false
    conn.sentUpTo = Math.min(Math.max(f.after ?? 0, box.cursor), box.lastSeq)
    conn.rf = connFeeds(byCursor, f.rooms)
    if (f.agent_version !== undefined) conn.agentVersion = f.agent_version
    conn.lastProgress = Date.now()
    box.conns.add(conn)
    this.log.debug({ conn: conn.id, amid, remote: conn.remote }, 'agent authenticated')
    this.write(conn, encodeFrame({
      op: 'welcome', amid, relay: this.relayId, cursor: box.cursor, limits: this.limits, relay_amid: this.relayAmid, last_seq: box.lastSeq,
      ...(byCursor ? { rooms: this.feeds.cursors(box.rf) } : {}),
      ...(session === undefined ? {} : { session: { serial: session.serial, expires_at: session.expiresAt, tier: session.tier, ...(session.organisation === undefined ? {} : { organisation: session.organisation }) } }),
    }))
    this.events.emit('agent:authenticated', f.agent_version === undefined ? { amid } : { amid, agentVersion: f.agent_version })
    // greetings (open catastrophe alerts) go before any delivery: written now, ahead of the pumps below
    for (const g of this.greeters) {
      try { for (const frame of g(amid)) this.write(conn, frame) } catch (err) { this.log.error({ err, conn: conn.id }, 'greeting failed') }
    }
    this.events.emit(box.conns.size === 1 ? 'agent:online' : 'agent:active', { amid })
    if (conn.deliver) { void this.pump(conn); void this.feeds.pump(conn) }
  }

  private async verifySession (f: AuthFrame): Promise<SessionGrant> {
    if (f.session_cert === undefined) throw new AgentMeshError(ErrorCode.InvalidFrame, 'an auth frame with session_chain needs the session certificate (session_cert) it belongs to')
    if (this.sessions === undefined) throw new AgentMeshError(ErrorCode.AuthFailed, 'this relay does not accept session certificates; authenticate with the identity key')
    return await this.sessions.verify({ ...f, session_cert: f.session_cert }, this.relayId, Date.now())
  }

  /** A session connection ends when its certificate expires (the timer is capped at what setTimeout takes). */
  private startSession (conn: Conn, session: SessionGrant): void {
    conn.session = session
    const check = (): void => {
      const left = session.expiresAt - Date.now()
      if (left > 0) {
        conn.sessionTimer = setTimeout(check, Math.min(left + 1, 2 ** 31 - 1))
        conn.sessionTimer.unref()
        return
      }
      this.closeWith(conn, new AgentMeshError(ErrorCode.CertExpired,
        `the session certificate of this connection expired at ${new Date(session.expiresAt).toISOString()}; issue a new one (\`agentmesh cert session\`) and connect again`), CloseCode.AuthFailed)
    }
    check()
  }

  /** An envelope carrying a session certificate: allowed on the connection that presented it, while it is valid. */
  private sessionRefusal (conn: Conn, cert: string): AgentMeshError | undefined {
    const s = conn.session
    if (s === undefined) {
      return new AgentMeshError(ErrorCode.CertInvalid, 'the envelope carries a session certificate, but this connection did not authenticate with one; send it on the connection whose auth presented it')
    }
    if (s.cert !== cert) {
      return new AgentMeshError(ErrorCode.CertInvalid, 'the envelope carries another session certificate than the one this connection authenticated with')
    }
    if (Date.now() > s.expiresAt) {
      return new AgentMeshError(ErrorCode.CertExpired, `the session certificate expired at ${new Date(s.expiresAt).toISOString()}; nothing was stored`)
    }
    return undefined
  }

  /** Forgets the in-memory inbox of an agent with no connection, no auth under way and no ack to commit. */
  private dropIfIdle (amid: string, box: Inbox): void {
    if (box.conns.size === 0 && box.authing === 0 && !this.pendingAcks.has(amid) && !this.feeds.acking(amid) && this.inboxes.get(amid) === box) {
      this.inboxes.delete(amid)
      this.feeds.forget(box.rf)
    }
  }

  private rememberAgent (amid: string): void {
    this.known.add(amid)
  }

  // ---------------------------------------------------------------- sends

  private onSend (conn: Conn, env: Envelope, envText: string): void {
    this.counters.received++
    if (env.from !== conn.amid) {
      this.reject(conn, new AgentMeshError(ErrorCode.SenderMismatch,
        `envelope "from" is ${env.from} but this connection is authenticated as ${conn.amid}`), env.id)
      return
    }
    if (this.shuttingDown) {
      this.reject(conn, new AgentMeshError(ErrorCode.ShuttingDown, 'the relay is shutting down; send again after reconnecting'), env.id)
      return
    }
    if (conn.inFlight >= this.opts.maxInFlight) {
      this.reject(conn, new AgentMeshError(ErrorCode.TooManyInFlight,
        `more than ${this.opts.maxInFlight} sends awaiting their ack on this connection; wait for acks before sending more`), env.id)
      return
    }
    if (env.via !== undefined) {
      this.reject(conn, new AgentMeshError(ErrorCode.InvalidEnvelope, '"via" is set by a relay on envelopes it attests (REST posts); an agent never sends it'), env.id)
      return
    }
    if (isRelayType(env.type)) {
      this.reject(conn, new AgentMeshError(ErrorCode.ReservedType, `type "${env.type}" is posted by the relay only (task.*, notice, relay.*, system.*); nothing was stored`), env.id)
      return
    }
    const ahead = tsTooFarAhead(env.ts, Date.now(), this.opts.maxClockSkewMs)
    if (ahead !== undefined) { this.reject(conn, ahead, env.id); return }
    if (env.session_cert !== undefined) {
      const refusal = this.sessionRefusal(conn, env.session_cert)
      if (refusal !== undefined) { this.reject(conn, refusal, env.id); return }
    }
    const gated = conn.gates.refusal(this.sendGates(), conn.amid!, conn.agentVersion)
    if (gated !== undefined) { this.reject(conn, gated, env.id); return }
    conn.inFlight++
    const receivedAt = Date.now()
    this.events.emit('agent:active', { amid: conn.amid! })
    const toRoom = env.to.charCodeAt(0) === 35 // '#'
    // fast path: nothing async needed and nothing queued ahead of this send
    // an unsigned envelope (agentmesh/0.3 e2ee, the only kind the codec lets through) has no signature to check
    const verify = this.opts.verifySignatures && env.sig !== undefined
    if (!toRoom && !verify && conn.chainLength === 0 && this.known.has(env.to)) {
      this.admit(conn, env, envText, receivedAt, true, true)
      return
    }
    const checks = Promise.all([
      verify ? verifyEnvelopeAsync(env, env.session_cert === undefined ? conn.key : conn.session!.key) : true,
      toRoom ? this.rooms.admitRoomMessage(env.from, env, conn.address) : this.known.has(env.to) ? true : this.lookupAgent(env.to),
    ])
    conn.chainLength++
    const prev = conn.chain ?? Promise.resolve()
    const next = prev.then(async () => {
      let sigOk = false
      let recipientOk: Admission = false
      try {
        [sigOk, recipientOk] = await checks
      } catch (err) {
        this.log.error({ err, conn: conn.id }, 'check failed')
      }
      conn.chainLength--
      if (conn.chainLength === 0) conn.chain = undefined
      this.admit(conn, env, envText, receivedAt, sigOk, recipientOk)
    })
    conn.chain = next
  }

  private async lookupAgent (amid: string): Promise<boolean> {
    const a = await this.store.getAgent(amid)
    if (a !== undefined) this.rememberAgent(amid)
    return a !== undefined
  }

  private admit (conn: Conn, env: Envelope, envText: string, receivedAt: number, sigOk: boolean, recipientOk: Admission): void {
    if (conn.closed) { conn.inFlight--; return }
    if (!sigOk) {
      conn.inFlight--
      this.reject(conn, new AgentMeshError(ErrorCode.BadSignature, 'envelope signature does not verify with the sender\'s key; nothing was stored'), env.id)
      return
    }
    if (recipientOk instanceof AgentMeshError) {
      conn.inFlight--
      this.reject(conn, recipientOk, env.id)
      return
    }
    if (recipientOk === false) {
      conn.inFlight--
      this.reject(conn, new AgentMeshError(ErrorCode.UnknownRecipient,
        `no agent ${env.to} is registered on this relay; it registers by connecting once`), env.id)
      return
    }
    const item: AppendItem = recipientOk === true
      ? { sender: env.from, id: env.id, recipient: env.to, envelope: envText, receivedAt }
      : { sender: env.from, id: env.id, recipient: env.to, envelope: envText, receivedAt, room: recipientOk.room, ...(recipientOk.fanout === undefined ? {} : { fanout: recipientOk.fanout }) }
    item.batchAudit = { actor: this.relayAmid, type: env.type, bytes: envText.length, at: Date.now() }
    this.pendingAppends.push(recipientOk === true || recipientOk.members === undefined ? { item, conn, env } : { item, conn, env, members: recipientOk.members })
    this.scheduleFlush()
  }

  private reject (conn: Conn, err: AgentMeshError, id: string): void {
    this.counters.rejected++
    this.sendError(conn, err, id)
  }

  // ---------------------------------------------------------------- group commit

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => { this.flushScheduled = false; void this.flush() })
  }

  /** Commits everything pending in one transaction; one commit at a time. */
  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    if (this.pendingAppends.length === 0 && this.pendingAcks.size === 0 && this.pendingAudit.length === 0 && !this.feeds.acksPending) return
    const appends = this.pendingAppends
    const acks: CursorAck[] = [...this.pendingAcks].map(([recipient, seq]) => ({ recipient, seq }))
    acks.push(...this.feeds.takeAcks())
    const audit = this.pendingAudit
    this.pendingAppends = []
    this.pendingAcks = new Map()
    this.pendingAudit = []
    const run = this.commit(appends, acks, audit)
    this.flushing = run
    try { await run } finally { this.flushing = undefined }
    if (this.pendingAppends.length > 0 || this.pendingAcks.size > 0 || this.pendingAudit.length > 0 || this.feeds.acksPending) this.scheduleFlush()
  }

  private async commit (appends: PendingAppend[], acks: CursorAck[], audit: AuditInput[]): Promise<void> {
    let results
    // timed only while the metrics listen: a performance.now() pair and one emit per commit, not per message
    const timed = this.events.listening('store:committed')
    const t0 = timed ? performance.now() : 0
    try {
      results = await this.store.commit(appends.map(a => a.item), acks, audit)
      this.counters.commits++
      if (timed) this.events.emit('store:committed', { seconds: (performance.now() - t0) / 1000, items: appends.length, acks: acks.length })
    } catch (err) {
      // a coded refusal by the store (read-only mode, §20; a database that is gone) goes to the senders as it is: nothing is acknowledged
      // (the database's address stays in the log, not in what agents are told)
      const refused = AgentMeshError.is(err, ErrorCode.ReadOnly) ? err
        : AgentMeshError.is(err, ErrorCode.StoreUnavailable) ? new AgentMeshError(ErrorCode.StoreUnavailable, 'the relay\'s database is unavailable and nothing was stored; send it again')
          : undefined
      if (refused === undefined) this.log.error({ err, appends: appends.length }, 'store commit failed')
      else if (refused.code === ErrorCode.StoreUnavailable) this.log.warn({ appends: appends.length, code: refused.code, reason: (err as Error).message }, 'store unavailable: commit refused')
      else this.log.info({ appends: appends.length, code: refused.code }, 'store refused the commit')
      for (const a of appends) {
        if (a.conn !== undefined) {
          a.conn.inFlight--
          this.sendError(a.conn, refused ?? new AgentMeshError(ErrorCode.Internal, 'the relay could not store this envelope; send it again'), a.item.id)
        }
        a.done?.reject(refused ?? new AgentMeshError(ErrorCode.Internal, 'the relay could not store this message; try again', { cause: err }))
      }
      // the cursor acks of a refused commit still count (a read-only relay keeps delivering): on their own
      if (refused !== undefined && refused.code !== ErrorCode.StoreUnavailable && acks.length > 0) {
        try { await this.store.commit([], acks, []) } catch (e) { this.log.warn({ err: e, acks: acks.length }, 'store refused the cursor acks') }
      }
      return
    }
    const touched = new Set<Inbox>()
    const touchedFeeds = new Set<AgentFeeds>()
    const stored = this.events.listening('message:stored')
    const live = (recipient: string, seq: number, envText: string): void => {
      const box = this.inboxes.get(recipient)
      if (box === undefined) return
      box.lastSeq = Math.max(box.lastSeq, seq)
      this.deliverLive(box, seq, envText)
      touched.add(box)
    }
    for (let i = 0; i < appends.length; i++) {
      const { item, conn, done, env, members } = appends[i]!
      const r = results[i]!
      if (conn !== undefined) conn.inFlight--
      done?.resolve(r)
      if (r.status === 'stored') {
        if (conn !== undefined) this.write(conn, '{"op":"ack","id":' + JSON.stringify(item.id) + '}')
        if (r.deliveries !== undefined) {
          for (const d of r.deliveries) live(d.recipient, d.seq, item.envelope)
        } else if (item.room === undefined) {
          live(item.recipient, r.seq, item.envelope)
        }
        if (item.room !== undefined && members !== undefined) this.feeds.committed(item.room, r.seq, item.envelope, members, touchedFeeds, item.sender)
        if (env !== undefined && stored) this.events.emit('message:stored', item.room === undefined ? { env, seq: r.seq, via: 'ws' } : { env, seq: r.seq, room: item.room, via: 'ws' })
      } else if (r.status === 'duplicate') {
        this.counters.duplicates++
        if (conn !== undefined) this.write(conn, '{"op":"ack","id":' + JSON.stringify(item.id) + ',"duplicate":true}')
      } else if (conn !== undefined) {
        this.reject(conn, new AgentMeshError(ErrorCode.InboxFull,
          `the inbox of ${item.recipient} holds ${this.opts.maxInbox} undelivered messages; try again later`), item.id)
      }
    }
    for (const box of touched) for (const c of box.conns) if (c.pumpAgain) void this.pump(c)
    for (const agent of touchedFeeds) for (const c of agent.conns) if (c.rf.again) void this.feeds.pump(c)
    this.cluster?.tell(appends, results)
    // inboxes of agents that went offline are kept until their last cursor ack is durable
    for (const a of acks) {
      const box = this.inboxes.get(a.recipient)
      if (box !== undefined) this.dropIfIdle(a.recipient, box)
    }
  }

  // ---------------------------------------------------------------- other nodes

  /** Tells other nodes which inboxes and rooms grew, so their connections of those agents pump them. */
  /** Reads the Store again for what the bus may have lost (relay-cluster.ts); nothing to do on a single node. */
  async catchUp (): Promise<CatchUpResult> {
    return await (this.cluster?.catchUp() ?? Promise.resolve({ agents: 0, inboxes: 0, rooms: 0, roomsLeft: 0 }))
  }

  // ---------------------------------------------------------------- delivery

  /** Room for one more delivery: what is out (of the inbox and of rooms read by cursor) is below the window. */
  private windowOpen (conn: Conn, box: Inbox): boolean {
    return conn.sentUpTo - box.cursor + conn.rf.out < this.opts.deliveryWindow && !this.overSoft(conn)
  }

  /** Bytes queued for the connection and not yet taken by the network. */
  private queued (conn: Conn): number {
    return conn.peer.buffered?.() ?? 0
  }

  /** More than sendBufferBytes queued: deliveries pause (they stay in the Store) until it drains. */
  private overSoft (conn: Conn): boolean {
    if (this.queued(conn) <= this.opts.sendBufferBytes) return false
    if (!conn.paused) { conn.paused = true; this.counters.pauses++ }
    return true
  }

  /** The transport took what was queued: deliveries that paused go on. */
  private onDrain (conn: Conn): void {
    if (!conn.paused || conn.closed || this.overSoft(conn)) return
    conn.paused = false
    if (conn.deliver && conn.amid !== undefined) { void this.pump(conn); void this.feeds.pump(conn) }
  }

  /** Sends a just-committed message to receivers that are exactly caught up; others pump from the Store. */
  private deliverLive (box: Inbox, seq: number, envText: string): void {
    for (const c of box.conns) {
      if (!c.deliver || c.closed) continue
      if (!c.pumping && c.sentUpTo === seq - 1 && this.windowOpen(c, box)) {
        if (c.sentUpTo === box.cursor && c.rf.out === 0) c.lastProgress = Date.now()
        c.sentUpTo = seq
        this.counters.delivered++
        this.write(c, encodeDeliver(seq, envText))
      } else {
        c.pumpAgain = true
      }
    }
  }

  /** Sends stored messages after conn.sentUpTo, within the window. */
  private async pump (conn: Conn): Promise<void> {
    if (conn.pumping) { conn.pumpAgain = true; return }
    const amid = conn.amid
    if (amid === undefined || !conn.deliver) return
    const box = this.inboxes.get(amid)
    if (box === undefined) return
    conn.pumping = true
    try {
      do {
        conn.pumpAgain = false
        while (!conn.closed && conn.sentUpTo < box.lastSeq && this.windowOpen(conn, box)) {
          const room = this.opts.deliveryWindow - (conn.sentUpTo - box.cursor)
          const rows = await this.store.read(amid, Math.max(conn.sentUpTo, box.cursor), Math.min(room, READ_BATCH))
          if (conn.closed) break
          if (rows.length === 0) {
            // acknowledged or expired meanwhile: nothing left below lastSeq
            conn.sentUpTo = Math.max(conn.sentUpTo, box.lastSeq)
            break
          }
          if (conn.sentUpTo === box.cursor && conn.rf.out === 0) conn.lastProgress = Date.now()
          for (const r of rows) {
            if (r.seq <= conn.sentUpTo) continue
            // the rest are read again once the connection drained (or room deliveries took the window meanwhile)
            if (conn.closed || !this.windowOpen(conn, box)) break
            conn.sentUpTo = r.seq
            this.counters.delivered++
            this.write(conn, encodeDeliver(r.seq, r.envelope))
          }
        }
      } while (conn.pumpAgain && !conn.closed)
    } catch (err) {
      this.log.error({ err, conn: conn.id }, 'store read failed while delivering')
    } finally {
      conn.pumping = false
    }
  }

  private onCursor (conn: Conn, seq: number): void {
    const box = this.inboxes.get(conn.amid!)!
    if (seq > conn.sentUpTo && seq > box.cursor) {
      this.sendError(conn, new AgentMeshError(ErrorCode.InvalidCursor,
        `cursor ${seq} is beyond the last seq delivered on this connection (${conn.sentUpTo})`))
      return
    }
    if (seq <= box.cursor) return
    box.cursor = seq
    conn.lastProgress = Date.now()
    for (const c of box.conns) if (c !== conn) c.lastProgress = conn.lastProgress
    this.pendingAcks.set(conn.amid!, seq)
    this.scheduleFlush()
    for (const c of box.conns) {
      if (c.deliver && c.sentUpTo < box.lastSeq) void this.pump(c)
      if (c.rf.again || c.rf.out > 0) void this.feeds.pump(c)
    }
  }

  /** A cursor frame with `room` (§6.1): the agent processed that room's log up to `seq`. */
  private onRoomCursor (conn: Conn, room: string, seq: number): void {
    const box = this.inboxes.get(conn.amid!)!
    const err = this.feeds.cursor(conn, box.rf, room, seq)
    if (err !== undefined) this.sendError(conn, err)
  }

  private onResume (conn: Conn, after: number, rooms?: Record<string, number>): void {
    const box = this.inboxes.get(conn.amid!)!
    conn.deliver = true
    conn.sentUpTo = Math.min(Math.max(after, box.cursor), box.lastSeq)
    this.feeds.resume(conn, box.rf, rooms)
    conn.lastProgress = Date.now()
    void this.pump(conn)
    void this.feeds.pump(conn)
  }

  /** Sends again what a receiver has not acknowledged for retransmitMs. */
  private retransmit (): void {
    const now = Date.now()
    for (const [, box] of this.inboxes) {
      for (const c of box.conns) {
        // a paused connection has not even read what was sent: nothing to send again (a drain the
        // transport did not report is picked up here)
        if (c.paused) { this.onDrain(c); continue }
        if (c.closed || !c.deliver || (c.sentUpTo <= box.cursor && c.rf.out <= 0)) continue
        if (now - c.lastProgress < this.opts.retransmitMs) continue
        this.log.debug({ conn: c.id, from: box.cursor + 1, to: c.sentUpTo, rooms: c.rf.out }, 'retransmitting unacknowledged deliveries')
        c.sentUpTo = Math.min(c.sentUpTo, box.cursor)
        this.feeds.rewind(c, box.rf)
        c.lastProgress = now
        void this.pump(c)
        void this.feeds.pump(c)
      }
    }
  }

  private heartbeat (): void {
    for (const c of this.conns) {
      if (!c.alive) {
        this.closeWith(c, new AgentMeshError(ErrorCode.HeartbeatTimeout, `no traffic or pong for ${this.opts.heartbeatMs} ms`))
        continue
      }
      c.alive = false
      c.peer.ping?.()
    }
  }

  // ---------------------------------------------------------------- output

  private write (conn: Conn, text: string | Buffer): void {
    if (conn.closed) return
    if (!conn.corked && conn.peer.cork !== undefined) {
      conn.corked = true
      conn.peer.cork()
      this.corkedConns.push(conn)
      if (!this.uncorkScheduled) {
        this.uncorkScheduled = true
        setImmediate(() => { this.uncorkAll() })
      }
    }
    if (typeof text === 'string') conn.peer.send(text)
    else if (conn.peer.sendShared !== undefined) conn.peer.sendShared(text)
    else conn.peer.send(text.toString('utf8'))
    if (conn.closing || conn.peer.buffered === undefined) return
    const queued = conn.peer.buffered()
    if (queued > this.opts.sendBufferMaxBytes) {
      // a reader that stopped reading: what it holds is given back by closing it (its inbox keeps the deliveries)
      this.counters.slowConsumers++
      this.log.warn({ conn: conn.id, amid: conn.amid, remote: conn.remote, queued, limit: this.opts.sendBufferMaxBytes }, 'slow consumer: closing the connection')
      this.closeWith(conn, new AgentMeshError(ErrorCode.SlowConsumer,
        `more than ${this.opts.sendBufferMaxBytes} bytes were queued for this connection without being read; read faster, then reconnect (undelivered messages wait in the inbox)`))
    }
  }

  private uncorkAll (): void {
    this.uncorkScheduled = false
    const list = this.corkedConns.splice(0)
    for (const c of list) { c.corked = false; if (!c.closed) c.peer.uncork?.() }
  }

  /**
   * Answers a refused frame, within the connection's error bucket (errorBurst, errorsPerMinute):
   * past it the answer is left out, and after errorFloodClose left out without the bucket filling
   * up again in between, the connection is closed (AM_ERR_TOO_MANY_ERRORS).
   */
  private sendError (conn: Conn, err: AgentMeshError, id?: string): void {
    if (conn.closed) return
    if (this.events.listening('error:answered')) this.events.emit('error:answered', { code: err.code, via: 'ws' })
    const now = Date.now()
    const burst = this.opts.errorBurst
    conn.errTokens = Math.min(burst, conn.errTokens + (now - conn.errAt) * this.opts.errorsPerMinute / 60_000)
    conn.errAt = now
    if (conn.errTokens >= burst) conn.errLeftOut = 0
    if (conn.errTokens >= 1) {
      conn.errTokens--
      this.write(conn, encodeError(err, id))
      return
    }
    conn.errLeftOut++
    this.counters.errorsLeftOut++
    if (conn.errLeftOut >= this.opts.errorFloodClose) {
      this.counters.errorFloods++
      this.log.warn({ conn: conn.id, amid: conn.amid, remote: conn.remote, leftOut: conn.errLeftOut }, 'error flood: closing the connection')
      this.closeWith(conn, new AgentMeshError(ErrorCode.TooManyErrors,
        `${conn.errLeftOut} refused frames went unanswered past the error rate limit (${this.opts.errorsPerMinute} a minute, bursts of ${burst}); fix the frames before reconnecting`))
    }
  }

  /**
   * Sends `err` and closes with the close code the error registry pairs with its code
   * (`closeCodeOf`), so a close frame and docs/errors.md cannot disagree. A code without one is a
   * bug in the caller: the connection still closes, as 1011.
   */
  private closeWith (conn: Conn, err: AgentMeshError, closeCode = closeCodeOf(err.code)): void {
    if (conn.closed) return
    if (closeCode === undefined) this.log.error({ conn: conn.id, code: err.code }, 'closing with an error code that has no close code')
    if (this.events.listening('error:answered')) this.events.emit('error:answered', { code: err.code, via: 'ws' })
    // the last word is always sent (not counted against the error bucket)
    conn.closing = true
    this.write(conn, encodeError(err))
    if (conn.corked) { conn.corked = false; conn.peer.uncork?.() }
    conn.peer.close(closeCode ?? CloseCode.InternalError, err.code)
    this.onClose(conn)
  }

  private onClose (conn: Conn): void {
    if (conn.closed) return
    conn.closed = true
    clearTimeout(conn.authTimer)
    if (conn.sessionTimer !== undefined) clearTimeout(conn.sessionTimer)
    this.conns.delete(conn)
    if (conn.amid !== undefined) {
      const box = this.inboxes.get(conn.amid)
      if (box !== undefined) {
        box.conns.delete(conn)
        if (box.conns.size === 0) this.events.emit('agent:offline', { amid: conn.amid })
        this.dropIfIdle(conn.amid, box)
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Refuses new work, commits what is pending and closes every connection with 1001. */
  async shutdown (): Promise<void> {
    this.shuttingDown = true
    for (const t of this.timers) clearInterval(t)
    this.unsubscribe?.()
    this.offGap?.()
    // sends already read may still be in their checks (signature, recipient lookup); they are
    // pending work too: let them reach the commit queue (new sends are refused from here on)
    await Promise.allSettled([...this.conns].map(c => c.chain))
    await this.flush()
    await this.flush()
    for (const c of [...this.conns]) {
      this.closeWith(c, new AgentMeshError(ErrorCode.ShuttingDown, 'the relay is shutting down; reconnect shortly'))
    }
  }
}
