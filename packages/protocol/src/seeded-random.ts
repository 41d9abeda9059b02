/**
 * A small seeded generator (mulberry32: 32 bits of state, uniform in [0, 1)), so that a test run,
 * a chaos schedule or a swarm topology repeats with its seed. Not for anything secret.
 */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
