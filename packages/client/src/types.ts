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
  /**
   * true when it came end-to-end encrypted (type and payload are what the sender encrypted);
   * false for an unencrypted (agentmesh/0.1-style) message, accepted because `acceptPlaintext` is on
   */
  encrypted: boolean
  /** the envelope as it travelled (for an encrypted message: ciphertext) */
  envelope: Envelope
}

/** Safety number and key state of a peer (see `agentmesh verify`). */
export type { PeerStatus } from './e2ee.ts'

export interface SendOptions {
  /** @default 'chat' */
  type?: string
  /** Envelope id; chosen once per message so that retries are recognised. @default a UUIDv7 */
  id?: string
  /** Stops waiting for the ack; the envelope stays in the outbox and is still delivered. */
  signal?: AbortSignal
  /**
   * End-to-end encrypt (the type travels inside the ciphertext). false sends an unencrypted signed
   * envelope the relay can read, for peers without prekeys. Messages to oneself are never encrypted.
   * @default true
   */
  encrypt?: boolean
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
  /** The safety number with `peer` and whether its key changed (fetches its key from the registry if unknown). */
  peer (amid: string): Promise<import('./e2ee.ts').PeerStatus>
  /** Accepts a peer's changed key after comparing safety numbers; held messages come through on the next connect. */
  acceptPeerKey (amid: string): Promise<import('./e2ee.ts').PeerStatus & { held: number }>
  /** The end-to-end sessions held, least recently used first. */
  sessions (): Array<{ peer: string, usedAt: number }>
  /** Deletes the session with `peer` (its keys are overwritten); the next message starts a new one. */
  resetSession (amid: string): Promise<boolean>
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
  /**
   * Hand unencrypted (agentmesh/0.1-style) messages to the application, marked `encrypted: false`.
   * With false they are dropped with an AM_ERR_PLAINTEXT_REFUSED warning. @default true
   */
  acceptPlaintext?: boolean
  /** Passphrase that, with the identity, seals the local sessions and keys. @default $AGENTMESH_PASSPHRASE or none */
  passphrase?: string
  /** One-time prekey top-up: when fewer than `lowWater` remain on the relay, upload up to `target`; checked on connect and every `checkMs`. @default 20, 100, 6 hours */
  prekeys?: Partial<import('./e2ee.ts').PrekeyPolicy>
  /** Sessions unused this long are deleted with their keys. @default 7 days */
  sessionIdleMs?: number
  /** Dropped deliveries and send errors nobody awaits. @default ignored */
  onWarning?: (w: import('@agentmesh/protocol').AgentMeshError) => void
}
