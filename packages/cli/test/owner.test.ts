/**
 * `agentmesh owner link | show | unlink` (docs/protocol.md §28), in process against a relay with a
 * real OpenID Connect provider (oidc-provider) on 127.0.0.1: the command prints the sign-in URL,
 * the owner signs in there (a browser driven with fetch), the agent signs the link; the registry then
 * reads tier verified with the owner, and unlinking takes it away.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { assertCliError, cli, freePort, startCli, startRelay, tempDir, waitFor } from '@agentmesh/testing'
import { signInAt, startOidcProvider, type TestProvider } from '@agentmesh/testing/oidc'

type Json = Record<string, any>

describe('owner', () => {
  const dir = tempDir()
  let relay: Relay
  let provider: TestProvider
  let server: string
  const home = (name: string): string => join(dir.path, name)
  before(async () => {
    const relayPort = await freePort()
    provider = await startOidcProvider({ port: await freePort(), redirectUris: [`http://127.0.0.1:${relayPort}/api/v1/owner/callback`] })
    relay = await startRelay({ host: '127.0.0.1', port: relayPort, memory: true, oidcIssuer: provider.issuer, oidcClientId: provider.clientId, oidcClientSecret: provider.clientSecret })
    server = relay.url
  })
  after(async () => {
    await relay.close()
    await provider.close()
    dir.cleanup()
  })

  it('owner - link prints the sign-in URL, waits for the owner, and the agent reads verified; show and unlink', async () => {
    const r0 = await cli(['init', '--open', '--name', 'worker', '--json'], { home: home('worker'), server })
    assert.equal(r0.code, 0, r0.stderr)
    const amid = (JSON.parse(r0.lines[0]!) as { amid: string }).amid
    const running = startCli(['owner', 'link', '--json'], { home: home('worker'), server })
    await waitFor(() => running.lines.length > 0, 'the sign-in URL')
    const first = JSON.parse(running.lines[0]!) as Json
    assert.match(first.authorization_url, new RegExp(`^${provider.issuer}/`))
    const page = await signInAt(first.authorization_url, 'erin')
    assert.equal(page.status, 200)
    const done = await running.done
    assert.equal(done.code, 0, done.stderr)
    const linked = JSON.parse(done.lines[1]!) as Json
    assert.equal(linked.amid, amid)
    assert.equal(linked.subject, 'erin')
    assert.equal(linked.name, 'Person erin')

    const profile = await (await fetch(`${server}/api/v1/agents/${amid}`)).json() as Json
    assert.equal(profile.tier, 'verified')
    assert.equal(profile.owner.subject, 'erin')

    const shown = await cli(['owner', 'show', amid], { home: dir.path, server })
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, new RegExp(`^${amid} is owned by Person erin \\(erin at ${provider.issuer}\\), linked `))

    const un = await cli(['owner', 'unlink', '--json'], { home: home('worker'), server })
    assert.equal(un.code, 0, un.stderr)
    assert.deepEqual(JSON.parse(un.lines[0]!), { amid, unlinked: true })
    assert.equal((await (await fetch(`${server}/api/v1/agents/${amid}`)).json() as Json).tier, 'anonymous')
    assertCliError(await cli(['owner', 'show', amid], { home: dir.path, server }), 'AM_ERR_NOT_FOUND', 1)
    assertCliError(await cli(['owner', 'show', 'not-an-amid'], { home: dir.path, server }), 'AM_ERR_INVALID_ARGUMENT', 2)
  })
})

describe('serve - OpenID Connect', () => {
  it('serve - a provider that does not answer is one line at start (exit 2); the client secret from the environment is never printed', async () => {
    const dead = await freePort()
    const r = await cli(['serve', '--memory', '--port', '0', '--oidc-issuer', `http://127.0.0.1:${dead}`, '--oidc-client-id', 'relay'], { process: true })
    assertCliError(r, 'AM_ERR_INVALID_CONFIG', 2, new RegExp(`OpenID Connect provider http://127\\.0\\.0\\.1:${dead} did not answer`))
    const port = await freePort()
    const provider = await startOidcProvider({ port: await freePort(), redirectUris: [`http://127.0.0.1:${port}/api/v1/owner/callback`] })
    try {
      const running = startCli(['serve', '--memory', '--port', String(port), '--oidc-issuer', provider.issuer, '--oidc-client-id', provider.clientId, '--json'],
        { env: { AGENTMESH_OIDC_CLIENT_SECRET: provider.clientSecret, AGENTMESH_LOG_LEVEL: 'debug' } })
      await waitFor(() => running.lines.some(l => l.includes('"listening"')), 'the relay listening')
      assert.equal((JSON.parse(running.lines.find(l => l.includes('"listening"'))!) as Json).oidc_issuer, provider.issuer)
      running.interrupt()
      const done = await running.done
      assert.equal(done.code, 0, done.stderr)
      assert.ok(!done.stdout.includes(provider.clientSecret) && !done.stderr.includes(provider.clientSecret), 'the secret is not printed')
    } finally {
      await provider.close()
    }
  })
})
