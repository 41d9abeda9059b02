/**
 * `npm run bench`: runs the same load against every target, one after the other, each server in
 * its own child process, and prints one JSON object with every figure (also written to
 * bench/results/latest.json), then a table of ratios next to the goals. It never asserts.
 *
 * Environment (all optional):
 *   BENCH_SECONDS=5           measured seconds of the peak phase (after BENCH_WARMUP_SECONDS=1)
 *   BENCH_FIXED_SECONDS=3     measured seconds of the half-peak phase (after 0.5 s)
 *   BENCH_PAIRS=50 BENCH_WINDOW=64
 *   BENCH_TARGETS=e2ee,bare_ws,socketio,jetstream,agentmesh_memory,agentmesh_memory_noverify,
 *                 agentmesh_durable_noverify,agentmesh_durable,agentmesh_durable_e2ee
 *                             (any subset, in this order; `e2ee` = the session layer's figures on one
 *                             core; agentmesh_<mode>_e2ee = that relay with every message encrypted,
 *                             compared with agentmesh_<mode>, which is added before it when missing)
 *   BENCH_AM_POOL=…           pre-signed AgentMesh messages per pair (default sized for 24k msg/s)
 *   BENCH_E2EE_POOL=…         pre-signed encrypted messages per pair (default sized for 2× what the
 *                             plaintext run delivered and 1.5× what one core encrypts+decrypts, ≤ 24k msg/s)
 *   BENCH_E2EE_ROUND_MS=700 BENCH_E2EE_ROUNDS=3   length and number of the rounds of each `e2ee` figure
 *   BENCH_CPU_PROF=1          write a V8 CPU profile of every Node server child to bench/results/prof/
 *   BENCH_JS_CONSUMER=push    JetStream ordered push consumers instead of ordered pull consumers
 *   BENCH_JS_STREAMS=per-pair one JetStream stream per receiver instead of one for all
 *   BENCH_DRAIN_SECONDS=10 BENCH_WARMUP_SECONDS=1
 *   BENCH_SERVER_NODE_ARGS="--trace-gc"   extra Node flags for the Node server children
 * See bench/README.md for what is measured and how to read it.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { cleanupAll, installCleanupHandlers } from './children.ts'
import { GOAL_MESSAGES_PER_S, runE2eeMicro, type E2eeMicroResult } from './e2ee.ts'
import { LoadGenerator, type LoadOptions, type PhaseResult } from './loadgen.ts'
import { agentMeshTarget, buildFixture, type AgentMeshFixture, type AgentMeshMode } from './targets/agentmesh.ts'
import { buildE2eeFixture, e2eeHooks, type E2eeFixture } from './targets/agentmesh-e2ee.ts'
import { bareTarget } from './targets/bare.ts'
import { jetStreamTarget, natsServerAvailable } from './targets/jetstream.ts'
import { socketIoTarget } from './targets/socketio.ts'
import type { Target } from './targets/types.ts'
import { PAYLOAD_BYTES, cpuProbe, envInt, round, sleep } from './util.ts'

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url))
const DEFAULT_TARGETS = [
  'e2ee',
  'bare_ws', 'socketio', 'jetstream',
  'agentmesh_memory', 'agentmesh_memory_noverify', 'agentmesh_durable_noverify', 'agentmesh_durable',
  'agentmesh_durable_e2ee',
]
const AM_MODES: AgentMeshMode[] = ['durable', 'durable_noverify', 'memory', 'memory_noverify']

const GOALS = {
  durable_vs_jetstream: 1.0,
  durable_vs_socketio: 1.5,
  memory_vs_bare: 0.70,
  p99_half_peak_ms: 50,
  /** relay throughput with every message ratchet-encrypted ÷ plaintext, same relay, same run */
  e2ee_vs_plaintext: 0.80,
  /** 256-byte messages encrypted and decrypted per second on one core */
  e2ee_messages_256_per_s: GOAL_MESSAGES_PER_S,
}

const log = (s: string): void => { process.stderr.write(s + '\n') }

interface TargetResult {
  label: string
  window_by: 'ack' | 'delivery'
  info: Record<string, unknown>
  peak?: PhaseResult
  half_peak?: PhaseResult
  totals?: Record<string, number>
  client_stats?: Record<string, number>
  errors?: string[]
  skipped?: string
  failed?: string
  /** cpuProbe() just before the target ran, relative to the first target's */
  machine_speed?: number
  wall_s: number
}

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

// ---------------------------------------------------------------- report

function ratio (a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !(b > 0)) return undefined
  return round(a / b, 2)
}

function fmt (x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '—'
  return x >= 1000 ? Math.round(x).toLocaleString('en-US') : String(round(x, digits))
}

function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(r => r[c]!.length)))
  return rows.map((r, i) => {
    const line = r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join('  ')
    return i === 0 ? line + '\n' + widths.map(w => '-'.repeat(w)).join('  ') : line
  }).join('\n')
}

