import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Relay, RelayInit } from '@agentmesh/server'
import { createIdentity, saveIdentity, signEnvelope, type Identity } from '@agentmesh/crypto'
import { randomBytes } from 'node:crypto'
import { connect, memoryState, type ClientState, type Connection } from '@agentmesh/client'
import { E2ee } from '@agentmesh/client/internal'
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import { rawAgent, spawnRelay, startRelay, tempDir, type RelayProcess, drainUntil, takeMessages as take } from '@agentmesh/testing'

interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[], conn?: Connection }

async function prekeyCount (relay: Relay, amid: string): Promise<number> {
  const r = await fetch(`${relay.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/api/v1/agents/${amid}/prekeys`)
  return ((await r.json()) as { one_time: number }).one_time
}

function codes (a: Agent): string[] { return a.warnings.map(w => w.code) }

/** Where a text found in an SQLite file is: the rows holding it, or the page it sits in (free space). */
function whereIs (file: string, bytes: Buffer, text: string): string {
  const at = bytes.indexOf(text)
  const context = JSON.stringify(bytes.subarray(Math.max(0, at - 60), at + 60).toString('latin1'))
  const rows: string[] = []
  try {
    const db = new Database(file, { readonly: true })
    try {
      for (const t of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]) {
        for (const c of db.prepare(`SELECT name FROM pragma_table_info('${t}')`).pluck().all() as string[]) {
          const n = db.prepare(`SELECT count(*) FROM "${t}" WHERE CAST("${c}" AS TEXT) LIKE ?`).pluck().get(`%${text}%`) as number
          if (n > 0) rows.push(`${t}.${c} (${n} row(s))`)
        }
      }
    } finally {
      db.close()
    }
  } catch (err) {
    rows.push(`(not readable as a database: ${(err as Error).message})`)
  }
  return `at byte ${at} (page ${Math.floor(at / 4096) + 1}), in ${rows.length === 0 ? 'no live row (free space)' : rows.join(', ')}; around it: ${context}`
}

