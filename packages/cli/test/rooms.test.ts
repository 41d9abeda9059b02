/**
 * Rooms through the CLI (in process) against an in-process relay: the history members of a private
 * room read decrypted with the sender keys they hold; room messages posted while the relay is down
 * are queued and delivered once it is back.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { cli, startCli, startRelay, tempDir, waitFor, type CliResult } from '@agentmesh/testing'

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}

const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)

interface HistoryJson { seq: number, from: string, type: string, text?: string, decrypted?: boolean, not_decrypted?: { reason: string, message: string } }

describe('rooms (cli)', { concurrency: 1 }, () => {
  const dir = tempDir()
  let relay: Relay
  const as = (name: string): { home: string, server: string } => ({ home: join(dir.path, name), server: relay.url })
  const ids: Record<string, string> = {}

  before(async () => {
    relay = await startRelay()
    for (const n of ['alice', 'bob', 'carol']) {
      ids[n] = (JSON.parse(ok(await cli(['init', '--name', n, '--json'], as(n)), `init ${n}`).lines[0]!) as { amid: string }).amid
      ok(await cli(['handle', 'set', n], as(n)), `handle ${n}`)
    }
  })
  after(async () => {
    await relay.close()
    dir.cleanup()
  })

  it('rooms - history of a private room: a member reads it decrypted, its own messages and those whose key reached it; a later member sees why not', async () => {
    ok(await cli(['room', 'create', 'vault', '--private'], as('alice')), 'create')
    ok(await cli(['room', 'invite', 'vault', ids.bob!], as('alice')), 'invite bob')
    ok(await cli(['room', 'join', 'vault'], as('bob')), 'join bob')
    ok(await cli(['chat', '--room', 'vault', '--msg', 'kiwi from alice'], as('alice')), 'alice posts')
    ok(await cli(['chat', '--room', 'vault', '--msg', 'lime from bob'], as('bob')), 'bob posts')

    // her own message with her own key; bob's with the key he handed her (taken in by the connection reading the keys)
    const before = ok(await cli(['history', 'vault'], as('alice')), 'history')
    assert.match(before.lines[0]!, /#1 alice: kiwi from alice$/)
    assert.match(before.lines[1]!, /#2 bob: lime from bob$/)
    assert.equal(before.lines.length, 2, before.stdout)

    // reading the history took nothing away from her messages: listening, she still gets bob's
    const heard = json<{ text: string }>(ok(await cli(['listen', '--count', '1', '--timeout', '20', '--json'], as('alice')), 'listen'))
    assert.deepEqual(heard.map(m => m.text), ['lime from bob'])
    const all = json<HistoryJson>(ok(await cli(['history', 'vault', '--json'], as('alice')), 'history --json'))
    assert.deepEqual(all.map(m => [m.seq, m.from, m.type, m.text, m.decrypted]), [[1, ids.alice, 'chat', 'kiwi from alice', true], [2, ids.bob, 'chat', 'lime from bob', true]])
    assert.ok(all.every(m => m.not_decrypted === undefined))

    // carol joins later: she reads what was sent after, and is told why not the rest
    ok(await cli(['room', 'invite', 'vault', ids.carol!], as('alice')), 'invite carol')
    ok(await cli(['room', 'join', 'vault'], as('carol')), 'join carol')
    ok(await cli(['chat', '--room', 'vault', '--msg', 'mango from alice'], as('alice')), 'alice posts again')
    ok(await cli(['listen', '--count', '1', '--timeout', '20'], as('carol')), 'carol listens')
    const atCarol = json<HistoryJson>(ok(await cli(['history', 'vault', '--json'], as('carol')), 'carol history'))
    assert.deepEqual(atCarol.map(m => [m.seq, m.decrypted, m.not_decrypted?.reason, m.text]), [
      [1, false, 'before_key', undefined], [2, false, 'no_key', undefined], [3, true, undefined, 'mango from alice'],
    ])
    assert.match(atCarol[0]!.not_decrypted!.message, /^no key: sent before you joined/)
    const text = ok(await cli(['history', 'vault'], as('carol')), 'carol history text')
    assert.match(text.lines[0]!, /#1 alice: \[encrypted\] \(no key: sent before you joined/)
    assert.match(text.lines[2]!, /#3 alice: mango from alice$/)
  })

  it('rooms - chat --msg (and dm) while the relay is down: queued (exit 0), then delivered in order within each conversation, once, by the next connection from that home', async () => {
    const data = join(dir.path, 'relay-down')
    let r2 = await startRelay({ dataDir: data })
    const port = r2.port
    const at = (name: string): { home: string, server: string } => ({ home: join(dir.path, 'down-' + name), server: `ws://127.0.0.1:${port}` })
    const amid = async (name: string, ...args: string[]): Promise<string> => (JSON.parse(ok(await cli(['init', '--json', ...args], at(name)), `init ${name}`).lines[0]!) as { amid: string }).amid
    const bob = await amid('bob', '--open') // takes DMs from anyone (room messages need no grant)
    await amid('alice')
    const carol = await amid('carol', '--open') // alice never writes to her before the relay goes
    try {
      ok(await cli(['room', 'create', 'den', '--private'], at('alice')), 'create den')
      ok(await cli(['room', 'invite', 'den', bob], at('alice')), 'invite')
      ok(await cli(['room', 'join', 'den'], at('bob')), 'join den')
      ok(await cli(['room', 'create', 'hall'], at('alice')), 'create hall')
      ok(await cli(['room', 'join', 'hall'], at('bob')), 'join hall')
      await r2.close()

      const down1 = ok(await cli(['chat', '--room', 'den', '--msg', 'fig while down', '--json'], at('alice')), 'chat den while down')
      const down2 = ok(await cli(['chat', '--room', '#hall', '--msg', 'pear while down'], at('alice')), 'chat hall while down')
      const q = json<{ id: string, room: string, status: string }>(down1)
      assert.deepEqual(q.map(x => [x.room, x.status]), [['den', 'queued']])
      assert.match(down2.stderr, /^queued: the relay at .* cannot be reached/m)
      assert.equal(down2.lines.length, 1, 'the id on stdout')
      // a DM to bob (alice has a session with him: she handed him her sender key) queues behind them
      const down3 = json<{ id: string, to: string, status: string }>(ok(await cli(['dm', bob, 'quince while down', '--json'], at('alice')), 'dm while down'))
      assert.deepEqual(down3.map(x => [x.to, x.status]), [[bob, 'queued']])
      // `send` queues the same way, also to a peer alice never wrote to (its prekeys come once the relay is back)
      const down4 = json<{ id: string, to: string, status: string }>(ok(await cli(['send', bob, 'raisin while down', '--json'], at('alice')), 'send while down'))
      assert.deepEqual(down4.map(x => [x.to, x.status]), [[bob, 'queued']])
      const down5 = json<{ id: string, to: string, status: string }>(ok(await cli(['send', carol, 'first words while down', '--json'], at('alice')), 'send to a new peer while down'))
      assert.deepEqual(down5.map(x => [x.to, x.status]), [[carol, 'queued']])

      r2 = await startRelay({ dataDir: data, port })
      // alice's next message goes after the two queued ones
      const back = json<{ status: string }>(ok(await cli(['chat', '--room', 'den', '--msg', 'plum when back', '--json'], at('alice')), 'chat when back'))
      assert.deepEqual(back.map(x => x.status), ['stored'])
      const heard = json<{ id: string, text: string, room?: string }>(ok(await cli(['listen', '--count', '5', '--timeout', '20', '--json'], at('bob')), 'bob listens'))
      // in order within each conversation (each room is read from its own log, DMs from the inbox: docs/protocol.md §6.1)
      const conv = (room: string | undefined): Array<string | undefined> => heard.filter(m => m.room === room).map(m => m.text)
      assert.deepEqual(conv('den'), ['fig while down', 'plum when back'])
      assert.deepEqual(conv('hall'), ['pear while down'])
      assert.deepEqual(conv(undefined), ['quince while down', 'raisin while down'])
      const ids = new Map(heard.map(m => [m.text, m.id]))
      assert.deepEqual([ids.get('fig while down'), ids.get('pear while down'), ids.get('quince while down'), ids.get('raisin while down')], [q[0]!.id, down2.lines[0], down3[0]!.id, down4[0]!.id])
      const atCarol = json<{ id: string, text: string }>(ok(await cli(['listen', '--count', '1', '--timeout', '20', '--json'], at('carol')), 'carol listens'))
      assert.deepEqual(atCarol.map(m => [m.id, m.text]), [[down5[0]!.id, 'first words while down']])
      // once: the next message bob gets is one posted after them
      ok(await cli(['chat', '--room', 'hall', '--msg', 'marker'], at('alice')), 'marker')
      assert.deepEqual(json<{ text: string }>(ok(await cli(['listen', '--count', '1', '--timeout', '20', '--json'], at('bob')), 'bob again')).map(m => m.text), ['marker'])
    } finally {
      await r2.close().catch(() => {})
    }
  })

  it('rooms - a private room\'s membership is signed: room members shows who added whom, and a plain REST invite without the owner\'s signature is refused', async () => {
    ok(await cli(['room', 'create', 'den2', '--private'], as('alice')), 'create')
    const inv = ok(await cli(['room', 'invite', 'den2', '@bob'], as('alice')), 'invite bob')
    assert.match(inv.stdout, new RegExp(`invited @bob \\(${ids.bob!}\\) to den2 \\(signed\\)`))
    ok(await cli(['room', 'join', 'den2'], as('bob')), 'join bob')
    const members = json<{ amid: string, signed?: boolean, added_by?: string }>(ok(await cli(['room', 'members', 'den2', '--json'], as('bob')), 'members --json'))
    assert.deepEqual(members.map(m => [m.amid, m.signed, m.added_by]), [[ids.alice, true, ids.alice], [ids.bob, true, ids.alice]])
    const text = ok(await cli(['room', 'members', 'den2'], as('bob')), 'members')
    assert.match(text.lines[0]!, /\(created the room\)$/)
    assert.match(text.lines[1]!, /added by @alice$/)
    // bob is no owner or admin: his signature does not invite
    const refused = await cli(['room', 'invite', 'den2', ids.carol!], as('bob'))
    assert.equal(refused.code, 1, refused.stdout)
    assert.match(refused.stderr, /AM_ERR_MEMBERSHIP_UNSIGNED/)
    assert.match(refused.stderr, /neither the owner nor an admin/)
  })

  it('rooms - listen prints who was added to a private room, signed, as the listener verified it', async () => {
    ok(await cli(['room', 'create', 'den3', '--private'], as('alice')), 'create')
    ok(await cli(['room', 'invite', 'den3', ids.bob!], as('alice')), 'invite bob')
    ok(await cli(['room', 'join', 'den3'], as('bob')), 'join bob')
    ok(await cli(['chat', '--room', 'den3', '--msg', 'bob here'], as('bob')), 'bob posts (and verifies the chain)')
    const listening = startCli(['listen', '--timeout', '60'], as('bob'))
    try {
      ok(await cli(['chat', '--room', 'den3', '--msg', 'are you there'], as('alice')), 'alice posts')
      await waitFor(() => listening.lines.some(l => l.includes('are you there')), 'bob listening', 30_000)
      ok(await cli(['room', 'invite', 'den3', ids.carol!], as('alice')), 'invite carol')
      await waitFor(() => listening.errLines.some(l => l.includes('was added')), 'the added line', 30_000)
      assert.deepEqual(listening.errLines.filter(l => l.includes('was added')), [`agentmesh: #den3: ${ids.carol!} was added by ${ids.alice!} (signed)`])
    } finally {
      listening.interrupt()
      await listening.done
    }
  })

  it('rooms - dm @handle pins the AMID on first contact; when the handle points to another agent the DM fails with AM_ERR_HANDLE_CHANGED until accepted', async () => {
    const id: Record<string, string> = {}
    for (const n of ['ann', 'ben', 'cat']) {
      id[n] = (JSON.parse(ok(await cli(['init', '--name', n, '--open', '--json'], as(n)), `init ${n}`).lines[0]!) as { amid: string }).amid
      ok(await cli(['handle', 'set', n], as(n)), `handle ${n}`)
    }
    const first = ok(await cli(['dm', '@ben', 'hello ben'], as('ann')), 'first dm')
    assert.match(first.stderr, new RegExp(`first contact with @ben: it is ${id.ben!}, safety number [0-9 ]+\\.`))
    const again = ok(await cli(['dm', '@ben', 'hello again'], as('ann')), 'second dm')
    assert.doesNotMatch(again.stderr, /first contact/)
    // the handle changes hands: ben takes another, cat takes "ben"
    ok(await cli(['handle', 'set', 'benny'], as('ben')), 'ben renames')
    ok(await cli(['handle', 'set', 'ben'], as('cat')), 'cat takes ben')
    const refused = await cli(['dm', '@ben', 'for ben only'], as('ann'))
    assert.equal(refused.code, 1, refused.stdout)
    assert.match(refused.stderr, /AM_ERR_HANDLE_CHANGED/)
    assert.ok(refused.stderr.includes(id.ben!) && refused.stderr.includes(id.cat!), refused.stderr)
    assert.equal(refused.stdout, '', 'no envelope id: nothing was sent')
    const pins = json<{ handle: string, amid: string }>(ok(await cli(['handle', 'pins', '--json'], as('ann')), 'pins'))
    assert.deepEqual(pins.map(p => [p.handle, p.amid]), [['ben', id.ben]])
    const accepted = json<{ handle: string, amid: string, previous?: string }>(ok(await cli(['handle', 'accept', '@ben', '--json'], as('ann')), 'accept'))
    assert.deepEqual(accepted, [{ handle: 'ben', amid: id.cat, previous: id.ben }])
    const sent = ok(await cli(['dm', '@ben', 'hello cat', '--json'], as('ann')), 'dm after accepting')
    assert.equal(json<{ to: string }>(sent)[0]!.to, id.cat)
    const heard = json<{ text: string, from: string }>(ok(await cli(['listen', '--count', '1', '--timeout', '20', '--json'], as('cat')), 'cat listens'))
    assert.deepEqual(heard.map(m => [m.text, m.from]), [['hello cat', id.ann]])
  })
})
