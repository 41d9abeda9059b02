/**
 * Two relay nodes in this process (real sockets) over one Store (the memory store, shared: SQLite
 * is one process's) and the NATS backplane: agents on different nodes exchange DMs, room messages
 * and presence; and a NATS that goes away while the relays run delays deliveries, never loses them
 * (the node catches up from the Store when the bus is back). The first cases use the NATS on
 * 127.0.0.1:4222 under a subject prefix of their own; the outage case runs a NATS server of its own
 * (nats-server on PATH or /usr/sbin) on a free port, and kills only that one.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { memoryStore } from '@agentmesh/store'
import { createIdentity } from '@agentmesh/crypto'
import { rawAgent, startRelay, waitFor, takeMessages as take, freePort } from '@agentmesh/testing'
import { chat, connect, memoryState, type Connection } from '@agentmesh/client'
import type { ChatEvent } from '@agentmesh/protocol'
import type { Relay, RelayInit } from '@agentmesh/server'
import { natsBackplane, type NatsBackplane } from '@agentmesh/backplane-nats'

const NATS_URL = process.env.AGENTMESH_TEST_NATS ?? 'nats://127.0.0.1:4222'
type T = { after: (fn: () => Promise<void> | void) => void }

/** Two relays over one Store, each with its own connection to NATS (one prefix for the pair). */
async function twoNodes (t: T, servers = NATS_URL, init: RelayInit = {}): Promise<{ one: Relay, two: Relay, bps: NatsBackplane[] }> {
  const store = memoryStore()
  const shared = { ...store, close: async () => {} }
  const prefix = `agentmesh-test.${randomBytes(6).toString('hex')}`
  const bps = [natsBackplane({ servers, prefix, reconnectWaitMs: 100 }), natsBackplane({ servers, prefix, reconnectWaitMs: 100 })]
  // a relay given a backplane leaves it to its owner: started and stopped here
  for (const bp of bps) await bp.start()
  const one = await startRelay(init, { store: shared, backplane: bps[0]! })
  const two = await startRelay(init, { store: shared, backplane: bps[1]! })
  t.after(async () => { await one.close(); await two.close(); for (const bp of bps) await bp.stop(); await store.close() })
  return { one, two, bps }
}

async function open (t: T, relay: Relay, name: string): Promise<Connection> {
  const c = await connect({ server: relay.url, identity: createIdentity(name), state: memoryState() })
  t.after(async () => { await c.close() })
  return c
}

describe('backplane-nats - two relays over one store', () => {
  it('backplane-nats - a DM sent on one relay reaches the receiver on the other, once', async (t) => {
    const { one, two } = await twoNodes(t)
    const bobId = createIdentity('bob')
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const envs = [1, 2, 3].map(i => alice.envelope(bobId.amid, `across nodes ${i}`))
    for (const env of envs) alice.send({ op: 'send', env })
    await alice.collect(f => f.op === 'ack', 3)
    const got = await bob.collect(f => f.op === 'deliver', 3)
    assert.deepEqual(got, envs.map((env, i) => ({ op: 'deliver', seq: i + 1, env })))
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 3)
  })

  it('backplane-nats - a room message said on one relay reaches a member who joined on the other', async (t) => {
    const { one, two } = await twoNodes(t)
    const alice = await open(t, one, 'alice')
    await chat(alice).createRoom({ id: 'ops' })
    await chat(alice).say('ops', 'before bob')
    const bob = await open(t, two, 'bob')
    await chat(bob).join('ops')
    await chat(alice).say('ops', 'after bob joined')
    const [m] = await take(bob, 1)
    assert.deepEqual([m!.text, m!.from, m!.room], ['after bob joined', alice.amid, 'ops'])
  })

  it('backplane-nats - presence crosses nodes: a watcher on the other relay hears an agent come online and go', async (t) => {
    const { one, two } = await twoNodes(t)
    const carol = await open(t, two, 'carol')
    const dave = createIdentity('dave')
    carol.watch([dave.amid])
    const heard: ChatEvent[] = []
    void (async () => { for await (const e of carol.events()) if (e.type === 'presence' && e.amid === dave.amid) heard.push(e) })()
    const dc = await connect({ server: one.url, identity: dave, state: memoryState() })
    t.after(async () => { await dc.close() })
    await waitFor(() => heard.some(e => e.status === 'online'), 'carol (other node) to hear dave online')
    await dc.close()
    await waitFor(() => heard.some(e => e.status === 'offline'), 'carol to hear dave offline')
  })

  it('backplane-nats - a relay that stops cleanly says node:leaving over NATS: the other drops it at once, counted as left, not lost', async (t) => {
    const apiKey = 'nats-cluster-test-operator-key-0123'
    // a peer timeout no test waits out: only node:leaving can drop the closed node in time
    const { one, two, bps } = await twoNodes(t, NATS_URL, { clusterHeartbeatMs: 50, clusterPeerTimeoutMs: 600_000, apiKey })
    type Info = { node: { id: string, peers: Array<{ id: string }> } }
    const info = async (url: string): Promise<Info> => (await (await fetch(`${url}/api/v1/info`)).json()) as Info
    await waitFor(async () => (await info(two.url)).node.peers.length === 1, 'two to hear one over NATS')
    const received = bps[1]!.counters.received
    await one.close()
    await waitFor(async () => (await info(two.url)).node.peers.length === 0, 'two to drop one at once')
    assert.ok(bps[1]!.counters.received > received)
    assert.equal(bps[1]!.counters.malformed, 0, 'node:leaving passes the field check')
    const metrics = await (await fetch(`${two.url}/metrics`, { headers: { 'X-API-Key': apiKey } })).text()
    assert.match(metrics, /^agentmesh_cluster_peers_left_total 1$/m)
    assert.match(metrics, /^agentmesh_cluster_peers_lost_total 0$/m)
  })
})

