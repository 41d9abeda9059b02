/**
 * The registry (profiles, prekeys, certificates: registry.ts) and reputation (reputation.ts) as
 * features. Reputation checks signed requests with the registry's helpers, so it is given them.
 */
import type { Store } from '@agentmesh/store'
import type { RateLimit } from '@agentmesh/protocol/internal'
import type { RelayFeature } from '../feature.ts'
import { registryRoutes, type RegistryHelpers } from '../registry.ts'
import { DEFAULT_REPUTATION, reputationRoutes, type ReputationOptions } from '../reputation.ts'

export interface RegistryFeature extends RelayFeature {
  /** The signed-request check and trust tiers, once routes() ran. */
  helpers (): RegistryHelpers
}

export function registryFeature (c: { store: Store, now: () => number, trustRoots: readonly string[], readLimit?: RateLimit }): RegistryFeature {
  let helpers: RegistryHelpers | undefined
  return {
    name: 'registry',
    routes (app) { helpers = registryRoutes(app, c.store, { trustRoots: c.trustRoots, now: c.now, ...(c.readLimit === undefined ? {} : { readLimit: c.readLimit }) }) },
    helpers () {
      if (helpers === undefined) throw new Error('the registry feature has no routes yet: its helpers exist once routes() ran')
      return helpers
    },
  }
}

export function reputationFeature (c: { store: Store, now: () => number, options?: ReputationOptions, registry: RegistryFeature }): RelayFeature {
  return {
    name: 'reputation',
    routes (app) { reputationRoutes(app, { store: c.store, now: c.now, options: c.options ?? { ...DEFAULT_REPUTATION }, ...c.registry.helpers() }) },
  }
}
