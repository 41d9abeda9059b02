/**
 * The tables printed after the JSON: the pairs load, the fan-out scenarios, the connections, and
 * the goals next to what this run measured (each goal as a ratio or figure of one run).
 */
import type { ConnectionsResult } from './connections.ts'
import type { E2eeMicroResult } from './e2ee.ts'
import { GOAL_MESSAGES_PER_S } from './e2ee.ts'
import type { FanoutRun } from './fanout/run.ts'
import type { PhaseResult } from './loadgen.ts'
import { round } from './util.ts'

/** The goals of issue 14 ("Fast by default"). */
export const GOALS = {
  durable_vs_jetstream: 1.0,
  durable_vs_socketio: 1.5,
  /** AgentMesh durable's server CPU per delivery ÷ JetStream's, at most */
  durable_cpu_vs_jetstream: 1.0,
  memory_vs_bare: 0.5,
  p99_half_peak_ms: 50,
  /** relay throughput with every message ratchet-encrypted ÷ plaintext, same relay, same run */
  e2ee_vs_plaintext: 0.9,
  /** 256-byte messages encrypted and decrypted per second on one core */
  e2ee_messages_256_per_s: GOAL_MESSAGES_PER_S,
  /** session setups per second on one core (libsignal's binding measured here: 459/s) */
  e2ee_setups_per_s: 459,
  fanout_p99_ms: 20,
  bytes_per_idle_connection: 16 * 1024,
  auth_per_s: 2000,
}

export interface TargetResult {
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

export function ratio (a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !(b > 0)) return undefined
  return round(a / b, 2)
}

export function fmt (x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '—'
  return x >= 1000 ? Math.round(x).toLocaleString('en-US') : String(round(x, digits))
}

export function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(r => r[c]!.length)))
  return rows.map((r, i) => {
    const line = r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join('  ')
    return i === 0 ? line + '\n' + widths.map(w => '-'.repeat(w)).join('  ') : line
  }).join('\n')
}

