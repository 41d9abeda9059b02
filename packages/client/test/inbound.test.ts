import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { connect, knock, memoryState, type Connection, type Message } from '@agentmesh/client'
import { inbound, MAX_INBOUND_STAGES, type InboundContext } from '@agentmesh/client/internal'
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import { InboundPipeline, toMessage } from '../src/inbound.ts'

const env = (n: number): Envelope => ({ v: 'agentmesh/0.2', id: `01900000-0000-7000-8000-${String(n).padStart(12, '0')}`, from: 'a', to: 'b', type: 'chat', ts: 1, payload: { text: `m${n}` }, sig: 'x' } as unknown as Envelope)

describe('inbound pipeline', () => {
  it('inbound - stages run in the order added; a consumed message goes no further', async () => {
    const seen: string[] = []
    const p = new InboundPipeline(() => {})
    p.use({ name: 'one', handle (ctx) { seen.push(`one:${ctx.message?.text ?? ''}`); return 'continue' } })
    p.use({ name: 'drop-m2', handle (ctx) { seen.push(`drop:${ctx.message?.text ?? ''}`); return ctx.message?.text === 'm2' ? 'consumed' : 'continue' } })
    p.use({ name: 'mark', handle (ctx) { seen.push(`mark:${ctx.message?.text ?? ''}`); ctx.message = { ...ctx.message!, untrusted: true }; return 'continue' } })
    assert.deepEqual(p.stages, ['one', 'drop-m2', 'mark'])
    const m1 = await p.run(1, env(1), toMessage(env(1), 1, env(1), false), undefined, () => {})
    const m2 = await p.run(2, env(2), toMessage(env(2), 2, env(2), false), undefined, () => {})
    assert.equal(m1?.text, 'm1')
    assert.equal(m1?.untrusted, true)
    assert.equal(m2, undefined)
    assert.deepEqual(seen, ['one:m1', 'drop:m1', 'mark:m1', 'one:m2', 'drop:m2'])
  })

  it('inbound - only the first stage is offered the step of the previous commit, and is told once it is done', async () => {
    const offered: boolean[] = []
    const firstDone: boolean[] = []
    const p = new InboundPipeline(() => {})
    const look = (ctx: InboundContext): 'continue' => { offered.push(ctx.inStep !== undefined); return 'continue' }
    p.use({ name: 'decrypt', handle (ctx) { look(ctx); ctx.inStep?.(); ctx.message = toMessage(ctx.envelope, ctx.seq, ctx.envelope, true); return 'continue' } })
    p.use({ name: 'later', handle: look })
    let committed = 0
    const m = await p.run(3, env(3), undefined, () => { committed++ }, (kept) => { firstDone.push(kept) })
    assert.equal(m?.encrypted, true)
    assert.deepEqual(offered, [true, false])
    assert.deepEqual(firstDone, [true])
    assert.equal(committed, 1)
    // a first stage that consumes: told with kept = false, once
    const q = new InboundPipeline(() => {})
    q.use({ name: 'fail', handle: () => 'consumed' })
    const done2: boolean[] = []
    assert.equal(await q.run(4, env(4), undefined, undefined, (kept) => { done2.push(kept) }), undefined)
    assert.deepEqual(done2, [false])
  })

  it('inbound - arrival hooks can consume a delivery or set it aside to decrypt; removing a stage stops it', () => {
    const p = new InboundPipeline(() => {})
    const remove = p.use({ name: 'reset', arrive: (a) => a.envelope.type === 'e2ee.reset' ? 'consumed' : 'continue' })
    p.use({ name: 'aside', arrive: (a) => { if (a.envelope.type === 'e2ee') a.message = undefined; return 'continue' } })
    const a1 = { seq: 1, envelope: { ...env(1), type: 'e2ee.reset' } as Envelope, message: undefined as Message | undefined }
    assert.equal(p.arrive(a1), false)
    const a2 = { seq: 2, envelope: { ...env(2), type: 'e2ee' } as Envelope, message: toMessage(env(2), 2, env(2), false) as Message | undefined }
    assert.equal(p.arrive(a2), true)
    assert.equal(a2.message, undefined)
    remove()
    assert.deepEqual(p.stages, ['aside'])
    assert.equal(p.arrive({ ...a1 }), true)
  })

  it('inbound - a pipeline holds at most MAX_INBOUND_STAGES stages, and a stage needs a name and a hook', () => {
    const p = new InboundPipeline(() => {})
    for (let i = 0; i < MAX_INBOUND_STAGES; i++) p.use({ name: `s${i}`, handle: () => 'continue' })
    assert.throws(() => p.use({ name: 'one-more', handle: () => 'continue' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    assert.throws(() => new InboundPipeline(() => {}).use({ name: 'nothing' }), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
    assert.throws(() => inbound({} as Connection), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidArgument))
  })
})

describe('inbound over a relay', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
  })

  it('inbound - a stage added through inbound(conn) runs after the built-in ones; what it consumes is committed and never handed over, even after a reconnect', async () => {
    const relay = await createRelay({ port: 0, logger: silentLogger })
    relays.push(relay)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const bobState = memoryState()
    const a = await connect({ server: relay.url, identity: alice, state: memoryState() })
    conns.push(a)
    const b1 = await connect({ server: relay.url, identity: bob, state: bobState })
    const pipe = inbound(b1)
    assert.deepEqual(pipe.stages, ['e2ee', 'sender-keys', 'swarm-keys', 'relay', 'room', 'receipts', 'gate', 'file-keys', 'schemas'])
    const sawEncrypted: boolean[] = []
    pipe.use({ name: 'drop-secret', handle (ctx) { sawEncrypted.push(ctx.message?.encrypted === true); return ctx.message?.text === 'secret' ? 'consumed' : 'continue' } })
    assert.deepEqual(pipe.stages, ['e2ee', 'sender-keys', 'swarm-keys', 'relay', 'room', 'receipts', 'gate', 'file-keys', 'schemas', 'drop-secret'])
    for (const text of ['one', 'secret', 'two']) await a.send(bob.amid, { text })
    const got: string[] = []
    for await (const m of b1.messages()) { got.push(m.text ?? ''); if (got.length === 2) break }
    assert.deepEqual(got, ['one', 'two'])
    // it saw the decrypted messages (after the e2ee stage), all three
    assert.deepEqual(sawEncrypted, [true, true, true])
    await b1.close()
    // the same state on a new connection: nothing of the three comes again
    await a.send(bob.amid, { text: 'three' })
    const b2 = await connect({ server: relay.url, identity: bob, state: bobState })
    conns.push(b2)
    for await (const m of b2.messages()) { assert.equal(m.text, 'three'); break }
    assert.deepEqual(knock(b2).grants(), { issued: [], received: [] })
  })
})
