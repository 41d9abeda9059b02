/**
 * Delivery receipts (docs/protocol.md §26): a sender that asks for them (`send(…, { receipts: true })`,
 * or `connect({ requestReceipts: true })` for every direct message) learns when its message was
 * **delivered** (decrypted on the receiver's device and handed to its application) and
 * **processed** (the application moved past it: it asked for the next message, or acknowledged it
 * with `conn.ack(m)` under `messages({ manualAck: true })` — the point at which the receiver's
 * cursor moves and the message is never handed over again). `queued` is the relay's ack.
 *
 * The request travels inside the ciphertext (`rr` in the encrypted inner message), and the receipts
 * go back as small end-to-end encrypted messages of the internal type `agentmesh.receipt`, batched
 * per peer (at most MAX_RECEIPTS_PER_MESSAGE ids each), so the relay sees only an ordinary `e2ee`
 * envelope. A receipt is never asked for a receipt (nor for any control type, nor a room message),
 * and an agent opts out of sending them with `connect({ sendReceipts: false })`.
 */
import { AgentMeshError, ErrorCode, ID_PATTERN } from '@agentmesh/protocol'
import type { InboundStage } from './inbound.ts'
import type { SentLog, SentStatus, SentStatusEntry } from './sent.ts'
import type { Connection, Message } from './types.ts'

export const RECEIPT_TYPE = 'agentmesh.receipt'
/** Receipts in one receipt message at most. */
export const MAX_RECEIPTS_PER_MESSAGE = 64
/** Receipts waiting to be sent at most, per connection; past it the oldest delivered ones are left out (the processed one that follows says more). */
export const MAX_PENDING_RECEIPTS = 4096
/** How long receipts gather before they go (per peer, one message for what gathered). */
export const RECEIPT_BATCH_MS = 50

export type ReceiptState = 'delivered' | 'processed'
/** One receipt: the envelope id the sender knows, the state, when (ms since the epoch). */
export interface Receipt { id: string, s: ReceiptState, at: number }

const idRe = new RegExp(ID_PATTERN)
const RANK: Record<string, number> = { stored: 0, resent: 0, held: 1, delivered: 2, processed: 3 }

/** What the sender sees change: one of its messages reached a state. */
export interface ReceiptEvent { id: string, peer: string, state: ReceiptState, at: number }

/** The receiving side: gathers receipts per peer and sends them in batches. */
export class ReceiptSender {
  readonly #pending = new Map<string, Receipt[]>()
  #count = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #dropped = false

  constructor (private readonly send: (peer: string, receipts: Receipt[]) => void, private readonly warn: (w: AgentMeshError) => void) {}

  /** A message asking for receipts reached `state` here. */
  add (m: Message, state: ReceiptState, at = Date.now()): void {
    if (m.receiptRequested !== true) return
    let list = this.#pending.get(m.from)
    if (list === undefined) { list = []; this.#pending.set(m.from, list) }
    // processed says delivered too: it replaces a delivered receipt not sent yet
    if (state === 'processed') {
      const i = list.findIndex(r => r.id === m.id && r.s === 'delivered')
      if (i >= 0) { list.splice(i, 1); this.#count-- }
    }
    if (this.#count >= MAX_PENDING_RECEIPTS) {
      if (!this.#dropped) { this.#dropped = true; this.warn(new AgentMeshError(ErrorCode.TooManyInFlight, `more than ${MAX_PENDING_RECEIPTS} delivery receipts wait to be sent; some delivered receipts were left out`)) }
      return
    }
    list.push({ id: m.id, s: state, at })
    this.#count++
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.flush() }, RECEIPT_BATCH_MS)
      if (typeof this.#timer === 'object' && 'unref' in this.#timer) this.#timer.unref()
    }
  }

  /** Sends what gathered, one message per peer and per MAX_RECEIPTS_PER_MESSAGE. */
  flush (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (const [peer, list] of this.#pending) {
      for (let i = 0; i < list.length; i += MAX_RECEIPTS_PER_MESSAGE) this.send(peer, list.slice(i, i + MAX_RECEIPTS_PER_MESSAGE))
    }
    this.#pending.clear()
    this.#count = 0
    this.#dropped = false
  }
}

/** The sending side: applies receipts to the sent log and tells who waits. */
export class ReceiptTracker {
  readonly #listeners = new Set<(e: ReceiptEvent) => void>()

  constructor (private readonly log: SentLog | undefined) {}

