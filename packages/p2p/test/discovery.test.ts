import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentity } from '@agentmesh/crypto'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Key } from 'interface-datastore'
import {
  BoundedDatastore, bootstrapFromEnv, createAgentNode, dhtModeOf, findPeer, libp2pKey, openPeerRecord, sealPeerRecord, type AgentNode,
} from '@agentmesh/p2p'

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

/** Waits (bounded) until `ok` holds. */
async function until (ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

test('peer record - sealed by the AMID key, opened with its addresses and seq', async () => {
  const a = createIdentity()
  const bytes = await sealPeerRecord(a, ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002/ws'], 7n)
  const opened = await openPeerRecord(bytes, a.amid)
  assert.deepEqual(opened, { amid: a.amid, addrs: ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002/ws'], seq: 7n })
  // the base64url form the registry carries opens the same
  assert.deepEqual(await openPeerRecord(b64u(bytes), a.amid), opened)
})

test('peer record - refused when it is another agent\'s, tampered, empty, too long or not a record', async () => {
  const a = createIdentity()
  const b = createIdentity()
  const bytes = await sealPeerRecord(a, ['/ip4/127.0.0.1/tcp/4001'], 1n)
  await assert.rejects(openPeerRecord(bytes, b.amid), (e: Error & { code?: string }) => e.code === 'AM_ERR_PEER_RECORD_INVALID' && /signed by .* not by/.test(e.message))
  // one flipped bit in the signature (the envelope's last bytes)
  const tampered = Uint8Array.from(bytes)
  tampered[tampered.length - 1]! ^= 1
  await assert.rejects(openPeerRecord(tampered, a.amid), { code: 'AM_ERR_PEER_RECORD_INVALID' })
  await assert.rejects(openPeerRecord(new Uint8Array([1, 2, 3]), a.amid), { code: 'AM_ERR_PEER_RECORD_INVALID' })
  await assert.rejects(openPeerRecord('not base64url!', a.amid), { code: 'AM_ERR_PEER_RECORD_INVALID' })
  await assert.rejects(sealPeerRecord(a, []), { code: 'AM_ERR_PEER_RECORD_INVALID' })
  const many = Array.from({ length: 17 }, (_, i) => `/ip4/127.0.0.1/tcp/${4000 + i}`)
  await assert.rejects(sealPeerRecord(a, many), (e: Error & { code?: string }) => e.code === 'AM_ERR_PEER_RECORD_INVALID' && /17 addresses; at most 16/.test(e.message))
  // a record signed by a's key that names another peer
  const key = await libp2pKey(a)
  const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const lying = (await RecordEnvelope.seal(new PeerRecord({ peerId: other, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] }), key)).marshal()
  await assert.rejects(openPeerRecord(lying, a.amid), (e: Error & { code?: string }) => e.code === 'AM_ERR_PEER_RECORD_INVALID' && /names peer/.test(e.message))
})

test('dht mode - a node reached only through circuits is a client, else a server', () => {
  assert.equal(dhtModeOf(undefined, ['/ip4/127.0.0.1/tcp/0']), 'server')
  assert.equal(dhtModeOf(undefined, ['/p2p-circuit', '/webrtc']), 'client')
  assert.equal(dhtModeOf('client', ['/ip4/127.0.0.1/tcp/0']), 'client')
})

test('bounded datastore - refuses DHT records past the bound, keeps the rest of the node\'s data', async () => {
  const ds = new BoundedDatastore({ maxRecords: 2, maxRecordBytes: 8 })
  await ds.put(new Key('/dht/record/a'), new Uint8Array(1))
  await ds.put(new Key('/dht/provider/b'), new Uint8Array(1))
  await ds.put(new Key('/dht/record/a'), new Uint8Array(2)) // a key held already may be replaced
  assert.throws(() => ds.put(new Key('/dht/record/c'), new Uint8Array(1)), { code: 'AM_ERR_RATE_LIMITED' })
  assert.throws(() => ds.put(new Key('/dht/record/a'), new Uint8Array(9)), { code: 'AM_ERR_BODY_TOO_LARGE' })
  await ds.put(new Key('/peers/x'), new Uint8Array(100)) // not the DHT's: not bounded here
  assert.equal(ds.dhtRecords, 2)
  await ds.delete(new Key('/dht/record/a'))
  await ds.put(new Key('/dht/record/c'), new Uint8Array(1))
  assert.equal(ds.dhtRecords, 2)
})

test('findPeer - three nodes with one bootstrap find each other through the DHT', { timeout: 60_000 }, async () => {
  const ids = [createIdentity(), createIdentity(), createIdentity()]
  const nodes: AgentNode[] = []
  try {
    const boot = await createAgentNode({ keys: ids[0]!, dhtPrivateAddresses: true })
    nodes.push(boot)
    const bootAddr = boot.getMultiaddrs()[0]!.toString()
    const b = await createAgentNode({ keys: ids[1]!, bootstrap: [bootAddr], dhtPrivateAddresses: true })
    const c = await createAgentNode({ keys: ids[2]!, bootstrap: [bootAddr], dhtPrivateAddresses: true })
    nodes.push(b, c)
    // both joined the bootstrap peer's routing table (bounded wait)
    const table = (n: AgentNode): number => (n.services.dht as unknown as { routingTable: { size: number } }).routingTable.size
    await until(() => table(boot) >= 2 && table(b) >= 1 && table(c) >= 1, 'the routing tables')
    assert.equal(b.getConnections(c.peerId).length, 0, 'b and c are not connected before the lookup')
    const registry = async (): Promise<string | undefined> => { throw new Error('the registry must not be asked') }
    const found = await findPeer(b, ids[2]!.amid, { bootstrap: [bootAddr], registry, timeoutMs: 10_000 })
    assert.equal(found.source, 'dht')
    assert.equal(found.notice, undefined)
    assert.equal(found.peerId.toString(), c.peerId.toString())
    const want = c.getMultiaddrs().map(a => a.decapsulateCode(421).toString())
    assert.ok(found.addrs.some(a => want.includes(a.decapsulateCode(421).toString())), `found ${found.addrs.join(' ')}, c listens on ${want.join(' ')}`)
    // and the address works: b dials c and sees c's AMID
    const conn = await b.dial(found.addrs, { signal: AbortSignal.timeout(10_000) })
    assert.equal(conn.remotePeer.toString(), c.peerId.toString())
    // the other way round too
    const back = await findPeer(c, ids[1]!.amid, { bootstrap: [bootAddr], registry, timeoutMs: 10_000 })
    assert.equal(back.source, 'dht')
    assert.equal(back.peerId.toString(), b.peerId.toString())
  } finally {
    for (const n of nodes) await n.stop()
  }
})

test('findPeer - with no bootstrap peer answering, the registry\'s signed record is used and it says so', { timeout: 30_000 }, async () => {
  const a = createIdentity()
  const b = createIdentity()
  const node = await createAgentNode({ keys: a })
  try {
    const record = b64u(await sealPeerRecord(b, ['/ip4/127.0.0.1/tcp/4999'], 42n))
    const asked: string[] = []
    const registry = async (amid: string): Promise<string | undefined> => { asked.push(amid); return record }
    // no bootstrap at all
    const none = await findPeer(node, b.amid, { registry })
    assert.equal(none.source, 'registry')
    assert.deepEqual(none.addrs.map(String), ['/ip4/127.0.0.1/tcp/4999'])
    assert.equal(none.seq, 42n)
    assert.match(none.notice ?? '', /^discovery: no DHT bootstrap peer is configured; using the addresses .* signed in the registry \(record seq 42\)$/)
    // a bootstrap peer that does not answer (a closed port on 127.0.0.1)
    const dead = `/ip4/127.0.0.1/tcp/9/p2p/${(await createAgentNode({ keys: createIdentity(), listen: [] }).then(async n => { const id = n.peerId.toString(); await n.stop(); return id }))}`
    const down = await findPeer(node, b.amid, { bootstrap: [dead], registry, timeoutMs: 3000 })
    assert.equal(down.source, 'registry')
    assert.match(down.notice ?? '', /^discovery: no DHT bootstrap peer answered \(1 tried\); using the addresses/)
    assert.deepEqual(asked, [b.amid, b.amid])
    // a registry that hands out someone else's record is caught here, not believed
    const forged = b64u(await sealPeerRecord(createIdentity(), ['/ip4/127.0.0.1/tcp/1']))
    await assert.rejects(findPeer(node, b.amid, { registry: async () => forged }), { code: 'AM_ERR_PEER_RECORD_INVALID' })
    // nothing in the registry either
    await assert.rejects(findPeer(node, b.amid, { registry: async () => undefined }), (e: Error & { code?: string }) => e.code === 'AM_ERR_NOT_FOUND' && /published no peer record/.test(e.message))
  } finally {
    await node.stop()
  }
})

test('bootstrap - AGENTMESH_P2P_BOOTSTRAP lists multiaddrs with a peer id, checked', () => {
  const id = '12D3KooWNBgXzGiwJMYL831CRuSVizqqWvHu9xKJTBgdsk9733RW'
  assert.deepEqual(bootstrapFromEnv({}), [])
  assert.deepEqual(bootstrapFromEnv({ AGENTMESH_P2P_BOOTSTRAP: ` /ip4/127.0.0.1/tcp/4001/p2p/${id}, /dns4/relay.example/tcp/443/wss/p2p/${id} ` }),
    [`/ip4/127.0.0.1/tcp/4001/p2p/${id}`, `/dns4/relay.example/tcp/443/wss/p2p/${id}`])
  assert.throws(() => bootstrapFromEnv({ AGENTMESH_P2P_BOOTSTRAP: '/ip4/127.0.0.1/tcp/4001' }), (e: Error & { code?: string }) => e.code === 'AM_ERR_INVALID_CONFIG' && /not a multiaddr ending in \/p2p\/<peer id>/.test(e.message))
  assert.throws(() => bootstrapFromEnv({ AGENTMESH_P2P_BOOTSTRAP: 'relay.example:4001' }), { code: 'AM_ERR_INVALID_CONFIG' })
  assert.throws(() => bootstrapFromEnv({ AGENTMESH_P2P_BOOTSTRAP: Array.from({ length: 17 }, () => `/ip4/127.0.0.1/tcp/1/p2p/${id}`).join(',') }), /lists 17 peers; at most 16/)
})
