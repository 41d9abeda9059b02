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

  constructor (private limit: RateLimit, private readonly now: () => number = Date.now, maxKeys = MAX_RATE_LIMIT_KEYS) {
    this.buckets = new LruMap(maxKeys)
  }

  /** New limits apply to every bucket from now on. */
  set (limit: RateLimit): void { this.limit = limit }

  take (key: string, cost = 1): TakeResult {
    const t = this.now()
    const { perMinute, burst } = this.limit
    const rate = perMinute / 60_000
    let b = this.buckets.get(key)
    if (b === undefined) {
      b = { tokens: burst, at: t }
      this.buckets.set(key, b)
    } else {
      b.tokens = Math.min(burst, b.tokens + (t - b.at) * rate)
      b.at = t
    }
    if (b.tokens >= cost) { b.tokens -= cost; return { ok: true } }
    const missing = cost - b.tokens
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(missing / rate / 1000)) }
  }
}
