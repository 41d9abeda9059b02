import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, verifyWakeNotice, webhook, type ClientState, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { silentLogger, type Relay } from '@agentmesh/server'
import { startRelay, waitFor } from '@agentmesh/testing'

/** Wake webhooks (docs/protocol.md §26): a signed, content-free notice for an agent with no open connection. */

interface Hit { body: string, headers: IncomingHttpHeaders }

/** A local webhook endpoint: records each POST; answers the statuses in `answers` first, then 204. */
async function endpoint (answers: number[] = []): Promise<{ url: string, hits: Hit[], server: Server }> {
  const hits: Hit[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers })
      res.statusCode = answers.shift() ?? 204
      res.end()
    })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/s3cret`, hits, server }
}

describe('wake webhook', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  const servers: Server[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
    for (const s of servers) s.close()
  })
  const start = async (allowPrivate = true, minIntervalMs = 0): Promise<Relay> => {
    const r = await startRelay({ logger: silentLogger, webhookAllowPrivate: allowPrivate, webhookMinIntervalMs: minIntervalMs, webhookRetries: 3 })
    relays.push(r)
    return r
  }
  const open = async (relay: Relay, id: Identity, state: ClientState): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: id, state })
    conns.push(c)
    return c
  }

  it('wake - fires for an offline agent with no content, not while it is online; the signature verifies, a tampered notice does not', async () => {
    const relay = await start()
    const hook = await endpoint()
    servers.push(hook.server)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const bobState = memoryState()
    const b = await open(relay, bob, bobState)
    const info = await webhook(b).set(hook.url)
    assert.equal(info.url, hook.url)
    assert.equal(info.relay_amid, relay.relayAmid)
    assert.equal(info.signing, 'ed25519')
    assert.equal((await webhook(b).show()).url, hook.url)
    const a = await open(relay, alice, memoryState())
    // bob is connected: what arrives is delivered, no notice
    await a.send(bob.amid, { text: 'while you are here' })
    const it = b.messages()
    assert.equal((await it.next()).value?.text, 'while you are here')
    await it.return?.()
    await b.close()
    await waitFor(async () => (await relay.store.inbox(bob.amid)).pending === 0, 'bob\'s ack')
    // bob has no connection now: the next message wakes him
    await a.send(bob.amid, { text: 'the secret plan' })
    await waitFor(() => hook.hits.length >= 1, 'the wake notice')
    assert.equal(hook.hits.length, 1, 'one notice: none for the message that arrived while bob was connected')
    const hit = hook.hits[0]!
    const body = JSON.parse(hit.body) as Record<string, unknown>
    assert.deepEqual(Object.keys(body).sort(), ['amid', 'pending', 'ts'])
    assert.equal(body.amid, bob.amid)
    assert.equal(body.pending, 1)
    assert.ok(!hit.body.includes(alice.amid) && !hit.body.includes('secret plan'), 'nothing about the sender or the content')
    for (const v of Object.values(hit.headers)) assert.ok(!String(v).includes(alice.amid), 'no header names the sender')
    assert.equal(hit.headers['x-agentmesh-relay'], relay.relayAmid)
    const notice = verifyWakeNotice({ body: hit.body, headers: hit.headers, relayAmid: relay.relayAmid })
    assert.deepEqual(notice, { amid: bob.amid, pending: 1, ts: body.ts })
    // a body changed on the way, a replayed notice, or another relay's key: refused with a code
    const tampered = hit.body.replace('"pending":1', '"pending":9')
    assert.throws(() => verifyWakeNotice({ body: tampered, headers: hit.headers, relayAmid: relay.relayAmid }), (e: unknown) => AgentMeshError.is(e, ErrorCode.BadSignature))
    assert.throws(() => verifyWakeNotice({ body: hit.body, headers: hit.headers, relayAmid: relay.relayAmid, now: Number(body.ts) + 10 * 60_000 }), (e: unknown) => AgentMeshError.is(e, ErrorCode.BadSignature) && /timestamp/.test((e as Error).message))
    assert.throws(() => verifyWakeNotice({ body: hit.body, headers: hit.headers, relayAmid: alice.amid }), (e: unknown) => AgentMeshError.is(e, ErrorCode.BadSignature))
    // the relay's database holds the registration, and no notice content anywhere
    assert.deepEqual((await relay.store.getWebhook(bob.amid))?.url, hook.url)
  })

  it('wake - a notice answered 500 is tried again; clear removes the webhook', async () => {
    const relay = await start()
    const hook = await endpoint([500])
    servers.push(hook.server)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const b = await open(relay, bob, memoryState())
    await webhook(b).set(hook.url)
    await b.close()
    const a = await open(relay, alice, memoryState())
    await a.send(bob.amid, { text: 'one' })
    await waitFor(() => hook.hits.length >= 2, 'the retry after the 500')
    assert.equal(hook.hits.length, 2)
    assert.equal(hook.hits[0]!.body.length > 0, true)
    const first = verifyWakeNotice({ body: hook.hits[0]!.body, headers: hook.hits[0]!.headers, relayAmid: relay.relayAmid })
    const second = verifyWakeNotice({ body: hook.hits[1]!.body, headers: hook.hits[1]!.headers, relayAmid: relay.relayAmid })
    assert.equal(first.pending, 1)
    assert.equal(second.pending, 1)
    // cleared: the next message is not told
    const b2 = await open(relay, bob, memoryState())
    assert.equal(await webhook(b2).clear(), true)
    assert.equal(await webhook(b2).clear(), false)
    assert.equal((await webhook(b2).show()).url, null)
    await b2.close()
  })

  it('wake - notices to one agent are coalesced: a burst of messages makes at most two notices, the last counting them all', async () => {
    const relay = await start(true, 1000)
    const hook = await endpoint()
    servers.push(hook.server)
    const alice = createIdentity('alice')
    const bob = createIdentity('bob')
    const b = await open(relay, bob, memoryState())
    await webhook(b).set(hook.url)
    await b.close()
    const a = await open(relay, alice, memoryState())
    for (let i = 0; i < 10; i++) await a.send(bob.amid, { text: `burst ${i}` })
    await waitFor(() => hook.hits.some(h => (JSON.parse(h.body) as { pending: number }).pending === 10), 'a notice counting all ten')
    assert.ok(hook.hits.length <= 2, `${hook.hits.length} notices for a burst of ten`)
  })

  it('wake - a private address is refused without the operator\'s flag; bad URLs are refused with a code', async () => {
    const relay = await start(false)
    const bob = createIdentity('bob')
    const b = await open(relay, bob, memoryState())
    const refused = async (url: string, code: ErrorCode, re?: RegExp): Promise<void> => {
      await assert.rejects(webhook(b).set(url), (e: unknown) => {
        assert.ok(AgentMeshError.is(e, code), `${url}: ${(e as Error).message}`)
        if (re !== undefined) assert.match((e as Error).message, re)
        return true
      })
    }
    await refused('https://127.0.0.1:9/hook', ErrorCode.WebhookAddressRefused, /--webhook-allow-private/)
    await refused('https://[::1]/hook', ErrorCode.WebhookAddressRefused)
    await refused('https://10.1.2.3/hook', ErrorCode.WebhookAddressRefused)
    await refused('https://169.254.169.254/latest/meta-data', ErrorCode.WebhookAddressRefused)
    await refused('https://[::ffff:192.168.0.1]/hook', ErrorCode.WebhookAddressRefused)
    await refused('https://localhost/hook', ErrorCode.WebhookAddressRefused)
    await refused('http://93.184.215.14/hook', ErrorCode.WebhookUrlInvalid, /https/)
    await refused('ftp://example.com/x', ErrorCode.WebhookUrlInvalid)
    await refused('not a url', ErrorCode.WebhookUrlInvalid)
    await refused('https://user:pw@93.184.215.14/hook', ErrorCode.WebhookUrlInvalid, /password/)
    await refused('https://host.invalid/hook', ErrorCode.WebhookUnresolvable)
    await refused('https://x/' + 'a'.repeat(3000), ErrorCode.InvalidArgument)
    assert.equal((await webhook(b).show()).url, null, 'nothing was stored')
    assert.equal(await relay.store.getWebhook(bob.amid), undefined)
  })
})
