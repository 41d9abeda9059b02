/**
 * The operations features (docs/protocol.md §18–§21), in the order they are registered: each is a
 * factory over the same context (ops/context.ts) with its own routes, store slice and events.
 */
import type { RelayFeature } from '../feature.ts'
import type { OpsContext } from '../ops/context.ts'
import { filesFeature } from '../ops/files.ts'
import { updatesFeature } from '../ops/updates.ts'
import { healthFeature } from '../ops/health.ts'
import { catastropheFeature } from '../ops/catastrophe.ts'

export function opsFeatures (ctx: OpsContext): RelayFeature[] {
  // ---- files (§18)
  const files = filesFeature(ctx)
  // ---- system updates (§19)
  const updates = updatesFeature(ctx)
  // ---- catastrophe events and recovery (§20)
  const catastrophe = catastropheFeature(ctx)
  // ---- agent health and metrics (§21)
  const health = healthFeature(ctx, { catastropheSummary: catastrophe.summary })
  ctx.metrics.gauge('agentmesh_catastrophes_open', 'Catastrophe events not resolved (§20), and of them the critical ones', async () => {
    const s = await catastrophe.summary()
    const open = (await ctx.store.openCatastrophes(1000)).length
    return [{ labels: { severity: 'any' }, value: open }, { labels: { severity: 'critical' }, value: s.critical }]
  }, ['severity'])
  ctx.metrics.gauge('agentmesh_updates_active', 'System updates not expired (§19)', async () => (await ctx.store.listUpdates({ activeAt: ctx.now(), limit: 1000 })).length)
  return [files, updates, catastrophe, health]
}
