/**
 * The web UI's files, from the dashboard package (`@agentmesh/dashboard`, built into its `dist/` by
 * `npm run build`): `dashboardAsset(path)` answers `{ body, type }` for a file, undefined for none
 * (or when the UI was not built: the console then serves its API only).
 */
import { dashboardAsset } from '@agentmesh/dashboard'

export type DashboardAsset = (path: string) => { body: string | Uint8Array, type: string } | undefined | Promise<{ body: string | Uint8Array, type: string } | undefined>

export async function loadDashboardAssets (): Promise<DashboardAsset | undefined> {
  return dashboardAsset
}
