/**
 * Direct links for a connection (`connect({ p2p })`, docs/protocol.md §29): the agent's libp2p
 * node, the direct delivery protocol served into the connection's inbound path, and the direct
 * sends the connection's outbox offers before the relay. Loaded by connect() with a dynamic
 * import only when p2p is on, so a connection without it (the CLI's other commands, a browser)
 * never loads libp2p.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { isAmid, type Identity } from '@agentmesh/crypto'
import {
  DIRECT_DEFAULTS, DirectSender, createAgentNode, peerIdFromAmid, serveDirect, amidFromPeerId, findPeer, sealPeerRecord, publishableAddrs, iceServersFromEnv, parseIceServers,
  type AgentNode, type DirectLimits, type IceServer,
} from '@agentmesh/p2p'
import { toB64u } from '@agentmesh/crypto'
import { restCall } from './api.ts'
import type { ConnectionImpl, DirectPath, DirectSendResult } from './connection.ts'
import type { P2POptions, PeerInfo } from './types.ts'

/** How long a direct send waits for the peer's ack before the envelope goes through the relay (ms). */
export const DEFAULT_DIRECT_ACK_TIMEOUT_MS = 2_000
/** Envelopes received directly and not yet processed, at most: past it a direct send is refused (retryable) and takes the relay. */
export const DEFAULT_MAX_DIRECT_PENDING = 1_024
/** Addresses a peer is known by, at most; peers in the address book at most. */
export const MAX_PEER_ADDRS = 16
export const MAX_KNOWN_PEERS = 4_096
/** What `resolve` answered is kept this long (ms), an empty answer too. */
const RESOLVE_TTL_MS = 60_000
/** `peers()` waits at most this long for each ping (ms). */
const PING_TIMEOUT_MS = 1_000

const errorCode = /^AM_ERR_[A-Z0-9_]{1,48}$/

interface Resolved { addrs: string[], at: number }

export class P2PLinks implements DirectPath {
  private readonly book = new LruMap<string, string[]>(MAX_KNOWN_PEERS)
  private readonly resolved = new LruMap<string, Resolved>(MAX_KNOWN_PEERS)
  /** peers this agent exchanged direct messages with (for peers()) */
  private readonly talked = new LruMap<string, number>(MAX_KNOWN_PEERS)
  readonly ackTimeoutMs: number
  readonly maxPending: number

  private constructor (
    readonly node: AgentNode,
    readonly sender: DirectSender,
    private readonly stopServing: () => Promise<void>,
    private readonly opts: P2POptions,
  ) {
    this.ackTimeoutMs = opts.directAckTimeoutMs ?? DEFAULT_DIRECT_ACK_TIMEOUT_MS
    this.maxPending = opts.maxDirectPending ?? DEFAULT_MAX_DIRECT_PENDING
    for (const [amid, addrs] of Object.entries(opts.peers ?? {})) this.addPeer(amid, addrs)
  }

  /** Starts the node, serves direct deliveries into `conn` (when it delivers), and attaches itself to it. */
  static async start (conn: ConnectionImpl, identity: Identity, opts: P2POptions, deliver: boolean): Promise<P2PLinks> {
    checkOptions(opts)
    const limits: Partial<DirectLimits> = { ...opts.limits }
    // ICE servers: the option, else the environment (AGENTMESH_ICE_SERVERS, AGENTMESH_TURN_*; docs/protocol.md §29)
    const iceServers: IceServer[] | undefined = opts.iceServers !== undefined ? parseIceServers(opts.iceServers, 'connect option p2p.iceServers') : iceServersFromEnv()
    const node = await createAgentNode({
      keys: identity,
      ...(opts.listen === undefined ? {} : { listen: opts.listen }),
      ...(opts.bootstrap === undefined ? {} : { bootstrap: opts.bootstrap }),
      ...(iceServers === undefined ? {} : { iceServers }),
    })
    try {
      // without a resolve hook of its own, a peer is found through the DHT (bootstrap peers), else its signed record in the registry
      const resolve = opts.resolve ?? (async (amid: string): Promise<string[]> => await discover(conn, node, amid, opts.bootstrap ?? []))
      return await P2PLinks.serve(conn, node, { ...opts, resolve }, limits, deliver)
    } catch (err) {
      await node.stop()
      throw err
    }
  }

