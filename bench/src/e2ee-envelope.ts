/**
 * One core, CPU time: a 256-byte encrypted DM as the envelope it travels in, from the sender's
 * ratchet to the receiver's plaintext, in both forms (docs/protocol.md §14.3): agentmesh/0.2
 * (ratchetEncrypt, signEnvelope, JSON there and back, verifyEnvelope, ratchetDecrypt) and
 * agentmesh/0.3 (the header binding instead of the signature). Not part of `npm run bench`:
 *   node --import tsx bench/src/e2ee-envelope.ts
 */
import { createIdentity, envelopeHeaderBinding, ratchetDecrypt, ratchetEncrypt, signEnvelope, verifyEnvelope, toB64u, fromB64u } from '@agentmesh/crypto'
import { PROTOCOL_E2EE } from '@agentmesh/protocol'
import { makeE2eeAgent, establish } from './e2ee.ts'
const alice = await makeE2eeAgent(createIdentity('a'), 0, Date.now(), true)
const bob = await makeE2eeAgent(createIdentity('b'), 4)
const pt = new Uint8Array(256).fill(0x61)
let i = 0
async function run (v: '0.2' | '0.3', n: number): Promise<number> {
  let { a, b } = await establish(alice, bob)
  const c0 = process.cpuUsage()
  for (let k = 0; k < n; k++) {
    const id = `bench-${++i}`
    if (v === '0.2') {
      const e = ratchetEncrypt(a, pt); a = e.state
      const env = signEnvelope(alice.id, { id, to: bob.id.amid, type: 'e2ee', payload: { v: 1, header: e.message.header, ct: toB64u(e.message.ciphertext) } })
      const got = JSON.parse(JSON.stringify(env))
      if (!verifyEnvelope(got)) throw new Error('sig')
      b = ratchetDecrypt(b, { header: got.payload.header, ciphertext: fromB64u(got.payload.ct) }).state
    } else {
      const h = { v: PROTOCOL_E2EE, id, from: alice.id.amid, to: bob.id.amid, type: 'e2ee', ts: Date.now() }
      const e = ratchetEncrypt(a, pt, envelopeHeaderBinding(h)); a = e.state
      const env = { ...h, payload: { v: 1, header: e.message.header, ct: toB64u(e.message.ciphertext) } }
      const got = JSON.parse(JSON.stringify(env))
      b = ratchetDecrypt(b, { header: got.payload.header, ciphertext: fromB64u(got.payload.ct) }, {}, envelopeHeaderBinding(got)).state
    }
  }
  const u = process.cpuUsage(c0)
  return Math.round(n / ((u.user + u.system) / 1e6))
}
const res: Record<string, number[]> = { '0.2 signed': [], '0.3 bound': [] }
for (let r = 0; r < 5; r++) { res['0.2 signed']!.push(await run('0.2', 4000)); res['0.3 bound']!.push(await run('0.3', 10000)) }
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(11), v.join(' '), 'median', [...v].sort((x, y) => x - y)[2], 'msg/s (CPU)')