  /** The inbound stage that takes receipts (before the gate: a receipt is not a peer's words). */
  stage (): InboundStage {
    return {
      name: 'receipts',
      handle: (ctx) => {
        const m = ctx.message
        if (m === undefined || m.type !== RECEIPT_TYPE) return 'continue'
        // only end-to-end encrypted, direct receipts count; anything else of this type is dropped
        if (m.encrypted && m.room === undefined) this.apply(m.from, m.payload)
        return 'consumed'
      },
    }
  }

  apply (peer: string, payload: Record<string, unknown>): void {
    const list = payload.r
    if (!Array.isArray(list) || this.log === undefined) return
    for (const r of list.slice(0, MAX_RECEIPTS_PER_MESSAGE) as Array<Partial<Receipt>>) {
      if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || !idRe.test(r.id) || (r.s !== 'delivered' && r.s !== 'processed')) continue
      const at = typeof r.at === 'number' && Number.isSafeInteger(r.at) ? r.at : Date.now()
      const e = this.log.get(r.id)
      // a receipt for a message this agent did not send to that peer is ignored
      if (e === undefined || e.to !== peer) continue
      const change: { status?: SentStatus, deliveredAt?: number, processedAt?: number } = {}
      if (r.s === 'delivered' && e.deliveredAt === undefined) change.deliveredAt = at
      if (r.s === 'processed' && e.processedAt === undefined) { change.processedAt = at; if (e.deliveredAt === undefined) change.deliveredAt = at }
      if ((RANK[r.s] ?? 0) > (RANK[e.status] ?? 0) || (e.status === 'refused' && r.s === 'processed')) change.status = r.s
      if (Object.keys(change).length === 0) continue
      this.log.update(r.id, change)
      for (const l of this.#listeners) l({ id: r.id, peer, state: r.s, at })
    }
  }

  on (l: (e: ReceiptEvent) => void): () => void {
    this.#listeners.add(l)
    return () => { this.#listeners.delete(l) }
  }

  entry (id: string): SentStatusEntry | undefined {
    const e = this.log?.get(id)
    if (e === undefined) return undefined
    const { payload: _p, ...rest } = e
    return rest
  }
}

/** Whether a sent-log entry has reached `state`. */
function reached (e: SentStatusEntry | undefined, state: ReceiptState): boolean {
  if (e === undefined) return false
  return state === 'delivered' ? e.deliveredAt !== undefined : e.processedAt !== undefined
}

export interface Receipts {
  /**
   * Resolves with the sent-log entry once message `id` (sent with receipts) reached `state` at its
   * receiver; rejects with AM_ERR_TIMEOUT after `timeoutMs`, AM_ERR_ABORTED on `signal`.
   */
  waitFor (id: string, state: ReceiptState, opts?: { timeoutMs?: number, signal?: AbortSignal }): Promise<SentStatusEntry>
  /** Each receipt as it arrives; answers the function that stops listening. */
  on (listener: (e: ReceiptEvent) => void): () => void
  /** The state of a sent message as far as this agent was told (the sent log's entry, without content). */
  state (id: string): SentStatusEntry | undefined
}

const trackers = new WeakMap<Connection, ReceiptTracker>()

/** connect() ties each connection to its tracker. */
export function attachReceipts (conn: Connection, t: ReceiptTracker): void { trackers.set(conn, t) }

/** Delivery receipts over a connection made by `connect()` with end-to-end encryption. */
export function receipts (conn: Connection): Receipts {
  const t = trackers.get(conn)
  if (t === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection keeps no sent log (it was not made by connect() with end-to-end encryption)')
  return {
    async waitFor (id, state, opts = {}) {
      const now = t.entry(id)
      if (reached(now, state)) return now!
      return await new Promise<SentStatusEntry>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        const done = (): void => { off(); clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort) }
        const onAbort = (): void => { done(); reject(new AgentMeshError(ErrorCode.Aborted, 'the operation was aborted')) }
        const off = t.on((e) => {
          if (e.id !== id) return
          const entry = t.entry(id)
          if (reached(entry, state)) { done(); resolve(entry!) }
        })
        if (opts.timeoutMs !== undefined) timer = setTimeout(() => { done(); reject(new AgentMeshError(ErrorCode.Timeout, `message ${id} was not ${state} within ${opts.timeoutMs} ms`)) }, opts.timeoutMs)
        if (opts.signal?.aborted === true) { onAbort(); return }
        opts.signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
    on: (l) => t.on(l),
    state: (id) => t.entry(id),
  }
}
