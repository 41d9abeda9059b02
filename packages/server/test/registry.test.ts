import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, generatePqOneTimePreKeys, pqOneTimePreKeyPublic, signRequest, toB64u, type Identity } from '@agentmesh/crypto'
import type { Relay, RelayInit } from '@agentmesh/server'
import { startRelay, tempDir } from '@agentmesh/testing'

type Json = Record<string, any>

async function start (t: TestContext, init: RelayInit = {}): Promise<Relay> {
  const relay = await startRelay(init)
  t.after(async () => { await relay.close() })
  return relay
}

/** A signed request as an agent would make it. */
async function call (relay: Relay, who: Identity | undefined, method: string, path: string, body?: unknown, tamper?: (h: Record<string, string>) => void): Promise<{ status: number, json: Json }> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (who !== undefined) Object.assign(headers, signRequest(who, method, path, text))
  tamper?.(headers)
  const res = await fetch(relay.url + path, { method, headers, ...(text === '' ? {} : { body: text }) })
  return { status: res.status, json: await res.json() as Json }
}

function expectError (r: { status: number, json: Json }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.json))
  assert.equal(r.json.error?.code, code)
  if (message !== undefined) assert.match(r.json.error.message, message)
}

const skill = (id: string, tags: string[] = []): Json => ({ id, name: id.toUpperCase(), description: `does ${id}`, tags })
const otk = (id: number): { id: number, key: string } => ({ id, key: toB64u(createIdentity().publicKey) })

