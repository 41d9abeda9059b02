/**
 * `agentmesh file …` (docs/protocol.md §18): upload (streamed; `--to` encrypts it end to end for a
 * peer or a private room), download (never outside the path named, never over a file without
 * `--force`: without `-o` a free name in the current directory), list, info and delete. A file's
 * name and description come from another agent: printed without control characters, and used
 * as a name, never as a path. Progress goes to stderr, on a terminal only.
 */
import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { files, httpOrigin, httpRequest, relayUrls, type Connection, type FileEndpoint } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, MAX_FILE_DESCRIPTION, stripUnsafeChars, type FileInfo } from '@agentmesh/protocol'
import { checkAmid, serverOf, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, parseInteger, usage } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { apiKeyOf, withApi } from './chat.ts'

type Opts = CommonOpts & { timeout: string, apiKey?: string }
const ROOM = /^#[a-z0-9][a-z0-9_-]{0,63}$/

/** A progress line on stderr, redrawn in place, when stderr is a terminal (never in --json). */
function progress (io: CliIo, json: boolean, what: string): { tick: (done: number, total: number | undefined) => void, end: () => void } {
  const tty = !json && (io.stderr as { isTTY?: boolean }).isTTY === true
  let last = 0
  let shown = false
  return {
    tick (done, total) {
      if (!tty || (Date.now() - last < 200 && done !== total)) return
      last = Date.now()
      shown = true
      const pct = total === undefined || total === 0 ? '' : ` ${Math.floor(done * 100 / total)}%`
      io.stderr.write(`\r${what} ${(done / 1048576).toFixed(1)} MiB${pct}\x1b[K`)
    },
    end () { if (shown) io.stderr.write('\r\x1b[K'); shown = false },
  }
}

/**
 * A name another agent gave, made safe to create in a directory: its last path segment, without
 * control or unsafe characters, reserved punctuation or leading dots; "file" when nothing is left.
 */
export function safeFilename (name: string): string {
  const last = stripUnsafeChars(name).replace(/\\/g, '/').split('/').pop() ?? ''
  const clean = last.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').replace(/^[.\s]+/, '').slice(0, 200).trim()
  return clean === '' ? 'file' : clean
}

/** `name`, else `name-1.ext`, `name-2.ext`… : the first that does not exist in `dir`. */
async function freeName (dir: string, name: string): Promise<string> {
  const dot = name.lastIndexOf('.')
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  for (let i = 0; i < 1000; i++) {
    const p = join(dir, i === 0 ? name : `${stem}-${i}${ext}`)
    try { await stat(p) } catch { return p }
  }
  throw new AgentMeshError(ErrorCode.InvalidArgument, `${name} and 999 variants of it exist in ${dir}; name the output (-o)`)
}

/**
 * `fn` with the files of this agent's connection, or, given the operator's key (`--api-key`,
 * AGENTMESH_API_KEY), with REST calls sending X-API-Key: the operator acts as a master (every
 * file; an end-to-end file is downloaded as the relay holds it, encrypted). No identity is loaded then.
 */
