/** The system updates slice of the in-memory store (docs/protocol.md §19). */
import type { UpdateAckRecord, UpdateRecord, UpdateStore } from '../types.ts'
import { asJson } from './util.ts'

/** The order of `Store.listUpdates`: newest first by createdAt, then id descending. */
function newestFirst (a: UpdateRecord, b: UpdateRecord): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/** `live` throws once the store is closed; every call checks it first. */
export function memoryUpdates (live: () => void): UpdateStore {
  const updates = new Map<string, UpdateRecord>()
  /** update id → amid → ack */
  const acks = new Map<string, Map<string, UpdateAckRecord>>()
  const versions = new Map<string, { version: string, at: number }>()

  return {
    async putUpdate (u) {
      live()
      if (updates.has(u.id)) return false
      updates.set(u.id, asJson(u))
      return true
    },
    async getUpdate (id) { live(); const u = updates.get(id); return u === undefined ? undefined : structuredClone(u) },
    async listUpdates (q) {
      live()
      const out = [...updates.values()]
        .filter(u => (q.since === undefined || u.createdAt >= q.since) && (q.activeAt === undefined || u.expiresAt === undefined || u.expiresAt > q.activeAt))
        .sort(newestFirst)
      return out.slice(0, Math.max(0, q.limit)).map(u => structuredClone(u))
    },
    async putUpdateAck (ack, expect) {
      live()
      let byAgent = acks.get(ack.updateId)
      const old = byAgent?.get(ack.amid)
      if ((old?.status ?? 'pending') !== expect) return false
      if (byAgent === undefined) { byAgent = new Map(); acks.set(ack.updateId, byAgent) }
      byAgent.set(ack.amid, asJson(ack))
      return true
    },
    async getUpdateAck (updateId, amid) {
      live()
      const a = acks.get(updateId)?.get(amid)
      return a === undefined ? undefined : { ...a }
    },
    async listUpdateAcks (updateId) {
      live()
      return [...(acks.get(updateId)?.values() ?? [])].sort((a, b) => a.amid < b.amid ? -1 : a.amid > b.amid ? 1 : 0).map(a => ({ ...a }))
    },
    async agentUpdateAcks (amid, updateIds) {
      live()
      const out: UpdateAckRecord[] = []
      for (const id of updateIds) {
        const a = acks.get(id)?.get(amid)
        if (a !== undefined) out.push({ ...a })
      }
      return out
    },
    async setAgentVersion (amid, version, at) { live(); versions.set(amid, { version, at }) },
    async listAgentVersions () {
      live()
      return [...versions].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([amid, v]) => ({ amid, version: v.version, at: v.at }))
    },
  }
}
