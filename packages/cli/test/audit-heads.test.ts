/**
 * Signed audit heads (docs/protocol.md §17.8) against real files: `logs verify --data` finds the
 * newest rows deleted and a row rewritten with the rest re-chained; `serve` refuses a database
 * behind its signed head (the -wal file lost after kill -9) unless --accept-data-loss, and a
 * database with overwritten pages (quick_check).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createIdentity, signAuditHead, type Identity } from '@agentmesh/crypto'
import { auditHash, type AuditInput } from '@agentmesh/store'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'
import { assertCliError, cli, spawnRelay, tempDir, waitFor } from '@agentmesh/testing'
import { AUDIT_HEADS_FILE, fileAuditHeads, readAuditHeads } from '../src/audit-heads-file.ts'
import { openRelayData } from '../src/commands/serve.ts'

const row = (n: number): AuditInput => ({ at: 1_700_000_000_000 + n, actor: 'operator', action: 'settings.set', detail: { n } })

/** A stopped relay's data directory: `rows` audit rows, and heads signed by `relay` at `headsAt`. */
async function dataDir (relay: Identity, rows: number, headsAt: number[]): Promise<{ path: string, cleanup: () => void }> {
  const dir = tempDir()
  const store = sqliteStore(join(dir.path, DB_FILE))
  const written = await store.appendAudit(Array.from({ length: rows }, (_, i) => row(i + 1)))
  await store.close()
  const heads = fileAuditHeads(dir.path)
  for (const s of headsAt) heads.append(signAuditHead(relay, { seq: s, hash: written[s - 1]!.hash, at: 1_700_000_100_000 + s }))
  return dir
}

/** Runs SQL on the stopped relay's database (the store takes the file exclusively while open). */
function onDb (dir: string, f: (db: Database.Database) => void): void {
  const db = new Database(join(dir, DB_FILE))
  try { f(db) } finally { db.close() }
}

/** Rewrites row `seq`'s detail and re-computes the hash chain from there, as someone who can write the file could. */
function rewriteAndRechain (dir: string, seq: number): void {
  onDb(dir, (db) => {
    db.prepare('UPDATE audit SET detail = ? WHERE seq = ?').run(JSON.stringify({ n: 999 }), seq)
    let prev = (db.prepare('SELECT hash FROM audit WHERE seq = ?').pluck().get(seq - 1) as string | undefined) ?? ''
    for (const r of db.prepare('SELECT * FROM audit WHERE seq >= ? ORDER BY seq').all(seq) as Array<Record<string, any>>) {
      const rec = { seq: r.seq, at: r.at, actor: r.actor, action: r.action, ...(r.target === null ? {} : { target: r.target }), detail: JSON.parse(r.detail) }
      const hash = auditHash(rec, prev)
      db.prepare('UPDATE audit SET prev = ?, hash = ? WHERE seq = ?').run(prev, hash, r.seq)
      prev = hash
    }
  })
}