describe('registry', () => {
  it('registry - an agent publishes its profile; anyone reads it; a partial update keeps the other fields', async (t) => {
    const relay = await start(t)
    const alice = createIdentity()
    const put = await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice', capabilities: [skill('translate', ['nlp'])], version: '1.2.0' })
    assert.equal(put.status, 200, JSON.stringify(put.json))
    assert.deepEqual({ ...put.json, updated_at: 0 }, {
      amid: alice.amid, display_name: 'Alice', capabilities: [skill('translate', ['nlp'])], version: '1.2.0', tier: 'anonymous', updated_at: 0,
    })
    const got = await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)
    assert.deepEqual(got.json, put.json)
    const upd = await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice v2' })
    assert.equal(upd.json.display_name, 'Alice v2')
    assert.deepEqual(upd.json.capabilities, [skill('translate', ['nlp'])])
    assert.equal(upd.json.version, '1.2.0')
    assert.equal((await relay.store.getAgent(alice.amid))?.name, 'Alice v2', 'a profile registers the agent')
    // the contact mode (knock-first or open) is one more field, kept by later partial updates
    assert.equal((await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { contact: 'knock' })).json.contact, 'knock')
    const kept = await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { version: '1.3.0' })
    assert.deepEqual([kept.json.contact, kept.json.display_name], ['knock', 'Alice v2'])
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.contact, 'knock')
    expectError(await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { contact: 'maybe' }), 400, ErrorCode.InvalidArgument, /contact/)
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.contact, 'knock', 'a refused update changes nothing')
  })

  it('registry - an agent that only connected has a minimal profile; an unknown one is 404', async (t) => {
    const relay = await start(t)
    const bob = createIdentity()
    await relay.store.upsertAgent({ amid: bob.amid, name: 'bob', seenAt: 5 })
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}`)).json,
      { amid: bob.amid, display_name: 'bob', capabilities: [], tier: 'anonymous', updated_at: 5 })
    const nobody = createIdentity().amid
    expectError(await call(relay, undefined, 'GET', `/api/v1/agents/${nobody}`), 404, ErrorCode.NotFound, /no agent/)
    expectError(await call(relay, undefined, 'GET', '/api/v1/agents/not-an-amid'), 400, ErrorCode.InvalidArgument, /not an AMID/)
  })

  it('registry - search by capability and text, with a limit', async (t) => {
    const relay = await start(t)
    const ids: string[] = []
    for (const [name, skills] of [['Translator', [skill('translate', ['nlp'])]], ['Forecaster', [skill('forecast', ['weather'])]], ['Polyglot', [skill('translate'), skill('summarise', ['nlp'])]]] as const) {
      const a = createIdentity()
      ids.push(a.amid)
      assert.equal((await call(relay, a, 'PUT', `/api/v1/agents/${a.amid}`, { display_name: name, capabilities: skills })).status, 200)
    }
    const names = async (q: string): Promise<string[]> => ((await call(relay, undefined, 'GET', `/api/v1/agents${q}`)).json.agents as Json[]).map(a => a.display_name as string).sort()
    assert.deepEqual(await names('?capability=translate'), ['Polyglot', 'Translator'])
    assert.deepEqual(await names('?capability=NLP'), ['Polyglot', 'Translator'])
    assert.deepEqual(await names('?q=weather'), ['Forecaster'])
    assert.deepEqual(await names('?q=does%20summarise&capability=nlp'), ['Polyglot'])
    assert.equal(((await call(relay, undefined, 'GET', '/api/v1/agents?limit=2')).json.agents as Json[]).length, 2)
    assert.deepEqual((await call(relay, undefined, 'GET', '/api/v1/agents')).json.agents.map((a: Json) => a.amid), [...ids].sort())
    expectError(await call(relay, undefined, 'GET', '/api/v1/agents?limit=0'), 400, ErrorCode.InvalidArgument, /limit/)
    expectError(await call(relay, undefined, 'GET', '/api/v1/agents?limit=lots'), 400, ErrorCode.InvalidArgument, /limit/)
  })

  it('registry - writes must be signed, fresh, once, by the agent itself, with a valid body', async (t) => {
    const relay = await start(t)
    const alice = createIdentity()
    const mallory = createIdentity()
    const path = `/api/v1/agents/${alice.amid}`
    expectError(await call(relay, undefined, 'PUT', path, { display_name: 'x' }), 401, ErrorCode.NotAuthenticated, /signed/)
    expectError(await call(relay, alice, 'PUT', path, { display_name: 'x' }, h => { h['x-agentmesh-signature'] = h['x-agentmesh-signature']!.replace(/^./, c => c === 'A' ? 'B' : 'A') }), 401, ErrorCode.AuthFailed)
    expectError(await call(relay, alice, 'PUT', path, { display_name: 'x' }, h => { h['x-agentmesh-timestamp'] = String(Date.now() - 3_600_000) }), 401, ErrorCode.AuthFailed, /clock/)
    expectError(await call(relay, mallory, 'PUT', path, { display_name: 'not alice' }), 403, ErrorCode.Forbidden, /only am/)
    // the same signed request twice: the second is a replay
    const body = JSON.stringify({ display_name: 'Alice' })
    const headers = { 'content-type': 'application/json', ...signRequest(alice, 'PUT', path, body) }
    assert.equal((await fetch(relay.url + path, { method: 'PUT', headers, body })).status, 200)
    const replay = await fetch(relay.url + path, { method: 'PUT', headers, body })
    expectError({ status: replay.status, json: await replay.json() as Json }, 401, ErrorCode.AuthReplayed)
    // a body changed after signing
    const h2 = { 'content-type': 'application/json', ...signRequest(alice, 'PUT', path, body) }
    const changed = await fetch(relay.url + path, { method: 'PUT', headers: h2, body: JSON.stringify({ display_name: 'Eve' }) })
    expectError({ status: changed.status, json: await changed.json() as Json }, 401, ErrorCode.AuthFailed)

    expectError(await call(relay, alice, 'PUT', path, '{not json'), 400, ErrorCode.BadJson)
    expectError(await call(relay, alice, 'PUT', path, { display_name: 'A', capabilities: [{ id: 'x' }] }), 400, ErrorCode.InvalidArgument, /capabilities\.0/)
    expectError(await call(relay, alice, 'PUT', path, { colour: 'blue' }), 400, ErrorCode.InvalidArgument)
    expectError(await call(relay, alice, 'PUT', path, { display_name: 'x'.repeat(70_000) }), 413, ErrorCode.BodyTooLarge)
    assert.equal((await call(relay, undefined, 'GET', path)).json.display_name, 'Alice', 'refused writes changed nothing')
  })

  it('registry - prekeys: upload, count, and bundles that hand out each one-time prekey once under concurrency', async (t) => {
    const relay = await start(t)
    const bob = createIdentity()
    const asker = createIdentity()
    await relay.store.upsertAgent({ amid: asker.amid, seenAt: 1 })
    const base = { exchange_key: { key: 'xk', sig: 's1' }, signed_prekey: { id: 1, key: 'spk', sig: 's2' }, pq_prekey: { id: 1, key: 'pq', sig: 's3' } }
    const up = await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { base, one_time: Array.from({ length: 20 }, (_, i) => otk(i + 1)) })
    assert.deepEqual(up.json, { one_time: 20, pq_one_time: 0 })
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 20, pq_one_time: 0 })

    const bundles = await Promise.all(Array.from({ length: 25 }, async () => await call(relay, asker, 'POST', `/api/v1/agents/${bob.amid}/prekeys/bundle`)))
    assert.ok(bundles.every(b => b.status === 200))
    const otkIds = bundles.map(b => b.json.one_time_prekey?.id).filter(id => id !== undefined)
    assert.equal(otkIds.length, 20)
    assert.equal(new Set(otkIds).size, 20, 'no one-time prekey handed out twice')
    assert.deepEqual(bundles[0]!.json.signed_prekey, base.signed_prekey)
    assert.equal(bundles.filter(b => b.json.one_time_prekey === undefined).length, 5, 'the rest rely on the last-resort keys')
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 0, pq_one_time: 0 })
  })

  it('registry - one-time PQ prekeys: checked against the AMID, one per bundle, lowest id first, each handed out once under concurrency', async (t) => {
    const relay = await start(t)
    const bob = createIdentity()
    const asker = createIdentity()
    await relay.store.upsertAgent({ amid: asker.amid, seenAt: 1 })
    const pqo = generatePqOneTimePreKeys(bob, 1, 12).map(pqOneTimePreKeyPublic)
    const up = await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { base: { b: 1 }, one_time: [otk(1), otk(2)], pq_one_time: pqo.slice(0, 10) })
    assert.deepEqual(up.json, { one_time: 2, pq_one_time: 10 })
    // an id already held is kept as it was (a repeated upload is harmless)
    assert.deepEqual((await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { pq_one_time: pqo.slice(8, 12) })).json, { one_time: 2, pq_one_time: 12 })

    const first = await call(relay, asker, 'POST', `/api/v1/agents/${bob.amid}/prekeys/bundle`)
    assert.deepEqual(first.json.pq_one_time_prekey, pqo[0], 'the lowest id, with its signature, as uploaded')
    assert.equal(first.json.one_time_prekey.id, 1)
    const rest = await Promise.all(Array.from({ length: 13 }, async () => await call(relay, asker, 'POST', `/api/v1/agents/${bob.amid}/prekeys/bundle`)))
    const ids = rest.map(b => b.json.pq_one_time_prekey?.id).filter(id => id !== undefined)
    assert.deepEqual([...ids].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'each handed out once')
    assert.equal(rest.filter(b => b.json.pq_one_time_prekey === undefined).length, 2, 'then the bundle has only the last-resort PQ key')
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 0, pq_one_time: 0 })

    // replace_one_time drops both kinds
    await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: [otk(7)], pq_one_time: pqo.slice(0, 3) })
    assert.deepEqual((await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: [otk(8)], pq_one_time: pqo.slice(3, 4), replace_one_time: true })).json, { one_time: 1, pq_one_time: 1 })
  })

  it('registry - one-time PQ prekey errors: bad signature, another agent\'s key, wrong length, an id twice, too many; nothing stored from a refused upload', async (t) => {
    const relay = await start(t)
    const bob = createIdentity()
    const mallory = createIdentity()
    const put = async (body: Json): Promise<{ status: number, json: Json }> => await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, body)
    const good = generatePqOneTimePreKeys(bob, 1, 3).map(pqOneTimePreKeyPublic)
    const flipped = { ...good[1]!, sig: good[0]!.sig }
    expectError(await put({ one_time: [otk(1)], pq_one_time: [good[0], flipped] }), 400, ErrorCode.BadPrekey, /pq_one_time\[1\]\.sig does not verify/)
    const malloryKey = generatePqOneTimePreKeys(mallory, 2, 1).map(pqOneTimePreKeyPublic)[0]!
    expectError(await put({ pq_one_time: [malloryKey] }), 400, ErrorCode.BadPrekey, /pq_one_time\[0\]\.sig does not verify with the identity of/)
    expectError(await put({ pq_one_time: [{ ...good[0]!, id: 9 }] }), 400, ErrorCode.BadPrekey, /for id 9/)
    expectError(await put({ pq_one_time: [{ ...good[0]!, key: good[0]!.key.slice(0, 1000) }] }), 400, ErrorCode.BadPrekey, /pq_one_time\[0\]\.key is not a 1184-byte/)
    expectError(await put({ pq_one_time: [{ ...good[0]!, key: good[0]!.key + 'AAAA' }] }), 400, ErrorCode.BadPrekey, /1184-byte/)
    expectError(await put({ pq_one_time: [good[0], good[1], good[0]] }), 400, ErrorCode.DuplicatePrekey, /pq_one_time\[2\]: id 1 appears twice/)
    expectError(await put({ pq_one_time: Array.from({ length: 21 }, () => good[0]) }), 400, ErrorCode.InvalidArgument, /pq_one_time/)
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 0, pq_one_time: 0 }, 'nothing stored from the refused uploads')

    const many = generatePqOneTimePreKeys(bob, 100, 101).map(pqOneTimePreKeyPublic)
    for (let i = 0; i < 5; i++) assert.equal((await put({ pq_one_time: many.slice(i * 20, i * 20 + 20) })).status, 200)
    expectError(await put({ pq_one_time: many.slice(100) }), 400, ErrorCode.TooManyPrekeys, /at most 100 one-time PQ prekeys; 100 are stored/)
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 0, pq_one_time: 100 })
  })

  it('registry - prekey errors: another agent\'s keys, an unregistered asker, no prekeys, too many, malformed keys', async (t) => {
    const relay = await start(t)
    const bob = createIdentity()
    const stranger = createIdentity()
    expectError(await call(relay, stranger, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: [otk(1)] }), 403, ErrorCode.Forbidden)
    await relay.store.upsertAgent({ amid: bob.amid, seenAt: 1 })
    expectError(await call(relay, bob, 'POST', `/api/v1/agents/${bob.amid}/prekeys/bundle`), 404, ErrorCode.NotFound, /no prekeys/)
    expectError(await call(relay, stranger, 'POST', `/api/v1/agents/${bob.amid}/prekeys/bundle`), 403, ErrorCode.Forbidden, /registered/)
    expectError(await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: [{ id: 1, key: 'short' }] }), 400, ErrorCode.InvalidArgument, /one_time\.0\.key/)
    expectError(await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: Array.from({ length: 201 }, (_, i) => otk(i)) }), 400, ErrorCode.InvalidArgument)
    for (let i = 0; i < 5; i++) {
      assert.equal((await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: Array.from({ length: 200 }, (_, j) => otk(i * 200 + j)) })).status, 200)
    }
    expectError(await call(relay, bob, 'PUT', `/api/v1/agents/${bob.amid}/prekeys`, { one_time: [otk(5000)] }), 400, ErrorCode.TooManyPrekeys, /at most 1000/)
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${bob.amid}/prekeys`)).json, { one_time: 1000, pq_one_time: 0 })
  })

  it('registry - profiles and prekeys survive a relay restart', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const alice = createIdentity()
    let relay = await startRelay({ dataDir: dir.path })
    await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}`, { display_name: 'Alice', capabilities: [skill('x')] })
    await call(relay, alice, 'PUT', `/api/v1/agents/${alice.amid}/prekeys`, { base: { b: 1 }, one_time: [otk(1), otk(2)], pq_one_time: generatePqOneTimePreKeys(alice, 1, 3).map(pqOneTimePreKeyPublic) })
    await call(relay, alice, 'POST', `/api/v1/agents/${alice.amid}/prekeys/bundle`)
    await relay.close()
    relay = await start(t, { dataDir: dir.path })
    assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}`)).json.display_name, 'Alice')
    assert.deepEqual((await call(relay, undefined, 'GET', `/api/v1/agents/${alice.amid}/prekeys`)).json, { one_time: 1, pq_one_time: 2 })
  })
})
