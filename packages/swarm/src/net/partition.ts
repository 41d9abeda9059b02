/**
 * Partition detection from a node's own view (docs/protocol.md, "Swarm topics": partitions). At
 * every gossip round the node counts its connected peers. It remembers a reference: the highest
 * count of the recent rounds, decaying slowly (so ordinary churn lowers it without an alarm). When
 * the count falls to `(1 - lossShare) × reference` or below, having had at least `minPeers`, the
 * node reports `partition:detected`; when the count is back to `healShare × ` the pre-partition
 * reference, it reports `partition:healed` with the duration. Pure: the caller passes the count and
 * the time, so a test drives it round by round.
 */

/** How much of the reference survives one round without a new high (about 1% a round). */
export const REFERENCE_DECAY_PER_ROUND = 0.99

export type PartitionEvent =
  | { type: 'detected', at: number, peers: number, reference: number }
  | { type: 'healed', at: number, peers: number, reference: number, durationMs: number }

export interface PartitionDetectorInit {
  /** share of the reference that must be lost to report a partition (0..1) */
  lossShare: number
  /** share of the pre-partition reference that must be back to report the heal (0..1) */
  healShare: number
  /** fewest peers of reference for detection to apply */
  minPeers: number
}

export interface PartitionDetector {
  /** Feeds one round's count; returns the event it causes, if any. */
  observe: (peers: number, now: number) => PartitionEvent | undefined
  readonly partitioned: boolean
  /** when the open partition was detected (undefined when none is open) */
  readonly since: number | undefined
  readonly reference: number
}

export function createPartitionDetector (init: PartitionDetectorInit): PartitionDetector {
  let reference = 0
  let open: { at: number, reference: number } | undefined
  return {
    observe (peers, now) {
      if (open === undefined) {
        // compared with the reference of the rounds before this one: the loss is measured against
        // what the node had, not against a reference this very round already lowered
        const had = reference
        reference = Math.max(peers, reference * REFERENCE_DECAY_PER_ROUND)
        if (had >= init.minPeers && peers <= (1 - init.lossShare) * had) {
          open = { at: now, reference: had }
          return { type: 'detected', at: now, peers, reference: had }
        }
        return undefined
      }
      if (peers >= Math.ceil(init.healShare * open.reference)) {
        const ev: PartitionEvent = { type: 'healed', at: now, peers, reference: open.reference, durationMs: now - open.at }
        reference = Math.max(peers, open.reference * init.healShare)
        open = undefined
        return ev
      }
      return undefined
    },
    get partitioned () { return open !== undefined },
    get since () { return open?.at },
    get reference () { return open?.reference ?? reference },
  }
}
