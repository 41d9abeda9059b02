/**
 * The CLI's contract: outputs, --json, exit codes, one-line coded errors and never a stack trace.
 * The CLI runs in process against an in-process relay, `serve` included (its failures, its stop
 * on an interrupt); what only processes show (the binary's exit code, a real `serve` starting and
 * stopping on SIGTERM) runs the binary.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import type { Relay } from '@agentmesh/server'
import { Readable } from 'node:stream'
import { run, type CliIo } from '../src/index.ts'
import { cli, freePort, startRelay, rawAgent, spawnRelay, startCli, tempDir, waitFor, type CliResult, type RunningCli } from '@agentmesh/testing'

/** Asserts a failed run: exit code, one line on stderr with the code, no stack trace. */
function assertError (r: CliResult, code: string, exit: number, json = false): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`)
  const errLines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(errLines.length, 1, `exactly one line on stderr, got: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  if (json) {
    const j = JSON.parse(errLines[0]!) as { error: { code: string, message: string } }
    assert.equal(j.error.code, code)
    assert.ok(j.error.message.length > 10)
  } else {
    assert.match(errLines[0]!, new RegExp(`^agentmesh: error ${code}: .{10,}`))
  }
}

describe('cli', () => {
  const dir = tempDir()
  let relay: Relay
  let alice: string
  let bob: string
  const a = (): string => `${dir.path}/a`
  const b = (): string => `${dir.path}/b`

  before(async () => {
    relay = await startRelay()
    const ra = await cli(['init', '--open', '--name', 'alice'], { home: a(), server: relay.url })
    assert.equal(ra.code, 0, ra.stderr)
    alice = ra.lines[0]!
    const rb = await cli(['init', '--open', '--name', 'bob'], { home: b(), server: relay.url })
    bob = rb.lines[0]!
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  it('cli - init prints the AMID alone, whoami prints the same, the identity file is 0600 in a 0700 home', async () => {
    assert.match(alice, /^am[1-9A-HJ-NP-Za-km-z]{42,46}$/)
    const w = await cli(['whoami'], { home: a() })
    assert.deepEqual(w.lines, [alice])
    const wj = await cli(['whoami', '--json'], { home: a() })
    assert.deepEqual(JSON.parse(wj.lines[0]!), { amid: alice, name: 'alice', home: a() })
    assert.equal(statSync(`${a()}/identity.json`).mode & 0o777, 0o600)
    assert.equal(statSync(a()).mode & 0o777, 0o700)
    assert.equal(statSync(`${a()}/state.db`).mode & 0o777, 0o600)
    assert.doesNotMatch(readFileSync(`${a()}/identity.json`, 'utf8'), /undefined/)
  })

  it('cli - send prints the envelope id; the same --id twice is stored once and received once', async () => {
    const s1 = await cli(['send', bob, 'first', '--id', 'fixed-id-0001', '--json'], { home: a(), server: relay.url })
    assert.equal(s1.code, 0, s1.stderr)
    assert.deepEqual(JSON.parse(s1.lines[0]!), { id: 'fixed-id-0001', to: bob, status: 'stored' })
    const s2 = await cli(['send', bob, 'first', '--id', 'fixed-id-0001', '--json'], { home: a(), server: relay.url })
    assert.deepEqual(JSON.parse(s2.lines[0]!), { id: 'fixed-id-0001', to: bob, status: 'duplicate' })
    const s3 = await cli(['send', bob, 'second'], { home: a(), server: relay.url })
    assert.equal(s3.code, 0)
    assert.match(s3.lines[0]!, /^[0-9a-f-]{36}$/)
    const got = await cli(['listen', '--count', '2', '--json', '--timeout', '20'], { home: b(), server: relay.url })
    assert.equal(got.code, 0, got.stderr)
    const msgs = got.lines.map(l => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(msgs.map(m => [m.id, m.from, m.to, m.type, m.text]), [
      ['fixed-id-0001', alice, bob, 'chat', 'first'],
      [s3.lines[0], alice, bob, 'chat', 'second'],
    ])
    // nothing else came: the next message bob gets is one sent after all of them
    assert.equal((await cli(['send', bob, 'third'], { home: a(), server: relay.url })).code, 0)
    const text = await cli(['listen', '--count', '1', '--timeout', '20'], { home: b(), server: relay.url })
    assert.equal(text.code, 0, text.stderr)
    assert.deepEqual(text.lines.map(l => l.replace(/^\S+ \S+ \[unverified\]: /, '')), ['third'])
  })

  it('cli - listen prints text lines with time, sender and text; the sender is [unverified] until its safety number is accepted', async () => {
    await cli(['send', bob, 'hello there'], { home: a(), server: relay.url })
    const got = await cli(['listen', '--count', '1', '--timeout', '20'], { home: b(), server: relay.url })
    assert.equal(got.code, 0, got.stderr)
    assert.match(got.lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${alice} \\[unverified\\]: hello there$`))

    const accepted = await cli(['verify', alice, '--accept', '--json'], { home: b(), server: relay.url })
    assert.equal(accepted.code, 0, accepted.stderr)
    assert.equal((await cli(['send', bob, 'verified now'], { home: a(), server: relay.url })).code, 0)
    const after = await cli(['listen', '--count', '1', '--timeout', '20'], { home: b(), server: relay.url })
    assert.equal(after.code, 0, after.stderr)
    assert.match(after.lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${alice}: verified now$`), 'no marker once bob accepted alice\'s safety number')
    assert.equal((await cli(['send', bob, 'as json'], { home: a(), server: relay.url })).code, 0)
    const json = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: b(), server: relay.url })
    assert.equal(json.code, 0, json.stderr)
    const m = JSON.parse(json.lines[0]!) as Record<string, unknown>
    assert.deepEqual([m.text, m.untrusted, (m.provenance as { relation?: string } | null)?.relation, m.safety_number_verified], ['as json', true, 'open', true], 'an open policy (init --open): untrusted, relation "open"')
  })

  it('cli - listen --count with a --timeout that passes first fails with AM_ERR_TIMEOUT', async () => {
    assertError(await cli(['listen', '--count', '3', '--timeout', '1'], { home: b(), server: relay.url }), 'AM_ERR_TIMEOUT', 1)
  })

  it('cli - usage errors exit 2 with AM_ERR_INVALID_ARGUMENT', async () => {
    const cases: string[][] = [
      ['sned', bob, 'x'],
      ['send', bob, 'x', '--bogus'],
      ['send', bob],
      ['send'],
      ['send', 'not-an-amid', 'x'],
      ['send', bob, 'x', '--stdin'],
      ['send', bob, 'x', '--id', 'bad id!'],
      ['send', bob, 'x', '--type', 'Bad Type'],
      ['send', bob, 'x', '--timeout', '-3'],
      ['listen', '--count', 'many'],
      ['listen', '--count', '0'],
      ['listen', '--timeout', 'soon'],
      ['serve', '--port', '99999'],
      ['serve', '--port', 'eighty'],
      ['serve', '--sync', 'sometimes'],
      ['serve', '--memory', '--data', `${dir.path}/x`],
      ['init', '--name', ''],
    ]
    for (const args of cases) {
      const r = await cli(args, { home: a(), server: relay.url })
      assertError(r, 'AM_ERR_INVALID_ARGUMENT', 2)
    }
    assertError(await cli(['send', bob, 'x', '--bogus', '--json'], { home: a() }), 'AM_ERR_INVALID_ARGUMENT', 2, true)
  })

  it('cli - a bare `agentmesh` shows the help and exits 2; --help exits 0', async () => {
    for (const r of [await cli([]), await cli([], { process: true })]) {
      assert.equal(r.code, 2)
      assert.match(r.stdout + r.stderr, /Usage: agentmesh/)
    }
    const h = await cli(['send', '--help'])
    assert.equal(h.code, 0)
    assert.match(h.stdout, /--stdin/)
  })

  it('cli - init again prints the existing AMID and exits 0, registering it; only --force replaces it, after a yes on a terminal or with --yes', async () => {
    const home = `${dir.path}/again`
    const first = await cli(['init', '--offline', '--open', '--name', 'carol'], { home })
    assert.equal(first.code, 0, first.stderr)
    const carol = first.lines[0]!
    // the README's tour run twice: A=$(agentmesh init --name alice) is the AMID both times
    const again = await cli(['init', '--name', 'carol'], { home, server: relay.url })
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(again.lines, [carol])
    assert.match(again.stderr, /an identity already exists at .*identity\.json; kept/)
    assert.match(again.stderr, /registered at /)
    const sent = await cli(['send', carol, 'hello'], { home: b(), server: relay.url })
    assert.equal(sent.code, 0, `init registered the identity made offline: ${sent.stderr}`)
    const j = await cli(['init', '--json', '--name', 'other'], { home, server: relay.url })
    assert.equal(j.code, 0, j.stderr)
    const { server: at, ...kept } = JSON.parse(j.lines[0]!) as Record<string, unknown>
    assert.deepEqual(kept, { amid: carol, name: 'carol', home, created: false, registered: true }, 'the identity as it is: --name does not rename it')
    assert.equal(typeof at, 'string')

    // --force: without a terminal only with --yes
    const refused = await cli(['init', '--force', '--offline'], { home })
    assertError(refused, 'AM_ERR_IDENTITY_EXISTS', 1)
    assert.match(refused.stderr, new RegExp(`\\(${carol}\\).*add --yes`))
    assert.equal(refused.stdout, '')
    assertError(await cli(['init', '--yes', '--offline'], { home }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assert.deepEqual((await cli(['whoami'], { home })).lines, [carol], 'kept')

    // on a terminal, --force asks; only a yes replaces
    const onTerminal = async (answer: boolean): Promise<{ code: number, stdout: string, stderr: string, asked: string[] }> => {
      let stdout = ''
      let stderr = ''
      const asked: string[] = []
      const io: CliIo = {
        stdout: { write: (s: string) => { stdout += s } },
        stderr: { write: (s: string) => { stderr += s } },
        stdin: Readable.from([]),
        env: { AGENTMESH_LOG_LEVEL: 'warn' },
        onInterrupt: () => () => {},
        confirm: async (q) => { asked.push(q); return answer },
      }
      const code = await run(['init', '--force', '--offline', '--home', home], io)
      return { code, stdout, stderr, asked }
    }
    const no = await onTerminal(false)
    assert.equal(no.code, 1, no.stderr)
    assert.match(no.stderr, /^agentmesh: error AM_ERR_IDENTITY_EXISTS: .*not confirmed/)
    assert.equal(no.stdout, '')
    assert.equal(no.asked.length, 1)
    assert.match(no.asked[0]!, new RegExp(carol))
    assert.deepEqual((await cli(['whoami'], { home })).lines, [carol], 'kept')
    const yes = await onTerminal(true)
    assert.equal(yes.code, 0, yes.stderr)
    const replaced = yes.stdout.trim()
    assert.match(replaced, /^am[1-9A-HJ-NP-Za-km-z]{42,46}$/)
    assert.notEqual(replaced, carol)
    const scripted = await cli(['init', '--force', '--yes', '--offline', '--json'], { home })
    assert.equal(scripted.code, 0, scripted.stderr)
    const z = JSON.parse(scripted.lines[0]!) as { amid: string, created: boolean }
    assert.equal(z.created, true)
    assert.notEqual(z.amid, replaced)
    assert.deepEqual((await cli(['whoami'], { home })).lines, [z.amid])
  })

  it('cli - runtime errors carry their code: no identity, identity exists, damaged identity, unknown recipient, unreachable relay', async () => {
    assertError(await cli(['whoami'], { home: `${dir.path}/nobody` }), 'AM_ERR_NO_IDENTITY', 1)
    assertError(await cli(['send', bob, 'x'], { home: `${dir.path}/nobody`, server: relay.url }), 'AM_ERR_NO_IDENTITY', 1)
    assertError(await cli(['init', '--offline', '--force'], { home: a() }), 'AM_ERR_IDENTITY_EXISTS', 1)
    const broken = `${dir.path}/broken`
    mkdirSync(broken, { mode: 0o700 })
    writeFileSync(`${broken}/identity.json`, '{"v":1,"amid":"am1","secret_key":', { mode: 0o600 })
    assertError(await cli(['whoami', '--json'], { home: broken }), 'AM_ERR_IDENTITY_CORRUPT', 1, true)
    assert.equal(readFileSync(`${broken}/identity.json`, 'utf8'), '{"v":1,"amid":"am1","secret_key":', 'left as it was')
    assertError(await cli(['init', '--offline'], { home: broken }), 'AM_ERR_IDENTITY_CORRUPT', 1)
    const fixed = await cli(['init', '--offline', '--force', '--yes'], { home: broken })
    assert.equal(fixed.code, 0, `--force replaces a damaged identity: ${fixed.stderr}`)
    assert.deepEqual((await cli(['whoami'], { home: broken })).lines, fixed.lines)

    const damaged = `${dir.path}/damaged-state`
    await cli(['init', '--offline'], { home: damaged })
    writeFileSync(`${damaged}/state.db`, 'not a database '.repeat(300))
    assertError(await cli(['send', bob, 'x'], { home: damaged, server: relay.url }), 'AM_ERR_DATA_CORRUPT', 1)
    assert.equal(readFileSync(`${damaged}/state.db`, 'utf8'), 'not a database '.repeat(300), 'left as it was')

    const stranger = (await cli(['init', '--offline'], { home: `${dir.path}/stranger` })).lines[0]!
    assertError(await cli(['send', stranger, 'x'], { home: a(), server: relay.url }), 'AM_ERR_UNKNOWN_RECIPIENT', 1)
    assertError(await cli(['send', bob, 'x', '--timeout', '1'], { home: a(), server: 'http://127.0.0.1:1' }), 'AM_ERR_CONNECT_FAILED', 1)
    assertError(await cli(['send', bob, 'x'], { home: a(), server: 'ftp://127.0.0.1' }), 'AM_ERR_INVALID_ARGUMENT', 2)
  })

  it('cli - serve refuses a damaged database, a data path that is a file, a port in use, a bad config file', async () => {
    const bad = `${dir.path}/bad-data`
    mkdirSync(bad)
    writeFileSync(`${bad}/agentmesh.db`, 'this is not a database, and it must stay as it is'.repeat(100))
    const before = readFileSync(`${bad}/agentmesh.db`)
    // in process: serve reads its environment and interrupts through the CLI's io, like every command
    const serve = async (args: string[], env?: Record<string, string>): Promise<CliResult> => await cli(['serve', ...args], env === undefined ? {} : { env })
    assertError(await serve(['--port', '0', '--data', bad]), 'AM_ERR_DATA_CORRUPT', 65)
    assert.deepEqual(readFileSync(`${bad}/agentmesh.db`), before)

    const file = `${dir.path}/a-file`
    writeFileSync(file, 'x')
    assertError(await serve(['--port', '0', '--data', file]), 'AM_ERR_DATA_DIR', 1)

    const busy: Server = await new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { resolve(s) }) })
    const port = (busy.address() as { port: number }).port
    try {
      assertError(await serve(['--memory', '--port', String(port)]), 'AM_ERR_ADDRESS_IN_USE', 1)
    } finally {
      busy.close()
    }

    const cfg = `${dir.path}/relay.json`
    writeFileSync(cfg, '{"port": 0, "maxEnvelopBytes": 10}')
    assertError(await cli(['serve', '--memory', '--config', cfg]), 'AM_ERR_INVALID_CONFIG', 2)
    writeFileSync(cfg, '{"port": "zero"}')
    assertError(await cli(['serve', '--memory', '--config', cfg]), 'AM_ERR_INVALID_CONFIG', 2)
    writeFileSync(cfg, '{not json')
    assertError(await cli(['serve', '--memory', '--config', cfg]), 'AM_ERR_INVALID_CONFIG', 2)
    writeFileSync(cfg, '{"port": 0, "reputation": 5}')
    assertError(await cli(['serve', '--memory', '--config', cfg]), 'AM_ERR_INVALID_CONFIG', 2)
    writeFileSync(cfg, '{"port": 0, "reputation": {"flagDelta": 2}}')
    const rep = await cli(['serve', '--memory', '--config', cfg])
    assertError(rep, 'AM_ERR_INVALID_CONFIG', 2)
    assert.match(rep.stderr, /reputation\.flagDelta/)
    assertError(await serve(['--memory', '--port', '0'], { AGENTMESH_MAX_IN_FLIGHT: 'lots' }), 'AM_ERR_INVALID_CONFIG', 2)
    assertError(await serve(['--memory', '--port', '0'], { AGENTMESH_SYNC: 'sometimes' }), 'AM_ERR_INVALID_CONFIG', 2)
  })

  it('cli - several relay addresses (a cluster, commas in --server / AGENTMESH_SERVER): the first does not answer, the next is used, by connections and REST commands alike', async () => {
    // a port nothing listens on (not port 1: fetch refuses that one as a bad port before dialling)
    const dead = await freePort()
    const servers = `ws://127.0.0.1:${dead},${relay.url}`
    const reg = await cli(['register', '--json'], { home: a(), server: servers })
    assert.equal(reg.code, 0, reg.stderr)
    assert.deepEqual(JSON.parse(reg.lines[0]!), { amid: alice, server: relay.wsUrl, registered: true })
    const sent = await cli(['send', alice, 'through the second address', '--json'], { home: a(), env: { AGENTMESH_SERVER: servers } })
    assert.equal(sent.code, 0, sent.stderr)
    assert.equal((JSON.parse(sent.lines[0]!) as { status: string }).status, 'stored')
    // a one-shot REST command: the refused first address is passed over
    const rep = await cli(['reputation', bob, '--json'], { home: a(), server: servers })
    assert.equal(rep.code, 0, rep.stderr)
    assert.equal((JSON.parse(rep.lines[0]!) as { ratings: number }).ratings >= 0, true)
    assertError(await cli(['reputation', bob], { home: a(), server: `ws://127.0.0.1:${dead},ws://127.0.0.1:1` }), 'AM_ERR_CONNECT_FAILED', 1)
  })

  it('cli - serve --backplane: a NATS that does not answer is one line naming it, a non-NATS address is refused, nothing listens', async () => {
    const down = await cli(['serve', '--memory', '--port', '0', '--backplane', 'nats://127.0.0.1:1'])
    assertError(down, 'AM_ERR_BACKPLANE_UNAVAILABLE', 1)
    assert.match(down.stderr, /the NATS backplane at nats:\/\/127\.0\.0\.1:1 did not answer/)
    assert.equal(down.stderr.trim().split('\n').length, 1)
    assert.equal(down.stdout, '', 'no listening line')
    assertError(await cli(['serve', '--memory', '--port', '0'], { env: { AGENTMESH_BACKPLANE: 'redis://127.0.0.1:6379' } }), 'AM_ERR_INVALID_CONFIG', 2)
  })

  it('cli - serve takes limits from a config file, environment and flags, flags winning', async () => {
    const cfg = `${dir.path}/limits.json`
    writeFileSync(cfg, JSON.stringify({ maxEnvelopeBytes: 4096, maxInbox: 7, port: 1, reputation: { anonymousWeight: 1 } }))
    const r = await spawnRelay({ memory: true, args: ['--config', cfg], env: { AGENTMESH_MAX_INBOX: '9' } })
    try {
      const info = await (await fetch(`${r.url}/api/v1/info`)).json() as { limits: Record<string, number> }
      assert.equal(info.limits.max_envelope_bytes, 4096)
      assert.equal(info.limits.max_inbox, 9)
      assert.notEqual(r.port, 1, '--port (from the harness) wins over the file')
      // reputation weights from the file: an anonymous rater weighs in full here
      const [x, y] = await Promise.all(['x', 'y'].map(async n => await cli(['init', '--name', n], { home: `${dir.path}/cfg-${n}`, server: r.url })))
      const fb = await cli(['feedback', y!.lines[0]!, '--score', '1', '--json'], { home: `${dir.path}/cfg-x`, server: r.url })
      assert.equal(fb.code, 0, fb.stderr + x!.stderr)
      assert.equal((JSON.parse(fb.lines[0]!) as { reputation: { weight_total: number } }).reputation.weight_total, 1)
    } finally {
      await r.kill()
    }
  })

  it('cli - listen drops a delivery with a bad signature, says so on stderr, and prints the rest', async () => {
    // a real `serve` as started by default: it does not check signatures (receivers do); the old
    // `--no-verify-signatures` flag still parses
    const r = await spawnRelay({ memory: true, args: ['--no-verify-signatures'] })
    try {
      const home = `${dir.path}/warned`
      const me = (await cli(['init', '--open'], { home, server: r.url })).lines[0]!
      const evil = await rawAgent(r.url.replace('http', 'ws') + '/ws')
      assert.equal((await evil.auth()).op, 'welcome')
      const forged = evil.envelope(me, 'original')
      evil.send({ op: 'send', env: { ...forged, payload: { text: 'tampered' } } })
      evil.send({ op: 'send', env: evil.envelope(me, 'genuine') })
      await evil.collect(f => f.op === 'ack', 2)
      evil.close()
      const got = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home, server: r.url })
      assert.equal(got.code, 0, got.stderr)
      assert.deepEqual(got.lines.map(l => (JSON.parse(l) as { text: string }).text), ['genuine'])
      const warning = JSON.parse(got.stderr.trim()) as { warning: { code: string, message: string } }
      assert.equal(warning.warning.code, 'AM_ERR_BAD_SIGNATURE')
      assert.match(warning.warning.message, new RegExp(`dropped delivery 1 \\(${forged.id}\\)`))
    } finally {
      await r.kill()
    }
  })

  it('cli - serve in process: an interrupt stops it with exit 0 (in text mode it says so), one while starting too, a second one leaves at once with exit 1', async () => {
    const listening = async (run: RunningCli): Promise<{ url: string }> => {
      await waitFor(() => run.lines.length > 0 || run.errLines.length > 0, 'serve to print its address')
      return JSON.parse(run.lines[0]!) as { url: string }
    }
    const json = startCli(['serve', '--memory', '--port', '0', '--host', '127.0.0.1', '--json'])
    const { url } = await listening(json)
    assert.equal((await fetch(`${url}/api/v1/info`)).status, 200)
    json.interrupt()
    const stopped = await json.done
    assert.deepEqual([stopped.code, stopped.lines.map(l => (JSON.parse(l) as { event: string }).event), stopped.stderr], [0, ['listening', 'stopped'], ''])
    await assert.rejects(fetch(`${url}/api/v1/info`), 'the port is closed')

    const text = startCli(['serve', '--memory', '--port', '0', '--host', '127.0.0.1'])
    await waitFor(() => text.lines.length >= 3, 'serve to print its address')
    text.interrupt()
    const t = await text.done
    assert.equal(t.code, 0, t.stderr)
    assert.match(t.lines[0]!, /^AgentMesh relay listening on http:\/\/127\.0\.0\.1:\d+ \(WebSocket ws:/)
    assert.equal(t.lines.at(-1), 'relay stopped')
    assert.equal(t.stderr, 'SIGTERM: stopping (committing pending messages, closing connections)\n')

    const early = startCli(['serve', '--memory', '--port', '0', '--host', '127.0.0.1', '--json'])
    early.interrupt() // before it listens: it starts, then stops
    const e = await early.done
    assert.deepEqual([e.code, e.lines.map(l => (JSON.parse(l) as { event: string }).event)], [0, ['listening', 'stopped']])

    const twice = startCli(['serve', '--memory', '--port', '0', '--host', '127.0.0.1', '--json'])
    await listening(twice)
    twice.interrupt()
    twice.interrupt()
    const r = await twice.done
    assert.equal(r.code, 1)
    assert.equal(r.stderr, '', 'leaving says nothing more')
  })

  it('cli - serve stops gracefully on SIGTERM with exit 0', async () => {
    const r = await spawnRelay({ memory: true })
    assert.equal(await r.kill('SIGTERM'), 0)
    assert.doesNotMatch(r.stderr(), /"level":50/, 'no error logged')
  })

  it('cli - feedback rates a peer (anonymous raters weigh half), reputation shows the score and flags; bad scores and self-ratings are usage errors', async () => {
    const r1 = await cli(['feedback', bob, '--score', '0.9', '--comment', 'fast', '--json'], { home: a(), server: relay.url })
    assert.equal(r1.code, 0, r1.stderr)
    const j = JSON.parse(r1.lines[0]!) as { replaced: boolean, reputation: { score: number, ratings: number, weight_total: number } }
    assert.equal(j.replaced, false)
    assert.deepEqual([j.reputation.score, j.reputation.ratings, j.reputation.weight_total], [0.9, 1, 0.5])
    const r2 = await cli(['feedback', bob, '--score', '0.3'], { home: a(), server: relay.url })
    assert.equal(r2.code, 0, r2.stderr)
    assert.match(r2.stdout, /^replaced your rating: am\w+ now scores 0\.3 from 1 rating\(s\) \(flagged for review\)/)
    const rep = await cli(['reputation', bob, '--json'], { server: relay.url })
    assert.equal(rep.code, 0, rep.stderr)
    const rj = JSON.parse(rep.lines[0]!) as { score: number, flagged: boolean, flags: Array<{ reason: string }> }
    assert.equal(rj.score, 0.3)
    assert.equal(rj.flagged, true)
    assert.match(rj.flags[0]!.reason, /from 0\.9 to 0\.3/)
    assertError(await cli(['feedback', bob, '--score', '1.5'], { home: a(), server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertError(await cli(['feedback', bob, '--score', 'great'], { home: a(), server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertError(await cli(['feedback', alice, '--score', '1'], { home: a(), server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2)
    assertError(await cli(['reputation', 'nobody'], { server: relay.url }), 'AM_ERR_INVALID_ARGUMENT', 2)
  })
})
