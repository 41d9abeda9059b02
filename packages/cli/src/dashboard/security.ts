/**
 * What keeps other local origins and web pages out of the owner's console (docs/protocol.md
 * §22.6). The console listens on 127.0.0.1 only, and:
 *
 * - every request names the console in its Host header (`127.0.0.1:<port>` or
 *   `localhost:<port>`): a DNS-rebinding page reaches the port under another name and is refused;
 * - the URL the CLI prints or opens carries a one-time login token (single use, short expiry), as
 *   Jupyter does, exchanged for an HttpOnly SameSite=Strict session cookie named after the port
 *   (cookies do not tell ports apart) and a redirect to `/dashboard/`;
 * - a write (any method but GET and HEAD) needs the session's CSRF value in `x-agentmesh-csrf` and
 *   an `Origin` of the console itself; the event WebSocket's upgrade checks Origin and the cookie;
 * - sessions expire; login attempts with a wrong token are limited.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { CSRF_HEADER, DASHBOARD_SECURITY_HEADERS } from '@agentmesh/dashboard'

/** How long the printed login link works. @default 10 minutes */
export const DEFAULT_LOGIN_TOKEN_TTL_MS = 10 * 60_000
/** How long a signed-in browser session lasts. @default 12 hours */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000
/** Browser sessions kept at once (the oldest goes first). */
export const MAX_SESSIONS = 16
/** Login tokens outstanding at once. */
export const MAX_LOGIN_TOKENS = 16
/** Wrong login tokens accepted per minute before AM_ERR_RATE_LIMITED. */
export const MAX_LOGIN_FAILURES_PER_MINUTE = 10
export { CSRF_HEADER }

/** What every answer carries (the relay's console's too): nothing from elsewhere, never in a frame, no sniffing, no referrer (the sign-in URL holds a token). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = { ...DASHBOARD_SECURITY_HEADERS, 'Cross-Origin-Resource-Policy': 'same-origin' }

export interface ConsoleSession { id: string, csrf: string, expiresAt: number }

const token = (): string => randomBytes(32).toString('base64url')
const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b))

export class ConsoleSecurity {
  readonly #tokens = new Map<string, number>() // token digest (hex) → expiry
  readonly #sessions = new Map<string, ConsoleSession>() // cookie digest (hex) → session
  #failures: number[] = []
  port = 0

  constructor (private readonly opts: { now: () => number, loginTtlMs: number, sessionTtlMs: number }) {}

  /** The cookie's name: one per port, so two consoles on one machine do not sign each other out. */
  get cookieName (): string { return `agentmesh_owner_${this.port}` }

  hosts (): string[] { return [`127.0.0.1:${this.port}`, `localhost:${this.port}`] }

  /** A new one-time login token (the oldest outstanding one goes when there are too many). */
  loginToken (): string {
    const t = token()
    this.#prune()
    while (this.#tokens.size >= MAX_LOGIN_TOKENS) this.#tokens.delete(this.#tokens.keys().next().value!)
    this.#tokens.set(digest(t).toString('hex'), this.opts.now() + this.opts.loginTtlMs)
    return t
  }

  /** Spends a login token for a new session: AM_ERR_AUTH_FAILED when unknown, used or expired. */
  login (t: string | undefined): { session: ConsoleSession, cookie: string } {
    const now = this.opts.now()
    this.#failures = this.#failures.filter(at => at > now - 60_000)
    if (this.#failures.length >= MAX_LOGIN_FAILURES_PER_MINUTE) {
      throw new AgentMeshError(ErrorCode.RateLimited, 'too many wrong login links in the last minute; wait a minute and open the link `agentmesh dashboard` printed')
    }
    const key = t === undefined || t.length > 128 ? undefined : digest(t).toString('hex')
    const expiry = key === undefined ? undefined : this.#tokens.get(key)
    if (key !== undefined) this.#tokens.delete(key) // single use, whatever comes next
    if (expiry === undefined || expiry <= now) {
      this.#failures.push(now)
      throw new AgentMeshError(ErrorCode.AuthFailed, expiry === undefined
        ? 'this login link is not valid (each link works once): stop `agentmesh dashboard` with Ctrl-C and start it again for a new one'
        : 'this login link has expired: stop `agentmesh dashboard` with Ctrl-C and start it again for a new one')
    }
    this.#prune()
    while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!)
    const cookie = token()
    const session = { id: token(), csrf: token(), expiresAt: now + this.opts.sessionTtlMs }
    this.#sessions.set(digest(cookie).toString('hex'), session)
    return { session, cookie }
  }

  /** The session a Cookie header names, or undefined (none, unknown or expired). */
  session (cookieHeader: string | undefined): ConsoleSession | undefined {
    const value = cookieOf(cookieHeader, this.cookieName)
    if (value === undefined || value.length > 128) return undefined
    const key = digest(value).toString('hex')
    const s = this.#sessions.get(key)
    if (s === undefined) return undefined
    if (s.expiresAt <= this.opts.now()) { this.#sessions.delete(key); return undefined }
    return s
  }

  /** The Set-Cookie value for a new session. */
  setCookie (cookie: string): string {
    return `${this.cookieName}=${cookie}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(this.opts.sessionTtlMs / 1000)}`
  }

  /** AM_ERR_FORBIDDEN unless the Host header names this console (DNS rebinding). */
  checkHost (host: string | undefined): void {
    if (host === undefined || !this.hosts().includes(host.toLowerCase())) {
      throw new AgentMeshError(ErrorCode.Forbidden, `this console answers only to http://127.0.0.1:${this.port} and http://localhost:${this.port}`)
    }
  }

  /** AM_ERR_FORBIDDEN unless `origin` is the console itself. */
  checkOrigin (origin: string | undefined): void {
    if (origin === undefined || !this.hosts().some(h => origin.toLowerCase() === `http://${h}`)) {
      throw new AgentMeshError(ErrorCode.CsrfRejected, 'a request that changes something must come from the console\'s own page (its Origin header is missing or another site\'s)')
    }
  }

  /** AM_ERR_FORBIDDEN unless the CSRF header holds the session's value. */
  checkCsrf (s: ConsoleSession, header: string | undefined): void {
    if (header === undefined || header.length > 128 || !same(header, s.csrf)) {
      throw new AgentMeshError(ErrorCode.CsrfRejected, `a request that changes something needs the session's CSRF value in the ${CSRF_HEADER} header (GET api/session gives it)`)
    }
  }

  #prune (): void {
    const now = this.opts.now()
    for (const [k, exp] of this.#tokens) if (exp <= now) this.#tokens.delete(k)
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k)
  }
}

/** A cookie's value from a Cookie header (the first of that name). */
export function cookieOf (header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > 8192) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}
