/** The wake-up slice of the in-memory store (docs/protocol.md §26): one wake webhook per agent. */
import type { WebhookRecord, WebhookStore } from '../types.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryWebhooks (live: () => void): WebhookStore {
  const hooks = new Map<string, WebhookRecord>()
  return {
    async putWebhook (rec) { live(); hooks.set(rec.amid, { ...rec }) },
    async getWebhook (amid) {
      live()
      const r = hooks.get(amid)
      return r === undefined ? undefined : { ...r }
    },
    async deleteWebhook (amid) { live(); return hooks.delete(amid) },
  }
}
