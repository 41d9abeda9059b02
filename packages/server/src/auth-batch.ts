/**
 * The Store bookkeeping of the authentications of one turn of the event loop, in one
 * `agentsOnline` call: agents that connect together (a relay restart, a fleet starting) share one
 * SQLite commit instead of three commits each (registration, the global room's row, delivery).
 */
import type { AgentOnline, AgentOnlineResult, Store } from '@agentmesh/store'

/** Authentications one Store call takes at most. @default 256 */
export const MAX_AUTH_BATCH = 256

interface Waiting { item: AgentOnline, resolve: (r: AgentOnlineResult) => void, reject: (err: unknown) => void }

export class AuthBatch {
  readonly #store: Pick<Store, 'agentsOnline'>
  readonly #max: number
  #queue: Waiting[] = []
  #scheduled = false

  constructor (store: Pick<Store, 'agentsOnline'>, max = MAX_AUTH_BATCH) {
    this.#store = store
    this.#max = max
  }

  /** Resolves once `item` is stored, with the agent's result; rejects when the batch it was in failed. */
  add (item: AgentOnline): Promise<AgentOnlineResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        // after the I/O of this turn: the other auth frames read with this one join the batch
        setImmediate(() => { this.#flush() })
      }
    })
  }

  #flush (): void {
    this.#scheduled = false
    const queue = this.#queue
    this.#queue = []
    for (let i = 0; i < queue.length; i += this.#max) {
      const part = queue.slice(i, i + this.#max)
      let pending: Promise<AgentOnlineResult[]>
      try {
        pending = this.#store.agentsOnline(part.map(w => w.item))
      } catch (err) {
        pending = Promise.reject(err)
      }
      pending.then((results) => {
        part.forEach((w, k) => { w.resolve(results[k]!) })
      }, (err: unknown) => {
        for (const w of part) w.reject(err)
      })
    }
  }
}
