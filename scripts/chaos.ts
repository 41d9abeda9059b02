/**
 * `npm run chaos [-- --pairs N] [--messages N] [--seconds S] [--every S] [--seed N] [--no-damage] [--json]`
 * kill -9 of the relay and receivers under load, a stalled reader, a lost -wal file and overwritten
 * pages (packages/testing/src/chaos.ts); 127.0.0.1 only, bounded, stops by itself. Exit 1 when an
 * acknowledged message was lost or a damaged database was started without a word.
 * Environment: CHAOS_SECONDS, CHAOS_SEED.
 */
import { chaos, formatChaosReport } from '@agentmesh/testing'
import { UsageError, fail, numberArg, scriptArgs } from './script-args.ts'

const USAGE = `usage: npm run chaos [-- options]
  kill -9 of the relay and receivers under load, a stalled reader, a lost -wal file and overwritten
  pages; 127.0.0.1 only, bounded, stops by itself. Exit 1 when an acknowledged message was lost or a
  damaged database was started without a word.

  --pairs N       sender/receiver pairs (default 4)
  --messages N    messages per pair (default 1500)
  --seconds S     longest run (default 90; CHAOS_SECONDS)
  --every S       seconds between kills (default 3)
  --seed N        seed of the schedule (default from the clock; CHAOS_SEED); the report prints it
  --no-damage     leave out the damaged-database cases
  --json          the report as one JSON object
  -h, --help      this text`
const values = scriptArgs('chaos', USAGE, {
  pairs: { type: 'string' }, messages: { type: 'string' }, seconds: { type: 'string' }, every: { type: 'string' },
  seed: { type: 'string' }, 'no-damage': { type: 'boolean' }, json: { type: 'boolean' },
})
let opts
try {
  opts = {
    pairs: numberArg('pairs', values.pairs, undefined, 4, { min: 1, integer: true }),
    messages: numberArg('messages', values.messages, undefined, 1500, { min: 1, integer: true }),
    seconds: numberArg('seconds', values.seconds, { name: 'CHAOS_SECONDS', value: process.env.CHAOS_SECONDS }, 90, { min: 1 }),
    everyS: numberArg('every', values.every, undefined, 3, { min: 0.1 }),
    seed: numberArg('seed', values.seed, { name: 'CHAOS_SEED', value: process.env.CHAOS_SEED }, Date.now() % 1_000_000, { min: 0, integer: true }),
  }
} catch (err) {
  if (err instanceof UsageError) fail('chaos', USAGE, err.message)
  throw err
}
const report = await chaos({
  ...opts,
  damage: values['no-damage'] !== true,
  log: (l) => { process.stderr.write(l + '\n') },
})
process.stdout.write((values.json === true ? JSON.stringify(report) : formatChaosReport(report)) + '\n')
const silent = Object.values(report.damage).some(v => v.startsWith('STARTED'))
process.exitCode = report.lost > 0 || silent ? 1 : 0
