/**
 * A `Backplane` over NATS core publish/subscribe (docs/architecture.md "The Backplane"): relay nodes
 * sharing one Store wake and inform each other through a NATS server. The bus only wakes and
 * informs: every message is durable in the Store first, so a message the bus loses (NATS away for a
 * while, a reconnect) delays, never loses: while the connection is down nothing is published or
 * buffered (memory stays bounded). When the connection comes back the backplane says so
 * (`onGap`), and the relay core reads every connected agent's inbox and rooms from the Store again;
 * the core also does that on a timer (`backplaneCatchUpMs`).
 *
 * Subjects: one per message type under a prefix (`<prefix>.inbox`, `.room`, `.presence`, `.cache`,
 * `.event`, `.node` for heartbeats and a clean stop's `node:leaving`, `.rate` for rate-limit spending), so an operator can watch one kind with `nats sub`; each node subscribes once to
 * `<prefix>.>` (one subscription on one connection keeps each publisher's order). The payload is
 * the message as JSON (small: AMIDs, room ids, seqs; an event frame as text). One more subject,
 * `<prefix>.gap`, carries no BackplaneMessage: a node whose connection came back says so there,
 * and every other node catches up too (what the returning node committed while it was away was
 * announced to no one).
 */
import { randomBytes } from 'node:crypto'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Backplane, BackplaneMessage, CacheKind } from '@agentmesh/server'

/** Subject prefix of every message. @default 'agentmesh.bp' */
export const DEFAULT_SUBJECT_PREFIX = 'agentmesh.bp'
/** How long the first connection may take before start() fails. @default 5 s */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000
/** Wait between reconnect attempts once connected (NATS's client retries for ever). @default 1 s */
export const DEFAULT_RECONNECT_WAIT_MS = 1000
/** Subscribers one backplane serves at most (a relay node has two: the core and chat). @default 1,000 */
export const MAX_SUBSCRIBERS = 1000

const SUBJECT_OF: Record<BackplaneMessage['type'], string> = {
  'inbox:stored': 'inbox',
  'room:stored': 'room',
  presence: 'presence',
  'cache:invalidate': 'cache',
  event: 'event',
  'node:heartbeat': 'node',
  'node:leaving': 'node',
  'rate:spent': 'rate',
}
const CACHE_KINDS: ReadonlySet<CacheKind> = new Set(['room', 'members', 'handle', 'agent'])
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

export interface NatsBackplaneInit {
  /** The NATS server(s): `nats://127.0.0.1:4222`, or several for a NATS cluster. */
  servers: string | string[]
  /** Subject prefix (dot-separated tokens of letters, digits, `_` and `-`); relays that share a Store share it. @default 'agentmesh.bp' */
  prefix?: string
  /** This connection's name as the NATS server shows it. @default 'agentmesh-relay' */
  name?: string
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number
  /** @default DEFAULT_RECONNECT_WAIT_MS */
  reconnectWaitMs?: number
  /** @default MAX_SUBSCRIBERS */
  maxSubscribers?: number
  /**
   * TLS to NATS (PEM text): the CA its certificate must chain to, and this relay's client
   * certificate and key for mutual TLS. Given: the connection is TLS, verified; a server that does
   * not speak TLS or whose certificate does not verify is refused (AM_ERR_BACKPLANE_UNAVAILABLE).
   */
  tls?: { ca?: string, cert?: string, key?: string }
  /** A subscriber threw, or a message on the subjects was not one (never its contents: only why). */
  onError?: (err: unknown) => void
  /** The connection to NATS went away (`disconnect`) or came back (`reconnect`): for logs and health. */
  onStatus?: (status: 'disconnect' | 'reconnect') => void
}

export interface NatsBackplane extends Backplane {
  /** Connects; a NATS that does not answer rejects with AM_ERR_BACKPLANE_UNAVAILABLE. */
  start (): Promise<void>
  /** Drains what was published, then closes the connection. */
  stop (): Promise<void>
  /**
   * Calls `fn` when messages may have been lost: this node's connection to NATS came back after a
   * loss, or another node's did (its notice on `<prefix>.gap`).
   */
  onGap (fn: () => void): () => void
  /**
   * Counts since it was made: messages published, not published because NATS was away (the
   * catch-up after the reconnect stands in for them), received, dropped as malformed, reconnects,
   * and gap notices heard from other nodes.
   */
  readonly counters: { published: number, dropped: number, received: number, malformed: number, reconnects: number, gapsHeard: number }
  /** Whether the connection to NATS is up now. */
  connected (): boolean
}

