/**
 * The operations slices of the Store (docs/protocol.md §18–§21): files and their chunks, system
 * updates and their acknowledgements, agent health, catastrophe events and the run marker.
 */

// ---- operations: files (docs/protocol.md §18)
/** The bytes of one chunk row: a file's bytes are kept in the Store as rows of this size (the last one shorter). */
export const FILE_CHUNK_BYTES = 256 * 1024

/** A file's metadata; its bytes are chunk rows (`FileStore`). */
export interface FileRecord {
  /** a UUID v7 */
  id: string
  owner: string
  filename: string
  /** MIME type */
  type: string
  size: number
  /** SHA-256 of the bytes, lower-case hex */
  sha256: string
  description?: string
  createdAt: number
  /** 'private' (the owner and `sharedWith`), 'public' (every agent) or '#room' (its members) */
  visibility: string
  /** agents a private file is shared with (empty for the others) */
  sharedWith: string[]
}

/** What one agent may see of the files: a page of them, newest first (id descending). */
export interface FileQuery {
  /** only files this agent owns */
  owner?: string
  /** only files this agent may see: its own, shared with it, public, or of one of `rooms` (room ids, no '#'); every file when absent (a master) */
  viewer?: { amid: string, rooms: readonly string[] }
  /** files with an id below this (the last id of the page before) */
  before?: string
  limit: number
}

/** What an agent holds: bytes and files (for its quota). */
export interface FileUsage { bytes: number, files: number }

/**
 * Files: metadata rows and their bytes as chunk rows. An upload writes its chunks under its id
 * (`putFileChunk`, in order from 0) and becomes visible only with `completeFile`, which writes the
 * metadata row, checked against the owner's quota, in one transaction. Until then no read sees it;
 * `abortFileUpload` drops its chunks, and `dropFileUploads` those of uploads started before a time
 * (leftovers of a crash, at start).
 */
export interface FileStore {
  /** Starts an upload: its chunks will be written under `id` (a fresh UUID v7). */
  beginFileUpload (id: string, owner: string, startedAt: number): Promise<void>
  /** Chunk `index` (0, 1, …) of an upload that has begun and is not complete. */
  putFileChunk (id: string, index: number, bytes: Uint8Array): Promise<void>
  /**
   * Makes an upload a file: its metadata row, when the owner then holds at most `quota` (bytes and
   * files, this file included). Answers 'quota' (and drops the chunks) when it would not.
   */
  completeFile (file: FileRecord, quota: { bytes: number, files: number }): Promise<'stored' | 'quota'>
  /** Drops an upload's chunks (not a complete file's). */
  abortFileUpload (id: string): Promise<void>
  /** Drops the chunks of uploads started before `before` that are not complete; answers how many uploads. */
  dropFileUploads (before: number): Promise<number>
  getFile (id: string): Promise<FileRecord | undefined>
  /** A complete file's chunks, in order (each at most FILE_CHUNK_BYTES); empty for an unknown id. */
  readFileChunks (id: string): AsyncIterable<Uint8Array>
  listFiles (q: FileQuery): Promise<FileRecord[]>
  /** Removes a file and its chunks; false when there was none. */
  deleteFile (id: string): Promise<boolean>
  fileUsage (owner: string): Promise<FileUsage>
}

/** What a system update is about (docs/protocol.md §19). */
export type UpdateType = 'api' | 'schema' | 'emergency' | 'feature'
/** An agent's answer to a system update: `pending` until it acknowledges (no row is stored for it). */
export type UpdateAckStatus = 'pending' | 'accepted' | 'rejected' | 'completed'

/** A system update a master announced (§19). Optional fields left out stay out. */
export interface UpdateRecord {
  /** uuid v7 */
  id: string
  version: string
  updateType: UpdateType
  title: string
  description?: string
  /** the software version agents must run (semver), for a breaking change */
  requiredVersion?: string
  breakingChange: boolean
  /** Markdown */
  announcement?: string
  /** ms since the Unix epoch: from then on the update is no longer announced nor acknowledged */
  expiresAt?: number
  /** ms since the Unix epoch: from then on agents below `requiredVersion` are refused (breaking changes only) */
  enforceAt?: number
  /** who created it: an AMID or "operator" */
  createdBy: string
  createdAt: number
}

/** One agent's acknowledgement of one update; later acks replace it. */
export interface UpdateAckRecord {
  updateId: string
  amid: string
  status: Exclude<UpdateAckStatus, 'pending'>
  agentVersion?: string
  notes?: string
  updatedAt: number
}

export interface UpdateQuery {
  /** created at or after (ms) */
  since?: number
  /** only updates not expired at this time (ms) */
  activeAt?: number
  limit: number
}

/**
 * System updates and their acknowledgements (docs/protocol.md §19), and the software version each
 * agent last reported (for the adoption view and required versions).
 */
