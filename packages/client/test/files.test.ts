/**
 * Files through the SDK over real sockets (docs/protocol.md §18): a plain upload and download by
 * path, byte for byte, never over an existing file; the file_available event to those who may see
 * it; and an end-to-end encrypted file: sent to a peer, the key inside the E2EE message, kept in the
 * receiver's state, downloaded and decrypted there, while the relay holds ciphertext only.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chat, files, FILE_MESSAGE_TYPE, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, type OpsEvent, type RelayEvent } from '@agentmesh/protocol'
import { startRelay, takeMessages, tempDir, waitFor } from '@agentmesh/testing'
import { inProcessBackplane } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { sdkHarness } from './sdk-fixtures.ts'

function opsEvents (conn: Connection): OpsEvent[] {
  const got: OpsEvent[] = []
  void (async () => { for await (const e of conn.events() as AsyncIterable<RelayEvent>) if ('data' in e) got.push(e) })()
  return got
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('files - SDK', () => {
  const { relays, agent, open } = sdkHarness()
  const tmp = tempDir()
  after(() => { tmp.cleanup() })
  const dir = tmp.path

  it('files - upload a path and download it to a path, byte-identical; no overwrite without force; list, get, delete', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const alice = await open(relay, agent('alice'))
    const bytes = randomBytes(700_000)
    const src = join(dir, 'src.bin')
    writeFileSync(src, bytes)
    const progress: number[] = []
    const up = await files(alice).upload(src, { type: 'application/zip', description: 'd', onProgress: (n) => { progress.push(n) } })
    assert.equal(up.size, bytes.byteLength)
    assert.equal(up.sha256, sha(bytes))
    assert.equal(progress.at(-1), bytes.byteLength)
    const info = await files(alice).get(up.fileId)
    assert.equal(info.filename, 'src.bin')
    assert.equal(info.type, 'application/zip')
    const out = join(dir, 'out.bin')
    const d = await files(alice).download(up.fileId, { to: out })
    assert.equal(d.decrypted, false)
    assert.equal(d.sha256, sha(bytes))
    assert.ok(readFileSync(out).equals(bytes))
    writeFileSync(out, 'keep me')
    await assert.rejects(files(alice).download(up.fileId, { to: out }), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.InvalidArgument)
    assert.equal(readFileSync(out, 'utf8'), 'keep me', 'an existing file is left as it was')
    await files(alice).download(up.fileId, { to: out, force: true })
    assert.ok(readFileSync(out).equals(bytes))
    const mem = await files(alice).download(up.fileId)
    assert.ok(Buffer.from(mem.bytes!).equals(bytes))
    assert.deepEqual((await files(alice).list()).files.map(f => f.fileId), [up.fileId])
    await files(alice).delete(up.fileId)
    await assert.rejects(files(alice).get(up.fileId), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.UnknownFile)
  })

  it('files - an end-to-end file: the relay stores ciphertext only; the peer gets the key in an E2EE message, keeps it, downloads and decrypts; others see nothing', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const [a, b, c] = [agent('alice'), agent('bob'), agent('carol')]
    const alice = await open(relay, a)
    const bob = await open(relay, b)
    const carol = await open(relay, c)
    const bobEvents = opsEvents(bob)
    const carolEvents = opsEvents(carol)
    const marker = 'TOP-SECRET-PLAINTEXT-MARKER-0123456789'
    const plain = Buffer.concat([randomBytes(300_000), Buffer.from(marker.repeat(100)), randomBytes(1000)])
    const sent = await files(alice).sendFile(b.id.amid, plain, { filename: 'plans.pdf', type: 'application/pdf' })
    assert.equal(sent.size, plain.byteLength)
    assert.equal(sent.sha256, sha(plain))

    // what the relay holds: ciphertext (plaintext + 16-byte tag), named "encrypted", shared with bob
    const stored = await relay.store.getFile(sent.fileId)
    assert.deepEqual({ ...stored, createdAt: 0 }, { id: sent.fileId, owner: a.id.amid, filename: 'encrypted', type: 'application/octet-stream', size: plain.byteLength + 16, sha256: stored!.sha256, createdAt: 0, visibility: 'private', sharedWith: [b.id.amid] })
    const parts: Uint8Array[] = []
    for await (const p of relay.store.readFileChunks(sent.fileId)) parts.push(p)
    const cipher = Buffer.concat(parts)
    assert.equal(cipher.byteLength, plain.byteLength + 16)
    assert.equal(cipher.indexOf(marker), -1, 'no plaintext on the relay')
    assert.equal(cipher.indexOf(plain.subarray(0, 64)), -1)
    // nor the key in what the relay stored for bob (an E2EE message)
    const key = files(alice).keyOf(sent.fileId)!.key
    const inbox = await relay.store.read(b.id.amid, 0, 100)
    assert.ok(inbox.length > 0 && inbox.every(m => !m.envelope.includes(key) && !m.envelope.includes('plans.pdf')))

    // bob: the event, the message (its key kept by the connection), the download decrypted
    await waitFor(() => bobEvents.some(e => e.type === 'file_available' && e.data.fileId === sent.fileId), 'bob hears file_available')
    const ev = bobEvents.find(e => e.type === 'file_available')!
    assert.deepEqual({ ...ev.data, createdAt: 0 }, { fileId: sent.fileId, ownerAmid: a.id.amid, filename: 'encrypted', type: 'application/octet-stream', size: plain.byteLength + 16, sha256: stored!.sha256, createdAt: 0, visibility: 'private', url: `/api/v1/files/${sent.fileId}/content` })
    const [m] = await takeMessages(bob, 1)
    assert.equal(m!.type, FILE_MESSAGE_TYPE)
    assert.equal(m!.encrypted, true)
    assert.equal(m!.payload.fileId, sent.fileId)
    assert.equal(files(bob).keyOf(sent.fileId)?.filename, 'plans.pdf')
    const got = await files(bob).download(sent.fileId)
    assert.equal(got.decrypted, true)
    assert.equal(got.filename, 'plans.pdf')
    assert.ok(Buffer.from(got.bytes!).equals(plain), 'decrypted byte for byte')
    // to a path, too
    const out = join(dir, 'plans.pdf')
    await files(bob).download(sent.fileId, { to: out })
    assert.ok(readFileSync(out).equals(plain))
    // without decrypting: the ciphertext, as stored
    assert.ok(Buffer.from((await files(bob).download(sent.fileId, { decrypt: false })).bytes!).equals(cipher))

    // carol: no event, and the file is unknown to her
    await assert.rejects(files(carol).download(sent.fileId), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.UnknownFile)
    assert.deepEqual(carolEvents.filter(e => e.type === 'file_available'), [])

    // a changed ciphertext does not decrypt (the relay's own checksum is updated to hide it)
    const fid = sent.fileId
    const tampered = Buffer.from(cipher)
    tampered[10] = tampered[10]! ^ 1
    await relay.store.deleteFile(fid)
    await relay.store.beginFileUpload(fid, a.id.amid, Date.now())
    await relay.store.putFileChunk(fid, 0, tampered)
    await relay.store.completeFile({ ...stored!, sha256: sha(tampered) }, { bytes: 1e12, files: 1e6 })
    await assert.rejects(files(bob).download(fid), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.DecryptFailed)
  })

  it('files - a public upload is announced to every connected agent; a private one to its owner and those it is shared with', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const [a, b, c] = [agent('alice'), agent('bob'), agent('carol')]
    const alice = await open(relay, a)
    const bob = await open(relay, b)
    const carol = await open(relay, c)
    const [ea, eb, ec] = [opsEvents(alice), opsEvents(bob), opsEvents(carol)]
    const typed: string[] = []
    void (async () => { for await (const f of files(bob).available()) typed.push(f.filename) })()
    const pub = await files(alice).upload(Buffer.from('for all'), { filename: 'all.txt', type: 'text/plain', visibility: 'public' })
    const priv = await files(alice).upload(Buffer.from('for bob'), { filename: 'bob.txt', sharedWith: [b.id.amid] })
    await waitFor(() => eb.length === 2 && ec.length === 1 && ea.length === 2, 'the events')
    assert.deepEqual(eb.map(e => e.data.fileId), [pub.fileId, priv.fileId])
    assert.deepEqual(ec.map(e => e.data.fileId), [pub.fileId])
    assert.deepEqual(ea.map(e => e.data.fileId), [pub.fileId, priv.fileId])
    assert.equal(eb[0]!.data.filename, 'all.txt')
    await waitFor(() => typed.length === 2, 'the typed helper')
    assert.deepEqual(typed, ['all.txt', 'bob.txt'])
  })
  it('files - an end-to-end file to a private room: a room file of ciphertext; a member keeps the key and decrypts; a public room is refused', async () => {
    const relay = await startRelay({ memory: true })
    relays.push(relay)
    const [a, b, c] = [agent('alice'), agent('bob'), agent('carol')]
    const alice = await open(relay, a)
    const bob = await open(relay, b)
    const carol = await open(relay, c)
    await chat(alice).createRoom({ id: 'vault', kind: 'private' })
    await chat(alice).invite('vault', b.id.amid)
    await chat(bob).join('vault')
    const plain = Buffer.from('room secret '.repeat(5000))
    const sent = await files(alice).sendFile('#vault', plain, { filename: 'minutes.txt' })
    const stored = await relay.store.getFile(sent.fileId)
    assert.equal(stored?.visibility, '#vault')
    assert.equal(stored?.filename, 'encrypted')
    const parts: Uint8Array[] = []
    for await (const p of relay.store.readFileChunks(sent.fileId)) parts.push(p)
    assert.equal(Buffer.concat(parts).indexOf('room secret'), -1)
    const [m] = await takeMessages(bob, 1)
    assert.deepEqual([m!.type, m!.room, m!.encrypted], [FILE_MESSAGE_TYPE, 'vault', true])
    const got = await files(bob).download(sent.fileId)
    assert.deepEqual([got.decrypted, got.filename], [true, 'minutes.txt'])
    assert.ok(Buffer.from(got.bytes!).equals(plain))
    await assert.rejects(files(carol).get(sent.fileId), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.UnknownFile)
    // a public room's messages are readable: its key would be too
    await chat(alice).createRoom({ id: 'lobby', kind: 'public' })
    await assert.rejects(files(alice).sendFile('#lobby', plain), (e: unknown) => AgentMeshError.is(e) && e.code === ErrorCode.EncryptionRequired)
    assert.equal((await relay.store.fileUsage(a.id.amid)).files, 1, 'nothing uploaded for the public room')
  })
  it('files - file_available reaches an agent connected to another relay node over the same store, once', async () => {
    const store = memoryStore()
    const backplane = inProcessBackplane()
    const shared = { ...store, close: async () => {} }
    const one = await startRelay({}, { store: shared, backplane })
    const two = await startRelay({}, { store: shared, backplane })
    const [a, b, c] = [agent('alice'), agent('bob'), agent('carol')]
    const alice = await open(one, a)
    const carol = await open(one, c)
    const bob = await open(two, b)
    const [eb, ec] = [opsEvents(bob), opsEvents(carol)]
    await waitFor(async () => (await chat(alice).presence()).some(p => p.amid === b.id.amid), 'node one knows bob is online')
    const up = await files(alice).upload(Buffer.from('everyone'), { filename: 'all.txt', visibility: 'public' })
    // a second file after it: once it arrived, a duplicate of the first (sent before it, on the same path) would have too
    const up2 = await files(alice).upload(Buffer.from('again'), { filename: 'again.txt', visibility: 'public' })
    await waitFor(() => eb.some(e => e.data.fileId === up2.fileId) && ec.some(e => e.data.fileId === up2.fileId), 'both hear both')
    assert.deepEqual(eb.map(e => e.data.fileId), [up.fileId, up2.fileId])
    assert.deepEqual(ec.map(e => e.data.fileId), [up.fileId, up2.fileId])
    await alice.close(); await carol.close(); await bob.close()
    await one.close(); await two.close(); await backplane.stop(); await store.close()
  })
})
