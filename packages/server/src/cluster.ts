/**
 * Cluster membership, as far as a relay needs it: which other nodes share its Store and backplane,
 * and when each was last heard. Each node says `node:heartbeat` on the backplane every
 * `clusterHeartbeatMs`; any message from a node counts as hearing it. A node not heard for
 * `clusterPeerTimeoutMs` (it died without a word: kill -9, a cut network) is dropped, and what it
 * said of its agents' presence is undone here (`onPeerGone`): every node does so on its own clock,
 * so those agents go offline cluster-wide. A node that stops cleanly says `node:leaving` last
 * (`leave()`, after its agents' offline presence and before its backplane stops): the others drop
 * it at once (`onPeerLeft`), not counted as lost. Nothing durable depends on this: messages are in
 * the Store, and a node that comes back (a new id after a restart) says its agents are online again.
 */
import type { Backplane, BackplaneMessage } from './backplane.ts'

/** Peers one node keeps at most (a bound on what a bus may make it remember); more are not listed. @default 256 */
export const MAX_CLUSTER_PEERS = 256

export interface ClusterPeer {
  /** the peer's node id (random per process start) */
  readonly id: string
  /** when this node last heard it (ms since the epoch, this node's clock) */
  readonly lastSeen: number
}

export interface ClusterInit {
  node: string
  backplane: Backplane
  now: () => number
  heartbeatMs: number
  peerTimeoutMs: number
  /** a peer was not heard for peerTimeoutMs: undo what it said */
  onPeerGone: (id: string) => void
  /** a peer said `node:leaving` (a clean stop): undo what it said, at once */
  onPeerLeft?: (id: string) => void
  /**
   * This node's own timer ran more than peerTimeoutMs late (a blocked event loop, a paused
   * process): the others have dropped it meanwhile, so it tells again what they undid.
   */
  onStalled?: () => void
  onError: (err: unknown) => void
  maxPeers?: number
}

export class ClusterView {
  private readonly peers = new Map<string, number>()
  /** ids that said node:leaving (at most maxPeers, the oldest forgotten first): a straggler from one does not make it a peer again */
  private readonly left = new Set<string>()
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly off: () => void
  private readonly max: number
  private lastTick: number | undefined
  /** peers dropped for silence since start */
  peersLost = 0
  /** peers that said they were leaving (a clean stop) since start */
  peersLeft = 0

  constructor (private readonly init: ClusterInit) {
    this.max = init.maxPeers ?? MAX_CLUSTER_PEERS
    this.off = init.backplane.subscribe((m) => { this.heard(m) })
  }

  get node (): string { return this.init.node }

  /** Says the first heartbeat and starts the timer (heartbeat, then the sweep of silent peers). */
  start (): void {
    this.beat()
    this.lastTick = this.init.now()
    this.timer = setInterval(() => { this.tick() }, this.init.heartbeatMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.off()
  }

  /**
   * Says `node:leaving` (the last thing this node says: call it after its agents' offline presence
   * was published and before the backplane stops), then stops. Never rejects: a backplane that is
   * away or stopped means the others drop this node after peerTimeoutMs instead.
   */
  async leave (): Promise<void> {
    this.stop()
    await this.init.backplane.publish({ type: 'node:leaving', origin: this.init.node }).catch((err: unknown) => { this.init.onError(err) })
  }

  /** Other nodes heard within peerTimeoutMs, most recently heard first. */
  list (): ClusterPeer[] {
    return [...this.peers].map(([id, lastSeen]) => ({ id, lastSeen })).sort((a, b) => b.lastSeen - a.lastSeen)
  }

  /** One heartbeat and one sweep (the timer's work; tests call it with a fake clock). */
  tick (): void {
    this.beat()
    const t = this.init.now()
    const stalled = this.lastTick !== undefined && t - this.lastTick > this.init.peerTimeoutMs
    this.lastTick = t
    if (stalled) {
      // what this node did not read while it stood still is no sign of the peers' death
      for (const id of this.peers.keys()) this.peers.set(id, t)
      try { this.init.onStalled?.() } catch (err) { this.init.onError(err) }
      return
    }
    for (const [id, at] of [...this.peers]) {
      if (t - at < this.init.peerTimeoutMs) continue
      this.peers.delete(id)
      this.peersLost++
      try { this.init.onPeerGone(id) } catch (err) { this.init.onError(err) }
    }
  }

  private beat (): void {
    this.init.backplane.publish({ type: 'node:heartbeat', origin: this.init.node }).catch((err: unknown) => { this.init.onError(err) })
  }

  private heard (m: BackplaneMessage): void {
    if (m.origin === this.init.node) return
    if (m.type === 'node:leaving') {
      // a clean stop: not a loss; its agents go offline here as if it had gone silent
      if (this.peers.delete(m.origin)) this.peersLeft++
      this.left.delete(m.origin)
      this.left.add(m.origin)
      if (this.left.size > this.max) this.left.delete(this.left.values().next().value!)
      try { this.init.onPeerLeft?.(m.origin) } catch (err) { this.init.onError(err) }
      return
    }
    // a node id is random per start: one that said it was leaving is not coming back
    if (this.left.has(m.origin)) return
    if (!this.peers.has(m.origin) && this.peers.size >= this.max) return
    this.peers.set(m.origin, this.init.now())
  }
}
