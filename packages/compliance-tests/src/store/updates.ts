/**
 * The system updates slice (docs/protocol.md §19): updates, one acknowledgement per (update, agent)
 * written compare-and-set, and the agents' reported versions.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { UpdateAckRecord, UpdateRecord, UpdateStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type UpdatesSuiteStore = UpdateStore

/** An update created at T0 + `at` (every optional field set unless `lean`). */
export function update (id: string, at = 0, opts: Partial<UpdateRecord> & { lean?: boolean } = {}): UpdateRecord {
  const { lean, ...rest } = opts
  const u: UpdateRecord = lean === true
    ? { id, version: '2.0.0', updateType: 'feature', title: `update ${id}`, breakingChange: false, createdBy: 'operator', createdAt: T0 + at }
    : {
        id,
        version: '2.0.0',
        updateType: 'api',
        title: `update ${id}`,
        description: 'the send API changes',
        requiredVersion: '2.0.0',
        breakingChange: true,
        announcement: '# Upgrade\n\n- `npm i @agentmesh/client@2` é 日本',
        expiresAt: T0 + at + 10_000,
        enforceAt: T0 + at + 5_000,
        createdBy: ALICE,
        createdAt: T0 + at,
      }
  return { ...u, ...rest }
}

function ack (updateId: string, amid: string, status: UpdateAckRecord['status'], at: number, extra: Partial<UpdateAckRecord> = {}): UpdateAckRecord {
  return { updateId, amid, status, updatedAt: T0 + at, ...extra }
}

