/**
 * The route table of the relay's REST API: one entry per route (method, path, operationId, summary,
 * tags, security, and the schemas of its path parameters, query, body and answers by status). The
 * relay validates with it (server api-v1.ts), the OpenAPI document is generated from it (openapi.ts),
 * and clients type their calls with it (`ApiAnswer<'getRoom'>`).
 *
 * Summaries may name a relay default as `{{name}}`: the relay fills in its own values when it
 * generates the document (a document with a name left unfilled is refused), so the numbers are
 * kept where they are set, not restated here.
 */
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { ErrorCode as E } from '../errors.ts'
import {
  DEFAULT_ROLE, MAX_API_BODY_BYTES, MAX_PAGE, MAX_PQ_PREKEYS_PER_AGENT, MAX_PQ_PREKEYS_PER_UPLOAD, MAX_PREKEYS_PER_AGENT, MAX_PREKEYS_PER_UPLOAD, MAX_PRESENCE_ROWS,
  MAX_TASK_RESULT_BYTES, RESERVED_HANDLES,
} from './constants.ts'
import * as S from './schemas.ts'
import * as H from './health.ts'
import * as K from './catastrophe.ts'
import * as W from './wake.ts'
import * as A from './a2a.ts'

export type HttpMethod = 'get' | 'put' | 'post' | 'patch' | 'delete'
/** One security requirement: the scheme names of openapi.ts's securitySchemes. */
export type Security = Partial<Record<'bearerAuth' | 'agentSignature' | 'apiKey', []>>

export interface ApiHeader { schema: TSchema, description?: string }
export interface ApiResponse {
  description: string
  /** the JSON body; none for 101 */
  schema?: TSchema
  /** the body's media type; application/json when left out */
  contentType?: string
  headers?: Record<string, ApiHeader>
}

export interface ApiRoute {
  method: HttpMethod
  /** OpenAPI path template: `/api/v1/rooms/{id}` */
  path: string
  summary: string
  tags: readonly string[]
  /** who may call it; left out: anyone, unsigned */
  security?: readonly Security[]
  params?: TObject
  query?: TObject
  body?: TSchema
  /** the body may be left out (it is required when `body` is given, unless this says so) */
  bodyOptional?: boolean
  /** the body's media type; application/json when left out */
  bodyType?: string
  /** the answers by HTTP status */
  responses: { readonly [status: number]: ApiResponse | undefined }
}

const bodyKiB = `${MAX_API_BODY_BYTES / 1024} KiB`
const ok = <T extends TSchema>(description: string, schema: T) => ({ description, schema })
const err = (description: string) => ({ description, schema: S.ErrorBody })
const retryAfter = { 'Retry-After': { schema: Type.Integer({ minimum: 1 }), description: 'seconds until the request may succeed' } }

// ---------------------------------------------------------------- registry (§13)

const signed: readonly Security[] = [{ agentSignature: [] }]
const notAmid = err(`not an AMID (${E.InvalidArgument})`)
const unsigned = err('unsigned, badly signed, stale or replayed request')
const tooBig = err(`body over 64 KiB (${E.BodyTooLarge})`)
const certErrors = `${E.CertInvalid} (unreadable, not one certificate per entry, wrong role), ${E.CertChainBroken} (a link does not lead to the next, or no trusted root), ${E.CertExpired}, ${E.CertRevoked} (listed in a CRL the relay holds); the message names the link`

// ---------------------------------------------------------------- chat REST API v1 (§17)

/** Any principal: an agent's bearer token or signed request, or the operator's key (role master). */
const anyPrincipal: readonly Security[] = [{ bearerAuth: [] }, { agentSignature: [] }, { apiKey: [] }]
/** Done by an agent for itself: the operator's key is refused (403). */
const agentOnly: readonly Security[] = [{ bearerAuth: [] }, { agentSignature: [] }]
const operatorRefused = `the operator's X-API-Key: this is done by an agent for itself (${E.Forbidden})`
const rateLimitText = `more than the REST rate limits allow (${E.RateLimited}): per IP (rate_limits.ip_per_minute / ip_burst, default {{ip_per_minute}} a minute, bursts of {{ip_burst}}) and per agent or operator key (rate_limits.api_per_minute / api_burst, default {{api_per_minute}} a minute, bursts of {{api_burst}}); wait Retry-After seconds`
/** Registry reads (profiles, search, prekeys, certificates, CRLs) are limited per IP. */
const registryTooMany: ApiResponse = { ...err(`more registry reads from this IP than the relay allows (${E.RateLimited}): relay options registryReadsPerMinute / registryReadBurst, default 600 a minute, bursts of 200; wait Retry-After seconds`), headers: retryAfter }
const tooMany = (extra?: string): ApiResponse => ({ ...err(extra === undefined ? rateLimitText : `${rateLimitText}; ${extra}`), headers: retryAfter })
const authErrors = {
  400: `an Authorization header that is not "Bearer <token>", malformed X-AgentMesh-* headers (${E.InvalidArgument}), or a body that is not JSON (${E.BadJson})`,
  401: `no credentials (${E.NotAuthenticated}); an invalid or expired bearer token, an X-API-Key that is not the operator's (or the relay has none), a bad or stale request signature (${E.AuthFailed}); a signed request replayed (${E.AuthReplayed})`,
  403: `the token's or signature's agent is not registered on this relay (${E.Forbidden})`,
}

type ErrorResponses = Partial<Record<400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503, ApiResponse>>

/**
 * The answers of an authenticated v1 operation: its success answers, its own errors (by status),
 * and the errors of authentication and rate limiting every one of them can answer.
 */
function v1<const O extends Record<number, ApiResponse>> (
  success: O,
  errors: Partial<Record<400 | 403 | 404 | 409 | 413 | 422 | 503, string>> = {},
  opts: { body?: boolean, tooMany?: string } = {},
): O & ErrorResponses {
  const join = (own: string | undefined, common: string): string => own === undefined ? common : `${own}; ${common}`
  const out: Record<number, ApiResponse> = {
    ...success,
    400: err(join(errors[400], authErrors[400])),
    401: err(authErrors[401]),
    403: err(join(errors[403], authErrors[403])),
  }
  if (errors[404] !== undefined) out[404] = err(errors[404])
  if (errors[409] !== undefined) out[409] = err(errors[409])
  if (opts.body !== false) out[413] = err(join(errors[413], `body over ${bodyKiB} (${E.BodyTooLarge})`))
  if (errors[422] !== undefined) out[422] = err(errors[422])
  out[429] = tooMany(opts.tooMany)
  if (errors[503] !== undefined) out[503] = err(errors[503])
  return out as O & ErrorResponses
}
const noBody = { body: false }
const unknownRoom = `no room {id} that the caller can see: private rooms and DMs exist only for their members (and masters) (${E.UnknownRoom})`
const unknownAgent = `no agent by that AMID is registered (${E.UnknownRecipient}), or no agent has that handle (${E.UnknownHandle})`
const unknownTask = `no task {id} that the caller can see: its requester, its assignee, members of its room, wardens and masters see it (${E.UnknownTask})`
const fieldsError = (fields: string) => `a body that is not a JSON object, an unknown field (expected ${fields}), or a field out of bounds, naming it (${E.InvalidArgument})`
const roomMessageLimits = 'or, for a room message, the chat limits (rate_limits.chat_* per agent, chat_ip_* per IP, default {{chat_per_minute}} and {{chat_ip_per_minute}} a minute)'
const limitError = `limit not a whole number from 1 to ${MAX_PAGE} (${E.InvalidArgument})`

