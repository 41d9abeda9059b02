/**
 * Bare `ws` forwarder: the ceiling for a Node WebSocket relay. It reads each text frame as a
 * string (a JSON line `{"to":"<id>",…}`), takes the addressee from the characters after `{"to":"`
 * without parsing the rest, and writes the same text to that connection, corked per event-loop
 * turn. An addressee `#<room>` is every other connection that connected with `?room=<room>` (the
 * fan-out load).
 * No persistence, no acks: the generator advances each sender's window on deliveries.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { startNodeServer } from '../children.ts'
import { HOST, PAYLOAD_BYTES, corkForTurn, payloadText, readBseq, socketOf, withTimeout } from '../util.ts'
import type { Client, Sink, Target } from './types.ts'

// ---------------------------------------------------------------- server side (child process)

const TO_AT = 7 // {"to":"  ← the addressee starts at byte 7

export async function serveBare (): Promise<{ port: number, url: string, close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false, clientTracking: true })
  const byId = new Map<string, WebSocket>()
  const rooms = new Map<string, Set<WebSocket>>()
  wss.on('connection', (ws, req) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams
    const id = q.get('id') ?? ''
    const room = q.get('room')
    byId.set(id, ws)
    if (room !== null) {
      let set = rooms.get(room)
      if (set === undefined) rooms.set(room, set = new Set())
      set.add(ws)
    }
    ws.on('message', (data: Buffer) => {
      const text = data.toString()
      const end = text.indexOf('"', TO_AT)
      if (end < 0) return
      if (text.charCodeAt(TO_AT) === 35) { // '#': every member of the room but the sender
        for (const dst of rooms.get(text.slice(TO_AT + 1, end)) ?? []) {
          if (dst === ws || dst.readyState !== WebSocket.OPEN) continue
          corkForTurn(socketOf(dst))
          dst.send(text)
        }
        return
      }
      const dst = byId.get(text.slice(TO_AT, end))
      if (dst === undefined || dst.readyState !== WebSocket.OPEN) return
      corkForTurn(socketOf(dst))
      dst.send(text)
    })
    ws.on('close', () => {
      if (byId.get(id) === ws) byId.delete(id)
      if (room !== null) rooms.get(room)?.delete(ws)
    })
    ws.on('error', () => {})
  })
  await once(wss, 'listening')
  const port = (wss.address() as AddressInfo).port
  return {
    port,
    url: `ws://${HOST}:${port}/`,
    close: () => new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate()
      wss.close(() => { resolve() })
    }),
  }
}

// ---------------------------------------------------------------- client side (generator)

export function open (url: string): Promise<WebSocket> {
  return withTimeout(new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once('open', () => { resolve(ws) })
    ws.once('error', reject)
  }), 15_000, `connecting to ${url}`)
}

export async function connectBare (url: string, pairs: number, sink: Sink): Promise<Client> {
  let closing = false
  const receivers = await Promise.all(Array.from({ length: pairs }, async (_, p) => {
    const ws = await open(`${url}?id=r${p}`)
    ws.on('message', (data: Buffer) => { sink.delivered(p, readBseq(data, 10)) })
    ws.on('close', (code) => { if (!closing) sink.failed(p, `receiver closed with ${code}`) })
    return ws
  }))
  const senders = await Promise.all(Array.from({ length: pairs }, async (_, p) => {
    const ws = await open(`${url}?id=s${p}`)
    ws.on('close', (code) => { if (!closing) sink.failed(p, `sender closed with ${code}`) })
    return ws
  }))
  const prefixes = Array.from({ length: pairs }, (_, p) => `{"to":"r${p}","p":`)
  return {
    send (p, seq, t) {
      const ws = senders[p]!
      corkForTurn(socketOf(ws))
      ws.send(prefixes[p] + payloadText(seq, t) + '}')
      return true
    },
    async close () {
      closing = true
      for (const ws of [...senders, ...receivers]) ws.terminate()
    },
  }
}

export function bareTarget (prof: { dir?: string } = {}): Target {
  return {
    name: 'bare_ws',
    label: 'bare ws forwarder (corked)',
    windowBy: 'delivery',
    info: { send_frame_bytes: `{"to":"r49","p":`.length + PAYLOAD_BYTES + 1 },
    start: () => startNodeServer({ kind: 'bare' }, prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: 'bare_ws' }),
    connect: (server, pairs, sink) => connectBare(server.url, pairs, sink),
  }
}
