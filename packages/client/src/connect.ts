import { join } from 'node:path'
import WebSocket from 'ws'
import { AGENT_VERSION_PATTERN, AgentMeshError, ErrorCode, MAX_AGENT_VERSION_LENGTH, MAX_PQ_PREKEYS_PER_AGENT, MAX_PREKEYS_PER_AGENT, constants } from '@agentmesh/protocol'
import { SDK_VERSION } from './version.ts'
import { defaultHome, loadIdentity } from '@agentmesh/crypto'
import { ConnectionImpl } from './connection.ts'
import { memoryState } from './state.ts'
import { sqliteState } from './state-sqlite.ts'
import { attachReceipts } from './receipts.ts'
import { DELIVERY_NOTICE_TYPE, Gate, type DeliveryNotice } from './knock.ts'
import { SentLog } from './sent.ts'
import { parsePolicy } from './policy.ts'
import { DEFAULT_PQ_PREKEY_LOW_WATER, DEFAULT_PQ_PREKEY_TARGET, DEFAULT_PREKEY_CHECK_MS, DEFAULT_PREKEY_LOW_WATER, DEFAULT_PREKEY_TARGET, DEFAULT_SESSION_IDLE_MS, E2ee } from './e2ee.ts'
import type { ConnectOptions, Connection } from './types.ts'
import { resolveSession } from './session.ts'
import { relayCa, trustRelayCa, trustRelayCaFromEnv } from './relay-tls.ts'
import { attachSchemas, checkOutgoing, schemaModeOf, schemas } from './schemas.ts'
import { inbound } from './inbound.ts'
import { attachMailboxState } from './mailbox.ts'

export const STATE_FILE = 'state.db'
/** The agent's first-contact policy in its home (docs/policy.md). */
export const POLICY_FILE = 'policy.json'
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** The WebSocket opening handshake gives up after this long (each attempt; the connection retries). */
export const HANDSHAKE_TIMEOUT_MS = 10_000

/** The default transport in Node: `ws`, without compression, with a bounded opening handshake, trusting a private CA when one is set (relay-tls.ts). */
class NodeWebSocket extends WebSocket {
  constructor (url: string) {
    const ca = relayCa()
    super(url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...(ca === undefined ? {} : { ca }) })
  }
}

/** Normalises a relay address to its WebSocket endpoint: ws://host:port/ws. */
export function relayUrl (server: string): string {
  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `ws://${server}`)
  } catch {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `"${server}" is not a relay address; use ws://host:port or http://host:port`)
  }
  if (url.protocol === 'http:') url.protocol = 'ws:'
  else if (url.protocol === 'https:') url.protocol = 'wss:'
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `"${server}" has scheme ${url.protocol}; use ws://, wss://, http:// or https://`)
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws'
  return url.toString()
}

/** Relay addresses one connection takes at most (the nodes of one cluster). @default 16 */
export const MAX_RELAY_ADDRESSES = 16

/**
 * Normalises one relay address or several (an array, or one string with commas:
 * `AGENTMESH_SERVER=ws://a:7777,ws://b:7777`) to their WebSocket endpoints, in order, each once.
 */
export function relayUrls (server: string | readonly string[]): string[] {
  const list = (typeof server === 'string' ? server.split(',') : [...server]).map(s => s.trim()).filter(s => s !== '')
  if (list.length === 0) throw new AgentMeshError(ErrorCode.InvalidArgument, 'no relay address given; use ws://host:port (several separated by commas)')
  if (list.length > MAX_RELAY_ADDRESSES) throw new AgentMeshError(ErrorCode.InvalidArgument, `${list.length} relay addresses given; at most ${MAX_RELAY_ADDRESSES}`)
  return [...new Set(list.map(relayUrl))]
}

/** Most one-time prekeys the registry holds per agent. */
export const MAX_PREKEY_TARGET = MAX_PREKEYS_PER_AGENT
/** Most one-time ML-KEM-768 prekeys the registry holds per agent. */
export const MAX_PQ_PREKEY_TARGET = MAX_PQ_PREKEYS_PER_AGENT

