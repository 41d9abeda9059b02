/**
 * NATS JetStream (Debian's nats-server 2.9, file storage): one stream `BENCH` on `bench.>`;
 * each sender publishes to `bench.<pair>` and its window advances on PubAcks; each receiver reads
 * its subject through a consumer of its own.
 *
 * Layouts (all selectable; the default is the fastest honest one measured on the 2-core machine):
 *   BENCH_JS_CONSUMER=push (default)  a durable push consumer per receiver (deliver_subject
 *                                     `deliver.<pair>`, filter `bench.<pair>`, no flow control:
 *                                     what JetStream's docs and the independent harness use for
 *                                     fan-out and low latency), read with getPushConsumer().consume()
 *                     ordered-push    an ordered push consumer (flow control, heartbeats, per-message
 *                                     sequence checks in the client)
 *                     pull            an ordered pull consumer, consume() with max_messages 1000
 *   BENCH_JS_ACK=none (default) | all the push consumer's ack policy: `all` = the receiver acks the last
 *                                     message of each event-loop turn (a cumulative ack, like
 *                                     AgentMesh's cursor)
 *   BENCH_JS_PUBLISH=async (default) | js
 *                                     async: a core publish with a reply subject, the PubAcks counted
 *                                     on one wildcard subscription per sender: what Go's PublishAsync
 *                                     and `nats bench --js` do, the way JetStream users publish at
 *                                     throughput (measured here: ~13 µs of generator CPU per message
 *                                     against ~50 µs with js.publish, whose per-request promise, timer
 *                                     and Error made nats.js the bench's bottleneck); js: nats.js'
 *                                     `js.publish()`, which awaits each PubAck
 *   BENCH_JS_STREAMS=one (default) | per-pair
 * Every client is its own NATS connection, like the WebSocket targets.
 */
import { existsSync } from 'node:fs'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream'
import { NATS_SERVER, startNatsServer, tempDir, removeTempDir } from '../children.ts'
import { freePort, payloadText, readBseq, PAYLOAD_BYTES } from '../util.ts'
import type { Client, Sink, Target } from './types.ts'

const STREAM = 'BENCH'

export function natsServerAvailable (): boolean {
  return existsSync(NATS_SERVER)
}

export interface JetStreamLayout {
  consumer: 'push' | 'ordered-push' | 'pull'
  ack: 'none' | 'all'
  publish: 'js' | 'async'
  /** one stream for every subject, or one stream per receiver */
  streams: 'one' | 'per-pair'
}

export function jetStreamLayout (): JetStreamLayout {
  const c = process.env.BENCH_JS_CONSUMER
  return {
    consumer: c === 'pull' ? 'pull' : c === 'ordered-push' ? 'ordered-push' : 'push',
    ack: process.env.BENCH_JS_ACK === 'all' ? 'all' : 'none',
    publish: process.env.BENCH_JS_PUBLISH === 'js' ? 'js' : 'async',
    streams: process.env.BENCH_JS_STREAMS === 'per-pair' ? 'per-pair' : 'one',
  }
}

/** One NATS connection per client; closing them all; a closed connection is reported unless closing. */
export class NatsConns {
  readonly all: NatsConnection[] = []
  closing = false
  constructor (private readonly url: string, private readonly sink: Sink) {}

  async open (name: string): Promise<NatsConnection> {
    // noAsyncTraces: no Error (stack capture) per request; it otherwise dominates the generator's CPU
    const nc = await connect({ servers: this.url, name, timeout: 10_000, reconnect: false, noAsyncTraces: true })
    this.all.push(nc)
    void nc.closed().then((err) => { if (!this.closing) this.sink.failed(0, `nats connection ${name} closed${err ? `: ${String(err)}` : ''}`) })
    return nc
  }

  async close (): Promise<void> {
    this.closing = true
    await Promise.allSettled(this.all.map((nc) => nc.close()))
  }
}

/** Cumulative acks (ack policy `all`): the last message of each consumer, acked once per event-loop turn. */
class TurnAcker {
  private readonly last = new Map<number, JsMsg>()
  private scheduled = false
  acks = 0
  note (p: number, m: JsMsg): void {
    this.last.set(p, m)
    if (!this.scheduled) { this.scheduled = true; setImmediate(this.flush) }
  }

  private readonly flush = (): void => {
    this.scheduled = false
    for (const m of this.last.values()) { m.ack(); this.acks++ }
    this.last.clear()
  }
}

/**
 * Creates what a JetStream receiver reads from: a durable push consumer (deliver subject of its
 * own) or an ordered push/pull consumer, and starts consuming with `onMsg`.
 */
