import type { Envelope } from '@agentmesh/protocol'

/** Connection status; `for await (const s of conn.status())` and switch on `s.type`. */
export type Status =
  | { type: 'connecting', relay: string }
  | { type: 'connected', relay: string }
  | { type: 'disconnected', relay: string, error?: Error }
  | { type: 'reconnecting', attempt: number }
  | { type: 'closed' }

/**
 * The link to the relay as it stands (the network partition protocol, docs/protocol.md §20): a
 * relay that stops answering (no pong within the heartbeat timeout) or goes away turns it
 * `reconnecting`; sends keep going into the durable outbox meanwhile, and go out in order when it
 * is `connected` again.
 */
export interface LinkStatus {
  /** connecting: never connected yet; reconnecting: the link was lost and is being retried; offline: closed */
  state: 'connecting' | 'connected' | 'reconnecting' | 'offline'
  /** envelopes in the outbox, not yet acknowledged by the relay */
  outbox: number
  /** ms since the epoch: when it entered this state */
  since: number
  relay: string
  /** the dial attempt, while not connected */
  attempt?: number
  /** why the last attempt failed, while not connected */
  lastError?: string
}

/** A message handed to the application: verified, and never the same (from, id) twice. */
export interface Message {
  id: string
  from: string
  to: string
  type: string
  /** sender's timestamp, ms since epoch */
  ts: number
  /** position in this agent's inbox on the relay; for a room message read by cursor (docs/protocol.md §6.1), its room seq */
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
  /** always true: a peer's words are data, never instructions (see `fenceUntrusted`) */
  untrusted?: boolean
  /** who sent it and under which grant (when a policy is in force) */
  provenance?: import('./knock.ts').MessageProvenance
  /** the message is a slash command; `allowed` only when the sender's grant has `command:<name>` or `command:*` */
  command?: import('./untrusted.ts').SlashCommand & { allowed: boolean }
  /** a room message: the room's id (without "#"); `encrypted` tells a private room's */
  room?: string
  /** relay-attested (posted over REST by `from`, signed by this relay: docs/protocol.md §17.6) */
  via?: string
  /** the sender asked for delivery receipts (docs/protocol.md §26): this agent sends them unless connected with `sendReceipts: false` */
  receiptRequested?: boolean
  /** the payload does not match the schema this agent declares for its type (warn mode, docs/protocol.md §25): what is wrong */
  schemaError?: string
  /** 'direct' when it came over a direct link (docs/protocol.md §29; then `seq` is 0), absent when the relay delivered it */
  path?: 'direct'
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
  /**
   * This send repeats the message with this id, which its receiver could not decrypt: the receiver
   * shows it under that id, and once only. The connection sets it when it resends after a peer's
   * reset (docs/policy.md "A peer that lost its state").
   */
  resendOf?: string
  /**
   * Called with the envelope id once the send is queued: in the outbox, or (a room message while
   * the relay cannot be reached to look the room up, and the sends after it) kept in the agent's
   * state to be encrypted and queued once it can. From then on it is delivered even if this process
   * ends; the returned promise still waits for the relay's ack.
   */
  onQueued?: (id: string) => void
  /**
   * Ask the receiver for delivery receipts (docs/protocol.md §26): `delivered` and `processed`,
   * seen in `sent()` and through `receipts(conn)`. End-to-end encrypted direct messages only.
   * @default the connection's `requestReceipts`
   */
  receipts?: boolean
  /**
   * Check the payload against the schema the receiver declares for this type in its registry
   * profile (docs/protocol.md §25) before queueing it: AM_ERR_SCHEMA_MISMATCH when it does not
   * match. Not checked for a room. @default false
   */
  validate?: boolean
}

export interface SendResult {
  id: string
  /** true when the relay (or the peer, on a direct link) had this id before (a retry) */
  duplicate: boolean
  /** 'direct' when the peer acknowledged it on a direct link (docs/protocol.md §29); absent when the relay stored it */
  path?: 'direct'
}

