/**
 * `createRelay(init, components)`: one process, one port: WebSocket (/ws) and HTTP over a Store.
 * `init` is what a user configures (validated before any I/O); `components` are what the caller
 * injects (the Store, a logger, a clock): the relay opens no driver itself (the CLI's `serve`
 * picks SQLite under its data directory), so a Store or Backplane of another kind plugs in here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { getRequestListener } from '@hono/node-server'
import { AgentMeshError, ErrorCode, PROTOCOL, constants } from '@agentmesh/protocol'
import { memoryStore, type Store } from '@agentmesh/store'
import { DEFAULT_MEMORY_AUDIT_MAX_ROWS, relayOptions, type RelayInit, type RelayOptions } from './options.ts'
import { randomBytes } from 'node:crypto'
import { ClusterView } from './cluster.ts'
import { RelayCore, type CatchUpResult, type RelayOutlet, type RelayStats, type SendGate } from './relay.ts'
import { httpApp } from './http.ts'
import { defaultLogger, type Logger } from './log.ts'
import { ChatService, defaultChatSettings, DEFAULT_CHAT_LIMITS } from './chat.ts'
import { TaskService } from './tasks.ts'
import { EventBus } from './events.ts'
import { inProcessBackplane, type Backplane } from './backplane.ts'
import type { FeatureComponents, FeatureFactory, RelayFeature } from './feature.ts'
import { sessionVerifier } from './session-auth.ts'
import { registryFeature, reputationFeature } from './features/registry.ts'
import { chatFeature, tasksFeature } from './features/chat.ts'
import { opsFeatures } from './features/ops.ts'
import { a2aFeature } from './features/a2a.ts'
import { ownersFeature } from './features/owners.ts'
import { OidcClient } from './oidc.ts'
import { rateShareFeature } from './rate-share.ts'
import { wakeFeature } from './wake/webhooks.ts'
import { peerRecordsFeature } from './p2p/records.ts'
import { circuitRelayFeature } from './p2p/circuit-relay.ts'
import { relayMetrics } from './ops/metrics.ts'
import { READ_ONLY_BY_CHOICE, ReadOnlyMode, guardStore } from './ops/read-only.ts'
import { AuditHeadSigner, memoryAuditHeads, type AuditHeadLog } from './audit-heads.ts'
import { dashboardFeature, type OutletTap } from './dashboard/console.ts'

import { HSTS_HEADER, loadTls, watchTls, type TlsPair } from './tls.ts'
import { VERSION } from './version.ts'
export { VERSION }
const PRUNE_INTERVAL_MS = 60 * 60 * 1000
const AUDIT_PRUNE_INTERVAL_MS = 60 * 1000

export interface Relay {
  /** http://host:port */
  readonly url: string
  /** ws://host:port/ws */
  readonly wsUrl: string
  readonly port: number
  readonly options: Readonly<RelayOptions>
  /** Where the data lives: the store's file when it has one (SQLite), else its kind ("memory"). */
  readonly storage: string
  /** The relay's own AMID: it signs what it posts (timeline events, task requests). */
  readonly relayAmid: string
  /** Whether the operator API (X-API-Key) is on. */
  readonly operatorApi: boolean
  readonly store: Store
  stats (): RelayStats
  /**
   * Reads every connected agent's inbox and rooms read by cursor from the Store again and delivers
   * what this node was not told of (done by itself when the backplane reports a gap and every
   * backplaneCatchUpMs with a shared backplane); answers what it found. A call while one runs
   * answers that one.
   */
  catchUp (): Promise<CatchUpResult>
  /**
   * Reads the TLS certificate and key again (what SIGHUP and a change of either file do): new
   * connections get the new pair, open ones keep theirs. Throws AM_ERR_INVALID_CONFIG, keeping the
   * old pair, when the new one is not usable; AM_ERR_INVALID_ARGUMENT when the relay has no TLS.
   */
  reloadTls (): { subject: string, notAfter: Date }
  /** Graceful stop: refuse new work, commit what is pending, close sockets, close the store. */
  close (): Promise<void>
}

/**
 * What the relay is given rather than configured (libp2p's `*Components`). The relay owns what it
 * is given from the start on: `close()`, and a start that fails, close the store.
 */