export async function consumeJetStream (
  nc: NatsConnection, stream: string, subject: string, name: string, layout: JetStreamLayout, onMsg: (m: JsMsg) => void,
): Promise<void> {
  const js = jetstream(nc)
  if (layout.consumer === 'push') {
    const jsm = await jetstreamManager(nc)
    await jsm.consumers.add(stream, {
      durable_name: name,
      deliver_subject: `deliver.${name}`,
      filter_subject: subject,
      ack_policy: layout.ack === 'all' ? AckPolicy.All : AckPolicy.None,
      deliver_policy: DeliverPolicy.New,
      max_ack_pending: layout.ack === 'all' ? 20_000 : -1,
    })
    const c = await js.consumers.getPushConsumer(stream, name)
    await c.consume({ callback: onMsg })
  } else if (layout.consumer === 'ordered-push') {
    const c = await js.consumers.getPushConsumer(stream, { filter_subjects: subject })
    await c.consume({ callback: onMsg })
  } else {
    const c = await js.consumers.get(stream, { filter_subjects: subject })
    await c.consume({ callback: onMsg, max_messages: 1000 })
  }
}

export async function addStream (nc: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name, subjects, storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, num_replicas: 1 })
}

/** A sender's publish function: `js.publish()` awaiting each PubAck, or core publishes with a reply subject. */
export async function publisher (
  nc: NatsConnection, name: string, layout: JetStreamLayout, onAck: () => void, onErr: (err: unknown) => void,
): Promise<(subject: string, data: Uint8Array) => void> {
  if (layout.publish === 'js') {
    const js = jetstream(nc)
    return (subject, data) => { js.publish(subject, data).then(onAck, onErr) }
  }
  // PublishAsync as the Go client does it: one inbox subscription, every publish carries a reply subject in it
  const inbox = `_ACK.${name}`
  const reply = `${inbox}.x`
  nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (err !== null) { onErr(err); return }
      const d = m.data
      // a PubAck is {"stream":…,"seq":…}; an error is {"error":…}
      if (d.length > 2 && d[2] === 0x65 /* e */) onErr(new Error(Buffer.from(d).toString()))
      else onAck()
    },
  })
  await nc.flush()
  return (subject, data) => { nc.publish(subject, data, { reply }) }
}

export async function connectJetStream (url: string, pairs: number, sink: Sink, layout: JetStreamLayout): Promise<Client> {
  const conns = new NatsConns(url, sink)
  const acker = new TurnAcker()
  try {
    const admin = await conns.open('admin')
    const streamOf = (p: number): string => layout.streams === 'one' ? STREAM : `${STREAM}_${p}`
    if (layout.streams === 'one') await addStream(admin, STREAM, ['bench.>'])
    else for (let p = 0; p < pairs; p++) await addStream(admin, streamOf(p), [`bench.${p}`])

    await Promise.all(Array.from({ length: pairs }, async (_, p) => {
      const nc = await conns.open(`r${p}`)
      const onMsg = layout.consumer === 'push' && layout.ack === 'all'
        ? (m: JsMsg): void => { const d = m.data; sink.delivered(p, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength))); acker.note(p, m) }
        : (m: JsMsg): void => { const d = m.data; sink.delivered(p, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength))) }
      await consumeJetStream(nc, streamOf(p), `bench.${p}`, `r${p}`, layout, onMsg)
    }))

    const publish = await Promise.all(Array.from({ length: pairs }, async (_, p) =>
      await publisher(await conns.open(`s${p}`), `s${p}`, layout, () => { sink.acked(p) }, (err) => { sink.failed(p, `publish: ${String(err)}`) })))
    const subjects = Array.from({ length: pairs }, (_, p) => `bench.${p}`)
    // nats.js builds an Error (a stack capture) for every request even with noAsyncTraces
    // (RequestOne.cancel after the reply); with ~3,200 publishes in flight that alone costs the
    // one-core generator ~10% of its CPU. Stack traces are switched off while this target runs.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    return {
      send (p, seq, t) {
        publish[p]!(subjects[p]!, Buffer.from(payloadText(seq, t)))
        return true
      },
      stats: () => ({ consumer_acks: acker.acks }),
      async close () {
        Error.stackTraceLimit = stackTraceLimit
        await conns.close()
      },
    }
  } catch (err) {
    await conns.close()
    throw err
  }
}

export function layoutInfo (layout: JetStreamLayout): Record<string, unknown> {
  return {
    consumer: layout.consumer === 'push' ? `durable push, ack ${layout.ack}, no flow control` : `ordered ${layout.consumer === 'pull' ? 'pull' : 'push'}`,
    publish: layout.publish === 'js' ? 'js.publish(), awaits each PubAck' : 'core publish with a reply subject, PubAcks on one subscription per sender',
    streams: layout.streams,
    storage: 'file',
  }
}

export function jetStreamTarget (): Target {
  const layout = jetStreamLayout()
  let dir: string | undefined
  return {
    name: 'jetstream',
    label: 'NATS JetStream (file, pub acks)',
    windowBy: 'ack',
    info: { ...layoutInfo(layout), send_payload_bytes: PAYLOAD_BYTES },
    async start () {
      dir = tempDir('nats')
      return await startNatsServer(await freePort(), dir)
    },
    connect: async (server, pairs, sink) => await connectJetStream(server.url, pairs, sink, layout),
    cleanup () {
      if (dir !== undefined) removeTempDir(dir)
      dir = undefined
    },
  }
}
