import { it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const run = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000 })

it('sim cli - --json prints the report, the flooding baseline and the calibration figures', () => {
  const r = run('--nodes', '100', '--seed', '4', '--compare-flood', '--calibrate', '--json')
  assert.equal(r.status, 0, String(r.stderr))
  const out = JSON.parse(String(r.stdout))
  assert.equal(out.report.nodes, 100)
  assert.equal(out.report.scenario.seed, 4)
  assert.equal(out.report.delivery.complete, true)
  assert.equal(out.flood.scenario.mode, 'flood')
  assert.equal(out.calibration.source, 'sim')
  assert.equal(out.calibration.roundsFull.length, 8)
})

it('sim cli - bad flags: one line naming the problem on stderr, exit code 2, no stack trace', () => {
  for (const [args, re] of [
    [['--nodes', '3'], /^sim: nodes must be an integer from 10/],
    [['--scenario', 'nope'], /^sim: unknown scenario "nope"/],
    [['--nodes', 'many'], /^sim: --nodes must be a number/],
    [['--frobnicate'], /^sim: Unknown option '--frobnicate'/],
  ] as const) {
    const r = run(...args)
    assert.equal(r.status, 2, args.join(' '))
    assert.match(String(r.stderr), re)
    assert.doesNotMatch(String(r.stderr), /\n\s+at /, 'no stack trace')
    assert.equal(String(r.stdout), '')
  }
})
