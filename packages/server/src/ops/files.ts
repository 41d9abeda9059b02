/**
 * Files (docs/protocol.md §18): upload (Base64 JSON, or the raw body streamed), metadata, download
 * (streamed), list, delete. The bytes go to the Store as chunk rows of FILE_CHUNK_BYTES while they
 * arrive, hashed on the way; the file becomes visible (its metadata row) only once it is whole, its
 * SHA-256 checked and the owner's quota allows it, so an upload cut short or refused leaves
 * nothing. A new file is announced to the connected agents who may see it (`file_available`).
 *
 * Who sees a file: its owner and masters always; `private`: the agents it is shared with;
 * `#room`: the room's members, checked at read time; `public`: every agent.
 */
import { createHash } from 'node:crypto'
import type { Context, Hono } from 'hono'
import { v7 as uuidv7 } from 'uuid'
import { API_ROUTES as R, AgentMeshError, ErrorCode, checkValue, type FileInfo, type OpsEvent } from '@agentmesh/protocol'
import { SIGNATURE_HEADERS } from '@agentmesh/crypto'
import { FILE_CHUNK_BYTES, type FileRecord } from '@agentmesh/store'
import type { RelayFeature } from '../feature.ts'
import type { Principal } from '../chat.ts'
import { answer, paramsOf, queryOf } from '../rest.ts'
import type { OpsContext } from './context.ts'

