/** Protocol identifier carried in every challenge, auth frame and envelope (docs/protocol.md §1). */
export const PROTOCOL = 'agentmesh/0.2'
/** Major version: envelopes and auth frames of another major are refused (§1: a newer minor MUST be accepted). */
export const PROTOCOL_MAJOR = 0
export const PROTOCOL_MINOR = 2
/**
 * Version of an end-to-end encrypted direct message (type `e2ee`) without an Ed25519 signature
 * (§4, §14.3): its header is bound into the Double Ratchet's associated data instead, so the
 * decryption authenticates the sender and the header. Every other envelope is `PROTOCOL`, signed.
 */
export const PROTOCOL_E2EE = 'agentmesh/0.3'
/** Envelope types that go unsigned from `PROTOCOL_E2EE` on: pairwise encrypted direct messages only (§14.3). */
export const UNSIGNED_ENVELOPE_TYPES: ReadonlySet<string> = new Set(['e2ee'])

/** Largest envelope (its JSON text, in UTF-8 bytes) a relay accepts by default (§4). */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024
/** Frames may carry a little more than the envelope; beyond this the socket is closed with 1009 (§2). */
export const FRAME_OVERHEAD_BYTES = 4 * 1024
/** Sends a connection may have waiting for their ack (§5). */
export const DEFAULT_MAX_IN_FLIGHT = 1024
/** Deliveries a relay sends ahead of the receiver's cursor on one connection (§6). */
export const DEFAULT_DELIVERY_WINDOW = 1024
/** Simultaneous authenticated connections per agent (§3). */
export const DEFAULT_MAX_CONNECTIONS_PER_AGENT = 8
/** Simultaneous connections the relay accepts in total. */
export const DEFAULT_MAX_CONNECTIONS = 10_000
/** Interval of the relay's WebSocket pings; a connection that misses one whole interval is closed (§7). */
export const DEFAULT_HEARTBEAT_MS = 30_000
/** A connection MUST authenticate within this time (§3). */
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000
/** Unacknowledged deliveries are sent again after this long without cursor progress (§6). */
export const DEFAULT_RETRANSMIT_MS = 15_000
/** Undelivered messages, and the dedupe memory of every envelope id, are kept this long (§5). */
export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
/** Undelivered messages one inbox may hold; past it sends are refused with AM_ERR_INBOX_FULL (§5). */
export const DEFAULT_MAX_INBOX = 100_000
/** Default TCP port of a relay. */
export const DEFAULT_PORT = 7777
export const DEFAULT_HOST = '127.0.0.1'

/** Domain-separation prefixes of everything an agent signs (§8). */
export const AUTH_SIGNING_PREFIX = 'agentmesh/auth\n'
export const ENVELOPE_SIGNING_PREFIX = 'agentmesh/envelope\n'

/**
 * Envelope types only the relay posts, from its own AMID (§17.7): task requests, updates and
 * cancellations, notices. An agent-signed envelope of one of these types (or of a type in a
 * reserved namespace, `isRelayType`) is refused with AM_ERR_RESERVED_TYPE over WebSocket and REST;
 * the SDK trusts these types only when the relay signed them.
 */
export const RELAY_TYPES: ReadonlySet<string> = new Set(['task.request', 'task.update', 'task.cancel', 'notice'])
/** Type namespaces kept for the relay's present and future system types (`task.*`, `relay.*`, `system.*`). */
export const RELAY_TYPE_PREFIXES: readonly string[] = ['task.', 'relay.', 'system.']

/** True when `type` is one only the relay may post (`RELAY_TYPES` or a reserved namespace). */
export function isRelayType (type: string): boolean {
  return RELAY_TYPES.has(type) || RELAY_TYPE_PREFIXES.some(p => type.startsWith(p))
}
