/**
 * Presence (§17.4): online, idle after a quiet time, offline; agents on other relay nodes as their
 * presence messages tell; events written to the agents that are online, here or elsewhere. An
 * agent without a connection that made an authenticated REST call shows as online until the quiet
 * time has passed since that call (`agentmesh who` is activity of its caller).
 *
 * A change is told to the agents that share a room with the subject other than the global one
 * (rooms and DM conversations) and to those watching it (a `watch` frame), not to everyone:
 * gathered per interval (`presenceIntervalMs`), the latest status of each agent once. The global
 * room's presence is a request (GET /api/v1/presence).
 */
import type { RelayEvent } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import type { BackplaneMessage } from '../backplane.ts'
import type { ChatContext } from './context.ts'
import type { Handles } from './handles.ts'
import type { PresenceStatus } from './types.ts'

interface Presence { status: 'online' | 'idle', lastActive: number }

/** Agents without a connection kept as recently active over REST at most (the least recent go first). */
export const MAX_REST_ACTIVE = 10_000
/** Agents one agent may watch (a `watch` frame names at most this many). @default 256 */
export const MAX_WATCHED = 256

export class Presences {
  private readonly presence = new Map<string, Presence>()
  /** agents with no connection here whose last authenticated REST call was at this time */
  private readonly restActive = new LruMap<string, number>(MAX_REST_ACTIVE)
  /** agents online on other nodes (by the nodes they are on), as their presence messages tell */
  private readonly remote = new Map<string, Set<string>>()
  private idleTimer: NodeJS.Timeout | undefined
  /** changes not told yet: the latest status of each agent and when it changed */
  private readonly pending = new Map<string, { status: PresenceStatus, ts: number }>()
  private flushTimer: NodeJS.Timeout | undefined
  /** whom each agent connected here watches, and who watches each agent (kept while the watcher is online) */
  private readonly watching = new Map<string, Set<string>>()
  private readonly watchers = new Map<string, Set<string>>()
  /** presence frames written (one per recipient agent), for the tests and the bench */
  readonly counters = { presenceEvents: 0 }

  constructor (
    private readonly ctx: ChatContext,
    private readonly handles: Handles,
    private readonly idleMs: () => number,
    /** agents sharing a room other than the global one with this agent */
    private readonly sharers: (amid: string) => Promise<Set<string>> = async () => new Set(),
    /** changes are gathered this long before they are told. @default 1 s */
    private readonly intervalMs: number = 1000,
  ) {}

  /** Checks for idle agents a few times per idle period (every 250 ms to 15 s). */
  startClock (): void {
    clearInterval(this.idleTimer)
    const tick = Math.max(250, Math.min(15_000, Math.floor(this.idleMs() / 4)))
    this.idleTimer = setInterval(() => { this.checkIdle() }, tick).unref()
  }

  stopClock (): void {
    clearInterval(this.idleTimer)
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    this.pending.clear()
  }

  isOnline (amid: string): boolean { return this.presence.has(amid) }

  /** When an agent with no connection made its last REST call, within the quiet time; else undefined. */
  private restActiveAt (amid: string): number | undefined {
    const at = this.restActive.peek(amid)
    if (at === undefined) return undefined
    if (this.ctx.now() - at < this.idleMs()) return at
    this.restActive.delete(amid)
    return undefined
  }

  /** Another node says an agent came or went there. */
  fromNode (m: Extract<BackplaneMessage, { type: 'presence' }>): void {
    const nodes = this.remote.get(m.amid) ?? new Set<string>()
    if (m.status === 'online') nodes.add(m.origin)
    else nodes.delete(m.origin)
    if (nodes.size > 0) this.remote.set(m.amid, nodes)
    else this.remote.delete(m.amid)
    if (m.status === 'online') this.handles.noteAgent(m.amid)
    // agents watching it from here hear it (those sharing a room with it are told by its node)
    const local = [...this.watchers.get(m.amid) ?? []].filter(w => this.presence.has(w))
    if (local.length === 0) return
    const status = this.presenceOf(m.amid)
    void this.handles.handleField(m.amid).then((h) => {
      this.counters.presenceEvents += local.length
      this.ctx.out.event(local, JSON.stringify({ op: 'event', event: { type: 'presence', amid: m.amid, status, ...h, ts: this.ctx.now() } }))
    }).catch(() => {})
  }

  /**
   * A node went silent (cluster.ts: its heartbeat stopped): what it said of its agents is undone,
   * as if it had said each one went offline; watchers here hear those that are now offline.
   */
  nodeGone (origin: string): number {
    let n = 0
    for (const [amid, nodes] of [...this.remote]) {
      if (!nodes.has(origin)) continue
      n++
      this.fromNode({ type: 'presence', origin, amid, status: 'offline' })
    }
    return n
  }

  /**
   * As this node sees it; an agent connected only to other nodes shows as online, and so does an
   * agent with no connection that made a REST call here within the quiet time.
   */
  presenceOf (amid: string): PresenceStatus {
    return this.presence.get(amid)?.status ?? (this.remote.has(amid) || this.restActiveAt(amid) !== undefined ? 'online' : 'offline')
  }

  lastActive (amid: string): number | undefined { return this.presence.get(amid)?.lastActive ?? this.restActiveAt(amid) }

  /** Whether the agent has an open connection, on this node or (as told on the backplane) another; REST activity does not count. */
  hasConnection (amid: string): boolean { return this.presence.has(amid) || this.remote.has(amid) }

  onlineAgents (): string[] {
    this.pruneRest()
    if (this.remote.size === 0 && this.restActive.size === 0) return [...this.presence.keys()]
    return [...new Set([...this.presence.keys(), ...this.remote.keys(), ...this.restActive.keys()])]
  }

