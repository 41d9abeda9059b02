/**
 * A connection to a relay that survives the relay: it reconnects with jittered backoff,
 * resends its outbox (same ids, same bytes), resumes deliveries from its cursor, and hands
 * each message to the application once.
 */
import { v7 as uuidv7 } from 'uuid'
import {
  AgentMeshError, ErrorCode, FEATURE_ROOM_CURSOR, isRelayType, HANDLE_PATTERN, isRetryable, ID_PATTERN, MAX_ROOMS_PER_FRAME, PROTOCOL, ROOM_ADDRESS_PATTERN, TYPE_PATTERN, decodeRelayFrame, encodeFrame, encodeSend, validateEnvelope,
  type ApiAnswer, type RelayEvent, type Envelope, type ErrorFrame, type Limits, type RelayFrame,
} from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { DM_ROOM_PREFIX, isAmid, keyForAmid, signChallenge, verifyEnvelope, type Identity } from '@agentmesh/crypto'
import { GROUP_TYPE, Rooms, SENDER_KEY_TYPE, isUnreachable, type DeferredSend } from './rooms.ts'
import { InboundPipeline, attachInbound, toMessage } from './inbound.ts'
import { SWARM_KEY_TYPE, identityOf, swarmKeyStage } from './swarm-topic.ts'
import { e2eeStage, gateStage, relayStage, roomStage, senderKeyStage } from './stages.ts'
import { registryRequest } from './registry.ts'
import { acceptHandle, checkHandlePin, handlePins, type HandlePin } from './handle-pins.ts'
import { apiRequest, restCall } from './api.ts'
import { FILE_MESSAGE_TYPE, FileKeys, fileKeyStage, fileKeysOf } from './file-keys.ts'
import { attachSealedRecords } from './sealed-records.ts'
import type { ClientState } from './state.ts'
import type { Connection, LinkStatus, Message, PeerInfo, PeerStatus, SendOptions, SendResult, Status } from './types.ts'
import { Channel } from './channel.ts'
import { WS_CLOSED, type WebSocketConstructor, type WebSocketLike } from './transport.ts'
import { E2EE_RESET_TYPE, E2EE_TYPE, type E2ee } from './e2ee.ts'
import { DeferralFull, DELIVERY_NOTICE_TYPE, GRANT_REVOKE_TYPE, KNOCK_ANSWER_TYPE, KNOCK_TYPE, type Gate } from './knock.ts'
import { MAX_SENT_LOG, SENT_LOG_TTL_MS, SentLog, type SentEntry, type SentStatusEntry } from './sent.ts'
import { RECEIPT_TYPE, ReceiptSender, ReceiptTracker } from './receipts.ts'
import { authSignature, sessionEnvelopeError, signOutgoing, type Session } from './session.ts'

/**
 * Send errors the connection itself sends again, 100 ms later: the relay's transient states. A
 * subset of the registry's `isRetryable` on purpose: AM_ERR_INBOX_FULL and AM_ERR_RATE_LIMITED are
 * retryable too, but only after the peer caught up or `retryAfterS`, which the application decides,
 * so the send rejects with them.
 */
const RETRYABLE = new Set<string>([ErrorCode.TooManyInFlight, ErrorCode.ShuttingDown, ErrorCode.Internal])
/**
 * Refusals that mean "not now" (the relay is read-only or lost its database, this agent must
 * upgrade first): a send no caller waits on any more (queued earlier, `status: "queued"`) is not
 * dropped but stays in the agent's state outbox; it goes again after HELD_RETRY_MS when the
 * refusal is retryable, else with the next connection made from this state. A caller waiting on
 * its send gets the error, as for any refusal.
 */
const HELD_CODES = new Set<string>([ErrorCode.ReadOnly, ErrorCode.StoreUnavailable, ErrorCode.UpdateRequired])
const HELD_RETRY_MS = 30_000
/**
 * Errors that mean this agent can never connect as configured: connect() rejects with them. Not
 * `!isRetryable`: other non-retryable answers before auth (a replayed or stale challenge) are
 * warnings, and the connection tries again with a fresh challenge.
 */
const FATAL_AUTH = new Set<string>([
  ErrorCode.AuthFailed, ErrorCode.UnsupportedVersion,
  // a session certificate the relay refuses (session.ts)
  ErrorCode.CertExpired, ErrorCode.CertInvalid, ErrorCode.CertChainBroken, ErrorCode.CertRevoked,
])
const DEDUPE_MS = 30 * 24 * 60 * 60 * 1000
/** close() waits at most this long for sends being prepared, then as long again for the outbox to drain. */
const CLOSE_SETTLE_MS = 2000
/**
 * Direct messages that keep the conversation itself going (knocks and their answers, revocations,
 * resets, sender keys, delivery notices): no grant, breaker or first-contact check applies to them,
 * and a connection that only sends acts on them when they arrive (docs/policy.md).
 */
export const CONTROL_TYPES: ReadonlySet<string> = new Set([KNOCK_TYPE, KNOCK_ANSWER_TYPE, GRANT_REVOKE_TYPE, E2EE_RESET_TYPE, SENDER_KEY_TYPE, SWARM_KEY_TYPE, DELIVERY_NOTICE_TYPE, RECEIPT_TYPE])
/** How often messages the gate held back are checked for being due. */
const DEFER_POLL_MS = 1000
/**
 * Cursor acks (§6) leave at most this long after the delivery they acknowledge was processed, so
 * a burst of deliveries costs one cumulative frame per inbox and room, not one per event-loop turn
 * (docs/protocol.md §6: fewer frames for the relay to read and commit; after a crash the relay
 * delivers again at most these last ms of deliveries, which the agent's dedupe drops).
 */
export const CURSOR_ACK_DELAY_MS = 10
/** …and at once when this many deliveries wait for an ack (well inside the relay's delivery window). */
export const CURSOR_ACK_EAGER = 256
const typeRe = new RegExp(TYPE_PATTERN)
const roomRe = new RegExp(ROOM_ADDRESS_PATTERN)
const ID_RE = new RegExp(ID_PATTERN)
/** `@handle` (the protocol's HANDLE_PATTERN after the @). */
const HANDLE_RE = new RegExp('^@' + HANDLE_PATTERN.slice(1))
/** Handles resolved to AMIDs are asked again after this long. */
const HANDLE_TTL_MS = 60_000
/** Handles kept resolved at most (the least recently used go first). */
const MAX_HANDLES = 10_000
export { RELAY_TYPES } from './stages.ts'

/** One relay address a connection may use: its WebSocket endpoint and its HTTP origin (for REST calls). */
export interface RelayAddress { url: string, httpBase: string }

export interface ConnectionConfig {
  /**
   * The relays to use, in order: several nodes of one cluster (one Store). The connection dials the
   * first; each time a connection is lost or a dial fails it moves to the next (round robin), with
   * the usual backoff, and resumes from its cursor: the outbox sends again what was not acknowledged.
   */
  relays: readonly RelayAddress[]
  /** the transport: `ws` in Node (connect.ts), the global WebSocket in a browser */
  WebSocket: WebSocketConstructor
  identity: Identity
  /** sign the auth and every envelope with this session key instead of the identity key (session.ts) */
  session?: Session
  state: ClientState
  ownsState: boolean
  deliver: boolean
  /** the agent's software version, told in the auth frame (§3, §19) */
  agentVersion?: string
  /** end-to-end encryption; undefined only in tests of the plaintext protocol */
  e2ee: E2ee | undefined
  /** hand unencrypted messages to the application (marked `encrypted: false`) */
  acceptPlaintext: boolean
  /** send encrypted DMs as signed agentmesh/0.2 envelopes (the transition, docs/protocol.md §14.3) */
  signEncrypted?: boolean
  /** knocks, grants, per-peer limits; set by connect() once the connection exists */
  gate?: Gate
  /** send(…, { validate: true }): the receiver's declared schema must match (schemas.ts) */
  validateSend?: (to: string, type: string, payload: Record<string, unknown>) => Promise<void>
  minBackoffMs: number
  maxBackoffMs: number
  onWarning: (w: AgentMeshError) => void
  /** ask for delivery receipts on every encrypted direct message (receipts.ts) */
  requestReceipts?: boolean
  /** send the receipts peers ask for. @default true */
  sendReceipts?: boolean
}

interface Pending {
  id: string
  to: string
  envText: string
  transmitted: boolean
  waiters: Array<{ resolve: (r: SendResult) => void, reject: (e: Error) => void }>
  /**
   * With direct links (docs/protocol.md §29): undefined until it is offered to the direct path,
   * `trying` while the peer's answer is awaited, `relay` once it takes the relay (no direct path,
   * no answer in time, or not a direct message).
   */
  direct?: 'trying' | 'relay'
  /** counted in `relayPath` (it fell back from the direct path) */
  counted?: boolean
}

/** What a direct send came to (p2p.ts). */
export type DirectSendResult =
  | { type: 'ack', duplicate: boolean }
  | { type: 'refused', code: string, message: string }
  | { type: 'unavailable', reason: string }

/** What the connection answers an envelope received directly (p2p.ts). */
export type DirectAnswer = { ok: true, duplicate?: boolean } | { ok: false, code: string, message: string }

/** The direct links a connection sends on first (p2p.ts, loaded only with `connect({ p2p })`). */
export interface DirectPath {
  readonly ackTimeoutMs: number
  send (to: string, id: string, envText: string): Promise<DirectSendResult>
  peers (relayPeers: readonly string[]): Promise<PeerInfo[]>
  addresses (): string[]
  stop (): Promise<void>
}

/** Envelopes received directly and not processed yet are kept in the agent's state under this record kind (sealed) until committed. */
export const DIRECT_INBOX_KIND = 'direct-inbox'

/**
 * A delivery in the queue: `env` when it goes through the stages (without it, it was dropped on
 * arrival and is only committed), `msg` when it reads as is (else it is decrypted in turn),
 * `sealed` when the end-to-end layer keeps its plaintext until it is committed, `held` when it was
 * released after a key change, `deferred` when the gate held it back (a limit) and released it.
 * `room` for a delivery of a room read by cursor (docs/protocol.md §6.1): `seq` is then the room seq.
 */
