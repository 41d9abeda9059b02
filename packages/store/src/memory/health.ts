/** The agent health slice of the in-memory store (docs/protocol.md §21): latest heartbeats, bounded change history. */
import type { HealthChange, HealthStore, HeartbeatRecord } from '../types.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryHealth (live: () => void): HealthStore {
  const beats = new Map<string, HeartbeatRecord>()
  const history = new Map<string, HealthChange[]>()

  return {
    async putHeartbeat (hb) { live(); beats.set(hb.amid, structuredClone(hb)) },
    async getHeartbeat (amid) {
      live()
      const hb = beats.get(amid)
      return hb === undefined ? undefined : structuredClone(hb)
    },
    async listHeartbeats (q) {
      live()
      const keys = [...beats.keys()].filter(k => q.after === undefined || k > q.after).sort().slice(0, Math.max(0, q.limit))
      return keys.map(k => structuredClone(beats.get(k)!))
    },
    async addHealthChange (amid, change, keep) {
      live()
      const list = history.get(amid) ?? []
      list.push({ ...change })
      if (list.length > keep) list.splice(0, list.length - Math.max(0, keep))
      history.set(amid, list)
    },
    async healthHistory (amid, limit) {
      live()
      const list = history.get(amid) ?? []
      if (limit <= 0) return []
      return list.slice(Math.max(0, list.length - limit)).reverse().map(c => ({ ...c }))
    },
  }
}
