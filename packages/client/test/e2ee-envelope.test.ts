/**
 * agentmesh/0.3 encrypted envelopes (docs/protocol.md §14.3): a DM goes unsigned, its header bound
 * into the Double Ratchet's associated data; a relay that changes any header field in transit gets
 * the message refused (AM_ERR_DECRYPT_FAILED), nothing handed over, the session intact; signed
 * agentmesh/0.2 encrypted envelopes (an older SDK, `signEncrypted`) are still taken, both ways.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { fromB64u, identityFromSecret, signChallenge, signEnvelope, verifyEnvelope } from '@agentmesh/crypto'
import { connect } from '@agentmesh/client'
import { E2ee } from '@agentmesh/client/internal'
import { AgentMeshError, ErrorCode, PROTOCOL, PROTOCOL_E2EE, type Envelope } from '@agentmesh/protocol'
import { inProcessBackplane, type Relay } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { rawAgent, startRelay, drainUntil, takeMessages as take } from '@agentmesh/testing'
import { codes, sdkHarness, type Agent } from './sdk-fixtures.ts'

type Alter = (env: Record<string, unknown>) => Record<string, unknown> | undefined

type SocketClass = NonNullable<NonNullable<Parameters<typeof connect>[0]>['WebSocket']>

/**
 * A WebSocket that hands the connection every `deliver` frame's envelope through `alter` (undefined:
 * as it came): what a relay that changes envelopes in transit delivers.
 */
function tamperingSocket (alter: Alter): SocketClass {
  return class {
    private readonly ws: WebSocket
    constructor (url: string) {
      this.ws = new WebSocket(url, { perMessageDeflate: false })
      this.ws.on('error', () => {})
    }

    get readyState (): number { return this.ws.readyState }
    send (data: string): void { this.ws.send(data) }
    close (code?: number, reason?: string): void { this.ws.close(code, reason) }
    terminate (): void { this.ws.terminate() }
    addEventListener (type: string, listener: (ev: any) => void, options?: { once?: boolean }): void {
      if (type === 'message') {
        this.ws.on('message', (data) => {
          const f = JSON.parse(String(data)) as { op: string, env?: Record<string, unknown> }
          const env = f.op === 'deliver' && f.env !== undefined ? alter(f.env) : undefined
          listener({ data: env === undefined ? String(data) : JSON.stringify({ ...f, env }) })
        })
      } else if (type === 'close') {
        this.ws[options?.once === true ? 'once' : 'on']('close', (code: number, reason: Buffer) => { listener({ code, reason: reason.toString() }) })
      } else {
        this.ws.on(type as 'error' | 'open', (e?: unknown) => { listener(type === 'error' ? { error: e, message: (e as Error | undefined)?.message } : {}) })
      }
    }
  }
}

