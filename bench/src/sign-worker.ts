/**
 * Worker thread: pre-signs AgentMesh send frames before any timed phase, so that Ed25519
 * signing (~50–70 µs per envelope here) is never part of a measurement. For each pair it
 * returns one Buffer holding `count` canonical send frames back to back, and their offsets.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { identityFromSecret, signEnvelope } from '@agentmesh/crypto'
import { encodeSend } from '@agentmesh/protocol'
import { payloadObject } from './util.ts'

export interface SignJob { pair: number, secret: Uint8Array, to: string }
export interface SignResult { pair: number, bytes: ArrayBuffer, offsets: Int32Array }

const { jobs, count } = workerData as { jobs: SignJob[], count: number }

for (const job of jobs) {
  const me = identityFromSecret(job.secret)
  const frames: string[] = new Array(count)
  let total = 0
  for (let seq = 0; seq < count; seq++) {
    const env = signEnvelope(me, {
      id: `bench-${job.pair}-${seq}`,
      to: job.to,
      type: 'bench',
      payload: payloadObject(seq, Date.now()),
    })
    const f = encodeSend(JSON.stringify(env))
    frames[seq] = f
    total += Buffer.byteLength(f)
  }
  const buf = Buffer.allocUnsafeSlow(total)
  const offsets = new Int32Array(count + 1)
  let off = 0
  for (let seq = 0; seq < count; seq++) {
    offsets[seq] = off
    off += buf.write(frames[seq]!, off, 'utf8')
  }
  offsets[count] = off
  const bytes = buf.buffer as ArrayBuffer
  const result: SignResult = { pair: job.pair, bytes, offsets }
  parentPort!.postMessage(result, [bytes, offsets.buffer as ArrayBuffer])
}
