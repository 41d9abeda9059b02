/**
 * The one load generator used against every target.
 *
 * `pairs` sender→receiver pairs (2 connections each). Every message carries a per-pair sequence
 * number; the generator records each message's send time (performance.now()) in a table indexed
 * by pair and sequence, and a delivery's latency is its arrival time minus that send time. The
 * table (not the payload's `t`) is used for every target so that latency is measured the same way
 * everywhere, including AgentMesh whose envelopes are signed before the run.
 *
 * Phases, each followed by a bounded drain (wait until everything sent was delivered):
 *  - peak: closed loop, `window` messages in flight per sender; a slot is freed by the target's
 *    acknowledgement (or by the delivery for targets without acks). Warm-up, then a measured
 *    window: delivered msg/s, latency percentiles, server CPU (µs per delivery), generator CPU.
 *  - fixed: open loop at a given rate (half the measured peak), paced by a 1 ms timer, with a
 *    per-sender cap on messages in flight (beyond it a message is skipped and counted).
 */
import type { CpuSample, ServerHandle } from './children.ts'
import type { Client, Sink } from './targets/types.ts'
import { percentiles, round, sleep } from './util.ts'

export interface LoadOptions {
  pairs: number
  /** messages in flight per sender in the peak phase */
  window: number
  warmupMs: number
  measureMs: number
  fixedWarmupMs: number
  fixedMeasureMs: number
  /** longest wait for in-flight messages after a phase */
  drainMs: number
  /** open loop: most messages in flight per sender (AgentMesh refuses more than 1024) */
  openLoopCap: number
}

export interface Latency { p50: number, p90: number, p99: number, max: number, samples: number }

export interface Drain {
  /** everything sent in the phase was delivered, in order, once */
  complete: boolean
  sent: number
  delivered: number
  acked: number
  ms: number
}

export interface PhaseResult {
  seconds: number
  sent_per_s: number
  delivered_per_s: number
  latency_ms: Latency
  server_cpu_pct: number
  server_cpu_us_per_delivery: number
  generator_cpu_pct: number
  /** target counters over the measured window (the relay's stats) */
  server_stats?: Record<string, number>
  drain: Drain
  /** open loop only */
  target_rate?: number
  skipped_at_cap?: number
}

const RING = 1 << 16
const MASK = RING - 1

interface Snapshot {
  at: number
  server: CpuSample
  gen: NodeJS.CpuUsage
  sent: number
  delivered: number
  skipped: number
}

export class LoadGenerator implements Sink {
  client: Client | undefined
  private readonly P: number
  private readonly nextSeq: Float64Array
  private readonly inflight: Int32Array
  private readonly expected: Float64Array
  private readonly exhausted: Uint8Array
  private readonly sendTime: Float64Array
  private readonly sendSeq: Float64Array
  private samples: Float64Array
  private nSamples = 0
  private recording = false
  private mode: 'idle' | 'closed' | 'open' = 'idle'

  // cumulative counters
  sent = 0
  received = 0
  acks = 0
  /** deliveries that skipped ahead of the expected sequence (messages missing) */
  gaps = 0
  /** deliveries at or below an already delivered sequence (duplicates or reordering) */
  stale = 0
  errors = 0
  skipped = 0
  poolExhausted = 0
  readonly firstErrors: string[] = []

  constructor (private readonly opts: LoadOptions, private readonly windowBy: 'ack' | 'delivery') {
    this.P = opts.pairs
    this.nextSeq = new Float64Array(this.P)
    this.inflight = new Int32Array(this.P)
    this.expected = new Float64Array(this.P)
    this.exhausted = new Uint8Array(this.P)
    this.sendTime = new Float64Array(this.P * RING)
    this.sendSeq = new Float64Array(this.P * RING).fill(-1)
    this.samples = new Float64Array(1 << 20)
  }

  // ---------------------------------------------------------------- Sink

  delivered (p: number, seq: number): void {
    const now = performance.now()
    this.received++
    const exp = this.expected[p]!
    if (seq === exp) this.expected[p] = exp + 1
    else if (seq > exp) { this.gaps += seq - exp; this.expected[p] = seq + 1 } else this.stale++
    if (this.recording) {
      const i = p * RING + (seq & MASK)
      if (this.sendSeq[i] === seq) {
        if (this.nSamples === this.samples.length) this.grow()
        this.samples[this.nSamples++] = now - this.sendTime[i]!
      }
    }
    if (this.windowBy === 'delivery') this.freed(p)
  }

  acked (p: number): void {
    this.acks++
    if (this.windowBy === 'ack') this.freed(p)
  }

  failed (p: number, what: string): void {
    this.errors++
    if (this.firstErrors.length < 5) {
      this.firstErrors.push(`pair ${p}: ${what}`)
      process.stderr.write(`  ! pair ${p}: ${what}\n`)
    }
  }

  // ---------------------------------------------------------------- sending

  private grow (): void {
    const next = new Float64Array(this.samples.length * 2)
    next.set(this.samples)
    this.samples = next
  }

  private freed (p: number): void {
    this.inflight[p]!--
    if (this.mode === 'closed') this.fill(p)
  }

  private fill (p: number): void {
    while (this.inflight[p]! < this.opts.window && this.sendOne(p)) { /* fill the window */ }
  }

