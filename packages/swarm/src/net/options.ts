/**
 * A swarm node's options and bounds (docs/protocol.md, "Swarm topics": bounds). Every bound has a
 * default here; `SwarmInit.limits` overrides any of them, checked before any I/O.
 */
import type { ConnectionGater } from '@libp2p/interface'
import type { MeterProvider, TracerProvider } from '@opentelemetry/api'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { KeyPair } from '@agentmesh/crypto'
import { DEFAULT_REGION_LINKS } from '../regions.ts'

export const SWARM_DEFAULTS = Object.freeze({
  /** topics one node joins at once */
  maxTopics: 32,
  /** gossipsub mesh degree D: peers a node forwards every message to, per topic (gossipsub v1.1 §"parameters") */
  meshDegree: 6,
  /** Dlo: below this a heartbeat grafts peers back */
  meshDegreeLow: 4,
  /** Dhi: above this a heartbeat prunes peers down to D (the bound on peers per topic mesh) */
  meshDegreeHigh: 12,
  /** Dlazy: peers each heartbeat sends IHAVE gossip to, outside the mesh */
  gossipDegree: 6,
  /** gossip round (heartbeat) interval, ms */
  heartbeatMs: 1000,
  /** how long a message id stays in gossipsub's seen cache, ms (bounds it with the per-author rate) */
  seenTtlMs: 120_000,
  /** delivered (author, seq) pairs remembered per topic for the each-once guarantee */
  maxDeliveredPerTopic: 100_000,
  /** delivered messages a subscriber may lag behind; past this it gets AM_ERR_SLOW_CONSUMER-like end (see subscribe) */
  maxQueuedPerSubscriber: 10_000,
  /** open connections of the node (in and out) */
  maxConnections: 64,
  /** new inbound connections one host (IP address) may open per second (libp2p's default; many nodes on one host need more) */
  inboundConnectionsPerHostPerS: 5,
  /** inbound connections in their handshake at once */
  maxPendingInbound: 10,
  /** share of its recent peers a node must lose to report a partition (0..1) */
  partitionLossShare: 0.5,
  /** fewest recent peers for partition detection to apply (a node with 1 peer is not "partitioned" by losing it) */
  partitionMinPeers: 3,
  /** share of the pre-partition peers that must be back to report the heal */
  healShare: 0.75,
  /** interval of background anti-entropy, ms: each round one peer sharing a topic, topics and peers in turn, the shared topics only (anti-entropy.ts; 0: only after a heal) */
  reconcileIntervalMs: 10_000,
  /** messages one reconcile answer carries at most (the rest follow on the next round) */
  maxReconcileMessages: 1024,
  /** bytes one reconcile frame may carry */
  maxReconcileFrameBytes: 4 * 1024 * 1024,
  /** time a reconcile exchange may take, ms */
  reconcileTimeoutMs: 10_000,
  /** peers remembered to redial after a partition */
  maxKnownPeers: 256,
  /** redial attempts per heartbeat while partitioned */
  redialPerRound: 4,
  /** inter-region links a region keeps per topic (`DEFAULT_REGION_LINKS`; each node decides from its own view, docs/swarm.md) */
  regionLinks: DEFAULT_REGION_LINKS,
  /** `region: 'auto'`: longest wait for the first peers to identify and answer a ping, ms */
  autoRegionTimeoutMs: 3000,
  /** `region: 'auto'`: peers pinged at most */
  autoRegionPeers: 8,
  /** gossip rounds between two updates of the peers' round-trip-time tags in the connection manager */
  rttTagRounds: 10,
})
export type SwarmLimits = { -readonly [K in keyof typeof SWARM_DEFAULTS]: number }

export interface SwarmInit {
  /** the agent's key pair: its AMID signs every message it publishes, and is its libp2p identity */
  readonly keys: Pick<KeyPair, 'secretKey' | 'publicKey' | 'privateKeyObject'>
  /** multiaddrs to listen on (default: TCP on 127.0.0.1, any port) */
  readonly listen?: readonly string[]
  /** multiaddrs of peers to dial at start (and redial after a partition) */
  readonly bootstrap?: readonly string[]
  /**
   * The node's region, 1-32 characters of a-z 0-9 -: inside a region gossip is local, and a few
   * inter-region links per region carry messages across (docs/swarm.md, "Regions on real nodes").
   * `'auto'`: the region of the lowest-RTT peers among the first ones it connects to (bootstrap),
   * `'default'` when none advertises one. `'default'`: no region, gossip on the topic itself
   * (the backbone), as every node did before regions. @default 'default'
   */
  readonly region?: string
  /**
   * The last sequence number this author used in a topic before this node started (the CLI keeps
   * them in the agent home): a restarted author that reused a number with other content would be
   * caught equivocating and blocked by every validator. @default none used (the first is 1)
   */
  readonly lastSeq?: (topic: string) => number
  readonly limits?: Partial<SwarmLimits>
  /** OpenTelemetry providers @default the global ones (no-ops until the application registers an SDK) */
  readonly meterProvider?: MeterProvider
  readonly tracerProvider?: TracerProvider
  /** a libp2p connection gater (tests cut links with one) */
  readonly connectionGater?: ConnectionGater
  /** peer-score overrides (tests on one host whitelist 127.0.0.1 from the IP-colocation penalty) */
  readonly ipColocationWhitelist?: readonly string[]
  /** clock, ms since the epoch @default Date.now */
  readonly now?: () => number
}

/** Merges and checks the limits, naming the bad field (before any I/O). */
export function swarmLimits (given: Partial<SwarmLimits> | undefined): SwarmLimits {
  const l = { ...SWARM_DEFAULTS, ...given }
  for (const [k, v] of Object.entries(l)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `swarm limit ${k} must be a non-negative number`)
  }
  for (const k of ['partitionLossShare', 'healShare'] as const) {
    if (l[k] <= 0 || l[k] > 1) throw new AgentMeshError(ErrorCode.InvalidArgument, `swarm limit ${k} must be in (0, 1]`)
  }
  if (!(l.meshDegreeLow <= l.meshDegree && l.meshDegree <= l.meshDegreeHigh)) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, 'swarm limits must keep meshDegreeLow <= meshDegree <= meshDegreeHigh')
  }
  if (!Number.isInteger(l.regionLinks) || l.regionLinks < 1 || l.rttTagRounds < 1 || l.autoRegionPeers < 1) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, 'swarm limits regionLinks (an integer), rttTagRounds and autoRegionPeers must be at least 1')
  }
  if (l.maxTopics < 1 || l.heartbeatMs < 10) throw new AgentMeshError(ErrorCode.InvalidArgument, 'swarm limits maxTopics >= 1 and heartbeatMs >= 10')
  return l
}

/** A topic name: printable, bounded (it is an attribute of metrics and a key of gossipsub's maps). */
export const MAX_TOPIC_LENGTH = 128
const TOPIC_RE = /^[A-Za-z0-9._:/-]{1,128}$/

export function checkTopic (topic: unknown): string {
  if (typeof topic !== 'string' || !TOPIC_RE.test(topic)) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `a swarm topic is 1-${MAX_TOPIC_LENGTH} characters of A-Z a-z 0-9 . _ : / -`)
  }
  return topic
}
