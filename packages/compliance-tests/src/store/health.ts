/**
 * The agent health slice (docs/protocol.md §21): latest heartbeats and the bounded change history.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HealthChange, HealthStore, HeartbeatRecord } from '@agentmesh/store'
import { ALICE, BOB, CAROL, T0, withStoreOf, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type HealthSuiteStore = HealthStore

const beat = (amid: string, at: number, extra: Partial<HeartbeatRecord> = {}): HeartbeatRecord => ({ amid, status: 'healthy', at, ...extra })
const change = (at: number, from: HealthChange['from'], to: HealthChange['to'], reason = 'heartbeat'): HealthChange => ({ at, from, to, reason })

export function healthSuite (init: SuiteInit<HealthSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: health`, () => {
    it('store - putHeartbeat replaces an agent\'s latest heartbeat; every field reads back as written', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.equal(await store.getHeartbeat(ALICE), undefined)
        await store.putHeartbeat(beat(ALICE, T0, { uptimeSeconds: 5 }))
        const full = beat(ALICE, T0 + 1, {
          status: 'degraded', uptimeSeconds: 65.5, cpuUsage: 12.25, memoryUsage: 104_857_600, version: '0.2.0',
          customMetrics: { queue: 3, model: 'é 日本 "q"', warm: false },
        })
        await store.putHeartbeat(full)
        assert.deepEqual(await store.getHeartbeat(ALICE), full)
        assert.equal(await store.getHeartbeat(BOB), undefined)
      })
    })

    it('store - listHeartbeats pages by amid', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.deepEqual(await store.listHeartbeats({ limit: 10 }), [])
        await store.putHeartbeat(beat(CAROL, T0 + 3))
        await store.putHeartbeat(beat(ALICE, T0 + 1))
        await store.putHeartbeat(beat(BOB, T0 + 2, { status: 'unhealthy' }))
        await store.putHeartbeat(beat(ALICE, T0 + 4))
        assert.deepEqual((await store.listHeartbeats({ limit: 10 })).map(h => [h.amid, h.at]), [[ALICE, T0 + 4], [BOB, T0 + 2], [CAROL, T0 + 3]])
        assert.deepEqual((await store.listHeartbeats({ limit: 2 })).map(h => h.amid), [ALICE, BOB])
        assert.deepEqual((await store.listHeartbeats({ after: BOB, limit: 2 })).map(h => h.amid), [CAROL])
        assert.deepEqual(await store.listHeartbeats({ after: CAROL, limit: 2 }), [])
      })
    })

    it('store - the health history answers newest first and keeps the newest `keep` changes of each agent', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.deepEqual(await store.healthHistory(ALICE, 10), [])
        const a = [change(T0, 'unknown', 'healthy'), change(T0 + 1, 'healthy', 'degraded'), change(T0 + 2, 'degraded', 'offline', 'silent'), change(T0 + 3, 'offline', 'healthy')]
        for (const c of a) await store.addHealthChange(ALICE, c, 3)
        await store.addHealthChange(BOB, change(T0 + 9, 'healthy', 'offline', 'disconnected'), 3)
        assert.deepEqual(await store.healthHistory(ALICE, 10), [a[3], a[2], a[1]], 'the oldest was dropped')
        assert.deepEqual(await store.healthHistory(ALICE, 2), [a[3], a[2]])
        assert.deepEqual(await store.healthHistory(BOB, 10), [change(T0 + 9, 'healthy', 'offline', 'disconnected')])
        await store.addHealthChange(ALICE, change(T0 + 4, 'healthy', 'unhealthy'), 1)
        assert.deepEqual(await store.healthHistory(ALICE, 10), [change(T0 + 4, 'healthy', 'unhealthy')], 'a smaller keep trims at once')
      })
    })

    const { reopen } = init
    if (reopen !== undefined) {
      it('store - heartbeats and the health history survive reopen', async () => {
        await withStore(undefined, async (h) => {
          const hb = beat(ALICE, T0, { status: 'degraded', cpuUsage: 50, customMetrics: { q: 1 } })
          await h.store.putHeartbeat(hb)
          await h.store.addHealthChange(ALICE, change(T0, 'healthy', 'degraded'), 10)
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.getHeartbeat(ALICE), hb)
          assert.deepEqual(await h.store.healthHistory(ALICE, 10), [change(T0, 'healthy', 'degraded')])
          await h.store.addHealthChange(ALICE, change(T0 + 1, 'degraded', 'healthy'), 10)
          assert.deepEqual((await h.store.healthHistory(ALICE, 10)).map(c => c.at), [T0 + 1, T0], 'numbering goes on after reopen')
        })
      })
    }
  })
}
