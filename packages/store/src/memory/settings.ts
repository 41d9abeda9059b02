/** The settings slice of the in-memory store. */
import type { SettingsStore } from '../types.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memorySettings (live: () => void): SettingsStore {
  let settings: Record<string, unknown> = {}

  return {
    async getSettings () { live(); return structuredClone(settings) },
    async putSettings (patch) {
      live()
      const next = { ...settings }
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete next[k]
        else if (v !== undefined) next[k] = JSON.parse(JSON.stringify(v)) as unknown
      }
      settings = next
      return structuredClone(settings)
    },
  }
}
