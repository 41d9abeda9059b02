/**
 * Catastrophe events and recovery (docs/protocol.md §20): the bounds, the event record, the REST
 * bodies and answers, in the plan's camelCase names (the same schemas on /api/v1/catastrophe… and
 * the plan's /api/catastrophe…).
 */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { AMID_PATTERN } from '../schemas.ts'
import { DEFAULT_PAGE, MAX_PAGE } from './constants.ts'

export const CATASTROPHE_TYPES = ['server_down', 'db_corruption', 'network_partition', 'api_crash'] as const
export type CatastropheType = typeof CATASTROPHE_TYPES[number]
export const CATASTROPHE_SEVERITIES = ['critical', 'major', 'minor'] as const
export type CatastropheSeverity = typeof CATASTROPHE_SEVERITIES[number]
/** reported → recovering → resolved (reported → resolved too); a resolved event is final. */
export const CATASTROPHE_STATUSES = ['reported', 'recovering', 'resolved'] as const
export type CatastropheStatus = typeof CATASTROPHE_STATUSES[number]
/** The four recovery protocols' ids (GET /api/v1/catastrophe/protocols). */
export const RECOVERY_PROTOCOL_IDS = ['server-crash', 'database-corruption', 'network-partition', 'breaking-update'] as const
export type RecoveryProtocolId = typeof RECOVERY_PROTOCOL_IDS[number]

/** §20: at most this many AMIDs in an event's `affectedAgents` (more: name none, and it goes to all). */
export const MAX_AFFECTED_AGENTS = 1000
/** §20: a title's length, in characters. */
export const MAX_CATASTROPHE_TITLE = 200
/** §20: a description's, a recovery protocol's or resolution notes' length, in characters. */
export const MAX_CATASTROPHE_TEXT = 8000

type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> }
function OneOf<const T extends readonly string[]> (values: T, options: { description?: string } = {}): TUnion<Literals<T>> {
  return Type.Union(values.map(v => Type.Literal(v)), options) as unknown as TUnion<Literals<T>>
}
const Amid = Type.String({ pattern: AMID_PATTERN, description: 'agent id (AMID)' })
const Affected = Type.Union([
  Type.Literal('all'),
  Type.Array(Amid, { minItems: 1, maxItems: MAX_AFFECTED_AGENTS, uniqueItems: true }),
], { description: `"all" (every agent), or at most ${MAX_AFFECTED_AGENTS} AMIDs` })

export const CatastropheEvent = Type.Object({
  eventId: Type.String({ description: 'a UUID v7' }),
  eventType: OneOf(CATASTROPHE_TYPES),
  severity: OneOf(CATASTROPHE_SEVERITIES),
  title: Type.String(),
  description: Type.String(),
  recoveryProtocol: Type.String({ description: 'a protocol id (GET …/catastrophe/protocols) or free text' }),
  affectedAgents: Affected,
  status: OneOf(CATASTROPHE_STATUSES),
  reportedBy: Type.String({ description: 'an AMID, "operator" or "relay" (the relay reports what it detects itself)' }),
  reportedAt: Type.Integer({ description: 'ms since the Unix epoch' }),
  recoveringAt: Type.Optional(Type.Integer()),
  resolvedAt: Type.Optional(Type.Integer()),
  resolutionNotes: Type.Optional(Type.String()),
}, { additionalProperties: false, $id: 'CatastropheEvent' })
export type CatastropheEvent = Static<typeof CatastropheEvent>

export const ReportCatastropheBody = Type.Object({
  eventType: OneOf(CATASTROPHE_TYPES),
  severity: OneOf(CATASTROPHE_SEVERITIES),
  title: Type.String({ minLength: 1, maxLength: MAX_CATASTROPHE_TITLE }),
  description: Type.Optional(Type.String({ maxLength: MAX_CATASTROPHE_TEXT, default: '' })),
  recoveryProtocol: Type.Optional(Type.String({ maxLength: MAX_CATASTROPHE_TEXT, description: 'default: the protocol for the eventType' })),
  affectedAgents: Type.Optional(Affected),
  agentId: Type.Optional(Type.String({ description: 'the reporter: must be the caller (a master may name any)' })),
}, { additionalProperties: false })
export type ReportCatastropheBody = Static<typeof ReportCatastropheBody>

