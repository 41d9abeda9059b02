/**
 * Room fan-out probe: one sender → a public room of N members at R msg/s for S seconds, against
 * the durable relay (createRelay on a SQLite store in a temporary data directory, in a child
 * process of its own) with raw WebSocket clients. Prints delivered msg/s, p50/p99 latency
 * (send → deliver), refusals. The sender keeps at most max_in_flight sends unacknowledged.
 *
 *   node --import tsx scripts/fanout-probe.ts [--members 100] [--rate 1000] [--seconds 10] [--legacy]
 *
 * Members authenticate with `"features":["room-cursor"]` (room deliveries carry "room" and are
 * acknowledged with {"op":"cursor","room","seq"}) unless --legacy is given; both deliver shapes
 * are understood. Signatures are not checked by the relay here (verifySignatures: false): the
 * probe measures delivery, not the sender's signing.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { WebSocket } from 'ws'
import { createIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { PROTOCOL } from '@agentmesh/protocol'
import { createRelay, silentLogger } from '@agentmesh/server'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'

function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf('--' + name)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const MEMBERS = arg('members', 100)
const RATE = arg('rate', 1000)
const SECONDS = arg('seconds', 10)
const LEGACY = process.argv.includes('--legacy')
const ROOM = 'probe'

let welcomeLimits: { max_in_flight?: number } = {}

interface Frame { op: string, seq?: number, room?: string, env?: { payload?: { t?: number } }, code?: string, nonce?: string, relay?: string }

async function connect (url: string, id: Identity, features: boolean, onFrame: (ws: WebSocket, f: Frame) => void): Promise<WebSocket> {
  return await new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    let ready = false
    ws.on('message', (data: Buffer) => {
      const f = ready ? parseFast(data.toString()) : JSON.parse(data.toString()) as Frame
      if (!ready) {
        if (f.op === 'challenge') {
          ws.send(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce: f.nonce, sig: signChallenge(id, id.amid, f.nonce!, f.relay!), ...(features ? { features: ['room-cursor'] } : {}) }))
        } else if (f.op === 'welcome') { ready = true; welcomeLimits = (f as { limits?: { max_in_flight?: number } }).limits ?? {}; resolve(ws) } else reject(new Error(JSON.stringify(f)))
        return
      }
      onFrame(ws, f)
    })
    ws.on('error', reject)
  })
}

/** Deliver frames read without parsing the envelope (the generator must not be the bottleneck); others parsed. */
function parseFast (text: string): Frame {
  if (!text.startsWith('{"op":"deliver"')) return JSON.parse(text) as Frame
  const room = /^\{"op":"deliver","room":"([^"]+)"/.exec(text)?.[1]
  const seq = Number(/"seq":(\d+)/.exec(text)![1])
  const t = /"t":(\d+)\}/.exec(text)
  return { op: 'deliver', seq, ...(room === undefined ? {} : { room }), env: { payload: t === null ? {} : { t: Number(t[1]) } } }
}

function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]!
}

