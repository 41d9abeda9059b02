/**
 * The discrete-event swarm simulator (docs/swarm.md, "The simulator").
 *
 * Nodes are indices; every per-node figure lives in a typed array (adjacency in an Int32Array of
 * fixed-width rows, "has message m" in a bitset, validator state per (node, author) in parallel
 * arrays), events in a binary heap over typed arrays. No object per node or per event, so
 * 1,000,000 nodes fit in a few hundred MB.
 *
 * The rules are the real ones: every honest node validates every message it receives with
 * `createValidator` from `@agentmesh/swarm` (the state it reads and writes is this file's typed
 * arrays, through the `ValidatorState` interface, one node at a time); signatures are real
 * Ed25519 signatures over real swarm messages, verified once per distinct message by
 * `memoizeVerifier`; peer scores are `peerScore` with the shared parameters; inter-region links
 * are `chooseLinks`; reconciliation after a partition or a restart is `diff` over `RangeSet`
 * summaries.
 */
import { identityFromSecret } from '@agentmesh/crypto'
import {
  RangeSet, chooseLinks, createValidator, diff, encodeSwarmMessage, memoizeVerifier, peerScore, signSwarmMessage,
  swarmMessageId, verifySwarmMessage, SWARM_SCORE_THRESHOLDS,
  type AuthorState, type SeqRange, type Summary, type SwarmMessage, type ValidateContext, type ValidatorState,
} from '@agentmesh/swarm'
import { EventHeap } from './heap.ts'
import { Rng } from './rng.ts'
import { checkScenario, regionCount, DEFAULT_SCENARIO, type ByzantineKind, type Scenario } from './scenario.ts'

export const TOPIC = 'sim'
// event kinds
const MSG = 1; const IHAVE = 2; const IWANT = 3; const REC = 4; const TICK = 5; const PUB = 6; const CUT = 7; const HEAL = 8; const DOWN = 9; const UP = 10; const IDONTWANT = 11; const FWD = 12
// node kinds
const HONEST = 0; const SILENT = 1; const FORGING = 2; const FLOODING = 3; const ECLIPSING = 4
const KIND_CODE: Record<ByzantineKind, number> = { silent: SILENT, forging: FORGING, flooding: FLOODING, eclipsing: ECLIPSING }
// message classes
const C_HONEST = 0; const C_FORGED = 1; const C_FLOOD = 2
const TICKS = 10
/** control-message sizes, bytes (protobuf framing of gossipsub RPCs, approximately) */
const IHAVE_BASE = 24; const IWANT_BASE = 24; const ID_BYTES = 24
const HOP_BINS = 256
const TIME_BIN_MS = 1

export interface Percentiles { p50: number, p90: number, p99: number, max: number }

export interface MessageFigures {
  index: number
  publisher: number
  publishedAtMs: number
  /** honest nodes expected to get it */
  expected: number
  delivered: number
  /** hops (gossip rounds) until 99.9% of the expected nodes had it; null if never */
  rounds999: number | null
  /** hops until every expected node had it; null if some never did */
  roundsFull: number | null
  time999Ms: number | null
  timeFullMs: number | null
}

export interface SimReport {
  scenario: Scenario
  nodes: number
  honestNodes: number
  byzantineNodes: Record<ByzantineKind, number>
  regions: number
  groups: number
  messages: { honest: number, forgedVariants: number, flood: number }
  delivery: {
    /** honest (node, honest message) pairs expected */
    expected: number
    delivered: number
    missed: number
    /** an honest node delivered the same message twice: must be 0 */
    duplicateDeliveries: number
    complete: boolean
  }
  /** hops of every first delivery of an honest message to an honest node */
  rounds: Percentiles
  /** ms from publication to first delivery, same population */
  timeMs: Percentiles
  perMessage: MessageFigures[]
  convergence: {
    /** worst message: hops to 99.9% */
    rounds999: number | null
    time999Ms: number | null
    roundsFull: number | null
    timeFullMs: number | null
    goalRounds: number
    goalTimeMs: number
    metRounds: boolean
    metTime: boolean
  }
  traffic: {
    /** full copies of honest messages an honest node received, per honest message (duplicates included) */
    messagesPerNodePerMessage: number
    /** bytes of full messages an honest node received per honest message */
    bytesPerNodePerMessage: number
    /** duplicates an honest node received per honest message */
    duplicatesPerNodePerMessage: number
    /** IHAVE/IWANT/reconcile bytes an honest node sent, per honest message */
    controlBytesPerNodePerMessage: number
    /** the honest node that received the most full messages, per honest message */
    maxMessagesPerNodePerMessage: number
    ihave: number
    iwant: number
    /** IDONTWANT notices sent (gossipsub v1.2, for messages of `idontwantMinBytes` and more) */
    idontwant: number
  }
  byzantine: {
    forgedAccepted: number
    forgedRejected: number
    /** flood messages an honest node accepted, on average (the per-author rate bound at work) */
    floodAcceptedPerNode: number
    /** forged and flood messages an honest node received, on average (not in `traffic`, which counts honest messages only) */
    byzantineMessagesPerNode: number
    /** mesh links honest nodes pruned because the peer's score went negative */
    prunedByScore: number
    /** of those, links to Byzantine nodes */
    prunedByzantine: number
    eclipseVictims: number
    /** honest messages eclipse victims missed */
    victimsMissed: number
  }
  partition?: { cutLinks: number, detectedNodes: number, reconciles: number, reconciledMessages: number }
  churn?: { wentDown: number, reconciles: number, reconciledMessages: number }
  /** verdicts the honest nodes' validator gave, by result:reason */
  validator: Record<string, number>
  /** Ed25519 verifications actually run (each distinct message once) */
  signatureChecks: number
  sim: { events: number, peakQueue: number, simulatedMs: number, wallMs: number, heapMB: number, rssMB: number, arrayBuffersMB: number }
}

