/**
 * The catastrophe slice (docs/protocol.md §20): events and the run marker.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CatastropheRecord, CatastropheStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type CatastrophesSuiteStore = CatastropheStore

export function catastrophe (id: string, over: Partial<CatastropheRecord> = {}): CatastropheRecord {
  return {
    id,
    eventType: 'server_down',
    severity: 'critical',
    title: `event ${id}`,
    description: 'the relay stopped — é 日本',
    recoveryProtocol: 'server-crash',
    affectedAgents: 'all',
    status: 'reported',
    reportedBy: 'relay',
    reportedAt: T0,
    ...over,
  }
}

export function catastrophesSuite (init: SuiteInit<CatastrophesSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: catastrophes`, () => {
    it('store - an event round-trips with its optional fields left out or set; a second put of its id answers false', async () => {
      await withStore(undefined, async ({ store }) => {
        const e = catastrophe('ev-1', { affectedAgents: [ALICE, BOB] })
        assert.equal(await store.putCatastrophe(e), true)
        const got = await store.getCatastrophe('ev-1')
        assert.deepEqual(got, e)
        assert.equal(got !== undefined && ('resolvedAt' in got || 'resolutionNotes' in got || 'recoveringAt' in got), false)
        assert.equal(await store.putCatastrophe(catastrophe('ev-1', { title: 'other' })), false)
        assert.equal((await store.getCatastrophe('ev-1'))?.title, 'event ev-1')
        assert.equal(await store.getCatastrophe('ev-9'), undefined)
      })
    })

    it('store - updateCatastrophe replaces an event only while its stored status is the expected one', async () => {
      await withStore(undefined, async ({ store }) => {
        const e = catastrophe('ev-1')
        await store.putCatastrophe(e)
        const recovering: CatastropheRecord = { ...e, status: 'recovering', recoveringAt: T0 + 5 }
        assert.equal(await store.updateCatastrophe(recovering, 'reported'), true)
        assert.deepEqual(await store.getCatastrophe('ev-1'), recovering)
        const resolved: CatastropheRecord = { ...recovering, status: 'resolved', resolvedAt: T0 + 9, resolutionNotes: 'restored' }
        assert.equal(await store.updateCatastrophe(resolved, 'reported'), false, 'stale expectation')
        assert.deepEqual(await store.getCatastrophe('ev-1'), recovering)
        assert.equal(await store.updateCatastrophe(resolved, 'recovering'), true)
        assert.deepEqual(await store.getCatastrophe('ev-1'), resolved)
        assert.equal(await store.updateCatastrophe(catastrophe('ev-2'), 'reported'), false, 'unknown id')
        assert.equal(await store.getCatastrophe('ev-2'), undefined)
      })
    })

    it('store - listCatastrophes: newest first, filtered by status and severity, paged with before', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putCatastrophe(catastrophe('ev-a', { reportedAt: T0 + 1, severity: 'minor' }))
        await store.putCatastrophe(catastrophe('ev-b', { reportedAt: T0 + 2, status: 'resolved', resolvedAt: T0 + 3 }))
        await store.putCatastrophe(catastrophe('ev-c', { reportedAt: T0 + 2, severity: 'major' }))
        await store.putCatastrophe(catastrophe('ev-d', { reportedAt: T0 + 4 }))
        const ids = (es: CatastropheRecord[]): string[] => es.map(e => e.id)
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 10 })), ['ev-d', 'ev-c', 'ev-b', 'ev-a'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 2 })), ['ev-d', 'ev-c'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 2, before: 'ev-c' })), ['ev-b', 'ev-a'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 10, status: 'reported' })), ['ev-d', 'ev-c', 'ev-a'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 10, severity: 'critical' })), ['ev-d', 'ev-b'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 10, severity: 'critical', status: 'resolved' })), ['ev-b'])
        assert.deepEqual(ids(await store.listCatastrophes({ limit: 10, before: 'ev-zz' })), [], 'an unknown before lists nothing')
        assert.deepEqual(ids(await store.openCatastrophes(10)), ['ev-a', 'ev-c', 'ev-d'], 'open ones oldest first')
        assert.deepEqual(ids(await store.openCatastrophes(1)), ['ev-a'])
      })
    })

    it('store - beginRun answers the mark an earlier run left; endRun clears it', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.equal(await store.beginRun(T0), undefined, 'a fresh store has no mark')
        assert.deepEqual(await store.beginRun(T0 + 10), { since: T0 }, 'never cleared: an unclean stop')
        await store.endRun()
        assert.equal(await store.beginRun(T0 + 20), undefined, 'cleared: a clean stop')
        await store.endRun()
        await store.endRun() // clearing twice is harmless
        assert.equal(await store.beginRun(T0 + 30), undefined)
      })
    })

    if (init.reopen !== undefined) {
      const reopen = init.reopen.bind(init)
      it('store - events and the run mark survive reopen', async () => {
        await withStore(undefined, async (h) => {
          const e = catastrophe('ev-1', { status: 'recovering', recoveringAt: T0 + 1 })
          await h.store.putCatastrophe(e)
          await h.store.beginRun(T0 + 5)
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.getCatastrophe('ev-1'), e)
          assert.deepEqual(await h.store.beginRun(T0 + 6), { since: T0 + 5 })
        })
      })
    }
  })
}
