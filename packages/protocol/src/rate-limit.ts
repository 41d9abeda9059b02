import { LruMap } from './lru.ts'

/**
 * Token buckets keyed by agent or IP (docs/protocol.md §17.8): `perMinute` tokens refill over a
 * minute, at most `burst` are banked. Memory is bounded: past `maxKeys` the least recently used
 * bucket is forgotten (it starts full again, which only ever errs on the side of the caller).
 */
export interface RateLimit { perMinute: number, burst: number }

export type TakeResult = { ok: true } | { ok: false, retryAfterS: number }

interface Bucket { tokens: number, at: number }

export const MAX_RATE_LIMIT_KEYS = 100_000

/** Token-bucket limiter: the one the relay uses for every REST and chat limit. */
export class RateLimiter {
  private readonly buckets: LruMap<string, Bucket>
  private observer: ((key: string, cost: number) => void) | undefined

  constructor (private limit: RateLimit, private readonly now: () => number = Date.now, maxKeys = MAX_RATE_LIMIT_KEYS) {
    this.buckets = new LruMap(maxKeys)
  }

  /** New limits apply to every bucket from now on. */
  set (limit: RateLimit): void { this.limit = limit }

  /** Calls `fn` with every cost taken by take() (not by spend()): how a cluster tells its other nodes. */
  observe (fn: ((key: string, cost: number) => void) | undefined): void { this.observer = fn }

  take (key: string, cost = 1): TakeResult {
    const b = this.filled(key)
    if (b.tokens >= cost) {
      b.tokens -= cost
      this.observer?.(key, cost)
      return { ok: true }
    }
    const missing = cost - b.tokens
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(missing / (this.limit.perMinute / 60_000) / 1000)) }
  }

  /**
   * Counts `cost` that the same caller spent elsewhere (on another relay node of a cluster): never
   * refused. The bucket may go into debt, at most `burst` below empty, so that what several nodes
   * let through before they heard of each other is paid back by waiting.
   */
  spend (key: string, cost: number): void {
    const b = this.filled(key)
    b.tokens = Math.max(-this.limit.burst, b.tokens - cost)
  }

  /** The key's bucket, refilled up to now. */
  private filled (key: string): Bucket {
    const t = this.now()
    const { perMinute, burst } = this.limit
    let b = this.buckets.get(key)
    if (b === undefined) {
      b = { tokens: burst, at: t }
      this.buckets.set(key, b)
    } else {
      b.tokens = Math.min(burst, b.tokens + (t - b.at) * perMinute / 60_000)
      b.at = t
    }
    return b
  }
}
