/**
 * Files over a connection (docs/protocol.md §18): upload (a path, bytes or a stream; streamed to
 * the relay, never read whole), download (to a path or into memory; its SHA-256 checked), list,
 * get, delete; and end-to-end encrypted files: `sendFile(peerOrRoom, source)` encrypts the bytes
 * with a fresh AES-256-GCM key and nonce (Node's crypto, as the ratchet), uploads the ciphertext as
 * a private file shared with the peer (or a private room's file), and sends the key, nonce, the
 * plaintext's SHA-256, name and size inside an end-to-end encrypted `agentmesh.file` message, as
 * Signal and Matrix attachments do. The relay holds ciphertext only. A receiving connection keeps
 * the key in the agent's sealed state (file-keys.ts); `download` decrypts when it has one.
 *
 * Node only (it reads and writes files): not part of `@agentmesh/client/browser`.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { link, open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import {
  AgentMeshError, ErrorCode, isErrorCode,
  type ApiAnswer, type FileInfo, type RouteName,
} from '@agentmesh/protocol'
import { isAmid } from '@agentmesh/crypto'
import { restCall } from '../api.ts'
import { FILE_MESSAGE_TYPE, fileKeysOf, type FileKey } from '../file-keys.ts'
import type { Connection } from '../types.ts'

export { FILE_MESSAGE_TYPE, type FileKey } from '../file-keys.ts'

/** A file's bytes: a path, the bytes, or a stream of them. */
export type FileSource = string | Uint8Array | AsyncIterable<Uint8Array>

export interface UploadOptions {
  /** @default the path's base name, else "file" */
  filename?: string
  /** MIME type. @default application/octet-stream */
  type?: string
  description?: string
  /** 'private' (the owner and `sharedWith`), 'public' (every agent) or '#room' (its members). @default private */
  visibility?: string
  sharedWith?: readonly string[]
  /** Called as bytes go out: sent so far, and the total when known. */
  onProgress?: (done: number, total: number | undefined) => void
  signal?: AbortSignal
}

export interface DownloadOptions {
  /** Write to this path (created; its directory must exist). @default into memory (`bytes`) */
  to?: string
  /** Replace `to` when it exists. @default false: AM_ERR_INVALID_ARGUMENT */
  force?: boolean
  /** Decrypt with the key this agent received for the file. @default true when it has one */
  decrypt?: boolean
  onProgress?: (done: number, total: number | undefined) => void
  signal?: AbortSignal
}

export interface Downloaded {
  file: FileInfo
  /** the bytes, when no `to` was given */
  bytes?: Uint8Array
  /** where they were written */
  path?: string
  /** true when the file was end-to-end encrypted and decrypted here */
  decrypted: boolean
  /** bytes written or returned (the plaintext's, for a decrypted file) */
  size: number
  /** SHA-256 of those bytes, checked against the file's (or the sender's, decrypted) */
  sha256: string
  /** for a decrypted file: its name as the sender gave it (the relay's copy is called "encrypted") */
  filename: string
}

export interface SentFile {
  fileId: string
  /** the id of the agentmesh.file message that carries the key */
  messageId: string
  size: number
  sha256: string
}

export interface Files {
  upload (source: FileSource, opts?: UploadOptions): Promise<ApiAnswer<'uploadFile'>>
  download (id: string, opts?: DownloadOptions): Promise<Downloaded>
  list (opts?: { agentId?: string, after?: string, limit?: number }): Promise<ApiAnswer<'listFiles'>>
  get (id: string): Promise<FileInfo>
  delete (id: string): Promise<void>
  /** Encrypts and uploads `source` for a peer (AMID or @handle) or a private room (#id), and sends it the key end to end. */
  sendFile (to: string, source: FileSource, opts?: Pick<UploadOptions, 'filename' | 'type' | 'description' | 'onProgress' | 'signal'>): Promise<SentFile>
  /** The key this agent holds for an end-to-end encrypted file (received, or sent by it). */
  keyOf (id: string): (FileKey & { from: string }) | undefined
  /** New files this agent may see, live, as the relay announces them (`file_available` events). */
  available (): AsyncIterable<FileInfo>
}

const TAG_BYTES = 16
/** The name and type the relay sees for an end-to-end encrypted file. */
const SEALED_NAME = 'encrypted'
const SEALED_TYPE = 'application/octet-stream'