  private sendOne (p: number): boolean {
    if (this.exhausted[p] === 1) return false
    const seq = this.nextSeq[p]!
    const t = performance.now()
    const i = p * RING + (seq & MASK)
    this.sendTime[i] = t
    this.sendSeq[i] = seq
    if (!this.client!.send(p, seq, t)) {
      this.exhausted[p] = 1
      this.poolExhausted++
      this.failed(p, `no more pre-signed messages after ${seq} (raise BENCH_AM_POOL, or BENCH_E2EE_POOL for an E2EE target)`)
      return false
    }
    this.nextSeq[p] = seq + 1
    this.inflight[p]!++
    this.sent++
    return true
  }

  // ---------------------------------------------------------------- measurement

  private async snapshot (server: ServerHandle): Promise<Snapshot> {
    // server.cpu() reads the server's CPU time before its first await: the counters are taken at the same moment
    const pending = server.cpu()
    const now = { gen: process.cpuUsage(), sent: this.sent, delivered: this.received, skipped: this.skipped }
    const s = await pending
    return { at: s.atMs, server: s, ...now }
  }

  private result (a: Snapshot, b: Snapshot, drain: Drain): PhaseResult {
    const sec = (b.at - a.at) / 1000
    const deliveries = b.delivered - a.delivered
    const serverUs = (b.server.userUs + b.server.systemUs) - (a.server.userUs + a.server.systemUs)
    const genUs = (b.gen.user + b.gen.system) - (a.gen.user + a.gen.system)
    const [p50, p90, p99, max] = percentiles(this.samples, this.nSamples, [50, 90, 99, 100])
    const r: PhaseResult = {
      seconds: round(sec, 3),
      sent_per_s: Math.round((b.sent - a.sent) / sec),
      delivered_per_s: Math.round(deliveries / sec),
      latency_ms: { p50: round(p50!, 2), p90: round(p90!, 2), p99: round(p99!, 2), max: round(max!, 2), samples: this.nSamples },
      server_cpu_pct: round(serverUs / (sec * 1e6) * 100, 1),
      server_cpu_us_per_delivery: deliveries > 0 ? round(serverUs / deliveries, 2) : NaN,
      generator_cpu_pct: round(genUs / (sec * 1e6) * 100, 1),
      drain,
    }
    if (a.server.stats !== undefined && b.server.stats !== undefined) {
      const d: Record<string, number> = {}
      for (const [k, v] of Object.entries(b.server.stats)) d[k] = v - (a.server.stats[k] ?? 0)
      r.server_stats = d
    }
    return r
  }

  /** Waits until everything sent was delivered (and acknowledged, for ack targets), bounded. */
  private async drain (sentBefore: number, deliveredBefore: number, acksBefore: number): Promise<Drain> {
    const t0 = performance.now()
    const gapsBefore = this.gaps
    const staleBefore = this.stale
    const done = (): boolean => this.received >= this.sent && (this.windowBy !== 'ack' || this.acks >= this.sent)
    while (!done() && performance.now() - t0 < this.opts.drainMs) await sleep(5)
    return {
      complete: this.received === this.sent && this.gaps === gapsBefore && this.stale === staleBefore &&
        (this.windowBy !== 'ack' || this.acks === this.sent),
      sent: this.sent - sentBefore,
      delivered: this.received - deliveredBefore,
      acked: this.acks - acksBefore,
      ms: Math.round(performance.now() - t0),
    }
  }

  /** Closed loop at `window` messages in flight per sender. */
  async peak (server: ServerHandle): Promise<PhaseResult> {
    const s0 = this.sent
    const d0 = this.received
    const k0 = this.acks
    this.mode = 'closed'
    for (let p = 0; p < this.P; p++) this.fill(p)
    await sleep(this.opts.warmupMs)
    const a = await this.snapshot(server)
    this.nSamples = 0
    this.recording = true
    await sleep(this.opts.measureMs)
    this.recording = false
    const b = await this.snapshot(server)
    this.mode = 'idle'
    const drain = await this.drain(s0, d0, k0)
    return this.result(a, b, drain)
  }

  /** Open loop at `rate` messages per second in total, spread round-robin over the senders. */
  async fixed (server: ServerHandle, rate: number): Promise<PhaseResult> {
    const s0 = this.sent
    const d0 = this.received
    const k0 = this.acks
    this.mode = 'open'
    const start = performance.now()
    let issued = 0
    let rr = 0
    const tick = (): void => {
      const due = Math.floor(rate * (performance.now() - start) / 1000) - issued
      for (let k = 0; k < due; k++) {
        const p = rr
        rr = rr + 1 === this.P ? 0 : rr + 1
        issued++
        if (this.inflight[p]! >= this.opts.openLoopCap || this.exhausted[p] === 1) { this.skipped++; continue }
        this.sendOne(p)
      }
    }
    const timer = setInterval(tick, 1)
    try {
      await sleep(this.opts.fixedWarmupMs)
      const a = await this.snapshot(server)
      this.nSamples = 0
      this.recording = true
      await sleep(this.opts.fixedMeasureMs)
      this.recording = false
      const b = await this.snapshot(server)
      clearInterval(timer)
      this.mode = 'idle'
      const drain = await this.drain(s0, d0, k0)
      const r = this.result(a, b, drain)
      r.target_rate = Math.round(rate)
      r.skipped_at_cap = b.skipped - a.skipped
      return r
    } finally {
      clearInterval(timer)
      this.mode = 'idle'
    }
  }

  /** Correctness counters over the whole run. */
  totals (): Record<string, number> {
    return {
      sent: this.sent,
      delivered: this.received,
      acked: this.acks,
      gaps: this.gaps,
      stale: this.stale,
      errors: this.errors,
      pool_exhausted_pairs: this.poolExhausted,
    }
  }
}
