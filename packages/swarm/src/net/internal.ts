/** For tests and the real-node runner: the libp2p node and gossipsub behind a swarm. */
export { internals } from './swarm.ts'
export type { SwarmInternals } from './swarm.ts'
