/**
 * The per-message cost of a swarm node's receive path, in process, with the node's own pieces
 * (docs/swarm.md, "Figures measured here"): what gossipsub and the topic validator call for each
 * received copy, without the sockets.
 *
 * - new message: fast id (SHA-256 of the bytes) → gossip id (`msgIdFn`: decode, field checks,
 *   content id) → validator (the cached decode, the rules, Ed25519 verify with that content id)
 *   → deliver (reconcile store, delivery log);
 * - duplicate copy, byte-identical (what gossipsub forwards): the fast id, found in the cache;
 * - duplicate copy without the fast id (as before it): the full gossip id again;
 * - Ed25519 verify alone, at the same moment, to read the others against.
 *
 *   node --import tsx packages/swarm/src/net/hot-path.ts [--messages 2000] [--body 256] [--runs 5] [--json]
 *
 * Figures, not assertions: the median of `--runs` runs, each over `--messages` distinct messages.
 */
import { verify } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createIdentity, keyForAmid } from '@agentmesh/crypto'
import { encodeSwarmMessage, signSwarmMessage, swarmSigningBytes } from '../message.ts'
import { createValidator } from '../validate.ts'
import { createSwarmStore } from '../reconcile.ts'
import { DecodeCache } from './msg-id.ts'
import { TopicLog, deliveryOf } from './topic-log.ts'

export interface NodePathFigures {
  messages: number
  bodyBytes: number
  runs: number
  /** µs per new message, the whole receive path */
  newMessageUs: number
  /** µs per byte-identical duplicate copy (fast id hit) */
  duplicateUs: number
  /** µs per duplicate copy when its gossip id is computed in full (no fast id) */
  duplicateFullIdUs: number
  /** µs per Ed25519 verify alone */
  ed25519Us: number
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export function measureNodePath (opts: { messages?: number, bodyBytes?: number, runs?: number } = {}): NodePathFigures {
  const count = opts.messages ?? 2000
  const bodyBytes = opts.bodyBytes ?? 256
  const runs = opts.runs ?? 5
  const me = createIdentity()
  const msgs = Array.from({ length: count }, (_, i) => signSwarmMessage(me, { topic: 'bench', seq: i + 1, body: 'x'.repeat(bodyBytes), ts: 0 }))
  const bytes = msgs.map(encodeSwarmMessage)
  const key = keyForAmid(me.amid)
  const signing = msgs.map(m => swarmSigningBytes(m))
  const sigs = msgs.map(m => Buffer.from(m.sig, 'base64url'))
  const per = (t0: number): number => (performance.now() - t0) * 1000 / count
  const got: Record<keyof Omit<NodePathFigures, 'messages' | 'bodyBytes' | 'runs'>, number[]> = { newMessageUs: [], duplicateUs: [], duplicateFullIdUs: [], ed25519Us: [] }
  for (let r = 0; r < runs; r++) {
    const decoder = new DecodeCache(64 * 1024)
    const validator = createValidator({ topic: 'bench', ratePerS: 1e9, burst: 1e9, verify: decoder.verify })
    const store = createSwarmStore({})
    const log = new TopicLog('bench', count + 1)
    // gossipsub's fast-id cache (a map from fast id to gossip id)
    const fast = new Map<string, Uint8Array>()
    // every copy arrives in its own buffer, as from the wire
    const first = bytes.map(b => new Uint8Array(b))
    let t0 = performance.now()
    for (const data of first) {
      const f = decoder.fastMsgId(data)
      if (fast.has(f)) throw new Error('hot path: a new message hit the fast-id cache')
      fast.set(f, decoder.msgId(data))
      const d = decoder.decode(data)
      if (!d.ok || validator.validate(d.msg, { size: data.byteLength }).result !== 'accept') throw new Error('hot path: a valid message was not accepted')
      if (!store.add(d.msg, data.byteLength)) throw new Error('hot path: a new message was already stored')
      log.push(deliveryOf(d.msg, 'gossip', 0))
    }
    got.newMessageUs.push(per(t0))
    const copies = bytes.map(b => new Uint8Array(b))
    t0 = performance.now()
    for (const data of copies) if (!fast.has(decoder.fastMsgId(data))) throw new Error('hot path: a copy missed the fast-id cache')
    got.duplicateUs.push(per(t0))
    const more = bytes.map(b => new Uint8Array(b))
    t0 = performance.now()
    for (const data of more) decoder.msgId(data)
    got.duplicateFullIdUs.push(per(t0))
    t0 = performance.now()
    for (let i = 0; i < count; i++) if (!verify(null, signing[i]!, key, sigs[i]!)) throw new Error('hot path: a signature did not verify')
    got.ed25519Us.push(per(t0))
  }
  const round = (xs: number[]): number => Math.round(median(xs) * 10) / 10
  return { messages: count, bodyBytes, runs, newMessageUs: round(got.newMessageUs), duplicateUs: round(got.duplicateUs), duplicateFullIdUs: round(got.duplicateFullIdUs), ed25519Us: round(got.ed25519Us) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: o } = parseArgs({ options: { messages: { type: 'string', default: '2000' }, body: { type: 'string', default: '256' }, runs: { type: 'string', default: '5' }, json: { type: 'boolean' } } })
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      process.stderr.write(`hot-path: error AM_ERR_INVALID_ARGUMENT: --${name} must be an integer from ${min} to ${max}\n`)
      process.exit(2)
    }
    return n
  }
  const f = measureNodePath({ messages: int('messages', o.messages!, 1, 100_000), bodyBytes: int('body', o.body!, 1, 60_000), runs: int('runs', o.runs!, 1, 100) })
  process.stdout.write(o.json === true
    ? JSON.stringify(f) + '\n'
    : `node receive path (${f.messages} messages, ${f.bodyBytes}-byte bodies, median of ${f.runs} runs): new message ${f.newMessageUs} µs (Ed25519 verify alone ${f.ed25519Us} µs); ` +
      `duplicate copy ${f.duplicateUs} µs (fast id), ${f.duplicateFullIdUs} µs with the full gossip id\n`)
}
