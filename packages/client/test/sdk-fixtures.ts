/**
 * What the SDK-level E2EE tests share: agents with an in-memory state and the warnings they got,
 * connections opened for them, and the relays and connections closed after the suite.
 */
import { after } from 'node:test'
import { createIdentity, type Identity } from '@agentmesh/crypto'
import { connect, memoryState, type ClientState, type Connection } from '@agentmesh/client'
import type { AgentMeshError } from '@agentmesh/protocol'
import type { Relay } from '@agentmesh/server'

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
