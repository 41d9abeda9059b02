import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { cli, startRelay, tempDir } from '@agentmesh/testing'

/** An agent home protected by AGENTMESH_PASSPHRASE: identity.json sealed, every command needs it. */
describe('passphrase', () => {
  const dir = tempDir()
  let relay: Relay
  before(async () => { relay = await startRelay({}) })
  after(async () => { await relay.close(); dir.cleanup() })

  it('passphrase - init seals identity.json under AGENTMESH_PASSPHRASE; commands without it exit 1 with AM_ERR_BAD_PASSPHRASE, with it they work', async () => {
    const home = join(dir.path, 'sealed')
    const env = { AGENTMESH_PASSPHRASE: 'tea kettle orbit 42' }
    const init = await cli(['init', '--open', '--json'], { home, server: relay.url, env })
    assert.equal(init.code, 0, init.stderr)
    const amid = (JSON.parse(init.lines[0]!) as { amid: string }).amid
    const file = JSON.parse(readFileSync(join(home, 'identity.json'), 'utf8')) as Record<string, unknown>
    assert.deepEqual([file.amid, file.secret_key, typeof file.sealed_secret_key], [amid, undefined, 'string'])
    for (const args of [['whoami'], ['send', amid, 'x'], ['grants']]) {
      const r = await cli(args, { home, server: relay.url })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^agentmesh: error AM_ERR_BAD_PASSPHRASE: .*AGENTMESH_PASSPHRASE/)
    }
    const wrong = await cli(['whoami'], { home, env: { AGENTMESH_PASSPHRASE: 'not it' } })
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /AM_ERR_BAD_PASSPHRASE/)
    const me = await cli(['whoami'], { home, env })
    assert.deepEqual([me.code, me.lines], [0, [amid]])
    // with the passphrase, the agent works as any other
    const peerHome = join(dir.path, 'peer')
    const peer = (await cli(['init', '--open'], { home: peerHome, server: relay.url })).lines[0]!
    const sent = await cli(['send', peer, 'sealed hello'], { home, server: relay.url, env })
    assert.equal(sent.code, 0, sent.stderr)
    const got = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: peerHome, server: relay.url })
    assert.deepEqual(got.lines.map(l => (JSON.parse(l) as { from: string, text: string })).map(m => [m.from, m.text]), [[amid, 'sealed hello']])
  })
})
