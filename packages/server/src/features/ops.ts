/**
 * The operations features (docs/protocol.md §18–§21), in the order they are registered: each is a
 * factory over the same context (ops/context.ts) with its own routes, store slice and events.
 */
import type { RelayFeature } from '../feature.ts'
import type { OpsContext } from '../ops/context.ts'
import { filesFeature } from '../ops/files.ts'
import { updatesFeature } from '../ops/updates.ts'
import { healthFeature } from '../ops/health.ts'

export function opsFeatures (ctx: OpsContext): RelayFeature[] {
  // ---- files (§18)
  const files = filesFeature(ctx)
  // ---- system updates (§19)
  const updates = updatesFeature(ctx)
  // ---- catastrophe events and recovery (§20)
  // ---- agent health and metrics (§21)
  const health = healthFeature(ctx)
  return [files, updates, health]
}
