/**
 * The room fan-out scenarios, each target's server in a child process of its own:
 *  - `room_100`: 1 sender → a public room of 100 members at 1,000 msg/s (100,000 deliveries/s) for
 *    2 × BENCH_SECONDS (10 s), after 1 s of warm-up: AgentMesh durable and memory, NATS core,
 *    JetStream, Socket.IO, the corked bare forwarder;
 *  - `global_1000`: the global room with 1,000 connected agents, 1 sender at BENCH_GLOBAL_RATE
 *    (100 msg/s: 100,000 deliveries/s) for BENCH_SECONDS: the same targets (JetStream with 1,000
 *    consumers only when asked: BENCH_FANOUT_TARGETS);
 *  - `private_100`: a private (sender-key) room of 100 members on AgentMesh durable, 1,000 msg/s.
 */
import type { ServerHandle } from '../children.ts'
import { envInt, round, sleep } from '../util.ts'
import { agentMeshFanout } from './agentmesh.ts'
import { bareFanout, jetStreamFanout, natsCoreFanout, socketIoFanout } from './anchors.ts'
import { FanoutGenerator, type FanoutOptions, type FanoutResult, type FanoutTarget } from './gen.ts'

export interface FanoutRun {
  label: string
  result?: FanoutResult
  client_stats?: Record<string, number>
  info: Record<string, unknown>
  setup_s?: number
  failed?: string
  wall_s: number
}

export interface Scenario {
  key: 'room_100' | 'global_1000' | 'private_100'
  title: string
  opts: FanoutOptions
  targets: FanoutTarget[]
}

export const FANOUT_DEFAULT = ['agentmesh_durable', 'agentmesh_memory', 'nats_core', 'jetstream', 'socketio', 'bare_ws']
export const GLOBAL_DEFAULT = ['agentmesh_durable', 'agentmesh_memory', 'nats_core', 'socketio', 'bare_ws']

function pick (names: string[], prof: { dir?: string }, memberCount: number, kind: 'public' | 'global'): FanoutTarget[] {
  const out: FanoutTarget[] = []
  for (const n of names) {
    if (n === 'agentmesh_durable') out.push(agentMeshFanout(false, kind, prof))
    else if (n === 'agentmesh_memory') out.push(agentMeshFanout(true, kind, prof))
    else if (n === 'nats_core') out.push(natsCoreFanout())
    else if (n === 'jetstream') { const t = jetStreamFanout(); if (t !== undefined) out.push(t) } else if (n === 'socketio') out.push(socketIoFanout(prof))
    else if (n === 'bare_ws') out.push(bareFanout(prof))
    else throw new Error(`unknown fan-out target ${JSON.stringify(n)} (${memberCount} members); known: ${FANOUT_DEFAULT.join(', ')}`)
  }
  return out
}

/** The scenarios asked for (BENCH_FANOUT=room_100,global_1000,private_100 or none; BENCH_FANOUT_TARGETS). */
export function fanoutScenarios (seconds: number, prof: { dir?: string }): Scenario[] {
  const asked = (process.env.BENCH_FANOUT ?? 'room_100,global_1000,private_100').split(',').map(s => s.trim()).filter(s => s !== '' && s !== 'none')
  const only = process.env.BENCH_FANOUT_TARGETS?.split(',').map(s => s.trim()).filter(s => s !== '')
  const base = { warmupMs: 1000, drainMs: envInt('BENCH_DRAIN_SECONDS', 10) * 1000, cap: 1000 }
  const out: Scenario[] = []
  for (const key of asked) {
    if (key === 'room_100') {
      const opts = { ...base, members: 100, rate: Math.round(envInt('BENCH_FANOUT_RATE', 1000)), measureMs: 2 * seconds * 1000 }
      out.push({ key, title: `1 sender → public room of 100 members at ${opts.rate} msg/s`, opts, targets: pick(only ?? FANOUT_DEFAULT, prof, 100, 'public') })
    } else if (key === 'global_1000') {
      const members = Math.round(envInt('BENCH_GLOBAL_MEMBERS', 1000))
      const opts = { ...base, members, rate: Math.round(envInt('BENCH_GLOBAL_RATE', 100)), measureMs: seconds * 1000 }
      out.push({ key, title: `1 sender → the global room, ${members} connected agents, at ${opts.rate} msg/s`, opts, targets: pick(only ?? GLOBAL_DEFAULT, prof, members, 'global') })
    } else if (key === 'private_100') {
      const opts = { ...base, members: 100, rate: Math.round(envInt('BENCH_FANOUT_RATE', 1000)), measureMs: 2 * seconds * 1000 }
      out.push({ key, title: `1 sender → private (sender-key) room of 100 members at ${opts.rate} msg/s, AgentMesh durable`, opts, targets: [agentMeshFanout(false, 'private', prof)] })
    } else {
      throw new Error(`unknown fan-out scenario ${JSON.stringify(key)}; known: room_100, global_1000, private_100`)
    }
  }
  return out
}

