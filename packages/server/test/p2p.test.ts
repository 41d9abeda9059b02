/**
 * Direct links on the relay (docs/protocol.md §30): the signed peer record in the registry profile
 * (§30.1), and the relay as a circuit relay and DHT bootstrap for registered agents only (§30.3).
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signRequest, type Identity } from '@agentmesh/crypto'
import { amidFromPeerId, createAgentNode, findPeer, publishPeerRecord, relayP2pAddrs, sealPeerRecord, type AgentNode } from '@agentmesh/p2p'
import type { Relay, RelayInit } from '@agentmesh/server'
import { startRelay } from '@agentmesh/testing'

type Json = Record<string, any>

async function start (t: TestContext, init: RelayInit = {}): Promise<Relay> {
  const relay = await startRelay(init)
  t.after(async () => { await relay.close() })
  return relay
}

async function call (relay: Relay, who: Identity | undefined, method: string, path: string, body?: unknown): Promise<{ status: number, json: Json }> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (who !== undefined) Object.assign(headers, signRequest(who, method, path, text))
  const res = await fetch(relay.url + path, { method, headers, ...(text === '' ? {} : { body: text }) })
  return { status: res.status, json: await res.json() as Json }
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')
const record = async (who: Identity, addrs: string[], seq: bigint): Promise<{ record: string }> => ({ record: b64u(await sealPeerRecord(who, addrs, seq)) })

function expectError (r: { status: number, json: Json }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.json))
  assert.equal(r.json.error?.code, code)
  if (message !== undefined) assert.match(r.json.error.message, message)
}

/** Waits (bounded) until `ok` holds. */
async function until (ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

describe('peer records (§30.1)', () => {
  it('peer records - an agent publishes its signed record; the profile shows it; seq only moves forward; only the agent writes it', async (t) => {
    const relay = await start(t)
    const alice = createIdentity()
    const bob = createIdentity()
    const path = `/api/v1/agents/${alice.amid}/p2p`
    const first = await record(alice, ['/ip4/127.0.0.1/tcp/4001'], 10n)
    const put = await call(relay, alice, 'PUT', path, first)
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.deepEqual({ ...put.json, updated_at: 0 }, { addrs: ['/ip4/127.0.0.1/tcp/4001'], seq: '10', record: first.record, updated_at: 0 })
    const got = await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)
    assert.deepEqual(got.json.p2p, put.json)
    // the same record again is not an error; an older or equal seq is
    assert.equal((await call(relay, alice, 'PUT', path, first)).status, 200)
    expectError(await call(relay, alice, 'PUT', path, await record(alice, ['/ip4/127.0.0.1/tcp/4009'], 10n)), 409, ErrorCode.PeerRecordStale, /seq 10 is not above the stored one's \(10\)/)
    expectError(await call(relay, alice, 'PUT', path, await record(alice, ['/ip4/127.0.0.1/tcp/4009'], 9n)), 409, ErrorCode.PeerRecordStale)
    // bob's record under alice, signed by alice: refused (a record names its own signer)
    expectError(await call(relay, alice, 'PUT', path, await record(bob, ['/ip4/127.0.0.1/tcp/1'], 11n)), 400, ErrorCode.PeerRecordInvalid, /signed by .* not by/)
    // bob writing alice's record: refused
    expectError(await call(relay, bob, 'PUT', path, await record(alice, ['/ip4/127.0.0.1/tcp/1'], 12n)), 403, ErrorCode.Forbidden)
    expectError(await call(relay, undefined, 'PUT', path, await record(alice, ['/ip4/127.0.0.1/tcp/1'], 12n)), 401, ErrorCode.NotAuthenticated)
    expectError(await call(relay, alice, 'PUT', path, { record: 'AAAA' }), 400, ErrorCode.PeerRecordInvalid)
    expectError(await call(relay, alice, 'PUT', path, { record: first.record, extra: 1 }), 400, ErrorCode.InvalidArgument)
    // nothing refused changed what is stored
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.p2p, put.json)
    // a newer one replaces it; a profile update keeps it
    const next = await call(relay, alice, 'PUT', path, await record(alice, ['/ip4/127.0.0.1/tcp/4002', '/ip4/127.0.0.1/tcp/4003/ws'], 11n))
    assert.deepEqual([next.status, next.json.seq, next.json.addrs], [200, '11', ['/ip4/127.0.0.1/tcp/4002', '/ip4/127.0.0.1/tcp/4003/ws']])
    assert.equal((await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice' })).status, 200)
    const after = await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)
    assert.deepEqual([after.json.display_name, after.json.p2p.seq], ['Alice', '11'])
    // withdrawn: no longer shown
    assert.deepEqual((await call(relay, alice, 'DELETE', path)).json, { removed: true })
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.p2p, undefined)
    assert.deepEqual((await call(relay, alice, 'DELETE', path)).json, { removed: false })
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.display_name, 'Alice')
  })

  it('peer records - publishPeerRecord and findPeer\'s registry fallback go through the relay, and the reader verifies', async (t) => {
    const relay = await start(t)
    const alice = createIdentity()
    const bob = createIdentity()
    const stored = await publishPeerRecord(relay.url, alice, ['/ip4/127.0.0.1/tcp/4101'], { seq: 5n })
    assert.deepEqual(stored, { addrs: ['/ip4/127.0.0.1/tcp/4101'], seq: 5n })
    await assert.rejects(publishPeerRecord(relay.url, alice, ['/ip4/127.0.0.1/tcp/4102'], { seq: 4n }), { code: ErrorCode.PeerRecordStale })
    const node = await createAgentNode({ keys: bob })
    t.after(async () => { await node.stop() })
    const found = await findPeer(node, alice.amid, { registry: relay.url })
    assert.deepEqual([found.source, found.addrs.map(String), found.seq], ['registry', ['/ip4/127.0.0.1/tcp/4101'], 5n])
    assert.match(found.notice ?? '', /no DHT bootstrap peer is configured/)
    // a relay that swaps in another agent's record is caught by the reader
    const carol = createIdentity()
    await publishPeerRecord(relay.url, carol, ['/ip4/127.0.0.1/tcp/4103'])
    const swapped = async (): Promise<string> => (await (await fetch(`${relay.url}/api/v1/agents/${carol.amid}`)).json() as Json).p2p.record
    await assert.rejects(findPeer(node, alice.amid, { registry: swapped }), { code: ErrorCode.PeerRecordInvalid })
  })
})

