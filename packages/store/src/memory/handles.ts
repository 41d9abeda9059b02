/** The handles slice of the in-memory store. */
import { handleSkeleton } from '@agentmesh/protocol'
import type { HandleStore } from '../types.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryHandles (live: () => void): HandleStore {
  /** amid → handle as given, and lower-cased handle → amid */
  const handles = new Map<string, string>()
  const handleHolders = new Map<string, string>()
  /** confusable skeleton → amid */
  const skeletons = new Map<string, string>()

  return {
    async setHandle (amid, handle) {
      live()
      const key = handle.toLowerCase()
      const holder = handleHolders.get(key)
      if (holder !== undefined && holder !== amid) return { status: 'taken', by: holder }
      const skel = handleSkeleton(handle)
      const lookalike = skeletons.get(skel)
      if (lookalike !== undefined && lookalike !== amid) return { status: 'taken', by: lookalike }
      const previous = handles.get(amid)
      if (previous !== undefined) { handleHolders.delete(previous.toLowerCase()); skeletons.delete(handleSkeleton(previous)) }
      handles.set(amid, handle)
      handleHolders.set(key, amid)
      skeletons.set(skel, amid)
      return previous === undefined ? { status: 'set' } : { status: 'set', previous }
    },
    async handleOf (amid) { live(); return handles.get(amid) },
    async resolveHandle (handle) { live(); return handleHolders.get(handle.toLowerCase()) },
  }
}