export async function runFanout (t: FanoutTarget, opts: FanoutOptions, log: (s: string) => void): Promise<FanoutRun> {
  const t0 = performance.now()
  const out: FanoutRun = { label: t.label, info: t.info, wall_s: 0 }
  log(`▶ ${t.label}, ${opts.members} members at ${opts.rate} msg/s`)
  let server: ServerHandle | undefined
  const gen = new FanoutGenerator(opts, t.acks)
  let client
  try {
    server = await t.start()
    // enough pre-signed messages for the warm-up, the window, and 12 s more: the sender keeps
    // sending while the first snapshot waits for a busy relay's counters (at most 10 s)
    const messages = Math.ceil(opts.rate * (opts.warmupMs + opts.measureMs + 12_000) / 1000)
    client = await t.connect(server, opts.members, gen, messages)
    out.setup_s = round((performance.now() - t0) / 1000, 1)
    gen.client = client
    await sleep(200)
    const r = await gen.run(server)
    out.result = r
    log(`  ${r.delivered_msg_per_s} msg/s to each member (${r.deliveries_per_s} deliveries/s), p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms, ` +
      `server ${r.server_cpu_us_per_delivery} µs/delivery (${r.server_cpu_pct}% CPU), generator ${r.generator_cpu_pct}% CPU, ` +
      `all delivered ${r.drain.complete} (${r.drain.deliveries}/${r.drain.expected}, skipped ${r.skipped_at_cap}, set-up ${out.setup_s} s)`)
    const cs = client.stats?.()
    if (cs !== undefined) out.client_stats = cs
  } catch (err) {
    out.failed = err instanceof Error ? err.message : String(err)
    log(`  ✗ ${t.label}: ${out.failed}`)
  } finally {
    try { await client?.close() } catch {}
    await server?.stop()
    t.cleanup?.()
    out.wall_s = round((performance.now() - t0) / 1000, 1)
  }
  return out
}

/** Runs every scenario; results by scenario key, then target name. */
export async function runFanoutScenarios (scenarios: Scenario[], log: (s: string) => void): Promise<Record<string, { title: string, members: number, rate: number, targets: Record<string, FanoutRun> }>> {
  const out: Record<string, { title: string, members: number, rate: number, targets: Record<string, FanoutRun> }> = {}
  for (const s of scenarios) {
    log(`■ fan-out: ${s.title}`)
    const targets: Record<string, FanoutRun> = {}
    for (const t of s.targets) {
      await sleep(300)
      targets[t.name] = await runFanout(t, s.opts, log)
    }
    out[s.key] = { title: s.title, members: s.opts.members, rate: s.opts.rate, targets }
  }
  return out
}

// run alone: node --import tsx bench/src/fanout/run.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  const { installCleanupHandlers, cleanupAll } = await import('../children.ts')
  installCleanupHandlers()
  const log = (s: string): void => { process.stderr.write(s + '\n') }
  try {
    const r = await runFanoutScenarios(fanoutScenarios(envInt('BENCH_SECONDS', 5), {}), log)
    process.stdout.write(JSON.stringify(r, null, 2) + '\n')
  } finally {
    cleanupAll()
  }
  process.exit()
}