export function updatesSuite (init: SuiteInit<UpdatesSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: system updates`, () => {
    it('store - an update round-trips with every field, and a lean one without its optional fields; putUpdate of an existing id keeps the first', async () => {
      await withStore(undefined, async ({ store }) => {
        const full = update('u-01')
        assert.equal(await store.putUpdate(full), true)
        assert.deepEqual(await store.getUpdate('u-01'), full)
        assert.equal(await store.putUpdate(update('u-01', 5, { title: 'other' })), false)
        assert.deepEqual(await store.getUpdate('u-01'), full)
        const lean = update('u-02', 1, { lean: true })
        await store.putUpdate(lean)
        const got = await store.getUpdate('u-02')
        assert.deepEqual(got, lean)
        for (const k of ['description', 'requiredVersion', 'announcement', 'expiresAt', 'enforceAt']) {
          assert.equal(got !== undefined && k in got, false, `${k} left out stays out`)
        }
        assert.equal(await store.getUpdate('u-99'), undefined)
      })
    })

    it('store - listUpdates: newest first, since, only the unexpired at activeAt, limit', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putUpdate(update('u-01', 0)) // expires T0 + 10_000
        await store.putUpdate(update('u-02', 100, { lean: true })) // never expires
        await store.putUpdate(update('u-03', 200, { expiresAt: T0 + 300 }))
        await store.putUpdate(update('u-04', 200, { lean: true })) // same time as u-03: id descending
        const ids = (us: UpdateRecord[]): string[] => us.map(u => u.id)
        assert.deepEqual(ids(await store.listUpdates({ limit: 10 })), ['u-04', 'u-03', 'u-02', 'u-01'])
        assert.deepEqual(ids(await store.listUpdates({ limit: 2 })), ['u-04', 'u-03'])
        assert.deepEqual(ids(await store.listUpdates({ since: T0 + 100, limit: 10 })), ['u-04', 'u-03', 'u-02'])
        assert.deepEqual(ids(await store.listUpdates({ activeAt: T0 + 300, limit: 10 })), ['u-04', 'u-02', 'u-01'], 'u-03 expired at T0 + 300')
        assert.deepEqual(ids(await store.listUpdates({ activeAt: T0 + 10_000, since: T0 + 1, limit: 10 })), ['u-04', 'u-02'])
        assert.deepEqual(await store.listUpdates({ limit: 0 }), [])
      })
    })

    it('store - putUpdateAck is compare-and-set: from pending (no row) once, then only from the stored status', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putUpdate(update('u-01'))
        const accepted = ack('u-01', BOB, 'accepted', 1, { agentVersion: '1.9.0', notes: 'will do é' })
        assert.equal(await store.putUpdateAck(accepted, 'pending'), true)
        assert.deepEqual(await store.getUpdateAck('u-01', BOB), accepted)
        // a second writer that read "pending" too loses
        assert.equal(await store.putUpdateAck(ack('u-01', BOB, 'rejected', 2), 'pending'), false)
        assert.equal(await store.putUpdateAck(ack('u-01', BOB, 'completed', 2), 'rejected'), false, 'the stored status is accepted')
        assert.deepEqual(await store.getUpdateAck('u-01', BOB), accepted, 'unchanged')
        const done = ack('u-01', BOB, 'completed', 3, { agentVersion: '2.0.0' })
        assert.equal(await store.putUpdateAck(done, 'accepted'), true)
        assert.deepEqual(await store.getUpdateAck('u-01', BOB), done, 'replaced whole: notes left out are gone')
        assert.equal(await store.getUpdateAck('u-01', ALICE), undefined)
        assert.equal(await store.getUpdateAck('u-02', BOB), undefined)
      })
    })

    it('store - concurrent first acks of one agent: exactly one wins', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putUpdate(update('u-01'))
        const statuses = ['accepted', 'rejected', 'completed'] as const
        const wins = await Promise.all(statuses.map(async s => await store.putUpdateAck(ack('u-01', BOB, s, 1), 'pending')))
        assert.equal(wins.filter(w => w).length, 1)
        assert.equal((await store.getUpdateAck('u-01', BOB))?.status, statuses[wins.indexOf(true)])
      })
    })

    it('store - listUpdateAcks by amid, per update; agentUpdateAcks answers an agent\'s acks of the updates named', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putUpdate(update('u-01'))
        await store.putUpdate(update('u-02', 1))
        await store.putUpdateAck(ack('u-01', CAROL, 'rejected', 1, { notes: 'no' }), 'pending')
        await store.putUpdateAck(ack('u-01', ALICE, 'accepted', 2), 'pending')
        await store.putUpdateAck(ack('u-02', BOB, 'completed', 3), 'pending')
        assert.deepEqual(await store.listUpdateAcks('u-01'), [ack('u-01', ALICE, 'accepted', 2), ack('u-01', CAROL, 'rejected', 1, { notes: 'no' })])
        assert.deepEqual(await store.listUpdateAcks('u-02'), [ack('u-02', BOB, 'completed', 3)])
        assert.deepEqual(await store.listUpdateAcks('u-99'), [])
        assert.deepEqual(await store.agentUpdateAcks(BOB, ['u-01', 'u-02', 'u-99']), [ack('u-02', BOB, 'completed', 3)])
        assert.deepEqual(await store.agentUpdateAcks(ALICE, ['u-02']), [])
        assert.deepEqual(await store.agentUpdateAcks(ALICE, []), [])
      })
    })

    it('store - an agent\'s reported version: the last one replaces the one before; listed by amid', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.deepEqual(await store.listAgentVersions(), [])
        await store.setAgentVersion(CAROL, '1.0.0', T0)
        await store.setAgentVersion(BOB, '1.2.0', T0 + 1)
        await store.setAgentVersion(CAROL, '2.0.0-rc.1+b5', T0 + 2)
        assert.deepEqual(await store.listAgentVersions(), [
          { amid: BOB, version: '1.2.0', at: T0 + 1 },
          { amid: CAROL, version: '2.0.0-rc.1+b5', at: T0 + 2 },
        ])
      })
    })

    const { reopen } = init
    if (reopen !== undefined) {
      it('store - updates, acks and versions survive reopen', async () => {
        await withStore(undefined, async (h) => {
          const u = update('u-01')
          await h.store.putUpdate(u)
          const a = ack('u-01', BOB, 'accepted', 1, { agentVersion: '1.0.0', notes: 'ok' })
          await h.store.putUpdateAck(a, 'pending')
          await h.store.setAgentVersion(BOB, '1.0.0', T0)
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.getUpdate('u-01'), u)
          assert.deepEqual(await h.store.listUpdateAcks('u-01'), [a])
          assert.deepEqual(await h.store.listAgentVersions(), [{ amid: BOB, version: '1.0.0', at: T0 }])
          assert.equal(await h.store.putUpdateAck(ack('u-01', BOB, 'completed', 2), 'accepted'), true)
        })
      })
    }
  })
}
