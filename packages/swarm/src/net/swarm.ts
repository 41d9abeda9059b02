/**
 * A swarm node: swarm topics over libp2p gossipsub v1.1 (docs/protocol.md, "Swarm topics").
 *
 * - Every message is a signed swarm message (`../message.ts`); gossipsub runs `StrictNoSign`, so
 *   the one signature is the author's AMID signature inside the data. Gossipsub's own signature
 *   (StrictSign) would sign with the key of the node that *published into gossipsub*, which is the
 *   author only for live messages: a message recovered by reconciliation and re-published by
 *   another node could not carry it, and a second Ed25519 signature and verify per message would
 *   double the hot path for nothing the inner signature does not already prove.
 * - The gossip id is derived from the content and the signature (`msg-id.ts`), so a forged copy
 *   cannot poison the seen cache.
 * - A topic validator runs the core's rules (`createValidator`) and answers gossipsub accept /
 *   reject / ignore: a peer that forwards forged, malformed or equivocating messages collects P4
 *   penalties (`SWARM_TOPIC_SCORE`) and is pruned, then graylisted.
 * - Accepted messages go to the topic's reconcile store (`createSwarmStore`) and its delivery log
 *   (`topic-log.ts`), each once.
 * - Partitions (`partition.ts`) and the reconcile protocol (`reconcile-protocol.ts`) recover what a
 *   side missed.
 * - Regions (`regions-net.ts`): a node with a region gossips on its region's internal topic, and
 *   its region's inter-region links also on the topic itself (the backbone).
 */
// first, and by itself: the Node 20 polyfill libp2p needs (Promise.withResolvers); a bundler
// that keeps only the used exports of @agentmesh/p2p would otherwise leave it out
import '@agentmesh/p2p/polyfill'
import { libp2pKey, amidFromPeerId } from '@agentmesh/p2p'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub, TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { SpanStatusCode } from '@opentelemetry/api'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { amidFromPublicKey } from '@agentmesh/crypto'
import { encodeSwarmMessage, signSwarmMessage, type SwarmMessage } from '../message.ts'
import { createValidator, type Validator } from '../validate.ts'
import { createSwarmStore, type SwarmStore } from '../reconcile.ts'
import { SWARM_PEER_SCORE, SWARM_SCORE_THRESHOLDS, SWARM_TOPIC_SCORE } from '../scoring.ts'
import { DEFAULT_MAX_SWARM_MESSAGE_BYTES } from '../constants.ts'
import { checkTopic, swarmLimits, type SwarmInit, type SwarmLimits } from './options.ts'
import { DecodeCache } from './msg-id.ts'
import { TopicLog, deliveryOf, type SubscribeOptions, type SwarmDelivery } from './topic-log.ts'
import { createPartitionDetector, type PartitionEvent } from './partition.ts'
import { createTelemetry, type SwarmTelemetry } from './telemetry.ts'
import { RECONCILE_PROTOCOL, handleReconcile, runReconcile, type ReconcileHost } from './reconcile-protocol.ts'
import { AUTO_REGION, REGION_PATTERN, parseGossipTopic } from './region-links.ts'
import { advertiseRegion, createRegions, resolveRegion, type Regions } from './regions-net.ts'
import { observeSeenCacheDrops, createDiscoveryClock, type DiscoveryTimes } from './gossip-observer.ts'
import { createAntiEntropy } from './anti-entropy.ts'

export interface SwarmPeer {
  readonly amid: string
  readonly peerId: string
  /** gossipsub v1.1 score this node gives the peer */
  readonly score: number
  /** the peer is in this node's mesh for the topic (it gets every message eagerly) */
  readonly mesh: boolean
}

export interface Published {
  readonly id: string
  readonly seq: number
  /** peers gossipsub handed the message to directly */
  readonly recipients: number
}

/** Typed events (`noun:verb`). */
export interface SwarmEvents {
  'partition:detected': CustomEvent<Extract<PartitionEvent, { type: 'detected' }>>
  'partition:healed': CustomEvent<Extract<PartitionEvent, { type: 'healed' }>>
  /** a reconcile exchange with one peer ended; `recovered` messages were new here */
  'reconcile:done': CustomEvent<{ peer: string, recovered: number, sent: number, topics: readonly string[] }>
  /** the reconciliation after a heal finished (every connected peer asked once) */
  'partition:converged': CustomEvent<{ ms: number, recovered: number }>
}

