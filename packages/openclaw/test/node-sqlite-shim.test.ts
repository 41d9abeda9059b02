// The client state over node:sqlite (the plugin's bundle maps better-sqlite3 to the shim): the
// client's own sqliteState, bundled as the plugin is, run by the cached Node 24; then the same file
// read back here by the better-sqlite3 state on Node 20 (an agent home is shared with the CLI).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { sqliteState } from '@agentmesh/client'
import { tempDir } from '@agentmesh/testing'

const pluginDir = fileURLToPath(new URL('..', import.meta.url))
const clientState = fileURLToPath(new URL('../../client/src/state-sqlite.ts', import.meta.url))

const script = (path: string): string => `
import { sqliteState } from ${JSON.stringify(clientState)}
const s = sqliteState(${JSON.stringify(path)})
s.outboxAdd({ id: 'e1', to: 'amPeer', envText: '{"x":1}', createdAt: 5 })
s.outboxAdd({ id: 'e2', to: 'amPeer', envText: '{"x":2}', createdAt: 6 })
s.outboxRemove('e1')
// a commit inside a transaction (the e2ee layer does this): a nested transaction is a savepoint
s.transaction(() => { s.recordPut('session', 'amPeer', Buffer.from([1, 2, 3]), 7); s.commit('relay-a', 41, 'amPeer', 'm41') })
try { s.transaction(() => { s.commit('relay-a', 99, 'amPeer', 'm99'); throw new Error('rolled back') }) } catch {}
s.commit('relay-a', 42, 'amPeer', 'm42', 'ops')
const rec = s.recordGet('session', 'amPeer')
const out = {
  outbox: s.outboxList().map(e => e.id),
  cursor: s.cursor('relay-a'),
  room: s.roomCursors('relay-a'),
  seen41: s.seen('amPeer', 'm41'), seen99: s.seen('amPeer', 'm99'),
  recordIsBuffer: Buffer.isBuffer(rec), record: [...rec],
  kinds: s.recordKinds(), count: s.recordCount('session'),
}
s.close()
console.log(JSON.stringify(out))
`

describe('node:sqlite shim', () => {
  it('the client state runs on node:sqlite under Node 24, and better-sqlite3 on Node 20 reads the same file', async (t) => {
    const inst = spawnSync(process.execPath, [join(pluginDir, 'scripts/install-gateway.mjs')], { encoding: 'utf8', timeout: 20 * 60_000 })
    if (inst.status === 3) { t.skip(`no Node 24 here: ${inst.stderr.trim()}`); return }
    assert.equal(inst.status, 0, inst.stderr)
    const { node } = JSON.parse(inst.stdout) as { node: string }
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const db = join(dir.path, 'home', 'state.db')
    const entry = join(dir.path, 'run.ts')
    writeFileSync(entry, script(db))
    await build({
      entryPoints: [entry], outfile: join(dir.path, 'run.mjs'), bundle: true, platform: 'node', format: 'esm', target: 'node22',
      alias: { 'better-sqlite3': join(pluginDir, 'src/node-sqlite-shim.ts') }, logLevel: 'error',
      banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
    })
    const r = spawnSync(node, ['--no-warnings', join(dir.path, 'run.mjs')], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      outbox: ['e2'], cursor: 41, room: { ops: 42 }, seen41: true, seen99: false,
      recordIsBuffer: true, record: [1, 2, 3], kinds: ['session'], count: 1,
    })
    const s = sqliteState(db)
    try {
      assert.deepEqual(s.outboxList().map(e => e.id), ['e2'])
      assert.equal(s.cursor('relay-a'), 41)
      assert.deepEqual(s.roomCursors('relay-a'), { ops: 42 })
      assert.deepEqual([...s.recordGet('session', 'amPeer')!], [1, 2, 3])
    } finally { s.close() }
  })
})
