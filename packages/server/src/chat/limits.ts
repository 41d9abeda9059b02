/**
 * Chat limits (room sizes, rooms per owner, topic length) and the rate-limit helpers of chat
 * traffic. The runtime settings an operator changes are in ../settings.ts.
 */
import { AgentMeshError, ErrorCode, MAX_TOPIC_LENGTH } from '@agentmesh/protocol'

export interface ChatLimits {
  /** Members one room may have. @default 10,000 */
  maxMembersPerRoom: number
  /** Rooms one agent may own. @default 100 */
  maxRoomsPerAgent: number
  /** Longest topic, in characters. @default 256 */
  maxTopicLength: number
}

export const DEFAULT_CHAT_LIMITS: ChatLimits = { maxMembersPerRoom: 10_000, maxRoomsPerAgent: 100, maxTopicLength: MAX_TOPIC_LENGTH }

export function rateLimited (retryAfterS: number, what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.RateLimited, `too many ${what}; try again in ${retryAfterS} s`, { retryAfterS })
}

/** The IP part of "ip:port" (IPv6 addresses keep their colons). */
export function ipOf (remote: string): string {
  const i = remote.lastIndexOf(':')
  return i > 0 ? remote.slice(0, i) : remote
}
