/**
 * `agentmesh listen --p2p` and `agentmesh peers`, in process: a relay of its own, the listening
 * agent in its home, a peer (SDK) that sends to it over a direct link.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Connection } from '@agentmesh/client'
import { silentLogger, type Relay } from '@agentmesh/server'
import { assertCliError, cli, startCli, startRelay, tempDir, waitFor, type RunningCli } from '@agentmesh/testing'

describe('peers', { timeout: 90_000 }, () => {
  const dir = tempDir()
  const relays: Relay[] = []
  const running: RunningCli[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const c of running) c.interrupt()
    await Promise.all(running.map(async c => await c.done))
    for (const r of relays) await r.close()
    dir.cleanup()
  })

  it('peers - listen --p2p takes a direct message (path "direct"), and peers --json lists the peer on the direct path with its round-trip time', async () => {
    const relay = await startRelay({ logger: silentLogger })
    relays.push(relay)
    const bob = join(dir.path, 'bob')
    const alice = join(dir.path, 'alice')
    const init = await cli(['init', '--name', 'bob', '--open', '--json'], { home: bob, server: relay.url })
    assert.equal(init.code, 0, init.stderr)
    const bobAmid = (JSON.parse(init.lines[0]!) as { amid: string }).amid
    assert.equal((await cli(['init', '--name', 'alice', '--open'], { home: alice, server: relay.url })).code, 0)

    const listen = startCli(['listen', '--p2p', '--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--json'], { home: bob, server: relay.url })
    running.push(listen)
    await waitFor(() => listen.errLines.some(l => l.startsWith('{"p2p":')), 'listen to say where its direct links listen')
    const said = JSON.parse(listen.errLines.find(l => l.startsWith('{"p2p":'))!) as { p2p: { addrs: string[] } }
    assert.ok(said.p2p.addrs.length > 0 && said.p2p.addrs.every(a => a.startsWith('/ip4/127.0.0.1/tcp/') && a.includes('/p2p/')))

    const a = await connect({ server: relay.url, home: alice, p2p: { peers: { [bobAmid]: said.p2p.addrs } } })
    conns.push(a)
    const before = relay.stats().received
    await a.send(bobAmid, { text: 'over the direct link' })
    await waitFor(() => listen.lines.length === 1, 'bob\'s listen to print the message')
    const m = JSON.parse(listen.lines[0]!) as Record<string, unknown>
    assert.equal(m.text, 'over the direct link')
    assert.equal(m.path, 'direct')
    assert.equal(m.seq, 0)
    assert.equal(m.from, a.amid)
    assert.equal(relay.stats().received, before, 'the relay carried nothing')

    // peers reads what the listening process keeps in the home (0600)
    await waitFor(async () => {
      const r = await cli(['peers', '--json'], { home: bob, server: relay.url })
      return r.code === 0 && r.lines.some(l => (JSON.parse(l) as { path: string }).path === 'direct')
    }, 'peers to show alice on the direct path', 20_000)
    const r = await cli(['peers', '--json'], { home: bob, server: relay.url })
    assert.equal(r.code, 0, r.stderr)
    const peers = r.lines.map(l => JSON.parse(l) as { amid: string, path: string, rtt_ms: number | null, addrs: string[] })
    const pa = peers.find(p => p.amid === a.amid)!
    assert.deepEqual(Object.keys(pa).sort(), ['addrs', 'amid', 'path', 'rtt_ms'])
    assert.equal(pa.path, 'direct')
    assert.equal(typeof pa.rtt_ms, 'number')
    assert.ok(pa.addrs.every(x => x.startsWith('/ip4/127.0.0.1/tcp/')))
    assert.equal(statSync(join(bob, 'p2p-peers.json')).mode & 0o777, 0o600)
    const text = await cli(['peers'], { home: bob, server: relay.url })
    assert.match(text.stdout, new RegExp(`^${a.amid} direct [0-9.]+ ms /ip4/127\\.0\\.0\\.1/tcp/`, 'm'))

    // send --p2p: acknowledged by bob on the direct link, also with the relay stopped
    const sent = await cli(['send', bobAmid, 'from the cli', '--p2p', '--p2p-peer', `${bobAmid}=${said.p2p.addrs[0]!}`, '--json'], { home: alice, server: relay.url })
    assert.equal(sent.code, 0, sent.stderr)
    assert.deepEqual(Object.keys(JSON.parse(sent.lines[0]!) as object).sort(), ['id', 'path', 'status', 'to'])
    assert.equal((JSON.parse(sent.lines[0]!) as { path: string }).path, 'direct')
    await relay.close()
    relays.length = 0
    const down = await cli(['send', bobAmid, 'relay is down', '--p2p', '--p2p-peer', `${bobAmid}=${said.p2p.addrs[0]!}`, '--json'], { home: alice, server: relay.url })
    assert.equal(down.code, 0, down.stderr)
    assert.equal((JSON.parse(down.lines[0]!) as { status: string, path: string }).path, 'direct')
    await waitFor(() => listen.lines.length === 3, 'bob\'s listen to print both')
    assert.deepEqual(listen.lines.map(l => (JSON.parse(l) as { text: string }).text), ['over the direct link', 'from the cli', 'relay is down'])

    listen.interrupt()
    assert.equal((await listen.done).code, 0)
    const relay2 = await startRelay({ logger: silentLogger, port: Number(new URL(relay.url).port) })
    relays.push(relay2)
    // no listening process: the agents it has sessions with, on the relay path
    const off = await cli(['peers', '--json'], { home: bob, server: relay.url })
    assert.equal(off.code, 0, off.stderr)
    assert.deepEqual(off.lines.map(l => JSON.parse(l) as unknown), [{ amid: a.amid, path: 'relay', rtt_ms: null, addrs: [] }])
  })

  it('peers - listen --p2p-peer and --p2p-listen refuse what is not an address, with a coded error', async () => {
    const home = join(dir.path, 'carol')
    assert.equal((await cli(['init', '--name', 'carol', '--offline'], { home })).code, 0)
    assertCliError(await cli(['listen', '--p2p-peer', 'nobody', '--timeout', '1'], { home, server: 'ws://127.0.0.1:9' }), 'AM_ERR_INVALID_ARGUMENT', 2, /--p2p-peer takes <amid>=<multiaddr>/)
    assertCliError(await cli(['listen', '--p2p-listen', 'tcp:4001', '--timeout', '1'], { home, server: 'ws://127.0.0.1:9' }), 'AM_ERR_INVALID_ARGUMENT', 2, /--p2p-listen takes a multiaddr/)
    assertCliError(await cli(['listen', '--p2p-bootstrap', '/ip4/127.0.0.1/tcp/4001', '--timeout', '1'], { home, server: 'ws://127.0.0.1:9' }), 'AM_ERR_INVALID_ARGUMENT', 2, /--p2p-bootstrap .* ending in \/p2p\/<peer id>/)
    assertCliError(await cli(['listen', '--p2p', '--timeout', '1'], { home, server: 'ws://127.0.0.1:9', env: { AGENTMESH_P2P_BOOTSTRAP: 'nope' } }), 'AM_ERR_INVALID_ARGUMENT', 2, /AGENTMESH_P2P_BOOTSTRAP/)
  })
})
