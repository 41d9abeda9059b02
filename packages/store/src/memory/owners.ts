/** The owner-link slice of the in-memory store (docs/protocol.md §28). */
import type { OwnerLinkRecord, OwnerStore } from '../types.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryOwners (live: () => void): OwnerStore {
  const links = new Map<string, OwnerLinkRecord>()
  return {
    async putOwnerLink (link) { live(); links.set(link.amid, structuredClone(link)) },
    async getOwnerLink (amid) {
      live()
      const l = links.get(amid)
      return l === undefined ? undefined : structuredClone(l)
    },
    async deleteOwnerLink (amid) { live(); return links.delete(amid) },
    async countOwnerLinks (issuer, subject) {
      live()
      let n = 0
      for (const l of links.values()) if (l.issuer === issuer && l.subject === subject) n++
      return n
    },
  }
}