interface Inbound { seq: number, room?: string, msg?: Message, env?: Envelope, sealed?: boolean, held?: boolean, deferred?: boolean, directEnv?: Envelope }

const utf8 = new TextEncoder()

/** A timer that does not keep Node running (a number elsewhere, with nothing to do). */
function unref (t: ReturnType<typeof setTimeout>): void {
  if (typeof t === 'object' && t !== null && 'unref' in t) t.unref()
}

/** (a function, so that a check after an await is not narrowed away by the one before it) */
function isAborted (signal: AbortSignal | undefined): boolean { return signal?.aborted === true }

function abortError (signal: AbortSignal): AgentMeshError {
  return new AgentMeshError(ErrorCode.Aborted, 'the operation was aborted', { cause: signal.reason })
}

export class ConnectionImpl implements Connection {
  readonly amid: string
  private ws: WebSocketLike | undefined
  private relayId: string | undefined
  private limits: Limits | undefined
  private authed = false
  /** the agents watched (docs/protocol.md §17.4), told again on every connection */
  private watched: string[] = []
  private closed = false
  private attempt = 0
  /** the relay in cfg.relays dialled now (or last) */
  private relayIndex = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private readonly outbox = new Map<string, Pending>()
  private inFlight = 0
  private readonly inbound: Inbound[] = []
  /** highest seq received from the current relay (buffered, being processed or committed) */
  private highestSeq = 0
  /** the same per room read by cursor (room seqs) */
  private readonly highestRoomSeq = new Map<string, number>()
  /** room cursors to acknowledge at the end of this turn (one frame per room) */
  private readonly roomCursorsToSend = new Map<string, number>()
  private processing: Inbound | undefined
  /** messages({ manualAck: true }): what was handed over, in delivery order, and what is done (committed in order) */
  private manualAck = false
  private readonly leased: Array<{ item: Inbound, done: boolean }> = []
  /** delivery receipts: what this agent sends (undefined: opted out) and what it is told */
  private readonly receiptSender: ReceiptSender | undefined
  readonly receiptTracker: ReceiptTracker
  private readonly statusChannel = new Channel<Status>()
  private readonly inboundWaiters: Array<() => void> = []
  private readonly drainWaiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private cursorToSend = 0
  /** the last inbox cursor sent on the current connection */
  private cursorSent = 0
  private cursorScheduled = false
  private cursorTimer: ReturnType<typeof setTimeout> | undefined
  /** deliveries processed since the last cursor frames */
  private cursorBacklog = 0
  private readyResolve: (() => void) | undefined
  private readyReject: ((e: Error) => void) | undefined
  private lastError: Error | undefined
  /** sends are prepared (encrypted, written to the outbox) one at a time, in call order */
  private sendChain: Promise<unknown> = Promise.resolve()
  /** sends waiting behind a look-up (docs: send) */
  private lookups = 0
  private lookupChain: Promise<void> = Promise.resolve()
  private relayAmidValue: string | undefined
  private readonly eventChannel = new Channel<RelayEvent>()
  private readonly handleCache = new LruMap<string, { amid: string, at: number }>(MAX_HANDLES)
  /** private rooms: sender keys (set when end-to-end encryption is on) */
  readonly rooms: Rooms | undefined
  /** sends kept until the relay can be reached (rooms.ts DeferredSend), in call order, after every outbox entry */
  private readonly deferred: Array<{ send: DeferredSend, waiters: Pending['waiters'] }> = []
  private draining = false
  /** start(): resolve when the relay cannot be reached too (connect's queueWhenUnreachable) */
  private resolveUnreachable = false
  /** the link as `link()` answers it (network partition protocol, docs/protocol.md §20) */
  private linkState: LinkStatus['state'] = 'connecting'
  private linkSince = Date.now()
  private setLink (state: LinkStatus['state']): void {
    if (state === this.linkState) return
    this.linkState = state
    this.linkSince = Date.now()
  }
  /** the direct messages sent lately and what became of them (with end-to-end encryption) */
  private readonly sentLog: SentLog | undefined
  /** a connection that only sends: it acts on control deliveries and leaves the others (peekLoop) */
  private readonly peek: boolean
  /** peek: the seq up to which the backlog seen at connect is handled, and waiters for it */
  private peekTarget = 0
  private peekDone = 0
  private readonly peekWaiters: Array<() => void> = []
  /** what happens to a delivered envelope (inbound.ts); features add stages through `inbound(conn)` */
  private readonly pipeline: InboundPipeline
  /** direct links (p2p.ts), when connect({ p2p }) started them */
  private direct: DirectPath | undefined
  /** `from\nid` of the deliveries queued and not committed yet (both paths), so a copy on the other path is a duplicate */
  private readonly queuedIds = new Set<string>()
  /** envelopes received directly and not committed yet */
  private directPending = 0
  /** per peer: envelopes on the relay path not acknowledged yet; later direct messages to it take the relay too (order) */
  private readonly relayPath = new Map<string, number>()

  constructor (private readonly cfg: ConnectionConfig) {
    this.amid = cfg.identity.amid
    this.sentLog = cfg.e2ee === undefined ? undefined : new SentLog(cfg.e2ee)
    this.receiptTracker = new ReceiptTracker(this.sentLog)
    this.receiptSender = cfg.e2ee === undefined || cfg.sendReceipts === false
      ? undefined
      : new ReceiptSender((peer, r) => { this.send(peer, { r }, { type: RECEIPT_TYPE }).catch(() => {}) }, (w) => { cfg.onWarning(w) })
    if (cfg.e2ee !== undefined) {
      this.rooms = new Rooms({
        e2ee: cfg.e2ee,
        amid: this.amid,
        identity: cfg.identity,
        warn: (w) => { cfg.onWarning(w) },
        notify: (e) => { this.eventChannel.push(e) },
        request: async (method, path, body) => await this.request(method, path, body),
        queueDm: async (to, payload, type) => {
          const s = this.submit(to, payload, { type })
          s.result.catch(() => {}) // acked later; a failure surfaces as a warning
          await s.prepared
        },
      })
    }
    this.pipeline = new InboundPipeline(cfg.onWarning)
    const relayAmid = (): string | undefined => this.relayAmidValue
    const warn = (w: AgentMeshError): void => { cfg.onWarning(w) }
    this.pipeline.use(e2eeStage({
      amid: this.amid,
      e2ee: cfg.e2ee,
      rooms: this.rooms,
      acceptPlaintext: cfg.acceptPlaintext,
      relayAmid,
      closed: () => this.closed,
      sendReset: (to, payload) => { this.send(to, payload, { type: E2EE_RESET_TYPE, encrypt: false }).catch(() => {}) },
      onPeerReset: (peer, id) => { this.resendAfterReset(peer, id) },
      seen: (from, id) => cfg.state.seen(from, id),
      markSeen: (from, id) => { if (this.relayId !== undefined) cfg.state.commit(this.relayId, 0, from, id) },
      onGrant: (peer, grant) => { this.cfg.gate?.restore(peer, grant) },
      warn,
    }))
    this.pipeline.use(senderKeyStage({ rooms: this.rooms, warn }))
    // sender keys of encrypted swarm topics (swarm-topic.ts): kept sealed, the topic checks the chain
    this.pipeline.use(swarmKeyStage(this, cfg.e2ee, warn))
    identityOf.set(this, cfg.identity)
    this.pipeline.use(relayStage({ relayAmid }))
    this.pipeline.use(roomStage({ relayAmid }))
    // receipts are the machinery's, not a peer's words: taken before the gate and its limits
    this.pipeline.use(this.receiptTracker.stage())
    this.pipeline.use(gateStage({ gate: () => this.cfg.gate, relayAmid }))
    // keys of end-to-end encrypted files, kept as they arrive (file-keys.ts); the message goes on
    const fileKeys = cfg.e2ee === undefined ? undefined : new FileKeys(cfg.e2ee)
    if (fileKeys !== undefined) fileKeysOf.set(this, fileKeys)
    // sealed records for applications over this connection (sealed-records.ts: the owner's console)
    if (cfg.e2ee !== undefined) attachSealedRecords(this, cfg.e2ee)
    this.pipeline.use(fileKeyStage(fileKeys))
    attachInbound(this, this.pipeline)
    for (const e of cfg.state.outboxList()) {
      // from an earlier run: its type is not known any more (it may be a knock), so it takes the relay
      this.outbox.set(e.id, { id: e.id, to: e.to, envText: e.envText, transmitted: false, waiters: [], direct: 'relay' })
    }
    cfg.state.prune(Date.now() - DEDUPE_MS)
    // sends deferred by an earlier run go out, after the outbox, once the relay can be reached
    for (const d of this.rooms?.deferredSends() ?? []) this.deferred.push({ send: d, waiters: [] })
    if (this.rooms !== undefined) void (async () => { for await (const st of this.status()) if (st.type === 'connected') this.drainDeferred() })()
    this.peek = !cfg.deliver && cfg.e2ee !== undefined
    if (this.peek) void this.peekLoop()
    // messages held while their sender's changed key was not accepted, and accepted since
    if (cfg.deliver) for (const env of cfg.e2ee?.releasable() ?? []) this.inbound.push({ seq: 0, env, sealed: true, held: true })
    // envelopes received directly and acknowledged before this agent stopped: processed now, in order
    if (cfg.deliver && cfg.e2ee !== undefined && cfg.state.recordCount(DIRECT_INBOX_KIND) > 0) {
      for (const r of cfg.e2ee.records<Envelope>(DIRECT_INBOX_KIND)) this.queueDirect(r.value)
    }
  }

  /** The relay's WebSocket address this connection uses now (one of several, after a failover). */
  get url (): string { return this.cfg.relays[this.relayIndex]!.url }

  /** The HTTP origin of the relay this connection uses now (REST calls follow a failover). */
  get httpBase (): string { return this.cfg.relays[this.relayIndex]!.httpBase }

