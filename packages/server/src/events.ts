/**
 * Typed events of the relay (`noun:verb` keys). The core emits what happened to connections and
 * messages; features (chat, tasks, yours) subscribe in their start(). Listeners run synchronously
 * in subscription order, right where the event happens: they must not block (start async work and
 * return). A listener that throws is logged and does not keep the others from running.
 */
import type { Envelope } from '@agentmesh/protocol'
import type { RoomRecord } from '@agentmesh/store'
import type { Logger } from './log.ts'

export interface RelayEvents {
  /**
   * A connection of an agent authenticated (each one, before 'agent:online' or 'agent:active'), with
   * the software version its auth frame reported (§3).
   */
  'agent:authenticated': { amid: string, agentVersion?: string }
  /** An agent's first connection authenticated (on this node). */
  'agent:online': { amid: string }
  /** An online agent sent something, or authenticated one more connection. */
  'agent:active': { amid: string }
  /** An agent's last connection (on this node) closed. */
  'agent:offline': { amid: string }
  /**
   * An agent's message was stored: sent over the WebSocket (`via: 'ws'`) or posted over REST
   * (`via: 'rest'`). `room` is set for a room message (`seq` is then the room's seq), else `seq` is
   * the recipient's inbox seq. What the relay posts itself (timeline events, task requests) is not
   * told here.
   */
  'message:stored': { env: Envelope, seq: number, room?: string, via: 'ws' | 'rest' }
  /** A plaintext chat message was stored in the global room or a public room (tasks in chat). */
  'room:chat': { room: RoomRecord, env: Envelope, seq: number }
  /**
   * A group commit went to the Store: how long it took, how many items and cursor acks it held
   * (relay metrics, §21.5). Emitted only while someone listens.
   */
  'store:committed': { seconds: number, items: number, acks: number }
  /** The relay answered an error: over the WebSocket (an error frame, or the one a close sends) or REST. Emitted only while someone listens. */
  'error:answered': { code: string, via: 'ws' | 'rest' }
  /** An audit row was written for an action of the chat or operations layer (not the per-commit message rows): its action only. */
  'audit:written': { action: string }
}

type Listener<T> = (event: T) => void

/** A small typed event emitter (node's EventEmitter is stringly typed and rethrows listener errors). */
export class EventBus<E extends object = RelayEvents> {
  private readonly listeners = new Map<keyof E, Array<Listener<never>>>()

  constructor (private readonly log?: Logger) {}

  /** Subscribes; answers the function that unsubscribes. */
  on<K extends keyof E> (key: K, fn: Listener<E[K]>): () => void {
    const list = this.listeners.get(key) ?? []
    // a copy: a listener that unsubscribes while an emit runs does not skip its neighbour
    this.listeners.set(key, [...list, fn as Listener<never>])
    return () => {
      const now = this.listeners.get(key)
      if (now === undefined) return
      const i = now.indexOf(fn as Listener<never>)
      if (i >= 0) this.listeners.set(key, [...now.slice(0, i), ...now.slice(i + 1)])
    }
  }

  /** Whether anyone listens (an emitter on a hot path skips building the event otherwise). */
  listening (key: keyof E): boolean {
    return (this.listeners.get(key)?.length ?? 0) > 0
  }

  emit<K extends keyof E> (key: K, event: E[K]): void {
    const list = this.listeners.get(key)
    if (list === undefined) return
    for (const fn of list) {
      try {
        (fn as Listener<E[K]>)(event)
      } catch (err) {
        this.log?.error({ err, event: String(key) }, 'event listener failed')
      }
    }
  }
}
