/**
 * The per-message cost at a real node (the "hot path"): decode the bytes, then validate (field
 * checks, content id, Ed25519 verify, the rules), for distinct messages; and the same for a
 * duplicate (which the rules drop before the signature). Printed by `npm run sim -- --hot-path`;
 * figures, not assertions.
 */
import { createIdentity } from '@agentmesh/crypto'
import { createValidator, encodeSwarmMessage, signSwarmMessage } from '@agentmesh/swarm'

export interface HotPathFigures {
  messages: number
  bodyBytes: number
  /** µs per new message: decode + full validation with Ed25519 */
  newMessageUs: number
  /** µs per duplicate: decode + validation up to the duplicate check */
  duplicateUs: number
  /** µs to sign and encode one message (the publisher's side) */
  publishUs: number
}

export function measureHotPath (count = 2000, bodyBytes = 256): HotPathFigures {
  const me = createIdentity('bench')
  const t0 = performance.now()
  const bytes = Array.from({ length: count }, (_, i) => encodeSwarmMessage(signSwarmMessage(me, { topic: 'bench', seq: i + 1, body: 'x'.repeat(bodyBytes), ts: 0 })))
  const t1 = performance.now()
  const v = createValidator({ topic: 'bench', ratePerS: 1e9, burst: 1e9 })
  for (const b of bytes) if (v.validateBytes(b).verdict.result !== 'accept') throw new Error('hot path: a valid message was not accepted')
  const t2 = performance.now()
  for (const b of bytes) v.validateBytes(b)
  const t3 = performance.now()
  const r = (x: number): number => Math.round(x * 1000 / count * 10) / 10
  return { messages: count, bodyBytes, publishUs: r(t1 - t0), newMessageUs: r(t2 - t1), duplicateUs: r(t3 - t2) }
}
