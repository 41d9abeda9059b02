/**
 * Sealed records for an application over a connection: JSON values kept in the agent's state
 * (state.db in its home), each sealed with the state's key like the sessions and the sent log
 * (e2ee.ts `saveRecord`), so what an application keeps there (the owner's console keeps its
 * direct-message history, `agentmesh dashboard`) is as protected as the keys. One `kind` per use;
 * kinds an application names start with `app.` so they never meet the SDK's own.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { E2ee } from './e2ee.ts'
import type { Connection } from './types.ts'

export interface SealedRecords<T> {
  get (key: string): T | undefined
  put (key: string, value: T, at?: number): void
  /** True when it was there. */
  delete (key: string): boolean
  /** Every record opened, oldest first. */
  list (): Array<{ key: string, value: T, at: number }>
  /** Keys and times, oldest first, without opening the records. */
  keys (): Array<{ key: string, at: number }>
  count (): number
  /** Runs `fn` as one atomic step of the agent's state (synchronous). */
  atomically<R> (fn: () => R): R
}

const e2eeOf = new WeakMap<object, E2ee>()

/** The connection ties itself to its end-to-end layer (connection.ts). */
export function attachSealedRecords (conn: object, e2ee: E2ee): void { e2eeOf.set(conn, e2ee) }

/** The end-to-end layer of a connection made by connect() (the SDK's own features keep their records there: swarm-topic.ts). */
export function e2eeOfConnection (conn: object): E2ee | undefined { return e2eeOf.get(conn) }

const KIND = /^app\.[a-z0-9][a-z0-9._-]{0,62}$/

/** The sealed records of one kind (`app.…`) in the connection's state. */
export function sealedRecords<T> (conn: Connection, kind: string): SealedRecords<T> {
  if (!KIND.test(kind)) throw new AgentMeshError(ErrorCode.InvalidArgument, `a sealed record kind is "app." and 1 to 63 of a-z 0-9 . _ -, got "${kind.slice(0, 80)}"`)
  const e2ee = e2eeOf.get(conn)
  if (e2ee === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection was opened without end-to-end encryption: it has no sealed state')
  return {
    get: (key) => e2ee.record<T>(kind, key),
    put: (key, value, at) => { e2ee.saveRecord(kind, key, value, at) },
    delete: (key) => e2ee.dropRecord(kind, key),
    list: () => e2ee.records<T>(kind),
    keys: () => e2ee.recordKeys(kind),
    count: () => e2ee.countRecords(kind),
    atomically: (fn) => e2ee.atomically(fn),
  }
}
