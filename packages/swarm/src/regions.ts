/**
 * Regions and their inter-region links (docs/swarm.md, "Regions and aggregators").
 *
 * Inside a region gossip stays local; a few nodes per region (the "links") also keep mesh peers in
 * other regions and carry messages across. Every node computes the same links from the same list
 * of healthy nodes, without talking to anyone: rendezvous (highest-random-weight) hashing of
 * (scope, node id). When a link fails, the next-ranked healthy node takes over, and every other
 * link stays where it was (that is what rendezvous hashing buys over "sort and take the first k").
 * The second level of aggregators for 100k+ nodes is the same choice one level up: the links of a
 * group of regions.
 */

/** How many inter-region links a region keeps by default. */
export const DEFAULT_REGION_LINKS = 3

/**
 * The rendezvous weight of `id` in `scope`: a 32-bit FNV-1a hash of `scope + "\n" + id`, finished
 * with a murmur3 mix. Deterministic across nodes and runs; not a security boundary (a node that
 * grinds ids to become a link gains a position, not the power to forge: messages stay signed and
 * validated at every hop).
 */
export function linkWeight (scope: string, id: string): number {
  let h = 0x811c9dc5
  const s = scope + '\n' + id
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The `k` inter-region links of a region: the `k` healthy candidates with the highest weight in
 * `scope` (typically `topic + "/" + region`), ties broken by id. Same input, same answer, on
 * every node.
 */
export function chooseLinks (scope: string, healthy: readonly string[], k = DEFAULT_REGION_LINKS): string[] {
  return healthy
    .map(id => ({ id, w: linkWeight(scope, id) }))
    .sort((a, b) => b.w - a.w || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, Math.max(0, k))
    .map(x => x.id)
}
