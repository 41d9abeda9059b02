/**
 * NATS core (no JetStream; Debian's nats-server 2.9 without `-js`): at-most-once publish/subscribe,
 * nothing stored, no acknowledgements. Each sender publishes to `core.<pair>`, each receiver
 * subscribes to its subject; the generator advances a sender's window on deliveries (as for the bare
 * forwarder). nats.js coalesces each connection's writes per turn by itself.
 */
import { freePort, payloadText, readBseq, PAYLOAD_BYTES } from '../util.ts'
import { startNatsServer } from '../children.ts'
import { NatsConns } from './jetstream.ts'
import type { Client, Sink, Target } from './types.ts'

export async function connectNatsCore (url: string, pairs: number, sink: Sink): Promise<Client> {
  const conns = new NatsConns(url, sink)
  try {
    await Promise.all(Array.from({ length: pairs }, async (_, p) => {
      const nc = await conns.open(`r${p}`)
      nc.subscribe(`core.${p}`, { callback: (_err, m) => { const d = m.data; sink.delivered(p, readBseq(Buffer.from(d.buffer, d.byteOffset, d.byteLength))) } })
      await nc.flush()
    }))
    const senders = await Promise.all(Array.from({ length: pairs }, async (_, p) => await conns.open(`s${p}`)))
    const subjects = Array.from({ length: pairs }, (_, p) => `core.${p}`)
    return {
      send (p, seq, t) {
        senders[p]!.publish(subjects[p]!, Buffer.from(payloadText(seq, t)))
        return true
      },
      close: async () => { await conns.close() },
    }
  } catch (err) {
    await conns.close()
    throw err
  }
}

export function natsCoreTarget (): Target {
  return {
    name: 'nats_core',
    label: 'NATS core (no persistence, no acks)',
    windowBy: 'delivery',
    info: { send_payload_bytes: PAYLOAD_BYTES, subjects: 'one per receiver' },
    start: async () => await startNatsServer(await freePort()),
    connect: async (server, pairs, sink) => await connectNatsCore(server.url, pairs, sink),
  }
}
