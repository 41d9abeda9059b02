/**
 * End-to-end encryption, driven as a user would: real relay processes (SIGKILLed and restarted),
 * the CLI (in process) in each agent's home, restarts of the receivers, lost state, deleted sessions.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { cli, startRelay, freePort, rawAgent, spawnRelay, startCli, tempDir, waitFor, type CliResult, type RelayProcess, type RunningCli } from '@agentmesh/testing'

const children: RunningCli[] = []
function track (c: RunningCli): RunningCli {
  children.push(c)
  return c
}

/** A distinctive message text, to look for in files later. */
function secret (label: string): string {
  return `secret-${randomBytes(8).toString('hex')}-${label}`
}

/** Asserts a failed run: exit code, one line on stderr with the code, no stack trace. */
function assertError (r: CliResult, code: string, exit: number): void {
  assert.equal(r.code, exit, `exit code; stdout: ${r.stdout} stderr: ${r.stderr}`)
  const errLines = r.stderr.split('\n').filter(l => l !== '')
  assert.equal(errLines.length, 1, `exactly one line on stderr, got: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  assert.match(errLines[0]!, new RegExp(`^agentmesh: error ${code}: .{10,}`))
}

async function init (home: string, server: string, name: string): Promise<string> {
  const r = await cli(['init', '--open', '--name', name, '--json'], { home, server })
  assert.equal(r.code, 0, r.stderr)
  const j = JSON.parse(r.lines[0]!) as { amid: string, registered: boolean }
  assert.equal(j.registered, true)
  return j.amid
}

/** Sends one message per text in one `send --stdin` run; answers the envelope ids. */
async function send (home: string, server: string, to: string, texts: string[], extra: string[] = []): Promise<string[]> {
  const r = await cli(['send', to, '--stdin', '--json', ...extra], { home, server, input: texts.join('\n') + '\n' })
  assert.equal(r.code, 0, r.stderr)
  const acks = r.lines.map(l => JSON.parse(l) as { id: string, to: string, status: string })
  assert.equal(acks.length, texts.length, r.stdout)
  assert.ok(acks.every(a => a.status === 'stored' && a.to === to), r.stdout)
  return acks.map(a => a.id)
}

interface Msg { id: string, from: string, to: string, ts: number, type: string, seq: number, encrypted: boolean, text?: string, untrusted?: boolean, provenance?: unknown, safety_number_verified?: boolean }
interface Warning { code: string, message: string }

interface Listener {
  readonly msgs: Msg[]
  readonly warnings: Warning[]
  stderr: () => string
  done: Promise<number | null>
  /** as SIGTERM (a clean stop); answers the exit code */
  stop: () => Promise<number | null>
}

/** Runs `agentmesh listen --json` in the background (in process) and collects what it prints. */
function listen (home: string, server: string, extra: string[] = []): Listener {
  const run = track(startCli(['listen', '--json', ...extra], { home, server }))
  const done = run.done.then(r => r.code)
  return {
    get msgs () { return run.lines.map(l => JSON.parse(l) as Msg) },
    get warnings () {
      return run.errLines.flatMap((l) => {
        try {
          const j = JSON.parse(l) as { warning?: Warning }
          return j.warning === undefined ? [] : [j.warning]
        } catch { return [] }
      })
    },
    stderr: () => run.stderr(),
    done,
    async stop () {
      run.interrupt()
      return await done
    },
  }
}

/**
 * Sends a marker from `home` to `to` and waits until `at` shows it: whatever the relay still had
 * for `at` before it (a message shown twice, say) has been shown by then. Answers the marker text.
 */
async function barrier (home: string, server: string, to: string, at: Listener, listeners: Listener[]): Promise<string> {
  const marker = `barrier-${randomBytes(6).toString('hex')}`
  await send(home, server, to, [marker])
  await until(() => at.msgs.some(m => m.text === marker), `the barrier ${marker}`, listeners)
  return marker
}

/** waitFor, with what the listeners said in the error when it times out. */
async function until (cond: () => boolean, what: string, listeners: Listener[], timeoutMs = 30_000): Promise<void> {
  try {
    await waitFor(cond, what, timeoutMs)
  } catch (err) {
    const said = listeners.map((l, i) => `listener ${i}: stdout ${JSON.stringify(l.msgs.map(m => m.text))}; stderr ${l.stderr()}`).join('\n')
    throw new Error(`${(err as Error).message}\n${said}`)
  }
}

/** Every file under `dir`, recursively. */
function filesUnder (dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p))
    else if (e.isFile()) out.push(p)
  }
  return out
}

/** "file: text" for each text found in the bytes of a file under one of `dirs`. */
function findTexts (dirs: string[], texts: string[]): string[] {
  const found: string[] = []
  for (const dir of dirs) {
    for (const f of filesUnder(dir)) {
      let bytes: Buffer
      try { bytes = readFileSync(f) } catch { continue } // (a -shm/-wal file may go away meanwhile)
      for (const t of texts) if (bytes.includes(Buffer.from(t, 'utf8'))) found.push(`${f}: ${t}`)
    }
  }
  return found
}

function removeState (home: string): void {
  for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) rmSync(join(home, f), { force: true })
}

interface VerifyJson { peer: string, safety_number: string, verified: boolean, key_changed: boolean, session: boolean, previous_safety_number?: string, held?: number, scannable?: string }

async function verify (home: string, server: string, peer: string, extra: string[] = []): Promise<VerifyJson> {
  const r = await cli(['verify', peer, '--json', ...extra], { home, server })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.lines.length, 1, r.stdout)
  const j = JSON.parse(r.lines[0]!) as VerifyJson
  assert.equal(j.peer, peer)
  assert.match(j.safety_number, /^\d{60}$/)
  return j
}

describe('e2ee', () => {
  const dir = tempDir()
  /** one relay (with its database, in process) for the tests that do not restart it */
  let relay: Relay
  const sharedData = (): string => `${dir.path}/shared-data`
  before(async () => {
    relay = await startRelay({ dataDir: sharedData() })
  })
  after(async () => {
    for (const c of children) c.interrupt()
    await Promise.all(children.map(async c => await c.done))
    await relay.close()
    dir.cleanup()
  })

  it('e2ee - two agents talk both ways across restarts of the relay and of each side; the texts are on no disk', async () => {
    const port = await freePort()
    const data = `${dir.path}/talk-data`
    let talkRelay: RelayProcess = await spawnRelay({ dataDir: data, port })
    const server = talkRelay.url
    const a = `${dir.path}/talk-a`
    const b = `${dir.path}/talk-b`
    const listeners: Listener[] = []
    const started = (l: Listener): Listener => { listeners.push(l); return l }
    try {
      const [alice, bob] = await Promise.all([init(a, server, 'alice'), init(b, server, 'bob')])
      const toBob = Array.from({ length: 8 }, (_, i) => secret(`a${i + 1}`))
      const toAlice = Array.from({ length: 6 }, (_, i) => secret(`b${i + 1}`))

      let atBob = started(listen(b, server))
      let atAlice = started(listen(a, server))
      const bobGot: Msg[] = []
      const aliceGot: Msg[] = []

      // A sends 3, B replies 2 (each side's listen runs in the same home as its sends)
      await send(a, server, bob, toBob.slice(0, 3))
      await until(() => atBob.msgs.length >= 3, 'a1..a3 at bob', [atBob, atAlice])
      await send(b, server, alice, toAlice.slice(0, 2))
      await until(() => atAlice.msgs.length >= 2, 'b1, b2 at alice', [atBob, atAlice])

      // the relay is SIGKILLed; A sends 2 more while it is down, and it comes back on the same data and port
      assert.equal(await talkRelay.kill('SIGKILL'), null)
      const during = send(a, server, bob, toBob.slice(3, 5), ['--timeout', '45'])
      during.catch(() => {}) // (awaited below)
      talkRelay = await spawnRelay({ dataDir: data, port })
      await during
      await until(() => atBob.msgs.length >= 5, 'a4, a5 at bob after the relay restart', [atBob, atAlice])

      // B's listen stops (once a last duplicate would have shown); A sends 2 while B is away; B's listen starts again
      const markers = [await barrier(a, server, bob, atBob, [atBob, atAlice])]
      assert.equal(await atBob.stop(), 0, atBob.stderr())
      bobGot.push(...atBob.msgs)
      await send(a, server, bob, toBob.slice(5, 7))
      atBob = started(listen(b, server))
      await until(() => atBob.msgs.length >= 2, 'a6, a7 at the restarted bob', [atBob, atAlice])

      // A's listen stops; B sends 3 while A is away; A's listen starts again
      assert.equal(await atAlice.stop(), 0, atAlice.stderr())
      aliceGot.push(...atAlice.msgs)
      await send(b, server, alice, toAlice.slice(2, 5))
      atAlice = started(listen(a, server))
      await until(() => atAlice.msgs.length >= 3, 'b3..b5 at the restarted alice', [atBob, atAlice])

      // both at once
      await Promise.all([send(a, server, bob, toBob.slice(7)), send(b, server, alice, toAlice.slice(5))])
      await until(() => atBob.msgs.length >= 3 && atAlice.msgs.length >= 4, 'a8 and b6', [atBob, atAlice])
      markers.push(await barrier(a, server, bob, atBob, [atBob, atAlice]), await barrier(b, server, alice, atAlice, [atBob, atAlice]))

      // no text on disk while everything runs (not yet checkpointed WAL included)…
      const secrets = [...toBob, ...toAlice]
      assert.deepEqual(findTexts([data, a, b], secrets), [], 'no message text in the relay\'s or the agents\' files')

      assert.equal(await atBob.stop(), 0, atBob.stderr())
      assert.equal(await atAlice.stop(), 0, atAlice.stderr())
      bobGot.push(...atBob.msgs)
      aliceGot.push(...atAlice.msgs)
      await talkRelay.kill('SIGKILL') // the relay's WAL stays as it is

      for (const [all, from, texts] of [[bobGot, alice, toBob], [aliceGot, bob, toAlice]] as const) {
        const got = all.filter(m => !markers.includes(m.text!))
        assert.equal(all.length - got.length, from === alice ? 2 : 1, 'each barrier once')
        assert.deepEqual(got.map(m => m.text), texts, 'every message once, in order')
        assert.equal(new Set(got.map(m => m.id)).size, texts.length)
        assert.ok(got.every(m => m.encrypted && m.type === 'chat' && m.from === from), JSON.stringify(got))
      }
      for (const l of listeners) assert.deepEqual(l.warnings, [], l.stderr())

      // …nor once everything stopped
      assert.deepEqual(findTexts([data, a, b], secrets), [], 'no message text in the relay\'s or the agents\' files')
      assert.ok(filesUnder(data).some(f => f.endsWith('agentmesh.db')), 'the relay\'s files were scanned')
      assert.ok(filesUnder(a).some(f => f.endsWith('state.db')), 'the agent\'s files were scanned')
      for (const t of secrets) assert.ok(!talkRelay.stderr().includes(t), 'nor in the relay\'s log')
    } finally {
      for (const l of listeners) await l.stop()
      await talkRelay.kill()
    }
  })

  it('e2ee - a --plaintext message arrives marked unencrypted; listen --no-plaintext drops it and shows the encrypted one after it', async () => {
    const server = relay.url
    const a = `${dir.path}/plain-a`
    const b = `${dir.path}/plain-b`
    const [alice, bob] = await Promise.all([init(a, server, 'alice'), init(b, server, 'bob')])
    const [p1, p2, p3, e4] = [secret('p1'), secret('p2'), secret('p3'), secret('e4')]
    await send(a, server, bob, [p1, p2], ['--plaintext'])
    // (the check of test 1 finds a text the relay can read)
    assert.ok(findTexts([sharedData()], [p1]).length > 0, 'a plaintext message is readable in the relay\'s files')

    const json = await cli(['listen', '--count', '1', '--json', '--timeout', '30'], { home: b, server })
    assert.equal(json.code, 0, json.stderr)
    const m = JSON.parse(json.lines[0]!) as Msg
    assert.deepEqual([m.from, m.type, m.text, m.encrypted], [alice, 'chat', p1, false])
    assert.deepEqual([m.untrusted, (m.provenance as { relation?: string } | null)?.relation, m.safety_number_verified], [true, 'open', false], 'an open policy (init --open): untrusted, relation "open"; a plaintext sender is not verified')

    const text = await cli(['listen', '--count', '1', '--timeout', '30'], { home: b, server })
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${alice} \\[unverified\\] \\[unencrypted\\]: ${p2}$`))

    const [p3id] = await send(a, server, bob, [p3], ['--plaintext'])
    await send(a, server, bob, [e4])
    const strict = await cli(['listen', '--count', '1', '--no-plaintext', '--timeout', '30'], { home: b, server })
    assert.equal(strict.code, 0, strict.stderr)
    assert.equal(strict.lines.length, 1, strict.stdout)
    assert.match(strict.lines[0]!, new RegExp(`^\\S+ ${alice} \\[unverified\\]: ${e4}$`), 'the encrypted one, not marked [unencrypted]')
    const warnings = strict.stderr.split('\n').filter(l => l !== '')
    assert.equal(warnings.length, 1, strict.stderr)
    assert.match(warnings[0]!, new RegExp(`^agentmesh: warning AM_ERR_PLAINTEXT_REFUSED: .*${p3id!}`))
    assert.ok(!strict.stdout.includes(p3) && !strict.stderr.includes(p3), 'the refused text is not shown')

    // the next message bob gets is one sent after it: the dropped message does not come back
    const e5 = secret('e5')
    await send(a, server, bob, [e5])
    const again = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: b, server })
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(again.lines.map(l => (JSON.parse(l) as Msg).text), [e5], 'the dropped message does not come back')
  })

  it('e2ee - safety numbers match; after the peer lost its state nothing is lost and its key (and number) stay the same', async () => {
    const server = relay.url
    const a = `${dir.path}/sn-a`
    const b = `${dir.path}/sn-b`
    const [alice, bob] = await Promise.all([init(a, server, 'alice'), init(b, server, 'bob')])
    const [s1, r1, x1, y1, x3] = [secret('s1'), secret('r1'), secret('x1'), secret('y1'), secret('x3')]

    // a message each way
    let atBob = listen(b, server)
    let atAlice = listen(a, server)
    await send(a, server, bob, [s1])
    await until(() => atBob.msgs.length >= 1, 's1 at bob', [atBob, atAlice])
    await send(b, server, alice, [r1])
    await until(() => atAlice.msgs.length >= 1, 'r1 at alice', [atBob, atAlice])
    assert.equal(await atBob.stop(), 0, atBob.stderr())
    assert.equal(await atAlice.stop(), 0, atAlice.stderr())
    assert.deepEqual([atBob.msgs[0]!.text, atAlice.msgs[0]!.text], [s1, r1])

    // the same 60 digits on both sides (text: 12 groups of 5 on the first line)
    const [textA, jsonB] = await Promise.all([
      cli(['verify', bob], { home: a, server }),
      verify(b, server, alice),
    ])
    assert.equal(textA.code, 0, textA.stderr)
    assert.match(textA.lines[0]!, /^\d{5}( \d{5}){11}$/)
    const first = textA.lines[0]!.replaceAll(' ', '')
    assert.equal(jsonB.safety_number, first, 'the same number on both sides')
    assert.deepEqual([jsonB.key_changed, jsonB.verified, jsonB.session], [false, false, true])
    // the scannable form (for a QR code): 74 bytes, each side's its own, in text mode too
    const jsonA = await verify(a, server, bob)
    for (const j of [jsonA, jsonB]) assert.equal(Buffer.from(j.scannable!, 'base64url').length, 74)
    assert.notEqual(jsonA.scannable, jsonB.scannable)
    assert.ok(textA.lines.includes(`scannable: ${jsonA.scannable!}`), textA.stdout)

    // B loses its state (not its identity): new prekeys, the same exchange key (derived from the identity)
    removeState(b)
    const reg = await cli(['register', '--json'], { home: b, server })
    assert.equal(reg.code, 0, reg.stderr)

    // A's session still exists, so the message goes out on it; B cannot read it, warns and tells A
    const [x1id] = await send(a, server, bob, [x1])
    atBob = listen(b, server)
    await until(() => atBob.warnings.some(w => w.message.includes(x1id!)), 'bob\'s warning about x1', [atBob])
    assert.equal(atBob.warnings[0]!.code, 'AM_ERR_UNKNOWN_SESSION', atBob.stderr())
    // A's listen takes the reset notice and sends x1 again in a new session: B reads it, under its id
    atAlice = listen(a, server)
    await until(() => atBob.msgs.length >= 1, 'x1 again at bob', [atBob, atAlice])
    assert.deepEqual(atBob.msgs.map(m => [m.id, m.text]), [[x1id, x1]])
    // and B writes back: no key change anywhere, nothing held
    await send(b, server, alice, [y1])
    await until(() => atAlice.msgs.length >= 1, 'y1 at alice', [atBob, atAlice])
    await send(a, server, bob, [x3])
    await until(() => atBob.msgs.length >= 2, 'x3 at bob', [atBob, atAlice])
    assert.equal(await atBob.stop(), 0, atBob.stderr())
    assert.equal(await atAlice.stop(), 0, atAlice.stderr())
    assert.deepEqual(atBob.msgs.map(m => [m.from, m.text, m.encrypted]), [[alice, x1, true], [alice, x3, true]])
    assert.deepEqual(atAlice.msgs.map(m => [m.from, m.text, m.encrypted]), [[bob, y1, true]])
    assert.deepEqual([...new Set(atAlice.warnings.map(w => w.code))], ['AM_ERR_UNKNOWN_SESSION'], 'alice was told of the reset, and of nothing else')
    assert.ok(atAlice.warnings.some(w => /1 message\(s\) sent again in a new session/.test(w.message)), atAlice.stderr())
    assert.deepEqual(atBob.warnings.map(w => w.code), ['AM_ERR_UNKNOWN_SESSION'], atBob.stderr())

    const [nowA, nowB] = await Promise.all([verify(a, server, bob), verify(b, server, alice)])
    assert.deepEqual([nowA.safety_number, nowB.safety_number], [first, first], 'the same number as before the loss, on both sides')
    assert.deepEqual([nowA.key_changed, nowB.key_changed], [false, false])
  })

  it('e2ee - after an agent lost its state (identity kept) and registered again, a new session to it works', async () => {
    const server = relay.url
    const a = `${dir.path}/lost-a`
    const b = `${dir.path}/lost-b`
    const [alice, bob] = await Promise.all([init(a, server, 'alice'), init(b, server, 'bob')])
    removeState(b)
    const reg = await cli(['register'], { home: b, server })
    assert.equal(reg.code, 0, reg.stderr)
    const text = secret('first')
    await send(a, server, bob, [text]) // alice never talked to bob: a new session from bob's published prekeys
    const got = await cli(['listen', '--count', '1', '--json', '--timeout', '30'], { home: b, server })
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.stderr, '', 'no warning')
    assert.deepEqual(got.lines.map(l => { const m = JSON.parse(l) as Msg; return [m.from, m.text, m.encrypted] }), [[alice, text, true]])
  })

  it('e2ee - a message for a deleted session is not lost: the receiver says so, the sender\'s next command sends it again in a new session', async () => {
    const server = relay.url
    const a = `${dir.path}/reset-a`
    const b = `${dir.path}/reset-b`
    const [alice, bob] = await Promise.all([init(a, server, 'alice'), init(b, server, 'bob')])
    const [m0, n0, m1, m2] = [secret('m0'), secret('n0'), secret('m1'), secret('m2')]
    let atBob = listen(b, server)
    const atAlice = listen(a, server)
    await send(a, server, bob, [m0])
    await until(() => atBob.msgs.length >= 1, 'm0 at bob', [atBob, atAlice])
    await send(b, server, alice, [n0])
    await until(() => atAlice.msgs.length >= 1, 'n0 at alice', [atBob, atAlice])
    assert.equal(await atBob.stop(), 0, atBob.stderr())
    assert.equal(await atAlice.stop(), 0, atAlice.stderr())

    const reset = await cli(['sessions', '--reset', alice, '--json'], { home: b, server })
    assert.equal(reset.code, 0, reset.stderr)
    assert.deepEqual(JSON.parse(reset.lines[0]!), { peer: alice, deleted: true })

    const [m1id] = await send(a, server, bob, [m1])
    atBob = listen(b, server)
    await until(() => atBob.warnings.length >= 1, 'bob\'s warning about m1', [atBob])
    assert.equal(atBob.warnings[0]!.code, 'AM_ERR_UNKNOWN_SESSION')
    assert.match(atBob.warnings[0]!.message, new RegExp(m1id!))
    // any command of alice's takes the reset notice waiting for her: `sent` shows m1 resent
    interface SentJson { id: string, to: string, status: string, orig?: string, resentAs?: string }
    let log: SentJson[] = []
    await waitFor(async () => {
      const r = await cli(['sent', bob, '--json'], { home: a, server })
      assert.equal(r.code, 0, r.stderr)
      log = r.lines.map(l => JSON.parse(l) as SentJson)
      const first = log.find(e => e.id === m1id && e.status === 'resent')
      return first !== undefined && log.some(e => e.id === first.resentAs)
    }, 'alice\'s sent log to show m1 resent')
    const again = log.find(e => e.id === m1id)!.resentAs!
    assert.deepEqual(log.map(e => [e.id, e.status, e.orig ?? null]).slice(-2), [[m1id, 'resent', null], [again, 'stored', m1id]])
    await until(() => atBob.msgs.length >= 1, 'm1 at bob, once', [atBob])
    assert.deepEqual(atBob.msgs.map(m => [m.id, m.text]), [[m1id, m1]], 'under the id alice knows')

    const [m2id] = await send(a, server, bob, [m2])
    await until(() => atBob.msgs.length >= 2, 'm2 at bob', [atBob])
    assert.equal(await atBob.stop(), 0, atBob.stderr())
    assert.deepEqual(atBob.msgs.map(m => [m.id, m.text, m.encrypted]), [[m1id, m1, true], [m2id, m2, true]])
  })

  it('e2ee - bad input: verify of a non-AMID or of oneself exits 2; a peer without prekeys gets AM_ERR_NO_PREKEYS unless --plaintext', async () => {
    const server = relay.url
    const home = `${dir.path}/bad-a`
    const me = await init(home, server, 'alice')
    const raw = await rawAgent(server.replace('http', 'ws') + '/ws') // registers, publishes no prekeys
    try {
      assert.equal((await raw.auth()).op, 'welcome')
      const [notAmid, self, noPrekeys] = await Promise.all([
        cli(['verify', 'not-an-amid'], { home, server }),
        cli(['verify', me], { home, server }),
        cli(['send', raw.id.amid, 'hello'], { home, server }),
      ])
      assertError(notAmid, 'AM_ERR_INVALID_ARGUMENT', 2)
      assertError(self, 'AM_ERR_INVALID_ARGUMENT', 2)
      assertError(noPrekeys, 'AM_ERR_NO_PREKEYS', 1)
      assert.equal(raw.frames.filter(f => f.op === 'deliver').length, 0, 'nothing was sent')

      const text = secret('plain')
      await send(home, server, raw.id.amid, [text], ['--plaintext'])
      const [d] = await raw.collect(f => f.op === 'deliver', 1)
      assert.deepEqual([d!.env.from, d!.env.type, d!.env.payload], [me, 'chat', { text }])
    } finally {
      raw.close()
    }
  })
})
