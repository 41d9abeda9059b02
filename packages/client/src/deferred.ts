/**
 * Messages a limit held back (docs/policy.md "Rate limits"), kept sealed in the agent's state with
 * their decrypted content until they are due, and released in order: per peer oldest first, across
 * peers in the order they were held back. The Gate (knock.ts) decides what is held back and for
 * how long; this is where it waits. The sealed records are the truth; the in-memory lists index them.
 */
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import type { E2ee } from './e2ee.ts'
import { toMessage } from './inbound.ts'
import type { Message } from './types.ts'

/** Record kind of a held-back message in the agent's state. */
const KIND = 'deferred'

/**
 * Thrown by `Gate.inbound` when a message would have to be held back but the backlog is full
 * (`rate_limits.deferred_per_peer`, `deferred_total`): the connection leaves it unacknowledged at
 * the relay (the cursor stops) and tries it again once the backlog has moved. Never lost.
 */
export class DeferralFull extends AgentMeshError {
  constructor (message: string) {
    super(ErrorCode.RateLimited, message)
    this.name = 'DeferralFull'
  }
}

/** A message held back by a limit, as sealed in the agent's state (record kind `deferred`). */
interface DeferredRecord {
  /** order of deferral, across peers */
  n: number
  env: Envelope
  /** the decrypted type and payload: the end-to-end layer forgets its copy when the delivery is committed */
  type: string
  payload: Record<string, unknown>
  encrypted: boolean
  seq: number
  /** when it may be processed, ms since the epoch */
  due: number
  code: ErrorCode
}

/** The in-memory index of a held-back message. */
export interface DeferredEntry {
  key: string
  n: number
  due: number
  code: ErrorCode
  /** waiting for its time; handed back to the connection; let through (until committed) */
  state: 'waiting' | 'releasing' | 'passed'
}

/** The record key of a held-back message: one per (sender, id), so that a redelivery is recognised. */
export const deferredKey = (from: string, id: string): string => `${from}\n${id}`

/** The held-back messages of one agent: loaded from its state at start, kept in step with it. */
export class HeldBack {
  /** per peer, oldest first */
  readonly #byPeer = new Map<string, DeferredEntry[]>()
  #count = 0
  #next = 0

  constructor (private readonly e2ee: E2ee) {
    const all = this.e2ee.records<DeferredRecord>(KIND).sort((a, b) => a.value.n - b.value.n)
    for (const r of all) {
      const from = r.value.env.from
      let list = this.#byPeer.get(from)
      if (list === undefined) this.#byPeer.set(from, list = [])
      list.push({ key: r.key, n: r.value.n, due: r.value.due, code: r.value.code, state: 'waiting' })
      this.#next = Math.max(this.#next, r.value.n + 1)
    }
    this.#count = all.length
  }

  /** Messages held back, per peer (for the owner and tests). */
  counts (): Map<string, number> {
    return new Map([...this.#byPeer].map(([peer, list]) => [peer, list.length]))
  }

  /**
   * Held-back messages whose time has come, oldest first, as messages to judge again (the
   * connection queues them ahead of new deliveries, checks them with the gate again, and calls
   * `released` when it commits them). A peer's messages come in their order: one still waiting
   * stops the ones behind it.
   */
  releasable (now = Date.now()): Message[] {
    if (this.#count === 0) return []
    const out: Array<{ n: number, m: Message }> = []
    for (const list of this.#byPeer.values()) {
      for (const e of list) {
        if (e.state !== 'waiting') continue
        if (e.due > now) break
        const r = this.e2ee.record<DeferredRecord>(KIND, e.key)
        if (r === undefined) continue
        e.state = 'releasing'
        out.push({ n: e.n, m: toMessage(r.env, r.seq, { type: r.type, payload: r.payload }, r.encrypted) })
      }
    }
    return out.sort((a, b) => a.n - b.n).map(x => x.m)
  }

  /**
   * A released message was committed (in the connection's transaction): its record goes unless
   * the limits held it back again.
   */
  released (env: { from: string, id: string }): void {
    const list = this.#byPeer.get(env.from)
    const key = deferredKey(env.from, env.id)
    const i = list?.findIndex(e => e.key === key) ?? -1
    if (list === undefined || i < 0) return
    if (list[i]!.state === 'waiting') return
    this.e2ee.dropRecord(KIND, key)
    list.splice(i, 1)
    this.#count--
    if (list.length === 0) this.#byPeer.delete(env.from)
  }


  /** Messages held back now, in all. */
  get count (): number { return this.#count }

  /** A peer's held-back messages, oldest first. */
  of (peer: string): DeferredEntry[] | undefined { return this.#byPeer.get(peer) }

  /** Sets a message aside until `due` (sealed, with its decrypted content); the caller checked the bounds. */
  add (m: Message, due: number, code: ErrorCode, now: number): DeferredEntry[] {
    const n = this.#next++
    const key = deferredKey(m.from, m.id)
    const rec: DeferredRecord = { n, env: m.envelope, type: m.type, payload: m.payload, encrypted: m.encrypted, seq: m.seq, due, code }
    this.e2ee.saveRecord(KIND, key, rec, now)
    const list = this.#byPeer.get(m.from) ?? []
    list.push({ key, n, due, code, state: 'waiting' })
    this.#byPeer.set(m.from, list)
    this.#count++
    return list
  }
}
