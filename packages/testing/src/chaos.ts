/**
 * The chaos run (`npm run chaos`): a real relay process on 127.0.0.1 over SQLite, receivers as
 * real processes, senders in this process; under load it kill -9s the relay and receivers at
 * random moments (seeded), stops a receiver's process for a while (a stalled reader), and then
 * checks every acknowledged message was delivered: it reports messages sent, acked, delivered,
 * lost and duplicated. Then the damage scenarios: the -wal file deleted after kill -9, and pages of
 * the database overwritten; each must be refused at start (AM_ERR_DATA_LOSS, AM_ERR_DATA_CORRUPT),
 * never served silently. A slow disk is not simulated (it needs a device or FUSE layer a test
 * cannot set up unprivileged). Bounded by message count and seconds; stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, rmSync, statSync, writeSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import WebSocket from 'ws'
import { PROTOCOL } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope, toB64u, type Identity } from '@agentmesh/crypto'
import { spawnRelay, tempDir, type RelayProcess } from './processes.ts'
import { seededRandom } from '@agentmesh/protocol/internal'

export interface ChaosOptions {
  /** sender→receiver pairs @default 4 */
  pairs?: number
  /** messages each sender sends @default 1500 */
  messages?: number
  /** the load phase stops after this long, sent or not @default 90 */
  seconds?: number
  /** seconds between two chaos events, at most (a random moment up to it) @default 3 */
  everyS?: number
  seed?: number
  /** also run the damage scenarios (lost -wal, overwritten pages) @default true */
  damage?: boolean
  log?: (line: string) => void
}

export interface ChaosReport {
  seed: number
  sent: number
  acked: number
  delivered: number
  /** acked but never delivered */
  lost: number
  /** delivered more than once (at-least-once: allowed, counted) */
  duplicated: number
  events: Record<string, number>
  damage: Record<string, string>
  durationMs: number
}


const RECEIVER = fileURLToPath(new URL('./chaos-receiver.ts', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** A receiver process; restarted after each kill. */
class Receiver {
  child: ChildProcess | undefined
  /** exits with an error code (not kills): a harness failure, reported */
  crashed = 0
  constructor (readonly id: Identity, private readonly seen: Map<string, number>) {}
  start (wsUrl: string): void {
    const child = spawn(process.execPath, ['--import', 'tsx', RECEIVER], {
      env: { ...process.env, CHAOS_WS: wsUrl, CHAOS_SECRET: toB64u(this.id.secretKey) },
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.startsWith('d ')) { const k = l.slice(2); this.seen.set(k, (this.seen.get(k) ?? 0) + 1) }
    })
    child.on('exit', (code) => { if (code !== null && code !== 0) this.crashed++ })
    this.child = child
  }
  kill (signal: NodeJS.Signals = 'SIGKILL'): void { this.child?.kill(signal) }
}

/** A sender in this process: sends its messages, resends the unacknowledged after a reconnect. */
class Sender {
  private ws: WebSocket | undefined
  private ready = false
  readonly acked = new Set<string>()
  private readonly frames: string[]
  private next = 0
  private readonly inFlight = new Set<number>()
  constructor (readonly id: Identity, to: string, count: number, private wsUrl: string) {
    this.frames = Array.from({ length: count }, (_, i) => JSON.stringify({ op: 'send', env: signEnvelope(id, { id: `c-${id.amid.slice(2, 10)}-${i}`, to, type: 'chat', payload: { i } }) }))
  }
  get sent (): number { return this.next }
  done (): boolean { return this.acked.size === this.frames.length }
  connect (wsUrl: string): void {
    this.wsUrl = wsUrl
    const ws = new WebSocket(wsUrl)
    this.ws = ws
    this.ready = false
    ws.on('error', () => {})
    ws.on('close', () => { if (this.ws === ws) { this.ready = false; this.ws = undefined } })
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Record<string, any>
      if (f.op === 'challenge') ws.send(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: this.id.amid, nonce: f.nonce, sig: signChallenge(this.id, this.id.amid, f.nonce, f.relay) }))
      else if (f.op === 'welcome') {
        this.ready = true
        // everything sent and not acked goes again: the relay answers a duplicate with an ack
        for (const i of this.inFlight) ws.send(this.frames[i]!)
      } else if (f.op === 'ack' && typeof f.id === 'string') {
        this.acked.add(f.id)
        const i = Number(f.id.split('-').pop())
        this.inFlight.delete(i)
      } else if (f.op === 'error' && typeof f.id === 'string') {
        // refused for now (shutting down, too many in flight): sent again after the next reconnect or pump
      }
    })
  }
  /** Sends more, keeping at most `window` unacknowledged. */
  pump (window: number): void {
    if (!this.ready || this.ws === undefined) { if (this.ws === undefined) this.connect(this.wsUrl); return }
    while (this.inFlight.size < window && this.next < this.frames.length) {
      this.inFlight.add(this.next)
      this.ws.send(this.frames[this.next]!)
      this.next++
    }
  }
  /** Sends again what is still unacknowledged (after refusals). */
  resend (): void { if (this.ready && this.ws !== undefined) for (const i of this.inFlight) this.ws.send(this.frames[i]!) }
  close (): void { this.ws?.terminate() }
}

