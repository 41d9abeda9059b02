/**
 * The operations features (docs/protocol.md §18–§21), in the order they are registered: each is a
 * factory over the same context (ops/context.ts) with its own routes, store slice and events.
 */
import type { RelayFeature } from '../feature.ts'
import type { OpsContext } from '../ops/context.ts'
import { catastropheFeature } from '../ops/catastrophe.ts'

export function opsFeatures (ctx: OpsContext): RelayFeature[] {
  // ---- files (§18)
  // ---- system updates (§19)
  // ---- catastrophe events and recovery (§20)
  const catastrophe = catastropheFeature(ctx)
  // ---- agent health and metrics (§21)
  return [catastrophe]
}
