/** The worked examples in docs/protocol.md are real: they verify with the code. */
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { decodeClientFrame } from '@agentmesh/protocol'
import { envelopeSigningBytes, identityFromSecret, toB64u, verifyChallenge, verifyEnvelope } from '@agentmesh/crypto'

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
