import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import storeSuite from '@agentmesh/compliance-tests/store'
import { ErrorCode } from '@agentmesh/protocol'
import type { Store, StoreInit } from '@agentmesh/store'
import { LATEST_VERSION, postgresStore } from '@agentmesh/store-postgres'
import { tcpProxy } from '@agentmesh/testing'

/** The PostgreSQL on this machine (CI starts it: .ci/run); each test gets a schema of its own, dropped after it. */
const URL = process.env.AGENTMESH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
/** The test database's port, and its URL through a TCP relay on `port` (a test stops that relay, never the database). */
const PG_PORT = Number(new globalThis.URL(URL).port || 5432)
const via = (port: number): string => { const u = new globalThis.URL(URL); u.hostname = '127.0.0.1'; u.port = String(port); return u.toString() }
const admin = new pg.Pool({ connectionString: URL, max: 2 })
after(async () => {
  // a schema a failed run left behind (this file's prefix only)
  const left = await admin.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'am_test_%'")
  for (const r of left.rows as Array<{ nspname: string }>) if (made.has(r.nspname)) await admin.query(`DROP SCHEMA IF EXISTS ${r.nspname} CASCADE`)
  await admin.end()
})

const made = new Set<string>()
const newSchema = (): string => {
  const s = `am_test_${process.pid}_${randomBytes(4).toString('hex')}`
  made.add(s)
  return s
}
const drop = async (schema: string): Promise<void> => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  made.delete(schema)
}

const opened = new Map<Store, { schema: string, init: StoreInit | undefined }>()

storeSuite({
  name: 'postgres',
  setup: async (init) => {
    const schema = newSchema()
    const store = await postgresStore(URL, { ...init, schema, maxConnections: 4 })
    opened.set(store, { schema, init })
    return store
  },
  teardown: async (store) => {
    await store.close()
    const o = opened.get(store)
    opened.delete(store)
    if (o !== undefined) await drop(o.schema)
  },
  reopen: async (store) => {
    const o = opened.get(store)
    if (o === undefined) throw new Error('reopen of a store this test did not open')
    await store.close()
    opened.delete(store)
    const again = await postgresStore(URL, { ...o.init, schema: o.schema, maxConnections: 4 })
    opened.set(again, o)
    return again
  },
})

