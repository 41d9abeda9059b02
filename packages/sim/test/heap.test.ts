import { it } from 'node:test'
import assert from 'node:assert/strict'
import { EventHeap } from '../src/heap.ts'
import { Rng } from '../src/rng.ts'

it('sim heap - pops by time, ties in the order pushed, across growth', () => {
  const h = new EventHeap(4)
  const rng = new Rng(42)
  const pushed: Array<[number, number]> = []
  for (let i = 0; i < 5000; i++) {
    const t = rng.int(100) // many ties
    h.push(t, 1, i, -1, i, i & 0xffff)
    pushed.push([t, i])
  }
  assert.equal(h.size, 5000)
  const want = [...pushed].sort((a, b) => a[0] - b[0] || a[1] - b[1])
  const got: Array<[number, number]> = []
  while (h.size > 0) { h.pop(); got.push([h.t, h.dst]); assert.equal(h.m, h.dst); assert.equal(h.x, h.dst & 0xffff) }
  assert.deepEqual(got, want)
  assert.equal(h.peak, 5000)
  assert.equal(h.peekTime(), Infinity)
})

it('sim rng - the same seed gives the same sequence, in range', () => {
  const a = new Rng(7); const b = new Rng(7); const c = new Rng(8)
  const xa = Array.from({ length: 100 }, () => a.int(10))
  assert.deepEqual(xa, Array.from({ length: 100 }, () => b.int(10)))
  assert.notDeepEqual(xa, Array.from({ length: 100 }, () => c.int(10)))
  assert.ok(xa.every(x => Number.isInteger(x) && x >= 0 && x < 10))
  assert.equal(new Set(xa).size, 10, 'every value of 0…9 appears in 100 draws')
})