describe('circuit relay (§30.3)', () => {
  it('circuit relay - off by default: no libp2p node, p2p null in /api/v1/info', async (t) => {
    const relay = await start(t)
    const info = await (await fetch(`${relay.url}/api/v1/info`)).json() as Json
    assert.equal(info.p2p, null)
  })

  it('circuit relay - an agent reachable only through the relay\'s circuit is dialled via /p2p-circuit; an unregistered peer gets no reservation', { timeout: 60_000 }, async (t) => {
    const relay = await start(t, { p2pListen: '/ip4/127.0.0.1/tcp/0', p2pMaxReservations: 8 })
    const info = await (await fetch(`${relay.url}/api/v1/info`)).json() as Json
    assert.equal(info.p2p.max_reservations, 8)
    assert.equal(info.p2p.circuit_data_bytes, 1_048_576)
    assert.equal(info.p2p.addrs.length, 1)
    const relayAddr: string = info.p2p.addrs[0]
    assert.match(relayAddr, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${info.p2p.peer_id}$`))
    assert.deepEqual(await relayP2pAddrs(relay.wsUrl), [relayAddr], 'an agent reads them from the relay URL it already has')
    assert.equal(amidFromPeerId(info.p2p.peer_id), info.relay_amid, 'its libp2p identity is the relay key')

    const a = createIdentity()
    const b = createIdentity()
    const stranger = createIdentity()
    for (const who of [a, b]) assert.equal((await call(relay, who, 'PUT', `/api/v1/agents/${who.amid}`, { display_name: 'agent' })).status, 200)
    const nodes: AgentNode[] = []
    t.after(async () => { for (const n of nodes) await n.stop() })
    // a listens only through the relay: no address of its own anyone could dial
    const na = await createAgentNode({ keys: a, listen: [`${relayAddr}/p2p-circuit`] })
    nodes.push(na)
    await until(() => na.getMultiaddrs().some(m => m.toString().includes('/p2p-circuit')), 'a\'s circuit address')
    const circuit = na.getMultiaddrs().map(String)
    assert.ok(circuit.every(m => m.startsWith(`${relayAddr}/p2p-circuit/p2p/`)), circuit.join(' '))
    // b reaches a through the circuit and sees a's AMID key
    const nb = await createAgentNode({ keys: b, listen: [] })
    nodes.push(nb)
    const conn = await nb.dial(na.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })
    assert.equal(conn.remotePeer.toString(), na.peerId.toString())
    assert.equal(conn.limits !== undefined, true, 'a relayed connection carries the relay\'s limits')
    const rtt = await nb.services.ping.ping(na.peerId, { signal: AbortSignal.timeout(10_000) })
    assert.ok(Number.isFinite(rtt))

    // a stranger (not registered on this relay) is refused by the gater: no reservation, no circuit through it
    await assert.rejects(createAgentNode({ keys: stranger, listen: [`${relayAddr}/p2p-circuit`] }),
      (e: Error) => e.name === 'UnsupportedListenAddressesError' && e.message.includes(`${relayAddr}/p2p-circuit`))
    const ns = await createAgentNode({ keys: stranger, listen: [] })
    nodes.push(ns)
    await assert.rejects(ns.dial(na.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) }))
    assert.equal(ns.getConnections(na.peerId).length, 0)
    // once registered, the same key gets through
    assert.equal((await call(relay, stranger, 'PUT', `/api/v1/agents/${stranger.amid}`, { display_name: 'late' })).status, 200)
    const nl = await createAgentNode({ keys: stranger, listen: [] })
    nodes.push(nl)
    const late = await nl.dial(na.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })
    assert.equal(late.remotePeer.toString(), na.peerId.toString())
  })

  it('circuit relay - the relay is the agents\' DHT bootstrap: two registered agents find each other through it', { timeout: 60_000 }, async (t) => {
    const relay = await start(t, { p2pListen: '/ip4/127.0.0.1/tcp/0' })
    const [relayAddr] = await relayP2pAddrs(relay.url)
    const a = createIdentity()
    const b = createIdentity()
    for (const who of [a, b]) assert.equal((await call(relay, who, 'PUT', `/api/v1/agents/${who.amid}`, { display_name: 'agent' })).status, 200)
    const nodes: AgentNode[] = []
    t.after(async () => { for (const n of nodes) await n.stop() })
    const na = await createAgentNode({ keys: a, bootstrap: [relayAddr!], dhtPrivateAddresses: true })
    const nb = await createAgentNode({ keys: b, bootstrap: [relayAddr!], dhtPrivateAddresses: true })
    nodes.push(na, nb)
    const table = (n: AgentNode): number => (n.services.dht as unknown as { routingTable: { size: number } }).routingTable.size
    await until(() => table(na) >= 1 && table(nb) >= 1, 'the agents in the relay\'s DHT')
    const found = await findPeer(nb, a.amid, { bootstrap: [relayAddr!], registry: relay.url, timeoutMs: 10_000 })
    assert.equal(found.source, 'dht')
    assert.ok(found.addrs.some(m => na.getMultiaddrs().some(x => x.decapsulateCode(421).equals(m.decapsulateCode(421)))), found.addrs.join(' '))
  })
})
