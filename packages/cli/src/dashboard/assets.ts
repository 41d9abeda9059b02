/**
 * The web UI's files, from the dashboard package (`@agentmesh/dashboard`, built into its `dist/` by
 * `npm run build`): its `dashboardAsset(path)` answers `{ body, type }` for a file, undefined for
 * none. Loaded when the console starts; without the package the console serves its API only.
 */
export type DashboardAsset = (path: string) => { body: string | Uint8Array, type: string } | undefined | Promise<{ body: string | Uint8Array, type: string } | undefined>

export async function loadDashboardAssets (): Promise<DashboardAsset | undefined> {
  const name = '@agentmesh/dashboard' // not bundled into the CLI: its files sit next to it
  try {
    const m = await import(name) as { dashboardAsset?: unknown }
    return typeof m.dashboardAsset === 'function' ? m.dashboardAsset as DashboardAsset : undefined
  } catch {
    return undefined
  }
}
