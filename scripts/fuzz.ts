/**
 * `npm run fuzz [-- --frames N] [--requests N] [--seconds S] [--seed N] [--url http://127.0.0.1:PORT --api-key KEY] [--sqlite] [--json]`
 * A bounded frame and REST fuzzer (packages/testing/src/fuzz.ts): by default against a relay it
 * starts in this process on 127.0.0.1; only ever the loopback. Exit 1 when it found a crash or an
 * unregistered code. Environment: FUZZ_FRAMES, FUZZ_SECONDS, FUZZ_SEED.
 */
import { parseArgs } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fuzz, formatFuzzReport } from '@agentmesh/testing'

const { values } = parseArgs({
  options: {
    frames: { type: 'string' }, requests: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string' },
    url: { type: 'string' }, 'api-key': { type: 'string' }, sqlite: { type: 'boolean' }, json: { type: 'boolean' },
  },
})
const num = (v: string | undefined, env: string | undefined, d: number): number => {
  const s = v ?? env
  if (s === undefined || s === '') return d
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a whole number: ${s}`)
  return n
}
const frames = num(values.frames, process.env.FUZZ_FRAMES, 20_000)
const dir = values.sqlite === true ? mkdtempSync(join(tmpdir(), 'agentmesh-fuzz-')) : undefined
try {
  const report = await fuzz({
    frames,
    requests: num(values.requests, undefined, Math.ceil(frames / 4)),
    seconds: num(values.seconds, process.env.FUZZ_SECONDS, 120),
    seed: num(values.seed, process.env.FUZZ_SEED, Date.now() % 1_000_000),
    ...(values.url === undefined ? {} : { url: values.url }),
    ...(values['api-key'] === undefined ? {} : { apiKey: values['api-key'] }),
    ...(dir === undefined ? {} : { relay: { dataDir: dir } }),
    log: (l) => { process.stderr.write(l + '\n') },
  })
  process.stdout.write((values.json === true ? JSON.stringify(report) : formatFuzzReport(report)) + '\n')
  process.exitCode = report.crashes.length > 0 || report.unregistered.length > 0 || !report.stillServes ? 1 : 0
} finally {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}