/**
 * What `files` needs for upload, download, list, get and delete: REST calls and the headers that
 * authorize a transfer. A connection has them; so has the operator's key (the CLI's `--api-key`:
 * `{ request, authorize }` sending X-API-Key), which acts as a master and sees every file. End-to-end
 * files (`sendFile`, a received key) and `available` take an agent's connection.
 */
export type FileEndpoint = Pick<Connection, 'request' | 'authorize'>

const isConnection = (c: Connection | FileEndpoint): c is Connection => 'send' in c && 'events' in c

export function files (conn: Connection | FileEndpoint): Files {
  const agent = (what: string): Connection => {
    if (!isConnection(conn)) throw new AgentMeshError(ErrorCode.InvalidArgument, `${what} takes an agent's connection, not the operator's key`)
    return conn
  }
  const rest = async <N extends RouteName>(route: N, path: string): Promise<ApiAnswer<N>> => await restCall(async (m, p, b) => await conn.request(m, p, b), route, path)
  const keys = (): ReturnType<typeof fileKeysOf.get> => fileKeysOf.get(conn)

  const upload = async (source: FileSource, opts: UploadOptions = {}): Promise<ApiAnswer<'uploadFile'>> => {
    const { origin, headers } = await conn.authorize()
    const total = typeof source === 'string' ? (await stat(source)).size : source instanceof Uint8Array ? source.byteLength : undefined
    const q = new URLSearchParams({ filename: opts.filename ?? (typeof source === 'string' ? basename(source) : 'file') })
    if (opts.type !== undefined) q.set('type', opts.type)
    if (opts.description !== undefined) q.set('description', opts.description)
    if (opts.visibility !== undefined) q.set('visibility', opts.visibility)
    if (opts.sharedWith !== undefined && opts.sharedWith.length > 0) q.set('sharedWith', opts.sharedWith.join(','))
    let done = 0
    const counted = async function * (): AsyncIterable<Uint8Array> {
      for await (const c of bytesOf(source)) {
        done += c.byteLength
        opts.onProgress?.(done, total)
        yield c
      }
    }
    const res = await send(`${origin}/api/v1/files?${q.toString()}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', ...(total === undefined ? {} : { 'content-length': String(total) }) },
      body: streamOf(counted()),
      duplex: 'half',
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    }, origin)
    return await res.json() as ApiAnswer<'uploadFile'>
  }

  const download = async (id: string, opts: DownloadOptions = {}): Promise<Downloaded> => {
    const file = await rest('getFile', `/api/v1/files/${encodeURIComponent(id)}`)
    // a connection that only sends (the CLI's) looks at the deliveries waiting for it first: a key may be among them
    if (opts.decrypt !== false && keys()?.get(file.fileId) === undefined) await (conn as Partial<{ caughtUp: () => Promise<void> }>).caughtUp?.()
    const key = opts.decrypt === false ? undefined : keys()?.get(file.fileId)
    if (opts.to !== undefined && opts.force !== true && await exists(opts.to)) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `${opts.to} exists; choose another path, or replace it (--force)`)
    }
    const { origin, headers } = await conn.authorize()
    const res = await send(`${origin}/api/v1/files/${encodeURIComponent(file.fileId)}/content`, { headers, ...(opts.signal === undefined ? {} : { signal: opts.signal }) }, origin)
    if (res.body === null) throw new AgentMeshError(ErrorCode.Internal, 'the relay answered no body')
    const relaySha = createHash('sha256')
    const outSha = createHash('sha256')
    let done = 0
    const decipher = key === undefined ? undefined : createDecipheriv('aes-256-gcm', Buffer.from(key.key, 'base64url'), Buffer.from(key.nonce, 'base64url'))
    /** what is written: the bytes as received, or decrypted (the tag, the last 16 bytes, held back) */
    const plain = async function * (): AsyncIterable<Uint8Array> {
      let held = Buffer.alloc(0)
      for await (const part of iterate(res.body!)) {
        relaySha.update(part)
        done += part.byteLength
        opts.onProgress?.(done, file.size)
        if (decipher === undefined) { outSha.update(part); yield part; continue }
        const buf = Buffer.concat([held, part])
        const cut = Math.max(0, buf.byteLength - TAG_BYTES)
        held = buf.subarray(cut)
        const out = decipher.update(buf.subarray(0, cut))
        outSha.update(out)
        if (out.byteLength > 0) yield out
      }
      if (relaySha.digest('hex') !== file.sha256) throw new AgentMeshError(ErrorCode.ChecksumMismatch, `file ${file.fileId}: the bytes received do not have the SHA-256 the relay recorded (${file.sha256})`)
      if (decipher !== undefined) {
        if (held.byteLength !== TAG_BYTES) throw new AgentMeshError(ErrorCode.DecryptFailed, `file ${file.fileId} is shorter than an encrypted file can be`)
        decipher.setAuthTag(held)
        let last: Buffer
        try { last = decipher.final() } catch {
          throw new AgentMeshError(ErrorCode.DecryptFailed, `file ${file.fileId} does not decrypt with the key received for it: changed on the relay, or not the file the key was sent for`)
        }
        outSha.update(last)
        if (last.byteLength > 0) yield last
      }
    }
    const meta = { file, decrypted: key !== undefined, filename: key?.filename ?? file.filename }
    const check = (sha256: string, size: number): void => {
      if (key !== undefined && (sha256 !== key.sha256 || size !== key.size)) {
        throw new AgentMeshError(ErrorCode.ChecksumMismatch, `file ${file.fileId} decrypted to ${size} bytes with SHA-256 ${sha256}; its sender said ${key.size} bytes, ${key.sha256}`)
      }
    }
    if (opts.to === undefined) {
      const parts: Uint8Array[] = []
      for await (const p of plain()) parts.push(p)
      const bytes = Buffer.concat(parts)
      const sha256 = outSha.digest('hex')
      check(sha256, bytes.byteLength)
      return { ...meta, bytes, size: bytes.byteLength, sha256 }
    }
    // written beside the target under a fresh name, then put in place once whole and checked
    const part = join(dirname(opts.to), `.${basename(opts.to)}.${randomUUID()}.part`)
    let size = 0
    try {
      let fh: FileHandle
      try {
        fh = await open(part, 'wx', 0o600)
      } catch (err) {
        await res.body!.cancel().catch(() => {})
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        const noDir = !(await stat(dirname(opts.to)).then(st => st.isDirectory(), () => false))
        throw new AgentMeshError(ErrorCode.InvalidArgument, `cannot write ${opts.to}: ${noDir ? `${dirname(opts.to)} is not a directory that exists` : `a file cannot be created there (${code})`}; nothing was written`)
      }
      const out = fh.createWriteStream()
      const closed = new Promise<void>((resolve, reject) => { out.on('close', resolve); out.on('error', reject) })
      closed.catch(() => {}) // awaited below; a write error meanwhile is not an unhandled rejection
      try {
        for await (const p of plain()) {
          size += p.byteLength
          if (!out.write(p)) await new Promise<void>((resolve, reject) => { out.once('drain', resolve); out.once('error', reject) })
        }
      } finally {
        out.end()
        await closed
      }
      const sha256 = outSha.digest('hex')
      check(sha256, size)
      await place(part, opts.to, opts.force === true)
      return { ...meta, path: opts.to, size, sha256 }
    } finally {
      await rm(part, { force: true })
    }
  }

  return {
    upload,
    download,
    async list (opts = {}) {
      const q = new URLSearchParams()
      if (opts.agentId !== undefined) q.set('agentId', opts.agentId)
      if (opts.after !== undefined) q.set('after', opts.after)
      if (opts.limit !== undefined) q.set('limit', String(opts.limit))
      const qs = q.toString()
      return await rest('listFiles', `/api/v1/files${qs === '' ? '' : '?' + qs}`)
    },
    async get (id) { return await rest('getFile', `/api/v1/files/${encodeURIComponent(id)}`) },
    async delete (id) {
      await rest('deleteFile', `/api/v1/files/${encodeURIComponent(id)}`)
      keys()?.delete(id)
    },
    keyOf (id) { return keys()?.get(id) },
    async * available () {
      for await (const e of agent('watching for new files').events()) if (e.type === 'file_available' && 'data' in e) yield e.data as FileInfo
    },
    async sendFile (to, source, opts = {}) {
      const conn = agent('an end-to-end file')
      const store = keys()
      if (store === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection has no end-to-end encryption: an encrypted file needs it')
      let visibility: { visibility: string, sharedWith?: string[] }
      if (to.startsWith('#')) {
        const room = await rest('getRoom', `/api/v1/rooms/${encodeURIComponent(to.slice(1))}`)
        if (room.kind !== 'private') throw new AgentMeshError(ErrorCode.EncryptionRequired, `${to} is a ${room.kind} room, whose messages are not end-to-end encrypted: the key would be readable. Share the file with its members as a room file instead (\`agentmesh file upload PATH --room ${to}\`, not end to end)`)
        visibility = { visibility: to }
      } else {
        const peer = isAmid(to) ? to : await conn.resolveHandle(to)
        visibility = { visibility: 'private', sharedWith: [peer] }
      }
      const key = randomBytes(32)
      const nonce = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, nonce)
      const plainSha = createHash('sha256')
      let size = 0
      const sealed = async function * (): AsyncIterable<Uint8Array> {
        for await (const c of bytesOf(source)) {
          plainSha.update(c)
          size += c.byteLength
          const out = cipher.update(c)
          if (out.byteLength > 0) yield out
        }
        const last = cipher.final()
        if (last.byteLength > 0) yield last
        yield cipher.getAuthTag()
      }
      const up = await upload(sealed(), { filename: SEALED_NAME, type: SEALED_TYPE, ...visibility, ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }), ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
      const fk: FileKey = {
        fileId: up.fileId,
        key: key.toString('base64url'),
        nonce: nonce.toString('base64url'),
        sha256: plainSha.digest('hex'),
        filename: opts.filename ?? (typeof source === 'string' ? basename(source) : 'file'),
        size,
        ...(opts.type === undefined ? {} : { type: opts.type }),
        ...(opts.description === undefined ? {} : { description: opts.description }),
      }
      key.fill(0)
      store.put(fk, conn.amid) // the sender can read its own file again
      let r
      try {
        r = await conn.send(to, { ...fk }, { type: FILE_MESSAGE_TYPE })
      } catch (err) {
        // the key could not go (no grant, an unknown peer…): the ciphertext is of no use to anyone
        await rest('deleteFile', `/api/v1/files/${up.fileId}`).catch(() => {})
        store.delete(up.fileId)
        throw err
      }
      return { fileId: up.fileId, messageId: r.id, size, sha256: fk.sha256 }
    },
  }
}

