#!/usr/bin/env node
// Runs the bundled CLI (built by `npm install`, see scripts/build-cli.mjs) when it is at least
// as new as every source file; otherwise runs the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const packages = fileURLToPath(new URL('../../', import.meta.url))
const bundle = fileURLToPath(new URL('../dist/agentmesh.mjs', import.meta.url))

function newestSource () {
  let newest = 0
  for (const pkg of readdirSync(packages)) {
    const walk = (dir) => {
      let entries
      try { entries = readdirSync(dir, { withFileTypes: true }) } catch { return }
      for (const e of entries) {
        const p = `${dir}/${e.name}`
        if (e.isDirectory()) walk(p)
        else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs)
      }
    }
    walk(`${packages}${pkg}/src`)
  }
  return newest
}

let fresh = false
try { fresh = statSync(bundle).mtimeMs >= newestSource() } catch {}
if (fresh && process.env.AGENTMESH_FROM_SOURCE !== '1') {
  await import(bundle)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/main.ts')
}