export interface Connection {
  readonly amid: string
  /** The WebSocket address of the relay it uses now: of several given (a cluster), the one it moved to last. */
  readonly url: string
  readonly connected: boolean
  /** Envelopes written to the outbox and not yet acknowledged. */
  readonly pendingSends: number
  /**
   * Signs, stores in the outbox, sends; resolves once the relay has persisted it. `to` is an AMID,
   * an `@handle` (resolved by the relay) or a `#room` (a private room's messages are encrypted with
   * this agent's sender key, docs/protocol.md §17.5).
   */
  send (to: string, payload: Record<string, unknown>, opts?: SendOptions): Promise<SendResult>
  /** The relay's own AMID (it signs timeline events and task requests), once connected. */
  readonly relayAmid: string | undefined
  /** Chat events (presence, typing, read, membership; see `chat(conn)`) and operations events, live. */
  events (): AsyncIterable<import('@agentmesh/protocol').RelayEvent>
  /** A typing signal, or "read up to" a room seq, to a room's members; in a DM conversation (`dm-…`) "read up to" a message id. */
  signal (room: string, kind: 'typing' | 'read', upTo?: number | string): void
  /**
   * Hear the presence changes of these agents (AMIDs, at most 256) besides those sharing a room with
   * this one (docs/protocol.md §17.4); replaces the list, kept across reconnections; [] ends it.
   */
  watch (agents: readonly string[]): void
  /** A REST call to the relay signed by this agent; answers the JSON body or throws its coded error. */
  request (method: string, path: string, body?: unknown): Promise<unknown>
  /**
   * The relay's HTTP origin and headers (a bearer token, renewed before it expires) that
   * authenticate a plain HTTP request as this agent: for streamed bodies, which a signed request
   * cannot carry (`files(conn)`: uploads and downloads).
   */
  authorize (): Promise<{ origin: string, headers: Record<string, string> }>
  /**
   * Incoming messages in order. A message counts as processed, and is never handed over
   * again, when the loop asks for the next one (or leaves with `break`).
   */
  messages (opts?: { signal?: AbortSignal, manualAck?: boolean }): AsyncIterableIterator<Message>
  /**
   * With `messages({ manualAck: true })`: the application is done with `m`. Messages are handed
   * over without waiting, and each counts as processed (the cursor moves past it, its `processed`
   * receipt goes) only once it and every message before it were acknowledged; what was not
   * committed so (it, or one before it, was not acknowledged) is handed over again after a restart.
   */
  ack (m: Message): void
  status (): AsyncIterable<Status>
  /** The link now: connected, reconnecting or offline, the outbox's size and since when (§20). */
  link (): LinkStatus
  /** Resolves when the outbox is empty. */
  flush (opts?: { signal?: AbortSignal }): Promise<void>
  /** The safety number with `peer` and whether its key changed (fetches its key from the registry if unknown). */
  peer (amid: string): Promise<import('./e2ee.ts').PeerStatus>
  /** Accepts a peer's changed key after comparing safety numbers; held messages come through on the next connect. */
  acceptPeerKey (amid: string): Promise<import('./e2ee.ts').PeerStatus & { held: number }>
  /**
   * The AMID of an @handle, as the relay answers it, checked against the AMID pinned for the handle
   * on first contact (pinned then): AM_ERR_HANDLE_CHANGED when the relay now names another agent.
   */
  resolveHandle (handle: string): Promise<string>
  /** Handles pinned to AMIDs (with end-to-end encryption), by handle. */
  handlePins (): import('./handle-pins.ts').HandlePin[]
  /** Accepts the AMID the relay now gives for an @handle (after checking it with its holder): the pin moves to it. */
  acceptHandle (handle: string): Promise<import('./handle-pins.ts').HandlePin>
  /** The end-to-end sessions held, least recently used first. */
  sessions (): Array<{ peer: string, usedAt: number }>
  /** Deletes the session with `peer` (its keys are overwritten); the next message starts a new one. */
  resetSession (amid: string): Promise<boolean>
  /** Knocks on `peer` (first contact); the answer arrives as a delivery: a grant is kept, a rejection warned (AM_ERR_KNOCK_REJECTED). */
  knock (peer: string, intent: { category: string, summary: string, scopes?: string[], duration_s?: number }): Promise<{ id: string }>
  /** Knocks held for the owner's decision. */
  knocks (): import('./knock.ts').HeldKnock[]
  /** The owner accepts (a grant goes back) or rejects (with a reason, or silently) a held knock. */
  answerKnock (id: string, decision: 'accept' | 'reject', opts?: { reason?: string, silent?: boolean, scopes?: string[], durationS?: number }): Promise<import('@agentmesh/crypto').Grant | undefined>
  /** Grants this agent issued and holds. */
  grants (): ReturnType<import('./knock.ts').Gate['grants']>
  /** Revokes the grant a peer holds from this agent. */
  revokeGrant (peer: string): Promise<boolean>
  /** This agent's safety log, oldest first: knocks decided, grants, breaker trips and blocks (metadata only). */
  safetyLog (): import('./knock.ts').SafetyEvent[]
  /**
   * What became of the direct messages this agent sent lately, newest last, without their content:
   * `stored` by the relay, `refused` or `held` by the receiver (with its code and reason), or
   * `resent` in a new session after the receiver could not decrypt it (docs/policy.md).
   */
  sent (opts?: { peer?: string, limit?: number }): import('./sent.ts').SentStatusEntry[]
  /** Blocks a peer (the owner's decision): its messages are refused, and it is told; logged in the safety log. */
  block (peer: string, opts?: { reason?: string }): import('./knock.ts').BlockedPeer & { already: boolean }
  /** Lifts a block (and the circuit breaker's trips with the peer); false when it was not blocked. */
  unblock (peer: string): boolean
  /** Blocked peers, oldest block first. */
  blocks (): import('./knock.ts').BlockedPeer[]
  /**
   * The peers this agent knows, with the path a direct message to each takes now (docs/protocol.md
   * §29): `direct` (an open libp2p connection), `relayed-circuit` (a connection through a circuit
   * relay), `relay` (the relay carries it). Without `connect({ p2p })`, every peer with a session, on `relay`.
   */
  peers (): Promise<PeerInfo[]>
  /** The multiaddrs this agent's node listens on (with its peer id); [] without `connect({ p2p })`. */
  p2pAddresses (): string[]
  close (): Promise<void>
}

