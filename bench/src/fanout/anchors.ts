/**
 * Fan-out clients of the anchors: one sender, `members` receivers of one room, each client on its
 * own connection.
 *  - bare ws (corked): receivers connect with `?room=fan`; the sender writes `{"to":"#fan",…}` and
 *    the forwarder writes it to every other member, corked per socket per turn. No acks.
 *  - Socket.IO: receivers join the room `fan`; the sender emits `m('fan', payload, ack)`; the
 *    server emits to the room and calls the ack.
 *  - NATS core: `members` subscriptions on the subject `fan`; the sender publishes. No acks.
 *  - NATS JetStream: one stream `FAN` on `fan` (file storage), one consumer per receiver in the
 *    layout of the pairs load (BENCH_JS_CONSUMER, default a durable push consumer each); the sender
 *    publishes and counts PubAcks (BENCH_JS_PUBLISH).
 */
import type { WebSocket } from 'ws'
import { NATS_SERVER, startNatsServer, startNodeServer, tempDir, removeTempDir } from '../children.ts'
import { open as openWs } from '../targets/bare.ts'
import { addStream, consumeJetStream, jetStreamLayout, layoutInfo, NatsConns, publisher } from '../targets/jetstream.ts'
import { open as openSio, tcpSocketOf } from '../targets/socketio.ts'
import type { Sink } from '../targets/types.ts'
import { corkForTurn, freePort, payloadObject, payloadText, readBseq, socketOf } from '../util.ts'
import { existsSync } from 'node:fs'
import type { FanoutClient, FanoutSink, FanoutTarget } from './gen.ts'

const ROOM = 'fan'

/** Adapts a fan-out sink to the pairs Sink the NATS helpers report to. */
function pairsSink (sink: FanoutSink): Sink {
  return { delivered: (r, seq) => { sink.delivered(r, seq) }, acked: () => { sink.acked() }, failed: (p, what) => { sink.failed(`client ${p}`, what) } }
}

/** Opens `n` connections `concurrency` at a time (opening hundreds at once only queues them in the server's backlog). */
export async function openAll<T> (n: number, concurrency: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, async () => {
    while (next < n) {
      const i = next++
      out[i] = await open(i)
    }
  }))
  return out
}

export function bareFanout (prof: { dir?: string } = {}): FanoutTarget {
  return {
    name: 'bare_ws',
    label: 'bare ws forwarder (corked)',
    acks: false,
    info: {},
    start: async () => await startNodeServer({ kind: 'bare' }, prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: 'fanout_bare_ws' }),
    async connect (server, members, sink): Promise<FanoutClient> {
      let closing = false
      const receivers = await openAll(members, 50, async (r) => {
        const ws = await openWs(`${server.url}?id=m${r}&room=${ROOM}`)
        ws.on('message', (data: Buffer) => { sink.delivered(r, readBseq(data, 10)) })
        ws.on('close', (code) => { if (!closing) sink.failed(`receiver ${r}`, `closed with ${code}`) })
        return ws
      })
      const sender: WebSocket = await openWs(`${server.url}?id=sender`)
      const prefix = `{"to":"#${ROOM}","p":`
      return {
        send (seq, t) {
          corkForTurn(socketOf(sender))
          sender.send(prefix + payloadText(seq, t) + '}')
          return true
        },
        async close () {
          closing = true
          for (const ws of [sender, ...receivers]) ws.terminate()
        },
      }
    },
  }
}

export function socketIoFanout (prof: { dir?: string } = {}): FanoutTarget {
  return {
    name: 'socketio',
    label: 'Socket.IO 4.8 (room + acks)',
    acks: true,
    info: { transport: 'websocket' },
    start: async () => await startNodeServer({ kind: 'socketio' }, prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: 'fanout_socketio' }),
    async connect (server, members, sink): Promise<FanoutClient> {
      let closing = false
      const receivers = await openAll(members, 50, async (r) => {
        const s = await openSio(server.url, `m${r}`, ROOM)
        s.on('m', (payload: { bseq: number }) => { sink.delivered(r, payload.bseq) })
        s.on('disconnect', (why) => { if (!closing) sink.failed(`receiver ${r}`, `disconnected: ${why}`) })
        return s
      })
      const sender = await openSio(server.url, 'sender')
      const tcp = tcpSocketOf(sender)
      const ack = (): void => { sink.acked() }
      return {
        send (seq, t) {
          corkForTurn(tcp)
          sender.emit('m', ROOM, payloadObject(seq, t), ack)
          return true
        },
        async close () {
          closing = true
          for (const s of [sender, ...receivers]) s.disconnect()
        },
      }
    },
  }
}

export function natsCoreFanout (): FanoutTarget {
  return {
    name: 'nats_core',
    label: 'NATS core (subject, N subscribers)',
    acks: false,
    info: {},
    start: async () => await startNatsServer(await freePort()),
    async connect (server, members, sink): Promise<FanoutClient> {
      const conns = new NatsConns(server.url, pairsSink(sink))
      try {
        await openAll(members, 50, async (r) => {
          const nc = await conns.open(`m${r}`)
          nc.subscribe(ROOM, { callback: (_err, m) => { const d = m.data; sink.delivered(r, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength))) } })
          await nc.flush()
        })
        const sender = await conns.open('sender')
        return {
          send (seq, t) { sender.publish(ROOM, Buffer.from(payloadText(seq, t))); return true },
          close: async () => { await conns.close() },
        }
      } catch (err) {
        await conns.close()
        throw err
      }
    },
  }
}

export function jetStreamFanout (): FanoutTarget | undefined {
  if (!existsSync(NATS_SERVER)) return undefined
  const layout = jetStreamLayout()
  let dir: string | undefined
  return {
    name: 'jetstream',
    label: 'NATS JetStream (file, consumer per member)',
    acks: true,
    info: layoutInfo(layout),
    async start () {
      dir = tempDir('nats-fan')
      return await startNatsServer(await freePort(), dir)
    },
    async connect (server, members, sink): Promise<FanoutClient> {
      const conns = new NatsConns(server.url, pairsSink(sink))
      const stackTraceLimit = Error.stackTraceLimit
      try {
        const admin = await conns.open('admin')
        await addStream(admin, 'FAN', [ROOM])
        await openAll(members, 20, async (r) => {
          const nc = await conns.open(`m${r}`)
          await consumeJetStream(nc, 'FAN', ROOM, `m${r}`, layout, (m) => {
            const d = m.data
            sink.delivered(r, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength)))
            if (layout.consumer === 'push' && layout.ack === 'all') m.ack()
          })
        })
        const publish = await publisher(await conns.open('sender'), 'sender', layout, () => { sink.acked() }, (err) => { sink.failed('sender', `publish: ${String(err)}`) })
        Error.stackTraceLimit = 0 // see targets/jetstream.ts
        return {
          send (seq, t) { publish(ROOM, Buffer.from(payloadText(seq, t))); return true },
          async close () {
            Error.stackTraceLimit = stackTraceLimit
            await conns.close()
          },
        }
      } catch (err) {
        Error.stackTraceLimit = stackTraceLimit
        await conns.close()
        throw err
      }
    },
    cleanup () {
      if (dir !== undefined) removeTempDir(dir)
      dir = undefined
    },
  }
}
