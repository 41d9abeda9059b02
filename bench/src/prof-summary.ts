/**
 * Summarises a V8 .cpuprofile (from BENCH_CPU_PROF=1) by self time per function.
 *   node --import tsx bench/src/prof-summary.ts bench/results/prof/agentmesh_durable [top=40]
 * Given a directory, it reads the largest profile in it (the server's main thread).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

const file = process.argv[2]
if (file === undefined) {
  process.stderr.write('usage: prof-summary.ts <file.cpuprofile> [top]\n')
  process.exit(2)
}
const top = Number(process.argv[3] ?? 40)
let path = file
if (statSync(file).isDirectory()) {
  const files = readdirSync(file).filter(f => f.endsWith('.cpuprofile')).map(f => join(file, f))
  if (files.length === 0) throw new Error(`no .cpuprofile in ${file}`)
  path = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!
}
const prof = JSON.parse(readFileSync(path, 'utf8')) as Profile
const byId = new Map(prof.nodes.map(n => [n.id, n]))
const perNode = new Map<number, number>()
let total = 0
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0
  perNode.set(prof.samples[i]!, (perNode.get(prof.samples[i]!) ?? 0) + dt)
  total += dt
}
const self = new Map<string, number>()
for (const [id, t] of perNode) {
  const cf = byId.get(id)!.callFrame
  const where = cf.url === '' ? '' : ` ${cf.url.replace(/^file:\/\//, '').split('/').slice(-3).join('/')}:${cf.lineNumber + 1}`
  const key = `${cf.functionName === '' ? '(anonymous)' : cf.functionName}${where}`
  self.set(key, (self.get(key) ?? 0) + t)
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, t]) => a + t, 0)
process.stdout.write(`${path}: ${(total / 1e6).toFixed(1)} s sampled, ${(100 - idle / total * 100).toFixed(1)}% busy (main thread)\n`)
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(`${(t / total * 100).toFixed(1).padStart(5)}%  ${k}\n`)
}
