/**
 * The owner's console server (`agentmesh dashboard`, docs/protocol.md §22.6): HTTP and a WebSocket
 * on 127.0.0.1, serving the dashboard's web UI and the owner API for one agent's connection.
 * hono (routing) over Node's http server (@hono/node-server), ws for the event socket, as the relay.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { Hono } from 'hono'
import { getRequestListener } from '@hono/node-server'
import { WebSocketServer } from 'ws'
import { chat, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, httpStatusOf } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { ConsoleSecurity, DEFAULT_LOGIN_TOKEN_TTL_MS, DEFAULT_SESSION_TTL_MS, SECURITY_HEADERS, type ConsoleSession } from './security.ts'
import { DmHistory } from './history.ts'
import { EventHub, MAX_EVENT_SOCKETS, pumpMessages, pumpRelayEvents, watchSafetyLog } from './events.ts'
import { ownerRoutes } from './routes.ts'
import { loadDashboardAssets, type DashboardAsset } from './assets.ts'

export interface OwnerConsoleInit {
  /** the agent's connection, opened with deliveries on: the console reads its messages */
  conn: Connection
  /** 127.0.0.1 or localhost; anything else is refused. @default 127.0.0.1 */
  host?: string
  /** @default 0: any free port */
  port?: number
  /** what the browser is told about the relay. @default conn.url */
  relay?: string
  /** @default Date.now */
  now?: () => number
  /** @default DEFAULT_LOGIN_TOKEN_TTL_MS (10 minutes) */
  loginTtlMs?: number
  /** @default DEFAULT_SESSION_TTL_MS (12 hours) */
  sessionTtlMs?: number
  /** the web UI's files; @default `dashboardAsset` of @agentmesh/dashboard when installed */
  asset?: DashboardAsset
}

export interface OwnerConsole {
  /** http://127.0.0.1:<port>/dashboard/ */
  readonly url: string
  readonly port: number
  /** A new one-time sign-in link: `…/dashboard/login?token=…`. */
  loginUrl (): string
  /** Stops serving and reading messages (the connection stays the caller's to close). */
  close (): Promise<void>
}

/** Tells the page (on every answer, errors too) that this is an owner's console: a 401 then points to `agentmesh dashboard`. */
const MODE_HEADER = 'x-agentmesh-console-mode'
/** Handles asked of the relay per AMID, kept this long. */
const HANDLE_CACHE_MS = 60_000

/** Accepts 127.0.0.1 or localhost (the console never listens beyond this machine). */
export function consoleHost (host: string | undefined): string {
  if (host === undefined || host === '127.0.0.1' || host === 'localhost') return '127.0.0.1'
  throw new AgentMeshError(ErrorCode.InvalidArgument, `--host must be 127.0.0.1 or localhost, got "${host.slice(0, 80)}": the owner's console shows decrypted messages and listens on this machine only`)
}

