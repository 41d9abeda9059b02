/**
 * Swarm mode's bounds and defaults (docs/swarm.md, "Bounds"). Every bound the swarm core applies
 * is here, with its default; a node may lower or raise it through the options that name it.
 */

/** The version a swarm message carries in `v`. */
export const SWARM_MESSAGE_VERSION = 1
/** Domain separation: the signature covers this prefix followed by the RFC 8785 JSON of every field but `sig`. */
export const SWARM_SIGNING_PREFIX = 'agentmesh/swarm\n'
/** Domain separation for the content id: SHA-256 over this prefix and the RFC 8785 JSON of every field but `id` and `sig`. */
export const SWARM_ID_PREFIX = 'agentmesh/swarm-id\n'

/** Largest encoded swarm message a node accepts (bytes of its JSON), 64 KiB by default. */
export const DEFAULT_MAX_SWARM_MESSAGE_BYTES = 64 * 1024
/** Longest topic name (characters). */
export const MAX_SWARM_TOPIC_LENGTH = 128
/** Deepest nesting of arrays and objects in a body. */
export const MAX_SWARM_BODY_DEPTH = 32

/** Per-author token bucket: sustained messages per second an author may publish into a topic. */
export const DEFAULT_AUTHOR_RATE_PER_S = 20
/** Per-author token bucket: the burst an author may publish at once. */
export const DEFAULT_AUTHOR_BURST = 100
/** How far past the highest sequence number seen from an author a new message may be. */
export const DEFAULT_MAX_SEQ_AHEAD = 1024
/** How many sequence numbers below an author's highest a validator remembers (older ones are ignored as stale). */
export const DEFAULT_SEQ_WINDOW = 4096
/** How many authors a validator tracks at once (the least recently seen is forgotten first). */
export const DEFAULT_MAX_TRACKED_AUTHORS = 10_000
/** How many verdicts a memoising verifier keeps. */
export const DEFAULT_VERIFY_CACHE = 100_000

/** A store keeps at most this many messages for reconciliation (the oldest go first). */
export const DEFAULT_STORE_MAX_MESSAGES = 10_000
/** A store keeps at most this many bytes of messages for reconciliation (64 MiB). */
export const DEFAULT_STORE_MAX_BYTES = 64 * 1024 * 1024
/** A store keeps a message for reconciliation this long after it arrived (10 minutes). */
export const DEFAULT_RETENTION_MS = 10 * 60 * 1000
/** Most sequence ranges a summary lists per author (more gaps than this: the lowest ranges are merged away, see reconcile.ts). */
export const MAX_SUMMARY_RANGES_PER_AUTHOR = 256
/** Most authors a summary lists. */
export const MAX_SUMMARY_AUTHORS = 4096
/** Most messages one reconciliation answer carries. */
export const DEFAULT_MAX_RECONCILE_MESSAGES = 1024