/** Rooms of a viewer read at most (for listing room files). */
const MAX_VIEWER_ROOMS = 10_000
/** Content types served as they are; anything else is served as application/octet-stream. */
const SERVED_AS_IS = /^(?:text\/plain|application\/(?:json|pdf|octet-stream|zip|gzip)|image\/(?:png|jpeg|gif|webp))$/
/** A Base64 text: the standard or URL-safe alphabet, padding optional. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

interface Meta {
  owner: string
  filename: string
  type: string
  description?: string
  visibility: string
  sharedWith: string[]
  sha256?: string
}

export function filesFeature (ctx: OpsContext): RelayFeature {
  const { store, chat, options: o, now } = ctx

  /** An upload's metadata checked: owner (the caller, or any agent for a master), visibility, shares. */
  const checkMeta = async (p: Principal, m: { agentId?: string, filename: string, type?: string, description?: string, visibility?: string, sharedWith?: string[], sha256?: string }): Promise<Meta> => {
    let owner = p.kind === 'agent' ? p.amid : chat.relayAmid
    if (m.agentId !== undefined && m.agentId !== owner) {
      if (p.role !== 'master') throw new AgentMeshError(ErrorCode.Forbidden, `agentId must be your own AMID (${owner}); only a master uploads for another agent`)
      if (await store.getAgent(m.agentId) === undefined) throw new AgentMeshError(ErrorCode.UnknownRecipient, `agentId ${m.agentId.slice(0, 80)} is not an agent registered on this relay`)
      owner = m.agentId
    }
    if (/[\u0000-\u001f\u007f]/.test(m.filename)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'filename has control characters; a filename is a name, not a path or a terminal sequence')
    const visibility = m.visibility ?? 'private'
    const sharedWith = [...new Set(m.sharedWith ?? [])].filter(a => a !== owner).sort()
    if (sharedWith.length > 0 && visibility !== 'private') throw new AgentMeshError(ErrorCode.InvalidArgument, `sharedWith is for private files; a ${visibility} file is seen by ${visibility === 'public' ? 'every agent' : 'the room\'s members'}`)
    for (const a of sharedWith) {
      if (await store.getAgent(a) === undefined) throw new AgentMeshError(ErrorCode.UnknownRecipient, `sharedWith: ${a} is not an agent registered on this relay`)
    }
    if (visibility.startsWith('#')) {
      const s = await chat.roomState(visibility.slice(1))
      if (s === undefined) throw new AgentMeshError(ErrorCode.UnknownRoom, `no room ${visibility}`)
      if (p.role !== 'master' && !chat.isMember(s, owner)) throw new AgentMeshError(ErrorCode.NotMember, `join ${visibility} to share a file with its members`)
    }
    return {
      owner,
      filename: m.filename,
      type: m.type ?? 'application/octet-stream',
      ...(m.description === undefined ? {} : { description: m.description }),
      visibility,
      sharedWith,
      ...(m.sha256 === undefined ? {} : { sha256: m.sha256 }),
    }
  }

  const quotaText = `${o.fileQuotaBytes.toLocaleString('en-US')} bytes or ${o.fileMaxPerAgent.toLocaleString('en-US')} files an agent`
  /** Refuses early what cannot fit: a declared size over the owner's remaining quota. */
  const precheckQuota = async (owner: string, size: number | undefined): Promise<void> => {
    const used = await store.fileUsage(owner)
    if (used.files + 1 > o.fileMaxPerAgent || (size !== undefined && used.bytes + size > o.fileQuotaBytes)) {
      throw new AgentMeshError(ErrorCode.FileQuota, `${owner} holds ${used.files} files, ${used.bytes.toLocaleString('en-US')} bytes; the relay keeps at most ${quotaText}: delete files first`)
    }
  }

  /**
   * Stores the bytes of `source` as a new file: chunk rows as they come, visible once whole,
   * checked (size bound, SHA-256, quota). On any failure the chunks are dropped at once.
   */
  const storeFile = async (p: Principal, meta: Meta, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxBytes: number, via: 'json' | 'stream'): Promise<FileRecord> => {
    const id = uuidv7()
    const startedAt = now()
    await store.beginFileUpload(id, meta.owner, startedAt)
    const hash = createHash('sha256')
    let size = 0
    let index = 0
    let pending = new Uint8Array(FILE_CHUNK_BYTES)
    let filled = 0
    try {
      for await (const part of source) {
        size += part.byteLength
        if (size > maxBytes) throw new AgentMeshError(ErrorCode.FileTooLarge, `the file is over ${maxBytes.toLocaleString('en-US')} bytes, the most this upload takes${via === 'json' ? '; upload larger files streamed (POST /api/v1/files)' : ''}`)
        hash.update(part)
        let at = 0
        while (at < part.byteLength) {
          const n = Math.min(FILE_CHUNK_BYTES - filled, part.byteLength - at)
          pending.set(part.subarray(at, at + n), filled)
          filled += n
          at += n
          if (filled === FILE_CHUNK_BYTES) {
            await store.putFileChunk(id, index++, pending)
            pending = new Uint8Array(FILE_CHUNK_BYTES)
            filled = 0
          }
        }
      }
      if (filled > 0) await store.putFileChunk(id, index++, pending.subarray(0, filled))
      const sha256 = hash.digest('hex')
      if (meta.sha256 !== undefined && meta.sha256 !== sha256) {
        throw new AgentMeshError(ErrorCode.ChecksumMismatch, `the bytes received hash to SHA-256 ${sha256}, not the sha256 given (${meta.sha256}); nothing was stored`)
      }
      const rec: FileRecord = {
        id, owner: meta.owner, filename: meta.filename, type: meta.type, size, sha256, createdAt: startedAt,
        visibility: meta.visibility, sharedWith: meta.sharedWith,
        ...(meta.description === undefined ? {} : { description: meta.description }),
      }
      if (await store.completeFile(rec, { bytes: o.fileQuotaBytes, files: o.fileMaxPerAgent }) === 'quota') {
        const used = await store.fileUsage(meta.owner)
        throw new AgentMeshError(ErrorCode.FileQuota, `${size.toLocaleString('en-US')} more bytes would take ${meta.owner} (${used.files} files, ${used.bytes.toLocaleString('en-US')} bytes) past its quota of ${quotaText}; nothing was stored`)
      }
      await chat.audit(p, 'file.upload', id, { owner: meta.owner, size, type: meta.type, visibility: meta.visibility, shares: meta.sharedWith.length, via })
      void announce(rec).catch((err: unknown) => { ctx.logger.warn({ err, file: id }, 'file_available not sent') })
      return rec
    } catch (err) {
      await store.abortFileUpload(id).catch(() => {})
      throw err
    }
  }

  /** The connected agents (on any node) who may see `f`, told with a file_available event. */
  const announce = async (f: FileRecord): Promise<void> => {
    const online = chat.onlineAgents()
    let to: string[]
    if (f.visibility === 'public') to = online
    else if (f.visibility === 'private') to = [f.owner, ...f.sharedWith]
    else {
      const s = await chat.roomState(f.visibility.slice(1))
      to = s === undefined ? [f.owner] : [f.owner, ...online.filter(a => chat.isMember(s, a))]
    }
    const onlineSet = new Set(online)
    const targets = [...new Set(to)].filter(a => onlineSet.has(a))
    if (targets.length === 0) return
    const event: OpsEvent = { type: 'file_available', data: fileEventData(f), ts: now() }
    const frame = JSON.stringify({ op: 'event', event })
    const here = new Set(ctx.relay.online())
    const local = targets.filter(a => here.has(a))
    const elsewhere = targets.filter(a => !here.has(a))
    if (local.length > 0) ctx.relay.event(local, frame)
    // connections on other nodes: their cores deliver the frame (the in-process backplane of a single node has none)
    if (elsewhere.length > 0) await ctx.backplane.publish({ type: 'event', origin: 'ops:files', amids: elsewhere, frame })
  }

  /** Whether `p` may see `f`. */
  const maySee = async (p: Principal, f: FileRecord): Promise<boolean> => {
    if (p.role === 'master') return true
    if (p.kind !== 'agent') return false
    if (f.owner === p.amid || f.visibility === 'public') return true
    if (f.visibility === 'private') return f.sharedWith.includes(p.amid)
    const s = await chat.roomState(f.visibility.slice(1))
    return s !== undefined && chat.isMember(s, p.amid)
  }

  /** The file `id` if `p` may see it; AM_ERR_UNKNOWN_FILE otherwise (the same as a file that does not exist). */
  const visibleFile = async (p: Principal, id: string): Promise<FileRecord> => {
    const f = await store.getFile(id)
    if (f === undefined || !await maySee(p, f)) throw new AgentMeshError(ErrorCode.UnknownFile, `no file ${id} that you may see`)
    return f
  }

  const fileJson = (p: Principal, f: FileRecord): FileInfo => ({
    ...fileEventData(f),
    ...(p.role === 'master' || (p.kind === 'agent' && p.amid === f.owner) ? { sharedWith: f.sharedWith } : {}),
  })

  /** GET or DELETE of `…/files/upload` (which the `…/files/{id}` routes match): a method that path does not take. */
  const notUpload = (c: Context): void => {
    if (c.req.param('id') !== 'upload') return
    c.header('Allow', 'POST')
    throw new AgentMeshError(ErrorCode.MethodNotAllowed, `${c.req.method} is not allowed on ${c.req.path}; use POST`)
  }
  const fileParam = (c: Context, route: 'getFile' | 'deleteFile' | 'downloadFile'): string => paramsOf(c, R[route].params).id

  /** The JSON body of an upload, read as it streams in up to what fileJsonMaxBytes takes in Base64. */
  const jsonLimit = Math.ceil(o.fileJsonMaxBytes / 3) * 4 + 64 * 1024
  const readUploadJson = async (c: Context): Promise<unknown> => {
    const declared = Number(c.req.header('content-length') ?? '0')
    const tooBig = (): AgentMeshError => new AgentMeshError(ErrorCode.BodyTooLarge, `the body is over ${jsonLimit.toLocaleString('en-US')} bytes, what a file of ${o.fileJsonMaxBytes.toLocaleString('en-US')} bytes takes in Base64; upload larger files streamed (POST /api/v1/files)`)
    if (declared > jsonLimit) throw tooBig()
    const parts: Uint8Array[] = []
    let n = 0
    for await (const part of bodyOf(c)) {
      n += part.byteLength
      if (n > jsonLimit) throw tooBig()
      parts.push(part)
    }
    if (n === 0) return undefined
    try { return JSON.parse(Buffer.concat(parts).toString('utf8')) } catch {
      throw new AgentMeshError(ErrorCode.BadJson, 'the body is not valid JSON')
    }
  }

  const uploadJson = async (c: Context): Promise<Response> => {
    const gate = ctx.gate()
    const { p, body } = await gate.enter(c, readUploadJson)
    const b = checkValue(R.uploadFileJson.body, body)
    const meta = await checkMeta(p, { ...b, ...(b.type ?? b.fileType) === undefined ? {} : { type: (b.type ?? b.fileType)! } })
    const text = b.fileData
    // padding optional, but padding that is there must make whole quartets ("YWJj=", "YQ=" are not Base64)
    if (!BASE64.test(text) || text.replace(/=+$/, '').length % 4 === 1 || (text.endsWith('=') && text.length % 4 !== 0)) throw new AgentMeshError(ErrorCode.BadEncoding, 'fileData is not Base64 (standard or URL-safe alphabet, padding optional); nothing was stored')
    const decoded = Math.floor(text.replace(/=+$/, '').length * 3 / 4)
    if (decoded > o.fileJsonMaxBytes) throw new AgentMeshError(ErrorCode.FileTooLarge, `the file is ${decoded.toLocaleString('en-US')} bytes; a JSON upload takes at most ${o.fileJsonMaxBytes.toLocaleString('en-US')}: upload larger files streamed (POST /api/v1/files)`)
    await precheckQuota(meta.owner, decoded)
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    const f = await storeFile(p, meta, [bytes], o.fileJsonMaxBytes, 'json')
    return answer(c, 'uploadFileJson', { fileId: f.id, url: urlOf(f.id), success: true, size: f.size, sha256: f.sha256 }, 201)
  }

  const uploadStream = async (c: Context): Promise<Response> => {
    const gate = ctx.gate()
    if (c.req.header('authorization') === undefined && c.req.header('x-api-key') === undefined && c.req.header(SIGNATURE_HEADERS.agent) !== undefined) {
      gate.limitIp(c)
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'a streamed upload cannot be a signed request (the signature covers a body not read yet): send "Authorization: Bearer <token>" (POST /api/v1/auth/token) or the operator\'s X-API-Key')
    }
    // authenticated before a byte of the body is read; the body is never buffered whole
    const { p } = await gate.enter(c, async () => undefined)
    const q = queryOf(c, R.uploadFile.query)
    const shares = q.sharedWith === undefined ? [] : q.sharedWith.split(',').map(s => s.trim()).filter(s => s !== '')
    const checkedShares = checkValue(R.uploadFileJson.body.properties.sharedWith, shares, 'query')
    const meta = await checkMeta(p, { ...q, sharedWith: checkedShares })
    const declared = c.req.header('content-length')
    const size = declared === undefined || !/^\d{1,16}$/.test(declared) ? undefined : Number(declared)
    if (size !== undefined && size > o.fileMaxBytes) throw new AgentMeshError(ErrorCode.FileTooLarge, `the file is ${size.toLocaleString('en-US')} bytes; this relay takes at most ${o.fileMaxBytes.toLocaleString('en-US')} (fileMaxBytes)`)
    await precheckQuota(meta.owner, size)
    const f = await storeFile(p, meta, bodyOf(c), o.fileMaxBytes, 'stream')
    return answer(c, 'uploadFile', { fileId: f.id, url: urlOf(f.id), success: true, size: f.size, sha256: f.sha256 }, 201)
  }

  const list = (route: 'listFiles' | 'listFilesPlan') => async (c: Context): Promise<Response> => {
    const { p } = await ctx.gate().enter(c)
    const q = queryOf(c, R[route].query)
    const limit = q.limit ?? 50
    let viewer: { amid: string, rooms: string[] } | undefined
    if (p.role !== 'master' && p.kind === 'agent') {
      const rooms = (await store.listRooms({ member: p.amid, limit: MAX_VIEWER_ROOMS })).map(r => r.id)
      viewer = { amid: p.amid, rooms }
    }
    const files = await store.listFiles({ limit, ...(q.agentId === undefined ? {} : { owner: q.agentId }), ...(viewer === undefined ? {} : { viewer }), ...(q.after === undefined ? {} : { before: q.after }) })
    const last = files[files.length - 1]
    return answer(c, route, { files: files.map(f => fileJson(p, f)), ...(files.length === limit && last !== undefined ? { nextAfter: last.id } : {}) })
  }

  const get = (route: 'getFile' | 'getFilePlan') => async (c: Context): Promise<Response> => {
    notUpload(c)
    const { p } = await ctx.gate().enter(c)
    return answer(c, route, fileJson(p, await visibleFile(p, fileParam(c, 'getFile'))))
  }

  const download = async (c: Context): Promise<Response> => {
    const { p } = await ctx.gate().enter(c)
    const f = await visibleFile(p, fileParam(c, 'downloadFile'))
    const chunks = store.readFileChunks(f.id)[Symbol.asyncIterator]()
    const stream = new ReadableStream<Uint8Array>({
      async pull (ctl) {
        const r = await chunks.next()
        if (r.done === true) ctl.close()
        else ctl.enqueue(r.value)
      },
      async cancel () { await chunks.return?.() },
    })
    return new Response(stream, {
      status: 200,
      headers: {
        'Content-Type': SERVED_AS_IS.test(f.type) ? f.type : 'application/octet-stream',
        'Content-Length': String(f.size),
        'Content-Disposition': contentDisposition(f.filename),
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': 'sandbox; default-src \'none\'',
        'Cache-Control': 'private, no-store',
        'X-AgentMesh-SHA256': f.sha256,
      },
    })
  }

  const del = (route: 'deleteFile' | 'deleteFilePlan') => async (c: Context): Promise<Response> => {
    notUpload(c)
    const { p } = await ctx.gate().enter(c)
    const f = await visibleFile(p, fileParam(c, 'deleteFile'))
    if (p.role !== 'master' && !(p.kind === 'agent' && p.amid === f.owner)) {
      throw new AgentMeshError(ErrorCode.Forbidden, `file ${f.id} is ${f.owner}'s: only its owner or a master deletes it`)
    }
    await store.deleteFile(f.id)
    await chat.audit(p, 'file.delete', f.id, { owner: f.owner, size: f.size })
    return answer(c, route, { fileId: f.id, success: true })
  }

  return {
    name: 'files',
    routes (app: Hono) {
      app.post('/api/v1/files/upload', uploadJson)
      app.post('/api/files/upload', uploadJson)
      app.post('/api/v1/files', uploadStream)
      app.get('/api/v1/files', list('listFiles'))
      app.get('/api/files', list('listFilesPlan'))
      app.get('/api/v1/files/:id', get('getFile'))
      app.get('/api/files/:id', get('getFilePlan'))
      app.get('/api/v1/files/:id/content', download)
      app.get('/api/files/:id/content', download)
      app.delete('/api/v1/files/:id', del('deleteFile'))
      app.delete('/api/files/:id', del('deleteFilePlan'))
    },
    async start () {
      // uploads cut short by a crash or a stop: their chunks go (a node's own uploads ended with it);
      // a read-only relay (§20) leaves them for the next run that may write
      if (ctx.readOnly?.active === true) return
      const n = await store.dropFileUploads(now())
      if (n > 0) ctx.logger.info({ uploads: n }, 'dropped file uploads left unfinished by the last run')
    },
  }
}

