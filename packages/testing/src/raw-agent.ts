/** An agent speaking the raw WebSocket protocol, for conformance and bad-input tests. */
import WebSocket from 'ws'
import { PROTOCOL } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope, type Identity } from '@agentmesh/crypto'

export interface RawAgent {
  id: Identity
  ws: WebSocket
  /** every frame received, parsed */
  frames: Array<Record<string, any>>
  challenge: { nonce: string, relay: string }
  sendRaw (text: string): void
  send (frame: unknown): void
  /** Answers the challenge; resolves with the welcome (or error) frame. */
  auth (extra?: Record<string, unknown>): Promise<Record<string, any>>
  /** Resolves with the next frame matching `pred` (already received ones count if after `from`). */
  next (pred: (f: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>
  /**
   * Resolves with every frame received so far that matches `pred`, once there are at least `count`
   * of them (counting from the first frame of the connection, independent of `next`); rejects after
   * `timeoutMs` (a bound, not a timing assertion).
   */
  collect (pred: (f: Record<string, any>) => boolean, count: number, timeoutMs?: number): Promise<Array<Record<string, any>>>
  /**
   * Sends a ping with a unique `ts` and resolves when its pong arrives: every frame the relay wrote
   * on this connection before answering the ping has been received by then.
   */
  barrier (timeoutMs?: number): Promise<void>
  /** Sends several text frames in one socket write, so the relay reads them in one turn. */
  sendBatch (texts: string[]): void
  /** The auth frame answering this connection's challenge (not sent). */
  authFrame (extra?: Record<string, unknown>): Record<string, unknown>
  envelope (to: string, text: string, id?: string): ReturnType<typeof signEnvelope>
  closed: Promise<{ code: number, reason: string }>
  close (): void
}

let counter = 0
let pingCounter = 0

export async function rawAgent (wsUrl: string, id: Identity = createIdentity()): Promise<RawAgent> {
  const ws = new WebSocket(wsUrl)
  const frames: Array<Record<string, any>> = []
  const waiters: Array<{ pred: (f: Record<string, any>) => boolean, resolve: (f: Record<string, any>) => void, seen: number }> = []
  const collectors = new Set<() => void>()
  let consumed = 0
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Record<string, any>
    frames.push(f)
    for (const w of [...waiters]) {
      if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f) }
    }
    for (const c of [...collectors]) c()
  })
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    ws.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) })
  })
  ws.on('error', () => {})
  const next = (pred: (f: Record<string, any>) => boolean, timeoutMs = 10_000): Promise<Record<string, any>> => {
    for (let i = consumed; i < frames.length; i++) {
      if (pred(frames[i]!)) { consumed = i + 1; return Promise.resolve(frames[i]!) }
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error('no matching frame; got: ' + JSON.stringify(frames.slice(-5)))) }, timeoutMs)
      waiters.push({ pred, resolve: (f) => { clearTimeout(t); consumed = frames.length; resolve(f) }, seen: frames.length })
    })
  }
  const collectFrom = (from: number, pred: (f: Record<string, any>) => boolean, count: number, timeoutMs = 10_000): Promise<Array<Record<string, any>>> => {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hits = frames.slice(from).filter(pred)
        if (hits.length < count) return false
        collectors.delete(check)
        clearTimeout(t)
        resolve(hits)
        return true
      }
      const t = setTimeout(() => {
        collectors.delete(check)
        reject(new Error(`expected ${count} matching frames, got ${frames.slice(from).filter(pred).length}; last frames: ` + JSON.stringify(frames.slice(-5)).slice(0, 2000)))
      }, timeoutMs)
      if (!check()) collectors.add(check)
    })
  }
  const collect = (pred: (f: Record<string, any>) => boolean, count: number, timeoutMs?: number): Promise<Array<Record<string, any>>> =>
    collectFrom(0, pred, count, timeoutMs)
  const ch = await next(f => f.op === 'challenge')
  const agent: RawAgent = {
    id,
    ws,
    frames,
    challenge: { nonce: ch.nonce as string, relay: ch.relay as string },
    closed,
    sendRaw (text) { ws.send(text) },
    send (frame) { ws.send(JSON.stringify(frame)) },
    authFrame (extra = {}) {
      return {
        op: 'auth', v: PROTOCOL, amid: id.amid, nonce: agent.challenge.nonce,
        sig: signChallenge(id, id.amid, agent.challenge.nonce, agent.challenge.relay), ...extra,
      }
    },
    async auth (extra = {}) {
      // only the answer to this auth frame counts, not an error received before it
      const from = frames.length
      agent.send(agent.authFrame(extra))
      const [answer] = await collectFrom(from, f => f.op === 'welcome' || f.op === 'error', 1)
      consumed = Math.max(consumed, frames.indexOf(answer!) + 1)
      return answer!
    },
    next,
    collect,
    async barrier (timeoutMs) {
      const ts = ++pingCounter
      agent.send({ op: 'ping', ts })
      await collect(f => f.op === 'pong' && f.ts === ts, 1, timeoutMs)
    },
    sendBatch (texts) {
      const sock = (ws as unknown as { _socket: { cork (): void, uncork (): void } })._socket
      sock.cork()
      for (const t of texts) ws.send(t)
      sock.uncork()
    },
    envelope (to, text, eid) {
      return signEnvelope(id, { id: eid ?? `raw${Date.now()}x${counter++}`, to, type: 'chat', payload: { text } })
    },
    close () { ws.close() },
  }
  return agent
}
