/**
 * The part of better-sqlite3's API the client state uses (client/src/state-sqlite.ts), over Node's
 * built-in `node:sqlite`. The plugin bundle maps `better-sqlite3` here (scripts/build.mjs): OpenClaw
 * runs on Node ≥ 24, where a better-sqlite3 built for the project's Node 20 cannot load, and a
 * plugin installed from a path gets no dependency install. Same file, same SQLite locking: the CLI on
 * Node 20 and the plugin use the same agent home.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite'

type Value = null | number | bigint | string | Uint8Array

function out (v: unknown): unknown {
  // better-sqlite3 gives BLOBs as Buffers; node:sqlite as Uint8Arrays
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v
}
function row (r: unknown): unknown {
  if (r === undefined || r === null || typeof r !== 'object') return r
  const o = r as Record<string, unknown>
  for (const k of Object.keys(o)) o[k] = out(o[k])
  return o
}

class Statement {
  private plucked = false
  constructor (private readonly st: StatementSync) {}
  pluck (on = true): this { this.plucked = on; return this }
  run (...args: Value[]): { changes: number, lastInsertRowid: number | bigint } {
    const r = this.st.run(...args)
    return { changes: Number(r.changes), lastInsertRowid: r.lastInsertRowid }
  }
  get (...args: Value[]): unknown {
    const r = this.st.get(...args)
    if (r === undefined) return undefined
    return this.plucked ? out(Object.values(r)[0]) : row(r)
  }
  all (...args: Value[]): unknown[] {
    return this.st.all(...args).map(r => this.plucked ? out(Object.values(r)[0]) : row(r))
  }
}

type Tx<F extends (...a: never[]) => unknown> = F & { immediate: F, deferred: F, exclusive: F }

export default class Database {
  private readonly db: DatabaseSync
  private depth = 0
  constructor (path: string) { this.db = new DatabaseSync(path) }
  get open (): boolean { return this.db.isOpen }
  get inTransaction (): boolean { return this.db.isTransaction }
  pragma (source: string): unknown { return this.db.prepare(`PRAGMA ${source}`).all() }
  exec (sql: string): this { this.db.exec(sql); return this }
  prepare (sql: string): Statement { return new Statement(this.db.prepare(sql)) }
  close (): void { this.db.close() }
  transaction<F extends (...a: never[]) => unknown> (fn: F): Tx<F> {
    // as better-sqlite3: inside a transaction, a nested one is a savepoint
    const wrap = (begin: string) => ((...args: Parameters<F>) => {
      if (this.db.isTransaction) {
        const sp = `am_sp_${++this.depth}`
        this.db.exec(`SAVEPOINT ${sp}`)
        try {
          const r = fn(...args)
          this.db.exec(`RELEASE ${sp}`)
          return r
        } catch (err) {
          if (this.db.isTransaction) this.db.exec(`ROLLBACK TO ${sp}; RELEASE ${sp}`)
          throw err
        } finally {
          this.depth--
        }
      }
      this.db.exec(begin)
      try {
        const r = fn(...args)
        this.db.exec('COMMIT')
        return r
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK')
        throw err
      }
    }) as F
    return Object.assign(wrap('BEGIN'), { immediate: wrap('BEGIN IMMEDIATE'), deferred: wrap('BEGIN DEFERRED'), exclusive: wrap('BEGIN EXCLUSIVE') })
  }
}
