/**
 * `agentmesh file upload | download | list | info | delete` (docs/protocol.md §18), in process
 * against a relay of its own, each agent in its own home: --json shapes, exit codes and coded
 * error lines, a download never over an existing file (without --force) nor outside the path named,
 * end-to-end files (`--to`) decrypted by the receiver, and names from other agents printed safely.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { assertCliError, cli, startRelay, tempDir } from '@agentmesh/testing'
import { safeFilename } from '../src/commands/files.ts'
import { run as runCli, type CliIo } from '../src/index.ts'
import { Readable } from 'node:stream'

type Json = Record<string, any>
const API_KEY = 'operator-key-for-cli-file-tests-0123456'
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('file', () => {
  const dir = tempDir()
  let relay: Relay
  let server: string
  const home = (name: string): string => join(dir.path, name)
  before(async () => {
    relay = await startRelay({ memory: true, apiKey: API_KEY })
    server = relay.url
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  async function init (name: string): Promise<string> {
    const r = await cli(['init', '--open', '--name', name, '--json'], { home: home(name), server })
    assert.equal(r.code, 0, r.stderr)
    return (JSON.parse(r.lines[0]!) as { amid: string }).amid
  }
  async function run (who: string, args: string[]): Promise<Json[]> {
    const r = await cli([...args, '--json'], { home: home(who), server })
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    return r.lines.map(l => JSON.parse(l) as Json)
  }

  it('file - upload, list, info, download byte-identical to -o; an existing -o is refused without --force; delete by the owner only', async () => {
    const [alice, bob] = [await init('alice'), await init('bob')]
    const bytes = randomBytes(400_000)
    const src = join(dir.path, 'data.bin')
    writeFileSync(src, bytes)
    const [up] = await run('alice', ['file', 'upload', src, '--public', '--type', 'application/zip', '--description', 'nightly \u202eevil'])
    assert.deepEqual(Object.keys(up!).sort(), ['e2ee', 'fileId', 'sha256', 'size', 'url', 'visibility'])
    assert.deepEqual([up!.size, up!.sha256, up!.visibility, up!.e2ee], [bytes.byteLength, sha(bytes), 'public', false])

    const listed = await run('bob', ['file', 'list'])
    assert.deepEqual(listed.map(f => [f.fileId, f.ownerAmid, f.filename, f.type]), [[up!.fileId, alice, 'data.bin', 'application/zip']])
    assert.deepEqual((await run('bob', ['file', 'list', '--agent', bob])), [])
    const text = await cli(['file', 'list'], { home: home('bob'), server })
    assert.equal(text.code, 0)
    assert.ok(text.stdout.includes('data.bin — nightly evil') && !text.stdout.includes('\u202e'), text.stdout)
    const [info] = await run('bob', ['file', 'info', up!.fileId])
    assert.equal(info!.size, bytes.byteLength)

    const out = join(dir.path, 'got.bin')
    const [d] = await run('bob', ['file', 'download', up!.fileId, '-o', out])
    assert.deepEqual(d, { fileId: up!.fileId, path: out, size: bytes.byteLength, sha256: sha(bytes), decrypted: false, filename: 'data.bin' })
    assert.ok(readFileSync(out).equals(bytes))
    writeFileSync(out, 'mine')
    assertCliError(await cli(['file', 'download', up!.fileId, '-o', out], { home: home('bob'), server }), 'AM_ERR_INVALID_ARGUMENT', 2, /exists/)
    assert.equal(readFileSync(out, 'utf8'), 'mine')
    await run('bob', ['file', 'download', up!.fileId, '-o', out, '--force'])
    assert.ok(readFileSync(out).equals(bytes))
    // -o in a directory that does not exist: one coded line, nothing written (it was a crash with a stack trace)
    const nowhere = join(dir.path, 'no-such-dir', 'got.bin')
    assertCliError(await cli(['file', 'download', up!.fileId, '-o', nowhere], { home: home('bob'), server }), 'AM_ERR_INVALID_ARGUMENT', 2, /cannot write .*no-such-dir\/got\.bin: .*no-such-dir is not a directory that exists; nothing was written/)
    assertCliError(await cli(['file', 'download', up!.fileId, '-o', nowhere], { home: home('bob'), server, process: true }), 'AM_ERR_INVALID_ARGUMENT', 2)

    assertCliError(await cli(['file', 'delete', up!.fileId], { home: home('bob'), server }), 'AM_ERR_FORBIDDEN', 1)
    assert.deepEqual(await run('alice', ['file', 'delete', up!.fileId]), [{ fileId: up!.fileId, deleted: true }])
    assertCliError(await cli(['file', 'info', up!.fileId], { home: home('alice'), server }), 'AM_ERR_UNKNOWN_FILE', 1)
    // usage errors: exit 2
    assertCliError(await cli(['file', 'upload', src, '--public', '--room', '#x'], { home: home('alice'), server }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertCliError(await cli(['file', 'upload', join(dir.path, 'nope')], { home: home('alice'), server }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertCliError(await cli(['file', 'download', '../../etc/passwd'], { home: home('alice'), server }), 'AM_ERR_INVALID_ARGUMENT', 2)
    // a mistake names the help of the command it was made in
    assertCliError(await cli(['file', 'upload'], { home: home('alice'), server }), 'AM_ERR_INVALID_ARGUMENT', 2, /missing required argument 'path' \(see `agentmesh file upload --help`\)/)
    assertCliError(await cli(['file', 'uplod', src], { home: home('alice'), server }), 'AM_ERR_INVALID_ARGUMENT', 2, /unknown command 'uplod' \(Did you mean upload\?\) \(see `agentmesh file --help`\)/)
  })

  it('file - upload --to sends it end to end: the relay holds ciphertext; the peer downloads it decrypted under the sender\'s name, in a free name of the current directory', async () => {
    const bob = await init('bob2')
    await init('carol2')
    const secret = Buffer.from(`the launch code is ${randomBytes(8).toString('hex')}\n`.repeat(50))
    const src = join(dir.path, 'launch.txt')
    writeFileSync(src, secret)
    const [sent] = await run('carol2', ['file', 'upload', src, '--to', bob, '--type', 'text/plain'])
    assert.equal(sent!.e2ee, true)
    assert.equal(sent!.sha256, sha(secret))
    const parts: Uint8Array[] = []
    for await (const p of relay.store.readFileChunks(sent!.fileId)) parts.push(p)
    assert.equal(Buffer.concat(parts).indexOf('launch code'), -1, 'ciphertext only on the relay')
    assert.equal((await relay.store.getFile(sent!.fileId))?.filename, 'encrypted')

    // bob downloads it with no -o: the sender's name, in the current directory, never over a file there
    const cwd = join(dir.path, 'bob-downloads')
    mkdirSync(cwd)
    writeFileSync(join(cwd, 'launch.txt'), 'already here')
    const before = process.cwd()
    process.chdir(cwd)
    let d: Json
    try {
      [d] = await run('bob2', ['file', 'download', sent!.fileId]) as [Json]
    } finally {
      process.chdir(before)
    }
    assert.equal(d.decrypted, true)
    assert.equal(d.filename, 'launch.txt')
    assert.equal(d.path, join(cwd, 'launch-1.txt'))
    assert.ok(readFileSync(join(cwd, 'launch-1.txt')).equals(secret))
    assert.equal(readFileSync(join(cwd, 'launch.txt'), 'utf8'), 'already here')
    assert.deepEqual(readdirSync(cwd).sort(), ['launch-1.txt', 'launch.txt'], 'no partial file left')
  })

  it('file - on a terminal the progress line is cleared before the result is printed (upload and download)', async () => {
    await init('tty')
    const src = join(dir.path, 'tty.bin')
    writeFileSync(src, randomBytes(300_000))
    // stdout and stderr on one terminal, as a person sees them
    let screen = ''
    const term = { write (c: string) { screen += c; return true } }
    const io: CliIo = {
      stdout: term,
      stderr: { ...term, isTTY: true } as CliIo['stderr'],
      stdin: Readable.from([]),
      env: { AGENTMESH_HOME: home('tty'), AGENTMESH_SERVER: server, AGENTMESH_LOG_LEVEL: 'warn' },
      onInterrupt: () => () => {},
    }
    assert.equal(await runCli(['file', 'upload', src, '--public'], io), 0, screen)
    assert.match(screen, /\ruploading [\d.]+ MiB 100%\x1b\[K\r\x1b\[K[0-9a-f-]{36} uploaded \(300000 bytes/)
    const id = /([0-9a-f-]{36}) uploaded/.exec(screen)![1]!
    screen = ''
    assert.equal(await runCli(['file', 'download', id, '-o', join(dir.path, 'tty-got.bin')], io), 0, screen)
    assert.match(screen, /\rdownloading [\d.]+ MiB 100%\x1b\[K\r\x1b\[K\/\S+tty-got\.bin \(300000 bytes/)
  })

  it('file - the operator (--api-key, AGENTMESH_API_KEY) lists, reads, downloads and deletes any agent\'s private file, without an identity', async () => {
    const owner = await init('private-owner')
    const bytes = randomBytes(5000)
    const src = join(dir.path, 'secret.bin')
    writeFileSync(src, bytes)
    const [up] = await run('private-owner', ['file', 'upload', src])
    // a home without an identity: the key alone
    const op = { home: home('operator-no-identity'), server }
    const opRun = async (args: string[], env: Record<string, string> = {}): Promise<Json[]> => {
      const r = await cli([...args, '--json'], { ...op, env })
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      return r.lines.map(l => JSON.parse(l) as Json)
    }
    const listed = await opRun(['file', 'list', '--agent', owner, '--api-key', API_KEY])
    assert.deepEqual(listed.map(f => [f.fileId, f.ownerAmid, f.visibility]), [[up!.fileId, owner, 'private']])
    const [info] = await opRun(['file', 'info', up!.fileId], { AGENTMESH_API_KEY: API_KEY })
    assert.deepEqual([info!.fileId, info!.size, info!.sha256], [up!.fileId, bytes.byteLength, sha(bytes)])
    const out = join(dir.path, 'operator-got.bin')
    const [d] = await opRun(['file', 'download', up!.fileId, '-o', out, '--api-key', API_KEY])
    assert.deepEqual([d!.path, d!.size, d!.sha256, d!.decrypted], [out, bytes.byteLength, sha(bytes), false])
    assert.ok(readFileSync(out).equals(bytes))
    assertCliError(await cli(['file', 'list', '--api-key', 'not-the-key'], op), 'AM_ERR_AUTH_FAILED', 1, /operator key/)
    assert.deepEqual(await opRun(['file', 'delete', up!.fileId], { AGENTMESH_API_KEY: API_KEY }), [{ fileId: up!.fileId, deleted: true }])
    assertCliError(await cli(['file', 'info', up!.fileId], { home: home('private-owner'), server }), 'AM_ERR_UNKNOWN_FILE', 1)
  })

  it('file - a name from another agent is made a plain name: no path, no control characters, no leading dots', () => {
    assert.equal(safeFilename('../../etc/passwd'), 'passwd')
    assert.equal(safeFilename('..\\..\\boot.ini'), 'boot.ini')
    assert.equal(safeFilename('.bashrc'), 'bashrc')
    assert.equal(safeFilename('a\u001b[2Jb\u202e.txt'), 'a[2Jb.txt')
    assert.equal(safeFilename('..'), 'file')
    assert.equal(safeFilename('/'), 'file')
    assert.equal(safeFilename('con:<x>|?*'), 'con__x____')
  })
})
