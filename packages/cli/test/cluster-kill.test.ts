/**
 * Issue 17's acceptance check, with real processes: three `agentmesh serve` (the CLI binary) on one
 * fresh PostgreSQL schema (dropped after) and one NATS (a nats-server of this test's own on a free
 * port, so the shared one on 4222 is never touched); agents spread over the three with every node's
 * address (`server: [a, b, c]`, rotated); a stream of a few thousand messages from several senders;
 * relays killed with SIGKILL at different moments of the stream (counted in acknowledged
 * messages, not in time) and restarted on the same port, then NATS itself stopped for a while. Then:
 * every acknowledged message arrived exactly once at the application, in order per sender; the
 * agents of the killed node moved to the next address of their list; its peers dropped it from
 * GET /api/v1/info (its heartbeat stopped), and one stopped with SIGTERM is dropped as left, not
 * lost (it said node:leaving); the audit chain is one and
 * verifies. And with PostgreSQL cut under two relay processes (a TCP relay the test stops; the real
 * database is never touched), a send is refused with a code and never acknowledged.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import pg from 'pg'
import { createIdentity } from '@agentmesh/crypto'
import { connect, memoryState, type Connection } from '@agentmesh/client'
import { postgresStore } from '@agentmesh/store-postgres'
import { verifyAudit } from '@agentmesh/store'
import { ErrorCode } from '@agentmesh/protocol'
import { freePort, rawAgent, spawnRelay, tcpProxy, tempDir, waitFor, type RelayProcess } from '@agentmesh/testing'

const PG_URL = process.env.AGENTMESH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
type T = { after: (fn: () => Promise<void> | void) => void }

/** nats-server on PATH or in /usr/sbin (Debian's package), or undefined. */
function natsServerBin (): string | undefined {
  if (process.env.NATS_SERVER_BIN !== undefined) return process.env.NATS_SERVER_BIN
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/bin'])) {
    if (dir !== '' && existsSync(`${dir}/nats-server`)) return `${dir}/nats-server`
  }
  return undefined
}

async function listening (port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
    s.on('error', () => { resolve(false) })
  })
}

async function startNats (bin: string, port: number): Promise<ChildProcess> {
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  await waitFor(async () => await listening(port), `nats-server on port ${port}`)
  return child
}

async function killChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGKILL')
  await gone
}

