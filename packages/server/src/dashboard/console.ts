/**
 * The relay's web console (docs/protocol.md §22): the UI of @agentmesh/dashboard at `/dashboard/`,
 * its sign-in (the operator key, or a warden's or master's bearer token, in a JSON body: never a
 * URL), cookie sessions with a CSRF token, the console's API (`/dashboard/api/v1/…`: the REST API v1
 * with the session's principal, same handlers, same permissions and rate limits) and a live stream
 * of chat, presence and operations events (`/dashboard/api/events`, a WebSocket).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Context, Hono } from 'hono'
import { SignJWT, jwtVerify } from 'jose'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { RateLimiter } from '@agentmesh/protocol/internal'
import { isAmid } from '@agentmesh/crypto'
import { CSRF_HEADER, DASHBOARD_SECURITY_HEADERS, dashboardAsset } from '@agentmesh/dashboard'
import type { FeatureComponents, RelayFeature } from '../feature.ts'
import type { ChatService } from '../chat.ts'
import { remoteOf } from '../api-v1.ts'
import type { RelayStats } from '../relay.ts'
import { errorResponse } from '../http.ts'
import { ConsoleSessions, sameOrigin, secretEquals, sessionCookie, type ConsolePrincipal, type ConsoleSession } from './sessions.ts'
import { ConsoleEvents, type OutletTap } from './events.ts'
import { RelaySeries } from './series.ts'

export { DEFAULT_CONSOLE_SESSION_MS } from './sessions.ts'
export type { OutletTap } from './events.ts'

/** Sign-in attempts per IP (§22.2): a burst of 5, then 10 a minute. */
export const CONSOLE_SIGNIN_LIMIT = { perMinute: 10, burst: 5 }
/** A console API body at most (a chat message, a topic, a room). */
export const MAX_CONSOLE_BODY_BYTES = 64 * 1024
const AUDIENCE = 'agentmesh/api/v1'
/** Roles an agent signs in to the relay console with: a worker uses its own console (`agentmesh dashboard`). */
const CONSOLE_ROLES = new Set(['warden', 'master'])

export interface DashboardInit extends FeatureComponents {
  chat: ChatService
  stats: () => RelayStats
  relayId: string
  /** what the relay commits and the event frames it writes, told to the console */
  taps: Set<(t: OutletTap) => void>
  /** @default DEFAULT_CONSOLE_SESSION_MS */
  sessionMs?: number
}

export interface DashboardFeature extends RelayFeature {
  /** Takes a WebSocket upgrade on `/dashboard/api/events`; false for any other path. */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): boolean
}

const readOnly = new Set(['GET', 'HEAD'])