  /** Resolves at the first successful authentication. */
  start (signal?: AbortSignal, timeoutMs?: number, resolveUnreachable = false): Promise<void> {
    this.resolveUnreachable = resolveUnreachable
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (err?: Error): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.readyResolve = undefined
        this.readyReject = undefined
        if (err === undefined) { resolve(); return }
        void this.close()
        reject(err)
      }
      const onAbort = (): void => { done(abortError(signal!)) }
      if (signal?.aborted === true) { reject(abortError(signal)); return }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const why = this.lastError !== undefined ? `: ${this.lastError.message}` : ''
          done(this.resolveUnreachable ? undefined : new AgentMeshError(ErrorCode.ConnectFailed, `cannot reach the relay at ${this.cfg.relays.map(r => r.url).join(' or ')} within ${timeoutMs} ms${why}. Is \`agentmesh serve\` running there?`, { cause: this.lastError }))
        }, timeoutMs)
      }
      this.readyResolve = () => { done() }
      this.readyReject = (e) => { done(e) }
      this.dial()
    })
  }

  // ------------------------------------------------------------------ socket lifecycle

  private dial (): void {
    if (this.closed) return
    this.attempt++
    this.statusChannel.push(this.attempt === 1 ? { type: 'connecting', relay: this.url } : { type: 'reconnecting', attempt: this.attempt - 1 })
    if (this.attempt > 1 && this.linkState === 'connected') this.setLink('reconnecting')
    const ws = new this.cfg.WebSocket(this.url)
    this.ws = ws
    ws.addEventListener('message', (ev) => {
      if (ws !== this.ws || typeof ev.data !== 'string') return // text frames only
      let frame: RelayFrame
      try {
        frame = decodeRelayFrame(ev.data)
      } catch (err) {
        this.cfg.onWarning(err as AgentMeshError)
        return
      }
      this.onFrame(ws, frame)
    })
    ws.addEventListener('error', (ev) => { this.lastError = ev.error instanceof Error ? ev.error : new Error(ev.message ?? 'WebSocket error') })
    ws.addEventListener('close', (ev) => {
      if (ws !== this.ws) return
      this.onDisconnect(ev.code, ev.reason)
    })
  }

  private onDisconnect (code: number, reason: string): void {
    const wasAuthed = this.authed
    this.authed = false
    this.ws = undefined
    this.inFlight = 0
    for (const p of this.outbox.values()) p.transmitted = false
    if (this.closed) return
    const error = this.lastError ?? (reason !== '' ? new AgentMeshError(ErrorCode.ConnectionClosed, `relay closed the connection (${code} ${reason})`) : undefined)
    if (wasAuthed) this.setLink('reconnecting')
    if (wasAuthed) this.statusChannel.push({ type: 'disconnected', relay: this.url, ...(error === undefined ? {} : { error }) })
    // not reachable now (of several relays, none: the last one failed too): the connection keeps trying, sends wait
    else if (this.resolveUnreachable && this.relayIndex === this.cfg.relays.length - 1) this.readyResolve?.()
    // several relays (one cluster): the next one is dialled (it resumes from the same cursor)
    if (this.cfg.relays.length > 1) this.relayIndex = (this.relayIndex + 1) % this.cfg.relays.length
    const base = Math.min(this.cfg.maxBackoffMs, this.cfg.minBackoffMs * 2 ** Math.min(this.attempt, 10))
    const delay = wasAuthed ? this.cfg.minBackoffMs * Math.random() : base / 2 + Math.random() * base / 2
    if (wasAuthed) this.attempt = 1
    this.reconnectTimer = setTimeout(() => { this.dial() }, delay)
  }

  private onFrame (ws: WebSocketLike, f: RelayFrame): void {
    switch (f.op) {
      case 'challenge': {
        if (this.relayId !== undefined && this.relayId !== f.relay) {
          // a different relay (or its data was reset): seqs start over
          this.inbound.length = 0
          this.highestSeq = 0
          this.highestRoomSeq.clear()
        }
        this.relayId = f.relay
        const committed = this.cfg.state.cursor(f.relay)
        this.highestSeq = Math.max(this.highestSeq, committed)
        for (const [room, seq] of Object.entries(this.cfg.state.roomCursors(f.relay))) {
          this.highestRoomSeq.set(room, Math.max(this.highestRoomSeq.get(room) ?? 0, seq))
        }
        ws.send(encodeFrame({
          op: 'auth',
          v: PROTOCOL,
          amid: this.amid,
          nonce: f.nonce,
          ...authSignature(this.cfg.identity, this.cfg.session, f.nonce, f.relay),
          ...(this.cfg.identity.name === undefined ? {} : { name: this.cfg.identity.name }),
          after: this.highestSeq,
          // a connection that only sends still reads its deliveries, to act on the control ones (peek)
          deliver: this.cfg.deliver || this.peek,
          // rooms are read by cursor: each from what was processed of it (§6.1)
          features: [FEATURE_ROOM_CURSOR],
          rooms: Object.fromEntries([...this.highestRoomSeq].slice(0, MAX_ROOMS_PER_FRAME)),
          ...(this.cfg.agentVersion === undefined ? {} : { agent_version: this.cfg.agentVersion }),
        }))
        return
      }
      case 'welcome':
        this.authed = true
        this.cursorSent = 0
        this.limits = f.limits
        if (this.peek) {
          // what this connection will see of the backlog: up to the inbox's end, within the window
          const from = Math.max(this.highestSeq, f.cursor)
          this.peekDone = Math.max(this.peekDone, from)
          this.peekTarget = Math.min(f.last_seq ?? from, from + f.limits.delivery_window)
          this.peekSettle()
        }
        if (f.relay_amid !== undefined) this.relayAmidValue = f.relay_amid
        this.lastError = undefined
        this.setLink('connected')
        this.statusChannel.push({ type: 'connected', relay: this.url })
        this.readyResolve?.()
        if (this.watched.length > 0) this.ws?.send(encodeFrame({ op: 'watch', agents: this.watched }))
        this.transmit()
        this.releaseDeferred()
        return
      case 'ack':
        this.onAck(f.id, f.duplicate === true)
        return
      case 'deliver':
        this.onDeliver(f.seq, f.env as unknown, f.room)
        return
      case 'error':
        this.onError(f)
        return
      case 'pong':
        return
      case 'event':
        if ('room' in f.event && f.event.room !== undefined && (f.event.type === 'member' || (f.event.type === 'presence' && f.event.change === 'joined'))) {
          this.rooms?.invalidate(f.event.room.slice(1))
        }
        if (f.event.type === 'catastrophe_alert') this.noteAlert(f.event)
        this.eventChannel.push(f.event)
    }
  }

  /**
   * The catastrophe alerts of events not resolved that this connection heard (§20): the relay sends
   * them right after the welcome, before the application may be listening; `catastrophes(conn)`
   * hands them to a listener that comes later. At most 100, the oldest dropped.
   */
  private readonly openAlerts = new Map<string, RelayEvent>()
  private noteAlert (e: RelayEvent): void {
    const data = (e as { data?: Record<string, unknown> }).data
    const id = data?.eventId
    if (typeof id !== 'string') return
    this.openAlerts.delete(id)
    if (data?.status !== 'resolved') this.openAlerts.set(id, e)
    if (this.openAlerts.size > 100) this.openAlerts.delete(this.openAlerts.keys().next().value!)
  }

  /** The open catastrophe alerts heard so far (for `catastrophes(conn)`). */
  heardAlerts (): RelayEvent[] { return [...this.openAlerts.values()] }

  // ------------------------------------------------------------------ sending

  async send (to: string, payload: Record<string, unknown>, opts: SendOptions = {}): Promise<SendResult> {
    if (this.closed) throw new AgentMeshError(ErrorCode.ConnectionClosed, 'the connection is closed')
    if (opts.validate === true && this.cfg.validateSend !== undefined) await this.cfg.validateSend(to, opts.type ?? 'chat', payload)
    const lookup = typeof to === 'string' && (HANDLE_RE.test(to) || (roomRe.test(to) && this.rooms !== undefined && opts.encrypt !== false && (opts.type ?? 'chat') !== GROUP_TYPE) ||
      // a first message to a peer needs its prekeys from the relay: while the relay is away, it waits its turn like a room look-up
      (!this.authed && this.needsSession(to, opts)))
    // a send that needs a round trip first (an @handle, a room's kind) and every send behind it
    // are queued in call order, so that a later send never overtakes an earlier one
    if (!lookup && this.lookups === 0 && this.deferred.length === 0) return await this.acked(this.submit(to, payload, opts), opts)
    this.lookups++
    const queued = this.lookupChain.then(async () => await this.prepareSend(to, payload, opts))
    this.lookupChain = queued.then(() => {}, () => {})
    try {
      const s = await queued
      return await this.acked(s, opts)
    } finally {
      this.lookups--
    }
  }

  /** Tells `opts.onQueued` once the send is queued (outbox, or deferred); answers its ack. */
  private async acked (s: { prepared: Promise<unknown>, result: Promise<SendResult> }, opts: SendOptions): Promise<SendResult> {
    const told = opts.onQueued
    if (told !== undefined) s.prepared.then((p) => { told((p as { id: string }).id) }, () => {})
    return await s.result
  }

  // ---- sends deferred while the relay cannot be reached (docs/protocol.md §17.5)

  /**
   * Keeps a send in the agent's state until the relay can be reached: a room message whose room
   * could not be looked up, and every send after it (they go in call order).
   */
  private defer (to: string, payload: Record<string, unknown>, opts: SendOptions): { prepared: Promise<unknown>, result: Promise<SendResult> } {
    const type = opts.type ?? 'chat'
    const id = opts.id ?? uuidv7()
    let entry = this.deferred.find(e => e.send.id === id) // a retry of a send still deferred
    if (entry === undefined) {
      if (!typeRe.test(type)) throw new AgentMeshError(ErrorCode.InvalidEnvelope, `type "${type.slice(0, 80)}" must start with a lowercase letter and use a-z 0-9 . _ - (at most 64)`)
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new AgentMeshError(ErrorCode.InvalidEnvelope, 'the payload must be an object')
      entry = { send: this.rooms!.defer({ id, to, type, payload, ...(opts.encrypt === undefined ? {} : { encrypt: opts.encrypt }), ...(opts.resendOf === undefined ? {} : { resendOf: opts.resendOf }) }), waiters: [] }
      this.deferred.push(entry)
    }
    const e = entry
    const result = new Promise<SendResult>((resolve, reject) => {
      const w = { resolve, reject }
      e.waiters.push(w)
      opts.signal?.addEventListener('abort', () => {
        // stop waiting; the send stays deferred and is still delivered
        const i = e.waiters.indexOf(w)
        if (i >= 0) e.waiters.splice(i, 1)
        reject(abortError(opts.signal!))
      }, { once: true })
    })
    return { prepared: Promise.resolve({ id }), result }
  }

  /** Queues the deferred sends, in order, while the relay answers; stops at the first it cannot (retried on the next connect). */
  private drainDeferred (): void {
    if (this.draining || this.deferred.length === 0) return
    this.draining = true
    this.queueDeferred().then((retry) => {
      this.draining = false
      // the relay answers the socket but not yet the look-up: again a little later
      if (retry && this.authed && !this.closed) unref(setTimeout(() => { this.drainDeferred() }, this.cfg.maxBackoffMs))
    }, (err: unknown) => {
      this.draining = false
      // the agent's state failed under it: the sends stay deferred, tried again on the next connect
      if (!this.closed) this.cfg.onWarning(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.Internal, `could not queue the deferred sends: ${(err as Error).message}`))
    })
  }

  /** The loop of drainDeferred; true when it stopped at a send to try again later. */
  private async queueDeferred (): Promise<boolean> {
    while (this.deferred.length > 0 && this.authed && !this.closed) {
      const e = this.deferred[0]!
      const d = e.send
      let sub: { prepared: Promise<unknown>, result: Promise<SendResult> } | undefined
      let error: unknown
      try {
        sub = await this.prepareSend(d.to, d.payload, { type: d.type, id: d.id, ...(d.encrypt === undefined ? {} : { encrypt: d.encrypt }), ...(d.resendOf === undefined ? {} : { resendOf: d.resendOf }) }, true)
        await sub.prepared
      } catch (err) {
        sub?.result.catch(() => {}) // its error is this one
        // not now (the relay went again, or this connection is closing): it stays deferred
        if (this.closed || isUnreachable(err) || (AgentMeshError.is(err) && (isRetryable(err.code) || err.code === ErrorCode.ConnectionClosed))) return !this.closed
        sub = undefined
        error = err
      }
      // closed meanwhile (its state may be closed too): a send already in the outbox is found there next time, same bytes
      if (this.closed) break
      this.deferred.shift()
      this.rooms!.undefer(d.id)
      if (sub !== undefined) {
        sub.result.then((r) => { for (const w of e.waiters) w.resolve(r) }, (err: Error) => {
          for (const w of e.waiters) w.reject(err)
          if (e.waiters.length === 0) this.cfg.onWarning(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, err.message))
        })
      } else {
        const err = AgentMeshError.is(error) ? error : new AgentMeshError(ErrorCode.Internal, (error as Error).message)
        for (const w of e.waiters) w.reject(err)
        if (e.waiters.length === 0) this.cfg.onWarning(new AgentMeshError(err.code, `dropped the deferred send ${d.id} to ${d.to}: ${err.message}`))
        if (this.outbox.size === 0 && this.deferred.length === 0) for (const w of this.drainWaiters.splice(0)) w.resolve()
      }
    }
    return false
  }

  /**
   * Resolves an @handle and a private room's sender key, then queues the send; resolves once it is
   * in the outbox. When the relay cannot be reached for the look-up (and behind such a send) the
   * send is deferred instead (`draining`: it is one, and it is not deferred again).
   */
  private async prepareSend (to: string, payload: Record<string, unknown>, opts: SendOptions, draining = false): Promise<{ prepared: Promise<unknown>, result: Promise<SendResult> }> {
    if (!draining && this.deferred.length > 0) return this.defer(to, payload, opts)
    try {
      if (typeof to === 'string' && HANDLE_RE.test(to)) to = await this.resolveHandle(to)
      if (typeof to === 'string' && roomRe.test(to) && this.rooms !== undefined && opts.encrypt !== false && (opts.type ?? 'chat') !== GROUP_TYPE) {
        const room = to.slice(1)
        const rooms = this.rooms
        const info = await rooms.roomInfo(room)
        if (info.kind === 'private') {
          const target = to
          // the sender key's DMs and the message are queued in one go, in order, per room
          return await rooms.serial(room, async () => {
            if (opts.id !== undefined && this.outbox.has(opts.id)) return this.submit(target, payload, opts)
            const gm = await rooms.encrypt(room, opts.type ?? 'chat', payload)
            const sub = this.submit(target, { ...gm }, { ...opts, type: GROUP_TYPE, encrypt: false })
            await sub.prepared.catch(() => {})
            return sub
          })
        }
      }
      if (typeof to === 'string' && this.needsSession(to, opts)) await this.cfg.e2ee!.establish(to)
    } catch (err) {
      // the relay cannot be reached to look the room (or handle, or the peer's prekeys) up: nothing of it goes out before it can
      if (!draining && this.rooms !== undefined && isUnreachable(err)) return this.defer(to, payload, opts)
      throw err
    }
    const sub = this.submit(to, payload, opts)
    await sub.prepared.catch(() => {})
    return sub
  }

  /** An encrypted DM to a peer this agent has no session with yet (its prekey bundle comes from the relay). */
  private needsSession (to: string, opts: SendOptions): boolean {
    return isAmid(to) && to !== this.amid && opts.encrypt !== false && this.cfg.e2ee !== undefined && this.rooms !== undefined && !this.cfg.e2ee.hasSession(to)
  }

  /**
   * An @handle's AMID (asked of the relay, cached for a minute), checked against the AMID pinned
   * for it on first contact (handle-pins.ts: AM_ERR_HANDLE_CHANGED when the relay now names another).
   */
  async resolveHandle (handle: string): Promise<string> {
    const cached = this.handleCache.get(handle.toLowerCase())
    if (cached !== undefined && Date.now() - cached.at < HANDLE_TTL_MS) return cached.amid
    const amid = await this.lookupHandle(handle)
    if (this.cfg.e2ee !== undefined) checkHandlePin(this.cfg.e2ee, handle, amid)
    this.handleCache.set(handle.toLowerCase(), { amid, at: Date.now() })
    return amid
  }

  private async lookupHandle (handle: string): Promise<string> {
    const r: Partial<ApiAnswer<'resolveHandle'>> | undefined = await restCall(this.request.bind(this), 'resolveHandle', `/api/v1/handles/${encodeURIComponent(handle.replace(/^@/, ''))}`)
    // the relay's answer is typed, not checked: an AMID it does not give is not trusted
    if (typeof r?.amid !== 'string' || !isAmid(r.amid)) throw new AgentMeshError(ErrorCode.UnknownHandle, `the relay gave no AMID for ${handle}`)
    return r.amid
  }

  handlePins (): HandlePin[] { return this.cfg.e2ee === undefined ? [] : handlePins(this.cfg.e2ee) }

  async acceptHandle (handle: string): Promise<HandlePin> {
    if (this.cfg.e2ee === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'handles are pinned with end-to-end encryption: this connection has none')
    const h = '@' + handle.replace(/^@/, '')
    this.handleCache.delete(h.toLowerCase())
    return acceptHandle(this.cfg.e2ee, h, await this.lookupHandle(h))
  }

  /** A REST call to the relay, signed by this agent (docs/protocol.md §13, §17). */
  async request (method: string, path: string, body?: unknown): Promise<unknown> {
    return await registryRequest(this.httpBase, method, path, { identity: this.cfg.identity, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  }

  /** The relay's own AMID (it signs timeline events and task requests), once connected. */
  get relayAmid (): string | undefined { return this.relayAmidValue }

  private bearer: { token: string, expiresAt: number } | undefined
  /**
   * The relay's HTTP origin and headers that authenticate a plain HTTP request as this agent: a
   * bearer token (docs/protocol.md §17.8), fetched by signing a challenge and renewed a minute
   * before it expires. For bodies a signed request cannot carry: a streamed file upload or download.
   */
  async authorize (): Promise<{ origin: string, headers: Record<string, string> }> {
    if (this.bearer === undefined || this.bearer.expiresAt - 60_000 < Date.now()) {
      const origin = this.httpBase
      const ch = await apiRequest(origin, 'authChallenge', '/api/v1/auth/challenge', { body: JSON.stringify({ amid: this.amid }) })
      const t = await apiRequest(origin, 'authToken', '/api/v1/auth/token', { body: JSON.stringify({ amid: this.amid, nonce: ch.nonce, sig: signChallenge(this.cfg.identity, this.amid, ch.nonce, ch.relay) }) })
      this.bearer = { token: t.token, expiresAt: t.expires_at }
    }
    return { origin: this.httpBase, headers: { authorization: `Bearer ${this.bearer.token}` } }
  }

  /**
   * Events, live: chat's presence, typing, read and membership events (never stored) and the
   * operations events (system_update, catastrophe_alert, agent_health_change, file_available).
   */
  events (): AsyncIterable<RelayEvent> { return this.eventChannel.subscribe() }

  /** Sends a typing or read signal to a room's members (docs/protocol.md §17.4). */
  signal (room: string, kind: 'typing' | 'read', upTo?: number | string): void {
    const addr = room.startsWith('#') ? room : '#' + room
    if (!roomRe.test(addr)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${room.slice(0, 80)}" is not a room id`)
    const dm = addr.startsWith('#' + DM_ROOM_PREFIX)
    if (kind === 'read' && dm && (typeof upTo !== 'string' || !ID_RE.test(upTo))) throw new AgentMeshError(ErrorCode.InvalidArgument, 'a read signal in a DM conversation needs the id of the message read up to')
    if (kind === 'read' && !dm && (typeof upTo !== 'number' || !Number.isInteger(upTo) || upTo < 0)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'a read signal needs the room seq read up to')
    if (!this.authed || this.ws === undefined) throw new AgentMeshError(ErrorCode.ConnectionClosed, 'not connected to the relay right now; signals are not queued')
    this.ws.send(encodeFrame({ op: 'signal', room: addr, kind, ...(kind === 'read' ? (dm ? { id: upTo as string } : { up_to: upTo as number }) : {}) }))
  }

  /**
   * Hear the presence changes of these agents (AMIDs, at most 256) besides those sharing a room with
   * this one (docs/protocol.md §17.4); replaces the list, kept across reconnections; [] ends it. The
   * relay answers their presence now, as events.
   */
  watch (agents: readonly string[]): void {
    const bad = agents.find(a => typeof a !== 'string' || !isAmid(a))
    if (bad !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${String(bad).slice(0, 80)}" is not an AMID`)
    if (agents.length > 256) throw new AgentMeshError(ErrorCode.InvalidArgument, `watch at most 256 agents, not ${agents.length}`)
    this.watched = [...new Set(agents)]
    if (this.authed && this.ws !== undefined) this.ws.send(encodeFrame({ op: 'watch', agents: this.watched }))
  }

  /** Validates and queues one send: `prepared` once it is in the outbox, `result` once the relay acked it. */
  submit (to: string, payload: Record<string, unknown>, opts: SendOptions = {}): { prepared: Promise<unknown>, result: Promise<SendResult> } {
    const failed = (e: unknown): { prepared: Promise<unknown>, result: Promise<SendResult> } => {
      const r = Promise.reject(e)
      r.catch(() => {})
      return { prepared: r, result: Promise.reject(e) }
    }
    try {
      if (this.closed) throw new AgentMeshError(ErrorCode.ConnectionClosed, 'the connection is closed')
      if (opts.signal?.aborted === true) throw abortError(opts.signal)
      const type = opts.type ?? 'chat'
      if (!typeRe.test(type)) throw new AgentMeshError(ErrorCode.InvalidEnvelope, `type "${type.slice(0, 80)}" must start with a lowercase letter and use a-z 0-9 . _ - (at most 64)`)
      if (typeof to !== 'string' || (!isAmid(to) && !roomRe.test(to))) throw new AgentMeshError(ErrorCode.InvalidEnvelope, `recipient "${String(to).slice(0, 80)}" is not an AMID, a @handle or a #room`)
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new AgentMeshError(ErrorCode.InvalidEnvelope, 'the payload must be an object')
    } catch (e) {
      return failed(e)
    }
    const type = opts.type ?? 'chat'
    const toRoom = to.charCodeAt(0) === 35
    if (!toRoom && !CONTROL_TYPES.has(type)) {
      try { this.cfg.gate?.beforeSend(to, Date.now(), { type, payload }) } catch (e) { return failed(e) }
    }
    const e2ee = this.cfg.e2ee
    const encrypt = !toRoom && opts.encrypt !== false && e2ee !== undefined && to !== this.amid
    const id = opts.id ?? uuidv7()
    const sentLog = this.sentLog
    const logged = sentLog !== undefined && type !== DELIVERY_NOTICE_TYPE && type !== RECEIPT_TYPE
    // receipts are asked inside the ciphertext, never for a control type (no receipt for a receipt)
    const wantReceipts = (opts.receipts ?? this.cfg.requestReceipts === true) && !CONTROL_TYPES.has(type)
    if (opts.receipts === true && !encrypt) return failed(new AgentMeshError(ErrorCode.InvalidArgument, 'delivery receipts travel inside the end-to-end encryption: a message to a room, to oneself or sent unencrypted cannot ask for them'))
    // prepared in call order: the ratchet's message numbers follow the outbox order
    const prepared = this.sendChain.then(async () => {
      const existing = this.outbox.get(id)
      if (existing !== undefined) return existing // a retry of a send still pending: same bytes
      // only a peer's ordinary messages go direct: knocks, answers, notices and the rest of the machinery keep the relay (§29.2)
      const directOk = !toRoom && to !== this.amid && !CONTROL_TYPES.has(type)
      if (!encrypt) return this.enqueue(signOutgoing(this.cfg.identity, this.cfg.session, { id, to, type, payload }), directOk)
      if (!CONTROL_TYPES.has(type)) await this.cfg.gate?.beforeFirstContact(to)
      await e2ee.establish(to)
      const gate = this.cfg.gate
      const extra = { ...(opts.resendOf === undefined ? {} : { orig: opts.resendOf }), ...(gate === undefined ? {} : { grant: () => gate.presentable(to) }), ...(wantReceipts ? { receipts: true } : {}) }
      return this.cfg.state.transaction(() => {
        // agentmesh/0.3: unsigned, the header bound into the encryption; 0.2 (signEncrypted): signed
        const p = this.enqueue(this.cfg.signEncrypted === true
          ? signOutgoing(this.cfg.identity, this.cfg.session, { id, to, type: E2EE_TYPE, payload: { ...e2ee.encrypt(to, type, payload, extra) } })
          : e2ee.envelope(to, id, type, payload, extra), directOk)
        if (logged) sentLog.add({ id, to, type, payload, at: Date.now(), status: 'stored', ...(opts.resendOf === undefined ? {} : { orig: opts.resendOf }), ...(wantReceipts ? { receipts: true } : {}) })
        return p
      })
    })
    this.sendChain = prepared.catch(() => {})
    return { prepared, result: this.awaitAck(prepared, opts) }
  }

  private async awaitAck (prepared: Promise<Pending>, opts: SendOptions): Promise<SendResult> {
    const pending = await prepared
    if (isAborted(opts.signal)) {
      // aborted while being prepared: stop waiting; the envelope is in the outbox and is still delivered
      this.transmit()
      throw abortError(opts.signal!)
    }
    const result = new Promise<SendResult>((resolve, reject) => {
      pending.waiters.push({ resolve, reject })
      if (opts.signal !== undefined) {
        const signal = opts.signal
        signal.addEventListener('abort', () => {
          // stop waiting; the envelope stays in the outbox and is still delivered
          const i = pending.waiters.findIndex(w => w.resolve === resolve)
          if (i >= 0) pending.waiters.splice(i, 1)
          reject(abortError(signal))
        }, { once: true })
      }
    })
    this.transmit()
    return await result
  }

  /** Checks the envelope's size and writes it to the outbox (in the caller's transaction, if any). */
  private enqueue (env: Envelope, directOk = false): Pending {
    const envText = JSON.stringify(env)
    const limit = this.limits?.max_envelope_bytes
    const err = validateEnvelope(env, utf8.encode(envText).byteLength, limit ?? Number.MAX_SAFE_INTEGER)
    if (err !== undefined) throw err
    this.cfg.state.outboxAdd({ id: env.id, to: env.to, envText, createdAt: Date.now() })
    const direct = directOk && this.direct !== undefined
    const p: Pending = { id: env.id, to: env.to, envText, transmitted: false, waiters: [], ...(direct ? {} : { direct: 'relay' as const }) }
    this.outbox.set(env.id, p)
    if (direct) this.directQueue.push(p)
    return p
  }

  /**
   * Sends outbox entries not yet on the wire, in order, within the relay's in-flight limit. With
   * direct links, a direct message is offered to the peer first (offerDirect) and goes to the relay
   * only once that failed; a peer's later messages never overtake its earlier ones on the relay.
   */
  private transmit (): void {
    if (this.direct !== undefined) this.offerDirect()
    const ws = this.ws
    if (!this.authed || ws === undefined) return
    const max = this.limits?.max_in_flight ?? 64
    // peers with an earlier message still being tried directly: their later ones wait for its outcome
    let trying: Set<string> | undefined
    for (const p of this.outbox.values()) {
      if (this.inFlight >= max) break
      if (p.direct === 'trying') { (trying ??= new Set()).add(p.to); continue }
      if (p.transmitted || trying?.has(p.to) === true) continue
      p.transmitted = true
      this.inFlight++
      ws.send(encodeSend(p.envText))
    }
  }

  /** Outbox entries not offered to the direct path yet, in order (each is looked at once). */
  private readonly directQueue: Pending[] = []

  /**
   * Offers the new direct messages to the direct path, in order: a message to a peer that has an
   * earlier one on the relay path (not acknowledged yet) takes the relay too, so that the receiver
   * gets a peer's messages in order whichever path each took.
   */
  private offerDirect (): void {
    const direct = this.direct!
    while (this.directQueue.length > 0) {
      const p = this.directQueue.shift()!
      if (!this.outbox.has(p.id) || p.direct !== undefined) continue
      if ((this.relayPath.get(p.to) ?? 0) > 0) { this.toRelay(p); continue }
      p.direct = 'trying'
      direct.send(p.to, p.id, p.envText).then((r) => { this.onDirect(p, r) }, (err: Error) => { this.onDirect(p, { type: 'unavailable', reason: err.message }) })
    }
  }

  private toRelay (p: Pending): void {
    p.direct = 'relay'
    p.counted = true
    this.relayPath.set(p.to, (this.relayPath.get(p.to) ?? 0) + 1)
  }

  /** What the peer answered a direct send: acknowledged, refused (the send fails with its code), or nothing (the relay takes it). */
  private onDirect (p: Pending, r: DirectSendResult): void {
    if (this.outbox.get(p.id) !== p || p.direct !== 'trying') return
    if (r.type === 'ack') { this.onAck(p.id, r.duplicate, true); return }
    if (r.type === 'refused' && !isRetryable(r.code as ErrorCode)) {
      // as the relay's refusal would be: the caller gets the code, nothing is told "sent"
      this.sentLog?.update(p.id, { status: 'refused', code: r.code as ErrorCode, reason: r.message.slice(0, 280) })
      this.onError({ op: 'error', id: p.id, code: r.code, message: `${p.to} refused message ${p.id} on the direct link: ${r.message}` } as ErrorFrame)
      return
    }
    // no direct answer (or "not now"): the relay carries it, same id and bytes (the receiver drops a second copy)
    this.toRelay(p)
    this.transmit()
  }

  private onAck (id: string, duplicate: boolean, direct = false): void {
    const p = this.outbox.get(id)
    if (p === undefined) return
    this.settle(p)
    for (const w of p.waiters) w.resolve(direct ? { id, duplicate, path: 'direct' } : { id, duplicate })
  }

  private settle (p: Pending): void {
    if (p.counted === true) {
      const n = this.relayPath.get(p.to)! - 1
      if (n > 0) this.relayPath.set(p.to, n)
      else this.relayPath.delete(p.to)
    }
    this.outbox.delete(p.id)
    this.cfg.state.outboxRemove(p.id)
    if (p.transmitted) this.inFlight--
    this.transmit()
    if (this.outbox.size === 0 && this.deferred.length === 0) for (const w of this.drainWaiters.splice(0)) w.resolve()
  }

  /** Keeps a refused queued send in the state outbox (HELD_CODES): out of this connection's outbox until it is due again. */
  private hold (p: Pending, err: AgentMeshError): void {
    this.outbox.delete(p.id)
    if (p.transmitted) { p.transmitted = false; this.inFlight-- }
    const retry = isRetryable(err.code)
    this.cfg.onWarning(new AgentMeshError(err.code, `${err.message} (message ${p.id} stays queued in this agent's outbox and goes again ${retry ? `in ${HELD_RETRY_MS / 1000} s` : 'with the next connect() from this agent\'s state'})`))
    if (retry) {
      unref(setTimeout(() => {
        if (this.closed || this.outbox.has(p.id)) return
        this.outbox.set(p.id, p)
        this.transmit()
      }, HELD_RETRY_MS))
    }
    this.transmit()
    if (this.outbox.size === 0 && this.deferred.length === 0) for (const w of this.drainWaiters.splice(0)) w.resolve()
  }

  private onError (f: ErrorFrame): void {
    // retry_after (AM_ERR_RATE_LIMITED): seconds to wait, kept on the error as for REST's Retry-After
    const err = new AgentMeshError(f.code as ErrorCode, f.message, f.retry_after === undefined ? undefined : { retryAfterS: f.retry_after })
    const p = f.id !== undefined ? this.outbox.get(f.id) : undefined
    if (p !== undefined) {
      if (RETRYABLE.has(f.code)) {
        if (p.transmitted) { p.transmitted = false; this.inFlight-- }
        unref(setTimeout(() => { this.transmit() }, 100))
        return
      }
      if (HELD_CODES.has(f.code) && p.waiters.length === 0) {
        this.hold(p, err)
        return
      }
      this.settle(p)
      for (const w of p.waiters) w.reject(err)
      if (p.waiters.length === 0) this.cfg.onWarning(err)
      return
    }
    if (FATAL_AUTH.has(f.code) && !this.authed) {
      // connect() rejects with it; a warning only when no connect() waits (readyReject is cleared once called)
      const reject = this.readyReject
      if (reject !== undefined) reject(err)
      else this.cfg.onWarning(err)
      return
    }
    this.lastError = err
    this.cfg.onWarning(err)
  }

  /** Resolves when every envelope in the outbox was acknowledged. */
  flush (opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.outbox.size === 0 && this.deferred.length === 0) return Promise.resolve()
    if (this.closed) return Promise.reject(new AgentMeshError(ErrorCode.ConnectionClosed, 'the connection is closed'))
    return new Promise((resolve, reject) => {
      const w = { resolve, reject }
      this.drainWaiters.push(w)
      opts.signal?.addEventListener('abort', () => {
        const i = this.drainWaiters.indexOf(w)
        if (i >= 0) this.drainWaiters.splice(i, 1)
        reject(abortError(opts.signal!))
      }, { once: true })
    })
  }

  get pendingSends (): number { return this.outbox.size + this.deferred.length }

  // ------------------------------------------------------------------ receiving

  private onDeliver (seq: number, raw: unknown, room?: string): void {
    if (room !== undefined && (typeof room !== 'string' || !roomRe.test('#' + room) || !Number.isSafeInteger(seq) || seq < 1)) {
      // a room delivery that names no room or seq this client can keep a cursor for: nothing to acknowledge
      this.cfg.onWarning(new AgentMeshError(ErrorCode.InvalidFrame, `dropped a room delivery with an invalid room or seq (${JSON.stringify(room).slice(0, 80)}, ${String(seq).slice(0, 20)})`))
      return
    }
    // already buffered, being processed, or committed (an inbox seq, or a room seq of that room)
    if (room === undefined) {
      if (seq <= this.highestSeq) return
      this.highestSeq = seq
    } else {
      if (seq <= (this.highestRoomSeq.get(room) ?? 0)) return
      this.highestRoomSeq.set(room, seq)
    }
    const env = raw as Envelope
    const invalid = validateEnvelope(raw, 0, Number.MAX_SAFE_INTEGER)
    let item: Inbound = room === undefined ? { seq } : { seq, room }
    let sessionError: AgentMeshError | undefined
    if (invalid !== undefined) {
      this.cfg.onWarning(new AgentMeshError(invalid.code, `dropped delivery ${seq}: ${invalid.message}`))
    } else if (room !== undefined && env.to !== '#' + room) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.InvalidEnvelope, `dropped delivery ${seq} of room ${room}: addressed to ${env.to}`))
    } else if (env.to !== this.amid && env.to.charCodeAt(0) !== 35) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.InvalidEnvelope, `dropped delivery ${seq}: addressed to ${env.to}, not to this agent`))
    } else if (env.via !== undefined && env.via !== this.relayAmidValue) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.BadSignature, `dropped delivery ${seq} (${env.id}): attested by ${env.via}, which is not the relay this agent is connected to`))
    } else if (env.sig === undefined && this.cfg.e2ee === undefined) {
      // an agentmesh/0.3 e2ee envelope is authenticated by its decryption alone, which this connection cannot do
      this.cfg.onWarning(new AgentMeshError(ErrorCode.BadSignature, `dropped delivery ${seq} (${env.id}) from ${env.from}: unsigned, and this connection has no end-to-end encryption to authenticate it`))
    } else if (env.session_cert !== undefined && (sessionError = sessionEnvelopeError(env)) !== undefined) {
      this.cfg.onWarning(new AgentMeshError(sessionError.code, `dropped delivery ${seq} (${env.id}) from ${env.from}: ${sessionError.message}`))
      // without sig: an agentmesh/0.3 e2ee envelope, the one kind validateEnvelope lets go unsigned;
      // its header is authenticated with its content when it is decrypted, in turn (docs/protocol.md §14.3)
    } else if (env.sig !== undefined && env.session_cert === undefined && !verifyEnvelope(env, env.via === undefined ? undefined : keyForAmid(env.via))) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.BadSignature, `dropped delivery ${seq} (${env.id}) from ${env.from}: bad signature`))
    } else if (this.cfg.state.seen(env.from, env.id) || (room === undefined && this.queuedIds.size > 0 && this.queuedIds.has(env.from + '\n' + env.id))) {
      // handed over before (checked before anything is decrypted), or queued already from a direct link
    } else {
      const a = { seq, envelope: env, message: toMessage(env, seq, { type: env.type, payload: env.payload }, false) as Message | undefined }
      if (this.pipeline.arrive(a)) {
        item = a.message === undefined ? { ...item, env, sealed: true } : { ...item, env, msg: a.message }
        if (room === undefined && this.direct !== undefined && this.cfg.deliver) this.queuedIds.add(env.from + '\n' + env.id)
      }
    }
    this.inbound.push(item)
    for (const w of this.inboundWaiters.splice(0)) w()
  }

  // ------------------------------------------------------------------ direct links (p2p.ts, docs/protocol.md §29)

  /** A warning for the application (connect's onWarning): what a feature outside this file has to say. */
  warn (w: AgentMeshError): void { this.cfg.onWarning(w) }

  /** p2p.ts attaches the direct links once they are started (before the first send). */
  attachDirect (d: DirectPath): void { this.direct = d }

  /** The direct links, when connect({ p2p }) started them (directPathOf). */
  get directPath (): DirectPath | undefined { return this.direct }

  /**
   * An envelope received on a direct link from `from` (the AMID the Noise handshake authenticated):
   * checked as a relay delivery is, and more (the sender must be the peer, no relay type, no
   * attestation), dropped as a duplicate of one handed over or queued, refused at once when the gate
   * would refuse any message of this peer (no grant, blocked), else kept in the agent's state
   * (sealed) and queued for the inbound stages. Answers only once it is kept: an ack is durable.
   */
  receiveDirect (from: string, raw: unknown, bytes: number, maxEnvelopeBytes: number, maxPending: number): DirectAnswer {
    const refuse = (code: string, message: string): DirectAnswer => ({ ok: false, code, message })
    if (this.closed) return refuse(ErrorCode.ShuttingDown, 'this agent is closing its connection; send through the relay')
    const e2ee = this.cfg.e2ee
    if (e2ee === undefined || !this.cfg.deliver) return refuse(ErrorCode.ShuttingDown, 'this connection does not take direct messages')
    const invalid = validateEnvelope(raw, bytes, maxEnvelopeBytes)
    if (invalid !== undefined) return refuse(invalid.code, invalid.message)
    const env = raw as Envelope
    if (env.from !== from) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.SenderMismatch, `refused a direct message "from" ${env.from} sent by ${from}: a peer sends only its own messages`))
      return refuse(ErrorCode.SenderMismatch, `the envelope says from ${env.from}, but this link authenticated ${from}`)
    }
    if (env.to !== this.amid) return refuse(ErrorCode.InvalidEnvelope, `addressed to ${env.to}: a direct link carries direct messages to ${this.amid} only (rooms take the relay)`)
    if (env.via !== undefined) return refuse(ErrorCode.AttestationRefused, 'a relay-attested envelope comes from the relay only, never over a direct link')
    if (isRelayType(env.type)) return refuse(ErrorCode.ReservedType, `type ${env.type} is posted by the relay only (task.*, relay.*, system.*, notice), never over a direct link`)
    let sessionError: AgentMeshError | undefined
    if (env.session_cert !== undefined && (sessionError = sessionEnvelopeError(env)) !== undefined) return refuse(sessionError.code, sessionError.message)
    if (env.sig !== undefined && env.session_cert === undefined && !verifyEnvelope(env, undefined)) return refuse(ErrorCode.BadSignature, 'bad signature')
    const key = env.from + '\n' + env.id
    if (this.cfg.state.seen(env.from, env.id) || this.queuedIds.has(key)) return { ok: true, duplicate: true }
    if (this.directPending >= maxPending) return refuse(ErrorCode.InboxFull, `${this.directPending} direct messages wait to be processed, the most this agent keeps; send through the relay`)
    // the gate's first look: a peer every message of which it would refuse is told at once (its content is not needed for that)
    const verdict = CONTROL_TYPES.has(env.type) ? undefined : this.cfg.gate?.refusesDirect(env.from)
    if (verdict !== undefined) {
      this.cfg.onWarning(new AgentMeshError(verdict.code, `refused direct message ${env.id} from ${env.from}: ${verdict.why}`))
      return refuse(verdict.code, verdict.reason)
    }
    e2ee.saveRecord(DIRECT_INBOX_KIND, key, env)
    this.queueDirect(env)
    return { ok: true }
  }

  /** Queues an envelope received directly (kept in the state) for the inbound stages, as a relay delivery is. */
  private queueDirect (env: Envelope): void {
    const key = env.from + '\n' + env.id
    if (this.queuedIds.has(key)) return
    this.queuedIds.add(key)
    this.directPending++
    const a = { seq: 0, envelope: env, message: toMessage(env, 0, { type: env.type, payload: env.payload }, false) as Message | undefined }
    // `directEnv`: its record goes and its id is recorded as handled when it is committed (even when consumed on arrival)
    const item: Inbound = { seq: 0, directEnv: env }
    if (this.pipeline.arrive(a)) {
      item.env = env
      if (a.message === undefined) item.sealed = true
      else item.msg = a.message
    }
    this.inbound.push(item)
    for (const w of this.inboundWaiters.splice(0)) w()
  }

  /**
   * `peer` could not decrypt message `failed` of this agent (it lost its state, or the session):
   * that message and the ones sent to it after, still in the sent log and not resent yet, go again
   * in a new session (the reset marked the old one), each shown to the peer under its first id.
   */
  private resendAfterReset (peer: string, failed: string | undefined): void {
    const log = this.sentLog
    if (log === undefined || failed === undefined || this.closed) return
    const first = log.get(failed)
    if (first === undefined || first.to !== peer) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.UnknownSession, `${peer} could not decrypt message ${failed} from this agent, which is no longer in the sent log (kept ${Math.round(SENT_LOG_TTL_MS / 3600_000)} h, ${MAX_SENT_LOG} messages): it is lost; send it again`))
      return
    }
    // taken in one step, so that two processes of this agent acting on the same reset resend once
    const todo = this.cfg.state.transaction(() => {
      const out: SentEntry[] = []
      for (const e of log.since(peer, first.at)) {
        if (e.status === 'resent' || e.type === DELIVERY_NOTICE_TYPE) continue
        const as = uuidv7()
        log.update(e.id, { status: 'resent', resentAs: as })
        out.push({ ...e, resentAs: as })
      }
      return out
    })
    for (const e of todo) {
      this.submit(peer, e.payload, { type: e.type, id: e.resentAs!, resendOf: e.orig ?? e.id }).result.catch((err: Error) => {
        this.cfg.onWarning(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.Internal, `could not send message ${e.id} to ${peer} again: ${err.message}`))
      })
    }
    if (todo.length > 0) this.cfg.onWarning(new AgentMeshError(ErrorCode.UnknownSession, `${peer} could not decrypt message ${failed} from this agent (it lost its state?): ${todo.length} message(s) sent again in a new session`))
  }

  /** What became of the direct messages this agent sent lately (newest last, without content). */
  sent (opts: { peer?: string, limit?: number } = {}): SentStatusEntry[] {
    if (this.sentLog === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection was opened without end-to-end encryption, which keeps the sent log')
    return this.sentLog.list(opts)
  }

  /**
   * A connection that only sends (`deliver: false`) still reads what is delivered, and acts on what
   * is addressed to the agent's machinery rather than to the application: resets, knocks and their
   * answers, revocations, sender keys, delivery notices (CONTROL_TYPES). Those are recorded as
   * handled (a listening process drops them as duplicates); the cursor moves only over a run of
   * them from the start, never past an ordinary message, which stays for the agent's listener
   * (decrypted and kept sealed, if it was decrypted here). Private room messages are left as they are.
   */
  private async peekLoop (): Promise<void> {
    let clean = true
    for (;;) {
      while (this.inbound.length > 0 && !this.closed) {
        const item = this.inbound.shift()!
        // room messages are for the listener (none is a control one): left for it, not committed
        if (item.room !== undefined) continue
        let control = false
        try { control = await this.peekOne(item) } catch (err) { this.cfg.onWarning(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, (err as Error).message)) }
        if (!control) clean = false
        else if (clean) this.commit(item)
        else if (item.msg !== undefined && this.relayId !== undefined) {
          const env = item.env
          this.cfg.state.transaction(() => {
            this.cfg.state.commit(this.relayId!, 0, item.msg!.from, item.msg!.id)
            if (env !== undefined && item.sealed === true) this.cfg.e2ee?.forget(env)
          })
        }
        if (item.room === undefined) this.peekDone = Math.max(this.peekDone, item.seq)
      }
      this.peekSettle()
      if (this.closed) return
      await new Promise<void>((resolve) => { this.inboundWaiters.push(resolve) })
    }
  }

  /** Whether a delivery was a control one, acted on here. */
  private async peekOne (item: Inbound): Promise<boolean> {
    const env = item.env
    if (env === undefined) return true // acted on or dropped on arrival (a reset, an invalid delivery)
    let msg = item.msg
    if (msg === undefined) {
      if (env.type !== E2EE_TYPE || this.cfg.e2ee === undefined) return false // a private room message: for the listener
      let d
      try { d = await this.cfg.e2ee.decrypt(env) } catch { return false } // the listener warns and asks for a reset
      msg = toMessage(env, item.seq, d, true)
    }
    // a file key is kept here too (its stage), and the message left for the listener
    if (msg.room !== undefined || msg.from === this.relayAmidValue || !(CONTROL_TYPES.has(msg.type) || msg.type === FILE_MESSAGE_TYPE)) return false
    const out = await this.pipeline.run(item.seq, env, msg, undefined, () => {})
    if (out !== undefined) return false
    item.msg = msg
    return true
  }

  private peekSettle (): void {
    if (this.inbound.length === 0 && this.peekDone >= this.peekTarget) for (const w of this.peekWaiters.splice(0)) w()
  }

  /**
   * A connection that only sends: resolves once the deliveries waiting at connect time were looked
   * at (the control ones acted on), or after `timeoutMs`. Other connections resolve at once.
   */
  async caughtUp (timeoutMs = 3000): Promise<void> {
    if (!this.peek || !this.authed) return
    if (this.inbound.length === 0 && this.peekDone >= this.peekTarget) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs)
      unref(t)
      this.peekWaiters.push(() => { clearTimeout(t); resolve() })
    })
  }

  /**
   * Messages the gate held back (a rate limit, an open breaker) whose time has come go back into the
   * queue, ahead of new deliveries, to be judged again; checked on every connect and every second.
   */
  private releaseDeferred (): void {
    if (this.deferTimer === undefined && !this.closed) {
      this.deferTimer = setInterval(() => { if (this.closed) clearInterval(this.deferTimer); else this.releaseDeferred() }, DEFER_POLL_MS)
      unref(this.deferTimer)
    }
    const gate = this.cfg.gate
    if (this.closed || !this.cfg.deliver || gate === undefined || this.relayId === undefined) return
    const due = gate.releasable()
    if (due.length === 0) return
    this.inbound.unshift(...due.map(m => ({ seq: 0, env: m.envelope, msg: m, deferred: true })))
    for (const w of this.inboundWaiters.splice(0)) w()
  }

  private deferTimer: ReturnType<typeof setInterval> | undefined

  /** Marks the message being processed as done: dedupe record + cursor, then the cursor ack. */
  private commitProcessing (): void {
    const item = this.processing
    if (item === undefined) return
    this.processing = undefined
    this.commit(item)
  }

  /**
   * Commits a delivery; under manual acknowledgement, in delivery order: behind a message handed
   * over and not yet acknowledged it waits (the cursor must not move past that one).
   */
  private commit (item: Inbound): void {
    if (this.leased.length === 0) { this.commitNow(item); return }
    this.leased.push({ item, done: true })
  }

  ack (m: Message): void {
    const i = this.leased.findIndex(l => l.item.msg === m)
    if (i < 0) return
    this.leased[i]!.done = true
    while (this.leased.length > 0 && this.leased[0]!.done) this.commitNow(this.leased.shift()!.item)
  }

  private commitNow (item: Inbound): void {
    if (item.directEnv !== undefined) { this.commitDirect(item, item.directEnv); return }
    if (this.relayId === undefined) return
    // a message handed to the application (a consumed one has no msg left): processed now
    if (item.msg?.receiptRequested === true && !CONTROL_TYPES.has(item.msg.type)) this.receiptSender?.add(item.msg, 'processed')
    if (item.env !== undefined && item.room === undefined && this.queuedIds.size > 0) this.queuedIds.delete(item.env.from + '\n' + item.env.id)
    const relay = this.relayId
    const env = item.env
    if (env === undefined || (item.sealed !== true && item.deferred !== true)) {
      this.cfg.state.commit(relay, item.seq, item.msg?.from, item.msg?.id, item.room)
    } else {
      this.cfg.state.transaction(() => {
        this.cfg.state.commit(relay, item.seq, item.msg?.from, item.msg?.id, item.room)
        this.cfg.e2ee?.forget(env)
        if (item.held === true) this.cfg.e2ee?.unhold(env)
        if (item.deferred === true) this.cfg.gate?.released(env)
      })
    }
    if (item.seq === 0) return
    if (item.room === undefined) this.cursorToSend = Math.max(this.cursorToSend, item.seq)
    else this.roomCursorsToSend.set(item.room, Math.max(this.roomCursorsToSend.get(item.room) ?? 0, item.seq))
    if (++this.cursorBacklog >= CURSOR_ACK_EAGER) {
      this.flushCursors()
    } else if (!this.cursorScheduled) {
      this.cursorScheduled = true
      this.cursorTimer = setTimeout(() => { this.flushCursors() }, CURSOR_ACK_DELAY_MS)
      unref(this.cursorTimer)
    }
  }

  /**
   * Commits a delivery that came on a direct link: its (sender, id) recorded as handled (and the
   * message id, for a resend) and its kept copy dropped, in one step; no cursor moves (§29.3).
   */
  private commitDirect (item: Inbound, de: Envelope): void {
    if (item.msg?.receiptRequested === true && !CONTROL_TYPES.has(item.msg.type)) this.receiptSender?.add(item.msg, 'processed')
    const relay = this.relayId ?? ''
    const key = de.from + '\n' + de.id
    this.cfg.state.transaction(() => {
      if (item.msg !== undefined && item.msg.id !== de.id) this.cfg.state.commit(relay, 0, item.msg.from, item.msg.id)
      this.cfg.state.commit(relay, 0, de.from, de.id)
      if (item.sealed === true) this.cfg.e2ee?.forget(de)
      this.cfg.e2ee?.dropRecord(DIRECT_INBOX_KIND, key)
    })
    if (this.queuedIds.delete(key)) this.directPending--
  }

  /** Sends the pending cursor acks now (the timer's, or past CURSOR_ACK_EAGER deliveries). */
  private flushCursors (): void {
    clearTimeout(this.cursorTimer)
    this.cursorScheduled = false
    if (this.authed && this.ws !== undefined) this.sendCursors(this.ws)
  }

  /** The pending cursor acks: the inbox's when it moved, one per room that moved. */
  private sendCursors (ws: WebSocketLike): void {
    this.cursorBacklog = 0
    if (this.cursorToSend > this.cursorSent) {
      this.cursorSent = this.cursorToSend
      ws.send(encodeFrame({ op: 'cursor', seq: this.cursorToSend }))
    }
    for (const [room, seq] of this.roomCursorsToSend) ws.send(encodeFrame({ op: 'cursor', room, seq }))
    this.roomCursorsToSend.clear()
  }

  /** Next message for the application, committing skipped entries (duplicates, invalid) on the way. */
  private async next (signal?: AbortSignal): Promise<Message | undefined> {
    // the message the application just finished: committed in the step that saves the next
    // decryption when there is one (one transaction instead of two), else right away
    let prev = this.processing
    this.processing = undefined
    const commitPrev = (): void => {
      if (prev === undefined) return
      const p = prev
      prev = undefined
      this.commit(p)
    }
    for (;;) {
      while (this.inbound.length > 0) {
        const item = this.inbound.shift()!
        if (item.env === undefined) {
          // dropped on arrival: only committed, in its turn
          commitPrev()
          this.commit(item)
          continue
        }
        const p = prev
        prev = undefined
        let merged = false
        const inStep = p === undefined ? undefined : () => { this.commit(p); merged = true }
        // the previous message is committed once the first stage is done, unless it was saved in
        // that stage's step (a decryption) that kept its message
        let msg: Message | undefined
        try {
          msg = await this.pipeline.run(item.seq, item.env, item.msg, inStep, (kept) => { if (p !== undefined && (!kept || !merged)) this.commit(p) })
        } catch (err) {
          if (!(err instanceof DeferralFull)) throw err
          // the gate holds back all it may: this one stays unacknowledged (the cursor stops) until released ones go
          this.inbound.unshift(item)
          await new Promise<void>((resolve) => {
            const wake = (): void => { signal?.removeEventListener('abort', wake); resolve() }
            this.inboundWaiters.push(wake)
            signal?.addEventListener('abort', wake, { once: true })
          })
          if (this.closed || signal?.aborted === true) return undefined
          continue
        }
        if (msg === undefined) { delete item.msg; this.commit(item); continue }
        item.msg = item.directEnv === undefined ? msg : { ...msg, path: 'direct' }
        if (this.manualAck) this.leased.push({ item, done: false })
        else this.processing = item
        if (msg.receiptRequested === true && !CONTROL_TYPES.has(msg.type)) this.receiptSender?.add(item.msg, 'delivered')
        return item.msg
      }
      commitPrev()
      if (this.closed) return undefined
      if (signal?.aborted === true) return undefined
      await new Promise<void>((resolve) => {
        const wake = (): void => { signal?.removeEventListener('abort', wake); resolve() }
        this.inboundWaiters.push(wake)
        signal?.addEventListener('abort', wake, { once: true })
      })
    }
  }

  async peer (amid: string): Promise<PeerStatus> {
    const e2ee = this.requireE2ee()
    await e2ee.learnPeerKey(amid)
    return e2ee.peerStatus(amid)
  }

  async acceptPeerKey (amid: string): Promise<PeerStatus & { held: number }> {
    const e2ee = this.requireE2ee()
    const r = e2ee.acceptPeerKey(amid)
    return { ...e2ee.peerStatus(amid), held: r.held }
  }

  async knock (peer: string, intent: { category: string, summary: string, scopes?: string[], duration_s?: number }): Promise<{ id: string }> {
    return await this.requireGate().knock(peer, intent)
  }

  knocks (): ReturnType<Gate['held']> { return this.requireGate().held() }

  async answerKnock (id: string, decision: 'accept' | 'reject', opts: Parameters<Gate['answer']>[2] = {}): ReturnType<Gate['answer']> {
    return await this.requireGate().answer(id, decision, opts)
  }

  grants (): ReturnType<Gate['grants']> { return this.requireGate().grants() }

  async revokeGrant (peer: string): Promise<boolean> { return await this.requireGate().revoke(peer) }

  safetyLog (): ReturnType<Gate['safetyLog']> { return this.requireGate().safetyLog() }

  block (peer: string, opts: { reason?: string } = {}): ReturnType<Gate['block']> { return this.requireGate().block(peer, opts) }

  unblock (peer: string): boolean { return this.requireGate().unblock(peer) }

  blocks (): ReturnType<Gate['blocks']> { return this.requireGate().blocks() }

  private requireGate (): Gate {
    if (this.cfg.gate === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection was opened without end-to-end encryption, which knocks and grants need')
    return this.cfg.gate
  }

  /** connect() hands the gate over once it is open (it sends through this connection). */
  setGate (gate: Gate): void { this.cfg.gate = gate }

  sessions (): Array<{ peer: string, usedAt: number }> {
    return this.requireE2ee().sessions()
  }

  async resetSession (amid: string): Promise<boolean> {
    return this.requireE2ee().deleteSession(amid)
  }

  private requireE2ee (): E2ee {
    if (this.cfg.e2ee === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection was opened without end-to-end encryption')
    return this.cfg.e2ee
  }

  messages (opts: { signal?: AbortSignal, manualAck?: boolean } = {}): AsyncIterableIterator<Message> {
    const self = this
    if (opts.manualAck === true) this.manualAck = true
    const it: AsyncIterableIterator<Message> = {
      async next () {
        const m = await self.next(opts.signal)
        return m === undefined ? { done: true, value: undefined } : { done: false, value: m }
      },
      async return () {
        // the loop body finished with this message before breaking out
        self.commitProcessing()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator] () { return it },
    }
    return it
  }

  async peers (): Promise<PeerInfo[]> {
    const withSession = this.cfg.e2ee?.sessions().map(s => s.peer) ?? []
    if (this.direct !== undefined) return await this.direct.peers(withSession)
    return [...new Set(withSession)].sort().map(amid => ({ amid, path: 'relay' as const, rttMs: null, addrs: [] }))
  }

  p2pAddresses (): string[] { return this.direct?.addresses() ?? [] }

  status (): AsyncIterable<Status> { return this.statusChannel.subscribe() }

  get connected (): boolean { return this.authed }

  link (): LinkStatus {
    return {
      state: this.linkState,
      outbox: this.pendingSends,
      since: this.linkSince,
      relay: this.url,
      ...(this.linkState === 'reconnecting' || this.linkState === 'connecting' ? { attempt: this.attempt } : {}),
      ...(this.lastError === undefined || this.linkState === 'connected' ? {} : { lastError: this.lastError.message }),
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    // receipts gathered go out with the rest
    this.receiptSender?.flush()
    // what is being prepared (encrypted into the outbox: a resend after a reset, say) gets there
    // before the state closes, and while connected the outbox gets a moment to drain
    const settled = new Promise<void>((resolve) => { const t = setTimeout(resolve, CLOSE_SETTLE_MS); unref(t); void this.sendChain.then(() => { clearTimeout(t); resolve() }) })
    await settled
    if ((this.authed || this.direct !== undefined) && this.outbox.size > 0) await this.flush({ signal: AbortSignal.timeout(CLOSE_SETTLE_MS) }).catch(() => {})
    if (this.closed) return
    this.closed = true
    clearTimeout(this.reconnectTimer)
    this.cfg.e2ee?.stop()
    this.cfg.gate?.close()
    await this.direct?.stop().catch((err: Error) => { this.cfg.onWarning(new AgentMeshError(ErrorCode.Internal, `could not stop the direct links: ${err.message}`)) })
    this.readyReject?.(new AgentMeshError(ErrorCode.ConnectionClosed, 'the connection was closed before it was established'))
    const ws = this.ws
    this.ws = undefined
    if (ws !== undefined) {
      // flush a pending cursor ack before going
      if (this.authed && this.cursorScheduled) { clearTimeout(this.cursorTimer); this.cursorScheduled = false; this.sendCursors(ws) }
      await new Promise<void>((resolve) => {
        if (ws.readyState === WS_CLOSED) { resolve(); return }
        ws.addEventListener('close', () => { resolve() }, { once: true })
        ws.close(1000, 'client closing')
        unref(setTimeout(() => { ws.terminate?.(); resolve() }, 1000))
      })
    }
    this.authed = false
    for (const p of this.outbox.values()) {
      for (const w of p.waiters) w.reject(new AgentMeshError(ErrorCode.ConnectionClosed, `the connection closed before envelope ${p.id} was acknowledged; it stays in the outbox and is sent on the next connect`))
    }
    for (const e of this.deferred) {
      for (const w of e.waiters) w.reject(new AgentMeshError(ErrorCode.ConnectionClosed, `the connection closed before the relay could be reached for ${e.send.id}; it stays in this agent's state and is sent after the next connect`))
    }
    for (const w of this.inboundWaiters.splice(0)) w()
    for (const w of this.drainWaiters.splice(0)) w.reject(new AgentMeshError(ErrorCode.ConnectionClosed, `the connection closed with ${this.outbox.size + this.deferred.length} send(s) unacknowledged; they stay in the outbox`))
    this.setLink('offline')
    this.statusChannel.push({ type: 'closed' })
    this.statusChannel.end()
    this.eventChannel.end()
    if (this.cfg.ownsState) this.cfg.state.close()
  }
}

/** The direct links of a connection made by connect({ p2p }) (for tests and tools: `@agentmesh/client/internal`). */
export function directPathOf (conn: Connection): DirectPath | undefined {
  return conn instanceof ConnectionImpl ? conn.directPath : undefined
}
