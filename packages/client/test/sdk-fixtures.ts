/**
 * What the SDK-level tests share: agents with an in-memory state and the warnings they got,
 * connections opened for them, and the relays and connections closed after the suite; readers,
 * whose messages are read in the background.
 */
import { after } from 'node:test'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, type ClientState, type Connection, type Message } from '@agentmesh/client'
import type { AgentMeshError } from '@agentmesh/protocol'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'

export interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[] }

/** The codes of an agent's warnings, in order. */
export const codes = (a: Agent): string[] => a.warnings.map(w => w.code)

/** Call inside a `describe`: its `after` closes every connection opened and every relay in `relays`. */
export function sdkHarness (): {
  relays: Relay[]
  agent: (name: string) => Agent
  open: (relay: Relay, a: Agent, opts?: Parameters<typeof connect>[0]) => Promise<Connection>
} {
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
  })
  return {
    relays,
    agent: (name) => ({ id: createIdentity(name), state: memoryState(), warnings: [] }),
    open: async (relay, a, opts = {}) => {
      const c = await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) }, ...opts })
      conns.push(c)
      return c
    },
  }
}

/** An agent whose messages a test reads in the background (`got`), with its connection. */
export interface Reader extends Agent {
  got: Message[]
  conn?: Connection
  stop?: () => Promise<void>
  /** called for each message as it arrives */
  onMessage?: (m: Message) => void
}

/** Keeps reading a reader's messages in the background (knock answers are handled on the way). */
export function pump (a: Reader, c: Connection): void {
  const ac = new AbortController()
  const done = (async () => { try { for await (const m of c.messages({ signal: ac.signal })) { a.got.push(m); a.onMessage?.(m) } } catch { /* aborted */ } })()
  a.stop = async () => { ac.abort(); await done }
}

/**
 * Call inside a `describe`: relays started on demand and readers connected to them (each
 * connection read in the background); its `after` stops the readers, closes their connections and
 * the relays. `defaults` go into every `connect()`.
 */
export function readersHarness (defaults: Partial<Parameters<typeof connect>[0]> = {}): {
  start: () => Promise<Relay>
  agent: (name: string, id?: Identity) => Reader
  open: (relay: Relay, a: Reader, opts?: Parameters<typeof connect>[0]) => Promise<Connection>
  /** reads a connection opened by the test itself for `a` */
  adopt: (a: Reader, c: Connection) => Connection
} {
  const relays: Relay[] = []
  const readers: Reader[] = []
  after(async () => {
    for (const a of readers) { await a.stop?.(); await a.conn?.close() }
    for (const r of relays) await r.close().catch(() => {})
  })
  const adopt = (a: Reader, c: Connection): Connection => {
    a.conn = c
    pump(a, c)
    return c
  }
  return {
    start: async () => {
      const r = await createRelay({ port: 0, logger: silentLogger })
      relays.push(r)
      return r
    },
    agent: (name, id) => {
      const a: Reader = { id: id ?? createIdentity(name), state: memoryState(), warnings: [], got: [] }
      readers.push(a)
      return a
    },
    open: async (relay, a, opts = {}) => adopt(a, await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) }, ...defaults, ...opts })),
    adopt,
  }
}
