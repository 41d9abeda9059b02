/**
 * The plugin's mapping between AgentMesh and OpenClaw, with no OpenClaw import (unit-tested on Node 20):
 * an AgentMesh delivery → the facts of an inbound turn (direct or group peer, one conversation per
 * peer / room / task), an OpenClaw target → an AgentMesh address, the channel's config → accounts.
 */
import { fenceUntrusted, RateLimiter, type Message } from '@agentmesh/client'
import { AgentMeshError, AMID_PATTERN, ErrorCode, ROOM_ID_PATTERN } from '@agentmesh/protocol'

export const CHANNEL_ID = 'agentmesh'
export const DEFAULT_ACCOUNT_ID = 'default'
/** The longest text handed to the agent (longer text is cut, and the cut said). */
export const DEFAULT_MAX_TEXT_CHARS = 16_000
/** The longest reply sent back in one message (AgentMesh's own payload limit is larger). */
export const MAX_REPLY_CHARS = 32_000
/** Turns one room may start in an hour (room messages pass no per-peer breaker: this bounds a loop of agents in a room). */
export const DEFAULT_ROOM_TURNS_PER_HOUR = 30
/** Which room messages start a turn: none, those that mention the agent (@handle or AMID), all. */
export type RoomMode = 'off' | 'mention' | 'all'
const AMID_RE = new RegExp(AMID_PATTERN)
const ROOM_RE = new RegExp(ROOM_ID_PATTERN)
const HANDLE_RE = /^@[a-z0-9][a-z0-9_.-]{0,63}$/i
const ACCOUNT_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/i

/** One account: an AgentMesh identity (its home) the gateway connects as. */
export interface AccountConfig {
  enabled?: boolean
  home?: string
  server?: string
  taskCommand?: string
  rooms?: RoomMode
  roomTurnsPerHour?: number
  maxTextChars?: number
}
export interface ChannelSection extends AccountConfig {
  accounts?: Record<string, AccountConfig>
}
export interface ResolvedAccount {
  accountId: string
  enabled: boolean
  configured: boolean
  home?: string
  server?: string
  taskCommand?: string
  rooms: RoomMode
  roomTurnsPerHour: number
  maxTextChars: number
}

export function sectionOf (cfg: unknown): ChannelSection {
  const s = (cfg as { channels?: Record<string, unknown> } | undefined)?.channels?.[CHANNEL_ID]
  return typeof s === 'object' && s !== null ? s as ChannelSection : {}
}

/** The account ids: those under `accounts`, else `default` when the section names a home. */
export function listAccountIds (cfg: unknown): string[] {
  const s = sectionOf(cfg)
  if (s.accounts !== undefined) return Object.keys(s.accounts).filter(id => ACCOUNT_RE.test(id)).sort()
  return s.home !== undefined ? [DEFAULT_ACCOUNT_ID] : []
}

/** An account's settings: its own entry over the section's (a top-level key is every account's default). */
export function resolveAccount (cfg: unknown, accountId?: string | null): ResolvedAccount {
  const s = sectionOf(cfg)
  const id = accountId ?? DEFAULT_ACCOUNT_ID
  const own = s.accounts?.[id] ?? (id === DEFAULT_ACCOUNT_ID ? {} : undefined)
  const pick = <K extends keyof AccountConfig>(k: K): AccountConfig[K] => own?.[k] ?? s[k]
  const home = own === undefined ? undefined : (own.home ?? (s.accounts === undefined ? s.home : undefined))
  const max = pick('maxTextChars')
  const server = pick('server')
  const taskCommand = pick('taskCommand')
  const rooms = pick('rooms')
  return {
    accountId: id,
    enabled: s.enabled !== false && own?.enabled !== false,
    configured: typeof home === 'string' && home !== '',
    ...(home === undefined ? {} : { home }),
    ...(server === undefined ? {} : { server }),
    ...(taskCommand === undefined ? {} : { taskCommand }),
    rooms: rooms === 'off' || rooms === 'all' ? rooms : 'mention',
    roomTurnsPerHour: boundedInt(pick('roomTurnsPerHour'), 1, 3600, DEFAULT_ROOM_TURNS_PER_HOUR),
    maxTextChars: typeof max === 'number' && Number.isSafeInteger(max) && max > 0 ? Math.min(max, 65_536) : DEFAULT_MAX_TEXT_CHARS,
  }
}

function boundedInt (v: unknown, min: number, max: number, dflt: number): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : dflt
}

/** Who the agent is, to tell a room message that mentions it. */
export interface Self { amid: string, handle?: string | undefined }

/** True when `text` names the agent: its AMID, or its @handle as a word (case-insensitive). */
export function mentions (text: string, self: Self): boolean {
  if (text.includes(self.amid)) return true
  if (self.handle === undefined || self.handle === '') return false
  const h = self.handle.replace(/^@/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`(^|[^A-Za-z0-9_.-])@${h}(?![A-Za-z0-9_-])`, 'i').test(text)
}

