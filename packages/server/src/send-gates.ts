/**
 * Send gates (RelayFeature.sendGate): a feature's say over an agent's sends, and the per-connection
 * cache of their verdicts the core keeps so its send path compares a number.
 */
import type { AgentMeshError } from '@agentmesh/protocol'

/**
 * A feature's say over an agent's sends (a required software version after its deadline, §19; a
 * read-only relay): asked at a connection's first send and again only when `generation` changed
 * (the verdicts are kept on the connection), so the send path compares a number and, for a
 * connection with a verdict, a time. WebSocket sends and REST message posts (asked each time:
 * not a hot path) are refused with the verdict's error from its `from` on.
 */
export interface SendGate {
  /** Changes (grows) whenever a verdict may have changed: an update created, an agent's version reported. */
  readonly generation: number
  /** What will refuse this agent's sends, from when; `agentVersion` is what its connection reported (none over REST). */
  verdict (amid: string, agentVersion: string | undefined): SendVerdict | undefined
  /** The clock `from` is on (the features' clock). */
  now (): number
}

/** A refusal of an agent's sends from a time on (ms on the gate's clock; 0: at once). */
export interface SendVerdict {
  from: number
  error (): AgentMeshError
}

/** What refuses `amid`'s sends now by these gates (no reported version: a REST post), if anything. */
export function refusalNow (gates: readonly SendGate[], amid: string): AgentMeshError | undefined {
  for (const g of gates) {
    const v = g.verdict(amid, undefined)
    if (v !== undefined && g.now() >= v.from) return v.error()
  }
  return undefined
}

/** One connection's verdicts, computed again only when the sum of the gates' generations moved (each only grows). */
export class GateVerdicts {
  private generation = -1
  private verdicts: Array<{ v: SendVerdict, g: SendGate }> = []

  /** What refuses this connection's send now, if anything. */
  refusal (gates: readonly SendGate[], amid: string, agentVersion: string | undefined): AgentMeshError | undefined {
    if (gates.length === 0) return undefined
    let gen = 0
    for (const g of gates) gen += g.generation
    if (gen !== this.generation) {
      this.generation = gen
      this.verdicts = []
      for (const g of gates) {
        const v = g.verdict(amid, agentVersion)
        if (v !== undefined) this.verdicts.push({ v, g })
      }
    }
    for (const { v, g } of this.verdicts) if (g.now() >= v.from) return v.error()
    return undefined
  }
}
