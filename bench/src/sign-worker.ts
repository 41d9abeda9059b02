/**
 * Worker thread: pre-signs AgentMesh send frames before any timed phase, so that Ed25519
 * signing (~50–70 µs per envelope here) is never part of a measurement. For each pair it
 * returns one Buffer holding `count` canonical send frames back to back, and their offsets.
 *
 * An E2EE job (`e2ee` set) carries the sender's ratchet state: the worker encrypts message
 * 0…count−1 from it (payloadText(seq, e2ee.t) as plaintext, the envelope header bound in),
 * builds the unsigned agentmesh/0.3 envelopes (ts = e2ee.t) whose payload is
 * e2eePayloadText(message), and returns each frame split around that payload: head k is
 * offsets[2k]…offsets[2k+1], tail k is offsets[2k+1]…offsets[2k+2]. Encryption is deterministic
 * for a given state, so the sender, encrypting the same plaintexts from the same state during the
 * run, gets the same ciphertexts and puts them between head and tail: the signature fits.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { deserializeRatchetState, identityFromSecret, ratchetEncrypt, signEnvelope, type RatchetState } from '@agentmesh/crypto'
import { PROTOCOL_E2EE, encodeSend } from '@agentmesh/protocol'
import { e2eeBinding, e2eePayloadObject, e2eePayloadText } from './e2ee.ts'
import { payloadObject, payloadText } from './util.ts'

export interface SignJob {
  pair: number
  secret: Uint8Array
  to: string
  /** E2EE: the sender's ratchet state (serialized) and the `t` of every plaintext */
  e2ee?: { state: string, t: number }
}
export interface SignResult { pair: number, bytes: ArrayBuffer, offsets: Int32Array }

const { jobs, count } = workerData as { jobs: SignJob[], count: number }
const te = new TextEncoder()

for (const job of jobs) {
  const me = identityFromSecret(job.secret)
  let state: RatchetState | undefined = job.e2ee === undefined ? undefined : deserializeRatchetState(job.e2ee.state)
  const parts: string[] = []
  let total = 0
  for (let seq = 0; seq < count; seq++) {
    let env: Record<string, unknown>
    let cut: string | undefined
    const id = `bench-${job.pair}-${seq}`
    if (state !== undefined) {
      const ts = job.e2ee!.t
      const r = ratchetEncrypt(state, te.encode(payloadText(seq, ts)), e2eeBinding(id, me.amid, job.to, ts))
      state = r.state
      env = { v: PROTOCOL_E2EE, id, from: me.amid, to: job.to, type: 'e2ee', ts, payload: e2eePayloadObject(r.message) }
      cut = e2eePayloadText(r.message)
    } else {
      env = signEnvelope(me, { id, to: job.to, type: 'bench', payload: payloadObject(seq, Date.now()) })
    }
    const f = encodeSend(JSON.stringify(env))
    if (cut === undefined) {
      parts.push(f)
      total += Buffer.byteLength(f)
    } else {
      const at = f.indexOf(cut)
      if (at < 0) throw new Error('the E2EE payload does not appear verbatim in its frame')
      parts.push(f.slice(0, at), f.slice(at + cut.length))
      total += Buffer.byteLength(f) - cut.length
    }
  }
  const buf = Buffer.allocUnsafeSlow(total)
  const offsets = new Int32Array(parts.length + 1)
  let off = 0
  for (let i = 0; i < parts.length; i++) {
    offsets[i] = off
    off += buf.write(parts[i]!, off, 'utf8')
  }
  offsets[parts.length] = off
  const bytes = buf.buffer as ArrayBuffer
  const result: SignResult = { pair: job.pair, bytes, offsets }
  parentPort!.postMessage(result, [bytes, offsets.buffer as ArrayBuffer])
}