function pctFromHist (hist: Uint32Array, total: number, q: number, scale = 1): number {
  if (total === 0) return 0
  const want = Math.ceil(q * total)
  let c = 0
  for (let i = 0; i < hist.length; i++) { c += hist[i]; if (c >= want) return i * scale }
  return (hist.length - 1) * scale
}

function percentiles (hist: Uint32Array, total: number, scale = 1): Percentiles {
  let max = 0
  for (let i = hist.length - 1; i >= 0; i--) if (hist[i] > 0) { max = i * scale; break }
  return { p50: pctFromHist(hist, total, 0.5, scale), p90: pctFromHist(hist, total, 0.9, scale), p99: pctFromHist(hist, total, 0.99, scale), max }
}

/** Runs one scenario (fields missing from `partial` come from DEFAULT_SCENARIO) and returns its figures. */
export function simulate (partial: Partial<Scenario> = {}): SimReport {
  const s = checkScenario({ ...DEFAULT_SCENARIO, ...partial })
  const wall0 = performance.now()
  const n = s.nodes
  const rng = new Rng(s.seed)
  const flood = s.mode === 'flood'
  const targetDeg = flood ? s.floodDegree : s.D
  const maxDeg = flood ? s.floodDegree : s.Dhi
  const CAP = Math.max(s.Dhi, s.floodDegree) + 2 * s.crossDegree + 2

  // ---- who is who
  const kind = new Uint8Array(n)
  const nByz = Math.round(n * s.byzantine)
  {
    const idx = new Int32Array(n)
    for (let i = 0; i < n; i++) idx[i] = i
    for (let i = 0; i < nByz; i++) {
      const j = i + rng.int(n - i)
      const t = idx[i]; idx[i] = idx[j]; idx[j] = t
      kind[idx[i]] = KIND_CODE[s.byzantineKinds[i % s.byzantineKinds.length]]
    }
  }
  const honestCount = n - nByz
  const R = regionCount(s)
  const regionStart = (r: number): number => Math.ceil(r * n / R)
  const regionOf = new Int32Array(n)
  for (let r = 0; r < R; r++) for (let i = regionStart(r); i < regionStart(r + 1); i++) regionOf[i] = r
  const G = R > s.aggregateAbove ? Math.ceil(Math.sqrt(R)) : 1
  const groupOfRegion = (r: number): number => Math.floor(r * G / R)
  const side = new Uint8Array(n)
  if (s.partition !== undefined) {
    for (let i = 0; i < n; i++) {
      side[i] = G > 1 ? (groupOfRegion(regionOf[i]) < G / 2 ? 0 : 1) : R > 1 ? (regionOf[i] < R / 2 ? 0 : 1) : (i < n / 2 ? 0 : 1)
    }
  }
  const up = new Uint8Array(n).fill(1)
  let cut = false

  // ---- the mesh: fixed-width adjacency rows, with per-link score counters
  const adj = new Int32Array(n * CAP)
  const deg = new Uint8Array(n)
  const firstDel = new Uint16Array(n * CAP)
  const invalid = new Uint8Array(n * CAP)
  // gossipsub v1.2 IDONTWANT: per mesh link, a bitmask of the messages the peer said it has (set up below, once messages are known)
  let dontWant = new Uint32Array(0)
  const BLOCK = 4
  const blocked = new Int32Array(n * BLOCK).fill(-1)
  const blockPos = new Uint8Array(n)
  const slotOfPeer = (v: number, u: number): number => {
    const b = v * CAP
    for (let k = 0; k < deg[v]; k++) if (adj[b + k] === u) return b + k
    return -1
  }
  const isBlocked = (v: number, u: number): boolean => {
    const b = v * BLOCK
    for (let k = 0; k < BLOCK; k++) if (blocked[b + k] === u) return true
    return false
  }
  const block = (v: number, u: number): void => {
    if (isBlocked(v, u)) return
    blocked[v * BLOCK + blockPos[v]] = u
    blockPos[v] = (blockPos[v] + 1) % BLOCK
  }
  const addEdge = (a: number, b: number, capA = maxDeg, capB = maxDeg): boolean => {
    if (a === b || deg[a] >= capA || deg[b] >= capB || deg[a] >= CAP || deg[b] >= CAP) return false
    if (slotOfPeer(a, b) >= 0) return false
    const sa = a * CAP + deg[a]++; adj[sa] = b; firstDel[sa] = 0; invalid[sa] = 0
    const sb = b * CAP + deg[b]++; adj[sb] = a; firstDel[sb] = 0; invalid[sb] = 0
    if (dontWant.length > 0) { dontWant[sa] = 0; dontWant[sb] = 0 }
    return true
  }
  const removeHalf = (v: number, u: number): void => {
    const k = slotOfPeer(v, u)
    if (k < 0) return
    const last = v * CAP + deg[v] - 1
    adj[k] = adj[last]; firstDel[k] = firstDel[last]; invalid[k] = invalid[last]
    if (dontWant.length > 0) dontWant[k] = dontWant[last]
    deg[v]--
  }
  const removeEdge = (a: number, b: number): void => { removeHalf(a, b); removeHalf(b, a) }
  const randomInRegion = (r: number): number => { const a = regionStart(r); return a + rng.int(regionStart(r + 1) - a) }
  const canGraft = (v: number, u: number): boolean => up[u] === 1 && (!cut || side[u] === side[v]) && !isBlocked(v, u) && !isBlocked(u, v)
  // an explicit connection graph (dialDegree > 0: each node dials that many random others, as a
  // real run's bootstrap does): mesh peers, gossip targets and a flood publish come from it
  const dial = s.dialDegree > 0
  const CC = dial ? Math.min(n - 1, 4 * s.dialDegree + 8) : 0
  const connAdj = new Int32Array(n * CC)
  const connDeg = new Uint8Array(dial ? n : 0)
  if (dial) {
    const connected = (a: number, b: number): boolean => { for (let k = 0; k < connDeg[a]; k++) if (connAdj[a * CC + k] === b) return true; return false }
    for (let i = 0; i < n; i++) {
      for (let d = 0, tries = 0; d < s.dialDegree && tries < 16 * s.dialDegree; tries++) {
        const j = rng.int(n)
        if (j === i || connected(i, j) || connDeg[i] >= CC || connDeg[j] >= CC) continue
        connAdj[i * CC + connDeg[i]++] = j; connAdj[j * CC + connDeg[j]++] = i; d++
      }
    }
  }
  const candidate = (v: number): number => dial ? (connDeg[v] === 0 ? v : connAdj[v * CC + rng.int(connDeg[v])]) : randomInRegion(regionOf[v])
  const graft = (v: number, want: number): void => {
    for (let tries = 0; deg[v] < want && tries < 8 * want; tries++) {
      const u = candidate(v)
      if (canGraft(v, u)) addEdge(v, u)
    }
  }
  for (let i = 0; i < n; i++) graft(i, targetDeg)

  // ---- regions: inter-region links (and aggregators one level up), chosen by the shared rule
  const role = new Uint8Array(n) // 1 link, 2 aggregator
  if (R > 1) {
    const linksOf: number[][] = []
    for (let r = 0; r < R; r++) {
      const ids: string[] = []
      for (let i = regionStart(r); i < regionStart(r + 1); i++) ids.push(String(i))
      linksOf.push(chooseLinks(`${TOPIC}/region/${r}`, ids, s.regionLinks).map(Number))
      for (const l of linksOf[r]) role[l] = 1
    }
    const linkCap = maxDeg + s.crossDegree
    if (G === 1) {
      for (let r = 0; r < R; r++) {
        for (const l of linksOf[r]) {
          for (let k = 0, tries = 0; k < s.crossDegree && tries < 32; tries++) {
            const r2 = rng.int(R); if (r2 === r) continue
            if (addEdge(l, linksOf[r2][rng.int(linksOf[r2].length)], linkCap, linkCap)) k++
          }
        }
      }
    } else {
      const regionsOfGroup: number[][] = Array.from({ length: G }, () => [])
      for (let r = 0; r < R; r++) regionsOfGroup[groupOfRegion(r)].push(r)
      const aggOf: number[][] = []
      for (let g = 0; g < G; g++) {
        const rs = regionsOfGroup[g]
        for (const r of rs) {
          for (const l of linksOf[r]) {
            for (let k = 0, tries = 0; k < s.crossDegree && tries < 32 && rs.length > 1; tries++) {
              const r2 = rs[rng.int(rs.length)]; if (r2 === r) continue
              if (addEdge(l, linksOf[r2][rng.int(linksOf[r2].length)], linkCap, linkCap)) k++
            }
          }
        }
        const cands = rs.flatMap(r => linksOf[r]).map(String)
        aggOf.push(chooseLinks(`${TOPIC}/group/${g}`, cands, s.aggregators).map(Number))
        for (const a of aggOf[g]) role[a] = 2
      }
      const aggCap = linkCap + s.crossDegree
      for (let g = 0; g < G; g++) {
        for (const a of aggOf[g]) {
          for (let k = 0, tries = 0; k < s.crossDegree && tries < 32; tries++) {
            const g2 = rng.int(G); if (g2 === g) continue
            if (addEdge(a, aggOf[g2][rng.int(aggOf[g2].length)], aggCap, aggCap)) k++
          }
        }
      }
    }
  }

  // ---- eclipse: victims keep Dout links of their own choosing, eclipsing nodes fill the rest
  const eclipsers: number[] = []
  for (let i = 0; i < n; i++) if (kind[i] === ECLIPSING) eclipsers.push(i)
  const victim = new Uint8Array(n)
  let victims = 0
  if (eclipsers.length > 0 && !flood) {
    const want = Math.max(1, Math.round(honestCount * s.eclipseVictims))
    for (let tries = 0; victims < want && tries < want * 20; tries++) {
      const v = rng.int(n)
      if (kind[v] !== HONEST || victim[v] === 1 || role[v] !== 0) continue
      victim[v] = 1; victims++
      while (deg[v] > s.Dout) removeEdge(v, adj[v * CAP + deg[v] - 1])
      for (let t = 0; deg[v] < s.Dhi && t < 64; t++) addEdge(v, eclipsers[rng.int(eclipsers.length)], s.Dhi, CAP)
    }
  }

  // ---- messages: real identities (from the seed), real signatures
  const msgs: SwarmMessage[] = []
  const cls: number[] = []; const origin: number[] = []; const publishAt: number[] = []; const forgedOf: number[] = []
  const authors: string[] = []; const authorNode: number[] = []; const slotOf = new Map<string, number>()
  const keyFor = (): ReturnType<typeof identityFromSecret> => {
    const secret = new Uint8Array(32)
    for (let i = 0; i < 32; i += 4) new DataView(secret.buffer).setUint32(i, rng.u32())
    return identityFromSecret(secret)
  }
  const body = (tag: string): string => (tag + ' ').padEnd(s.bodyBytes, '.')
  const publishers: number[] = []
  {
    const chosen = new Uint8Array(n)
    for (let p = 0, tries = 0; p < s.publishers && tries < 100_000; tries++) {
      const v = rng.int(n)
      if (kind[v] !== HONEST || chosen[v] === 1 || victim[v] === 1) continue
      if (s.partition !== undefined && side[v] !== p % 2) continue
      chosen[v] = 1; publishers.push(v); p++
    }
  }
  const honestIdx: number[] = []
  for (const v of publishers) {
    const id = keyFor()
    slotOf.set(id.amid, authors.length); authors.push(id.amid); authorNode.push(v)
    for (let k = 0; k < s.messagesPerPublisher; k++) {
      const at = 100 + k * s.publishIntervalMs
      const m = signSwarmMessage(id, { topic: TOPIC, seq: k + 1, body: body(`m${msgs.length}`), ts: at })
      honestIdx.push(msgs.length)
      msgs.push(m); cls.push(C_HONEST); origin.push(v); publishAt.push(at); forgedOf.push(-1)
    }
  }
  const H = honestIdx.length
  let forgedVariants = 0
  if (!flood && Array.prototype.some.call(kind, (k: number) => k === FORGING)) {
    for (const m of honestIdx) {
      const f0 = { ...msgs[m], body: 'forged: ' + String(msgs[m].body).slice(8) }
      const f = { ...f0, id: swarmMessageId(f0) } // a consistent id, the author's name and seq, no valid signature
      forgedOf[m] = msgs.length
      msgs.push(f); cls.push(C_FORGED); origin.push(-1); publishAt.push(publishAt[m]); forgedOf.push(-1)
      forgedVariants++
    }
  }
  let floodMsgs = 0
  if (!flood && s.floodCount > 0) {
    const flooders: number[] = []
    for (let i = 0; i < n && flooders.length < s.floodAuthors; i++) if (kind[i] === FLOODING) flooders.push(i)
    for (const v of flooders) {
      const id = keyFor()
      slotOf.set(id.amid, authors.length); authors.push(id.amid); authorNode.push(v)
      for (let k = 0; k < s.floodCount; k++) {
        const at = 100 + k
        msgs.push(signSwarmMessage(id, { topic: TOPIC, seq: k + 1, body: body(`flood${k}`), ts: at }))
        cls.push(C_FLOOD); origin.push(v); publishAt.push(at); forgedOf.push(-1)
        floodMsgs++
      }
    }
  }
  const M = msgs.length
  const A = authors.length
  const size = msgs.map(m => encodeSwarmMessage(m).byteLength)
  // IDONTWANT as gossipsub 17 sends it (for messages of idontwantMinBytes and more); modelled for up to 32 messages
  const idontwant = !flood && M <= 32 && size.some(b => b >= s.idontwantMinBytes)
  // a node that knows a mesh peer has a message (it sent a copy, or an IDONTWANT) does not push it there
  const holders = !flood && M <= 32 && (idontwant || s.excludeHolders)
  if (holders) dontWant = new Uint32Array(n * CAP)
  const hIndex = new Int32Array(M).fill(-1) // message index → honest ordinal
  for (let h = 0; h < H; h++) hIndex[honestIdx[h]] = h
  const mSlot = msgs.map(m => slotOf.get(m.author) as number)
  // (author, seq) → the validly signed message with that name (forged variants are not indexed)
  const seqIdx: Array<Map<number, number>> = authors.map(() => new Map())
  const slotMsgs: number[][] = authors.map(() => [])
  for (let m = 0; m < M; m++) if (cls[m] !== C_FORGED) { seqIdx[mSlot[m]].set(msgs[m].seq, m); slotMsgs[mSlot[m]].push(m) }

  // ---- per-node message state
  const W = Math.ceil(M / 32)
  const has = new Uint32Array(n * W)
  const hasBit = (v: number, m: number): boolean => (has[v * W + (m >>> 5)] & (1 << (m & 31))) !== 0
  const setHas = (v: number, m: number): void => { has[v * W + (m >>> 5)] |= (1 << (m & 31)) }
  const hopOf = new Uint8Array(n * Math.max(1, H)) // hops + 1 of an honest message at a node (0: not yet)
  const recentAt = new Float64Array(n).fill(-Infinity)
  const rxMsgs = new Uint32Array(n); const rxBytes = new Float64Array(n); const ctrlBytes = new Float64Array(n); const dups = new Uint32Array(n)
  const lastAcceptAt = new Float64Array(M).fill(-Infinity)

  // ---- the validator state of every node, as typed arrays behind the shared interface
  const stHighest = new Int32Array(n * A); const stTokens = new Float32Array(n * A); const stLast = new Float32Array(n * A); const stFlags = new Uint8Array(n * A)
  const scratch: AuthorState = { highest: 0, tokens: 0, last: 0, blocked: false }
  let node = 0
  const state: ValidatorState = {
    idAt (author, seq) {
      const slot = slotOf.get(author)
      if (slot === undefined) return undefined
      const m = seqIdx[slot].get(seq)
      return m !== undefined && hasBit(node, m) ? msgs[m].id : undefined
    },
    author (author, now, burst) {
      const k = node * A + (slotOf.get(author) as number)
      if ((stFlags[k] & 1) === 0) { scratch.highest = 0; scratch.tokens = burst; scratch.last = now; scratch.blocked = false } else {
        scratch.highest = stHighest[k]; scratch.tokens = stTokens[k]; scratch.last = stLast[k]; scratch.blocked = (stFlags[k] & 2) !== 0
      }
      return scratch
    },
    save (author, a) {
      const k = node * A + (slotOf.get(author) as number)
      stHighest[k] = a.highest; stTokens[k] = a.tokens; stLast[k] = a.last; stFlags[k] = 1 | (a.blocked ? 2 : 0)
    },
    remember () { /* the has-bitset is the memory: idAt reads it */ },
  }
  let now = 0
  const verify = memoizeVerifier(verifySwarmMessage, 4 * M + 16)
  const validator = createValidator({ topic: TOPIC, verify, now: () => now, state, ratePerS: s.authorRatePerS, burst: s.authorBurst })
  const ctx: ValidateContext = { from: undefined, size: 0 }

  // ---- figures
  const hopHist = new Uint32Array(HOP_BINS)
  const TIME_BINS = Math.ceil(s.maxTimeMs / TIME_BIN_MS) + 1
  const timeHist = new Uint32Array(TIME_BINS)
  const msgHop = new Uint32Array(Math.max(1, H) * HOP_BINS)
  const msgTime = new Uint32Array(Math.max(1, H) * TIME_BINS)
  const delivered = new Int32Array(Math.max(1, H))
  let appDuplicates = 0; let forgedAccepted = 0; let forgedRejected = 0; let floodAccepted = 0
  let prunedByScore = 0; let prunedByzantine = 0; let ihaves = 0; let iwants = 0
  let reconciles = 0; let reconciledMessages = 0; let churnReconciles = 0; let churnReconciled = 0
  let cutLinks = 0; let detected = 0; let wentDown = 0; let events = 0; let byzRx = 0

  const heap = new EventHeap(1 << 16)
  const send = (from: number, to: number, k: number, m: number, hops: number, t: number): void => {
    if (up[to] === 0 || (cut && side[from] !== side[to])) return
    if (s.loss > 0 && rng.float() < s.loss) return
    let d = regionOf[from] === regionOf[to] ? s.latencyMs : s.interRegionLatencyMs
    if (s.jitterMs > 0) d += rng.float() * s.jitterMs
    heap.push(t + d, k, to, from, m, hops)
  }
  const forwardAll = (v: number, except: number, m: number, hops: number, t: number): void => {
    const b = v * CAP
    const bit = holders && m < 32 ? (1 << m) >>> 0 : 0
    for (let k = 0; k < deg[v]; k++) {
      const w = adj[b + k]
      if (w === except || (bit !== 0 && (dontWant[b + k] & bit) !== 0)) continue
      send(v, w, MSG, m, hops, t)
    }
  }
  let idontwants = 0
  const sendDontWant = (v: number, except: number, m: number, t: number): void => {
    if (!idontwant || size[m] < s.idontwantMinBytes) return
    const b = v * CAP
    for (let k = 0; k < deg[v]; k++) {
      const w = adj[b + k]
      if (w === except) continue
      idontwants++; ctrlBytes[v] += IWANT_BASE + ID_BYTES
      send(v, w, IDONTWANT, m, 0, t)
    }
  }

  const penalise = (v: number, u: number): void => {
    const k = slotOfPeer(v, u)
    if (k < 0) { block(v, u); return } // not a mesh peer (an IWANT or reconcile answer): graylisted
    if (invalid[k] < 255) invalid[k]++
    const score = peerScore({ timeInMeshMs: 0, firstDeliveries: firstDel[k], invalidDeliveries: invalid[k], behaviourPenalty: 0 })
    if (score < 0) {
      removeEdge(v, u); prunedByScore++
      if (kind[u] !== HONEST) prunedByzantine++
      // below the gossip threshold nothing more is taken from the peer (the simulator's graylist)
      if (score < SWARM_SCORE_THRESHOLDS.gossipThreshold) block(v, u)
    }
  }

  const onMsg = (v: number, u: number, m: number, hops: number, t: number): void => {
    if (cls[m] === C_HONEST) { rxMsgs[v]++; rxBytes[v] += size[m] } else if (kind[v] === HONEST) byzRx++
    if (kind[v] !== HONEST) {
      if (hasBit(v, m)) return
      setHas(v, m)
      recentAt[v] = t
      const kv = kind[v]
      if (kv === FORGING) {
        if (forgedOf[m] >= 0) forwardAll(v, u, forgedOf[m], hops + 1, t)
      } else if (kv === FLOODING) {
        for (let r = 0; r < s.amplify; r++) forwardAll(v, u, m, hops + 1, t)
      }
      return // silent and eclipsing nodes keep everything to themselves
    }
    if (isBlocked(v, u)) return
    node = v
    const slot = mSlot[m]
    ctx.from = u === authorNode[slot] ? authors[slot] : undefined
    ctx.size = size[m]
    const verdict = validator.validate(msgs[m], ctx)
    if (verdict.result === 'accept') {
      if (hasBit(v, m)) { appDuplicates++; return }
      setHas(v, m)
      recentAt[v] = t
      lastAcceptAt[m] = t
      const c = cls[m]
      if (c === C_HONEST) {
        const h = hIndex[m]
        const hp = Math.min(hops, HOP_BINS - 1)
        hopOf[v * H + h] = hp + 1
        const dt = Math.min(Math.round((t - publishAt[m]) / TIME_BIN_MS), TIME_BINS - 1)
        hopHist[hp]++; timeHist[dt]++; msgHop[h * HOP_BINS + hp]++; msgTime[h * TIME_BINS + dt]++; delivered[h]++
      } else if (c === C_FORGED) forgedAccepted++
      else floodAccepted++
      const k = slotOfPeer(v, u)
      if (k >= 0 && firstDel[k] < 65535) firstDel[k]++
      sendDontWant(v, u, m, t)
      // the push to the mesh leaves after the node's processing time (validation, framing)
      if (s.processingMs > 0 || s.excludeHolders) heap.push(t + s.processingMs, FWD, v, u, m, hops + 1)
      else forwardAll(v, u, m, hops + 1, t)
    } else if (verdict.result === 'reject') {
      if (cls[m] === C_FORGED) forgedRejected++
      penalise(v, u)
    } else if (verdict.reason === 'duplicate') {
      if (cls[m] === C_HONEST) dups[v]++
      if (s.excludeHolders && m < 32) { const k = slotOfPeer(v, u); if (k >= 0) dontWant[k] |= (1 << m) >>> 0 }
    }
  }

  // messages "recent" enough to be in IHAVE (the simulator's stand-in for each node's message cache window)
  let recent: number[] = []
  const gossipWindow = s.historyGossip * s.heartbeatMs
  const refreshRecent = (t: number): void => {
    recent = []
    for (let m = 0; m < M; m++) if (lastAcceptAt[m] >= t - gossipWindow) recent.push(m)
  }

  const heartbeat = (v: number, t: number): void => {
    if (up[v] === 0) return
    if (kind[v] !== HONEST) return
    if (deg[v] < s.Dlo) graft(v, targetDeg)
    if (flood || s.Dlazy === 0 || recent.length === 0 || recentAt[v] < t - gossipWindow) return
    let ids = 0
    for (const m of recent) if (hasBit(v, m)) ids++
    if (ids === 0) return
    for (let k = 0; k < s.Dlazy; k++) {
      // one gossip target outside the region (when there are regions), the others inside it
      const w = dial ? candidate(v) : k === s.Dlazy - 1 && R > 1 ? rng.int(n) : randomInRegion(regionOf[v])
      if (w === v || slotOfPeer(v, w) >= 0) continue
      ihaves++; ctrlBytes[v] += IHAVE_BASE + ID_BYTES * ids
      send(v, w, IHAVE, -1, 0, t)
    }
  }

  const onIhave = (w: number, v: number, t: number): void => {
    if (kind[w] !== HONEST || isBlocked(w, v)) return
    for (const m of recent) {
      if (hasBit(v, m) && !hasBit(w, m)) { iwants++; ctrlBytes[w] += IWANT_BASE + ID_BYTES; send(w, v, IWANT, m, 0, t) }
    }
  }

  const onIwant = (v: number, w: number, m: number, t: number): void => {
    const kv = kind[v]
    if (kv === HONEST) {
      if (!hasBit(v, m)) return
      const h = cls[m] === C_HONEST ? hIndex[m] : -1
      send(v, w, MSG, m, h >= 0 ? hopOf[v * H + h] : 0, t)
    } else if (kv === FORGING && forgedOf[m] >= 0) send(v, w, MSG, forgedOf[m], 0, t)
    // other Byzantine nodes break their promise (gossipsub's P7 would count it)
  }

  const summaryOf = (v: number): Summary => {
    const out: Record<string, SeqRange[]> = {}
    for (let a = 0; a < A; a++) {
      const set = new RangeSet()
      for (const m of slotMsgs[a]) if (hasBit(v, m)) set.add(msgs[m].seq)
      if (set.count() > 0) out[authors[a]] = set.ranges()
    }
    return out
  }
  // v asks u: "here is my summary, send me what I miss" (the answer arrives one hop later)
  const onReconcile = (v: number, u: number, t: number, churned: boolean): void => {
    if (up[v] === 0 || up[u] === 0 || kind[v] !== HONEST) return
    const mine = summaryOf(v)
    ctrlBytes[v] += JSON.stringify(mine).length
    if (churned) churnReconciles++; else reconciles++
    if (kind[u] !== HONEST) {
      // a Byzantine peer answers with its forgeries, if it has any
      if (kind[u] === FORGING) for (const m of honestIdx) if (!hasBit(v, m) && forgedOf[m] >= 0) send(u, v, MSG, forgedOf[m], 0, t)
      return
    }
    const want = diff(mine, summaryOf(u))
    for (const author of Object.keys(want)) {
      const idx = seqIdx[slotOf.get(author) as number]
      for (const [lo, hi] of want[author]) {
        for (let seq = lo; seq <= hi; seq++) {
          const m = idx.get(seq)
          if (m === undefined || !hasBit(u, m)) continue
          if (churned) churnReconciled++; else reconciledMessages++
          const h = cls[m] === C_HONEST ? hIndex[m] : -1
          send(u, v, MSG, m, h >= 0 ? hopOf[u * H + h] : 0, t)
        }
      }
    }
  }

  // ---- the timeline
  for (let m = 0; m < M; m++) if (cls[m] !== C_FORGED) heap.push(publishAt[m], PUB, origin[m], origin[m], m, 0)
  const cutPairsA: number[] = []; const cutPairsB: number[] = []
  if (s.partition !== undefined) {
    heap.push(s.partition.cutAtMs, CUT, -1, -1, -1, 0)
    heap.push(s.partition.healAtMs, HEAL, -1, -1, -1, 0)
  }
  if (s.churn > 0) {
    const lastPub = Math.max(...publishAt)
    const count = Math.round(n * s.churn)
    for (let c = 0; c < count; c++) {
      const v = rng.int(n)
      if (publishers.includes(v)) continue
      const at = 50 + rng.float() * lastPub
      heap.push(at, DOWN, v, v, -1, 0)
      heap.push(at + s.churnDownMs, UP, v, v, -1, 0)
    }
  }
  heap.push(0, TICK, -1, -1, 0, 0)
  const tickMs = s.heartbeatMs / TICKS
  let lastControl = 0
  for (let m = 0; m < M; m++) lastControl = Math.max(lastControl, publishAt[m])
  if (s.partition !== undefined) lastControl = Math.max(lastControl, s.partition.healAtMs)
  let simulatedMs = 0

  while (heap.size > 0) {
    heap.pop()
    const t = heap.t
    if (t > s.maxTimeMs) break
    now = t; simulatedMs = t; events++
    const k = heap.k; const v = heap.dst; const u = heap.src; const m = heap.m
    switch (k) {
      case MSG: if (up[v] === 1) onMsg(v, u, m, heap.x, t); break
      case IHAVE: if (up[v] === 1) onIhave(v, u, t); break
      case IWANT: if (up[v] === 1) onIwant(v, u, m, t); break
      case FWD: if (up[v] === 1) forwardAll(v, u, m, heap.x, t); break
      case IDONTWANT: {
        const k = slotOfPeer(v, u)
        if (k >= 0 && m < 32) dontWant[k] |= (1 << m) >>> 0
        break
      }
      case REC: onReconcile(v, u, t, heap.x === 1); break
      case PUB: {
        if (up[v] === 0) break
        if (kind[v] === HONEST) {
          // the publisher's own validator records its message (so its seq and rate state are right), then it pushes to its mesh
          node = v; ctx.from = authors[mSlot[m]]; ctx.size = size[m]
          if (validator.validate(msgs[m], ctx).result === 'accept') {
            setHas(v, m); recentAt[v] = t; lastAcceptAt[m] = t
            const h = hIndex[m]
            if (h >= 0) { hopOf[v * H + h] = 1; hopHist[0]++; timeHist[0]++; msgHop[h * HOP_BINS]++; msgTime[h * TIME_BINS]++; delivered[h]++ }
            if (dial && s.floodPublish) {
              // gossipsub's flood publish: the author sends its own message to every connected peer
              for (let k = 0; k < connDeg[v]; k++) send(v, connAdj[v * CC + k], MSG, m, 1, t)
            } else forwardAll(v, -1, m, 1, t)
          }
        } else {
          setHas(v, m)
          forwardAll(v, -1, m, 1, t)
        }
        break
      }
      case TICK: {
        const tick = m
        refreshRecent(t)
        for (let i = tick % TICKS; i < n; i += TICKS) heartbeat(i, t)
        const quiet = heap.size === 0 && t > lastControl && recent.length === 0
        if (!quiet) heap.push(t + tickMs, TICK, -1, -1, tick + 1, 0)
        break
      }
      case CUT: {
        cut = true
        // "far" peers: in another group when there are groups, else in another region; a node
        // that loses all of them has lost the rest of the swarm, however many near peers it keeps
        const far = (a: number, b: number): boolean => G > 1 ? groupOfRegion(regionOf[a]) !== groupOfRegion(regionOf[b]) : regionOf[a] !== regionOf[b]
        const lost = new Uint8Array(n); const crossLost = new Uint8Array(n); const cross = new Uint8Array(n)
        for (let a = 0; a < n; a++) {
          const b0 = a * CAP
          for (let j = 0; j < deg[a]; j++) if (far(a, adj[b0 + j])) cross[a]++
        }
        const before = deg.slice()
        for (let a = 0; a < n; a++) {
          for (let j = deg[a] - 1; j >= 0; j--) {
            const b = adj[a * CAP + j]
            if (side[a] === side[b]) continue
            if (a < b) { cutPairsA.push(a); cutPairsB.push(b); cutLinks++ }
            lost[a]++; if (far(a, b)) crossLost[a]++
            removeHalf(a, b)
          }
        }
        for (let a = 0; a < n; a++) {
          if (kind[a] !== HONEST || lost[a] === 0) continue
          if (lost[a] >= s.partitionThreshold * before[a] || (cross[a] > 0 && crossLost[a] === cross[a])) detected++
        }
        break
      }
      case HEAL: {
        cut = false
        for (let i = 0; i < cutPairsA.length; i++) {
          const a = cutPairsA[i]; const b = cutPairsB[i]
          if (up[a] === 0 || up[b] === 0) continue
          addEdge(a, b, CAP, CAP)
          // links come back one by one within a heartbeat, not all at the same instant; then both
          // ends swap summaries (a round trip) and each pulls what it still misses
          const at = t + rng.float() * s.heartbeatMs + 2 * s.latencyMs
          heap.push(at, REC, a, b, -1, 0)
          heap.push(at, REC, b, a, -1, 0)
        }
        break
      }
      case DOWN: {
        if (up[v] === 0) break
        up[v] = 0; wentDown++
        while (deg[v] > 0) removeEdge(v, adj[v * CAP + deg[v] - 1])
        break
      }
      case UP: {
        if (up[v] === 1) break
        up[v] = 1
        graft(v, targetDeg)
        for (let j = 0; j < Math.min(2, deg[v]); j++) heap.push(t + 2 * s.latencyMs, REC, v, adj[v * CAP + j], -1, 1)
        break
      }
    }
  }

  // ---- figures
  let expectedPer = 0
  for (let i = 0; i < n; i++) if (kind[i] === HONEST && up[i] === 1) expectedPer++
  let totalDelivered = 0
  for (let h = 0; h < H; h++) totalDelivered += delivered[h]
  // deliveries to nodes that are down at the end still count as delivered; expected counts nodes up at the end
  const expected = expectedPer * H
  let missed = 0
  for (let i = 0; i < n; i++) {
    if (kind[i] !== HONEST || up[i] === 0) continue
    for (let h = 0; h < H; h++) if (hopOf[i * H + h] === 0) missed++
  }
  let victimsMissed = 0
  for (let i = 0; i < n; i++) if (victim[i] === 1) for (let h = 0; h < H; h++) if (hopOf[i * H + h] === 0) victimsMissed++
  const perMessage: MessageFigures[] = []
  for (let h = 0; h < H; h++) {
    const m = honestIdx[h]
    const hh = msgHop.subarray(h * HOP_BINS, (h + 1) * HOP_BINS)
    const th = msgTime.subarray(h * TIME_BINS, (h + 1) * TIME_BINS)
    const reach = (hist: Uint32Array, q: number, scale: number): number | null => {
      const need = Math.ceil(q * expectedPer)
      let c = 0
      for (let i = 0; i < hist.length; i++) { c += hist[i]; if (c >= need) return i * scale }
      return null
    }
    perMessage.push({
      index: m,
      publisher: origin[m],
      publishedAtMs: publishAt[m],
      expected: expectedPer,
      delivered: delivered[h],
      rounds999: reach(hh, 0.999, 1),
      roundsFull: reach(hh, 1, 1),
      time999Ms: reach(th, 0.999, TIME_BIN_MS),
      timeFullMs: reach(th, 1, TIME_BIN_MS),
    })
  }
  const worst = (f: (x: MessageFigures) => number | null): number | null => {
    let w = 0
    for (const x of perMessage) { const v = f(x); if (v === null) return null; w = Math.max(w, v) }
    return w
  }
  const goalRounds = Math.ceil(Math.log2(n)) + 5
  const rounds999 = worst(x => x.rounds999)
  const time999 = worst(x => x.time999Ms)
  let rx = 0; let rxB = 0; let dup = 0; let ctrl = 0; let maxRx = 0
  for (let i = 0; i < n; i++) {
    if (kind[i] !== HONEST) continue
    rx += rxMsgs[i]; rxB += rxBytes[i]; dup += dups[i]; ctrl += ctrlBytes[i]
    if (rxMsgs[i] > maxRx) maxRx = rxMsgs[i]
  }
  const per = (x: number): number => H === 0 ? 0 : Math.round(x / honestCount / H * 100) / 100
  const byz = { silent: 0, forging: 0, flooding: 0, eclipsing: 0 }
  for (let i = 0; i < n; i++) {
    if (kind[i] === SILENT) byz.silent++; else if (kind[i] === FORGING) byz.forging++
    else if (kind[i] === FLOODING) byz.flooding++; else if (kind[i] === ECLIPSING) byz.eclipsing++
  }
  const mem = process.memoryUsage()
  const mb = (x: number): number => Math.round(x / 1048576)
  const report: SimReport = {
    scenario: s,
    nodes: n,
    honestNodes: honestCount,
    byzantineNodes: byz,
    regions: R,
    groups: G,
    messages: { honest: H, forgedVariants, flood: floodMsgs },
    delivery: { expected, delivered: totalDelivered, missed, duplicateDeliveries: appDuplicates, complete: missed === 0 && appDuplicates === 0 },
    rounds: percentiles(hopHist, totalDelivered),
    timeMs: percentiles(timeHist, totalDelivered, TIME_BIN_MS),
    perMessage,
    convergence: {
      rounds999,
      time999Ms: time999,
      roundsFull: worst(x => x.roundsFull),
      timeFullMs: worst(x => x.timeFullMs),
      goalRounds,
      goalTimeMs: 1000,
      metRounds: rounds999 !== null && rounds999 <= goalRounds,
      metTime: time999 !== null && time999 <= 1000,
    },
    traffic: {
      messagesPerNodePerMessage: per(rx),
      bytesPerNodePerMessage: per(rxB),
      duplicatesPerNodePerMessage: per(dup),
      controlBytesPerNodePerMessage: per(ctrl),
      maxMessagesPerNodePerMessage: H === 0 ? 0 : Math.round(maxRx / H * 100) / 100,
      ihave: ihaves,
      iwant: iwants,
      idontwant: idontwants,
    },
    byzantine: {
      forgedAccepted,
      forgedRejected,
      floodAcceptedPerNode: Math.round(floodAccepted / honestCount * 100) / 100,
      byzantineMessagesPerNode: Math.round(byzRx / honestCount * 100) / 100,
      prunedByScore,
      prunedByzantine,
      eclipseVictims: victims,
      victimsMissed,
    },
    validator: validator.counts(),
    signatureChecks: verify.calls(),
    sim: {
      events,
      peakQueue: heap.peak,
      simulatedMs: Math.round(simulatedMs),
      wallMs: Math.round(performance.now() - wall0),
      heapMB: mb(mem.heapUsed),
      rssMB: mb(mem.rss),
      arrayBuffersMB: mb(mem.arrayBuffers),
    },
  }
  if (s.partition !== undefined) report.partition = { cutLinks, detectedNodes: detected, reconciles, reconciledMessages }
  if (s.churn > 0) report.churn = { wentDown, reconciles: churnReconciles, reconciledMessages: churnReconciled }
  return report
}
