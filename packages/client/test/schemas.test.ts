import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, signRequest } from '@agentmesh/crypto'
import { connect, declaredSchemas, memoryState, schemas, type Connection, type Message, type MessageSchema } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { waitFor } from '@agentmesh/testing'

/** Capabilities and message schemas (docs/protocol.md §25). */

const ORDER: MessageSchema = {
  type: 'order.create',
  description: 'an order for the shop',
  schema: { type: 'object', properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['item', 'qty'] },
}

interface Agent { conn: Connection, warnings: AgentMeshError[], got: Message[] }

describe('message schemas', () => {
  const relays: Relay[] = []
  const stops: Array<() => Promise<void>> = []
  after(async () => {
    for (const s of stops) await s()
    for (const r of relays) await r.close()
  })
  const start = async (): Promise<Relay> => {
    const r = await createRelay({ port: 0, logger: silentLogger })
    relays.push(r)
    return r
  }
  const agent = async (relay: Relay, name: string, opts: Parameters<typeof connect>[0] = {}, listen = true): Promise<Agent> => {
    const a: Agent = { warnings: [], got: [], conn: undefined as unknown as Connection }
    a.conn = await connect({ server: relay.url, identity: createIdentity(name), state: memoryState(), onWarning: (w) => { a.warnings.push(w) }, ...opts })
    const ac = new AbortController()
    const reading = listen ? (async () => { for await (const m of a.conn.messages({ signal: ac.signal })) a.got.push(m) })().catch(() => {}) : Promise.resolve()
    stops.push(async () => { ac.abort(); await reading; await a.conn.close() })
    return a
  }

  it('schemas - a declared schema is published in the profile and read back as { type, schema, description }', async () => {
    const relay = await start()
    const bob = await agent(relay, 'bob', { schemas: { declare: [ORDER] } }, false)
    const alice = await agent(relay, 'alice', {}, false)
    assert.deepEqual(await schemas(alice.conn).of(bob.conn.amid), [ORDER])
    const profile = await alice.conn.request('GET', `/api/v1/agents/${bob.conn.amid}`)
    assert.deepEqual(declaredSchemas(profile), [ORDER])
    // [] clears the list
    assert.deepEqual(await schemas(bob.conn).declare([]), [])
    assert.deepEqual(await schemas(alice.conn).of(bob.conn.amid), [])
  })

  it('schemas - an invalid schema is refused at registration with AM_ERR_INVALID_SCHEMA, the old list intact', async () => {
    const relay = await start()
    const bob = await agent(relay, 'bob', { schemas: { declare: [ORDER] } }, false)
    await assert.rejects(schemas(bob.conn).declare([{ type: 'bad', schema: { type: 'nope' } }]),
      (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema && /schemas\[0\] \(type "bad"\) is not a valid JSON Schema/.test(e.message))
    await assert.rejects(schemas(bob.conn).declare([{ type: 'remote', schema: { $ref: 'https://example.org/s.json' } }]),
      (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema)
    await assert.rejects(schemas(bob.conn).declare([ORDER, ORDER]), (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema && /twice/.test(e.message))
    await assert.rejects(schemas(bob.conn).declare([{ type: 'agentmesh.delivery', schema: {} }]), (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema)
    const big = { type: 'object', description: 'x'.repeat(9000) }
    await assert.rejects(schemas(bob.conn).declare([{ type: 'big', schema: big }]), (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema && /8192/.test(e.message))
    assert.deepEqual(await schemas(bob.conn).of(), [ORDER])
    await assert.rejects(schemas(bob.conn).declare([{ type: 'dangling', schema: { $ref: '#/$defs/none' } }]), (e: AgentMeshError) => e.code === ErrorCode.InvalidSchema && /dangling/.test(e.message))
    // a raw signed PUT is refused too, as a 400 with the code: not a schema, a reference outside
    // it, nested too deep (the relay checks the meta-schema and the shape, it compiles nothing)
    const id = createIdentity('raw')
    const path = `/api/v1/agents/${id.amid}`
    let deep: Record<string, unknown> = { type: 'string' }
    for (let i = 0; i < 40; i++) deep = { items: deep }
    for (const [schema, why] of [[{ minimum: 'five' }, /not a valid JSON Schema/], [{ $ref: 'http://127.0.0.1:1/s.json' }, /refers outside the schema/], [deep, /deeper than 32 levels/]] as const) {
      const body = JSON.stringify({ schemas: [{ type: 'x', schema }] })
      const res = await fetch(`${relay.url.replace('ws', 'http').replace(/\/ws$/, '')}${path}`, { method: 'PUT', body, headers: { 'content-type': 'application/json', ...signRequest(id, 'PUT', path, body) } })
      assert.equal(res.status, 400)
      const err = ((await res.json()) as { error: { code: string, message: string } }).error
      assert.equal(err.code, ErrorCode.InvalidSchema)
      assert.match(err.message, why)
    }
  })

  it('schemas - warn mode (the default) delivers a bad payload with schemaError and a warning; a good one passes clean', async () => {
    const relay = await start()
    const bob = await agent(relay, 'bob', { schemas: { declare: [ORDER] } })
    const alice = await agent(relay, 'alice', {}, false)
    await alice.conn.send(bob.conn.amid, { item: 'tea', qty: 2 }, { type: 'order.create' })
    await alice.conn.send(bob.conn.amid, { item: 'tea', qty: 'lots' }, { type: 'order.create' })
    await alice.conn.send(bob.conn.amid, { text: 'a chat message has no schema' })
    await waitFor(() => bob.got.length === 3, 'three messages')
    assert.deepEqual(bob.got.map(m => m.schemaError), [undefined, '/qty must be integer', undefined])
    const w = bob.warnings.filter(x => x.code === ErrorCode.SchemaMismatch)
    assert.equal(w.length, 1)
    assert.match(w[0]!.message, /type order\.create\) does not match this agent's declared schema: \/qty must be integer \(delivered: warn mode\)/)
  })

  it('schemas - strict mode refuses a bad payload and the sender sees AM_ERR_SCHEMA_MISMATCH; good payloads pass', async () => {
    const relay = await start()
    const bob = await agent(relay, 'bob', { schemas: { declare: [ORDER], mode: 'strict' } })
    const alice = await agent(relay, 'alice', {})
    const bad = await alice.conn.send(bob.conn.amid, { item: 'tea' }, { type: 'order.create' })
    await alice.conn.send(bob.conn.amid, { item: 'cake', qty: 1 }, { type: 'order.create' })
    await waitFor(() => bob.got.length === 1, 'the good order')
    assert.deepEqual(bob.got.map(m => m.payload), [{ item: 'cake', qty: 1 }])
    assert.equal(bob.warnings.filter(x => x.code === ErrorCode.SchemaMismatch).length, 1)
    // the sender is told, end-to-end encrypted: a warning with the code, and the sent log
    await waitFor(() => alice.warnings.some(x => x.code === ErrorCode.SchemaMismatch), 'the sender\'s warning')
    const told = alice.warnings.find(x => x.code === ErrorCode.SchemaMismatch)!
    assert.match(told.message, new RegExp(`${bob.conn.amid} refused message ${bad.id}: The payload of type order\\.create does not match the receiver's declared schema: the payload must have required property 'qty'`))
    const entry = alice.conn.sent({ peer: bob.conn.amid }).find(e => e.id === bad.id)
    assert.equal(entry?.status, 'refused')
    assert.equal(entry?.code, ErrorCode.SchemaMismatch)
  })

  it('schemas - send with validate: true refuses locally with the same code, nothing sent; a matching payload goes', async () => {
    const relay = await start()
    const bob = await agent(relay, 'bob', { schemas: { declare: [ORDER], mode: 'strict' } })
    const alice = await agent(relay, 'alice', {}, false)
    await assert.rejects(alice.conn.send(bob.conn.amid, { item: 'tea', qty: 0 }, { type: 'order.create', validate: true }),
      (e: AgentMeshError) => e.code === ErrorCode.SchemaMismatch && /not sent: .* \/qty must be >= 1/.test(e.message))
    assert.equal(alice.conn.pendingSends, 0)
    await alice.conn.send(bob.conn.amid, { item: 'tea', qty: 3 }, { type: 'order.create', validate: true })
    // a type the receiver declares nothing for passes
    await alice.conn.send(bob.conn.amid, { text: 'hi' }, { validate: true })
    await waitFor(() => bob.got.length === 2, 'two messages')
    assert.deepEqual(bob.got.map(m => m.type), ['order.create', 'chat'])
  })

  it('schemas - a bad mode is refused before connecting', async () => {
    const relay = await start()
    await assert.rejects(connect({ server: relay.url, identity: createIdentity('x'), state: memoryState(), schemas: { mode: 'loose' as 'warn' } }),
      (e: AgentMeshError) => e.code === ErrorCode.InvalidArgument && /"warn" or "strict"/.test(e.message))
  })
})
