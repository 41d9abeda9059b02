/**
 * What the console's Relay tab draws (docs/protocol.md §22.3): connections, agents online, message
 * rates and inbox depths, sampled every `intervalMs` (5 s) for the last SERIES_SAMPLES samples
 * (10 minutes), in memory.
 */
import type { Store } from '@agentmesh/store'
import type { RelayStats } from '../relay.ts'

export const SERIES_INTERVAL_MS = 5000
export const SERIES_SAMPLES = 120

export interface RelaySample {
  ts: number
  connections: number
  agentsOnline: number
  /** messages received / delivered per second since the previous sample */
  receivedPerS: number
  deliveredPerS: number
  /** envelopes waiting in inboxes */
  pending: number
  queuedBytes: number
}

export class RelaySeries {
  readonly intervalMs: number
  private readonly samples: RelaySample[] = []
  private last: { ts: number, received: number, delivered: number } | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly d: { stats: () => RelayStats, store: Store, now: () => number, intervalMs?: number }) {
    this.intervalMs = d.intervalMs ?? SERIES_INTERVAL_MS
  }

  start (): void {
    void this.sample()
    this.timer = setInterval(() => { void this.sample() }, this.intervalMs).unref()
  }

  stop (): void { if (this.timer !== undefined) clearInterval(this.timer) }

  list (): RelaySample[] { return [...this.samples] }

  async sample (): Promise<void> {
    const s = this.d.stats()
    const ts = this.d.now()
    let pending = 0
    try { pending = (await this.d.store.stats()).pending } catch { pending = this.samples.at(-1)?.pending ?? 0 }
    const dt = this.last === undefined ? 0 : (ts - this.last.ts) / 1000
    const rate = (now: number, before: number | undefined): number => dt > 0 && before !== undefined ? Math.max(0, Math.round((now - before) / dt * 10) / 10) : 0
    this.samples.push({
      ts,
      connections: s.connections,
      agentsOnline: s.agentsOnline,
      receivedPerS: rate(s.received, this.last?.received),
      deliveredPerS: rate(s.delivered, this.last?.delivered),
      pending,
      queuedBytes: s.queuedBytes,
    })
    if (this.samples.length > SERIES_SAMPLES) this.samples.splice(0, this.samples.length - SERIES_SAMPLES)
    this.last = { ts, received: s.received, delivered: s.delivered }
  }
}
