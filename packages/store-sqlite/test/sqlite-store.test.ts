import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import storeSuite from '@agentmesh/compliance-tests/store'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { AuditVerifier, type Store, type StoreInit } from '@agentmesh/store'
import { DB_FILE, SCHEMA_VERSION, sqliteStore } from '@agentmesh/store-sqlite'

const root = mkdtempSync(join(tmpdir(), 'agentmesh-sqlite-test-'))
after(() => { rmSync(root, { recursive: true, force: true }) })

let dirs = 0
const newDir = (): string => mkdtempSync(join(root, `d${dirs++}-`))

/** Where each open file-backed store lives, and the init it was created with (reopen reuses it). */
const opened = new Map<Store, { dir: string, init: StoreInit | undefined }>()

storeSuite({
  name: 'sqlite (file)',
  setup: async (init) => {
    const dir = newDir()
    const store = sqliteStore(join(dir, DB_FILE), init)
    opened.set(store, { dir, init })
    return store
  },
  teardown: async (store) => {
    await store.close()
    const o = opened.get(store)
    opened.delete(store)
    if (o !== undefined) rmSync(o.dir, { recursive: true, force: true })
  },
  reopen: async (store) => {
    const o = opened.get(store)
    if (o === undefined) throw new Error('reopen of a store this test did not open')
    await store.close()
    opened.delete(store)
    const again = sqliteStore(join(o.dir, DB_FILE), o.init)
    opened.set(again, o)
    return again
  },
})

storeSuite({
  name: 'sqlite (:memory:)',
  setup: async (init) => sqliteStore(':memory:', init),
  teardown: async (store) => { await store.close() },
})

/** Runs `fn` and answers the error it threw; fails when it does not throw. */
function thrown (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  assert.fail('expected an error')
}

