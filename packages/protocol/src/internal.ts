export * from './index.ts'
export { LruMap, LruSet } from './lru.ts'
export { RateLimiter, MAX_RATE_LIMIT_KEYS } from './rate-limit.ts'
export type { RateLimit, TakeResult } from './rate-limit.ts'