/** The bytes of a source, in parts. */
async function * bytesOf (source: FileSource): AsyncIterable<Uint8Array> {
  if (typeof source === 'string') { for await (const c of createReadStream(source)) yield c as Buffer; return }
  if (source instanceof Uint8Array) { yield source; return }
  yield * source
}

/** A web stream over an async iterable (what fetch takes as a streamed body). */
function streamOf (it: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iter = it[Symbol.asyncIterator]()
  return new ReadableStream<Uint8Array>({
    async pull (ctl) {
      const r = await iter.next()
      if (r.done === true) ctl.close()
      else ctl.enqueue(r.value)
    },
    async cancel () { await iter.return?.() },
  })
}

async function * iterate (body: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      const r = await reader.read()
      if (r.done) return
      yield r.value
    }
  } finally {
    reader.releaseLock()
  }
}

/** fetch, with the relay's coded error thrown for an error answer. */
async function send (url: string, init: RequestInit & { duplex?: 'half' }, origin: string): Promise<Response> {
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (cause) {
    if (AgentMeshError.is(cause)) throw cause
    // an error raised while the body was read (the source failed) comes back as fetch's cause
    const inner = (cause as { cause?: unknown }).cause
    if (AgentMeshError.is(inner)) throw inner
    if ((cause as Error).name === 'AbortError') throw new AgentMeshError(ErrorCode.Aborted, 'the transfer was aborted')
    throw new AgentMeshError(ErrorCode.ConnectFailed, `cannot reach the relay at ${origin}: ${(cause as Error).message}`, { cause })
  }
  if (res.ok) return res
  const answer = await res.json().catch(() => undefined) as { error?: { code?: unknown, message?: unknown } } | undefined
  const e = answer?.error
  throw new AgentMeshError(isErrorCode(e?.code) ? e.code : ErrorCode.Internal, typeof e?.message === 'string' ? e.message : `the relay answered HTTP ${res.status}`)
}

async function exists (path: string): Promise<boolean> {
  try { await stat(path); return true } catch { return false }
}

/** Puts the finished `part` at `to`: never over an existing file unless `force` (a link fails when `to` exists). */
async function place (part: string, to: string, force: boolean): Promise<void> {
  if (force) { await rename(part, to); return }
  try {
    await link(part, to)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AgentMeshError(ErrorCode.InvalidArgument, `${to} exists; choose another path, or replace it (--force)`)
    throw err
  }
}
