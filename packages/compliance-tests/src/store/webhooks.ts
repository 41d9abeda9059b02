/**
 * The wake-up slice (docs/protocol.md §26): one wake webhook per agent, replaced by the next.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { WebhookStore } from '@agentmesh/store'
import { ALICE, BOB, T0, withStoreOf, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type WebhooksSuiteStore = WebhookStore

export function webhooksSuite (init: SuiteInit<WebhooksSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: webhooks`, () => {
    it('store - putWebhook registers, replaces and getWebhook reads back; deleteWebhook says whether there was one', async () => {
      await withStore(undefined, async ({ store }) => {
        assert.equal(await store.getWebhook(ALICE), undefined)
        await store.putWebhook({ amid: ALICE, url: 'https://hooks.example/a?x=1', createdAt: T0 })
        await store.putWebhook({ amid: BOB, url: 'https://hooks.example/b', createdAt: T0 + 1 })
        assert.deepEqual(await store.getWebhook(ALICE), { amid: ALICE, url: 'https://hooks.example/a?x=1', createdAt: T0 })
        await store.putWebhook({ amid: ALICE, url: 'https://other.example/é', createdAt: T0 + 2 })
        assert.deepEqual(await store.getWebhook(ALICE), { amid: ALICE, url: 'https://other.example/é', createdAt: T0 + 2 })
        assert.equal(await store.deleteWebhook(ALICE), true)
        assert.equal(await store.deleteWebhook(ALICE), false)
        assert.equal(await store.getWebhook(ALICE), undefined)
        assert.deepEqual(await store.getWebhook(BOB), { amid: BOB, url: 'https://hooks.example/b', createdAt: T0 + 1 })
      })
    })

    const { reopen } = init
    if (reopen !== undefined) {
      it('store - a wake webhook survives reopen', async () => {
        await withStore(undefined, async (h) => {
          await h.store.putWebhook({ amid: ALICE, url: 'https://hooks.example/a', createdAt: T0 })
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.getWebhook(ALICE), { amid: ALICE, url: 'https://hooks.example/a', createdAt: T0 })
        })
      })
    }
  })
}