/** The relay side (a child process): the room and its members in the Store, then the relay; prints its URL. */
async function serve (dir: string): Promise<void> {
  const { sender, members } = JSON.parse(readFileSync(join(dir, 'agents.json'), 'utf8')) as { sender: string, members: string[] }
  const store = sqliteStore(join(dir, DB_FILE))
  const t0 = Date.now()
  await store.createRoom({ id: ROOM, kind: 'public', owner: sender, createdAt: t0 })
  for (const m of members) await store.addMember({ room: ROOM, amid: m, role: 'member', joinedAt: t0 })
  const relay = await createRelay({
    host: '127.0.0.1', port: 0, logger: silentLogger, verifySignatures: false,
    rateLimits: { chat: { perMinute: 1_000_000, burst: 100_000 }, chatIp: { perMinute: 1_000_000, burst: 100_000 } },
  }, { store })
  process.stdout.write(`READY ${relay.wsUrl}\n`)
  process.on('SIGTERM', () => { void relay.close().then(() => process.exit(0)) })
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'am-fanout-'))
  const sender = createIdentity('probe-sender')
  const members = Array.from({ length: MEMBERS }, (_, i) => createIdentity(`probe-member-${i}`))
  writeFileSync(join(dir, 'agents.json'), JSON.stringify({ sender: sender.amid, members: members.map(m => m.amid) }))
  const child = spawn(process.execPath, [...process.execArgv, ...(process.env.PROBE_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.PROBE_PROF]), new URL(import.meta.url).pathname, '--serve', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); const m = /READY (\S+)/.exec(out); if (m !== null) resolve(m[1]!) })
    child.once('exit', (code) => { reject(new Error(`the relay exited with ${code}`)) })
  })
  const relay = { wsUrl }
  const latencies: number[] = []
  let delivered = 0
  let errors = 0
  const codes = new Map<string, number>()
  let lastDeliverAt = 0
  // one cumulative cursor per socket (and room) per turn
  const pending = new Map<WebSocket, { room?: string, seq: number }>()
  let flushing = false
  const flush = (): void => {
    flushing = false
    for (const [ws, c] of pending) ws.send(JSON.stringify(c.room === undefined ? { op: 'cursor', seq: c.seq } : { op: 'cursor', room: c.room, seq: c.seq }))
    pending.clear()
  }
  const onMember = (ws: WebSocket, f: Frame): void => {
    if (f.op === 'deliver') {
      delivered++
      const now = Date.now()
      lastDeliverAt = now
      const t = f.env?.payload?.t
      if (typeof t === 'number') latencies.push(now - t)
      pending.set(ws, { ...(f.room === undefined ? {} : { room: f.room }), seq: f.seq! })
      if (!flushing) { flushing = true; setImmediate(flush) }
    } else if (f.op === 'error') { errors++; codes.set(f.code!, (codes.get(f.code!) ?? 0) + 1) }
  }
  const sockets = await Promise.all(members.map(m => connect(relay.wsUrl, m, !LEGACY, onMember)))
  let acked = 0
  let refused = 0
  const sws = await connect(relay.wsUrl, sender, !LEGACY, (_ws, f) => {
    if (f.op === 'ack') acked++
    else if (f.op === 'error') { refused++; codes.set(f.code!, (codes.get(f.code!) ?? 0) + 1) }
  })
  const maxInFlight = welcomeLimits.max_in_flight ?? 1000
  const total = RATE * SECONDS
  const sig = randomBytes(64).toString('base64url')
  const start = Date.now()
  let sent = 0
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor((Date.now() - start) * RATE / 1000))
      // a well-behaved sender: at most max_in_flight sends awaiting their ack (the relay refuses more)
      while (sent < due && sent - acked - refused < maxInFlight) {
        const now = Date.now()
        sent++
        sws.send(`{"op":"send","env":{"v":"${PROTOCOL}","id":"probe-${sent}-${randomBytes(4).toString('hex')}","from":"${sender.amid}","to":"#${ROOM}","type":"chat","ts":${now},"payload":{"text":"m${sent}","t":${now}},"sig":"${sig}"}}`)
      }
      if (sent >= total) { clearInterval(tick); resolve() }
    }, 5)
  })
  const sendEnd = Date.now()
  // wait until every member has everything acked, or nothing arrives for 10 s
  const expect = () => acked * MEMBERS
  await new Promise<void>((resolve) => {
    const w = setInterval(() => {
      if ((delivered >= expect() && acked + refused >= total) || (lastDeliverAt > 0 && Date.now() - lastDeliverAt > 10_000) || Date.now() - sendEnd > 120_000) { clearInterval(w); resolve() }
    }, 50)
  })
  const end = lastDeliverAt
  const result = {
    mode: LEGACY ? 'legacy (inbox copies)' : 'room-cursor',
    members: MEMBERS, rate: RATE, seconds: SECONDS,
    sent, acked, refused, send_rate: Math.round(sent / ((sendEnd - start) / 1000)), codes: Object.fromEntries(codes),
    delivered, expected: acked * MEMBERS,
    delivered_msgs_per_s: Math.round(delivered / MEMBERS / ((end - start) / 1000)),
    deliveries_per_s: Math.round(delivered / ((end - start) / 1000)),
    p50_ms: pct(latencies, 50), p99_ms: pct(latencies, 99), max_ms: pct(latencies, 100),
    drain_after_send_ms: end - sendEnd,
  }
  console.log(JSON.stringify(result, null, 2))
  for (const ws of [...sockets, sws]) ws.close()
  child.kill('SIGTERM')
  await new Promise(resolve => child.once('exit', resolve))
  rmSync(dir, { recursive: true, force: true })
}

const serveAt = process.argv.indexOf('--serve')
if (serveAt >= 0) serve(process.argv[serveAt + 1]!).catch((err) => { console.error(err); process.exit(1) })
else main().catch((err) => { console.error(err); process.exit(1) })
