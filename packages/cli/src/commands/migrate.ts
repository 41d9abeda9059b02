/**
 * `agentmesh migrate`: brings a PostgreSQL database to this AgentMesh's schema, and with `--from`
 * copies a stopped SQLite relay's data into it (same tables, same columns, the relay's identity
 * included), then verifies the audit chain and the row counts on the copy.
 */
import { existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import Database from 'better-sqlite3'
import type pg from 'pg'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { verifyAudit, type AuditCheck } from '@agentmesh/store'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'
import { createPool, isPostgresUrl, LATEST_VERSION, migrate, postgresStore, redact, schemaOf } from '@agentmesh/store-postgres'
import { output } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

/** Parameters in one INSERT at most (PostgreSQL takes 65,535). */
const MAX_PARAMS = 30_000

export interface CopyReport {
  from: string
  to: string
  /** rows copied, by table */
  tables: Record<string, number>
  relayId: string
  audit: AuditCheck
}

function toUrl (to: string | undefined): string {
  if (to === undefined || to === '') throw new AgentMeshError(ErrorCode.InvalidArgument, '--to postgres://… (or AGENTMESH_STORE) names the database to migrate')
  if (!isPostgresUrl(to)) throw new AgentMeshError(ErrorCode.InvalidArgument, `--to must be a postgres:// URL, got ${JSON.stringify(redact(to))}`)
  return to
}

/** The SQLite file of `--from`: a file, or a data directory holding agentmesh.db. */
function sqliteFile (from: string): string {
  const p = resolve(from)
  if (!existsSync(p)) throw new AgentMeshError(ErrorCode.DataDir, `${p} does not exist; --from names a relay's SQLite file or its data directory`)
  const file = statSync(p).isDirectory() ? join(p, DB_FILE) : p
  if (!existsSync(file)) throw new AgentMeshError(ErrorCode.DataDir, `${file} does not exist; --from names a relay's SQLite file or its data directory`)
  return file
}

/**
 * Copies a stopped relay's SQLite file into an empty PostgreSQL database (migrated first) in one
 * transaction, then checks the copy: every table's row count and the audit chain. A database that
 * already holds data is refused and left as it was.
 */
export async function copySqliteToPostgres (from: string, to: string): Promise<CopyReport> {
  const file = sqliteFile(from)
  // opening it as a relay would: refused while a relay holds it, and brought to the current schema
  await sqliteStore(file).close()
  const split = schemaOf(to)
  const schema = split.schema ?? 'public'
  const where = `PostgreSQL at ${redact(split.url)}`
  const pool = createPool({ url: split.url, schema, maxConnections: 2 })
  const src = new Database(file, { readonly: true, fileMustExist: true })
  const tables: Record<string, number> = {}
  try {
    await migrate(pool, where, schema)
    const c = await pool.connect()
    c.on('error', () => {})
    try {
      await c.query('BEGIN')
      await c.query('SELECT pg_advisory_xact_lock(1095583053, hashtext($1))', [schema])
      const targets = (await c.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name <> 'agentmesh_migrations' ORDER BY table_name", [schema])).rows.map(r => r.table_name)
      for (const t of targets) {
        if (t === 'meta') continue
        const some = await c.query(`SELECT 1 FROM ${t} LIMIT 1`)
        if (some.rows.length > 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `${where} already holds AgentMesh data (table ${t}); migrate into an empty database, or another schema (?schema=name)`)
      }
      // the relay's identity is the source's
      await c.query('DELETE FROM meta')
      const srcTables = new Set(src.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[])
      // nothing of the source may be left behind: a table or column PostgreSQL has no place for is refused
      for (const t of srcTables) {
        if (!targets.includes(t) && (src.prepare(`SELECT count(*) FROM "${t}"`).pluck().get() as number) > 0) {
          throw new AgentMeshError(ErrorCode.InvalidArgument, `${file} has a table ${t} that this AgentMesh's PostgreSQL schema lacks; migrate with the AgentMesh that wrote it`)
        }
      }
      for (const t of targets) {
        if (!srcTables.has(t)) { tables[t] = 0; continue }
        const pgCols = (await c.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, t])).rows.map(r => r.column_name)
        const srcCols = new Set((src.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>).map(r => r.name))
        const cols = pgCols.filter(x => srcCols.has(x))
        const extra = [...srcCols].filter(x => !pgCols.includes(x))
        if (extra.length > 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `${file}: table ${t} has columns (${extra.join(', ')}) that this AgentMesh's PostgreSQL schema lacks; migrate with the AgentMesh that wrote it`)
        tables[t] = await copyTable(c, src, t, cols)
      }
      // identity columns continue after the copied ids
      for (const t of ['score_points', 'reputation_flags']) {
        await c.query(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), coalesce((SELECT max(id) FROM ${t}), 0) + 1, false)`)
      }
      await c.query('COMMIT')
    } catch (err) {
      try { await c.query('ROLLBACK') } catch {}
      throw err
    } finally {
      c.release()
    }
  } finally {
    src.close()
    await pool.end().catch(() => {})
  }
  // the copy as a relay reads it: the same rows, an intact chain
  const store = await postgresStore(to)
  try {
    const count = new Database(file, { readonly: true, fileMustExist: true })
    try {
      const p2 = createPool({ url: split.url, schema, maxConnections: 1 })
      try {
        for (const [t, n] of Object.entries(tables)) {
          const src = n === 0 ? 0 : count.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number
          const dst = Number((await p2.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
          if (src !== dst) throw new AgentMeshError(ErrorCode.DataCorrupt, `the copy of table ${t} holds ${dst} rows, the source ${src}`)
        }
      } finally {
        await p2.end()
      }
    } finally {
      count.close()
    }
    const audit = await verifyAudit(store)
    if (!audit.ok) throw new AgentMeshError(ErrorCode.AuditTampered, `the audit chain of the copy does not verify: ${audit.reason}`)
    return { from: file, to: redact(split.url) + (split.schema === undefined ? '' : ` (schema ${split.schema})`), tables, relayId: await store.relayId(), audit }
  } finally {
    await store.close()
  }
}

async function copyTable (c: pg.PoolClient, src: Database.Database, table: string, cols: string[]): Promise<number> {
  if (cols.length === 0) return 0
  const per = Math.max(1, Math.floor(MAX_PARAMS / cols.length))
  const list = cols.map(x => `"${x}"`).join(', ')
  let batch: unknown[][] = []
  let n = 0
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const values: unknown[] = []
    const rows = batch.map(r => '(' + r.map(v => { values.push(v); return '$' + values.length }).join(', ') + ')')
    await c.query(`INSERT INTO ${table} (${list}) VALUES ${rows.join(', ')}`, values)
    n += batch.length
    batch = []
  }
  for (const row of src.prepare(`SELECT ${list} FROM ${table}`).raw().iterate() as Iterable<unknown[]>) {
    batch.push(row)
    if (batch.length >= per) await flush()
  }
  await flush()
  return n
}

export function migrateCommand (program: Command, io: CliIo = processIo()): void {
  program.command('migrate')
    .description('apply the PostgreSQL schema migrations (--to); with --from, copy a stopped SQLite relay\'s data into an empty PostgreSQL database and verify the audit chain on the copy')
    .option('--to <url>', 'the PostgreSQL database, postgres://user:password@host:port/database[?schema=name] (env AGENTMESH_STORE)')
    .option('--from <sqlite>', 'a stopped relay\'s SQLite file, or its data directory (agentmesh.db in it)')
    .option('--json', 'one JSON object on stdout; errors as JSON on stderr')
    .action(async (o: { to?: string, from?: string, json?: boolean }) => {
      const out = output(o.json === true, io)
      const to = toUrl(o.to ?? io.env.AGENTMESH_STORE)
      if (o.from === undefined) {
        const split = schemaOf(to)
        const schema = split.schema ?? 'public'
        const where = `PostgreSQL at ${redact(split.url)}`
        const pool = createPool({ url: split.url, schema, maxConnections: 1 })
        try {
          const r = await migrate(pool, where, schema)
          out.result({ to: redact(split.url), schema, from_version: r.from, version: r.to },
            r.from === r.to ? `${where} is at schema ${r.to}: nothing to apply` : `${where}: schema ${r.from} → ${r.to}`)
        } finally {
          await pool.end().catch(() => {})
        }
        return
      }
      const r = await copySqliteToPostgres(o.from, to)
      const rows = Object.values(r.tables).reduce((a, b) => a + b, 0)
      out.result({ from: r.from, to: r.to, relay_id: r.relayId, version: LATEST_VERSION, tables: r.tables, rows, audit_rows: r.audit.rows, audit_ok: r.audit.ok },
        `copied ${rows} rows of ${r.from} into ${r.to} (relay ${r.relayId}); audit chain verified: ${r.audit.rows} rows`)
    })
}
