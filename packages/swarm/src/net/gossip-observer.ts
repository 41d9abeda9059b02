/**
 * What a swarm node observes inside gossipsub that gossipsub does not report as an event:
 * the copies its seen cache drops, and the growth of a topic's mesh (peer discovery time).
 *
 * Seen-cache drops. gossipsub 17.1.1 computes the id of every received copy, and when its seen
 * cache already holds the id it drops the copy *before* the topic validator runs
 * (`handleReceivedMessage`, `MessageStatus.duplicate`): the application never sees it. The one
 * place every such copy passes, exactly once and with its topic, is the peer score's P3
 * bookkeeping, `score.duplicateMessage(from, msgId, topic)`. Wrapping that method is the
 * cleanest hook this version offers: no event exists for it, `msgIdFn` runs for every copy but
 * before the seen-cache check (and also on publish), and gossipsub's own `metricsRegister` would
 * switch on about a hundred Prometheus-style metrics on the hot path to get one counter. The
 * version is pinned (packages/swarm/package.json); `observeSeenCacheDrops` throws at start if the
 * method is gone, so an upgrade that moves it fails loudly instead of counting nothing.
 *
 * A copy counted here never reaches the validator, so it is never counted again there: the
 * validator's `duplicate` (a copy with a new gossip id, e.g. after the seen cache forgot it) and the
 * reconcile merge's duplicates are other copies (`mesh.stage` tells the three apart).
 */
import type { DiscoveryMilestone } from './telemetry.ts'

/** The part of gossipsub's peer score this module wraps. */
interface ScoreWithDuplicates {
  duplicateMessage: (from: string, msgIdStr: string, topic: string) => void
}

/** Calls `onDrop(topic)` for every received copy gossipsub's seen cache drops. Returns an undo. */
export function observeSeenCacheDrops (gossip: { score: unknown }, onDrop: (topic: string) => void): () => void {
  const score = gossip.score as Partial<ScoreWithDuplicates> | undefined
  const original = score?.duplicateMessage
  if (score === undefined || typeof original !== 'function') {
    throw new TypeError('gossipsub has no score.duplicateMessage: this version is not the one @agentmesh/swarm was built on (17.1.1)')
  }
  const wrapped = function (this: unknown, from: string, msgIdStr: string, topic: string): void {
    onDrop(topic)
    original.call(score, from, msgIdStr, topic)
  }
  score.duplicateMessage = wrapped
  return () => { if (score.duplicateMessage === wrapped) score.duplicateMessage = original }
}


/** When a topic's mesh reached each milestone (ms since the epoch), and the time measured from. */
export interface DiscoveryTimes { readonly since: number, readonly firstPeerAt?: number, readonly fullMeshAt?: number }

export interface DiscoveryClock {
  /** a topic was joined (measured from the later of the node's start and this moment) */
  joined: (topic: string) => void
  left: (topic: string) => void
  /** looks at the topic's mesh size now (call on graft events and each heartbeat) */
  check: (topic: string) => void
  times: (topic: string) => DiscoveryTimes | undefined
}

/**
 * Peer discovery time per topic: from the node's start (or the join, if later) to the first peer
 * in the topic's mesh, and to a full mesh (`meshDegree`, D, peers). Each milestone is reported
 * once per join. State: one entry per joined topic (at most `maxTopics`).
 */
export function createDiscoveryClock (opts: {
  startedAt: number
  now: () => number
  meshDegree: number
  meshSize: (topic: string) => number
  onMilestone: (topic: string, milestone: DiscoveryMilestone, ms: number) => void
}): DiscoveryClock {
  const state = new Map<string, { since: number, firstPeerAt?: number, fullMeshAt?: number }>()
  return {
    joined (topic) {
      if (!state.has(topic)) state.set(topic, { since: Math.max(opts.startedAt, opts.now()) })
    },
    left (topic) { state.delete(topic) },
    check (topic) {
      const s = state.get(topic)
      if (s === undefined || s.fullMeshAt !== undefined) return
      const size = opts.meshSize(topic)
      if (size <= 0) return
      const at = opts.now()
      if (s.firstPeerAt === undefined) {
        s.firstPeerAt = at
        opts.onMilestone(topic, 'first_peer', at - s.since)
      }
      if (size >= Math.max(1, opts.meshDegree)) {
        s.fullMeshAt = at
        opts.onMilestone(topic, 'full_mesh', at - s.since)
      }
    },
    times: (topic) => {
      const s = state.get(topic)
      return s === undefined ? undefined : { ...s }
    },
  }
}
