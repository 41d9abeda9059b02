/**
 * The header binding of an agentmesh/0.3 end-to-end encrypted envelope (docs/protocol.md §14.3):
 * its bytes, and the ratchet's refusal of a message whose envelope header was changed in transit.
 */
import assert from 'node:assert/strict'
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto'
import { describe, it } from 'node:test'
import { ErrorCode } from '@agentmesh/protocol'
import {
  HEADER_BINDING_LABEL, acceptInitialMessage, envelopeHeaderBinding, fromB64u, generateX25519KeyPair, ratchetDecrypt, ratchetEncrypt,
  ratchetInitAlice, ratchetInitBob, serializeRatchetState, startSession, type EnvelopeHeader, type RatchetState,
} from '@agentmesh/crypto'
import { T0, makeAgent, rejects, str, takeBundle, text } from './session-fixtures.ts'

/** The worked example of docs/protocol.md §14.3. */
const EXAMPLE: EnvelopeHeader = {
  v: 'agentmesh/0.3',
  id: '0193a7c2-5e1f-7c3a-9b2d-4e5f6a7b8c9d',
  from: 'amAKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9',
  to: 'am9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu',
  type: 'e2ee',
  ts: 1763900000000,
}

/** Each header field changed as a relay might change it in transit. */
function altered (h: EnvelopeHeader): Array<[string, EnvelopeHeader]> {
  return [
    ['v', { ...h, v: 'agentmesh/0.4' }],
    ['id', { ...h, id: h.id.slice(0, -1) + (h.id.endsWith('0') ? '1' : '0') }],
    ['from', { ...h, from: h.to }],
    ['to', { ...h, to: h.from }],
    ['type', { ...h, type: 'e2ee.x' }],
    ['ts', { ...h, ts: h.ts + 1 }],
  ]
}

