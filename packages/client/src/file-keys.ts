/**
 * The keys of end-to-end encrypted files this agent received (docs/protocol.md §18.5): an
 * `agentmesh.file` message carries a file's id, its AES-256-GCM key and nonce, and the plaintext's
 * SHA-256, name and size, inside the E2EE message (as Signal and Matrix attachments do). A stage of
 * every connection keeps them in the agent's sealed state as they arrive, so the file can be
 * downloaded and decrypted later (`files(conn).download`, `agentmesh file download`), and hands the
 * message on to the application. Nothing here imports Node: it runs in browsers too.
 */
import type { InboundStage } from './inbound.ts'
import type { E2ee } from './e2ee.ts'

/** The inner type of the message that hands a peer an encrypted file's key. */
export const FILE_MESSAGE_TYPE = 'agentmesh.file'
/** File keys kept at most (the oldest go first). */
export const MAX_FILE_KEYS = 10_000
const KIND = 'filekey'

/** What an `agentmesh.file` message carries (its payload), and what is kept of it. */
export interface FileKey {
  fileId: string
  /** AES-256-GCM key, base64url (32 bytes) */
  key: string
  /** AES-256-GCM nonce, base64url (12 bytes) */
  nonce: string
  /** SHA-256 of the plaintext, lower-case hex */
  sha256: string
  filename: string
  /** plaintext bytes */
  size: number
  type?: string
  description?: string
}

const B64U = (n: number): RegExp => new RegExp(`^[A-Za-z0-9_-]{${Math.ceil(n * 4 / 3)}}$`)
const KEY = B64U(32)
const NONCE = B64U(12)

/** The payload as a FileKey when it is one (an agent's payload is untrusted: checked field by field). */
export function asFileKey (p: Record<string, unknown>): FileKey | undefined {
  const { fileId, key, nonce, sha256, filename, size, type, description } = p
  if (typeof fileId !== 'string' || !/^[0-9a-f-]{36}$/.test(fileId)) return undefined
  if (typeof key !== 'string' || !KEY.test(key) || typeof nonce !== 'string' || !NONCE.test(nonce)) return undefined
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return undefined
  if (typeof filename !== 'string' || filename.length === 0 || filename.length > 255) return undefined
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined
  return {
    fileId, key, nonce, sha256, filename, size,
    ...(typeof type === 'string' && type.length <= 127 ? { type } : {}),
    ...(typeof description === 'string' && description.length <= 1024 ? { description } : {}),
  }
}

/** The sealed store of file keys over an agent's end-to-end state. */
export class FileKeys {
  constructor (private readonly e2ee: E2ee) {}

  get (fileId: string): (FileKey & { from: string }) | undefined { return this.e2ee.record<FileKey & { from: string }>(KIND, fileId) }

  put (k: FileKey, from: string): void {
    this.e2ee.saveRecord(KIND, k.fileId, { ...k, from })
    const keys = this.e2ee.recordKeys(KIND)
    for (let i = 0; i < keys.length - MAX_FILE_KEYS; i++) this.e2ee.dropRecord(KIND, keys[i]!.key)
  }

  delete (fileId: string): boolean { return this.e2ee.dropRecord(KIND, fileId) }
}

/** The stage that keeps the keys of `agentmesh.file` messages from end-to-end encrypted peers; the message goes on. */
export function fileKeyStage (keys: FileKeys | undefined): InboundStage {
  return {
    name: 'file-keys',
    handle (ctx) {
      const m = ctx.message
      if (keys === undefined || m === undefined || m.type !== FILE_MESSAGE_TYPE || m.encrypted !== true) return 'continue'
      const k = asFileKey(m.payload)
      if (k !== undefined) keys.put(k, m.from)
      return 'continue'
    },
  }
}

/** The file key stores of connections (set by the connection, read by `files(conn)`). */
export const fileKeysOf = new WeakMap<object, FileKeys>()
