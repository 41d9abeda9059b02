/** The worked examples in docs/protocol.md are real: they verify with the code. */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeClientFrame, validateEnvelope, type Envelope } from '@agentmesh/protocol'
import {
  deriveExchangeKey, envelopeHeaderBinding, envelopeSigningBytes, fromB64u, identityFromSecret, sessionAssociatedData, toB64u,
  verifyChallenge, verifyEnvelope,
} from '@agentmesh/crypto'

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')
const alice = identityFromSecret(new Uint8Array(32).fill(1))
const bob = identityFromSecret(new Uint8Array(32).fill(2))

function frameLine (prefix: string): Record<string, any> {
  const line = doc.split('\n').find(l => l.startsWith(prefix))
  assert.ok(line !== undefined, `docs/protocol.md has a line starting with ${prefix}`)
  return JSON.parse(line.slice(2)) as Record<string, any>
}

it('protocol doc - the test keys and AMIDs are the ones the code derives', () => {
  assert.match(doc, new RegExp(`public key \\(base64url\\)\\s+${toB64u(alice.publicKey)}`))
  assert.match(doc, new RegExp(`AMID\\s+${alice.amid}`))
  assert.ok(doc.includes(bob.amid))
})

it('protocol doc - the sample send frame decodes and its signature verifies; the signed text is the one shown', () => {
  const line = doc.split('\n').find(l => l.startsWith('→ {"op":"send","env":{"v"'))!
  const d = decodeClientFrame(line.slice(2), 1 << 20)
  assert.ok(d.ok && d.frame.op === 'send')
  const env = d.frame.env
  assert.equal(env.from, alice.amid)
  assert.equal(verifyEnvelope(env), true)
  const signed = new TextDecoder().decode(envelopeSigningBytes(env))
  assert.ok(doc.includes(signed.split('\n')[1]!), 'the canonical JSON shown in §8 is the signed one')
})

it('protocol doc - the sample auth answers the sample challenge', () => {
  const ch = frameLine('← {"op":"challenge","v"')
  const auth = frameLine('→ {"op":"auth","v"')
  assert.equal(auth.nonce, ch.nonce)
  assert.equal(verifyChallenge(auth.amid, auth.nonce, ch.relay, auth.sig), true)
})

it('protocol doc - the worked agentmesh/0.3 envelope is valid unsigned, and its associated data is AD || HEADER || HB as the hex shows', () => {
  const line = doc.split('\n').find(l => l.startsWith('{"v":"agentmesh/0.3"'))
  assert.ok(line !== undefined, 'docs/protocol.md §14.3 has the worked envelope')
  const env = JSON.parse(line) as Envelope
  assert.equal(validateEnvelope(env, line.length, 1 << 20), undefined)
  assert.equal(env.sig, undefined)
  assert.deepEqual([env.from, env.to], [alice.amid, bob.amid])
  // the hex block after the envelope: each line's hex groups, before its comment
  const lines = doc.slice(doc.indexOf('Its associated data, 359 bytes')).split('```')[1]!.split('\n')
  const hex = lines.map(l => l.slice(14).split(/\s{2,}/)[0]!.replaceAll(' ', '')).join('')
  assert.match(hex, /^[0-9a-f]+$/)
  const bytes = Buffer.from(hex, 'hex')
  assert.equal(bytes.length, 359)
  const axk = deriveExchangeKey(alice)
  const bxk = deriveExchangeKey(bob)
  assert.ok(doc.includes(`Alice's\n\`${toB64u(axk.publicKey)}\``) && doc.includes(`Bob's \`${toB64u(bxk.publicKey)}\``), 'the exchange keys shown are the derived ones')
  const ad = sessionAssociatedData({ identityKey: alice.publicKey, exchangeKey: axk.publicKey }, { identityKey: bob.publicKey, exchangeKey: bxk.publicKey })
  assert.equal(bytes.subarray(0, 132).toString('hex'), Buffer.from(ad).toString('hex'))
  const h = (env.payload as { header: { dh: string, pn: number, n: number } }).header
  const header = Buffer.alloc(41)
  header[0] = 0x05
  header.set(fromB64u(h.dh), 1)
  header.writeUInt32BE(h.pn, 33)
  header.writeUInt32BE(h.n, 37)
  assert.equal(bytes.subarray(132, 173).toString('hex'), header.toString('hex'))
  assert.equal(bytes.subarray(173).toString('hex'), envelopeHeaderBinding(env).toString('hex'))
})
