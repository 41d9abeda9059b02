/**
 * The roles slice (docs/protocol.md §17.2).
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RoleStore } from '@agentmesh/store'
import { withStoreOf, ALICE, CAROL, DAVE, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type RolesSuiteStore = RoleStore

export function rolesSuite (init: SuiteInit<RolesSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: roles`, () => {
    describe('roles', () => {
      it('store - an agent is a worker until given a role; listRoles lists the others by amid', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.roleOf(ALICE), 'worker')
          assert.deepEqual(await store.listRoles(), [])
          await store.setRole(CAROL, 'warden')
          await store.setRole(ALICE, 'master')
          await store.setRole(DAVE, 'worker')
          assert.equal(await store.roleOf(ALICE), 'master')
          assert.equal(await store.roleOf(CAROL), 'warden')
          assert.equal(await store.roleOf(DAVE), 'worker')
          assert.deepEqual(await store.listRoles(), [{ amid: ALICE, role: 'master' }, { amid: CAROL, role: 'warden' }])
          await store.setRole(CAROL, 'master')
          await store.setRole(ALICE, 'worker')
          assert.equal(await store.roleOf(ALICE), 'worker')
          assert.deepEqual(await store.listRoles(), [{ amid: CAROL, role: 'master' }])
        })
      })
    })
  })
}
