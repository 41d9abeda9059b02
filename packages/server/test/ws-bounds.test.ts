/**
 * Smaller bounds of the relay over real sockets (docs/protocol.md §4, §17.4, §17.8): an envelope's
 * ts may be at most maxClockSkewMs ahead of the relay's clock, the WebSocket rate-limit error carries
 * retry_after, the watch frame is checked like every frame, and registry reads are rate-limited per IP.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode } from '@agentmesh/protocol'
import { signEnvelope } from '@agentmesh/crypto'
import { rawAgent, startRelay } from '@agentmesh/testing'

describe('relay ws - bounds', () => {
  it('relay ws - an envelope ts far in the future (1e20, or past maxClockSkewMs) is refused with AM_ERR_INVALID_ENVELOPE; a ts in the past is accepted', async (t) => {
    const relay = await startRelay({ maxClockSkewMs: 60_000 })
    t.after(async () => { await relay.close() })
    const [alice, bob] = [await rawAgent(relay.wsUrl), await rawAgent(relay.wsUrl)]
    for (const a of [alice, bob]) { t.after(() => { a.close() }); await a.auth() }
    const at = (id: string, ts: number): unknown => signEnvelope(alice.id, { id, to: bob.id.amid, type: 'chat', ts, payload: { text: id } })
    alice.send({ op: 'send', env: at('far-future', 1e20) })
    alice.send({ op: 'send', env: at('two-minutes-ahead', Date.now() + 120_000) })
    alice.send({ op: 'send', env: at('half-a-minute-ahead', Date.now() + 30_000) })
    alice.send({ op: 'send', env: at('last-year', Date.now() - 365 * 86_400_000) })
    const answers = await alice.collect(f => f.op === 'ack' || f.op === 'error', 4)
    assert.deepEqual(answers.map(f => [f.op, f.id, f.code]).sort(), [
      ['ack', 'half-a-minute-ahead', undefined], ['ack', 'last-year', undefined],
      ['error', 'far-future', ErrorCode.InvalidEnvelope], ['error', 'two-minutes-ahead', ErrorCode.InvalidEnvelope],
    ].sort())
    assert.match(answers.find(f => f.id === 'far-future')!.message, /ahead of the relay's clock/)
    const got = await bob.collect(f => f.op === 'deliver', 2)
    assert.deepEqual(got.map(f => f.env.id).sort(), ['half-a-minute-ahead', 'last-year'])
  })

  it('relay ws - a room message over the chat limit answers AM_ERR_RATE_LIMITED with retry_after in seconds', async (t) => {
    const relay = await startRelay({ rateLimits: { chat: { perMinute: 1, burst: 1 } } })
    t.after(async () => { await relay.close() })
    const alice = await rawAgent(relay.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    alice.send({ op: 'send', env: alice.envelope('#global', 'one', 'global-0001') })
    alice.send({ op: 'send', env: alice.envelope('#global', 'two', 'global-0002') })
    const [refused] = await alice.collect(f => f.op === 'error', 1)
    assert.deepEqual([refused!.code, refused!.id], [ErrorCode.RateLimited, 'global-0002'])
    assert.ok(Number.isInteger(refused!.retry_after) && refused!.retry_after >= 1 && refused!.retry_after <= 60, JSON.stringify(refused))
  })

  it('relay ws - a watch frame needs auth and AMIDs', async (t) => {
    const relay = await startRelay()
    t.after(async () => { await relay.close() })
    const a = await rawAgent(relay.wsUrl)
    t.after(() => { a.close() })
    a.send({ op: 'watch', agents: [] })
    assert.equal((await a.next(f => f.op === 'error')).code, ErrorCode.NotAuthenticated)
    await a.auth()
    a.send({ op: 'watch', agents: ['bob'] })
    const bad = await a.next(f => f.op === 'error')
    assert.equal(bad.code, ErrorCode.InvalidFrame)
    assert.match(bad.message, /field agents\.0/)
  })

  it('relay http - registry reads past registryReadBurst from one IP answer 429 AM_ERR_RATE_LIMITED with Retry-After', async (t) => {
    const relay = await startRelay({ registryReadBurst: 3, registryReadsPerMinute: 1 })
    t.after(async () => { await relay.close() })
    const statuses: number[] = []
    let last: Response | undefined
    for (let i = 0; i < 5; i++) {
      last = await fetch(`${relay.url}/api/v1/agents?limit=1`)
      statuses.push(last.status)
      if (i < 4) await last.body?.cancel()
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429])
    assert.equal(((await last!.json()) as { error: { code: string } }).error.code, ErrorCode.RateLimited)
    assert.ok(Number(last!.headers.get('retry-after')) >= 1)
    // other routes are not counted against it
    assert.equal((await fetch(`${relay.url}/healthz`)).status, 200)
  })
})
