/**
 * The console's live stream (docs/protocol.md §22.4): a WebSocket at `/dashboard/api/events`,
 * opened by the console's own page (Origin checked) with its session cookie, sending JSON frames
 * `{type, data, ts}`: `message` and `room` (a room's log grew: the page reads it through the API,
 * which applies the viewer's permissions), `presence`, the chat and operations event frames the
 * relay writes to agents (`typing`, `catastrophe_alert`, `agent_health_change`…), and `audit` (an
 * action was audited: tasks, updates, rooms). Bounded: MAX_CONSOLE_SOCKETS sockets, frames past
 * MAX_CONSOLE_BUFFERED bytes queued on a socket are dropped (counted).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { ErrorCode } from '@agentmesh/protocol'
import type { EventBus } from '../events.ts'
import type { ChatService } from '../chat.ts'
import type { Logger } from '../log.ts'
import { ConsoleSessions, sameOrigin, type ConsoleSession } from './sessions.ts'

/** Console WebSockets one node serves at most. */
export const MAX_CONSOLE_SOCKETS = 64
/** Bytes queued on one console socket past which new frames are dropped. */
export const MAX_CONSOLE_BUFFERED = 1024 * 1024
const PING_MS = 30_000

/** What the relay committed for a room, or an event frame it wrote to agents (relay-server.ts's outlet). */
export type OutletTap =
  | { kind: 'post', room: string, seq?: number }
  | { kind: 'event', amids: readonly string[], frame: string }

interface Client { ws: WebSocket, sessionId: string, session: ConsoleSession }

export class ConsoleEvents {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false })
  private readonly clients = new Set<Client>()
  private offs: Array<() => void> = []
  private timer: NodeJS.Timeout | undefined
  /** frames left out for a socket that did not keep up */
  dropped = 0

  constructor (private readonly d: {
    events: EventBus
    taps: Set<(t: OutletTap) => void>
    chat: ChatService
    sessions: ConsoleSessions
    log: Logger
    now: () => number
  }) {}

  get count (): number { return this.clients.size }

  start (): void {
    this.timer = setInterval(() => { for (const c of this.clients) c.ws.ping() }, PING_MS).unref()
  }

  /**
   * Listens to the relay only while a console is open: no listener on the event bus and no outlet
   * tap (a copy of each event frame's recipients) otherwise.
   */
  private listen (): void {
    if (this.offs.length > 0) return
    const { events } = this.d
    this.offs.push(
      events.on('agent:online', (e) => { this.send('presence', { amid: e.amid, status: 'online' }) }),
      events.on('agent:offline', (e) => { this.send('presence', { amid: e.amid, status: 'offline' }) }),
      events.on('message:stored', (e) => {
        if (e.room === undefined) return // a DM: the relay holds ciphertext only, the console is not told
        this.send('message', { room: e.room, seq: e.seq, id: e.env.id, from: e.env.from, type: e.env.type }, e.room)
      }),
      events.on('audit:written', (e) => { this.send('audit', { action: e.action }, undefined, true) }),
    )
    const tap = (t: OutletTap): void => {
      if (t.kind === 'post') { this.send('room', { room: t.room, ...(t.seq === undefined ? {} : { seq: t.seq }) }, t.room); return }
      let event: { type?: unknown } | undefined
      try { event = (JSON.parse(t.frame) as { event?: { type?: unknown } }).event } catch { return }
      if (event === undefined || typeof event.type !== 'string') return
      const { type, ...data } = event as { type: string }
      this.send(type, data, undefined, false, t.amids)
    }
    this.d.taps.add(tap)
    this.offs.push(() => { this.d.taps.delete(tap) })
  }

  private unlisten (): void {
    for (const off of this.offs) off()
    this.offs = []
  }

  private remove (c: Client): void {
    this.clients.delete(c)
    if (this.clients.size === 0) this.unlisten()
  }

  stop (): void {
    this.unlisten()
    if (this.timer !== undefined) clearInterval(this.timer)
    for (const c of this.clients) c.ws.close(1001, 'the relay is stopping')
    this.clients.clear()
    this.wss.close()
  }

  /** Closes the sockets of a session that signed out. */
  closeSession (id: string): void {
    for (const c of this.clients) if (c.sessionId === id) { c.ws.close(1000, 'signed out'); this.remove(c) }
  }

  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, code: string, message: string): void => {
      const body = JSON.stringify({ error: { code, message } })
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
    if (!sameOrigin(req.headers.origin, req.headers.host)) { refuse(403, ErrorCode.CsrfRejected, 'the console\'s events are for the console\'s own page (Origin)'); return }
    const s = this.d.sessions.fromCookie(req.headers.cookie)
    if (s === undefined) { refuse(401, ErrorCode.NotAuthenticated, 'sign in to the relay console first'); return }
    if (this.clients.size >= MAX_CONSOLE_SOCKETS) { refuse(503, ErrorCode.TooManyConnections, `the console serves ${MAX_CONSOLE_SOCKETS} live views at most`); return }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const client: Client = { ws, sessionId: s.id, session: s.session }
      this.clients.add(client)
      this.listen()
      ws.on('close', () => { this.remove(client) })
      ws.on('error', () => { this.remove(client) })
      ws.on('message', () => {}) // the page says nothing; anything it sends is ignored
      this.write(client, JSON.stringify({ type: 'hello', data: { principal: s.session.principal }, ts: this.d.now() }))
    })
  }

  /**
   * Sends a frame to every console allowed to see it: an agent's console only what concerns a room
   * it may read (`room`), an event frame written to it (`amids`), presence; the operator's and
   * masters' everything but DMs (never told here).
   */
  private send (type: string, data: Record<string, unknown>, room?: string, auditOnly = false, amids?: readonly string[]): void {
    if (this.clients.size === 0) return
    const text = JSON.stringify({ type, data, ts: this.d.now() })
    for (const c of [...this.clients]) {
      if (c.session.expiresAt <= this.d.now()) { c.ws.close(4401, 'the console session expired'); this.remove(c); continue }
      const p = c.session.principal
      const all = p.kind === 'operator' || p.role === 'master'
      if (all) { this.write(c, text); continue }
      if (auditOnly) continue
      if (amids !== undefined) { if (p.kind === 'agent' && amids.includes(p.amid)) this.write(c, text); continue }
      if (room === undefined) { this.write(c, text); continue }
      // a warden sees public rooms and those it is a member of: what the API would show it
      void this.d.chat.visibleRoom({ kind: 'agent', amid: (p as { amid: string }).amid, role: p.role }, room)
        .then((s) => { if (s.room.kind !== 'private' || s.members?.has((p as { amid: string }).amid) === true) this.write(c, text) })
        .catch(() => {})
    }
  }

  private write (c: Client, text: string): void {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > MAX_CONSOLE_BUFFERED) { this.dropped++; return }
    c.ws.send(text)
  }
}
