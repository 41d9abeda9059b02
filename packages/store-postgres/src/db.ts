/**
 * The connection side of the PostgreSQL store: a bounded pool, every statement a named (prepared)
 * one, write transactions serialised by an advisory lock (across every relay on the database) and
 * errors turned into AgentMeshErrors a person can act on, never naming the password.
 */
import pg from 'pg'
import { createHash } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** A connection or the pool: what a statement runs on. */
export interface Queryable {
  query: pg.Pool['query']
}

/** 64-bit integers (BIGINT, count) and numerics (sum) as JS numbers: every value the store keeps is below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 20 || oid === 1700) return (v: string) => Number(v)
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format)
  }) as unknown as typeof pg.types.getTypeParser,
}

/** The database's address without its password, for messages and logs. */
export function redact (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'the PostgreSQL database'
  }
}

/** Error codes of a database (or the network to it) that is not there: the operation may succeed later. */
const GONE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  '57P01', '57P02', '57P03', '53300'])

/** True when `err` says the database cannot be reached (rather than that a statement is wrong). */
export function unavailable (err: unknown): boolean {
  const e = err as { code?: string, message?: string }
  if (e.code !== undefined && (GONE.has(e.code) || e.code.startsWith('08'))) return true
  const m = e.message ?? ''
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(m)
}

/** An error of the pool as one line naming the database (for `serve` at start, and for a lost database while running). */
export function dbError (where: string, err: unknown): AgentMeshError {
  if (err instanceof AgentMeshError) return err
  const e = err as { code?: string, message?: string }
  const msg = (e.message ?? String(err)).split('\n')[0]
  if (e.code === '28P01' || e.code === '28000') {
    return new AgentMeshError(ErrorCode.StoreUnavailable, `${where} refused the credentials (${msg}); check the user and password in --store`, { cause: err })
  }
  if (e.code === '3D000') {
    return new AgentMeshError(ErrorCode.StoreUnavailable, `${where}: ${msg}; create it (createdb) or name another database in --store`, { cause: err })
  }
  // TLS was asked for (--store-tls-*) and the server does not offer it, or its certificate did not verify
  if ((e.code === undefined && /does not support SSL|certificate|SSL|TLS/i.test(msg)) || /CERT|UNABLE_TO|SSL|TLS/.test(e.code ?? '')) {
    return new AgentMeshError(ErrorCode.StoreUnavailable, `${where}: TLS failed (${msg}); check --store-tls-ca / --store-tls-cert / --store-tls-key and the server's ssl settings`, { cause: err })
  }
  if (unavailable(err)) {
    return new AgentMeshError(ErrorCode.StoreUnavailable, `${where} is not reachable (${e.code !== undefined && !msg.includes(e.code) ? e.code + ': ' : ''}${msg}); start it or check --store`, { cause: err })
  }
  return new AgentMeshError(ErrorCode.Internal, `${where}: ${msg}`, { cause: err })
}

export interface PoolInit {
  /** postgres://user:password@host:port/database */
  url: string
  /** the schema the tables live in (created when missing) @default public */
  schema?: string
  /** connections at most @default 10 */
  maxConnections?: number
  /** how long a connection attempt may take, in ms @default 5,000 */
  connectTimeoutMs?: number
  /** how long one statement may run, in ms (0: no limit) @default 30,000 */
  statementTimeoutMs?: number
  /**
   * TLS to PostgreSQL (PEM text): the CA its certificate must chain to, and this relay's client
   * certificate and key (mutual TLS). Given: the connection is TLS and the server's certificate is
   * verified. @default none: as the URL says (`?sslmode=…`)
   */
  tls?: { ca?: string, cert?: string, key?: string }
}

/** A connection idle inside a transaction this long is ended by the server, and its locks released. */
export const IDLE_IN_TRANSACTION_MS = 30_000

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export function createPool (init: PoolInit): pg.Pool {
  const schema = init.schema ?? 'public'
  if (!SCHEMA_NAME.test(schema)) throw new AgentMeshError(ErrorCode.InvalidConfig, `the PostgreSQL schema "${schema}" must be lower-case letters, digits and _ (at most 63)`)
  const max = init.maxConnections ?? 10
  if (!Number.isInteger(max) || max < 1 || max > 1000) throw new AgentMeshError(ErrorCode.InvalidConfig, 'maxConnections must be an integer from 1 to 1,000')
  const statementMs = init.statementTimeoutMs ?? 30_000
  if (!Number.isInteger(statementMs) || statementMs < 0) throw new AgentMeshError(ErrorCode.InvalidConfig, 'statementTimeoutMs must be a whole number of ms (0: no limit)')
  const pool = new pg.Pool({
    connectionString: init.url,
    max,
    connectionTimeoutMillis: init.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementMs,
    // a statement the server never answers (a network partition) is given up on the client too
    query_timeout: statementMs === 0 ? undefined : statementMs + 5000,
    keepAlive: true,
    // a relay that stops in the middle of a transaction (frozen, partitioned) releases the write lock
    options: `-c search_path=${schema} -c idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`,
    application_name: 'agentmesh',
    types,
    ...(init.tls === undefined ? {} : { ssl: { ...init.tls, rejectUnauthorized: true } }),
  })
  // an idle connection the server closed: the pool drops it and the next query opens another
  pool.on('error', () => {})
  return pool
}

const names = new Map<string, string>()
/** The statement's name: the same text is prepared once per connection. */
function nameOf (text: string): string {
  let n = names.get(text)
  if (n === undefined) {
    n = 'am_' + createHash('sha1').update(text).digest('hex').slice(0, 20)
    names.set(text, n)
  }
  return n
}

/** Runs a named (prepared) statement. */
export async function run<R extends pg.QueryResultRow = Record<string, any>> (c: Queryable, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  return await c.query<R>({ name: nameOf(text), text, values })
}

export async function rows<R extends pg.QueryResultRow = Record<string, any>> (c: Queryable, text: string, values: unknown[] = []): Promise<R[]> {
  return (await run<R>(c, text, values)).rows
}

export async function one<R extends pg.QueryResultRow = Record<string, any>> (c: Queryable, text: string, values: unknown[] = []): Promise<R | undefined> {
  return (await run<R>(c, text, values)).rows[0]
}

/** The first column of the first row, or undefined. */
export async function value<T> (c: Queryable, text: string, values: unknown[] = []): Promise<T | undefined> {
  const r = await c.query({ name: nameOf(text), text, values, rowMode: 'array' })
  const row = r.rows[0] as unknown[] | undefined
  return row === undefined ? undefined : row[0] as T
}

/** The first column of every row. */
export async function column<T> (c: Queryable, text: string, values: unknown[] = []): Promise<T[]> {
  const r = await c.query({ name: nameOf(text), text, values, rowMode: 'array' })
  return (r.rows as unknown[][]).map(x => x[0] as T)
}

/** Every write transaction of one schema takes this lock first: one writer at a time across every relay on the database. */
export const WRITE_LOCK = 'SELECT pg_advisory_xact_lock(1095583053, hashtext($1))'
/** Taken while the migrations run (before the schema exists): with the schema's name as $1. */
export const MIGRATE_LOCK = 'SELECT pg_advisory_xact_lock(1095583054, hashtext($1))'