/** Answers the message if `v` is one (checked field by field: the bus is a network input), else undefined. */
export function asBackplaneMessage (v: unknown): BackplaneMessage | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const m = v as Record<string, unknown>
  if (typeof m.origin !== 'string') return undefined
  const str = (x: unknown): x is string => typeof x === 'string'
  const seq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0
  switch (m.type) {
    case 'inbox:stored':
      return Array.isArray(m.inboxes) && m.inboxes.every((i: { recipient?: unknown, seq?: unknown }) => typeof i === 'object' && i !== null && str(i.recipient) && seq(i.seq)) ? m as BackplaneMessage : undefined
    case 'room:stored':
      return Array.isArray(m.rooms) && m.rooms.every((r: { room?: unknown, seq?: unknown }) => typeof r === 'object' && r !== null && str(r.room) && seq(r.seq)) ? m as BackplaneMessage : undefined
    case 'presence':
      return str(m.amid) && (m.status === 'online' || m.status === 'offline') ? m as BackplaneMessage : undefined
    case 'cache:invalidate':
      return str(m.key) && CACHE_KINDS.has(m.kind as CacheKind) ? m as BackplaneMessage : undefined
    case 'event':
      return Array.isArray(m.amids) && m.amids.every(str) && str(m.frame) ? m as BackplaneMessage : undefined
    case 'node:heartbeat':
    case 'node:leaving':
      return m as BackplaneMessage
    case 'rate:spent':
      return typeof m.spent === 'object' && m.spent !== null && !Array.isArray(m.spent) &&
        Object.values(m.spent).every(v => Array.isArray(v) && v.every((e: unknown) => Array.isArray(e) && e.length === 2 && str(e[0]) && typeof e[1] === 'number' && Number.isFinite(e[1]) && e[1] > 0))
        ? m as BackplaneMessage
        : undefined
    default:
      return undefined
  }
}

/** Names the servers in an error (without the credentials a URL may carry). */
function named (servers: readonly string[]): string {
  return servers.map((s) => s.replace(/\/\/[^@/]*@/, '//')).join(', ')
}

/**
 * A backplane over NATS. `start()` connects (a NATS that does not answer fails it with
 * AM_ERR_BACKPLANE_UNAVAILABLE naming the server); afterwards the client reconnects by itself for
 * as long as it takes, and each reconnect calls the `onGap` handlers.
 */
