/**
 * `npm run chaos [-- --pairs N] [--messages N] [--seconds S] [--every S] [--seed N] [--no-damage] [--json]`
 * kill -9 of the relay and receivers under load, a stalled reader, a lost -wal file and overwritten
 * pages (packages/testing/src/chaos.ts); 127.0.0.1 only, bounded, stops by itself. Exit 1 when an
 * acknowledged message was lost or a damaged database was started without a word.
 * Environment: CHAOS_SECONDS, CHAOS_SEED.
 */
import { parseArgs } from 'node:util'
import { chaos, formatChaosReport } from '@agentmesh/testing'

const { values } = parseArgs({
  options: {
    pairs: { type: 'string' }, messages: { type: 'string' }, seconds: { type: 'string' }, every: { type: 'string' },
    seed: { type: 'string' }, 'no-damage': { type: 'boolean' }, json: { type: 'boolean' },
  },
})
const num = (v: string | undefined, env: string | undefined, d: number): number => {
  const s = v ?? env
  if (s === undefined || s === '') return d
  const n = Number(s)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${s}`)
  return n
}
const report = await chaos({
  pairs: num(values.pairs, undefined, 4),
  messages: num(values.messages, undefined, 1500),
  seconds: num(values.seconds, process.env.CHAOS_SECONDS, 90),
  everyS: num(values.every, undefined, 3),
  seed: num(values.seed, process.env.CHAOS_SEED, Date.now() % 1_000_000),
  damage: values['no-damage'] !== true,
  log: (l) => { process.stderr.write(l + '\n') },
})
process.stdout.write((values.json === true ? JSON.stringify(report) : formatChaosReport(report)) + '\n')
const silent = Object.values(report.damage).some(v => v.startsWith('STARTED'))
process.exitCode = report.lost > 0 || silent ? 1 : 0
