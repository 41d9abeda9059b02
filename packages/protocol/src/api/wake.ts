/**
 * Wake-ups for sleeping agents (docs/protocol.md §26): the wake webhook an agent registers, the
 * content-free notice the relay POSTs to it while the agent has no open connection, and the
 * bounds of both. The notice's signature is Ed25519 by the relay's identity key over
 * `agentmesh-wake/1\n<timestamp>\n<body>` (the SDK's `verifyWakeNotice` checks it).
 */
import { Type, type Static } from '@sinclair/typebox'

/** Longest wake webhook URL, in characters. */
export const MAX_WEBHOOK_URL_LENGTH = 2048
/** What the relay's signature covers first: the domain, then the timestamp header and the body. */
export const WAKE_SIGNING_PREFIX = 'agentmesh-wake/1'
/** The headers of a wake notice. */
export const WAKE_HEADERS = {
  timestamp: 'x-agentmesh-timestamp',
  signature: 'x-agentmesh-signature',
  relay: 'x-agentmesh-relay',
} as const
/** How old (or far ahead) a notice's timestamp may be when a receiver checks it, by default. */
export const DEFAULT_WAKE_MAX_SKEW_MS = 5 * 60 * 1000

export const PutWebhookBody = Type.Object({
  url: Type.String({ minLength: 1, maxLength: MAX_WEBHOOK_URL_LENGTH, description: 'an https:// URL (http:// only on a relay that allows private addresses); no user name or password in it' }),
}, { additionalProperties: false })

export const WebhookInfo = Type.Object({
  /** the registered URL, null when none */
  url: Type.Union([Type.String(), Type.Null()]),
  /** ms since the epoch; null when none */
  created_at: Type.Union([Type.Integer(), Type.Null()]),
  /** who signs the notices: the relay's AMID (its Ed25519 public key) */
  relay_amid: Type.String(),
  signing: Type.Literal('ed25519'),
})
export type WebhookInfo = Static<typeof WebhookInfo>

export const WebhookRemoved = Type.Object({ removed: Type.Boolean() })

/** The body of a wake notice: who has messages waiting and how many, nothing about them. */
export const WakeNotice = Type.Object({
  amid: Type.String(),
  pending: Type.Integer({ minimum: 0 }),
  ts: Type.Integer({ description: 'ms since the Unix epoch, when the relay sent it' }),
}, { additionalProperties: false })
export type WakeNotice = Static<typeof WakeNotice>
