/**
 * An agent's libp2p node: TCP and WebSockets, Noise, Yamux, identify and ping, with its AMID key
 * as its identity and bounded connections and streams. Discovery (DHT), circuit relay, hole
 * punching and WebRTC are added to this factory by the direct-links work.
 */
import './polyfill.ts'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import type { KeyPair } from '@agentmesh/crypto'
import { libp2pKey } from './identity.ts'
// ---- discovery, circuit relay, hole punching, WebRTC (issue 19: discovery.ts, ice.ts)
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { webRTC } from '@libp2p/webrtc'
import { BoundedDatastore, DEFAULT_MAX_DHT_RECORDS, DEFAULT_MAX_DHT_RECORD_BYTES, DHT_PROTOCOL, dhtModeOf } from './discovery.ts'
import type { IceServerInit } from './ice.ts'

/** Defaults of the bounds a node keeps (each can be set in `P2PNodeOptions.limits`). */
export const P2P_DEFAULTS = Object.freeze({
  /** open connections of one agent's node, in and out */
  maxConnections: 64,
  /** streams one connection may open towards us at once */
  maxInboundStreams: 32,
  /** streams we open on one connection at once */
  maxOutboundStreams: 32,
  /** DHT records and provider entries this node stores for others (docs/protocol.md §30.2) */
  maxDhtRecords: DEFAULT_MAX_DHT_RECORDS,
  /** the largest DHT value this node stores for others, bytes */
  maxDhtRecordBytes: DEFAULT_MAX_DHT_RECORD_BYTES,
  /** how long one dial may take, ms: a WebRTC dial signals over a circuit, then runs ICE */
  dialTimeoutMs: 10_000,
  /** circuit-relay reservations this node asks relays for at once */
  maxRelayReservations: 4,
})

export interface P2PNodeOptions {
  /** the agent's key pair (its AMID key) */
  readonly keys: Pick<KeyPair, 'secretKey'>
  /** multiaddrs to listen on (default: TCP on 127.0.0.1, any port) */
  readonly listen?: readonly string[]
  readonly limits?: Partial<typeof P2P_DEFAULTS>
  /** DHT entry points: multiaddrs ending in /p2p/<peer id> (AGENTMESH_P2P_BOOTSTRAP; a relay's from GET /api/v1/info). @default none */
  readonly bootstrap?: readonly string[]
  /** 'server' answers DHT queries and stores records; 'client' only asks. @default server when it listens on a dialable (not circuit-only) address */
  readonly dhtMode?: 'client' | 'server'
  /** Keep private and loopback addresses in DHT answers (a LAN, tests). @default false: public addresses only */
  readonly dhtPrivateAddresses?: boolean
  /** ICE servers of the WebRTC transport (`iceServersFromEnv`). @default none: host candidates only, no STUN server is contacted */
  readonly iceServers?: readonly IceServerInit[]
  /** 'relay': connect WebRTC through a TURN server only (hides both agents' addresses from each other). @default 'all' */
  readonly iceTransportPolicy?: 'all' | 'relay'
  /** Gather ICE candidates on this local address only (e.g. 127.0.0.1 in tests). @default every interface */
  readonly iceBindAddress?: string
  /** Add the WebRTC transport. @default true when iceServers are given or a listen address holds /webrtc */
  readonly webrtc?: boolean
}

export type AgentNodeServices = { identify: Identify, ping: Ping, dht: KadDHT, dcutr: unknown }
export type AgentNode = Libp2p<AgentNodeServices>

export async function createAgentNode (opts: P2PNodeOptions): Promise<AgentNode> {
  const limits = { ...P2P_DEFAULTS, ...opts.limits }
  const listen = [...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0'])]
  const withWebRTC = opts.webrtc ?? (opts.iceServers !== undefined || listen.some(a => a.includes('/webrtc')))
  return await createLibp2p({
    privateKey: await libp2pKey(opts.keys),
    addresses: { listen },
    datastore: new BoundedDatastore({ maxRecords: limits.maxDhtRecords, maxRecordBytes: limits.maxDhtRecordBytes }),
    transports: [
      tcp(), webSockets(),
      circuitRelayTransport({ maxReservationQueueLength: limits.maxRelayReservations }),
      ...(withWebRTC ? [webRTC({ rtcConfiguration: { iceServers: [...(opts.iceServers ?? [])] as never, ...(opts.iceBindAddress === undefined ? {} : { bindAddress: opts.iceBindAddress }), ...(opts.iceTransportPolicy === undefined ? {} : { iceTransportPolicy: opts.iceTransportPolicy }) } })] : []),
    ],
    ...(opts.bootstrap === undefined || opts.bootstrap.length === 0 ? {} : { peerDiscovery: [bootstrap({ list: [...opts.bootstrap], timeout: 0 })] }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: limits.maxConnections, dialTimeout: limits.dialTimeoutMs, addressDialTimeout: limits.dialTimeoutMs },
    services: {
      identify: identify({ maxInboundStreams: limits.maxInboundStreams, maxOutboundStreams: limits.maxOutboundStreams }),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: dhtModeOf(opts.dhtMode, listen) === 'client',
        peerInfoMapper: opts.dhtPrivateAddresses === true ? passthroughMapper : removePrivateAddressesMapper,
      }),
      dcutr: dcutr(),
    },
  })
}