describe('sqlite store', () => {
  it('sqlite store - kind is "sqlite" and path is the absolute file path', async () => {
    const dir = newDir()
    const store = sqliteStore(join(dir, 'sub', '..', DB_FILE))
    try {
      assert.equal(store.kind, 'sqlite')
      assert.equal(store.path, join(dir, DB_FILE))
    } finally {
      await store.close()
    }
  })

  it('sqlite store - creates missing parent directories', async () => {
    const dir = newDir()
    const store = sqliteStore(join(dir, 'a', 'b', DB_FILE))
    try {
      assert.deepEqual(await store.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], []),
        [{ status: 'stored', seq: 1 }])
      assert.ok(readdirSync(join(dir, 'a', 'b')).includes(DB_FILE))
    } finally {
      await store.close()
    }
  })

  it('sqlite store - a file that is not SQLite is refused with AM_ERR_DATA_CORRUPT and left unchanged', () => {
    const dir = newDir()
    const path = join(dir, DB_FILE)
    const garbage = Buffer.from('this is not a database, only some text that happens to be here\n'.repeat(100))
    writeFileSync(path, garbage)
    const err = thrown(() => sqliteStore(path))
    assert.ok(err instanceof AgentMeshError)
    assert.ok(AgentMeshError.is(err, ErrorCode.DataCorrupt))
    assert.equal(err.code, 'AM_ERR_DATA_CORRUPT')
    assert.equal(err.message,
      `${path} is not a usable AgentMesh database (file is not a database); move it aside or point --data at another directory`)
    assert.ok(readFileSync(path).equals(garbage), 'the file was modified')
    assert.deepEqual(readdirSync(dir), [DB_FILE])
  })

  it('sqlite store - a second store on a file in use is refused with AM_ERR_DATA_DIR', async () => {
    const path = join(newDir(), DB_FILE)
    const first = sqliteStore(path)
    try {
      await first.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{"n":1}', receivedAt: 1 }], [])
      const err = thrown(() => sqliteStore(path))
      assert.ok(err instanceof AgentMeshError)
      assert.equal(err.code, ErrorCode.DataDir)
      assert.match(err.message, /in use/)
      assert.equal(err.message, `${path} is in use by another relay; stop it or point --data at another directory`)
      // the first store is unharmed
      assert.deepEqual(await first.commit([{ sender: 'am-alice', id: 'id-000002', recipient: 'am-bob', envelope: '{"n":2}', receivedAt: 2 }], []),
        [{ status: 'stored', seq: 2 }])
      assert.deepEqual((await first.read('am-bob', 0, 10)).map(m => m.envelope), ['{"n":1}', '{"n":2}'])
    } finally {
      await first.close()
    }
    // closing releases the lock
    const again = sqliteStore(path)
    try {
      assert.deepEqual(await again.inbox('am-bob'), { cursor: 0, lastSeq: 2, pending: 2 })
    } finally {
      await again.close()
    }
  })

  it('sqlite store - a path below a regular file is refused with AM_ERR_DATA_DIR', () => {
    const dir = newDir()
    writeFileSync(join(dir, 'plain-file'), 'x')
    for (const path of [join(dir, 'plain-file', DB_FILE), join(dir, 'plain-file', 'sub', DB_FILE)]) {
      const err = thrown(() => sqliteStore(path))
      assert.ok(err instanceof AgentMeshError)
      assert.equal(err.code, ErrorCode.DataDir)
      assert.ok(err.message.startsWith(`cannot open the database ${path}: `), err.message)
    }
    assert.equal(readFileSync(join(dir, 'plain-file'), 'utf8'), 'x')
  })

  it('sqlite store - a database from a newer schema is refused with AM_ERR_DATA_CORRUPT', () => {
    const path = join(newDir(), DB_FILE)
    const db = new Database(path)
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    db.close()
    const err = thrown(() => sqliteStore(path))
    assert.ok(err instanceof AgentMeshError)
    assert.equal(err.code, ErrorCode.DataCorrupt)
    assert.equal(err.message,
      `${path} was written by a newer AgentMesh (schema ${SCHEMA_VERSION + 1}, this one knows ${SCHEMA_VERSION}); upgrade AgentMesh`)
  })

  it('sqlite store - a schema 2 database (before certificates) upgrades in place to the current schema and keeps its data', async () => {
    const path = join(newDir(), DB_FILE)
    const v3 = sqliteStore(path)
    await v3.putProfile({ amid: 'am-alice', capabilities: [], tier: 'anonymous', updatedAt: 1 })
    await v3.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], [])
    await v3.close()
    // turn it into the file schema 2 wrote: no certificate tables, user_version 2
    const db = new Database(path)
    db.exec('DROP TABLE certificates; DROP TABLE ca_certificates; DROP TABLE crls')
    db.exec('DROP TABLE feedback; DROP TABLE score_points; DROP TABLE reputation_flags')
    db.pragma('user_version = 2')
    db.close()

    const store = sqliteStore(path)
    try {
      assert.equal((await store.getProfile('am-alice'))?.updatedAt, 1)
      assert.deepEqual(await store.inbox('am-bob'), { cursor: 0, lastSeq: 1, pending: 1 })
      assert.deepEqual(await store.listCrls(), [])
      assert.equal(await store.getCertificate('am-alice'), undefined)
      assert.deepEqual(await store.putCrl({ issuerKey: 'k', issuer: 'CN=Root', thisUpdate: 1, revokedCount: 0, pem: 'p', storedAt: 1 }), { status: 'stored' })
    } finally {
      await store.close()
    }
    const check = new Database(path, { readonly: true })
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
      assert.equal(SCHEMA_VERSION, 11)
    } finally {
      check.close()
    }
  })

  it('sqlite store - a schema 6 database (no one-time PQ prekeys) upgrades in place and keeps its prekeys', async () => {
    const path = join(newDir(), DB_FILE)
    const v6 = sqliteStore(path)
    await v6.putPrekeys('am-bob', { base: { b: 1 }, oneTime: [{ id: 1, key: 'k1' }] })
    await v6.close()
    const db = new Database(path)
    db.exec('DROP TABLE pq_one_time_prekeys')
    db.pragma('user_version = 6')
    db.close()

    const store = sqliteStore(path)
    try {
      assert.equal(await store.countPqOneTimePrekeys('am-bob'), 0)
      assert.deepEqual(await store.putPrekeys('am-bob', { oneTime: [], pqOneTime: [{ id: 1, key: 'p1', sig: 's1' }] }), { oneTime: 1, pqOneTime: 1 })
      assert.deepEqual(await store.takePrekeyBundle('am-bob'), { base: { b: 1 }, oneTime: { id: 1, key: 'k1' }, pqOneTime: { id: 1, key: 'p1', sig: 's1' } })
    } finally {
      await store.close()
    }
    const check = new Database(path, { readonly: true })
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
    } finally {
      check.close()
    }
  })

  it('sqlite store - a schema 5 database (handles without their skeleton) upgrades in place: look-alikes of its handles are taken', async () => {
    const path = join(newDir(), DB_FILE)
    const v5 = sqliteStore(path)
    await v5.setHandle('am-alice', 'bill')
    await v5.close()
    const db = new Database(path)
    db.exec('DROP INDEX handles_skel; ALTER TABLE handles DROP COLUMN handle_skel')
    db.pragma('user_version = 5')
    db.close()

    const store = sqliteStore(path)
    try {
      assert.equal(await store.resolveHandle('BILL'), 'am-alice')
      assert.deepEqual(await store.setHandle('am-bob', 'bi1l'), { status: 'taken', by: 'am-alice' })
      assert.deepEqual(await store.setHandle('am-bob', 'bob'), { status: 'set' })
    } finally {
      await store.close()
    }
  })

  it('sqlite store - a schema 7 database (before room cursors) upgrades in place: its members keep inbox copies and read by cursor from the room\'s last seq once they switch', async () => {
    const path = join(newDir(), DB_FILE)
    const v6 = sqliteStore(path)
    await v6.upsertAgent({ amid: 'am-bob', seenAt: 1 })
    await v6.createRoom({ id: 'ops', kind: 'public', owner: 'am-alice', createdAt: 1 })
    await v6.addMember({ room: 'ops', amid: 'am-bob', role: 'member', joinedAt: 1 })
    await v6.commit([{ sender: 'am-alice', id: 'id-000001', recipient: '#ops', room: 'ops', envelope: '{"n":1}', receivedAt: 2 }], [])
    await v6.close()
    // the file schema 7 wrote: members and agents without the cursor columns
    const db = new Database(path)
    db.exec(`DROP INDEX members_inbox; DROP INDEX members_cursor;
      ALTER TABLE members DROP COLUMN cursor; ALTER TABLE members DROP COLUMN by_cursor; DROP TABLE room_cursor_agents`)
    db.pragma('user_version = 7')
    db.close()

    const store = sqliteStore(path)
    try {
      assert.deepEqual((await store.read('am-bob', 0, 10)).map(m => m.envelope), ['{"n":1}'])
      // still an inbox member: a new message is copied
      const r = await store.commit([{ sender: 'am-alice', id: 'id-000002', recipient: '#ops', room: 'ops', envelope: '{"n":2}', receivedAt: 3 }], [])
      assert.deepEqual(r, [{ status: 'stored', seq: 2, deliveries: [{ recipient: 'am-bob', seq: 2 }] }])
      assert.deepEqual(await store.roomFeeds('am-bob'), [])
      assert.deepEqual(await store.setRoomDelivery('am-bob', 'cursor'), [{ room: 'ops', cursor: 2, lastSeq: 2 }])
      assert.deepEqual(await store.commit([{ sender: 'am-alice', id: 'id-000003', recipient: '#ops', room: 'ops', envelope: '{"n":3}', receivedAt: 4 }], []),
        [{ status: 'stored', seq: 3, deliveries: [] }])
      assert.deepEqual(await store.roomFeed('ops', 'am-bob'), { room: 'ops', cursor: 2, lastSeq: 3 })
    } finally {
      await store.close()
    }
  })

  it('sqlite store - a schema 3 database (before reputation) upgrades in place to the current schema and keeps its data', async () => {
    const path = join(newDir(), DB_FILE)
    const v4 = sqliteStore(path)
    await v4.upsertAgent({ amid: 'am-alice', seenAt: 1 })
    await v4.putProfile({ amid: 'am-alice', capabilities: [], tier: 'anonymous', updatedAt: 1 })
    await v4.putCrl({ issuerKey: 'k', issuer: 'CN=Root', thisUpdate: 1, revokedCount: 0, pem: 'p', storedAt: 1 })
    await v4.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], [])
    await v4.close()
    // turn it into the file schema 3 wrote: no reputation tables, user_version 3
    const db = new Database(path)
    db.exec('DROP TABLE feedback; DROP TABLE score_points; DROP TABLE reputation_flags')
    db.pragma('user_version = 3')
    const tables = (): string[] => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[])
    assert.equal(tables().includes('feedback'), false)
    db.close()

    const store = sqliteStore(path)
    try {
      assert.equal((await store.getAgent('am-alice'))?.registeredAt, 1)
      assert.equal((await store.getProfile('am-alice'))?.updatedAt, 1)
      assert.equal((await store.listCrls()).length, 1)
      assert.deepEqual(await store.inbox('am-bob'), { cursor: 0, lastSeq: 1, pending: 1 })
      assert.deepEqual(await store.listFeedbackFor('am-alice'), [])
      assert.deepEqual(await store.listScorePoints('am-alice', 0), [])
      assert.deepEqual(await store.listReputationFlags('am-alice'), [])
      assert.deepEqual(await store.putFeedback({ rater: 'am-bob', subject: 'am-alice', score: 0.5, at: 2 }), {})
      await store.addScorePoint('am-alice', { at: 2, score: 0.5 }, { since: 0, max: 10 })
      assert.deepEqual(await store.listScorePoints('am-alice', 0), [{ at: 2, score: 0.5 }])
    } finally {
      await store.close()
    }
    const check = new Database(path, { readonly: true })
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
      const names = check.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").pluck().all() as string[]
      for (const n of ['feedback', 'feedback_subject', 'score_points', 'score_points_subject', 'reputation_flags', 'reputation_flags_subject']) assert.ok(names.includes(n), n)
    } finally {
      check.close()
    }
    // and it opens again as it is
    const again = sqliteStore(path)
    try {
      assert.equal((await again.getFeedback('am-bob', 'am-alice'))?.score, 0.5)
    } finally {
      await again.close()
    }
  })

  it('sqlite store - a schema 4 database (before chat) upgrades in place to the current schema, keeps its data and gets a relay secret', async () => {
    const path = join(newDir(), DB_FILE)
    const v5 = sqliteStore(path)
    const relayId = await v5.relayId()
    await v5.upsertAgent({ amid: 'am-alice', seenAt: 1 })
    await v5.putFeedback({ rater: 'am-bob', subject: 'am-alice', score: 0.5, at: 2 })
    await v5.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], [])
    await v5.close()
    // turn it into the file schema 4 wrote: no chat tables, no relay secret, user_version 4
    const chatTables = ['handles', 'roles', 'rooms', 'members', 'invites', 'room_seqs', 'history', 'read_markers', 'tasks', 'audit', 'settings']
    const db = new Database(path)
    for (const t of chatTables) db.exec(`DROP TABLE ${t}`)
    db.exec("DELETE FROM meta WHERE key = 'relay_secret'")
    db.pragma('user_version = 4')
    db.close()

    const store = sqliteStore(path)
    let secret: string
    try {
      assert.equal(await store.relayId(), relayId)
      assert.equal((await store.getAgent('am-alice'))?.registeredAt, 1)
      assert.equal((await store.getFeedback('am-bob', 'am-alice'))?.score, 0.5)
      assert.deepEqual(await store.inbox('am-bob'), { cursor: 0, lastSeq: 1, pending: 1 })
      secret = await store.relaySecret()
      assert.equal(Buffer.from(secret, 'base64url').length, 32)
      assert.deepEqual(await store.listAgents({ limit: 10 }), ['am-alice'])
      assert.equal(await store.createRoom({ id: 'ops', kind: 'public', owner: 'am-alice', createdAt: 3 }), true)
      assert.deepEqual(await store.commit([{ sender: 'am-alice', id: 'id-000002', recipient: '#ops', room: 'ops', fanout: ['am-bob'], envelope: '{}', receivedAt: 4 }], [],
        [{ at: 4, actor: 'am-alice', action: 'message.send', target: '#ops', detail: {} }]),
      [{ status: 'stored', seq: 1, deliveries: [{ recipient: 'am-bob', seq: 2 }] }])
      assert.equal((await store.lastAudit())?.seq, 1)
    } finally {
      await store.close()
    }
    const check = new Database(path, { readonly: true })
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
      const names = check.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").pluck().all() as string[]
      for (const n of [...chatTables, 'handles_key', 'rooms_kind', 'members_joined', 'members_amid', 'history_room', 'history_received',
        'tasks_created', 'tasks_room', 'tasks_requester', 'tasks_assignee', 'tasks_open', 'audit_actor', 'audit_action']) assert.ok(names.includes(n), n)
    } finally {
      check.close()
    }
    const again = sqliteStore(path)
    try {
      assert.equal(await again.relaySecret(), secret, 'the secret is kept')
    } finally {
      await again.close()
    }
  })

  it('sqlite store - an audit row edited in the file (detail, action, a removed row) fails verification from that row on', async () => {
    const path = join(newDir(), DB_FILE)
    const row = (i: number) => ({ at: 1000 + i, actor: 'am-alice', action: 'message.send', target: '#ops', detail: { id: `id-${i}`, bytes: i } })
    const store = sqliteStore(path)
    await store.appendAudit([row(1), row(2)])
    await store.commit([], [], [row(3), row(4)])
    await store.close()
    const verify = async (): Promise<ReturnType<AuditVerifier['result']>> => {
      const s = sqliteStore(path)
      try {
        const v = new AuditVerifier()
        v.add(await s.readAudit({ limit: 100 }))
        return v.result()
      } finally {
        await s.close()
      }
    }
    assert.equal((await verify()).ok, true)
    const edit = (sql: string): void => { const db = new Database(path); try { db.exec(sql) } finally { db.close() } }

    edit(`UPDATE audit SET detail = '{"bytes":2,"id":"id-other"}' WHERE seq = 2`)
    assert.deepEqual(await verify(), { ok: false, rows: 2, seq: 2, reason: 'row 2 was changed after it was written (its hash does not match its fields)', problem: 'changed' })
    edit(`UPDATE audit SET detail = '{"bytes":2,"id":"id-2"}' WHERE seq = 2`)
    assert.equal((await verify()).ok, true, 'the same JSON again verifies')

    edit(`UPDATE audit SET action = 'message.delete' WHERE seq = 3`)
    assert.deepEqual(await verify(), { ok: false, rows: 3, seq: 3, reason: 'row 3 was changed after it was written (its hash does not match its fields)', problem: 'changed' })
    edit(`UPDATE audit SET action = 'message.send' WHERE seq = 3`)

    edit(`UPDATE audit SET detail = 'not json' WHERE seq = 4`)
    assert.equal((await verify()).ok, false)
    edit(`UPDATE audit SET detail = '{"id":"id-4","bytes":4}' WHERE seq = 4`)
    assert.equal((await verify()).ok, true, 'key order in the stored text does not matter')

    edit('DELETE FROM audit WHERE seq = 2')
    assert.deepEqual(await verify(), { ok: false, rows: 2, seq: 2, reason: 'row 2 is missing (the next row is 3)', problem: 'missing' })
  })

  it('sqlite store - the chain tail is read from the file at open, and a failed commit does not advance it', async () => {
    const path = join(newDir(), DB_FILE)
    const row = { at: 1, actor: 'am-alice', action: 'x', detail: {} }
    const first = sqliteStore(path)
    await first.appendAudit([row, row])
    await first.close()
    // rows another process appended: a reopened store chains after them
    const db = new Database(path)
    db.prepare('INSERT INTO audit (seq, at, actor, action, target, detail, prev, hash) VALUES (3, 1, ?, ?, NULL, ?, ?, ?)').run('am-bob', 'y', '{}', 'prev', 'h3')
    db.close()
    const store = sqliteStore(path)
    try {
      const [r] = await store.appendAudit([row])
      assert.deepEqual([r?.seq, r?.prev], [4, 'h3'])
      // a commit that fails (a circular detail cannot be stored) rolls back whole and leaves the tail alone
      const circular: Record<string, unknown> = {}
      circular.self = circular
      await assert.rejects(store.commit([{ sender: 'am-alice', id: 'id-1', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], [], [row, { ...row, detail: circular }]))
      assert.deepEqual(await store.inbox('am-bob'), { cursor: 0, lastSeq: 0, pending: 0 })
      const [n] = await store.appendAudit([row])
      assert.deepEqual([n?.seq, n?.prev], [5, r?.hash])
    } finally {
      await store.close()
    }
  })

  it('sqlite store - history entries are kept up to 1,000,000 per room by default', async () => {
    const store = sqliteStore(':memory:')
    try {
      const items = Array.from({ length: 1005 }, (_, i) => ({ sender: 'am-alice', id: `id-${i}`, recipient: '#ops', room: 'ops', fanout: [], envelope: '{}', receivedAt: 1 }))
      await store.commit(items, [])
      assert.equal((await store.readHistory('ops', { after: 0, limit: 2000 })).length, 1005)
    } finally {
      await store.close()
    }
  })

  it('sqlite store - operations after close are refused with AM_ERR_INTERNAL', async () => {
    const store = sqliteStore(':memory:')
    await store.close()
    await store.close() // a second close is harmless
    await assert.rejects(store.commit([], []), { code: ErrorCode.Internal, message: 'the store is closed' })
    await assert.rejects(store.read('am-bob', 0, 1), { code: ErrorCode.Internal, message: 'the store is closed' })
  })

  it('sqlite store - synchronous "full" stores and reads back like the default', async () => {
    const path = join(newDir(), DB_FILE)
    const store = sqliteStore(path, { synchronous: 'full' })
    try {
      assert.deepEqual(await store.commit([{ sender: 'am-alice', id: 'id-000001', recipient: 'am-bob', envelope: '{}', receivedAt: 1 }], []),
        [{ status: 'stored', seq: 1 }])
    } finally {
      await store.close()
    }
    const again = sqliteStore(path)
    try {
      assert.deepEqual((await again.read('am-bob', 0, 10)).map(m => m.id), ['id-000001'])
    } finally {
      await again.close()
    }
  })
})
