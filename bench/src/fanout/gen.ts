/**
 * The room fan-out load: one sender posts to a room of `members` receivers at a fixed rate (open
 * loop, paced by a 1 ms timer); every receiver gets every message. The generator keeps each
 * message's send time (performance.now()) in a table indexed by sequence number; a delivery's
 * latency is its arrival time minus that. Each receiver checks that sequence numbers arrive in
 * order, once.
 *
 * Phases: warm-up at the rate (`warmupMs`), measured window (`measureMs`), then a bounded drain
 * (wait until every receiver got every message sent, and the sender every acknowledgement).
 * A sender with `cap` messages awaiting their acknowledgement skips a message instead of sending it
 * (counted: non-zero means the target did not keep up with the rate).
 */
import type { CpuSample, ServerHandle } from '../children.ts'
import { percentiles, round, sleep } from '../util.ts'

/** Events a fan-out client reports. */
export interface FanoutSink {
  /** receiver `r` (0…members−1) got message `seq` */
  delivered (r: number, seq: number): void
  /** the sender got one acknowledgement */
  acked (): void
  failed (who: string, what: string): void
}

export interface FanoutClient {
  /** sends message `seq` (its send time `t`); false when it cannot (a pre-signed pool ran out) */
  send (seq: number, t: number): boolean
  stats? (): Record<string, number>
  close (): Promise<void>
}

export interface FanoutTarget {
  readonly name: string
  readonly label: string
  /** whether the sender gets an acknowledgement per message (then `cap` bounds what is unacknowledged) */
  readonly acks: boolean
  readonly info: Record<string, unknown>
  start (): Promise<ServerHandle>
  connect (server: ServerHandle, members: number, sink: FanoutSink, messages: number): Promise<FanoutClient>
  cleanup? (): void
}

export interface FanoutOptions {
  members: number
  /** messages per second the one sender posts */
  rate: number
  warmupMs: number
  measureMs: number
  drainMs: number
  /** most unacknowledged messages at the sender (AgentMesh refuses more than 1,024 in flight) */
  cap: number
}

export interface FanoutResult {
  members: number
  rate: number
  seconds: number
  sent_per_s: number
  /** deliveries at all receivers per second ÷ members: messages per second that reached every member */
  delivered_msg_per_s: number
  deliveries_per_s: number
  latency_ms: { p50: number, p90: number, p99: number, max: number, samples: number }
  server_cpu_pct: number
  server_cpu_us_per_delivery: number
  generator_cpu_pct: number
  server_stats?: Record<string, number>
  skipped_at_cap: number
  drain: { complete: boolean, sent: number, deliveries: number, expected: number, acked: number, ms: number }
  gaps: number
  stale: number
  errors: number
  first_errors?: string[]
}

const RING = 1 << 16
const MASK = RING - 1

export class FanoutGenerator implements FanoutSink {
  client: FanoutClient | undefined
  private readonly expected: Float64Array
  private readonly sendTime = new Float64Array(RING)
  private readonly sendSeq = new Float64Array(RING).fill(-1)
  private samples = new Float64Array(1 << 20)
  private nSamples = 0
  private recording = false
  sent = 0
  deliveries = 0
  acks = 0
  gaps = 0
  stale = 0
  errors = 0
  skipped = 0
  exhausted = false
  readonly firstErrors: string[] = []

  constructor (private readonly opts: FanoutOptions, private readonly withAcks: boolean) {
    this.expected = new Float64Array(opts.members)
  }

  delivered (r: number, seq: number): void {
    const now = performance.now()
    this.deliveries++
    const exp = this.expected[r]!
    if (seq === exp) this.expected[r] = exp + 1
    else if (seq > exp) { this.gaps += seq - exp; this.expected[r] = seq + 1 } else this.stale++
    if (this.recording) {
      const i = seq & MASK
      if (this.sendSeq[i] === seq) {
        if (this.nSamples === this.samples.length) {
          const next = new Float64Array(this.samples.length * 2)
          next.set(this.samples)
          this.samples = next
        }
        this.samples[this.nSamples++] = now - this.sendTime[i]!
      }
    }
  }

  acked (): void { this.acks++ }