/** What a file_available event and a file's JSON carry (camelCase, as the plan). */
export function fileEventData (f: FileRecord): FileInfo {
  return {
    fileId: f.id,
    ownerAmid: f.owner,
    filename: f.filename,
    type: f.type,
    size: f.size,
    sha256: f.sha256,
    ...(f.description === undefined ? {} : { description: f.description }),
    createdAt: f.createdAt,
    visibility: f.visibility,
    url: urlOf(f.id),
  }
}

const urlOf = (id: string): string => `/api/v1/files/${id}/content`

/** The request body as it streams in; nothing when there is none. */
async function * bodyOf (c: Context): AsyncIterable<Uint8Array> {
  const body = c.req.raw.body
  if (body === null) return
  const reader = body.getReader()
  try {
    for (;;) {
      const r = await reader.read()
      if (r.done) return
      yield r.value
    }
  } finally {
    // stopped early (over a bound): the rest of the body is not read
    reader.cancel().catch(() => {})
  }
}

/**
 * `Content-Disposition: attachment` with the filename as data: an ASCII fallback with every quote,
 * backslash, slash and non-printable character replaced, and the exact name percent-encoded
 * (RFC 6266, RFC 5987). A client saving it takes the last path segment only, as it must anyway.
 */
export function contentDisposition (filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\/]/g, '_').replace(/^\.+/, '_') || 'file'
  const exact = encodeURIComponent(filename).replace(/['()*]/g, ch => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`
}
