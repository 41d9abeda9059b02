/** The catastrophe slice of the in-memory store: events (§20) and the run marker. */
import type { CatastropheRecord, CatastropheStore } from '../types.ts'
import { asJson } from './util.ts'

/** The order of `Store.listCatastrophes`: newest first by reportedAt, then id descending. */
export function compareCatastrophesNewestFirst (a: { reportedAt: number, id: string }, b: { reportedAt: number, id: string }): number {
  if (a.reportedAt !== b.reportedAt) return b.reportedAt - a.reportedAt
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/** `live` throws once the store is closed; every call checks it first. */
export function memoryCatastrophes (live: () => void): CatastropheStore {
  const events = new Map<string, CatastropheRecord>()
  let run: { since: number } | undefined

  return {
    async putCatastrophe (e) {
      live()
      if (events.has(e.id)) return false
      events.set(e.id, asJson(e))
      return true
    },
    async getCatastrophe (id) { live(); const e = events.get(id); return e === undefined ? undefined : asJson(e) },
    async updateCatastrophe (e, expect) {
      live()
      const old = events.get(e.id)
      if (old === undefined || old.status !== expect) return false
      events.set(e.id, asJson(e))
      return true
    },
    async listCatastrophes (q) {
      live()
      const sorted = [...events.values()].sort(compareCatastrophesNewestFirst)
      let start = 0
      if (q.before !== undefined) {
        const b = events.get(q.before)
        start = b === undefined ? sorted.length : sorted.findIndex(e => compareCatastrophesNewestFirst(e, b) > 0)
        if (start < 0) start = sorted.length
      }
      const out: CatastropheRecord[] = []
      for (let i = start; i < sorted.length && out.length < q.limit; i++) {
        const e = sorted[i]!
        if (q.status !== undefined && e.status !== q.status) continue
        if (q.severity !== undefined && e.severity !== q.severity) continue
        out.push(asJson(e))
      }
      return out
    },
    async openCatastrophes (limit) {
      live()
      return [...events.values()].filter(e => e.status !== 'resolved').sort((a, b) => compareCatastrophesNewestFirst(b, a)).slice(0, limit).map(e => asJson(e))
    },
    async beginRun (at) { live(); const prev = run; run = { since: at }; return prev },
    async endRun () { live(); run = undefined },
  }
}
