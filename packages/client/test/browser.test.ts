import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'
import WebSocket from 'ws'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity, signRequest } from '@agentmesh/crypto'
import { connect, relayUrl, type Connection } from '@agentmesh/client'
import { apiRequest, memoryState } from '@agentmesh/client/browser'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** Bundles an entry for the browser; the Node-only modules it pulls in (reported, left out). */
async function bundle (entry: string): Promise<{ nodeOnly: string[], inputs: string[], text: string }> {
  const nodeOnly: string[] = []
  const guard: Plugin = {
    name: 'node-only',
    setup (b) {
      b.onResolve({ filter: /^(node:.*|ws|better-sqlite3|fs|path|crypto|os|url|net|tls|http|https|stream|events|zlib)$/ }, (a) => {
        nodeOnly.push(a.path)
        return { path: a.path, external: true }
      })
    },
  }
  const r = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [guard],
  })
  return { nodeOnly: [...new Set(nodeOnly)].sort(), inputs: Object.keys(r.metafile.inputs), text: r.outputFiles[0]!.text }
}

describe('browser', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
  })

  it('browser - @agentmesh/client/browser bundles for the browser without node:*, ws or better-sqlite3, and uses no Node global', async () => {
    const b = await bundle('../src/browser.ts')
    assert.deepEqual(b.nodeOnly, [])
    assert.ok(b.inputs.some(i => i.endsWith('client/src/api.ts')), 'the API layer is in the bundle')
    assert.ok(b.inputs.some(i => i.endsWith('protocol/src/codec.ts')), '@agentmesh/protocol is in the bundle')
    assert.deepEqual(b.inputs.filter(i => /node_modules\/(ws|better-sqlite3)\//.test(i)), [])
    assert.doesNotMatch(b.text, /\bBuffer\.|\bprocess\.|\bsetImmediate\(/)
  })

  it('browser - @agentmesh/protocol (with its internal part) bundles for the browser without Node-only modules or globals', async () => {
    const b = await bundle('../../protocol/src/internal.ts')
    assert.deepEqual(b.nodeOnly, [])
    assert.ok(b.inputs.some(i => i.endsWith('protocol/src/codec.ts')))
    assert.doesNotMatch(b.text, /\bBuffer\.|\bprocess\.|\bsetImmediate\(/)
  })

  it('browser - the same check finds the Node-only modules of the Node entry', async () => {
    const b = await bundle('../src/index.ts')
    for (const m of ['better-sqlite3', 'node:fs', 'ws']) assert.ok(b.nodeOnly.includes(m), `${m} is reported`)
  })

  it('browser - apiRequest signs with the given function and answers the JSON body, or throws the relay\'s code', async () => {
    const relay = await createRelay({ port: 0, logger: silentLogger })
    relays.push(relay)
    const alice = createIdentity('alice')
    const origin = relay.url
    const c = await connect({ server: relay.url, identity: alice, state: memoryState() })
    conns.push(c)
    const signed: string[] = []
    const sign = (m: string, p: string, b: string): Record<string, string> => { signed.push(`${m} ${p}`); return signRequest(alice, m, p, b) }
    const set = await apiRequest(origin, 'setHandle', '/api/v1/handles', { sign, body: JSON.stringify({ handle: 'alice' }) })
    assert.deepEqual([set.amid, set.handle], [alice.amid, 'alice'])
    assert.deepEqual(signed, ['POST /api/v1/handles'])
    const got = await apiRequest(origin, 'resolveHandle', '/api/v1/handles/alice', { sign })
    assert.equal(got.amid, alice.amid)
    await assert.rejects(apiRequest(origin, 'resolveHandle', '/api/v1/handles/nobody-here', { sign }), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownHandle))
    // unsigned: the relay's own code for it comes through as is
    await assert.rejects(apiRequest(origin, 'resolveHandle', '/api/v1/handles/alice'), (e: unknown) => AgentMeshError.is(e, ErrorCode.NotAuthenticated))
    await assert.rejects(apiRequest('http://127.0.0.1:1', 'resolveHandle', '/api/v1/handles/alice'), (e: unknown) => AgentMeshError.is(e, ErrorCode.ConnectFailed))
  })

  it('browser - connect() dials with the WebSocket class it is given, and messages flow over it', async () => {
    const relay = await createRelay({ port: 0, logger: silentLogger })
    relays.push(relay)
    const dialed: string[] = []
    class Counting extends WebSocket {
      constructor (url: string) { super(url); dialed.push(url) }
    }
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const a = await connect({ server: relay.url, identity: alice, state: memoryState(), WebSocket: Counting })
    conns.push(a)
    const b = await connect({ server: relay.url, identity: bob, state: memoryState() })
    conns.push(b)
    assert.deepEqual(dialed, [relayUrl(relay.url)])
    await a.send(bob.amid, { text: 'over the given socket' })
    for await (const m of b.messages()) { assert.equal(m.text, 'over the given socket'); break }
    await b.send(alice.amid, { text: 'and back' })
    for await (const m of a.messages()) { assert.equal(m.text, 'and back'); break }
  })

  it('browser - the memory state keeps the outbox in order, the cursor per relay, and what was handed over', () => {
    const s = memoryState()
    s.outboxAdd({ id: 'b', to: 'x', envText: '{}', createdAt: 2 })
    s.outboxAdd({ id: 'a', to: 'x', envText: '{}', createdAt: 1 })
    s.outboxRemove('b')
    s.outboxAdd({ id: 'c', to: 'x', envText: '{}', createdAt: 3 })
    assert.deepEqual(s.outboxList().map(e => e.id), ['a', 'c'])
    s.commit('relay-1', 5, 'peer', 'm1')
    s.commit('relay-1', 3)
    assert.equal(s.cursor('relay-1'), 5)
    assert.equal(s.cursor('relay-2'), 0)
    assert.equal(s.seen('peer', 'm1'), true)
    assert.equal(s.seen('peer', 'm2'), false)
    s.prune(Date.now() + 1)
    assert.equal(s.seen('peer', 'm1'), false)
  })
})
