/**
 * The validation rules every swarm node applies before it delivers or forwards a message
 * (docs/swarm.md, "Validation"). The verdicts map to gossipsub's: `accept` (deliver and forward),
 * `reject` (drop and penalise the peer that sent it: its P4 "invalid messages" counter grows) and
 * `ignore` (drop without penalty).
 *
 * The checks, cheapest first, with the signature checked before anything that could let a forger
 * change an author's state (its rate bucket, its equivocation mark):
 *
 *   1. size above the bound                                   → reject  too-large
 *   2. topic not the validator's                              → reject  wrong-topic
 *   3. same (author, seq) and same id already accepted        → ignore  duplicate
 *   4. author caught equivocating before                      → reject from the author itself, else ignore   equivocator
 *   5. seq at or below the author's highest − window          → ignore  stale
 *   6. seq above the author's highest + maxSeqAhead           → reject from the author itself, else ignore   seq-too-far
 *   7. id is not the content's hash, or the signature fails   → reject  bad-signature
 *   8. same (author, seq), another id, both signed            → reject  equivocation (the author is marked)
 *   9. the schema hook refuses the body                       → reject  schema
 *  10. the author's token bucket is empty                     → reject from the author itself, else ignore   rate
 *  11. otherwise                                              → accept  ok (remembered, the bucket pays one token)
 *
 * A forwarder that relays a message it validated itself did nothing wrong when the message is
 * over-rate, too far ahead or from an equivocator in THIS node's view (views differ by arrival
 * order), so those are `ignore` unless the peer is the author; a bad signature or a malformed
 * message is always the forwarder's fault (it should have checked), so `reject`.
 *
 * The rules read and write their state through `ValidatorState`: a node uses the bounded maps of
 * `createValidatorState()`, the simulator its typed arrays, so both run this same function.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  DEFAULT_AUTHOR_BURST, DEFAULT_AUTHOR_RATE_PER_S, DEFAULT_MAX_SEQ_AHEAD, DEFAULT_MAX_SWARM_MESSAGE_BYTES,
  DEFAULT_MAX_TRACKED_AUTHORS, DEFAULT_SEQ_WINDOW,
} from './constants.ts'
import { decodeSwarmMessage, verifySwarmMessage, type SwarmMessage, type SwarmVerifier } from './message.ts'

export type ValidationResult = 'accept' | 'reject' | 'ignore'
export type ValidationReason =
  | 'ok' | 'malformed' | 'too-large' | 'wrong-topic' | 'duplicate' | 'equivocator' | 'stale'
  | 'seq-too-far' | 'bad-signature' | 'equivocation' | 'schema' | 'rate'

export interface Verdict {
  readonly result: ValidationResult
  readonly reason: ValidationReason
}

export const VALIDATION_REASONS: readonly ValidationReason[] = [
  'ok', 'malformed', 'too-large', 'wrong-topic', 'duplicate', 'equivocator', 'stale',
  'seq-too-far', 'bad-signature', 'equivocation', 'schema', 'rate',
]

// one frozen object per verdict: validating allocates nothing
const V = {} as Record<`${ValidationResult}:${ValidationReason}`, Verdict>
for (const result of ['accept', 'reject', 'ignore'] as const) {
  for (const reason of VALIDATION_REASONS) V[`${result}:${reason}`] = Object.freeze({ result, reason })
}
function verdict (result: ValidationResult, reason: ValidationReason): Verdict {
  return V[`${result}:${reason}`]
}

/** One author's state as the rules see it. A state implementation may hand out the same object each call. */
export interface AuthorState {
  /** highest sequence number accepted from the author, 0 for none */
  highest: number
  /** tokens left in the author's bucket */
  tokens: number
  /** when the bucket was last refilled (ms, the validator's clock) */
  last: number
  /** the author was caught equivocating */
  blocked: boolean
}

/** Where the rules keep what they remember. */
export interface ValidatorState {
  /** The id accepted at (author, seq), if remembered. */
  idAt (author: string, seq: number): string | undefined
  /** The author's state; a fresh one (highest 0, a full bucket of `burst` at `now`) for an unknown author. */
  author (author: string, now: number, burst: number): AuthorState
  /** Stores the author's state after a check changed it. */
  save (author: string, state: AuthorState): void
  /** Remembers an accepted message. */
  remember (author: string, seq: number, id: string, window: number): void
}

export interface ValidatorInit {
  /** the topic this validator guards; other topics are rejected (unset: any topic) */
  topic?: string
  /** largest encoded message, bytes (default 64 KiB) */
  maxBytes?: number
  /** sustained messages per second per author (default 20) */
  ratePerS?: number
  /** burst per author (default 100) */
  burst?: number
  /** how far past an author's highest seq a message may be (default 1024) */
  maxSeqAhead?: number
  /** how many seqs below an author's highest are remembered (default 4096) */
  window?: number
  /** the signature check (default `verifySwarmMessage`; the simulator passes a memoised one) */
  verify?: SwarmVerifier
  /** an optional body check (a JSON-Schema validator, for example): false rejects with `schema` */
  schema?: (m: SwarmMessage) => boolean
  /** the clock, ms (default Date.now) */
  now?: () => number
  /** where the rules keep their state (default `createValidatorState()`) */
  state?: ValidatorState
}

export interface ValidateContext {
  /** the AMID of the peer that handed the message over (the author itself when it published directly) */
  from?: string
  /** the message's encoded size, bytes, when known */
  size?: number
}

