/**
 * What a simulation runs: the swarm's size and make-up, its gossip parameters, the network, and
 * what goes wrong (Byzantine nodes, loss, churn, a partition). `SCENARIOS` are the named presets
 * `npm run sim -- --scenario <name>` starts from; flags override single fields.
 */
import { SWARM_MESH, DEFAULT_AUTHOR_BURST, DEFAULT_AUTHOR_RATE_PER_S } from '@agentmesh/swarm'

export type ByzantineKind = 'silent' | 'forging' | 'flooding' | 'eclipsing'
export const BYZANTINE_KINDS: readonly ByzantineKind[] = ['silent', 'forging', 'flooding', 'eclipsing']

export interface Scenario {
  name: string
  /** 10 … 1,000,000 */
  nodes: number
  seed: number
  /** 'gossipsub' (mesh + lazy gossip + validation + scoring) or 'flood' (every node sends every new message to every peer, the baseline) */
  mode: 'gossipsub' | 'flood'
  /** share of Byzantine nodes, 0 … 0.5 */
  byzantine: number
  /** the kinds of Byzantine node, in equal shares */
  byzantineKinds: ByzantineKind[]
  /** honest nodes that publish */
  publishers: number
  /** messages each publisher publishes */
  messagesPerPublisher: number
  /** ms between a publisher's messages (all publishers start together at 100 ms) */
  publishIntervalMs: number
  /** body size of each message, bytes */
  bodyBytes: number
  /** one-way latency per hop, ms */
  latencyMs: number
  /** one-way latency of a hop between regions, ms */
  interRegionLatencyMs: number
  /** extra random latency per hop, uniform in [0, jitterMs) */
  jitterMs: number
  /** probability that any one transmission is lost */
  loss: number
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  heartbeatMs: number
  /** heartbeats a message stays in the IHAVE window */
  historyGossip: number
  /** messages this large (encoded bytes) and larger make a node send IDONTWANT to its mesh on first receipt (gossipsub 17's default: 512) */
  idontwantMinBytes: number
  /** ms between a node accepting a message and pushing it to its mesh (validation and framing on a real node; 0 = at once) */
  processingMs: number
  /** a node does not push a message to a mesh peer that already sent it a copy (gossipsub excludes a message's known senders when it forwards after asynchronous validation); modelled for up to 32 messages */
  excludeHolders: boolean
  /** 0: mesh peers are grafted from the whole region; else each node dials this many random others and mesh, gossip and flood publish use those connections (as a real run's bootstrap) */
  dialDegree: number
  /** with dialDegree: a publisher sends its own message to every connected peer, not only its mesh (gossipsub's floodPublish, on by default there) */
  floodPublish: boolean
  /** peers per node in 'flood' mode */
  floodDegree: number
  /** regions (0: one region below 100,000 nodes, else one per 1,000 nodes) */
  regions: number
  /** inter-region links per region */
  regionLinks: number
  /** regions form groups with aggregators above this many regions */
  aggregateAbove: number
  /** aggregators per group of regions */
  aggregators: number
  /** links (and aggregators) each link node keeps to other regions (groups) */
  crossDegree: number
  /** share of nodes that go down once during the run, then come back and reconcile */
  churn: number
  /** how long a churned node stays down, ms */
  churnDownMs: number
  /** cut the swarm in two at cutAtMs, heal at healAtMs (reconciliation runs on the healed links) */
  partition?: { cutAtMs: number, healAtMs: number }
  /** share of a node's mesh lost at once above which it reports a partition */
  partitionThreshold: number
  /** flooding Byzantine nodes that publish as authors (the others amplify: resend everything `amplify` times) */
  floodAuthors: number
  /** messages each flooding author publishes, 1 ms apart */
  floodCount: number
  amplify: number
  /** share of honest nodes whose mesh the eclipsing nodes fill (all but their Dout own picks) */
  eclipseVictims: number
  /** the validator's per-author rate, messages per second (the shared default) */
  authorRatePerS: number
  /** the validator's per-author burst (the shared default) */
  authorBurst: number
  /** outbound mesh peers an eclipse victim keeps (gossipsub's Dout) */
  Dout: number
  /** the simulation stops here at the latest, ms */
  maxTimeMs: number
}

export const DEFAULT_SCENARIO: Scenario = {
  name: 'basic',
  nodes: 1000,
  seed: 1,
  mode: 'gossipsub',
  byzantine: 0,
  byzantineKinds: [...BYZANTINE_KINDS],
  publishers: 4,
  messagesPerPublisher: 2,
  publishIntervalMs: 100,
  bodyBytes: 256,
  latencyMs: 20,
  interRegionLatencyMs: 20,
  jitterMs: 0,
  loss: 0,
  D: SWARM_MESH.D,
  Dlo: SWARM_MESH.Dlo,
  Dhi: SWARM_MESH.Dhi,
  Dlazy: SWARM_MESH.Dlazy,
  heartbeatMs: SWARM_MESH.heartbeatMs,
  historyGossip: SWARM_MESH.historyGossip,
  idontwantMinBytes: 512,
  processingMs: 0,
  dialDegree: 0,
  floodPublish: true,
  excludeHolders: false,
  floodDegree: SWARM_MESH.D + SWARM_MESH.Dlazy,
  regions: 0,
  regionLinks: 4,
  aggregateAbove: 32,
  aggregators: 4,
  crossDegree: 2,
  churn: 0,
  churnDownMs: 2000,
  partitionThreshold: 0.5,
  floodAuthors: 4,
  floodCount: 300,
  amplify: 3,
  eclipseVictims: 0.01,
  authorRatePerS: DEFAULT_AUTHOR_RATE_PER_S,
  authorBurst: DEFAULT_AUTHOR_BURST,
  Dout: SWARM_MESH.Dout,
  maxTimeMs: 120_000,
}

