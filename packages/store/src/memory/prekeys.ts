/** The prekey part of the in-memory registry: bundle bases and one-time prekeys, curve and PQ. */
import type { OneTimePrekey, PqOneTimePrekey, RegistryStore, TakenBundle } from '../types.ts'

type PrekeySlice = Pick<RegistryStore, 'putPrekeys' | 'takePrekeyBundle' | 'countOneTimePrekeys' | 'countPqOneTimePrekeys'>

interface Entry { base?: Record<string, unknown>, oneTime: Map<number, OneTimePrekey>, pqOneTime: Map<number, PqOneTimePrekey> }

/** The lowest id of `m`, removed from it. */
function takeLowest<T extends { id: number }> (m: Map<number, T>): T | undefined {
  let first: T | undefined
  for (const k of m.values()) if (first === undefined || k.id < first.id) first = k
  if (first !== undefined) m.delete(first.id)
  return first
}

/** `live` throws once the store is closed; every call checks it first. */
export function memoryPrekeys (live: () => void): PrekeySlice {
  const prekeys = new Map<string, Entry>()
  return {
    async putPrekeys (amid, up) {
      live()
      let entry = prekeys.get(amid)
      if (entry === undefined) { entry = { oneTime: new Map(), pqOneTime: new Map() }; prekeys.set(amid, entry) }
      if (up.base !== undefined) entry.base = structuredClone(up.base)
      if (up.replaceOneTime === true) { entry.oneTime.clear(); entry.pqOneTime.clear() }
      for (const k of up.oneTime) if (!entry.oneTime.has(k.id)) entry.oneTime.set(k.id, { id: k.id, key: k.key })
      for (const k of up.pqOneTime ?? []) if (!entry.pqOneTime.has(k.id)) entry.pqOneTime.set(k.id, { id: k.id, key: k.key, sig: k.sig })
      return { oneTime: entry.oneTime.size, pqOneTime: entry.pqOneTime.size }
    },
    async takePrekeyBundle (amid) {
      live()
      const entry = prekeys.get(amid)
      if (entry?.base === undefined) return undefined
      const oneTime = takeLowest(entry.oneTime)
      const pqOneTime = takeLowest(entry.pqOneTime)
      const out: TakenBundle = { base: structuredClone(entry.base) }
      if (oneTime !== undefined) out.oneTime = { ...oneTime }
      if (pqOneTime !== undefined) out.pqOneTime = { ...pqOneTime }
      return out
    },
    async countOneTimePrekeys (amid) { live(); return prekeys.get(amid)?.oneTime.size ?? 0 },
    async countPqOneTimePrekeys (amid) { live(); return prekeys.get(amid)?.pqOneTime.size ?? 0 },
  }
}