function e2eeReport (m: E2eeMicroResult): string {
  const rows: string[][] = [['end-to-end encryption, one core', 'per s', 'per CPU-s', 'goal', 'rounds (per s)']]
  const add = (label: string, r: { per_s: number, per_cpu_s: number, rounds: number[] }, goal = '(info)'): void => {
    rows.push([label, fmt(r.per_s), fmt(r.per_cpu_s), goal, r.rounds.map(x => fmt(x)).join(' / ')])
  }
  add('session setups (verify bundle + PQXDH both sides + 1st msg)', m.setups)
  add('256 B messages, encrypt + decrypt', m.messages_256.one_way, `≥ ${fmt(m.goal_256_per_s)}`)
  if (m.messages_256.alternating !== undefined) add('256 B, alternating directions (DH step each)', m.messages_256.alternating)
  add('64 KiB messages, encrypt + decrypt', m.messages_64k.one_way)
  rows.push(['64 KiB, plaintext MB/s (10^6 B)', fmt(m.messages_64k.one_way_mb_per_s), fmt(round(m.messages_64k.one_way.per_cpu_s * 65_536 / 1e6, 1)), '(info)', ''])
  const goalMet = m.messages_256.one_way.per_s >= m.goal_256_per_s
  return table(rows) + '\n' +
    '(one direction unless noted; "per CPU-s" divides by the CPU time of this process instead of wall time: higher than "per s" when\n' +
    ' other work took the core, lower when the garbage collector\'s helper threads worked alongside, as with 64 KiB buffers;\n' +
    ` 256 B goal ${goalMet ? 'met' : 'NOT met'}: ${fmt(m.messages_256.one_way.per_s)} measured vs ${fmt(m.goal_256_per_s)} msg/s)`
}

