// Bundles the web console (src/ui, Preact + htm) into dist/: index.html, app.js, app.css. Called by
// the root build (scripts/build-cli.mjs, run by `npm install`); no CDN, nothing fetched at run time.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export async function buildDashboard ({ minify = true } = {}) {
  const dir = fileURLToPath(new URL('.', import.meta.url))
  mkdirSync(`${dir}dist`, { recursive: true })
  await build({
    entryPoints: [`${dir}src/ui/main.ts`],
    outfile: `${dir}dist/app.js`,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify,
    legalComments: 'none',
    logLevel: 'warning',
  })
  copyFileSync(`${dir}src/ui/index.html`, `${dir}dist/index.html`)
  await build({ entryPoints: [`${dir}src/ui/app.css`], outfile: `${dir}dist/app.css`, bundle: true, minify, logLevel: 'warning' })
  copyFileSync(`${dir}src/ui/favicon.svg`, `${dir}dist/favicon.svg`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildDashboard()