/** Three relay processes over one schema and one NATS, each on a port of its own that a restart keeps. */
async function cluster (t: T, natsUrl: string): Promise<{ store: string, nodes: RelayProcess[], urls: string[], restart: (i: number) => Promise<void> }> {
  const schema = `am_test_cluster_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
  const dir = tempDir('agentmesh-cluster-')
  const store = `${PG_URL}?schema=${schema}`
  const apiKey = randomBytes(24).toString('hex')
  const ports = [await freePort(), await freePort(), await freePort()]
  const nodes: RelayProcess[] = []
  const start = async (i: number): Promise<RelayProcess> => await spawnRelay({
    dataDir: `${dir.path}/node-${i}`,
    port: ports[i],
    args: ['--store', store, '--backplane', natsUrl],
    // a short heartbeat, so the test sees a killed node dropped by its peers
    env: { AGENTMESH_API_KEY: apiKey, AGENTMESH_CLUSTER_HEARTBEAT_MS: '200', AGENTMESH_CLUSTER_PEER_TIMEOUT_MS: '1500' },
  })
  t.after(async () => {
    for (const n of nodes) await n.kill('SIGKILL')
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
    dir.cleanup()
  })
  // one at a time: the first applies the migrations
  for (let i = 0; i < 3; i++) nodes.push(await start(i))
  return {
    store,
    nodes,
    urls: nodes.map(n => n.url),
    restart: async (i: number) => { nodes[i] = await start(i) },
  }
}

describe('cluster - three relay processes on one PostgreSQL schema and NATS', () => {
  const bin = natsServerBin()
  it('cluster - relays SIGKILLed twice at different moments of a stream of 2,700 messages from three senders (and restarted), then NATS stopped and restarted: every acknowledged message arrives exactly once, in order per sender', { skip: bin === undefined ? 'nats-server is not installed' : false, timeout: 240_000 }, async (t) => {
    const natsPort = await freePort()
    let nats = await startNats(bin!, natsPort)
    t.after(async () => { await killChild(nats) })
    const { nodes, urls, restart, store } = await cluster(t, `nats://127.0.0.1:${natsPort}`)
    assert.equal(nodes.some(n => n.stderr().includes('without --api-key')), false, 'no warning: the key is given')
    type Info = { relay_id: string, relay_amid: string, node: { id: string, peers: Array<{ id: string }> } }
    const info = async (u: string): Promise<Info> => (await (await fetch(`${u}/api/v1/info`)).json()) as Info
    const infos = await Promise.all(urls.map(info))
    assert.equal(new Set(infos.map(j => `${j.relay_id} ${j.relay_amid}`)).size, 1, 'one relay identity, the database\'s')
    // each node hears the two others
    await waitFor(async () => (await Promise.all(urls.map(info))).every(j => j.node.peers.length === 2), 'each node to list its two peers')
    const peersOf = async (i: number): Promise<string[]> => (await info(urls[i]!)).node.peers.map(p => p.id).sort()
    assert.deepEqual(await peersOf(2), [infos[0]!.node.id, infos[1]!.node.id].sort())

    const open = async (name: string, first: number): Promise<Connection> => {
      // every node's address, starting at a different one: agents spread over the cluster
      const list = [0, 1, 2].map(k => urls[(first + k) % 3]!)
      const c = await connect({ server: list, identity: createIdentity(name), state: memoryState(), minBackoffMs: 20, maxBackoffMs: 300 })
      t.after(async () => { await c.close() })
      return c
    }
    const portOf = (u: string): string => new URL(u).port
    const receivers = [await open('r0', 0), await open('r1', 1), await open('r2', 2)]
    const senders = [await open('s0', 1), await open('s1', 2), await open('s2', 0)]
    // what each receiver's application got: `${sender index}:${n}` per message, in arrival order
    const got: string[][] = receivers.map(() => [])
    const senderIndex = new Map(senders.map((s, i) => [s.amid, i]))
    receivers.forEach((r, ri) => {
      void (async () => { for await (const m of r.messages()) got[ri]!.push(`${senderIndex.get(m.from) ?? '?'}:${m.text ?? ''}`) })()
    })

    const PER_PAIR = 300 // 3 senders × 3 receivers × 300 = 2,700
    const TOTAL = senders.length * receivers.length * PER_PAIR
    let acked = 0
    const sends: Array<Promise<unknown>> = []
    // kill moments, in acknowledged messages: node 0 at 15%, restarted at 35%; node 1 at 55%,
    // restarted at 75%; NATS itself at 85% (stored messages wait for it), back at 92%
    const plan: Array<{ at: number, what: () => Promise<void> }> = [
      {
        at: Math.floor(TOTAL * 0.15),
        what: async () => {
          await nodes[0]!.kill('SIGKILL')
          // its peers stop hearing it, and drop it
          await waitFor(async () => !(await peersOf(2)).includes(infos[0]!.node.id), 'node 2 to drop the killed node 0', 30_000)
        },
      },
      { at: Math.floor(TOTAL * 0.35), what: async () => { await restart(0) } },
      { at: Math.floor(TOTAL * 0.55), what: async () => { await nodes[1]!.kill('SIGKILL') } },
      { at: Math.floor(TOTAL * 0.75), what: async () => { await restart(1) } },
      { at: Math.floor(TOTAL * 0.85), what: async () => { await killChild(nats) } },
      { at: Math.floor(TOTAL * 0.92), what: async () => { nats = await startNats(bin!, natsPort) } },
    ]
    const kills: string[] = []
    const stepper = (async () => {
      for (const step of plan) {
        await waitFor(() => acked >= step.at, `${step.at} acknowledged messages`, 120_000)
        await step.what()
        kills.push(`${step.at}`)
      }
    })()
    for (let n = 0; n < PER_PAIR; n++) {
      for (const [si, s] of senders.entries()) {
        for (const r of receivers) sends.push(s.send(r.amid, { text: `${n}` }).then(() => { acked++ }, (err: Error) => { throw new Error(`sender ${si}: ${err.message}`) }))
      }
      // let the stream flow (and the kills land) while it is sent: at most ~200 unacknowledged
      if (sends.length - acked > 200) await waitFor(() => sends.length - acked <= 100, 'the senders\' backlog to shrink', 120_000)
    }
    await Promise.all(sends)
    await stepper
    assert.equal(acked, TOTAL)
    assert.equal(kills.length, plan.length)
    await waitFor(() => got.every(g => g.length >= senders.length * PER_PAIR), `each receiver to get ${senders.length * PER_PAIR}`, 120_000)
    for (const [ri, g] of got.entries()) {
      assert.equal(g.length, senders.length * PER_PAIR, `receiver ${ri}: each message once`)
      for (let si = 0; si < senders.length; si++) {
        const from = g.filter(x => x.startsWith(`${si}:`)).map(x => x.slice(x.indexOf(':') + 1))
        assert.deepEqual(from, Array.from({ length: PER_PAIR }, (_, n) => `${n}`), `receiver ${ri}, sender ${si}: once each, in order`)
      }
    }
    // the agents that started on node 0 moved to node 1 when it died, then to node 2
    assert.deepEqual([receivers[0]!.url, senders[2]!.url].map(portOf), [portOf(urls[2]!), portOf(urls[2]!)])
    // one audit chain, whichever node wrote
    const check = await postgresStore(store)
    try {
      assert.equal((await verifyAudit(check)).ok, true)
    } finally {
      await check.close()
    }
  })

  it('cluster - a relay process stopped with SIGTERM says it is leaving: its peer drops it and counts it as left, not lost (the timeout would count it as lost)', { skip: bin === undefined ? 'nats-server is not installed' : false, timeout: 60_000 }, async (t) => {
    const natsPort = await freePort()
    const nats = await startNats(bin!, natsPort)
    t.after(async () => { await killChild(nats) })
    const schema = `am_test_cluster_${process.pid}_${randomBytes(4).toString('hex')}`
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
    const dir = tempDir('agentmesh-cluster-leave-')
    const apiKey = 'cluster-test-operator-key-0123456789'
    const nodes: RelayProcess[] = []
    t.after(async () => {
      for (const n of nodes) await n.kill('SIGKILL')
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await admin.end()
      dir.cleanup()
    })
    for (let i = 0; i < 2; i++) {
      // the default peer timeout (20 s); a drop by the timeout would count in peers_lost_total, not peers_left_total
      nodes.push(await spawnRelay({ dataDir: `${dir.path}/node-${i}`, args: ['--store', `${PG_URL}?schema=${schema}`, '--backplane', `nats://127.0.0.1:${natsPort}`], env: { AGENTMESH_API_KEY: apiKey, AGENTMESH_CLUSTER_HEARTBEAT_MS: '200' } }))
    }
    type Info = { node: { id: string, peers: Array<{ id: string }> } }
    const info = async (u: string): Promise<Info> => (await (await fetch(`${u}/api/v1/info`)).json()) as Info
    await waitFor(async () => (await info(nodes[1]!.url)).node.peers.length === 1, 'node 1 to hear node 0')
    assert.equal(await nodes[0]!.kill('SIGTERM'), 0, 'a clean stop')
    await waitFor(async () => (await info(nodes[1]!.url)).node.peers.length === 0, 'node 1 to drop node 0')
    const metrics = await (await fetch(`${nodes[1]!.url}/metrics`, { headers: { 'X-API-Key': apiKey } })).text()
    assert.match(metrics, /^agentmesh_cluster_peers_left_total 1$/m)
    assert.match(metrics, /^agentmesh_cluster_peers_lost_total 0$/m)
  })

  it('cluster - serve on a shared store without --api-key warns that the key file is the node\'s own', async (t) => {
    const schema = `am_test_cluster_${process.pid}_${randomBytes(4).toString('hex')}`
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
    const dir = tempDir('agentmesh-cluster-key-')
    const relay = await spawnRelay({ dataDir: dir.path, args: ['--store', `${PG_URL}?schema=${schema}`] })
    t.after(async () => {
      await relay.kill('SIGKILL')
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await admin.end()
      dir.cleanup()
    })
    await waitFor(() => relay.stderr().includes('without --api-key'), 'the warning on stderr')
    assert.match(relay.stderr(), /give every relay of the cluster the same --api-key \(AGENTMESH_API_KEY\)/)
  })

  it('cluster - PostgreSQL cut under two relay processes: a send is refused with AM_ERR_STORE_UNAVAILABLE, never acknowledged, and /healthz answers 503; once it is back the same envelope is stored and reaches the receiver on the other node once', { skip: bin === undefined ? 'nats-server is not installed' : false, timeout: 120_000 }, async (t) => {
    const natsPort = await freePort()
    const nats = await startNats(bin!, natsPort)
    t.after(async () => { await killChild(nats) })
    const schema = `am_test_cluster_${process.pid}_${randomBytes(4).toString('hex')}`
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
    const proxy = await tcpProxy(Number(new URL(PG_URL).port || 5432))
    const dir = tempDir('agentmesh-cluster-cut-')
    const via = new URL(PG_URL)
    via.hostname = '127.0.0.1'
    via.port = String(proxy.port)
    via.searchParams.set('schema', schema)
    const nodes: RelayProcess[] = []
    t.after(async () => {
      for (const n of nodes) await n.kill('SIGKILL')
      await proxy.stop()
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await admin.end()
      dir.cleanup()
    })
    for (let i = 0; i < 2; i++) {
      nodes.push(await spawnRelay({ dataDir: `${dir.path}/node-${i}`, args: ['--store', via.toString(), '--backplane', `nats://127.0.0.1:${natsPort}`], env: { AGENTMESH_API_KEY: 'cluster-test-operator-key-0123456789' } }))
    }
    const wsOf = (n: RelayProcess): string => n.url.replace(/^http/, 'ws') + '/ws'
    const bobId = createIdentity('bob')
    const bob = await rawAgent(wsOf(nodes[1]!), bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(wsOf(nodes[0]!))
    t.after(() => { alice.close() })
    await alice.auth()
    const first = alice.envelope(bobId.amid, 'before the cut')
    alice.send({ op: 'send', env: first })
    await alice.collect(f => f.op === 'ack' && f.id === first.id, 1)

    await proxy.stop()
    const lost = alice.envelope(bobId.amid, 'while the database is cut off')
    alice.send({ op: 'send', env: lost })
    const refusal = await alice.next(f => f.op === 'error' && f.id === lost.id)
    assert.equal(refusal.code, ErrorCode.StoreUnavailable)
    await alice.barrier()
    assert.deepEqual(alice.frames.filter(f => f.op === 'ack' && f.id === lost.id), [], 'no ack for what was not stored')
    for (const n of nodes) {
      await waitFor(async () => (await fetch(`${n.url}/healthz`)).status === 503, `${n.url}/healthz to answer 503`)
    }

    await proxy.start()
    alice.send({ op: 'send', env: lost })
    await alice.collect(f => f.op === 'ack' && f.id === lost.id, 1)
    const got = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(got.map(f => f.env.id), [first.id, lost.id])
    await bob.barrier()
    assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 2, 'each delivered once')
  })
})
