/**
 * What happens to a delivered envelope, cut into stages. The connection owns the transport, the
 * outbox, the cursor and dedupe: it checks each delivery (schema, addressee, relay attestation,
 * signature) and drops an id it handed over before, all before anything is decrypted. Then the
 * stages see the envelope twice:
 *
 * - `arrive`, at once and in delivery order (synchronous): a stage may act on it there (a session
 *   reset) or say it is to be decrypted in turn;
 * - `handle`, in order, when the application asks for the next message: decrypt, keep sender keys,
 *   filter the relay's posts, judge the peer, run tasks.
 *
 * A stage that answers `consumed` ends the message's way: it never reaches the application, and is
 * committed (cursor moved) without being recorded as handed over. The cursor moves past a delivery
 * only once every stage is done with it and the application asked for the next one, so the
 * at-least-once (cursor) and exactly-once (dedupe) guarantees are the connection's, whatever the
 * stages do.
 *
 * Built-in stages run first, in this order: `e2ee` (decrypt, reset), `sender-keys` (private rooms),
 * `swarm-keys` (encrypted swarm topics, swarm-topic.ts),
 * `relay` (the relay's own posts), `room` (room messages are a peer's words), `receipts` (delivery
 * receipts for this agent's messages, receipts.ts), `gate` (knocks, grants, per-peer limits),
 * `file-keys`, and `schemas` (added by connect(): declared message schemas, schemas.ts);
 * stages added with `inbound(conn).use(stage)` (tasks) run after them, in the order
 * they were added; what is left goes to the application.
 */
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import type { Connection, Message } from './types.ts'

export type StageResult = 'continue' | 'consumed'

/** A delivery on arrival, before it waits its turn. */
export interface Arrival {
  readonly seq: number
  /** verified, and not handed over before */
  readonly envelope: Envelope
  /** the envelope read as an unencrypted message; a stage sets undefined to have it decrypted in turn */
  message: Message | undefined
}

/** A delivery in its turn. */
export interface InboundContext {
  readonly seq: number
  readonly envelope: Envelope
  /** what the application will be handed; undefined until a stage decrypted it */
  message: Message | undefined
  /**
   * Offered to the first stage only: call it inside the stage's own atomic state step, and the
   * message before this one is committed in that step (one transaction instead of two).
   */
  readonly inStep: (() => void) | undefined
}

export interface InboundStage {
  /** for warnings and for `inbound(conn).stages` */
  readonly name: string
  arrive?: (a: Arrival) => StageResult
  handle?: (ctx: InboundContext) => StageResult | Promise<StageResult>
}

/** The seam features use to see a connection's deliveries (`tasks(conn)` does). */
export interface Inbound {
  /** Adds a stage after the ones there; returns a function that removes it. */
  use (stage: InboundStage): () => void
  /** Names of the stages, in the order they run. */
  readonly stages: readonly string[]
  /** Reports a problem the application is told of through `onWarning` (never message content). */
  warn (w: AgentMeshError): void
}

/** Stages a connection runs at most (built-in ones included). */
export const MAX_INBOUND_STAGES = 32

export class InboundPipeline implements Inbound {
  readonly #stages: InboundStage[] = []

  constructor (private readonly onWarning: (w: AgentMeshError) => void) {}

  use (stage: InboundStage): () => void {
    if (typeof stage?.name !== 'string' || (stage.arrive === undefined && stage.handle === undefined)) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'an inbound stage needs a name and an arrive or handle function')
    }
    if (this.#stages.length >= MAX_INBOUND_STAGES) throw new AgentMeshError(ErrorCode.InvalidArgument, `a connection runs at most ${MAX_INBOUND_STAGES} inbound stages`)
    this.#stages.push(stage)
    return () => {
      const i = this.#stages.indexOf(stage)
      if (i >= 0) this.#stages.splice(i, 1)
    }
  }

  get stages (): readonly string[] { return this.#stages.map(s => s.name) }

  warn (w: AgentMeshError): void { this.onWarning(w) }

  /** Runs the arrival hooks; false when one consumed the delivery. */
  arrive (a: Arrival): boolean {
    for (const s of this.#stages) {
      if (s.arrive !== undefined && s.arrive(a) === 'consumed') return false
    }
    return true
  }

  /**
   * Runs the stages on a delivery in its turn; the message for the application, or undefined when
   * a stage consumed it. `firstDone` is called once the first stage returned (or threw), with
   * whether it left a message: the caller commits the previous message then, unless it joined the
   * first stage's step.
   */
  async run (seq: number, envelope: Envelope, message: Message | undefined, inStep: (() => void) | undefined, firstDone: (kept: boolean) => void): Promise<Message | undefined> {
    const ctx: { seq: number, envelope: Envelope, message: Message | undefined, inStep: (() => void) | undefined } = { seq, envelope, message, inStep }
    let first = true
    const done = (kept: boolean): void => {
      if (!first) return
      first = false
      ctx.inStep = undefined
      firstDone(kept)
    }
    try {
      for (const s of [...this.#stages]) {
        if (s.handle === undefined) continue
        const r = await s.handle(ctx)
        if (r === 'consumed') ctx.message = undefined
        done(ctx.message !== undefined)
        if (ctx.message === undefined) return undefined
      }
    } finally {
      done(false)
    }
    return ctx.message
  }
}

const pipelines = new WeakMap<Connection, InboundPipeline>()

/** connect() ties each connection to its pipeline. */
export function attachInbound (conn: Connection, pipeline: InboundPipeline): void { pipelines.set(conn, pipeline) }

/** The inbound pipeline of a connection made by `connect()`. */
export function inbound (conn: Connection): Inbound {
  const p = pipelines.get(conn)
  if (p === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection has no inbound pipeline; it was not made by connect()')
  return p
}

/** The message an envelope carries (`d`: its type and payload, decrypted or as sent). */
export function toMessage (env: Envelope, seq: number, d: { type: string, payload: Record<string, unknown>, orig?: string, rr?: true }, encrypted: boolean): Message {
  return {
    // a resend is shown under the id of the message it repeats (the one its sender knows)
    id: d.orig ?? env.id,
    from: env.from,
    to: env.to,
    type: d.type,
    ts: env.ts,
    seq,
    payload: d.payload,
    ...(typeof d.payload.text === 'string' ? { text: d.payload.text } : {}),
    encrypted,
    envelope: env,
    ...(env.to.charCodeAt(0) === 35 ? { room: env.to.slice(1) } : {}),
    ...(env.via === undefined ? {} : { via: env.via }),
    // asked inside the ciphertext only: a direct, encrypted message
    ...(d.rr === true && encrypted && env.to.charCodeAt(0) !== 35 ? { receiptRequested: true } : {}),
  }
}
