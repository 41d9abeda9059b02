import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  RateLimiter, CircuitBreaker, knockLimiterInit, messageLimiterInit, breakerInit,
  type BreakerTrip, type AgentPair,
} from '../src/breaker.ts'
import { defaultPolicy, parsePolicy } from '../src/policy.ts'

/** A round start time: bucket boundaries fall on whole seconds (1-minute windows) and minutes (1-hour windows). */
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 3_600_000)
const SELF = 'amSelf'
const pair = (peer: string): AgentPair => ({ local: SELF, peer })

describe('rate limiter', () => {
  it('limiter - admits `limit` events per key, then refuses with retryAfterMs', () => {
    const l = new RateLimiter({ limit: 3, windowMs: 60_000 })
    assert.deepEqual([0, 1, 2].map(i => l.take('a', T0 + i * 1000)), [{ ok: true }, { ok: true }, { ok: true }])
    // the first event's bucket (T0) stops counting at T0 + 61 s: one window plus one bucket
    assert.deepEqual(l.take('a', T0 + 5000), { ok: false, retryAfterMs: 56_000 })
    assert.equal(l.count('a', T0 + 5000), 3, 'a refused take is not counted')
    assert.deepEqual(l.take('b', T0 + 5000), { ok: true }, 'keys are independent')
  })

  it('limiter - the window slides: events leave one by one, never early', () => {
    const l = new RateLimiter({ limit: 3, windowMs: 60_000 })
    for (const s of [0, 10, 20]) assert.equal(l.take('a', T0 + s * 1000).ok, true)
    assert.equal(l.take('a', T0 + 60_000).ok, false, 'one window after the first event: still counted')
    assert.equal(l.take('a', T0 + 60_999).ok, false)
    assert.equal(l.take('a', T0 + 61_000).ok, true, 'the first event left; this one takes its place')
    assert.equal(l.take('a', T0 + 61_000).ok, false)
    const r = l.take('a', T0 + 65_000)
    assert.deepEqual(r, { ok: false, retryAfterMs: 6000 }, 'the second event (t=10 s) leaves at 71 s')
    assert.equal(l.take('a', T0 + 71_000).ok, true)
    // in any 60 s interval, at most 3 were admitted
    assert.equal(l.count('a', T0 + 71_000), 3)
    // a long pause empties the window entirely
    assert.equal(l.count('a', T0 + 10 * 60_000), 0)
    assert.equal(l.take('a', T0 + 10 * 60_000).ok, true)
  })

  it('limiter - retryAfterMs is exact: taking at now + retryAfterMs succeeds, a ms earlier does not', () => {
    const l = new RateLimiter({ limit: 5, windowMs: 3_600_000 })
    for (let i = 0; i < 5; i++) assert.equal(l.take('p', T0 + i * 7 * 60_000 + 123).ok, true)
    const now = T0 + 50 * 60_000 + 17
    const r = l.take('p', now)
    assert.equal(r.ok, false)
    const wait = (r as { retryAfterMs: number }).retryAfterMs
    assert.equal(l.take('p', now + wait - 1).ok, false)
    assert.equal(l.take('p', now + wait).ok, true)
  })

  it('limiter - time running backwards does not reopen the window', () => {
    const l = new RateLimiter({ limit: 1, windowMs: 60_000 })
    assert.equal(l.take('a', T0 + 30_000).ok, true)
    assert.equal(l.take('a', T0).ok, false)
  })

  it('limiter - bounded keys: the least recently used is forgotten first', () => {
    const l = new RateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 3 })
    for (const k of ['a', 'b', 'c']) l.take(k, T0)
    assert.equal(l.take('a', T0).ok, false) // touching 'a' makes 'b' the oldest
    l.take('d', T0)
    assert.equal(l.size, 3)
    assert.equal(l.count('b', T0), 0, 'b was evicted')
    assert.equal(l.count('a', T0), 1)
    for (let i = 0; i < 10_000; i++) l.take(`k${i}`, T0)
    assert.equal(l.size, 3)
  })

  it('limiter - configure: a new limit keeps counts, a new window restarts them', () => {
    const l = new RateLimiter({ limit: 2, windowMs: 60_000 })
    l.take('a', T0); l.take('a', T0)
    assert.equal(l.take('a', T0).ok, false)
    l.configure({ limit: 3 })
    assert.equal(l.take('a', T0).ok, true)
    assert.equal(l.take('a', T0).ok, false)
    l.configure({ windowMs: 30_000 })
    assert.equal(l.count('a', T0), 0)
    l.configure({ maxKeys: 1 })
    l.take('x', T0); l.take('y', T0)
    assert.equal(l.size, 1)
  })

  it('limiter - settings are validated', () => {
    for (const init of [{ limit: 0, windowMs: 1000 }, { limit: 1.5, windowMs: 1000 }, { limit: 1, windowMs: 0 }, { limit: 1, windowMs: 1000, maxKeys: 0 }]) {
      assert.throws(() => new RateLimiter(init), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidArgument))
    }
  })

  it('limiter - settings from a policy', () => {
    const p = parsePolicy('{ "version": 1, "rate_limits": { "knocks_per_hour": 2, "messages_per_minute": 100 } }', 'p.json')
    assert.deepEqual(knockLimiterInit(p), { limit: 2, windowMs: 3_600_000 })
    assert.deepEqual(messageLimiterInit(p), { limit: 100, windowMs: 60_000 })
    assert.deepEqual(knockLimiterInit(defaultPolicy()), { limit: 5, windowMs: 3_600_000 })
    assert.deepEqual(messageLimiterInit(defaultPolicy()), { limit: 60, windowMs: 60_000 })
  })
})

