/**
 * One shape for what the relay does besides moving envelopes: a feature registers its HTTP routes,
 * subscribes to the core's events and runs its timers in start(), and undoes that in stop(). It is
 * built from the components it needs (nats.js `jetstream(nc)`, libp2p services): a new one is added
 * with `createRelay(init, { features: [myFeature] })`, without editing the core.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Hono } from 'hono'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'
import type { EventBus } from './events.ts'
import type { RelayOutlet, SendGate } from './relay.ts'
import type { RelayOptions } from './options.ts'
import type { Backplane } from './backplane.ts'

export interface RelayFeature {
  /** Names the feature in logs. */
  readonly name: string
  /** Adds the feature's HTTP routes (called once, before the relay listens). */
  routes? (app: Hono): void
  /** Subscribes to events, starts timers (called once the relay is assembled, before it listens). */
  start? (): Promise<void> | void
  /** Unsubscribes and stops timers (called, in reverse order, before the core commits and closes). */
  stop? (): Promise<void> | void
  /** Its say over agents' sends (WebSocket and REST message posts), asked by the core per connection. */
  readonly sendGate?: SendGate
  /** Takes a WebSocket upgrade on a path of its own (the console's events); answers false to leave it to the relay. */
  upgrade? (req: IncomingMessage, socket: Duplex, head: Buffer): boolean
}

/** What a feature may be given. */
export interface FeatureComponents {
  store: Store
  logger: Logger
  /** the core's events ('message:stored', 'agent:online'…) */
  events: EventBus
  /** posting the relay's own items, writing events to connections */
  relay: RelayOutlet
  backplane: Backplane
  options: Readonly<RelayOptions>
  now: () => number
}

/** Builds a feature from the relay's components (what `RelayComponents.features` lists). */
export type FeatureFactory = (components: FeatureComponents) => RelayFeature
