/**
 * Read-only mode (docs/protocol.md §20): entered by choice (`serve --read-only`) or by the relay
 * itself when its store reports a damaged database (SQLite's SQLITE_CORRUPT or SQLITE_NOTADB) while
 * it runs. Reads, history and deliveries of what is stored go on; every write is refused with
 * AM_ERR_READ_ONLY (503) and stores nothing — never a crash loop, never a write into a damaged file.
 *
 * It is one guard around the Store (`guardStore`): the writes a person or agent asks for are
 * refused there, whoever calls them (the core's commit of sends, every REST write), and every
 * store error is looked at for a corruption code on its way out.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Store } from '@agentmesh/store'
import type { Logger } from '../log.ts'
import { GLOBAL_ROOM } from '../chat/types.ts'

/** The reason of read-only mode entered by choice (`serve --read-only`). */
export const READ_ONLY_BY_CHOICE = 'started with --read-only'

export class ReadOnlyMode {
  #reason: string | undefined
  #since: number | undefined
  #corrupt = false
  readonly #listeners: Array<(reason: string, corrupt: boolean) => void> = []

  constructor (byChoice: boolean, now: () => number = Date.now) {
    if (byChoice) { this.#reason = READ_ONLY_BY_CHOICE; this.#since = now() }
    this.now = now
  }

  private readonly now: () => number

  get active (): boolean { return this.#reason !== undefined }
  get reason (): string | undefined { return this.#reason }
  get since (): number | undefined { return this.#since }
  /** Entered because the database is damaged (not by choice). */
  get corrupt (): boolean { return this.#corrupt }

  /** Enters read-only mode (once: the first reason stays); listeners hear it the first time. */
  enter (reason: string, corrupt: boolean): void {
    if (this.#reason !== undefined) {
      if (corrupt && !this.#corrupt) { this.#corrupt = true; for (const l of this.#listeners) l(reason, true) }
      return
    }
    this.#reason = reason
    this.#since = this.now()
    this.#corrupt = corrupt
    for (const l of this.#listeners) l(reason, corrupt)
  }

  /** Hears the mode being entered (or a corruption found while in it by choice). */
  onEnter (l: (reason: string, corrupt: boolean) => void): void { this.#listeners.push(l) }

  /** The refusal of a write: what every write answers in this mode. */
  refusal (what = 'this write'): AgentMeshError {
    return new AgentMeshError(ErrorCode.ReadOnly,
      `the relay is in read-only mode (${this.#reason ?? '?'}): ${what} was refused and nothing was stored; reads and history work; send it again once the operator has restored the database`)
  }

  /** A read that met the damage: it failed (other reads may work), the relay is read-only now. */
  readFailed (): AgentMeshError {
    return new AgentMeshError(ErrorCode.ReadOnly,
      `the relay is in read-only mode (${this.#reason ?? '?'}): this read met the damaged part of the database and failed; other reads and history may work; try again once the operator has restored the database`)
  }
}

/** True when `err` (or an error in its cause chain) is SQLite reporting a damaged database file, or PostgreSQL damaged data. */
export function isCorruption (err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) return true
    // PostgreSQL: data_corrupted, index_corrupted
    if (code === 'XX001' || code === 'XX002') return true
  }
  return false
}

/**
 * What a read-only relay lets through: reads, by their names (a Store method whose name starts so
 * reads; any other is a write and is refused, so a write a new slice adds is refused too), and the
 * bookkeeping that keeps reads working: an agent's last-seen time, delivery kind and global-room
 * row at auth (what reading the global room by cursor needs), retention pruning, the run marker,
 * backups. A commit goes through when it holds cursor acks only.
 */
const READ_NAME = /^(get|list|read|count|find|search|last|open|inbox|stats|relay|handleOf|roleOf|resolve|roomFeed|overdue|check|agentUpdateAcks|fileUsage|healthHistory|available)/
const BOOKKEEPING: ReadonlySet<string> = new Set([
  'upsertAgent', 'setRoomDelivery', 'prune', 'pruneHistory', 'pruneAudit', 'beginRun', 'endRun', 'backup',
])

/** Whether read-only mode refuses a call of Store method `name` with these arguments. */
export function refusedWhenReadOnly (name: string, args: readonly unknown[]): boolean {
  if (READ_NAME.test(name) || BOOKKEEPING.has(name)) return false
  if (name === 'commit') return ((args[0] as unknown[] | undefined)?.length ?? 0) > 0 || ((args[2] as unknown[] | undefined)?.length ?? 0) > 0
  // an agent's row in the global room, made at its auth (chat's cursorJoin): delivery bookkeeping
  if (name === 'addMember') return (args[0] as { room?: unknown } | undefined)?.room !== GLOBAL_ROOM
  // the authentications of a turn (auth-batch.ts): the same bookkeeping, for several agents
  if (name === 'agentsOnline') return ((args[0] as Array<{ join?: { room?: unknown } }> | undefined) ?? []).some(a => a.join !== undefined && a.join.room !== GLOBAL_ROOM)
  return true
}

/** `it`, its errors passed to `seen` (leaving early still ends `it`: for-await returns it). */
async function * guarded<T> (it: AsyncIterable<T>, seen: (err: unknown) => never): AsyncGenerator<T> {
  try {
    for await (const x of it) yield x
  } catch (err) {
    seen(err)
  }
}

/**
 * `store` behind the read-only guard: in read-only mode every write (refusedWhenReadOnly) is refused
 * with AM_ERR_READ_ONLY; a store error that says the file is damaged puts the relay in read-only mode.
 */
export function guardStore<S extends Store> (store: S, mode: ReadOnlyMode, log: Logger): S {
  const seen = (name: string) => (err: unknown): never => {
    if (isCorruption(err)) {
      if (!mode.corrupt) log.error({ err }, 'the database is damaged: entering read-only mode')
      mode.enter(`the database is damaged: ${(err as Error).message ?? String(err)}`.slice(0, 300), true)
      throw READ_NAME.test(name) ? mode.readFailed() : mode.refusal()
    }
    throw err
  }
  const wrapped = new Map<PropertyKey, unknown>()
  return new Proxy(store, {
    get (target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown
      if (typeof v !== 'function' || key === 'close') return v
      let w = wrapped.get(key)
      if (w === undefined) {
        const name = String(key)
        const fn = v as (...args: unknown[]) => unknown
        w = function (this: unknown, ...args: unknown[]): unknown {
          if (mode.active && refusedWhenReadOnly(name, args)) return Promise.reject(mode.refusal())
          let r: unknown
          try { r = fn.apply(target, args) } catch (err) { return seen(name)(err) }
          if (r instanceof Promise) return r.catch(seen(name))
          // a read that streams (a file's chunks): a damaged page met on the way is seen too
          if (r !== null && typeof r === 'object' && typeof (r as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function') return guarded(r as AsyncIterable<unknown>, seen(name))
          return r
        }
        wrapped.set(key, w)
      }
      return w
    },
  })
}
