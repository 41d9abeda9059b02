/**
 * Handles pinned to AMIDs (docs/protocol.md §17.1): the relay answers which agent holds an
 * @handle, and a relay that lies could point `@bob` at another agent to read what is sent to him.
 * So the first AMID an @handle resolves to is pinned in the agent's sealed state (with its
 * e2ee records, like a peer's keys); a later answer naming another AMID refuses the send with
 * AM_ERR_HANDLE_CHANGED, naming both, until the owner accepts the new one (`acceptHandle`,
 * `agentmesh handle accept @bob`).
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { E2ee } from './e2ee.ts'

const KIND = 'hpin'

/** A handle as pinned: the AMID it resolved to first (or was accepted for), since when. */
export interface HandlePin {
  /** without the @, lower case (handles are case-insensitive) */
  handle: string
  amid: string
  /** ms since the epoch: when it was pinned or accepted */
  at: number
  /** AMIDs it pointed to before, when the owner accepted a change */
  previous?: string[]
}

const keyOf = (handle: string): string => handle.replace(/^@/, '').toLowerCase()

export function handlePin (e2ee: E2ee, handle: string): HandlePin | undefined {
  return e2ee.record<HandlePin>(KIND, keyOf(handle))
}

export function handlePins (e2ee: E2ee): HandlePin[] {
  return e2ee.records<HandlePin>(KIND).map(r => r.value).sort((a, b) => a.handle < b.handle ? -1 : a.handle > b.handle ? 1 : 0)
}

/**
 * Checks the relay's answer for `handle` against the pin: pins it on first contact (answers
 * true), passes when it is the pinned AMID, throws AM_ERR_HANDLE_CHANGED when it is another.
 */
export function checkHandlePin (e2ee: E2ee, handle: string, amid: string): boolean {
  const key = keyOf(handle)
  const pin = e2ee.record<HandlePin>(KIND, key)
  if (pin === undefined) {
    e2ee.saveRecord(KIND, key, { handle: key, amid, at: Date.now() } satisfies HandlePin)
    return true
  }
  if (pin.amid === amid) return false
  throw new AgentMeshError(ErrorCode.HandleChanged,
    `@${key} now resolves to ${amid}, but this agent pinned it to ${pin.amid}: nothing was sent. The handle changed hands, or the relay points it at another agent. Check with its holder; to accept the new agent: \`agentmesh handle accept @${key}\``)
}

/** Accepts the AMID the relay now gives for `handle` (after checking it out of band). */
export function acceptHandle (e2ee: E2ee, handle: string, amid: string): HandlePin {
  const key = keyOf(handle)
  const pin = e2ee.record<HandlePin>(KIND, key)
  const previous = pin === undefined || pin.amid === amid ? pin?.previous : [...(pin.previous ?? []), pin.amid].slice(-10)
  const next: HandlePin = { handle: key, amid, at: Date.now(), ...(previous === undefined ? {} : { previous }) }
  e2ee.saveRecord(KIND, key, next)
  return next
}
