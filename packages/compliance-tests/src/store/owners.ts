/**
 * The owner-link slice (docs/protocol.md §28): one verified owner link per agent, replaced,
 * removed, counted per owner identity. Part of the store compliance suite.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { OwnerLinkRecord, OwnerStore } from '@agentmesh/store'
import { ALICE, BOB, CAROL, T0, withStoreOf, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type OwnersSuiteStore = OwnerStore

const ISSUER = 'https://id.example'
const link = (amid: string, subject: string, extra: Partial<OwnerLinkRecord> = {}): OwnerLinkRecord => ({
  amid, issuer: ISSUER, subject, relay: CAROL, ts: T0, sig: 'c2ln', linkedAt: T0 + 1, ...extra,
})

export function ownersSuite (init: SuiteInit<OwnersSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: owner links`, () => {
    it('store - putOwnerLink stores one link per agent, every field read back; a second replaces the first', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.equal(await store.getOwnerLink(ALICE), undefined)
        const full = link(ALICE, 'alice-sub', { name: 'Ålice "A" 日本', email: 'alice@example.org' })
        await store.putOwnerLink(full)
        assert.deepEqual(await store.getOwnerLink(ALICE), full)
        const next = link(ALICE, 'other-sub', { ts: T0 + 5, linkedAt: T0 + 6 })
        await store.putOwnerLink(next)
        assert.deepEqual(await store.getOwnerLink(ALICE), next)
        assert.equal(await store.getOwnerLink(BOB), undefined)
      })
    })

    it('store - countOwnerLinks counts the agents of one owner identity; deleteOwnerLink removes one and says whether it had one', async () => {
      await withStore(undefined, async ({ store }) => {
        await store.putOwnerLink(link(ALICE, 'owner-1'))
        await store.putOwnerLink(link(BOB, 'owner-1'))
        await store.putOwnerLink(link(CAROL, 'owner-2'))
        assert.equal(await store.countOwnerLinks(ISSUER, 'owner-1'), 2)
        assert.equal(await store.countOwnerLinks(ISSUER, 'owner-2'), 1)
        assert.equal(await store.countOwnerLinks('https://other.example', 'owner-1'), 0)
        assert.equal(await store.deleteOwnerLink(ALICE), true)
        assert.equal(await store.deleteOwnerLink(ALICE), false)
        assert.equal(await store.getOwnerLink(ALICE), undefined)
        assert.equal(await store.countOwnerLinks(ISSUER, 'owner-1'), 1)
        assert.equal((await store.getOwnerLink(BOB))?.subject, 'owner-1')
      })
    })
  })
}