describe('e2ee envelopes (agentmesh/0.3)', () => {
  const { relays, agent, open } = sdkHarness()
  const start = async (): Promise<Relay> => {
    // the relay checks signatures, explicitly: an unsigned 0.3 envelope has none to check and is stored anyway
    const r = await startRelay({ verifySignatures: true })
    relays.push(r)
    return r
  }

  it('e2ee envelope - a DM goes as an unsigned agentmesh/0.3 envelope; a plaintext message stays a signed agentmesh/0.2 one', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob, { acceptPlaintext: true })
    await a.send(bob.id.amid, { text: 'hello bob' })
    await b.send(alice.id.amid, { text: 'hello alice' })
    const [m1] = await take(b, 1)
    const [m2] = await take(a, 1)
    for (const m of [m1!, m2!]) {
      assert.equal(m.encrypted, true)
      assert.deepEqual(Object.keys(m.envelope), ['v', 'id', 'from', 'to', 'type', 'ts', 'payload'], 'no sig')
      assert.equal(m.envelope.v, PROTOCOL_E2EE)
      assert.equal(m.envelope.type, 'e2ee')
    }
    assert.deepEqual([m1!.text, m2!.text], ['hello bob', 'hello alice'])
    // an unencrypted message (to an agent without a session) is signed, 0.2
    const carol = agent('carol')
    const c = await open(relay, carol, { acceptPlaintext: true })
    await a.send(carol.id.amid, { text: 'in the clear' }, { encrypt: false })
    const [p] = await take(c, 1)
    assert.equal(p!.encrypted, false)
    assert.equal(p!.envelope.v, PROTOCOL)
    assert.equal(verifyEnvelope(p!.envelope), true)
    assert.deepEqual([...codes(alice), ...codes(bob), ...codes(carol)], [])
  })

  it('e2ee envelope - during the transition a 0.2 peer (signed encrypted envelopes) and a 0.3 one talk both ways, in one session', async () => {
    const relay = await start()
    const old = agent('old')
    const neu = agent('new')
    let o = await open(relay, old, { signEncrypted: true })
    const n = await open(relay, neu)
    await o.send(neu.id.amid, { text: 'from 0.2 (1)' })
    const [x1] = await take(n, 1)
    assert.equal(x1!.envelope.v, PROTOCOL)
    assert.equal(verifyEnvelope(x1!.envelope), true, 'signed by the old peer')
    assert.ok((x1!.envelope.payload as { prekey?: unknown }).prekey !== undefined, 'the first message of the session, PQXDH header included')
    await n.send(old.id.amid, { text: 'from 0.3 (1)' })
    const [y1] = await take(o, 1)
    assert.equal(y1!.envelope.v, PROTOCOL_E2EE)
    assert.equal(y1!.envelope.sig, undefined)
    await o.send(neu.id.amid, { text: 'from 0.2 (2)' })
    await n.send(old.id.amid, { text: 'from 0.3 (2)' })
    assert.deepEqual((await take(n, 1)).map(m => [m.text, m.envelope.v, m.encrypted]), [['from 0.2 (2)', PROTOCOL, true]])
    assert.deepEqual((await take(o, 1)).map(m => [m.text, m.envelope.v, m.encrypted]), [['from 0.3 (2)', PROTOCOL_E2EE, true]])
    // the old peer upgrades: the same session goes on in 0.3
    await o.close()
    o = await open(relay, old)
    await o.send(neu.id.amid, { text: 'from 0.3 now' })
    assert.deepEqual((await take(n, 1)).map(m => [m.text, m.envelope.v]), [['from 0.3 now', PROTOCOL_E2EE]])
    assert.deepEqual(o.sessions().map(s => s.peer), [neu.id.amid])
    assert.deepEqual([...codes(old), ...codes(neu)], [])
  })

  it('e2ee envelope - the relay stores and forwards an unsigned 0.3 DM while checking signatures, and refuses any other unsigned envelope', async () => {
    const relay = await start()
    const alice = await rawAgent(relay.url)
    const bob = await rawAgent(relay.url)
    assert.equal((await alice.auth()).op, 'welcome')
    assert.equal((await bob.auth()).op, 'welcome')
    const dm = { v: PROTOCOL_E2EE, id: 'unsigned-dm-00001', from: alice.id.amid, to: bob.id.amid, type: 'e2ee', ts: Date.now(), payload: { v: 1, header: { dh: 'x', pn: 0, n: 0 }, ct: 'y' } }
    alice.send({ op: 'send', env: dm })
    assert.deepEqual(await alice.next(f => f.id === dm.id), { op: 'ack', id: dm.id })
    const d = await bob.next(f => f.op === 'deliver')
    assert.deepEqual(d.env, dm, 'forwarded as sent')
    for (const [id, env] of [
      ['unsigned-chat-001', { ...dm, id: 'unsigned-chat-001', type: 'chat', payload: { text: 'hi' } }],
      ['unsigned-v02-0001', { ...dm, id: 'unsigned-v02-0001', v: PROTOCOL }],
      ['unsigned-group-01', { ...dm, id: 'unsigned-group-01', to: '#ops', type: 'e2ee.group' }],
    ] as const) {
      alice.send({ op: 'send', env })
      const e = await alice.next(f => f.id === id)
      assert.deepEqual([e.op, e.code], ['error', ErrorCode.InvalidEnvelope], id)
    }
    // a signed envelope is still checked
    const forged = { ...signEnvelope(alice.id, { id: 'signed-forged-001', to: bob.id.amid, type: 'chat', payload: { text: 'a' } }), payload: { text: 'b' } }
    alice.send({ op: 'send', env: forged })
    assert.equal((await alice.next(f => f.id === forged.id)).code, ErrorCode.BadSignature)
    alice.close()
    bob.close()
  })

  it('e2ee envelope - POST /api/v1/messages takes an unsigned 0.3 DM from its sender only, and no other unsigned envelope', async () => {
    const relay = await start()
    const http = relay.url.replace(/^ws/, 'http').replace(/\/ws$/, '')
    const alice = await rawAgent(relay.url)
    const bob = await rawAgent(relay.url)
    await alice.auth()
    await bob.auth()
    const post = async (path: string, body: unknown, token?: string): Promise<{ status: number, body: any }> => {
      const res = await fetch(http + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
      return { status: res.status, body: await res.json() }
    }
    const ch = await post('/api/v1/auth/challenge', { amid: alice.id.amid })
    const tok = (await post('/api/v1/auth/token', { amid: alice.id.amid, nonce: ch.body.nonce, sig: signChallenge(alice.id, alice.id.amid, ch.body.nonce, ch.body.relay) })).body.token as string
    const dm = { v: PROTOCOL_E2EE, id: 'rest-unsigned-001', from: alice.id.amid, to: bob.id.amid, type: 'e2ee', ts: Date.now(), payload: { v: 1, header: { dh: 'x', pn: 0, n: 0 }, ct: 'y' } }
    const ok = await post('/api/v1/messages', { envelope: dm }, tok)
    assert.deepEqual([ok.status, ok.body.id, ok.body.duplicate], [201, dm.id, false])
    assert.deepEqual((await bob.next(f => f.op === 'deliver')).env, dm)
    const asBob = await post('/api/v1/messages', { envelope: { ...dm, id: 'rest-unsigned-002', from: bob.id.amid, to: alice.id.amid } }, tok)
    assert.deepEqual([asBob.status, asBob.body.error.code], [403, ErrorCode.SenderMismatch])
    const chat = await post('/api/v1/messages', { envelope: { ...dm, id: 'rest-unsigned-003', type: 'chat', payload: { text: 'hi' } } }, tok)
    assert.deepEqual([chat.status, chat.body.error.code], [400, ErrorCode.InvalidEnvelope])
    alice.close()
    bob.close()
  })

  it('e2ee envelope - a relay that changes a header field in transit gets the message refused (AM_ERR_DECRYPT_FAILED), nothing handed over, and the session goes on', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    let victim: string | undefined
    const a = await open(relay, alice)
    const b = await open(relay, bob, {
      WebSocket: tamperingSocket((env) => env.id === victim && env.from === alice.id.amid ? { ...env, ts: (env.ts as number) + 1 } : undefined),
    })
    await a.send(bob.id.amid, { text: 'one' })
    await b.send(alice.id.amid, { text: 'back' })
    assert.deepEqual((await take(b, 1)).map(m => m.text), ['one'])
    assert.deepEqual((await take(a, 1)).map(m => m.text), ['back'])
    victim = 'tampered-msg-0001'
    await a.send(bob.id.amid, { text: 'two' }, { id: victim })
    // bob refuses it and tells alice, who sends it again in a new session: handed over once, under its id
    const got = await drainUntil(b, () => codes(bob).length >= 1 && a.sent({ peer: bob.id.amid }).some(e => e.status === 'resent'), 'the refusal and the resend')
    assert.deepEqual(codes(bob), [ErrorCode.DecryptFailed])
    assert.match(bob.warnings[0]!.message, /tampered-msg-0001.*did not authenticate/)
    assert.ok(got.every(m => m.text === 'two' && m.id === victim), 'nothing but the genuine resend')
    await a.send(bob.id.amid, { text: 'three' })
    const rest = [...got, ...await take(b, 2 - got.length)]
    assert.deepEqual(rest.map(m => [m.id === victim ? 'two (resent)' : m.text, m.encrypted]), [['two (resent)', true], ['three', true]])
  })

  it('e2ee envelope - every header field changed (v, id, from, to, type, ts), on a first message and on later ones: refused (AM_ERR_DECRYPT_FAILED; another sender: the code of that check), nothing kept, the genuine one decrypts', async () => {
    const relay = await start()
    const alice = agent('alice')
    const bob = agent('bob')
    const carol = agent('carol')
    // register and publish prekeys; carol gets a session with bob, so a message "from carol" is tried on it
    const cc = await open(relay, carol)
    const cb = await open(relay, bob)
    const ca = await open(relay, alice)
    await cc.send(bob.id.amid, { text: 'hi bob' })
    await take(cb, 1)
    const e2ee = (x: Agent): E2ee => new E2ee({ identity: x.id, state: x.state, httpBase: relay.url.replace(/^ws/, 'http').replace(/\/ws$/, ''), prekeys: { lowWater: 1, target: 1, checkMs: 1e9 }, sessionIdleMs: 1e12, onWarning: () => {} })
    await ca.close()
    await cb.close()
    const ea = e2ee(alice)
    const eb = e2ee(bob)
    await ea.establish(bob.id.amid)
    const alterations = (env: Envelope): Array<[string, Envelope]> => [
      ['v (0.4)', { ...env, v: 'agentmesh/0.4' }],
      ['v (0.2, as if signed)', { ...env, v: PROTOCOL }],
      ['id', { ...env, id: env.id + 'x' }],
      ['from', { ...env, from: carol.id.amid }],
      ['to', { ...env, to: carol.id.amid }],
      ['type', { ...env, type: 'e2ee.other' }],
      ['ts', { ...env, ts: env.ts - 1 }],
    ]
    let n = 0
    for (const text of ['first (PQXDH header)', 'second', 'third']) {
      const env = ea.envelope(bob.id.amid, `genuine-message-${++n}`, 'chat', { text })
      assert.equal(env.sig, undefined)
      assert.ok((env.payload as { prekey?: unknown }).prekey !== undefined, 'alice has not heard back: each message carries the PQXDH header')
      for (const [field, bad] of alterations(env)) {
        // another sender: its PQXDH header names alice (AM_ERR_BAD_PREKEY); any other field: the AEAD
        const code = field === 'from' ? ErrorCode.BadPrekey : ErrorCode.DecryptFailed
        await assert.rejects(eb.decrypt(bad), (e: unknown) => AgentMeshError.is(e, code), `${text}: changed ${field}`)
        assert.equal(eb.kept(bad), undefined, 'nothing kept to hand over')
      }
      assert.equal(eb.hasSession(alice.id.amid), n > 1, 'a refused first message starts no session')
      assert.deepEqual((await eb.decrypt(env)).payload, { text })
      eb.forget(env)
    }
    // and the answer, a DH ratchet step, the same way
    const back = eb.envelope(alice.id.amid, 'genuine-answer-01', 'chat', { text: 'answer' })
    for (const [field, bad] of alterations(back)) {
      // another sender: alice has no session with carol (AM_ERR_UNKNOWN_SESSION); any other field: the AEAD
      const code = field === 'from' ? ErrorCode.UnknownSession : ErrorCode.DecryptFailed
      await assert.rejects(ea.decrypt(bad), (e: unknown) => AgentMeshError.is(e, code), `answer: changed ${field}`)
      assert.equal(ea.kept(bad), undefined)
    }
    assert.deepEqual((await ea.decrypt(back)).payload, { text: 'answer' })
  })

  it('e2ee envelope - an unsigned plaintext envelope or forged 0.3 DM the relay delivers is dropped with a stable code', async () => {
    const store = memoryStore()
    const backplane = inProcessBackplane()
    const relay = await startRelay({}, { store, backplane })
    relays.push(relay)
    const key = identityFromSecret(fromB64u(await store.relaySecret()), 'relay')
    assert.ok(key.amid.startsWith('am'))
    const inject = async (to: string, env: Record<string, unknown>): Promise<void> => {
      const [r] = await store.commit([{ sender: env.from as string, id: env.id as string, recipient: to, envelope: JSON.stringify(env), receivedAt: Date.now() }], [])
      if (r?.status !== 'stored') throw new Error(`not stored: ${JSON.stringify(r)}`)
      await backplane.publish({ type: 'inbox:stored', origin: 'operator', inboxes: [{ recipient: to, seq: r.seq }] })
    }
    const alice = agent('alice')
    const bob = agent('bob')
    const a = await open(relay, alice)
    const b = await open(relay, bob, { acceptPlaintext: true })
    const sent = await a.send(bob.id.amid, { text: 'genuine' })
    const [m1] = await take(b, 1)
    assert.equal(m1!.id, sent.id)
    // an unsigned chat message "from alice"; her first ciphertext again under a new id (a replay); and
    // a made-up 0.3 DM "from alice" ahead in her chain (the relay holds no key: it cannot authenticate)
    await inject(bob.id.amid, { v: PROTOCOL_E2EE, id: 'forged-plain-0001', from: alice.id.amid, to: bob.id.amid, type: 'chat', ts: Date.now(), payload: { text: '/deploy' } })
    await inject(bob.id.amid, { ...m1!.envelope, id: 'forged-copy-00001' })
    const p = m1!.envelope.payload as { header: { dh: string, pn: number, n: number }, ct: string }
    await inject(bob.id.amid, { ...m1!.envelope, id: 'forged-ahead-0001', payload: { v: 1, header: { ...p.header, n: 3 }, ct: p.ct } })
    assert.deepEqual(await drainUntil(b, () => bob.warnings.length >= 3, 'bob to drop the three'), [])
    assert.deepEqual(codes(bob), [ErrorCode.InvalidEnvelope, ErrorCode.MessageReplayed, ErrorCode.DecryptFailed])
    assert.equal(bob.warnings[0]!.message, 'dropped delivery 2: invalid envelope, field sig: Expected required property')
    assert.match(bob.warnings[1]!.message, /forged-copy-00001/)
    assert.match(bob.warnings[2]!.message, /forged-ahead-0001/)
    // the session was not moved by any of them: alice's next message is read (in a new session when the reset reached her first)
    await a.send(bob.id.amid, { text: 'next' })
    assert.deepEqual((await take(b, 1)).map(m => [m.text, m.encrypted]), [['next', true]])
  })
})