export function natsBackplane (init: NatsBackplaneInit): NatsBackplane {
  const prefix = init.prefix ?? DEFAULT_SUBJECT_PREFIX
  if (!PREFIX.test(prefix)) throw new AgentMeshError(ErrorCode.InvalidConfig, `the NATS subject prefix "${prefix}" is not dot-separated tokens of letters, digits, _ and -`)
  const servers = Array.isArray(init.servers) ? init.servers : init.servers.split(',').map(s => s.trim()).filter(s => s !== '')
  if (servers.length === 0) throw new AgentMeshError(ErrorCode.InvalidConfig, 'a NATS backplane needs a server address, e.g. nats://127.0.0.1:4222')
  const max = init.maxSubscribers ?? MAX_SUBSCRIBERS
  const encoder = new TextEncoder()
  const decoder = new TextDecoder()
  let subscribers: Array<(msg: BackplaneMessage) => void> = []
  let gaps: Array<() => void> = []
  let nc: NatsConnection | undefined
  let stopped = true
  let up = false
  /** this handle's name on `<prefix>.gap` (a node does not answer its own notice) */
  const self = randomBytes(8).toString('hex')
  const gapSubject = `${prefix}.gap`
  const counters = { published: 0, dropped: 0, received: 0, malformed: 0, reconnects: 0, gapsHeard: 0 }

  const receive = (data: Uint8Array): void => {
    let msg: BackplaneMessage | undefined
    try { msg = asBackplaneMessage(JSON.parse(decoder.decode(data))) } catch { msg = undefined }
    if (msg === undefined) {
      counters.malformed++
      init.onError?.(new AgentMeshError(ErrorCode.InvalidFrame, `a message on ${prefix}.> is not a backplane message (${data.length} bytes): dropped`))
      return
    }
    counters.received++
    for (const fn of subscribers) {
      try { fn(msg) } catch (err) { init.onError?.(err) }
    }
  }

  const gap = (): void => {
    for (const fn of gaps) {
      try { fn() } catch (err) { init.onError?.(err) }
    }
  }

  const watch = async (conn: NatsConnection): Promise<void> => {
    for await (const s of conn.status()) {
      if (s.type === 'disconnect') {
        up = false
        init.onStatus?.('disconnect')
      } else if (s.type === 'reconnect') {
        up = true
        counters.reconnects++
        init.onStatus?.('reconnect')
        // what was published while the connection was away may be lost: have the other nodes read
        // the Store again (what this node committed meanwhile was told to no one), then this one;
        // the notice goes first, so what this node's handlers publish again arrives after it
        conn.publish(gapSubject, encoder.encode(self))
        gap()
      }
    }
  }

  return {
    counters,
    connected: () => up,
    async start () {
      if (!stopped) return
      let conn: NatsConnection
      try {
        conn = await connect({
          servers,
          name: init.name ?? 'agentmesh-relay',
          timeout: init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: init.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
          waitOnFirstConnect: false,
          ...(init.tls === undefined ? {} : { tls: { ...init.tls } }),
        })
      } catch (err) {
        throw new AgentMeshError(ErrorCode.BackplaneUnavailable, `the NATS backplane at ${named(servers)} did not answer (${(err as Error).message}); start nats-server there or give another --backplane`, { cause: err })
      }
      nc = conn
      up = true
      stopped = false
      conn.subscribe(`${prefix}.>`, {
        callback: (err, m) => {
          if (err !== null) return
          if (m.subject !== gapSubject) { receive(m.data); return }
          if (decoder.decode(m.data) !== self) { counters.gapsHeard++; gap() }
        },
      })
      void watch(conn).catch(() => {})
      // the server has the subscription once start() resolves: what another node publishes from
      // then on reaches this one (without the round trip, a publish right after start could pass
      // the SUB on its way to the server and be missed)
      await conn.flush().catch(() => {})
    },
    async stop () {
      if (stopped) return
      stopped = true
      up = false
      const conn = nc
      nc = undefined
      // what was published is flushed before the connection closes
      await conn?.drain().catch(async () => { await conn.close() })
    },
    async publish (msg) {
      if (stopped || nc === undefined) throw new AgentMeshError(ErrorCode.ShuttingDown, `the backplane is stopped: a ${msg.type} message was not published`)
      const data = encoder.encode(JSON.stringify(msg))
      const limit = nc.info?.max_payload
      if (limit !== undefined && data.length > limit) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, `a ${msg.type} backplane message of ${data.length} bytes is over the NATS server's max_payload (${limit}); it was not published (an inbox or room wake-up is caught up from the Store; an event is lost)`)
      }
      if (!up) {
        // NATS is away: nothing is buffered for it (memory stays bounded however long it is away);
        // every node catches up from the Store when it is back (onGap), which covers this message
        counters.dropped++
        return
      }
      // NATS keeps a publisher's order on one connection
      nc.publish(`${prefix}.${SUBJECT_OF[msg.type]}`, data)
      counters.published++
    },
    subscribe (onMessage) {
      if (subscribers.length >= max) throw new AgentMeshError(ErrorCode.InvalidConfig, `a NATS backplane serves at most ${max} subscribers`)
      subscribers = [...subscribers, onMessage]
      return () => { subscribers = subscribers.filter(s => s !== onMessage) }
    },
    onGap (fn) {
      gaps = [...gaps, fn]
      return () => { gaps = gaps.filter(g => g !== fn) }
    },
  }
}