  private static async serve (conn: ConnectionImpl, node: AgentNode, opts: P2POptions, limits: Partial<DirectLimits>, deliver: boolean): Promise<P2PLinks> {
    let links: P2PLinks | undefined
    const stop = deliver
      ? await serveDirect(node, (from, env, bytes) => {
        const a = conn.receiveDirect(from, env, bytes, limits.maxEnvelopeBytes ?? DIRECT_DEFAULTS.maxEnvelopeBytes, links?.maxPending ?? DEFAULT_MAX_DIRECT_PENDING)
        if (a.ok) links?.talked.set(from, Date.now())
        return a
      }, { limits })
      : async () => {}
    links = new P2PLinks(node, new DirectSender(node, { limits }), stop, opts)
    conn.attachDirect(links)
    // the configured peers are dialled at once (in the background), so the first message finds its link open
    for (const [amid, addrs] of Object.entries(opts.peers ?? {})) void links.sender.connect(amid, addrs)
    return links
  }

  /** Where this agent's node listens (multiaddrs with its peer id). */
  addresses (): string[] { return this.node.getMultiaddrs().map(m => m.toString()) }

  /**
   * Publishes where this agent listens in its registry profile, as a peer record signed with its
   * AMID key (PUT /api/v1/agents/{amid}/p2p, docs/protocol.md §29), unless `publish: false` keeps
   * the addresses private (peers then need them from `peers`, the DHT or a resolve hook). Answers
   * the addresses published, none when there was nothing to publish.
   */
  async publish (conn: ConnectionImpl, identity: Identity): Promise<string[]> {
    if (this.opts.publish === false) return []
    const addrs = publishableAddrs(this.node)
    if (addrs.length === 0) return []
    const record = await sealPeerRecord(identity, addrs)
    const stored = await restCall(conn.request.bind(conn), 'putP2pRecord', `/api/v1/agents/${identity.amid}/p2p`, { record: toB64u(record) })
    return stored.addrs
  }

  /** Tells the connection where `amid` can be reached (a test, a discovery hook, a configured peer). */
  addPeer (amid: string, addrs: readonly string[]): void {
    checkPeer(amid, addrs)
    this.book.set(amid, addrs.slice(0, MAX_PEER_ADDRS))
    this.resolved.delete(amid)
  }

  async send (to: string, id: string, envText: string): Promise<DirectSendResult> {
    const addrs = await this.addrsOf(to)
    const r = await this.sender.send(to, id, envText, addrs, this.ackTimeoutMs)
    if (r.type === 'ack') this.talked.set(to, Date.now())
    if (r.type === 'refused') return { type: 'refused', code: errorCode.test(r.code) ? r.code : ErrorCode.Internal, message: r.message }
    return r
  }

  /** Stops sending on the direct link to `peer` (its sends in flight take the relay). */
  async cut (peer: string): Promise<void> { await this.sender.close(peer) }

  private async addrsOf (amid: string): Promise<string[]> {
    const known = this.book.get(amid)
    if (known !== undefined) return known
    const resolve = this.opts.resolve
    if (resolve === undefined) return []
    const r = this.resolved.get(amid)
    if (r !== undefined && Date.now() - r.at < RESOLVE_TTL_MS) return r.addrs
    let addrs: string[] = []
    try {
      const t = AbortSignal.timeout(this.opts.limits?.dialTimeoutMs ?? DIRECT_DEFAULTS.dialTimeoutMs)
      const got = await Promise.race([Promise.resolve(resolve(amid)), new Promise<never>((_resolve, reject) => { t.addEventListener('abort', () => { reject(new Error('timeout')) }, { once: true }) })])
      addrs = Array.isArray(got) ? got.filter(a => typeof a === 'string' && a.startsWith('/')).slice(0, MAX_PEER_ADDRS) : []
    } catch {
      // no answer: no direct path for now; the relay carries the message
    }
    this.resolved.set(amid, { addrs, at: Date.now() })
    return addrs
  }

  /** The peers this agent knows of through its node, with their path and a fresh round-trip time. */
  async peers (relayPeers: readonly string[]): Promise<PeerInfo[]> {
    const amids = new Set<string>()
    for (const c of this.node.getConnections()) { const a = amidFromPeerId(c.remotePeer); if (a !== undefined) amids.add(a) }
    for (const [a] of this.book) amids.add(a)
    for (const [a] of this.talked) amids.add(a)
    for (const a of relayPeers) amids.add(a)
    const out = await Promise.all([...amids].map(async (amid): Promise<PeerInfo> => {
      const conns = this.node.getConnections(peerIdFromAmid(amid)).filter(c => c.status === 'open')
      const addrs = [...new Set([...conns.map(c => c.remoteAddr.toString()), ...(this.book.get(amid) ?? []), ...(this.resolved.get(amid)?.addrs ?? [])])].slice(0, MAX_PEER_ADDRS)
      if (conns.length === 0) return { amid, path: 'relay', rttMs: null, addrs }
      const circuit = conns.every(c => c.remoteAddr.toString().includes('/p2p-circuit') || c.limits !== undefined)
      let rttMs: number | null = null
      try { rttMs = await this.node.services.ping.ping(peerIdFromAmid(amid), { signal: AbortSignal.timeout(PING_TIMEOUT_MS) }) } catch { rttMs = conns.find(c => c.rtt !== undefined)?.rtt ?? null }
      return { amid, path: circuit ? 'relayed-circuit' : 'direct', rttMs, addrs }
    }))
    return out.sort((a, b) => a.amid < b.amid ? -1 : a.amid > b.amid ? 1 : 0)
  }

