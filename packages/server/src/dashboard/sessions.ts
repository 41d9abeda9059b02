/**
 * The relay console's sessions (docs/protocol.md §22.2): a random id in an HttpOnly,
 * SameSite=Strict cookie, held in this node's memory (a restart signs everyone out), with a CSRF
 * token the page sends on every write. What the session acts with (the operator key, or a
 * short-lived bearer token for an agent) stays on the server.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { LruMap } from '@agentmesh/protocol/internal'
import type { AgentRole } from '@agentmesh/store'

/** How long a console session lasts from its sign-in (§22.2). */
export const DEFAULT_CONSOLE_SESSION_MS = 8 * 60 * 60 * 1000
/** Sessions one node keeps at most (the oldest are forgotten first). */
export const MAX_CONSOLE_SESSIONS = 1000
/** The session cookie's name. */
export const CONSOLE_COOKIE = 'am_console'

/** The person an OpenID Connect provider vouched for, when the session was opened through it (§28.3). */
export interface ConsolePerson { issuer: string, subject: string, name?: string }

export type ConsolePrincipal =
  | { kind: 'operator', role: 'master', person?: ConsolePerson }
  | { kind: 'agent', amid: string, role: AgentRole, handle?: string, person?: ConsolePerson }

export interface ConsoleSession {
  principal: ConsolePrincipal
  csrf: string
  expiresAt: number
  /** the credential the console's API calls are made with (never sent to the browser) */
  credential: { header: 'x-api-key' | 'authorization', value: string }
}

const digest = (s: string): string => createHash('sha256').update(s).digest('base64url')

export class ConsoleSessions {
  /** by the SHA-256 of the cookie's id, so a memory dump holds no usable cookie */
  private readonly sessions = new LruMap<string, ConsoleSession>(MAX_CONSOLE_SESSIONS)

  constructor (private readonly now: () => number, readonly ttlMs = DEFAULT_CONSOLE_SESSION_MS) {}

  /** A new session; answers the cookie's value and the session. */
  open (principal: ConsolePrincipal, credential: ConsoleSession['credential'], expiresAt = this.now() + this.ttlMs): { id: string, session: ConsoleSession } {
    const id = randomBytes(32).toString('base64url')
    const session: ConsoleSession = { principal, credential, csrf: randomBytes(24).toString('base64url'), expiresAt }
    this.sessions.set(digest(id), session)
    return { id, session }
  }

  /** The live session of a Cookie header, if any (an expired one is forgotten). */
  fromCookie (cookie: string | undefined): { id: string, session: ConsoleSession } | undefined {
    const id = cookieValue(cookie, CONSOLE_COOKIE)
    if (id === undefined || id.length > 128) return undefined
    const key = digest(id)
    const s = this.sessions.get(key)
    if (s === undefined) return undefined
    if (s.expiresAt <= this.now()) { this.sessions.delete(key); return undefined }
    return { id, session: s }
  }

  close (id: string): void { this.sessions.delete(digest(id)) }

  /** Whether `given` is the session's CSRF token (constant time). */
  static csrfMatches (s: ConsoleSession, given: string | undefined): boolean {
    return given !== undefined && secretEquals(given, s.csrf)
  }
}

/** Two secrets compared as SHA-256 digests: constant time whatever their lengths. */
export function secretEquals (a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(digest(a)), Buffer.from(digest(b)))
}

/** One cookie's value from a Cookie header. */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

/** The Set-Cookie value for a session (or its removal with `maxAgeS` 0); rounded, so the milliseconds between making the session and answering do not make 8 h read 7:59:59. */
export function sessionCookie (value: string, maxAgeS: number, secure: boolean): string {
  return `${CONSOLE_COOKIE}=${value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.round(maxAgeS))}${secure ? '; Secure' : ''}`
}

/**
 * Whether a request's Origin is the console's own (the host it was sent to). Browsers send Origin on
 * every cross-origin request and on same-origin writes and WebSocket upgrades.
 */
export function sameOrigin (origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || host === undefined) return false
  try {
    const u = new URL(origin)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host === host
  } catch {
    return false
  }
}