describe('audit heads', () => {
  it('audit heads - logs verify --data checks the chain up to the newest signed head, in a 0600 file', async (t) => {
    const relay = createIdentity()
    const dir = await dataDir(relay, 30, [10, 20, 30])
    t.after(() => { dir.cleanup() })
    assert.equal(statSync(join(dir.path, AUDIT_HEADS_FILE)).mode & 0o777, 0o600)
    assert.deepEqual(readAuditHeads(join(dir.path, AUDIT_HEADS_FILE)).heads.map(h => [h.seq, h.relay]), [[10, relay.amid], [20, relay.amid], [30, relay.amid]])
    const r = await cli(['logs', 'verify', '--data', dir.path])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(r.lines, ['audit log verified: 30 rows, all verified up to the signed head at row 30'])
    const j = await cli(['logs', 'verify', '--data', dir.path, '--json'])
    assert.deepEqual(JSON.parse(j.stdout), { ok: true, rows: 30, last_seq: 30, signed_head_seq: 30 })
  })

  it('audit heads - deleting the newest rows is found: "rows 21-30 are missing after row 20"', async (t) => {
    const dir = await dataDir(createIdentity(), 30, [10, 20, 30])
    t.after(() => { dir.cleanup() })
    onDb(dir.path, (db) => { db.prepare('DELETE FROM audit WHERE seq > 20').run() })
    assertCliError(await cli(['logs', 'verify', '--data', dir.path]), 'AM_ERR_AUDIT_TAMPERED', 1,
      /broken at row 21: rows 21-30 are missing after row 20: the signed head of 2023-11-14T\S+ names row 30 \(20 row\(s\) read\)$/)
    // one row only
    onDb(dir.path, (db) => { db.prepare('DELETE FROM audit WHERE seq > 19').run() })
    const heads = join(dir.path, 'auditor-copy.jsonl')
    copyFileSync(join(dir.path, AUDIT_HEADS_FILE), heads)
    rmSync(join(dir.path, AUDIT_HEADS_FILE))
    // without heads the cut is invisible, as before; with the auditor's copy it is not
    const blind = await cli(['logs', 'verify', '--data', dir.path])
    assert.deepEqual(blind.lines, ['audit log verified: 19 rows; no signed head to check against (rows deleted at the end, or re-chained, would not show)'])
    assertCliError(await cli(['logs', 'verify', '--data', dir.path, '--heads', heads]), 'AM_ERR_AUDIT_TAMPERED', 1, /rows 20-30 are missing after row 19/)
  })

  it('audit heads - a rewritten row with the rest re-chained is found between the signed heads around it', async (t) => {
    const dir = await dataDir(createIdentity(), 30, [10, 20, 30])
    t.after(() => { dir.cleanup() })
    rewriteAndRechain(dir.path, 15)
    assertCliError(await cli(['logs', 'verify', '--data', dir.path]), 'AM_ERR_AUDIT_TAMPERED', 1,
      /broken at row 20: the chain was re-computed: row 20 links, but its hash is not the one the signed head of \S+ holds \(a row in 11-20 was rewritten or removed, and the rows after it re-chained\)/)
    // a row changed without re-chaining is still named exactly
    onDb(dir.path, (db) => { db.prepare('UPDATE audit SET detail = ? WHERE seq = 25').run(JSON.stringify({ n: 1 })) })
    assertCliError(await cli(['logs', 'verify', '--data', dir.path]), 'AM_ERR_AUDIT_TAMPERED', 1, /broken at row 25: row 25 was changed after it was written/)
  })

  it('audit heads - a forged or foreign head does not count; --heads takes a saved GET /api/v1/audit/heads answer', async (t) => {
    const relay = createIdentity()
    const dir = await dataDir(relay, 12, [12])
    t.after(() => { dir.cleanup() })
    const [h] = readAuditHeads(join(dir.path, AUDIT_HEADS_FILE)).heads
    const saved = join(dir.path, 'heads.json')
    const forged = { ...h!, seq: 40 }
    writeFileSync(saved, JSON.stringify({ relay: relay.amid, heads: [h, forged] }))
    const r = await cli(['logs', 'verify', '--data', dir.path, '--heads', saved])
    assert.deepEqual(r.lines, ['audit log verified: 12 rows, all verified up to the signed head at row 12'], r.stderr)
    writeFileSync(saved, JSON.stringify({ relay: relay.amid, heads: [forged] }))
    assertCliError(await cli(['logs', 'verify', '--data', dir.path, '--heads', saved]), 'AM_ERR_INVALID_ARGUMENT', 2, /holds no signed audit head whose signature verifies \(1 entry does not\)/)
    assertCliError(await cli(['logs', '--heads', saved]), 'AM_ERR_INVALID_ARGUMENT', 2, /--heads goes with `logs verify`/)
  })

  it('audit heads - serve refuses a database with overwritten pages (quick_check) with AM_ERR_DATA_CORRUPT', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const store = sqliteStore(join(dir.path, DB_FILE))
    for (let i = 0; i < 20; i++) await store.appendAudit(Array.from({ length: 100 }, (_, k) => ({ ...row(i * 100 + k), detail: { text: 'x'.repeat(200) } })))
    await store.close()
    const file = join(dir.path, DB_FILE)
    const size = statSync(file).size
    assert.ok(size > 64 * 4096, `a database of many pages (${size} bytes)`)
    // overwrite pages in the middle with bytes that are not a b-tree page
    const fd = openSync(file, 'r+')
    try { writeSync(fd, Buffer.alloc(8 * 4096, 0x5a), 0, 8 * 4096, 32 * 4096) } finally { closeSync(fd) }
    assert.throws(() => openRelayData({ dataDir: dir.path }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'AM_ERR_DATA_CORRUPT')
      assert.match((err as Error).message, /agentmesh\.db (failed its integrity check \(PRAGMA quick_check: .+\)|is not a usable AgentMesh database)/)
      return true
    })
  })
})

