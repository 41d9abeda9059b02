/**
 * AgentMesh with end-to-end encryption: the same relay and client protocol as agentmesh.ts, but
 * every pair has a Double Ratchet session (PQXDH set up, and answered once, before the run), each
 * sender ratchet-encrypts every message it sends and each receiver decrypts every message it gets
 * (the plaintext's `bseq` is what the generator counts).
 *
 * Envelopes are unsigned agentmesh/0.3 ones (docs/protocol.md §14.3), built before the run as the
 * plaintext mode's are signed: a worker encrypts the same plaintexts from a copy of the sender's
 * state, the envelope header bound in, and writes the frames around the ciphertexts. During the run
 * the sender really encrypts each message (the ratchet is deterministic for a given state and
 * header, so it gets the same bytes) and sends the prepared head, the payload it just built and the
 * prepared tail; the receiver decrypts with the header binding of the envelope it got.
 */
import { ratchetDecrypt, ratchetEncrypt, serializeRatchetState, type RatchetState } from '@agentmesh/crypto'
import { e2eeBinding, e2eePayloadText, establish, makeE2eeAgent, readE2eeId, readE2eeMessage } from '../e2ee.ts'
import type { SignJob } from '../sign-worker.ts'
import { payloadText, readBseq } from '../util.ts'
import { signOnWorkers, type AgentMeshFixture, type E2eeHooks } from './agentmesh.ts'

export interface E2eeFixture {
  pairs: number
  /** the senders' (initiators') and receivers' states after the setup, before message 0 */
  senderStates: RatchetState[]
  receiverStates: RatchetState[]
  /** per pair: head and tail of each pre-signed frame (see sign-worker.ts) */
  parts: Buffer[]
  offsets: Int32Array[]
  /** per pair: the sender's and receiver's AMIDs (the envelope header) */
  amids: Array<[string, string]>
  /** frames per pair */
  count: number
  /** the `t` of every plaintext */
  t: number
  setupMs: number
  signMs: number
  /** bytes of the frame of message 0 of pair 0, and of its payload */
  frameBytes: number
  payloadBytes: number
}

/**
 * One session per pair between the fixture's identities (sender = initiator: its bundle fetch,
 * PQXDH, the receiver's acceptance and one answer, so later messages carry no PQXDH header), then
 * `count` encrypted frames per pair signed on worker threads.
 */
export async function buildE2eeFixture (fx: AgentMeshFixture, pairs: number, count: number): Promise<E2eeFixture> {
  const t0 = performance.now()
  const now = Date.now()
  const senderStates: RatchetState[] = []
  const receiverStates: RatchetState[] = []
  for (let p = 0; p < pairs; p++) {
    const a = await makeE2eeAgent(fx.senders[p]!, 0, now, true)
    const b = await makeE2eeAgent(fx.receivers[p]!, 1, now)
    const s = await establish(a, b, now)
    senderStates.push(s.a)
    receiverStates.push(s.b)
  }
  const setupMs = performance.now() - t0
  const t = Math.round(performance.now())
  const jobs: SignJob[] = senderStates.map((state, p) => ({
    pair: p, secret: fx.senders[p]!.secretKey, to: fx.receivers[p]!.amid, e2ee: { state: serializeRatchetState(state), t },
  }))
  const { frames, offsets } = await signOnWorkers(jobs, count)
  const ex: E2eeFixture = {
    pairs, senderStates, receiverStates, parts: frames, offsets, count, t, setupMs, signMs: performance.now() - t0 - setupMs,
    amids: fx.senders.slice(0, pairs).map((s, p) => [s.amid, fx.receivers[p]!.amid]),
    frameBytes: 0, payloadBytes: 0,
  }
  // the size of message 0 of pair 0, from a copy of its state
  const first = e2eePayloadText(ratchetEncrypt(senderStates[0]!, Buffer.from(payloadText(0, t))).message)
  ex.payloadBytes = first.length
  ex.frameBytes = offsets[0]![2]! - offsets[0]![0]! + first.length
  return ex
}

/** The sender and receiver sides of one run (the states move on; a fixture serves one run). */
export function e2eeHooks (ex: E2eeFixture): E2eeHooks {
  const send = ex.senderStates.slice()
  const recv = ex.receiverStates.slice()
  let encrypted = 0
  let decrypted = 0
  let encryptMs = 0
  let decryptMs = 0
  return {
    frame (p, seq) {
      if (seq >= ex.count) return undefined
      const t0 = performance.now()
      const r = ratchetEncrypt(send[p]!, Buffer.from(payloadText(seq, ex.t), 'latin1'), e2eeBinding(`bench-${p}-${seq}`, ex.amids[p]![0], ex.amids[p]![1], ex.t))
      send[p] = r.state
      const payload = e2eePayloadText(r.message)
      encryptMs += performance.now() - t0
      encrypted++
      const buf = ex.parts[p]!
      const off = ex.offsets[p]!
      const hs = off[2 * seq]!
      const he = off[2 * seq + 1]!
      const te = off[2 * seq + 2]!
      const out = Buffer.allocUnsafe(he - hs + payload.length + te - he)
      buf.copy(out, 0, hs, he)
      out.write(payload, he - hs, 'latin1')
      buf.copy(out, he - hs + payload.length, he, te)
      return out
    },
    open (p, data) {
      const t0 = performance.now()
      const r = ratchetDecrypt(recv[p]!, readE2eeMessage(data), {}, e2eeBinding(readE2eeId(data), ex.amids[p]![0], ex.amids[p]![1], ex.t))
      recv[p] = r.state
      decryptMs += performance.now() - t0
      decrypted++
      const bseq = readBseq(Buffer.from(r.plaintext.buffer, r.plaintext.byteOffset, r.plaintext.byteLength))
      if (bseq < 0) throw new Error('a decrypted payload without bseq')
      return bseq
    },
    stats: () => ({
      e2ee_encrypted: encrypted,
      e2ee_decrypted: decrypted,
      // wall time of the calls on the generator's thread (encoding of the payload included)
      e2ee_encrypt_us_per_msg: encrypted > 0 ? Math.round(encryptMs * 1000 / encrypted * 10) / 10 : 0,
      e2ee_decrypt_us_per_msg: decrypted > 0 ? Math.round(decryptMs * 1000 / decrypted * 10) / 10 : 0,
    }),
  }
}
