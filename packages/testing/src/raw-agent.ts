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
  envelope (to: string, text: string, id?: string): ReturnType<typeof signEnvelope>
  closed: Promise<{ code: number, reason: string }>
  close (): void
}

let counter = 0

export async function rawAgent (wsUrl: string, id: Identity = createIdentity()): Promise<RawAgent> {
  const ws = new WebSocket(wsUrl)
  const frames: Array<Record<string, any>> = []
  const waiters: Array<{ pred: (f: Record<string, any>) => boolean, resolve: (f: Record<string, any>) => void, seen: number }> = []
  let consumed = 0
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Record<string, any>
    frames.push(f)
    for (const w of [...waiters]) {
      if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f) }
    }
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
  const ch = await next(f => f.op === 'challenge')
  const agent: RawAgent = {
    id,
    ws,
    frames,
    challenge: { nonce: ch.nonce as string, relay: ch.relay as string },
    closed,
    sendRaw (text) { ws.send(text) },
    send (frame) { ws.send(JSON.stringify(frame)) },
    async auth (extra = {}) {
      agent.send({
        op: 'auth', v: PROTOCOL, amid: id.amid, nonce: agent.challenge.nonce,
        sig: signChallenge(id, id.amid, agent.challenge.nonce, agent.challenge.relay), ...extra,
      })
      return await next(f => f.op === 'welcome' || f.op === 'error')
    },
    next,
    envelope (to, text, eid) {
      return signEnvelope(id, { id: eid ?? `raw${Date.now()}x${counter++}`, to, type: 'chat', payload: { text } })
    },
    close () { ws.close() },
  }
  return agent
}
