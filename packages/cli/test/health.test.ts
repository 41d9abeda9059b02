/**
 * `agentmesh health` (in process) against an in-process relay: the fleet summary as JSON and as a
 * table, an agent's health with its history, --watch refreshing (plain blocks off a terminal, in
 * place on one), roles, usage errors, and agent-reported text printed without control characters.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Relay } from '@agentmesh/server'
import { cli, startRelay, tempDir, type CliResult } from '@agentmesh/testing'
import { run, type CliIo } from '../src/index.ts'
import { dashboardText } from '../src/commands/health.ts'

const API_KEY = 'operator-key-0123456789abcdef'

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}
const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)

describe('health (cli)', { concurrency: 1 }, () => {
  const dir = tempDir()
  let relay: Relay
  const as = (name: string): { home: string, server: string } => ({ home: join(dir.path, name), server: relay.url })
  const operator = (name = 'alice'): { home: string, server: string, env: Record<string, string> } => ({ ...as(name), env: { AGENTMESH_API_KEY: API_KEY } })
  const ids: Record<string, string> = {}
  const beat = async (amid: string, body: Record<string, unknown>): Promise<void> => {
    const r = await fetch(`${relay.url}/api/agents/${amid}/heartbeat`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    assert.equal(r.status, 200, await r.text())
  }

  before(async () => {
    relay = await startRelay({ apiKey: API_KEY })
    for (const n of ['alice', 'bob', 'carol']) {
      ids[n] = (JSON.parse(ok(await cli(['init', '--name', n, '--json'], as(n)), `init ${n}`).lines[0]!) as { amid: string }).amid
      ok(await cli(['handle', 'set', n], as(n)), `handle ${n}`)
    }
    await beat(ids.alice!, { status: 'healthy', version: '0.2.0', cpuUsage: 12.5, memoryUsage: 64 * 1024 * 1024, uptimeSeconds: 30, customMetrics: { queue: 2, note: 'ok\u001b[31m red\u0007' } })
    await beat(ids.bob!, { status: 'degraded' })
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  it('health - the fleet summary as one JSON object, counts matching the heartbeats', async () => {
    const [d] = json(ok(await cli(['health', '--json'], operator()), 'health --json'))
    assert.equal(d.totalAgents, 3)
    assert.deepEqual([d.healthy, d.degraded, d.unhealthy, d.offline, d.unknown], [1, 1, 0, 1, 0])
    assert.deepEqual([d.criticalEvents, d.lastCatastrophe], [0, null])
    const alice = d.agentList.find((a: any) => a.amid === ids.alice)
    assert.deepEqual(alice, { amid: ids.alice, handle: 'alice', status: 'healthy', lastHeartbeatAt: alice.lastHeartbeatAt, version: '0.2.0' })
    assert.equal(typeof alice.lastHeartbeatAt, 'number')
  })

  it('health - the fleet summary says whether the last catastrophe is open or over', () => {
    const d = { totalAgents: 0, healthy: 0, degraded: 0, unhealthy: 0, offline: 0, unknown: 0, criticalEvents: 0, agentList: [], offlineAfterSeconds: 90, generatedAt: 0 }
    const last = { eventId: 'e', eventType: 'server_down', severity: 'major', title: 'The relay restarted after an unclean stop', recoveryProtocol: 'server-crash', affectedAgents: 'all', reportedBy: 'relay', reportedAt: 0 }
    assert.equal(dashboardText({ ...d, lastCatastrophe: { ...last, status: 'resolved' } } as any)[1], 'critical events 0, last catastrophe: major server_down The relay restarted after an unclean stop (resolved)')
    assert.equal(dashboardText({ ...d, lastCatastrophe: { ...last, status: 'reported' } } as any)[1], 'critical events 0, last catastrophe: major server_down The relay restarted after an unclean stop (reported)')
  })

  it('health - the fleet as a table; an agent\'s health with its figures and history, agent text without control characters', async () => {
    const t = ok(await cli(['health'], operator()), 'health')
    assert.match(t.lines[0]!, /^agents 3: healthy 1, degraded 1, unhealthy 0, offline 1, unknown 0$/)
    assert.match(t.lines[1]!, /^critical events 0, last catastrophe: none$/)
    assert.match(t.lines[2]!, /^STATUS +AGENT +LAST HEARTBEAT +VERSION$/)
    assert.ok(t.lines.some(l => /^healthy +@alice +\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+ s ago\) +0\.2\.0$/.test(l)), t.stdout)
    assert.ok(t.lines.some(l => /^degraded +@bob /.test(l)), t.stdout)
    assert.ok(t.lines.some(l => /^offline +@carol +- +-$/.test(l)), t.stdout)

    const a = ok(await cli(['health', '@alice'], operator('bob')), 'health @alice')
    assert.match(a.lines[0]!, new RegExp(`^@alice \\(${ids.alice!}\\): healthy, not connected$`))
    assert.match(a.lines[1]!, /^last heartbeat .* healthy, up 30 s, cpu 12.5%, memory 64.0 MiB, version 0.2.0$/)
    assert.ok(a.lines.includes('  queue: 2'), a.stdout)
    assert.ok(a.lines.includes('  note: ok[31m red'), a.stdout)
    assert.ok(!a.stdout.includes('\u001b') && !a.stdout.includes('\u0007'), 'no control characters printed')
    assert.ok(a.lines.includes('history (newest first):'))
    assert.match(a.lines.at(-1)!, /^ {2}\S+Z {2}unknown → healthy {2}\(heartbeat\)$/)
    const [j] = json(ok(await cli(['health', ids.alice!, '--json', '--history', '1'], operator()), 'health amid --json'))
    assert.equal(j.agentId, ids.alice)
    assert.equal(j.lastHeartbeat.customMetrics.note, 'ok\u001b[31m red\u0007', 'JSON carries the value as the agent sent it (escaped by JSON)')
    assert.equal(j.history.length, 1)
  })

  it('health - a worker reads its own health, not the fleet\'s or another agent\'s (coded errors, exit 1); usage errors exit 2', async () => {
    ok(await cli(['health', '@alice'], as('alice')), 'own health')
    const fleet = await cli(['health'], as('alice'))
    assert.equal(fleet.code, 1)
    assert.match(fleet.stderr, /^agentmesh: error AM_ERR_FORBIDDEN: the health dashboard is for wardens and masters\n$/)
    const other = await cli(['health', '@bob', '--json'], as('alice'))
    assert.equal(other.code, 1)
    assert.equal(JSON.parse(other.stderr).error.code, 'AM_ERR_FORBIDDEN')
    const watch = await cli(['health', '@alice', '--watch'], operator())
    assert.equal(watch.code, 2)
    assert.match(watch.stderr, /AM_ERR_INVALID_ARGUMENT: --watch shows the fleet/)
    assert.equal((await cli(['health', '--limit', '0'], operator())).code, 2)
    const nobody = await cli(['health', '@nobody'], operator())
    assert.equal(nobody.code, 1)
    assert.match(nobody.stderr, /AM_ERR_UNKNOWN_HANDLE/)
  })

  it('health - --watch off a terminal prints one block per refresh; --json one line each', async () => {
    const plain = ok(await cli(['health', '--watch', '--interval', '0.02', '--count', '2'], operator()), 'watch')
    assert.equal(plain.lines.filter(l => l.startsWith('agents 3:')).length, 2)
    assert.ok(!plain.stdout.includes('\u001b'), 'no terminal control off a terminal')
    const lines = json(ok(await cli(['health', '--watch', '--interval', '0.02', '--count', '3', '--json'], operator()), 'watch --json'))
    assert.equal(lines.length, 3)
    assert.ok(lines.every(d => d.totalAgents === 3))
  })

  it('health - --watch on a terminal redraws the table in place until Ctrl-C', async () => {
    let text = ''
    let interrupt: (() => void) | undefined
    let blocks = 0
    const io: CliIo = {
      stdout: Object.assign({ write (s: string) { text += s; if (s.includes('agents 3:') && ++blocks === 2) interrupt?.() } }, { isTTY: true }),
      stderr: { write () {} },
      stdin: Readable.from([]),
      env: { AGENTMESH_HOME: as('alice').home, AGENTMESH_SERVER: relay.url, AGENTMESH_API_KEY: API_KEY },
      onInterrupt (h) { interrupt = h; return () => { interrupt = undefined } },
    }
    const code = await run(['health', '--watch', '--interval', '0.02'], io)
    assert.equal(code, 0)
    assert.equal(text.split('\x1b[H\x1b[2J').length - 1, 2, 'the screen cleared before each of the two tables')
    assert.equal(blocks, 2)
  })
})