export interface UpdateStore {
  /** Inserts an update; false when its id exists (the first is kept). */
  putUpdate (u: UpdateRecord): Promise<boolean>
  getUpdate (id: string): Promise<UpdateRecord | undefined>
  /** Newest first (by createdAt, then id). */
  listUpdates (q: UpdateQuery): Promise<UpdateRecord[]>
  /**
   * Writes an agent's ack when its stored status is still `expect` ('pending': it has no row yet),
   * compare-and-set; false otherwise (nothing changed).
   */
  putUpdateAck (ack: UpdateAckRecord, expect: UpdateAckStatus): Promise<boolean>
  getUpdateAck (updateId: string, amid: string): Promise<UpdateAckRecord | undefined>
  /** Every ack of an update, by amid. */
  listUpdateAcks (updateId: string): Promise<UpdateAckRecord[]>
  /** An agent's acks of these updates (the others it has not answered). */
  agentUpdateAcks (amid: string, updateIds: readonly string[]): Promise<UpdateAckRecord[]>
  /** Records the software version an agent reported (replacing the one before). */
  setAgentVersion (amid: string, version: string, at: number): Promise<void>
  /** Every agent's last reported version, by amid. */
  listAgentVersions (): Promise<Array<{ amid: string, version: string, at: number }>>
}

/** An agent's own word on its health (docs/protocol.md §21); `offline` is derived by the relay, never stored as a heartbeat. */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy'

/** An agent's latest heartbeat (§21): what it reported and when the relay took it. */
export interface HeartbeatRecord {
  amid: string
  status: HealthStatus
  /** seconds the agent's process has run */
  uptimeSeconds?: number
  /** CPU used by the agent's process since its previous heartbeat, in % of one core (0–100 per core; the relay bounds it) */
  cpuUsage?: number
  /** the agent process's resident memory, in bytes */
  memoryUsage?: number
  /** the agent's own figures: a flat object of numbers, strings and booleans (bounded by the relay) */
  customMetrics?: Record<string, number | string | boolean>
  /** the agent's software version, when it says */
  version?: string
  /** when the relay took it (ms) */
  at: number
}

/** One change of an agent's health as the relay saw it (§21): `offline` included (a missed heartbeat, a disconnect). */
export interface HealthChange {
  at: number
  from: HealthStatus | 'offline' | 'unknown'
  to: HealthStatus | 'offline'
  /** why: 'heartbeat', 'silent' (no heartbeat within the offline time), 'disconnected' */
  reason: string
}

/**
 * Agent health (docs/protocol.md §21): each agent's latest heartbeat, replaced by the next, and a
 * bounded history of its health changes, newest kept.
 */
export interface HealthStore {
  /** Replaces the agent's latest heartbeat with `hb`. */
  putHeartbeat (hb: HeartbeatRecord): Promise<void>
  getHeartbeat (amid: string): Promise<HeartbeatRecord | undefined>
  /** Latest heartbeats by amid, after `after` (paging). */
  listHeartbeats (q: { after?: string, limit: number }): Promise<HeartbeatRecord[]>
  /** Appends a change to the agent's history and drops its oldest past `keep` entries. */
  addHealthChange (amid: string, change: HealthChange, keep: number): Promise<void>
  /** The agent's newest changes, newest first, at most `limit`. */
  healthHistory (amid: string, limit: number): Promise<HealthChange[]>
}

/**
 * Catastrophe events (docs/protocol.md §20), in the REST API's camelCase names. `affectedAgents` is
 * 'all' or a bounded list of AMIDs.
 */
export interface CatastropheRecord {
  id: string
  eventType: 'server_down' | 'db_corruption' | 'network_partition' | 'api_crash'
  severity: 'critical' | 'major' | 'minor'
  title: string
  description: string
  recoveryProtocol: string
  affectedAgents: 'all' | string[]
  status: CatastropheState
  /** an AMID, "operator" or "relay" */
  reportedBy: string
  reportedAt: number
  recoveringAt?: number
  resolvedAt?: number
  resolutionNotes?: string
}
export type CatastropheState = 'reported' | 'recovering' | 'resolved'

export interface CatastropheQuery {
  status?: CatastropheState
  severity?: CatastropheRecord['severity']
  /** an event id: those listed after it (reported before it) */
  before?: string
  limit: number
}

/** A backup the store wrote (`backup()`). */
export interface BackupResult { file: string, bytes: number, at: number, kept: number }

/**
 * Catastrophe events (§20) and what the relay needs to detect an unclean stop: a run marker set at
 * start and cleared at a clean shutdown.
 */
export interface CatastropheStore {
  /** Inserts an event; false when its id exists. */
  putCatastrophe (e: CatastropheRecord): Promise<boolean>
  getCatastrophe (id: string): Promise<CatastropheRecord | undefined>
  /** Replaces an event while its stored status is still `expect` (compare-and-set); false otherwise. */
  updateCatastrophe (e: CatastropheRecord, expect: CatastropheState): Promise<boolean>
  /** Newest first (reportedAt, then id, descending). */
  listCatastrophes (q: CatastropheQuery): Promise<CatastropheRecord[]>
  /** Events not resolved, oldest first, at most `limit`. */
  openCatastrophes (limit: number): Promise<CatastropheRecord[]>
  /**
   * Marks the relay's data as in use by a running relay since `at`, and answers the mark a previous
   * run left (it never cleared it: an unclean stop), if any.
   */
  beginRun (at: number): Promise<{ since: number } | undefined>
  /** Clears the mark (a clean shutdown). */
  endRun (): Promise<void>
  /**
   * A consistent copy of the data, taken while the store serves, into the store's backup directory;
   * keeps the newest `keep` there. Absent on a store that keeps no file (the memory store).
   */
  backup? (opts: { keep: number, at: number }): Promise<BackupResult>
  /**
   * The database's own integrity check (SQLite: `PRAGMA quick_check`, or `integrity_check` when
   * `full`): ok, or what it found (the first problems). Absent on a store with no file to check.
   */
  checkIntegrity? (full: boolean): Promise<{ ok: boolean, found: string }>
}
