/**
 * `agentmesh a2a …` (in process) against an in-process relay: an agent turns its bridge on and
 * off, reads its card, calls an A2A agent built with the A2A SDK (blocking and streamed) and an
 * AgentMesh agent through the relay's bridge; answers are fenced as untrusted; errors are coded.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Relay } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { a2a, chat, connect, memoryState, UNTRUSTED_NOTICE, type Connection } from '@agentmesh/client'
import { ErrorCode } from '@agentmesh/protocol'
import { a2aTestAgent, assertCliError, cli, startRelay, tempDir, type CliResult } from '@agentmesh/testing'

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}; stdout: ${r.stdout} stderr: ${r.stderr}`)
  return r
}
const json = <T = any>(r: CliResult): T[] => r.lines.map(l => JSON.parse(l) as T)

describe('a2a (cli)', { concurrency: 1 }, () => {
  const dir = tempDir()
  let relay: Relay
  let peer: Awaited<ReturnType<typeof a2aTestAgent>>
  let bob: Connection
  let amid = ''
  const as = (): { home: string, server: string } => ({ home: join(dir.path, 'alice'), server: relay.url })

  before(async () => {
    relay = await startRelay()
    peer = await a2aTestAgent()
    amid = (JSON.parse(ok(await cli(['init', '--name', 'alice', '--json'], as()), 'init').lines[0]!) as { amid: string }).amid
    // bob, an SDK agent that answers A2A messages through the relay's bridge
    bob = await connect({ server: relay.url, identity: createIdentity('bob'), state: memoryState() })
    void (async () => { for await (const _m of bob.messages()) { /* task requests are handled in the loop */ } })()
    await chat(bob).setHandle('bob')
    await a2a(bob).serve((t) => `bob read: ${t.args}`)
  })
  after(async () => {
    await bob.close()
    await new Promise<void>((resolve) => peer.server.close(() => resolve()))
    await relay.close()
    dir.cleanup()
  })

  it('a2a - enable, status, card and disable: the setting and URLs, the card says E2EE ends at the bridge, off again answers the code', async () => {
    const [on] = json(ok(await cli(['a2a', 'enable', '--json'], as()), 'enable'))
    assert.deepEqual(on, { amid, enabled: true, url: `${relay.url}/a2a/${amid}`, card_url: `${relay.url}/a2a/${amid}/.well-known/agent-card.json`, e2ee: false })
    const text = ok(await cli(['a2a', 'status'], as()), 'status')
    assert.equal(text.lines[0], `A2A bridge on for ${amid}`)
    assert.ok(text.lines.some(l => /end-to-end encryption ends at the bridge/.test(l)))
    const [card] = json(ok(await cli(['a2a', 'card', '--json'], as()), 'card'))
    assert.equal(card.name, 'alice')
    assert.match(card.description, /End-to-end encryption ends at this bridge/)
    ok(await cli(['a2a', 'disable'], as()), 'disable')
    assertCliError(await cli(['a2a', 'card'], as()), ErrorCode.BridgeNotEnabled, 1)
  })

  it('a2a - send to an A2A agent: its answer fenced as untrusted; --json one object; --stream its updates', async () => {
    const t = ok(await cli(['a2a', 'send', peer.url, 'hello from the mesh'], as()), 'send')
    assert.match(t.lines[0]!, /^Upper \(http:\/\/127\.0\.0\.1:\d+\/agent\): completed · task [0-9a-f-]{36} · context [0-9a-f-]{36}$/)
    assert.equal(t.lines[1], `[${UNTRUSTED_NOTICE}]`)
    assert.ok(t.lines.includes('HELLO FROM THE MESH'), t.stdout)
    const [j] = json(ok(await cli(['a2a', 'send', peer.url, 'json please', '--json'], as()), 'send --json'))
    assert.deepEqual([j.agent, j.kind, j.state, j.text, j.untrusted], ['Upper', 'task', 'completed', 'JSON PLEASE', true])
    const s = json(ok(await cli(['a2a', 'send', peer.url, 'streamed', '--stream', '--json'], as()), 'send --stream'))
    assert.deepEqual(s.slice(0, -1).map(x => x.update.kind + (x.update.state === undefined ? '' : ':' + String(x.update.state))), ['task:submitted', 'status:working', 'artifact', 'status:completed'])
    assert.equal(s.at(-1).text, 'STREAMED')
  })

  it('a2a - send to an AgentMesh agent by handle goes through the relay\'s bridge and gets its SDK answer', async () => {
    const [j] = json(ok(await cli(['a2a', 'send', '@bob', 'are you there?', '--json'], as()), 'send @bob'))
    assert.deepEqual([j.state, j.text, j.url], ['completed', 'bob read: are you there?', `${relay.url}/a2a/@bob/`])
  })

  it('a2a - errors: an unreachable agent AM_ERR_REMOTE_AGENT, a bad URL AM_ERR_INVALID_ARGUMENT (usage), an agent without the bridge its code', async () => {
    assertCliError(await cli(['a2a', 'send', peer.url.replace('/agent', '/none'), 'x'], as()), ErrorCode.RemoteAgent, 1)
    assertCliError(await cli(['a2a', 'send', 'ftp://example.org/agent', 'x'], as()), ErrorCode.InvalidArgument, 2)
    assertCliError(await cli(['a2a', 'send', amid, 'x'], as()), ErrorCode.BridgeNotEnabled, 1)
  })
})