function humanReport (results: Record<string, TargetResult>, ratios: Record<string, unknown>, e2ee?: E2eeMicroResult): string {
  const lines: string[] = []
  const rows: string[][] = [[
    'target', 'msg/s', 'p50 ms', 'p99 ms', 'srv µs/msg', 'srv CPU%', 'gen CPU%', 'drained',
    '½-peak rate', 'p50 ms', 'p99 ms', 'srv µs/msg', 'speed',
  ]]
  for (const [, r] of Object.entries(results)) {
    if (r.peak === undefined) {
      rows.push([r.label, r.skipped !== undefined ? 'skipped' : 'failed', '', '', '', '', '', '', '', '', '', '', ''])
      continue
    }
    const p = r.peak
    const h = r.half_peak
    rows.push([
      r.label, fmt(p.delivered_per_s), fmt(p.latency_ms.p50), fmt(p.latency_ms.p99), fmt(p.server_cpu_us_per_delivery),
      fmt(p.server_cpu_pct), fmt(p.generator_cpu_pct),
      p.drain.complete && (h?.drain.complete ?? true) ? 'yes' : 'NO',
      fmt(h?.delivered_per_s), fmt(h?.latency_ms.p50, 2), fmt(h?.latency_ms.p99, 2), fmt(h?.server_cpu_us_per_delivery),
      fmt(r.machine_speed, 2),
    ])
  }
  lines.push(table(rows))
  lines.push('(srv = server process, all threads; gen = the load generator; speed = a fixed CPU probe before the target, relative to the first)')
  lines.push('')
  const rr: string[][] = [['ratio (delivered msg/s, same run)', 'value', 'goal', 'server µs/msg ratio']]
  const show = (label: string, key: string, goal: number | undefined): void => {
    const v = ratios[key] as { throughput?: number, cpu_per_delivery?: number } | undefined
    rr.push([label, fmt(v?.throughput, 2) + '×', goal === undefined ? '(info)' : `≥ ${goal}×`, fmt(v?.cpu_per_delivery, 2) + '×'])
  }
  show('AgentMesh durable ÷ JetStream', 'durable_vs_jetstream', GOALS.durable_vs_jetstream)
  show('AgentMesh durable ÷ Socket.IO', 'durable_vs_socketio', GOALS.durable_vs_socketio)
  show('AgentMesh memory ÷ bare forwarder', 'memory_vs_bare', GOALS.memory_vs_bare)
  show('AgentMesh durable, no verify ÷ JetStream', 'durable_noverify_vs_jetstream', undefined)
  show('AgentMesh durable, no verify ÷ Socket.IO', 'durable_noverify_vs_socketio', undefined)
  if (ratios.memory_noverify_vs_bare !== undefined) show('AgentMesh memory, no verify ÷ bare forwarder', 'memory_noverify_vs_bare', undefined)
  for (const k of Object.keys(ratios).filter(k => k.endsWith('_e2ee_vs_plaintext'))) {
    const mode = k.slice(0, -'_e2ee_vs_plaintext'.length)
    show(`AgentMesh ${mode.replace('_noverify', ', no verify')}, E2EE ÷ plaintext`, k, GOALS.e2ee_vs_plaintext)
  }
  lines.push(table(rr))
  lines.push('(server µs/msg ratio = AgentMesh CPU per delivery ÷ the other\'s; below 1× means AgentMesh spends less server CPU per message)')
  lines.push('')
  const pr: string[][] = [['p99 at half peak', 'rate msg/s', 'p99 ms', 'goal']]
  for (const [, r] of Object.entries(results)) {
    if (r.half_peak === undefined) continue
    pr.push([r.label, fmt(r.half_peak.delivered_per_s), fmt(r.half_peak.latency_ms.p99, 2), `< ${GOALS.p99_half_peak_ms} ms`])
  }
  lines.push(table(pr))
  const e2eeRuns = Object.entries(results).filter(([k, r]) => k.endsWith('_e2ee') && r.peak !== undefined)
  if (e2eeRuns.length > 0) {
    lines.push('')
    const er: string[][] = [['relay with E2EE', 'msg/s', 'plaintext msg/s', 'ratio', 'goal', 'gen CPU%', 'enc µs', 'dec µs', 'frame B']]
    for (const [k, r] of e2eeRuns) {
      const base = results[k.slice(0, -'_e2ee'.length)]
      const cs = r.client_stats ?? {}
      er.push([
        r.label, fmt(r.peak!.delivered_per_s), fmt(base?.peak?.delivered_per_s),
        fmt(ratio(r.peak!.delivered_per_s, base?.peak?.delivered_per_s), 2) + '×', `≥ ${GOALS.e2ee_vs_plaintext}×`,
        fmt(r.peak!.generator_cpu_pct), fmt(cs.e2ee_encrypt_us_per_msg), fmt(cs.e2ee_decrypt_us_per_msg),
        `${String(r.info.send_frame_bytes ?? '—')} vs ${String(base?.info.send_frame_bytes ?? '—')}`,
      ])
    }
    lines.push(table(er))
    lines.push('(peak phase; enc/dec µs = the generator\'s time per ratchetEncrypt (+ payload encoding) and per ratchetDecrypt (+ reading the frame), whole run)')
  }
  if (e2ee !== undefined) {
    lines.push('')
    lines.push(e2eeReport(e2ee))
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  installCleanupHandlers()
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
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
  const asked = (process.env.BENCH_TARGETS ?? DEFAULT_TARGETS.join(',')).split(',').map(s => s.trim()).filter(s => s !== '')
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
    poolPerPair = amNames.some(n => !n.endsWith('_noverify') && !n.endsWith('_e2ee'))
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
    else if (n === 'jetstream') {
      if (natsServerAvailable()) targets.push(jetStreamTarget())
      else {
        log('note: /usr/sbin/nats-server is missing (apt-get install nats-server); skipping JetStream')
        results.jetstream = { label: 'NATS JetStream', window_by: 'ack', info: {}, skipped: 'nats-server not installed', wall_s: 0 }
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
  cpuProbe(200) // warm up the probe itself
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
    durable_noverify_vs_jetstream: cmp('agentmesh_durable_noverify', 'jetstream'),
    durable_noverify_vs_socketio: cmp('agentmesh_durable_noverify', 'socketio'),
    p99_half_peak_ms: Object.fromEntries(Object.entries(results)
      .filter(([, r]) => r.half_peak !== undefined)
      .map(([k, r]) => [k, r.half_peak!.latency_ms.p99])),
  }
  if (results.agentmesh_memory_noverify !== undefined) ratios.memory_noverify_vs_bare = cmp('agentmesh_memory_noverify', 'bare_ws')
  for (const k of Object.keys(results).filter(k => k.endsWith('_e2ee'))) {
    const base = k.slice(0, -'_e2ee'.length)
    ratios[`${base.slice('agentmesh_'.length)}_e2ee_vs_plaintext`] = { ...cmp(k, base), goal: `>= ${GOALS.e2ee_vs_plaintext}` }
  }

  const report = {
    bench: 'agentmesh relay vs. bare ws, Socket.IO, NATS JetStream',
    date: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model ?? '?', loadavg_1m_at_start: round(loadAtStart, 2) },
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
    machine_speed_spread: speedSpread,
    wall_s: round((performance.now() - started) / 1000, 1),
  }
  const json = JSON.stringify(report, null, 2)
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(RESULTS_DIR + 'latest.json', json + '\n')
  process.stdout.write(json + '\n\n')
  process.stdout.write(humanReport(results, ratios, e2eeMicro) + '\n')
  if (speedSpread > 1.3) {
    process.stdout.write(`\nnote: the machine's speed (a fixed CPU probe before each target) varied ${speedSpread}× during this run; ` +
      'ratios are less trustworthy than usual, run again\n')
  }
  process.stdout.write(`\n(wrote bench/results/latest.json; ${report.wall_s} s)\n`)
}

try {
  await main()
} catch (err) {
  log(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
} finally {
  cleanupAll()
}
// sockets of the load generator may linger for a moment; nothing else is left to do
process.exit()
