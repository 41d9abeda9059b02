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

/** Defaults of the bounds a node keeps (each can be set in `P2PNodeOptions.limits`). */
export const P2P_DEFAULTS = Object.freeze({
  /** open connections of one agent's node, in and out */
  maxConnections: 64,
  /** streams one connection may open towards us at once */
  maxInboundStreams: 32,
  /** streams we open on one connection at once */
  maxOutboundStreams: 32,
})

export interface P2PNodeOptions {
  /** the agent's key pair (its AMID key) */
  readonly keys: Pick<KeyPair, 'secretKey'>
  /** multiaddrs to listen on (default: TCP on 127.0.0.1, any port) */
  readonly listen?: readonly string[]
  readonly limits?: Partial<typeof P2P_DEFAULTS>
}

export type AgentNodeServices = { identify: Identify, ping: Ping }
export type AgentNode = Libp2p<AgentNodeServices>

export async function createAgentNode (opts: P2PNodeOptions): Promise<AgentNode> {
  const limits = { ...P2P_DEFAULTS, ...opts.limits }
  return await createLibp2p({
    privateKey: await libp2pKey(opts.keys),
    addresses: { listen: [...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0'])] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: limits.maxConnections },
    services: {
      identify: identify({ maxInboundStreams: limits.maxInboundStreams, maxOutboundStreams: limits.maxOutboundStreams }),
      ping: ping(),
    },
  })
}
