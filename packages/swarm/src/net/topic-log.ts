/**
 * What a node delivered on one topic, in delivery order, and the subscribers reading it. A
 * subscriber is a cursor over this log (as a room member reads a room's log), so a slow reader
 * delays nothing and is handed every message once. The log keeps the last `maxQueued` entries; a
 * reader that falls further behind ends with AM_ERR_SLOW_CONSUMER (what it missed stays in the
 * node's reconcile store, and a new subscription starts from the oldest kept entry). Pure: no I/O.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { SwarmMessage } from '../message.ts'

/** A verified message as the application receives it. Its `body` and `type` are the author's: untrusted. */
export interface SwarmDelivery {
  readonly topic: string
  readonly id: string
  readonly author: string
  readonly seq: number
  /** the author's clock, ms (informative) */
  readonly ts: number
  readonly type?: string
  readonly body: unknown
  /** when this node delivered it, ms */
  readonly receivedAt: number
  /** gossip: live dissemination; reconcile: recovered after a partition or a late join; self: this node published it */
  readonly via: 'gossip' | 'reconcile' | 'self'
}

export function deliveryOf (m: SwarmMessage, via: SwarmDelivery['via'], receivedAt: number): SwarmDelivery {
  return {
    topic: m.topic, id: m.id, author: m.author, seq: m.seq, ts: m.ts,
    ...(m.type === undefined ? {} : { type: m.type }),
    body: m.body, receivedAt, via,
  }
}

export interface SubscribeOptions {
  /** 'start': from the oldest entry the log keeps (default); 'now': only what is delivered after this call */
  readonly from?: 'start' | 'now'
  readonly signal?: AbortSignal
}

export class TopicLog {
  private readonly entries: SwarmDelivery[] = []
  /** absolute index of entries[0] */
  private base = 0
  private readonly waiters = new Set<() => void>()
  private closed = false

  constructor (readonly topic: string, private readonly maxQueued: number) {}

  get size (): number { return this.entries.length }
  /** absolute index of the next entry */
  get end (): number { return this.base + this.entries.length }

  push (d: SwarmDelivery): void {
    this.entries.push(d)
    if (this.entries.length > this.maxQueued) {
      const drop = this.entries.length - this.maxQueued
      this.entries.splice(0, drop)
      this.base += drop
    }
    this.wake()
  }

  close (): void {
    this.closed = true
    this.wake()
  }

  private wake (): void {
    const ws = [...this.waiters]
    this.waiters.clear()
    for (const w of ws) w()
  }

  subscribe (opts: SubscribeOptions = {}): AsyncIterableIterator<SwarmDelivery> {
    let cursor = opts.from === 'now' ? this.end : this.base
    let done = false
    const finish = (): IteratorResult<SwarmDelivery> => { done = true; return { done: true, value: undefined } }
    const next = async (): Promise<IteratorResult<SwarmDelivery>> => {
      for (;;) {
        if (done) return { done: true, value: undefined }
        if (cursor < this.base) {
          done = true
          throw new AgentMeshError(ErrorCode.SlowConsumer, `swarm subscriber on ${this.topic} fell more than ${this.maxQueued} messages behind`)
        }
        if (cursor < this.end) return { done: false, value: this.entries[cursor++ - this.base]! }
        if (this.closed || opts.signal?.aborted === true) return finish()
        await new Promise<void>((resolve) => {
          const w = (): void => { opts.signal?.removeEventListener('abort', w); this.waiters.delete(w); resolve() }
          this.waiters.add(w)
          opts.signal?.addEventListener('abort', w, { once: true })
        })
      }
    }
    const it: AsyncIterableIterator<SwarmDelivery> = {
      next,
      return: async () => finish(),
      [Symbol.asyncIterator] () { return it },
    }
    return it
  }
}
