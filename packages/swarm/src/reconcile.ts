/**
 * Anti-entropy by per-author sequence ranges (docs/swarm.md, "Partitions and reconciliation").
 *
 * A node summarises what it knows of a topic as, per author, the contiguous ranges of sequence
 * numbers it has seen. Two nodes that meet again (a partition healed, a node came back) swap
 * summaries; each asks the other for `diff(mine, theirs)` — what the other knows and it does not —
 * and merges the answer. The merge is grow-only: the known set only grows, a message already known
 * is never delivered again, and a message held within the retention window is never lost.
 *
 * Bounds: a summary lists at most MAX_SUMMARY_AUTHORS authors and MAX_SUMMARY_RANGES_PER_AUTHOR
 * ranges per author; beyond that the two lowest ranges of an author are joined (the gap between
 * them is given up: those messages are older than anything else missing and would be past the
 * retention window of most peers). A store holds at most `maxMessages` messages and `maxBytes`
 * bytes, each for at most `retentionMs`.
 */
import {
  DEFAULT_MAX_RECONCILE_MESSAGES, DEFAULT_RETENTION_MS, DEFAULT_STORE_MAX_BYTES, DEFAULT_STORE_MAX_MESSAGES,
  MAX_SUMMARY_AUTHORS, MAX_SUMMARY_RANGES_PER_AUTHOR,
} from './constants.ts'
import type { SwarmMessage } from './message.ts'

/** An inclusive range of sequence numbers. */
export type SeqRange = readonly [from: number, to: number]

/** Per author, the sorted, disjoint, non-adjacent ranges of sequence numbers known. */
export type Summary = Readonly<Record<string, readonly SeqRange[]>>

/** What to ask a peer for: per author, the ranges it knows and we do not. */
export type Want = Summary

/**
 * A set of positive integers kept as sorted disjoint ranges (flat array: lo0, hi0, lo1, hi1 …),
 * bounded to `maxRanges` ranges (the two lowest are joined beyond it).
 */
export class RangeSet {
  private r: number[] = []
  constructor (private readonly maxRanges = MAX_SUMMARY_RANGES_PER_AUTHOR) {}

  static from (ranges: readonly SeqRange[], maxRanges?: number): RangeSet {
    const s = new RangeSet(maxRanges)
    for (const [lo, hi] of ranges) s.addRange(lo, hi)
    return s
  }

  has (seq: number): boolean {
    const r = this.r
    // binary search for the last range starting at or before seq
    let lo = 0; let hi = (r.length >> 1) - 1; let at = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (r[2 * mid] <= seq) { at = mid; lo = mid + 1 } else hi = mid - 1
    }
    return at >= 0 && seq <= r[2 * at + 1]
  }

  add (seq: number): void { this.addRange(seq, seq) }

  addRange (from: number, to: number): void {
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 1 && to >= from)) throw new RangeError(`not a sequence range: ${from}…${to}`)
    const r = this.r
    const out: number[] = []
    let i = 0
    while (i < r.length && r[i + 1] < from - 1) { out.push(r[i], r[i + 1]); i += 2 }
    let lo = from; let hi = to
    while (i < r.length && r[i] <= to + 1) { lo = Math.min(lo, r[i]); hi = Math.max(hi, r[i + 1]); i += 2 }
    out.push(lo, hi)
    while (i < r.length) { out.push(r[i], r[i + 1]); i += 2 }
    while (out.length > 2 * this.maxRanges) out.splice(1, 2) // join the two lowest: [lo0, hi1]
    this.r = out
  }

  /** How many numbers the set holds. */
  count (): number {
    let n = 0
    for (let i = 0; i < this.r.length; i += 2) n += this.r[i + 1] - this.r[i] + 1
    return n
  }

  ranges (): SeqRange[] {
    const out: SeqRange[] = []
    for (let i = 0; i < this.r.length; i += 2) out.push([this.r[i], this.r[i + 1]])
    return out
  }

  /** The ranges of `other` not in this set. */
  missingFrom (other: readonly SeqRange[]): SeqRange[] {
    const out: Array<[number, number]> = []
    for (const [lo, hi] of other) {
      let cur = lo
      for (let i = 0; i < this.r.length && cur <= hi; i += 2) {
        const a = this.r[i]; const b = this.r[i + 1]
        if (b < cur) continue
        if (a > hi) break
        if (a > cur) out.push([cur, a - 1])
        cur = b + 1
      }
      if (cur <= hi) out.push([cur, hi])
    }
    return out
  }
}

/** Checks a summary received from a peer (untrusted): shape and bounds. Throws RangeError. */
export function checkSummary (s: unknown): Summary {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new RangeError('summary: not an object')
  const entries = Object.entries(s)
  if (entries.length > MAX_SUMMARY_AUTHORS) throw new RangeError(`summary: more than ${MAX_SUMMARY_AUTHORS} authors`)
  for (const [, ranges] of entries) {
    if (!Array.isArray(ranges) || ranges.length > MAX_SUMMARY_RANGES_PER_AUTHOR) throw new RangeError(`summary: an author's ranges must be an array of at most ${MAX_SUMMARY_RANGES_PER_AUTHOR}`)
    let prev = 0
    for (const r of ranges) {
      if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1]) || r[0] <= prev || r[1] < r[0]) {
        throw new RangeError('summary: ranges must be sorted, disjoint [from, to] pairs of integers from 1')
      }
      prev = r[1]
    }
  }
  return s as Summary
}

