/**
 * Socket.IO 4.8 with rooms and acks: every client joins a room named after its id; a sender
 * emits `m(to, payload, ack)`; the server emits the payload to the room and calls the ack.
 * WebSocket transport only (no long-polling upgrade), no compression.
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket as NetSocket } from 'node:net'
import { Server } from 'socket.io'
import { io as ioClient, type Socket } from 'socket.io-client'
import { startNodeServer } from '../children.ts'
import { HOST, corkForTurn, payloadObject, withTimeout } from '../util.ts'
import type { Client, Sink, Target } from './types.ts'

// ---------------------------------------------------------------- server side (child process)

export async function serveSocketIo (): Promise<{ port: number, url: string, close: () => Promise<void> }> {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false })
  io.on('connection', (s) => {
    void s.join(String(s.handshake.query.id ?? ''))
    // the fan-out load: receivers also join the room they name
    if (typeof s.handshake.query.room === 'string') void s.join(s.handshake.query.room)
    s.on('m', (to: string, payload: unknown, ack?: () => void) => {
      io.to(to).emit('m', payload)
      if (typeof ack === 'function') ack()
    })
  })
  http.listen(0, HOST)
  await once(http, 'listening')
  const port = (http.address() as AddressInfo).port
  return {
    port,
    url: `http://${HOST}:${port}`,
    close: () => new Promise<void>((resolve) => {
      io.disconnectSockets(true)
      void io.close(() => { resolve() })
    }),
  }
}

// ---------------------------------------------------------------- client side (generator)

export function open (url: string, id: string, room?: string): Promise<Socket> {
  return withTimeout(new Promise<Socket>((resolve, reject) => {
    // forceNew: one connection per socket (the client multiplexes sockets to one host by default)
    const s = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, query: room === undefined ? { id } : { id, room } })
    s.once('connect', () => { resolve(s) })
    s.once('connect_error', reject)
  }), 15_000, `socket.io connect ${id}`)
}

/** The TCP socket under a socket.io-client connection (engine.io's WebSocket transport, a `ws` WebSocket). */
export function tcpSocketOf (s: Socket): NetSocket | undefined {
  const engine = (s.io as unknown as { engine?: { transport?: { ws?: { _socket?: NetSocket } } } }).engine
  return engine?.transport?.ws?._socket
}

export async function connectSocketIo (url: string, pairs: number, sink: Sink): Promise<Client> {
  let closing = false
  const receivers = await Promise.all(Array.from({ length: pairs }, async (_, p) => {
    const s = await open(url, `r${p}`)
    s.on('m', (payload: { bseq: number }) => { sink.delivered(p, payload.bseq) })
    s.on('disconnect', (why) => { if (!closing) sink.failed(p, `receiver disconnected: ${why}`) })
    return s
  }))
  const senders = await Promise.all(Array.from({ length: pairs }, async (_, p) => {
    const s = await open(url, `s${p}`)
    s.on('disconnect', (why) => { if (!closing) sink.failed(p, `sender disconnected: ${why}`) })
    return s
  }))
  const rooms = Array.from({ length: pairs }, (_, p) => `r${p}`)
  const acks = Array.from({ length: pairs }, (_, p) => () => { sink.acked(p) })
  const sockets = process.env.BENCH_SIO_CORK === '0' ? [] : senders.map(tcpSocketOf)
  return {
    send (p, seq, t) {
      // the generator corks each sender's TCP socket for the rest of the turn, as it does for its
      // raw WebSocket clients (AgentMesh, bare): many frames, one system call
      corkForTurn(sockets[p])
      senders[p]!.emit('m', rooms[p], payloadObject(seq, t), acks[p])
      return true
    },
    async close () {
      closing = true
      for (const s of [...senders, ...receivers]) s.disconnect()
    },
  }
}

export function socketIoTarget (prof: { dir?: string } = {}): Target {
  return {
    name: 'socketio',
    label: 'Socket.IO 4.8 (rooms + acks)',
    windowBy: 'ack',
    info: { transport: 'websocket' },
    start: () => startNodeServer({ kind: 'socketio' }, prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: 'socketio' }),
    connect: (server, pairs, sink) => connectSocketIo(server.url, pairs, sink),
  }
}
