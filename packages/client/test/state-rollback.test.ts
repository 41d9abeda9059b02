import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sqliteState } from '@agentmesh/client'
import { ErrorCode } from '@agentmesh/protocol'
import { tempDir } from '@agentmesh/testing'
import { GENERATION_EVERY } from '../src/state-generation.ts'

/** An older copy of state.db put in place of the live one is refused at open (docs/security.md). */
describe('state rollback', () => {
  const dir = tempDir()
  after(() => { dir.cleanup() })
  const gen = (file: string): number => Number(readFileSync(file + '.generation', 'utf8'))
  const meta = (file: string): number => {
    const st = sqliteState(file)
    try { return Number(st.metaGet('generation')) } finally { st.close() }
  }

  it('state rollback - an older state.db is AM_ERR_STATE_ROLLBACK; the live one, a new one and a sidecar left behind by a crash open', () => {
    const file = join(dir.path, 'a', 'state.db')
    const st = sqliteState(file)
    st.transaction(() => { st.recordPut('session', 'bob', new Uint8Array([1]), 1) })
    st.close()
    assert.equal(gen(file), 2, 'bumped at open and at close')
    assert.equal(statSync(file + '.generation').mode & 0o777, 0o600)
    const backup = join(dir.path, 'backup.db')
    copyFileSync(file, backup)

    // the agent goes on: the session moves on, the generation with it
    const st2 = sqliteState(file)
    st2.transaction(() => { st2.recordPut('session', 'bob', new Uint8Array([2]), 2) })
    st2.close()
    assert.equal(gen(file), 4)

    // the backup put back in place of the live file
    copyFileSync(file, join(dir.path, 'live.db'))
    copyFileSync(backup, file)
    assert.throws(() => sqliteState(file), (err: Error & { code?: string }) => {
      assert.equal(err.code, ErrorCode.StateRollback)
      assert.match(err.message, /is an older copy of this agent's state \(generation 2; .*state\.db\.generation records 4\).*delete that file to accept it/)
      return true
    })
    assert.equal(gen(file), 4, 'the record is left as it was')
    // the live one back: it opens
    copyFileSync(join(dir.path, 'live.db'), file)
    assert.deepEqual(sqliteState(file).recordGet('session', 'bob'), Buffer.from([2]))

    // the owner accepts a restored copy by deleting the record
    copyFileSync(backup, file)
    rmSync(file + '.generation')
    const restored = sqliteState(file)
    assert.deepEqual(restored.recordGet('session', 'bob'), Buffer.from([1]))
    restored.close()
  })

  it('state rollback - a lost state.db starts over above the record; a record behind the state (a crash before it was written) is brought up to date', () => {
    const file = join(dir.path, 'b', 'state.db')
    sqliteState(file).close()
    sqliteState(file).close()
    assert.equal(gen(file), 4)
    for (const f of ['', '-wal', '-shm']) rmSync(file + f, { force: true })
    const fresh = sqliteState(file)
    assert.equal(Number(fresh.metaGet('generation')), 5, 'a new state continues the count: an older copy of the lost one is still refused')
    fresh.close()
    writeFileSync(file + '.generation', '1\n') // as if the process died between the state's commit and the record
    assert.equal(meta(file), 7)
    assert.equal(gen(file), 8)
  })

  it(`state rollback - the record is written every ${GENERATION_EVERY} steps, not on every one`, () => {
    const file = join(dir.path, 'c', 'state.db')
    const st = sqliteState(file)
    try {
      const at = gen(file)
      for (let i = 0; i < GENERATION_EVERY - 1; i++) st.transaction(() => { st.recordPut('k', String(i), new Uint8Array([i & 0xff]), i) })
      assert.equal(gen(file), at, `${GENERATION_EVERY - 1} steps: not yet`)
      st.transaction(() => { st.recordPut('k', 'last', new Uint8Array([0]), 0) })
      assert.equal(gen(file), at + 1)
      assert.equal(Number(st.metaGet('generation')), at + 1)
    } finally {
      st.close()
    }
  })
})
