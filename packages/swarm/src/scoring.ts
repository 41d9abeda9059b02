/**
 * The gossipsub v1.1 peer-score parameters swarm topics use (docs/swarm.md, "Scoring"), one
 * object shared by real nodes (passed to `@libp2p/gossipsub` as `scoreParams` /
 * `scoreThresholds`, field names as that library spells them) and by the simulator (through
 * `peerScore` below). No libp2p import here: these are plain numbers.
 *
 * The intent, in numbers:
 * - P4 (invalid messages) dominates: one rejected message costs −100 × 1² = −100 after the topic
 *   weight, under the gossip threshold (−50); three cost −900, under the graylist threshold (−400):
 *   a peer that forwards forged messages is pruned from the mesh at the next heartbeat and then
 *   ignored entirely.
 * - P2 (first deliveries) rewards peers that bring new messages, capped so a long-lived peer cannot
 *   bank enough credit to hide a burst of forgeries (cap × weight = +20, less than one P4 hit).
 * - P3 (mesh delivery deficit) is off by default: in a quiet topic an honest peer delivers nothing
 *   and must not be punished for it (silent nodes are handled by lazy gossip, IHAVE/IWANT).
 * - P7 (behaviour penalty: broken promises to answer IWANT, GRAFT during backoff) squares above a
 *   threshold of 2, so a few lost IWANTs on a lossy link do not hurt.
 * - P5 (application score) is 0; P6 (IP colocation) is off: tests and the simulator run many nodes
 *   on 127.0.0.1 (set it on public deployments).
 */

/** Gossipsub's mesh degree (target D, low and high water marks) and the lazy-gossip degree. */
export const SWARM_MESH = Object.freeze({
  D: 6,
  Dlo: 4,
  Dhi: 12,
  Dlazy: 6,
  /** outbound peers a node keeps in its mesh, chosen by itself (gossipsub's Dout: an eclipse needs more than inbound slots) */
  Dout: 2,
  /** heartbeat interval, ms (gossipsub's default) */
  heartbeatMs: 1000,
  /** how many heartbeats a message id stays in the IHAVE window */
  historyGossip: 3,
  /** how many heartbeats a message stays in the cache that answers IWANT */
  historyLength: 5,
})

const DECAY_INTERVAL_MS = 1000
/** The factor that takes a counter to 1% of its value in `ms`, at one decay per DECAY_INTERVAL_MS (gossipsub's ScoreParameterDecay). */
export function scoreDecay (ms: number): number {
  return Math.pow(0.01, DECAY_INTERVAL_MS / ms)
}

/** Parameters for one topic (gossipsub TopicScoreParams). */
export const SWARM_TOPIC_SCORE = Object.freeze({
  topicWeight: 1,
  // P1: time in mesh, up to +10 after an hour
  timeInMeshWeight: 10 / 3600,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 3600,
  // P2: first message deliveries
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: scoreDecay(10 * 60 * 1000),
  firstMessageDeliveriesCap: 20,
  // P3 / P3b: off (see above)
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: scoreDecay(60 * 1000),
  meshMessageDeliveriesCap: 10,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 30 * 1000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: scoreDecay(60 * 1000),
  // P4: invalid messages
  invalidMessageDeliveriesWeight: -100,
  invalidMessageDeliveriesDecay: scoreDecay(60 * 60 * 1000),
})

/** Parameters across topics (gossipsub PeerScoreParams, without `topics`, which a node fills per topic with SWARM_TOPIC_SCORE). */
export const SWARM_PEER_SCORE = Object.freeze({
  topicScoreCap: 50,
  appSpecificWeight: 0,
  IPColocationFactorWeight: 0,
  IPColocationFactorThreshold: 10,
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 2,
  behaviourPenaltyDecay: scoreDecay(10 * 60 * 1000),
  decayInterval: DECAY_INTERVAL_MS,
  decayToZero: 0.01,
  retainScore: 60 * 60 * 1000,
})

/** Gossipsub PeerScoreThresholds. */
export const SWARM_SCORE_THRESHOLDS = Object.freeze({
  /** below: no gossip (IHAVE/IWANT) to or from the peer */
  gossipThreshold: -50,
  /** below: our own messages are not published to the peer */
  publishThreshold: -100,
  /** below: everything from the peer is ignored */
  graylistThreshold: -400,
  /** above: peer exchange (PX) from the peer is accepted */
  acceptPXThreshold: 10,
  /** the median mesh score under which opportunistic grafting starts */
  opportunisticGraftThreshold: 5,
})

/** The counters one node keeps about one peer in one topic (what the simulator tracks). */
export interface PeerCounters {
  /** ms the peer has been in our mesh */
  timeInMeshMs: number
  /** first deliveries of valid messages (decayed) */
  firstDeliveries: number
  /** messages from the peer that we rejected (decayed) */
  invalidDeliveries: number
  /** broken promises and protocol misbehaviour (decayed) */
  behaviourPenalty: number
}

/**
 * The gossipsub v1.1 score of a peer from its counters, with the parameters above (P1, P2, P4, P7;
 * P3, P5, P6 are zero-weighted). The same function the simulator prunes with.
 */
export function peerScore (c: PeerCounters, topic = SWARM_TOPIC_SCORE, peer = SWARM_PEER_SCORE): number {
  const p1 = Math.min(c.timeInMeshMs / topic.timeInMeshQuantum, topic.timeInMeshCap) * topic.timeInMeshWeight
  const p2 = Math.min(c.firstDeliveries, topic.firstMessageDeliveriesCap) * topic.firstMessageDeliveriesWeight
  const p4 = c.invalidDeliveries * c.invalidDeliveries * topic.invalidMessageDeliveriesWeight
  const topicScore = Math.min((p1 + p2 + p4) * topic.topicWeight, peer.topicScoreCap)
  const excess = Math.max(0, c.behaviourPenalty - peer.behaviourPenaltyThreshold)
  return topicScore + excess * excess * peer.behaviourPenaltyWeight
}
