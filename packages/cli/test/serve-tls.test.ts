/**
 * The CLI's TLS contract, with real processes: `serve --tls-cert --tls-key` serves wss://, the
 * CLI reaches it with AGENTMESH_CA_FILE and is refused without it, SIGHUP reloads the certificate
 * without dropping connections, and a bad certificate or a plain non-loopback address is one line
 * at start with nothing written.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { assertCliError, cli, makeTestCa, spawnRelay, tempDir, waitFor, type RelayProcess, type TestCa } from '@agentmesh/testing'

describe('serve - TLS', () => {
  let ca: TestCa
  let relay: RelayProcess
  const dir = tempDir()
  before(async () => {
    ca = makeTestCa()
    const pair = ca.issue('cli-relay')
    relay = await spawnRelay({ memory: true, args: ['--tls-cert', pair.certFile, '--tls-key', pair.keyFile] })
  })
  after(async () => { await relay.kill(); dir.cleanup() })

  it('serve - wss:// with a private CA: init and send work with AGENTMESH_CA_FILE, are refused without it; SIGHUP reloads the certificate', async () => {
    assert.match(relay.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    const server = relay.url.replace(/^https/, 'wss')
    const env = { AGENTMESH_CA_FILE: ca.caFile }
    const home = (n: string): string => join(dir.path, n)
    const init = async (name: string): Promise<string> => {
      const r = await cli(['init', '--open', '--name', name, '--json'], { home: home(name), server, env, process: true })
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.lines[0]!) as { amid: string }).amid
    }
    await init('alice')
    const bob = await init('bob')
    const sent = await cli(['send', bob, 'over wss', '--json'], { home: home('alice'), server, env, process: true })
    assert.equal(sent.code, 0, sent.stderr)
    assert.equal((JSON.parse(sent.lines[0]!) as { state?: string, id?: string }).id !== undefined, true)

    // without the CA: the TLS handshake fails, said in one line
    const refused = await cli(['send', bob, 'not sent', '--json', '--timeout', '3'], { home: home('alice'), server, process: true, timeoutMs: 30_000 })
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /AM_ERR_CONNECT_FAILED/)
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace')

    // a CA file that is not one: one line naming it
    const badCa = await cli(['whoami'], { home: home('alice'), server, env: { AGENTMESH_CA_FILE: join(dir.path, 'missing.pem') }, process: true })
    assertCliError(badCa, 'AM_ERR_INVALID_ARGUMENT', 2, /missing\.pem \(AGENTMESH_CA_FILE\) does not exist/)

    relay.child.kill('SIGHUP')
    await waitFor(() => relay.stdout().some(l => l.includes('"tls_reloaded"')), 'the relay to say it reloaded its certificate')
    const said = JSON.parse(relay.stdout().find(l => l.includes('"tls_reloaded"'))!) as { subject: string, not_after: string }
    assert.equal(said.subject, 'CN=cli-relay')
    assert.ok(Date.parse(said.not_after) > Date.now())
    assert.equal(relay.child.exitCode, null, 'still running')
  })

  it('serve - a key that does not match the certificate, or plain ws:// on 0.0.0.0 without --insecure: one line, exit 2, no data directory made', async () => {
    const one = ca.issue('mismatch-one')
    const two = ca.issue('mismatch-two')
    const data = join(dir.path, 'never-made')
    const r = await cli(['serve', '--data', data, '--port', '0', '--tls-cert', one.certFile, '--tls-key', two.keyFile], { process: true })
    assertCliError(r, 'AM_ERR_INVALID_CONFIG', 2, /does not match the certificate/)
    assert.equal(existsSync(data), false, 'nothing written')
    const plain = await cli(['serve', '--data', data, '--port', '0', '--host', '0.0.0.0'], { process: true })
    assertCliError(plain, 'AM_ERR_INVALID_CONFIG', 2, /not loopback.*--insecure/)
    assert.equal(existsSync(data), false, 'nothing written')
  })
})