describe('postgres store: start, migrations and faults', () => {
  it('postgres store - migrations are recorded once; a second open applies none and keeps the relay id', async () => {
    const schema = newSchema()
    try {
      const a = await postgresStore(URL, { schema })
      const id = await a.relayId()
      await a.close()
      const b = await postgresStore(URL, { schema })
      assert.equal(await b.relayId(), id)
      await b.close()
      const r = await admin.query(`SELECT version, name FROM ${schema}.agentmesh_migrations ORDER BY version`)
      assert.deepEqual(r.rows.map((x: { version: number }) => x.version), Array.from({ length: LATEST_VERSION }, (_, i) => i + 1))
    } finally {
      await drop(schema)
    }
  })

  it('postgres store - relays starting together over one empty schema apply the migrations once and share one relay id', async () => {
    const schema = newSchema()
    try {
      const stores = await Promise.all([1, 2, 3].map(async () => await postgresStore(URL, { schema, maxConnections: 2 })))
      const ids = new Set(await Promise.all(stores.map(async s => await s.relayId())))
      assert.equal(ids.size, 1)
      // two stores over one schema write one audit chain and one inbox, without forks
      const [s1, s2] = [stores[0]!, stores[1]!]
      await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? s1 : s2).commit(
        [{ sender: 'am-alice', id: `id-${i}`, recipient: 'am-bob', envelope: '{}', receivedAt: 1, batchAudit: { actor: 'relay', type: 'x', bytes: 2, at: 1 } }], [])))
      assert.deepEqual((await s1.read('am-bob', 0, 100)).map(m => m.seq), Array.from({ length: 20 }, (_, i) => i + 1))
      const rows = await s2.readAudit({ limit: 100 })
      assert.deepEqual(rows.map(r => r.seq), Array.from({ length: 20 }, (_, i) => i + 1))
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.prev, rows[i - 1]!.hash)
      for (const s of stores) await s.close()
    } finally {
      await drop(schema)
    }
  })

  it('postgres store - two stores over one schema posting to one room: room seqs and each inbox copy stay contiguous, each message once', async () => {
    const schema = newSchema()
    try {
      const [s1, s2] = await Promise.all([1, 2].map(async () => await postgresStore(URL, { schema, maxConnections: 2 })))
      await s1!.createRoom({ id: 'ops', kind: 'public', owner: 'am-alice', createdAt: 1 })
      await s1!.addMember({ room: 'ops', amid: 'am-bob', role: 'member', joinedAt: 1 })
      const item = (n: number) => ({ sender: 'am-alice', id: `id-${n}`, recipient: '#ops', room: 'ops', envelope: `{"n":${n}}`, receivedAt: n })
      // 10 commits of 3, alternating stores, all at once; each id sent twice (a retry on the other store)
      const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const k = i % 10
        return await (i % 2 === 0 ? s1! : s2!).commit([item(3 * k), item(3 * k + 1), item(3 * k + 2)], [])
      }))
      const stored = results.flat().filter(r => r.status === 'stored')
      assert.equal(stored.length, 30)
      assert.deepEqual(stored.map(r => r.seq).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1))
      assert.deepEqual((await s2!.readHistory('ops', { limit: 100 })).map(e => e.seq), Array.from({ length: 30 }, (_, i) => i + 1))
      const inbox = await s1!.read('am-bob', 0, 100)
      assert.deepEqual(inbox.map(m => m.seq), Array.from({ length: 30 }, (_, i) => i + 1))
      assert.equal(new Set(inbox.map(m => m.id)).size, 30)
      await s1!.close()
      await s2!.close()
    } finally {
      await drop(schema)
    }
  })

  it('postgres store - a schema written by a newer AgentMesh is refused in one line, and left as it was', async () => {
    const schema = newSchema()
    try {
      await (await postgresStore(URL, { schema })).close()
      await admin.query(`INSERT INTO ${schema}.agentmesh_migrations (version, name, applied_at) VALUES ($1, 'from the future', 1)`, [LATEST_VERSION + 1])
      await assert.rejects(postgresStore(URL, { schema }), (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.DataCorrupt)
        assert.match(err.message, new RegExp(`^PostgreSQL at postgres://postgres@127\\.0\\.0\\.1:5432/postgres was written by a newer AgentMesh \\(schema ${LATEST_VERSION + 1}, this one knows ${LATEST_VERSION}\\); upgrade AgentMesh$`))
        return true
      })
      const r = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.agentmesh_migrations`)
      assert.equal(r.rows[0].n, LATEST_VERSION + 1)
    } finally {
      await drop(schema)
    }
  })

  it('postgres store - wrong credentials, an unknown database and an unreachable host are one line each naming the database, never the password', async () => {
    const cases: Array<[string, RegExp]> = [
      ['postgres://nobody:s3cret@127.0.0.1:5432/postgres', /^PostgreSQL at postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:5432\/postgres (refused the credentials|is not reachable)/],
      ['postgres://postgres@127.0.0.1:5432/am_no_such_db', /^PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:5432\/am_no_such_db: database "am_no_such_db" does not exist; create it/],
      // a port nothing listens on
      ['postgres://postgres:s3cret@127.0.0.1:1/postgres', /^PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres is not reachable \((connect )?ECONNREFUSED/],
    ]
    for (const [url, re] of cases) {
      await assert.rejects(postgresStore(url, { connectTimeoutMs: 2000 }), (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.StoreUnavailable, err.message)
        assert.match(err.message, re)
        assert.equal(err.message.includes('\n'), false)
        assert.equal(err.message.includes('s3cret'), false)
        return true
      })
    }
  })

  it('postgres store - while the database is gone a commit is refused with AM_ERR_STORE_UNAVAILABLE and stores nothing; once it is back the store recovers by itself', async () => {
    const schema = newSchema()
    const proxy = await tcpProxy(PG_PORT)
    const store = await postgresStore(via(proxy.port), { schema, maxConnections: 2, connectTimeoutMs: 1000 })
    const dm = (n: number) => ({ sender: 'am-alice', id: `id-${n}`, recipient: 'am-bob', envelope: '{}', receivedAt: n })
    try {
      assert.deepEqual(await store.commit([dm(1)], []), [{ status: 'stored', seq: 1 }])
      await proxy.stop() // the database goes away: its connections end, new ones are refused
      await assert.rejects(store.commit([dm(2)], []), (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.StoreUnavailable)
        assert.match(err.message, /^PostgreSQL at postgres:\/\/[^ ]*@?127\.0\.0\.1:\d+\/[^ ]* is not reachable/)
        return true
      })
      await assert.rejects(store.read('am-bob', 0, 10), { code: ErrorCode.StoreUnavailable })
      await proxy.start()
      assert.deepEqual((await store.read('am-bob', 0, 10)).map(m => m.id), ['id-1'], 'the refused commit stored nothing')
      assert.deepEqual(await store.commit([dm(2)], []), [{ status: 'stored', seq: 2 }])
      assert.deepEqual(await store.inbox('am-bob'), { cursor: 0, lastSeq: 2, pending: 2 })
    } finally {
      await store.close()
      await proxy.stop()
      await drop(schema)
    }
  })
})
