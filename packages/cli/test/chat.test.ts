/**
 * The chat commands, driven as a user would: one persistent relay process (`serve --api-key`),
 * three agents (alice, bob, carol), each through the CLI (in process) in its own home; the audit
 * log checked online, then offline on the stopped relay's files, then again after a row is edited.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { assertCliError, cli, spawnRelay, startCli, tempDir, waitFor, type CliResult, type RelayProcess, type RunningCli } from '@agentmesh/testing'

const API_KEY = `operator-${randomBytes(12).toString('hex')}`


function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}

const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)

interface HistoryJson { room: string, seq: number, id: string, from: string, from_handle?: string, type: string, ts: number, text?: string }

describe('chat', { concurrency: 1 }, () => {
  const dir = tempDir()
  const data = join(dir.path, 'data')
  let relay: RelayProcess | undefined
  let server: string
  const home = (name: string): string => join(dir.path, name)
  const as = (name: string): { home: string, server: string } => ({ home: home(name), server })
  const ids: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' }
  const background: RunningCli[] = []
  let auditRows = 0

  before(async () => {
    relay = await spawnRelay({ dataDir: data, args: ['--api-key', API_KEY] })
    server = relay.url
  })
  after(async () => {
    for (const c of background) c.interrupt()
    await Promise.all(background.map(async c => await c.done))
    await relay?.kill()
    dir.cleanup()
  })

  it('chat - bad arguments exit 2 with one line, before any I/O', async () => {
    // no identity, no relay: a command that did any I/O would fail otherwise (exit 1)
    const o = { home: home('nobody'), server: 'http://127.0.0.1:1' }
    const runs = await Promise.all([
      cli(['chat', '--room', 'Ops Room', '--msg', 'x'], o),
      cli(['history', 'ops', '--before', '5', '--after', '1'], o),
      cli(['dm', 'bob', 'hi'], o),
      cli(['handle', 'set', 'relay'], o),
      cli(['task', 'dispatch', '@bob', 'Do-It'], o),
      cli(['logs', '--limit', 'ten', '--json'], o),
    ])
    const [badRoom, beforeAfter, bareName, reserved, badCommand, badLimit] = runs
    assertCliError(badRoom!, 'AM_ERR_INVALID_ARGUMENT', 2, /--room "Ops Room"/)
    assertCliError(beforeAfter!, 'AM_ERR_INVALID_ARGUMENT', 2, /--before or --after/)
    assertCliError(bareName!, 'AM_ERR_INVALID_ARGUMENT', 2, /peer "bob".*@handle/)
    assertCliError(reserved!, 'AM_ERR_INVALID_ARGUMENT', 2, /"relay" is reserved/)
    assertCliError(badCommand!, 'AM_ERR_INVALID_ARGUMENT', 2, /command "Do-It"/)
    // --json: the error is one JSON line
    assert.equal(badLimit!.code, 2, badLimit!.stderr)
    assert.equal(badLimit!.stdout, '')
    const e = JSON.parse(badLimit!.stderr) as { error: { code: string, message: string } }
    assert.equal(e.error.code, 'AM_ERR_INVALID_ARGUMENT')
    assert.match(e.error.message, /--limit/)
  })

  it('chat - each agent takes a handle; a handle held by another agent (in any case) is refused with AM_ERR_HANDLE_TAKEN', async () => {
    const names = ['alice', 'bob', 'carol'] as const
    const inits = await Promise.all(names.map(async n => await cli(['init', '--open', '--name', n, '--json'], as(n))))
    names.forEach((n, i) => { ids[n] = (JSON.parse(ok(inits[i]!, `init ${n}`).lines[0]!) as { amid: string }).amid })
    const set = await Promise.all(names.map(async n => await cli(['handle', 'set', n, '--json'], as(n))))
    names.forEach((n, i) => { assert.deepEqual(json(ok(set[i]!, `handle set ${n}`)), [{ amid: ids[n], handle: n }]) })

    const [taken, shown, again] = await Promise.all([
      cli(['handle', 'set', 'BOB'], as('carol')),
      cli(['handle', 'show', '@bob', '--json'], as('carol')),
      cli(['handle', 'set', '@alice', '--json'], as('alice')),
    ])
    assertCliError(taken, 'AM_ERR_HANDLE_TAKEN', 1, /BOB/)
    // taking your own handle again is no error (the relay answers either 409 or "previous" = the same)
    const same = json(ok(again, 'the same handle again'))
    assert.deepEqual(same.map(r => [r.amid, r.handle]), [[ids.alice, 'alice']])
    assert.deepEqual(json(ok(shown, 'handle show')), [{ handle: 'bob', amid: ids.bob }])
    // and the other way round, by AMID
    assert.deepEqual(json(ok(await cli(['handle', 'show', ids.bob, '--json'], as('carol')), 'handle show amid')), [{ amid: ids.bob, handle: 'bob' }])
  })

  it('chat - dm @bob reaches bob end-to-end encrypted, and only bob', async () => {
    // before any room message: nothing else waits for bob or carol
    const text = `hello-${randomBytes(6).toString('hex')}`
    const sent = json(ok(await cli(['dm', '@bob', text, '--json'], as('alice')), 'dm'))
    assert.equal(sent.length, 1)
    assert.deepEqual([sent[0].to, sent[0].peer, sent[0].status], [ids.bob, '@bob', 'stored'])
    const [atBob, atCarol, unknown] = await Promise.all([
      cli(['listen', '--count', '1', '--timeout', '15', '--json'], as('bob')),
      cli(['listen', '--timeout', '2', '--json'], as('carol')),
      cli(['dm', '@nobody-here', 'x'], as('alice')),
    ])
    const got = json(ok(atBob, 'bob listen'))
    assert.equal(got.length, 1, atBob.stdout)
    assert.deepEqual([got[0].id, got[0].from, got[0].from_handle, got[0].to, got[0].text, got[0].encrypted], [sent[0].id, ids.alice, 'alice', ids.bob, text, true])
    // as text, the sender is shown with its handle
    ok(await cli(['dm', ids.bob, 'second one'], as('alice')), 'dm by amid')
    const line = ok(await cli(['listen', '--count', '1', '--timeout', '15'], as('bob')), 'bob listen (text)').lines
    assert.equal(line.length, 1)
    assert.match(line[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${ids.alice} \\(@alice\\) \\[unverified\\]: second one$`))
    assert.deepEqual([ok(atCarol, 'carol listen').lines, atCarol.stderr], [[], ''], 'nothing reaches carol')
    assertCliError(unknown, 'AM_ERR_UNKNOWN_HANDLE', 1, /nobody-here/)
  })

  it('chat - a message to the global room is in its history once, from alice with her handle', async () => {
    const sent = json(ok(await cli(['chat', '--room', 'global', '--msg', 'ping', '--json'], as('alice')), 'chat --msg'))
    assert.equal(sent.length, 1)
    assert.deepEqual([sent[0].room, sent[0].status], ['global', 'stored'])
    const [j, text] = await Promise.all([
      cli(['history', 'global', '--json'], as('bob')),
      cli(['history', '#global'], as('bob')),
    ])
    const pings = json<HistoryJson>(ok(j, 'history --json')).filter(m => m.text === 'ping')
    assert.equal(pings.length, 1, j.stdout)
    assert.deepEqual([pings[0]!.id, pings[0]!.from, pings[0]!.from_handle, pings[0]!.type, pings[0]!.room], [sent[0].id, ids.alice, 'alice', 'chat', 'global'])
    const line = ok(text, 'history').lines.find(l => l.endsWith(': ping'))
    assert.match(line ?? '', new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z #${pings[0]!.seq} alice: ping$`), text.stdout)
  })

  it('chat - alice creates ops, bob joins: who --room ops lists the two of them, carol cannot read it', async () => {
    const created = json(ok(await cli(['room', 'create', 'ops', '--topic', 'ops talk', '--json'], as('alice')), 'room create'))
    assert.deepEqual([created[0].id, created[0].kind, created[0].topic, created[0].owner], ['ops', 'public', 'ops talk', ids.alice])
    // run again by its owner (a script, the README's tour twice): kept, exit 0; anyone else, or
    // another kind, is told it exists
    const again = ok(await cli(['room', 'create', 'ops', '--topic', 'ops talk'], as('alice')), 'room create again')
    assert.equal(again.stdout, 'public room ops (yours, kept)\n')
    assertCliError(await cli(['room', 'create', 'ops'], as('bob')), 'AM_ERR_ROOM_EXISTS', 1)
    assertCliError(await cli(['room', 'create', 'ops', '--private'], as('alice')), 'AM_ERR_ROOM_EXISTS', 1)
    ok(await cli(['room', 'join', '#ops'], as('bob')), 'room join')
    const [who, rooms, outsider] = await Promise.all([
      cli(['who', '--room', 'ops', '--json'], as('alice')),
      cli(['rooms', '--json'], as('bob')),
      cli(['history', 'ops'], as('carol')),
    ])
    const agents = json<{ amid: string, handle?: string, status: string }>(ok(who, 'who'))
    assert.deepEqual(agents.map(a => [a.amid, a.handle]).sort(), [[ids.alice, 'alice'], [ids.bob, 'bob']].sort())
    for (const a of agents) assert.match(a.status, /^(online|idle|offline)$/)
    // asking is activity: the caller, with no connection open, shows online (docs/protocol.md §17.4)
    assert.equal(agents.find(a => a.amid === ids.alice)?.status, 'online', who.stdout)
    const everyone = ok(await cli(['who'], as('carol')), 'who')
    assert.match(everyone.stdout, new RegExp(`^online   carol  ${ids.carol}  active \\S+$`, 'm'), everyone.stdout)
    const list = json<{ id: string, kind: string, joined: boolean, members: number }>(ok(rooms, 'rooms'))
    assert.deepEqual(list.filter(r => r.id === 'ops').map(r => [r.kind, r.joined, r.members]), [['public', true, 2]])
    assert.ok(list.some(r => r.id === 'global' && r.kind === 'global'), rooms.stdout)
    assertCliError(outsider, 'AM_ERR_NOT_MEMBER', 1)
  })

  it('chat - --id twice is stored then duplicate, and the history holds one copy; a follower sees it, then --stdin lines in order', async () => {
    const id = `retry-${randomBytes(6).toString('hex')}`
    const first = json(ok(await cli(['chat', '--room', 'ops', '--id', id, '--msg', 'once', '--json'], as('alice')), 'first'))
    const again = json(ok(await cli(['chat', '--room', '#ops', '--id', id, '--msg', 'once', '--json'], as('alice')), 'again'))
    assert.deepEqual(first, [{ id, room: 'ops', status: 'stored' }])
    assert.deepEqual(again, [{ id, room: 'ops', status: 'duplicate' }])

    // bob follows ops (the newest messages, then new ones) while alice posts three lines
    const follower = startCli(['chat', '--room', 'ops', '--timeout', '30', '--json'], as('bob'))
    background.push(follower)
    const seen = (): HistoryJson[] => follower.lines.map(l => JSON.parse(l) as HistoryJson)
    const err = (): string => follower.stderr()
    const hist = await cli(['history', 'ops', '--json'], as('bob'))
    assert.deepEqual(json<HistoryJson>(ok(hist, 'history')).filter(m => m.id === id).map(m => m.text), ['once'], 'one copy')
    await waitFor(() => seen().some(m => m.id === id), 'the follower to print the history', 20_000)

    const texts = ['first line', 'second line', 'third line']
    const posted = json(ok(await cli(['chat', '--room', 'ops', '--stdin', '--json'], { ...as('alice'), input: texts.join('\n') + '\n' }), 'chat --stdin'))
    assert.equal(posted.length, 3)
    assert.ok(posted.every(p => p.status === 'stored' && p.room === 'ops'))
    await waitFor(() => seen().length >= 4, 'the follower to print the three lines', 20_000)
    follower.interrupt()
    const stopped = await follower.done
    assert.equal(stopped.code, 0, `the follower stops on Ctrl-C with 0: ${err()}`)
    const shown = seen()
    assert.deepEqual(shown.map(m => m.text), ['once', ...texts], 'the retried message once, then the lines in order')
    assert.deepEqual(shown.slice(1).map(m => m.id), posted.map(p => p.id))
    assert.ok(shown.every((m, i) => i === 0 || m.seq > shown[i - 1]!.seq), 'room seqs increase')
    assert.ok(shown.every(m => m.from === ids.alice && m.from_handle === 'alice' && m.room === 'ops'))
  })

  it('chat - task dispatch --wait prints the task once it ended (failed at its deadline) and exits 1 with AM_ERR_TASK_FAILED', async () => {
    const r = await cli(['task', 'dispatch', '@bob', 'status', '--room', 'ops', '--deadline', '1', '--wait', '--timeout', '20', '--json'], as('alice'))
    assert.equal(r.code, 1, `a task that did not complete fails the command; stdout: ${r.stdout} stderr: ${r.stderr}`)
    const errs = r.stderr.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { error: { code: string, message: string } })
    assert.equal(errs.length, 1, r.stderr)
    assert.equal(errs[0]!.error.code, 'AM_ERR_TASK_FAILED')
    assert.match(errs[0]!.error.message, /ended failed/)
    const tasks = json(r)
    assert.equal(tasks.length, 1, r.stdout)
    const t = tasks[0]
    assert.deepEqual([t.requester, t.assignee, t.command, t.room, t.state], [ids.alice, ids.bob, 'status', 'ops', 'failed'])
    assert.deepEqual(t.history.map((h: { state: string }) => h.state), ['submitted', 'failed'])

    const text = await cli(['task', 'dispatch', '@bob', 'status', '--deadline', '1', '--wait', '--timeout', '20'], as('alice'))
    assert.equal(text.code, 1, text.stderr)
    assert.match(text.stdout, /\/status → \S+ {2}failed/, 'the task is printed on stdout')
    assert.match(text.stderr, /^agentmesh: error AM_ERR_TASK_FAILED: task \S+ ended failed/m)
  })

  it('chat - the audit log: workers read their own rows, the operator all of them; logs verify passes; roles are the operator\'s', async () => {
    const [verify, handles, own, forbidden] = await Promise.all([
      cli(['logs', 'verify'], as('alice')),
      cli(['logs', '--action', 'handle.set', '--json'], { ...as('alice'), env: { AGENTMESH_API_KEY: API_KEY } }),
      cli(['logs', '--json', '--limit', '200'], as('carol')),
      cli(['role', 'set', '@bob', 'master'], as('alice')),
    ])
    // the relay signs its first head within a second of the first row: with it or not yet
    const m = /^audit log verified: (\d+) rows(, all verified up to the signed head at row \d+( \(rows \d+-\d+ are newer than it\))?|; no signed head to check against .*)$/.exec(ok(verify, 'logs verify').lines[0] ?? '')
    assert.ok(m !== null, verify.stdout)
    auditRows = Number(m[1])
    const rows = json<{ seq: number, actor: string, action: string, target?: string, detail: { handle?: string } }>(ok(handles, 'logs --action'))
    // set at the same time: in any order (alice's second, unchanged set may be audited too); carol's refused one is not
    const distinct = [...new Set(rows.map(r => JSON.stringify([r.detail.handle, r.actor, r.target])))].sort()
    assert.deepEqual(distinct, [['alice', ids.alice, ids.alice], ['bob', ids.bob, ids.bob], ['carol', ids.carol, ids.carol]].map(x => JSON.stringify(x)), handles.stdout)
    assert.ok(rows.length <= 4, handles.stdout)
    assert.ok(rows.every((r, i) => i === 0 || r.seq > rows[i - 1]!.seq))
    const carols = json<{ actor: string, action: string }>(ok(own, 'logs (carol)'))
    assert.ok(carols.length >= 1 && carols.every(r => r.actor === ids.carol), own.stdout)
    assert.ok(carols.some(r => r.action === 'handle.set'))
    assert.ok(auditRows > rows.length + 5, `every send, room change and task is a row too: ${auditRows}`)
    assertCliError(forbidden, 'AM_ERR_FORBIDDEN', 1)
  })

  it('chat - logs prints the newest rows oldest first; --before pages back, --after reads forward', async () => {
    const operator = { ...as('alice'), env: { AGENTMESH_API_KEY: API_KEY } }
    const all = json<{ seq: number }>(ok(await cli(['logs', '--after', '0', '--limit', '10000', '--json'], operator), 'logs --after 0')).map(r => r.seq)
    assert.ok(all.length > 5 && all[0] === 1, `from the first row: ${all.join(' ')}`)
    const newest = await cli(['logs', '--limit', '3', '--json'], operator)
    assert.deepEqual(json<{ seq: number }>(ok(newest, 'logs --limit 3')).map(r => r.seq), all.slice(-3), 'the newest three, oldest first')
    const text = ok(await cli(['logs', '--limit', '3'], operator), 'logs --limit 3 (text)')
    assert.equal(text.lines.length, 3, text.stdout)
    assert.match(text.lines[2]!, new RegExp(`^\\S+ #${all[all.length - 1]!} `), 'the last line is the newest row')
    assert.match(text.stderr, new RegExp(`more: \`agentmesh logs --before ${all[all.length - 3]!}\``))
    // WebSocket sends: one message.batch row per commit, a line per send (at most 5, then how many more)
    const batch = ok(await cli(['logs', '--action', 'message.batch', '--limit', '1'], operator), 'logs --action message.batch')
    const head = /^\S+ #\d+ (am\w+) message\.batch (\d+) sends? \(from to id type bytes\)$/.exec(batch.lines[0] ?? '')
    assert.ok(head !== null, batch.stdout)
    const n = Number(head[2])
    assert.equal(batch.lines.length, 1 + Math.min(n, 5) + (n > 5 ? 1 : 0), batch.stdout)
    assert.match(batch.lines[1]!, /^ {2}"am\w+" "(am\w+|#[\w-]+)" "[^"]+" "[\w.]+" \d+$/)
    const back = await cli(['logs', '--limit', '2', '--before', String(all[all.length - 3]!), '--json'], operator)
    assert.deepEqual(json<{ seq: number }>(ok(back, 'logs --before')).map(r => r.seq), all.slice(-5, -3))
    const first = await cli(['logs', '--after', '0', '--limit', '2', '--json'], operator)
    assert.deepEqual(json<{ seq: number }>(ok(first, 'logs --after 0 --limit 2')).map(r => r.seq), [1, 2])
    assertCliError(await cli(['logs', '--before', '5', '--after', '1'], operator), 'AM_ERR_INVALID_ARGUMENT', 2, /--before does not go with --after/)

    // --follow still prints every row from the first, then new ones
    const follower = startCli(['logs', '--follow', '--timeout', '30', '--json'], operator)
    background.push(follower)
    const seqs = (): number[] => follower.lines.map(l => (JSON.parse(l) as { seq: number }).seq)
    await waitFor(() => seqs().includes(all[all.length - 1]!), 'logs --follow to print the log so far', 20_000)
    ok(await cli(['chat', '--room', 'ops', '--msg', 'audited'], as('alice')), 'chat')
    await waitFor(() => seqs().some(q => q > all[all.length - 1]!), 'logs --follow to print the new row', 20_000)
    follower.interrupt()
    assert.equal((await follower.done).code, 0, follower.stderr())
    assert.equal(seqs()[0], 1)
  })

  it('chat - logs verify --data checks the stopped relay\'s files, and finds an edited row', async () => {
    assert.equal(await relay!.kill(), 0, relay!.stderr())
    const offline = ok(await cli(['logs', 'verify', '--data', data]), 'logs verify --data')
    // the relay signed its final head on the way down: the whole log is checked against it
    const m = /^audit log verified: (\d+) rows, all verified up to the signed head at row (\d+)$/.exec(offline.lines[0] ?? '')
    assert.ok(m !== null, offline.stdout)
    assert.equal(m[2], m[1], 'the final head is the newest row')
    assert.ok(Number(m[1]) >= auditRows, `${m[1]} rows offline, ${auditRows} online`)

    const db = new Database(join(data, 'agentmesh.db'))
    let seq: number
    try {
      const row = db.prepare("SELECT seq, detail FROM audit WHERE action = 'handle.set' AND target = ?").get(ids.bob) as { seq: number, detail: string }
      assert.match(row.detail, /"bob"/)
      db.prepare('UPDATE audit SET detail = ? WHERE seq = ?').run(row.detail.replace('"bob"', '"mallory"'), row.seq)
      seq = row.seq
    } finally {
      db.close() // the store takes the file exclusively
    }
    const tampered = await cli(['logs', 'verify', '--data', data])
    assertCliError(tampered, 'AM_ERR_AUDIT_TAMPERED', 1, new RegExp(`row ${seq}\\b.*changed`))
  })
})