// ---- operations: files (§18)
const fileId = `no file {id} that the caller may see: a private file is its owner's and the agents it is shared with, a room file its members' (${E.UnknownFile})`
const fileFields = 'filename, fileType / type, fileData, description, visibility, sharedWith, agentId, sha256'
const fileWhoErrors = `agentId is not the caller and the caller is not a master (${E.Forbidden}); a room visibility the caller is not a member of (${E.NotMember})`
const fileUpload = (path: string, plan: boolean) => ({
  method: 'post', path, tags: ['files'],
  summary: (plan ? 'The plan\'s form of POST /api/v1/files/upload (same body, answer and checks). ' : '') +
    'Upload a file as JSON with its bytes in Base64 (fileData), at most fileJsonMaxBytes decoded (default {{file_json_max_mib}} MiB; larger files: the streamed POST /api/v1/files). ' +
    'visibility: "private" (default; the owner and sharedWith), "public" or "#room" (the caller must be a member). The file is visible once stored whole; file_available goes to the agents who may see it; audited file.upload. ' +
    'A signed request carries at most 64 KiB: use a bearer token or the operator key for more.',
  security: anyPrincipal, body: S.UploadFileBody,
  responses: {
    ...v1({ 201: ok('stored', S.FileUploaded) }, {
      400: `${fieldsError(fileFields)}; fileData not Base64 (${E.BadEncoding}); sha256 given and the bytes hash to another value (${E.ChecksumMismatch})`,
      403: fileWhoErrors,
      404: `a sharedWith or agentId agent not registered, a room that does not exist (${E.UnknownRecipient}, ${E.UnknownRoom})`,
    }),
    413: err(`the decoded file over fileJsonMaxBytes (${E.FileTooLarge}), the body over what that takes in Base64 (${E.BodyTooLarge}), or the owner over its quota: fileQuotaBytes (default {{file_quota_gib}} GiB) or fileMaxPerAgent files (default {{file_max_per_agent}}) (${E.FileQuota})`),
  },
}) as const
const fileGet = (path: string, plan: boolean) => ({
  method: 'get', path, tags: ['files'],
  summary: (plan ? 'The plan\'s form of GET /api/v1/files/{id}. ' : '') + 'A file\'s metadata (the bytes: GET …/content), for an agent that may see it.',
  security: anyPrincipal, params: S.FileParams,
  responses: v1({ 200: ok('the file', S.FileInfo) }, { 404: fileId }, noBody),
}) as const
const fileContent = (path: string, plan: boolean) => ({
  method: 'get', path, tags: ['files'],
  summary: (plan ? 'The plan\'s form of GET /api/v1/files/{id}/content. ' : '') +
    'The bytes of a file, streamed, with Content-Type (the file\'s type), Content-Length, Content-Disposition: attachment (the filename quoted, RFC 6266 / 5987), X-Content-Type-Options: nosniff and X-AgentMesh-SHA256. An end-to-end file is ciphertext: the SDK decrypts it.',
  security: anyPrincipal, params: S.FileParams,
  responses: v1({ 200: { description: 'the bytes', schema: S.FileContent, contentType: 'application/octet-stream' } }, { 404: fileId }, noBody),
}) as const
const fileList = (path: string, plan: boolean) => ({
  method: 'get', path, tags: ['files'],
  summary: (plan ? 'The plan\'s form of GET /api/v1/files. ' : '') + 'The files the caller may see (its own, those shared with it, its rooms\', public ones; every file for a master), newest first; agentId: only that owner\'s. Page with after = nextAfter.',
  security: anyPrincipal, query: S.FilesQuery,
  responses: v1({ 200: ok('a page of files', S.FileList) }, { 400: `agentId, after or limit malformed (${E.InvalidArgument})` }, noBody),
}) as const
const fileDelete = (path: string, plan: boolean) => ({
  method: 'delete', path, tags: ['files'],
  summary: (plan ? 'The plan\'s form of DELETE /api/v1/files/{id}. ' : '') + 'Delete a file and its bytes: its owner or a master. Audited file.delete.',
  security: anyPrincipal, params: S.FileParams,
  responses: v1({ 200: ok('deleted', S.FileDeleted) }, { 403: `the caller may see the file but is not its owner or a master (${E.Forbidden})`, 404: fileId }, noBody),
}) as const
/** Only a bearer token or the operator's key: a streamed body cannot be signed before it is read. */
const unsignedStream: readonly Security[] = [{ bearerAuth: [] }, { apiKey: [] }]
const FILE_ROUTES = {
  uploadFileJson: fileUpload('/api/v1/files/upload', false),
  uploadFileJsonPlan: fileUpload('/api/files/upload', true),
  uploadFile: {
    method: 'post', path: '/api/v1/files', tags: ['files'],
    summary: 'Upload a file streamed as the raw body (Content-Type: application/octet-stream), at most fileMaxBytes (default {{file_max_mib}} MiB): the relay reads and stores it chunk by chunk, never whole in memory. The metadata is in the query. ' +
      'Authenticate with a bearer token or the operator key (a signed request signs its body, which a stream does not have yet: refused). ' +
      'The file is visible once stored whole and, with sha256 given, checked; an upload cut short leaves nothing. file_available goes to the agents who may see it; audited file.upload.',
    security: unsignedStream, query: S.UploadFileQuery, body: S.FileContent, bodyType: 'application/octet-stream',
    responses: {
      ...v1({ 201: ok('stored', S.FileUploaded) }, {
        400: `a query field missing or malformed, naming it; a signed request (${E.InvalidArgument}); sha256 given and the bytes hash to another value (${E.ChecksumMismatch})`,
        403: fileWhoErrors,
        404: `a sharedWith or agentId agent not registered, a room that does not exist (${E.UnknownRecipient}, ${E.UnknownRoom})`,
      }),
      413: err(`the body over fileMaxBytes (${E.FileTooLarge}), or the owner over its quota: fileQuotaBytes (default {{file_quota_gib}} GiB) or fileMaxPerAgent files (default {{file_max_per_agent}}) (${E.FileQuota})`),
    },
  },
  listFiles: fileList('/api/v1/files', false),
  listFilesPlan: fileList('/api/files', true),
  getFile: fileGet('/api/v1/files/{id}', false),
  getFilePlan: fileGet('/api/files/{id}', true),
  downloadFile: fileContent('/api/v1/files/{id}/content', false),
  downloadFilePlan: fileContent('/api/files/{id}/content', true),
  deleteFile: fileDelete('/api/v1/files/{id}', false),
  deleteFilePlan: fileDelete('/api/files/{id}', true),
} as const
// ---------------------------------------------------------------- operations: system updates (§19)

const masterOnly = `a caller that is not a master (${E.Forbidden})`
const unknownUpdate = `no update {id} (${E.UnknownUpdate})`
const camel = 'camelCase JSON, as under /api/v1/updates and /api/updates alike.'
/** The update routes under a prefix: `/api/v1` (canonical) and `/api` (the operations plan's paths), same schemas. */
const updateRoute = {
  create: <const P extends string>(prefix: P) => ({
    method: 'post', path: `${prefix}/updates`, tags: ['updates'],
    summary: `A master announces a system update (§19): stored, then sent as a system_update event to every connected agent, and to each other agent when it next connects, until it expires or the agent answered rejected or completed. A breakingChange with a requiredVersion refuses sends (${E.UpdateRequired}) from agents below it once enforceAt passed (default expiresAt, else creation + the relay option updateGraceMs, default 7 days). Audited update.create. ${camel}`,
    security: anyPrincipal, body: S.CreateUpdateBody,
    responses: v1({ 201: ok('the update\'s id; broadcast is always true', S.UpdateCreated) }, {
      400: `${fieldsError('version, updateType, title, description, requiredVersion, breakingChange, announcement, expiresAt, enforceAt')}; an unreadable time, expiresAt not in the future, enforceAt without breakingChange and requiredVersion`,
      403: masterOnly,
    }),
  } as const),
  list: <const P extends string>(prefix: P) => ({
    method: 'get', path: `${prefix}/updates`, tags: ['updates'],
    summary: `System updates, newest first: those created at or after since, only the unexpired with activeOnly=true. Any agent may read them. ${camel}`,
    security: anyPrincipal, query: S.UpdatesQuery,
    responses: v1({ 200: ok('the updates', S.UpdateList) }, { 400: `since not a time, activeOnly not true or false, ${limitError}` }, noBody),
  } as const),
  get: <const P extends string>(prefix: P) => ({
    method: 'get', path: `${prefix}/updates/{id}`, tags: ['updates'],
    summary: `A system update. ${camel}`,
    security: anyPrincipal, params: S.UpdateParams,
    responses: v1({ 200: ok('the update', S.UpdateInfo) }, { 404: unknownUpdate }, noBody),
  } as const),
  ack: <const P extends string>(prefix: P) => ({
    method: 'post', path: `${prefix}/updates/{id}/acknowledge`, tags: ['updates'],
    summary: `An agent answers an update (§19): accepted, rejected or completed, with its agentVersion (recorded as its reported version) and notes. One answer per agent, replaced by the next: pending → accepted | rejected | completed, accepted → accepted | rejected | completed, rejected → rejected | accepted, completed → completed. agentId is the caller unless a master names another agent. Audited update.ack (no notes in the row). ${camel}`,
    security: anyPrincipal, params: S.UpdateParams, body: S.AckUpdateBody,
    responses: v1({ 200: ok('the acknowledgement as stored', S.UpdateAck) }, {
      400: `${fieldsError('agentId, status, agentVersion, notes')}; the operator without agentId`,
      403: `agentId is another agent and the caller is not a master (${E.Forbidden})`,
      404: `${unknownUpdate}; agentId not a registered agent (${E.UnknownRecipient})`,
      409: `the update expired (${E.UpdateExpired}); a move the answer's status does not allow, or the answer changed meanwhile (${E.InvalidTransition})`,
    }),
  } as const),
  acks: <const P extends string>(prefix: P) => ({
    method: 'get', path: `${prefix}/updates/{id}/acknowledgments`, tags: ['updates'],
    summary: `The adoption view of an update, for masters and wardens: counts by status (pending: registered agents that have not answered), who has not answered, every answer, and the versions the agents last reported. ${camel}`,
    security: anyPrincipal, params: S.UpdateParams,
    responses: v1({ 200: ok('the adoption view', S.UpdateAdoption) }, { 403: `a worker (${E.Forbidden})`, 404: unknownUpdate }, noBody),
  } as const),
}

// ---------------------------------------------------------------- agent health (§21)