/** Named presets (over DEFAULT_SCENARIO). */
export const SCENARIOS: Record<string, Partial<Scenario>> = {
  basic: {},
  byzantine: { name: 'byzantine', byzantine: 0.3 },
  lossy: { name: 'lossy', loss: 0.05, jitterMs: 10 },
  churn: { name: 'churn', churn: 0.05, messagesPerPublisher: 10, publishIntervalMs: 300 },
  partition: { name: 'partition', partition: { cutAtMs: 400, healAtMs: 3000 }, messagesPerPublisher: 3, publishIntervalMs: 500 },
  /**
   * the topology and publishing of packages/swarm's real-node runner (run-real), for --calibrate:
   * on one host a hop costs no wire time, only scheduling and queueing, so 1 ms plus 0–20 ms of jitter
   */
  calibration: { name: 'calibration', nodes: 200, dialDegree: 5, floodPublish: true, excludeHolders: true, processingMs: 1, latencyMs: 1, interRegionLatencyMs: 1, jitterMs: 20 },
  million: { name: 'million', nodes: 1_000_000, publishers: 2, messagesPerPublisher: 2 },
  'million-byzantine': { name: 'million-byzantine', nodes: 1_000_000, publishers: 2, messagesPerPublisher: 2, byzantine: 0.3, floodAuthors: 1, floodCount: 50, authorBurst: 5, authorRatePerS: 2 },
}

/** The regions a scenario runs with (0 means automatic). */
export function regionCount (s: Scenario): number {
  if (s.regions > 0) return Math.min(s.regions, Math.floor(s.nodes / 10))
  return s.nodes >= 100_000 ? Math.ceil(s.nodes / 1000) : 1
}

/** Throws RangeError naming the first field out of range. */
export function checkScenario (s: Scenario): Scenario {
  const int = (k: keyof Scenario, lo: number, hi: number): void => {
    const v = s[k] as number
    if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new RangeError(`${k} must be an integer from ${lo} to ${hi.toLocaleString('en')} (got ${String(v)})`)
  }
  const frac = (k: keyof Scenario, hi = 1): void => {
    const v = s[k] as number
    if (typeof v !== 'number' || !(v >= 0 && v <= hi)) throw new RangeError(`${k} must be a number from 0 to ${hi} (got ${String(v)})`)
  }
  int('nodes', 10, 1_000_000)
  int('seed', 0, 2 ** 32 - 1)
  frac('byzantine', 0.5)
  frac('loss', 0.5)
  frac('churn', 0.5)
  frac('eclipseVictims', 0.5)
  frac('partitionThreshold', 1)
  int('publishers', 1, 64)
  int('messagesPerPublisher', 1, 64)
  int('publishIntervalMs', 0, 60_000)
  int('bodyBytes', 1, 60_000)
  int('latencyMs', 1, 10_000)
  int('interRegionLatencyMs', 1, 10_000)
  int('jitterMs', 0, 10_000)
  int('D', 1, 32); int('Dlo', 1, 32); int('Dhi', 1, 32); int('Dlazy', 0, 32)
  if (!(s.Dlo <= s.D && s.D <= s.Dhi)) throw new RangeError('D must satisfy Dlo ≤ D ≤ Dhi')
  int('heartbeatMs', 10, 60_000)
  int('historyGossip', 1, 16)
  int('floodDegree', 1, 32)
  int('idontwantMinBytes', 1, 1 << 30)
  int('dialDegree', 0, 32)
  if (!(s.processingMs >= 0 && s.processingMs <= 10_000)) throw new RangeError(`processingMs must be a number from 0 to 10000 (got ${String(s.processingMs)})`)
  int('regions', 0, 100_000)
  int('regionLinks', 1, 32)
  int('aggregateAbove', 2, 100_000)
  int('aggregators', 1, 32)
  int('crossDegree', 1, 4)
  int('churnDownMs', 1, 600_000)
  int('floodAuthors', 0, 16)
  int('floodCount', 0, 2000)
  int('amplify', 1, 16)
  int('Dout', 0, 8)
  int('authorRatePerS', 1, 100_000)
  int('authorBurst', 1, 100_000)
  int('maxTimeMs', 1000, 3_600_000)
  if (s.publishers * s.messagesPerPublisher > 256) throw new RangeError('publishers × messagesPerPublisher must be at most 256')
  if (s.mode !== 'gossipsub' && s.mode !== 'flood') throw new RangeError('mode must be gossipsub or flood')
  for (const k of s.byzantineKinds) if (!BYZANTINE_KINDS.includes(k)) throw new RangeError(`unknown Byzantine kind ${JSON.stringify(k)} (known: ${BYZANTINE_KINDS.join(', ')})`)
  if (s.byzantine > 0 && s.byzantineKinds.length === 0) throw new RangeError('byzantineKinds is empty')
  if (s.partition !== undefined && !(s.partition.cutAtMs >= 0 && s.partition.healAtMs > s.partition.cutAtMs)) throw new RangeError('partition: healAtMs must come after cutAtMs')
  return s
}
