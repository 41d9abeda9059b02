/**
 * The repository's own scripts (`npm run chaos|fuzz|soak|bench`) answer a typo or a bad number with
 * one line and their usage, exit 2, never a stack trace (scripts/script-args.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { UsageError, numberArg } from '../../../scripts/script-args.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function run (script: string, args: string[], env: Record<string, string> = {}): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('numberArg: the default, a value from the option or the environment, and a refusal naming where it came from', () => {
  assert.equal(numberArg('pairs', undefined, undefined, 4, { min: 1 }), 4)
  assert.equal(numberArg('pairs', '7', undefined, 4, { min: 1, integer: true }), 7)
  assert.equal(numberArg('seconds', undefined, { name: 'X_SECONDS', value: '2.5' }, 90, { min: 1 }), 2.5)
  assert.equal(numberArg('seconds', '3', { name: 'X_SECONDS', value: '9' }, 90, { min: 1 }), 3, 'the option wins over the environment')
  assert.throws(() => numberArg('pairs', '1.5', undefined, 4, { min: 1, integer: true }), (e: Error) => e instanceof UsageError && e.message === '--pairs must be a whole number from 1, got "1.5"')
  assert.throws(() => numberArg('s', undefined, { name: 'X_SECONDS', value: 'soon' }, 1, { min: 1 }), (e: Error) => e instanceof UsageError && e.message.startsWith('X_SECONDS must be a number from 1'))
  assert.throws(() => numberArg('n', '0', undefined, 1, { min: 1 }), UsageError)
})

test('a mistyped option, a bad number, or arguments where none are taken: one line, the usage, exit 2', () => {
  const cases: Array<{ script: string, args: string[], env?: Record<string, string>, says: string }> = [
    { script: 'scripts/chaos.ts', args: ['--pairs', 'two'], says: 'npm run chaos: --pairs must be a whole number from 1, got "two"' },
    { script: 'scripts/fuzz.ts', args: ['--frame', '10'], says: "npm run fuzz: Unknown option '--frame'" },
    { script: 'scripts/soak.ts', args: [], env: { SOAK_AGENTS: '1' }, says: 'npm run soak: SOAK_AGENTS must be a whole number from 2, got "1"' },
    { script: 'bench/src/main.ts', args: ['--seconds', '3'], says: 'npm run bench: it takes no arguments (got "--seconds"); options are environment variables' },
  ]
  for (const c of cases) {
    const r = run(c.script, c.args, c.env)
    assert.equal(r.status, 2, `${c.script} ${c.args.join(' ')}: exit 2 (stderr: ${r.stderr.slice(0, 300)})`)
    assert.equal(r.stderr.split('\n')[0], c.says)
    assert.match(r.stderr, /usage: npm run /)
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
    assert.equal(r.stdout, '')
  }
})

test('--help prints the usage on stdout, exit 0, and runs nothing', () => {
  const r = run('scripts/chaos.ts', ['--help'])
  assert.equal(r.status, 0)
  assert.match(r.stdout, /^usage: npm run chaos/)
  assert.match(r.stdout, /--no-damage/)
  assert.equal(r.stderr, '')
})
