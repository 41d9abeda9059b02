/**
 * Small helpers shared by the load generator, the targets and the server children.
 */
import { createHash } from 'node:crypto'
import { createServer, type Socket } from 'node:net'

export const HOST = '127.0.0.1'

/** Size of every message's application payload: its JSON text, in bytes. */
export const PAYLOAD_BYTES = 256

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, ms) })
}

/** Rejects after `ms` with a message naming `what`. */
export async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new Error(`${what}: timed out after ${ms} ms`)) }, ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** A BENCH_* variable with a value the bench cannot use (printed as one line, exit 2). */
export class BenchConfigError extends Error {}

export function envInt (name: string, def: number): number {
  const v = process.env[name]
  if (v === undefined || v === '') return def
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new BenchConfigError(`${name} must be a positive number, got ${JSON.stringify(v)}`)
  return n
}

/** A free TCP port on loopback (for nats-server, which cannot report the port it picked). */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, HOST, () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => { resolve(port) })
    })
  })
}

const PAD = 'x'.repeat(PAYLOAD_BYTES)

/**
 * The application payload of message `seq`: `{"bseq":N,"t":T,"pad":"xx…"}`, padded so that
 * its JSON text is exactly PAYLOAD_BYTES bytes. `t` is the send time (ms, performance.now()).
 */
export function payloadText (seq: number, t: number): string {
  const head = '{"bseq":' + String(seq) + ',"t":' + String(t) + ',"pad":"'
  return head + PAD.slice(0, PAYLOAD_BYTES - head.length - 2) + '"}'
}

export function payloadObject (seq: number, t: number): { bseq: number, t: number, pad: string } {
  // same layout and length as payloadText()
  const headLength = 8 + String(seq).length + 5 + String(t).length + 8
  return { bseq: seq, t, pad: PAD.slice(0, PAYLOAD_BYTES - headLength - 2) }
}

const BSEQ_KEY = '"bseq":'

/** Reads the non-negative integer that follows `key` in `data` (a Buffer or a string); -1 when absent. */
export function readIntAfter (data: Buffer | string, key: string, from = 0): number {
  const at = data.indexOf(key, from)
  if (at < 0) return -1
  let i = at + key.length
  let n = 0
  let digits = 0
  if (typeof data === 'string') {
    for (; i < data.length; i++) {
      const c = data.charCodeAt(i) - 48
      if (c < 0 || c > 9) break
      n = n * 10 + c
      digits++
    }
  } else {
    for (; i < data.length; i++) {
      const c = data[i]! - 48
      if (c < 0 || c > 9) break
      n = n * 10 + c
      digits++
    }
  }
  return digits === 0 ? -1 : n
}

/** The `bseq` of a payload, wherever it sits in a frame. */
export function readBseq (data: Buffer | string, from = 0): number {
  return readIntAfter(data, BSEQ_KEY, from)
}

// ---------------------------------------------------------------- corked writes

/**
 * Corks a socket for the rest of this event-loop turn: everything written to it in this turn
 * leaves in one system call when the turn ends. Used by the generator's raw WebSocket clients
 * and by the bare forwarder.
 */
const corked: Socket[] = []
let uncorkScheduled = false

function uncorkAll (): void {
  uncorkScheduled = false
  const list = corked.splice(0)
  for (const s of list) if (!s.destroyed) s.uncork()
}

export function corkForTurn (sock: Socket | undefined): void {
  if (sock === undefined || sock.writableCorked > 0 || sock.destroyed) return
  sock.cork()
  corked.push(sock)
  if (!uncorkScheduled) {
    uncorkScheduled = true
    setImmediate(uncorkAll)
  }
}

/** The TCP socket under a `ws` WebSocket (not part of its typed API). */
export function socketOf (ws: object): Socket | undefined {
  return (ws as { _socket?: Socket })._socket
}

// ---------------------------------------------------------------- statistics

/** Percentile (0..100) of the first `n` values of `samples`, which this sorts in place. */
export function percentiles (samples: Float64Array, n: number, ps: number[]): number[] {
  if (n === 0) return ps.map(() => NaN)
  const view = samples.subarray(0, n)
  view.sort()
  return ps.map((p) => view[Math.min(n - 1, Math.max(0, Math.ceil(p / 100 * n) - 1))]!)
}

export function round (x: number, digits = 1): number {
  if (!Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}

// ---------------------------------------------------------------- machine speed

const PROBE_BUF = Buffer.alloc(16 * 1024, 1)

/**
 * A fixed CPU-bound workload (SHA-256 of 16 KiB) run for `ms` on this thread: hashes per ms.
 * Taken before every target, it shows when the machine was slower for one target than for
 * another (a noisy neighbour), which would make their ratio suspect.
 */
export function cpuProbe (ms = 100): number {
  const t0 = performance.now()
  let n = 0
  let now = t0
  while (now - t0 < ms) {
    for (let i = 0; i < 16; i++) createHash('sha256').update(PROBE_BUF).digest()
    n += 16
    now = performance.now()
  }
  return n / (now - t0)
}
