/**
 * `npm run bench`: the pairs load against every target, the room fan-out scenarios, the idle
 * connections load, one after the other, each server in its own child process; prints one JSON
 * object with every figure (also written to bench/results/latest.json), then the tables and the
 * issue's goals next to what was measured. It never asserts and never fails on a figure.
 *
 * Environment (all optional; see bench/README.md for every one):
 *   BENCH_SECONDS=5           measured seconds of the peak phase (after BENCH_WARMUP_SECONDS=1);
 *                             the fan-out scenarios measure 2× it (public, private room), 1× (global)
 *   BENCH_FIXED_SECONDS=3     measured seconds of the half-peak phase (after 0.5 s)
 *   BENCH_PAIRS=50 BENCH_WINDOW=64
 *   BENCH_TARGETS=e2ee,bare_ws,socketio,nats_core,jetstream,agentmesh_memory,agentmesh_durable,agentmesh_durable_e2ee
 *                             (any subset, in this order; also agentmesh_{durable,memory}_{verify,noverify};
 *                             `none` runs no pairs load)
 *   BENCH_FANOUT=room_100,global_1000,private_100 (or none)   BENCH_FANOUT_TARGETS=…
 *   BENCH_FANOUT_RATE=1000 BENCH_GLOBAL_RATE=100 BENCH_GLOBAL_MEMBERS=1000
 *   BENCH_CONNECTIONS=10000 BENCH_CONN_TARGETS=agentmesh_durable,agentmesh_memory,bare_ws (or none)
 *   BENCH_CONN_SECONDS=25 BENCH_CONN_CONCURRENCY=200
 *   BENCH_RUNS=1              run everything this many times; the goals table shows every run
 *   BENCH_AM_POOL, BENCH_E2EE_POOL, BENCH_E2EE_ROUND_MS=700, BENCH_E2EE_ROUNDS=3
 *   BENCH_JS_CONSUMER=push|ordered-push|pull BENCH_JS_ACK=none|all BENCH_JS_PUBLISH=async|js BENCH_JS_STREAMS=one|per-pair
 *   BENCH_SIO_CORK=0          Socket.IO senders uncorked
 *   BENCH_AM_FEATURES=0       leave `features:["room-cursor"]` out of AgentMesh auth frames
 *   BENCH_AM_STORE=postgres://…  the durable AgentMesh targets on PostgreSQL (an empty database or ?schema=)
 *   BENCH_CLUSTER=1,2,3       agentmesh serve × N on one PostgreSQL schema and NATS, then kill -9 failover (cluster.ts; the default
 *                             when PostgreSQL answers, BENCH_CLUSTER=none leaves it out;
 *                             BENCH_CLUSTER_STORE, BENCH_CLUSTER_PAIRS=24, BENCH_CLUSTER_MESSAGES=1500, BENCH_CLUSTER_AGENTS=30)
 *   BENCH_DASHBOARD=0         leave out the web console's sizes and time to first render (dashboard.ts)
 *   BENCH_DIRECT=0            leave out direct links vs the relay (direct.ts; BENCH_DIRECT_LATENCY=200 BENCH_DIRECT_BURST=1000)
 *   BENCH_CPU_PROF=1 BENCH_SERVER_NODE_ARGS="--trace-gc" BENCH_DRAIN_SECONDS=10 BENCH_WARMUP_SECONDS=1
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { cleanupAll, installCleanupHandlers } from './children.ts'
import { clusterReport, runCluster } from './cluster.ts'
import { dashboardReport, runDashboard } from './dashboard.ts'
import { directReport, runDirect } from './direct.ts'
import { runConnections } from './connections.ts'
import { runE2eeMicro, type E2eeMicroResult } from './e2ee.ts'
import { fanoutScenarios, runFanoutScenarios } from './fanout/run.ts'
import { LoadGenerator, type LoadOptions, type PhaseResult } from './loadgen.ts'
import { GOALS, connectionsReport, fanoutReport, goalRows, goalsReport, pairsReport, ratio, type FanoutResults, type GoalRow, type TargetResult } from './report.ts'
import { AM_MODES, agentMeshTarget, buildFixture, modeSpec, type AgentMeshFixture, type AgentMeshMode } from './targets/agentmesh.ts'
import { buildE2eeFixture, e2eeHooks, type E2eeFixture } from './targets/agentmesh-e2ee.ts'
import { bareTarget } from './targets/bare.ts'
import { jetStreamTarget, natsServerAvailable } from './targets/jetstream.ts'
import { natsCoreTarget } from './targets/nats-core.ts'
import { socketIoTarget } from './targets/socketio.ts'
import type { Target } from './targets/types.ts'
import { BenchConfigError, PAYLOAD_BYTES, cpuProbe, envInt, round, sleep } from './util.ts'

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url))
const DEFAULT_TARGETS = [
  'e2ee',
  'bare_ws', 'socketio', 'nats_core', 'jetstream',
  'agentmesh_memory', 'agentmesh_durable',
  'agentmesh_durable_e2ee',
]

const log = (s: string): void => { process.stderr.write(s + '\n') }

async function runTarget (target: Target, opts: LoadOptions): Promise<TargetResult> {
  const t0 = performance.now()
  const out: TargetResult = { label: target.label, window_by: target.windowBy, info: target.info, wall_s: 0 }
  log(`▶ ${target.label}`)
  const server = await target.start()
  const gen = new LoadGenerator(opts, target.windowBy)
  let client
  try {
    client = await target.connect(server, opts.pairs, gen)
    gen.client = client
    const peak = await gen.peak(server)
    out.peak = peak
    log(`  peak: ${peak.delivered_per_s} msg/s, p50 ${peak.latency_ms.p50} ms, p99 ${peak.latency_ms.p99} ms, ` +
      `server ${peak.server_cpu_us_per_delivery} µs/delivery (${peak.server_cpu_pct}% CPU), generator ${peak.generator_cpu_pct}% CPU, ` +
      `drained ${peak.drain.complete} (${peak.drain.delivered}/${peak.drain.sent} in ${peak.drain.ms} ms)` +
      (peak.server_stats?.commits ? `, ${Math.round(peak.server_stats.received! / peak.server_stats.commits)} sends per commit` : ''))
    if (peak.delivered_per_s > 0) {
      const half = await gen.fixed(server, peak.delivered_per_s / 2)
      out.half_peak = half
      log(`  half peak (${half.target_rate}/s): ${half.delivered_per_s} msg/s, p50 ${half.latency_ms.p50} ms, p99 ${half.latency_ms.p99} ms, ` +
        `server ${half.server_cpu_us_per_delivery} µs/delivery, skipped ${half.skipped_at_cap}, drained ${half.drain.complete}`)
    }
    out.totals = gen.totals()
    const cs = client.stats?.()
    if (cs !== undefined) out.client_stats = cs
    if (gen.firstErrors.length > 0) out.errors = gen.firstErrors
  } finally {
    try { await client?.close() } catch {}
    await server.stop()
    target.cleanup?.()
    out.wall_s = round((performance.now() - t0) / 1000, 1)
  }
  return out
}

/** One whole run: calibration, the pairs load, the fan-out scenarios, the connections, calibration again. */
async function runOnce (run: number, runs: number): Promise<{ report: Record<string, unknown>, human: string, goals: GoalRow[] }> {
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
  cpuProbe(200) // warm up the probe itself
  const calibrationStart = calibrate()
  log(`■ run ${run}/${runs}: CPU calibration ${calibrationStart} SHA-256 (16 KiB) per ms`)
  const opts: LoadOptions = {
    pairs: Math.round(envInt('BENCH_PAIRS', 50)),
    window: Math.round(envInt('BENCH_WINDOW', 64)),
    warmupMs: envInt('BENCH_WARMUP_SECONDS', 1) * 1000,
    measureMs: envInt('BENCH_SECONDS', 5) * 1000,
    fixedWarmupMs: 500,
    fixedMeasureMs: envInt('BENCH_FIXED_SECONDS', 3) * 1000,
    drainMs: envInt('BENCH_DRAIN_SECONDS', 10) * 1000,
    openLoopCap: 512,
  }
  const asked = (process.env.BENCH_TARGETS ?? DEFAULT_TARGETS.join(',')).split(',').map(s => s.trim()).filter(s => s !== '' && s !== 'none')
  // an E2EE relay figure is a ratio to the same relay in plaintext: run that first when it is missing
  const names: string[] = []
  for (const n of asked) {
    if (names.includes(n)) continue
    const base = n.slice(0, -'_e2ee'.length)
    if (n.startsWith('agentmesh_') && n.endsWith('_e2ee') && !names.includes(base)) {
      if (!asked.includes(base)) log(`note: ${n} is compared with ${base}, which runs first`)
      names.push(base)
    }
    names.push(n)
  }
  const profDir = process.env.BENCH_CPU_PROF === '1' ? RESULTS_DIR + 'prof' : undefined
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true })
  const prof = profDir === undefined ? {} : { dir: profDir }

  // the session layer's figures on one core (before any server runs; they size the E2EE pool)
  let e2eeMicro: E2eeMicroResult | undefined
  const e2eeRoundMs = envInt('BENCH_E2EE_ROUND_MS', 700)
  const e2eeRounds = Math.round(envInt('BENCH_E2EE_ROUNDS', 3))
  if (names.includes('e2ee')) {
    log(`▶ end-to-end encryption on one core (${e2eeRounds} rounds of ${e2eeRoundMs} ms per figure)`)
    e2eeMicro = await runE2eeMicro(e2eeRoundMs, e2eeRounds, log)
  }

  // pre-sign AgentMesh envelopes before anything is measured, for the modes that check them:
  // Ed25519 verification bounds those near 6k msg/s per core, so the pool is sized for 24k msg/s
  // in every phase. Modes without checks build their frames on the fly.
  let fixture: AgentMeshFixture | undefined
  const amNames = names.filter(n => n.startsWith('agentmesh_'))
  let poolPerPair = 0
  const seconds = (opts.warmupMs + opts.measureMs) / 1000 + 0.5 * (opts.fixedWarmupMs + opts.fixedMeasureMs) / 1000 + 0.5
  if (amNames.length > 0) {
    const sizedFor = 24_000
    poolPerPair = amNames.some(n => !n.endsWith('_e2ee') && modeSpec(n.slice('agentmesh_'.length) as AgentMeshMode).verifies)
      ? Math.round(envInt('BENCH_AM_POOL', Math.ceil(sizedFor / opts.pairs * seconds)))
      : 0
    if (poolPerPair > 0) log(`pre-signing ${poolPerPair} AgentMesh envelopes for each of ${opts.pairs} senders (${availableParallelism()} worker threads)…`)
    fixture = await buildFixture(opts.pairs, poolPerPair)
    if (poolPerPair > 0) log(`  signed ${poolPerPair * opts.pairs} in ${round(fixture.signMs / 1000, 1)} s; send frame ${fixture.frameBytes} bytes`)
  }

  const targets: Target[] = []
  const results: Record<string, TargetResult> = {}
  // the E2EE target's sessions and encrypted envelopes, made just before it runs (see below)
  let e2eeFixture: E2eeFixture | undefined
  let e2eeInfo: Record<string, unknown> = {}
  const e2ee = (): { hooks: ReturnType<typeof e2eeHooks>, info: Record<string, unknown> } => ({ hooks: e2eeHooks(e2eeFixture!), info: e2eeInfo })
  for (const n of names) {
    if (n === 'e2ee') continue
    if (n === 'bare_ws') targets.push(bareTarget(prof))
    else if (n === 'socketio') targets.push(socketIoTarget(prof))
    else if (n === 'nats_core' && natsServerAvailable()) targets.push(natsCoreTarget())
    else if (n === 'jetstream' || n === 'nats_core') {
      if (natsServerAvailable()) targets.push(jetStreamTarget())
      else {
        log(`note: /usr/sbin/nats-server is missing (apt-get install nats-server); skipping ${n}`)
        results[n] = { label: n, window_by: 'ack', info: {}, skipped: 'nats-server not installed', wall_s: 0 }
      }
    } else if (n.startsWith('agentmesh_') && AM_MODES.includes(n.slice('agentmesh_'.length) as AgentMeshMode)) {
      targets.push(agentMeshTarget(n.slice('agentmesh_'.length) as AgentMeshMode, () => fixture!, prof))
    } else if (n.startsWith('agentmesh_') && n.endsWith('_e2ee') && AM_MODES.includes(n.slice('agentmesh_'.length, -'_e2ee'.length) as AgentMeshMode)) {
      targets.push(agentMeshTarget(n.slice('agentmesh_'.length, -'_e2ee'.length) as AgentMeshMode, () => fixture!, prof, e2ee))
    } else {
      throw new Error(`unknown target ${JSON.stringify(n)}; known: ${DEFAULT_TARGETS.join(', ')}`)
    }
  }

  let probe0: number | undefined
  for (const t of targets) {
    try {
      if (t.name.endsWith('_e2ee')) {
        // sessions and encrypted, signed envelopes for this run only (the states move on during it).
        // Encrypting and signing costs more than signing alone, so the pool is sized for 2× what the
        // same relay delivered in plaintext and 1.5× what one core encrypts and decrypts (the
        // generator's one thread does both), at most 24k msg/s, plus two windows per sender
        const plain = results[t.name.slice(0, -'_e2ee'.length)]?.peak?.delivered_per_s
        const oneCore = e2eeMicro?.messages_256.one_way.per_cpu_s
        const sizedFor = Math.round(Math.max(1000, Math.min(24_000,
          ...(plain !== undefined && plain > 0 ? [2 * plain] : []), ...(oneCore !== undefined ? [1.5 * oneCore] : []))))
        const count = Math.round(envInt('BENCH_E2EE_POOL', Math.ceil(sizedFor / opts.pairs * seconds) + 2 * opts.window))
        e2eeFixture = undefined
        log(`setting up ${opts.pairs} E2EE sessions, then encrypting and signing ${count} envelopes for each sender (sized for ${sizedFor} msg/s)…`)
        const ex = await buildE2eeFixture(fixture!, opts.pairs, count)
        e2eeFixture = ex
        e2eeInfo = {
          send_frame_bytes: ex.frameBytes,
          e2ee_payload_bytes: ex.payloadBytes,
          plaintext_bytes: PAYLOAD_BYTES,
          e2ee_pool_per_pair: count,
          e2ee_pool_sized_for_msg_per_s: sizedFor,
          e2ee_session_setup_s: round(ex.setupMs / 1000, 1),
          e2ee_sign_s: round(ex.signMs / 1000, 1),
        }
        log(`  ${opts.pairs} sessions in ${round(ex.setupMs / 1000, 1)} s, ${count * opts.pairs} envelopes in ${round(ex.signMs / 1000, 1)} s; ` +
          `send frame ${ex.frameBytes} bytes (payload ${ex.payloadBytes} for ${PAYLOAD_BYTES} bytes of plaintext)`)
      }
    } catch (err) {
      log(`  ✗ ${t.label}: ${err instanceof Error ? err.message : String(err)}`)
      results[t.name] = { label: t.label, window_by: t.windowBy, info: t.info, failed: err instanceof Error ? err.message : String(err), wall_s: 0 }
      continue
    }
    await sleep(300) // let the previous server's exit and socket teardown settle
    const probe = [cpuProbe(), cpuProbe(), cpuProbe()].sort((a, b) => a - b)[1]!
    probe0 ??= probe
    try {
      results[t.name] = await runTarget(t, opts)
    } catch (err) {
      log(`  ✗ ${t.label}: ${err instanceof Error ? err.message : String(err)}`)
      results[t.name] = { label: t.label, window_by: t.windowBy, info: t.info, failed: err instanceof Error ? err.message : String(err), wall_s: 0 }
    }
    results[t.name]!.machine_speed = round(probe / probe0, 2)
    if (t.name.endsWith('_e2ee')) e2eeFixture = undefined // let its buffers go
  }
  const speeds = Object.values(results).map(r => r.machine_speed).filter((x): x is number => x !== undefined)
  const speedSpread = speeds.length > 0 ? round(Math.max(...speeds) / Math.min(...speeds), 2) : 1

  const peakOf = (k: string): PhaseResult | undefined => results[k]?.peak
  const cmp = (a: string, b: string): { throughput?: number, cpu_per_delivery?: number } => {
    const out: { throughput?: number, cpu_per_delivery?: number } = {}
    const t = ratio(peakOf(a)?.delivered_per_s, peakOf(b)?.delivered_per_s)
    const c = ratio(peakOf(a)?.server_cpu_us_per_delivery, peakOf(b)?.server_cpu_us_per_delivery)
    if (t !== undefined) out.throughput = t
    if (c !== undefined) out.cpu_per_delivery = c
    return out
  }
  const ratios: Record<string, unknown> = {
    durable_vs_jetstream: { ...cmp('agentmesh_durable', 'jetstream'), goal: `>= ${GOALS.durable_vs_jetstream}` },
    durable_vs_socketio: { ...cmp('agentmesh_durable', 'socketio'), goal: `>= ${GOALS.durable_vs_socketio}` },
    memory_vs_bare: { ...cmp('agentmesh_memory', 'bare_ws'), goal: `>= ${GOALS.memory_vs_bare}` },
    durable_vs_nats_core: cmp('agentmesh_durable', 'nats_core'),
    p99_half_peak_ms: Object.fromEntries(Object.entries(results)
      .filter(([, r]) => r.half_peak !== undefined)
      .map(([k, r]) => [k, r.half_peak!.latency_ms.p99])),
  }
  // the explicitly named verify / noverify modes, as information next to the defaults
  for (const mode of AM_MODES.filter(m => m.endsWith('verify'))) {
    if (results[`agentmesh_${mode}`] === undefined) continue
    for (const other of mode.startsWith('memory') ? ['bare_ws'] : ['jetstream', 'socketio']) ratios[`${mode}_vs_${other}`] = cmp(`agentmesh_${mode}`, other)
  }
  for (const k of Object.keys(results).filter(k => k.endsWith('_e2ee'))) {
    const base = k.slice(0, -'_e2ee'.length)
    ratios[`${base.slice('agentmesh_'.length)}_e2ee_vs_plaintext`] = { ...cmp(k, base), goal: `>= ${GOALS.e2ee_vs_plaintext}` }
  }

  // the room fan-out scenarios and the idle connections
  let fanout: FanoutResults | undefined
  const scenarios = fanoutScenarios(envInt('BENCH_SECONDS', 5), prof)
  if (scenarios.length > 0) fanout = await runFanoutScenarios(scenarios, log)
  const conns = process.env.BENCH_CONN_TARGETS?.trim() === 'none' ? undefined : await runConnections(log)
  // several relays on loopback, and failover (BENCH_CLUSTER=1,2,3 by default; none leaves it out)
  const cluster = await runCluster(log)
  // the web console's JS/CSS size and time to first render (BENCH_DASHBOARD=0 leaves it out)
  const dashboard = await runDashboard(log)
  // direct links vs the relay, side by side (BENCH_DIRECT=0 leaves it out)
  const direct = await runDirect(log)

  const calibrationEnd = calibrate()
  const report = {
    bench: 'agentmesh relay vs. bare ws, Socket.IO, NATS core, NATS JetStream',
    run,
    date: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? '?', loadavg_1m_at_start: round(loadAtStart, 2), loadavg_1m_at_end: round(loadavg()[0]!, 2) },
    /** a fixed hashing loop (SHA-256 of 16 KiB, hashes per ms, median of 5 × 100 ms) at the start and the end of the run */
    calibration: { start: calibrationStart, end: calibrationEnd, end_vs_start: round(calibrationEnd / calibrationStart, 2) },
    settings: {
      pairs: opts.pairs,
      connections: opts.pairs * 2,
      window: opts.window,
      payload_bytes: PAYLOAD_BYTES,
      warmup_s: opts.warmupMs / 1000,
      measure_s: opts.measureMs / 1000,
      half_peak_measure_s: opts.fixedMeasureMs / 1000,
      half_peak_in_flight_cap: opts.openLoopCap,
      agentmesh_presigned_per_pair: poolPerPair,
      agentmesh_sign_s: fixture === undefined ? undefined : round(fixture.signMs / 1000, 1),
      e2ee_round_ms: e2eeMicro === undefined ? undefined : e2eeRoundMs,
      e2ee_rounds: e2eeMicro === undefined ? undefined : e2eeRounds,
    },
    goals: GOALS,
    e2ee: e2eeMicro,
    targets: results,
    ratios,
    fanout,
    idle_connections: conns,
    cluster,
    dashboard,
    direct,
    machine_speed_spread: speedSpread,
    wall_s: round((performance.now() - started) / 1000, 1),
  }
  const human: string[] = []
  if (Object.keys(results).length > 0 || e2eeMicro !== undefined) human.push(pairsReport(results, ratios, e2eeMicro))
  if (fanout !== undefined) human.push(fanoutReport(fanout))
  if (conns !== undefined) human.push(connectionsReport(conns))
  if (cluster !== undefined) human.push(clusterReport(cluster))
  if (dashboard !== undefined) human.push(dashboardReport(dashboard))
  if (direct !== undefined) human.push(directReport(direct))
  human.push(`machine: CPU calibration ${calibrationStart} at the start, ${calibrationEnd} at the end (SHA-256 of 16 KiB per ms; ` +
    `${report.calibration.end_vs_start}×), load average ${report.machine.loadavg_1m_at_start} → ${report.machine.loadavg_1m_at_end}`)
  if (speedSpread > 1.3) {
    human.push(`note: the machine's speed (a fixed CPU probe before each pairs target) varied ${speedSpread}× during this run; ` +
      'ratios are less trustworthy than usual, run again')
  }
  return { report, human: human.join('\n\n'), goals: goalRows(results, e2eeMicro, fanout, conns) }
}