export async function chaos (o: ChaosOptions = {}): Promise<ChaosReport> {
  const seed = o.seed ?? 1
  const rnd = seededRandom(seed)
  const pairs = o.pairs ?? 4
  const messages = o.messages ?? 1500
  const deadline = Date.now() + (o.seconds ?? 90) * 1000
  const everyMs = (o.everyS ?? 3) * 1000
  const log = o.log ?? (() => {})
  const started = Date.now()
  const events: Record<string, number> = {}
  const note = (k: string): void => { events[k] = (events[k] ?? 0) + 1; log(`chaos: ${k}`) }
  const dir = tempDir()
  const seen = new Map<string, number>()
  const damage: Record<string, string> = {}
  let relay: RelayProcess | undefined
  const receivers: Receiver[] = []
  const senders: Sender[] = []
  try {
    relay = await spawnRelay({ dataDir: dir.path, args: ['--audit-head-rows', '50'] })
    let wsUrl = relay.url.replace(/^http/, 'ws') + '/ws'
    const port = relay.port
    for (let p = 0; p < pairs; p++) {
      const r = new Receiver(createIdentity(), seen)
      r.start(wsUrl)
      receivers.push(r)
      const s = new Sender(createIdentity(), r.id.amid, messages, wsUrl)
      s.connect(wsUrl)
      senders.push(s)
    }
    let nextEvent = Date.now() + rnd() * everyMs
    let stalled: Receiver | undefined
    while (Date.now() < deadline && !senders.every(s => s.done())) {
      for (const s of senders) s.pump(256)
      if (Date.now() >= nextEvent) {
        nextEvent = Date.now() + rnd() * everyMs
        const e = rnd()
        if (stalled !== undefined) { stalled.kill('SIGCONT'); stalled = undefined; note('stalled reader resumed') }
        if (e < 0.35) {
          await relay.kill('SIGKILL')
          note('relay kill -9')
          relay = await spawnRelay({ dataDir: dir.path, port, args: ['--audit-head-rows', '50'] })
          wsUrl = relay.url.replace(/^http/, 'ws') + '/ws'
        } else if (e < 0.75) {
          const r = receivers[Math.floor(rnd() * receivers.length)]!
          r.kill('SIGKILL')
          note('receiver kill -9')
          r.start(wsUrl)
        } else {
          stalled = receivers[Math.floor(rnd() * receivers.length)]!
          stalled.kill('SIGSTOP')
          note('receiver stalled (SIGSTOP)')
        }
      }
      await sleep(20)
      if (Math.floor(Date.now() / 2000) % 2 === 0) for (const s of senders) s.resend()
    }
    if (stalled !== undefined) stalled.kill('SIGCONT')
    // drain: every acked message should reach its receiver
    const acked = new Set(senders.flatMap(s => [...s.acked]))
    // until every acked message arrived, or deliveries stopped for 10 s (at most 3 minutes)
    const drainUntil = Date.now() + 180_000
    let lastCount = -1
    let quietSince = Date.now()
    while (Date.now() < drainUntil && [...acked].some(k => !seen.has(k))) {
      if (seen.size !== lastCount) { lastCount = seen.size; quietSince = Date.now() } else if (Date.now() - quietSince > 10_000) break
      await sleep(200)
    }
    for (const s of senders) s.close()
    const sent = senders.reduce((n, s) => n + s.sent, 0)
    const lost = [...acked].filter(k => !seen.has(k)).length
    const duplicated = [...seen.values()].filter(n => n > 1).length
    const crashedReceivers = receivers.reduce((n, r) => n + r.crashed, 0)
    if (crashedReceivers > 0) events['receiver process crashed (harness)'] = crashedReceivers
    log(`load: sent ${sent}, acked ${acked.size}, delivered ${seen.size}, lost ${lost}, duplicated ${duplicated}`)
    if (process.env.CHAOS_DEBUG === '1') {
      for (const [i, r] of receivers.entries()) {
        const mine = [...senders[i]!.acked]
        log(`pair ${i}: acked ${mine.length}, seen ${mine.filter(k => seen.has(k)).length}, receiver pid ${String(r.child?.pid)} exit ${String(r.child?.exitCode)} signal ${String(r.child?.signalCode)}`)
      }
      const res = await fetch(relay.url + '/api/v1/info').then(async x => await x.text(), (e: Error) => e.message)
      log(`relay info: ${res.slice(0, 400)}`)
    }

    if (o.damage !== false) {
      // the -wal file lost after kill -9: refused at start, not served silently
      await relay.kill('SIGKILL')
      const wal = join(dir.path, 'agentmesh.db-wal')
      const walBytes = existsSync(wal) ? statSync(wal).size : 0
      if (walBytes > 0) {
        const fd = openSync(wal, 'r+')
        try { writeSync(fd, Buffer.alloc(walBytes)) } finally { closeSync(fd) }
      }
      rmSync(join(dir.path, 'agentmesh.db-shm'), { force: true })
      damage.wal_zeroed = await startOutcome(dir.path, port)
      // page corruption of a cleanly stopped database
      relay = await spawnRelay({ dataDir: dir.path, port, args: ['--accept-data-loss'] })
      await relay.kill('SIGTERM')
      const db = join(dir.path, 'agentmesh.db')
      const size = statSync(db).size
      if (size > 16 * 4096) {
        const fd = openSync(db, 'r+')
        try { writeSync(fd, Buffer.alloc(4 * 4096, 0x5a), 0, 4 * 4096, Math.floor(size / 4096 / 2) * 4096) } finally { closeSync(fd) }
        damage.pages_overwritten = await startOutcome(dir.path, port)
      } else damage.pages_overwritten = `not run: the database is ${size} bytes`
      damage.slow_disk = 'not simulated (needs a throttled device or FUSE)'
      relay = undefined
    }
    return { seed, sent, acked: acked.size, delivered: seen.size, lost, duplicated, events, damage, durationMs: Date.now() - started }
  } finally {
    for (const s of senders) s.close()
    for (const r of receivers) { r.kill('SIGCONT'); r.kill('SIGKILL') }
    if (relay !== undefined) await relay.kill('SIGKILL')
    dir.cleanup()
  }
}

/** Starts a relay on `dir` and says how it went: refused with a code, or started (then stopped). */
async function startOutcome (dir: string, port: number): Promise<string> {
  try {
    const r = await spawnRelay({ dataDir: dir, port })
    await r.kill('SIGTERM')
    return 'STARTED (the damage was not noticed)'
  } catch (err) {
    const code = /AM_ERR_[A-Z_]+/.exec((err as Error).message)?.[0]
    return code === undefined ? `refused: ${(err as Error).message.slice(0, 200)}` : `refused at start with ${code}`
  }
}

export function formatChaosReport (r: ChaosReport): string {
  return [
    `chaos seed ${r.seed} in ${(r.durationMs / 1000).toFixed(1)} s: sent ${r.sent}, acked ${r.acked}, delivered ${r.delivered}, lost ${r.lost}, duplicated ${r.duplicated}`,
    `events: ${Object.entries(r.events).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    ...Object.entries(r.damage).map(([k, v]) => `${k}: ${v}`),
  ].join('\n')
}