  async stop (): Promise<void> {
    await this.sender.stop()
    await this.stopServing()
    await this.node.stop()
  }
}

/**
 * Where `amid` listens: through the DHT when a bootstrap peer answers, else from the peer record it
 * signed in the registry (read through this connection's relay, verified here: the relay can hide
 * or replay a record, not forge one). The fallback is said as a warning; none found answers none
 * (the relay carries the message).
 */
async function discover (conn: ConnectionImpl, node: AgentNode, amid: string, bootstrap: readonly string[]): Promise<string[]> {
  try {
    const found = await findPeer(node, amid, {
      bootstrap,
      registry: async (peer) => {
        try {
          const profile = await conn.request('GET', `/api/v1/agents/${encodeURIComponent(peer)}`) as { p2p?: { record?: unknown } | null }
          return typeof profile.p2p?.record === 'string' ? profile.p2p.record : undefined
        } catch (err) {
          if (AgentMeshError.is(err, ErrorCode.NotFound)) return undefined
          throw err
        }
      },
    })
    if (found.notice !== undefined) conn.warn(new AgentMeshError(ErrorCode.NotFound, found.notice))
    return found.addrs.map(a => a.toString())
  } catch (err) {
    if (AgentMeshError.is(err) && err.code !== ErrorCode.NotFound) conn.warn(err)
    return []
  }
}

function checkOptions (o: P2POptions): void {
  const posInt = (name: string, v: unknown): void => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option p2p.${name} must be a positive integer, got ${String(v)}`)
  }
  posInt('directAckTimeoutMs', o.directAckTimeoutMs)
  posInt('maxDirectPending', o.maxDirectPending)
  for (const [k, v] of Object.entries(o.limits ?? {})) {
    if (!(k in DIRECT_DEFAULTS)) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option p2p.limits.${k} is not a direct-link bound (${Object.keys(DIRECT_DEFAULTS).join(', ')})`)
    posInt(`limits.${k}`, v)
  }
  if (o.listen !== undefined && (!Array.isArray(o.listen) || o.listen.some(a => typeof a !== 'string' || !a.startsWith('/')))) throw new AgentMeshError(ErrorCode.InvalidArgument, 'connect option p2p.listen must be a list of multiaddrs ("/ip4/127.0.0.1/tcp/0")')
  if (o.peers !== undefined && (typeof o.peers !== 'object' || o.peers === null)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'connect option p2p.peers must map AMIDs to multiaddrs')
  for (const [amid, addrs] of Object.entries(o.peers ?? {})) checkPeer(amid, addrs)
  if (o.bootstrap !== undefined && (!Array.isArray(o.bootstrap) || o.bootstrap.length > MAX_PEER_ADDRS || o.bootstrap.some(a => typeof a !== 'string' || !a.startsWith('/') || !a.includes('/p2p/') || a.length > 512))) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option p2p.bootstrap must be at most ${MAX_PEER_ADDRS} multiaddrs ending in /p2p/<peer id> ("/ip4/10.0.0.5/tcp/4001/p2p/12D3Koo…")`)
  }
  if (o.publish !== undefined && typeof o.publish !== 'boolean') throw new AgentMeshError(ErrorCode.InvalidArgument, 'connect option p2p.publish must be true or false')
  if (o.resolve !== undefined && typeof o.resolve !== 'function') throw new AgentMeshError(ErrorCode.InvalidArgument, 'connect option p2p.resolve must be a function (amid) => multiaddrs')
}

function checkPeer (amid: string, addrs: unknown): void {
  if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `p2p.peers: "${String(amid).slice(0, 80)}" is not an AMID`)
  if (!Array.isArray(addrs) || addrs.some(a => typeof a !== 'string' || !a.startsWith('/') || a.length > 512)) throw new AgentMeshError(ErrorCode.InvalidArgument, `p2p.peers: the addresses of ${amid} must be multiaddrs ("/ip4/…/tcp/…")`)
}