async function withFiles<T> (io: CliIo, o: Opts, out: ReturnType<typeof output>, fn: (c: Connection | FileEndpoint) => Promise<T>): Promise<T> {
  const key = apiKeyOf(o.apiKey)
  if (key === undefined) return await withConnection(io, o, out, fn)
  const origin = httpOrigin(relayUrls(serverOf(o, io.env))[0]!)
  return await fn({
    async request (method, path, body) {
      return await httpRequest(origin, method, path, { apiKey: key, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    },
    async authorize () { return { origin, headers: { 'x-api-key': key } } },
  })
}

const fileLine = (f: FileInfo): string =>
  `${f.fileId}  ${String(f.size).padStart(10)}  ${f.visibility.padEnd(8)}  ${f.ownerAmid}  ${stripUnsafeChars(f.filename)}${f.description === undefined ? '' : ` — ${stripUnsafeChars(f.description)}`}`

export function fileCommands (program: Command, io: CliIo = processIo()): void {
  const file = program.command('file')
    .description('share files through the relay: upload, download, list, delete (`agentmesh file <command> --help`)')

  withCommon(file.command('upload')
    .description('upload a file (streamed). --to encrypts it end to end for a peer or a private room (the relay stores ciphertext only; the key goes in an E2EE message)')
    .argument('<path>', 'the file to upload')
    .option('--to <peer>', 'end to end: an AMID, @handle or #private-room; it gets the key')
    .option('--public', 'every agent on the relay may see it')
    .option('--room <#room>', 'the members of this room may see it (not end to end)')
    .option('--share <amids>', 'a private file: these agents (comma-separated AMIDs) may see it too')
    .option('--description <text>', `a line about it (at most ${MAX_FILE_DESCRIPTION} characters)`)
    .option('--type <mime>', 'its MIME type (default application/octet-stream)')
    .option('--timeout <sec>', 'give up connecting after this many seconds', '10'))
    .action(async (path: string, o: Opts & { to?: string, public?: boolean, room?: string, share?: string, description?: string, type?: string }) => {
      const out = output(o.json === true, io)
      const chosen = [o.to !== undefined, o.public === true, o.room !== undefined].filter(x => x).length
      if (chosen > 1) throw usage('choose one of --to, --public and --room')
      if (o.room !== undefined && !ROOM.test(o.room)) throw usage('--room must be "#room-id"')
      if (o.to !== undefined && o.to.startsWith('#') && !ROOM.test(o.to)) throw usage('--to must be an AMID, @handle or "#room-id"')
      const share = o.share === undefined ? [] : o.share.split(',').map(s => s.trim()).filter(s => s !== '').map(a => checkAmid('--share', a))
      if (share.length > 0 && chosen > 0) throw usage('--share is for a private file: leave out --to, --public and --room')
      if (o.description !== undefined && o.description.length > MAX_FILE_DESCRIPTION) throw usage(`--description is over ${MAX_FILE_DESCRIPTION} characters`)
      const source = resolve(path)
      try {
        if (!(await stat(source)).isFile()) throw usage(`${path} is not a file`)
      } catch (err) {
        if (AgentMeshError.is(err)) throw err
        throw usage(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      const bar = progress(io, o.json === true, 'uploading')
      const meta = {
        ...(o.type === undefined ? {} : { type: o.type }),
        ...(o.description === undefined ? {} : { description: o.description }),
        onProgress: bar.tick,
      }
      try {
        await withConnection(io, o, out, async (c) => {
          if (o.to !== undefined) {
            const r = await files(c).sendFile(o.to, source, meta)
            bar.end()
            out.result({ fileId: r.fileId, size: r.size, sha256: r.sha256, to: o.to, e2ee: true, messageId: r.messageId },
              `${r.fileId} sent to ${o.to}, end to end (${r.size} bytes, sha256 ${r.sha256})`)
            return
          }
          const visibility = o.public === true ? 'public' : o.room ?? 'private'
          const r = await files(c).upload(source, { ...meta, visibility, ...(share.length === 0 ? {} : { sharedWith: share }) })
          bar.end()
          out.result({ fileId: r.fileId, url: r.url, size: r.size, sha256: r.sha256, visibility, e2ee: false },
            `${r.fileId} uploaded (${r.size} bytes, sha256 ${r.sha256}, ${visibility})`)
        }, { flush: true })
      } finally {
        bar.end()
      }
    })

  withApi(file.command('download')
    .description('download a file, checked against its SHA-256 (and decrypted, for an end-to-end file whose key this agent received). Without -o: its name in the current directory, or a free variant of it')
    .argument('<id>', 'the file id')
    .option('-o, --output <path>', 'write it here (refused when it exists, unless --force)')
    .option('--force', 'replace the -o path if it exists')
    .option('--timeout <sec>', 'give up connecting after this many seconds', '10'))
    .action(async (id: string, o: Opts & { output?: string, force?: boolean }) => {
      const out = output(o.json === true, io)
      if (!/^[0-9a-f-]{36}$/.test(id)) throw usage('the file id is a UUID (as `agentmesh file list` shows it)')
      const bar = progress(io, o.json === true, 'downloading')
      try {
        await withFiles(io, o, out, async (c) => {
          const f = files(c)
          let to: string
          if (o.output !== undefined) {
            to = resolve(o.output)
          } else {
            const info = await f.get(id)
            // the key of an end-to-end file (with the sender's name) may be among the deliveries waiting
            await (c as Partial<{ caughtUp: () => Promise<void> }>).caughtUp?.()
            to = await freeName(process.cwd(), safeFilename(f.keyOf(info.fileId)?.filename ?? info.filename))
          }
          const d = await f.download(id, { to, force: o.force === true && o.output !== undefined, onProgress: bar.tick })
          bar.end()
          out.result({ fileId: d.file.fileId, path: d.path, size: d.size, sha256: d.sha256, decrypted: d.decrypted, filename: d.filename },
            `${d.path ?? ''} (${d.size} bytes, sha256 ${d.sha256}${d.decrypted ? ', decrypted' : ''})`)
        })
      } finally {
        bar.end()
      }
    })

  withApi(file.command('list')
    .description('the files you may see, newest first: yours, shared with you, your rooms\', public ones (the operator, --api-key: every file)')
    .option('--agent <amid>', 'only this agent\'s files')
    .option('--limit <n>', 'at most this many', '50')
    .option('--timeout <sec>', 'give up connecting after this many seconds', '10'))
    .action(async (o: Opts & { agent?: string, limit: string }) => {
      const out = output(o.json === true, io)
      if (o.agent !== undefined) checkAmid('--agent', o.agent)
      const limit = parseInteger('--limit', o.limit, 1, 200)
      const page = await withFiles(io, o, out, async (c) => await files(c).list({ limit, ...(o.agent === undefined ? {} : { agentId: o.agent }) }))
      if (o.json !== true && page.files.length === 0) { io.stdout.write('no files\n'); return }
      for (const f of page.files) out.result({ ...f }, fileLine(f))
    })

  withApi(file.command('info')
    .description('a file\'s metadata')
    .argument('<id>', 'the file id')
    .option('--timeout <sec>', 'give up connecting after this many seconds', '10'))
    .action(async (id: string, o: Opts) => {
      const out = output(o.json === true, io)
      const f = await withFiles(io, o, out, async (c) => await files(c).get(id))
      out.result({ ...f }, fileLine(f))
    })

  withApi(file.command('delete')
    .description('delete a file you own (a master: any file)')
    .argument('<id>', 'the file id')
    .option('--timeout <sec>', 'give up connecting after this many seconds', '10'))
    .action(async (id: string, o: Opts) => {
      const out = output(o.json === true, io)
      await withFiles(io, o, out, async (c) => { await files(c).delete(id) })
      out.result({ fileId: id, deleted: true }, `${id} deleted`)
    })
}
