/**
 * @packageDocumentation
 * The web console's files, for whoever serves them: the relay (`/dashboard/`) and the CLI's
 * `agentmesh dashboard`. The UI itself (Preact + htm, `src/ui/`) is bundled by esbuild into
 * `dist/` (`index.html`, `app.js`, `app.css`) by the root build (`npm run build`, run by
 * `npm install`); nothing is fetched at run time.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The files the UI is made of, by name, with their content types. */
const TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
}

/**
 * Where the built files are. Resolved through the package (not this file's URL), so it holds when
 * this module is bundled into another file (the CLI's bundle).
 */
export function dashboardDist (): string {
  try {
    const req = createRequire(import.meta.url)
    return join(dirname(req.resolve('@agentmesh/dashboard/package.json')), 'dist')
  } catch {
    return join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')
  }
}

const cache = new Map<string, { body: Buffer, type: string }>()

/**
 * One of the UI's files by its path under the mount point (`''` or `index.html` is the page,
 * `app.js`, `app.css`), read once and kept; undefined for any other path or when the UI was not
 * built (`npm run build`).
 */
export function dashboardAsset (path: string): { body: Buffer, type: string } | undefined {
  const name = path === '' || path === '/' ? 'index.html' : path.replace(/^\//, '')
  const type = TYPES[name]
  if (type === undefined) return undefined
  const hit = cache.get(name)
  if (hit !== undefined) return hit
  const file = join(dashboardDist(), name)
  if (!existsSync(file)) return undefined
  const asset = { body: readFileSync(file), type }
  cache.set(name, asset)
  return asset
}

/** Whether the UI was built (its page is there). */
export function dashboardBuilt (): boolean {
  return existsSync(join(dashboardDist(), 'index.html'))
}

/**
 * The headers every console answer carries (the relay's and the CLI's): scripts and styles only
 * from the console's own files, no framing, no referrer, no content sniffing.
 */
export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
}

/** The header a console write carries with the session's CSRF token. */
export const CSRF_HEADER = 'x-agentmesh-csrf'
