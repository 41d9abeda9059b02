/**
 * Direct links versus the relay (docs/protocol.md §29), side by side: two agents in this process,
 * end-to-end encrypted DMs, once over a direct libp2p link and once through an in-process relay on
 * 127.0.0.1 (a memory store). Latency: one message at a time, alternating directions, from
 * `send()` to the other application's hand (p50, p99). Throughput: a burst each way at once, all
 * sends pipelined, messages per second until both applications had everything. Figures only.
 * BENCH_DIRECT=0 leaves it out; BENCH_DIRECT_LATENCY=200 and BENCH_DIRECT_BURST=1000 set the counts.
 */
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { envInt, round } from './util.ts'

export interface PathFigures {
  latency_ms: { p50: number, p99: number, n: number }
  /** messages per second, both directions together */
  burst_msg_per_s: number
  burst_messages: number
  /** envelopes the relay received during the measured phases */
  relay_received: number
}

export interface DirectResult { direct: PathFigures, relay: PathFigures }

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return round(s[Math.min(s.length - 1, Math.floor(s.length * p))]!, 2)
}

interface Pair { a: Connection, b: Connection, close: () => Promise<void>, arrived: (c: Connection) => Promise<void>, count: (c: Connection) => number }

async function pair (relay: Relay, p2p: boolean): Promise<Pair> {
  const ia = createIdentity('bench-a')
  const ib = createIdentity('bench-b')
  const b = await connect({ server: relay.url, identity: ib, state: memoryState(), ...(p2p ? { p2p: true } : {}) })
  const a = await connect({ server: relay.url, identity: ia, state: memoryState(), ...(p2p ? { p2p: { peers: { [ib.amid]: b.p2pAddresses() } } } : {}) })
  if (p2p) {
    const { directPathOf } = await import('@agentmesh/client/internal')
    ;(directPathOf(b) as unknown as { addPeer: (amid: string, addrs: string[]) => void }).addPeer(ia.amid, a.p2pAddresses())
  }
  const counts = new Map<Connection, number>([[a, 0], [b, 0]])
  const waiters = new Map<Connection, Array<() => void>>([[a, []], [b, []]])
  const stop = new AbortController()
  const pumps = [a, b].map(async (c) => {
    try {
      for await (const _m of c.messages({ signal: stop.signal })) {
        counts.set(c, counts.get(c)! + 1)
        for (const w of waiters.get(c)!.splice(0)) w()
      }
    } catch { /* stopped */ }
  })
  return {
    a,
    b,
    count: (c) => counts.get(c)!,
    arrived: async (c) => { await new Promise<void>((resolve) => { waiters.get(c)!.push(resolve) }) },
    close: async () => { stop.abort(); await Promise.all(pumps); await a.close(); await b.close() },
  }
}

async function measure (relay: Relay, p2p: boolean, latencyN: number, burstN: number): Promise<PathFigures> {
  const p = await pair(relay, p2p)
  try {
    const { a, b } = p
    // sessions (their prekeys come from the relay) and, on p2p, the links: not measured
    await a.send(b.amid, { text: 'warm-up' })
    await b.send(a.amid, { text: 'warm-up' })
    while (p.count(a) < 1 || p.count(b) < 1) await Promise.race([p.arrived(a), p.arrived(b)])
    const before = relay.stats().received
    const lat: number[] = []
    for (let i = 0; i < latencyN; i++) {
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a]
      const want = p.count(to) + 1
      const t0 = performance.now()
      const got = p.arrived(to)
      await from.send(to.amid, { text: `l${i}` })
      while (p.count(to) < want) await got
      lat.push(performance.now() - t0)
    }
    const wantA = p.count(a) + burstN
    const wantB = p.count(b) + burstN
    const t0 = performance.now()
    const sends: Array<Promise<unknown>> = []
    for (let i = 0; i < burstN; i++) {
      sends.push(a.send(b.amid, { text: `b${i}` }))
      sends.push(b.send(a.amid, { text: `b${i}` }))
    }
    await Promise.all(sends)
    while (p.count(a) < wantA) await p.arrived(a)
    while (p.count(b) < wantB) await p.arrived(b)
    const s = (performance.now() - t0) / 1000
    return {
      latency_ms: { p50: pct(lat, 0.5), p99: pct(lat, 0.99), n: lat.length },
      burst_msg_per_s: Math.round(2 * burstN / s),
      burst_messages: 2 * burstN,
      relay_received: relay.stats().received - before,
    }
  } finally {
    await p.close()
  }
}

export async function runDirect (log: (s: string) => void): Promise<DirectResult | undefined> {
  if (process.env.BENCH_DIRECT === '0') return undefined
  log('▶ direct links vs relay')
  const latencyN = Math.round(envInt('BENCH_DIRECT_LATENCY', 200))
  const burstN = Math.round(envInt('BENCH_DIRECT_BURST', 1000))
  const relay = await createRelay({ port: 0, host: '127.0.0.1' }, { logger: silentLogger })
  try {
    const viaRelay = await measure(relay, false, latencyN, burstN)
    const direct = await measure(relay, true, latencyN, burstN)
    log(`  direct: p50 ${direct.latency_ms.p50} ms, p99 ${direct.latency_ms.p99} ms, ${direct.burst_msg_per_s} msg/s; ` +
      `relay: p50 ${viaRelay.latency_ms.p50} ms, p99 ${viaRelay.latency_ms.p99} ms, ${viaRelay.burst_msg_per_s} msg/s`)
    return { direct, relay: viaRelay }
  } finally {
    await relay.close()
  }
}

export function directReport (d: DirectResult): string {
  const row = (name: string, f: PathFigures): string =>
    `| ${name} | ${f.latency_ms.p50} | ${f.latency_ms.p99} | ${f.burst_msg_per_s} | ${f.relay_received} |`
  return [
    `direct links vs relay (two agents in one process, E2EE DMs, 127.0.0.1; latency: ${d.direct.latency_ms.n} messages one at a time; burst: ${d.direct.burst_messages} messages, both ways at once)`,
    '| path | latency p50 ms | latency p99 ms | burst msg/s | envelopes through the relay |',
    '|---|---|---|---|---|',
    row('direct (libp2p, /agentmesh/direct/1.0.0)', d.direct),
    row('relay (memory store)', d.relay),
  ].join('\n')
}
