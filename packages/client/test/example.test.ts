import { it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRelay, silentLogger } from '@agentmesh/server'

it('example - examples/hello.ts (shown in the README) runs against a relay', async () => {
  const relay = await createRelay({ port: 0, logger: silentLogger })
  try {
    const file = fileURLToPath(new URL('../../../examples/hello.ts', import.meta.url))
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, AGENTMESH_SERVER: relay.url }, timeout: 30_000 },
        (err, stdout, stderr) => { if (err !== null) reject(new Error(stderr)); else resolve(stdout) })
    })
    const lines = out.trim().split('\n')
    assert.match(lines[0]!, /^alice sent [0-9a-f-]{36}$/)
    assert.equal(lines[1], 'bob got "hello bob" from alice')
  } finally {
    await relay.close()
  }
})