describe('audit heads - a zeroed -wal file', () => {
  it('audit heads - serve refuses a -wal file with no WAL header (zeroed after a crash) with AM_ERR_DATA_LOSS before SQLite resets it; --accept-data-loss opens what is left', async (t) => {
    const live = tempDir()
    const crashed = tempDir()
    t.after(() => { live.cleanup(); crashed.cleanup() })
    // the files as a kill -9 leaves them: the newest commits only in the -wal file
    const store = sqliteStore(join(live.path, DB_FILE))
    await store.appendAudit(Array.from({ length: 40 }, (_, i) => row(i + 1)))
    copyFileSync(join(live.path, DB_FILE), join(crashed.path, DB_FILE))
    copyFileSync(join(live.path, DB_FILE + '-wal'), join(crashed.path, DB_FILE + '-wal'))
    await store.close()
    const wal = join(crashed.path, DB_FILE + '-wal')
    const size = statSync(wal).size
    assert.ok(size > 0)
    writeFileSync(wal, Buffer.alloc(size))
    assert.throws(() => openRelayData({ dataDir: crashed.path }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'AM_ERR_DATA_LOSS')
      assert.match((err as Error).message, new RegExp(`agentmesh\\.db-wal holds ${size} bytes but no WAL header \\(it was zeroed or overwritten after a crash\\): the transactions committed in it are lost.*--accept-data-loss`))
      return true
    })
    assert.equal(statSync(wal).size, size, 'the evidence is left as it was')
    const opened = openRelayData({ dataDir: crashed.path }, { acceptDataLoss: true })
    try {
      assert.equal(opened.walLost, size)
      assert.ok(((await opened.store.lastAudit())?.seq ?? 0) < 40, 'the rows only in the -wal file are gone')
    } finally {
      await opened.store.close()
    }
  })
})

describe('audit heads - a real relay process', () => {
  it('audit heads - serve refuses to start when the -wal file was lost after kill -9, names what is missing, and starts with --accept-data-loss', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    let relay = await spawnRelay({ dataDir: dir.path, args: ['--audit-head-rows', '1'] })
    t.after(async () => { await relay.kill('SIGKILL') })
    const key = readFileSync(join(dir.path, 'api-key'), 'utf8').trim()
    const api = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(relay.url + path, { method, headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      assert.ok(res.ok, `${method} ${path}: ${res.status}`)
      return await res.json()
    }
    for (let i = 0; i < 25; i++) await api('PATCH', '/api/v1/settings', { presence_idle_ms: 60_000 + i })
    const last = (await api('GET', '/api/v1/audit?before=1000000&limit=1')).entries[0].seq as number
    assert.equal(last, 25)
    // the relay signs a head once a row is written (checked every second): wait for the one at row 25
    await waitFor(() => readAuditHeads(join(dir.path, AUDIT_HEADS_FILE)).heads.some(h => h.seq === last), 'the signed head of row 25 in audit-heads.jsonl', 20_000)
    const answered = await api('GET', '/api/v1/audit/heads')
    assert.equal(answered.relay, answered.heads[0].relay)
    assert.deepEqual((await api('GET', '/api/v1/audit/verify')).signed_head_seq, 25)
    await relay.kill('SIGKILL')
    const wal = join(dir.path, DB_FILE + '-wal')
    assert.ok(existsSync(wal) && statSync(wal).size > 0, 'the committed rows are in the -wal file')
    rmSync(wal)
    rmSync(join(dir.path, DB_FILE + '-shm'), { force: true })

    await assert.rejects(spawnRelay({ dataDir: dir.path }), (err: Error) => {
      assert.match(err.message, /relay exited with 1 before listening/)
      assert.match(err.message, /"code":"AM_ERR_DATA_LOSS","message":"the database ends at audit row \d+, but the relay signed a head at row 25 on \S+: rows \d+-25, and the messages and changes committed with them, are missing .*--accept-data-loss/)
      return true
    })
    relay = await spawnRelay({ dataDir: dir.path, args: ['--accept-data-loss'] })
    // the log line may reach stderr just after the relay says it listens
    const started = /started with --accept-data-loss/
    await waitFor(() => started.test(relay.stderr()), 'the --accept-data-loss line on stderr', 10_000)
    assert.match(relay.stderr(), /"head_seq":25,"db_seq":\d+,"msg":"started with --accept-data-loss: the database is behind the newest signed audit head \(audited audit.data_loss\)"/)
    const newKey = readFileSync(join(dir.path, 'api-key'), 'utf8').trim()
    const rows = await (await fetch(relay.url + '/api/v1/audit?action=audit.data_loss', { headers: { 'x-api-key': newKey } })).json() as { entries: Array<{ actor: string, detail: Record<string, unknown> }> }
    assert.equal(rows.entries.length, 1)
    assert.equal(rows.entries[0]!.actor, 'operator')
    assert.equal(rows.entries[0]!.detail.head_seq, 25)
    // a clean stop signs a new head: the next start needs no flag
    assert.equal(await relay.kill('SIGTERM'), 0, relay.stderr())
    relay = await spawnRelay({ dataDir: dir.path })
    assert.equal(await relay.kill('SIGTERM'), 0, relay.stderr())
    // the log is whole again up to the head signed after the loss was accepted
    const v = await cli(['logs', 'verify', '--data', dir.path])
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.lines[0]!, /^audit log verified: \d+ rows, all verified up to the signed head at row \d+$/)
  })
})