export interface RelayComponents {
  /** Where messages, agents, rooms… live. @default memoryStore() with the retention and inbox options */
  store?: Store
  /** @default `init.logger`, else a pino logger at 'info' on stderr */
  logger?: Logger
  /**
   * Other relay nodes over the same Store (one shared in-process backplane, or a networked one).
   * @default inProcessBackplane(): a single node
   */
  backplane?: Backplane
  /** The clock of the features (registry, reputation, chat presence and audit times, task deadlines); the core keeps its own. @default Date.now */
  now?: () => number
  /** Features beyond the built-in ones (registry, reputation, chat, tasks), started after them. @default none */
  features?: readonly FeatureFactory[]
  /**
   * Where the signed heads of the audit chain go (docs/protocol.md §17.8); kept outside the Store
   * (`agentmesh serve`: `<data>/audit-heads.jsonl`). @default memoryAuditHeads()
   */
  auditHeads?: AuditHeadLog
}

/** User options the relay itself reads: where the data lives is the caller's choice (components.store). */
export type RelayServerInit = Omit<RelayInit, 'store' | 'dataDir' | 'memory' | 'sync'>

/** The Store options that come from relay options (a store the caller opens gets the same ones). */
export function storeInitOf (opts: RelayOptions): { retentionMs: number, maxInbox: number, historyMaxPerRoom?: number } {
  return { retentionMs: opts.retentionMs, maxInbox: opts.maxInbox, ...(opts.historyMaxPerRoom === undefined ? {} : { historyMaxPerRoom: opts.historyMaxPerRoom }) }
}

/** A store that keeps a file says where (SQLite's `path`); others are named by their kind. */
function storageName (store: Store): string {
  const path = (store as { path?: unknown }).path
  if (typeof path === 'string') return path
  // a database's address, its password already masked by the store (PostgreSQL)
  const url = (store as { url?: unknown }).url
  return typeof url === 'string' ? url : store.kind
}

