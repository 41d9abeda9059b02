/**
 * The catastrophe, backup, restore and check commands (docs/protocol.md §20, docs/operations.md):
 * their contract in process (arguments, --json fields, coded error lines, exit codes, file modes)
 * against a relay in process; a backup taken under load restores to a relay that serves the same
 * backlog; a restore refuses a file that is not a backup before replacing anything; and, with real
 * processes, a relay killed with SIGKILL reports the unclean stop at its next start, and a damaged
 * database file is a clear refusal (one coded line, its own exit code), not a crash loop.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { encodeSend } from '@agentmesh/protocol'
import { DB_FILE, sqliteStore } from '@agentmesh/store-sqlite'
import { assertCliError, cli, rawAgent, spawnRelay, startRelay, tempDir, type CliResult, type RawAgent } from '@agentmesh/testing'
import type { Relay } from '@agentmesh/server'
import { outboxFate, outboxText } from '../src/commands/catastrophe.ts'

const KEY = `operator-${randomBytes(12).toString('hex')}`
const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)
function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex')

async function agent (relay: Relay, id?: RawAgent['id']): Promise<RawAgent> {
  const a = await rawAgent(relay.wsUrl, id)
  assert.equal((await a.auth()).op, 'welcome')
  return a
}

/** Overwrites the pages after the first two with bytes that are no b-tree. */
function damage (file: string): void {
  const size = statSync(file).size
  assert.ok(size > 4096 * 4, `a database with a few pages (${size} bytes)`)
  const fd = openSync(file, 'r+')
  writeSync(fd, randomBytes(size - 8192), 0, size - 8192, 8192)
  closeSync(fd)
}