describe('e2ee', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const spawned: RelayProcess[] = []
  const conns: Connection[] = []
  const start = async (init: RelayInit = {}): Promise<Relay> => {
    const r = await startRelay(init)
    relays.push(r)
    return r
  }
  const agent = (name: string): Agent => ({ id: createIdentity(name), state: memoryState(), warnings: [] })
  const open = async (relay: Relay | RelayProcess, a: Agent, opts: Parameters<typeof connect>[0] = {}): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) }, ...opts })
    conns.push(c)
    a.conn = c
    return c
  }
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
    for (const r of spawned) await r.kill()
    dir.cleanup()
  })

  it('e2ee - messages in both directions are encrypted on the relay and arrive decrypted, in order, marked encrypted', async () => {
    // the relay in its own process, as deployed: in this one its SQLite pages could be cut from
    // memory that held the agents' plaintext, and the scan below would see that, not the relay
    const relay = await spawnRelay({ dataDir: join(dir.path, 'both') })
    spawned.push(relay)
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob)
    for (const t of ['a1', 'a2', 'a3']) await a.send(bob.id.amid, { text: `secret-${t}` })
    const got1 = await take(b, 3)
    assert.deepEqual(got1.map(m => m.text), ['secret-a1', 'secret-a2', 'secret-a3'])
    assert.ok(got1.every(m => m.encrypted && m.type === 'chat' && m.envelope.type === 'e2ee' && m.from === alice.id.amid))
    assert.ok(got1.every(m => !JSON.stringify(m.envelope).includes('secret-')), 'the envelope as delivered is ciphertext')
    // out of order: bob answers twice while alice sends again, with an application type
    const sends = [b.send(alice.id.amid, { text: 'secret-b1' }), a.send(bob.id.amid, { text: 'secret-a4', n: 4 }, { type: 'task.update' }), b.send(alice.id.amid, { text: 'secret-b2' })]
    await Promise.all(sends)
    assert.deepEqual((await take(a, 2)).map(m => m.text), ['secret-b1', 'secret-b2'])
    const [m4] = await take(b, 1)
    assert.equal(m4!.type, 'task.update')
    assert.deepEqual(m4!.payload, { text: 'secret-a4', n: 4 })
    await a.send(bob.id.amid, { text: 'secret-a5' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['secret-a5'])
    assert.deepEqual(codes(alice), [])
    assert.deepEqual(codes(bob), [])
    // nothing of it is readable in the relay's files
    await a.close()
    await b.close()
    assert.equal(await relay.kill(), 0, relay.stderr())
    for (const f of readdirSync(join(dir.path, 'both'))) {
      const bytes = readFileSync(join(dir.path, 'both', f))
      // the whole texts: "secret-" alone is also "relay_secret" followed by a base64url secret that starts with "-"
      const found = ['secret-a1', 'secret-a2', 'secret-a3', 'secret-a4', 'secret-a5', 'secret-b1', 'secret-b2'].find(t => bytes.includes(t))
      assert.equal(found, undefined, `${f} holds no plaintext: ${found === undefined ? '' : whereIs(join(dir.path, 'both', f), bytes, found)}`)
    }
  })

  it('e2ee - sessions, keys and the relay survive restarts of either side: nothing lost, nothing twice', async () => {
    const data = join(dir.path, 'restarts')
    let relay = await start({ dataDir: data })
    const port = relay.port
    const homes = { a: join(dir.path, 'ra'), b: join(dir.path, 'rb') }
    const aId = createIdentity('alice')
    const bId = createIdentity('bob')
    saveIdentity(homes.a, aId)
    saveIdentity(homes.b, bId)
    const openHome = async (home: string): Promise<Connection> => {
      const c = await connect({ server: relay.url, home, minBackoffMs: 20, maxBackoffMs: 200 })
      conns.push(c)
      return c
    }
    let a = await openHome(homes.a)
    let b = await openHome(homes.b)
    await a.send(bId.amid, { text: 'one' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['one'])
    await b.send(aId.amid, { text: 'reply' })
    await b.close()
    // bob is away; alice keeps writing
    await a.send(bId.amid, { text: 'two' })
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['reply'])
    await a.close()
    // the relay restarts
    await relay.close()
    relay = await start({ dataDir: data, port })
    a = await openHome(homes.a)
    await a.send(bId.amid, { text: 'three' })
    b = await openHome(homes.b)
    assert.deepEqual((await take(b, 2)).map(m => m.text), ['two', 'three'])
    await b.send(aId.amid, { text: 'back' })
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['back'])
    // nothing else arrives: the next message on each side is the one sent after all the others
    await b.send(aId.amid, { text: 'last to a' })
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['last to a'])
    await a.send(bId.amid, { text: 'last to b' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['last to b'])
    await a.close()
    await b.close()
    // at rest: the state files are owner-only and hold no plaintext
    for (const home of [homes.a, homes.b]) {
      for (const f of readdirSync(home).filter(f => f.startsWith('state.db'))) {
        assert.equal(statSync(join(home, f)).mode & 0o777, 0o600, `${f} is 0600`)
        const bytes = readFileSync(join(home, f))
        for (const t of ['"one"', '"two"', '"three"', '"reply"', '"back"']) assert.equal(bytes.includes(t), false, `${home}/${f} does not hold ${t}`)
      }
    }
  })

  it('e2ee - a tampered, a replayed and a too-far-ahead envelope each get their own error, and the conversation goes on', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob)
    await a.send(bob.id.amid, { text: 'first' })
    const [first] = await take(b, 1)
    const env = first!.envelope as Envelope
    const raw = await rawAgent(relay.url, alice.id)
    await raw.auth({ deliver: false })
    const resend = async (payload: Record<string, unknown>, id: string): Promise<void> => {
      raw.send({ op: 'send', env: signEnvelope(alice.id, { id, to: bob.id.amid, type: 'e2ee', payload }) })
      await raw.next(f => f.op === 'ack' && f.id === id)
    }
    // replayed: the same ciphertext again, under a new envelope id
    await resend(env.payload, 'replay-00000001')
    // tampered: a header altered, re-signed by its sender (the ciphertext no longer authenticates)
    const ct = env.payload.ct as string
    await resend({ ...env.payload, header: { ...(env.payload.header as object), n: 1 } }, 'tamper-00000001')
    // too far ahead: a message number thousands past the chain
    await resend({ ...env.payload, header: { ...(env.payload.header as object), n: 5000 } }, 'ahead-000000001')
    // an envelope altered in transit (not re-signed): the relay stores it (it checks signatures only
    // with --verify-signatures); the receiver refuses it
    const forged = signEnvelope(alice.id, { id: 'forged-00000001', to: bob.id.amid, type: 'e2ee', payload: env.payload })
    raw.send({ op: 'send', env: { ...forged, payload: { ...env.payload, ct: ct.slice(0, -2) + 'AA' } } })
    await raw.next(f => f.op === 'ack' && f.id === 'forged-00000001')
    raw.close()
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 4, 'bob to refuse the four'), [], 'none of them reaches the application')
    assert.deepEqual(codes(bob), [ErrorCode.MessageReplayed, ErrorCode.DecryptFailed, ErrorCode.TooFarAhead, ErrorCode.BadSignature])
    assert.match(bob.warnings[0]!.message, /replay-00000001/)
    // nothing was lost: the session goes on (bob told alice to start over after the failure)
    await a.send(bob.id.amid, { text: 'second' })
    await a.send(bob.id.amid, { text: 'third' })
    assert.deepEqual((await take(b, 2)).map(m => m.text), ['second', 'third'])
  })

  it('e2ee - a message for a deleted session is AM_ERR_UNKNOWN_SESSION; the sender is told and its next message starts a new session', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob)
    await a.send(bob.id.amid, { text: 'hello' })
    await take(b, 1)
    await b.send(alice.id.amid, { text: 'hi' }) // alice stops sending the PQXDH header
    await take(a, 1)
    assert.deepEqual(b.sessions().map(s => s.peer), [alice.id.amid])
    assert.equal(await b.resetSession(alice.id.amid), true)
    assert.deepEqual(b.sessions(), [])
    const lost = await a.send(bob.id.amid, { text: 'lost' })
    // bob cannot decrypt it and tells alice; she sends it again in a new session, shown under its first id
    const resent = await take(b, 1)
    assert.deepEqual(codes(bob), [ErrorCode.UnknownSession])
    assert.deepEqual(resent.map(m => [m.id, m.text]), [[lost.id, 'lost']])
    assert.notEqual(resent[0]!.envelope.id, lost.id, 'a new envelope (the relay stored the first one)')
    assert.deepEqual(a.sent({ peer: bob.id.amid }).map(e => [e.status, e.orig ?? null]), [['stored', null], ['resent', null], ['stored', lost.id]])
    assert.equal(a.sent({ peer: bob.id.amid })[1]!.resentAs, resent[0]!.envelope.id)
    assert.deepEqual([...new Set(codes(alice))], [ErrorCode.UnknownSession])
    await a.send(bob.id.amid, { text: 'again' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['again'])
  })

  it('e2ee - concurrent first messages from five agents each use their own one-time prekey; the SDK tops the count up on connect', async () => {
    const relay = await start()
    const bob = agent('bob')
    const b = await open(relay, bob, { prekeys: { lowWater: 8, target: 12 } })
    assert.equal(await prekeyCount(relay, bob.id.amid), 12)
    const senders = Array.from({ length: 5 }, (_, i) => agent(`s${i}`))
    const cs = await Promise.all(senders.map(s => open(relay, s)))
    await Promise.all(cs.map((c, i) => c.send(bob.id.amid, { text: `from ${i}` })))
    const got = await take(b, 5)
    assert.deepEqual(got.map(m => m.text).sort(), ['from 0', 'from 1', 'from 2', 'from 3', 'from 4'])
    assert.deepEqual(codes(bob), [])
    assert.equal(await prekeyCount(relay, bob.id.amid), 7)
    await b.close()
    await open(relay, bob, { prekeys: { lowWater: 8, target: 12 } })
    assert.equal(await prekeyCount(relay, bob.id.amid), 12, 'below the low-water mark: topped up to the target')
    await assert.rejects(connect({ server: relay.url, identity: bob.id, prekeys: { lowWater: 50, target: 10 } }), { code: ErrorCode.InvalidArgument })
  })

  it('e2ee - safety numbers match on both sides; a changed peer key stops the conversation and holds its messages until accepted', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob)
    await a.send(bob.id.amid, { text: 'hello' })
    await take(b, 1)
    const fromA = await a.peer(bob.id.amid)
    const fromB = await b.peer(alice.id.amid)
    assert.match(fromA.safetyNumber!, /^\d{60}$/)
    assert.equal(fromA.safetyNumber, fromB.safetyNumber)
    assert.equal(fromA.keyChanged, false)
    // alice loses her state and writes again from a home whose exchange key is another one (a
    // home made before the key was derived from the identity had a random one)
    await a.close()
    const alice2: Agent = { id: alice.id, state: memoryState(), warnings: [] }
    new E2ee({ identity: alice.id, state: alice2.state, httpBase: 'http://127.0.0.1:1', prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e9, onWarning: () => {} })
      .saveRecord('key', 'exchange', { secretKey: new Uint8Array(randomBytes(32)) })
    const a2 = await open(relay, alice2)
    await a2.send(bob.id.amid, { text: 'after reinstall' })
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 1, 'bob to hold the message'), [], 'held, not delivered')
    assert.deepEqual(codes(bob), [ErrorCode.PeerKeyChanged])
    const changed = await b.peer(alice.id.amid)
    assert.equal(changed.keyChanged, true)
    assert.equal(changed.safetyNumber, fromB.safetyNumber)
    assert.notEqual(changed.newSafetyNumber, fromB.safetyNumber)
    await assert.rejects(b.send(alice.id.amid, { text: 'blocked' }), { code: ErrorCode.PeerKeyChanged })
    const accepted = await b.acceptPeerKey(alice.id.amid)
    assert.equal(accepted.held, 1)
    assert.equal(accepted.keyChanged, false)
    assert.equal(accepted.verified, true)
    assert.equal(accepted.safetyNumber, (await a2.peer(bob.id.amid)).safetyNumber, 'the new numbers match on both sides')
    // the held message comes through on the next connection
    await b.close()
    const b2 = await open(relay, bob)
    assert.deepEqual((await take(b2, 1)).map(m => m.text), ['after reinstall'])
    await b2.send(alice.id.amid, { text: 'welcome back' })
    assert.deepEqual((await take(a2, 1)).map(m => m.text), ['welcome back'])
  })

  it('e2ee - an agent that lost its state keeps its exchange key: peers see no key change, and messages in flight are sent again', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob)
    await a.send(bob.id.amid, { text: 'one' })
    await take(b, 1)
    await b.send(alice.id.amid, { text: 'two' })
    await take(a, 1)
    const before = await a.peer(bob.id.amid)
    // bob loses state.db: same identity, no sessions, new prekeys
    await b.close()
    const bob2: Agent = { id: bob.id, state: memoryState(), warnings: [] }
    const b2 = await open(relay, bob2)
    const sent = await a.send(bob.id.amid, { text: 'three' })
    await a.send(bob.id.amid, { text: 'four' })
    const got = await take(b2, 2)
    assert.deepEqual(got.map(m => [m.id, m.text]), [[sent.id, 'three'], [got[1]!.id, 'four']])
    assert.deepEqual(codes(bob2).filter(c => c !== ErrorCode.UnknownSession), [], 'no key change, nothing else refused')
    const after = await a.peer(bob.id.amid)
    assert.equal(after.keyChanged, false)
    assert.equal(after.safetyNumber, before.safetyNumber)
  })

  it('e2ee - unencrypted messages are reported as such, or refused by policy; a peer without prekeys gets a clear error', async () => {
    const relay = await start()
    const bob = agent('bob')
    const b = await open(relay, bob)
    const raw = await rawAgent(relay.url)
    await raw.auth({ deliver: false })
    raw.send({ op: 'send', env: raw.envelope(bob.id.amid, 'plain words', 'plain-000000001') })
    await raw.next(f => f.op === 'ack')
    const [m] = await take(b, 1)
    assert.equal(m!.encrypted, false)
    assert.equal(m!.text, 'plain words')
    // the raw agent is registered but never published prekeys
    await assert.rejects(b.send(raw.id.amid, { text: 'x' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.NoPrekeys) && /--plaintext/.test(e.message))
    assert.equal((await b.send(raw.id.amid, { text: 'in clear' }, { encrypt: false })).duplicate, false)
    await assert.rejects(b.send(createIdentity().amid, { text: 'x' }), { code: ErrorCode.UnknownRecipient })
    await b.close()
    const before = bob.warnings.length
    const strict = await open(relay, bob, { acceptPlaintext: false })
    raw.send({ op: 'send', env: raw.envelope(bob.id.amid, 'refused', 'plain-000000002') })
    await raw.next(f => f.op === 'ack' && f.id === 'plain-000000002')
    assert.deepEqual(await drainUntil(strict, () => bob.warnings.length > before, 'bob to refuse the plaintext'), [])
    assert.deepEqual(codes(bob), [ErrorCode.PlaintextRefused])
    raw.close()
  })

  it('e2ee - the state is sealed with the identity and a passphrase: a wrong or missing one is AM_ERR_BAD_PASSPHRASE; idle sessions are deleted', async (t) => {
    const relay = await start()
    const home = join(dir.path, 'pass')
    const id = createIdentity('p')
    saveIdentity(home, id)
    const c1 = await connect({ server: relay.url, home, passphrase: 'correct horse' })
    await c1.close()
    await assert.rejects(connect({ server: relay.url, home, passphrase: 'wrong' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.BadPassphrase) && /AGENTMESH_PASSPHRASE/.test(e.message))
    await assert.rejects(connect({ server: relay.url, home }), { code: ErrorCode.BadPassphrase })
    const c2 = await connect({ server: relay.url, home, passphrase: 'correct horse' })
    const peer = agent('peer')
    await open(relay, peer)
    await c2.send(peer.id.amid, { text: 'x' })
    assert.equal(c2.sessions().length, 1)
    await c2.close()
    // the session goes idle on the test's clock (Date only; timers stay real)
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    t.mock.timers.tick(30)
    const c3 = await connect({ server: relay.url, home, passphrase: 'correct horse', sessionIdleMs: 10 })
    assert.deepEqual(c3.sessions(), [], 'the idle session was deleted')
    await c3.close()
  })
})
