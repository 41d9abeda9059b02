/**
 * A real browser for the console's tests: playwright-core driving Debian's Chromium
 * (`/usr/bin/chromium`, or AGENTMESH_CHROMIUM); never a browser download. `.ci/run` installs
 * `chromium` with apt when it is missing. Shared with the owner console's tests.
 *
 * @example
 * ```ts
 * const browser = await launchBrowser()
 * const page = await browser.newPage()
 * await page.goto(relay.url + '/dashboard/')
 * await screenshot(page, 'chat')
 * await browser.close()
 * ```
 */
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { dashboardBuilt } from '@agentmesh/dashboard'

export const CHROMIUM = process.env.AGENTMESH_CHROMIUM ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage']

/** Why the browser tests cannot run here (no Chromium), or undefined. */
export function browserMissing (): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set AGENTMESH_CHROMIUM)`
}

export async function launchBrowser (): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 })
}

/** Builds the console's files when they are not there yet (a test run without `npm run build`). */
export async function ensureDashboardBuilt (): Promise<void> {
  if (dashboardBuilt()) return
  const { buildDashboard } = await import('../build.mjs')
  await buildDashboard()
}

/**
 * Where screenshots go: AGENTMESH_ARTIFACTS, else a directory under the system's temp dir.
 * With AGENTMESH_SCREENSHOTS=docs, the README's images (docs/images/dashboard-*.png) are written too.
 */
export function artifactsDir (): string {
  const dir = process.env.AGENTMESH_ARTIFACTS ?? join(tmpdir(), 'agentmesh-dashboard-artifacts')
  mkdirSync(dir, { recursive: true })
  return dir
}

export async function screenshot (page: Page, name: string): Promise<string> {
  const file = join(artifactsDir(), `dashboard-${name}.png`)
  await page.screenshot({ path: file })
  if (process.env.AGENTMESH_SCREENSHOTS === 'docs') {
    const docs = new URL('../../../docs/images/', import.meta.url).pathname
    mkdirSync(docs, { recursive: true })
    await page.screenshot({ path: join(docs, `dashboard-${name}.png`) })
  }
  return file
}