/**
 * What to ask a peer for: per author, the ranges in `theirs` that are not in `mine`, at most
 * `maxMessages` sequence numbers in all (the lowest first: the oldest are the nearest to
 * leaving the peer's retention window).
 */
export function diff (mine: Summary, theirs: Summary, maxMessages = DEFAULT_MAX_RECONCILE_MESSAGES): Want {
  const want: Record<string, SeqRange[]> = {}
  let budget = maxMessages
  for (const author of Object.keys(theirs).sort()) {
    if (budget <= 0) break
    const missing = RangeSet.from(mine[author] ?? [], Number.MAX_SAFE_INTEGER).missingFrom(theirs[author])
    const take: SeqRange[] = []
    for (const [lo, hi] of missing) {
      if (budget <= 0) break
      const n = Math.min(hi - lo + 1, budget)
      take.push([lo, lo + n - 1])
      budget -= n
    }
    if (take.length > 0) want[author] = take
  }
  return want
}

export interface SwarmStoreInit {
  /** most messages held (default 10,000) */
  maxMessages?: number
  /** most bytes held (default 64 MiB) */
  maxBytes?: number
  /** how long a message is held after it arrived, ms (default 10 minutes) */
  retentionMs?: number
  /** the clock, ms (default Date.now) */
  now?: () => number
}

export interface SwarmStore {
  /** Records a message; true when it was not known before (deliver it), false for one already known. */
  add (m: SwarmMessage, size?: number): boolean
  /** Whether (author, seq) is known (held or seen before). */
  knows (author: string, seq: number): boolean
  /** This node's summary. */
  summary (): Summary
  /** The held messages a peer asked for (`want`), at most `max`, in author then seq order. */
  serve (want: Want, max?: number): SwarmMessage[]
  /**
   * The grow-only merge of a peer's answer: each message `accept`s (the validator, so a peer cannot
   * slip in a forged one) and not yet known is recorded and returned, once, in the order given.
   */
  merge (msgs: Iterable<SwarmMessage>, accept: (m: SwarmMessage) => boolean): SwarmMessage[]
  /** Drops what is past the retention window (the store also does it on every `add`). */
  prune (): void
  /** Messages and bytes held. */
  held (): { messages: number, bytes: number }
}

interface Held { m: SwarmMessage, at: number, size: number }

export function createSwarmStore (init: SwarmStoreInit = {}): SwarmStore {
  const maxMessages = init.maxMessages ?? DEFAULT_STORE_MAX_MESSAGES
  const maxBytes = init.maxBytes ?? DEFAULT_STORE_MAX_BYTES
  const retention = init.retentionMs ?? DEFAULT_RETENTION_MS
  const now = init.now ?? Date.now
  const known = new Map<string, RangeSet>()
  const held = new Map<string, Held>() // insertion order = arrival order
  let bytes = 0
  const key = (author: string, seq: number): string => author + '\n' + seq

  const drop = (k: string, h: Held): void => { held.delete(k); bytes -= h.size }
  const prune = (): void => {
    const cutoff = now() - retention
    for (const [k, h] of held) {
      if (h.at > cutoff && held.size <= maxMessages && bytes <= maxBytes) break
      drop(k, h)
    }
  }
  const knows = (author: string, seq: number): boolean => known.get(author)?.has(seq) ?? false
  const add = (m: SwarmMessage, size?: number): boolean => {
    if (knows(m.author, m.seq)) return false
    let set = known.get(m.author)
    if (set === undefined) {
      if (known.size >= MAX_SUMMARY_AUTHORS) known.delete(known.keys().next().value as string)
      set = new RangeSet()
      known.set(m.author, set)
    }
    set.add(m.seq)
    const s = size ?? Buffer.byteLength(JSON.stringify(m))
    held.set(key(m.author, m.seq), { m, at: now(), size: s })
    bytes += s
    prune()
    return true
  }
  return {
    add,
    knows,
    summary () {
      const out: Record<string, readonly SeqRange[]> = {}
      for (const [a, s] of known) out[a] = s.ranges()
      return out
    },
    serve (want, max = DEFAULT_MAX_RECONCILE_MESSAGES) {
      prune()
      // walk what is held (bounded), not the ranges asked for (a peer may ask for 1 … 2^53)
      const sets = new Map<string, RangeSet>()
      for (const author of Object.keys(want)) sets.set(author, RangeSet.from(want[author], Number.MAX_SAFE_INTEGER))
      const out: SwarmMessage[] = []
      for (const h of held.values()) if (sets.get(h.m.author)?.has(h.m.seq) === true) out.push(h.m)
      out.sort((a, b) => a.author < b.author ? -1 : a.author > b.author ? 1 : a.seq - b.seq)
      return out.slice(0, max)
    },
    merge (msgs, accept) {
      const out: SwarmMessage[] = []
      for (const m of msgs) {
        if (knows(m.author, m.seq) || !accept(m)) continue
        if (add(m)) out.push(m)
      }
      return out
    },
    prune,
    held: () => ({ messages: held.size, bytes }),
  }
}
