/**
 * Chat limits (room sizes, rooms per owner, topic length) and the rate-limit helpers of chat
 * traffic. The runtime settings an operator changes are in ../settings.ts.
 */
import { isIPv4, isIPv6 } from 'node:net'
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

/**
 * The bucket a client's address is rate limited in: an IPv4 address is its own key (so is the IPv4
 * in an IPv4-mapped IPv6 address, `::ffff:a.b.c.d`); an IPv6 address is keyed by its /64 prefix,
 * since one host is usually given a whole /64 and could otherwise step around a per-address limit.
 * `address` is a bare address (no port), as `socket.remoteAddress` gives it; a zone (`%eth0`) is
 * dropped. Anything that does not parse as an address (e.g. "local") is its own key.
 */
export function ipKey (address: string): string {
  const a = address.toLowerCase().replace(/%.*$/, '')
  if (isIPv4(a)) return a
  const groups = ipv6Groups(a)
  if (groups === undefined) return address
  if (groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.')
  }
  return `${groups.slice(0, 4).map(g => g.toString(16).padStart(4, '0')).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 read), or undefined. */
function ipv6Groups (a: string): number[] | undefined {
  if (!isIPv6(a)) return undefined
  let s = a
  const v4 = s.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/)
  if (v4 !== null) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number]
    s = `${s.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`
  }
  const [head, tail] = s.split('::') as [string, string | undefined]
  const parts = (x: string): string[] => x === '' ? [] : x.split(':')
  const h = parts(head)
  const t = tail === undefined ? [] : parts(tail)
  const fill = tail === undefined ? [] : Array.from({ length: 8 - h.length - t.length }, () => '0')
  const groups = [...h, ...fill, ...t].map(g => parseInt(g, 16))
  return groups.length === 8 ? groups : undefined
}
