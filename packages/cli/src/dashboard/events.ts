/**
 * The console's live events (docs/protocol.md §22.6): what the agent's connection hears, turned
 * into JSON frames `{ type, data, ts }` for every signed-in browser on `api/events`: `message`
 * (decrypted here, as a messages item plus `conversation`), `knock`, `grant`, `task`, `presence`,
 * the other chat events (`typing`, `read`, `member`) and the operations events under their own
 * names (`system_update`, `catastrophe_alert`, `agent_health_change`, `file_available`).
 */
import type { WebSocket } from 'ws'
import type { Connection, Message } from '@agentmesh/client'
import type { DmHistory } from './history.ts'
import type { MessageItem } from './routes.ts'

/** Browsers connected to `api/events` at once. */
export const MAX_EVENT_SOCKETS = 16
/** A browser that lets this much pile up unread is disconnected (it reloads what it missed over REST). */
export const MAX_EVENT_BACKLOG_BYTES = 4 * 1024 * 1024
/** How often the safety log is looked at for new knocks and grants. */
export const SAFETY_POLL_MS = 1000

export class EventHub {
  readonly #sockets = new Set<WebSocket>()

  get size (): number { return this.#sockets.size }

  /** False when the hub is full. */
  add (ws: WebSocket): boolean {
    if (this.#sockets.size >= MAX_EVENT_SOCKETS) return false
    this.#sockets.add(ws)
    ws.on('close', () => { this.#sockets.delete(ws) })
    ws.on('error', () => { this.#sockets.delete(ws) })
    return true
  }

  publish (type: string, data: unknown, ts = Date.now()): void {
    if (this.#sockets.size === 0) return
    const frame = JSON.stringify({ type, data, ts })
    for (const ws of this.#sockets) {
      if (ws.bufferedAmount > MAX_EVENT_BACKLOG_BYTES) { ws.terminate(); this.#sockets.delete(ws); continue }
      ws.send(frame)
    }
  }

  close (): void {
    for (const ws of this.#sockets) ws.close(1001, 'the console is stopping')
    this.#sockets.clear()
  }
}

/**
 * Reads the agent's messages (acknowledging them, as `agentmesh listen` does) until `signal`:
 * direct messages are kept in the history and published; room messages and task updates are
 * published (rooms keep their own history on the relay).
 */
export async function pumpMessages (conn: Connection, history: DmHistory, hub: EventHub, handleOf: (amid: string) => Promise<string | undefined>, signal: AbortSignal): Promise<void> {
  for await (const m of conn.messages({ signal })) {
    try { await onMessage(conn, m, history, hub, handleOf) } catch { /* one message's trouble does not stop the console */ }
  }
}

async function onMessage (conn: Connection, m: Message, history: DmHistory, hub: EventHub, handleOf: (amid: string) => Promise<string | undefined>): Promise<void> {
  if (m.type.startsWith('task.')) { hub.publish('task', { id: m.payload.task_id ?? m.payload.id, type: m.type, from: m.from, payload: m.payload }); return }
  if (typeof m.text !== 'string') return // files, notices…: their own events and tabs say it
  const handle = m.from === conn.relayAmid ? 'relay' : await handleOf(m.from)
  const item: MessageItem = { id: m.id, from: m.from, ...(handle === undefined ? {} : { fromHandle: handle }), text: m.text, ts: m.ts, direction: m.from === conn.amid ? 'out' : 'in', encrypted: m.encrypted }
  if (m.room !== undefined) {
    hub.publish('message', { ...item, conversation: `room:${m.room}` })
    return
  }
  history.add({ id: m.id, peer: m.from, from: m.from, direction: 'in', text: m.text, ts: m.ts, encrypted: m.encrypted })
  hub.publish('message', { ...item, conversation: `dm:${m.from}` })
}

/** Chat and operations events from the relay, as they come, until the connection closes. */
export async function pumpRelayEvents (conn: Connection, hub: EventHub): Promise<void> {
  for await (const e of conn.events()) {
    const { type, ts, ...rest } = e as { type: string, ts: number } & Record<string, unknown>
    hub.publish(type, 'data' in rest && typeof rest.data === 'object' ? rest.data : rest, ts)
  }
}

/** New safety log entries as `knock` (a knock held for the owner) and `grant` events; returns a stop function. */
export function watchSafetyLog (conn: Connection, hub: EventHub, everyMs = SAFETY_POLL_MS): () => void {
  let seen = conn.safetyLog().length
  const timer = setInterval(() => {
    const log = conn.safetyLog()
    if (log.length < seen) seen = 0 // trimmed: start over from what is there
    for (const e of log.slice(seen)) {
      if (e.event === 'knock_held') {
        const k = conn.knocks().find(h => h.from === e.peer)
        hub.publish('knock', k === undefined ? { from: e.peer, detail: e.detail } : { id: k.id, from: k.from, intent: k.intent.category, summary: k.intent.summary, scopes: k.intent.scopes, ts: k.receivedAt, tier: k.tier }, e.at)
      } else if (e.event.startsWith('grant_') || e.event === 'knock_accepted' || (e.event === 'knock_answered' && e.detail.startsWith('accepted'))) {
        hub.publish('grant', { change: e.event, peer: e.peer, detail: e.detail }, e.at)
      }
    }
    seen = log.length
  }, everyMs)
  timer.unref()
  return () => { clearInterval(timer) }
}
