/**
 * Presence (§17.5): online, idle after a quiet time, offline; agents on other relay nodes as their
 * presence messages tell; events written to the agents that are online, here or elsewhere.
 */
import type { ChatEvent } from '@agentmesh/protocol'
import type { BackplaneMessage } from '../backplane.ts'
import type { ChatContext } from './context.ts'
import type { Handles } from './handles.ts'
import type { PresenceStatus } from './types.ts'

interface Presence { status: 'online' | 'idle', lastActive: number }

export class Presences {
  private readonly presence = new Map<string, Presence>()
  /** agents online on other nodes (by the nodes they are on), as their presence messages tell */
  private readonly remote = new Map<string, Set<string>>()
  private idleTimer: NodeJS.Timeout | undefined

  constructor (private readonly ctx: ChatContext, private readonly handles: Handles, private readonly idleMs: () => number) {}

  /** Checks for idle agents a few times per idle period (every 250 ms to 15 s). */
  startClock (): void {
    clearInterval(this.idleTimer)
    const tick = Math.max(250, Math.min(15_000, Math.floor(this.idleMs() / 4)))
    this.idleTimer = setInterval(() => { this.checkIdle() }, tick).unref()
  }

  stopClock (): void { clearInterval(this.idleTimer) }

  isOnline (amid: string): boolean { return this.presence.has(amid) }

  /** Another node says an agent came or went there. */
  fromNode (m: Extract<BackplaneMessage, { type: 'presence' }>): void {
    const nodes = this.remote.get(m.amid) ?? new Set<string>()
    if (m.status === 'online') nodes.add(m.origin)
    else nodes.delete(m.origin)
    if (nodes.size > 0) this.remote.set(m.amid, nodes)
    else this.remote.delete(m.amid)
    if (m.status === 'online') this.handles.noteAgent(m.amid)
  }

  /** As this node sees it; an agent connected only to other nodes shows as online. */
  presenceOf (amid: string): PresenceStatus { return this.presence.get(amid)?.status ?? (this.remote.has(amid) ? 'online' : 'offline') }

  lastActive (amid: string): number | undefined { return this.presence.get(amid)?.lastActive }

  onlineAgents (): string[] {
    if (this.remote.size === 0) return [...this.presence.keys()]
    return [...new Set([...this.presence.keys(), ...this.remote.keys()])]
  }

  /** The agent's first connection authenticated. */
  connected (amid: string): void {
    this.handles.noteAgent(amid)
    if (this.presence.has(amid)) { this.active(amid); return }
    this.presence.set(amid, { status: 'online', lastActive: this.ctx.now() })
    this.ctx.tell({ type: 'presence', origin: this.ctx.node, amid, status: 'online' })
    this.broadcastPresence(amid, 'online')
  }

  /** The agent's last connection closed. */
  disconnected (amid: string): void {
    if (!this.presence.delete(amid)) return
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
    const t = this.ctx.now()
    for (const [amid, p] of this.presence) {
      if (p.status === 'online' && t - p.lastActive >= this.idleMs()) {
        p.status = 'idle'
        this.broadcastPresence(amid, 'idle')
      }
    }
  }

  private broadcastPresence (amid: string, status: PresenceStatus): void {
    const others = this.onlineAgents().filter(a => a !== amid)
    if (others.length === 0) return
    void this.handles.handleField(amid).then((h) => { this.emit(others, { type: 'presence', amid, status, ...h, ts: this.ctx.now() }) }).catch(() => {})
  }

  /** Writes an event to those of `amids` that are online (here, or on other nodes through the backplane). */
  emit (amids: Iterable<string>, event: ChatEvent): void {
    const frame = JSON.stringify({ op: 'event', event })
    const online: string[] = []
    const elsewhere: string[] = []
    for (const a of amids) {
      if (this.presence.has(a)) online.push(a)
      // connections of the same agent on other nodes hear it too
      if (this.remote.has(a)) elsewhere.push(a)
    }
    if (online.length > 0) this.ctx.out.event(online, frame)
    if (elsewhere.length > 0) this.ctx.tell({ type: 'event', origin: this.ctx.node, amids: elsewhere, frame })
  }
}
