import type { Envelope } from '@agentmesh/protocol'

/** Connection status; `for await (const s of conn.status())` and switch on `s.type`. */
export type Status =
  | { type: 'connecting', relay: string }
  | { type: 'connected', relay: string }
  | { type: 'disconnected', relay: string, error?: Error }
  | { type: 'reconnecting', attempt: number }
  | { type: 'closed' }

/** A message handed to the application: verified, and never the same (from, id) twice. */
export interface Message {
  id: string
  from: string
  to: string
  type: string
  /** sender's timestamp, ms since epoch */
  ts: number
  /** position in this agent's inbox on the relay */
  seq: number
  payload: Record<string, unknown>
  /** payload.text when it is a string (chat messages) */
  text?: string
  envelope: Envelope
}

export interface SendOptions {
  /** @default 'chat' */
  type?: string
  /** Envelope id; chosen once per message so that retries are recognised. @default a UUIDv7 */
  id?: string
  /** Stops waiting for the ack; the envelope stays in the outbox and is still delivered. */
  signal?: AbortSignal
}

export interface SendResult {
  id: string
  /** true when the relay had stored this id before (a retry) */
  duplicate: boolean
}

export interface Connection {
  readonly amid: string
  readonly connected: boolean
  /** Envelopes written to the outbox and not yet acknowledged. */
  readonly pendingSends: number
  /** Signs, stores in the outbox, sends; resolves once the relay has persisted it. */
  send (to: string, payload: Record<string, unknown>, opts?: SendOptions): Promise<SendResult>
  /**
   * Incoming messages in order. A message counts as processed, and is never handed over
   * again, when the loop asks for the next one (or leaves with `break`).
   */
  messages (opts?: { signal?: AbortSignal }): AsyncIterableIterator<Message>
  status (): AsyncIterable<Status>
  /** Resolves when the outbox is empty. */
  flush (opts?: { signal?: AbortSignal }): Promise<void>
  close (): Promise<void>
}

export interface ConnectOptions {
  /** Relay address: ws(s)://host:port or http(s)://host:port. @default $AGENTMESH_SERVER or ws://127.0.0.1:7777 */
  server?: string
  /** The agent's identity; or give `home` to load it from there. */
  identity?: import('@agentmesh/crypto').Identity
  /** Agent home directory: identity.json and state.db (outbox, cursor, dedupe). @default $AGENTMESH_HOME or ~/.agentmesh */
  home?: string
  /** Local state; overrides the state.db in `home`. @default state.db in home, or memory when only `identity` is given */
  state?: import('./state.ts').ClientState
  /** Receive deliveries on this connection. @default true */
  deliver?: boolean
  /** Give up the first connection after this long. @default 10 s */
  connectTimeoutMs?: number
  /** Reconnect backoff bounds (full jitter). @default 250 ms … 5 s */
  minBackoffMs?: number
  maxBackoffMs?: number
  signal?: AbortSignal
  /** Dropped deliveries and send errors nobody awaits. @default ignored */
  onWarning?: (w: import('@agentmesh/protocol').AgentMeshError) => void
}
