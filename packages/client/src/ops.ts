/**
 * The operations side of an agent in one object (docs/protocol.md §18–§21), as the plan names it:
 * `ops(conn).onUpdate(fn)` / `.acknowledge(id, status)`, `.onCatastrophe(fn)`, `.heartbeat()`, and
 * the files, updates, catastrophe and health helpers themselves. Each is a function over the
 * connection (`files(conn)`, `updates(conn)`, `catastrophes(conn)`, `health(conn)`); this only
 * gathers them, made once per connection.
 */
import type { Connection } from './types.ts'
import { files, type Files } from './ops/files.ts'
import { updates, type SystemUpdate, type UpdateAck, type UpdateAckStatus, type Updates } from './ops/updates.ts'
import { catastrophes, type CatastropheAlert, type Catastrophes } from './ops/catastrophe.ts'
import { health, type Health, type HealthReport, type HeartbeatAnswer } from './ops/health.ts'

export interface Ops {
  readonly files: Files
  readonly updates: Updates
  readonly catastrophes: Catastrophes
  readonly health: Health
  /** Runs `handler` for each system update told to this agent (each once per status), the pending ones first; answers a function that stops it. */
  onUpdate (handler: (u: SystemUpdate) => unknown): () => void
  /** Answers a system update for this agent: accepted, rejected or completed. */
  acknowledge (updateId: string, status: UpdateAckStatus, opts?: { notes?: string, agentVersion?: string }): Promise<UpdateAck>
  /** Runs `handler` for each catastrophe alert (the open ones heard on connect first); answers a function that stops it. */
  onCatastrophe (handler: (alert: CatastropheAlert) => void): () => void
  /** Sends one heartbeat now; `health.start()` sends them periodically. */
  heartbeat (report?: HealthReport): Promise<HeartbeatAnswer>
}

const made = new WeakMap<Connection, Ops>()

export function ops (conn: Connection): Ops {
  const known = made.get(conn)
  if (known !== undefined) return known
  const u = updates(conn)
  const c = catastrophes(conn)
  const h = health(conn)
  const o: Ops = {
    files: files(conn),
    updates: u,
    catastrophes: c,
    health: h,
    onUpdate: (handler) => u.onUpdate(handler),
    acknowledge: async (id, status, opts) => await u.acknowledge(id, status, opts),
    onCatastrophe: (handler) => c.onCatastrophe(handler),
    heartbeat: async (report) => await h.heartbeat(report),
  }
  made.set(conn, o)
  return o
}
