/**
 * Rollback detection for the SQLite state (docs/security.md "A copied or restored home"): the
 * state counts its generations (`generation` in its meta table) and the last one it made durable is
 * written to a small file next to it, `state.db.generation` (0600). A `state.db` whose generation
 * is below that file's is an older copy put in place of the live one (a restored backup, a file
 * copied back): it would send under message keys already used and take messages already handled
 * again, so it is refused at open with AM_ERR_STATE_ROLLBACK.
 *
 * Bumped at open, at close and every GENERATION_EVERY atomic steps, not on every message: the
 * state's new generation is committed with a synced write first (one fsync of the WAL), then the
 * file is replaced (temporary file, rename), so after a crash or a power loss the file is never
 * ahead of the state. What it cannot see: a copy taken within the current generation (fewer than
 * GENERATION_EVERY steps old, in the same run), and a copy put back together with this file, or
 * with it deleted — it guards against an older `state.db` alone, not against someone who rewrites
 * the whole home (that needs an anchor outside it; docs/security.md "Not yet").
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'

/** Atomic steps of the state between two generations (besides open and close). */
export const GENERATION_EVERY = 100
/** The file next to `state.db` that holds its last durable generation. */
export const GENERATION_SUFFIX = '.generation'

/** The generation the file records, or undefined when it is missing or unreadable (the check is then skipped once). */
export function readGeneration (file: string): number | undefined {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch { return undefined }
  const n = Number(text.trim())
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * Records `n` (temporary 0600 file, then rename; best effort). Not synced: the state's generation
 * is durable before this is written, so a file lost or torn by a crash is only behind the state, or
 * unreadable (the check then skipped once), never ahead of it.
 */
export function writeGeneration (file: string, n: number): void {
  const tmp = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, `${n}\n`, { mode: 0o600 })
    renameSync(tmp, file)
  } catch {
    try { unlinkSync(tmp) } catch {}
    // read-only home, full disk: the state still works, the check sees less
  }
}

/** AM_ERR_STATE_ROLLBACK for a state at `have` when `file` records `recorded`. */
export function rollbackError (path: string, file: string, have: number, recorded: number): AgentMeshError {
  return new AgentMeshError(ErrorCode.StateRollback,
    `${path} is an older copy of this agent's state (generation ${have}; ${file} records ${recorded}): it would reuse message keys already used and take messages already handled again. ` +
    'Put the current state.db back; or, if you restored this copy on purpose, delete that file to accept it and reset its sessions (`agentmesh sessions --reset <peer>`)')
}
