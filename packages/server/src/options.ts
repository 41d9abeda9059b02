/**
 * The relay's configuration, written once: `RELAY_OPTIONS` gives every option its type and bounds
 * (a TypeBox schema), its default, its doc line, and where a user sets it (config-file key,
 * environment variable, `agentmesh serve` flag). `RelayInit` (user options) and `RelayOptions`
 * (resolved) derive from it, `relayOptions()` validates and fills defaults from it, and the CLI
 * builds its flags, environment and config-file keys from it.
 */
import { Kind, Type, type Static, type TInteger, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { AgentMeshError, ErrorCode, constants } from '@agentmesh/protocol'
import type { RateLimit } from '@agentmesh/protocol/internal'
import type { Store } from '@agentmesh/store'
import type { Logger } from './log.ts'
import { checkTrustRoots, loadTrustRoots } from './certificates.ts'
import { DEFAULT_REPUTATION, MAX_FEEDBACK_PER_HOUR_LIMIT, reputationOptions, type ReputationOptions } from './reputation.ts'
import { RATE_LIMIT_MAX, RATE_LIMIT_MIN, RATE_LIMIT_NAMES, SCALAR_SETTINGS, type RateLimitName } from './settings.ts'
import { isLoopbackHost } from './tls.ts'

export type { RateLimitName } from './settings.ts'

export const DEFAULT_HISTORY_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
export const DEFAULT_AUDIT_RETENTION_MS = 90 * 24 * 60 * 60 * 1000
/** Audit rows a `memory` relay keeps (a persistent one keeps what its retention allows). */
export const DEFAULT_MEMORY_AUDIT_MAX_ROWS = 100_000

const DAY_MS = 86_400_000

/** What one connection may have queued before its deliveries pause (soft) and before it is closed (hard). */
export const DEFAULT_SEND_BUFFER_BYTES = 4 * 1024 * 1024
export const DEFAULT_SEND_BUFFER_MAX_BYTES = 32 * 1024 * 1024
/** Error answers per connection: a burst, a rate, and how many left out close it. */
export const DEFAULT_ERROR_BURST = 100
export const DEFAULT_ERRORS_PER_MINUTE = 600
export const DEFAULT_ERROR_FLOOD_CLOSE = 1000
/** How far ahead of the relay's clock an envelope's ts may be. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
/** Presence changes are sent at most once per interval. */
export const DEFAULT_PRESENCE_INTERVAL_MS = 1000
/** With a shared backplane, every connected agent's inbox and rooms are read from the Store again this often. */
export const DEFAULT_BACKPLANE_CATCH_UP_MS = 30_000
/** With a shared backplane, each node says it is alive this often (cluster.ts). */
export const DEFAULT_CLUSTER_HEARTBEAT_MS = 5000
export const DEFAULT_CLUSTER_RATE_SHARE_MS = 250
/** A node not heard for this long is dropped from its peers' view, and its agents go offline there. */
export const DEFAULT_CLUSTER_PEER_TIMEOUT_MS = 20_000
/** Connections the PostgreSQL store's pool opens at most (`storePoolSize`). */
export const DEFAULT_STORE_POOL_SIZE = 10
export const MAX_STORE_POOL_SIZE = 1000
/** How long one PostgreSQL statement may run (`storeStatementTimeoutMs`). */
export const DEFAULT_STORE_STATEMENT_TIMEOUT_MS = 30_000
export const MAX_STORE_STATEMENT_TIMEOUT_MS = 3_600_000
/** Registry reads per IP. */
export const DEFAULT_REGISTRY_READS_PER_MINUTE = 600
export const DEFAULT_REGISTRY_READ_BURST = 200
/** docs/protocol.md §19: a breaking update's deadline when it names none (and does not expire). */
export const DEFAULT_UPDATE_GRACE_MS = 7 * 24 * 3_600_000

// ---- operations: files (§18)
const MIB = 1024 * 1024
/** The largest file of the streamed upload, of the Base64 JSON upload (decoded), an agent's total and its file count. */
export const DEFAULT_FILE_MAX_BYTES = 100 * MIB
export const DEFAULT_FILE_JSON_MAX_BYTES = 10 * MIB
export const DEFAULT_FILE_QUOTA_BYTES = 1024 * MIB
export const DEFAULT_FILE_MAX_PER_AGENT = 10_000

/** A console role a provider identity may be given (§28). */
export type OidcRole = 'operator' | 'warden'
/** The provider's subjects and groups mapped to console roles. */
export interface OidcRoles { subjects: Record<string, OidcRole>, groups: Record<string, OidcRole> }
/** Entries oidcRoles may hold (subjects and groups together). */
export const MAX_OIDC_ROLE_ENTRIES = 1000

function oidcRoles (v: unknown, bad: InvalidOption): OidcRoles {
  if (typeof v === 'string') {
    try { v = JSON.parse(v) } catch { throw bad('oidcRoles', 'must be JSON: {"subjects": {"<sub>": "operator"|"warden"}, "groups": {"<group>": "operator"|"warden"}}') }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('oidcRoles', 'must be an object {"subjects": {…}, "groups": {…}}')
  const out: OidcRoles = { subjects: {}, groups: {} }
  let n = 0
  for (const [k, m] of Object.entries(v)) {
    if (k !== 'subjects' && k !== 'groups') throw bad(`oidcRoles.${k}`, 'is not a field (subjects, groups)')
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad(`oidcRoles.${k}`, 'must be an object mapping names to "operator" or "warden"')
    for (const [name, role] of Object.entries(m as Record<string, unknown>)) {
      if (name === '' || name.length > 255) throw bad(`oidcRoles.${k}`, 'names must be 1–255 characters')
      if (role !== 'operator' && role !== 'warden') throw bad(`oidcRoles.${k}.${name}`, `must be "operator" or "warden", got ${JSON.stringify(role)}`)
      if (++n > MAX_OIDC_ROLE_ENTRIES) throw bad('oidcRoles', `holds more than ${MAX_OIDC_ROLE_ENTRIES} entries`)
      out[k][name] = role
    }
  }
  return out
}

/** Builds the error of an invalid option: `relay option <field> <why>`. */
export type InvalidOption = (field: string, why: string) => AgentMeshError

/** How an option is given to `agentmesh serve` on the command line. */
export interface FlagSpec {
  /** The flag as commander declares it, e.g. `--port <port>` or `--no-verify-signatures`. */
  readonly flags: string
  /** Its line in `agentmesh serve --help`. */
  readonly help: string
  /**
   * A whole number, possibly in another unit than the option's: the bounds the flag accepts and
   * how many option units one flag unit is (`--history-retention-days`: 86,400,000 ms a day).
   */
  readonly int?: { readonly min: number, readonly max: number, readonly scale?: number }
  /** A boolean's opposite flag, declared right after it (`--verify-signatures` and `--no-verify-signatures`). */
  readonly negation?: { readonly flags: string, readonly help: string }
}

/** One relay option. `In` is what a user gives, `Out` what `relayOptions` resolves it to. */
export interface OptionSpec<S extends TSchema = TSchema, Out = unknown> {
  /** Its type and bounds. */
  readonly schema: S
  /** Its value when not given (copied for each `relayOptions()`; undefined: decided where it is used). */
  readonly default: Out
  /** What it does, and its default in words. */
  readonly doc: string
  /** Whether the `--config` JSON file may set it (under its own name). */
  readonly file: boolean
  /** The environment variable that sets it, if any. */
  readonly env?: string
  /** The `agentmesh serve` flag that sets it, if any. */
  readonly flag?: FlagSpec
  /** For a string: what follows "relay option <name>" when a value breaks the schema. */
  readonly invalid?: string
  /** For a whole number with a minimum above 1: its unit, named in "must be at least <min> (<unit>)". */
  readonly unit?: string
  /** When the flag and environment variable name a file holding the value: reads it. */
  readonly load?: (path: string) => Static<S>
  /** When the schema's bounds are not the whole check: validates what the user gave and resolves it. */
  readonly resolve?: (value: unknown, bad: InvalidOption) => Out
}

/** One or more multiaddrs separated by commas (the libp2p options). */
const MULTIADDR_LIST = Type.String({ minLength: 2, maxLength: 4096, pattern: '^/[^\\s,]+(,/[^\\s,]+)*$' })

/** An option whose schema is the whole check; `Out` adds undefined when it has no default. */
function option<S extends TSchema, D extends Static<S> | undefined> (spec: OptionSpec<S, D>): OptionSpec<S, Static<S> | D> {
  return spec
}

const positive = (doc: string, def: number, env: string): OptionSpec<TInteger, number> =>
  option({ schema: Type.Integer({ minimum: 1 }), default: def, doc, file: true, env })

/** A PEM file of a connection the relay makes (NATS, PostgreSQL): a path, read by `serve` at start. */
const tlsFileOption = (what: string, doc: string, env: string, flags: string): OptionSpec<ReturnType<typeof Type.String>, string | undefined> =>
  option({
    schema: Type.String({ minLength: 1, maxLength: 4096 }),
    default: undefined,
    invalid: 'must be the path of a PEM file',
    doc: `PEM file: the ${doc}; read by \`agentmesh serve\` when it connects to ${what}. @default none`,
    file: true,
    env,
    flag: { flags, help: `${doc} (PEM file; env ${env})` },
  })

const rateLimitSchema = Type.Partial(Type.Object({
  perMinute: Type.Integer({ minimum: RATE_LIMIT_MIN, maximum: RATE_LIMIT_MAX }),
  burst: Type.Integer({ minimum: RATE_LIMIT_MIN, maximum: RATE_LIMIT_MAX }),
}))

/**
 * Every relay option, in the order `agentmesh serve --help` and the config-file error list show
 * them. Each limit has a default bound (STYLE.md "Config"); README's Configuration table lists the
 * same names and defaults.
 */
export const RELAY_OPTIONS = {
  host: option({
    schema: Type.String({ minLength: 1 }),
    default: constants.DEFAULT_HOST,
    invalid: 'must be a non-empty string',
    doc: 'Address to listen on. @default 127.0.0.1',
    file: true,
    env: 'AGENTMESH_HOST',
    flag: { flags: '--host <host>', help: 'address to listen on (default 127.0.0.1; env AGENTMESH_HOST)' },
  }),
  port: option({
    schema: Type.Integer({ minimum: 0, maximum: 65535 }),
    default: constants.DEFAULT_PORT,
    doc: 'Port to listen on; 0 picks a free port. @default 7777',
    file: true,
    env: 'AGENTMESH_PORT',
    flag: { flags: '--port <port>', help: 'port to listen on, 0 for any free port (default 7777; env AGENTMESH_PORT)', int: { min: 0, max: 65535 } },
  }),
  tlsCert: option({
    schema: Type.String({ minLength: 1, maxLength: 4096 }),
    default: undefined,
    invalid: 'must be the path of a PEM certificate (chain) file',
    doc: 'The PEM certificate chain the relay serves https:// and wss:// with, on the same port (with tlsKey); read again on SIGHUP and when the file changes, without dropping connections. @default none: plain http:// and ws://',
    file: true,
    env: 'AGENTMESH_TLS_CERT',
    flag: { flags: '--tls-cert <file>', help: 'serve https:// and wss:// with this PEM certificate chain (with --tls-key; env AGENTMESH_TLS_CERT)' },
  }),
  tlsKey: option({
    schema: Type.String({ minLength: 1, maxLength: 4096 }),
    default: undefined,
    invalid: 'must be the path of a PEM private key file',
    doc: 'The PEM private key of tlsCert (keep it 0600). @default none',
    file: true,
    env: 'AGENTMESH_TLS_KEY',
    flag: { flags: '--tls-key <file>', help: 'the PEM private key of --tls-cert (env AGENTMESH_TLS_KEY)' },
  }),
  insecure: option({
    schema: Type.Boolean(),
    default: false,
    doc: 'Allow plain http:// and ws:// on an address other than loopback (behind a proxy that terminates TLS, or a private network); without it such a relay refuses to start unless tlsCert and tlsKey are given. @default false',
    file: true,
    env: 'AGENTMESH_INSECURE',
    flag: { flags: '--insecure', help: 'serve plain ws:// on a non-loopback --host (behind a TLS-terminating proxy; env AGENTMESH_INSECURE=1)' },
  }),
  dataDir: option({
    schema: Type.String({ minLength: 1 }),
    default: './data',
    invalid: 'must be a non-empty path',
    doc: 'Directory of the SQLite database that `agentmesh serve` opens (exclusive with memory); createRelay() opens nothing and takes its Store as a component. @default ./data',
    file: true,
    env: 'AGENTMESH_DATA',
    flag: { flags: '--data <dir>', help: 'data directory for the SQLite database (default ./data; env AGENTMESH_DATA)' },
  }),
  memory: option({
    schema: Type.Boolean(),
    default: false,
    doc: '`agentmesh serve` keeps everything in a memory Store: nothing survives a restart (exclusive with dataDir); createRelay() takes its Store as a component. @default false',
    file: true,
    env: 'AGENTMESH_MEMORY',
    flag: { flags: '--memory', help: 'keep everything in memory: nothing survives a restart (env AGENTMESH_MEMORY=1)' },
  }),
  storeUrl: option({
    schema: Type.String({ pattern: '^postgres(ql)?://', maxLength: 2048 }),
    default: undefined,
    invalid: 'must be a postgres:// (or postgresql://) URL',
    doc: 'A PostgreSQL database (postgres://user:password@host:port/database) that `agentmesh serve` opens instead of the SQLite file (exclusive with memory); the data directory then keeps only the operator key and the signed audit heads. createRelay() takes its Store as a component. @default none: SQLite under dataDir',
    file: true,
    env: 'AGENTMESH_STORE',
    flag: { flags: '--store <url>', help: 'a PostgreSQL database postgres://… instead of SQLite under --data (env AGENTMESH_STORE)' },
  }),
  storePoolSize: option({
    schema: Type.Integer({ minimum: 1, maximum: MAX_STORE_POOL_SIZE }),
    default: DEFAULT_STORE_POOL_SIZE,
    doc: 'Connections the PostgreSQL store (storeUrl) opens at most, 1 to 1,000; every relay on one database opens its own (keep their sum under the server\'s max_connections). @default 10',
    file: true,
    env: 'AGENTMESH_STORE_POOL_SIZE',
    flag: { flags: '--store-pool-size <n>', help: 'connections the PostgreSQL store opens at most (default 10; env AGENTMESH_STORE_POOL_SIZE)', int: { min: 1, max: MAX_STORE_POOL_SIZE } },
  }),
  storeStatementTimeoutMs: option({
    schema: Type.Integer({ minimum: 1000, maximum: MAX_STORE_STATEMENT_TIMEOUT_MS }),
    default: DEFAULT_STORE_STATEMENT_TIMEOUT_MS,
    unit: 'ms',
    doc: 'How long one statement of the PostgreSQL store (storeUrl) may run before the server cancels it, in ms, 1 s to 1 h (the client gives up 5 s later). @default 30 s',
    file: true,
    env: 'AGENTMESH_STORE_STATEMENT_TIMEOUT_MS',
    flag: { flags: '--store-statement-timeout <sec>', help: 'seconds one PostgreSQL statement may run (default 30; env AGENTMESH_STORE_STATEMENT_TIMEOUT_MS in ms)', int: { min: 1, max: 3600, scale: 1000 } },
  }),
  storeTlsCa: tlsFileOption('the PostgreSQL store', 'CA the PostgreSQL server\'s certificate must chain to (TLS to PostgreSQL, verified)', 'AGENTMESH_STORE_TLS_CA', '--store-tls-ca <file>'),
  storeTlsCert: tlsFileOption('the PostgreSQL store', 'client certificate this relay presents to PostgreSQL (mutual TLS; with storeTlsKey)', 'AGENTMESH_STORE_TLS_CERT', '--store-tls-cert <file>'),
  storeTlsKey: tlsFileOption('the PostgreSQL store', 'key of storeTlsCert', 'AGENTMESH_STORE_TLS_KEY', '--store-tls-key <file>'),
  sync: option({
    schema: Type.Union([Type.Literal('normal'), Type.Literal('full')]),
    default: 'normal',
    doc: 'Durability of the SQLite Store `agentmesh serve` opens: normal survives a process crash, full also power loss. @default normal',
    file: true,
    env: 'AGENTMESH_SYNC',
    flag: { flags: '--sync <mode>', help: 'SQLite durability: normal survives a crash, full also power loss (default normal)' },
  }),
  backplane: option({
    schema: Type.String({ maxLength: 1024, pattern: '^nats://[^\\s,]+(,nats://[^\\s,]+)*$' }),
    default: undefined,
    invalid: 'must be a NATS address, nats://host:port (several separated by commas for a NATS cluster)',
    doc: 'The NATS server `agentmesh serve` joins to tell the other relays over the same Store what they must wake for (docs/architecture.md "The Backplane"); messages stay in the Store, so a bus that loses some delays them. createRelay() takes its Backplane as a component. @default none: a single relay',
    file: true,
    env: 'AGENTMESH_BACKPLANE',
    flag: { flags: '--backplane <url>', help: 'NATS server shared with the other relays over the same store, nats://host:4222 (env AGENTMESH_BACKPLANE)' },
  }),
  backplaneTlsCa: tlsFileOption('the NATS backplane', 'CA the NATS server\'s certificate must chain to (TLS to NATS, verified)', 'AGENTMESH_BACKPLANE_TLS_CA', '--backplane-tls-ca <file>'),
  backplaneTlsCert: tlsFileOption('the NATS backplane', 'client certificate this relay presents to NATS (mutual TLS; with backplaneTlsKey)', 'AGENTMESH_BACKPLANE_TLS_CERT', '--backplane-tls-cert <file>'),
  backplaneTlsKey: tlsFileOption('the NATS backplane', 'key of backplaneTlsCert', 'AGENTMESH_BACKPLANE_TLS_KEY', '--backplane-tls-key <file>'),
  backplaneCatchUpMs: positive('With a shared backplane, every connected agent\'s inbox and rooms are read from the Store again this often, in ms, so what a lost bus message held back is delivered (also at once when the bus reconnects). @default 30 s', DEFAULT_BACKPLANE_CATCH_UP_MS, 'AGENTMESH_BACKPLANE_CATCH_UP_MS'),
  clusterHeartbeatMs: positive('With a shared backplane, this node says it is alive on the bus this often, in ms. @default 5 s', DEFAULT_CLUSTER_HEARTBEAT_MS, 'AGENTMESH_CLUSTER_HEARTBEAT_MS'),
  clusterRateShareMs: positive('With a shared backplane, what callers spent of their rate limits on this node is told to the others this often, in ms, so each limit holds across the cluster (rate-share.ts). @default 250 ms', DEFAULT_CLUSTER_RATE_SHARE_MS, 'AGENTMESH_CLUSTER_RATE_SHARE_MS'),
  clusterPeerTimeoutMs: positive('With a shared backplane, a node not heard for this long (it died without a word) is dropped from this node\'s peers and its agents go offline here, in ms; more than clusterHeartbeatMs. @default 20 s', DEFAULT_CLUSTER_PEER_TIMEOUT_MS, 'AGENTMESH_CLUSTER_PEER_TIMEOUT_MS'),
  maxEnvelopeBytes: positive('Largest envelope accepted, in bytes. @default 1 MiB', constants.DEFAULT_MAX_ENVELOPE_BYTES, 'AGENTMESH_MAX_ENVELOPE_BYTES'),
  maxInFlight: positive('Sends one connection may have awaiting their ack. @default 1,024', constants.DEFAULT_MAX_IN_FLIGHT, 'AGENTMESH_MAX_IN_FLIGHT'),
  deliveryWindow: positive('Deliveries sent ahead of the receiver\'s cursor, per connection. @default 1,024', constants.DEFAULT_DELIVERY_WINDOW, 'AGENTMESH_DELIVERY_WINDOW'),
  maxConnectionsPerAgent: positive('Authenticated connections per agent. @default 8', constants.DEFAULT_MAX_CONNECTIONS_PER_AGENT, 'AGENTMESH_MAX_CONNECTIONS_PER_AGENT'),
  maxConnections: positive('Connections in total. @default 10,000', constants.DEFAULT_MAX_CONNECTIONS, 'AGENTMESH_MAX_CONNECTIONS'),
  heartbeatMs: positive('WebSocket ping interval in ms; a connection silent for a whole interval is closed. @default 30 s', constants.DEFAULT_HEARTBEAT_MS, 'AGENTMESH_HEARTBEAT_MS'),
  authTimeoutMs: positive('Time allowed to answer the challenge, in ms. @default 10 s', constants.DEFAULT_AUTH_TIMEOUT_MS, 'AGENTMESH_AUTH_TIMEOUT_MS'),
  retransmitMs: positive('Unacknowledged deliveries are sent again after this long, in ms. @default 15 s', constants.DEFAULT_RETRANSMIT_MS, 'AGENTMESH_RETRANSMIT_MS'),
  retentionMs: positive('How long undelivered messages and dedupe memory are kept, in ms. @default 30 days', constants.DEFAULT_RETENTION_MS, 'AGENTMESH_RETENTION_MS'),
  maxInbox: positive('Undelivered messages per inbox. @default 100,000', constants.DEFAULT_MAX_INBOX, 'AGENTMESH_MAX_INBOX'),
  sendBufferBytes: positive('Bytes queued for one connection (not yet read by it) past which its deliveries pause and its events are dropped, until it drains (docs/protocol.md §6). @default 4 MiB', DEFAULT_SEND_BUFFER_BYTES, 'AGENTMESH_SEND_BUFFER_BYTES'),
  sendBufferMaxBytes: positive('Bytes queued for one connection past which it is closed as a slow consumer (4008, AM_ERR_SLOW_CONSUMER); at least sendBufferBytes. @default 32 MiB', DEFAULT_SEND_BUFFER_MAX_BYTES, 'AGENTMESH_SEND_BUFFER_MAX_BYTES'),
  errorBurst: positive('Error answers one connection gets in a burst before they are rate-limited (refused frames past it get no answer). @default 100', DEFAULT_ERROR_BURST, 'AGENTMESH_ERROR_BURST'),
  errorsPerMinute: positive('Error answers per minute one connection gets after its burst. @default 600', DEFAULT_ERRORS_PER_MINUTE, 'AGENTMESH_ERRORS_PER_MINUTE'),
  errorFloodClose: positive('Error answers left out (rate-limited) after which the connection is closed (1008, AM_ERR_TOO_MANY_ERRORS). @default 1,000', DEFAULT_ERROR_FLOOD_CLOSE, 'AGENTMESH_ERROR_FLOOD_CLOSE'),
  maxClockSkewMs: positive('How far ahead of the relay\'s clock an envelope\'s ts may be, in ms (older ts are accepted). @default 10 minutes', DEFAULT_MAX_CLOCK_SKEW_MS, 'AGENTMESH_MAX_CLOCK_SKEW_MS'),
  presenceIntervalMs: positive('Presence changes are gathered and sent at most once per this interval, in ms (the latest status of each agent). @default 1 s', DEFAULT_PRESENCE_INTERVAL_MS, 'AGENTMESH_PRESENCE_INTERVAL_MS'),
  registryReadsPerMinute: positive('Registry reads (GET /registry/…, /.well-known/…) per minute per IP. @default 600', DEFAULT_REGISTRY_READS_PER_MINUTE, 'AGENTMESH_REGISTRY_READS_PER_MINUTE'),
  registryReadBurst: positive('Registry reads per IP in a burst. @default 200', DEFAULT_REGISTRY_READ_BURST, 'AGENTMESH_REGISTRY_READ_BURST'),
  verifySignatures: option({
    schema: Type.Boolean(),
    default: false,
    doc: 'Check every signed envelope\'s Ed25519 signature before storing it, to refuse a forged one early. Off by default: every envelope is already bound to its connection\'s authenticated AMID (AM_ERR_SENDER_MISMATCH) and receivers verify what they act on (docs/protocol.md §8). @default false',
    file: true,
    env: 'AGENTMESH_VERIFY_SIGNATURES',
    flag: {
      flags: '--verify-signatures',
      help: 'check each envelope\'s signature before storing it (off by default: receivers verify; env AGENTMESH_VERIFY_SIGNATURES=1)',
      negation: { flags: '--no-verify-signatures', help: 'store envelopes without checking their signature (the default)' },
    },
  }),
  trustRoots: {
    schema: Type.Unsafe<readonly string[]>(Type.Array(Type.String())),
    default: [] as string[],
    doc: 'Root CA certificates (PEM texts; one may hold several) that agents\' published certificate chains are verified against (docs/protocol.md §13.1). @default none: only self-signed (anonymous) certificates verify',
    file: false,
    env: 'AGENTMESH_TRUST_ROOTS',
    flag: { flags: '--trust-roots <file>', help: 'PEM file of root CA certificates that published agent certificates are verified against; without it only anonymous (self-signed) certificates count (env AGENTMESH_TRUST_ROOTS)' },
    load: loadTrustRoots,
    resolve: (v: unknown, bad: InvalidOption): string[] => {
      if (!Array.isArray(v)) throw bad('trustRoots', `must be a list of PEM texts, got ${typeof v}`)
      return checkTrustRoots(v as unknown[] as string[], (why) => bad('trustRoots', why))
    },
  },
  reputation: {
    schema: Type.Partial(Type.Object({
      anonymousWeight: Type.Number({ minimum: 0, maximum: 1 }),
      mutualDiscount: Type.Number({ minimum: 0, maximum: 1 }),
      flagDelta: Type.Number({ minimum: 0, maximum: 1 }),
      flagWindowMs: Type.Integer({ minimum: 1 }),
      maxFeedbackPerHour: Type.Integer({ minimum: 1, maximum: MAX_FEEDBACK_PER_HOUR_LIMIT }),
    })),
    default: { ...DEFAULT_REPUTATION } as ReputationOptions,
    doc: 'Reputation rules (docs/protocol.md §15); fields left out keep their defaults: anonymousWeight 0.5, mutualDiscount 0.8, flagDelta 0.2, flagWindowMs 24 h, maxFeedbackPerHour 60',
    file: true,
    resolve: (v: unknown, bad: InvalidOption): ReputationOptions => reputationOptions(v, bad),
  },
  apiKey: option({
    schema: Type.String({ minLength: 16, maxLength: 256, pattern: '^\\S+$' }),
    default: undefined,
    invalid: 'must be 16–256 characters without spaces',
    doc: 'The operator\'s API key (X-API-Key, docs/protocol.md §17.8), 16–256 characters. @default none: the operator API is off (createRelay() writes no file; `agentmesh serve` on a data directory makes one in <dataDir>/api-key, 0600, and passes it; with --memory it has none)',
    file: true,
    env: 'AGENTMESH_API_KEY',
    flag: { flags: '--api-key <key>', help: 'the operator API key (X-API-Key), 16+ characters; default: made once in <data>/api-key (none with --memory) (env AGENTMESH_API_KEY)' },
  }),
  historyRetentionMs: option({
    schema: Type.Integer({ minimum: 1 }),
    default: DEFAULT_HISTORY_RETENTION_MS,
    doc: 'Room history is kept this long, in ms (persistent stores); what a member reading the room by cursor has not acknowledged is kept for retentionMs (docs/protocol.md §6.1). @default 30 days',
    file: true,
    env: 'AGENTMESH_HISTORY_RETENTION_MS',
    flag: { flags: '--history-retention-days <days>', help: 'room history is kept this many days (default 30; env AGENTMESH_HISTORY_RETENTION_MS in ms)', int: { min: 1, max: 36_500, scale: DAY_MS } },
  }),
  historyMaxPerRoom: option({
    schema: Type.Integer({ minimum: 1 }),
    default: undefined,
    doc: 'Room history entries kept per room; more while a member reading the room by cursor has not acknowledged them, up to maxInbox (docs/protocol.md §6.1). @default 1,000 with memory, 1,000,000 persisted',
    file: true,
    env: 'AGENTMESH_HISTORY_MAX_PER_ROOM',
    flag: { flags: '--history-max-per-room <n>', help: 'room history entries kept per room (default 1,000 with --memory, 1,000,000 persisted)', int: { min: 1, max: 100_000_000 } },
  }),
  presenceIdleMs: option({
    schema: Type.Integer({ minimum: SCALAR_SETTINGS.presenceIdleMs.min }),
    unit: 'ms',
    default: undefined,
    doc: 'An online agent that sent nothing for this long shows as idle, in ms; wins over the stored runtime setting. @default 5 minutes',
    file: true,
    env: 'AGENTMESH_PRESENCE_IDLE_MS',
    flag: { flags: '--presence-idle <sec>', help: 'an agent that sent nothing this long shows as idle (default 300)', int: { min: 1, max: 7 * 86_400, scale: 1000 } },
  }),
  auditRetentionMs: option({
    schema: Type.Integer({ minimum: 1 }),
    default: DEFAULT_AUDIT_RETENTION_MS,
    doc: 'Audit rows are kept this long, in ms (checked every minute; docs/protocol.md §17.8). @default 90 days',
    file: true,
    env: 'AGENTMESH_AUDIT_RETENTION_MS',
    flag: { flags: '--audit-retention-days <days>', help: 'audit log rows are kept this many days (default 90; env AGENTMESH_AUDIT_RETENTION_MS in ms)', int: { min: 1, max: 36_500, scale: DAY_MS } },
  }),
  auditMaxRows: option({
    schema: Type.Integer({ minimum: 1 }),
    default: undefined,
    doc: 'Audit rows kept at most. @default 100,000 with memory, no count limit persisted',
    file: true,
    env: 'AGENTMESH_AUDIT_MAX_ROWS',
    flag: { flags: '--audit-max-rows <n>', help: 'audit log rows kept at most (default 100,000 with --memory, no count limit persisted)', int: { min: 1, max: 1_000_000_000 } },
  }),
  auditHeadEveryRows: option({
    schema: Type.Integer({ minimum: 1 }),
    default: 1000,
    doc: 'The relay signs the audit chain\'s head after this many new rows (and every auditHeadIntervalMs, at start and on shutdown; docs/protocol.md §17.8). @default 1000',
    file: true,
    env: 'AGENTMESH_AUDIT_HEAD_ROWS',
    flag: { flags: '--audit-head-rows <n>', help: 'sign the audit chain\'s head after this many new rows (default 1000)', int: { min: 1, max: 1_000_000_000 } },
  }),
  auditHeadIntervalMs: option({
    schema: Type.Integer({ minimum: 1000 }),
    default: 60_000,
    doc: 'The relay signs the audit chain\'s head at least this often while it grows, in ms. @default 60 s',
    file: true,
    env: 'AGENTMESH_AUDIT_HEAD_INTERVAL_MS',
    flag: { flags: '--audit-head-interval <sec>', help: 'sign the audit chain\'s head at least this often while it grows (default 60; env AGENTMESH_AUDIT_HEAD_INTERVAL_MS in ms)', int: { min: 1, max: 86_400, scale: 1000 } },
  }),
  // ---- OpenID Connect sign-in and verified owners (§28)
  publicUrl: option({
    schema: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://[^\\s]+$' }),
    default: undefined,
    invalid: 'must be an http:// or https:// URL',
    doc: 'The URL people and agents reach the relay at (behind a proxy: the proxy\'s); the OpenID Connect redirect URIs are made from it (<publicUrl>/api/v1/owner/callback, <publicUrl>/dashboard/api/oidc/callback). @default the listening URL (http://host:port, https:// with TLS)',
    file: true,
    env: 'AGENTMESH_PUBLIC_URL',
    flag: { flags: '--public-url <url>', help: 'the URL the relay is reached at, for OpenID Connect redirects (default: the listening URL; env AGENTMESH_PUBLIC_URL)' },
  }),
  oidcIssuer: option({
    schema: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://[^\\s]+$' }),
    default: undefined,
    invalid: 'must be an http:// or https:// URL (the provider\'s issuer)',
    doc: 'The OpenID Connect provider\'s issuer URL (docs/protocol.md §28): owners link an identity to their agents (the verified tier) and operators and wardens sign in to the console with it. Its discovery document is read at start; a provider that does not answer stops the start with one line. @default none: sign-in with a provider is off',
    file: true,
    env: 'AGENTMESH_OIDC_ISSUER',
    flag: { flags: '--oidc-issuer <url>', help: 'OpenID Connect provider (issuer URL) for owner links and console sign-in (env AGENTMESH_OIDC_ISSUER)' },
  }),
  oidcClientId: option({
    schema: Type.String({ minLength: 1, maxLength: 512, pattern: '^\\S+$' }),
    default: undefined,
    invalid: 'must be a non-empty string without spaces',
    doc: 'The relay\'s client id at the OpenID Connect provider (with oidcIssuer). @default none',
    file: true,
    env: 'AGENTMESH_OIDC_CLIENT_ID',
    flag: { flags: '--oidc-client-id <id>', help: 'the relay\'s client id at the OpenID Connect provider (env AGENTMESH_OIDC_CLIENT_ID)' },
  }),
  oidcClientSecret: option({
    schema: Type.String({ minLength: 1, maxLength: 1024 }),
    default: undefined,
    invalid: 'must be a non-empty string',
    doc: 'The relay\'s client secret at the OpenID Connect provider: from the environment only (AGENTMESH_OIDC_CLIENT_SECRET), never a flag or the config file, never logged. @default none: a public client (PKCE only)',
    file: false,
    env: 'AGENTMESH_OIDC_CLIENT_SECRET',
  }),
  oidcRoles: {
    schema: Type.Unsafe<OidcRoles>(Type.Object({})),
    default: { subjects: {}, groups: {} } as OidcRoles,
    doc: 'Who may sign in to the relay console with the provider, and as what: {"subjects": {"<sub>": "operator" | "warden"}, "groups": {"<group>": "operator" | "warden"}} (JSON; groups from the id token\'s `groups` claim; a subject\'s entry wins, then the strongest group). @default none: nobody signs in to the console with the provider',
    file: true,
    env: 'AGENTMESH_OIDC_ROLES',
    resolve: (v: unknown, bad: InvalidOption): OidcRoles => oidcRoles(v, bad),
  },
  // ---- operations: files (§18)
  fileMaxBytes: option({
    schema: Type.Integer({ minimum: 1, maximum: 64 * 1024 * MIB }),
    default: DEFAULT_FILE_MAX_BYTES,
    doc: 'The largest file the streamed upload takes (POST /api/v1/files), in bytes (docs/protocol.md §18). @default 100 MiB',
    file: true,
    env: 'AGENTMESH_FILE_MAX_BYTES',
    flag: { flags: '--file-max-mib <mib>', help: 'the largest file an agent may upload, streamed (default 100; env AGENTMESH_FILE_MAX_BYTES in bytes)', int: { min: 1, max: 64 * 1024, scale: MIB } },
  }),
  fileJsonMaxBytes: option({
    schema: Type.Integer({ minimum: 1, maximum: 256 * MIB }),
    default: DEFAULT_FILE_JSON_MAX_BYTES,
    doc: 'The largest file (decoded) the Base64 JSON upload takes (POST /api/files/upload), in bytes. @default 10 MiB',
    file: true,
    env: 'AGENTMESH_FILE_JSON_MAX_BYTES',
  }),
  fileQuotaBytes: option({
    schema: Type.Integer({ minimum: 1 }),
    default: DEFAULT_FILE_QUOTA_BYTES,
    doc: 'The bytes of files an agent may hold on the relay in total. @default 1 GiB',
    file: true,
    env: 'AGENTMESH_FILE_QUOTA_BYTES',
    flag: { flags: '--file-quota-mib <mib>', help: 'the bytes of files an agent may hold (default 1024; env AGENTMESH_FILE_QUOTA_BYTES in bytes)', int: { min: 1, max: 1024 * 1024 * 1024, scale: MIB } },
  }),
  fileMaxPerAgent: option({
    schema: Type.Integer({ minimum: 1 }),
    default: DEFAULT_FILE_MAX_PER_AGENT,
    doc: 'Files an agent may hold on the relay at most. @default 10,000',
    file: true,
    env: 'AGENTMESH_FILE_MAX_PER_AGENT',
  }),
  // ---- operations: system updates (§19)
  updateGraceMs: option({
    schema: Type.Integer({ minimum: 0, maximum: 366 * 86_400_000 }),
    default: DEFAULT_UPDATE_GRACE_MS,
    doc: 'How long after its creation a breaking update with a requiredVersion and neither enforceAt nor expiresAt starts refusing sends from agents below it (AM_ERR_UPDATE_REQUIRED), in ms; docs/protocol.md §19. @default 7 days',
    file: true,
    env: 'AGENTMESH_UPDATE_GRACE_MS',
    flag: { flags: '--update-grace <hours>', help: 'grace before a breaking update without a deadline refuses agents below its required version (default 168; env AGENTMESH_UPDATE_GRACE_MS in ms)', int: { min: 0, max: 8784, scale: 3_600_000 } },
  }),
  // ---- operations: agent health and metrics (§21)
  healthOfflineAfterMs: option({
    schema: Type.Integer({ minimum: 1000 }),
    default: 90_000,
    doc: 'A connected agent whose last heartbeat is older than this counts as offline (docs/protocol.md §21), in ms. @default 90 s',
    file: true,
    env: 'AGENTMESH_HEALTH_OFFLINE_AFTER_MS',
    flag: { flags: '--health-offline-after <sec>', help: 'an agent silent this long (no heartbeat) counts as offline (default 90; env AGENTMESH_HEALTH_OFFLINE_AFTER_MS in ms)', int: { min: 1, max: 86_400, scale: 1000 } },
  }),
  healthHistory: option({
    schema: Type.Integer({ minimum: 1, maximum: 10_000 }),
    default: 100,
    doc: 'Health changes kept per agent (docs/protocol.md §21), the oldest dropped first. @default 100',
    file: true,
    env: 'AGENTMESH_HEALTH_HISTORY',
  }),
  metricsToken: option({
    schema: Type.String({ minLength: 16, maxLength: 256, pattern: '^\\S+$' }),
    default: undefined,
    invalid: 'must be 16–256 characters without spaces',
    doc: 'A token a Prometheus scraper sends as "Authorization: Bearer <token>" to read GET /metrics (docs/protocol.md §21.5), 16–256 characters. @default none: /metrics is read with the operator\'s X-API-Key or a master agent\'s credentials',
    file: true,
    env: 'AGENTMESH_METRICS_TOKEN',
    flag: { flags: '--metrics-token <token>', help: 'a bearer token that may read GET /metrics, 16+ characters (env AGENTMESH_METRICS_TOKEN)' },
  }),
  // ---- operations: catastrophe events, backups, read-only mode (§20)
  readOnly: option({
    schema: Type.Boolean(),
    default: false,
    doc: 'Read-only mode (docs/protocol.md §20): reads, history and deliveries of what is stored work, every write (WebSocket sends, REST writes) is refused with AM_ERR_READ_ONLY. The relay enters it by itself when its store reports a damaged database. @default false',
    file: true,
    env: 'AGENTMESH_READ_ONLY',
    flag: { flags: '--read-only', help: 'serve reads and history, refuse every write with AM_ERR_READ_ONLY (env AGENTMESH_READ_ONLY=1)' },
  }),
  backupIntervalMs: option({
    schema: Type.Integer({ minimum: 0, maximum: 30 * DAY_MS }),
    default: DAY_MS,
    doc: 'Scheduled online backups of the database into <data>/backups/ (mode 0600) this often, in ms; 0: none. A store that keeps no file (memory) takes none. @default 24 h',
    file: true,
    env: 'AGENTMESH_BACKUP_INTERVAL_MS',
    flag: { flags: '--backup-interval <min>', help: 'take an online backup into <data>/backups/ this often, in minutes, 0: never (default 1440; env AGENTMESH_BACKUP_INTERVAL_MS in ms)', int: { min: 0, max: 43_200, scale: 60_000 } },
  }),
  backupKeep: option({
    schema: Type.Integer({ minimum: 1, maximum: 1000 }),
    default: 7,
    doc: 'Backups kept in <data>/backups/: the oldest beyond this count are deleted after each backup. @default 7',
    file: true,
    env: 'AGENTMESH_BACKUP_KEEP',
    flag: { flags: '--backup-keep <n>', help: 'backups kept in <data>/backups/ (default 7)', int: { min: 1, max: 1000 } },
  }),
  // ---- wake-ups: wake webhooks (§26)
  webhookAllowPrivate: option({
    schema: Type.Boolean(),
    default: false,
    doc: 'Let agents register wake webhooks (docs/protocol.md §26) on private, loopback, link-local and other non-public addresses, and over plain http://. Off, a URL whose host is or resolves to such an address is refused (AM_ERR_WEBHOOK_ADDRESS_REFUSED), at registration and again at each notice. For a relay inside a private network, and tests. @default false',
    file: true,
    env: 'AGENTMESH_WEBHOOK_ALLOW_PRIVATE',
    flag: { flags: '--webhook-allow-private', help: 'allow wake webhooks on private, loopback and link-local addresses and over http:// (env AGENTMESH_WEBHOOK_ALLOW_PRIVATE=1)' },
  }),
  webhookMinIntervalMs: option({
    schema: Type.Integer({ minimum: 0, maximum: DAY_MS }),
    default: 30_000,
    doc: 'Wake notices to one agent are at least this far apart, in ms: what arrives meanwhile is coalesced into the next notice (its pending count). @default 30 s',
    file: true,
    env: 'AGENTMESH_WEBHOOK_MIN_INTERVAL_MS',
  }),
  webhookRetries: option({
    schema: Type.Integer({ minimum: 0, maximum: 10 }),
    default: 5,
    doc: 'Attempts after the first when a wake webhook fails (a network error, a timeout of 5 s, a 5xx or 429 answer), with exponential backoff from 1 s (doubling, with jitter, at most 5 minutes). @default 5',
    file: true,
    env: 'AGENTMESH_WEBHOOK_RETRIES',
  }),
  // ---- bridges: A2A (§24)
  a2aTasksPerAgent: option({
    schema: Type.Integer({ minimum: 1, maximum: 1000 }),
    default: 16,
    doc: 'A2A tasks one agent may have running through the relay\'s A2A bridge at once, per node (docs/protocol.md §24.5); more is refused with AM_ERR_BRIDGE_BUSY. @default 16',
    file: true,
    env: 'AGENTMESH_A2A_TASKS_PER_AGENT',
  }),
  a2aOpenRequests: option({
    schema: Type.Integer({ minimum: 1, maximum: 100_000 }),
    default: 256,
    doc: 'A2A requests and streams open at once on this node (docs/protocol.md §24.5); more is refused with AM_ERR_BRIDGE_BUSY. @default 256',
    file: true,
    env: 'AGENTMESH_A2A_OPEN_REQUESTS',
  }),
  a2aStreamMs: option({
    schema: Type.Integer({ minimum: 1000, maximum: 86_400_000 }),
    default: 600_000,
    doc: 'Longest an A2A request or stream stays open, in ms (docs/protocol.md §24.5): a blocking SendMessage then answers the task as it stands, a stream ends; the task goes on. @default 10 min',
    file: true,
    env: 'AGENTMESH_A2A_STREAM_MS',
    flag: { flags: '--a2a-stream-timeout <sec>', help: 'seconds an A2A request or stream stays open at most (default 600; env AGENTMESH_A2A_STREAM_MS in ms)', int: { min: 1, max: 86_400, scale: 1000 } },
  }),
  // ---- direct links: the relay as a circuit relay and DHT bootstrap (§30.3)
  p2pListen: option({
    schema: MULTIADDR_LIST,
    default: undefined,
    invalid: 'must be one or more multiaddrs separated by commas, e.g. /ip4/0.0.0.0/tcp/4001',
    doc: 'Multiaddrs (comma-separated) the relay\'s libp2p node listens on: it then serves registered agents as a circuit relay (so two agents that cannot dial each other connect through it and try to hole-punch) and as their DHT bootstrap, and GET /api/v1/info lists its addresses (docs/protocol.md §30.3). Its identity is the relay key. @default none: off',
    file: true,
    env: 'AGENTMESH_P2P_LISTEN',
    flag: { flags: '--p2p-listen <multiaddrs>', help: 'serve registered agents as a libp2p circuit relay and DHT bootstrap on these multiaddrs, comma-separated (off by default; env AGENTMESH_P2P_LISTEN)' },
  }),
  p2pAnnounce: option({
    schema: MULTIADDR_LIST,
    default: undefined,
    invalid: 'must be one or more multiaddrs separated by commas, e.g. /dns4/relay.example/tcp/4001',
    doc: 'The multiaddrs (comma-separated) agents reach the relay\'s libp2p node at, when not those it listens on (behind a NAT or a proxy). @default the listening addresses',
    file: true,
    env: 'AGENTMESH_P2P_ANNOUNCE',
    flag: { flags: '--p2p-announce <multiaddrs>', help: 'the multiaddrs agents reach the relay\'s libp2p node at, comma-separated (default: the listening ones; env AGENTMESH_P2P_ANNOUNCE)' },
  }),
  p2pMaxReservations: option({
    schema: Type.Integer({ minimum: 1, maximum: 100_000 }),
    default: 128,
    doc: 'Circuit-relay reservations (agents listening through the relay) held at once. @default 128',
    file: true,
    env: 'AGENTMESH_P2P_MAX_RESERVATIONS',
    flag: { flags: '--p2p-max-reservations <n>', help: 'circuit-relay reservations held at once (default 128; env AGENTMESH_P2P_MAX_RESERVATIONS)', int: { min: 1, max: 100_000 } },
  }),
  p2pReservationTtlMs: option({
    schema: Type.Integer({ minimum: 10_000, maximum: 86_400_000 }),
    default: 3_600_000,
    doc: 'How long a circuit-relay reservation lasts before the agent must renew it, in ms. @default 1 h',
    file: true,
    env: 'AGENTMESH_P2P_RESERVATION_TTL_MS',
  }),
  p2pCircuitDurationMs: option({
    schema: Type.Integer({ minimum: 1000, maximum: 86_400_000 }),
    default: 120_000,
    doc: 'How long one relayed connection may stay open, in ms (long enough to hole-punch or to signal WebRTC; lasting traffic goes direct or through the relay\'s store-and-forward). @default 2 min',
    file: true,
    env: 'AGENTMESH_P2P_CIRCUIT_DURATION_MS',
  }),
  p2pCircuitDataBytes: option({
    schema: Type.Integer({ minimum: 1024, maximum: 1_073_741_824 }),
    default: 1_048_576,
    doc: 'Bytes one relayed connection may carry in each direction before the relay closes it. @default 1 MiB',
    file: true,
    env: 'AGENTMESH_P2P_CIRCUIT_DATA_BYTES',
  }),
  p2pMaxConnections: option({
    schema: Type.Integer({ minimum: 1, maximum: 100_000 }),
    default: 512,
    doc: 'Open connections of the relay\'s libp2p node (agents holding a reservation, dialling through it, asking the DHT). @default 512',
    file: true,
    env: 'AGENTMESH_P2P_MAX_CONNECTIONS',
  }),
  rateLimits: {
    schema: Type.Partial(Type.Object({ api: rateLimitSchema, ip: rateLimitSchema, chat: rateLimitSchema, chatIp: rateLimitSchema })),
    default: {} as Partial<Record<RateLimitName, Partial<RateLimit>>>,
    doc: 'Rate limits (token buckets, per minute with a burst), docs/protocol.md §17.8; win over the stored runtime settings: REST per agent 120/60, per IP 600/200; chat events per agent 600/120, per IP 1,200/240',
    file: true,
    resolve: resolveRateLimits,
  },
} as const satisfies Record<string, OptionSpec>

type Options = typeof RELAY_OPTIONS
export type RelayOptionName = keyof Options
type InOf<T> = T extends OptionSpec<infer S, unknown> ? Static<S> : never
type OutOf<T> = T extends OptionSpec<TSchema, infer O> ? O : never

/** Every option a user may give, flat (what a config file, the environment and flags each hold). */
export type RelayConfig = { [K in RelayOptionName]?: InOf<Options[K]> }

/**
 * User options of a relay: every option is optional and has a default (see RELAY_OPTIONS).
 * `memory` and `dataDir` are exclusive (checked by relayOptions); `storageOf` answers the one chosen.
 * They and `sync` are what `agentmesh serve` opens a Store by; `createRelay()` reads none of them.
 */
export type RelayInit = RelayConfig & {
  /**
   * Not read by the relay: `createRelay(init, { store })` takes its Store as a component (and
   * opens none itself); `agentmesh serve` and the test harness drop this field.
   */
  store?: Store
  /** @default a pino logger at 'info' on stderr */
  logger?: Logger
}

/** The options resolved: every default filled in, every value checked. */
export type RelayOptions = { [K in RelayOptionName]: OutOf<Options[K]> }

/**
 * Where the relay keeps its data, as one of its exclusive modes: in memory (nothing survives a
 * restart), SQLite in a data directory with its durability, or a PostgreSQL database (`storeUrl`).
 * What `agentmesh serve` opens.
 */
export type Storage =
  | { type: 'memory' }
  | { type: 'sqlite', dataDir: string, sync: RelayOptions['sync'] }
  /** PostgreSQL at `url`; `dataDir` keeps the operator key and the signed audit heads */
  | { type: 'postgres', url: string, dataDir: string }

export function storageOf (o: Pick<RelayOptions, 'memory' | 'dataDir' | 'sync'> & Partial<Pick<RelayOptions, 'storeUrl'>>): Storage {
  if (o.memory) return { type: 'memory' }
  if (o.storeUrl !== undefined) return { type: 'postgres', url: o.storeUrl, dataDir: o.dataDir }
  return { type: 'sqlite', dataDir: o.dataDir, sync: o.sync }
}

const entries = Object.entries(RELAY_OPTIONS) as Array<[RelayOptionName, OptionSpec]>

/** The options with their specs, in order: what the CLI builds its flags, environment and config-file keys from. */
export function relayOptionSpecs (): ReadonlyArray<readonly [RelayOptionName, OptionSpec]> {
  return entries
}

export function defaultOptions (): RelayOptions {
  // a copy of each default: changing what one call answers does not change the next
  return Object.fromEntries(entries.map(([k, spec]) => [k, structuredClone(spec.default)])) as RelayOptions
}

/** The values of a union of literals, e.g. `sync`'s "normal" and "full"; undefined for other schemas. */
export function literalsOf (schema: TSchema): unknown[] | undefined {
  if (schema[Kind] !== 'Union') return undefined
  const arms = (schema as TSchema & { anyOf: TSchema[] }).anyOf
  return arms.every(a => a[Kind] === 'Literal') ? arms.map(a => (a as TSchema & { const: unknown }).const) : undefined
}

/** The JSON type an option's value has (what a config file must hold, how an environment variable is read). */
export function jsonTypeOf (spec: OptionSpec): 'string' | 'number' | 'boolean' | 'object' {
  switch (spec.schema[Kind]) {
    case 'Integer': case 'Number': return 'number'
    case 'Boolean': return 'boolean'
    case 'Object': case 'Array': return 'object'
    default: return 'string'
  }
}

/** Checks a value against an option's schema, with the sentence every message names the field in. */
function checked (name: string, spec: OptionSpec, v: unknown, bad: InvalidOption): unknown {
  const s = spec.schema
  switch (s[Kind]) {
    case 'Integer': {
      const min = (s as { minimum?: number }).minimum ?? 1
      const max = (s as { maximum?: number }).maximum
      const floor = Math.min(min, 1)
      if (typeof v !== 'number' || !Number.isInteger(v) || v < floor) throw bad(name, `must be a ${floor === 0 ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`)
      if (v < min) throw bad(name, `must be at least ${min}${spec.unit === undefined ? '' : ` (${spec.unit})`}`)
      if (max !== undefined && v > max) throw bad(name, `must be at most ${max}, got ${v}`)
      return v
    }
    case 'Boolean':
      // a string such as "false" from a config source must not silently mean the opposite
      if (typeof v !== 'boolean') throw bad(name, `must be true or false, got ${JSON.stringify(v)}`)
      return v
    case 'String':
      if (!Value.Check(s, v)) throw bad(name, spec.invalid ?? 'must be a string')
      return v
    default: {
      const literals = literalsOf(s)
      if (literals !== undefined && !literals.includes(v)) throw bad(name, `must be ${literals.map(l => JSON.stringify(l)).join(' or ')}, got ${JSON.stringify(v)}`)
      return v
    }
  }
}

function resolveRateLimits (v: unknown, bad: InvalidOption): Partial<Record<RateLimitName, Partial<RateLimit>>> {
  if (typeof v !== 'object' || v === null) throw bad('rateLimits', 'must be an object')
  const out: Partial<Record<RateLimitName, Partial<RateLimit>>> = {}
  for (const [name, lim] of Object.entries(v)) {
    if (!(RATE_LIMIT_NAMES as string[]).includes(name)) throw bad(`rateLimits.${name}`, `is not a limit (${RATE_LIMIT_NAMES.join(', ')})`)
    if (typeof lim !== 'object' || lim === null) throw bad(`rateLimits.${name}`, 'must be an object { perMinute, burst }')
    const one: Partial<RateLimit> = {}
    for (const [f, n] of Object.entries(lim)) {
      if (f !== 'perMinute' && f !== 'burst') throw bad(`rateLimits.${name}.${f}`, 'is not a field (perMinute, burst)')
      if (typeof n !== 'number' || !Number.isInteger(n) || n < RATE_LIMIT_MIN || n > RATE_LIMIT_MAX) throw bad(`rateLimits.${name}.${f}`, `must be a whole number from 1 to 1,000,000, got ${JSON.stringify(n)}`)
      one[f] = n
    }
    out[name as RateLimitName] = one
  }
  return out
}

/** Merges user options over the defaults and validates them, before any I/O. */
export function relayOptions (init: RelayInit = {}): RelayOptions {
  const o = defaultOptions() as Record<RelayOptionName, unknown>
  const bad: InvalidOption = (field, why) => new AgentMeshError(ErrorCode.InvalidConfig, `relay option ${field} ${why}`)
  const given = init as Record<string, unknown>
  for (const [k, spec] of entries) {
    const v = given[k]
    if (v === undefined) continue
    o[k] = spec.resolve !== undefined ? spec.resolve(v, bad) : checked(k, spec, v, bad)
  }
  if (init.memory === true && init.dataDir !== undefined) throw bad('memory', 'and dataDir are mutually exclusive')
  if (init.memory === true && init.storeUrl !== undefined) throw bad('memory', 'and storeUrl are mutually exclusive')
  const resolved = o as RelayOptions
  if ((resolved.tlsCert === undefined) !== (resolved.tlsKey === undefined)) throw bad(resolved.tlsCert === undefined ? 'tlsKey' : 'tlsCert', `is given without ${resolved.tlsCert === undefined ? 'tlsCert (--tls-cert)' : 'tlsKey (--tls-key)'}: TLS needs both`)
  if (resolved.tlsCert === undefined && !resolved.insecure && !isLoopbackHost(resolved.host)) {
    throw bad('host', `is ${resolved.host}, not loopback, and the relay would serve plain ws://: give --tls-cert and --tls-key, or --insecure when a proxy in front terminates TLS`)
  }
  if ((resolved.oidcIssuer === undefined) !== (resolved.oidcClientId === undefined)) throw bad(resolved.oidcIssuer === undefined ? 'oidcClientId' : 'oidcIssuer', `is given without ${resolved.oidcIssuer === undefined ? 'oidcIssuer (--oidc-issuer)' : 'oidcClientId (--oidc-client-id)'}: OpenID Connect needs both`)
  if (resolved.clusterPeerTimeoutMs <= resolved.clusterHeartbeatMs) throw bad('clusterPeerTimeoutMs', `must be more than clusterHeartbeatMs (${resolved.clusterHeartbeatMs}), got ${resolved.clusterPeerTimeoutMs}`)
  if (resolved.sendBufferMaxBytes < resolved.sendBufferBytes) throw bad('sendBufferMaxBytes', `must be at least sendBufferBytes (${resolved.sendBufferBytes}), got ${resolved.sendBufferMaxBytes}`)
  return o as RelayOptions
}