export const CatastropheReported = Type.Object({
  eventId: Type.String(),
  broadcast: Type.Literal(true),
  event: CatastropheEvent,
}, { additionalProperties: false })

export const CatastropheParams = Type.Object({ id: Type.String({ description: 'event id' }) })
export const CatastropheQuery = Type.Object({
  status: Type.Optional(OneOf(CATASTROPHE_STATUSES)),
  severity: Type.Optional(OneOf(CATASTROPHE_SEVERITIES)),
  before: Type.Optional(Type.String({ description: 'an event id: events reported before it' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE })),
})
export const CatastropheList = Type.Object({
  events: Type.Array(CatastropheEvent),
  nextBefore: Type.Optional(Type.String({ description: 'present when the page is full' })),
}, { additionalProperties: false })
export const CatastropheNotesBody = Type.Object({
  notes: Type.Optional(Type.String({ maxLength: MAX_CATASTROPHE_TEXT })),
  resolutionNotes: Type.Optional(Type.String({ maxLength: MAX_CATASTROPHE_TEXT, description: 'the same as notes (the plan\'s name)' })),
}, { additionalProperties: false })
export const CatastropheAnswer = Type.Object({ event: CatastropheEvent }, { additionalProperties: false })

export const RecoveryStep = Type.Object({
  order: Type.Integer({ minimum: 1 }),
  action: Type.String(),
  who: OneOf(['relay', 'operator', 'agent', 'sdk', 'supervisor']),
  command: Type.Optional(Type.String({ description: 'the command that carries the step out' })),
}, { additionalProperties: false })
export const RecoveryProtocol = Type.Object({
  id: OneOf(RECOVERY_PROTOCOL_IDS),
  title: Type.String(),
  eventTypes: Type.Array(OneOf(CATASTROPHE_TYPES)),
  steps: Type.Array(RecoveryStep),
}, { additionalProperties: false, $id: 'RecoveryProtocol' })
export type RecoveryProtocol = Static<typeof RecoveryProtocol>
export const RecoveryProtocolList = Type.Object({ protocols: Type.Array(RecoveryProtocol) }, { additionalProperties: false })

export const BackupTaken = Type.Object({
  file: Type.String({ description: 'where the relay wrote it (under <data>/backups/, mode 0600)' }),
  bytes: Type.Integer(),
  at: Type.Integer(),
  kept: Type.Integer({ description: 'backups kept in that directory after the oldest past the retention count went' }),
}, { additionalProperties: false })

export const CheckBody = Type.Object({
  full: Type.Optional(Type.Boolean({ description: 'PRAGMA integrity_check (every index against its table) instead of quick_check', default: false })),
}, { additionalProperties: false })
export const CheckResult = Type.Object({
  ok: Type.Boolean({ description: 'both checks passed' }),
  integrity: Type.Object({
    ok: Type.Boolean(),
    found: Type.String({ description: '"ok", or the first problems SQLite found ("not applicable" for a store without a file)' }),
  }, { additionalProperties: false }),
  audit: Type.Object({
    ok: Type.Boolean(),
    rows: Type.Integer(),
    seq: Type.Optional(Type.Integer({ description: 'the first bad row' })),
    reason: Type.Optional(Type.String()),
  }, { additionalProperties: false }),
  eventId: Type.Optional(Type.String({ description: 'the db_corruption event the relay reported when a check failed' })),
  readOnly: Type.Boolean({ description: 'whether the relay is in read-only mode now' }),
}, { additionalProperties: false })
export type CheckResult = Static<typeof CheckResult>
