/**
 * Regions on real nodes (docs/swarm.md, "Regions on real nodes"; docs/protocol.md §31.6).
 *
 * A node of region `r` gossips a topic `T` on the internal gossipsub topic `T#region/r`, so its
 * mesh for `T` holds only members of `r`. The topic's **backbone** is the gossipsub topic `T`
 * itself: nodes with no region (`default`) gossip there as before regions existed, and each
 * region's inter-region links join it too. A link forwards every message it accepts from one side
 * to the other (the same bytes; each gossipsub topic has its own message id, see `msg-id.ts`, and
 * the topic's store delivers each (author, seq) once whatever the path).
 *
 * Each node decides alone, at every gossip round, whether it is one of its region's links
 * (`decideLink`: rendezvous hashing over the healthy region members it sees). It also tags its
 * peers in the connection manager by round-trip time and region (`peerValue`), so the far peers
 * are pruned first when it has more connections than it may keep, and with `region: 'auto'` it
 * takes the region of its lowest-RTT first peers (`resolveRegion`).
 */
import type { Libp2p } from 'libp2p'
import type { GossipSub, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import { SWARM_TOPIC_SCORE } from '../scoring.ts'
import {
  AUTO_REGION, DEFAULT_REGION, RTT_TAG, decideLink, linkScope, peerValue, pickRegion, regionOfAgent, regionTopic,
  type RttSample,
} from './region-links.ts'

type Validator = (peer: PeerId, msg: { data: Uint8Array }) => TopicValidatorResult

/** The parts of gossipsub used beyond its public interface (as in swarm.ts). */
interface GossipLike extends GossipSub {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
  score: { params: { topics: Record<string, typeof SWARM_TOPIC_SCORE> } }
}

export interface RegionsInit {
  readonly node: Libp2p
  readonly gossip: GossipLike
  readonly region: string
  /** links per region (`limits.regionLinks`) */
  readonly links: number
  /** the topic validator of public topic `topic` when it arrives on gossipsub topic `gossipTopic` */
  readonly validatorFor: (topic: string, gossipTopic: string) => Validator
  /** peers whose region is remembered (identify), bounded like the redial list */
  readonly maxKnownPeers: number
  /** gossip rounds between two updates of the connection-manager tags */
  readonly tagEveryRounds: number
}

export interface RegionState {
  readonly regionTopic: string
  link: boolean
  links: readonly string[]
  /** times this node became a link for the topic (tests and docs read it) */
  elected: number
}

export interface Regions {
  readonly region: string
  /** Subscribes the gossipsub topics of a public topic (the region's; the backbone when a link). */
  join: (topic: string) => void
  leave: (topic: string) => void
  /** gossipsub topics this node is subscribed to for `topic` (one, or two at a link) */
  gossipTopics: (topic: string) => string[]
  /** the state of a regional topic (undefined: not joined, or the node has no region) */
  state: (topic: string) => RegionState | undefined
  /** After an accepted message: a link carries it to the other side. */
  forward: (topic: string, fromGossipTopic: string, data: Uint8Array) => void
  /** One gossip round: re-elect the links of every topic, refresh the peer tags now and then. */
  round: () => void
  close: () => void
}

export function createRegions (init: RegionsInit): Regions {
  const { node, gossip, region } = init
  const regional = region !== DEFAULT_REGION
  const self = node.peerId.toString()
  const states = new Map<string, RegionState>()
  /** peer id → region it advertises (identify), bounded; forgotten on disconnect */
  const peerRegions = new Map<string, string>()
  const tagged = new Map<string, number>()
  let rounds = 0

  const remember = (id: string, r: string): void => {
    peerRegions.delete(id)
    peerRegions.set(id, r)
    while (peerRegions.size > init.maxKnownPeers) peerRegions.delete(peerRegions.keys().next().value as string)
  }
  const onIdentify = (ev: CustomEvent<{ peerId: PeerId, agentVersion?: string }>): void => {
    const r = regionOfAgent(ev.detail.agentVersion)
    if (r === undefined) return
    remember(ev.detail.peerId.toString(), r)
  }
  const onDisconnect = (ev: CustomEvent<PeerId>): void => {
    const id = ev.detail.toString()
    peerRegions.delete(id)
    tagged.delete(id)
  }
  node.addEventListener('peer:identify', onIdentify as unknown as (ev: Event) => void)
  node.addEventListener('peer:disconnect', onDisconnect as unknown as (ev: Event) => void)

  const sub = (topic: string, gossipTopic: string): void => {
    gossip.score.params.topics[gossipTopic] = { ...SWARM_TOPIC_SCORE }
    gossip.topicValidators.set(gossipTopic, init.validatorFor(topic, gossipTopic))
    gossip.subscribe(gossipTopic)
  }
  const unsub = (gossipTopic: string): void => {
    gossip.unsubscribe(gossipTopic)
    gossip.topicValidators.delete(gossipTopic)
  }

  const elect = (topic: string, st: RegionState): void => {
    const members = gossip.getSubscribers(st.regionTopic).map((p) => {
      const id = p.toString()
      // gossipsub forgets a peer's subscriptions when it disconnects: a subscriber is connected
      return { id, connected: true, score: gossip.getScore(id) }
    })
    const d = decideLink(linkScope(topic, region), self, members, init.links)
    st.links = d.links
    if (d.link === st.link) return
    st.link = d.link
    if (d.link) {
      st.elected++
      sub(topic, topic)
    } else {
      unsub(topic)
    }
  }

  /** peers identified before this module listened (the bootstrap peers): their region from the peer store, once */
  const looked = new Set<string>()
  const lookUp = (p: PeerId): void => {
    const id = p.toString()
    if (looked.has(id) || looked.size >= init.maxKnownPeers) return
    looked.add(id)
    void node.peerStore.get(p).then((peer) => {
      const av = peer.metadata.get('AgentVersion')
      const r = av === undefined ? undefined : regionOfAgent(new TextDecoder().decode(av))
      if (r !== undefined && !peerRegions.has(id)) remember(id, r)
    }).catch(() => {}).finally(() => { looked.delete(id) })
  }

  const tagPeers = (): void => {
    for (const conn of node.getConnections()) {
      const id = conn.remotePeer.toString()
      if (!peerRegions.has(id)) lookUp(conn.remotePeer)
      const value = peerValue(conn.rtt, peerRegions.get(id) === region)
      if (tagged.get(id) === value) continue
      tagged.set(id, value)
      void node.peerStore.merge(conn.remotePeer, { tags: { [RTT_TAG]: { value } } }).catch(() => {})
    }
  }

  return {
    region,
    join (topic) {
      if (!regional) { sub(topic, topic); return }
      if (states.has(topic)) return
      const st: RegionState = { regionTopic: regionTopic(topic, region), link: false, links: [], elected: 0 }
      states.set(topic, st)
      sub(topic, st.regionTopic)
      elect(topic, st)
    },
    leave (topic) {
      const st = states.get(topic)
      states.delete(topic)
      if (st === undefined) { unsub(topic); return }
      unsub(st.regionTopic)
      if (st.link) unsub(topic)
    },
    gossipTopics (topic) {
      const st = states.get(topic)
      if (st === undefined) return [topic]
      return st.link ? [st.regionTopic, topic] : [st.regionTopic]
    },
    state: (topic) => states.get(topic),
    forward (topic, from, data) {
      const st = states.get(topic)
      if (st === undefined || !st.link) return
      const to = from === topic ? st.regionTopic : topic
      // the same bytes on the other side; a copy that side already has is refused by gossipsub's
      // seen cache (ignoreDuplicatePublishError) or ignored as a duplicate by the validators
      void gossip.publish(to, data).catch(() => {})
    },
    round () {
      for (const [topic, st] of states) elect(topic, st)
      if (rounds++ % init.tagEveryRounds === 0) tagPeers()
    },
    close () {
      node.removeEventListener('peer:identify', onIdentify as unknown as (ev: Event) => void)
      node.removeEventListener('peer:disconnect', onDisconnect as unknown as (ev: Event) => void)
    },
  }
}

/**
 * `region: 'auto'`: after the bootstrap dials, waits (at most `timeoutMs`) for the connected
 * peers to identify, pings up to `maxPeers` of those that advertise a region, and takes the region
 * of the lowest-RTT ones (`pickRegion`). No usable peer (none connected after the bootstrap dials:
 * at once): `default`. The node then advertises the
 * region it chose in identify (peers that identified it before saw `region=auto`, which no one
 * follows). Returns the region and the samples (for logs and tests).
 */
export async function resolveRegion (node: Libp2p<{ ping: Ping }>, opts: { timeoutMs: number, maxPeers: number }): Promise<{ region: string, samples: RttSample[] }> {
  const end = Date.now() + opts.timeoutMs
  const regionOf = async (p: PeerId): Promise<string | undefined> => {
    try {
      const peer = await node.peerStore.get(p)
      const av = peer.metadata.get('AgentVersion')
      return av === undefined ? undefined : regionOfAgent(new TextDecoder().decode(av))
    } catch { return undefined }
  }
  let peers: PeerId[] = []
  let regions: (string | undefined)[] = []
  for (;;) {
    peers = node.getPeers().slice(0, opts.maxPeers)
    regions = await Promise.all(peers.map(regionOf))
    // no peer at all after the bootstrap dials: nothing to wait for
    if (peers.length === 0 || regions.every(r => r !== undefined) || Date.now() >= end) break
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  const samples: RttSample[] = []
  await Promise.all(peers.map(async (p, i) => {
    const r = regions[i]
    if (r === undefined || r === AUTO_REGION) return
    try {
      const rttMs = await node.services.ping.ping(p, { signal: AbortSignal.timeout(Math.max(100, end - Date.now())) })
      samples.push({ region: r, rttMs })
    } catch {
      // unreachable or too slow: no vote
    }
  }))
  return { region: pickRegion(samples), samples }
}

/**
 * Makes identify advertise `region` from now on (the agent string is built before the region of
 * an `auto` node is known). Reaches into identify's host record, which libp2p reads for every
 * identify answer; without it the node still works, it just keeps advertising `region=auto`.
 */
export function advertiseRegion (node: Libp2p, region: string): void {
  const agent = `agentmesh-swarm/1 region=${region}`
  const identify = (node as unknown as { services: { identify?: { host?: { agentVersion?: string } } } }).services.identify
  if (identify?.host !== undefined) identify.host.agentVersion = agent
  void node.peerStore.merge(node.peerId, { metadata: { AgentVersion: new TextEncoder().encode(agent) } }).catch(() => {})
}