describe('header binding', () => {
  it('header binding - LP(label) || LP(v) || LP(id) || LP(from) || LP(to) || LP(type) || uint64be(ts), as docs/protocol.md §14.3 spells it', () => {
    const hb = envelopeHeaderBinding(EXAMPLE)
    const lp = (s: string): Buffer => Buffer.concat([Buffer.from([s.length >> 8, s.length & 0xff]), Buffer.from(s, 'utf8')])
    const ts = Buffer.alloc(8)
    ts.writeBigUInt64BE(BigInt(EXAMPLE.ts))
    const expected = Buffer.concat([lp(HEADER_BINDING_LABEL), lp(EXAMPLE.v), lp(EXAMPLE.id), lp(EXAMPLE.from), lp(EXAMPLE.to), lp(EXAMPLE.type), ts])
    assert.equal(hb.toString('hex'), expected.toString('hex'))
    assert.equal(HEADER_BINDING_LABEL, 'agentmesh/e2ee-header')
    assert.equal(hb.length, 186)
    // the hex printed in docs/protocol.md §14.3
    assert.equal(hb.toString('hex'),
      '0015' + Buffer.from('agentmesh/e2ee-header').toString('hex') +
      '000d' + Buffer.from('agentmesh/0.3').toString('hex') +
      '0024' + Buffer.from('0193a7c2-5e1f-7c3a-9b2d-4e5f6a7b8c9d').toString('hex') +
      '002e' + Buffer.from('amAKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9').toString('hex') +
      '002e' + Buffer.from('am9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu').toString('hex') +
      '0004' + Buffer.from('e2ee').toString('hex') +
      '0000019ab0a20700')
  })

  it('header binding - the encoding is unambiguous: moving bytes between fields changes it; a ts past 2^32 keeps its high bits', () => {
    const a = envelopeHeaderBinding({ ...EXAMPLE, id: 'abcdefgh', type: 'e2ee' })
    const b = envelopeHeaderBinding({ ...EXAMPLE, id: 'abcdefghe', type: '2ee' })
    assert.notEqual(a.toString('hex'), b.toString('hex'))
    const hi = envelopeHeaderBinding({ ...EXAMPLE, ts: 2 ** 40 + 5 })
    assert.equal(hi.subarray(-8).toString('hex'), '0000010000000005')
    assert.throws(() => envelopeHeaderBinding({ ...EXAMPLE, ts: 1.5 }), RangeError)
    assert.throws(() => envelopeHeaderBinding({ ...EXAMPLE, ts: -1 }), RangeError)
    assert.throws(() => envelopeHeaderBinding({ ...EXAMPLE, ts: 2 ** 53 }), RangeError)
  })

  it('header binding - the AEAD associated data is AD || HEADER(dh, pn, n) || HB (checked with Node\'s primitives alone)', () => {
    const sk = new Uint8Array(32).fill(7)
    const ad = new Uint8Array(132).fill(9)
    const bobKey = generateX25519KeyPair()
    const s0 = ratchetInitAlice(sk, ad, bobKey.publicKey, { now: T0 })
    const hb = envelopeHeaderBinding(EXAMPLE)
    const { message } = ratchetEncrypt(s0, text('bound'), hb)
    const mk = createHmac('sha256', fromB64u(s0.cks!)).update(Buffer.from([0x01])).digest()
    const okm = Buffer.from(hkdfSync('sha256', mk, new Uint8Array(32), 'AgentMesh_Ratchet_MessageKeys', 44))
    const header = Buffer.alloc(41)
    header[0] = 0x05
    Buffer.from(fromB64u(message.header.dh)).copy(header, 1)
    header.writeUInt32BE(message.header.pn, 33)
    header.writeUInt32BE(message.header.n, 37)
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32))
    d.setAAD(Buffer.concat([ad, header, hb]))
    d.setAuthTag(message.ciphertext.subarray(-16))
    assert.equal(Buffer.concat([d.update(message.ciphertext.subarray(0, -16)), d.final()]).toString(), 'bound')
    const b = ratchetInitBob(sk, ad, bobKey, { now: T0 })
    assert.equal(str(ratchetDecrypt(b, message, {}, hb).plaintext), 'bound')
    // without the binding (as an agentmesh/0.2 receiver would read it), it does not open
    assert.throws(() => ratchetDecrypt(b, message), (e: unknown) => (e as { code?: string }).code === ErrorCode.DecryptFailed)
  })

  it('header binding - a message whose envelope header was changed in any field is AM_ERR_DECRYPT_FAILED, the state untouched, and the genuine one still decrypts', async () => {
    const alice = await makeAgent('alice')
    const bob = await makeAgent('bob')
    const h0 = { ...EXAMPLE, from: alice.id.amid, to: bob.id.amid }
    const { state } = startSession(alice.id, alice.xk, takeBundle(bob), { now: T0 })
    const first = ratchetEncrypt(state, text('first'), envelopeHeaderBinding(h0))
    // the initial message too: its PQXDH AD binds both identities, the binding the envelope header
    for (const [field, h] of altered(h0)) {
      await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, first.message, { now: T0, binding: envelopeHeaderBinding(h) }), ErrorCode.DecryptFailed, undefined)
      assert.ok(await bob.store.loadOneTimePreKey(100), `the one-time prekey is kept after a changed ${field}`)
    }
    await rejects(() => acceptInitialMessage(bob.id, bob.xk, bob.store, first.message, { now: T0 }), ErrorCode.DecryptFailed)
    const acc = await acceptInitialMessage(bob.id, bob.xk, bob.store, first.message, { now: T0, binding: envelopeHeaderBinding(h0) })
    assert.equal(str(acc.plaintext), 'first')
    let a: RatchetState = first.state
    let b: RatchetState = acc.state
    // an answer (a DH ratchet step), then messages of one chain
    const hr = { ...h0, id: '0193a7c2-5e1f-7c3a-9b2d-4e5f6a7b8caa', from: bob.id.amid, to: alice.id.amid }
    const reply = ratchetEncrypt(b, text('reply'), envelopeHeaderBinding(hr))
    b = reply.state
    for (const [, h] of altered(hr)) {
      const before = serializeRatchetState(a)
      await rejects(() => ratchetDecrypt(a, reply.message, {}, envelopeHeaderBinding(h)), ErrorCode.DecryptFailed)
      assert.equal(serializeRatchetState(a), before)
    }
    a = ratchetDecrypt(a, reply.message, {}, envelopeHeaderBinding(hr)).state
    for (let i = 0; i < 3; i++) {
      const h = { ...h0, id: `0193a7c2-5e1f-7c3a-9b2d-4e5f6a7b8c0${i}`, ts: h0.ts + i }
      const m = ratchetEncrypt(a, text(`m${i}`), envelopeHeaderBinding(h))
      a = m.state
      for (const [field, bad] of altered(h)) {
        const before = serializeRatchetState(b)
        await rejects(() => ratchetDecrypt(b, m.message, {}, envelopeHeaderBinding(bad)), ErrorCode.DecryptFailed, undefined)
        assert.equal(serializeRatchetState(b), before, `a changed ${field} leaves the state as it was`)
      }
      const r = ratchetDecrypt(b, m.message, {}, envelopeHeaderBinding(h))
      assert.equal(str(r.plaintext), `m${i}`)
      b = r.state
    }
  })
})
