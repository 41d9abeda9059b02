/**
 * A relay on the PostgreSQL store (`serve --store postgres://…`): while the database is gone a send
 * is refused with AM_ERR_STORE_UNAVAILABLE and never acknowledged; once it is back the same
 * envelope is stored and delivered once. Runs against the PostgreSQL on this machine, in a schema
 * of its own (dropped after), reached through a TCP relay the test stops (the real server is
 * never touched).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { ErrorCode } from '@agentmesh/protocol'
import { createIdentity } from '@agentmesh/crypto'
import { postgresStore } from '@agentmesh/store-postgres'
import { rawAgent, startRelay, tcpProxy } from '@agentmesh/testing'
import { openRelayDataAsync } from '../src/commands/serve.ts'

const URL = process.env.AGENTMESH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const admin = new pg.Pool({ connectionString: URL, max: 1 })
after(async () => { await admin.end() })
const schemaName = (): string => `am_test_${process.pid}_${randomBytes(4).toString('hex')}`

describe('serve on PostgreSQL', () => {
  it('serve postgres - a send while the database is gone is refused with AM_ERR_STORE_UNAVAILABLE, never acknowledged; sent again once it is back, it is stored and delivered once', async () => {
    const schema = schemaName()
    const proxy = await tcpProxy(5432)
    const store = await postgresStore(`postgres://postgres@127.0.0.1:${proxy.port}/postgres`, { schema, maxConnections: 2, connectTimeoutMs: 1000 })
    const relay = await startRelay({}, { store })
    try {
      const bobId = createIdentity()
      const bob = await rawAgent(relay.wsUrl, bobId)
      await bob.auth()
      const alice = await rawAgent(relay.wsUrl)
      await alice.auth()
      const first = alice.envelope(bobId.amid, 'before')
      alice.send({ op: 'send', env: first })
      await alice.collect(f => f.op === 'ack' && f.id === first.id, 1)

      await proxy.stop()
      const lost = alice.envelope(bobId.amid, 'while the database is gone')
      alice.send({ op: 'send', env: lost })
      const refusal = await alice.next(f => f.op === 'error' && f.id === lost.id)
      assert.equal(refusal.code, ErrorCode.StoreUnavailable)
      assert.equal(String(refusal.message).includes('127.0.0.1'), false, 'the database address is not told to agents')
      await alice.barrier()
      assert.deepEqual(alice.frames.filter(f => f.op === 'ack' && f.id === lost.id), [], 'no ack for what was not stored')

      await proxy.start()
      alice.send({ op: 'send', env: lost })
      await alice.collect(f => f.op === 'ack' && f.id === lost.id, 1)
      const got = await bob.collect(f => f.op === 'deliver', 2)
      assert.deepEqual(got.map(f => f.env.id), [first.id, lost.id])
      await bob.barrier()
      assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 2, 'each delivered once')
      alice.close()
      bob.close()
    } finally {
      await relay.close()
      await proxy.stop()
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('serve postgres - openRelayDataAsync opens the database, keeps the operator key in the data directory, and refuses a down database in one line with nothing made', async () => {
    const { mkdtempSync, existsSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-pg-serve-'))
    const schema = schemaName()
    try {
      const proxy = await tcpProxy(5432)
      const url = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`
      await proxy.stop()
      await assert.rejects(openRelayDataAsync({ storeUrl: url, dataDir: join(dir, 'down') }), (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.StoreUnavailable)
        assert.match(err.message, /^PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres is not reachable/)
        return true
      })
      assert.equal(existsSync(join(dir, 'down')), false, 'nothing made')
      // a schema of its own (?schema=), as an operator may put several relays' data in one database
      const data = await openRelayDataAsync({ storeUrl: `${URL}?schema=${schema}`, dataDir: join(dir, 'up') })
      try {
        assert.equal(data.store.kind, 'postgres')
        assert.ok(data.apiKeyFile?.startsWith(join(dir, 'up')))
        assert.ok(existsSync(join(dir, 'up', 'api-key')))
        const t = await admin.query('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schema, 'agentmesh_migrations'])
        assert.equal(t.rows[0].n, 1, 'the tables are in the schema the URL names')
      } finally {
        await data.store.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })
})
