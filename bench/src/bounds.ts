/**
 * What the relay holds under two attacks on its memory (docs/protocol.md §2, §6), measured, never
 * asserted: the relay runs in a child process (SQLite in a temporary directory, so stored messages
 * are on disk, not in its heap) and reports its RSS after a GC; the attackers run here.
 *
 *   node --import tsx bench/src/bounds.ts            # ~1 minute
 *   BOUNDS_DMS=300 BOUNDS_BAD_FRAMES=50000 node --import tsx bench/src/bounds.ts
 *   BOUNDS_UNBOUNDED=1 node --import tsx bench/src/bounds.ts   # the same with the bounds set out of reach
 *
 * 1. A receiver that stops reading (its socket paused) while another agent sends it BOUNDS_DMS
 *    (1,200) DMs of 200 KB; then it goes away.
 * 2. A client that never reads sends BOUNDS_BAD_FRAMES (200,000) invalid frames; then it goes away.
 * 3. A client that never reads pipelines BOUNDS_REST_REQUESTS (100,000) REST requests on one socket
 *    (Node's HTTP server stops parsing while an answer waits to be written); then it goes away.
 *
 * Each prints the relay's RSS before, during and after, and its counters (bytes queued, pauses,
 * slow consumers, error answers left out, floods closed).
 */
import { fork } from 'node:child_process'
import { connect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { PROTOCOL } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope, type Identity } from '@agentmesh/crypto'

type Json = Record<string, any>

if (process.argv[2] === 'child') {
  // ---- the relay's process
  const { createRelay, silentLogger } = await import('@agentmesh/server')
  const { sqliteStore, DB_FILE } = await import('@agentmesh/store-sqlite')
  const dir = process.argv[3]!
  // BOUNDS_UNBOUNDED=1: bounds so high they never apply (what the relay did before it had them), for comparison
  const off = process.env.BOUNDS_UNBOUNDED === '1' ? { sendBufferBytes: 2 ** 40, sendBufferMaxBytes: 2 ** 40, errorBurst: 2 ** 40 } : {}
  const relay = await createRelay({ port: 0, verifySignatures: false, logger: silentLogger, ...off }, { store: sqliteStore(join(dir, DB_FILE)) })
  process.on('message', (m: { t: string }) => {
    if (m.t === 'measure') {
      (globalThis as { gc?: () => void }).gc?.()
      const mem = process.memoryUsage()
      process.send!({ t: 'measure', rss: mem.rss, heap: mem.heapUsed, external: mem.external + mem.arrayBuffers, stats: relay.stats() })
    } else if (m.t === 'stop') {
      void relay.close().then(() => process.exit(0))
    }
  })
  process.on('disconnect', () => { process.exit(0) })
  process.send!({ t: 'ready', url: relay.wsUrl })
} else {
  await main()
}