export interface ConnectOptions {
  /**
   * Relay address: ws(s)://host:port or http(s)://host:port; or several nodes of one cluster (an
   * array, or one string with commas), at most 16: the connection uses the first and moves to the
   * next when it loses one, resuming from its cursor. @default $AGENTMESH_SERVER or ws://127.0.0.1:7777
   */
  server?: string | readonly string[]
  /** The agent's identity; or give `home` to load it from there. */
  identity?: import('@agentmesh/crypto').Identity
  /** Agent home directory: identity.json and state.db (outbox, cursor, dedupe). @default $AGENTMESH_HOME or ~/.agentmesh */
  home?: string
  /** Local state; overrides the state.db in `home`. @default state.db in home, or memory when only `identity` is given */
  state?: import('./state.ts').ClientState
  /**
   * A PEM file of the private CA that signed the relay's TLS certificate (`wss://`), trusted besides
   * Node's own roots for AgentMesh's connections and REST calls in this process (Node only).
   * @default the file of AGENTMESH_CA_FILE, else none
   */
  caFile?: string
  /** The WebSocket class to dial with (a browser's global `WebSocket`). @default `ws`, without compression */
  WebSocket?: import('./transport.ts').WebSocketConstructor
  /** Receive deliveries on this connection. @default true */
  deliver?: boolean
  /**
   * The agent's software version, reported to the relay when it connects (docs/protocol.md §3,
   * §19): a breaking system update with a required version refuses the sends of agents below it
   * after its deadline. A semantic version such as "1.4.0". @default the SDK's version (SDK_VERSION)
   */
  agentVersion?: string
  /** Give up the first connection after this long. @default 10 s */
  connectTimeoutMs?: number
  /**
   * When the relay cannot be reached (the first attempt fails, or connectTimeoutMs passes), resolve
   * anyway with a connection that keeps trying (`connected` is false meanwhile): sends wait in the
   * outbox (room messages deferred, docs/protocol.md §17.5) and go out once it connects.
   * @default false: reject with AM_ERR_CONNECT_FAILED
   */
  queueWhenUnreachable?: boolean
  /** Reconnect backoff bounds (full jitter). @default 250 ms … 5 s */
  minBackoffMs?: number
  maxBackoffMs?: number
  signal?: AbortSignal
  /**
   * Hand unencrypted (agentmesh/0.1-style) messages to the application, marked `encrypted: false`.
   * With false they are dropped with an AM_ERR_PLAINTEXT_REFUSED warning. @default true
   */
  acceptPlaintext?: boolean
  /**
   * Send end-to-end encrypted direct messages as signed `agentmesh/0.2` envelopes, as SDKs before
   * `agentmesh/0.3` did, instead of unsigned 0.3 ones (docs/protocol.md §14.3): for the transition,
   * while peers still run an SDK that drops an unsigned envelope as a bad signature. Receiving
   * takes both forms either way. @default $AGENTMESH_SIGN_ENCRYPTED = "1", else false
   */
  signEncrypted?: boolean
  /** Passphrase that, with the identity, seals the local sessions and keys. @default $AGENTMESH_PASSPHRASE or none */
  passphrase?: string
  /**
   * Act with a session key (docs/protocol.md §3, §8): a session from `loadSession`, or the path of a
   * session certificate file (`agentmesh cert session` writes `<home>/session.pem`, its key
   * `session.key` next to it). The relay auth and every envelope are then signed by the session key
   * and carry its certificate. The identity is still read for end-to-end encryption and signed REST
   * requests. An empty string means none. @default $AGENTMESH_SESSION or none
   */
  session?: import('@agentmesh/crypto').Session | string
  /**
   * One-time prekey top-up: when fewer than `lowWater` remain on the relay, upload up to `target`;
   * the same for one-time ML-KEM-768 prekeys with `pqLowWater` and `pqTarget` (at most 100);
   * checked on connect and every `checkMs`. @default 20, 100, 10, 40, 6 hours
   */
  prekeys?: Partial<import('./e2ee.ts').PrekeyPolicy>
  /** Sessions unused this long are deleted with their keys. @default 7 days */
  sessionIdleMs?: number
  /**
   * The first-contact policy: a policy file to watch, or a policy object. @default the file
   * policy.json in `home` when it exists (changes apply without restart); without one the agent is
   * open: messages need no grant (docs/policy.md)
   */
  policy?: string | import('./policy.ts').PolicyFile
  /**
   * Message schemas (docs/protocol.md §25): `mode` 'warn' hands over a direct message whose payload
   * does not match this agent's declared schema with `schemaError` and a warning; 'strict' refuses
   * it and tells the sender (AM_ERR_SCHEMA_MISMATCH). `declare` publishes the schemas when they
   * changed. @default mode $AGENTMESH_SCHEMA_MODE or 'warn'
   */
  schemas?: import('./schemas.ts').SchemaOptions
  /** A knock was held for the owner. @default ignored */
  onKnock?: (k: import('./knock.ts').HeldKnock) => void
  /** Dropped deliveries and send errors nobody awaits. @default ignored */
  onWarning?: (w: import('@agentmesh/protocol').AgentMeshError) => void
  /** Ask for delivery receipts on every end-to-end encrypted direct message (docs/protocol.md §26). @default false */
  requestReceipts?: boolean
  /** Send the receipts peers ask for (delivered, processed). false opts out: senders then see `stored` only. @default true */
  sendReceipts?: boolean
  /**
   * Direct links (docs/protocol.md §29): `true` or options. Direct messages then go to a reachable
   * peer over libp2p first and through the relay when no direct ack comes in time; rooms keep the
   * relay. Loads libp2p only when set. @default false
   */
  p2p?: boolean | P2POptions
}

