/**
 * The relay's libp2p node (docs/protocol.md §30.3): a circuit relay (v2) and DHT bootstrap for the
 * agents registered on that relay, and for no one else — a connection gater refuses every peer
 * whose AMID `isAllowed` does not accept, before any protocol (reservation, hop, DHT) runs. Its
 * identity is the relay's own Ed25519 key; every bound is given by the relay's options.
 */
import './polyfill.ts'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { amidFromPeerId } from './identity.ts'
import { BoundedDatastore, DHT_PROTOCOL, DEFAULT_MAX_DHT_RECORDS, DEFAULT_MAX_DHT_RECORD_BYTES } from './discovery.ts'

export interface RelayNodeOptions {
  /** the relay's Ed25519 seed (32 bytes): its libp2p identity */
  readonly secretKey: Uint8Array
  readonly listen: readonly string[]
  /** the addresses agents reach it at, when not those it listens on @default the listening ones */
  readonly announce?: readonly string[]
  /** whether this AMID may use the relay (registered on it): asked for every connection */
  readonly isAllowed: (amid: string) => Promise<boolean>
  readonly maxReservations: number
  readonly reservationTtlMs: number
  readonly circuitDurationMs: number
  readonly circuitDataBytes: number
  readonly maxConnections: number
  /** keep private and loopback addresses in DHT answers @default true when every listening address is loopback or private */
  readonly dhtPrivateAddresses?: boolean
}

export type RelayNodeServices = { identify: Identify, ping: Ping, relay: CircuitRelayService, dht: KadDHT }
export type RelayNode = Libp2p<RelayNodeServices>

/** Whether a multiaddr's host is loopback or a private (RFC 1918, ULA, link-local) address. */
export function isPrivateAddr (ma: string): boolean {
  const m = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)/.exec(ma)
  if (m === null) return false
  const host = m[2]!
  if (m[1] === 'ip4') return /^(127\.|10\.|192\.168\.|169\.254\.|0\.0\.0\.0$)/.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host)
  if (m[1] === 'ip6') return host === '::1' || host === '::' || /^f[cd]/i.test(host) || /^fe80:/i.test(host)
  return host === 'localhost'
}

export async function createRelayNode (opts: RelayNodeOptions): Promise<RelayNode> {
  const allowed = async (peer: PeerId): Promise<boolean> => {
    const amid = amidFromPeerId(peer)
    return amid !== undefined && await opts.isAllowed(amid)
  }
  const privateOnly = opts.listen.every(isPrivateAddr)
  return await createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', opts.secretKey),
    addresses: { listen: [...opts.listen], ...(opts.announce === undefined ? {} : { announce: [...opts.announce] }) },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    datastore: new BoundedDatastore({ maxRecords: DEFAULT_MAX_DHT_RECORDS, maxRecordBytes: DEFAULT_MAX_DHT_RECORD_BYTES }),
    connectionManager: { maxConnections: opts.maxConnections },
    // the peer's key is known once Noise finished: an AMID not registered here gets nothing
    connectionGater: {
      denyInboundEncryptedConnection: async (peer) => !await allowed(peer),
      denyOutboundEncryptedConnection: async (peer) => !await allowed(peer),
    },
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: opts.maxReservations,
          reservationTtl: opts.reservationTtlMs,
          applyDefaultLimit: true,
          defaultDurationLimit: opts.circuitDurationMs,
          defaultDataLimit: BigInt(opts.circuitDataBytes),
        },
      }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: (opts.dhtPrivateAddresses ?? privateOnly) ? passthroughMapper : removePrivateAddressesMapper,
      }),
    },
  })
}