export async function startOwnerConsole (init: OwnerConsoleInit): Promise<OwnerConsole> {
  const { conn } = init
  const host = consoleHost(init.host)
  const now = init.now ?? Date.now
  const security = new ConsoleSecurity({ now, loginTtlMs: init.loginTtlMs ?? DEFAULT_LOGIN_TOKEN_TTL_MS, sessionTtlMs: init.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS })
  const history = new DmHistory(conn)
  const hub = new EventHub()
  const asset = init.asset ?? await loadDashboardAssets()
  const handles = new LruMap<string, { handle: string | undefined, at: number }>(10_000)
  const c = chat(conn)
  const handleOf = async (amid: string): Promise<string | undefined> => {
    const hit = handles.get(amid)
    if (hit !== undefined && Date.now() - hit.at < HANDLE_CACHE_MS) return hit.handle
    const handle = await c.handleOf(amid).catch(() => undefined)
    handles.set(amid, { handle, at: Date.now() })
    return handle
  }

  const app = new Hono<{ Variables: { session: ConsoleSession } }>()
  app.use('*', async (ctx, next) => {
    security.checkHost(ctx.req.header('host'))
    await next()
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) ctx.header(k, v)
    ctx.header(MODE_HEADER, 'owner')
  })
  app.get('/', (ctx) => ctx.redirect('/dashboard/', 302))
  app.get('/dashboard/login', (ctx) => {
    const { cookie } = security.login(ctx.req.query('token'))
    ctx.header('set-cookie', security.setCookie(cookie))
    ctx.header('cache-control', 'no-store')
    return ctx.redirect('/dashboard/', 303)
  })
  app.use('/dashboard/api/*', async (ctx, next) => {
    ctx.header('cache-control', 'no-store')
    const s = security.session(ctx.req.header('cookie'))
    if (s === undefined) throw new AgentMeshError(ErrorCode.NotAuthenticated, 'not signed in, or the session expired: open the sign-in link `agentmesh dashboard` printed (restart it for a new one)')
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      security.checkOrigin(ctx.req.header('origin'))
      security.checkCsrf(s, ctx.req.header('x-agentmesh-csrf'))
    }
    ctx.set('session', s)
    await next()
  })
  const readAt = new Map<string, number>()
  ownerRoutes(app, { conn, history, handleOf, relay: init.relay ?? conn.url, publish: (t, d) => { hub.publish(t, d) }, readAt })
  app.all('/dashboard/api/*', () => { throw new AgentMeshError(ErrorCode.NotFound, 'no such console API route (docs/protocol.md §22.6 lists them)') })
  app.get('/dashboard', (ctx) => ctx.redirect('/dashboard/', 302))
  app.get('/dashboard/*', async (ctx) => {
    const path = ctx.req.path.slice('/dashboard/'.length)
    const file = asset === undefined ? undefined : (await asset(path === '' ? 'index.html' : path)) ?? (path.includes('.') ? undefined : await asset('index.html'))
    if (file === undefined) {
      if (path === '' || path === 'index.html') {
        return ctx.text('The dashboard web UI is not built here (package @agentmesh/dashboard: run `npm run build`); the console API answers under /dashboard/api/.', 200)
      }
      throw new AgentMeshError(ErrorCode.NotFound, `no file ${path.slice(0, 80)} in the dashboard`)
    }
    ctx.header('content-type', file.type)
    return ctx.body(typeof file.body === 'string' ? file.body : new Uint8Array(file.body))
  })
  app.notFound(() => { throw new AgentMeshError(ErrorCode.NotFound, 'not found: the console is at /dashboard/') })
  app.onError((err, ctx) => {
    const e = AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, 'the console could not answer this request')
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) ctx.header(k, v)
    ctx.header(MODE_HEADER, 'owner')
    return ctx.json({ error: { code: e.code, message: e.message } }, httpStatusOf(e.code) as 400)
  })

  const server: Server = createServer(getRequestListener(app.fetch))
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (code: ErrorCode, message: string): void => {
      const status = httpStatusOf(code)
      const body = JSON.stringify({ error: { code, message } })
      socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
    try {
      if ((req.url ?? '').split('?')[0] !== '/dashboard/api/events') throw new AgentMeshError(ErrorCode.NotFound, 'the event socket is /dashboard/api/events')
      security.checkHost(req.headers.host)
      security.checkOrigin(req.headers.origin)
      if (security.session(req.headers.cookie) === undefined) throw new AgentMeshError(ErrorCode.NotAuthenticated, 'not signed in, or the session expired')
      if (hub.size >= MAX_EVENT_SOCKETS) throw new AgentMeshError(ErrorCode.TooManyConnections, 'too many console tabs are open')
    } catch (err) {
      const e = err as AgentMeshError
      refuse(e.code, e.message)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', () => {}) // the browser has nothing to say on this socket
      if (!hub.add(ws)) ws.close(1013, 'too many console tabs are open')
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new AgentMeshError(ErrorCode.AddressInUse, `port ${init.port ?? 0} on ${host} is in use: pick another with --port, or 0 for any free one`) : err)
    })
    server.listen(init.port ?? 0, host, () => { resolve() })
  })
  const port = (server.address() as AddressInfo).port
  security.port = port

  const stop = new AbortController()
  const pumps = [
    pumpMessages(conn, history, hub, handleOf, stop.signal).catch(() => {}),
    pumpRelayEvents(conn, hub).catch(() => {}),
  ]
  const unwatch = watchSafetyLog(conn, hub)
  const base = `http://127.0.0.1:${port}/dashboard/`
  return {
    url: base,
    port,
    loginUrl: () => `${base}login?token=${security.loginToken()}`,
    async close () {
      unwatch()
      stop.abort()
      hub.close()
      wss.close()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() })
      await pumps[0] // the messages loop ends with the signal; the events loop ends with the connection
    },
  }
}