const healthSummary = {
  heartbeat: 'An agent\'s heartbeat (§21.1): its status (healthy, degraded, unhealthy) and figures, for itself only (a master for any agent; agentId in the body, if given, must name the same agent). Replaces its latest heartbeat; a change of status is kept in its history, audited health.change and told as an agent_health_change event. Not audited otherwise.',
  health: 'An agent\'s health (§21.2): the status the relay derives (its heartbeat\'s, offline when not connected or silent past the offline time, unknown when connected without a heartbeat yet), its latest heartbeat and its newest health changes. For the agent itself, wardens and masters.',
  dashboard: 'The fleet at a glance (§21.3): how many agents are healthy, degraded, unhealthy, offline or unknown, the open critical catastrophe events and the newest one (§20), and one page of agents by AMID. For wardens and masters.',
}
const heartbeatErrors = {
  400: `${fieldsError('agentId, status, uptimeSeconds, cpuUsage, memoryUsage, customMetrics, version')}; a figure that is not a number or out of its range, a custom metric name or value that is not allowed (${E.InvalidMetric})`,
  403: `the path or agentId names another agent and the caller is not a master (${E.Forbidden})`,
  404: unknownAgent,
  413: `customMetrics over ${H.MAX_CUSTOM_METRICS} names or ${H.MAX_CUSTOM_METRICS_BYTES} bytes as JSON (${E.MetricsTooLarge})`,
}
const healthErrors = {
  400: `historyLimit not a whole number from 0 to ${MAX_PAGE} (${E.InvalidArgument})`,
  403: `a worker asking for another agent's health (${E.Forbidden})`,
  404: unknownAgent,
}
const dashboardErrors = {
  400: `${limitError}; after malformed (${E.InvalidArgument})`,
  403: `the caller is a worker: the dashboard is for wardens and masters (${E.Forbidden})`,
}
// ---------------------------------------------------------------- catastrophe events (§20)

const unknownEvent = `no catastrophe event {id} (${E.UnknownEvent})`
/**
 * The catastrophe routes under a prefix: the canonical /api/v1 and the plan's /api (same schemas,
 * camelCase JSON on both); the plan's are named …Plan in the table.
 */
function catastropheRoutes (prefix: '/api/v1' | '/api') {
  const plan = prefix === '/api' ? ' (the plan\'s path: the same as /api/v1/catastrophe…)' : ''
  return {
    report: {
      method: 'post', path: `${prefix}/catastrophe`, tags: ['operations'],
      summary: `Report a catastrophe event (§20), by a master or a warden${plan}: stored as reported, a catastrophe_alert event goes to every agent (or affectedAgents) connected now, and to each agent that connects while it is not resolved, ahead of its backlog. Audited catastrophe.report.`,
      security: anyPrincipal, body: K.ReportCatastropheBody,
      responses: v1({ 201: ok('stored and broadcast', K.CatastropheReported) }, {
        400: fieldsError('eventType, severity, title, description, recoveryProtocol, affectedAgents, agentId'),
        403: `the caller is a worker, or agentId is not the caller (${E.Forbidden})`,
        503: `the relay is in read-only mode (${E.ReadOnly})`,
      }),
    },
    list: {
      method: 'get', path: `${prefix}/catastrophe`, tags: ['operations'],
      summary: `Catastrophe events, newest first, filtered by status and severity${plan}. Page with before = nextBefore.`,
      security: anyPrincipal, query: K.CatastropheQuery,
      responses: v1({ 200: ok('the events', K.CatastropheList) }, { 400: `status or severity not one of theirs, ${limitError}` }, noBody),
    },
    protocols: {
      method: 'get', path: `${prefix}/catastrophe/protocols`, tags: ['operations'],
      summary: `The four recovery protocols (server crash, database corruption, network partition, breaking update) as structured steps${plan}.`,
      security: anyPrincipal,
      responses: v1({ 200: ok('the protocols', K.RecoveryProtocolList) }, {}, noBody),
    },
    get: {
      method: 'get', path: `${prefix}/catastrophe/{id}`, tags: ['operations'],
      summary: `A catastrophe event${plan}.`,
      security: anyPrincipal, params: K.CatastropheParams,
      responses: v1({ 200: ok('the event', K.CatastropheAnswer) }, { 404: unknownEvent }, noBody),
    },
    recovering: {
      method: 'post', path: `${prefix}/catastrophe/{id}/recovering`, tags: ['operations'],
      summary: `Move a reported event to recovering, by a master or a warden${plan}; agents hear a catastrophe_alert with the new status. Audited catastrophe.recovering.`,
      security: anyPrincipal, params: K.CatastropheParams, body: K.CatastropheNotesBody, bodyOptional: true,
      responses: v1({ 200: ok('the event, recovering', K.CatastropheAnswer) }, {
        400: fieldsError('notes'),
        403: `the caller is a worker (${E.Forbidden})`,
        404: unknownEvent,
        409: `the event is not reported (recovering or resolved already) (${E.InvalidTransition})`,
        503: `the relay is in read-only mode (${E.ReadOnly})`,
      }),
    },
    resolve: {
      method: 'post', path: `${prefix}/catastrophe/{id}/resolve`, tags: ['operations'],
      summary: `Resolve an event with notes, by a master${plan}; agents hear a catastrophe_alert with status resolved, and connecting agents no longer get it. Audited catastrophe.resolve (metadata only: the notes' length, not the notes).`,
      security: anyPrincipal, params: K.CatastropheParams, body: K.CatastropheNotesBody, bodyOptional: true,
      responses: v1({ 200: ok('the event, resolved', K.CatastropheAnswer) }, {
        400: fieldsError('notes, resolutionNotes'),
        403: `the caller is not a master (${E.Forbidden})`,
        404: unknownEvent,
        409: `the event is resolved already (${E.InvalidTransition})`,
        503: `the relay is in read-only mode (${E.ReadOnly})`,
      }),
    },
  } as const satisfies Record<string, ApiRoute>
}
const catastropheV1 = catastropheRoutes('/api/v1')
const catastrophePlan = catastropheRoutes('/api')

// ---------------------------------------------------------------- wake-ups (§26)

const webhookUrlErrors = {
  400: `${fieldsError('url')}; a URL that is not absolute http(s), holds a user name or password, or is http:// on a relay that does not allow private addresses (${E.WebhookUrlInvalid})`,
  403: `${operatorRefused}; the URL's host is or resolves to a private, loopback, link-local or otherwise non-public address and the relay does not allow those (${E.WebhookAddressRefused})`,
  422: `the URL's host name does not resolve (${E.WebhookUnresolvable}): check it, or try again`,
  503: `the relay is in read-only mode (${E.ReadOnly})`,
}