export interface Swarm {
  /** this node's AMID (its libp2p peer id is the same key) */
  readonly amid: string
  readonly peerId: string
  /** the node's region (with `region: 'auto'`, the one it chose) */
  readonly region: string
  /** addresses other nodes can dial (bootstrap them with these) */
  multiaddrs: () => string[]
  /** Joins a topic: subscribes in gossipsub, validates and delivers its messages. Idempotent. */
  join: (topic: string) => void
  /** Leaves a topic: its log ends, its subscribers' iterators finish. */
  leave: (topic: string) => void
  /** Signs a message as this agent (next seq of the topic) and publishes it. Joins the topic if needed. */
  publish: (topic: string, body: unknown, opts?: { type?: string }) => Promise<Published>
  /** The topic's verified messages, each once, in delivery order (joins the topic if needed). */
  subscribe: (topic: string, opts?: SubscribeOptions) => AsyncIterableIterator<SwarmDelivery>
  /** Peers subscribed to the topic that this node is connected to (all connected peers without a topic). */
  peers: (topic?: string) => SwarmPeer[]
  /** Dials a peer by multiaddr (it is remembered for redials after a partition). */
  dial: (addr: string) => Promise<void>
  /** Runs the reconcile protocol now with the given peers (default: every connected peer). Resolves to messages recovered. */
  reconcile: (peers?: readonly string[]) => Promise<number>
  /** Highest seq this node used per topic (the CLI keeps it across runs). */
  lastSeq: (topic: string) => number
  /** The topics joined. */
  topics: () => string[]
  readonly partitioned: boolean
  readonly events: EventTarget
  on: <K extends keyof SwarmEvents>(type: K, fn: (ev: SwarmEvents[K]) => void) => () => void
  close: () => Promise<void>
}

/** What the internals expose to tests and the real-node runner (not part of the public API). */
export interface SwarmInternals {
  readonly node: Libp2p<{ pubsub: GossipSub }>
  readonly gossip: GossipInternals
  /** publishes raw bytes into gossipsub as if forwarding them (tests make a forging node with it) */
  publishRaw: (topic: string, data: Uint8Array) => Promise<number>
  /** the node's regions: gossipsub topics per topic, link state */
  readonly regions: Regions
  /** peer discovery times of a joined topic (`mesh.peer_discovery_time`), absolute ms */
  discovery: (topic: string) => DiscoveryTimes | undefined
}

/** The parts of the gossipsub implementation used beyond its public interface. */
interface GossipInternals extends GossipSub {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
  score: { params: { topics: Record<string, typeof SWARM_TOPIC_SCORE> } }
}

interface TopicState {
  readonly log: TopicLog
  readonly validator: Validator
  readonly store: SwarmStore
  seq: number
}

const RAW = Symbol('swarm internals')

export function internals (s: Swarm): SwarmInternals {
  const i = (s as unknown as { [RAW]?: SwarmInternals })[RAW]
  if (i === undefined) throw new TypeError('not a swarm node')
  return i
}

/**
 * Starts a swarm node: `const s = await swarm({ keys, listen, bootstrap, region })`.
 * Options are checked before any I/O.
 */
