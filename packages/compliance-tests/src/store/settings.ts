/**
 * The settings slice: the runtime settings object.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SettingsStore } from '@agentmesh/store'
import { withStoreOf, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type SettingsSuiteStore = SettingsStore

export function settingsSuite (init: SuiteInit<SettingsSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: settings`, () => {
    describe('settings', () => {
      it('store - putSettings merges into the settings, a null removes a key; both answer the settings in force', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.getSettings(), {})
          assert.deepEqual(await store.putSettings({ presence_idle_ms: 60_000, rate_limits: { api_per_minute: 5, api_burst: 2 } }),
            { presence_idle_ms: 60_000, rate_limits: { api_per_minute: 5, api_burst: 2 } })
          assert.deepEqual(await store.putSettings({ task_default_deadline_s: 30, rate_limits: { chat_burst: 9 } }),
            { presence_idle_ms: 60_000, task_default_deadline_s: 30, rate_limits: { chat_burst: 9 } }, 'a key is replaced as a whole')
          assert.deepEqual(await store.putSettings({ presence_idle_ms: null, missing: null, text: 'é 日本 "q"', flag: false, list: [1, 'a'] }),
            { task_default_deadline_s: 30, rate_limits: { chat_burst: 9 }, text: 'é 日本 "q"', flag: false, list: [1, 'a'] })
          assert.deepEqual(await store.getSettings(), { task_default_deadline_s: 30, rate_limits: { chat_burst: 9 }, text: 'é 日本 "q"', flag: false, list: [1, 'a'] })
          assert.deepEqual(await store.putSettings({}), await store.getSettings())
        })
      })
    })
  })
}
