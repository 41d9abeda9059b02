/**
 * `/agentmesh/swarm-reconcile/1.0.0` (docs/protocol.md, "Swarm topics": reconcile protocol): two
 * nodes swap per-author sequence summaries and the messages each lacks, in three length-prefixed
 * JSON frames on one stream:
 *
 *   A → B  { v: 1, topics: [{ topic, summary }] }                       what A holds, per topic A joined
 *   B → A  { v: 1, topics: [{ topic, summary, messages: [text…] }] }    for the topics B joined too:
 *                                                                       what B holds, and what A lacks
 *   A → B  { v: 1, topics: [{ topic, messages: [text…] }] }             what B lacks
 *
 * `diff`, `serve` and the grow-only `merge` are the core's (`../reconcile.ts`): every message
 * received here goes through the same validator as a gossiped one, and a message already known is
 * never delivered twice. Bounds: one frame at most `maxReconcileFrameBytes`, one answer at most
 * `maxReconcileMessages` messages (the rest follows on the next round), topics at most
 * `maxTopics`, the exchange at most `reconcileTimeoutMs`.
 */
import { amidFromPeerId } from '@agentmesh/p2p'
import { lpStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { decodeSwarmMessage, encodeSwarmMessage, type SwarmMessage } from '../message.ts'
import { checkSummary, diff, type Summary, type Want } from '../reconcile.ts'
import { DEFAULT_MAX_SWARM_MESSAGE_BYTES } from '../constants.ts'
import type { SwarmLimits } from './options.ts'

export const RECONCILE_PROTOCOL = '/agentmesh/swarm-reconcile/1.0.0'

/** What the protocol needs from the node (its topics' stores and validators). */
export interface ReconcileHost {
  topics: () => string[]
  summary: (topic: string) => Summary | undefined
  serve: (topic: string, want: Want, max: number) => SwarmMessage[]
  /** validates and delivers; returns the messages that were new here */
  merge: (topic: string, msgs: SwarmMessage[], fromAmid: string | undefined) => SwarmMessage[]
  limits: SwarmLimits
}

interface Frame { v: 1, topics: Array<{ topic: string, summary?: Summary, messages?: string[] }> }

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

function parseFrame (bytes: Uint8Array, maxTopics: number): Frame {
  const f = JSON.parse(dec.decode(bytes)) as Frame
  if (f === null || typeof f !== 'object' || f.v !== 1 || !Array.isArray(f.topics) || f.topics.length > maxTopics) throw new RangeError('reconcile: bad frame')
  for (const t of f.topics) {
    if (t === null || typeof t !== 'object' || typeof t.topic !== 'string') throw new RangeError('reconcile: bad topic entry')
    if (t.summary !== undefined) checkSummary(t.summary)
    if (t.messages !== undefined && (!Array.isArray(t.messages) || t.messages.some(m => typeof m !== 'string'))) throw new RangeError('reconcile: bad messages')
  }
  return f
}

/** Messages as frame text, within the message count and the frame's byte budget. */
function pack (msgs: SwarmMessage[], budget: { bytes: number, count: number }): string[] {
  const out: string[] = []
  for (const m of msgs) {
    if (budget.count <= 0) break
    const text = new TextDecoder().decode(encodeSwarmMessage(m))
    const size = text.length + 4
    if (size > budget.bytes) break
    budget.bytes -= size
    budget.count--
    out.push(text)
  }
  return out
}

function unpack (texts: readonly string[]): SwarmMessage[] {
  const out: SwarmMessage[] = []
  for (const t of texts) {
    try { out.push(decodeSwarmMessage(enc.encode(t), { maxBytes: DEFAULT_MAX_SWARM_MESSAGE_BYTES })) } catch { /* malformed: the validator would reject it; skip */ }
  }
  return out
}

function budgetOf (limits: SwarmLimits): { bytes: number, count: number } {
  // the frame's own JSON around the messages takes a little: keep 64 KiB for it
  return { bytes: Math.max(0, limits.maxReconcileFrameBytes - 64 * 1024), count: limits.maxReconcileMessages }
}

/** B's side: answers one exchange. */
export async function handleReconcile (host: ReconcileHost, stream: Stream, connection: Connection): Promise<void> {
  const signal = AbortSignal.timeout(host.limits.reconcileTimeoutMs)
  const lp = lpStream(stream, { maxDataLength: host.limits.maxReconcileFrameBytes })
  const from = amidFromPeerId(connection.remotePeer)
  try {
    const ask = parseFrame((await lp.read({ signal })).subarray(), host.limits.maxTopics)
    const mine = new Set(host.topics())
    const budget = budgetOf(host.limits)
    const answer: Frame = { v: 1, topics: [] }
    for (const t of ask.topics) {
      if (!mine.has(t.topic) || t.summary === undefined) continue
      const summary = host.summary(t.topic)
      if (summary === undefined) continue
      const want = diff(t.summary, summary, budget.count)
      answer.topics.push({ topic: t.topic, summary, messages: pack(host.serve(t.topic, want, budget.count), budget) })
    }
    await lp.write(enc.encode(JSON.stringify(answer)), { signal })
    const back = parseFrame((await lp.read({ signal })).subarray(), host.limits.maxTopics)
    for (const t of back.topics) {
      if (mine.has(t.topic) && t.messages !== undefined) host.merge(t.topic, unpack(t.messages), from)
    }
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error('reconcile failed'))
  }
}

/** A's side: runs one exchange with `peer`, on `only` the given topics (default: every topic joined). */
export async function runReconcile (host: ReconcileHost, node: Libp2p, peer: PeerId, only?: readonly string[]): Promise<{ recovered: number, sent: number }> {
  const signal = AbortSignal.timeout(host.limits.reconcileTimeoutMs)
  const joined = host.topics()
  const topics = only === undefined ? joined : joined.filter(t => only.includes(t))
  if (topics.length === 0) return { recovered: 0, sent: 0 }
  const stream = await node.dialProtocol(peer, RECONCILE_PROTOCOL, { signal })
  const lp = lpStream(stream, { maxDataLength: host.limits.maxReconcileFrameBytes })
  const from = amidFromPeerId(peer)
  try {
    const ask: Frame = { v: 1, topics: topics.flatMap(topic => { const summary = host.summary(topic); return summary === undefined ? [] : [{ topic, summary }] }) }
    await lp.write(enc.encode(JSON.stringify(ask)), { signal })
    const answer = parseFrame((await lp.read({ signal })).subarray(), host.limits.maxTopics)
    const asked = new Set(topics)
    let recovered = 0
    const budget = budgetOf(host.limits)
    const back: Frame = { v: 1, topics: [] }
    for (const t of answer.topics) {
      if (!asked.has(t.topic)) continue
      if (t.messages !== undefined) recovered += host.merge(t.topic, unpack(t.messages), from).length
      const summary = host.summary(t.topic)
      if (t.summary === undefined || summary === undefined) continue
      const want = diff(t.summary, summary, budget.count)
      back.topics.push({ topic: t.topic, messages: pack(host.serve(t.topic, want, budget.count), budget) })
    }
    await lp.write(enc.encode(JSON.stringify(back)), { signal })
    await stream.close({ signal })
    return { recovered, sent: back.topics.reduce((n, t) => n + (t.messages?.length ?? 0), 0) }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error('reconcile failed'))
    throw err
  }
}