/** The per-room turn limit: a room's messages beyond `perHour` in any hour start no turn. */
export class RoomTurnGate {
  readonly #limiter: RateLimiter
  constructor (perHour: number) { this.#limiter = new RateLimiter({ limit: perHour, windowMs: 3_600_000, maxKeys: 1000 }) }
  admit (room: string, now: number): boolean { return this.#limiter.take(room, now).ok }
}

/** What one AgentMesh delivery asks of the OpenClaw agent: who, in which conversation, saying what. */
export interface InboundTurn {
  kind: 'direct' | 'group'
  /** the conversation: the peer's AMID for a DM, `#room` for a room, `task:<id>` for a task */
  conversationId: string
  /** a label for the conversation shown to the agent */
  label: string
  senderId: string
  senderName: string
  messageId: string
  timestamp: number
  /** where a reply goes, as an OpenClaw target (`agentmesh:<amid>` or `agentmesh:#room`) */
  target: string
  /** the peer's words as they came (cut to the account's limit) */
  rawText: string
  /** the same, fenced as untrusted with its provenance: what the agent reads */
  body: string
  /** the message was a slash command (never run as one: peers cannot issue commands) */
  slashCommand: boolean
}

function cut (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[… ${text.length - max} more characters not shown]`
}

/**
 * The turn an AgentMesh delivery asks for, or undefined when there is none to run: the agent's own
 * message (another process of it), a message without text (receipts, control types), a room message
 * when rooms are off, or one that does not mention the agent in `mention` mode (the default). A peer's words are always fenced as untrusted (its provenance in the header).
 */
export function inboundTurnOf (msg: Message, self: Self, account: Pick<ResolvedAccount, 'rooms' | 'maxTextChars'>): InboundTurn | undefined {
  if (msg.from === self.amid) return undefined
  if (typeof msg.text !== 'string' || msg.text.trim() === '') return undefined
  if (msg.type !== 'chat' && msg.type !== 'text') return undefined
  if (msg.room !== undefined && (account.rooms === 'off' || (account.rooms === 'mention' && !mentions(msg.text, self)))) return undefined
  const raw = cut(msg.text, account.maxTextChars)
  const p = msg.provenance
  const body = fenceUntrusted(raw, {
    from: msg.from,
    tier: p?.tier ?? 'anonymous',
    handle: p?.handle ?? null,
    organisation: p?.organisation ?? null,
    scopes: p?.grant?.scopes ?? [],
  })
  const senderName = typeof p?.handle === 'string' && p.handle !== '' ? `@${p.handle.replace(/^@/, '')}` : msg.from
  const base = {
    senderId: msg.from,
    senderName,
    messageId: msg.id,
    timestamp: Number.isFinite(msg.ts) ? msg.ts : Date.now(),
    rawText: raw,
    body,
    slashCommand: raw.trimStart().startsWith('/'),
  }
  if (msg.room !== undefined) {
    return { ...base, kind: 'group', conversationId: `#${msg.room}`, label: `#${msg.room}`, target: `${CHANNEL_ID}:#${msg.room}` }
  }
  return { ...base, kind: 'direct', conversationId: msg.from, label: senderName, target: `${CHANNEL_ID}:${msg.from}` }
}

/** The turn of a task the relay dispatched to this agent (`/command args`): a conversation of its own. */
export function taskTurnOf (task: { id: string, command: string, args: string, requester: string, room?: string }, account: Pick<ResolvedAccount, 'maxTextChars'>): InboundTurn {
  const raw = cut(task.args, account.maxTextChars)
  return {
    kind: 'direct',
    conversationId: `task:${task.id}`,
    label: `task ${task.id} from ${task.requester}`,
    senderId: task.requester,
    senderName: task.requester,
    messageId: `task:${task.id}`,
    timestamp: Date.now(),
    target: `${CHANNEL_ID}:${task.requester}`,
    rawText: raw,
    body: fenceUntrusted(raw, { from: task.requester, tier: 'anonymous', scopes: [`command:${task.command}`] }),
    slashCommand: false,
  }
}

/**
 * An OpenClaw target → the AgentMesh address to send to: an AMID, `@handle` or `#room`, with or
 * without the `agentmesh:` prefix. Anything else is refused with AM_ERR_INVALID_ARGUMENT.
 */
export function parseTarget (raw: string): string {
  const t = String(raw ?? '').trim().replace(/^agentmesh:/i, '')
  if (AMID_RE.test(t) || HANDLE_RE.test(t)) return t
  if (t.startsWith('#') && ROOM_RE.test(t.slice(1))) return t
  throw new AgentMeshError(ErrorCode.InvalidArgument,
    `"${t.slice(0, 80)}" is not an AgentMesh address; expected an AMID (am…), an @handle or a #room, optionally prefixed "agentmesh:"`)
}

/** True when `raw` reads as an AgentMesh address (the target resolver's looksLikeId). */
export function looksLikeTarget (raw: string): boolean {
  try { parseTarget(raw); return true } catch { return false }
}

/** The payload of a reply (a chat message); text too long is cut, and the cut said. */
export function outboundPayload (text: string): { text: string } {
  return { text: text.length <= MAX_REPLY_CHARS ? text : `${text.slice(0, MAX_REPLY_CHARS)}\n[… reply cut at ${MAX_REPLY_CHARS} characters]` }
}