describe('circuit breaker', () => {
  function breaker (init: ConstructorParameters<typeof CircuitBreaker>[0] = {}) {
    const trips: BreakerTrip[] = []
    const b = new CircuitBreaker({ threshold: 3, windowMs: 60_000, cooldownMs: 30_000, onTrip: t => { trips.push(t) }, ...init })
    return { b, trips }
  }

  it('breaker - threshold events pass; the one above trips it, once', () => {
    const { b, trips } = breaker()
    for (let i = 0; i < 3; i++) assert.deepEqual(b.record(pair('p'), T0 + i * 1000), { allowed: true, state: 'closed' })
    const r = b.record(pair('p'), T0 + 3000)
    const trip = { pair: { local: SELF, peer: 'p' }, count: 4, until: T0 + 33_000, trips: 1, autoBlock: false }
    assert.deepEqual(r, { allowed: false, state: 'open', retryAfterMs: 30_000, trip })
    assert.deepEqual(trips, [trip])
    // open: refused, no second onTrip
    assert.deepEqual(b.record(pair('p'), T0 + 4000), { allowed: false, state: 'open', retryAfterMs: 29_000 })
    assert.equal(trips.length, 1)
    assert.deepEqual(b.state(pair('p'), T0 + 4000), { state: 'open', count: 4, until: T0 + 33_000, trips: 1, refused: 2 })
    // other pairs are independent
    assert.deepEqual(b.record(pair('q'), T0 + 4000), { allowed: true, state: 'closed' })
    assert.deepEqual(b.record({ local: 'amOther', peer: 'p' }, T0 + 4000), { allowed: true, state: 'closed' })
  })

  it('breaker - the window slides: threshold events spread over more than a window never trip it', () => {
    const { b, trips } = breaker()
    // one event every 21 s: no 61 s span (a window plus its bucket of slack) holds 4
    for (let i = 0; i < 20; i++) assert.equal(b.record(pair('p'), T0 + i * 21_000).allowed, true, `event ${i}`)
    assert.equal(trips.length, 0)
    assert.equal(b.state(pair('p')).state, 'closed')
    // while 4 within a window trip it
    const { b: b2, trips: t2 } = breaker()
    for (const s of [0, 20, 40]) b2.record(pair('p'), T0 + s * 1000)
    assert.equal(b2.record(pair('p'), T0 + 59_000).allowed, false)
    assert.equal(t2.length, 1)
  })

  it('breaker - after the cooldown it is half-open; a quiet window closes it, a new excess trips it again', () => {
    const { b, trips } = breaker()
    for (let i = 0; i < 4; i++) b.record(pair('p'), T0)
    assert.equal(b.state(pair('p'), T0 + 29_999).state, 'open')
    assert.equal(b.state(pair('p'), T0 + 30_000).state, 'half-open')
    assert.equal(b.state(pair('p'), T0 + 30_000).count, 0)
    assert.deepEqual(b.record(pair('p'), T0 + 30_000), { allowed: true, state: 'half-open' })
    assert.equal(b.state(pair('p'), T0 + 30_000 + 59_999).state, 'half-open')
    assert.equal(b.state(pair('p'), T0 + 30_000 + 60_000).state, 'closed')

    // half-open again, and flooding again: a second trip
    const { b: c, trips: ct } = breaker()
    for (let i = 0; i < 4; i++) c.record(pair('p'), T0)
    for (let i = 0; i < 3; i++) assert.equal(c.record(pair('p'), T0 + 30_000 + i).allowed, true)
    const r = c.record(pair('p'), T0 + 30_010)
    assert.equal(r.allowed, false)
    assert.equal(ct.length, 2)
    assert.equal(ct[1]!.trips, 2)
    assert.equal(trips.length, 1)
  })

  it('breaker - auto_block_after trips within 24 h report autoBlock, once; then the count restarts', () => {
    const { b, trips } = breaker({ autoBlockAfter: 3 })
    const flood = (start: number) => { for (let i = 0; i < 4; i++) b.record(pair('p'), start + i) }
    flood(T0)
    flood(T0 + 3_600_000)
    assert.deepEqual(trips.map(t => [t.trips, t.autoBlock]), [[1, false], [2, false]])
    flood(T0 + 2 * 3_600_000)
    assert.deepEqual(trips.map(t => [t.trips, t.autoBlock]), [[1, false], [2, false], [3, true]])
    const r = b.record(pair('p'), T0 + 2 * 3_600_000 + 5)
    assert.equal(r.allowed, false)
    // counting starts over after the auto-block
    flood(T0 + 3 * 3_600_000)
    assert.deepEqual(trips.at(-1)!.trips, 1)
    assert.equal(trips.at(-1)!.autoBlock, false)
  })

  it('breaker - trips more than 24 h apart do not add up', () => {
    const { b, trips } = breaker({ autoBlockAfter: 2 })
    const flood = (start: number) => { for (let i = 0; i < 4; i++) b.record(pair('p'), start + i) }
    flood(T0)
    flood(T0 + 24 * 3_600_000 + 10)
    assert.deepEqual(trips.map(t => [t.trips, t.autoBlock]), [[1, false], [1, false]])
    flood(T0 + 25 * 3_600_000)
    assert.deepEqual(trips.at(-1), { pair: pair('p'), count: 4, until: T0 + 25 * 3_600_000 + 3 + 30_000, trips: 2, autoBlock: true })
  })

  it('breaker - auto_block_after 0 never reports autoBlock', () => {
    const { b, trips } = breaker({ autoBlockAfter: 0 })
    for (let n = 0; n < 30; n++) for (let i = 0; i < 4; i++) b.record(pair('p'), T0 + n * 60_000 + i)
    assert.equal(trips.length, 30)
    assert.ok(trips.every(t => !t.autoBlock))
    assert.equal(trips.at(-1)!.trips, 16, 'trip history is bounded')
  })

  it('breaker - bounded memory: at most maxPairs, least recently used forgotten first', () => {
    const { b } = breaker({ maxPairs: 100 })
    for (let i = 0; i < 4; i++) b.record(pair('flooder'), T0 + i)
    for (let i = 0; i < 50_000; i++) {
      b.record(pair(`p${i}`), T0 + 10)
      if (i % 50 === 0) b.record(pair('flooder'), T0 + 10) // kept in use: kept
    }
    assert.equal(b.size, 100)
    assert.equal(b.state(pair('flooder'), T0 + 10).state, 'open')
    assert.equal(b.state(pair('p0'), T0 + 10).count, 0, 'an idle pair was forgotten')
  })

  it('breaker - reset closes a pair and forgets it; configure changes the threshold', () => {
    const { b, trips } = breaker()
    for (let i = 0; i < 4; i++) b.record(pair('p'), T0 + i)
    assert.equal(b.reset(pair('p')), true)
    assert.deepEqual(b.state(pair('p')), { state: 'closed', count: 0, trips: 0, refused: 0 })
    assert.equal(b.record(pair('p'), T0 + 10).allowed, true)
    b.configure({ threshold: 1 })
    assert.equal(b.record(pair('p'), T0 + 11).allowed, false)
    assert.equal(trips.at(-1)!.count, 2)
  })

  it('breaker - a throwing onTrip propagates, after the state changed', () => {
    const b = new CircuitBreaker({ threshold: 1, onTrip: () => { throw new Error('audit log down') } })
    b.record(pair('p'), T0)
    assert.throws(() => b.record(pair('p'), T0), /audit log down/)
    assert.equal(b.state(pair('p')).state, 'open')
  })

  it('breaker - defaults and settings from a policy', () => {
    assert.deepEqual(breakerInit(defaultPolicy()), { threshold: 20, windowMs: 60_000, cooldownMs: 60_000, autoBlockAfter: 3 })
    const b = new CircuitBreaker(breakerInit(defaultPolicy()))
    for (let i = 0; i < 20; i++) assert.equal(b.record(pair('p'), T0 + i * 100).allowed, true)
    const r = b.record(pair('p'), T0 + 2000)
    assert.equal(r.allowed, false)
    assert.equal(!r.allowed && r.retryAfterMs, 60_000)
    assert.throws(() => new CircuitBreaker({ threshold: 0 }), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidArgument))
  })
})