export function e2eeReport (m: E2eeMicroResult): string {
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

export function pairsReport (results: Record<string, TargetResult>, ratios: Record<string, unknown>, e2ee?: E2eeMicroResult): string {
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
  show('AgentMesh durable ÷ NATS core', 'durable_vs_nats_core', undefined)
  show('AgentMesh memory ÷ bare forwarder', 'memory_vs_bare', GOALS.memory_vs_bare)
  for (const k of Object.keys(ratios).filter(k => /_(no)?verify_vs_/.test(k))) {
    const [mode, other] = k.split('_vs_') as [string, string]
    show(`AgentMesh ${mode.replace('_noverify', ', no verify').replace('_verify', ', verify')} ÷ ${other}`, k, undefined)
  }
  for (const k of Object.keys(ratios).filter(k => k.endsWith('_e2ee_vs_plaintext'))) {
    const mode = k.slice(0, -'_e2ee_vs_plaintext'.length)
    show(`AgentMesh ${mode.replace('_noverify', ', no verify').replace('_verify', ', verify')}, E2EE ÷ plaintext`, k, GOALS.e2ee_vs_plaintext)
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

// ---------------------------------------------------------------- fan-out and connections

export type FanoutResults = Record<string, { title: string, members: number, rate: number, targets: Record<string, FanoutRun> }>

export function fanoutReport (f: FanoutResults): string {
  const out: string[] = []
  for (const [, sc] of Object.entries(f)) {
    const rows: string[][] = [['target', 'msg/s each', 'deliveries/s', 'p50 ms', 'p99 ms', 'max ms', 'srv µs/deliv', 'srv CPU%', 'gen CPU%', 'all delivered', 'skipped', 'set-up s']]
    for (const [, t] of Object.entries(sc.targets)) {
      const r = t.result
      if (r === undefined) { rows.push([t.label, 'failed', '', '', '', '', '', '', '', '', '', '']); continue }
      rows.push([
        t.label, fmt(r.delivered_msg_per_s), fmt(r.deliveries_per_s), fmt(r.latency_ms.p50, 2), fmt(r.latency_ms.p99, 2), fmt(r.latency_ms.max, 1),
        fmt(r.server_cpu_us_per_delivery, 2), fmt(r.server_cpu_pct), fmt(r.generator_cpu_pct),
        r.drain.complete ? 'yes' : r.drain.deliveries < r.drain.expected ? `NO (${fmt(r.drain.deliveries)}/${fmt(r.drain.expected)})` : r.skipped_at_cap > 0 ? 'NO (skipped)' : 'NO (order)',
        fmt(r.skipped_at_cap), fmt(t.setup_s),
      ])
    }
    out.push(`fan-out: ${sc.title}`)
    out.push(table(rows))
    out.push('')
  }
  out.push('(msg/s each = deliveries/s ÷ members; all delivered = every member got every message sent, in order, once, and the sender every ack;')
  out.push(' skipped = messages not sent because the sender had 1,000 unacknowledged: the target did not keep up with the rate)')
  return out.join('\n')
}

export function connectionsReport (c: Record<string, ConnectionsResult | { label: string, failed: string }>): string {
  const rows: string[][] = [['idle connections', 'open', 'auth/s', 'srv µs/auth', 'RSS B/conn', 'heap B/conn', 'external B/conn', 'note']]
  for (const [, r] of Object.entries(c)) {
    if ('failed' in r && r.failed !== undefined) { rows.push([r.label, 'failed', '', '', '', '', '', r.failed.slice(0, 60)]); continue }
    const x = r as ConnectionsResult
    rows.push([x.label, fmt(x.connections), fmt(x.auth_per_s), fmt(x.server_cpu_us_per_auth), fmt(x.rss_bytes_per_conn), fmt(x.heap_bytes_per_conn), fmt(x.external_bytes_per_conn), x.note ?? ''])
  }
  return table(rows) + '\n(auth/s: connect → challenge → auth → welcome, the bare server: connect → open; memory: the server child after two full GCs, delta ÷ connections)'
}

// ---------------------------------------------------------------- the goals

export interface GoalRow { goal: string, target: string, value: number | undefined, unit: string, met: boolean | undefined }

/** Every goal of the issue as a figure of this run, met or not (undefined: not measured in this run). */
export function goalRows (
  pairs: Record<string, TargetResult>, e2ee: E2eeMicroResult | undefined, fanout: FanoutResults | undefined,
  conns: Record<string, ConnectionsResult | { label: string, failed: string }> | undefined,
): GoalRow[] {
  const rows: GoalRow[] = []
  const peak = (k: string): PhaseResult | undefined => pairs[k]?.peak
  const ge = (v: number | undefined, g: number): boolean | undefined => v === undefined ? undefined : v >= g
  const le = (v: number | undefined, g: number): boolean | undefined => v === undefined ? undefined : v <= g
  const lt = (v: number | undefined, g: number): boolean | undefined => v === undefined || Number.isNaN(v) ? undefined : v < g
  let v = ratio(peak('agentmesh_durable')?.delivered_per_s, peak('jetstream')?.delivered_per_s)
  rows.push({ goal: 'durable ÷ JetStream, delivered msg/s', target: `≥ ${GOALS.durable_vs_jetstream}×`, value: v, unit: '×', met: ge(v, GOALS.durable_vs_jetstream) })
  v = ratio(peak('agentmesh_durable')?.server_cpu_us_per_delivery, peak('jetstream')?.server_cpu_us_per_delivery)
  rows.push({ goal: 'durable ÷ JetStream, server CPU per msg', target: `≤ ${GOALS.durable_cpu_vs_jetstream}×`, value: v, unit: '×', met: le(v, GOALS.durable_cpu_vs_jetstream) })
  v = ratio(peak('agentmesh_durable')?.delivered_per_s, peak('socketio')?.delivered_per_s)
  rows.push({ goal: 'durable ÷ Socket.IO, delivered msg/s', target: `≥ ${GOALS.durable_vs_socketio}×`, value: v, unit: '×', met: ge(v, GOALS.durable_vs_socketio) })
  v = ratio(peak('agentmesh_memory')?.delivered_per_s, peak('bare_ws')?.delivered_per_s)
  rows.push({ goal: 'memory ÷ corked bare forwarder, msg/s', target: `≥ ${GOALS.memory_vs_bare}×`, value: v, unit: '×', met: ge(v, GOALS.memory_vs_bare) })
  v = ratio(peak('agentmesh_durable_e2ee')?.delivered_per_s, peak('agentmesh_durable')?.delivered_per_s)
  rows.push({ goal: 'durable E2EE ÷ plaintext, msg/s', target: `≥ ${GOALS.e2ee_vs_plaintext}×`, value: v, unit: '×', met: ge(v, GOALS.e2ee_vs_plaintext) })
  // the same ratio on the relay's side alone: the messages per CPU second the relay manages with E2EE
  // envelopes over those in plaintext (what msg/s would show if the clients' encryption and
  // decryption did not share the machine's cores with it)
  v = ratio(peak('agentmesh_durable')?.server_cpu_us_per_delivery, peak('agentmesh_durable_e2ee')?.server_cpu_us_per_delivery)
  rows.push({ goal: 'durable E2EE ÷ plaintext, relay msgs per CPU second', target: `≥ ${GOALS.e2ee_vs_plaintext}×`, value: v, unit: '×', met: ge(v, GOALS.e2ee_vs_plaintext) })
  v = e2ee?.messages_256.one_way.per_s
  rows.push({ goal: '256 B encrypt+decrypt, one core', target: `≥ ${fmt(GOALS.e2ee_messages_256_per_s)}/s`, value: v, unit: '/s', met: ge(v, GOALS.e2ee_messages_256_per_s) })
  v = e2ee?.setups.per_s
  rows.push({ goal: 'session setups, one core', target: `≥ ${GOALS.e2ee_setups_per_s}/s`, value: v, unit: '/s', met: ge(v, GOALS.e2ee_setups_per_s) })
  for (const [k, r] of Object.entries(pairs)) {
    if (!k.startsWith('agentmesh_') || r.half_peak === undefined) continue
    v = r.half_peak.latency_ms.p99
    rows.push({ goal: `p99 at half peak: ${r.label}`, target: `< ${GOALS.p99_half_peak_ms} ms`, value: v, unit: ' ms', met: lt(v, GOALS.p99_half_peak_ms) })
  }
  for (const key of ['room_100', 'private_100']) {
    for (const [k, t] of Object.entries(fanout?.[key]?.targets ?? {})) {
      if (!k.startsWith('agentmesh_')) continue
      v = t.result?.latency_ms.p99
      const r = t.result
      const all = r?.drain.complete === true
      const why = r === undefined || all ? '' : r.drain.deliveries < r.drain.expected ? ' (not all delivered)' : r.skipped_at_cap > 0 ? ` (fell behind: ${r.skipped_at_cap} not sent)` : ' (gaps)'
      rows.push({ goal: `fan-out 1→100 at ${fanout![key]!.rate}/s p99: ${t.label}`, target: `< ${GOALS.fanout_p99_ms} ms`, value: v, unit: ' ms' + why, met: r === undefined ? undefined : all && lt(v, GOALS.fanout_p99_ms) === true })
    }
  }
  for (const [k, r] of Object.entries(conns ?? {})) {
    if (!k.startsWith('agentmesh_') || 'failed' in r) continue
    const x = r as ConnectionsResult
    rows.push({ goal: `memory per idle connection (RSS): ${x.label}`, target: `≤ ${fmt(GOALS.bytes_per_idle_connection)} B`, value: x.rss_bytes_per_conn, unit: ' B', met: le(x.rss_bytes_per_conn, GOALS.bytes_per_idle_connection) })
    rows.push({ goal: `authentications/s: ${x.label}`, target: `≥ ${fmt(GOALS.auth_per_s)}/s`, value: x.auth_per_s, unit: '/s', met: ge(x.auth_per_s, GOALS.auth_per_s) })
  }
  return rows
}

export function goalsReport (runs: GoalRow[][]): string {
  const head = ['goal (issue 14)', 'target', ...runs.map((_, i) => runs.length > 1 ? `run ${i + 1}` : 'measured'), 'met']
  const rows: string[][] = [head]
  for (let i = 0; i < runs[0]!.length; i++) {
    const g = runs[0]![i]!
    const cells = runs.map(r => { const x = r.find(y => y.goal === g.goal); return x?.value === undefined ? '—' : fmt(x.value, 2) + x.unit })
    const met = runs.map(r => { const x = r.find(y => y.goal === g.goal); return x?.met === undefined ? '—' : x.met ? 'yes' : 'NO' }).join(' / ')
    rows.push([g.goal, g.target, ...cells, met])
  }
  return table(rows)
}
