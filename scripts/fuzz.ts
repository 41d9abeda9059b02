/**
 * `npm run fuzz [-- --frames N] [--requests N] [--seconds S] [--seed N] [--url http://127.0.0.1:PORT --api-key KEY] [--sqlite] [--json]`
 * A bounded frame and REST fuzzer (packages/testing/src/fuzz.ts): by default against a relay it
 * starts in this process on 127.0.0.1; only ever the loopback. Exit 1 when it found a crash or an
 * unregistered code. Environment: FUZZ_FRAMES, FUZZ_SECONDS, FUZZ_SEED.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assertLoopback, fuzz, formatFuzzReport } from '@agentmesh/testing'
import { UsageError, fail, numberArg, scriptArgs } from './script-args.ts'

const USAGE = `usage: npm run fuzz [-- options]
  random and mutated WebSocket frames and REST requests against a relay; exit 1 when the relay
  crashed, answered with an unregistered error code, or stopped serving.

  --frames N      WebSocket frames (default 20000; FUZZ_FRAMES)
  --requests N    REST requests (default a quarter of the frames)
  --seconds S     longest run (default 120; FUZZ_SECONDS)
  --seed N        seed (default from the clock; FUZZ_SEED); the report prints it
  --url URL       fuzz a relay already running on this machine (loopback only) instead of one
                  started in process
  --api-key KEY   the operator key of that relay
  --sqlite        the in-process relay on SQLite (default: memory)
  --json          the report as one JSON object
  -h, --help      this text`
const values = scriptArgs('fuzz', USAGE, {
  frames: { type: 'string' }, requests: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string' },
  url: { type: 'string' }, 'api-key': { type: 'string' }, sqlite: { type: 'boolean' }, json: { type: 'boolean' },
})
if (values.url !== undefined) {
  try { assertLoopback(values.url) } catch (err) { fail('fuzz', USAGE, `--url: ${(err as Error).message}`) }
}
const env = (name: string): { name: string, value: string | undefined } => ({ name, value: process.env[name] })
let frames: number, requests: number, seconds: number, seed: number
try {
  frames = numberArg('frames', values.frames, env('FUZZ_FRAMES'), 20_000, { min: 0, integer: true })
  requests = numberArg('requests', values.requests, undefined, Math.ceil(frames / 4), { min: 0, integer: true })
  seconds = numberArg('seconds', values.seconds, env('FUZZ_SECONDS'), 120, { min: 1 })
  seed = numberArg('seed', values.seed, env('FUZZ_SEED'), Date.now() % 1_000_000, { min: 0, integer: true })
} catch (err) {
  if (err instanceof UsageError) fail('fuzz', USAGE, err.message)
  throw err
}
const dir = values.sqlite === true ? mkdtempSync(join(tmpdir(), 'agentmesh-fuzz-')) : undefined
try {
  const report = await fuzz({
    frames,
    requests,
    seconds,
    seed,
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
