export { libp2pKey, peerIdFromAmid, amidFromPeerId } from './identity.ts'
export { createAgentNode, P2P_DEFAULTS } from './node.ts'
export type { AgentNode, AgentNodeServices, P2PNodeOptions } from './node.ts'