export interface Validator {
  validate (m: SwarmMessage, ctx?: ValidateContext): Verdict
  /** Decodes then validates; a decode failure is `reject` (`malformed` or `too-large`). */
  validateBytes (bytes: Uint8Array, from?: string): { verdict: Verdict, message?: SwarmMessage }
  /** How many verdicts of each `result:reason` this validator gave. */
  counts (): Record<string, number>
}

/** Builds a validator (the rules above over `init.state`). */
export function createValidator (init: ValidatorInit = {}): Validator {
  const maxBytes = init.maxBytes ?? DEFAULT_MAX_SWARM_MESSAGE_BYTES
  const rate = init.ratePerS ?? DEFAULT_AUTHOR_RATE_PER_S
  const burst = init.burst ?? DEFAULT_AUTHOR_BURST
  const ahead = init.maxSeqAhead ?? DEFAULT_MAX_SEQ_AHEAD
  const window = init.window ?? DEFAULT_SEQ_WINDOW
  const verify = init.verify ?? verifySwarmMessage
  const now = init.now ?? Date.now
  const state = init.state ?? createValidatorState()
  for (const [k, v] of Object.entries({ maxBytes, ratePerS: rate, burst, maxSeqAhead: ahead, window })) {
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`swarm validator: ${k} must be a positive number`)
  }
  const tally = new Map<Verdict, number>() // keyed by the frozen verdict objects: counting allocates nothing
  const count = (v: Verdict): Verdict => {
    tally.set(v, (tally.get(v) ?? 0) + 1)
    return v
  }

  const validate = (m: SwarmMessage, ctx: ValidateContext = {}): Verdict => {
    if (ctx.size !== undefined && ctx.size > maxBytes) return count(verdict('reject', 'too-large'))
    if (init.topic !== undefined && m.topic !== init.topic) return count(verdict('reject', 'wrong-topic'))
    const author = m.author
    const seq = m.seq
    const held = state.idAt(author, seq)
    if (held === m.id) return count(verdict('ignore', 'duplicate'))
    const fromAuthor = ctx.from === author
    const t = now()
    const a = state.author(author, t, burst)
    if (a.blocked) return count(verdict(fromAuthor ? 'reject' : 'ignore', 'equivocator'))
    if (a.highest > 0 && seq <= a.highest - window) return count(verdict('ignore', 'stale'))
    if (a.highest > 0 && seq > a.highest + ahead) return count(verdict(fromAuthor ? 'reject' : 'ignore', 'seq-too-far'))
    if (!verify(m)) return count(verdict('reject', 'bad-signature'))
    if (held !== undefined) {
      a.blocked = true
      state.save(author, a)
      return count(verdict('reject', 'equivocation'))
    }
    if (init.schema !== undefined && !init.schema(m)) return count(verdict('reject', 'schema'))
    const tokens = Math.min(burst, a.tokens + Math.max(0, t - a.last) * rate / 1000)
    a.last = Math.max(a.last, t)
    if (tokens < 1) {
      a.tokens = tokens
      state.save(author, a)
      return count(verdict(fromAuthor ? 'reject' : 'ignore', 'rate'))
    }
    a.tokens = tokens - 1
    if (seq > a.highest) a.highest = seq
    state.save(author, a)
    state.remember(author, seq, m.id, window)
    return count(verdict('accept', 'ok'))
  }

  return {
    validate,
    validateBytes (bytes, from) {
      let m: SwarmMessage
      try {
        m = decodeSwarmMessage(bytes, { maxBytes })
      } catch (err) {
        const tooLarge = err instanceof AgentMeshError && err.code === ErrorCode.SwarmMessageTooLarge
        return { verdict: count(verdict('reject', tooLarge ? 'too-large' : 'malformed')) }
      }
      return { verdict: validate(m, { from, size: bytes.byteLength }), message: m }
    },
    counts: () => Object.fromEntries([...tally].map(([v, c]) => [v.result + ':' + v.reason, c])),
  }
}

interface MapAuthor extends AuthorState {
  ids: Map<number, string>
}

/**
 * The default state: one entry per author, at most `maxAuthors` (the least recently seen goes
 * first), each remembering the ids of the last `window` sequence numbers.
 */
export function createValidatorState (opts: { maxAuthors?: number } = {}): ValidatorState & { authors (): number } {
  const max = opts.maxAuthors ?? DEFAULT_MAX_TRACKED_AUTHORS
  const authors = new Map<string, MapAuthor>()
  const touch = (author: string, a: MapAuthor): void => {
    authors.delete(author)
    authors.set(author, a)
    while (authors.size > max) authors.delete(authors.keys().next().value as string)
  }
  return {
    idAt: (author, seq) => authors.get(author)?.ids.get(seq),
    author (author, now, burst) {
      const a = authors.get(author)
      if (a !== undefined) return a
      return { highest: 0, tokens: burst, last: now, blocked: false, ids: new Map() } satisfies MapAuthor
    },
    save (author, state) {
      touch(author, state as MapAuthor)
    },
    remember (author, seq, id, window) {
      const a = authors.get(author)
      if (a === undefined) return
      a.ids.set(seq, id)
      if (a.ids.size > window + (window >> 2) + 1) { // amortised: a sweep every window/4 messages
        const floor = a.highest - window
        for (const s of a.ids.keys()) if (s <= floor) a.ids.delete(s)
      }
    },
    authors: () => authors.size,
  }
}