/** The relay's HTTP origin for its WebSocket address. */
export function httpOrigin (wsUrl: string): string {
  const u = new URL(wsUrl)
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`
}

export function defaultServer (env: NodeJS.ProcessEnv = process.env): string {
  const s = env.AGENTMESH_SERVER
  return s !== undefined && s !== '' ? s : `ws://${constants.DEFAULT_HOST}:${constants.DEFAULT_PORT}`
}

function positive (name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || v <= 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option ${name} must be a positive number, got ${String(v)}`)
  return v
}

const AGENT_VERSION_RE = new RegExp(AGENT_VERSION_PATTERN)

/** The version a connection reports (§19): the one given, checked, else the SDK's. */
function agentVersionOf (v: string | undefined): string {
  if (v === undefined) return SDK_VERSION
  if (typeof v !== 'string' || v.length > MAX_AGENT_VERSION_LENGTH || !AGENT_VERSION_RE.test(v)) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option agentVersion must be a version such as "1.4.0" (letters, digits, ".", "+", "-", at most ${MAX_AGENT_VERSION_LENGTH} characters), got ${JSON.stringify(v)}`)
  }
  return v
}

/**
 * Connects an agent to a relay and resolves once it is authenticated. Afterwards the
 * connection reconnects by itself until `close()`.
 */
