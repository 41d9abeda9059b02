/**
 * Per-agent rate limits across a cluster (rate-share.ts): what an agent spends on one node is told
 * to the others on the backplane and taken from their buckets, so N nodes do not give it N times
 * its limit.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { memoryStore } from '@agentmesh/store'
import { RateLimiter } from '@agentmesh/protocol/internal'
import { startRelay, waitFor } from '@agentmesh/testing'
import { inProcessBackplane, type BackplaneMessage } from '../src/backplane.ts'
import { rateShareFeature, MAX_RATE_SHARE_KEYS } from '../src/rate-share.ts'
import { defaultLogger } from '../src/log.ts'

const log = defaultLogger('silent')

describe('rate share - buckets told across nodes', () => {
  it('rate share - a burst spent on node A empties the same agent\'s bucket on node B, the debt is paid back by waiting, and other agents are untouched (fake clock)', async () => {
    let t = 0
    const bp = inProcessBackplane()
    const limit = { perMinute: 60, burst: 5 }
    const onA = new RateLimiter(limit, () => t)
    const onB = new RateLimiter(limit, () => t)
    const a = rateShareFeature({ backplane: bp, node: 'A', intervalMs: 60_000, log, limiters: () => ({ api: onA }) })
    const b = rateShareFeature({ backplane: bp, node: 'B', intervalMs: 60_000, log, limiters: () => ({ api: onB }) })
    a.start(); b.start()
    // both nodes let the agent spend its whole burst before they hear of each other
    for (let i = 0; i < 5; i++) assert.equal(onA.take('am-x').ok, true)
    for (let i = 0; i < 5; i++) assert.equal(onB.take('am-x').ok, true)
    a.flush(); b.flush()
    await Promise.resolve(); await Promise.resolve()
    assert.deepEqual([a.told, a.heard, b.told, b.heard], [1, 1, 1, 1])
    // each bucket is now 5 below empty: 6 tokens to refill at 1/s before the next call passes
    const refused = onA.take('am-x')
    assert.deepEqual(refused, { ok: false, retryAfterS: 6 })
    assert.equal(onB.take('am-x').ok, false)
    assert.equal(onB.take('am-y').ok, true, 'another agent keeps its own bucket')
    t += 5_000
    assert.equal(onA.take('am-x').ok, false)
    t += 1_000
    assert.equal(onA.take('am-x').ok, true)
    a.stop(); b.stop()
  })

  it('rate share - nothing spent, nothing said; its own message is not taken twice; a limit the node does not have is ignored', async () => {
    let t = 0
    const bp = inProcessBackplane()
    const said: BackplaneMessage[] = []
    bp.subscribe((m) => { said.push(m) })
    const mine = new RateLimiter({ perMinute: 60, burst: 3 }, () => t)
    const share = rateShareFeature({ backplane: bp, node: 'A', intervalMs: 60_000, log, limiters: () => ({ chat: mine }) })
    share.start()
    share.flush()
    await Promise.resolve()
    assert.equal(said.length, 0)
    assert.equal(mine.take('am-x').ok, true)
    share.flush()
    await Promise.resolve()
    assert.deepEqual(said, [{ type: 'rate:spent', origin: 'A', spent: { chat: [['am-x', 1]] } }])
    assert.equal(share.heard, 0, 'its own message is not heard')
    await bp.publish({ type: 'rate:spent', origin: 'B', spent: { newer: [['am-x', 100]], chat: [['am-x', 1]] } })
    assert.equal(mine.take('am-x').ok, true, '3 - 1 here - 1 on B leaves one')
    assert.equal(mine.take('am-x').ok, false)
    t += 0
    share.stop()
  })

  it(`rate share - more than ${MAX_RATE_SHARE_KEYS} agents in one interval send the message early (bounded size)`, async () => {
    const bp = inProcessBackplane()
    const said: BackplaneMessage[] = []
    bp.subscribe((m) => { said.push(m) })
    const l = new RateLimiter({ perMinute: 60, burst: 3 })
    const share = rateShareFeature({ backplane: bp, node: 'A', intervalMs: 60_000, log, limiters: () => ({ api: l }) })
    share.start()
    for (let i = 0; i < MAX_RATE_SHARE_KEYS + 10; i++) l.take(`am-${i}`)
    await Promise.resolve()
    assert.equal(said.length, 1)
    const m = said[0]
    assert.ok(m?.type === 'rate:spent')
    assert.equal(m.spent.api?.length, MAX_RATE_SHARE_KEYS)
    share.stop() // says the rest
    await Promise.resolve()
    assert.equal(said.length, 2)
  })
})

describe('rate share - two relays on one backplane', () => {
  it('rate share - the operator\'s REST calls spent on one node are refused on the other (429 AM_ERR_RATE_LIMITED), not allowed twice', async (t) => {
    const store = memoryStore()
    const shared = { ...store, close: async () => {} }
    const bp = inProcessBackplane()
    const apiKey = 'rate-share-test-operator-key-0123456789'
    const metricsToken = 'rate-share-test-metrics-token-0123456789'
    const init = { apiKey, metricsToken, clusterRateShareMs: 20, rateLimits: { api: { perMinute: 1, burst: 4 } } }
    const one = await startRelay(init, { store: shared, backplane: bp })
    const two = await startRelay(init, { store: shared, backplane: bp })
    t.after(async () => { await one.close(); await two.close(); await store.close() })
    const call = async (url: string): Promise<{ status: number, code?: string }> => {
      const r = await fetch(`${url}/api/v1/rooms`, { headers: { 'X-API-Key': apiKey } })
      const body = await r.json() as { error?: { code: string } }
      return { status: r.status, ...(body.error === undefined ? {} : { code: body.error.code }) }
    }
    const heard = async (url: string): Promise<number> => {
      // with the metrics token /metrics does not spend the operator's api bucket
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text()
      return Number(/^agentmesh_cluster_rate_shares_total\{direction="heard"\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
    // what the nodes tell each other: the operator's spending, summed (node two, subscribed before
    // this, has taken each message from its bucket by the time it reaches this subscriber)
    let told = 0
    bp.subscribe((m) => { if (m.type === 'rate:spent') for (const [key, n] of m.spent.api ?? []) if (key === 'operator') told += n })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await call(one.url)).status)
    assert.deepEqual(statuses, [200, 200, 200, 200])
    await waitFor(() => told >= 4, 'node one to tell the others all it let the operator spend')
    assert.ok(await heard(two.url) >= 1, 'node two counts what it heard')
    assert.deepEqual(await call(two.url), { status: 429, code: 'AM_ERR_RATE_LIMITED' })
    assert.deepEqual(await call(one.url), { status: 429, code: 'AM_ERR_RATE_LIMITED' })
  })
})
