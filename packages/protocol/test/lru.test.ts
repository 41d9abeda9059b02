import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LruMap, LruSet, RateLimiter } from '@agentmesh/protocol/internal'

test('lru - keeps at most maxSize entries and drops the least recently used', () => {
  const m = new LruMap<string, number>(3)
  m.set('a', 1).set('b', 2).set('c', 3)
  assert.equal(m.get('a'), 1) // a is now the most recent
  m.set('d', 4)
  assert.deepEqual([...m.keys()], ['c', 'a', 'd'])
  assert.equal(m.has('b'), false)
  assert.equal(m.size, 3)
})

test('lru - peek does not refresh, set of an existing key does, a smaller bound trims at once', () => {
  const m = new LruMap<string, number>(3)
  m.set('a', 1).set('b', 2).set('c', 3)
  assert.equal(m.peek('a'), 1)
  m.set('b', 20)
  assert.deepEqual([...m.entries()], [['a', 1], ['c', 3], ['b', 20]])
  m.maxSize = 1
  assert.deepEqual([...m.entries()], [['b', 20]])
  assert.throws(() => new LruMap(0), RangeError)
})

test('lru - a set is bounded the same way', () => {
  const s = new LruSet<number>(2)
  s.add(1).add(2)
  assert.equal(s.has(1), true)
  s.add(3)
  assert.deepEqual([...s], [1, 3])
})

test('rate limiter - a burst, then a retry-after, then refills with the clock; keys are bounded', () => {
  let now = 0
  const r = new RateLimiter({ perMinute: 60, burst: 2 }, () => now, 2)
  assert.deepEqual(r.take('x'), { ok: true })
  assert.deepEqual(r.take('x'), { ok: true })
  assert.deepEqual(r.take('x'), { ok: false, retryAfterS: 1 })
  now += 1000
  assert.deepEqual(r.take('x'), { ok: true })
  r.take('y'); r.take('z') // x is forgotten: it starts full again
  assert.deepEqual(r.take('x'), { ok: true })
  assert.deepEqual(r.take('x'), { ok: true })
})