describe('catastrophe commands', { concurrency: 1 }, () => {
  const dir = tempDir()
  const relays: Relay[] = []
  after(async () => { for (const r of relays) await r.close(); dir.cleanup() })
  const home = join(dir.path, 'home')

  it('catastrophe - bad arguments exit 2 with one coded line, before any I/O', async () => {
    const o = { home, server: 'http://127.0.0.1:1' }
    const [badType, badSev, badLimit, openStatus, noData, longTitle] = await Promise.all([
      cli(['catastrophe', 'report', '--type', 'meteor', '--severity', 'minor', '--title', 'x', '--api-key', KEY], o),
      cli(['catastrophe', 'report', '--type', 'api_crash', '--severity', 'huge', '--title', 'x', '--api-key', KEY], o),
      cli(['catastrophe', 'list', '--limit', '0', '--api-key', KEY], o),
      cli(['catastrophe', 'list', '--open', '--status', 'resolved', '--api-key', KEY], o),
      cli(['restore', join(dir.path, 'x.db')], o),
      cli(['catastrophe', 'report', '--type', 'api_crash', '--severity', 'minor', '--title', 't'.repeat(201), '--json', '--api-key', KEY], o),
    ])
    assertCliError(badType!, 'AM_ERR_INVALID_ARGUMENT', 2, /--type must be one of server_down, db_corruption, network_partition, api_crash/)
    assertCliError(badSev!, 'AM_ERR_INVALID_ARGUMENT', 2, /--severity/)
    assertCliError(badLimit!, 'AM_ERR_INVALID_ARGUMENT', 2, /--limit/)
    assertCliError(openStatus!, 'AM_ERR_INVALID_ARGUMENT', 2, /--open does not go with --status/)
    assert.equal(noData!.code, 2)
    assert.match(noData!.stderr, /--data/)
    assert.equal(longTitle!.code, 2)
    assert.deepEqual(JSON.parse(longTitle!.stderr).error.code, 'AM_ERR_INVALID_ARGUMENT')
  })

  it('catastrophe - report, list, show, recovering, resolve and protocols, in text and --json', async () => {
    const relay = await startRelay({ apiKey: KEY })
    relays.push(relay)
    const o = { home, server: relay.url }
    const rep = json(ok(await cli(['catastrophe', 'report', '--type', 'network_partition', '--severity', 'major', '--title', 'eu split \u001b[31mred', '--description', 'half the fleet', '--json', '--api-key', KEY], o), 'report'))[0]
    assert.equal(rep.broadcast, true)
    const id = rep.eventId as string
    assert.equal(rep.event.recoveryProtocol, 'network-partition')
    // an agent listening hears the open event right after it connects (stderr: messages stay on stdout)
    const me = join(dir.path, 'listener')
    ok(await cli(['init', '--offline'], { home: me }), 'init')
    const heard = await cli(['listen', '--timeout', '1', '--json'], { home: me, server: relay.url })
    const alerts = heard.stderr.split('\n').filter(l => l.startsWith('{"catastrophe"')).map(l => JSON.parse(l).catastrophe)
    assert.deepEqual(alerts.map(a => [a.eventId, a.status, a.eventType]), [[rep.eventId, 'reported', 'network_partition']])
    assert.ok(!heard.stderr.includes('\u001b'), 'no control character on the terminal')
    const listed = json(ok(await cli(['catastrophe', 'list', '--json', '--api-key', KEY], o), 'list'))
    assert.deepEqual(listed.map(e => e.eventId), [id])
    const text = ok(await cli(['catastrophe', 'show', id, '--api-key', KEY], o), 'show').stdout
    assert.match(text, new RegExp(`event ${id}: eu split`))
    assert.ok(!text.includes('\u001b'), 'no control character reaches the terminal')
    ok(await cli(['catastrophe', 'recovering', id, '--notes', 'rerouting', '--api-key', KEY], o), 'recovering')
    const again = await cli(['catastrophe', 'recovering', id, '--api-key', KEY], o)
    assertCliError(again, 'AM_ERR_INVALID_TRANSITION', 1)
    const res = json(ok(await cli(['catastrophe', 'resolve', id, '--notes', 'links back', '--json', '--api-key', KEY], o), 'resolve'))[0]
    assert.deepEqual([res.status, res.resolutionNotes], ['resolved', 'links back'])
    assert.deepEqual(json(ok(await cli(['catastrophe', 'list', '--open', '--json', '--api-key', KEY], o), 'list --open')), [])
    const protocols = json(ok(await cli(['catastrophe', 'protocols', '--json', '--api-key', KEY], o), 'protocols'))
    assert.deepEqual(protocols.map(p => p.id), ['server-crash', 'database-corruption', 'network-partition', 'breaking-update'])
    assertCliError(await cli(['catastrophe', 'show', 'no-such-event', '--api-key', KEY], o), 'AM_ERR_UNKNOWN_EVENT', 1)
  })

  it('catastrophe - status: connected with an empty outbox; a relay that does not answer is exit 1 with the link state', async () => {
    const relay = await startRelay({ apiKey: KEY })
    relays.push(relay)
    const me = join(dir.path, 'status-home')
    ok(await cli(['init', '--offline'], { home: me }), 'init')
    const up = json(ok(await cli(['status', '--json'], { home: me, server: relay.url }), 'status'))[0]
    assert.deepEqual([up.state, up.outbox, up.relay.startsWith('ws://')], ['connected', 0, true])
    assert.equal(typeof up.since, 'number')
    const down = await cli(['status', '--json', '--timeout', '0.5'], { home: me, server: 'http://127.0.0.1:1' })
    assert.equal(down.code, 1)
    assert.equal(json(down)[0].state, 'connecting')
    assert.equal(JSON.parse(down.stderr).error.code, 'AM_ERR_CONNECT_FAILED')
    // in words: nothing queued is said so, not "the 0 queued send(s)"
    const upText = ok(await cli(['status'], { home: me, server: relay.url }), 'status')
    assert.match(upText.stdout, /^connected: ws:\/\/\S+ \(since \S+\); outbox: nothing queued\n$/)
    const downText = await cli(['status', '--timeout', '0.5'], { home: me, server: 'http://127.0.0.1:1' })
    assert.equal(downText.code, 1)
    assert.match(downText.stdout, /^connecting: .*; outbox: nothing queued/)
    assert.match(downText.stderr, /^agentmesh: error AM_ERR_CONNECT_FAILED: the relay at \S+ does not answer; nothing is queued\n$/)
  })

  it('catastrophe - a read-only relay: a command says so once, in one plain line, not a raw warning per background write (prekeys, contact policy)', async () => {
    const relay = await startRelay({ memory: true, readOnly: true })
    relays.push(relay)
    const me = join(dir.path, 'read-only-home')
    ok(await cli(['init', '--offline'], { home: me }), 'init')
    for (const args of [['status'], ['file', 'list']]) {
      const r = ok(await cli(args, { home: me, server: relay.url }), args.join(' '))
      assert.equal(r.stderr, 'agentmesh: warning AM_ERR_READ_ONLY: the relay is read-only; reads work, sends are refused (this agent\'s prekeys and contact policy are published once it takes writes again)\n', args.join(' '))
    }
    const j = await cli(['status', '--json'], { home: me, server: relay.url })
    assert.equal(j.code, 0, j.stderr)
    assert.deepEqual(j.stderr.split('\n').filter(l => l !== '').map(l => (JSON.parse(l) as { warning: { code: string } }).warning.code), ['AM_ERR_READ_ONLY'])
  })

  it('catastrophe - status: the outbox in words, singular and plural', () => {
    assert.deepEqual([0, 1, 2].map(outboxText), ['nothing queued', '1 send waiting', '2 sends waiting'])
    assert.deepEqual([0, 1, 3].map(outboxFate), [
      'nothing is queued',
      'the queued send stays in the outbox and goes out once it does',
      'the 3 queued sends stay in the outbox and go out in order once it does',
    ])
  })

  it('catastrophe - a backup taken under load restores to a relay that serves the same backlog; check passes on both', async () => {
    const data = join(dir.path, 'live')
    const relay = await startRelay({ dataDir: data, apiKey: KEY })
    const alice = await agent(relay)
    const bob = await agent(relay)
    bob.close()
    await bob.closed
    let sending = true
    let sent = 0
    const load = (async () => {
      while (sending) {
        const env = alice.envelope(bob.id.amid, `m${sent++}`)
        alice.sendRaw(encodeSend(JSON.stringify(env)))
        await alice.next(f => f.id === env.id && f.op === 'ack')
      }
    })()
    while (sent < 50) await new Promise(resolve => setTimeout(resolve, 5))
    const out = join(dir.path, 'copy.db')
    const b = json(ok(await cli(['backup', '--out', out, '--json', '--api-key', KEY], { home, server: relay.url }), 'backup'))[0]
    sending = false
    await load
    assert.equal(b.out, out)
    assert.equal(statSync(out).mode & 0o777, 0o600)
    assert.equal(statSync(b.file).mode & 0o777, 0o600)
    assert.ok(b.file.startsWith(join(data, 'backups') + '/'))
    ok(await cli(['check', '--json', '--api-key', KEY], { home, server: relay.url }), 'check on the running relay')
    // --out into a directory that does not exist: a usage error before any backup is taken
    const kept = readdirSync(join(data, 'backups')).length
    assertCliError(await cli(['backup', '--out', join(dir.path, 'no-such-dir', 'x.db'), '--api-key', KEY], { home, server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2, /--out .*: its directory .*no-such-dir does not exist/)
    assert.equal(readdirSync(join(data, 'backups')).length, kept, 'no backup taken for it')
    alice.close()
    await relay.close()

    // what the backup holds for bob: a consistent prefix of what was sent
    const copy = sqliteStore(out)
    const inBackup = (await copy.read(bob.id.amid, 0, 10_000)).map(m => m.id)
    await copy.close()
    assert.ok(inBackup.length >= 50 && inBackup.length <= sent, `${inBackup.length} of ${sent}`)

    const target = join(dir.path, 'restored')
    const r = json(ok(await cli(['restore', out, '--data', target, '--json'], { home }), 'restore'))[0]
    assert.equal(r.restored, join(target, DB_FILE))
    assert.ok(r.audit_rows > 0)
    assert.equal(r.replaced, undefined, 'nothing to keep aside in a new directory')
    const chk = json(ok(await cli(['check', '--data', target, '--full', '--json'], { home }), 'check --data'))[0]
    assert.deepEqual([chk.ok, chk.integrity.found, chk.audit.ok], [true, 'ok', true])

    const back = await startRelay({ dataDir: target, apiKey: KEY })
    relays.push(back)
    const b2 = await agent(back, bob.id)
    const got = await b2.collect(f => f.op === 'deliver', inBackup.length)
    assert.deepEqual(got.map(f => f.env.id), inBackup, 'the same backlog, in order')
    // the backup was taken while its relay ran (its run marker set): a restore is not an unclean stop
    assert.deepEqual(b2.frames.filter(f => f.op === 'event' && f.event.type === 'catastrophe_alert').map(f => f.event.data.eventType), [])
    b2.close()
  })

  it('catastrophe - restore refuses a file that is not a valid backup before replacing anything, and keeps the replaced database aside', async () => {
    const data = join(dir.path, 'victim')
    const relay = await startRelay({ dataDir: data, apiKey: KEY })
    await relay.close()
    const before = sha(join(data, DB_FILE))
    const text = join(dir.path, 'notes.txt')
    writeFileSync(text, 'these are not the pages you are looking for\n'.repeat(200))
    assertCliError(await cli(['restore', text, '--data', data], { home }), 'AM_ERR_NOT_A_BACKUP', 1, /nothing was replaced/)
    // the message names the file the operator gave, not the copy it was checked on
    assertCliError(await cli(['restore', text, '--data', data], { home }), 'AM_ERR_NOT_A_BACKUP', 1, new RegExp(`error AM_ERR_NOT_A_BACKUP: ${text.replace(/[.]/g, '\\.')} is not a valid AgentMesh database`))
    // a refused restore into a directory that did not exist leaves none behind
    const fresh = join(dir.path, 'never-made')
    assertCliError(await cli(['restore', text, '--data', fresh], { home }), 'AM_ERR_NOT_A_BACKUP', 1)
    assert.equal(existsSync(fresh), false, 'no data directory made for a refused restore')
    const empty = join(dir.path, 'empty.db')
    const Database = (await import('better-sqlite3')).default
    new Database(empty).exec('CREATE TABLE t (x)').close()
    assertCliError(await cli(['restore', empty, '--data', data], { home }), 'AM_ERR_NOT_A_BACKUP', 1, /no AgentMesh schema/)
    assertCliError(await cli(['restore', join(dir.path, 'missing.db'), '--data', data], { home }), 'AM_ERR_NOT_A_BACKUP', 1)
    assert.equal(sha(join(data, DB_FILE)), before, 'the relay\'s database is untouched')
    assert.deepEqual(readdirSync(data).filter(f => f.includes('restore') || f.includes('replaced')), [], 'no staging file left, nothing moved')

    // a valid one: refused while a relay runs on the directory, then the replaced database is kept aside
    const good = join(dir.path, 'good.db')
    ok(await cli(['backup', '--data', data, '--out', good, '--json'], { home }), 'backup --data')
    const running = await startRelay({ dataDir: data, apiKey: KEY })
    try {
      assertCliError(await cli(['restore', good, '--data', data], { home }), 'AM_ERR_DATA_DIR', 1, /in use by a running relay/)
      assertCliError(await cli(['backup', '--data', data], { home }), 'AM_ERR_DATA_DIR', 1, /in use/)
    } finally {
      await running.close()
    }
    const kept = sha(join(data, DB_FILE))
    const r = json(ok(await cli(['restore', good, '--data', data, '--json'], { home }), 'restore'))[0]
    assert.ok(existsSync(r.replaced))
    assert.equal(sha(r.replaced), kept, 'the replaced database, as it was')
  })

  it('catastrophe - check --data finds a damaged database: exit 1, DataCorrupt, the verdict on stdout', async () => {
    const data = join(dir.path, 'damaged')
    const relay = await startRelay({ dataDir: data, apiKey: KEY })
    const a = await agent(relay)
    const b = await agent(relay)
    for (let i = 0; i < 300; i++) {
      const env = a.envelope(b.id.amid, 'x'.repeat(200) + i)
      a.sendRaw(encodeSend(JSON.stringify(env)))
    }
    await b.collect(f => f.op === 'deliver', 300)
    a.close(); b.close()
    await relay.close()
    damage(join(data, DB_FILE))
    const r = await cli(['check', '--data', data, '--json'], { home })
    assert.equal(r.code, 1)
    const verdict = json(r)[0]
    assert.equal(verdict.ok, false)
    assert.equal(verdict.integrity.ok, false)
    assert.equal(JSON.parse(r.stderr).error.code, 'AM_ERR_DATA_CORRUPT')
  })
})

describe('catastrophe - real processes', { concurrency: 1 }, () => {
  const dir = tempDir()
  after(() => { dir.cleanup() })

  it('catastrophe - a relay killed with SIGKILL reports server_down at its next start; one stopped cleanly does not', async () => {
    const data = join(dir.path, 'killed')
    const first = await spawnRelay({ dataDir: data, args: ['--api-key', KEY] })
    await first.kill('SIGTERM')
    const second = await spawnRelay({ dataDir: data, args: ['--api-key', KEY] })
    const clean = await (await fetch(`${second.url}/api/v1/catastrophe`, { headers: { 'x-api-key': KEY } })).json() as { events: unknown[] }
    assert.deepEqual(clean.events, [], 'a clean stop reports nothing')
    await second.kill('SIGKILL')
    const third = await spawnRelay({ dataDir: data, args: ['--api-key', KEY] })
    try {
      const r = await (await fetch(`${third.url}/api/v1/catastrophe`, { headers: { 'x-api-key': KEY } })).json() as { events: Array<Record<string, unknown>> }
      assert.equal(r.events.length, 1)
      assert.deepEqual([r.events[0]!.eventType, r.events[0]!.reportedBy, r.events[0]!.status], ['server_down', 'relay', 'reported'])
    } finally {
      await third.kill('SIGTERM')
    }
  })

  it('catastrophe - restore into the directory of a relay that signed audit heads after the backup: named, and serve needs --accept-data-loss once', async () => {
    const data = join(dir.path, 'heads')
    const home = join(dir.path, 'heads-home')
    ok(await cli(['init', '--offline'], { home }), 'init')
    let relay = await spawnRelay({ dataDir: data, args: ['--api-key', KEY] })
    ok(await cli(['register'], { home, server: relay.url }), 'register')
    const backup = json(ok(await cli(['backup', '--json', '--api-key', KEY], { home, server: relay.url }), 'backup'))[0]
    // written after the backup: a role set (audited), then the final head at shutdown covers it
    const me = json(ok(await cli(['whoami', '--json'], { home }), 'whoami'))[0]
    const put = await fetch(`${relay.url}/api/v1/agents/${me.amid as string}/role`, { method: 'PUT', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'warden' }) })
    assert.equal(put.status, 200)
    await relay.kill('SIGTERM')
    const r = json(ok(await cli(['restore', backup.file, '--data', data, '--json'], { home }), 'restore'))[0]
    assert.ok(r.behind_signed_head !== undefined, JSON.stringify(r))
    assert.ok(r.behind_signed_head.head_seq > r.behind_signed_head.db_seq)
    const refused = await cli(['serve', '--data', data, '--port', '0', '--api-key', KEY], { process: true, timeoutMs: 30_000 })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /AM_ERR_DATA_LOSS/)
    relay = await spawnRelay({ dataDir: data, args: ['--api-key', KEY, '--accept-data-loss'] })
    try {
      const roles = await (await fetch(`${relay.url}/api/v1/roles`, { headers: { 'x-api-key': KEY } })).json() as Record<string, unknown>
      assert.ok(!JSON.stringify(roles).includes(me.amid as string), 'the role set after the backup is not in it')
    } finally {
      await relay.kill('SIGTERM')
    }
  })

  it('catastrophe - serve on a damaged database is a clear refusal: one coded line, exit 65 (a supervisor does not restart it)', async () => {
    const data = join(dir.path, 'corrupt')
    const r = await spawnRelay({ dataDir: data, args: ['--api-key', KEY] })
    await r.kill('SIGTERM')
    // enough pages to damage
    const s = sqliteStore(join(data, DB_FILE))
    for (let i = 0; i < 200; i++) await s.putSettings({ [`k${i}`]: 'v'.repeat(300) })
    await s.close()
    damage(join(data, DB_FILE))
    const run = await cli(['serve', '--data', data, '--port', '0', '--api-key', KEY], { process: true, timeoutMs: 30_000 })
    assert.equal(run.code, 65, run.stderr)
    const lines = run.stderr.split('\n').filter(l => l !== '' && l.startsWith('agentmesh: '))
    assert.equal(lines.length, 1, run.stderr)
    assert.match(lines[0]!, /^agentmesh: error AM_ERR_DATA_CORRUPT: .*(restore|backup)/)
    assert.equal(lines[0]!.match(/restore/g)?.length, 2, `one hint to restore, with the command: ${lines[0]!}`)
    // check names each problem quick_check found on a line of its own
    const chk = await cli(['check', '--data', data])
    assert.equal(chk.code, 1, chk.stderr)
    const out = chk.stdout.split('\n')
    assert.equal(out[0], 'integrity: FAILED:')
    const problems = out.slice(1).filter(l => l.startsWith('  '))
    assert.ok(problems.length >= 1 && problems.length <= 11, chk.stdout)
    for (const p of problems) assert.doesNotMatch(p, /\*\*\*.+\S(Page|Tree|On tree) /, `one problem per line: ${p}`)
  })
})
