import { join } from 'node:path'
import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import { defaultHome, loadIdentity } from '@agentmesh/crypto'
import { ConnectionImpl } from './connection.ts'
import { memoryState, sqliteState } from './state.ts'
import type { ConnectOptions, Connection } from './types.ts'

export const STATE_FILE = 'state.db'
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

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

export function defaultServer (env: NodeJS.ProcessEnv = process.env): string {
  const s = env.AGENTMESH_SERVER
  return s !== undefined && s !== '' ? s : `ws://${constants.DEFAULT_HOST}:${constants.DEFAULT_PORT}`
}

function positive (name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || v <= 0) throw new AgentMeshError(ErrorCode.InvalidArgument, `connect option ${name} must be a positive number, got ${String(v)}`)
  return v
}

/**
 * Connects an agent to a relay and resolves once it is authenticated. Afterwards the
 * connection reconnects by itself until `close()`.
 */
export async function connect (opts: ConnectOptions = {}): Promise<Connection> {
  const url = relayUrl(opts.server ?? defaultServer())
  const timeout = positive('connectTimeoutMs', opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
  const minBackoffMs = positive('minBackoffMs', opts.minBackoffMs, 250)
  const maxBackoffMs = positive('maxBackoffMs', opts.maxBackoffMs, 5000)
  const home = opts.home ?? (opts.identity === undefined ? defaultHome() : undefined)
  const identity = opts.identity ?? loadIdentity(home!)
  let state = opts.state
  let ownsState = false
  if (state === undefined) {
    state = home !== undefined ? sqliteState(join(home, STATE_FILE)) : memoryState()
    ownsState = true
  }
  const conn = new ConnectionImpl({
    url,
    identity,
    state,
    ownsState,
    deliver: opts.deliver !== false,
    minBackoffMs,
    maxBackoffMs,
    onWarning: opts.onWarning ?? (() => {}),
  })
  await conn.start(opts.signal, timeout)
  return conn
}
