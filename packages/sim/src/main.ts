/**
 * `npm run sim -- [--scenario name] [--nodes n] [--byzantine f] [--seed s] [--json] …`
 * Runs one scenario (and, with --compare-flood, the same one with plain flooding) and prints its
 * figures. Bad flags: one line on stderr, exit code 2.
 */
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { calibrationFigures, compareCalibration, CALIBRATION_TOLERANCE, type CalibrationFigures } from './calibrate.ts'
import { measureHotPath } from './hotpath.ts'
import { BYZANTINE_KINDS, SCENARIOS, type ByzantineKind, type Scenario } from './scenario.ts'
import { simulate, type SimReport } from './simulate.ts'

const USAGE = `usage: npm run sim -- [options]
  --scenario <name>     ${Object.keys(SCENARIOS).join(' | ')} (default basic)
  --nodes <n>           10 … 1,000,000
  --byzantine <share>   0 … 0.5 (e.g. 0.3)
  --kinds <list>        Byzantine kinds, comma-separated: ${BYZANTINE_KINDS.join(',')}
  --seed <n>            the run is deterministic for a seed
  --publishers <n>      --messages <n per publisher>   --loss <p>   --latency <ms>   --jitter <ms>
  --processing <ms>     a node's delay between accepting and forwarding (0)
  --exclude-holders     do not push to a mesh peer that already sent a copy
  --dial <k>            each node dials k random others; mesh, gossip and flood publish use those connections
  --body <bytes>        body size of each message (256; from ~270, messages reach 512 B and IDONTWANT starts)
  --regions <n>         0 = automatic (one per 1,000 nodes from 100,000 nodes)
  --churn <share>       --partition <cutMs,healMs>
  --mode <gossipsub|flood>
  --compare-flood       also run plain flooding on the same scenario and print both
  --calibrate           print the calibration figures (the shape a real-node run prints)
  --real                with --calibrate: also run the same scenario on real libp2p nodes on 127.0.0.1
                        (@agentmesh/swarm's run-real, several processes; minutes) and compare
  --hot-path            measure the per-message cost at a real node (decode + validate), µs
  --json                print JSON`

function fail (msg: string): never {
  process.stderr.write(`sim: ${msg}\n${USAGE}\n`)
  process.exit(2)
}

function num (name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const x = Number(v.replaceAll('_', ''))
  if (!Number.isFinite(x)) fail(`--${name} must be a number (got ${JSON.stringify(v)})`)
  return x
}

export function scenarioFromArgs (argv: string[]): { scenario: Partial<Scenario>, json: boolean, compareFlood: boolean, calibrate: boolean, hotPath: boolean, real: boolean } {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        scenario: { type: 'string' }, nodes: { type: 'string' }, byzantine: { type: 'string' }, kinds: { type: 'string' },
        seed: { type: 'string' }, publishers: { type: 'string' }, messages: { type: 'string' }, loss: { type: 'string' },
        latency: { type: 'string' }, body: { type: 'string' }, processing: { type: 'string' }, dial: { type: 'string' }, 'exclude-holders': { type: 'boolean' }, jitter: { type: 'string' }, regions: { type: 'string' }, churn: { type: 'string' },
        partition: { type: 'string' }, mode: { type: 'string' }, 'compare-flood': { type: 'boolean' },
        calibrate: { type: 'boolean' }, 'hot-path': { type: 'boolean' }, real: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    })
  } catch (err) {
    fail((err as Error).message)
  }
  const o = parsed.values
  if (o.help === true) { process.stdout.write(USAGE + '\n'); process.exit(0) }
  const name = o.scenario ?? 'basic'
  const preset = SCENARIOS[name]
  if (preset === undefined) fail(`unknown scenario ${JSON.stringify(name)} (known: ${Object.keys(SCENARIOS).join(', ')})`)
  const sc: Partial<Scenario> = { ...preset, name }
  const set = <K extends keyof Scenario>(k: K, v: Scenario[K] | undefined): void => { if (v !== undefined) sc[k] = v }
  set('nodes', num('nodes', o.nodes)); set('byzantine', num('byzantine', o.byzantine)); set('seed', num('seed', o.seed))
  set('publishers', num('publishers', o.publishers)); set('messagesPerPublisher', num('messages', o.messages))
  set('bodyBytes', num('body', o.body)); set('processingMs', num('processing', o.processing)); set('dialDegree', num('dial', o.dial))
  if (o['exclude-holders'] === true) sc.excludeHolders = true
  set('loss', num('loss', o.loss)); set('latencyMs', num('latency', o.latency)); set('jitterMs', num('jitter', o.jitter))
  set('regions', num('regions', o.regions)); set('churn', num('churn', o.churn))
  if (o.latency !== undefined) sc.interRegionLatencyMs = sc.latencyMs
  if (o.kinds !== undefined) sc.byzantineKinds = o.kinds.split(',').map(k => k.trim()) as ByzantineKind[]
  if (o.mode !== undefined) sc.mode = o.mode as Scenario['mode']
  if (o.partition !== undefined) {
    const [a, b] = o.partition.split(',').map(Number)
    sc.partition = { cutAtMs: a, healAtMs: b }
  }
  return { scenario: sc, json: o.json === true, compareFlood: o['compare-flood'] === true, calibrate: o.calibrate === true, hotPath: o['hot-path'] === true, real: o.real === true }
}

