/**
 * A relay on the PostgreSQL store (`serve --store postgres://…`; the last case also uses the NATS on
 * 127.0.0.1:4222, which .ci/run starts): while the database is gone a send
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
import { relayOptions } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { assertCliError, cliInProcess, rawAgent, startRelay, tcpProxy } from '@agentmesh/testing'
import { sqliteStore } from '@agentmesh/store-sqlite'
import { verifyAudit } from '@agentmesh/store'
import { natsBackplane } from '@agentmesh/backplane-nats'
import { openRelayDataAsync, postgresInitOf } from '../src/commands/serve.ts'

const URL = process.env.AGENTMESH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
/** The test database's port, and its URL through a TCP relay on `port` (a test stops that relay, never the database). */
const PG_PORT = Number(new globalThis.URL(URL).port || 5432)
const via = (port: number): string => { const u = new globalThis.URL(URL); u.hostname = '127.0.0.1'; u.port = String(port); return u.toString() }
const admin = new pg.Pool({ connectionString: URL, max: 1 })
after(async () => { await admin.end() })
const schemaName = (): string => `am_test_${process.pid}_${randomBytes(4).toString('hex')}`

describe('serve on PostgreSQL', () => {
  it('serve postgres - a send while the database is gone is refused with AM_ERR_STORE_UNAVAILABLE, never acknowledged, and /healthz answers 503; sent again once it is back, it is stored and delivered once and /healthz is ok', async () => {
    const schema = schemaName()
    const proxy = await tcpProxy(PG_PORT)
    const store = await postgresStore(via(proxy.port), { schema, maxConnections: 2, connectTimeoutMs: 1000 })
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
      const down = await fetch(`${relay.url}/healthz`)
      assert.equal(down.status, 503)
      assert.deepEqual(((await down.json()) as { error: { code: string } }).error.code, ErrorCode.StoreUnavailable)

      await proxy.start()
      alice.send({ op: 'send', env: lost })
      await alice.collect(f => f.op === 'ack' && f.id === lost.id, 1)
      const back = await fetch(`${relay.url}/healthz`)
      assert.equal(back.status, 200)
      assert.deepEqual(await back.json(), { status: 'ok' })
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
      const proxy = await tcpProxy(PG_PORT)
      const url = via(proxy.port)
      await proxy.stop()
      await assert.rejects(openRelayDataAsync({ storeUrl: url, dataDir: join(dir, 'down') }), (err: Error & { code?: string }) => {
        assert.equal(err.code, ErrorCode.StoreUnavailable)
        assert.match(err.message, /^PostgreSQL at postgres:\/\/[^ ]*@?127\.0\.0\.1:\d+\/[^ ]* is not reachable/)
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

  it('serve postgres - storePoolSize and storeStatementTimeoutMs reach the store: 20 reads at once open no more connections than the pool size', async () => {
    const o = relayOptions({ storeUrl: URL, storePoolSize: 3, storeStatementTimeoutMs: 5000 })
    assert.deepEqual(postgresInitOf(o), { ...storeInitOf(o), maxConnections: 3, statementTimeoutMs: 5000 })
    assert.deepEqual([postgresInitOf(relayOptions({ storeUrl: URL })).maxConnections, postgresInitOf(relayOptions({ storeUrl: URL })).statementTimeoutMs], [10, 30_000], 'the defaults')
    const { mkdtempSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-pg-pool-'))
    const schema = schemaName()
    const proxy = await tcpProxy(PG_PORT)
    try {
      const data = await openRelayDataAsync({ storeUrl: `${via(proxy.port)}?schema=${schema}`, dataDir: dir, storePoolSize: 2 })
      try {
        const rooms = await Promise.all(Array.from({ length: 20 }, async () => await data.store.getRoom('no-such-room')))
        assert.deepEqual(rooms, Array.from({ length: 20 }, () => undefined))
        assert.equal(proxy.peak, 2, 'two connections at most, both used')
      } finally {
        await data.store.close()
      }
    } finally {
      await proxy.stop()
      rmSync(dir, { recursive: true, force: true })
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('serve postgres - migrate --from a SQLite relay copies its data into an empty schema (identity, inboxes, rooms, audit chain, files) and verifies it; a second copy into it is refused', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-pg-migrate-'))
    const schema = schemaName()
    try {
      const file = join(dir, 'agentmesh.db')
      const src = sqliteStore(file)
      const relayId = await src.relayId()
      const secret = await src.relaySecret()
      await src.upsertAgent({ amid: 'am-alice', seenAt: 1 })
      await src.upsertAgent({ amid: 'am-bob', seenAt: 1 })
      await src.createRoom({ id: 'ops', kind: 'public', owner: 'am-alice', createdAt: 1 })
      await src.addMember({ room: 'ops', amid: 'am-bob', role: 'member', joinedAt: 2 })
      const batch = { actor: 'relay', type: 'chat', bytes: 2, at: 3 }
      await src.commit([
        { sender: 'am-alice', id: 'id-1', recipient: 'am-bob', envelope: '{"n":1}', receivedAt: 3, batchAudit: batch },
        { sender: 'am-alice', id: 'id-2', recipient: '#ops', room: 'ops', envelope: '{"n":2}', receivedAt: 3, batchAudit: batch },
      ], [], [{ at: 3, actor: 'operator', action: 'room.create', target: '#ops', detail: {} }])
      await src.addScorePoint('am-bob', { at: 1, score: 0.5 }, { since: 0, max: 10 })
      await src.beginFileUpload('f-1', 'am-alice', 4)
      await src.putFileChunk('f-1', 0, new Uint8Array([1, 2, 3]))
      await src.completeFile({ id: 'f-1', owner: 'am-alice', filename: 'a.bin', type: 'application/octet-stream', size: 3, sha256: 'x', createdAt: 4, visibility: 'public', sharedWith: [] }, { bytes: 100, files: 10 })
      const inboxBefore = await src.read('am-bob', 0, 10)
      await src.close()

      const to = `${URL}?schema=${schema}`
      const r = await cliInProcess(['migrate', '--from', dir, '--to', to, '--json'])
      assert.equal(r.code, 0, r.stderr)
      const report = JSON.parse(r.stdout.trim()) as { relay_id: string, audit_ok: boolean, audit_rows: number, tables: Record<string, number> }
      assert.equal(report.relay_id, relayId)
      assert.equal(report.audit_ok, true)
      assert.equal(report.audit_rows, 2)
      assert.equal(report.tables.messages, 2)
      assert.equal(report.tables.file_chunks, 1)

      const pgs = await postgresStore(to)
      try {
        assert.equal(await pgs.relayId(), relayId)
        assert.equal(await pgs.relaySecret(), secret)
        assert.deepEqual(await pgs.read('am-bob', 0, 10), inboxBefore)
        assert.deepEqual((await pgs.readHistory('ops', { limit: 10 })).map(e => e.envelope), ['{"n":2}'])
        assert.equal((await verifyAudit(pgs)).ok, true)
        const chunks: number[] = []
        for await (const c of pgs.readFileChunks('f-1')) chunks.push(...c)
        assert.deepEqual(chunks, [1, 2, 3])
        // the copy goes on: seqs, identities and the chain continue after the copied ones
        assert.deepEqual(await pgs.commit([{ sender: 'am-alice', id: 'id-3', recipient: 'am-bob', envelope: '{}', receivedAt: 5 }], [], [{ at: 5, actor: 'operator', action: 'x', detail: {} }]), [{ status: 'stored', seq: 3 }])
        await pgs.addScorePoint('am-bob', { at: 2, score: 0.7 }, { since: 0, max: 10 })
        assert.deepEqual(await pgs.listScorePoints('am-bob', 0), [{ at: 1, score: 0.5 }, { at: 2, score: 0.7 }])
        assert.equal((await verifyAudit(pgs)).ok, true)
      } finally {
        await pgs.close()
      }
      const again = await cliInProcess(['migrate', '--from', dir, '--to', to])
      assert.equal(again.code, 2)
      assert.match(again.stderr, /already holds AgentMesh data \(table /)
      // migrate without --from: nothing left to apply
      const up = await cliInProcess(['migrate', '--to', to, '--json'])
      assert.equal(up.code, 0, up.stderr)
      assert.equal(JSON.parse(up.stdout.trim()).from_version, JSON.parse(up.stdout.trim()).version)
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('serve postgres - serve --store refuses an unreachable database (exit 1) and a schema from a newer AgentMesh (exit 65), one coded line each, nothing made', async () => {
    const { mkdtempSync, existsSync, rmSync } = await import('node:fs')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-pg-refuse-'))
    const schema = schemaName()
    try {
      const proxy = await tcpProxy(PG_PORT)
      await proxy.stop()
      const down = await cliInProcess(['serve', '--store', `postgres://postgres:s3cret@127.0.0.1:${proxy.port}/postgres`, '--port', '0', '--data', join(dir, 'a')])
      assertCliError(down, 'AM_ERR_STORE_UNAVAILABLE', 1, /is not reachable/)
      assert.equal(down.stderr.includes('s3cret'), false)
      assert.equal(existsSync(join(dir, 'a')), false)

      const to = `${URL}?schema=${schema}`
      await (await postgresStore(to)).close()
      await admin.query(`INSERT INTO ${schema}.agentmesh_migrations (version, name, applied_at) VALUES (1000, 'from the future', 1)`)
      const newer = await cliInProcess(['serve', '--store', to, '--port', '0', '--data', join(dir, 'b')])
      assertCliError(newer, 'AM_ERR_DATA_CORRUPT', 65, /was written by a newer AgentMesh \(schema 1000, this one knows \d+\); upgrade AgentMesh$/)
      assert.equal(existsSync(join(dir, 'b')), false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('serve postgres - a read-only relay on PostgreSQL answers /healthz from the store (available() is a read), and refuses sends with AM_ERR_READ_ONLY', async () => {
    const schema = schemaName()
    const store = await postgresStore(`${URL}?schema=${schema}`, { maxConnections: 2 })
    const relay = await startRelay({ readOnly: true }, { store })
    try {
      const ok = await fetch(`${relay.url}/healthz`)
      assert.equal(ok.status, 200)
      const bobId = createIdentity()
      const bob = await rawAgent(relay.wsUrl, bobId)
      await bob.auth()
      const alice = await rawAgent(relay.wsUrl)
      await alice.auth()
      const env = alice.envelope(bobId.amid, 'refused')
      alice.send({ op: 'send', env })
      assert.equal((await alice.next(f => f.op === 'error' && f.id === env.id)).code, ErrorCode.ReadOnly)
      assert.equal((await fetch(`${relay.url}/healthz`)).status, 200)
      alice.close()
      bob.close()
    } finally {
      await relay.close()
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })

  it('serve postgres - two relays, each with its own store over one schema and the NATS backplane: DMs sent through both reach a receiver on one of them once each, in order per sender, with one run of inbox seqs and one audit chain', async () => {
    const schema = schemaName()
    const url = `${URL}?schema=${schema}`
    const prefix = `agentmesh-test.${randomBytes(6).toString('hex')}`
    const stores = [await postgresStore(url, { maxConnections: 2 }), await postgresStore(url, { maxConnections: 2 })]
    const bps = [natsBackplane({ servers: process.env.AGENTMESH_TEST_NATS ?? 'nats://127.0.0.1:4222', prefix }), natsBackplane({ servers: process.env.AGENTMESH_TEST_NATS ?? 'nats://127.0.0.1:4222', prefix })]
    for (const bp of bps) await bp.start()
    const one = await startRelay({}, { store: stores[0]!, backplane: bps[0]! })
    const two = await startRelay({}, { store: stores[1]!, backplane: bps[1]! })
    try {
      assert.equal(await stores[0]!.relayId(), await stores[1]!.relayId())
      const bobId = createIdentity()
      const bob = await rawAgent(two.wsUrl, bobId)
      await bob.auth()
      const alice = await rawAgent(one.wsUrl)
      await alice.auth()
      const carol = await rawAgent(two.wsUrl)
      await carol.auth()
      const envs = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : carol).envelope(bobId.amid, `n${i}`))
      for (let i = 0; i < envs.length; i++) (i % 2 === 0 ? alice : carol).send({ op: 'send', env: envs[i] })
      await alice.collect(f => f.op === 'ack', 10)
      await carol.collect(f => f.op === 'ack', 10)
      const got = await bob.collect(f => f.op === 'deliver', 20)
      assert.deepEqual(got.map(f => f.seq), Array.from({ length: 20 }, (_, i) => i + 1), 'one inbox, contiguous seqs, whichever relay stored them')
      const ids = got.map(f => f.env.id as string)
      assert.equal(new Set(ids).size, 20)
      // per sender, in the order sent
      for (const who of [0, 1]) assert.deepEqual(ids.filter(id => envs.findIndex(e => e.id === id) % 2 === who), envs.filter((_, i) => i % 2 === who).map(e => e.id))
      await bob.barrier()
      assert.equal(bob.frames.filter(f => f.op === 'deliver').length, 20, 'each once')
      const check = await verifyAudit(stores[0]!)
      assert.equal(check.ok, true)
      for (const a of [alice, bob, carol]) a.close()
    } finally {
      await one.close()
      await two.close()
      for (const bp of bps) await bp.stop()
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  })
})
