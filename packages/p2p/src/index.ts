export { libp2pKey, peerIdFromAmid, amidFromPeerId } from './identity.ts'
export { createAgentNode, P2P_DEFAULTS } from './node.ts'
export type { AgentNode, AgentNodeServices, P2PNodeOptions } from './node.ts'
export { DIRECT_PROTOCOL, DIRECT_DEFAULTS, DirectSender, serveDirect, decodeSend, decodeAnswer } from './direct.ts'
export type { DirectAnswer, DirectInit, DirectLimits, DirectReceiver, DirectResult } from './direct.ts'
export {
  findPeer, bootstrapFromEnv, relayP2pAddrs, MAX_BOOTSTRAP_PEERS, sealPeerRecord, openPeerRecord, publishPeerRecord, publishableAddrs, registryLookup, dhtModeOf, BoundedDatastore,
  DHT_PROTOCOL, MAX_PEER_RECORD_ADDRS, MAX_PEER_RECORD_BYTES, DEFAULT_FIND_PEER_TIMEOUT_MS,
} from './discovery.ts'
export type { DiscoverySource, FoundPeer, FindPeerOptions, OpenedPeerRecord, RegistryLookup } from './discovery.ts'
export { iceServersFromEnv, parseIceServers, IceServer, MAX_ICE_SERVERS, MAX_ICE_URLS } from './ice.ts'
export type { IceEnvOptions, IceServerInit } from './ice.ts'
export { createRelayNode, isPrivateAddr } from './relay-node.ts'
export type { RelayNode, RelayNodeOptions, RelayNodeServices } from './relay-node.ts'
