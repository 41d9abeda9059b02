/**
 * The chat layer's names (docs/protocol.md §17): reserved rooms and handles, envelope types the
 * relay posts, who calls the REST API, and a room as the chat layer holds it.
 */
import { COMMAND_PATTERN, HANDLE_PATTERN as HANDLE, MAX_TASK_ARGS } from '@agentmesh/protocol'
import type { AgentRole, MemberRecord, RoomRecord } from '@agentmesh/store'

export const GLOBAL_ROOM = 'global'
/** Handles (§17.1): the protocol's HANDLE_PATTERN, built once. */
export const HANDLE_PATTERN = new RegExp(HANDLE)
export { RESERVED_HANDLES } from '@agentmesh/protocol'
export const GROUP_TYPE = 'e2ee.group'
export const TASK_REQUEST_TYPE = 'task.request'
export const TASK_UPDATE_TYPE = 'task.update'
export const TASK_CANCEL_TYPE = 'task.cancel'
export const NOTICE_TYPE = 'notice'

export type PresenceStatus = 'online' | 'idle' | 'offline'

export interface RoomState {
  room: RoomRecord
  /** undefined for the global room: every agent */
  members: Map<string, MemberRecord> | undefined
}

/** Who is calling the REST API. */
export type Principal =
  | { kind: 'operator', role: 'master' }
  | { kind: 'agent', amid: string, role: AgentRole }

/**
 * A request's value, checked against its route's schema when called. A service calls it once the
 * caller is known to be allowed, so a forbidden request answers 403 however its fields are wrong
 * (as the relay always answered), and a malformed one from an allowed caller 400.
 */
export type Checked<T> = () => T

/** The name audit rows carry for a principal. */
export function actorOf (p: Principal): string { return p.kind === 'operator' ? 'operator' : p.amid }

/** `/command args` or `@agent /command args`: the command is the protocol's COMMAND_PATTERN. */
const SLASH_COMMAND_RE = new RegExp(`^\\s*(?:@([A-Za-z0-9][A-Za-z0-9_.-]{1,63})\\s+)?\\/(${COMMAND_PATTERN.slice(1, -1)})(?:\\s+([\\s\\S]*))?$`)

/** Parses `/command args` or `@agent /command args` (§17.7). */
export function parseSlashCommand (text: string): { target?: string, command: string, args: string } | undefined {
  const m = SLASH_COMMAND_RE.exec(text)
  if (m === null) return undefined
  return { ...(m[1] === undefined ? {} : { target: m[1] }), command: m[2]!, args: (m[3] ?? '').trim().slice(0, MAX_TASK_ARGS) }
}