  /**
   * The agent made an authenticated REST call: activity. A connected agent is online again if it
   * was idle; one with no connection shows as online until the quiet time has passed (no presence
   * event is pushed for it: events follow connections).
   */
  requested (amid: string): void {
    if (this.presence.has(amid)) { this.active(amid); return }
    this.restActive.set(amid, this.ctx.now())
  }

  /** Forgets REST activity older than the quiet time. */
  private pruneRest (): void {
    if (this.restActive.size === 0) return
    const t = this.ctx.now()
    for (const [amid, at] of [...this.restActive]) if (t - at >= this.idleMs()) this.restActive.delete(amid)
  }

  /**
   * The backplane may have lost presence messages (a gap): what other nodes said is forgotten, and
   * this node tells again who is online here. Every node does so after a gap (the NATS backplane
   * tells them all), so each one's view of the others is rebuilt; an agent that went offline
   * elsewhere meanwhile just drops out of it (its watchers here are not told).
   */
  resync (): void {
    this.remote.clear()
    for (const amid of this.presence.keys()) this.ctx.tell({ type: 'presence', origin: this.ctx.node, amid, status: 'online' })
  }

  /** Tells the other nodes again who is online here (this node stood still long enough for them to drop it). */
  retell (): void {
    for (const amid of this.presence.keys()) this.ctx.tell({ type: 'presence', origin: this.ctx.node, amid, status: 'online' })
  }

  /** The agent's first connection authenticated. */
  connected (amid: string): void {
    this.handles.noteAgent(amid)
    if (this.presence.has(amid)) { this.active(amid); return }
    this.restActive.delete(amid)
    this.presence.set(amid, { status: 'online', lastActive: this.ctx.now() })
    this.ctx.tell({ type: 'presence', origin: this.ctx.node, amid, status: 'online' })
    this.broadcastPresence(amid, 'online')
  }

  /** The agent's last connection closed. */
  disconnected (amid: string): void {
    if (!this.presence.delete(amid)) return
    this.watch(amid, [])
    this.ctx.tell({ type: 'presence', origin: this.ctx.node, amid, status: 'offline' })
    this.broadcastPresence(amid, 'offline')
  }

  /** The agent sent something: online again if it was idle. */
  active (amid: string): void {
    const p = this.presence.get(amid)
    if (p === undefined) return
    p.lastActive = this.ctx.now()
    if (p.status === 'idle') { p.status = 'online'; this.broadcastPresence(amid, 'online') }
  }

  private checkIdle (): void {
    this.pruneRest()
    const t = this.ctx.now()
    for (const [amid, p] of this.presence) {
      if (p.status === 'online' && t - p.lastActive >= this.idleMs()) {
        p.status = 'idle'
        this.broadcastPresence(amid, 'idle')
      }
    }
  }

  /** Queues a change: told at the end of the interval, to the agents sharing a room with `amid` or watching it. */
  private broadcastPresence (amid: string, status: PresenceStatus): void {
    this.pending.delete(amid)
    this.pending.set(amid, { status, ts: this.ctx.now() })
    if (this.flushTimer !== undefined) return
    this.flushTimer = setTimeout(() => { void this.flush() }, this.intervalMs)
    this.flushTimer.unref()
  }

  /** Tells the changes gathered in this interval (the latest of each agent); resolves once they are written. */
  async flush (): Promise<void> {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    const batch = [...this.pending]
    this.pending.clear()
    await Promise.all(batch.map(async ([amid, p]) => {
      await this.tell(amid, p.status, p.ts).catch((err) => { this.ctx.log.warn({ err }, 'presence change not told') })
    }))
  }

  private async tell (amid: string, status: PresenceStatus, ts: number): Promise<void> {
    const to = await this.sharers(amid)
    for (const w of this.watchers.get(amid) ?? []) to.add(w)
    to.delete(amid)
    if (to.size === 0) return
    this.emit(to, { type: 'presence', amid, status, ...await this.handles.handleField(amid), ts })
  }

  /**
   * The agents `watcher` wants presence changes of (besides those sharing a room with it): replaces
   * its list (an empty one ends watching), answers their presence now. Kept while it is online here.
   */
  watch (watcher: string, agents: readonly string[]): void {
    for (const a of this.watching.get(watcher) ?? []) {
      const set = this.watchers.get(a)
      set?.delete(watcher)
      if (set?.size === 0) this.watchers.delete(a)
    }
    this.watching.delete(watcher)
    const list = new Set(agents.filter(a => a !== watcher).slice(0, MAX_WATCHED))
    if (list.size === 0 || !this.presence.has(watcher)) return
    this.watching.set(watcher, list)
    for (const a of list) {
      let set = this.watchers.get(a)
      if (set === undefined) { set = new Set(); this.watchers.set(a, set) }
      set.add(watcher)
      const status = this.presenceOf(a)
      void this.handles.handleField(a).then((h) => {
        this.emit([watcher], { type: 'presence', amid: a, status, ...h, ts: this.ctx.now() })
      }).catch(() => {})
    }
  }

  /** Writes an event to those of `amids` that are online (here, or on other nodes through the backplane). */
  emit (amids: Iterable<string>, event: RelayEvent): void {
    const frame = JSON.stringify({ op: 'event', event })
    const online: string[] = []
    const elsewhere: string[] = []
    for (const a of amids) {
      if (this.presence.has(a)) online.push(a)
      // connections of the same agent on other nodes hear it too
      if (this.remote.has(a)) elsewhere.push(a)
    }
    if (event.type === 'presence') this.counters.presenceEvents += online.length + elsewhere.length
    if (online.length > 0) this.ctx.out.event(online, frame)
    if (elsewhere.length > 0) this.ctx.tell({ type: 'event', origin: this.ctx.node, amids: elsewhere, frame })
  }
}
