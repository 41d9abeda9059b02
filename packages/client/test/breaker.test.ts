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
    assert.deepEqual(messageLimiterInit(defaultPolicy()), { limit: 6000, windowMs: 60_000 })
  })
})

describe('circuit breaker', () => {
  function breaker (init: ConstructorParameters<typeof CircuitBreaker>[0] = {}) {
    const trips: BreakerTrip[] = []
    const b = new CircuitBreaker({ threshold: 3, bounces: 2, turnGapMs: 2000, windowMs: 60_000, cooldownMs: 30_000, onTrip: t => { trips.push(t) }, ...init })
    return { b, trips }
  }
  const IN = { direction: 'in' } as const
  const OUT = { direction: 'out' } as const
  /** A ping-pong: `n` messages alternating in, out, in, … `stepMs` apart from `start`. */
  const pingPong = (b: CircuitBreaker, p: AgentPair, start: number, n: number, stepMs: number) =>
    Array.from({ length: n }, (_, i) => b.record(p, start + i * stepMs, i % 2 === 0 ? IN : OUT))

  it('breaker - a one-way stream of any length, even of the same content, never trips it', () => {
    const { b, trips } = breaker({ threshold: 1, bounces: 1 })
    for (let i = 0; i < 100_000; i++) assert.equal(b.record(pair('p'), T0 + i, { direction: 'in', hash: 'same' }).allowed, true)
    for (let i = 0; i < 1000; i++) assert.equal(b.record(pair('q'), T0 + i, { direction: 'out', hash: 'same' }).allowed, true)
    assert.deepEqual(trips, [])
    assert.deepEqual(b.state(pair('p')), { state: 'closed', count: 0, turns: 0, bounces: 0, trips: 0, refused: 0 })
  })

  it('breaker - turns (an answer within the turn gap) count; the one above the threshold trips it, once', () => {
    const { b, trips } = breaker()
    // in, out, in, out: three turns, at the threshold
    assert.deepEqual(pingPong(b, pair('p'), T0, 4, 100).map(r => r.allowed), [true, true, true, true])
    assert.equal(b.state(pair('p')).turns, 3)
    const r = b.record(pair('p'), T0 + 400, IN)
    const trip = { pair: { local: SELF, peer: 'p' }, reason: 'turns', count: 4, until: T0 + 30_400, trips: 1, autoBlock: false }
    assert.deepEqual(r, { allowed: false, state: 'open', retryAfterMs: 30_000, trip })
    assert.deepEqual(trips, [trip])
    // open: refused both ways, no second onTrip
    assert.deepEqual(b.record(pair('p'), T0 + 1400, OUT), { allowed: false, state: 'open', retryAfterMs: 29_000 })
    assert.deepEqual(b.record(pair('p'), T0 + 1400, IN), { allowed: false, state: 'open', retryAfterMs: 29_000 })
    assert.equal(trips.length, 1)
    assert.deepEqual(b.state(pair('p'), T0 + 1400), { state: 'open', count: 4, turns: 4, bounces: 0, until: T0 + 30_400, trips: 1, refused: 3 })
    assert.equal(b.openFor(pair('p'), T0 + 1400), 29_000)
    // other pairs are independent
    assert.deepEqual(b.record(pair('q'), T0 + 1400, IN), { allowed: true, state: 'closed' })
    assert.deepEqual(b.record({ local: 'amOther', peer: 'p' }, T0 + 1400, IN), { allowed: true, state: 'closed' })
  })

  it('breaker - a conversation slower than the turn gap never trips it, however long; a burst one way between turns adds no turn', () => {
    const { b, trips } = breaker()
    assert.ok(pingPong(b, pair('p'), T0, 10_000, 2001).every(r => r.allowed))
    // one way in bursts, answered after each burst: one turn per answer, not per message
    const { b: c, trips: ct } = breaker({ threshold: 10 })
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 50; i++) assert.equal(c.record(pair('p'), T0 + round * 1000 + i, IN).allowed, true)
      assert.equal(c.record(pair('p'), T0 + round * 1000 + 100, OUT).allowed, true)
    }
    assert.equal(c.state(pair('p')).turns, 9)
    assert.deepEqual([trips, ct], [[], []])
  })

  it('breaker - the window slides: turns spread over more than a window never trip it', () => {
    const { b, trips } = breaker()
    // a quick question and answer (one turn) every 21 s: no window (plus its bucket of slack) holds 4
    for (let k = 0; k < 20; k++) assert.ok(pingPong(b, pair('p'), T0 + k * 21_000, 2, 100).every(r => r.allowed), `exchange ${k}`)
    // while 4 within a window trip it
    const { b: b2, trips: t2 } = breaker()
    for (const s of [0, 20, 40]) pingPong(b2, pair('p'), T0 + s * 1000, 2, 100)
    assert.equal(pingPong(b2, pair('p'), T0 + 59_000, 2, 100)[1]!.allowed, false)
    assert.equal(t2.length, 1)
    assert.equal(trips.length, 0)
    assert.equal(b.state(pair('p')).state, 'closed')
  })

  it('breaker - bounces: the same content coming back within the window trips it, even at a slow pace', () => {
    const { b, trips } = breaker({ threshold: 1000 })
    // an echo: what goes out comes back 10 s later (no turn: slower than the gap), three times
    for (let i = 0; i < 3; i++) {
      assert.equal(b.record(pair('p'), T0 + i * 20_000, { direction: 'out', hash: `h${i}` }).allowed, true)
      const back = b.record(pair('p'), T0 + i * 20_000 + 10_000, { direction: 'in', hash: `h${i}` })
      assert.equal(back.allowed, i < 2, `bounce ${i + 1}`)
    }
    assert.deepEqual(trips.map(t => [t.reason, t.count]), [['bounces', 3]])
    // the same content the same way is no bounce; different content coming back is none either
    const { b: c, trips: ct } = breaker({ threshold: 1000 })
    for (let i = 0; i < 10; i++) c.record(pair('p'), T0 + i * 10_000, { direction: 'in', hash: 'same' })
    for (let i = 0; i < 10; i++) c.record(pair('p'), T0 + 200_000 + i * 10_000, { direction: 'out', hash: `other${i}` })
    assert.deepEqual(ct, [])
    assert.equal(c.state(pair('p')).bounces, 0)
  })

  it('breaker - after the cooldown it is half-open; a quiet window closes it, a new loop trips it again', () => {
    const { b, trips } = breaker()
    pingPong(b, pair('p'), T0, 5, 10)
    assert.equal(trips.length, 1)
    const until = trips[0]!.until
    assert.equal(b.state(pair('p'), until - 1).state, 'open')
    assert.equal(b.state(pair('p'), until).state, 'half-open')
    assert.equal(b.state(pair('p'), until).count, 0)
    assert.deepEqual(b.record(pair('p'), until, IN), { allowed: true, state: 'half-open' })
    assert.equal(b.state(pair('p'), until + 59_999).state, 'half-open')
    assert.equal(b.state(pair('p'), until + 60_000).state, 'closed')
    // looping again right after the cooldown: a second trip
    const { b: c, trips: ct } = breaker()
    pingPong(c, pair('p'), T0, 5, 10)
    const r = pingPong(c, pair('p'), ct[0]!.until, 5, 10)
    assert.deepEqual(r.map(x => x.allowed), [true, true, true, true, false])
    assert.deepEqual(ct.map(t => t.trips), [1, 2])
  })

  it('breaker - auto_block_after: off by default; set, that many trips within 24 h report autoBlock, once; then the count restarts', () => {
    const { b: d, trips: dt } = breaker({ autoBlockAfter: undefined })
    for (let n = 0; n < 30; n++) pingPong(d, pair('p'), T0 + n * 60_000, 5, 10)
    assert.equal(dt.length, 30)
    assert.ok(dt.every(t => !t.autoBlock), 'by default the breaker never blocks')
    assert.equal(dt.at(-1)!.trips, 16, 'trip history is bounded')

    const { b, trips } = breaker({ autoBlockAfter: 3 })
    const loop = (start: number) => pingPong(b, pair('p'), start, 5, 10)
    loop(T0)
    loop(T0 + 3_600_000)
    assert.deepEqual(trips.map(t => [t.trips, t.autoBlock]), [[1, false], [2, false]])
    loop(T0 + 2 * 3_600_000)
    assert.deepEqual(trips.map(t => [t.trips, t.autoBlock]), [[1, false], [2, false], [3, true]])
    loop(T0 + 3 * 3_600_000)
    assert.deepEqual(trips.at(-1)!.trips, 1, 'counting starts over after the auto-block')
    // trips more than 24 h apart do not add up
    const { b: c, trips: ct } = breaker({ autoBlockAfter: 2 })
    pingPong(c, pair('p'), T0, 5, 10)
    pingPong(c, pair('p'), T0 + 24 * 3_600_000 + 100, 5, 10)
    assert.deepEqual(ct.map(t => [t.trips, t.autoBlock]), [[1, false], [1, false]])
  })

  it('breaker - snapshot and restore: trips and an open breaker outlive a restart', () => {
    const { b, trips } = breaker({ autoBlockAfter: 3 })
    pingPong(b, pair('p'), T0, 5, 10)
    pingPong(b, pair('p'), T0 + 3_600_000, 5, 10)
    const snap = b.snapshot(pair('p'))
    assert.deepEqual(snap, { trips: [T0 + 40, T0 + 3_600_040], until: T0 + 3_630_040 })
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap, 'it is plain JSON')
    // a new process: the breaker is still open, and the next trip is the third
    const { b: b2, trips: t2 } = breaker({ autoBlockAfter: 3 })
    b2.restore(pair('p'), snap, T0 + 3_600_100)
    assert.equal(b2.state(pair('p'), T0 + 3_600_100).state, 'open')
    assert.equal(b2.record(pair('p'), T0 + 3_600_100, IN).allowed, false)
    pingPong(b2, pair('p'), T0 + 7_200_000, 5, 10)
    assert.deepEqual(t2.map(t => [t.trips, t.autoBlock]), [[3, true]])
    assert.equal(trips.length, 2)
    // garbage and old trips are left out
    const { b: b3 } = breaker()
    b3.restore(pair('p'), { trips: [T0 - 25 * 3_600_000, Number.NaN, T0] as number[] }, T0 + 1)
    assert.equal(b3.state(pair('p'), T0 + 1).trips, 1)
    assert.deepEqual(breaker().b.snapshot(pair('nobody')), { trips: [] })
  })

  it('breaker - bounded memory: at most maxPairs, least recently used forgotten first', () => {
    const { b } = breaker({ maxPairs: 100 })
    pingPong(b, pair('looper'), T0, 5, 1)
    for (let i = 0; i < 50_000; i++) {
      b.record(pair(`p${i}`), T0 + 10, { direction: 'in', hash: `h${i}` })
      if (i % 50 === 0) b.record(pair('looper'), T0 + 10, IN) // kept in use: kept
    }
    assert.equal(b.size, 100)
    assert.equal(b.state(pair('looper'), T0 + 10).state, 'open')
  })

  it('breaker - reset closes a pair and forgets it; configure changes the threshold', () => {
    const { b, trips } = breaker()
    pingPong(b, pair('p'), T0, 5, 10)
    assert.equal(b.reset(pair('p')), true)
    assert.deepEqual(b.state(pair('p')), { state: 'closed', count: 0, turns: 0, bounces: 0, trips: 0, refused: 0 })
    assert.equal(b.record(pair('p'), T0 + 100, IN).allowed, true)
    b.configure({ threshold: 1 })
    assert.equal(b.record(pair('p'), T0 + 110, OUT).allowed, true)
    assert.equal(b.record(pair('p'), T0 + 120, IN).allowed, false)
    assert.equal(trips.at(-1)!.count, 2)
  })

  it('breaker - a throwing onTrip propagates, after the state changed', () => {
    const b = new CircuitBreaker({ threshold: 1, onTrip: () => { throw new Error('audit log down') } })
    b.record(pair('p'), T0, IN)
    b.record(pair('p'), T0, OUT)
    assert.throws(() => b.record(pair('p'), T0, IN), /audit log down/)
    assert.equal(b.state(pair('p')).state, 'open')
  })

  it('breaker - defaults and settings from a policy: two bots answering each other at once trip it within a minute; a task-paced exchange never', () => {
    assert.deepEqual(breakerInit(defaultPolicy()), { threshold: 200, bounces: 20, turnGapMs: 2000, windowMs: 300_000, cooldownMs: 60_000, autoBlockAfter: 0 })
    const b = new CircuitBreaker(breakerInit(defaultPolicy()))
    // answers 3 s apart (an agent that thinks before it answers), for an hour
    assert.ok(pingPong(b, pair('task'), T0, 1200, 3000).every(r => r.allowed))
    // answers within 250 ms: the 201st turn, 50 s in, trips it
    const r = pingPong(b, pair('bots'), T0, 400, 250)
    const first = r.findIndex(x => !x.allowed)
    assert.equal(first, 201)
    assert.equal(!r[first]!.allowed && r[first]!.retryAfterMs, 60_000)
    const p = parsePolicy('{ "version": 1, "breaker": { "threshold": 5, "bounces": 3, "turn_gap_s": 10, "window_s": 60, "cooldown_s": 30, "auto_block_after": 2 } }', 'p.json')
    assert.deepEqual(breakerInit(p), { threshold: 5, bounces: 3, turnGapMs: 10_000, windowMs: 60_000, cooldownMs: 30_000, autoBlockAfter: 2 })
    for (const init of [{ threshold: 0 }, { bounces: 0 }, { turnGapMs: 0 }, { autoBlockAfter: -1 }]) {
      assert.throws(() => new CircuitBreaker(init), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidArgument))
    }
  })
})
