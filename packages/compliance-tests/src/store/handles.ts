/**
 * The handles slice (docs/protocol.md §17.1).
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HandleStore } from '@agentmesh/store'
import { withStoreOf, ALICE, BOB, CAROL, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type HandlesSuiteStore = HandleStore

export function handlesSuite (init: SuiteInit<HandlesSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: handles`, () => {
    describe('handles', () => {
      it('store - a handle is unique case-insensitively, kept as given; a taken one answers its holder', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.handleOf(BOB), undefined)
          assert.equal(await store.resolveHandle('bob'), undefined)
          assert.deepEqual(await store.setHandle(BOB, 'Bob'), { status: 'set' })
          assert.equal(await store.handleOf(BOB), 'Bob')
          for (const h of ['Bob', 'bob', 'BOB', 'bOb']) assert.equal(await store.resolveHandle(h), BOB, h)
          assert.deepEqual(await store.setHandle(ALICE, 'bOB'), { status: 'taken', by: BOB })
          assert.deepEqual(await store.setHandle(ALICE, 'bob'), { status: 'taken', by: BOB })
          assert.equal(await store.handleOf(ALICE), undefined, 'a refused handle is not set')
          assert.deepEqual(await store.setHandle(ALICE, 'alice.1'), { status: 'set' })
          assert.equal(await store.resolveHandle('ALICE.1'), ALICE)
          assert.equal(await store.resolveHandle('alice'), undefined, 'handles match whole')
          assert.equal(await store.handleOf(BOB), 'Bob', 'the holder keeps it')
        })
      })

      it('store - changing a handle frees the old one at once', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.setHandle(BOB, 'Bob')
          assert.deepEqual(await store.setHandle(BOB, 'robert'), { status: 'set', previous: 'Bob' })
          assert.equal(await store.resolveHandle('bob'), undefined)
          assert.equal(await store.resolveHandle('Robert'), BOB)
          assert.deepEqual(await store.setHandle(ALICE, 'BOB'), { status: 'set' })
          assert.equal(await store.resolveHandle('bob'), ALICE)
          assert.equal(await store.handleOf(ALICE), 'BOB')
          // the holder may change the case of its own handle
          assert.deepEqual(await store.setHandle(BOB, 'Robert'), { status: 'set', previous: 'robert' })
          assert.equal(await store.handleOf(BOB), 'Robert')
          assert.equal(await store.resolveHandle('ROBERT'), BOB)
          assert.deepEqual(await store.setHandle(CAROL, 'robert'), { status: 'taken', by: BOB })
        })
      })

      it('store - a handle that looks like a held one (same confusable skeleton) is taken; its holder may switch between look-alikes', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.setHandle(BOB, 'bob'), { status: 'set' })
          for (const h of ['b0b', 'B0B', 'bOb']) assert.deepEqual(await store.setHandle(ALICE, h), { status: 'taken', by: BOB }, h)
          assert.deepEqual(await store.setHandle(ALICE, 'bill'), { status: 'set' })
          for (const h of ['biII', 'bi11', 'b1ll']) assert.deepEqual(await store.setHandle(CAROL, h), { status: 'taken', by: ALICE }, h)
          assert.deepEqual(await store.setHandle(CAROL, 'rnary'), { status: 'set' })
          assert.deepEqual(await store.setHandle(BOB, 'mary'), { status: 'taken', by: CAROL })
          assert.equal(await store.handleOf(BOB), 'bob', 'a refused handle is not set')
          assert.equal(await store.resolveHandle('b0b'), undefined, 'a look-alike does not resolve: handles match whole')
          // the holder may take a look-alike of its own handle, and the old skeleton is freed with the old handle
          assert.deepEqual(await store.setHandle(BOB, 'b0b'), { status: 'set', previous: 'bob' })
          assert.deepEqual(await store.setHandle(BOB, 'robert'), { status: 'set', previous: 'b0b' })
          assert.deepEqual(await store.setHandle(ALICE, 'bob'), { status: 'set', previous: 'bill' })
        })
      })
    })
  })
}