function listen (server: Server | HttpsServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE') {
        reject(new AgentMeshError(ErrorCode.AddressInUse, `port ${port} on ${host} is already in use; stop the other process or pass --port`, { cause: err }))
      } else {
        reject(new AgentMeshError(ErrorCode.InvalidConfig, `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err }))
      }
    }
    const onListening = (): void => { server.off('error', onError); resolve() }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

/** Starts a relay. Options are validated before any I/O. */
export async function createRelay (init: RelayServerInit = {}, components: RelayComponents = {}): Promise<Relay> {
  const opts = relayOptions(init)
  const log: Logger = components.logger ?? init.logger ?? defaultLogger()
  // the certificate is checked before anything else happens (a bad one: one line, nothing changed)
  let tls: TlsPair | undefined
  try {
    tls = opts.tlsCert === undefined || opts.tlsKey === undefined ? undefined : loadTls(opts.tlsCert, opts.tlsKey)
  } catch (err) {
    await components.store?.close()
    throw err
  }
  // OpenID Connect (§28): the provider's discovery document is read now, before anything is opened
  // (a provider that does not answer: one line, nothing changed)
  const oidc = opts.oidcIssuer === undefined || opts.oidcClientId === undefined
    ? undefined
    : new OidcClient({ issuer: opts.oidcIssuer, clientId: opts.oidcClientId, ...(opts.oidcClientSecret === undefined ? {} : { clientSecret: opts.oidcClientSecret }), now: components.now ?? Date.now })
  try {
    await oidc?.discover()
  } catch (err) {
    await components.store?.close()
    throw err
  }
  // read-only mode (§20): by choice (entered once the relay's own start-up rows exist), or when the
  // store reports a damaged database
  const readOnly = new ReadOnlyMode(false)
  const store = guardStore(components.store ?? memoryStore(storeInitOf(opts)), readOnly, log)
  const storage = storageName(store)
  /** undefined: no count limit (a persistent relay keeps what its retention allows) */
  const auditMaxRows = opts.auditMaxRows ?? (store.kind === 'memory' ? DEFAULT_MEMORY_AUDIT_MAX_ROWS : undefined)
  const now = components.now ?? Date.now
  const relayId = await store.relayId()
  const events = new EventBus(log)
  // a single node unless a backplane shared with other nodes is given: then the core tells them too
  const shared = components.backplane
  const backplane = shared ?? inProcessBackplane({ onError: (err) => { log.error({ err }, 'backplane subscriber failed') } })
  await backplane.start()
  /** this node's name on the backplane */
  const node = randomBytes(8).toString('hex')
  // what the relay commits for rooms and the event frames it writes, told to the console (issue 16)
  const outletTaps = new Set<(t: OutletTap) => void>()
  // the core is made after the chat layer (it needs the relay's AMID): the outlet reaches it then
  const outlet: RelayOutlet = {
    post: async (item, audit, members) => {
      const r = await core.post(item, audit, members)
      if (outletTaps.size > 0 && item.room !== undefined && r.status === 'stored') for (const t of outletTaps) t({ kind: 'post', room: item.room, seq: r.seq })
      return r
    },
    event: (amids, frame) => {
      if (outletTaps.size > 0) {
        const list = [...amids]
        core.event(list, frame)
        for (const t of outletTaps) t({ kind: 'event', amids: list, frame })
        return
      }
      core.event(amids, frame)
    },
    online: () => core.online(),
    membersChanged: (room) => { core.membersChanged(room) },
    sendRefusal: (amid) => core.sendRefusal(amid),
    greet: (frames) => core.greet(frames),
  }
  const settings = defaultChatSettings()
  const chat = await ChatService.open(store, { limits: { ...DEFAULT_CHAT_LIMITS }, settings, log, outlet, events, backplane, node, now, presenceIntervalMs: opts.presenceIntervalMs, maxClockSkewMs: opts.maxClockSkewMs })
  // explicit options win over settings stored by PATCH /api/v1/settings
  if (opts.presenceIdleMs !== undefined) chat.settings.presenceIdleMs = opts.presenceIdleMs
  for (const [k, v] of Object.entries(opts.rateLimits)) Object.assign(chat.settings.rateLimits[k as keyof typeof chat.settings.rateLimits], v)
  chat.applySettings(chat.settings)
  // the global room and the relay's settings exist (a new data directory gets them): from now on no writes
  if (opts.readOnly) readOnly.enter(READ_ONLY_BY_CHOICE, false)
  const core: RelayCore = new RelayCore(
    { relayId, relayAmid: chat.relayAmid, options: opts, node },
    { store, logger: log, events, rooms: chat, sessions: sessionVerifier(store, opts.trustRoots), sendGates: () => sendGates, ...(shared === undefined ? {} : { backplane: shared }) },
  )
  const tasks = new TaskService(chat, store, log)
  // the other nodes on a shared backplane, heard by their heartbeats; a silent one's agents go offline here
  const cluster = shared === undefined
    ? undefined
    : new ClusterView({
      node,
      backplane: shared,
      now: Date.now,
      heartbeatMs: opts.clusterHeartbeatMs,
      peerTimeoutMs: opts.clusterPeerTimeoutMs,
      onPeerGone: (peer) => {
        const agents = chat.nodeGone(peer)
        log.warn({ node: peer, agents }, 'a relay node went silent (no heartbeat): its agents are offline here')
      },
      onPeerLeft: (peer) => {
        const agents = chat.nodeGone(peer)
        log.info({ node: peer, agents }, 'a relay node stopped cleanly (node:leaving): its agents are offline here')
      },
      onStalled: () => {
        log.warn({ node }, 'this relay node stood still longer than clusterPeerTimeoutMs: telling the others again who is online here')
        chat.retellPresence()
      },
      onError: (err) => { log.warn({ err }, 'cluster heartbeat not published') },
    })
  const auditHeads = components.auditHeads ?? memoryAuditHeads()
  const headSigner = new AuditHeadSigner(store, chat.relay, auditHeads, log, { everyRows: opts.auditHeadEveryRows, intervalMs: opts.auditHeadIntervalMs })
  // the operator API is on when a key is given (the CLI's `serve` keeps one in its data directory)
  const apiKey = opts.apiKey
  const started = Date.now()
  let closing = false

  const registry = registryFeature({ store, now, trustRoots: opts.trustRoots, readLimit: { perMinute: opts.registryReadsPerMinute, burst: opts.registryReadBurst } })
  const featureComponents: FeatureComponents = { store, logger: log, events, relay: outlet, backplane, options: opts, now }
  const metrics = relayMetrics({ stats: () => core.stats(), store, events })
  metrics.gauge('agentmesh_node_info', 'This relay node: its id on the backplane (random per start) in the node label; value 1', () => [{ labels: { node }, value: 1 }], ['node'])
  metrics.gauge('agentmesh_cluster_peers', 'Other relay nodes heard on the backplane within clusterPeerTimeoutMs', () => cluster?.list().length ?? 0)
  metrics.gauge('agentmesh_cluster_peer_last_seen_seconds', 'When each peer node was last heard, seconds since the epoch (this node\'s clock)', () => (cluster?.list() ?? []).map(p => ({ labels: { peer: p.id }, value: p.lastSeen / 1000 })), ['peer'])
  metrics.counter('agentmesh_cluster_peers_lost_total', 'Peer nodes dropped because their heartbeat stopped (not those that said they were leaving)', () => cluster?.peersLost ?? 0)
  metrics.counter('agentmesh_cluster_peers_left_total', 'Peer nodes that said they were leaving (a clean stop) and were dropped at once', () => cluster?.peersLeft ?? 0)
  // per-agent rate limits across the cluster: what an agent spends here is taken from the other nodes' buckets
  const rateShare = shared === undefined ? undefined : rateShareFeature({ backplane: shared, node, intervalMs: opts.clusterRateShareMs, log, limiters: () => ({ api: chatApi.gate().limiters.api, chat: chat.chatLimiter }) })
  metrics.counter('agentmesh_cluster_rate_shares_total', 'rate:spent messages this node told the others (told) and heard from them (heard): per-agent rate limits held across the cluster', () => [{ labels: { direction: 'told' }, value: rateShare?.told ?? 0 }, { labels: { direction: 'heard' }, value: rateShare?.heard ?? 0 }], ['direction'])
  /** the relay's public URL: publicUrl, else the listening URL once it listens */
  let listeningUrl = ''
  const baseUrl = (): string => (opts.publicUrl ?? listeningUrl).replace(/\/+$/, '')
  const chatApi = chatFeature({ chat, tasks, store, relayId, apiKey, registry: () => registry.helpers(), auditHeads })
  // ---- direct links: signed peer records, the relay as circuit relay and DHT bootstrap (issue 19, §30)
  const circuitRelay = circuitRelayFeature(featureComponents)
  const features: RelayFeature[] = [
    registry,
    reputationFeature({ store, now, options: opts.reputation, registry }),
    chatApi,
    tasksFeature(tasks),
    ...(rateShare === undefined ? [] : [rateShare]),
    ...opsFeatures({ ...featureComponents, chat, gate: () => chatApi.gate(), metrics, stats: () => core.stats(), readOnly, soleNode: shared === undefined }),
    // ---- verified owners: OpenID Connect owner links (issue 21, §28)
    ownersFeature({ store, oidc, registry: () => registry.helpers(), relayAmid: () => chat.relayAmid, audit: async (a, action, target, detail) => { await chat.audit(a, action, target, detail) }, apiKey, baseUrl, now, log }),
    // ---- dashboard: the relay's console (issue 16)
    dashboardFeature({ ...featureComponents, chat, stats: () => core.stats(), relayId, taps: outletTaps, ...(oidc === undefined ? {} : { oidc, baseUrl }) }),
    // ---- bridges: A2A (issue 18)
    a2aFeature({ ...featureComponents, chat, tasks, gate: () => chatApi.gate() }),
    // ---- wake-ups: wake webhooks, delivery receipts (issue 18)
    wakeFeature({ ...featureComponents, chat, gate: () => chatApi.gate(), metrics, stats: () => core.stats(), readOnly }),
    peerRecordsFeature({ store, now, registry: () => registry.helpers() }),
    circuitRelay,
    ...(components.features ?? []).map(f => f(featureComponents)),
  ]
  // what features say over agents' sends (§19 required versions), asked by the core per connection
  const sendGates: SendGate[] = features.flatMap(f => f.sendGate === undefined ? [] : [f.sendGate])
  const stopFeatures = async (): Promise<void> => {
    for (const f of [...features].reverse()) {
      try { await f.stop?.() } catch (err) { log.error({ err, feature: f.name }, 'feature stop failed') }
    }
  }

  const app = httpApp({
    log,
    store,
    events,
    features,
    healthy: () => !closing,
    info: async () => {
      const s = await store.stats()
      const p2pInfo = circuitRelay.info()
      return {
        name: 'agentmesh',
        protocol: PROTOCOL,
        version: VERSION,
        relay_id: relayId,
        store: store.kind,
        uptime_s: Math.round((Date.now() - started) / 1000),
        agents: s.agents,
        pending: s.pending,
        connections: core.connectionCount,
        verify_signatures: opts.verifySignatures,
        relay_amid: chat.relayAmid,
        operator_api: apiKey !== undefined,
        read_only: readOnly.active,
        read_only_reason: readOnly.reason ?? null,
        node: {
          id: node,
          peers: (cluster?.list() ?? []).map(p => ({ id: p.id, last_seen: new Date(p.lastSeen).toISOString() })),
          ...(cluster === undefined ? {} : { heartbeat_ms: opts.clusterHeartbeatMs, peer_timeout_ms: opts.clusterPeerTimeoutMs }),
        },
        limits: {
          ...core.limits,
          max_connections_per_agent: opts.maxConnectionsPerAgent,
          retention_ms: opts.retentionMs,
          max_inbox: opts.maxInbox,
          history_retention_ms: opts.historyRetentionMs,
          audit_retention_ms: opts.auditRetentionMs,
          audit_max_rows: auditMaxRows ?? null,
          presence_idle_ms: chat.settings.presenceIdleMs,
        },
        p2p: p2pInfo ?? null,
      }
    },
  })
  const listener = getRequestListener(app.fetch)
  const server: Server | HttpsServer = tls === undefined
    ? createServer(listener)
    : createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => { res.setHeader('Strict-Transport-Security', HSTS_HEADER); void listener(req, res) })
  const reloadTls = (): { subject: string, notAfter: Date } => {
    if (tls === undefined || opts.tlsCert === undefined || opts.tlsKey === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this relay serves plain ws://: there is no TLS certificate to reload (start it with --tls-cert and --tls-key)')
    const next = loadTls(opts.tlsCert, opts.tlsKey)
    ;(server as HttpsServer).setSecureContext({ cert: next.cert, key: next.key })
    tls = next
    log.info({ subject: next.subject, notAfter: next.notAfter.toISOString() }, 'TLS certificate reloaded')
    return { subject: next.subject, notAfter: next.notAfter }
  }
  const unwatchTls = tls === undefined || opts.tlsCert === undefined || opts.tlsKey === undefined
    ? undefined
    : watchTls([opts.tlsCert, opts.tlsKey], () => {
      try { reloadTls() } catch (err) { log.error({ err }, 'TLS certificate not reloaded: the previous one stays in use') }
    })
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 2 * opts.maxEnvelopeBytes + constants.FRAME_OVERHEAD_BYTES,
    perMessageDeflate: false,
  })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // a feature's own WebSocket path (the console's events)
    for (const f of features) if (f.upgrade?.(req, socket, head) === true) return
    const path = (req.url ?? '/').split('?')[0]
    const refuse = (status: number, code: string, message: string): void => {
      const body = JSON.stringify({ error: { code, message } })
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
    if (path !== '/ws' && path !== '/') { refuse(404, ErrorCode.NotFound, 'the WebSocket endpoint is /ws'); return }
    if (closing) { refuse(503, ErrorCode.ShuttingDown, 'the relay is shutting down'); return }
    if (core.connectionCount >= opts.maxConnections) { refuse(503, ErrorCode.TooManyConnections, `the relay has reached its limit of ${opts.maxConnections} connections`); return }
    wss.handleUpgrade(req, socket, head, (ws) => { attach(ws, req) })
  })

  function attach (ws: WebSocket, req: IncomingMessage): void {
    const sock = (ws as unknown as { _socket: Socket })._socket
    const handlers = core.open({
      send: (text) => { ws.send(text) },
      // a text frame from bytes shared by several sockets: ws frames it without copying or re-encoding
      sendShared: (utf8) => { ws.send(utf8, { binary: false }) },
      close: (code, reason) => {
        ws.close(code, reason)
        // a peer that does not answer the close handshake is cut after a second
        setTimeout(() => { ws.terminate() }, 1000).unref()
      },
      cork: () => { sock.cork() },
      uncork: () => { sock.uncork() },
      ping: () => { ws.ping() },
      buffered: () => ws.bufferedAmount,
    }, { address: req.socket.remoteAddress ?? '?', ...(req.socket.remotePort === undefined ? {} : { port: req.socket.remotePort }) })
    ws.on('message', (data, isBinary) => {
      if (isBinary) { handlers.binary(); return }
      handlers.message(data.toString())
    })
    ws.on('pong', handlers.pong)
    // the socket took everything queued (it had more than its high-water mark): paused deliveries go on
    sock.on('drain', handlers.drain)
    ws.on('close', handlers.close)
    ws.on('error', (err) => {
      // protocol violations such as an oversize frame: ws closes with 1009/1002 itself
      log.info({ code: (err as { code?: string }).code }, 'websocket error')
    })
  }

  const pruneNow = async (): Promise<void> => {
    try {
      const r = await store.prune(Date.now())
      if (r.messages > 0 || r.dedupe > 0) log.info(r, 'pruned expired messages')
      // what a member reading the room by cursor has not acknowledged stays as long as an inbox keeps it (§6.1)
      const h = await store.pruneHistory(Date.now() - opts.historyRetentionMs, Number.MAX_SAFE_INTEGER, Date.now() - opts.retentionMs)
      if (h > 0) log.info({ history: h }, 'pruned room history past its retention')
    } catch (err) {
      log.error({ err }, 'prune failed')
    }
  }
  const pruneAudit = async (): Promise<void> => {
    try {
      const now = Date.now()
      const n = await store.pruneAudit(now - opts.auditRetentionMs, auditMaxRows ?? Number.MAX_SAFE_INTEGER, { at: now, actor: chat.relayAmid })
      if (n > 0) log.info({ audit: n }, 'pruned audit rows past their retention')
    } catch (err) {
      log.error({ err }, 'audit prune failed')
    }
  }
  await pruneNow()
  await pruneAudit()
  await headSigner.start()
  for (const f of features) await f.start?.()
  cluster?.start()
  const pruneTimer = setInterval(() => { void pruneNow() }, PRUNE_INTERVAL_MS).unref()
  const auditPruneTimer = setInterval(() => { void pruneAudit() }, AUDIT_PRUNE_INTERVAL_MS).unref()

  try {
    await listen(server, opts.port, opts.host)
  } catch (err) {
    unwatchTls?.()
    clearInterval(pruneTimer)
    clearInterval(auditPruneTimer)
    cluster?.stop()
    await stopFeatures()
    await core.shutdown()
    chat.close()
    await cluster?.leave()
    await headSigner.stop()
    if (shared === undefined) await backplane.stop()
    await store.close()
    throw err
  }
  const port = (server.address() as AddressInfo).port
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  listeningUrl = `${tls === undefined ? 'http' : 'https'}://${hostForUrl}:${port}`

  return {
    url: `${tls === undefined ? 'http' : 'https'}://${hostForUrl}:${port}`,
    wsUrl: `${tls === undefined ? 'ws' : 'wss'}://${hostForUrl}:${port}/ws`,
    port,
    options: opts,
    storage,
    store,
    relayAmid: chat.relayAmid,
    operatorApi: apiKey !== undefined,
    stats: () => core.stats(),
    catchUp: async () => await core.catchUp(),
    reloadTls,
    async close () {
      if (closing) return
      closing = true
      unwatchTls?.()
      clearInterval(pruneTimer)
      clearInterval(auditPruneTimer)
      cluster?.stop()
      await stopFeatures()
      await core.shutdown()
      chat.close()
      // the last thing this node says on the backplane, after its agents' offline presence (sent
      // as their connections closed) and before whoever owns the backplane stops it
      await cluster?.leave()
      await new Promise<void>((resolve) => {
        wss.close()
        server.close(() => { resolve() })
        server.closeAllConnections()
        // no terminate() here: each WebSocket got its close frame from core.shutdown() and ends with
        // the close handshake (or is cut a second later); destroying it now would drop the acks and
        // the close frame still queued on a busy socket, and the peer would see 1006
      })
      // the final head, once the last commit is in
      await headSigner.stop()
      // a backplane given is shared with other nodes: theirs to stop
      if (shared === undefined) await backplane.stop()
      await store.close()
    },
  }
}

