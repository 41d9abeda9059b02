/**
 * The Backplane: what relay nodes sharing one Store tell each other (docs DESIGN "Shape of the
 * code"). Durable truth stays in the Store; the backplane carries what a node keeps in memory and
 * another must learn: that an inbox or a room's log grew (so a connection there pumps it), who is online, which
 * cached rows changed, and events for agents connected elsewhere. Every message names the node it
 * came from: a node applies its own changes directly and ignores its own messages when they come
 * back, so nothing is applied twice.
 *
 * `inProcessBackplane()` is the default (one node, or several relays in one process for tests);
 * a networked one (NATS) implements the same interface in its own package and runs the compliance
 * suite in @agentmesh/compliance-tests/backplane.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** A cached row that changed: the node that holds it drops it and reads the Store again. */
export type CacheKind = 'room' | 'members' | 'handle' | 'agent'

export type BackplaneMessage =
  /** Envelopes were stored in these inboxes, up to these seqs: a node with a connection there pumps it. */
  | { type: 'inbox:stored', origin: string, inboxes: ReadonlyArray<{ recipient: string, seq: number }> }
  /** Room messages were stored in these rooms' logs, up to these room seqs: a node with a member reading the room by cursor pumps it. */
  | { type: 'room:stored', origin: string, rooms: ReadonlyArray<{ room: string, seq: number }> }
  /** An agent's first connection on `origin` authenticated (online) or its last one there closed (offline). */
  | { type: 'presence', origin: string, amid: string, status: 'online' | 'offline' }
  /** A cached row changed in the Store: `key` is the room id, or the agent's AMID. */
  | { type: 'cache:invalidate', origin: string, kind: CacheKind, key: string }
  /** An event frame (presence, typing, read, member changes) for these agents' connections on any node. */
  | { type: 'event', origin: string, amids: readonly string[], frame: string }
  /** `origin` is alive (every clusterHeartbeatMs): nodes not heard for clusterPeerTimeoutMs are dropped and their agents go offline (cluster.ts). */
  | { type: 'node:heartbeat', origin: string }
  /** `origin` stops cleanly: the last thing it says, so the others drop it at once (not counted as lost) and its agents go offline there (cluster.ts). */
  | { type: 'node:leaving', origin: string }
  /**
   * What callers spent of their rate limits on `origin` since its last such message (rate-share.ts):
   * per limit name (`api`, `chat`: the per-agent ones), [bucket key, tokens] pairs. The other nodes
   * take them from their own buckets, so a limit holds across the cluster.
   */
  | { type: 'rate:spent', origin: string, spent: Readonly<Record<string, ReadonlyArray<readonly [string, number]>>> }

export interface Backplane {
  start (): Promise<void> | void
  /** Stops delivery; later publishes reject with AM_ERR_SHUTTING_DOWN. */
  stop (): Promise<void> | void
  /**
   * Sends to every subscriber (on every node, this one included), in publish order per publisher.
   * Subscribers must not change what they receive: it may be the object published.
   */
  publish (msg: BackplaneMessage): Promise<void>
  /** Answers the function that unsubscribes. */
  subscribe (onMessage: (msg: BackplaneMessage) => void): () => void
  /**
   * A networked backplane calls `fn` when messages may have been lost (its connection to the bus
   * came back after a loss): the relay core then reads every connected agent's inbox and rooms from
   * the Store again. Answers the function that removes it. An in-process backplane loses nothing
   * and has none.
   */
  onGap? (fn: () => void): () => void
}

/** Subscribers one in-process backplane serves at most (one per relay node in this process). @default 1,000 */
export const MAX_IN_PROCESS_SUBSCRIBERS = 1000

/**
 * A backplane inside one process. Delivery is asynchronous (a microtask after publish, as a network
 * would be), in publish order; publish resolves once every current subscriber was called. A
 * subscriber that throws does not keep the others from their message.
 */
export function inProcessBackplane (init: { maxSubscribers?: number, onError?: (err: unknown) => void } = {}): Backplane {
  const max = init.maxSubscribers ?? MAX_IN_PROCESS_SUBSCRIBERS
  let subscribers: Array<(msg: BackplaneMessage) => void> = []
  let stopped = false
  return {
    start () { stopped = false },
    stop () { stopped = true },
    async publish (msg) {
      if (stopped) throw new AgentMeshError(ErrorCode.ShuttingDown, `the backplane is stopped: a ${msg.type} message was not published`)
      await Promise.resolve()
      // the list as it is now: one that subscribes while this message is delivered gets the next ones
      for (const fn of subscribers) {
        try { fn(msg) } catch (err) { init.onError?.(err) }
      }
    },
    subscribe (onMessage) {
      if (subscribers.length >= max) throw new AgentMeshError(ErrorCode.InvalidConfig, `an in-process backplane serves at most ${max} subscribers`)
      subscribers = [...subscribers, onMessage]
      return () => { subscribers = subscribers.filter(s => s !== onMessage) }
    },
  }
}