/** The fixed CPU calibration: SHA-256 of 16 KiB, hashes per ms, the median of 5 × 100 ms. */
function calibrate (): number {
  const xs = Array.from({ length: 5 }, () => cpuProbe()).sort((a, b) => a - b)
  return round(xs[2]!, 1)
}

async function main (): Promise<void> {
  installCleanupHandlers()
  const started = performance.now()
  const runs = Math.round(envInt('BENCH_RUNS', 1))
  const all: Array<Awaited<ReturnType<typeof runOnce>>> = []
  for (let i = 1; i <= runs; i++) all.push(await runOnce(i, runs))
  const json = JSON.stringify(runs === 1 ? all[0]!.report : { runs: all.map(r => r.report) }, null, 2)
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(RESULTS_DIR + 'latest.json', json + '\n')
  process.stdout.write(json + '\n\n')
  for (const [i, r] of all.entries()) {
    if (runs > 1) process.stdout.write(`==================== run ${i + 1} of ${runs}\n\n`)
    process.stdout.write(r.human + '\n\n')
  }
  process.stdout.write(goalsReport(all.map(r => r.goals)) + '\n')
  process.stdout.write('(every goal is a ratio or a figure of one run; the bench never asserts: "NO" only reports)\n')
  process.stdout.write(`\n(wrote bench/results/latest.json; ${round((performance.now() - started) / 1000, 1)} s)\n`)
}

const USAGE = `usage: npm run bench
  every target and scenario, one after the other; prints the figures and the goals table, writes
  bench/results/latest.json. It takes options from the environment only (BENCH_RUNS=2,
  BENCH_TARGETS=…, BENCH_FANOUT=…, …): bench/README.md lists every one.`

try {
  const args = process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n')
  } else if (args.length > 0) {
    log(`npm run bench: it takes no arguments (got ${JSON.stringify(args[0])}); options are environment variables\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    await main()
  }
} catch (err) {
  if (err instanceof BenchConfigError) {
    log(`npm run bench: ${err.message} (bench/README.md lists the BENCH_* variables)`)
    process.exitCode = 2
  } else {
    log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    process.exitCode = 1
  }
} finally {
  cleanupAll()
}
// sockets of the load generator may linger for a moment; nothing else is left to do
process.exit()
