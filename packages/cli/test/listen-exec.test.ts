import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { assertCliError, cli, spawnRelay, startRelay, tempDir, type RelayProcess } from '@agentmesh/testing'
import { silentLogger, type Relay } from '@agentmesh/server'

/**
 * `agentmesh listen --exec` (docs/protocol.md §26), as real processes: the relay, the senders and
 * the listener are the binary; the command is a shell line that appends what it was given to a file.
 */
describe('listen --exec', () => {
  const dir = tempDir()
  const relays: RelayProcess[] = []
  after(async () => {
    for (const r of relays) await r.kill()
    dir.cleanup()
  })

  const setup = async (name: string): Promise<{ relay: RelayProcess, alice: string, bob: string, bobAmid: string, out: string }> => {
    const relay = await spawnRelay({ memory: true })
    relays.push(relay)
    const alice = join(dir.path, `${name}-alice`)
    const bob = join(dir.path, `${name}-bob`)
    assert.equal((await cli(['init', '--name', 'alice'], { home: alice, server: relay.url })).code, 0)
    const init = await cli(['init', '--name', 'bob', '--open', '--json'], { home: bob, server: relay.url })
    assert.equal(init.code, 0, init.stderr)
    const bobAmid = (JSON.parse(init.lines[0]!) as { amid: string }).amid
    // bob's first connection publishes his prekeys
    assert.equal((await cli(['listen', '--timeout', '2', '--count', '1'], { home: bob, server: relay.url })).code !== null, true)
    return { relay, alice, bob, bobAmid, out: join(dir.path, `${name}-out.txt`) }
  }
  const send = async (s: { relay: RelayProcess, alice: string, bobAmid: string }, text: string, extra: string[] = []): Promise<void> => {
    const r = await cli(['send', s.bobAmid, text, '--timeout', '20', ...extra], { home: s.alice, server: s.relay.url })
    assert.equal(r.code, 0, r.stderr)
  }
  const lines = (file: string): string[] => existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(l => l !== '') : []

  it('listen --exec - runs the command once per message, in order, with the message on stdin and its id and sender in the environment', async () => {
    const s = await setup('once')
    await send(s, 'first; $(touch pwned) `id`', ['--receipts'])
    await send(s, 'second', ['--receipts'])
    const cmd = `printf '%s %s ' "$AGENTMESH_MESSAGE_FROM" "$AGENTMESH_MESSAGE_TYPE" >> ${s.out}; cat >> ${s.out}`
    const r = await cli(['listen', '--exec', cmd, '--count', '2', '--timeout', '30', '--json'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stderr)
    const got = lines(s.out)
    assert.equal(got.length, 2)
    const aliceAmid = got[0]!.split(' ')[0]!
    assert.match(aliceAmid, /^am/)
    const msgs = got.map(l => JSON.parse(l.slice(l.indexOf('{'))) as { text: string, from: string, id: string })
    assert.deepEqual(msgs.map(m => m.text), ['first; $(touch pwned) `id`', 'second'])
    assert.ok(got.every(l => l.startsWith(`${aliceAmid} chat {`)))
    assert.equal(existsSync(join(process.cwd(), 'pwned')), false, 'message text is never run by the shell')
    // one status line per processed message on stdout
    const status = r.lines.map(l => JSON.parse(l) as { id: string, status: string, attempts: number })
    assert.deepEqual(status.map(x => [x.id, x.status, x.attempts]), msgs.map(m => [m.id, 'processed', 1]))
    // the sender asked for receipts: `agentmesh sent` shows both processed
    const sent = await cli(['sent', '--json'], { home: s.alice, server: s.relay.url })
    assert.equal(sent.code, 0, sent.stderr)
    assert.deepEqual(sent.lines.map(l => { const e = JSON.parse(l) as { id: string, status: string }; return [e.id, e.status] }), msgs.map(m => [m.id, 'processed']))
    // processed: a listen now finds nothing new
    const again = await cli(['listen', '--exec', `cat >> ${s.out}`, '--count', '1', '--timeout', '3'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 30_000 })
    assert.notEqual(again.code, 0)
    assert.equal(lines(s.out).length, 2, 'nothing ran twice')
  })

  it('listen --exec - a failed command is run again; one that keeps failing stops listen and the message is still there after a restart', async () => {
    const s = await setup('retry')
    await send(s, 'flaky')
    const marker = join(dir.path, 'retry-marker')
    // fails the first time (no marker yet), succeeds the second
    const flaky = `if [ -e ${marker} ]; then cat >> ${s.out}; else touch ${marker}; exit 3; fi`
    const r = await cli(['listen', '--exec', flaky, '--exec-retries', '2', '--count', '1', '--timeout', '30'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /exited with code 3 \(attempt 1 of 3\); again in 1 s/)
    assert.deepEqual(lines(s.out).map(l => (JSON.parse(l) as { text: string }).text), ['flaky'])

    await send(s, 'stubborn')
    const broken = await cli(['listen', '--exec', 'cat > /dev/null; exit 7', '--exec-retries', '1', '--count', '1', '--timeout', '30'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.equal(broken.code !== 0, true)
    assert.match(broken.stderr, /AM_ERR_EXEC_FAILED/)
    assert.match(broken.stderr, /exited with code 7, 2 time\(s\)/)
    // a new listen (a restart) is handed the same message, and this time the command succeeds
    const fixed = await cli(['listen', '--exec', `cat >> ${s.out}`, '--count', '1', '--timeout', '30'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.equal(fixed.code, 0, fixed.stderr)
    assert.deepEqual(lines(s.out).map(l => (JSON.parse(l) as { text: string }).text), ['flaky', 'stubborn'])
  })

  it('listen --exec - commands run side by side with --exec-concurrency; a hung one is killed at --exec-timeout', async () => {
    const s = await setup('conc')
    for (const t of ['a', 'b', 'c']) await send(s, t)
    // each command records its start, waits a little, then its message: two run at once
    const r = await cli(['listen', '--exec', `cat >> ${s.out}`, '--exec-concurrency', '2', '--count', '3', '--timeout', '30', '--json'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(lines(s.out).map(l => (JSON.parse(l) as { text: string }).text).sort(), ['a', 'b', 'c'])
    assert.equal(r.lines.length, 3)

    await send(s, 'hang')
    const hung = await cli(['listen', '--exec', 'sleep 30', '--exec-timeout', '1', '--exec-retries', '0', '--count', '1', '--timeout', '30'], { home: s.bob, server: s.relay.url, process: true, timeoutMs: 60_000 })
    assert.notEqual(hung.code, 0)
    assert.match(hung.stderr, /AM_ERR_EXEC_FAILED.*ran past --exec-timeout \(1 s\) and was killed/)
  })

  it('listen --exec - bad options are refused with a code', async () => {
    const home = join(dir.path, 'opts')
    assert.equal((await cli(['init', '--name', 'x', '--offline'], { home })).code, 0)
    assertCliError(await cli(['listen', '--exec', 'true', '--exec-concurrency', '0'], { home }), 'AM_ERR_INVALID_ARGUMENT', 2, /--exec-concurrency/)
    assertCliError(await cli(['listen', '--exec', 'true', '--exec-retries', 'x'], { home }), 'AM_ERR_INVALID_ARGUMENT', 2, /--exec-retries/)
    assertCliError(await cli(['listen', '--exec', '  '], { home }), 'AM_ERR_INVALID_ARGUMENT', 2, /--exec/)
  })
})

describe('agentmesh webhook', () => {
  const dir = tempDir()
  const relays: Relay[] = []
  after(async () => {
    for (const r of relays) await r.close()
    dir.cleanup()
  })

  it('webhook - set, show and clear; a private address and a bad URL are refused with a code and exit non-zero', async () => {
    const relay = await startRelay({ logger: silentLogger })
    relays.push(relay)
    const home = join(dir.path, 'hooked')
    assert.equal((await cli(['init', '--name', 'h', '--open'], { home, server: relay.url })).code, 0)
    assertCliError(await cli(['webhook', 'set', 'https://127.0.0.1/hook'], { home, server: relay.url }), 'AM_ERR_WEBHOOK_ADDRESS_REFUSED', 1, /--webhook-allow-private/)
    assertCliError(await cli(['webhook', 'set', 'ftp://example.com/x'], { home, server: relay.url }), 'AM_ERR_WEBHOOK_URL_INVALID', 1)
    const none = await cli(['webhook', 'show', '--json'], { home, server: relay.url })
    assert.equal(none.code, 0, none.stderr)
    assert.deepEqual(JSON.parse(none.lines[0]!), { url: null, created_at: null, relay_amid: relay.relayAmid, signing: 'ed25519' })
    const cleared = await cli(['webhook', 'clear', '--json'], { home, server: relay.url })
    assert.deepEqual(JSON.parse(cleared.lines[0]!), { removed: false })
  })
})
