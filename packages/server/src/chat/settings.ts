/**
 * Chat limits, the settings an operator changes while the relay runs (PATCH /api/v1/settings), as
 * stored and answered (snake_case JSON), and the rate-limit helpers of chat traffic.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { RateLimit } from '@agentmesh/protocol/internal'

export interface ChatLimits {
  /** Members one room may have. @default 10,000 */
  maxMembersPerRoom: number
  /** Rooms one agent may own. @default 100 */
  maxRoomsPerAgent: number
  /** Longest topic, in characters. @default 256 */
  maxTopicLength: number
}

/** Settings an operator may change while the relay runs (PATCH /api/v1/settings). */
export interface ChatSettings {
  /** Quiet time after which an online agent shows as idle. @default 5 minutes */
  presenceIdleMs: number
  /** Deadline of a task dispatched without one. @default 300 s */
  taskDefaultDeadlineS: number
  rateLimits: {
    /** REST requests per agent (and per operator key) */
    api: RateLimit
    /** REST requests per IP */
    ip: RateLimit
    /** room messages and signals per agent over the WebSocket */
    chat: RateLimit
    /** room messages and signals per IP over the WebSocket */
    chatIp: RateLimit
  }
}

export const DEFAULT_CHAT_LIMITS: ChatLimits = { maxMembersPerRoom: 10_000, maxRoomsPerAgent: 100, maxTopicLength: 256 }

export function defaultChatSettings (): ChatSettings {
  return {
    presenceIdleMs: 5 * 60_000,
    taskDefaultDeadlineS: 300,
    rateLimits: {
      api: { perMinute: 120, burst: 60 },
      ip: { perMinute: 600, burst: 200 },
      chat: { perMinute: 600, burst: 120 },
      chatIp: { perMinute: 1200, burst: 240 },
    },
  }
}

export function rateLimited (retryAfterS: number, what: string): AgentMeshError & { retryAfterS: number } {
  const e = new AgentMeshError(ErrorCode.RateLimited, `too many ${what}; try again in ${retryAfterS} s`) as AgentMeshError & { retryAfterS: number }
  e.retryAfterS = retryAfterS
  return e
}

/** The IP part of "ip:port" (IPv6 addresses keep their colons). */
export function ipOf (remote: string): string {
  const i = remote.lastIndexOf(':')
  return i > 0 ? remote.slice(0, i) : remote
}

/** Settings as stored (snake_case JSON) over the defaults; invalid stored values keep the default. */
export function settingsFromJson (j: Record<string, unknown>, base: ChatSettings): ChatSettings {
  const s: ChatSettings = structuredClone(base)
  const int = (v: unknown, min: number, max: number): number | undefined =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined
  s.presenceIdleMs = int(j.presence_idle_ms, 1000, 7 * 86_400_000) ?? s.presenceIdleMs
  s.taskDefaultDeadlineS = int(j.task_default_deadline_s, 1, 7 * 86_400) ?? s.taskDefaultDeadlineS
  const rl = j.rate_limits
  if (typeof rl === 'object' && rl !== null) {
    const r = rl as Record<string, unknown>
    const pair = (key: 'api' | 'ip' | 'chat' | 'chatIp', per: string, burst: string): void => {
      const pm = int(r[per], 1, 1_000_000)
      const b = int(r[burst], 1, 1_000_000)
      if (pm !== undefined) s.rateLimits[key].perMinute = pm
      if (b !== undefined) s.rateLimits[key].burst = b
    }
    pair('api', 'api_per_minute', 'api_burst')
    pair('ip', 'ip_per_minute', 'ip_burst')
    pair('chat', 'chat_per_minute', 'chat_burst')
    pair('chatIp', 'chat_ip_per_minute', 'chat_ip_burst')
  }
  return s
}

/** The settings as JSON (what GET /api/v1/settings answers and the store keeps). */
export function settingsJson (s: ChatSettings): Record<string, unknown> {
  return {
    presence_idle_ms: s.presenceIdleMs,
    task_default_deadline_s: s.taskDefaultDeadlineS,
    rate_limits: {
      api_per_minute: s.rateLimits.api.perMinute,
      api_burst: s.rateLimits.api.burst,
      ip_per_minute: s.rateLimits.ip.perMinute,
      ip_burst: s.rateLimits.ip.burst,
      chat_per_minute: s.rateLimits.chat.perMinute,
      chat_burst: s.rateLimits.chat.burst,
      chat_ip_per_minute: s.rateLimits.chatIp.perMinute,
      chat_ip_burst: s.rateLimits.chatIp.burst,
    },
  }
}
