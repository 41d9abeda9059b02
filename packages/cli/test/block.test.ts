/**
 * `agentmesh block`, `unblock` and `blocks`, driven as a user would: the CLI in process, a relay of
 * its own, each agent in its own home.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { assertCliError, cli, spawnRelay, startCli, tempDir, waitFor, type RelayProcess, type RunningCli } from '@agentmesh/testing'

const secret = (label: string): string => `secret-${randomBytes(6).toString('hex')}-${label}`

interface Msg { id: string, text?: string }
interface Warning { code: string, message: string }

describe('block', () => {
  const dir = tempDir()
  let relay: RelayProcess
  let server: string
  const running: RunningCli[] = []
  const home = (name: string): string => `${dir.path}/${name}`
  before(async () => {
    relay = await spawnRelay({ memory: true })
    server = relay.url
  })
  after(async () => {
    for (const c of running) c.interrupt()
    await Promise.all(running.map(async c => await c.done))
    await relay.kill()
    dir.cleanup()
  })

  async function init (name: string): Promise<string> {
    const r = await cli(['init', '--open', '--name', name, '--json'], { home: home(name), server })
    assert.equal(r.code, 0, r.stderr)
    return (JSON.parse(r.lines[0]!) as { amid: string }).amid
  }
  async function send (from: string, to: string, text: string): Promise<string> {
    const r = await cli(['send', to, text, '--json'], { home: home(from), server })
    assert.equal(r.code, 0, r.stderr)
    return (JSON.parse(r.lines[0]!) as { id: string }).id
  }
  const json = (lines: string[]): Array<Record<string, unknown>> => lines.map(l => JSON.parse(l) as Record<string, unknown>)

  it('block - a blocked peer\'s messages are refused (named in a warning, never shown) until unblock; blocks lists it; the safety log has both', async () => {
    const [bob, mallory] = [await init('bob'), await init('mallory')]
    const listen = startCli(['listen', '--json'], { home: home('bob'), server })
    running.push(listen)
    const msgs = (): Msg[] => listen.lines.map(l => JSON.parse(l) as Msg)
    const warnings = (): Warning[] => listen.errLines.flatMap(l => { try { return [(JSON.parse(l) as { warning?: Warning }).warning].filter(w => w !== undefined) } catch { return [] } })

    const hello = secret('hello')
    await send('mallory', bob, hello)
    await waitFor(() => msgs().some(m => m.text === hello), 'the first message (bob has no policy: open)')

    const b = await cli(['block', mallory, '--reason', 'spam', '--json'], { home: home('bob'), server })
    assert.equal(b.code, 0, b.stderr)
    const [blocked] = json(b.lines)
    assert.deepEqual({ ...blocked, at: 0 }, { peer: mallory, blocked: true, already: false, at: 0, reason: 'spam' })
    const again = await cli(['block', mallory], { home: home('bob'), server })
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.lines[0]!, new RegExp(`^${mallory} is already blocked \\(since \\d{4}-`))

    const listed = await cli(['blocks', '--json'], { home: home('bob'), server })
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(json(listed.lines).map(x => [x.peer, x.reason]), [[mallory, 'spam']])

    const spam = secret('spam')
    const spamId = await send('mallory', bob, spam)
    await waitFor(() => warnings().some(w => w.code === 'AM_ERR_NO_GRANT' && w.message.includes(spamId)), 'the refusal, naming the message')
    assert.equal(msgs().some(m => m.text === spam), false)
    assert.equal(listen.stderr().includes(spam), false, 'the refused text is not shown')

    const u = await cli(['unblock', mallory], { home: home('bob'), server })
    assert.deepEqual([u.code, u.lines, u.stderr], [0, [`unblocked ${mallory}`], ''])
    const none = await cli(['blocks'], { home: home('bob'), server })
    assert.deepEqual([none.code, none.stdout, none.stderr], [0, '', 'no peer is blocked\n'])
    const back = secret('back')
    await send('mallory', bob, back)
    await waitFor(() => msgs().some(m => m.text === back), 'a message after the unblock')
    assert.deepEqual(msgs().map(m => m.text), [hello, back])

    const events = await cli(['events', '--json'], { home: home('bob'), server })
    assert.equal(events.code, 0, events.stderr)
    assert.deepEqual(json(events.lines).map(e => [e.event, e.peer]), [['peer_blocked', mallory], ['peer_unblocked', mallory]])
    listen.interrupt()
    assert.equal((await listen.done).code, 0, listen.stderr())
  })

  it('block - bad input: a malformed AMID, one\'s own AMID or a bad reason exit 2, unblocking a peer not blocked exits 1, each with one coded line', async () => {
    const [me, peer] = [await init('x-me'), await init('x-peer')]
    const o = { home: home('x-me'), server }
    const [notAmid, own, emptyReason, twoLines, noPeer, notBlocked, unblockBad] = await Promise.all([
      cli(['block', 'not-an-amid'], o),
      cli(['block', me], o),
      cli(['block', peer, '--reason', ''], o),
      cli(['block', peer, '--reason', 'one\ntwo'], o),
      cli(['block'], o),
      cli(['unblock', peer], o),
      cli(['unblock', 'am0'], o),
    ])
    assertCliError(notAmid, 'AM_ERR_INVALID_ARGUMENT', 2, /not-an-amid/)
    assertCliError(own, 'AM_ERR_INVALID_ARGUMENT', 2, /own AMID/)
    assertCliError(emptyReason, 'AM_ERR_INVALID_ARGUMENT', 2, /--reason/)
    assertCliError(twoLines, 'AM_ERR_INVALID_ARGUMENT', 2, /--reason/)
    assertCliError(noPeer, 'AM_ERR_INVALID_ARGUMENT', 2)
    assertCliError(notBlocked, 'AM_ERR_NOT_FOUND', 1, new RegExp(peer))
    assertCliError(unblockBad, 'AM_ERR_INVALID_ARGUMENT', 2)
    // with --json: the same codes, as one JSON line
    const j = await cli(['unblock', peer, '--json'], o)
    assert.equal(j.code, 1)
    assert.deepEqual((JSON.parse(j.stderr) as { error: Warning }).error.code, 'AM_ERR_NOT_FOUND')
    const k = await cli(['block', 'nope', '--json'], o)
    assert.equal(k.code, 2)
    assert.deepEqual((JSON.parse(k.stderr) as { error: Warning }).error.code, 'AM_ERR_INVALID_ARGUMENT')
    // nothing was blocked on the way
    const listed = await cli(['blocks', '--json'], o)
    assert.deepEqual([listed.code, listed.lines], [0, []])
  })
})
