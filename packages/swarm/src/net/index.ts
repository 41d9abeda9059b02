/**
 * @packageDocumentation
 * Swarm mode's network side (docs/protocol.md, "Swarm topics"): a swarm node over libp2p
 * gossipsub v1.1 that signs, validates, delivers each message once, detects partitions,
 * reconciles after them, and reports through OpenTelemetry.
 *
 * @example
 * ```ts
 * import { swarm } from '@agentmesh/swarm/net'
 * const s = await swarm({ keys: identity, bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3…'] })
 * s.join('weather')
 * await s.publish('weather', { t: 21 })
 * for await (const m of s.subscribe('weather')) console.log(m.author, m.seq) // m.body is untrusted
 * await s.close()
 * ```
 */
export { swarm } from './swarm.ts'
export type { Swarm, SwarmPeer, SwarmEvents, Published } from './swarm.ts'
export { SWARM_DEFAULTS, MAX_TOPIC_LENGTH } from './options.ts'
export type { SwarmInit, SwarmLimits } from './options.ts'
export type { SwarmDelivery, SubscribeOptions } from './topic-log.ts'
export { RECONCILE_PROTOCOL } from './reconcile-protocol.ts'
export { METER_NAME } from './telemetry.ts'
export { createPartitionDetector, REFERENCE_DECAY_PER_ROUND } from './partition.ts'
export type { PartitionEvent, PartitionDetector } from './partition.ts'