/** Every route the relay serves, by operationId. */
export const API_ROUTES = {
  // ---- the relay
  health: {
    method: 'get', path: '/healthz', tags: ['relay'],
    summary: 'Liveness: 200 while the relay serves, 503 while it shuts down or its database (PostgreSQL) is not answering.',
    responses: { 200: ok('serving', S.Health), 503: ok('shutting down, or the database unavailable', S.HealthDown) },
  },
  info: {
    method: 'get', path: '/api/v1/info', tags: ['relay'],
    summary: 'What this relay is: protocol, version, relay id, store, limits and counters.',
    responses: { 200: ok('relay information', S.RelayInfo) },
  },
  openapi: {
    method: 'get', path: '/api/v1/openapi.json', tags: ['relay'],
    summary: 'This document.',
    responses: { 200: ok('the OpenAPI 3.1 document', S.AnyObject) },
  },
  websocket: {
    method: 'get', path: '/ws', tags: ['relay'],
    summary: 'WebSocket endpoint (upgrade) for the agentmesh/0.2 protocol; a plain GET answers 426.',
    responses: {
      101: { description: 'switching protocols' },
      426: { ...err('not a WebSocket upgrade'), headers: { Upgrade: { schema: Type.Literal('websocket') } } },
    },
  },

  // ---- registry (§13)
  searchAgents: {
    method: 'get', path: '/api/v1/agents', tags: ['registry'],
    summary: 'Search agents by capability (a skill id or tag, exact, any case) and/or text (display name, skills, tags; substring, any case). Ordered by AMID.',
    query: S.SearchQuery,
    responses: { 200: ok('matching agents', S.AgentList), 400: err(`a bad query parameter (${E.InvalidArgument})`), 429: registryTooMany },
  },
  getAgent: {
    method: 'get', path: '/api/v1/agents/{amid}', tags: ['registry'],
    summary: 'An agent\'s profile.',
    params: S.AmidParams,
    responses: { 200: ok('the profile', S.Profile), 400: notAmid, 404: err(`no such agent (${E.NotFound})`), 429: registryTooMany },
  },
  putAgent: {
    method: 'put', path: '/api/v1/agents/{amid}', tags: ['registry'],
    summary: 'Register or update the signing agent\'s own profile; fields left out keep their values.',
    security: signed, params: S.AmidParams, body: S.ProfileBody,
    responses: {
      200: ok('the stored profile', S.Profile),
      400: err(`invalid body (${E.InvalidArgument}, ${E.BadJson}); a display_name holding a bidi control, invisible or control character`),
      401: unsigned,
      403: err(`signed by another agent (${E.Forbidden})`),
      413: tooBig,
    },
  },
  countPrekeys: {
    method: 'get', path: '/api/v1/agents/{amid}/prekeys', tags: ['registry'],
    summary: 'How many one-time prekeys (X25519 and ML-KEM-768) the agent has left.',
    params: S.AmidParams,
    responses: { 200: ok('the count', S.PrekeyCount), 400: notAmid, 429: registryTooMany },
  },
  putPrekeys: {
    method: 'put', path: '/api/v1/agents/{amid}/prekeys', tags: ['registry'],
    summary: `Upload the signing agent's own prekeys: replaces the base (exchange key, signed prekey, post-quantum prekey) when given, adds one-time prekeys (at most ${MAX_PREKEYS_PER_UPLOAD} per upload, ${MAX_PREKEYS_PER_AGENT.toLocaleString('en')} held) and signed one-time ML-KEM-768 prekeys (at most ${MAX_PQ_PREKEYS_PER_UPLOAD} per upload, ${MAX_PQ_PREKEYS_PER_AGENT} held). Nothing is stored from an upload that is refused.`,
    security: signed, params: S.AmidParams, body: S.PrekeyBody,
    responses: {
      200: ok('one-time prekeys now held', S.PrekeyCount),
      400: err(`invalid body (${E.InvalidArgument}); a one-time PQ prekey of the wrong length or whose signature does not verify (${E.BadPrekey}); an id twice in one upload (${E.DuplicatePrekey}); more than an agent may hold (${E.TooManyPrekeys})`),
      401: unsigned,
      403: err(`signed by another agent (${E.Forbidden})`),
      413: tooBig,
    },
  },
  takePrekeyBundle: {
    method: 'post', path: '/api/v1/agents/{amid}/prekeys/bundle', tags: ['registry'],
    summary: 'Fetch a prekey bundle to start a session with the agent. Hands out each one-time prekey (X25519 and ML-KEM-768) exactly once, even under concurrent requests; signed by a registered agent.',
    security: signed, params: S.AmidParams,
    responses: {
      200: ok('the bundle: the base fields and, while any is left, one_time_prekey and pq_one_time_prekey', S.PrekeyBundle),
      400: notAmid,
      401: unsigned,
      403: err('the signer is not a registered agent'),
      404: err('the agent published no prekeys'),
      429: registryTooMany,
    },
  },
  putP2pRecord: {
    method: 'put', path: '/api/v1/agents/{amid}/p2p', tags: ['registry'],
    summary: 'Publish where the signing agent can be reached directly (§30.1): a libp2p signed peer record (RFC 0003 record in an RFC 0002 envelope) signed by its AMID key, 1–16 multiaddrs, at most 4096 bytes. Its sequence number must be above the stored one; the same record again is answered as stored. GET /api/v1/agents/{amid} shows it as `p2p`.',
    security: signed, params: S.AmidParams, body: S.P2pRecordBody,
    responses: {
      200: ok('the stored record', S.P2pRecord),
      400: err(`invalid body (${E.InvalidArgument}, ${E.BadJson}); a record that is not a peer record signed by {amid}'s key, lists no or more than 16 addresses, or is larger than 4096 bytes (${E.PeerRecordInvalid})`),
      401: unsigned,
      403: err(`signed by another agent (${E.Forbidden})`),
      409: err(`its sequence number is not above the stored record's (${E.PeerRecordStale})`),
      413: tooBig,
    },
  },
  deleteP2pRecord: {
    method: 'delete', path: '/api/v1/agents/{amid}/p2p', tags: ['registry'],
    summary: 'Withdraw the signing agent\'s peer record from its profile (§30.1): the registry no longer tells anyone where it can be reached directly.',
    security: signed, params: S.AmidParams,
    responses: {
      200: ok('withdrawn (also when there was none)', Type.Object({ removed: Type.Boolean() })),
      400: notAmid,
      401: unsigned,
      403: err(`signed by another agent (${E.Forbidden})`),
    },
  },
  getCertificate: {
    method: 'get', path: '/api/v1/agents/{amid}/certificate', tags: ['certificates'],
    summary: 'The agent\'s published certificate chain and what it is worth now: status valid, expired, revoked (a CRL the relay holds lists a link) or untrusted (its root is no longer a trust root), and the tier it gives (anonymous unless valid).',
    params: S.AmidParams,
    responses: { 200: ok('the chain and its verification now', S.Certificate), 400: notAmid, 404: err(`the agent published no certificate (${E.NotFound})`), 429: registryTooMany },
  },
  putCertificate: {
    method: 'put', path: '/api/v1/agents/{amid}/certificate', tags: ['certificates'],
    summary: 'Publish the signing agent\'s certificate chain (agent certificate first, then its issuers; the trusted root may be left out). The relay verifies it against its trust roots and the CRLs it holds, stores it, and the agent\'s tier follows from it: anonymous (self-signed or anonymous policy), verified (issued by a trust root) or organisation (issued by an organisation CA under one). A refused chain changes nothing.',
    security: signed, params: S.AmidParams, body: S.CertificateBody,
    responses: {
      200: ok('the stored chain and its verification', S.Certificate),
      400: err(`invalid body (${E.InvalidArgument}, ${E.BadJson})`),
      401: unsigned,
      403: err(`signed by another agent, or the chain certifies another AMID (${E.Forbidden})`),
      413: tooBig,
      422: err(`the chain does not verify: ${certErrors}`),
    },
  },
  postFeedback: {
    method: 'post', path: '/api/v1/agents/{amid}/feedback', tags: ['reputation'],
    summary: 'Rate the agent {amid} after an interaction, signed by the rater (a registered agent other than {amid}). The rater\'s new rating replaces its previous one of this agent. At most {{max_feedback_per_hour}} feedback writes per rater per hour by default (relay option reputation.maxFeedbackPerHour). See docs/protocol.md §15.',
    security: signed, params: S.AmidParams, body: S.FeedbackBody,
    responses: {
      200: ok('the stored feedback, whether it replaced an earlier one of the rater, and the agent\'s reputation after it', S.FeedbackStored),
      400: err(`not an AMID, or an invalid body naming the field (${E.InvalidArgument}, ${E.BadJson})`),
      401: unsigned,
      403: err(`the rater is not a registered agent, or rates itself (${E.Forbidden})`),
      404: err(`no agent {amid} is registered (${E.NotFound})`),
      413: tooBig,
      429: { ...err(`the rater made its most feedback writes of the last hour (${E.RateLimited}); wait Retry-After seconds`), headers: { 'Retry-After': { schema: Type.Integer(), description: 'seconds until the rater may write again' } } },
    },
  },
  getReputation: {
    method: 'get', path: '/api/v1/agents/{amid}/reputation', tags: ['reputation'],
    summary: 'The agent\'s reputation now: the weighted mean of the standing ratings it received (a rating by an anonymous-tier rater weighs reputation.anonymousWeight, one returned by the agent is discounted by reputation.mutualDiscount) and whether a fast move of its score is open for review.',
    params: S.AmidParams,
    responses: { 200: ok('the reputation', S.Reputation), 400: notAmid, 404: err(`no such agent (${E.NotFound})`) },
  },
  getReputationFlags: {
    method: 'get', path: '/api/v1/agents/{amid}/reputation/flags', tags: ['reputation'],
    summary: 'Flags raised on the agent\'s score, newest first (at most {{max_flags_per_agent}} are kept): each says the score moved by more than reputation.flagDelta within reputation.flagWindowMs.',
    params: S.AmidParams,
    responses: { 200: ok('the flags', S.ReputationFlags), 400: notAmid, 404: err(`no such agent (${E.NotFound})`) },
  },
  listCrls: {
    method: 'get', path: '/api/v1/crls', tags: ['certificates'],
    summary: 'The certificate revocation lists the relay holds: the newest of each CA, by issuer.',
    responses: { 200: ok('the CRLs', S.CrlList), 429: registryTooMany },
  },
  putCrl: {
    method: 'put', path: '/api/v1/crls', tags: ['certificates'],
    summary: 'Upload a CRL (one PEM "X509 CRL" block, at most {{max_crl_kib}} KiB, any content type). Not signed by an agent: it must be signed by a CA the relay knows — a trust root, or an organisation CA that came in a published chain. It replaces the CA\'s stored CRL when its thisUpdate is later; agents whose chain it revokes drop to anonymous at once. At most {{max_crls}} CAs\' CRLs are held.',
    body: S.CrlBody, bodyType: 'application/x-pem-file',
    responses: {
      200: ok('stored, or unchanged when it is the CRL already held', S.CrlStored),
      400: err(`the relay already holds CRLs of {{max_crls}} CAs (${E.InvalidArgument})`),
      409: err(`a CRL of the same CA with the same or a later thisUpdate is held (${E.CrlOutdated})`),
      413: err(`body over {{max_crl_kib}} KiB (${E.BodyTooLarge})`),
      422: err(`not one readable PEM CRL, dated in the future, or not signed by the CA it names (${E.CertInvalid}); its issuer is not a CA the relay knows (${E.CertChainBroken})`),
    },
  },

  // ---- tokens (§17.8)
  authChallenge: {
    method: 'post', path: '/api/v1/auth/challenge', tags: ['auth'],
    summary: 'Ask for a challenge to sign for a bearer token (§17.8). Unauthenticated; answer it within {{challenge_ttl_s}} s with POST /api/v1/auth/token.',
    security: [], body: S.ChallengeBody,
    responses: {
      200: ok('the challenge', S.Challenge),
      400: err(`a body that is not a JSON object (${E.InvalidArgument}, ${E.BadJson}), or amid is not an AMID (${E.InvalidArgument})`),
      413: err(`body over ${bodyKiB} (${E.BodyTooLarge})`),
      429: tooMany(),
    },
  },
  authToken: {
    method: 'post', path: '/api/v1/auth/token', tags: ['auth'],
    summary: 'Exchange a signed challenge for a bearer token (a JWT the relay signs, EdDSA; valid {{token_ttl_min}} minutes). sig is the agent\'s Ed25519 signature over the challenge exactly as in the WebSocket auth (§3). Unauthenticated; each challenge is answered once, right or wrong.',
    security: [], body: S.TokenBody,
    responses: {
      200: ok('the token', S.Token),
      400: err(`a body that is not a JSON object, or amid, nonce or sig missing or not strings (${E.InvalidArgument}, ${E.BadJson})`),
      401: err(`the challenge is unknown, used, expired or for another AMID (${E.AuthReplayed}); the signature does not verify (${E.AuthFailed})`),
      403: err(`the agent is not registered on this relay (${E.Forbidden})`),
      413: err(`body over ${bodyKiB} (${E.BodyTooLarge})`),
      429: tooMany(),
    },
  },

  // ---- rooms
  listRooms: {
    method: 'get', path: '/api/v1/rooms', tags: ['rooms'],
    summary: 'Rooms the caller can see, by id: the global room, public rooms and the caller\'s own (masters: every room but DMs). Page with after = the last id.',
    security: anyPrincipal, query: S.RoomsQuery,
    responses: v1({ 200: ok('the rooms', S.RoomList) }, { 400: limitError }, noBody),
  },
  createRoom: {
    method: 'post', path: '/api/v1/rooms', tags: ['rooms'],
    summary: 'Create a public or private room; the calling agent owns it (audited room.create). A private room is created with its signed genesis (membership, §17.5).',
    security: agentOnly, body: S.CreateRoomBody,
    responses: v1({ 201: ok('the room', S.RoomInfo) }, {
      400: fieldsError('id, kind, topic, membership') + '; a reserved id; membership for a public room',
      403: `${operatorRefused}; a private room without a genesis signed by the caller for this id (${E.MembershipUnsigned})`,
      409: `a room with this id exists (or a private room you cannot see has it) (${E.RoomExists})`,
    }, { tooMany: 'or the agent owns {{max_rooms_per_agent}} rooms already (the limit; answered without Retry-After)' }),
  },
  getRoom: {
    method: 'get', path: '/api/v1/rooms/{id}', tags: ['rooms'],
    summary: 'A room as the caller sees it.',
    security: anyPrincipal, params: S.RoomParams,
    responses: v1({ 200: ok('the room', S.RoomInfo) }, { 404: unknownRoom }, noBody),
  },
  listMembers: {
    method: 'get', path: '/api/v1/rooms/{id}/members', tags: ['rooms'],
    summary: 'A room\'s members with their presence and read marker. The global room\'s are not listed (see GET /api/v1/presence).',
    security: anyPrincipal, params: S.RoomParams,
    responses: v1({ 200: ok('the members', S.MemberList) }, { 400: `the global room (${E.InvalidArgument})`, 403: `a public room the caller is not a member of (${E.NotMember})`, 404: unknownRoom }, noBody),
  },
  joinRoom: {
    method: 'post', path: '/api/v1/rooms/{id}/join', tags: ['rooms'],
    summary: 'Join a public room, or a private room the caller was invited to (audited room.join). Joining the global room or a room the caller is in changes nothing (already: true).',
    security: agentOnly, params: S.RoomParams,
    responses: v1({ 200: ok('joined', S.Joined) }, {
      403: operatorRefused,
      404: `no such room, a DM, or a private room the caller was not invited to (${E.UnknownRoom})`,
    }, { tooMany: 'or the room has {{max_members_per_room}} members (the limit; answered without Retry-After)' }),
  },
  leaveRoom: {
    method: 'post', path: '/api/v1/rooms/{id}/leave', tags: ['rooms'],
    summary: 'Leave a room (audited room.leave). The global room and DMs cannot be left. In a private room the SDK sends the leave signed by the caller (statement), which the relay appends to the room\'s membership.',
    security: agentOnly, params: S.RoomParams, body: S.LeaveBody, bodyOptional: true,
    responses: v1({ 200: ok('left', S.Left) }, {
      400: `the global room or a DM; statement for a public room (${E.InvalidArgument})`,
      403: `${operatorRefused}; the caller is not a member (${E.NotMember}); a statement that is not the caller's leave or does not extend the chain (${E.MembershipUnsigned})`,
      404: unknownRoom,
    }),
  },
  inviteToRoom: {
    method: 'post', path: '/api/v1/rooms/{id}/invite', tags: ['rooms'],
    summary: 'Invite an agent (audited room.invite): to a public room by its members (and masters); to a private room only with the add statement signed by its owner or an admin (statement, §17.5) — no role (master, warden, the operator) invites without it. The invitee may then join.',
    security: anyPrincipal, params: S.RoomParams, body: S.MemberChangeBody,
    responses: v1({ 200: ok('the room and the invited agent', S.Invited) }, {
      400: `${fieldsError('agent, statement')}; the global room or a DM (they take no invitations); agent neither an AMID nor a handle; statement for a public room`,
      403: `a private room without a valid signed add of that agent extending the room's chain (${E.MembershipUnsigned}); a public room the caller is not a member of (${E.NotMember})`,
      404: `${unknownRoom}; ${unknownAgent}`,
    }),
  },
  kickFromRoom: {
    method: 'post', path: '/api/v1/rooms/{id}/kick', tags: ['rooms'],
    summary: 'Remove a member (audited room.kick): from a public room by its owner, a warden or a master; from a private room only with the remove statement signed by its owner or an admin (statement, §17.5). The owner cannot be kicked.',
    security: anyPrincipal, params: S.RoomParams, body: S.MemberChangeBody,
    responses: v1({ 200: ok('the room and the removed agent', S.Kicked) }, {
      400: `${fieldsError('agent, statement')}; the global room or a DM; agent neither an AMID nor a handle; statement for a public room`,
      403: `the caller may not moderate the room, or kicks its owner (${E.Forbidden}); the agent is not a member (${E.NotMember}); a private room without a valid signed remove of that agent (${E.MembershipUnsigned})`,
      404: `${unknownRoom}; ${unknownAgent}`,
    }),
  },
  roomMembership: {
    method: 'get', path: '/api/v1/rooms/{id}/membership', tags: ['rooms'],
    summary: 'A private room\'s signed membership (§17.5): its statements, genesis first, as the relay holds them. Clients verify the chain themselves and hand their sender key only to members it proves.',
    security: anyPrincipal, params: S.RoomParams,
    responses: v1({ 200: ok('the statements', S.Membership) }, { 400: `not a private room (${E.InvalidArgument})`, 404: unknownRoom }, noBody),
  },
  postMembership: {
    method: 'post', path: '/api/v1/rooms/{id}/membership', tags: ['rooms'],
    summary: 'Append a signed statement to a private room\'s membership (§17.5): an add (as invite), a remove (as kick), a member\'s own leave, or the owner naming or unnaming an admin (audited room.membership). The relay checks it extends the chain and its signer may make the change.',
    security: anyPrincipal, params: S.RoomParams, body: S.MembershipBody,
    responses: v1({ 200: ok('the statements after it', S.Membership) }, {
      400: `${fieldsError('statement')}; not a private room (${E.InvalidArgument})`,
      403: `the statement does not verify, does not extend the chain, or its signer may not make the change (${E.MembershipUnsigned})`,
      404: `${unknownRoom}; ${unknownAgent}`,
    }),
  },
  setRoomTopic: {
    method: 'put', path: '/api/v1/rooms/{id}/topic', tags: ['rooms'],
    summary: 'Set or clear a room\'s topic (audited room.topic): by its owner, a warden (public rooms and the global room) or a master. Outside private rooms the relay posts a notice to the room.',
    security: anyPrincipal, params: S.RoomParams, body: S.TopicBody,
    responses: v1({ 200: ok('the room', S.RoomInfo) }, {
      400: `${fieldsError('topic')}; a topic holding a bidi control, invisible or control character; a DM (it has no topic)`,
      403: `the caller may not moderate the room (${E.Forbidden})`,
      404: unknownRoom,
    }),
  },
  roomHistory: {
    method: 'get', path: '/api/v1/rooms/{id}/history', tags: ['rooms'],
    summary: 'A room\'s stored messages, oldest first: the newest page (or, with before, the page before that seq; follow next_before), or with after the messages after that seq (follow next_after). Members only for public rooms (masters read every room); private rooms hold ciphertext; DMs have no history.',
    security: anyPrincipal, params: S.RoomParams, query: S.HistoryQuery,
    responses: v1({ 200: ok('a page of history', S.HistoryPage) }, {
      400: `before, after or limit out of bounds (${E.InvalidArgument})`,
      403: `a public room the caller is not a member of (${E.NotMember})`,
      404: unknownRoom,
      422: `a DM: it is end-to-end encrypted and kept only until delivered (${E.EncryptionRequired})`,
    }, noBody),
  },
  deleteMessage: {
    method: 'delete', path: '/api/v1/rooms/{id}/messages/{seq}', tags: ['rooms'],
    summary: 'Delete a room message (audited message.delete): by its sender, the room\'s owner, a warden (not in private rooms) or a master. Its envelope is dropped; a tombstone stays in the history.',
    security: anyPrincipal, params: S.MessageParams,
    responses: v1({ 200: ok('deleted', S.MessageDeleted) }, {
      400: `seq is not a whole number (${E.InvalidArgument})`,
      403: `the caller is not the sender, the owner, a warden (outside private rooms) or a master (${E.Forbidden})`,
      404: `${unknownRoom}; no message with this seq, or it is deleted already (${E.NotFound})`,
    }),
  },

  // ---- messages (§17.6)
  postMessage: {
    method: 'post', path: '/api/v1/messages', tags: ['messages'],
    summary: 'Post a message (§17.6). With text/payload the relay builds the envelope from the calling agent and signs it itself (via = the relay\'s AMID); with the operator\'s key the message comes from the relay. With envelope, an envelope the calling agent signed is stored as over the WebSocket (the only way to post to a private room or an end-to-end encrypted DM). A DM built by the relay needs plaintext: true. Stored (and audited message.send) before the answer; a retry with the same id is answered duplicate: true. A /command in the global or a public room dispatches a task (§17.7).',
    security: anyPrincipal, body: S.PostMessageBody,
    responses: v1({
      201: ok('stored', S.MessagePosted),
      200: ok('a duplicate (same sender and id): nothing was stored', S.MessagePosted),
    }, {
      400: `${fieldsError('to, text, payload, type, id, plaintext — or envelope alone')}: text not a string, payload not an object, neither given, a reserved or malformed type, a malformed id, to not "#room", an AMID or a handle; an envelope that does not validate or sets via (${E.InvalidEnvelope})`,
      403: `an envelope posted with the operator's key (${E.Forbidden}); a room the agent is not a member of (${E.NotMember}); an envelope of a type only the relay posts: task.*, notice, relay.*, system.* (${E.ReservedType}); the agent is below a breaking update's required version past its deadline (${E.UpdateRequired}, §19)`,
      404: `no room to post to (a private room you are not in, a DM id) (${E.UnknownRoom}); ${unknownAgent}`,
      413: `an envelope over ${bodyKiB}`,
      422: `a DM without plaintext: true, a private room without an e2ee.group envelope, or the operator posting to a private room (${E.EncryptionRequired})`,
      503: `the recipient's inbox is full (${E.InboxFull}); try again later`,
    }, { tooMany: roomMessageLimits }),
  },
  sendMessage: {
    method: 'post', path: '/api/messages', tags: ['messages'],
    summary: 'Post a text message (§17.6) as {from, to, content}: the same as POST /api/v1/messages with {to, text: content}, with the same authentication, rate limits, audit (message.send) and answer. from must be the caller\'s own AMID (the relay\'s AMID, relay_amid of /api/v1/info, with the operator\'s key). The relay builds and signs the message, so an agent\'s DM is refused here (422): DMs are end-to-end encrypted (the SDK), or sent readable on purpose with POST /api/v1/messages and plaintext: true. With the operator\'s key a DM comes from the relay itself.',
    security: anyPrincipal, body: S.SendMessageBody,
    responses: v1({
      201: ok('stored', S.MessagePosted),
      200: ok('a duplicate (same sender and id): nothing was stored', S.MessagePosted),
    }, {
      400: `${fieldsError('from, to, content')}: a field missing or not a string, to not "#room", an AMID or a handle`,
      403: `from is not the caller's own AMID (the relay's with the operator's key) (${E.Forbidden}); a room the agent is not a member of (${E.NotMember}); the agent is below a breaking update's required version past its deadline (${E.UpdateRequired}, §19)`,
      404: `no room to post to (a private room you are not in, a DM id) (${E.UnknownRoom}); ${unknownAgent}`,
      422: `a private room, whose messages must be end-to-end encrypted, or an agent's DM (${E.EncryptionRequired})`,
      503: `the recipient's inbox is full (${E.InboxFull}); try again later`,
    }, { tooMany: roomMessageLimits }),
  },

  // ---- presence and handles (§17.1, §17.3)
  presence: {
    method: 'get', path: '/api/v1/presence', tags: ['presence'],
    summary: `Who is online or idle (at most ${MAX_PRESENCE_ROWS.toLocaleString('en')}); with room, every member of that room, offline ones included.`,
    security: anyPrincipal, query: S.PresenceQuery,
    responses: v1({ 200: ok('the agents', S.PresenceList) }, { 403: `room: a public room the caller is not a member of (${E.NotMember})`, 404: unknownRoom.replace('{id}', '{room}') }, noBody),
  },
  setHandle: {
    method: 'post', path: '/api/v1/handles', tags: ['handles'],
    summary: `Set the calling agent's handle (a master may set any agent's, naming it in agent_id, an AMID or @handle, or in amid, an AMID; the operator must). Handles are unique case-insensitively; the previous one is freed at once; ${[...RESERVED_HANDLES].join(', ')} are reserved. Audited handle.set.`,
    security: anyPrincipal, body: S.HandleBody,
    responses: v1({
      201: ok('the agent\'s first handle', S.HandleSet),
      200: ok('the handle changed (previous is the old one)', S.HandleSet),
    }, {
      400: `${fieldsError('handle, amid, agent_id')}: a malformed or reserved handle, or one that looks like a reserved name (confusable skeleton: reIay, re1ay); the operator without amid or agent_id; both given; agent_id neither an AMID nor a handle`,
      403: `an agent (not a master) naming another agent (${E.Forbidden})`,
      404: unknownAgent,
      409: `another agent holds the handle or one that looks like it (same confusable skeleton: bob and b0b), or the agent holds it already (${E.HandleTaken})`,
    }),
  },
  resolveHandle: {
    method: 'get', path: '/api/v1/handles/{handle}', tags: ['handles'],
    summary: 'The AMID holding a handle (any case; a leading "@" is ignored), or given an AMID, that agent\'s handle.',
    security: anyPrincipal, params: S.HandleParams,
    responses: v1({ 200: ok('the handle as held and its agent', S.HandleOf) }, {
      400: `not a handle (${E.InvalidArgument})`,
      404: `no agent has the handle, or the agent has none (${E.UnknownHandle})`,
    }, noBody),
  },

  // ---- roles (§17.2)
  setRole: {
    method: 'put', path: '/api/v1/agents/{amid}/role', tags: ['roles'],
    summary: 'Set an agent\'s role (§17.2), by a master (audited role.set).',
    security: anyPrincipal, params: S.AmidParams, body: S.RoleBody,
    responses: v1({ 200: ok('the role set', S.RoleSet) }, {
      400: `not an AMID, ${fieldsError('role')}`,
      403: `the caller is not a master (${E.Forbidden})`,
      404: `no agent {amid} is registered (${E.UnknownRecipient})`,
    }),
  },
  listRoles: {
    method: 'get', path: '/api/v1/roles', tags: ['roles'],
    summary: `The agents with a role other than the default (${DEFAULT_ROLE}).`,
    security: anyPrincipal,
    responses: v1({ 200: ok('the roles', S.RoleList) }, {}, noBody),
  },

  // ---- tasks (§17.7)
  dispatchTask: {
    method: 'post', path: '/api/v1/tasks', tags: ['tasks'],
    summary: 'Dispatch a task to an agent directly (§17.7), in a room both are members of or without one. The assignee gets a task.request envelope; the state is posted to the room\'s timeline (or to the requester). Audited task.submitted.',
    security: agentOnly, body: S.DispatchTaskBody,
    responses: v1({ 201: ok('the task, submitted', S.TaskInfo) }, {
      400: `${fieldsError('to, command, args, room, deadline_s')}; a DM as room; to neither an AMID nor a handle`,
      403: `${operatorRefused}; the caller or the assignee is not a member of the room (${E.NotMember})`,
      404: `${unknownAgent}; ${unknownRoom.replace('{id}', 'room')}`,
    }),
  },
  listTasks: {
    method: 'get', path: '/api/v1/tasks', tags: ['tasks'],
    summary: 'Tasks, newest first: the caller\'s (as requester or assignee), a visible room\'s with room, every task for wardens and masters. Page with before = next_before.',
    security: anyPrincipal, query: S.TasksQuery,
    responses: v1({ 200: ok('the tasks', S.TaskList) }, { 400: `state not a task state, ${limitError}`, 404: unknownRoom.replace('{id}', 'room') }, noBody),
  },
  getTask: {
    method: 'get', path: '/api/v1/tasks/{id}', tags: ['tasks'],
    summary: 'A task with its history of transitions.',
    security: anyPrincipal, params: S.TaskParams,
    responses: v1({ 200: ok('the task', S.TaskInfo) }, { 404: unknownTask }, noBody),
  },
  reportTask: {
    method: 'post', path: '/api/v1/tasks/{id}/status', tags: ['tasks'],
    summary: 'The assignee reports progress: working, input-required, auth-required, or a final completed, failed (from any non-final state) or rejected (from submitted only); audited task.<state>, posted to the timeline.',
    security: agentOnly, params: S.TaskParams, body: S.TaskStatusBody,
    responses: v1({ 200: ok('the task after the transition', S.TaskInfo) }, {
      400: fieldsError('state, message, result'),
      403: `the caller is not the assignee (${E.Forbidden})`,
      404: unknownTask,
      409: `a move the task's state does not allow, a final task, or the task changed meanwhile (${E.InvalidTransition})`,
      413: `a result over ${MAX_TASK_RESULT_BYTES / 1024} KiB as JSON`,
    }),
  },
  cancelTask: {
    method: 'post', path: '/api/v1/tasks/{id}/cancel', tags: ['tasks'],
    summary: 'Cancel a task that is not final: by its requester, the owner of its room or a master. The assignee gets a task.cancel envelope; audited task.canceled.',
    security: anyPrincipal, params: S.TaskParams, body: S.CancelTaskBody, bodyOptional: true,
    responses: v1({ 200: ok('the canceled task', S.TaskInfo) }, {
      400: fieldsError('reason'),
      403: `the caller is not the requester, the room's owner or a master (${E.Forbidden})`,
      404: unknownTask,
      409: `the task is final already, or changed meanwhile (${E.InvalidTransition})`,
    }),
  },

  // ---- audit (§17.8)
  readAudit: {
    method: 'get', path: '/api/v1/audit', tags: ['audit'],
    summary: 'Audit rows in seq order (§17.8): every row for masters and wardens, a worker\'s own otherwise. Page with after = next_after; before reads the newest rows first (page back with before = next_before).',
    security: anyPrincipal, query: S.AuditQuery,
    responses: v1({ 200: ok('the rows', S.AuditPage) }, {
      400: `after, limit or action malformed (${E.InvalidArgument})`,
      403: `a worker naming another actor (${E.Forbidden})`,
    }, noBody),
  },
  verifyAudit: {
    method: 'get', path: '/api/v1/audit/verify', tags: ['audit'],
    summary: 'Checks the whole hash chain of the audit log. A broken chain is a 200 answer with ok: false naming the first bad row.',
    security: anyPrincipal,
    responses: v1({ 200: ok('the verdict', S.AuditVerdict) }, {}, noBody),
  },
  auditHeads: {
    method: 'get', path: '/api/v1/audit/heads', tags: ['audit'],
    summary: 'The newest signed heads of the audit chain (§17.8): {seq, hash, at, relay, sig}, signed by the relay every 1,000 rows or 60 s while the log grows, at start and on shutdown. Keep copies: `agentmesh logs verify --heads FILE` checks a log against them, so rows deleted at the end or rewritten and re-chained are found.',
    security: anyPrincipal, query: S.AuditHeadsQuery,
    responses: v1({ 200: ok('the heads', S.AuditHeadList) }, {
      400: `limit malformed (${E.InvalidArgument})`,
    }, noBody),
  },

  // ---- settings
  getSettings: {
    method: 'get', path: '/api/v1/settings', tags: ['settings'],
    summary: 'The settings the relay runs with.',
    security: anyPrincipal,
    responses: v1({ 200: ok('the settings', S.SettingsAnswer) }, {}, noBody),
  },
  patchSettings: {
    method: 'patch', path: '/api/v1/settings', tags: ['settings'],
    summary: 'Change settings while the relay runs, by a master: fields left out (and rate_limits keys left out) keep their values. Stored, applied at once, audited settings.set.',
    security: anyPrincipal, body: S.SettingsPatch,
    responses: v1({ 200: ok('the settings now', S.SettingsAnswer) }, {
      400: fieldsError('presence_idle_ms, task_default_deadline_s, rate_limits'),
      403: `the caller is not a master (${E.Forbidden})`,
    }),
  },

  // ---- operations: files (§18)
  ...FILE_ROUTES,
  // ---- operations: system updates (§19)
  createUpdate: updateRoute.create('/api/v1'),
  listUpdates: updateRoute.list('/api/v1'),
  getUpdate: updateRoute.get('/api/v1'),
  ackUpdate: updateRoute.ack('/api/v1'),
  updateAcks: updateRoute.acks('/api/v1'),
  createUpdatePlan: updateRoute.create('/api'),
  listUpdatesPlan: updateRoute.list('/api'),
  getUpdatePlan: updateRoute.get('/api'),
  ackUpdatePlan: updateRoute.ack('/api'),
  updateAcksPlan: updateRoute.acks('/api'),
  // ---- operations: catastrophe events, backups, read-only mode (§20)
  reportCatastrophe: catastropheV1.report,
  listCatastrophes: catastropheV1.list,
  catastropheProtocols: catastropheV1.protocols,
  getCatastrophe: catastropheV1.get,
  recoverCatastrophe: catastropheV1.recovering,
  resolveCatastrophe: catastropheV1.resolve,
  reportCatastrophePlan: catastrophePlan.report,
  listCatastrophesPlan: catastrophePlan.list,
  catastropheProtocolsPlan: catastrophePlan.protocols,
  getCatastrophePlan: catastrophePlan.get,
  recoverCatastrophePlan: catastrophePlan.recovering,
  resolveCatastrophePlan: catastrophePlan.resolve,
  checkStore: {
    method: 'post', path: '/api/v1/check', tags: ['operations'],
    summary: 'Integrity on demand, by a master: the database\'s integrity check (PRAGMA quick_check, integrity_check with full) and the audit chain\'s verification. A failure is a 200 answer with ok: false; the relay then reports a db_corruption event, and a damaged database puts it in read-only mode.',
    security: anyPrincipal, body: K.CheckBody, bodyOptional: true,
    responses: v1({ 200: ok('the verdict', K.CheckResult) }, {
      400: fieldsError('full'),
      403: `the caller is not a master (${E.Forbidden})`,
    }),
  },
  takeBackup: {
    method: 'post', path: '/api/v1/backups', tags: ['operations'],
    summary: 'A consistent copy of the relay\'s database taken while it serves (SQLite\'s online backup API), by a master, into <data>/backups/ (mode 0600); the oldest past the retention count (the relay option backupKeep) go. Audited backup.taken.',
    security: anyPrincipal,
    responses: v1({ 201: ok('the backup written', K.BackupTaken) }, {
      403: `the caller is not a master (${E.Forbidden})`,
      409: `the relay's store keeps no file (the memory store) (${E.BackupUnavailable})`,
      503: `the relay is in read-only mode and its database is damaged: a backup would copy the damage (${E.ReadOnly})`,
    }, noBody),
  },
  // ---- operations: agent health and metrics (§21)
  heartbeat: {
    method: 'post', path: '/api/v1/agents/{amid}/heartbeat', tags: ['health'],
    summary: healthSummary.heartbeat,
    security: anyPrincipal, params: H.HealthParams, body: H.HeartbeatBody,
    responses: v1({ 200: ok('taken', H.HeartbeatTaken) }, heartbeatErrors),
  },
  planHeartbeat: {
    method: 'post', path: '/api/agents/{id}/heartbeat', tags: ['health'],
    summary: `${healthSummary.heartbeat} The plan's path of POST /api/v1/agents/{amid}/heartbeat: the same body, answer and rules.`,
    security: anyPrincipal, params: H.PlanHealthParams, body: H.HeartbeatBody,
    responses: v1({ 200: ok('taken', H.HeartbeatTaken) }, heartbeatErrors),
  },
  agentHealth: {
    method: 'get', path: '/api/v1/agents/{amid}/health', tags: ['health'],
    summary: healthSummary.health,
    security: anyPrincipal, params: H.HealthParams, query: H.HealthQuery,
    responses: v1({ 200: ok('the agent\'s health', H.AgentHealth) }, healthErrors, noBody),
  },
  planAgentHealth: {
    method: 'get', path: '/api/agents/{id}/health', tags: ['health'],
    summary: `${healthSummary.health} The plan's path of GET /api/v1/agents/{amid}/health.`,
    security: anyPrincipal, params: H.PlanHealthParams, query: H.HealthQuery,
    responses: v1({ 200: ok('the agent\'s health', H.AgentHealth) }, healthErrors, noBody),
  },
  healthDashboard: {
    method: 'get', path: '/api/v1/health/dashboard', tags: ['health'],
    summary: healthSummary.dashboard,
    security: anyPrincipal, query: H.DashboardQuery,
    responses: v1({ 200: ok('the fleet', H.HealthDashboard) }, dashboardErrors, noBody),
  },
  planHealthDashboard: {
    method: 'get', path: '/api/health/dashboard', tags: ['health'],
    summary: `${healthSummary.dashboard} The plan's path of GET /api/v1/health/dashboard.`,
    security: anyPrincipal, query: H.DashboardQuery,
    responses: v1({ 200: ok('the fleet', H.HealthDashboard) }, dashboardErrors, noBody),
  },
  // ---- wake-ups: wake webhooks (§26)
  putWebhook: {
    method: 'put', path: '/api/v1/webhook', tags: ['wake'],
    summary: 'Register (or replace) the calling agent\'s wake webhook: while the agent has no open connection, the relay POSTs a content-free notice {amid, pending, ts} to it when something arrives, signed with the relay\'s Ed25519 key (docs/protocol.md §26). The host is resolved now and again at each notice; private, loopback and link-local addresses are refused unless the relay allows them (webhookAllowPrivate). Audited webhook.set (not the URL).',
    security: agentOnly, body: W.PutWebhookBody,
    responses: v1({ 200: ok('registered', W.WebhookInfo) }, webhookUrlErrors),
  },
  getWebhook: {
    method: 'get', path: '/api/v1/webhook', tags: ['wake'],
    summary: 'The calling agent\'s wake webhook (url null when none) and who signs its notices (the relay\'s AMID).',
    security: agentOnly,
    responses: v1({ 200: ok('the webhook', W.WebhookInfo) }, { 403: operatorRefused }, noBody),
  },
  deleteWebhook: {
    method: 'delete', path: '/api/v1/webhook', tags: ['wake'],
    summary: 'Remove the calling agent\'s wake webhook (removed: whether it had one); notices stop. Audited webhook.clear.',
    security: agentOnly,
    responses: v1({ 200: ok('removed', W.WebhookRemoved) }, { 403: operatorRefused, 503: `the relay is in read-only mode (${E.ReadOnly})` }, noBody),
  },
  // ---- bridges: A2A (§24)
  getA2a: {
    method: 'get', path: '/api/v1/agents/{amid}/a2a', tags: ['a2a'],
    summary: 'Whether the agent takes A2A requests through the relay (§24.1), and its A2A URLs. For the agent itself and masters.',
    security: anyPrincipal, params: A.A2aParams,
    responses: v1({ 200: ok('the agent\'s A2A setting', A.A2aSetting) }, {
      403: `another agent than the caller (${E.Forbidden})`,
      404: unknownAgent,
    }, noBody),
  },
  putA2a: {
    method: 'put', path: '/api/v1/agents/{amid}/a2a', tags: ['a2a'],
    summary: 'Turns the A2A bridge on or off for the agent itself (§24.1; off by default). On, the relay serves an A2A agent card built from the agent\'s profile at /a2a/{amid}/.well-known/agent-card.json and a JSON-RPC endpoint at /a2a/{amid} that turn A2A messages into tasks for the agent: end-to-end encryption ends at the bridge. Audited a2a.enabled / a2a.disabled.',
    security: agentOnly, params: A.A2aParams, body: A.A2aSettingBody,
    responses: v1({ 200: ok('the setting now', A.A2aSetting) }, {
      400: fieldsError('enabled'),
      403: `another agent than the caller, or ${operatorRefused}`,
      404: unknownAgent,
    }),
  },
  a2aAgentCard: {
    method: 'get', path: '/a2a/{agent}/.well-known/agent-card.json', tags: ['a2a'],
    summary: 'An opted-in agent\'s A2A 1.0 agent card (§24.2), built from its registry profile: its name, skills (its capabilities and declared message schemas), the JSON-RPC interface /a2a/{amid}, streaming, and an extension saying end-to-end encryption ends at the bridge. Anyone may read it; limited per IP.',
    params: A.A2aAgentParams,
    responses: {
      200: ok('the agent card', A.A2aAgentCard),
      404: err(`no such agent, or it did not turn the A2A bridge on (${E.BridgeNotEnabled})`),
      429: tooMany(),
    },
  },
  a2aRpc: {
    method: 'post', path: '/a2a/{agent}', tags: ['a2a'],
    summary: `An opted-in agent's A2A 1.0 JSON-RPC endpoint (§24.3): SendMessage, SendStreamingMessage (text/event-stream), GetTask, ListTasks (by contextId), CancelTask, SubscribeToTask, over AgentMesh tasks \`a2a\` for the agent. JSON-RPC errors answer 200 with the A2A code and AgentMesh's code in data. Anyone may call it; limited per IP, bodies at most ${A.MAX_A2A_BODY_BYTES / 1024} KiB.`,
    params: A.A2aAgentParams, body: A.A2aRpcRequest,
    responses: {
      200: ok('a JSON-RPC response, or for the streaming methods a text/event-stream of them', A.A2aRpcResponse),
      404: err(`no such agent, or it did not turn the A2A bridge on (${E.BridgeNotEnabled})`),
      413: err(`a body over ${A.MAX_A2A_BODY_BYTES / 1024} KiB (${E.BodyTooLarge})`),
      429: tooMany(),
    },
  },
  // ---- verified owners (§28)
  startOwnerLink: {
    method: 'post', path: '/api/v1/agents/{amid}/owner/link', tags: ['owners'],
    summary: 'Start linking a verified owner to the signing agent: answers the provider\'s authorization URL (PKCE, state, nonce) for the owner to sign in at; it expires after 10 minutes. A new start replaces the agent\'s earlier one.',
    security: signed, params: S.AmidParams,
    responses: { 201: ok('the link under way', S.OwnerLinkStarted), 400: notAmid, 401: unsigned, 403: err(`signed by another agent (${E.Forbidden})`), 503: err(`no OpenID Connect provider configured (${E.OidcUnavailable})`) },
  },
  ownerCallback: {
    method: 'get', path: '/api/v1/owner/callback', tags: ['owners'],
    summary: 'Where the provider sends the owner back (redirect URI): the relay checks state, PKCE, nonce and the id token, keeps the identity for the agent to confirm, and answers a page for the person (a refusal is the usual JSON error).',
    responses: {
      200: { description: 'signed in', schema: S.HtmlPage, contentType: 'text/html; charset=UTF-8' },
      401: err(`refused: unknown or used state, the provider's error, a token that does not check out (${E.AuthFailed})`),
      404: err(`the link expired (${E.NotFound})`),
      503: err(`no OpenID Connect provider configured (${E.OidcUnavailable})`),
    },
  },
  getOwnerLink: {
    method: 'get', path: '/api/v1/agents/{amid}/owner/link/{id}', tags: ['owners'],
    summary: 'Poll a link under way: waiting until the owner signed in, then verified with the identity the agent signs.',
    security: signed, params: S.OwnerLinkParams,
    responses: { 200: ok('the link under way', S.OwnerLinkState), 401: unsigned, 403: err(`signed by another agent (${E.Forbidden})`), 404: err(`unknown or expired (${E.NotFound})`), 503: err(`no OpenID Connect provider configured (${E.OidcUnavailable})`) },
  },
  confirmOwnerLink: {
    method: 'post', path: '/api/v1/agents/{amid}/owner/link/{id}/confirm', tags: ['owners'],
    summary: 'The agent signs the statement {amid, issuer, subject, relay, ts} and the relay stores the link: the registry shows the owner and the agent\'s tier reads verified. Audited (owner.link).',
    security: signed, params: S.OwnerLinkParams, body: S.OwnerLinkBody,
    responses: {
      200: ok('the stored link', S.OwnerLink),
      400: err(`a statement not signed by the agent (${E.BadSignature}), naming another identity or relay, or a ts too far (${E.InvalidArgument})`),
      401: unsigned, 403: err(`signed by another agent (${E.Forbidden})`), 404: err(`unknown or expired (${E.NotFound})`),
      409: err(`the owner has not signed in yet (${E.OwnerLinkPending}); the owner links 100 agents already (${E.OwnerLimit})`),
      503: err(`no OpenID Connect provider configured (${E.OidcUnavailable})`),
    },
  },
  getOwner: {
    method: 'get', path: '/api/v1/agents/{amid}/owner', tags: ['owners'],
    summary: 'The agent\'s verified owner, with the agent\'s signed statement (anyone may check it again).',
    params: S.AmidParams,
    responses: { 200: ok('the link', S.OwnerLink), 400: notAmid, 404: err(`no verified owner (${E.NotFound})`) },
  },
  deleteOwner: {
    method: 'delete', path: '/api/v1/agents/{amid}/owner', tags: ['owners'],
    summary: 'Unlink the agent\'s verified owner: by the agent (signed) or the operator (X-API-Key). The tier drops to what its certificate gives. Audited (owner.unlink).',
    security: [{ agentSignature: [] }, { apiKey: [] }], params: S.AmidParams,
    responses: { 200: ok('unlinked', S.OwnerUnlinked), 400: notAmid, 401: unsigned, 403: err(`signed by another agent (${E.Forbidden})`), 404: err(`no verified owner (${E.NotFound})`) },
  },
  metrics: {
    method: 'get', path: '/metrics', tags: ['health'],
    summary: 'The relay\'s metrics for Prometheus (§21.5), in the text exposition format: connections, messages in and out, acks, inbox depths, store commit times, errors by code, health states, and what other features register. Read by the operator\'s X-API-Key, a master agent, or "Authorization: Bearer <token>" with the relay\'s metrics token (option metricsToken).',
    security: [{ apiKey: [] }, { bearerAuth: [] }, { agentSignature: [] }],
    responses: {
      200: { description: 'the metrics', schema: H.MetricsText, contentType: 'text/plain; version=0.0.4; charset=utf-8' },
      400: err(authErrors[400]),
      401: err(`${authErrors[401]}; a bearer token that is neither an agent's token nor the metrics token`),
      403: err(`the caller is not a master (${E.Forbidden}); ${authErrors[403]}`),
      429: tooMany(),
    },
  },
} as const satisfies Record<string, ApiRoute>

export type ApiRoutes = typeof API_ROUTES
export type RouteName = keyof ApiRoutes

type Responses<R extends RouteName> = ApiRoutes[R]['responses']
type SuccessSchema<R extends RouteName> = {
  [K in keyof Responses<R>]: K extends 200 | 201 ? Responses<R>[K] extends { schema: infer T extends TSchema } ? T : never : never
}[keyof Responses<R>]
/** What route `R` answers on success (its 200 or 201 body). */
export type ApiAnswer<R extends RouteName> = Static<SuccessSchema<R>>
/** The body route `R` takes. */
export type ApiBody<R extends RouteName> = ApiRoutes[R] extends { body: infer T extends TSchema } ? Static<T> : never
/** The query route `R` takes. */
export type ApiQuery<R extends RouteName> = ApiRoutes[R] extends { query: infer T extends TSchema } ? Static<T> : never
