/**
 * Rate limits and circuit breakers for agent safety (docs/policy.md "Rate limits", "Circuit
 * breaker"): the limiter says when a peer's next message may be processed (the gate defers it
 * until then, it never drops it), the breaker catches conversation loops, not traffic. Pure state machines: time is always passed in (`now`, ms since the epoch), so the
 * caller decides the clock and tests are deterministic. Memory is bounded: each limiter and
 * breaker keeps at most `maxKeys`/`maxPairs` entries of fixed size and forgets the least
 * recently used first.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import type { Policy } from './policy.ts'

/** Entries a `RateLimiter` keeps before forgetting the least recently used. */
export const DEFAULT_LIMITER_MAX_KEYS = 10_000
/** Pairs a `CircuitBreaker` keeps before forgetting the least recently used. */
export const DEFAULT_BREAKER_MAX_PAIRS = 10_000
/** Sub-buckets of a sliding window: its resolution is window / buckets. */
export const DEFAULT_WINDOW_BUCKETS = 60
/** Trips of one pair within this period lead to an auto-block (`auto_block_after`). */
export const AUTO_BLOCK_PERIOD_MS = 24 * 3600 * 1000

function invalidArg (field: string, expected: string, got: unknown): AgentMeshError {
  return new AgentMeshError(ErrorCode.InvalidArgument, `${field}: expected ${expected}, got ${String(got)}`)
}

function checkInt (field: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw invalidArg(field, `an integer from ${min} to ${max}`, v)
  return v
}

// ---------------------------------------------------------------------------------------------
// Sliding window counter

interface Counter {
  /** Events per bucket; slot `i % ring.length` holds bucket `i`. */
  ring: Uint32Array
  /** Index of the newest bucket the ring holds. */
  last: number
  total: number
}

/**
 * A sliding window of `buckets` + 1 sub-buckets. An event at time t falls in bucket
 * floor(t / bucketMs) and counts until that bucket leaves the window: between `windowMs` and
 * `windowMs + bucketMs` after it. So no interval of `windowMs` ever holds more than the limit,
 * and memory per key is fixed whatever the limit.
 */
class SlidingWindow {
  readonly windowMs: number
  readonly buckets: number
  readonly bucketMs: number

  constructor (windowMs: number, buckets: number) {
    this.windowMs = windowMs
    this.buckets = buckets
    this.bucketMs = windowMs / buckets
  }