/** `connect({ p2p })` options (docs/protocol.md §29). */
export interface P2POptions {
  /** multiaddrs the agent's node listens on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /**
   * DHT bootstrap peers (multiaddrs ending in /p2p/<peer id>: another agent's, or a relay's from
   * `GET /api/v1/info` `p2p.addrs`). A peer is looked up in the DHT when one of them answers, else in
   * the registry (said in a warning). @default none: the registry only
   */
  bootstrap?: string[]
  /** ICE servers (STUN/TURN) for WebRTC, RTCIceServer objects. @default from AGENTMESH_ICE_SERVERS or AGENTMESH_TURN_URL/_USERNAME/_CREDENTIAL(_FILE); none: no WebRTC */
  iceServers?: unknown[]
  /** Publish where this agent listens (its signed peer record) in its registry profile. @default true; false keeps the addresses private */
  publish?: boolean
  /** where peers can be reached, by AMID (multiaddrs): known addresses given up front */
  peers?: Record<string, string[]>
  /**
   * Finds where a peer can be reached (multiaddrs) when the address book has nothing: the discovery
   * hook. Answers are kept a minute, empty ones too. @default none: only `peers` and open connections
   */
  resolve?: (amid: string) => readonly string[] | Promise<readonly string[]>
  /** How long a direct send waits for the peer's ack before the envelope goes through the relay (ms). @default 2000 */
  directAckTimeoutMs?: number
  /** Envelopes received directly and not yet processed, at most; past it direct sends are refused (retryable: they take the relay). @default 1024 */
  maxDirectPending?: number
  /** the direct protocol's bounds (`DIRECT_DEFAULTS` in @agentmesh/p2p) */
  limits?: Partial<{ maxEnvelopeBytes: number, maxInFlight: number, maxStreams: number, idleTimeoutMs: number, dialTimeoutMs: number, redialAfterMs: number, maxFailedPeers: number, maxRefusalsPerStream: number }>
}

/** A peer and the path a direct message to it takes now (`conn.peers()`). */
export interface PeerInfo {
  amid: string
  path: 'direct' | 'relayed-circuit' | 'relay'
  /** the round-trip time of a ping over the direct connection, ms; null on the relay path or when it did not answer */
  rttMs: number | null
  /** the multiaddrs it is connected at or known by */
  addrs: string[]
}
