// Bundles the plugin into dist/index.js: the AgentMesh SDK (client, crypto, protocol) inside, the
// OpenClaw SDK left to the gateway, better-sqlite3 replaced by a shim over node:sqlite (the gateway
// runs Node ≥ 24; a plugin installed from a path gets no dependency install, so nothing native).
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('..', import.meta.url))
await build({
  entryPoints: [`${dir}src/index.ts`],
  outfile: `${dir}dist/index.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: ['openclaw', 'openclaw/*', 'bufferutil', 'utf-8-validate'],
  alias: { 'better-sqlite3': `${dir}src/node-sqlite-shim.ts` },
  banner: { js: "import { createRequire as __amCreateRequire } from 'node:module'; const require = __amCreateRequire(import.meta.url);" },
  logLevel: 'warning',
})