async function main (): Promise<void> {
  const dms = Number(process.env.BOUNDS_DMS ?? 1200)
  const badFrames = Number(process.env.BOUNDS_BAD_FRAMES ?? 200_000)
  const restRequests = Number(process.env.BOUNDS_REST_REQUESTS ?? 100_000)
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-bounds-'))
  const child = fork(fileURLToPath(import.meta.url), ['child', dir], { execArgv: ['--import', 'tsx', '--expose-gc'] })
  const url = await new Promise<string>((resolve) => { child.once('message', (m: Json) => { resolve(m.url as string) }) })
  const measure = async (): Promise<Json> => await new Promise((resolve) => {
    child.once('message', (m: Json) => { resolve(m) })
    child.send({ t: 'measure' })
  })
  const mb = (n: number): string => (n / 1048576).toFixed(1) + ' MB'
  const line = (what: string, m: Json): void => {
    const s = m.stats as Json
    console.log(`${what.padEnd(44)} rss ${mb(m.rss).padStart(9)}  heap ${mb(m.heap).padStart(8)}  buffers ${mb(m.external).padStart(8)}  queued ${mb(s.queuedBytes).padStart(8)}  delivered ${s.delivered}  pauses ${s.pauses}  slow ${s.slowConsumers}  left-out ${s.errorsLeftOut}  floods ${s.errorFloods}`)
  }
  const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 1500)) }

  try {
    const base = await measure()
    line('baseline', base)

    // 1. a stalled receiver
    const bob = await agent(url, createIdentity('bob'))
    const alice = await agent(url, createIdentity('alice'))
    const carol = await agent(url, createIdentity('carol'))
    const dave = await agent(url, createIdentity('dave'))
    const sock = (bob.ws as unknown as { _socket: { pause: () => void } })._socket
    sock.pause()
    const text = 'z'.repeat(200 * 1024)
    for (let i = 0; i < dms; i += 100) {
      const n = Math.min(100, dms - i)
      for (let j = 0; j < n; j++) alice.ws.send(JSON.stringify({ op: 'send', env: signEnvelope(alice.id, { id: `bounds-dm-${String(i + j).padStart(6, '0')}`, to: bob.id.amid, type: 'chat', payload: { text } }) }))
      await alice.count('ack', i + n)
    }
    line(`stalled: ${dms} × 200 KB stored for bob`, await measure())
    carol.ws.send(JSON.stringify({ op: 'send', env: signEnvelope(carol.id, { id: 'bounds-carol-1', to: dave.id.amid, type: 'chat', payload: { text: 'hi' } }) }))
    await dave.count('deliver', 1)
    console.log('  meanwhile carol → dave delivered: yes')
    bob.ws.terminate()
    await settle()
    line('stalled receiver gone', await measure())

    // 2. a flood of bad frames from a client that never reads
    const eve = await agent(url, createIdentity('eve'))
    ;(eve.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
    const batch = Array.from({ length: 1000 }, () => '{"op":"nope"}')
    let closed = false
    eve.ws.on('close', () => { closed = true })
    for (let i = 0; i < badFrames && !closed && eve.ws.readyState === WebSocket.OPEN; i += 1000) {
      for (const f of batch) eve.ws.send(f)
      await new Promise(resolve => setImmediate(resolve))
    }
    await settle()
    line(`flood: up to ${badFrames} bad frames`, await measure())
    eve.ws.terminate()

    // 3. pipelined REST requests from a client that never reads the answers
    const http = connect(Number(new URL(url).port), '127.0.0.1')
    await new Promise(resolve => http.once('connect', resolve))
    http.pause()
    const request = `GET /api/v1/info HTTP/1.1\r\nHost: bounds\r\n\r\n`
    for (let i = 0; i < restRequests; i += 1000) {
      http.write(request.repeat(1000))
      await new Promise(resolve => setImmediate(resolve))
    }
    await settle()
    line(`REST: ${restRequests} pipelined, never read`, await measure())
    http.destroy()
    alice.ws.close(); carol.ws.close(); dave.ws.close()
    await settle()
    line('every attacker gone', await measure())
  } finally {
    child.send({ t: 'stop' })
    await new Promise(resolve => child.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** An authenticated raw connection that counts the frames it receives by op. */
async function agent (url: string, id: Identity): Promise<{ id: Identity, ws: WebSocket, count: (op: string, n: number) => Promise<void> }> {
  const ws = new WebSocket(url)
  const counts = new Map<string, number>()
  const waiters: Array<() => void> = []
  ws.on('error', () => {})
  const welcome = new Promise<void>((resolve) => {
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Json
      counts.set(f.op, (counts.get(f.op) ?? 0) + 1)
      if (f.op === 'challenge') ws.send(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce: f.nonce, sig: signChallenge(id, id.amid, f.nonce, f.relay) }))
      if (f.op === 'welcome') resolve()
      for (const w of waiters.splice(0)) w()
    })
  })
  await welcome
  const count = async (op: string, n: number): Promise<void> => {
    while ((counts.get(op) ?? 0) < n) await new Promise<void>(resolve => { waiters.push(resolve) })
  }
  return { id, ws, count }
}
