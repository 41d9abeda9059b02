/**
 * For sibling packages (the relay): what the registry and the relay's circuit relay need, without
 * the agent node's transports (WebRTC loads a native module).
 */
export { openPeerRecord, MAX_PEER_RECORD_ADDRS, MAX_PEER_RECORD_BYTES } from './discovery.ts'
export type { OpenedPeerRecord } from './discovery.ts'
export { createRelayNode, isPrivateAddr } from './relay-node.ts'
export type { RelayNode, RelayNodeOptions } from './relay-node.ts'
export { amidFromPeerId, peerIdFromAmid } from './identity.ts'
