/**
 * The files slice (docs/protocol.md §18): metadata, chunk rows, uploads made visible only when
 * complete and within the owner's quota, what each agent may see, and durability.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FILE_CHUNK_BYTES, type FileRecord, type FileStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, DAVE, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type FilesSuiteStore = FileStore

/** A file id: UUID v7 shaped, ordered by `n`. */
const fid = (n: number): string => `01890000-0000-7000-8000-${String(n).padStart(12, '0')}`
const NO_QUOTA = { bytes: Number.MAX_SAFE_INTEGER, files: Number.MAX_SAFE_INTEGER }

function file (n: number, over: Partial<FileRecord> = {}): FileRecord {
  return { id: fid(n), owner: ALICE, filename: `f${n}.txt`, type: 'text/plain', size: 3, sha256: 'a'.repeat(64), createdAt: T0 + n, visibility: 'private', sharedWith: [], ...over }
}

/** Bytes 0..n-1 of a repeating pattern. */
const pattern = (n: number, seed = 7): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

async function readAll (store: FileStore, id: string): Promise<{ bytes: Uint8Array, chunks: number }> {
  const parts: Uint8Array[] = []
  for await (const c of store.readFileChunks(id)) parts.push(c)
  const out = new Uint8Array(parts.reduce((a, c) => a + c.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return { bytes: out, chunks: parts.length }
}

/** Uploads `bytes` in chunks of FILE_CHUNK_BYTES and completes it. */
async function upload (store: FileStore, f: FileRecord, bytes: Uint8Array, quota = NO_QUOTA): Promise<'stored' | 'quota'> {
  await store.beginFileUpload(f.id, f.owner, f.createdAt)
  for (let i = 0, at = 0; at < bytes.byteLength || (i === 0 && bytes.byteLength === 0); i++, at += FILE_CHUNK_BYTES) {
    if (bytes.byteLength === 0) break
    await store.putFileChunk(f.id, i, bytes.subarray(at, at + FILE_CHUNK_BYTES))
  }
  return await store.completeFile({ ...f, size: bytes.byteLength }, quota)
}

export function filesSuite (init: SuiteInit<FilesSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: files`, () => {
    it('store - a file round-trips: metadata and bytes, chunk by chunk, byte-identical', async () => {
      await withStore(undefined, async ({ store }) => {
        const bytes = pattern(FILE_CHUNK_BYTES * 2 + 1234)
        const f = file(1, { description: 'a report', visibility: 'private', sharedWith: [BOB, CAROL], type: 'application/pdf', filename: '../etc/passwd "x".pdf' })
        assert.equal(await upload(store, f, bytes), 'stored')
        assert.deepEqual(await store.getFile(f.id), { ...f, size: bytes.byteLength })
        const got = await readAll(store, f.id)
        assert.equal(got.chunks, 3)
        assert.deepEqual(got.bytes, bytes)
        // an empty file has no chunk
        const empty = file(2)
        assert.equal(await upload(store, empty, new Uint8Array(0)), 'stored')
        assert.deepEqual((await readAll(store, empty.id)).chunks, 0)
        assert.equal((await store.getFile(empty.id))?.size, 0)
        const noDesc = await store.getFile(empty.id)
        assert.equal(noDesc !== undefined && 'description' in noDesc, false, 'no description stays absent')
        assert.equal(await store.getFile(fid(99)), undefined)
        assert.equal((await readAll(store, fid(99))).chunks, 0)
      })
    })

    it('store - an upload is invisible until complete; abort and dropFileUploads leave nothing', async () => {
      await withStore(undefined, async ({ store }) => {
        const f = file(1)
        await store.beginFileUpload(f.id, ALICE, T0)
        await store.putFileChunk(f.id, 0, pattern(10))
        assert.equal(await store.getFile(f.id), undefined)
        assert.equal((await readAll(store, f.id)).chunks, 0, 'no chunk of an incomplete upload is read')
        assert.deepEqual(await store.listFiles({ limit: 10 }), [])
        assert.deepEqual(await store.fileUsage(ALICE), { bytes: 0, files: 0 })
        await store.abortFileUpload(f.id)
        await assert.rejects(store.putFileChunk(f.id, 1, pattern(1)), 'no chunk after an abort')
        await assert.rejects(store.completeFile(f, NO_QUOTA), 'no completion after an abort')
        assert.equal(await store.getFile(f.id), undefined)

        // leftovers: uploads started before a time are dropped; a later one and complete files stay
        const old = file(2)
        const later = file(3)
        const done = file(4)
        await store.beginFileUpload(old.id, ALICE, T0 + 1)
        await store.putFileChunk(old.id, 0, pattern(5))
        await store.beginFileUpload(later.id, ALICE, T0 + 100)
        await store.putFileChunk(later.id, 0, pattern(5))
        assert.equal(await upload(store, done, pattern(4)), 'stored')
        assert.equal(await store.dropFileUploads(T0 + 50), 1)
        await assert.rejects(store.putFileChunk(old.id, 1, pattern(1)))
        await store.putFileChunk(later.id, 1, pattern(2))
        assert.equal(await store.completeFile({ ...later, size: 7 }, NO_QUOTA), 'stored')
        assert.deepEqual((await readAll(store, later.id)).bytes, Uint8Array.from([...pattern(5), ...pattern(2)]))
        assert.deepEqual((await readAll(store, done.id)).bytes, pattern(4))
        // abort of a complete file changes nothing
        await store.abortFileUpload(done.id)
        assert.deepEqual((await readAll(store, done.id)).bytes, pattern(4))
      })
    })

    it('store - completeFile refuses past the owner\'s quota (bytes or files) and drops the chunks', async () => {
      await withStore(undefined, async ({ store }) => {
        const quota = { bytes: 100, files: 2 }
        assert.equal(await upload(store, file(1), pattern(60), quota), 'stored')
        assert.equal(await upload(store, file(2), pattern(41), quota), 'quota', '60 + 41 > 100 bytes')
        assert.equal(await store.getFile(fid(2)), undefined)
        assert.equal((await readAll(store, fid(2))).chunks, 0)
        assert.equal(await upload(store, file(3), pattern(40), quota), 'stored', 'exactly 100 bytes')
        assert.deepEqual(await store.fileUsage(ALICE), { bytes: 100, files: 2 })
        assert.equal(await upload(store, file(4), new Uint8Array(0), { bytes: 1000, files: 2 }), 'quota', 'a third file')
        // another owner has its own quota
        assert.equal(await upload(store, file(5, { owner: BOB }), pattern(100), quota), 'stored')
        assert.deepEqual(await store.fileUsage(BOB), { bytes: 100, files: 1 })
        // a delete frees it
        assert.equal(await store.deleteFile(fid(1)), true)
        assert.equal(await store.deleteFile(fid(1)), false)
        assert.deepEqual(await store.fileUsage(ALICE), { bytes: 40, files: 1 })
        assert.equal((await readAll(store, fid(1))).chunks, 0)
        assert.equal(await upload(store, file(6), pattern(60), quota), 'stored')
      })
    })

    it('store - listFiles: newest first, paged, by owner, and only what a viewer may see', async () => {
      await withStore(undefined, async ({ store }) => {
        await upload(store, file(1, { owner: ALICE, visibility: 'private' }), pattern(1))
        await upload(store, file(2, { owner: ALICE, visibility: 'private', sharedWith: [BOB] }), pattern(1))
        await upload(store, file(3, { owner: CAROL, visibility: 'public' }), pattern(1))
        await upload(store, file(4, { owner: CAROL, visibility: '#ops' }), pattern(1))
        await upload(store, file(5, { owner: CAROL, visibility: '#other' }), pattern(1))
        await upload(store, file(6, { owner: BOB, visibility: 'private' }), pattern(1))
        const ids = (fs: FileRecord[]): number[] => fs.map(f => Number(f.id.slice(-12)))
        assert.deepEqual(ids(await store.listFiles({ limit: 10 })), [6, 5, 4, 3, 2, 1], 'no viewer: every file')
        assert.deepEqual(ids(await store.listFiles({ limit: 10, viewer: { amid: BOB, rooms: ['ops'] } })), [6, 4, 3, 2])
        assert.deepEqual(ids(await store.listFiles({ limit: 10, viewer: { amid: DAVE, rooms: [] } })), [3])
        assert.deepEqual(ids(await store.listFiles({ limit: 10, viewer: { amid: ALICE, rooms: ['other'] } })), [5, 3, 2, 1])
        assert.deepEqual(ids(await store.listFiles({ limit: 10, owner: CAROL, viewer: { amid: BOB, rooms: ['ops'] } })), [4, 3])
        assert.deepEqual(ids(await store.listFiles({ limit: 2 })), [6, 5])
        assert.deepEqual(ids(await store.listFiles({ limit: 2, before: fid(5) })), [4, 3])
        assert.deepEqual(ids(await store.listFiles({ limit: 2, before: fid(1) })), [])
        const shared = (await store.listFiles({ limit: 1, before: fid(3) }))[0]
        assert.deepEqual(shared?.sharedWith, [BOB])
      })
    })

    if (init.reopen !== undefined) {
      const reopen = init.reopen
      it('store - files and their bytes survive reopen; an upload cut short is dropped by dropFileUploads after it', async () => {
        await withStore(undefined, async (h) => {
          const bytes = pattern(FILE_CHUNK_BYTES + 5)
          const f = file(1, { visibility: 'public', description: 'kept' })
          await upload(h.store, f, bytes)
          await h.store.beginFileUpload(fid(2), BOB, T0 + 2)
          await h.store.putFileChunk(fid(2), 0, pattern(9))
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.getFile(f.id), { ...f, size: bytes.byteLength })
          assert.deepEqual((await readAll(h.store, f.id)).bytes, bytes)
          assert.equal(await h.store.dropFileUploads(T0 + 1000), 1)
          assert.equal(await h.store.getFile(fid(2)), undefined)
          assert.deepEqual(await h.store.fileUsage(BOB), { bytes: 0, files: 0 })
        })
      })
    }
  })
}
