import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { createIdentity } from '@agentmesh/crypto'
import { createSocket } from 'node:dgram'
import { createAgentNode, createRelayNode, iceServersFromEnv, parseIceServers, type AgentNode } from '@agentmesh/p2p'
// a small TURN server speaking the real protocol (RFC 5389 / 5766), on 127.0.0.1
// @ts-expect-error node-turn ships no types
import Turn from 'node-turn'

const SECRET = 'turn-secret-42xyz'

/** A circuit relay on 127.0.0.1 that lets any peer reserve: WebRTC's signalling channel in these tests. */
async function signallingRelay (): ReturnType<typeof createRelayNode> {
  return await createRelayNode({
    secretKey: createIdentity().secretKey, listen: ['/ip4/127.0.0.1/tcp/0'], isAllowed: async () => true,
    maxReservations: 8, reservationTtlMs: 60_000, circuitDurationMs: 60_000, circuitDataBytes: 1 << 20, maxConnections: 64,
  })
}

test('ice - AGENTMESH_ICE_SERVERS is a JSON array of RTCIceServer, checked field by field', () => {
  assert.equal(iceServersFromEnv({}), undefined, 'nothing configured: no ICE server (no STUN server is contacted)')
  const servers = iceServersFromEnv({ AGENTMESH_ICE_SERVERS: JSON.stringify([{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'], username: 'agent', credential: SECRET }]) })
  assert.deepEqual(servers?.map(s => [s.urls, s.username, s.credential]), [
    [['stun:stun.example.org:3478'], undefined, undefined],
    [['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'], 'agent', SECRET],
  ])
  const bad = (env: Record<string, string>, message: RegExp): void => {
    assert.throws(() => iceServersFromEnv(env), (e: Error & { code?: string }) => e.code === 'AM_ERR_INVALID_CONFIG' && message.test(e.message) && !e.message.includes(SECRET))
  }
  bad({ AGENTMESH_ICE_SERVERS: '[{urls:' }, /is not JSON/)
  bad({ AGENTMESH_ICE_SERVERS: '{"urls":"stun:x"}' }, /must be a JSON array/)
  bad({ AGENTMESH_ICE_SERVERS: '[{"urls":"http://x"}]' }, /\[0\]\.urls: "http:\/\/x" is not a stun:/)
  bad({ AGENTMESH_ICE_SERVERS: '[{"urls":"stun:x","port":1}]' }, /\[0\]\.port is not a field/)
  bad({ AGENTMESH_ICE_SERVERS: JSON.stringify([{ urls: 'turn:x:3478', username: 'a' }]) }, /a TURN server needs a username and a credential/)
  bad({ AGENTMESH_ICE_SERVERS: JSON.stringify([{ urls: 'turn:x:3478', username: 'a', credential: `${SECRET}:x` }]) }, /credential must be 1–512 characters without ':'/)
  bad({ AGENTMESH_ICE_SERVERS: JSON.stringify(Array.from({ length: 9 }, () => ({ urls: 'stun:x' }))) }, /lists 9 servers; at most 8/)
  bad({ AGENTMESH_ICE_SERVERS: '[]', AGENTMESH_TURN_URL: 'turn:x' }, /not both/)
  assert.deepEqual(parseIceServers([]), [])
})

test('ice - the TURN variables, the credential from the environment or a file only its owner reads', (t) => {
  const env = { AGENTMESH_TURN_URL: 'turn:turn.example.org:3478', AGENTMESH_TURN_USERNAME: 'agent' }
  const one = iceServersFromEnv({ ...env, AGENTMESH_TURN_CREDENTIAL: SECRET })
  assert.deepEqual(one?.map(s => [s.urls, s.username, s.credential]), [[['turn:turn.example.org:3478'], 'agent', SECRET]])
  const dir = mkdtempSync(join(tmpdir(), 'am-ice-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'turn-credential')
  writeFileSync(file, `${SECRET}\n`)
  chmodSync(file, 0o600)
  assert.equal(iceServersFromEnv({ ...env, AGENTMESH_TURN_CREDENTIAL_FILE: file })?.[0]?.credential, SECRET)
  for (const mode of [0o640, 0o604, 0o644]) {
    chmodSync(file, mode)
    assert.throws(() => iceServersFromEnv({ ...env, AGENTMESH_TURN_CREDENTIAL_FILE: file }),
      (e: Error & { code?: string }) => e.code === 'AM_ERR_INSECURE_FILE' && e.message.includes(`chmod 600 ${file}`) && e.message.includes(`mode ${mode.toString(8)}`) && !e.message.includes(SECRET))
  }
  assert.throws(() => iceServersFromEnv({ ...env, AGENTMESH_TURN_CREDENTIAL_FILE: join(dir, 'missing') }), { code: 'AM_ERR_INVALID_CONFIG' })
  assert.throws(() => iceServersFromEnv({ ...env, AGENTMESH_TURN_CREDENTIAL: SECRET, AGENTMESH_TURN_CREDENTIAL_FILE: file }), { code: 'AM_ERR_INVALID_CONFIG' })
  assert.throws(() => iceServersFromEnv({ AGENTMESH_TURN_URL: 'turn:x:3478' }), /needs a username and a credential/)
})

test('ice - a credential never shows in logs: inspect, JSON, String and template strings redact it', () => {
  const [server] = iceServersFromEnv({ AGENTMESH_TURN_URL: 'turn:turn.example.org:3478', AGENTMESH_TURN_USERNAME: 'agent', AGENTMESH_TURN_CREDENTIAL: SECRET })!
  assert.equal(server!.credential, SECRET, 'the WebRTC stack reads it')
  const shown = [inspect(server), inspect([server], { depth: 5, showHidden: true }), JSON.stringify(server), JSON.stringify({ iceServers: [server] }), String(server), `${server}`, Object.keys(server!).join(',')]
  for (const s of shown) assert.ok(!s.includes(SECRET), s)
  assert.match(JSON.stringify(server), /"credential":"\[redacted\]"/)
  assert.match(inspect(server), /turn:turn\.example\.org:3478/)
  assert.deepEqual({ ...server }, { urls: ['turn:turn.example.org:3478'], username: 'agent' }, 'a spread copy has no credential to leak')
})

test('webrtc - two agents connect over WebRTC, signalled through a circuit relay, then talk without it', { timeout: 60_000 }, async () => {
  const relay = await signallingRelay()
  const nodes: AgentNode[] = []
  try {
    const relayAddr = relay.getMultiaddrs()[0]!.toString()
    // no ICE server: host candidates only, nothing outside this machine is contacted (libjuice does not
    // gather loopback candidates, so ICE pairs this machine's own interface address, which the kernel
    // routes locally)
    const a = await createAgentNode({ keys: createIdentity(), listen: [`${relayAddr}/p2p-circuit`, '/webrtc'], iceServers: [] })
    const b = await createAgentNode({ keys: createIdentity(), listen: [`${relayAddr}/p2p-circuit`, '/webrtc'], iceServers: [] })
    nodes.push(a, b)
    const end = Date.now() + 10_000
    while (!a.getMultiaddrs().some(m => m.toString().includes('/webrtc'))) {
      if (Date.now() > end) throw new Error('a has no /webrtc address')
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    const target = a.getMultiaddrs().find(m => m.toString().includes('/p2p-circuit/webrtc/'))!
    assert.ok(target.toString().startsWith(`${relayAddr}/p2p-circuit/webrtc/p2p/${a.peerId.toString()}`), target.toString())
    // about one WebRTC dial in ten stalls in ICE here (measured: 2 of 20 runs) and times out after the
    // node's dial timeout; an agent then dials again (or falls back to the relay), so the test does too, once
    let conn
    try { conn = await b.dial(target, { signal: AbortSignal.timeout(20_000) }) } catch (err) {
      console.log(`webrtc: first dial failed (${(err as Error).name}); dialling again`)
      conn = await b.dial(target, { signal: AbortSignal.timeout(20_000) })
    }
    assert.equal(conn.remotePeer.toString(), a.peerId.toString())
    assert.ok(conn.remoteAddr.toString().includes('/webrtc'), conn.remoteAddr.toString())
    assert.equal(conn.limits, undefined, 'a WebRTC connection is direct: no relay limits on it')
    // the relay goes away: the WebRTC connection carries on
    await relay.stop()
    const rtt = await b.services.ping.ping(a.peerId, { signal: AbortSignal.timeout(10_000) })
    assert.ok(Number.isFinite(rtt))
    assert.equal(b.getConnections(a.peerId).filter(c => c.remoteAddr.toString().includes('/webrtc') && c.status === 'open').length, 1)
  } finally {
    for (const n of nodes) await n.stop()
    await relay.stop()
  }
})

/** A free UDP port on 127.0.0.1 (bound, read, released). */
async function freeUdpPort (): Promise<number> {
  const sock = createSocket('udp4')
  await new Promise<void>((resolve) => { sock.bind(0, '127.0.0.1', resolve) })
  const port = sock.address().port
  await new Promise<void>((resolve) => { sock.close(() => { resolve() }) })
  return port
}

// Opt-in: once libdatachannel has used a TURN server, something of it keeps the process alive after
// every node stopped (not a handle Node lists), so the file would not exit by itself. Run it with
//   AGENTMESH_TURN_TEST=1 node --import tsx --test --test-force-exit packages/p2p/test/ice.test.ts
const TURN_SKIP = process.env.AGENTMESH_TURN_TEST === '1' ? false : 'opt-in (AGENTMESH_TURN_TEST=1 with --test-force-exit): libdatachannel keeps the process alive after a TURN allocation'
test('turn - two agents connect over WebRTC through a local TURN server only, the credential read from a 0600 file', { timeout: 90_000, skip: TURN_SKIP }, async (t) => {
  const port = await freeUdpPort()
  const relayPort = await freeUdpPort()
  const turn = new Turn({
    authMech: 'long-term', credentials: { agent: SECRET }, realm: 'agentmesh.test', debugLevel: 'OFF',
    listeningPort: port, listeningIps: ['127.0.0.1'], relayIps: ['127.0.0.1'], minPort: relayPort, maxPort: relayPort + 20,
  }) as { start: () => void, stop: () => void, allocations: Record<string, { timer?: NodeJS.Timeout, sockets?: Array<{ close: () => void }> }> }
  turn.start()
  t.after(() => {
    turn.stop()
    // node-turn's stop() closes its listener only: its allocations keep a relay socket and a lifetime timer each
    for (const a of Object.values(turn.allocations)) {
      clearTimeout(a.timer)
      for (const sock of a.sockets ?? []) { try { sock.close() } catch { /* closed already */ } }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'am-turn-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'turn-credential')
  writeFileSync(file, SECRET, { mode: 0o600 })
  const ice = iceServersFromEnv({ AGENTMESH_TURN_URL: `turn:127.0.0.1:${port}`, AGENTMESH_TURN_USERNAME: 'agent', AGENTMESH_TURN_CREDENTIAL_FILE: file })!
  const relay = await signallingRelay()
  const nodes: AgentNode[] = []
  try {
    const relayAddr = relay.getMultiaddrs()[0]!.toString()
    // 'relay': only TURN candidates, so the connection exists only if the TURN server carries it
    const a = await createAgentNode({ keys: createIdentity(), listen: [`${relayAddr}/p2p-circuit`, '/webrtc'], iceServers: ice, iceTransportPolicy: 'relay' })
    const b = await createAgentNode({ keys: createIdentity(), listen: [`${relayAddr}/p2p-circuit`, '/webrtc'], iceServers: ice, iceTransportPolicy: 'relay' })
    nodes.push(a, b)
    const end = Date.now() + 10_000
    while (!a.getMultiaddrs().some(m => m.toString().includes('/webrtc'))) {
      if (Date.now() > end) throw new Error('a has no /webrtc address')
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    const target = a.getMultiaddrs().find(m => m.toString().includes('/p2p-circuit/webrtc/'))!
    let conn
    try { conn = await b.dial(target, { signal: AbortSignal.timeout(20_000) }) } catch (err) {
      console.log(`turn: first dial failed (${(err as Error).name}); dialling again`)
      conn = await b.dial(target, { signal: AbortSignal.timeout(20_000) })
    }
    assert.equal(conn.remotePeer.toString(), a.peerId.toString())
    assert.ok(conn.remoteAddr.toString().includes('/webrtc'))
    const rtt = await b.services.ping.ping(a.peerId, { signal: AbortSignal.timeout(10_000) })
    assert.ok(Number.isFinite(rtt))
    assert.ok(Object.keys(turn.allocations).length >= 1, 'the TURN server holds the allocations that carry it')
  } finally {
    for (const n of nodes) await n.stop()
    await relay.stop()
  }
})
