/**
 * Background anti-entropy, topic-aware (docs/protocol.md, "Swarm topics": partitions and
 * reconciliation). Every `reconcileIntervalMs` a node reconciles with one peer. A random
 * connected peer may share no topic with it (the round is then wasted), so each round:
 *
 * - takes the next topic this node joined, in turn (a topic without subscribed peers is skipped,
 *   at most one pass over the topics per round);
 * - takes the next peer subscribed to that topic, in turn (peers sorted by id, a cursor per topic),
 *   so every subscriber is asked within as many rounds as the topic has subscribers;
 * - reconciles with it only the topics both have joined (its subscriptions as gossipsub knows them).
 *
 * State: one cursor per topic (at most `maxTopics`), nothing per peer.
 */

export interface AntiEntropySources {
  /** the topics this node joined */
  topics: () => readonly string[]
  /** peer ids subscribed to the topic that this node is connected to */
  subscribers: (topic: string) => readonly string[]
}

export interface AntiEntropyRound { readonly peer: string, readonly topics: readonly string[] }

export interface AntiEntropy {
  /** The next round's peer and the topics to reconcile with it; undefined when no joined topic has a subscribed peer. */
  next: () => AntiEntropyRound | undefined
}

export function createAntiEntropy (src: AntiEntropySources): AntiEntropy {
  let topicCursor = 0
  const peerCursor = new Map<string, number>()
  return {
    next () {
      const topics = [...src.topics()].sort()
      // forget the cursors of topics left (bounded by the joined topics)
      for (const t of peerCursor.keys()) if (!topics.includes(t)) peerCursor.delete(t)
      for (let k = 0; k < topics.length; k++) {
        const topic = topics[(topicCursor + k) % topics.length]!
        const subs = [...src.subscribers(topic)].sort()
        if (subs.length === 0) continue
        topicCursor = (topicCursor + k + 1) % topics.length
        const c = peerCursor.get(topic) ?? 0
        const peer = subs[c % subs.length]!
        peerCursor.set(topic, (c + 1) % subs.length)
        const shared = topics.filter(t => t === topic || src.subscribers(t).includes(peer))
        return { peer, topics: shared }
      }
      return undefined
    },
  }
}
