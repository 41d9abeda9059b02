/**
 * A swarm node's OpenTelemetry instruments, through `@opentelemetry/api` only: the application
 * chooses the SDK and the exporters (OTLP, Prometheus) and passes its `MeterProvider` /
 * `TracerProvider`, or registers them globally. `packages/swarm/metrics-schema.json` lists every
 * instrument here, and a test checks the two agree exactly.
 *
 * Attribute values are bounded: a topic this node joined (at most `maxTopics`), a validator
 * reason (a fixed list), a statistic name. Never an AMID or a peer id (unbounded cardinality).
 */
import { metrics, trace, type Attributes, type Counter, type Histogram, type MeterProvider, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api'

export const METER_NAME = '@agentmesh/swarm'

export type Via = 'gossip' | 'reconcile'
/**
 * Where a duplicate copy was dropped: gossipsub's seen cache (same gossip id, before validation),
 * the validator (a copy of an (author, seq) already delivered that the seen cache no longer or
 * never held), or the reconcile merge. Each received copy is counted at one stage only.
 */
export type DuplicateStage = 'seen-cache' | 'validator' | 'reconcile'
export type DiscoveryMilestone = 'first_peer' | 'full_mesh'

export interface PeerCounts { connected: number, mesh: number }
export interface ScoreStats { min: number, mean: number, max: number }

export interface TelemetrySources {
  peerCounts: () => PeerCounts
  /** undefined when no peer is connected (nothing is observed then) */
  scoreStats: () => ScoreStats | undefined
}

export interface SwarmTelemetry {
  gossipRound: () => void
  delivered: (topic: string, via: Via, latencyMs: number) => void
  published: (topic: string) => void
  duplicate: (topic: string, stage: DuplicateStage) => void
  /** peer discovery: ms from the node's start (or the topic's join) to the milestone */
  discovered: (topic: string, milestone: DiscoveryMilestone, ms: number) => void
  invalid: (topic: string, reason: string) => void
  reconciled: (topic: string, n: number) => void
  partitionDetected: () => void
  partitionHealed: () => void
  converged: (ms: number) => void
  span: (name: 'swarm.publish' | 'swarm.deliver', attributes: Attributes) => Span
  close: () => void
}

export function createTelemetry (sources: TelemetrySources, providers: { meterProvider?: MeterProvider, tracerProvider?: TracerProvider } = {}): SwarmTelemetry {
  const meter = (providers.meterProvider ?? metrics.getMeterProvider()).getMeter(METER_NAME)
  const tracer: Tracer = (providers.tracerProvider ?? trace.getTracerProvider()).getTracer(METER_NAME)
  const counter = (name: string, unit: string, description: string): Counter => meter.createCounter(name, { unit, description })
  const histogram = (name: string, unit: string, description: string): Histogram => meter.createHistogram(name, { unit, description })

  const gossipRound = counter('mesh.gossip_round', '{round}', 'gossipsub heartbeats (gossip rounds) this node ran')
  const latency = histogram('mesh.message_latency', 'ms', "time from a message's author timestamp to its delivery here")
  const partitions = counter('mesh.partition_detected', '{partition}', 'times this node saw itself cut from a large share of its peers')
  const heals = counter('mesh.partition_healed', '{partition}', 'times a detected partition healed')
  const convergence = histogram('mesh.convergence_time', 'ms', 'time from a heal to the end of the reconciliation that follows it')
  const messagesIn = counter('mesh.messages_in', '{message}', 'messages accepted and delivered here, each once')
  const messagesOut = counter('mesh.messages_out', '{message}', 'messages this node authored and published')
  const duplicates = counter('mesh.duplicates', '{message}', 'received copies of messages already seen, dropped, by stage (seen-cache, validator, reconcile)')
  const discovery = histogram('mesh.peer_discovery_time', 'ms', "time from the node's start (or the topic's join) to the topic's first mesh peer and to a full mesh (D peers)")
  const invalid = counter('mesh.invalid_messages', '{message}', 'messages rejected or ignored by the validator, by reason')
  const reconciled = counter('mesh.reconciled_messages', '{message}', 'messages recovered by the reconcile protocol')
  const peerCount = meter.createObservableGauge('mesh.peer_count', { unit: '{peer}', description: 'peers connected, and peers in the topic meshes' })
  const peerScore = meter.createObservableGauge('mesh.peer_score', { unit: '1', description: 'gossipsub v1.1 scores of connected peers: min, mean, max' })

  const observePeers = (r: { observe: (v: number, a?: Attributes) => void }): void => {
    const c = sources.peerCounts()
    r.observe(c.connected, { 'mesh.scope': 'connected' })
    r.observe(c.mesh, { 'mesh.scope': 'mesh' })
  }
  const observeScores = (r: { observe: (v: number, a?: Attributes) => void }): void => {
    const s = sources.scoreStats()
    if (s === undefined) return
    r.observe(s.min, { 'mesh.stat': 'min' })
    r.observe(s.mean, { 'mesh.stat': 'mean' })
    r.observe(s.max, { 'mesh.stat': 'max' })
  }
  peerCount.addCallback(observePeers)
  peerScore.addCallback(observeScores)

  return {
    gossipRound: () => { gossipRound.add(1) },
    delivered: (topic, via, ms) => {
      messagesIn.add(1, { 'mesh.topic': topic, 'mesh.via': via })
      latency.record(Math.max(0, ms), { 'mesh.topic': topic, 'mesh.via': via })
    },
    published: (topic) => { messagesOut.add(1, { 'mesh.topic': topic }) },
    duplicate: (topic, stage) => { duplicates.add(1, { 'mesh.topic': topic, 'mesh.stage': stage }) },
    discovered: (topic, milestone, ms) => { discovery.record(Math.max(0, ms), { 'mesh.topic': topic, 'mesh.milestone': milestone }) },
    invalid: (topic, reason) => { invalid.add(1, { 'mesh.topic': topic, 'mesh.reason': reason }) },
    reconciled: (topic, n) => { if (n > 0) reconciled.add(n, { 'mesh.topic': topic }) },
    partitionDetected: () => { partitions.add(1) },
    partitionHealed: () => { heals.add(1) },
    converged: (ms) => { convergence.record(Math.max(0, ms)) },
    span: (name, attributes) => tracer.startSpan(name, { attributes }),
    close: () => {
      peerCount.removeCallback(observePeers)
      peerScore.removeCallback(observeScores)
    },
  }
}
