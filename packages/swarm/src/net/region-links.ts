/**
 * Regions on real nodes, the pure part (docs/swarm.md, "Regions on real nodes"; docs/protocol.md
 * §31.6): the internal gossipsub topic names, the link election from a node's own view of its
 * region, the choice of a region by measured round-trip time, and the connection-manager value of
 * a peer. No I/O: `regions-net.ts` feeds these from libp2p, the tests feed them by hand.
 */
import { chooseLinks } from '../regions.ts'

/** The region of a node with none configured: it gossips on the topic itself, as before regions. */
export const DEFAULT_REGION = 'default'
/** `region: 'auto'`: the node measures round-trip times to its first peers and takes their region. */
export const AUTO_REGION = 'auto'
/** A region name (the identify agent string carries it; an internal topic name contains it). */
export const REGION_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/
/**
 * The separator of internal topic names. `#` is not allowed in a public topic name
 * (`TOPIC_PATTERN`), so an internal topic can never be joined, or spoofed, as a public one.
 */
const INTERNAL = '#region/'

/** The gossipsub topic a region's members gossip `topic` on: `<topic>#region/<region>`. */
export function regionTopic (topic: string, region: string): string {
  return topic + INTERNAL + region
}

/** The public topic and region of a gossipsub topic name (no region: the topic itself, the backbone). */
export function parseGossipTopic (gossipTopic: string): { topic: string, region?: string } {
  const i = gossipTopic.indexOf(INTERNAL)
  if (i < 0) return { topic: gossipTopic }
  return { topic: gossipTopic.slice(0, i), region: gossipTopic.slice(i + INTERNAL.length) }
}

/** The rendezvous scope of a region's links for a topic (the simulator's `<topic>/region/<r>`). */
export function linkScope (topic: string, region: string): string {
  return `${topic}/region/${region}`
}

/** A region member as a node sees it: a peer subscribed to the region topic. */
export interface RegionMember {
  readonly id: string
  readonly connected: boolean
  /** the gossipsub score this node gives the peer */
  readonly score: number
}

export interface LinkDecision {
  /** this node is one of its region's inter-region links for the topic */
  readonly link: boolean
  /** the links this node's view elects, best first (`self` among them when `link`) */
  readonly links: readonly string[]
  /** healthy members seen, this node included */
  readonly healthy: number
}

/**
 * Is `self` one of the `k` inter-region links of its region, as far as its view goes? Healthy
 * members are the connected ones with a score >= 0, plus `self`; the links are `chooseLinks` over
 * them (rendezvous hashing: every node with the same view elects the same links, and when a link
 * leaves the view the next-ranked member replaces it while the others stay).
 *
 * A partial view errs on the side of *more* links: a node that does not see some higher-ranked
 * members may elect itself, never the reverse (except when it sees a member healthy that others
 * do not). More links cost inter-region traffic, not delivery.
 */
export function decideLink (scope: string, self: string, members: Iterable<RegionMember>, k: number): LinkDecision {
  const healthy = new Set<string>([self])
  for (const m of members) if (m.connected && m.score >= 0) healthy.add(m.id)
  const links = chooseLinks(scope, [...healthy], k)
  return { link: links.includes(self), links, healthy: healthy.size }
}

/** One measurement for `region: 'auto'`: a peer's advertised region and the round-trip time to it. */
export interface RttSample {
  readonly region: string
  readonly rttMs: number
}

/** How many of the lowest-RTT peers vote on an automatic region. */
export const AUTO_REGION_VOTERS = 3

/**
 * The region of the lowest-RTT peers: the `AUTO_REGION_VOTERS` fastest samples vote, the region
 * with the most votes wins, a tie goes to the region of the fastest peer among the tied. Samples
 * of peers still deciding (`auto`) or with no valid region are left out. No usable sample: the
 * fallback (`default`: gossip on the topic itself, with every node that has no region).
 */
export function pickRegion (samples: readonly RttSample[], fallback = DEFAULT_REGION): string {
  const usable = samples
    .filter(s => s.region !== AUTO_REGION && REGION_PATTERN.test(s.region) && Number.isFinite(s.rttMs) && s.rttMs >= 0)
    .sort((a, b) => a.rttMs - b.rttMs)
    .slice(0, AUTO_REGION_VOTERS)
  if (usable.length === 0) return fallback
  const votes = new Map<string, { n: number, best: number }>()
  for (const s of usable) {
    const v = votes.get(s.region) ?? { n: 0, best: s.rttMs }
    v.n++
    votes.set(s.region, v)
  }
  return [...votes.entries()].sort((a, b) => b[1].n - a[1].n || a[1].best - b[1].best)[0]![0]
}

/** The region a peer advertises in its identify agent string (`agentmesh-swarm/1 region=<r>`), if any. */
export function regionOfAgent (agentVersion: string | undefined): string | undefined {
  const m = /^agentmesh-swarm\/1 region=([a-z0-9][a-z0-9-]{0,31})$/.exec(agentVersion ?? '')
  return m?.[1]
}

/** The connection-manager tag this node puts on its peers (libp2p prunes the lowest total value first). */
export const RTT_TAG = 'agentmesh-swarm-rtt'

/**
 * The value of a peer for the connection manager, 0..99: up to 49 for a low round-trip time
 * (49 at 0 ms, half that at `halfAtMs`, falling towards 0; 0 while unmeasured), plus 50 for a
 * member of this node's region (its regional mesh needs them, so a region-mate always outranks
 * any other peer). When a node has more connections than `maxConnections`, libp2p closes the
 * lowest-valued first: the far peers of other regions go first.
 */
export function peerValue (rttMs: number | undefined, sameRegion: boolean, halfAtMs = 50): number {
  const near = rttMs === undefined || !Number.isFinite(rttMs) || rttMs < 0 ? 0 : Math.round(49 * halfAtMs / (halfAtMs + rttMs))
  return near + (sameRegion ? 50 : 0)
}
