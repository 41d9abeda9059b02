import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { DirectSender, createAgentNode, decodeSend, serveDirect } from '@agentmesh/p2p'

const env = (id: string, from: string, to: string, extra = ''): string => `{"v":"agentmesh/0.3","id":"${id}","from":"${from}","to":"${to}","type":"chat","ts":1,"payload":{"t":"${extra}"}}`

test('direct - frames are answered in order with the authenticated sender; refusals carry their code', { timeout: 20_000 }, async () => {
  const a = createIdentity()
  const b = createIdentity()
  const na = await createAgentNode({ keys: a })
  const nb = await createAgentNode({ keys: b })
  const seen: Array<{ from: string, id: string }> = []
  const stop = await serveDirect(nb, (from, e) => {
    const id = (e as { id: string }).id
    seen.push({ from, id })
    return id.endsWith('9') ? { ok: false, code: 'AM_ERR_NO_GRANT', message: 'knock first' } : { ok: true }
  })
  const sender = new DirectSender(na)
  try {
    const addrs = nb.getMultiaddrs().map(m => m.toString())
    const results = await Promise.all(['m1', 'm2', 'm9', 'm3'].map(async id => await sender.send(b.amid, id, env(id, a.amid, b.amid), addrs, 5000)))
    assert.deepEqual(results, [
      { type: 'ack', duplicate: false }, { type: 'ack', duplicate: false },
      { type: 'refused', code: 'AM_ERR_NO_GRANT', message: 'knock first' }, { type: 'ack', duplicate: false },
    ])
    assert.deepEqual(seen, ['m1', 'm2', 'm9', 'm3'].map(id => ({ from: a.amid, id })))
  } finally {
    await sender.stop()
    await stop()
    await na.stop()
    await nb.stop()
  }
})

test('direct - a node whose key is not the AMID dialled is not reached; no address is unavailable at once', { timeout: 20_000 }, async () => {
  const a = createIdentity()
  const b = createIdentity()
  const c = createIdentity()
  const na = await createAgentNode({ keys: a })
  const nc = await createAgentNode({ keys: c }) // listens where a is told b is
  let got = 0
  const stop = await serveDirect(nc, () => { got++; return { ok: true } })
  const sender = new DirectSender(na)
  try {
    const r = await sender.send(b.amid, 'x1', env('x1', a.amid, b.amid), nc.getMultiaddrs().map(m => m.toString()), 5000)
    assert.equal(r.type, 'unavailable')
    assert.equal(got, 0)
    // remembered: the next send does not dial again
    const again = await sender.send(b.amid, 'x2', env('x2', a.amid, b.amid), nc.getMultiaddrs().map(m => m.toString()), 5000)
    assert.deepEqual(again, { type: 'unavailable', reason: 'the last dial failed; the peer is dialled again later' })
    const none = await sender.send(createIdentity().amid, 'x3', '{}', [], 5000)
    assert.deepEqual(none, { type: 'unavailable', reason: 'no known address for this peer' })
  } finally {
    await sender.stop()
    await stop()
    await na.stop()
    await nc.stop()
  }
})

test('direct - decodeSend refuses what is not a send frame or is over the bound, naming the id', () => {
  const u = (s: string): Uint8Array => new TextEncoder().encode(s)
  assert.deepEqual(decodeSend(u('nope'), 100), { refuse: { id: '', code: 'AM_ERR_INVALID_FRAME', message: 'a direct frame must be one JSON object' } })
  assert.deepEqual(decodeSend(u('{"op":"ack","env":{"id":"i1"}}'), 100), { refuse: { id: 'i1', code: 'AM_ERR_INVALID_FRAME', message: 'a direct frame is {"op":"send","env":{…}}' } })
  const big = `{"op":"send","env":{"id":"i2","p":"${'x'.repeat(200)}"}}`
  assert.deepEqual(decodeSend(u(big), 100), { refuse: { id: 'i2', code: 'AM_ERR_ENVELOPE_TOO_LARGE', message: 'the envelope is over 100 bytes, the most a direct link takes' } })
  const ok = decodeSend(u('{"op":"send","env":{"id":"i3"}}'), 100)
  assert.deepEqual(ok, { env: { id: 'i3' }, id: 'i3' })
})

test('direct - a stream with maxRefusalsPerStream refusals is closed by the receiver; the next send opens a new one', { timeout: 20_000 }, async () => {
  const a = createIdentity()
  const b = createIdentity()
  const na = await createAgentNode({ keys: a })
  const nb = await createAgentNode({ keys: b })
  const stop = await serveDirect(nb, (_from, e) => (e as { id: string }).id.startsWith('bad') ? { ok: false, code: 'AM_ERR_INVALID_ENVELOPE', message: 'no' } : { ok: true }, { limits: { maxRefusalsPerStream: 2 } })
  const sender = new DirectSender(na)
  try {
    const addrs = nb.getMultiaddrs().map(m => m.toString())
    const r = await Promise.all(['bad1', 'bad2', 'bad3'].map(async id => await sender.send(b.amid, id, env(id, a.amid, b.amid), addrs, 5000)))
    assert.deepEqual(r.map(x => x.type), ['refused', 'refused', 'unavailable'])
    assert.deepEqual(await sender.send(b.amid, 'good', env('good', a.amid, b.amid), addrs, 5000), { type: 'ack', duplicate: false })
  } finally {
    await sender.stop()
    await stop()
    await na.stop()
    await nb.stop()
  }
})
