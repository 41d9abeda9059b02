import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { amidFromPeerId, createAgentNode, peerIdFromAmid } from '@agentmesh/p2p'

test('an AMID and its libp2p peer id name the same key, both ways', () => {
  const id = createIdentity()
  const peer = peerIdFromAmid(id.amid)
  assert.equal(peer.type, 'Ed25519')
  assert.equal(amidFromPeerId(peer), id.amid)
  assert.equal(amidFromPeerId(peer.toString()), id.amid)
  assert.equal(amidFromPeerId('not a peer id'), undefined)
  assert.throws(() => peerIdFromAmid('am-not-an-amid'), RangeError)
})

test('two agent nodes connect on 127.0.0.1 and each sees the other as its AMID', async () => {
  const a = createIdentity()
  const b = createIdentity()
  const na = await createAgentNode({ keys: a })
  const nb = await createAgentNode({ keys: b })
  try {
    assert.equal(amidFromPeerId(na.peerId), a.amid)
    const conn = await na.dial(nb.getMultiaddrs()[0]!)
    assert.equal(amidFromPeerId(conn.remotePeer), b.amid)
    const rtt = await na.services.ping.ping(nb.peerId)
    assert.ok(Number.isFinite(rtt) && rtt >= 0)
  } finally {
    await na.stop()
    await nb.stop()
  }
})