export function dashboardFeature (init: DashboardInit): DashboardFeature {
  const { chat, now } = init
  const log = init.logger
  const sessions = new ConsoleSessions(now, init.sessionMs)
  const signinLimiter = new RateLimiter(CONSOLE_SIGNIN_LIMIT, now)
  const series = new RelaySeries({ stats: init.stats, store: init.store, now })
  const live = new ConsoleEvents({ events: init.events, taps: init.taps, chat, sessions, log, now })
  const apiKey = init.options.apiKey

  /** the cookie is Secure when the console is reached over TLS (`serve --tls-cert`, or a proxy that says so) */
  const secure = (c: Context): boolean => c.req.header('x-forwarded-proto') === 'https' || c.req.url.startsWith('https:') ||
    (c.env as { incoming?: { socket?: { encrypted?: boolean } } } | undefined)?.incoming?.socket?.encrypted === true
  const withHeaders = (res: Response): Response => {
    const out = new Response(res.body, res)
    for (const [k, v] of Object.entries(DASHBOARD_SECURITY_HEADERS)) out.headers.set(k, v)
    out.headers.set('Cache-Control', 'no-store')
    return out
  }
  /** runs a console handler: its AgentMeshErrors answered as the REST API answers them, every answer with the console's headers */
  const handle = (fn: (c: Context) => Promise<Response> | Response) => async (c: Context): Promise<Response> => {
    try {
      return withHeaders(await fn(c))
    } catch (err) {
      if (err instanceof AgentMeshError) return withHeaders(errorResponse(c, err))
      throw err
    }
  }
  const session = (c: Context): { id: string, session: ConsoleSession } => {
    const s = sessions.fromCookie(c.req.header('cookie'))
    if (s === undefined) throw new AgentMeshError(ErrorCode.NotAuthenticated, 'not signed in to the relay console, or the session expired: sign in again')
    return s
  }
  /** a write: the session's CSRF header and the console's own Origin */
  const checkWrite = (c: Context, s: ConsoleSession): void => {
    if (!sameOrigin(c.req.header('origin'), c.req.header('host'))) {
      throw new AgentMeshError(ErrorCode.CsrfRejected, 'a console write must come from the console\'s own page (its Origin header is missing or another site\'s)')
    }
    if (!ConsoleSessions.csrfMatches(s, c.req.header(CSRF_HEADER))) {
      throw new AgentMeshError(ErrorCode.CsrfRejected, `a console write must carry the session's ${CSRF_HEADER} header: reload the console`)
    }
  }
  const sessionJson = (s: ConsoleSession): Record<string, unknown> => ({
    mode: 'relay',
    principal: s.principal,
    csrf: s.csrf,
    expiresAt: s.expiresAt,
    relay: chat.relayAmid,
  })
  const audit = async (actor: string, action: string, detail: Record<string, unknown>): Promise<void> => {
    try { await chat.audit(actor, action, undefined, detail) } catch (err) { log.warn({ err, action }, 'console sign-in not audited') }
  }

  async function signIn (c: Context): Promise<Response> {
    const ip = remoteOf(c)
    // a sign-in from another site's page (login CSRF) is refused like a write
    const origin = c.req.header('origin')
    if (origin !== undefined && !sameOrigin(origin, c.req.header('host'))) throw new AgentMeshError(ErrorCode.CsrfRejected, 'sign in from the console\'s own page')
    const r = signinLimiter.take(ip)
    if (!r.ok) {
      await audit('console', 'console.signin_refused', { ip, reason: ErrorCode.RateLimited })
      throw new AgentMeshError(ErrorCode.RateLimited, `too many sign-in attempts from this address: try again in ${r.retryAfterS} s`, { retryAfterS: r.retryAfterS })
    }
    const body = await readSmallJson(c, 8 * 1024)
    const { key, token } = (typeof body === 'object' && body !== null ? body : {}) as { key?: unknown, token?: unknown }
    const failed = async (via: string, err: AgentMeshError): Promise<never> => {
      await audit('console', 'console.signin_failed', { ip, via, reason: err.code })
      throw err
    }
    let principal: ConsolePrincipal
    let credential: ConsoleSession['credential']
    let expiresAt = now() + sessions.ttlMs
    if (typeof key === 'string' && key.length > 0) {
      if (apiKey === undefined) return await failed('key', new AgentMeshError(ErrorCode.AuthFailed, 'this relay has no operator API key (start it with --api-key, or let `agentmesh serve` make one)'))
      if (!secretEquals(key, apiKey)) return await failed('key', new AgentMeshError(ErrorCode.AuthFailed, 'that is not this relay\'s operator key (`agentmesh serve` printed it, and keeps it in its data directory as api-key)'))
      principal = { kind: 'operator', role: 'master' }
      credential = { header: 'x-api-key', value: apiKey }
    } else if (typeof token === 'string' && token.length > 0 && token.length < 4096) {
      let amid: string | undefined
      try {
        const v = await jwtVerify(token.replace(/^Bearer\s+/i, '').trim(), chat.relay.publicKeyObject, { issuer: init.relayId, audience: AUDIENCE, algorithms: ['EdDSA'], currentDate: new Date(now()) })
        amid = v.payload.sub
      } catch {
        return await failed('token', new AgentMeshError(ErrorCode.AuthFailed, 'that bearer token is not valid for this relay or has expired: print a new one with `agentmesh token`'))
      }
      if (amid === undefined || !isAmid(amid) || await init.store.getAgent(amid) === undefined) return await failed('token', new AgentMeshError(ErrorCode.AuthFailed, 'the token names no agent registered on this relay'))
      const role = await init.store.roleOf(amid)
      if (!CONSOLE_ROLES.has(role)) {
        return await failed('token', new AgentMeshError(ErrorCode.Forbidden, `the relay console is for the operator, wardens and masters (this agent is a ${role}); an agent's owner uses \`agentmesh dashboard\``))
      }
      const handle = await chat.handleOf(amid)
      principal = { kind: 'agent', amid, role, ...(handle === undefined ? {} : { handle }) }
      // the session acts with a token of its own, kept here: as long as the session at most
      const minted = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(init.relayId).setAudience(AUDIENCE).setSubject(amid)
        .setIssuedAt(Math.floor(now() / 1000)).setExpirationTime(Math.floor(expiresAt / 1000)).sign(chat.relay.privateKeyObject)
      credential = { header: 'authorization', value: `Bearer ${minted}` }
    } else {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'send {"key": "<the operator API key>"} or {"token": "<an agent\'s bearer token from `agentmesh token`>"}')
    }
    expiresAt = Math.min(expiresAt, now() + sessions.ttlMs)
    const { id, session: s } = sessions.open(principal, credential, expiresAt)
    await audit(principal.kind === 'operator' ? 'operator' : principal.amid, 'console.signin', { ip, via: principal.kind === 'operator' ? 'key' : 'token' })
    const res = c.json(sessionJson(s))
    res.headers.append('Set-Cookie', sessionCookie(id, (expiresAt - now()) / 1000, secure(c)))
    return res
  }

  /** the REST API v1 route the console asked for, called in process with the session's credential */
  async function proxy (c: Context, app: Hono): Promise<Response> {
    const { session: s } = session(c)
    const method = c.req.method
    if (!readOnly.has(method)) checkWrite(c, s)
    const url = new URL(c.req.url)
    const path = url.pathname.replace(/^\/dashboard\/api\/v1\//, '/api/v1/')
    const headers = new Headers({ [s.credential.header]: s.credential.value })
    let body: ArrayBuffer | undefined
    if (!readOnly.has(method)) {
      const raw = await c.req.arrayBuffer()
      if (raw.byteLength > MAX_CONSOLE_BODY_BYTES) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the console's API takes bodies of ${MAX_CONSOLE_BODY_BYTES} bytes at most`)
      if (raw.byteLength > 0) { body = raw; headers.set('content-type', 'application/json') }
    }
    return await app.fetch(new Request(`http://relay${path}${url.search}`, { method, headers, ...(body === undefined ? {} : { body }) }), c.env)
  }

  return {
    name: 'dashboard',
    routes (app) {
      app.get('/dashboard', (c) => withHeaders(c.redirect('/dashboard/', 301)))
      app.get('/dashboard/api/session', handle((c) => c.json(sessionJson(session(c).session))))
      app.post('/dashboard/api/signin', handle(signIn))
      app.post('/dashboard/api/signout', handle(async (c) => {
        const s = session(c)
        checkWrite(c, s.session)
        sessions.close(s.id)
        live.closeSession(s.id)
        const res = c.json({ ok: true })
        res.headers.append('Set-Cookie', sessionCookie('', 0, secure(c)))
        return res
      }))
      app.get('/dashboard/api/relay', handle(async (c) => {
        session(c)
        return c.json({ samples: series.list(), intervalMs: series.intervalMs, console: { sessions: live.count, eventsDropped: live.dropped } })
      }))
      app.on(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/dashboard/api/v1/*', handle(async (c) => await proxy(c, app)))
      // the UI's files (a path the router did not take above)
      app.get('/dashboard/', (c) => asset(c, ''))
      app.get('/dashboard/:file', (c) => asset(c, c.req.param('file')))
    },
    start () { series.start(); live.start() },
    stop () { series.stop(); live.stop() },
    upgrade (req, socket, head) {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/dashboard/api/events') return false
      live.upgrade(req, socket, head)
      return true
    },
  }

  function asset (c: Context, file: string): Response {
    const a = dashboardAsset(file)
    if (a === undefined) {
      const err = file === '' || file === 'index.html'
        ? new AgentMeshError(ErrorCode.NotFound, 'the console was not built: run `npm run build` (npm install does it)')
        : new AgentMeshError(ErrorCode.NotFound, `no console file ${file}`)
      return withHeaders(errorResponse(c, err))
    }
    return withHeaders(new Response(new Uint8Array(a.body), { headers: { 'Content-Type': a.type } }))
  }
}

async function readSmallJson (c: Context, max: number): Promise<unknown> {
  const raw = await c.req.arrayBuffer()
  if (raw.byteLength > max) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the sign-in body takes ${max} bytes at most`)
  if (raw.byteLength === 0) return undefined
  try { return JSON.parse(new TextDecoder().decode(raw)) } catch {
    throw new AgentMeshError(ErrorCode.BadJson, 'the body is not valid JSON')
  }
}