export async function connect (opts: ConnectOptions = {}): Promise<Connection> {
  if (opts.caFile !== undefined) trustRelayCa(opts.caFile)
  else trustRelayCaFromEnv()
  const urls = relayUrls(opts.server ?? defaultServer())
  const relays = urls.map(url => ({ url, httpBase: httpOrigin(url) }))
  const timeout = positive('connectTimeoutMs', opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
  const minBackoffMs = positive('minBackoffMs', opts.minBackoffMs, 250)
  const maxBackoffMs = positive('maxBackoffMs', opts.maxBackoffMs, 5000)
  const agentVersion = agentVersionOf(opts.agentVersion)
  const home = opts.home ?? (opts.identity === undefined ? defaultHome() : undefined)
  const identity = opts.identity ?? loadIdentity(home!, { passphrase: opts.passphrase ?? process.env.AGENTMESH_PASSPHRASE })
  const session = resolveSession(identity, opts.session)
  let state = opts.state
  let ownsState = false
  if (state === undefined) {
    state = home !== undefined ? sqliteState(join(home, STATE_FILE)) : memoryState()
    ownsState = true
  }
  const target = Math.floor(positive('prekeys.target', opts.prekeys?.target, DEFAULT_PREKEY_TARGET))
  const lowWater = Math.floor(positive('prekeys.lowWater', opts.prekeys?.lowWater, DEFAULT_PREKEY_LOW_WATER))
  if (lowWater > target) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option prekeys.lowWater (${lowWater}) must not exceed prekeys.target (${target})`)
  if (target > MAX_PREKEY_TARGET) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option prekeys.target must be at most ${MAX_PREKEY_TARGET} (what the registry holds per agent), got ${target}`)
  const pqTarget = Math.floor(positive('prekeys.pqTarget', opts.prekeys?.pqTarget, DEFAULT_PQ_PREKEY_TARGET))
  const pqLowWater = Math.floor(positive('prekeys.pqLowWater', opts.prekeys?.pqLowWater, DEFAULT_PQ_PREKEY_LOW_WATER))
  if (pqLowWater > pqTarget) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option prekeys.pqLowWater (${pqLowWater}) must not exceed prekeys.pqTarget (${pqTarget})`)
  if (pqTarget > MAX_PQ_PREKEY_TARGET) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option prekeys.pqTarget must be at most ${MAX_PQ_PREKEY_TARGET} (what the registry holds per agent), got ${pqTarget}`)
  const passphrase = opts.passphrase ?? process.env.AGENTMESH_PASSPHRASE
  const schemaMode = schemaModeOf(opts.schemas?.mode)
  const background = backgroundWarnings(opts.onWarning ?? (() => {}))
  let e2ee: E2ee
  // REST calls go to the relay the connection uses now (it moves on a failover)
  let current: () => string = () => relays[0]!.httpBase
  try {
    e2ee = new E2ee({
      identity,
      state,
      get httpBase () { return current() },
      ...(passphrase === undefined || passphrase === '' ? {} : { passphrase }),
      prekeys: { lowWater, target, pqLowWater, pqTarget, checkMs: positive('prekeys.checkMs', opts.prekeys?.checkMs, DEFAULT_PREKEY_CHECK_MS) },
      sessionIdleMs: positive('sessionIdleMs', opts.sessionIdleMs, DEFAULT_SESSION_IDLE_MS),
      onWarning: background.warn,
    })
  } catch (err) {
    if (ownsState) state.close()
    throw err
  }
  const conn = new ConnectionImpl({
    relays,
    WebSocket: opts.WebSocket ?? NodeWebSocket,
    identity,
    ...(session === undefined ? {} : { session }),
    state,
    ownsState,
    e2ee,
    acceptPlaintext: opts.acceptPlaintext !== false,
    signEncrypted: opts.signEncrypted ?? process.env.AGENTMESH_SIGN_ENCRYPTED === '1',
    deliver: opts.deliver !== false,
    agentVersion,
    minBackoffMs,
    maxBackoffMs,
    onWarning: opts.onWarning ?? (() => {}),
    ...(opts.requestReceipts === true ? { requestReceipts: true } : {}),
    ...(opts.sendReceipts === false ? { sendReceipts: false } : {}),
    validateSend: async (to, type, payload) => { await checkOutgoing(conn, to, type, payload) },
  })
  attachReceipts(conn, conn.receiptTracker)
  let gate: Gate
  try {
    gate = await Gate.open({
      identity,
      e2ee,
      ...(typeof opts.policy === 'object' ? { policy: parsePolicy(JSON.stringify(opts.policy), 'connect({ policy })') } : {}),
      ...(typeof opts.policy === 'string' ? { policyPath: opts.policy } : home !== undefined && opts.policy === undefined ? { policyPath: join(home, POLICY_FILE) } : {}),
      onWarning: opts.onWarning ?? (() => {}),
      onKnock: opts.onKnock ?? (() => {}),
      send: async (to, payload, type) => await conn.send(to, payload, { type }),
      notify: (peer, notice) => { tellSender(conn, peer, notice) },
      sentLog: new SentLog(e2ee),
      onPolicyChange: () => { void publishContact(conn, gate, e2ee, urls.join(','), background) },
    })
  } catch (err) {
    await conn.close()
    throw err
  }
  current = () => conn.httpBase
  conn.setGate(gate)
  attachMailboxState(conn, e2ee)
  // payloads of the types this agent declares are checked against its schemas (docs/protocol.md §25)
  inbound(conn).use(attachSchemas(conn, { mode: schemaMode, e2ee, notify: (peer, notice) => { tellSender(conn, peer, notice) }, warn: opts.onWarning ?? (() => {}) }))
  let links: import('./p2p.ts').P2PLinks | undefined
  if (opts.p2p !== undefined && opts.p2p !== false) {
    // libp2p is loaded only here, when direct links are asked for (docs/protocol.md §29)
    try {
      const { P2PLinks } = await import('./p2p.ts')
      links = await P2PLinks.start(conn, identity, opts.p2p === true ? {} : opts.p2p, opts.deliver !== false)
    } catch (err) {
      await conn.close()
      throw err
    }
  }
  await conn.start(opts.signal, timeout, opts.queueWhenUnreachable === true)
  if (conn.connected) {
    await e2ee.start()
    // a connection that only sends acts first on what waits for the agent's machinery (a reset, a
    // knock's answer, a revocation), so that its first send already knows
    if (opts.deliver === false) await conn.caughtUp()
    await publishContact(conn, gate, e2ee, urls.join(','), background)
    if (opts.schemas?.declare !== undefined) await publishSchemas(conn, opts.schemas.declare, e2ee, urls.join(','))
    if (links !== undefined) await publishAddresses(conn, links, identity)
  } else {
    // not reachable yet (queueWhenUnreachable): prekeys and the contact policy are published once it is
    void (async () => {
      for await (const s of conn.status()) {
        if (s.type === 'connected') {
          await e2ee.start()
          await publishContact(conn, gate, e2ee, urls.join(','), background)
          if (links !== undefined) await publishAddresses(conn, links, identity)
          return
        }
      }
    })()
  }
  return conn
}

