/**
 * TLS settings of the PostgreSQL store (`--store-tls-ca`, `--store-tls-cert`, `--store-tls-key`):
 * given, the connection must be TLS and verified, so a server that does not offer TLS (the test
 * PostgreSQL on this machine runs without it) is refused with AM_ERR_STORE_UNAVAILABLE rather than
 * used in plain text; nothing is created there.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import pg from 'pg'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { postgresStore } from '@agentmesh/store-postgres'
import { makeTestCa } from '@agentmesh/testing'

const URL = process.env.AGENTMESH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'

describe('pg store - TLS', () => {
  it('pg store - with a CA given, a server without TLS is refused (AM_ERR_STORE_UNAVAILABLE, one line), not used in plain text', async (t) => {
    const admin = new pg.Pool({ connectionString: URL, max: 1 })
    t.after(async () => { await admin.end() })
    const ssl = (await admin.query('SHOW ssl')).rows[0] as { ssl: string }
    if (ssl.ssl === 'on') { t.skip('this PostgreSQL offers TLS: the refusal of a plain server cannot be shown here'); return }
    const ca = makeTestCa('AgentMesh Test DB CA')
    const schema = `am_tls_${process.pid}`
    await assert.rejects(postgresStore(URL, { schema, tls: { ca: readFileSync(ca.caFile, 'utf8') } }), (err: unknown) => {
      assert.ok(AgentMeshError.is(err, ErrorCode.StoreUnavailable), String(err))
      assert.match((err as Error).message, /SSL|TLS/i)
      assert.doesNotMatch((err as Error).message, /\n/)
      return true
    })
    const made = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    assert.equal(made.rowCount, 0, 'no schema created')
  })
})