export async function swarm (init: SwarmInit): Promise<Swarm> {
  const limits: SwarmLimits = swarmLimits(init.limits)
  const now = init.now ?? Date.now
  const startedAt = now()
  let region = init.region ?? 'default'
  if (!REGION_PATTERN.test(region)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'swarm region must be 1-32 characters of a-z 0-9 - (starting with a letter or digit)')
  const bootstrap = (init.bootstrap ?? []).map((a) => {
    try { return multiaddr(a) } catch { throw new AgentMeshError(ErrorCode.InvalidArgument, `swarm bootstrap address is not a multiaddr: ${JSON.stringify(String(a).slice(0, 80))}`) }
  })
  const lastSeqOf = (topic: string): number => {
    const n = init.lastSeq?.(topic) ?? 0
    if (!Number.isSafeInteger(n) || n < 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `swarm lastSeq(${topic}) must be an integer from 0`)
    return n
  }
  const amid = amidFromPublicKey(init.keys.publicKey)
  const author = { ...init.keys, amid } as Parameters<typeof signSwarmMessage>[0]
  const maxMessageBytes = DEFAULT_MAX_SWARM_MESSAGE_BYTES
  const decoder = new DecodeCache(maxMessageBytes)

  const whitelist = new Set(init.ipColocationWhitelist ?? [])
  const node = await createLibp2p({
    privateKey: await libp2pKey(init.keys),
    addresses: { listen: [...(init.listen ?? ['/ip4/127.0.0.1/tcp/0'])] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: limits.maxConnections, inboundConnectionThreshold: limits.inboundConnectionsPerHostPerS, maxIncomingPendingConnections: limits.maxPendingInbound },
    ...(init.connectionGater === undefined ? {} : { connectionGater: init.connectionGater }),
    nodeInfo: { userAgent: `agentmesh-swarm/1 region=${region}` },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictNoSign',
        // only gossipsub peers: floodsub has no mesh, no scores and no IHAVE/IWANT
        fallbackToFloodsub: false,
        msgIdFn: (m) => decoder.msgId(m.data, parseGossipTopic(m.topic).region === undefined ? undefined : m.topic),
        // a byte-identical copy (nearly every duplicate) is dropped before any decode (msg-id.ts); a
        // link's copy on its other topic has the same bytes, so it too is dropped there as seen
        fastMsgIdFn: (m) => decoder.fastMsgId(m.data),
        D: limits.meshDegree,
        Dlo: limits.meshDegreeLow,
        Dhi: limits.meshDegreeHigh,
        Dlazy: limits.gossipDegree,
        heartbeatInterval: limits.heartbeatMs,
        seenTTL: limits.seenTtlMs,
        doPX: true,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
        // gossipsub refuses larger data before decoding it; the validator applies the exact bound
        maxInboundDataLength: maxMessageBytes + 1024,
        scoreParams: { ...SWARM_PEER_SCORE, IPColocationFactorWhitelist: whitelist, topics: {} },
        scoreThresholds: { ...SWARM_SCORE_THRESHOLDS },
      }),
    },
  })
  const gossip = node.services.pubsub as unknown as GossipInternals
  const topics = new Map<string, TopicState>()
  const events = new EventTarget()
  const emit = <K extends keyof SwarmEvents>(type: K, detail: SwarmEvents[K]['detail']): void => { events.dispatchEvent(new CustomEvent(type, { detail })) }
  const detector = createPartitionDetector({ lossShare: limits.partitionLossShare, healShare: limits.healShare, minPeers: limits.partitionMinPeers })
  const known = new Map<string, number>() // peer id → last seen (for redials), bounded
  let closed = false
  // set once the region is known (after the bootstrap dials, for 'auto'); no topic is joined before
  let regions: Regions | undefined
  const gossipTopicsOf = (topic: string): string[] => regions?.gossipTopics(topic) ?? [topic]

  const telemetry: SwarmTelemetry = createTelemetry({
    peerCounts: () => {
      let mesh = 0
      for (const t of topics.keys()) for (const gt of gossipTopicsOf(t)) mesh += gossip.getMeshPeers(gt).length
      return { connected: node.getPeers().length, mesh }
    },
    scoreStats: () => {
      const peers = node.getPeers()
      if (peers.length === 0) return undefined
      let min = Infinity; let max = -Infinity; let sum = 0
      for (const p of peers) {
        const s = gossip.getScore(p.toString())
        min = Math.min(min, s); max = Math.max(max, s); sum += s
      }
      return { min, mean: sum / peers.length, max }
    },
  }, { ...(init.meterProvider === undefined ? {} : { meterProvider: init.meterProvider }), ...(init.tracerProvider === undefined ? {} : { tracerProvider: init.tracerProvider }) })

  // every received copy gossipsub's seen cache drops before validation (joined topics only: bounded attributes)
  // (a region's internal topic counts as its public topic)
  observeSeenCacheDrops(gossip, (gossipTopic) => { const topic = parseGossipTopic(gossipTopic).topic; if (topics.has(topic)) telemetry.duplicate(topic, 'seen-cache') })
  const discovery = createDiscoveryClock({
    startedAt,
    now,
    meshDegree: limits.meshDegree,
    meshSize: (topic) => gossipTopicsOf(topic).reduce((n, gt) => n + gossip.getMeshPeers(gt).length, 0),
    onMilestone: (topic, milestone, ms) => { telemetry.discovered(topic, milestone, ms) },
  })
  gossip.addEventListener('gossipsub:graft', (ev) => { discovery.check(parseGossipTopic((ev as CustomEvent<{ topic: string }>).detail.topic).topic) })

  /** Accepts a validated message: store, log, metrics. True when it was new here. */
  const deliver = (t: TopicState, m: SwarmMessage, via: SwarmDelivery['via'], size?: number): boolean => {
    if (!t.store.add(m, size)) {
      telemetry.duplicate(m.topic, via === 'reconcile' ? 'reconcile' : 'validator')
      return false
    }
    const at = now()
    t.log.push(deliveryOf(m, via, at))
    if (via !== 'self') {
      telemetry.delivered(m.topic, via, at - m.ts)
      telemetry.span('swarm.deliver', { 'mesh.topic': m.topic, 'mesh.via': via, 'mesh.message_id': m.id }).end()
    }
    return true
  }

  const validatorFor = (topic: string, gossipTopic: string): TopicValidatorFnLike => (peer, msg) => {
    const t = topics.get(topic)
    if (t === undefined) return TopicValidatorResult.Ignore
    const from = amidFromPeerId(peer)
    const d = decoder.decode(msg.data)
    if (!d.ok) {
      const tooLarge = AgentMeshError.is(d.error, ErrorCode.SwarmMessageTooLarge)
      telemetry.invalid(topic, tooLarge ? 'too-large' : 'malformed')
      return TopicValidatorResult.Reject
    }
    const v = t.validator.validate(d.msg, { ...(from === undefined ? {} : { from }), size: msg.data.byteLength })
    if (v.result === 'accept') {
      deliver(t, d.msg, 'gossip', msg.data.byteLength)
      regions?.forward(topic, gossipTopic, msg.data)
      return TopicValidatorResult.Accept
    }
    if (v.reason === 'duplicate') telemetry.duplicate(topic, 'validator')
    else telemetry.invalid(topic, v.reason)
    return v.result === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
  }

  const topicState = (topic: string): TopicState => {
    checkTopic(topic)
    let t = topics.get(topic)
    if (t !== undefined) return t
    if (closed) throw new AgentMeshError(ErrorCode.ConnectionClosed, 'the swarm node is closed')
    if (topics.size >= limits.maxTopics) throw new AgentMeshError(ErrorCode.InvalidArgument, `a swarm node joins at most ${limits.maxTopics} topics (limits.maxTopics)`)
    t = {
      log: new TopicLog(topic, limits.maxQueuedPerSubscriber),
      validator: createValidator({ topic, maxBytes: maxMessageBytes, now, verify: decoder.verify }),
      store: createSwarmStore({ now }),
      seq: lastSeqOf(topic),
    }
    topics.set(topic, t)
    discovery.joined(topic)
    regions!.join(topic)
    discovery.check(topic)
    return t
  }

  const host: ReconcileHost = {
    topics: () => [...topics.keys()],
    summary: (topic) => topics.get(topic)?.store.summary(),
    serve: (topic, want, max) => topics.get(topic)?.store.serve(want, max) ?? [],
    merge: (topic, msgs, fromAmid) => {
      const t = topics.get(topic)
      if (t === undefined) return []
      const fresh: SwarmMessage[] = []
      for (const m of msgs) {
        if (t.store.knows(m.author, m.seq)) { telemetry.duplicate(topic, 'reconcile'); continue }
        const v = t.validator.validate(m, { ...(fromAmid === undefined ? {} : { from: fromAmid }) })
        if (v.result !== 'accept') {
          if (v.reason === 'duplicate') telemetry.duplicate(topic, 'reconcile')
          else telemetry.invalid(topic, v.reason)
          continue
        }
        if (deliver(t, m, 'reconcile')) fresh.push(m)
      }
      telemetry.reconciled(topic, fresh.length)
      // spread what was recovered at gossip speed on this side, on each of this node's gossip
      // topics for it (same bytes, same gossip id per topic: nodes that have it drop it as a
      // duplicate without penalty)
      for (const m of fresh) for (const gt of gossipTopicsOf(topic)) void gossip.publish(gt, encodeSwarmMessage(m)).catch(() => {})
      return fresh
    },
    limits,
  }
  await node.handle(RECONCILE_PROTOCOL, (stream, connection) => handleReconcile(host, stream, connection), { maxInboundStreams: 4, maxOutboundStreams: 4 })

  /** Reconciles with each peer the given topics (default: every topic joined). */
  const reconcileWith = async (peers: readonly string[], only?: readonly string[]): Promise<number> => {
    let recovered = 0
    await Promise.all(peers.map(async (p) => {
      try {
        const asked = only ?? [...topics.keys()]
        const r = await runReconcile(host, node, peerIdFromString(p), asked)
        recovered += r.recovered
        emit('reconcile:done', { peer: amidFromPeerId(p) ?? p, recovered: r.recovered, sent: r.sent, topics: asked })
      } catch {
        // a peer that went away or answered badly: the next round asks another one
      }
    }))
    return recovered
  }

  let converging: Promise<void> | undefined
  const onPartition = (ev: PartitionEvent): void => {
    if (ev.type === 'detected') {
      telemetry.partitionDetected()
      emit('partition:detected', ev)
      return
    }
    telemetry.partitionHealed()
    emit('partition:healed', ev)
    const started = now()
    converging = reconcileWith(node.getPeers().map(String)).then((recovered) => {
      const ms = now() - started
      telemetry.converged(ms)
      emit('partition:converged', { ms, recovered })
    }).finally(() => { converging = undefined })
  }

  const redial = (): void => {
    const connected = new Set(node.getPeers().map(String))
    let budget = limits.redialPerRound
    for (const p of known.keys()) {
      if (budget <= 0) break
      if (connected.has(p)) continue
      budget--
      void node.dial(peerIdFromString(p)).catch(() => {})
    }
    if (connected.size === 0) for (const a of bootstrap) void node.dial(a).catch(() => {})
  }

  let nextAntiEntropy = limits.reconcileIntervalMs > 0 ? now() + limits.reconcileIntervalMs : Infinity
  const antiEntropy = createAntiEntropy({
    topics: () => [...topics.keys()],
    subscribers: (topic) => [...new Set(gossipTopicsOf(topic).flatMap(gt => gossip.getSubscribers(gt).map(String)))],
  })
  gossip.addEventListener('gossipsub:heartbeat', () => {
    if (closed) return
    telemetry.gossipRound()
    regions?.round()
    for (const t of topics.keys()) discovery.check(t)
    const peers = node.getPeers().length
    const ev = detector.observe(peers, now())
    if (ev !== undefined) onPartition(ev)
    if (detector.partitioned || peers < limits.meshDegreeLow) redial()
    if (now() >= nextAntiEntropy && topics.size > 0) {
      nextAntiEntropy = now() + limits.reconcileIntervalMs
      const round = antiEntropy.next()
      if (round !== undefined) void reconcileWith([round.peer], round.topics)
    }
  })
  node.addEventListener('peer:connect', (ev) => {
    const p = ev.detail.toString()
    known.delete(p)
    known.set(p, now())
    while (known.size > limits.maxKnownPeers) known.delete(known.keys().next().value as string)
    // a peer back during a partition: swap what each side missed at once
    if (detector.partitioned) void reconcileWith([p])
  })

  await Promise.allSettled(bootstrap.map(async a => await node.dial(a)))
  if (region === AUTO_REGION) {
    region = (await resolveRegion(node, { timeoutMs: limits.autoRegionTimeoutMs, maxPeers: limits.autoRegionPeers })).region
    advertiseRegion(node, region)
  }
  regions = createRegions({
    node, gossip, region, links: limits.regionLinks, validatorFor, maxKnownPeers: limits.maxKnownPeers, tagEveryRounds: limits.rttTagRounds,
  })

  const api: Swarm & { [RAW]: SwarmInternals } = {
    amid,
    peerId: node.peerId.toString(),
    region,
    multiaddrs: () => node.getMultiaddrs().map(String),
    join: (topic) => { topicState(topic) },
    leave: (topic) => {
      const t = topics.get(topic)
      if (t === undefined) return
      regions!.leave(topic)
      topics.delete(topic)
      discovery.left(topic)
      t.log.close()
    },
    async publish (topic, body, opts = {}) {
      const t = topicState(topic)
      const span = telemetry.span('swarm.publish', { 'mesh.topic': topic })
      try {
        const m = signSwarmMessage(author, { topic, seq: t.seq + 1, body, ts: now(), ...(opts.type === undefined ? {} : { type: opts.type }) })
        const data = encodeSwarmMessage(m)
        if (data.byteLength > maxMessageBytes) throw new AgentMeshError(ErrorCode.SwarmMessageTooLarge, `swarm message: ${data.byteLength} bytes, the limit is ${maxMessageBytes}`)
        const v = t.validator.validate(m, { from: amid, size: data.byteLength })
        if (v.result !== 'accept') {
          if (v.reason === 'rate') throw new AgentMeshError(ErrorCode.RateLimited, `swarm: this author's rate on ${topic} is used up; try again shortly`, { retryAfterS: 1 })
          throw new AgentMeshError(ErrorCode.InvalidSwarmMessage, `swarm: own message refused (${v.reason})`)
        }
        t.seq = m.seq
        deliver(t, m, 'self', data.byteLength)
        telemetry.published(topic)
        let recipients = 0
        for (const gt of gossipTopicsOf(topic)) recipients += (await gossip.publish(gt, data)).recipients.length
        span.setAttribute('mesh.recipients', recipients)
        return { id: m.id, seq: m.seq, recipients }
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: AgentMeshError.is(err) ? err.code : 'error' })
        throw err
      } finally {
        span.end()
      }
    },
    subscribe: (topic, opts) => topicState(topic).log.subscribe(opts),
    peers (topic) {
      const gts = topic === undefined ? [] : gossipTopicsOf(checkTopic(topic))
      const list = topic === undefined ? node.getPeers() : [...new Map(gts.flatMap(gt => gossip.getSubscribers(gt)).map(p => [p.toString(), p])).values()]
      const mesh = new Set(gts.flatMap(gt => gossip.getMeshPeers(gt)))
      return list.map((p: PeerId) => {
        const id = p.toString()
        return { amid: amidFromPeerId(p) ?? '', peerId: id, score: gossip.getScore(id), mesh: mesh.has(id) }
      }).sort((a, b) => a.amid < b.amid ? -1 : a.amid > b.amid ? 1 : 0)
    },
    async dial (addr) {
      let ma
      try { ma = multiaddr(addr) } catch { throw new AgentMeshError(ErrorCode.InvalidArgument, `not a multiaddr: ${JSON.stringify(String(addr).slice(0, 80))}`) }
      await node.dial(ma)
    },
    reconcile: async (peers) => await reconcileWith(peers ?? node.getPeers().map(String)),
    lastSeq: (topic) => topics.get(topic)?.seq ?? lastSeqOf(topic),
    topics: () => [...topics.keys()],
    get partitioned () { return detector.partitioned },
    events,
    on (type, fn) {
      const l = fn as unknown as (ev: Event) => void
      events.addEventListener(type, l)
      return () => { events.removeEventListener(type, l) }
    },
    async close () {
      if (closed) return
      closed = true
      await converging?.catch(() => {})
      for (const t of topics.values()) t.log.close()
      telemetry.close()
      regions?.close()
      await node.stop()
    },
    [RAW]: {
      node: node as unknown as Libp2p<{ pubsub: GossipSub }>,
      gossip,
      publishRaw: async (topic, data) => (await gossip.publish(topic, data)).recipients.length,
      regions: regions!,
      discovery: (topic) => discovery.times(topic),
    },
  }
  return api
}

type TopicValidatorFnLike = (peer: PeerId, msg: { data: Uint8Array }) => TopicValidatorResult
