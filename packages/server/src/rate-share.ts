/**
 * Per-agent rate limits that hold across a cluster (docs/protocol.md §17.8). Each node keeps its token
 * buckets in memory, as a single relay does; what a caller spends on one node is told to the others
 * on the backplane (`rate:spent`, batched every `clusterRateShareMs`), and each takes it from its own
 * bucket for that caller (RateLimiter.spend, which may leave the bucket in debt). So a caller that
 * spreads its requests over N nodes gets the one limit in all, not N times it: what the nodes let
 * through before they hear of each other (at most one interval's worth per node) is paid back by
 * the caller waiting longer afterwards. The per-IP limits stay per node: behind a load balancer
 * every caller has the balancer's address, and one cluster-wide bucket for it would throttle everyone.
 *
 * Bounded: one message per interval at most (sooner when `MAX_RATE_SHARE_KEYS` keys are pending);
 * a lost message only lets a caller spend more for that interval.
 */
import type { RateLimiter } from '@agentmesh/protocol/internal'
import type { Backplane, BackplaneMessage } from './backplane.ts'
import type { RelayFeature } from './feature.ts'
import type { Logger } from './log.ts'

/** Bucket keys one `rate:spent` message carries at most; more pending sends it early. @default 2,000 */
export const MAX_RATE_SHARE_KEYS = 2000

export interface RateShareInit {
  backplane: Backplane
  node: string
  /** The limiters by name, read when the feature starts (the REST gate exists once routes ran). */
  limiters: () => Record<string, RateLimiter>
  intervalMs: number
  log: Logger
}

export interface RateShare extends RelayFeature {
  /** rate:spent messages told to the other nodes, and heard from them, since start */
  readonly told: number
  readonly heard: number
  start (): void
  stop (): void
  /** Tells the other nodes now what was spent since the last message (the timer does so every intervalMs). */
  flush (): void
}

export function rateShareFeature (init: RateShareInit): RateShare {
  let limiters: Record<string, RateLimiter> = {}
  let pending = new Map<string, Map<string, number>>()
  let keys = 0
  let timer: ReturnType<typeof setInterval> | undefined
  let off: (() => void) | undefined
  let told = 0
  let heard = 0

  const flush = (): void => {
    if (keys === 0) return
    const spent: Record<string, Array<[string, number]>> = {}
    for (const [name, m] of pending) spent[name] = [...m]
    pending = new Map()
    keys = 0
    told++
    init.backplane.publish({ type: 'rate:spent', origin: init.node, spent }).catch((err: unknown) => {
      init.log.warn({ err }, 'rate-limit spending not told to the other nodes (they allow more this interval)')
    })
  }
  const note = (name: string, key: string, cost: number): void => {
    let m = pending.get(name)
    if (m === undefined) pending.set(name, m = new Map())
    const was = m.get(key)
    if (was === undefined) keys++
    m.set(key, (was ?? 0) + cost)
    if (keys >= MAX_RATE_SHARE_KEYS) flush()
  }
  const hear = (msg: BackplaneMessage): void => {
    if (msg.type !== 'rate:spent' || msg.origin === init.node) return
    heard++
    for (const [name, entries] of Object.entries(msg.spent)) {
      const limiter = limiters[name]
      if (limiter === undefined) continue // a limit this node does not have (a newer node): ignored
      for (const [key, cost] of entries) limiter.spend(key, cost)
    }
  }

  return {
    name: 'rate-share',
    get told () { return told },
    get heard () { return heard },
    flush,
    start () {
      limiters = init.limiters()
      for (const [name, l] of Object.entries(limiters)) l.observe((key, cost) => { note(name, key, cost) })
      off = init.backplane.subscribe(hear)
      timer = setInterval(flush, init.intervalMs)
      timer.unref()
    },
    stop () {
      clearInterval(timer)
      flush()
      off?.()
      for (const l of Object.values(limiters)) l.observe(undefined)
    },
  }
}