describe('backplane-nats - a relay closes while a stream flows', () => {
  it('backplane-nats - the sender on the closing relay fails over to the other, where the receiver is: every acknowledged message once, in order', async (t) => {
    const { one, two } = await twoNodes(t)
    const bobId = createIdentity('bob')
    // bob lists the nodes the other way round: the two agents start on different relays
    const bob = await connect({ server: [two.url, one.url], identity: bobId, state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await bob.close() })
    const alice = await connect({ server: [one.url, two.url], identity: createIdentity('alice'), state: memoryState(), minBackoffMs: 20, maxBackoffMs: 200 })
    t.after(async () => { await alice.close() })
    assert.deepEqual([alice.url, bob.url], [one.wsUrl, two.wsUrl])
    const got: string[] = []
    void (async () => { for await (const m of bob.messages()) got.push(m.text ?? '') })()
    const N = 200
    const sends: Array<Promise<unknown>> = []
    let closing: Promise<void> | undefined
    for (let i = 0; i < N; i++) {
      sends.push(alice.send(bobId.amid, { text: `m${i}` }))
      if (i === 59) { await sends[59]; closing = one.close() }
      if (i % 20 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    await closing
    assert.equal((await Promise.all(sends)).length, N)
    await waitFor(() => got.length >= N, `bob to receive ${N} messages`, 60_000)
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => `m${i}`))
    assert.equal(alice.url, two.wsUrl)
  })
})

/** nats-server on PATH or in /usr/sbin (Debian's package), or undefined. */
function natsServerBin (): string | undefined {
  if (process.env.NATS_SERVER_BIN !== undefined) return process.env.NATS_SERVER_BIN
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/bin'])) {
    if (dir !== '' && existsSync(`${dir}/nats-server`)) return `${dir}/nats-server`
  }
  return undefined
}

/** A NATS server of this test's own on `port`; resolves once it accepts connections. */
async function startNats (bin: string, port: number): Promise<ChildProcess> {
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  await waitFor(async () => await new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
    s.on('error', () => { resolve(false) })
  }), `nats-server on port ${port}`)
  return child
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGKILL')
  await gone
}

describe('backplane-nats - NATS going away while the relays run', () => {
  const bin = natsServerBin()
  it('backplane-nats - messages stored while NATS is down reach the agent on the other relay once it is back: each once, in order', { skip: bin === undefined ? 'nats-server is not installed' : false }, async (t) => {
    const port = await freePort()
    let nats = await startNats(bin!, port)
    t.after(async () => { await kill(nats) })
    // no catch-up timer in this case: only the reconnect may bring the messages
    const { one, two, bps } = await twoNodes(t, `nats://127.0.0.1:${port}`, { backplaneCatchUpMs: 3_600_000 })
    const bobId = createIdentity('bob')
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const first = alice.envelope(bobId.amid, 'while the bus is up')
    alice.send({ op: 'send', env: first })
    await bob.collect(f => f.op === 'deliver', 1)

    await kill(nats)
    await waitFor(() => !bps[0]!.connected() && !bps[1]!.connected(), 'both relays to see NATS gone')
    const during = [1, 2, 3].map(i => alice.envelope(bobId.amid, `while the bus is down ${i}`))
    for (const env of during) alice.send({ op: 'send', env })
    // stored (acknowledged) on relay one although no node could be told
    await alice.collect(f => f.op === 'ack', 4)
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 1, 'nothing reaches bob while the bus is down')

    nats = await startNats(bin!, port)
    const got = await bob.collect(f => f.op === 'deliver', 4)
    assert.deepEqual(got.map(f => [f.seq, f.env.id]), [first, ...during].map((env, i) => [i + 1, env.id]))
    assert.ok(bps[1]!.counters.reconnects >= 1)
    // relay one published nothing while NATS was away: the catch-up after the reconnect delivered them
    assert.ok(bps[0]!.counters.dropped >= 1, `dropped ${bps[0]!.counters.dropped}`)
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 4, 'each message once')
  })
})