  failed (who: string, what: string): void {
    this.errors++
    if (this.firstErrors.length < 5) {
      this.firstErrors.push(`${who}: ${what}`)
      process.stderr.write(`  ! ${who}: ${what}\n`)
    }
  }

  private sendOne (): void {
    if (this.exhausted) { this.skipped++; return }
    if (this.withAcks && this.sent - this.acks >= this.opts.cap) { this.skipped++; return }
    const seq = this.sent
    const t = performance.now()
    const i = seq & MASK
    this.sendTime[i] = t
    this.sendSeq[i] = seq
    if (!this.client!.send(seq, t)) {
      this.exhausted = true
      this.failed('sender', `no more pre-signed messages after ${seq}`)
      return
    }
    this.sent++
  }

  async run (server: ServerHandle): Promise<FanoutResult> {
    const o = this.opts
    const start = performance.now()
    let issued = 0
    const tick = (): void => {
      const due = Math.floor(o.rate * (performance.now() - start) / 1000) - issued
      for (let k = 0; k < due; k++) { issued++; this.sendOne() }
    }
    const timer = setInterval(tick, 1)
    let a: Snap, b: Snap
    try {
      await sleep(o.warmupMs)
      a = await snap(server, this)
      this.nSamples = 0
      this.recording = true
      await sleep(o.measureMs)
      this.recording = false
      clearInterval(timer) // the window ends here: nothing is sent while the snapshot's counters come
      b = await snap(server, this)
    } finally {
      clearInterval(timer)
    }
    // drain: every receiver got every message sent, the sender every acknowledgement
    const t0 = performance.now()
    const expected = this.sent * o.members
    const done = (): boolean => this.deliveries >= expected && (!this.withAcks || this.acks >= this.sent)
    while (!done() && performance.now() - t0 < o.drainMs) await sleep(5)
    const sec = (b.at - a.at) / 1000
    const deliveries = b.deliveries - a.deliveries
    const serverUs = (b.server.userUs + b.server.systemUs) - (a.server.userUs + a.server.systemUs)
    const genUs = (b.gen.user + b.gen.system) - (a.gen.user + a.gen.system)
    const [p50, p90, p99, max] = percentiles(this.samples, this.nSamples, [50, 90, 99, 100])
    const r: FanoutResult = {
      members: o.members,
      rate: o.rate,
      seconds: round(sec, 3),
      sent_per_s: Math.round((b.sent - a.sent) / sec),
      delivered_msg_per_s: Math.round(deliveries / sec / o.members),
      deliveries_per_s: Math.round(deliveries / sec),
      latency_ms: { p50: round(p50!, 2), p90: round(p90!, 2), p99: round(p99!, 2), max: round(max!, 2), samples: this.nSamples },
      server_cpu_pct: round(serverUs / (sec * 1e6) * 100, 1),
      server_cpu_us_per_delivery: deliveries > 0 ? round(serverUs / deliveries, 2) : NaN,
      generator_cpu_pct: round(genUs / (sec * 1e6) * 100, 1),
      skipped_at_cap: this.skipped,
      drain: {
        complete: this.deliveries === expected && this.gaps === 0 && this.stale === 0 && this.skipped === 0 && (!this.withAcks || this.acks === this.sent),
        sent: this.sent,
        deliveries: this.deliveries,
        expected,
        acked: this.acks,
        ms: Math.round(performance.now() - t0),
      },
      gaps: this.gaps,
      stale: this.stale,
      errors: this.errors,
    }
    if (a.server.stats !== undefined && b.server.stats !== undefined) {
      const d: Record<string, number> = {}
      for (const [k, v] of Object.entries(b.server.stats)) d[k] = v - (a.server.stats[k] ?? 0)
      r.server_stats = d
    }
    if (this.firstErrors.length > 0) r.first_errors = this.firstErrors
    return r
  }
}

interface Snap { at: number, server: CpuSample, gen: NodeJS.CpuUsage, sent: number, deliveries: number }

async function snap (server: ServerHandle, g: FanoutGenerator): Promise<Snap> {
  // server.cpu() reads the server's CPU time before its first await: the counters are taken at the same moment
  const pending = server.cpu()
  const now = { gen: process.cpuUsage(), sent: g.sent, deliveries: g.deliveries }
  const s = await pending
  return { at: s.atMs, server: s, ...now }
}
