/**
 * Files (docs/protocol.md §18) over REST, against a relay in this process on 127.0.0.1: the Base64
 * JSON upload (the plan's form and /api/v1), the streamed upload, download byte for byte, who sees
 * what (private and shared, room, public), delete by owner or master only, the bounds (bad Base64,
 * oversize bodies, quota, SHA-256), nothing left by a refused upload, and a restart over SQLite.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signRequest, type Identity } from '@agentmesh/crypto'
import type { Relay, RelayInit } from '@agentmesh/server'
import { FILE_CHUNK_BYTES, memoryStore, type Store } from '@agentmesh/store'
import { startRelay, waitFor } from '@agentmesh/testing'

type Json = Record<string, any>
const API_KEY = 'operator-key-for-files-tests-0123456789'

interface World { relay: Relay, token: (a: Identity) => Promise<string> }

async function start (t: TestContext, init: RelayInit = {}, agents: Identity[] = [], store?: Store): Promise<World> {
  const relay = await startRelay({ memory: true, apiKey: API_KEY, ...init }, store === undefined ? {} : { store })
  t.after(async () => { await relay.close() })
  for (const a of agents) await relay.store.upsertAgent({ amid: a.amid, seenAt: Date.now() })
  const tokens = new Map<string, string>()
  return {
    relay,
    token: async (a) => {
      const known = tokens.get(a.amid)
      if (known !== undefined) return known
      const ch = await (await fetch(`${relay.url}/api/v1/auth/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amid: a.amid }) })).json() as Json
      const r = await (await fetch(`${relay.url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amid: a.amid, nonce: ch.nonce, sig: signChallenge(a, a.amid, ch.nonce, ch.relay) }) })).json() as Json
      tokens.set(a.amid, r.token)
      return r.token as string
    },
  }
}

type Who = Identity | 'operator'
async function headersOf (w: World, who: Who): Promise<Record<string, string>> {
  return who === 'operator' ? { 'x-api-key': API_KEY } : { authorization: `Bearer ${await w.token(who)}` }
}

/** A JSON call; answers status and body. */
async function call (w: World, who: Who, method: string, path: string, body?: unknown): Promise<{ status: number, body: Json }> {
  const res = await fetch(w.relay.url + path, { method, headers: { ...await headersOf(w, who), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  return { status: res.status, body: await res.json() as Json }
}

async function expectError (r: Promise<{ status: number, body: Json }>, status: number, code: string): Promise<Json> {
  const got = await r
  assert.equal(got.status, status, JSON.stringify(got.body))
  assert.equal(got.body.error?.code, code, JSON.stringify(got.body))
  return got.body
}

/** A streamed upload of `bytes` in parts of `part` bytes. */
async function stream (w: World, who: Who, bytes: Uint8Array, query: string, part = 100_000): Promise<{ status: number, body: Json }> {
  let at = 0
  const body = new ReadableStream<Uint8Array>({
    pull (ctl) {
      if (at >= bytes.byteLength) { ctl.close(); return }
      ctl.enqueue(bytes.slice(at, at + part))
      at += part
    },
  })
  const res = await fetch(`${w.relay.url}/api/v1/files?${query}`, { method: 'POST', headers: { ...await headersOf(w, who), 'content-type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit)
  return { status: res.status, body: await res.json() as Json }
}

async function download (w: World, who: Who, id: string, path = `/api/v1/files/${id}/content`): Promise<{ res: Response, bytes: Buffer }> {
  const res = await fetch(w.relay.url + path, { headers: await headersOf(w, who) })
  return { res, bytes: Buffer.from(await res.arrayBuffer()) }
}

const pattern = (n: number): Buffer => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 131 + 17) & 0xff))
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('files - REST', () => {
  it('files - a Base64 JSON upload (the plan\'s path, camelCase) downloads byte-identical, with safe headers; metadata on both paths', async (t) => {
    const [alice] = [createIdentity('alice')]
    const w = await start(t, {}, [alice])
    const bytes = pattern(70_000)
    const up = await call(w, alice, 'POST', '/api/files/upload', { agentId: alice.amid, filename: 'report "q3"/../x.pdf', fileType: 'application/pdf', fileData: bytes.toString('base64'), description: 'quarterly' })
    assert.equal(up.status, 201, JSON.stringify(up.body))
    assert.deepEqual(Object.keys(up.body).sort(), ['fileId', 'sha256', 'size', 'success', 'url'])
    assert.equal(up.body.success, true)
    assert.equal(up.body.size, bytes.byteLength)
    assert.equal(up.body.sha256, sha(bytes))
    assert.equal(up.body.url, `/api/v1/files/${up.body.fileId as string}/content`)
    assert.match(up.body.fileId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/, 'a UUID v7')

    for (const path of [`/api/files/${up.body.fileId as string}`, `/api/v1/files/${up.body.fileId as string}`]) {
      const meta = await call(w, alice, 'GET', path)
      assert.equal(meta.status, 200)
      assert.deepEqual(meta.body, {
        fileId: up.body.fileId, ownerAmid: alice.amid, filename: 'report "q3"/../x.pdf', type: 'application/pdf', size: 70_000, sha256: sha(bytes),
        description: 'quarterly', createdAt: meta.body.createdAt, visibility: 'private', sharedWith: [], url: up.body.url,
      })
    }
    for (const path of [up.body.url as string, `/api/files/${up.body.fileId as string}/content`]) {
      const { res, bytes: got } = await download(w, alice, up.body.fileId, path)
      assert.equal(res.status, 200)
      assert.ok(got.equals(bytes), 'byte-identical')
      assert.equal(res.headers.get('content-type'), 'application/pdf')
      assert.equal(res.headers.get('content-length'), '70000')
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(res.headers.get('x-agentmesh-sha256'), sha(bytes))
      // the name is data: no quote, slash or path in the fallback, the exact name percent-encoded
      assert.equal(res.headers.get('content-disposition'), 'attachment; filename="report _q3__.._x.pdf"; filename*=UTF-8\'\'report%20%22q3%22%2F..%2Fx.pdf')
    }
    // a type the relay does not serve as is (HTML) comes as octet-stream
    const html = await call(w, alice, 'POST', '/api/v1/files/upload', { filename: 'x.html', type: 'text/html', fileData: Buffer.from('<script>1</script>').toString('base64') })
    const { res } = await download(w, alice, html.body.fileId)
    assert.equal(res.headers.get('content-type'), 'application/octet-stream')
    // the audit rows are metadata only
    const audit = await call(w, 'operator', 'GET', '/api/v1/audit?action=file.upload')
    assert.equal(audit.body.entries.length, 2)
    assert.deepEqual(audit.body.entries[0].detail, { owner: alice.amid, size: 70_000, type: 'application/pdf', visibility: 'private', shares: 0, via: 'json' })
    assert.ok(!JSON.stringify(audit.body).includes('quarterly') && !JSON.stringify(audit.body).includes('report'))
  })

  it('files - a streamed upload is stored chunk by chunk and downloads byte-identical; a signed streamed upload is refused', async (t) => {
    const alice = createIdentity('alice')
    const w = await start(t, {}, [alice])
    const bytes = pattern(FILE_CHUNK_BYTES * 3 + 777)
    const up = await stream(w, alice, bytes, `filename=big.bin&description=${encodeURIComponent('a big one')}&sha256=${sha(bytes)}`)
    assert.equal(up.status, 201, JSON.stringify(up.body))
    assert.equal(up.body.size, bytes.byteLength)
    const { res, bytes: got } = await download(w, alice, up.body.fileId)
    assert.equal(res.headers.get('content-type'), 'application/octet-stream')
    assert.ok(got.equals(bytes))
    let chunks = 0
    for await (const c of w.relay.store.readFileChunks(up.body.fileId)) { chunks++; assert.ok(c.byteLength <= FILE_CHUNK_BYTES) }
    assert.equal(chunks, 4)
    // an empty file
    const empty = await stream(w, 'operator', new Uint8Array(0), `filename=empty&agentId=${alice.amid}`)
    assert.equal(empty.status, 201, JSON.stringify(empty.body))
    assert.equal((await call(w, alice, 'GET', `/api/v1/files/${empty.body.fileId as string}`)).body.ownerAmid, alice.amid)
    // the JSON upload takes a signed request (its body within the registry's 64 KiB)
    const jsonBody = JSON.stringify({ filename: 'signed.txt', fileData: Buffer.from('signed bytes').toString('base64') })
    const signedRes = await fetch(`${w.relay.url}/api/v1/files/upload`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(alice, 'POST', '/api/v1/files/upload', jsonBody) }, body: jsonBody })
    assert.equal(signedRes.status, 201)
    assert.equal((await download(w, alice, (await signedRes.json() as Json).fileId)).bytes.toString(), 'signed bytes')
    // signed: refused before the body is read
    const path = '/api/v1/files?filename=x'
    const res2 = await fetch(w.relay.url + path, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...signRequest(alice, 'POST', path, 'abc') }, body: 'abc' })
    assert.equal(res2.status, 400)
    assert.equal((await res2.json() as Json).error.code, ErrorCode.InvalidArgument)
    // no credentials at all
    const res3 = await fetch(w.relay.url + path, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'abc' })
    assert.equal(res3.status, 401)
    assert.equal((await w.relay.store.fileUsage(alice.amid)).files, 3)
  })

  it('files - who sees what: private and shared, a room\'s members, public; listing shows only those, paged', async (t) => {
    const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(n => createIdentity(n))
    const w = await start(t, {}, [alice!, bob!, carol!, dave!])
    const up = async (who: Identity, body: Json): Promise<string> => {
      const r = await call(w, who, 'POST', '/api/v1/files/upload', { fileData: 'aGk=', ...body })
      assert.equal(r.status, 201, JSON.stringify(r.body))
      return r.body.fileId
    }
    assert.equal((await call(w, alice!, 'POST', '/api/v1/rooms', { id: 'ops', kind: 'public' })).status, 201)
    assert.equal((await call(w, bob!, 'POST', '/api/v1/rooms/ops/join')).status, 200)
    const priv = await up(alice!, { filename: 'private' })
    const shared = await up(alice!, { filename: 'shared', sharedWith: [bob!.amid] })
    const room = await up(alice!, { filename: 'room', visibility: '#ops' })
    const pub = await up(carol!, { filename: 'public', visibility: 'public' })

    const sees = async (who: Who): Promise<string[]> => ((await call(w, who, 'GET', '/api/v1/files')).body.files as Json[]).map(f => f.filename as string)
    assert.deepEqual(await sees(alice!), ['public', 'room', 'shared', 'private'])
    assert.deepEqual(await sees(bob!), ['public', 'room', 'shared'])
    assert.deepEqual(await sees(carol!), ['public'])
    assert.deepEqual(await sees('operator'), ['public', 'room', 'shared', 'private'])
    // the plan's path and filter
    assert.deepEqual(((await call(w, bob!, 'GET', `/api/files?agentId=${alice!.amid}`)).body.files as Json[]).map(f => f.filename), ['room', 'shared'])
    // sharedWith shows to the owner and masters only
    assert.deepEqual((await call(w, alice!, 'GET', `/api/v1/files/${shared}`)).body.sharedWith, [bob!.amid])
    assert.equal('sharedWith' in (await call(w, bob!, 'GET', `/api/v1/files/${shared}`)).body, false)
    // a file one may not see is unknown, on every route
    for (const [who, id] of [[carol!, priv], [carol!, shared], [carol!, room], [bob!, priv], [dave!, room]] as const) {
      await expectError(call(w, who, 'GET', `/api/v1/files/${id}`), 404, ErrorCode.UnknownFile)
      const { res } = await download(w, who, id)
      assert.equal(res.status, 404)
      await expectError(call(w, who, 'DELETE', `/api/files/${id}`), 404, ErrorCode.UnknownFile)
    }
    assert.equal((await download(w, dave!, pub)).bytes.toString(), 'hi')
    // room membership is checked when read: bob leaves, and no longer sees the room file
    assert.equal((await call(w, bob!, 'POST', '/api/v1/rooms/ops/leave')).status, 200)
    await expectError(call(w, bob!, 'GET', `/api/v1/files/${room}`), 404, ErrorCode.UnknownFile)
    assert.deepEqual(await sees(bob!), ['public', 'shared'])
    // paging
    const p1 = await call(w, alice!, 'GET', '/api/v1/files?limit=3')
    assert.deepEqual((p1.body.files as Json[]).map(f => f.filename), ['public', 'room', 'shared'])
    const p2 = await call(w, alice!, 'GET', `/api/v1/files?limit=3&after=${p1.body.nextAfter as string}`)
    assert.deepEqual((p2.body.files as Json[]).map(f => f.filename), ['private'])
    assert.equal(p2.body.nextAfter, undefined)
    // uploading to a room one is not in, or for another agent, or shared with an unknown agent
    await expectError(call(w, carol!, 'POST', '/api/v1/files/upload', { filename: 'x', fileData: 'aGk=', visibility: '#ops' }), 403, ErrorCode.NotMember)
    await expectError(call(w, carol!, 'POST', '/api/v1/files/upload', { filename: 'x', fileData: 'aGk=', agentId: alice!.amid }), 403, ErrorCode.Forbidden)
    await expectError(call(w, carol!, 'POST', '/api/v1/files/upload', { filename: 'x', fileData: 'aGk=', sharedWith: [createIdentity().amid] }), 404, ErrorCode.UnknownRecipient)
    await expectError(call(w, carol!, 'POST', '/api/v1/files/upload', { filename: 'x', fileData: 'aGk=', visibility: '#nope' }), 404, ErrorCode.UnknownRoom)
    assert.equal((await w.relay.store.fileUsage(carol!.amid)).files, 1, 'nothing more stored')
  })

  it('files - delete: a non-owner who sees the file gets 403, the owner and a master delete; audited file.delete', async (t) => {
    const [alice, bob] = [createIdentity('alice'), createIdentity('bob')]
    const w = await start(t, {}, [alice, bob])
    const a = (await call(w, alice, 'POST', '/api/files/upload', { filename: 'a', fileData: 'aGk=', visibility: 'public' })).body.fileId as string
    const b = (await call(w, alice, 'POST', '/api/files/upload', { filename: 'b', fileData: 'aGk=', visibility: 'public' })).body.fileId as string
    await expectError(call(w, bob, 'DELETE', `/api/v1/files/${a}`), 403, ErrorCode.Forbidden)
    assert.equal((await download(w, bob, a)).bytes.toString(), 'hi', 'still there')
    assert.deepEqual((await call(w, alice, 'DELETE', `/api/files/${a}`)).body, { fileId: a, success: true })
    assert.deepEqual((await call(w, 'operator', 'DELETE', `/api/v1/files/${b}`)).body, { fileId: b, success: true })
    for (const id of [a, b]) {
      await expectError(call(w, alice, 'GET', `/api/v1/files/${id}`), 404, ErrorCode.UnknownFile)
      await expectError(call(w, alice, 'DELETE', `/api/v1/files/${id}`), 404, ErrorCode.UnknownFile)
    }
    assert.deepEqual(await w.relay.store.fileUsage(alice.amid), { bytes: 0, files: 0 })
    const audit = await call(w, 'operator', 'GET', '/api/v1/audit?action=file.delete')
    assert.deepEqual((audit.body.entries as Json[]).map(r => [r.actor, r.target, r.detail]), [[alice.amid, a, { owner: alice.amid, size: 2 }], ['operator', b, { owner: alice.amid, size: 2 }]])
    // GET and DELETE of …/files/upload: a method the path does not take
    const r = await fetch(`${w.relay.url}/api/files/upload`, { headers: { 'x-api-key': API_KEY } })
    assert.equal(r.status, 405)
    assert.equal(r.headers.get('allow'), 'POST')
  })

  it('files - bad input is refused with its code and stores nothing: Base64, sizes, quota, SHA-256, names, unknown ids', async (t) => {
    const alice = createIdentity('alice')
    const w = await start(t, { fileJsonMaxBytes: 1000, fileMaxBytes: FILE_CHUNK_BYTES + 10, fileQuotaBytes: 2000, fileMaxPerAgent: 3 }, [alice])
    const nothing = async (): Promise<void> => {
      assert.deepEqual(await w.relay.store.fileUsage(alice.amid), { bytes: 0, files: 0 })
      assert.equal(await w.relay.store.dropFileUploads(Number.MAX_SAFE_INTEGER), 0, 'no upload left open: its chunks went at once')
    }
    const json = (body: Json): Promise<{ status: number, body: Json }> => call(w, alice, 'POST', '/api/v1/files/upload', { filename: 'f', ...body })
    await expectError(json({ fileData: 'not base64!' }), 400, ErrorCode.BadEncoding)
    await expectError(json({ fileData: 'aGk=x' }), 400, ErrorCode.BadEncoding)
    await expectError(json({ fileData: 'YWJj=' }), 400, ErrorCode.BadEncoding)
    await expectError(json({ fileData: 'YQ=' }), 400, ErrorCode.BadEncoding)
    await expectError(json({ fileData: pattern(1001).toString('base64') }), 413, ErrorCode.FileTooLarge)
    await expectError(json({ fileData: 'x'.repeat(2 * 1024 * 1024) }), 413, ErrorCode.BodyTooLarge)
    await expectError(json({ fileData: 'aGk=', sha256: 'a'.repeat(64) }), 400, ErrorCode.ChecksumMismatch)
    await expectError(json({ fileData: 'aGk=', filename: 'a\u001b[2Jb' }), 400, ErrorCode.InvalidArgument)
    await expectError(json({ fileData: 'aGk=', visibility: 'everyone' }), 400, ErrorCode.InvalidArgument)
    await expectError(json({ fileData: 'aGk=', type: 'not a type' }), 400, ErrorCode.InvalidArgument)
    await expectError(json({ fileData: 'aGk=', extra: 1 }), 400, ErrorCode.InvalidArgument)
    await expectError(json({ fileData: 'aGk=', visibility: 'public', sharedWith: [alice.amid.replace(/.$/, 'x')] }), 400, ErrorCode.InvalidArgument)
    await nothing()
    // streamed: over fileMaxBytes with no length declared (chunked), and with a sha256 that does not match
    await expectError(stream(w, alice, pattern(FILE_CHUNK_BYTES + 11), 'filename=big'), 413, ErrorCode.FileTooLarge)
    await expectError(stream(w, alice, pattern(100), `filename=x&sha256=${'b'.repeat(64)}`), 400, ErrorCode.ChecksumMismatch)
    await expectError(stream(w, alice, pattern(100), 'type=text/plain'), 400, ErrorCode.InvalidArgument)
    await nothing()
    // quota: 2000 bytes, 3 files
    assert.equal((await json({ fileData: pattern(900).toString('base64') })).status, 201)
    assert.equal((await json({ fileData: pattern(900).toString('base64') })).status, 201)
    await expectError(json({ fileData: pattern(201).toString('base64') }), 413, ErrorCode.FileQuota)
    await expectError(stream(w, alice, pattern(201), 'filename=q'), 413, ErrorCode.FileQuota)
    assert.equal((await json({ fileData: pattern(200).toString('base64') })).status, 201)
    await expectError(json({ fileData: '' }), 413, ErrorCode.FileQuota)
    assert.deepEqual(await w.relay.store.fileUsage(alice.amid), { bytes: 2000, files: 3 })
    // unknown and malformed ids
    await expectError(call(w, alice, 'GET', '/api/v1/files/01890000-0000-7000-8000-000000000000'), 404, ErrorCode.UnknownFile)
    await expectError(call(w, alice, 'GET', '/api/v1/files/..%2F..%2Fetc'), 400, ErrorCode.InvalidArgument)
  })

  it('files - files survive a restart over SQLite; an upload a crash left unfinished is dropped at start', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'am-files-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const alice = createIdentity('alice')
    const bytes = pattern(FILE_CHUNK_BYTES + 3)
    const first = await startRelay({ dataDir: dir, apiKey: API_KEY })
    await first.store.upsertAgent({ amid: alice.amid, seenAt: Date.now() })
    const w1: World = { relay: first, token: async () => { throw new Error('operator only') } }
    const up = await stream(w1, 'operator', bytes, `filename=kept.bin&agentId=${alice.amid}&visibility=public`)
    assert.equal(up.status, 201, JSON.stringify(up.body))
    // what a crash in the middle of an upload leaves: an open upload with chunks
    await first.store.beginFileUpload('01890000-0000-7000-8000-00000000dead', alice.amid, Date.now())
    await first.store.putFileChunk('01890000-0000-7000-8000-00000000dead', 0, pattern(10))
    await first.close()

    const w2 = await start(t, { dataDir: dir, memory: false })
    const { res, bytes: got } = await download(w2, 'operator', up.body.fileId)
    assert.equal(res.status, 200)
    assert.ok(got.equals(bytes))
    assert.equal((await call(w2, 'operator', 'GET', `/api/v1/files/${up.body.fileId as string}`)).body.filename, 'kept.bin')
    await assert.rejects(w2.relay.store.putFileChunk('01890000-0000-7000-8000-00000000dead', 1, pattern(1)), 'the leftover upload was dropped at start')
    assert.deepEqual(await w2.relay.store.fileUsage(alice.amid), { bytes: bytes.byteLength, files: 1 })
  })
  it('files - an upload cut off by its client mid-stream is never visible, and its chunks go at once', async (t) => {
    const alice = createIdentity('alice')
    const base = memoryStore()
    const calls = { chunks: 0, aborts: 0 }
    // the relay's store, watched: how many chunks it was given, and the abort
    const store: Store = new Proxy(base, {
      get (target, prop, recv) {
        if (prop === 'putFileChunk') return async (...a: Parameters<Store['putFileChunk']>) => { calls.chunks++; await target.putFileChunk(...a) }
        if (prop === 'abortFileUpload') return async (id: string) => { calls.aborts++; await target.abortFileUpload(id) }
        return Reflect.get(target, prop, recv) as unknown
      },
    })
    const w = await start(t, {}, [alice], store)
    const ctl = new AbortController()
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      async pull (c) {
        if (sent >= FILE_CHUNK_BYTES * 2) { await new Promise(() => {}); return } // then stalls: the client goes away
        c.enqueue(pattern(64 * 1024))
        sent += 64 * 1024
      },
    })
    const res = fetch(`${w.relay.url}/api/v1/files?filename=cut`, { method: 'POST', headers: { ...await headersOf(w, alice), 'content-type': 'application/octet-stream' }, body, duplex: 'half', signal: ctl.signal } as RequestInit)
    res.catch(() => {})
    await waitFor(() => calls.chunks >= 2, 'two chunks stored')
    // in the middle of the upload: nothing to see
    assert.deepEqual(await w.relay.store.listFiles({ limit: 10 }), [])
    assert.deepEqual((await call(w, alice, 'GET', '/api/v1/files')).body.files, [])
    assert.deepEqual(await w.relay.store.fileUsage(alice.amid), { bytes: 0, files: 0 })
    ctl.abort()
    await waitFor(() => calls.aborts === 1, 'the upload aborted by the relay')
    assert.equal(await w.relay.store.dropFileUploads(Number.MAX_SAFE_INTEGER), 0, 'no upload left open')
    assert.deepEqual(await w.relay.store.fileUsage(alice.amid), { bytes: 0, files: 0 })
  })
})
