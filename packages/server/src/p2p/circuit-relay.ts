/**
 * The relay as a libp2p circuit relay and DHT bootstrap (docs/protocol.md §30.3), opt-in with
 * `p2pListen`. Two agents that cannot dial each other connect through it (`/p2p-circuit`) and try
 * to upgrade to a direct connection (DCUtR hole punching, or WebRTC signalled over the circuit).
 * Only agents registered on this relay get anything: the node's connection gater refuses every
 * other peer once Noise has proved its key. Reservations, each circuit's time and bytes and the
 * node's connections are bounded by the relay's options.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { RelayInfo } from '@agentmesh/protocol'
import type { RelayNode } from '@agentmesh/p2p/internal'
import type { FeatureComponents, RelayFeature } from '../feature.ts'

export type RelayP2pInfo = NonNullable<RelayInfo['p2p']>

export interface CircuitRelayFeature extends RelayFeature {
  /** What GET /api/v1/info says of it; undefined while off. */
  info (): RelayP2pInfo | undefined
}

const split = (s: string | undefined): string[] | undefined => s === undefined ? undefined : s.split(',').map(x => x.trim()).filter(x => x !== '')

export function circuitRelayFeature (c: Pick<FeatureComponents, 'store' | 'logger' | 'options'>): CircuitRelayFeature {
  const o = c.options
  let node: RelayNode | undefined
  return {
    name: 'circuit-relay',
    async start () {
      const listen = split(o.p2pListen)
      if (listen === undefined) return
      const { createRelayNode } = await import('@agentmesh/p2p/internal')
      const secret = new Uint8Array(Buffer.from(await c.store.relaySecret(), 'base64url'))
      let started: RelayNode
      try {
        started = await createRelayNode({
          secretKey: secret,
          listen,
          ...(o.p2pAnnounce === undefined ? {} : { announce: split(o.p2pAnnounce)! }),
          // registered on this relay; the store answers for every node of a cluster
          isAllowed: async (amid) => await c.store.getAgent(amid) !== undefined,
          maxReservations: o.p2pMaxReservations,
          reservationTtlMs: o.p2pReservationTtlMs,
          circuitDurationMs: o.p2pCircuitDurationMs,
          circuitDataBytes: o.p2pCircuitDataBytes,
          maxConnections: o.p2pMaxConnections,
        })
      } catch (err) {
        throw new AgentMeshError(ErrorCode.InvalidConfig, `relay option p2pListen: the libp2p node did not start on ${listen.join(', ')}: ${(err as Error).message}`, { cause: err })
      }
      node = started
      c.logger.info({ peerId: started.peerId.toString(), addrs: started.getMultiaddrs().map(String) }, 'circuit relay and DHT bootstrap listening (registered agents only)')
    },
    async stop () {
      const n = node
      node = undefined
      await n?.stop()
    },
    info () {
      if (node === undefined) return undefined
      return {
        peer_id: node.peerId.toString(),
        addrs: node.getMultiaddrs().map(String),
        max_reservations: o.p2pMaxReservations,
        reservation_ttl_ms: o.p2pReservationTtlMs,
        circuit_duration_ms: o.p2pCircuitDurationMs,
        circuit_data_bytes: o.p2pCircuitDataBytes,
      }
    },
  }
}
