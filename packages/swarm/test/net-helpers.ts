/** Shared set-up of the net tests: real swarm nodes on 127.0.0.1, linked deterministically. */
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { swarm, type Swarm, type SwarmInit } from '@agentmesh/swarm/net'

export const LOOPBACK = ['127.0.0.1']

/** Quick rounds for tests: the same rules, a 200 ms heartbeat. */
export const TEST_LIMITS = { heartbeatMs: 200, reconcileIntervalMs: 0 } as const

export interface Net { nodes: Swarm[], ids: Identity[] }

/**
 * `n` nodes; node i dials nodes i-1 and ⌊(i-1)/2⌋ (a chain over a binary tree: connected, a few
 * links each, no randomness).
 */
export async function startNet (n: number, extra: (i: number) => Partial<SwarmInit> = () => ({})): Promise<Net> {
  const ids: Identity[] = []
  const nodes: Swarm[] = []
  for (let i = 0; i < n; i++) {
    const id = createIdentity()
    ids.push(id)
    const bootstrap = i === 0 ? [] : [...new Set([i - 1, Math.floor((i - 1) / 2)])].map(j => nodes[j]!.multiaddrs()[0]!)
    const e = extra(i)
    nodes.push(await swarm({ keys: id, ipColocationWhitelist: LOOPBACK, ...e, bootstrap, limits: { ...TEST_LIMITS, ...e.limits } }))
  }
  return { nodes, ids }
}

export async function stopNet (net: Net): Promise<void> {
  await Promise.all(net.nodes.map(async s => await s.close()))
}

/** Polls `cond` every 25 ms until it holds; throws after `ms` with `what` (a bound, not a timing assertion). */
export async function until (cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** Reads everything a subscription yields into an array, in the background. */
export function collect<T> (it: AsyncIterableIterator<T>): T[] {
  const out: T[] = []
  void (async () => { for await (const x of it) out.push(x) })().catch(() => {})
  return out
}
