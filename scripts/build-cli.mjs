// Bundles the CLI (and the relay it runs) into one ESM file so that `agentmesh` starts fast:
// loading the TypeScript sources through tsx costs ~2 ms per module. Runs on `npm install`
// (the root `prepare` script). packages/cli/bin/agentmesh.js falls back to the sources when
// the bundle is missing or older than them.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
await build({
  entryPoints: [`${root}packages/cli/src/main.ts`],
  // dist/agentmesh.mjs, and beside it in dist/chunks/ what is only imported dynamically (libp2p,
  // loaded only with direct links on: `listen --p2p`), so the CLI's start does not parse it
  outdir: `${root}packages/cli/dist`,
  entryNames: 'agentmesh',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  // native addon, worker-thread based logger internals, ws's and pg's optional native helpers
  // @oqs/liboqs-js loads its WebAssembly module by a path relative to its own files: left in node_modules
  external: ['better-sqlite3', 'pino', 'bufferutil', 'utf-8-validate', 'pg-native'],
  banner: { js: "import { createRequire as __amCreateRequire } from 'node:module'; const require = __amCreateRequire(import.meta.url);" },
  logLevel: 'warning',
})

// ---- dashboard: the web console's files (packages/dashboard/dist), served by the relay and `agentmesh dashboard`
const { buildDashboard } = await import('../packages/dashboard/build.mjs')
await buildDashboard()
