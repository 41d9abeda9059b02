/**
 * What the parts of the chat layer share: the store, the clock, the log, the relay's identity and
 * outlet, the audit log, and telling other relay nodes (the backplane).
 */
import type { Identity } from '@agentmesh/crypto'
import type { Store } from '@agentmesh/store'
import type { Logger } from '../log.ts'
import type { RelayOutlet } from '../relay.ts'
import type { BackplaneMessage, CacheKind } from '../backplane.ts'
import { actorOf, type Principal } from './types.ts'

export interface ChatContext {
  readonly store: Store
  readonly log: Logger
  readonly now: () => number
  /** the relay's own identity: it signs what it posts */
  readonly relay: Identity
  readonly out: RelayOutlet
  /** this node's name on the backplane */
  readonly node: string
  /** publishes to other nodes (a failure is logged: they catch up from the Store) */
  tell (msg: BackplaneMessage): void
  /** a cached row changed here: other nodes drop their copy */
  invalidate (kind: CacheKind, key: string): void
  audit (p: Principal | string, action: string, target: string | undefined, detail: Record<string, unknown>): Promise<void>
}

/** The audit row writer (metadata only; docs/protocol.md §17.8). */
export function auditTo (store: Store, now: () => number): ChatContext['audit'] {
  return async (p, action, target, detail) => {
    await store.appendAudit([{ at: now(), actor: typeof p === 'string' ? p : actorOf(p), action, ...(target === undefined ? {} : { target }), detail }])
  }
}