/** The warnings of a connection's background writes (its prekeys, its contact policy). */
interface BackgroundWarnings {
  warn: (w: AgentMeshError) => void
  /** one of them was taken: a read-only relay is said again should it be read-only later */
  wrote: () => void
}

/** Said once for a relay in read-only mode, in place of a warning per background write it refuses. */
export const READ_ONLY_NOTICE = 'the relay is read-only; reads work, sends are refused (this agent\'s prekeys and contact policy are published once it takes writes again)'

/**
 * A relay in read-only mode (docs/protocol.md §20) refuses every background write with
 * AM_ERR_READ_ONLY: that is said once, plainly (READ_ONLY_NOTICE), not as a raw warning per write;
 * other warnings go through as they are.
 */
function backgroundWarnings (onWarning: (w: AgentMeshError) => void): BackgroundWarnings {
  let told = false
  return {
    warn (w) {
      if (w.code !== ErrorCode.ReadOnly) { onWarning(w); return }
      if (told) return
      told = true
      onWarning(new AgentMeshError(ErrorCode.ReadOnly, READ_ONLY_NOTICE))
    },
    wrote () { told = false },
  }
}

/**
 * Publishes the schemas given to connect() when they differ from those last published to this
 * relay (docs/protocol.md §25). A schema the registry refuses fails connect() with its code
 * (AM_ERR_INVALID_SCHEMA): the agent would otherwise validate against something else than it says.
 */
async function publishSchemas (conn: Connection, list: NonNullable<ConnectOptions['schemas']>['declare'] & object, e2ee: E2ee, url: string): Promise<void> {
  const want = `${JSON.stringify(list)} ${url}`
  if (e2ee.record<string>('meta-schemas', 'published') === want) return
  try {
    await schemas(conn).declare(list)
  } catch (err) {
    await conn.close()
    throw err
  }
  e2ee.saveRecord('meta-schemas', 'published', want)
}

/** Sends a delivery notice, end-to-end encrypted (the gate decides when one is due: knock.ts `tell`). */
function tellSender (conn: Connection, peer: string, notice: DeliveryNotice): void {
  conn.send(peer, { ...notice }, { type: DELIVERY_NOTICE_TYPE }).catch(() => {})
}

/**
 * Publishes in the registry profile whether this agent takes messages only from agents it granted
 * (`contact: 'knock'`), so that a sender without a grant is told before it sends, not after. Done
 * when it changed since it was last published to this relay.
 */
async function publishContact (conn: Connection, gate: Gate, e2ee: E2ee, url: string, background: BackgroundWarnings): Promise<void> {
  const want = `${gate.contact} ${url}`
  if (e2ee.record<string>('meta-contact', 'published') === want) return
  try {
    await conn.request('PUT', `/api/v1/agents/${conn.amid}`, { contact: gate.contact })
    e2ee.saveRecord('meta-contact', 'published', want)
    background.wrote()
  } catch (err) {
    background.warn(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.Internal, `could not publish this agent's contact policy (${gate.contact}) in the registry: ${(err as Error).message}`))
  }
}

/** Publishes where the agent's node listens (p2p.ts); a failure is a warning: peers then reach it through the relay, or find it in the DHT. */
async function publishAddresses (conn: ConnectionImpl, links: import('./p2p.ts').P2PLinks, identity: import('@agentmesh/crypto').Identity): Promise<void> {
  try {
    await links.publish(conn, identity)
  } catch (err) {
    conn.warn(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, `could not publish this agent's direct addresses: ${(err as Error).message}`))
  }
}
