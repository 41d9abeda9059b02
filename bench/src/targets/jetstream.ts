/**
 * NATS JetStream (Debian's nats-server 2.9, file storage): one stream `BENCH` on `bench.>`;
 * each sender publishes to `bench.<pair>` and waits for the PubAck (its window advances on
 * PubAcks); each receiver reads its subject through an ordered consumer (no acks needed:
 * the client checks the stream sequence and recreates the consumer on a gap).
 * BENCH_JS_CONSUMER=pull (default, ordered pull consumer with consume()) or push (ordered push);
 * BENCH_JS_STREAMS=one (default) or per-pair (one stream per receiver).
 * Every client is its own NATS connection, like the WebSocket targets.
 */
import { existsSync } from 'node:fs'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { NATS_SERVER, startNatsServer, tempDir, removeTempDir } from '../children.ts'
import { freePort, payloadText, readBseq, PAYLOAD_BYTES } from '../util.ts'
import type { Client, Sink, Target } from './types.ts'

const STREAM = 'BENCH'

export function natsServerAvailable (): boolean {
  return existsSync(NATS_SERVER)
}

export interface JetStreamLayout {
  consumer: 'pull' | 'push'
  /** one stream for every subject, or one stream per receiver */
  streams: 'one' | 'per-pair'
}

export async function connectJetStream (url: string, pairs: number, sink: Sink, layout: JetStreamLayout): Promise<Client> {
  const conns: NatsConnection[] = []
  let closing = false
  const open = async (name: string): Promise<NatsConnection> => {
    // noAsyncTraces: no Error (stack capture) per request; it otherwise dominates the generator's CPU
    const nc = await connect({ servers: url, name, timeout: 10_000, reconnect: false, noAsyncTraces: true })
    conns.push(nc)
    void nc.closed().then((err) => { if (!closing) sink.failed(0, `nats connection ${name} closed${err ? `: ${String(err)}` : ''}`) })
    return nc
  }
  try {
    const admin = await open('admin')
    const jsm = await jetstreamManager(admin)
    const streamOf = (p: number): string => layout.streams === 'one' ? STREAM : `${STREAM}_${p}`
    const streams = layout.streams === 'one'
      ? [{ name: STREAM, subjects: ['bench.>'] }]
      : Array.from({ length: pairs }, (_, p) => ({ name: streamOf(p), subjects: [`bench.${p}`] }))
    for (const st of streams) {
      await jsm.streams.add({
        ...st,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        num_replicas: 1,
      })
    }

    await Promise.all(Array.from({ length: pairs }, async (_, p) => {
      const nc = await open(`r${p}`)
      const js = jetstream(nc)
      const onMsg = (m: { data: Uint8Array }): void => {
        const d = m.data
        sink.delivered(p, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength)))
      }
      if (layout.consumer === 'push') {
        const c = await js.consumers.getPushConsumer(streamOf(p), { filter_subjects: `bench.${p}` })
        await c.consume({ callback: onMsg })
      } else {
        const c = await js.consumers.get(streamOf(p), { filter_subjects: `bench.${p}` })
        await c.consume({ callback: onMsg, max_messages: 1000 })
      }
    }))

    const publishers = await Promise.all(Array.from({ length: pairs }, async (_, p) => jetstream(await open(`s${p}`))))
    const subjects = Array.from({ length: pairs }, (_, p) => `bench.${p}`)
    const onAck = Array.from({ length: pairs }, (_, p) => () => { sink.acked(p) })
    const onErr = Array.from({ length: pairs }, (_, p) => (err: unknown) => { sink.failed(p, `publish: ${String(err)}`) })
    // nats.js builds an Error (a stack capture) for every request even with noAsyncTraces
    // (RequestOne.cancel after the reply); with ~3,200 publishes in flight that alone costs the
    // one-core generator ~10% of its CPU. Stack traces are switched off while this target runs.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    return {
      send (p, seq, t) {
        publishers[p]!.publish(subjects[p]!, Buffer.from(payloadText(seq, t))).then(onAck[p], onErr[p])
        return true
      },
      async close () {
        closing = true
        Error.stackTraceLimit = stackTraceLimit
        await Promise.allSettled(conns.map((nc) => nc.close()))
      },
    }
  } catch (err) {
    closing = true
    await Promise.allSettled(conns.map((nc) => nc.close()))
    throw err
  }
}

export function jetStreamTarget (): Target {
  const layout: JetStreamLayout = {
    consumer: process.env.BENCH_JS_CONSUMER === 'push' ? 'push' : 'pull',
    streams: process.env.BENCH_JS_STREAMS === 'per-pair' ? 'per-pair' : 'one',
  }
  let dir: string | undefined
  return {
    name: 'jetstream',
    label: 'NATS JetStream (file, pub acks)',
    windowBy: 'ack',
    info: { consumer: `ordered ${layout.consumer}`, streams: layout.streams, storage: 'file', send_payload_bytes: PAYLOAD_BYTES },
    async start () {
      dir = tempDir('nats')
      return startNatsServer(await freePort(), dir)
    },
    connect: (server, pairs, sink) => connectJetStream(server.url, pairs, sink, layout),
    cleanup () {
      if (dir !== undefined) removeTempDir(dir)
      dir = undefined
    },
  }
}
