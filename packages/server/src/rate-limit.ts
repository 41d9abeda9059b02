/**
 * Token buckets keyed by agent or IP (docs/protocol.md §17.8): `perMinute` tokens refill over a
 * minute, at most `burst` are banked. Memory is bounded: past `maxKeys` the least recently used
 * bucket is forgotten (it starts full again, which only ever errs on the side of the caller).
 */
export interface RateLimit { perMinute: number, burst: number }

export type TakeResult = { ok: true } | { ok: false, retryAfterS: number }

interface Bucket { tokens: number, at: number }

export const MAX_RATE_LIMIT_KEYS = 100_000

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private limit: RateLimit, private readonly now: () => number = Date.now, private readonly maxKeys = MAX_RATE_LIMIT_KEYS) {}

  /** New limits apply to every bucket from now on. */
  set (limit: RateLimit): void { this.limit = limit }

  take (key: string, cost = 1): TakeResult {
    const t = this.now()
    const { perMinute, burst } = this.limit
    const rate = perMinute / 60_000
    let b = this.buckets.get(key)
    if (b === undefined) {
      b = { tokens: burst, at: t }
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
    } else {
      this.buckets.delete(key) // re-inserted below: the Map's order is least recently used first
      b.tokens = Math.min(burst, b.tokens + (t - b.at) * rate)
      b.at = t
    }
    this.buckets.set(key, b)
    if (b.tokens >= cost) { b.tokens -= cost; return { ok: true } }
    const missing = cost - b.tokens
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(missing / rate / 1000)) }
  }
}