  create (now: number): Counter {
    return { ring: new Uint32Array(this.buckets + 1), last: this.#index(now), total: 0 }
  }

  #index (now: number): number { return Math.floor(now / this.bucketMs) }

  /** Drops the buckets that left the window; time never runs backwards for a counter. */
  advance (c: Counter, now: number): number {
    const cur = Math.max(this.#index(now), c.last)
    const slots = c.ring.length
    if (cur - c.last >= slots) {
      c.ring.fill(0)
      c.total = 0
    } else {
      for (let i = c.last + 1; i <= cur; i++) {
        const s = i % slots
        c.total -= c.ring[s]!
        c.ring[s] = 0
      }
    }
    c.last = cur
    return cur
  }

  add (c: Counter, now: number): number {
    const cur = this.advance(c, now)
    c.ring[cur % c.ring.length]! += 1
    c.total += 1
    return c.total
  }

  count (c: Counter, now: number): number {
    this.advance(c, now)
    return c.total
  }

  /** Ms from `now` until the count is below `limit` again (0 when it already is). */
  retryAfter (c: Counter, now: number, limit: number): number {
    const cur = this.advance(c, now)
    const need = c.total - limit + 1
    if (need <= 0) return 0
    const slots = c.ring.length
    let freed = 0
    for (let i = cur - this.buckets; i <= cur; i++) {
      freed += c.ring[((i % slots) + slots) % slots]!
      // bucket i stops counting once the current bucket is i + buckets + 1
      if (freed >= need) return Math.max(1, Math.ceil((i + this.buckets + 1) * this.bucketMs - now))
    }
    return this.windowMs // unreachable: the ring holds `total`
  }
}

// ---------------------------------------------------------------------------------------------
// RateLimiter

export interface RateLimiterInit {
  /** Events allowed per key in any window. */
  limit: number
  /** Window length in ms. */
  windowMs: number
  /** Keys kept before the least recently used is forgotten. @default 10 000 */
  maxKeys?: number
  /** Window resolution: events expire `windowMs` … `windowMs + windowMs / buckets` after. @default 60 */
  buckets?: number
}

export type TakeResult = { ok: true } | { ok: false, retryAfterMs: number }

/**
 * Per-key sliding-window limit: `take(key, now)` admits at most `limit` events per key in any
 * `windowMs`. A refused `take` is not counted. Keys beyond `maxKeys` push out the least recently
 * used one, which then starts afresh: a bound on memory, at the price that very many distinct
 * keys can make the limiter forget one.
 */
export class RateLimiter {
  #limit: number
  #window: SlidingWindow
  /** least recently used first */
  readonly #keys: LruMap<string, Counter>

  constructor (init: RateLimiterInit) {
    this.#limit = checkInt('limit', init.limit, 1)
    this.#window = new SlidingWindow(checkInt('windowMs', init.windowMs, 1), checkInt('buckets', init.buckets ?? DEFAULT_WINDOW_BUCKETS, 1, 3600))
    this.#keys = new LruMap(checkInt('maxKeys', init.maxKeys ?? DEFAULT_LIMITER_MAX_KEYS, 1))
  }

  get limit (): number { return this.#limit }
  get windowMs (): number { return this.#window.windowMs }
  /** Keys currently held. */
  get size (): number { return this.#keys.size }

  /** Counts one event for `key` if the limit allows it. */
  take (key: string, now: number): TakeResult {
    let c = this.#keys.get(key) // marked as most recently used
    if (c === undefined) {
      c = this.#window.create(now)
      this.#keys.set(key, c) // the least recently used key goes when it is full
    }
    if (this.#window.count(c, now) >= this.#limit) {
      return { ok: false, retryAfterMs: this.#window.retryAfter(c, now, this.#limit) }
    }
    this.#window.add(c, now)
    return { ok: true }
  }

  /** Events counted for `key` in the window ending at `now` (does not count as use). */
  count (key: string, now: number): number {
    const c = this.#keys.peek(key)
    return c === undefined ? 0 : this.#window.count(c, now)
  }

  /** Forgets one key (its next event starts afresh). */
  delete (key: string): boolean { return this.#keys.delete(key) }

  clear (): void { this.#keys.clear() }

  /**
   * Changes the limit (kept counts stay) or the window (counts restart: they were taken in
   * buckets of another width). For a policy reload: `limiter.configure(knockLimiterInit(p))`.
   */
  configure (init: Partial<RateLimiterInit>): void {
    if (init.limit !== undefined) this.#limit = checkInt('limit', init.limit, 1)
    if (init.maxKeys !== undefined) this.#keys.maxSize = checkInt('maxKeys', init.maxKeys, 1)
    const windowMs = init.windowMs ?? this.#window.windowMs
    const buckets = init.buckets ?? this.#window.buckets
    if (windowMs !== this.#window.windowMs || buckets !== this.#window.buckets) {
      this.#window = new SlidingWindow(checkInt('windowMs', windowMs, 1), checkInt('buckets', buckets, 1, 3600))
      this.#keys.clear()
    }
  }
}

/** The knock limiter's settings from a policy: `knocks_per_hour` per peer. */
export function knockLimiterInit (policy: Policy): RateLimiterInit {
  return { limit: policy.rate_limits.knocks_per_hour, windowMs: 3600_000 }
}

/** The message limiter's settings from a policy: `messages_per_minute` per peer. */
export function messageLimiterInit (policy: Policy): RateLimiterInit {
  return { limit: policy.rate_limits.messages_per_minute, windowMs: 60_000 }
}

// ---------------------------------------------------------------------------------------------
// CircuitBreaker

/** The two ends of a conversation: one of our agents and a peer. */
export interface AgentPair { local: string, peer: string }

/** Which way a message went: from the peer to us, or from us to the peer. */
export type Direction = 'in' | 'out'

/** One message between a pair, as the breaker sees it: its direction and a hash of its content (never the content). */
export interface LoopEvent {
  direction: Direction
  /** a hash of the message's type and payload: the same content coming back is a bounce */
  hash?: string
}

export type BreakerStateName = 'closed' | 'open' | 'half-open'

export interface BreakerState {
  state: BreakerStateName
  /** Turns in the current window (the larger of turns and bounces, each against its own threshold). */
  count: number
  /** Turns (a message answering the previous one within the turn gap) in the current window. */
  turns: number
  /** Bounces (content coming back) in the current window. */
  bounces: number
  /** When an open breaker closes (half-opens), ms since the epoch. */
  until?: number
  /** Trips of this pair within the auto-block period (24 h). */
  trips: number
  /** Events refused since the breaker last opened. */
  refused: number
}

/** Told once per trip, for the owner and the audit log. */
export interface BreakerTrip {
  pair: AgentPair
  /** What tripped it: too many turns, or too many bounces, within the window. */
  reason: 'turns' | 'bounces'
  /** Turns (or bounces) in the window when it tripped (threshold + 1). */
  count: number
  /** When the breaker half-opens again. */
  until: number
  /** Trips of this pair within the auto-block period, this one included. */
  trips: number
  /** `auto_block_after` trips happened within 24 h: block the peer. The trip count then restarts. */
  autoBlock: boolean
}

export type BreakerResult =
  | { allowed: true, state: 'closed' | 'half-open' }
  | { allowed: false, state: 'open', retryAfterMs: number, trip?: BreakerTrip }

/** What a pair's breaker keeps across restarts (the caller stores it: trips and an open breaker). */
export interface BreakerSnapshot {
  /** trip times within the auto-block period, oldest first */
  trips: number[]
  /** when an open breaker half-opens */
  until?: number
}

/** Turns per window that open the breaker by default. */
export const DEFAULT_LOOP_THRESHOLD = 200
/** Bounces per window that open the breaker by default. */
export const DEFAULT_BOUNCE_THRESHOLD = 20
/** The breaker's window by default, ms. */
export const DEFAULT_LOOP_WINDOW_MS = 300_000
/** A message answering the previous one (the other way) within this gap is a turn, by default, ms. */
export const DEFAULT_TURN_GAP_MS = 2000
/** Content hashes kept per pair and direction, to see a bounce. */
export const BOUNCE_MEMORY = 16

export interface CircuitBreakerInit {
  /** More turns than this within the window open the breaker. @default 200 */
  threshold?: number
  /** More bounces than this within the window open the breaker. @default 20 */
  bounces?: number
  /** A message the other way within this gap after the previous one is a turn. @default 2000 ms */
  turnGapMs?: number
  /** @default 300 000 ms */
  windowMs?: number
  /** How long the breaker stays open. @default 60 000 ms */
  cooldownMs?: number
  /** Trips within `autoBlockPeriodMs` that report `autoBlock`; 0 = never. @default 0 */
  autoBlockAfter?: number
  /** @default 24 h */
  autoBlockPeriodMs?: number
  /** Pairs kept before the least recently used is forgotten. @default 10 000 */
  maxPairs?: number
  /** Window resolution (see `RateLimiterInit.buckets`). @default 60 */
  buckets?: number
  /** Called once per trip, after the state changed; what it throws, `record` throws. */
  onTrip?: (trip: BreakerTrip) => void
}

interface PairEntry {
  pair: AgentPair
  turns: Counter
  bounces: Counter
  /** direction and time of the previous message */
  lastDir?: Direction
  lastAt: number
  /** recent content hashes each way (insertion order = age), at most BOUNCE_MEMORY each */
  sent: Map<string, number>
  received: Map<string, number>
  openUntil?: number
  /** When the last cooldown ended; the breaker is half-open for one window after it. */
  halfOpenSince?: number
  /** Trip times within the auto-block period, oldest first, at most `autoBlockAfter` (or 16). */
  trips: number[]
  refused: number
  lastSeen: number
}

/**
 * One breaker per pair of agents, against conversation loops: two agents answering each other
 * at once, over and over, or bouncing the same content back and forth. It counts **turns** (a
 * message the other way within `turnGapMs` of the previous one) and **bounces** (a message whose
 * content hash was seen the other way within the window), not traffic: a one-way stream of any
 * length never trips it, and neither does a conversation paced slower than the turn gap. The
 * event that makes turns exceed `threshold` (or bounces exceed `bounces`) within the window trips
 * the breaker: it is refused, `onTrip` is called, and everything is refused until the cooldown
 * ends. Then the breaker is half-open: events are allowed and counted in a fresh window, a new
 * excess trips it again, and a full window without one closes it. When `autoBlockAfter` (> 0)
 * trips happen within 24 h, the trip reports `autoBlock`.
 */
export class CircuitBreaker {
  #threshold: number
  #bounces: number
  #turnGapMs: number
  #window: SlidingWindow
  #cooldownMs: number
  #autoBlockAfter: number
  #periodMs: number
  readonly #onTrip: ((trip: BreakerTrip) => void) | undefined
  /** least recently used first */
  readonly #pairs: LruMap<string, PairEntry>

  constructor (init: CircuitBreakerInit = {}) {
    this.#threshold = checkInt('threshold', init.threshold ?? DEFAULT_LOOP_THRESHOLD, 1)
    this.#bounces = checkInt('bounces', init.bounces ?? DEFAULT_BOUNCE_THRESHOLD, 1)
    this.#turnGapMs = checkInt('turnGapMs', init.turnGapMs ?? DEFAULT_TURN_GAP_MS, 1)
    this.#window = new SlidingWindow(checkInt('windowMs', init.windowMs ?? DEFAULT_LOOP_WINDOW_MS, 1), checkInt('buckets', init.buckets ?? DEFAULT_WINDOW_BUCKETS, 1, 3600))
    this.#cooldownMs = checkInt('cooldownMs', init.cooldownMs ?? 60_000, 1)
    this.#autoBlockAfter = checkInt('autoBlockAfter', init.autoBlockAfter ?? 0, 0, 1000)
    this.#periodMs = checkInt('autoBlockPeriodMs', init.autoBlockPeriodMs ?? AUTO_BLOCK_PERIOD_MS, 1)
    this.#pairs = new LruMap(checkInt('maxPairs', init.maxPairs ?? DEFAULT_BREAKER_MAX_PAIRS, 1))
    this.#onTrip = init.onTrip
  }

  /** Pairs currently held. */
  get size (): number { return this.#pairs.size }

  #entry (pair: AgentPair, now: number): PairEntry {
    const key = pairKey(pair)
    let e = this.#pairs.get(key) // marked as most recently used
    if (e === undefined) {
      e = {
        pair: { local: pair.local, peer: pair.peer },
        turns: this.#window.create(now),
        bounces: this.#window.create(now),
        lastAt: now,
        sent: new Map(),
        received: new Map(),
        trips: [],
        refused: 0,
        lastSeen: now,
      }
      this.#pairs.set(key, e) // the least recently used pair goes when it is full
    }
    return e
  }

  /**
   * Records one message between the pair at `now` and answers whether it may go through. Without
   * `event`, an incoming message without a hash (it can make a turn, never a bounce).
   */
  record (pair: AgentPair, now: number, event: LoopEvent = { direction: 'in' }): BreakerResult {
    const e = this.#entry(pair, now)
    e.lastSeen = Math.max(e.lastSeen, now)
    this.#settle(e, now)

    if (e.openUntil !== undefined) {
      e.refused++
      return { allowed: false, state: 'open', retryAfterMs: e.openUntil - now }
    }
    const dir = event.direction
    const turn = e.lastDir !== undefined && e.lastDir !== dir && now - e.lastAt <= this.#turnGapMs
    e.lastDir = dir
    e.lastAt = Math.max(e.lastAt, now)
    let bounce = false
    if (event.hash !== undefined) {
      const other = dir === 'in' ? e.sent : e.received
      const seen = other.get(event.hash)
      bounce = seen !== undefined && now - seen <= this.#window.windowMs
      const mine = dir === 'in' ? e.received : e.sent
      mine.delete(event.hash)
      mine.set(event.hash, now)
      if (mine.size > BOUNCE_MEMORY) mine.delete(mine.keys().next().value!)
    }
    const turns = turn ? this.#window.add(e.turns, now) : this.#window.count(e.turns, now)
    const bounces = bounce ? this.#window.add(e.bounces, now) : this.#window.count(e.bounces, now)
    const reason = turns > this.#threshold ? 'turns' : bounces > this.#bounces ? 'bounces' : undefined
    if (reason === undefined) return { allowed: true, state: this.#name(e, now) as 'closed' | 'half-open' }

    // trip
    const until = now + this.#cooldownMs
    e.openUntil = until
    e.halfOpenSince = undefined
    e.refused = 1
    e.trips = e.trips.filter(t => t > now - this.#periodMs)
    e.trips.push(now)
    const keep = this.#autoBlockAfter === 0 ? 16 : this.#autoBlockAfter
    if (e.trips.length > keep) e.trips.splice(0, e.trips.length - keep)
    const trips = e.trips.length
    const autoBlock = this.#autoBlockAfter > 0 && trips >= this.#autoBlockAfter
    if (autoBlock) e.trips = []
    const trip: BreakerTrip = { pair: { ...e.pair }, reason, count: reason === 'turns' ? turns : bounces, until, trips, autoBlock }
    this.#onTrip?.(trip)
    return { allowed: false, state: 'open', retryAfterMs: this.#cooldownMs, trip }
  }

  /** Whether the pair's breaker is open at `now` (does not count as an event); the ms left when it is. */
  openFor (pair: AgentPair, now: number): number {
    const e = this.#pairs.peek(pairKey(pair))
    return e?.openUntil !== undefined && now < e.openUntil ? e.openUntil - now : 0
  }

  /**
   * The pair's breaker as at `now` (default: the time of its last event). Does not count as
   * use. An unknown pair is closed.
   */
  state (pair: AgentPair, now?: number): BreakerState {
    const e = this.#pairs.peek(pairKey(pair))
    if (e === undefined) return { state: 'closed', count: 0, turns: 0, bounces: 0, trips: 0, refused: 0 }
    const t = now ?? e.lastSeen
    const open = e.openUntil !== undefined && t < e.openUntil
    const fresh = open || e.openUntil === undefined
    const turns = fresh ? this.#window.count(e.turns, t) : 0
    const bounces = fresh ? this.#window.count(e.bounces, t) : 0
    const out: BreakerState = {
      state: this.#name(e, t),
      count: turns,
      turns,
      bounces,
      trips: e.trips.filter(x => x > t - this.#periodMs).length,
      refused: e.refused,
    }
    if (open) out.until = e.openUntil!
    return out
  }

  /** What to store for the pair so that a restart keeps its trips (and an open breaker). */
  snapshot (pair: AgentPair): BreakerSnapshot {
    const e = this.#pairs.peek(pairKey(pair))
    if (e === undefined) return { trips: [] }
    return { trips: [...e.trips], ...(e.openUntil === undefined ? {} : { until: e.openUntil }) }
  }

  /** Puts back what `snapshot` gave (after a restart): the pair's trips, and an open breaker's end. */
  restore (pair: AgentPair, s: BreakerSnapshot, now: number): void {
    const e = this.#entry(pair, now)
    const keep = this.#autoBlockAfter === 0 ? 16 : this.#autoBlockAfter
    e.trips = (Array.isArray(s.trips) ? s.trips : []).filter(t => Number.isFinite(t) && t > now - this.#periodMs).slice(-keep)
    if (typeof s.until === 'number' && s.until > now) {
      e.openUntil = s.until
      e.halfOpenSince = undefined
    }
  }

  /** Closes the pair's breaker and forgets its history (the owner's "reset"). */
  reset (pair: AgentPair): boolean { return this.#pairs.delete(pairKey(pair)) }

  clear (): void { this.#pairs.clear() }

  /**
   * Changes the settings; open breakers and trip history stay. A new window length restarts
   * the counts. For a policy reload: `breaker.configure(breakerInit(p))`.
   */
  configure (init: Omit<CircuitBreakerInit, 'onTrip'>): void {
    if (init.threshold !== undefined) this.#threshold = checkInt('threshold', init.threshold, 1)
    if (init.bounces !== undefined) this.#bounces = checkInt('bounces', init.bounces, 1)
    if (init.turnGapMs !== undefined) this.#turnGapMs = checkInt('turnGapMs', init.turnGapMs, 1)
    if (init.cooldownMs !== undefined) this.#cooldownMs = checkInt('cooldownMs', init.cooldownMs, 1)
    if (init.autoBlockAfter !== undefined) this.#autoBlockAfter = checkInt('autoBlockAfter', init.autoBlockAfter, 0, 1000)
    if (init.autoBlockPeriodMs !== undefined) this.#periodMs = checkInt('autoBlockPeriodMs', init.autoBlockPeriodMs, 1)
    if (init.maxPairs !== undefined) this.#pairs.maxSize = checkInt('maxPairs', init.maxPairs, 1)
    const windowMs = init.windowMs ?? this.#window.windowMs
    const buckets = init.buckets ?? this.#window.buckets
    if (windowMs !== this.#window.windowMs || buckets !== this.#window.buckets) {
      this.#window = new SlidingWindow(checkInt('windowMs', windowMs, 1), checkInt('buckets', buckets, 1, 3600))
      for (const e of this.#pairs.values()) {
        e.turns = this.#window.create(e.lastSeen)
        e.bounces = this.#window.create(e.lastSeen)
      }
    }
  }

  /** An open breaker whose cooldown has ended becomes half-open with a fresh window. */
  #settle (e: PairEntry, now: number): void {
    if (e.openUntil !== undefined && now >= e.openUntil) {
      e.halfOpenSince = e.openUntil
      e.openUntil = undefined
      e.turns = this.#window.create(now)
      e.bounces = this.#window.create(now)
      e.lastDir = undefined
      e.sent.clear()
      e.received.clear()
    }
  }

  #name (e: PairEntry, now: number): BreakerStateName {
    if (e.openUntil !== undefined) return now < e.openUntil ? 'open' : 'half-open'
    if (e.halfOpenSince !== undefined && now < e.halfOpenSince + this.#window.windowMs) return 'half-open'
    return 'closed'
  }
}

/** The breaker's settings from a policy's `breaker` section. */
export function breakerInit (policy: Policy): Omit<CircuitBreakerInit, 'onTrip'> {
  const b = policy.breaker
  return {
    threshold: b.threshold,
    bounces: b.bounces,
    turnGapMs: b.turn_gap_s * 1000,
    windowMs: b.window_s * 1000,
    cooldownMs: b.cooldown_s * 1000,
    autoBlockAfter: b.auto_block_after,
  }
}

function pairKey (p: AgentPair): string {
  // AMIDs are base58: a newline cannot occur in one
  return `${p.local}\n${p.peer}`
}
