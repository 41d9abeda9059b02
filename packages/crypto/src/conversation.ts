/** The stable id of the DM conversation of a pair of agents (docs/protocol.md §17.3). */
import { createHash } from 'node:crypto'

/** DM conversation ids start with this; no other room may. */
export const DM_ROOM_PREFIX = 'dm-'

/** The same id whichever side asks: `dm-` + the first 32 hex digits of SHA-256(lower AMID \n higher AMID). */
export function dmRoomId (a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a]
  return DM_ROOM_PREFIX + createHash('sha256').update(x + '\n' + y).digest('hex').slice(0, 32)
}
