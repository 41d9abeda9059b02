/** The files slice of the in-memory store (docs/protocol.md §18): metadata and chunks in maps. */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { FileRecord, FileStore } from '../types.ts'

interface Upload { owner: string, startedAt: number, chunks: Uint8Array[] }

const copyFile = (f: FileRecord): FileRecord => ({ ...f, sharedWith: [...f.sharedWith] })

/** `live` throws once the store is closed; every call checks it first. */
export function memoryFiles (live: () => void): FileStore {
  const files = new Map<string, FileRecord>()
  const blobs = new Map<string, Uint8Array[]>()
  const uploads = new Map<string, Upload>()

  const usage = (owner: string): { bytes: number, files: number } => {
    let bytes = 0
    let n = 0
    for (const f of files.values()) if (f.owner === owner) { bytes += f.size; n++ }
    return { bytes, files: n }
  }

  return {
    async beginFileUpload (id, owner, startedAt) {
      live()
      if (uploads.has(id) || files.has(id)) throw new AgentMeshError(ErrorCode.Internal, `upload ${id} exists already`)
      uploads.set(id, { owner, startedAt, chunks: [] })
    },
    async putFileChunk (id, index, bytes) {
      live()
      const u = uploads.get(id)
      if (u === undefined) throw new AgentMeshError(ErrorCode.Internal, `no upload ${id} in progress`)
      u.chunks[index] = new Uint8Array(bytes) // a copy: the caller may reuse its buffer
    },
    async completeFile (file, quota) {
      live()
      const u = uploads.get(file.id)
      if (u === undefined) throw new AgentMeshError(ErrorCode.Internal, `no upload ${file.id} in progress`)
      uploads.delete(file.id)
      const used = usage(file.owner)
      if (used.bytes + file.size > quota.bytes || used.files + 1 > quota.files) return 'quota'
      files.set(file.id, copyFile(file))
      blobs.set(file.id, u.chunks)
      return 'stored'
    },
    async abortFileUpload (id) { live(); uploads.delete(id) },
    async dropFileUploads (before) {
      live()
      let n = 0
      for (const [id, u] of uploads) if (u.startedAt < before) { uploads.delete(id); n++ }
      return n
    },
    async getFile (id) { live(); const f = files.get(id); return f === undefined ? undefined : copyFile(f) },
    async * readFileChunks (id) {
      live()
      for (const c of blobs.get(id) ?? []) yield new Uint8Array(c)
    },
    async listFiles (q) {
      live()
      const rooms = new Set(q.viewer?.rooms ?? [])
      const out: FileRecord[] = []
      const ids = [...files.keys()].sort().reverse()
      for (const id of ids) {
        if (q.before !== undefined && id >= q.before) continue
        const f = files.get(id)!
        if (q.owner !== undefined && f.owner !== q.owner) continue
        const v = q.viewer
        if (v !== undefined && !(f.owner === v.amid || f.visibility === 'public' || (f.visibility === 'private' && f.sharedWith.includes(v.amid)) || (f.visibility.startsWith('#') && rooms.has(f.visibility.slice(1))))) continue
        out.push(copyFile(f))
        if (out.length >= q.limit) break
      }
      return out
    },
    async deleteFile (id) { live(); blobs.delete(id); return files.delete(id) },
    async fileUsage (owner) { live(); return usage(owner) },
  }
}
