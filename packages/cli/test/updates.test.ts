/**
 * `agentmesh update …` as a user runs it (in process, each agent in its own home) against a relay in
 * this process: the operator announces with --api-key, agents list and acknowledge, the adoption
 * table and its --json form, bad arguments (exit 2 before any I/O) and the relay's coded refusals
 * (exit 1, one line), and an agent below a breaking update's required version refused past the deadline.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Relay } from '@agentmesh/server'
import { assertCliError, cli, startRelay, tempDir, type CliResult } from '@agentmesh/testing'
import { adoptionText, timeOption } from '../src/commands/updates.ts'

const API_KEY = 'operator-key-for-cli-update-tests-01234'

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}
const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)

describe('cli - update', { concurrency: 1 }, () => {
  const dir = tempDir()
  let relay: Relay
  const ids: Record<string, string> = {}
  const as = (name: string): { home: string, server: string } => ({ home: join(dir.path, name), server: relay.url })
  const op = (): { home: string, server: string, env: Record<string, string> } => ({ ...as('operator'), env: { AGENTMESH_API_KEY: API_KEY } })
  let updateId = ''

  before(async () => {
    relay = await startRelay({ apiKey: API_KEY })
    for (const n of ['alice', 'bob', 'carol']) {
      ids[n] = (JSON.parse(ok(await cli(['init', '--open', '--name', n, '--json'], as(n)), `init ${n}`).lines[0]!) as { amid: string }).amid
      ok(await cli(['whoami'], as(n)), `whoami ${n}`)
    }
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  it('cli - update: bad arguments exit 2 with one coded line, before any I/O', async () => {
    const o = { home: join(dir.path, 'nobody'), server: 'http://127.0.0.1:1' }
    const [badType, reqNoBreak, deadlineNoReq, badTime, badStatus, badLimit] = await Promise.all([
      cli(['update', 'create', '--version', '1.0.0', '--type', 'hotfix', '--title', 't'], o),
      cli(['update', 'create', '--version', '1.0.0', '--type', 'api', '--title', 't', '--required-version', '1.0.0', '--deadline', '7d'], o),
      cli(['update', 'create', '--version', '1.0.0', '--type', 'api', '--title', 't', '--deadline', '7d'], o),
      cli(['update', 'create', '--version', '1.0.0', '--type', 'api', '--title', 't', '--expires', 'next week'], o),
      cli(['update', 'ack', 'some-id', '--status', 'pending'], o),
      cli(['update', 'list', '--limit', 'ten', '--json'], o),
    ])
    assertCliError(badType!, 'AM_ERR_INVALID_ARGUMENT', 2, /--type must be one of api, schema, emergency, feature/)
    assertCliError(reqNoBreak!, 'AM_ERR_INVALID_ARGUMENT', 2, /--deadline goes with --breaking and --required-version/)
    assertCliError(deadlineNoReq!, 'AM_ERR_INVALID_ARGUMENT', 2, /--deadline goes with --breaking and --required-version/)
    assertCliError(badTime!, 'AM_ERR_INVALID_ARGUMENT', 2, /--expires "next week" is not a time: .*30s, 90m, 48h, 7d/)
    assertCliError(badStatus!, 'AM_ERR_INVALID_ARGUMENT', 2, /--status must be one of accepted, rejected, completed/)
    const noFile = await cli(['update', 'create', '--version', '1.0.0', '--type', 'api', '--title', 't', '--announcement', join(dir.path, 'no-such.md')], o)
    assertCliError(noFile, 'AM_ERR_INVALID_ARGUMENT', 2, /--announcement .*no-such\.md: cannot read it \(ENOENT\)/)
    assert.equal(badLimit!.code, 2)
    assert.equal(JSON.parse(badLimit!.stderr).error.code, 'AM_ERR_INVALID_ARGUMENT')
  })

  it('cli - update create (operator, announcement from a file), list, show, ack, acks (table and --json)', async () => {
    const file = join(dir.path, 'announce.md')
    writeFileSync(file, '# Threads\n\nReply in \u001b[31mthreads\u001b[0m.\n')
    assertCliError(await cli(['update', 'create', '--version', '1.1.0', '--type', 'feature', '--title', 'Threads'], as('alice')), 'AM_ERR_FORBIDDEN', 1, /only a master/)
    const created = json(ok(await cli(['update', 'create', '--version', '1.1.0', '--type', 'feature', '--title', 'Threads', '--announcement', file, '--expires', '7d', '--json'], op()), 'create'))
    assert.equal(created.length, 1)
    assert.equal(created[0].broadcast, true)
    updateId = created[0].updateId as string
    const text = ok(await cli(['update', 'create', '--version', '1.1.1', '--type', 'emergency', '--title', 'Hotfix'], op()), 'create text')
    assert.match(text.stdout, /^update [0-9a-f-]{36} announced to every agent \(`agentmesh update acks [0-9a-f-]{36}` shows who answered\)\n$/)

    const listed = json(ok(await cli(['update', 'list', '--active', '--json'], as('bob')), 'list'))
    assert.deepEqual(listed.map(u => [u.title, u.status]), [['Hotfix', 'pending'], ['Threads', 'pending']])
    const shown = ok(await cli(['update', 'show', updateId], as('bob')), 'show').stdout
    assert.match(shown, /Threads {2}\(feature, you: pending\)/)
    assert.match(shown, /Reply in \[31mthreads\[0m\./, 'the escape characters are taken out')
    assert.ok(!shown.includes('\u001b'))

    const acked = json(ok(await cli(['update', 'ack', updateId, '--status', 'accepted', '--notes', 'tonight', '--agent-version', '0.9.0', '--json'], as('bob')), 'ack'))
    assert.deepEqual({ ...acked[0], updatedAt: 0 }, { updateId, agentId: ids.bob, status: 'accepted', agentVersion: '0.9.0', notes: 'tonight', updatedAt: 0 })
    ok(await cli(['update', 'ack', updateId, '--status', 'completed', '--agent-version', '1.1.0'], as('bob')), 'complete')
    assertCliError(await cli(['update', 'ack', updateId, '--status', 'accepted'], as('bob')), 'AM_ERR_INVALID_TRANSITION', 1, /is completed: it can become completed, not accepted/)
    ok(await cli(['update', 'ack', updateId, '--status', 'rejected', '--agent', ids.carol!], op()), 'the operator answers for carol')
    assertCliError(await cli(['update', 'ack', 'no-such-update', '--status', 'accepted'], as('alice')), 'AM_ERR_UNKNOWN_UPDATE', 1)

    assertCliError(await cli(['update', 'acks', updateId], as('alice')), 'AM_ERR_FORBIDDEN', 1, /masters and wardens/)
    const view = json(ok(await cli(['update', 'acks', updateId, '--json'], op()), 'acks --json'))[0]
    assert.equal(view.totalAgents, 3)
    assert.deepEqual(view.counts, { pending: 1, accepted: 0, rejected: 1, completed: 1 })
    assert.deepEqual(view.notAnswered, [ids.alice])
    const table = ok(await cli(['update', 'acks', updateId], op()), 'acks').stdout
    assert.equal(table, adoptionText(view) + '\n')
    assert.match(table, /^ {2}completed █{10}░{20} {6}1 {2} 33%$/m)
    assert.match(table, /^ {2}pending {3}█{10}░{20} {6}1 {2} 33%$/m)
    assert.match(table, new RegExp(`not answered: ${ids.alice!}$`, 'm'))
    assert.match(table, /versions reported: .*1\.1\.0 ×1/)
  })

  it('cli - listen tells an agent of the updates announced while it was offline (stderr; messages stay on stdout), each once', async () => {
    ids.dave = (JSON.parse(ok(await cli(['init', '--open', '--name', 'dave', '--json'], as('dave')), 'init dave').lines[0]!) as { amid: string }).amid
    const made = json(ok(await cli(['update', 'create', '--version', '1.2.0', '--type', 'schema', '--title', 'While dave was away', '--json'], op()), 'create'))[0]
    const heard = ok(await cli(['listen', '--timeout', '1', '--json'], as('dave')), 'listen --json')
    assert.equal(heard.stdout, '', 'no message: updates are not messages')
    const told = heard.stderr.split('\n').filter(l => l.startsWith('{"update"')).map(l => JSON.parse(l).update)
    assert.deepEqual(told.map(u => [u.title, u.status]).sort(), [['Hotfix', 'pending'], ['Threads', 'pending'], ['While dave was away', 'pending']])
    assert.equal(told.find(u => u.title === 'While dave was away').updateId, made.updateId)
    ok(await cli(['update', 'ack', made.updateId, '--status', 'completed'], as('dave')), 'ack')
    const text = ok(await cli(['listen', '--timeout', '1'], as('dave')), 'listen')
    const lines = text.stderr.split('\n').filter(l => l.startsWith('agentmesh: system update'))
    assert.deepEqual(lines.map(l => /"([^"]+)"/.exec(l)![1]).sort(), ['Hotfix', 'Threads'], 'a completed update is not told again')
    assert.match(lines[0]!, /^agentmesh: system update 1\.1\.[01] "(Hotfix|Threads)" \((emergency|feature); you: pending; `agentmesh update show [0-9a-f-]{36}`, then `agentmesh update ack [0-9a-f-]{36} --status accepted\|rejected\|completed`\)$/)
  })

  it('cli - update create: a required version that is not semver is named in words', async () => {
    const r = await cli(['update', 'create', '--version', '1.0.0', '--type', 'api', '--title', 't', '--breaking', '--required-version', 'abc'], op())
    assertCliError(r, 'AM_ERR_INVALID_ARGUMENT', 2, /requiredVersion must be a semantic version like 2\.0\.0 or 2\.1\.0-rc\.1$/)
  })

  it('cli - a breaking update whose deadline passed: the CLI (below the required version) is refused with AM_ERR_UPDATE_REQUIRED', async () => {
    ok(await cli(['update', 'create', '--version', '9.0.0', '--type', 'api', '--title', 'Wire v9', '--breaking', '--required-version', '9.0.0', '--deadline', String(Date.now() - 1000)], op()), 'create breaking')
    const refused = await cli(['send', ids.bob!, 'hello'], as('alice'))
    assertCliError(refused, 'AM_ERR_UPDATE_REQUIRED', 1, /update "Wire v9" \([0-9a-f-]{36}\) requires agent version 9\.0\.0 or later/)
  })

  it('cli - update: time options', () => {
    assert.equal(timeOption('--expires', '90m', 1000), 1000 + 90 * 60_000)
    assert.equal(timeOption('--expires', '2d', 0), 2 * 86_400_000)
    assert.equal(timeOption('--expires', '2026-12-31T23:59:59Z'), Date.UTC(2026, 11, 31, 23, 59, 59))
    assert.equal(timeOption('--expires', '1700000000000'), 1_700_000_000_000)
    assert.throws(() => timeOption('--expires', 'soon'), /--expires "soon" is not a time/)
    // seconds too, as m, h and d; a bad value names every accepted form
    assert.equal(timeOption('--deadline', '45s', 1000), 1000 + 45_000)
    assert.equal(timeOption('--expires', '3h', 0), 3 * 3_600_000)
    assert.throws(() => timeOption('--deadline', '45sec'), /--deadline "45sec" is not a time: .*ISO 8601.*ms since the epoch.*s, m, h or d \(30s, 90m, 48h, 7d\)/)
  })
})
