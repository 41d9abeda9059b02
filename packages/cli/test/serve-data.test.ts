/**
 * What `serve` gives the relay (openRelayData): the Store under the data directory and the operator
 * key file there. The relay itself opens no driver and writes no file (packages/server).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { API_KEY_FILE, openRelayData } from '../src/commands/serve.ts'
import { cliProcess, tempDir } from '@agentmesh/testing'

describe('serve data', () => {
  it('serve data - a persistent relay gets a 0600 operator key made once and read back on the next start', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const first = openRelayData({ dataDir: dir.path })
    const file = join(dir.path, API_KEY_FILE)
    assert.equal(first.apiKeyFile, file)
    assert.equal(first.store.kind, 'sqlite')
    assert.equal(readFileSync(file, 'utf8'), first.apiKey + '\n')
    assert.ok(first.apiKey !== undefined && first.apiKey.length >= 16)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    await first.store.close()
    const again = openRelayData({ dataDir: dir.path })
    assert.deepEqual([again.apiKey, again.apiKeyFile], [first.apiKey, file])
    await again.store.close()
  })

  it('serve data - a given key wins and no file is written; --memory has no operator API unless given one', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const given = openRelayData({ dataDir: dir.path, apiKey: 'operator-key-0123456789' })
    assert.deepEqual([given.apiKey, given.apiKeyFile], ['operator-key-0123456789', undefined])
    assert.equal(existsSync(join(dir.path, API_KEY_FILE)), false)
    await given.store.close()
    const memory = openRelayData({ memory: true })
    assert.deepEqual([memory.store.kind, memory.apiKey, memory.apiKeyFile], ['memory', undefined, undefined])
    await memory.store.close()
  })

  it('serve data - options are validated before the data directory is touched', () => {
    const dir = tempDir()
    try {
      const dataDir = join(dir.path, 'never-created')
      assert.throws(() => openRelayData({ dataDir, maxInbox: 0 }),
        (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig) && /maxInbox/.test((err as Error).message))
      assert.equal(existsSync(dataDir), false)
    } finally {
      dir.cleanup()
    }
  })

  it('serve data - an unreadable key file is AM_ERR_DATA_DIR naming the file', (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    // a directory where the key file should be: reading it fails with something other than ENOENT
    mkdirSync(join(dir.path, API_KEY_FILE), { recursive: true })
    writeFileSync(join(dir.path, API_KEY_FILE, 'x'), 'x')
    assert.throws(() => openRelayData({ dataDir: dir.path }), (err: unknown) => {
      assert.ok(AgentMeshError.is(err, ErrorCode.DataDir))
      assert.ok((err as Error).message.startsWith(`cannot read the operator API key ${join(dir.path, API_KEY_FILE)}: `))
      return true
    })
  })
})

describe('serve - the operator key on the start lines', () => {
  it('serve - a key made at this start is shown once (equal to the 0600 file), later starts only name the file; never in the --json line', async () => {
    const dir = tempDir()
    try {
      const startLines = async (json: boolean): Promise<string[]> => {
        const child = cliProcess(['serve', '--data', join(dir.path, 'data'), '--port', '0', ...(json ? ['--json'] : [])])
        const lines: string[] = []
        let buf = ''
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => { reject(new Error(`no start lines: ${buf}`)) }, 30_000)
          child.stdout!.on('data', (d: Buffer) => {
            buf += d.toString()
            if (json ? buf.includes('\n') : /console: .*\n/.test(buf)) { clearTimeout(t); resolve() }
          })
        })
        lines.push(...buf.split('\n').filter(l => l !== ''))
        child.kill('SIGTERM')
        await new Promise(resolve => child.once('close', resolve))
        return lines
      }
      const first = await startLines(false)
      const key = readFileSync(join(dir.path, 'data', API_KEY_FILE), 'utf8').trim()
      assert.equal(statSync(join(dir.path, 'data', API_KEY_FILE)).mode & 0o777, 0o600)
      const shown = first.find(l => l.startsWith('operator API key: '))
      assert.ok(shown?.startsWith(`operator API key: ${key} (made now`), shown)
      const again = await startLines(false)
      assert.ok(again.some(l => l.startsWith('operator API key: in ')), again.join('\n'))
      assert.ok(again.every(l => !l.includes(key)), 'not shown again')
      const json = await startLines(true)
      assert.ok(json.every(l => !l.includes(key)), 'not in the JSON line')
    } finally {
      dir.cleanup()
    }
  })
})