/**
 * Runs the scenario on real nodes with `@agentmesh/swarm`'s real-node runner (a child process,
 * so its libp2p nodes and worker processes end with it), bounded by its own --timeout.
 */
function runRealNodes (s: Scenario): CalibrationFigures {
  const runner = fileURLToPath(new URL('./run-real.ts', import.meta.resolve('@agentmesh/swarm/net')))
  const timeoutS = 600
  const args = ['--import', 'tsx', runner, '--nodes', String(s.nodes), '--publishers', String(s.publishers), '--messages', String(s.messagesPerPublisher),
    '--interval', String(s.publishIntervalMs), '--body', String(s.bodyBytes), '--seed', String(s.seed), '--timeout', String(timeoutS), '--json']
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: (timeoutS + 60) * 1000, maxBuffer: 16 << 20 })
  const last = String(r.stdout ?? '').trim().split('\n').at(-1) ?? ''
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`run-real exited with ${String(r.status ?? r.signal)}: ${String(r.stderr ?? '').trim().split('\n').at(-1) ?? ''}`)
  const f = JSON.parse(last) as CalibrationFigures & { run?: unknown }
  return f
}

function fmt (x: number | null): string { return x === null ? 'never' : String(x) }

export function formatReport (r: SimReport, flood?: SimReport): string {
  const c = r.convergence
  const lines = [
    `scenario ${r.scenario.name} (${r.scenario.mode}), seed ${r.scenario.seed}: ${r.nodes.toLocaleString('en')} nodes (${r.honestNodes.toLocaleString('en')} honest; Byzantine ${Object.entries(r.byzantineNodes).map(([k, v]) => `${k} ${v}`).join(', ')}), ${r.regions} region(s), ${r.groups} group(s)`,
    `messages: ${r.messages.honest} honest, ${r.messages.forgedVariants} forged variants, ${r.messages.flood} flood`,
    `delivery: ${r.delivery.delivered.toLocaleString('en')} of ${r.delivery.expected.toLocaleString('en')} (missed ${r.delivery.missed}, delivered twice ${r.delivery.duplicateDeliveries}) ${r.delivery.complete ? 'COMPLETE' : 'INCOMPLETE'}`,
    `rounds (hops) to first delivery: p50 ${r.rounds.p50}  p90 ${r.rounds.p90}  p99 ${r.rounds.p99}  max ${r.rounds.max}`,
    `time to first delivery, ms:      p50 ${r.timeMs.p50}  p90 ${r.timeMs.p90}  p99 ${r.timeMs.p99}  max ${r.timeMs.max}`,
    `convergence (worst message): 99.9% in ${fmt(c.rounds999)} rounds / ${fmt(c.time999Ms)} ms, all in ${fmt(c.roundsFull)} rounds / ${fmt(c.timeFullMs)} ms` +
      `  [goal: ≤ ${c.goalRounds} rounds ${c.metRounds ? 'met' : 'NOT met'}, ≤ ${c.goalTimeMs} ms ${c.metTime ? 'met' : 'NOT met'}]`,
    `traffic per honest node per message: ${r.traffic.messagesPerNodePerMessage} copies (${r.traffic.duplicatesPerNodePerMessage} duplicates), ${r.traffic.bytesPerNodePerMessage} B, control ${r.traffic.controlBytesPerNodePerMessage} B; busiest node ${r.traffic.maxMessagesPerNodePerMessage} copies; IHAVE ${r.traffic.ihave}, IWANT ${r.traffic.iwant}, IDONTWANT ${r.traffic.idontwant}`,
    `Byzantine: forged accepted ${r.byzantine.forgedAccepted}, forged rejected ${r.byzantine.forgedRejected}, flood accepted per node ${r.byzantine.floodAcceptedPerNode}, Byzantine copies received per node ${r.byzantine.byzantineMessagesPerNode}, links pruned by score ${r.byzantine.prunedByScore} (to Byzantine nodes ${r.byzantine.prunedByzantine}), eclipse victims ${r.byzantine.eclipseVictims} missed ${r.byzantine.victimsMissed}`,
  ]
  if (r.partition !== undefined) lines.push(`partition: ${r.partition.cutLinks} links cut, ${r.partition.detectedNodes} nodes detected it, ${r.partition.reconciles} reconciliations carried ${r.partition.reconciledMessages} messages`)
  if (r.churn !== undefined) lines.push(`churn: ${r.churn.wentDown} nodes went down and came back, ${r.churn.reconciles} reconciliations carried ${r.churn.reconciledMessages} messages`)
  lines.push(`validator verdicts: ${Object.entries(r.validator).map(([k, v]) => `${k} ${v}`).join(', ')}; Ed25519 verifications ${r.signatureChecks}`)
  lines.push(`sim: ${r.sim.events.toLocaleString('en')} events (peak queue ${r.sim.peakQueue.toLocaleString('en')}), ${r.sim.simulatedMs} ms simulated in ${(r.sim.wallMs / 1000).toFixed(1)} s wall; heap ${r.sim.heapMB} MB, typed arrays ${r.sim.arrayBuffersMB} MB, rss ${r.sim.rssMB} MB`)
  if (flood !== undefined) {
    lines.push(`plain flooding (degree ${flood.scenario.floodDegree}) on the same scenario: ${flood.traffic.messagesPerNodePerMessage} copies per node per message (${flood.traffic.duplicatesPerNodePerMessage} duplicates), ${flood.traffic.bytesPerNodePerMessage} B; rounds p50 ${flood.rounds.p50} max ${flood.rounds.max}; 99.9% in ${fmt(flood.convergence.time999Ms)} ms; complete ${String(flood.delivery.complete)}`)
    const ratio = flood.traffic.bytesPerNodePerMessage / Math.max(1, r.traffic.bytesPerNodePerMessage + r.traffic.controlBytesPerNodePerMessage)
    lines.push(`gossipsub sends ${ratio.toFixed(2)}× fewer bytes per node per message than flooding (control traffic included)`)
  }
  return lines.join('\n')
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/sim/src/main.ts') === true
if (isMain) {
  const { scenario, json, compareFlood, calibrate, hotPath, real } = scenarioFromArgs(process.argv.slice(2))
  if (hotPath) {
    const h = measureHotPath()
    process.stdout.write(json ? JSON.stringify(h) + '\n' : `hot path (${h.messages} messages, ${h.bodyBytes}-byte bodies): new message ${h.newMessageUs} µs (decode + validate with Ed25519), duplicate ${h.duplicateUs} µs, sign + encode ${h.publishUs} µs\n`)
    process.exit(0)
  }
  let report: SimReport
  try {
    report = simulate(scenario)
  } catch (err) {
    if (err instanceof RangeError) fail(err.message)
    throw err
  }
  const flood = compareFlood ? simulate({ ...scenario, mode: 'flood' }) : undefined
  const simFigures = calibrate ? calibrationFigures(report) : undefined
  let realFigures: CalibrationFigures | undefined
  let realError: string | undefined
  if (calibrate && real) {
    try { realFigures = runRealNodes(report.scenario) } catch (err) { realError = (err as Error).message }
  }
  const comparison = simFigures !== undefined && realFigures !== undefined ? compareCalibration(simFigures, realFigures) : undefined
  if (json) {
    process.stdout.write(JSON.stringify({ report, flood, calibration: simFigures, real: realFigures, realError, comparison }, null, 2) + '\n')
  } else {
    process.stdout.write(formatReport(report, flood) + '\n')
    if (simFigures !== undefined) {
      process.stdout.write('calibration figures, simulator: ' + JSON.stringify(simFigures) + '\n')
      if (realFigures !== undefined) {
        process.stdout.write('calibration figures, real nodes: ' + JSON.stringify(realFigures) + '\n')
        const d = (realFigures as { discovery?: Record<'firstConnection' | 'firstPeer' | 'fullMesh' | 'firstPeerAfterConnection' | 'fullMeshAfterConnection', { nodes: number, p50: number, p90: number, max: number }> }).discovery
        if (d !== undefined) {
          const one = (t: { nodes: number, p50: number, p90: number, max: number }): string => t.nodes === 0 ? 'no node' : `p50 ${t.p50} / p90 ${t.p90} / max ${t.max} ms (${t.nodes} of ${realFigures!.nodes} nodes)`
          process.stdout.write(`peer discovery on the real nodes, from the start of the dial phase: first connection ${one(d.firstConnection)}; first mesh peer ${one(d.firstPeer)}; full mesh (D peers) ${one(d.fullMesh)}; ` +
            `from each node's first connection: first mesh peer ${one(d.firstPeerAfterConnection)}, full mesh ${one(d.fullMeshAfterConnection)}\n`)
        }
      }
      if (comparison !== undefined) {
        process.stdout.write(`comparison: median rounds differ by ${comparison.roundsP50Delta}, maximum by ${comparison.roundsMaxDelta}; duplicates per node ${(comparison.duplicatesRelative * 100).toFixed(1)}% off; ` +
          `${comparison.withinTolerance ? 'within' : 'NOT within'} the tolerance (rounds ±${CALIBRATION_TOLERANCE.rounds}, duplicates ±${CALIBRATION_TOLERANCE.duplicatesRelative * 100}%)\n`)
      }
      if (realError !== undefined) process.stdout.write(`real-node run failed: ${realError}\n`)
      if (!real) process.stdout.write('add --real to run the same scenario on real libp2p nodes and compare (docs/swarm.md, "Calibration")\n')
    }
  }
  if (realError !== undefined) process.exitCode = 1
}
