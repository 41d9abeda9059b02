import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { assertCliError, cli, startRelay, tempDir } from '@agentmesh/testing'

interface Sealed { amid: string, sealed: boolean, state?: { resealed: number, left: number, already: boolean, empty: boolean } }

/**
 * An identity made in the clear, sealed under a passphrase later, its passphrase changed, then
 * unsealed: real processes, one home, its sessions kept readable throughout.
 */
describe('identity seal', () => {
  const dir = tempDir()
  let relay: Relay
  before(async () => { relay = await startRelay({}) })
  after(async () => { await relay.close(); dir.cleanup() })

  it('identity seal - seal, change the passphrase and unseal an existing identity.json; state.db stays readable; missing or wrong passphrases refused with AM_ERR_BAD_PASSPHRASE, nothing changed', async () => {
    const home = join(dir.path, 'alice')
    const peerHome = join(dir.path, 'bob')
    const server = relay.url
    const alice = (await cli(['init', '--open'], { home, server })).lines[0]!
    const bob = (await cli(['init', '--open'], { home: peerHome, server })).lines[0]!
    const idFile = join(home, 'identity.json')
    const clearSecret = (JSON.parse(readFileSync(idFile, 'utf8')) as { secret_key: string }).secret_key
    // a session each way: alice's state holds sealed sessions and keys
    assert.equal((await cli(['send', bob, 'one'], { home, server })).code, 0)
    assert.equal((await cli(['listen', '--count', '1', '--timeout', '20'], { home: peerHome, server })).code, 0)
    assert.equal((await cli(['send', alice, 'two'], { home: peerHome, server })).code, 0)
    assert.equal((await cli(['listen', '--count', '1', '--timeout', '20'], { home, server })).code, 0)
    const sessionsBefore = (await cli(['sessions', '--json'], { home, server })).lines.map(l => (JSON.parse(l) as { peer: string }).peer)
    assert.deepEqual(sessionsBefore, [bob])

    // no passphrase and no terminal: refused, the file untouched
    const before = readFileSync(idFile, 'utf8')
    assertCliError(await cli(['identity', 'seal'], { home, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1, /set AGENTMESH_PASSPHRASE \(it is never read from the command line\)/)
    assert.equal(readFileSync(idFile, 'utf8'), before)

    const p1 = { AGENTMESH_PASSPHRASE: 'first kettle orbit 17' }
    const sealed = await cli(['identity', 'seal', '--json'], { home, env: p1, process: true })
    assert.equal(sealed.code, 0, sealed.stderr)
    const r = JSON.parse(sealed.lines[0]!) as Sealed
    assert.equal(r.amid, alice)
    assert.equal(r.sealed, true)
    assert.ok(r.state !== undefined && r.state.resealed > 5 && !r.state.already, JSON.stringify(r.state))
    const text = readFileSync(idFile, 'utf8')
    const file = JSON.parse(text) as Record<string, unknown>
    assert.deepEqual([file.amid, file.secret_key, typeof file.sealed_secret_key], [alice, undefined, 'string'])
    assert.equal(text.includes(clearSecret), false, 'the clear key is gone from the file')
    assert.equal(statSync(idFile).mode & 0o777, 0o600)
    assert.deepEqual(readdirSync(home).filter(f => f.endsWith('.tmp')), [], 'no temporary file left')

    assertCliError(await cli(['whoami'], { home, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1)
    assertCliError(await cli(['identity', 'seal'], { home, env: p1, process: true }), 'AM_ERR_INVALID_ARGUMENT', 2, /sealed already; `agentmesh identity passphrase`/)
    // the state opens with the passphrase: the session with bob goes on (no new session)
    assert.deepEqual((await cli(['sessions', '--json'], { home, server, env: p1 })).lines.map(l => (JSON.parse(l) as { peer: string }).peer), [bob])
    assert.equal((await cli(['send', bob, 'three'], { home, server, env: p1 })).code, 0)
    const got = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: peerHome, server })
    assert.deepEqual(got.lines.map(l => JSON.parse(l) as { text: string, encrypted: boolean }).map(m => [m.text, m.encrypted]), [['three', true]])

    // change: a wrong current passphrase, or no new one, changes nothing
    const sealedText = readFileSync(idFile, 'utf8')
    assertCliError(await cli(['identity', 'passphrase'], { home, env: { AGENTMESH_PASSPHRASE: 'not it', AGENTMESH_NEW_PASSPHRASE: 'x y z' }, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1, /does not open/)
    assertCliError(await cli(['identity', 'passphrase'], { home, env: p1, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1, /AGENTMESH_NEW_PASSPHRASE/)
    assert.equal(readFileSync(idFile, 'utf8'), sealedText)
    const p2 = { AGENTMESH_PASSPHRASE: 'second lantern 99' }
    const changed = await cli(['identity', 'passphrase', '--json'], { home, env: { ...p1, AGENTMESH_NEW_PASSPHRASE: p2.AGENTMESH_PASSPHRASE }, process: true })
    assert.equal(changed.code, 0, changed.stderr)
    assertCliError(await cli(['whoami'], { home, env: p1, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1)
    assert.deepEqual((await cli(['whoami'], { home, env: p2 })).lines, [alice])
    assert.deepEqual((await cli(['sessions', '--json'], { home, server, env: p2 })).lines.map(l => (JSON.parse(l) as { peer: string }).peer), [bob])

    // unseal: the key in the clear again, the state without a passphrase, the session still there
    assertCliError(await cli(['identity', 'unseal'], { home, env: p1, process: true }), 'AM_ERR_BAD_PASSPHRASE', 1)
    const unsealed = await cli(['identity', 'unseal', '--json'], { home, env: p2, process: true })
    assert.equal(unsealed.code, 0, unsealed.stderr)
    assert.equal((JSON.parse(unsealed.lines[0]!) as Sealed).sealed, false)
    assert.equal((JSON.parse(readFileSync(idFile, 'utf8')) as { secret_key?: string }).secret_key, clearSecret)
    assert.deepEqual((await cli(['whoami'], { home })).lines, [alice])
    assert.equal((await cli(['send', bob, 'four'], { home, server })).code, 0)
    const last = await cli(['listen', '--count', '1', '--timeout', '20', '--json'], { home: peerHome, server })
    assert.deepEqual(last.lines.map(l => JSON.parse(l) as { text: string, encrypted: boolean }).map(m => [m.text, m.encrypted]), [['four', true]])
    assertCliError(await cli(['identity', 'unseal'], { home, process: true }), 'AM_ERR_INVALID_ARGUMENT', 2, /not sealed/)
  })
})
