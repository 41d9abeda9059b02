/** OpenAPI 3.1 description of the REST API, served at /api/v1/openapi.json. A test checks it against the routes. */
import { CertificateBody, PrekeyBody, ProfileBody, SkillSchema } from './registry.ts'
import { MAX_CRL_BYTES, MAX_CRLS } from './certificates.ts'
import { DEFAULT_REPUTATION, FeedbackBody, MAX_FLAGS_PER_AGENT } from './reputation.ts'
import { AMID_PATTERN, EnvelopeSchema, ErrorCode, ID_PATTERN, ROOM_ID_PATTERN, TYPE_PATTERN } from '@agentmesh/protocol'
import { DEFAULT_PAGE, MAX_API_BODY_BYTES, MAX_PAGE } from './api-v1.ts'
import { CHALLENGE_TTL_MS, DEFAULT_TOKEN_TTL_MS } from './auth.ts'
import { DEFAULT_CHAT_LIMITS, HANDLE_PATTERN, RESERVED_HANDLES, defaultChatSettings, settingsJson } from './chat.ts'
import { COMMAND_PATTERN, MAX_TASK_DEADLINE_S, MAX_TASK_MESSAGE, MAX_TASK_RESULT_BYTES, TASK_STATES } from './tasks.ts'

const json = (schema: unknown) => ({ 'application/json': { schema } })
const amidParam = { name: 'amid', in: 'path', required: true, schema: { type: 'string', pattern: '^am[1-9A-HJ-NP-Za-km-z]{42,46}$' }, description: 'agent id' }
const profileSchema = { $ref: '#/components/schemas/Profile' }
const certificateSchema = { $ref: '#/components/schemas/Certificate' }
const crlSchema = { $ref: '#/components/schemas/Crl' }
const reputationSchema = { $ref: '#/components/schemas/Reputation' }
const certErrors = 'AM_ERR_CERT_INVALID (unreadable, not one certificate per entry, wrong role), AM_ERR_CERT_CHAIN_BROKEN (a link does not lead to the next, or no trusted root), AM_ERR_CERT_EXPIRED, AM_ERR_CERT_REVOKED (listed in a CRL the relay holds); the message names the link'
const signed = [{ agentSignature: [] }]
const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable code, see docs/errors.md', example: 'AM_ERR_NOT_FOUND' },
        message: { type: 'string' },
      },
    },
  },
} as const

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
})

// ---------------------------------------------------------------- chat REST API v1 (docs/protocol.md §17)

const E = ErrorCode
const { $id: _envelopeId, ...envelopeSchema } = EnvelopeSchema
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const roomSchema = ref('Room')
const taskSchema = ref('Task')
const settingsSchema = ref('Settings')
const amidString = { type: 'string', pattern: AMID_PATTERN, description: 'agent id (AMID)' }
const agentRef = { type: 'string', minLength: 1, description: 'an AMID, or @handle (a bare handle works too)' }
const ms = (what = 'ms since the Unix epoch') => ({ type: 'integer', description: what })
const roomParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: ROOM_ID_PATTERN }, description: 'room id ("global", a public or private room\'s id, or "dm-…"); a leading "#" (%23) is accepted' }
const taskParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'task id' }
const limitParam = { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE } }
const limitError = `limit not a whole number from 1 to ${MAX_PAGE} (${E.InvalidArgument})`
/** Any principal: an agent's bearer token or signed request, or the operator's key (role master). */
const anyPrincipal = [{ bearerAuth: [] }, { agentSignature: [] }, { apiKey: [] }]
/** Done by an agent for itself: the operator's key is refused (403). */
const agentOnly = [{ bearerAuth: [] }, { agentSignature: [] }]
const operatorRefused = `the operator's X-API-Key: this is done by an agent for itself (${E.Forbidden})`
const bodyBytes = `${MAX_API_BODY_BYTES / 1024} KiB`
const defaults = defaultChatSettings()
const retryAfter = { 'Retry-After': { schema: { type: 'integer', minimum: 1 }, description: 'seconds until the request may succeed' } }
const rateLimitText = `more than the REST rate limits allow (${E.RateLimited}): per IP (rate_limits.ip_per_minute / ip_burst, default ${defaults.rateLimits.ip.perMinute} a minute, bursts of ${defaults.rateLimits.ip.burst}) and per agent or operator key (rate_limits.api_per_minute / api_burst, default ${defaults.rateLimits.api.perMinute} a minute, bursts of ${defaults.rateLimits.api.burst}); wait Retry-After seconds`
const tooMany = (extra?: string) => ({ ...errorResponse(extra === undefined ? rateLimitText : `${rateLimitText}; ${extra}`), headers: retryAfter })
const authErrors = {
  400: `an Authorization header that is not "Bearer <token>", malformed X-AgentMesh-* headers (${E.InvalidArgument}), or a body that is not JSON (${E.BadJson})`,
  401: `no credentials (${E.NotAuthenticated}); an invalid or expired bearer token, an X-API-Key that is not the operator's (or the relay has none), a bad or stale request signature (${E.AuthFailed}); a signed request replayed (${E.AuthReplayed})`,
  403: `the token's or signature's agent is not registered on this relay (${E.Forbidden})`,
}

/**
 * The responses of an authenticated v1 operation: its success answers, its own errors (by status),
 * and the errors of authentication and rate limiting every one of them can answer.
 */
function v1 (ok: Record<number, unknown>, errors: Partial<Record<400 | 403 | 404 | 409 | 413 | 422 | 503, string>> = {}, opts: { body?: boolean, tooMany?: string } = {}): Record<number, unknown> {
  const join = (own: string | undefined, common: string): string => own === undefined ? common : `${own}; ${common}`
  return {
    ...ok,
    400: errorResponse(join(errors[400], authErrors[400])),
    401: errorResponse(authErrors[401]),
    403: errorResponse(join(errors[403], authErrors[403])),
    ...(errors[404] === undefined ? {} : { 404: errorResponse(errors[404]) }),
    ...(errors[409] === undefined ? {} : { 409: errorResponse(errors[409]) }),
    ...(opts.body === false ? {} : { 413: errorResponse(join(errors[413], `body over ${bodyBytes} (${E.BodyTooLarge})`)) }),
    ...(errors[422] === undefined ? {} : { 422: errorResponse(errors[422]) }),
    429: tooMany(opts.tooMany),
    ...(errors[503] === undefined ? {} : { 503: errorResponse(errors[503]) }),
  }
}
const noBody = { body: false }
const unknownRoom = `no room {id} that the caller can see: private rooms and DMs exist only for their members (and masters) (${E.UnknownRoom})`
const unknownAgent = `no agent by that AMID is registered (${E.UnknownRecipient}), or no agent has that handle (${E.UnknownHandle})`
const unknownTask = `no task {id} that the caller can see: its requester, its assignee, members of its room, wardens and masters see it (${E.UnknownTask})`
const fieldsError = (fields: string) => `a body that is not a JSON object, an unknown field (expected ${fields}), or a field out of bounds, naming it (${E.InvalidArgument})`
const ok = (description: string, schema: unknown) => ({ description, content: json(schema) })
const topicSchema = { type: ['string', 'null'], maxLength: DEFAULT_CHAT_LIMITS.maxTopicLength, description: `at most ${DEFAULT_CHAT_LIMITS.maxTopicLength} characters; null, "" or left out: no topic` }
const roomAgent = (flag: 'invited' | 'kicked') => ({ type: 'object', required: ['room', 'agent', flag], properties: { room: { type: 'string', description: 'room id' }, agent: amidString, [flag]: { const: true } } })

const chatPaths = {
  '/api/v1/auth/challenge': {
    post: {
      operationId: 'authChallenge',
      summary: `Ask for a challenge to sign for a bearer token (§17.8). Unauthenticated; answer it within ${CHALLENGE_TTL_MS / 1000} s with POST /api/v1/auth/token.`,
      security: [],
      requestBody: { required: true, content: json({ type: 'object', required: ['amid'], properties: { amid: amidString } }) },
      responses: {
        200: ok('the challenge', { type: 'object', required: ['nonce', 'relay', 'expires_at'], properties: { nonce: { type: 'string', description: 'base64url, single use' }, relay: { type: 'string', description: 'the relay id to sign with (as in the WebSocket auth, §3)' }, expires_at: ms() } }),
        400: errorResponse(`a body that is not a JSON object (${E.InvalidArgument}, ${E.BadJson}), or amid is not an AMID (${E.InvalidArgument})`),
        413: errorResponse(`body over ${bodyBytes} (${E.BodyTooLarge})`),
        429: tooMany(),
      },
    },
  },
  '/api/v1/auth/token': {
    post: {
      operationId: 'authToken',
      summary: `Exchange a signed challenge for a bearer token (a JWT the relay signs, EdDSA; valid ${DEFAULT_TOKEN_TTL_MS / 60_000} minutes). sig is the agent's Ed25519 signature over the challenge exactly as in the WebSocket auth (§3). Unauthenticated; each challenge is answered once, right or wrong.`,
      security: [],
      requestBody: {
        required: true,
        content: json({ type: 'object', required: ['amid', 'nonce', 'sig'], properties: { amid: amidString, nonce: { type: 'string' }, sig: { type: 'string', description: 'base64url Ed25519 signature' } } }),
      },
      responses: {
        200: ok('the token', { type: 'object', required: ['token', 'token_type', 'expires_at'], properties: { token: { type: 'string' }, token_type: { const: 'Bearer' }, expires_at: ms() } }),
        400: errorResponse(`a body that is not a JSON object, or amid, nonce or sig missing or not strings (${E.InvalidArgument}, ${E.BadJson})`),
        401: errorResponse(`the challenge is unknown, used, expired or for another AMID (${E.AuthReplayed}); the signature does not verify (${E.AuthFailed})`),
        403: errorResponse(`the agent is not registered on this relay (${E.Forbidden})`),
        413: errorResponse(`body over ${bodyBytes} (${E.BodyTooLarge})`),
        429: tooMany(),
      },
    },
  },
  '/api/v1/rooms': {
    get: {
      operationId: 'listRooms',
      summary: 'Rooms the caller can see, by id: the global room, public rooms and the caller\'s own (masters: every room but DMs). Page with after = the last id.',
      security: anyPrincipal,
      parameters: [{ name: 'after', in: 'query', schema: { type: 'string' }, description: 'room ids after this one' }, limitParam],
      responses: v1({ 200: ok('the rooms', { type: 'object', required: ['rooms'], properties: { rooms: { type: 'array', items: roomSchema } } }) }, { 400: limitError }, noBody),
    },
    post: {
      operationId: 'createRoom',
      summary: 'Create a public or private room; the calling agent owns it (audited room.create).',
      security: agentOnly,
      requestBody: {
        required: true,
        content: json({
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: ROOM_ID_PATTERN, description: '"global" and ids starting with "dm-" are reserved' },
            kind: { enum: ['public', 'private'], default: 'public' },
            topic: topicSchema,
          },
        }),
      },
      responses: v1({ 201: ok('the room', roomSchema) }, {
        400: fieldsError('id, kind, topic') + '; a reserved id',
        403: operatorRefused,
        409: `a room with this id exists (or a private room you cannot see has it) (${E.RoomExists})`,
      }, { tooMany: `or the agent owns ${DEFAULT_CHAT_LIMITS.maxRoomsPerAgent} rooms already (the limit; answered without Retry-After)` }),
    },
  },
  '/api/v1/rooms/{id}': {
    get: {
      operationId: 'getRoom',
      summary: 'A room as the caller sees it.',
      security: anyPrincipal,
      parameters: [roomParam],
      responses: v1({ 200: ok('the room', roomSchema) }, { 404: unknownRoom }, noBody),
    },
  },
  '/api/v1/rooms/{id}/members': {
    get: {
      operationId: 'listMembers',
      summary: 'A room\'s members with their presence and read marker. The global room\'s are not listed (see GET /api/v1/presence).',
      security: anyPrincipal,
      parameters: [roomParam],
      responses: v1({
        200: ok('the members', { type: 'object', required: ['room', 'members'], properties: { room: { type: 'string' }, members: { type: 'array', items: ref('Member') } } }),
      }, { 400: `the global room (${E.InvalidArgument})`, 404: unknownRoom }, noBody),
    },
  },
  '/api/v1/rooms/{id}/join': {
    post: {
      operationId: 'joinRoom',
      summary: 'Join a public room, or a private room the caller was invited to (audited room.join). Joining the global room or a room the caller is in changes nothing (already: true).',
      security: agentOnly,
      parameters: [roomParam],
      responses: v1({
        200: ok('joined', { type: 'object', required: ['room', 'joined', 'already'], properties: { room: roomSchema, joined: { const: true }, already: { type: 'boolean' } } }),
      }, {
        403: operatorRefused,
        404: `no such room, a DM, or a private room the caller was not invited to (${E.UnknownRoom})`,
      }, { tooMany: `or the room has ${DEFAULT_CHAT_LIMITS.maxMembersPerRoom} members (the limit; answered without Retry-After)` }),
    },
  },
  '/api/v1/rooms/{id}/leave': {
    post: {
      operationId: 'leaveRoom',
      summary: 'Leave a room (audited room.leave). The global room and DMs cannot be left.',
      security: agentOnly,
      parameters: [roomParam],
      responses: v1({
        200: ok('left', { type: 'object', required: ['room', 'left'], properties: { room: { type: 'string' }, left: { const: true } } }),
      }, {
        400: `the global room or a DM (${E.InvalidArgument})`,
        403: `${operatorRefused}; the caller is not a member (${E.NotMember})`,
        404: unknownRoom,
      }),
    },
  },
  '/api/v1/rooms/{id}/invite': {
    post: {
      operationId: 'inviteToRoom',
      summary: 'Invite an agent (audited room.invite): to a private room by its owner or a master, to a public room by its members (and masters). The invitee may then join.',
      security: anyPrincipal,
      parameters: [roomParam],
      requestBody: { required: true, content: json({ type: 'object', required: ['agent'], additionalProperties: false, properties: { agent: agentRef } }) },
      responses: v1({ 200: ok('the room and the invited agent', roomAgent('invited')) }, {
        400: `${fieldsError('agent')}; the global room or a DM (they take no invitations); agent neither an AMID nor a handle`,
        403: `a private room and the caller is not its owner or a master (${E.Forbidden}); a public room the caller is not a member of (${E.NotMember})`,
        404: `${unknownRoom}; ${unknownAgent}`,
      }),
    },
  },
  '/api/v1/rooms/{id}/kick': {
    post: {
      operationId: 'kickFromRoom',
      summary: 'Remove a member (audited room.kick): by the room\'s owner, a warden (public rooms) or a master. The owner cannot be kicked.',
      security: anyPrincipal,
      parameters: [roomParam],
      requestBody: { required: true, content: json({ type: 'object', required: ['agent'], additionalProperties: false, properties: { agent: agentRef } }) },
      responses: v1({ 200: ok('the room and the removed agent', roomAgent('kicked')) }, {
        400: `${fieldsError('agent')}; the global room or a DM; agent neither an AMID nor a handle`,
        403: `the caller may not moderate the room, or kicks its owner (${E.Forbidden}); the agent is not a member (${E.NotMember})`,
        404: `${unknownRoom}; ${unknownAgent}`,
      }),
    },
  },
  '/api/v1/rooms/{id}/topic': {
    put: {
      operationId: 'setRoomTopic',
      summary: 'Set or clear a room\'s topic (audited room.topic): by its owner, a warden (public rooms and the global room) or a master. Outside private rooms the relay posts a notice to the room.',
      security: anyPrincipal,
      parameters: [roomParam],
      requestBody: { required: true, content: json({ type: 'object', additionalProperties: false, properties: { topic: topicSchema } }) },
      responses: v1({ 200: ok('the room', roomSchema) }, {
        400: `${fieldsError('topic')}; a DM (it has no topic)`,
        403: `the caller may not moderate the room (${E.Forbidden})`,
        404: unknownRoom,
      }),
    },
  },
  '/api/v1/rooms/{id}/history': {
    get: {
      operationId: 'roomHistory',
      summary: 'A room\'s stored messages, oldest first: the newest page (or, with before, the page before that seq; follow next_before), or with after the messages after that seq (follow next_after). Members only for public rooms (masters read every room); private rooms hold ciphertext; DMs have no history.',
      security: anyPrincipal,
      parameters: [
        roomParam,
        { name: 'before', in: 'query', schema: { type: 'integer', minimum: 1 }, description: 'messages with a smaller room seq' },
        { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'messages with a larger room seq (wins over before)' },
        limitParam,
      ],
      responses: v1({
        200: ok('a page of history', {
          type: 'object',
          required: ['room', 'messages', 'last_seq'],
          properties: {
            room: { type: 'string' },
            messages: { type: 'array', items: ref('HistoryMessage') },
            next_before: { type: 'integer', description: 'present when older messages may remain (paging backwards)' },
            next_after: { type: 'integer', description: 'present when newer messages may remain (paging with after)' },
            last_seq: { type: 'integer', description: 'the room\'s newest seq (0 when empty)' },
          },
        }),
      }, {
        400: `before, after or limit out of bounds (${E.InvalidArgument})`,
        403: `a public room the caller is not a member of (${E.NotMember})`,
        404: unknownRoom,
        422: `a DM: it is end-to-end encrypted and kept only until delivered (${E.EncryptionRequired})`,
      }, noBody),
    },
  },
  '/api/v1/rooms/{id}/messages/{seq}': {
    delete: {
      operationId: 'deleteMessage',
      summary: 'Delete a room message (audited message.delete): by its sender, the room\'s owner, a warden (not in private rooms) or a master. Its envelope is dropped; a tombstone stays in the history.',
      security: anyPrincipal,
      parameters: [roomParam, { name: 'seq', in: 'path', required: true, schema: { type: 'integer', minimum: 1 }, description: 'the message\'s room seq' }],
      responses: v1({
        200: ok('deleted', { type: 'object', required: ['room', 'seq', 'deleted'], properties: { room: { type: 'string' }, seq: { type: 'integer' }, deleted: { const: true } } }),
      }, {
        400: `seq is not a whole number (${E.InvalidArgument})`,
        403: `the caller is not the sender, the owner, a warden (outside private rooms) or a master (${E.Forbidden})`,
        404: `${unknownRoom}; no message with this seq, or it is deleted already (${E.NotFound})`,
      }),
    },
  },
  '/api/v1/messages': {
    post: {
      operationId: 'postMessage',
      summary: 'Post a message (§17.6). With text/payload the relay builds the envelope from the calling agent and signs it itself (via = the relay\'s AMID); with the operator\'s key the message comes from the relay. With envelope, an envelope the calling agent signed is stored as over the WebSocket (the only way to post to a private room or an end-to-end encrypted DM). A DM built by the relay needs plaintext: true. Stored (and audited message.send) before the answer; a retry with the same id is answered duplicate: true. A /command in the global or a public room dispatches a task (§17.7).',
      security: anyPrincipal,
      requestBody: { required: true, content: json(ref('PostMessage')) },
      responses: v1({
        201: ok('stored', ref('MessagePosted')),
        200: ok('a duplicate (same sender and id): nothing was stored', ref('MessagePosted')),
      }, {
        400: `${fieldsError('to, text, payload, type, id, plaintext — or envelope alone')}: text not a string, payload not an object, neither given, a reserved or malformed type, a malformed id, to not "#room", an AMID or a handle; an envelope that does not validate or sets via (${E.InvalidEnvelope})`,
        403: `an envelope posted with the operator's key (${E.Forbidden}); a room the agent is not a member of (${E.NotMember})`,
        404: `no room to post to (a private room you are not in, a DM id) (${E.UnknownRoom}); ${unknownAgent}`,
        413: `an envelope over ${bodyBytes}`,
        422: `a DM without plaintext: true, a private room without an e2ee.group envelope, or the operator posting to a private room (${E.EncryptionRequired})`,
        503: `the recipient's inbox is full (${E.InboxFull}); try again later`,
      }, { tooMany: `or, for a room message, the chat limits (rate_limits.chat_* per agent, chat_ip_* per IP, default ${defaults.rateLimits.chat.perMinute} and ${defaults.rateLimits.chatIp.perMinute} a minute)` }),
    },
  },
  '/api/v1/presence': {
    get: {
      operationId: 'presence',
      summary: 'Who is online or idle (at most 10,000); with room, every member of that room, offline ones included.',
      security: anyPrincipal,
      parameters: [{ name: 'room', in: 'query', schema: { type: 'string' }, description: 'a room id (with or without "#"); "global" is the same as none' }],
      responses: v1({ 200: ok('the agents', { type: 'object', required: ['agents'], properties: { agents: { type: 'array', items: ref('Presence') } } }) }, { 404: unknownRoom.replace('{id}', '{room}') }, noBody),
    },
  },
  '/api/v1/handles': {
    post: {
      operationId: 'setHandle',
      summary: `Set the calling agent's handle (a master may set any agent's, naming it in amid; the operator must). Handles are unique case-insensitively; the previous one is freed at once; ${[...RESERVED_HANDLES].join(', ')} are reserved. Audited handle.set.`,
      security: anyPrincipal,
      requestBody: {
        required: true,
        content: json({ type: 'object', required: ['handle'], additionalProperties: false, properties: { handle: { type: 'string', pattern: HANDLE_PATTERN.source }, amid: { ...amidString, description: 'the agent to name; the caller when left out (required with the operator\'s key)' } } }),
      },
      responses: v1({
        201: ok('the agent\'s first handle', ref('HandleSet')),
        200: ok('the handle changed (previous is the old one)', ref('HandleSet')),
      }, {
        400: `${fieldsError('handle, amid')}: a malformed or reserved handle; the operator without amid`,
        403: `an agent (not a master) naming another agent (${E.Forbidden})`,
        404: `no agent amid is registered (${E.UnknownRecipient})`,
        409: `another agent holds the handle, or the agent holds it already (${E.HandleTaken})`,
      }),
    },
  },
  '/api/v1/handles/{handle}': {
    get: {
      operationId: 'resolveHandle',
      summary: 'The AMID holding a handle (any case; a leading "@" is ignored), or given an AMID, that agent\'s handle.',
      security: anyPrincipal,
      parameters: [{ name: 'handle', in: 'path', required: true, schema: { type: 'string' }, description: 'a handle, or an AMID to look up its handle' }],
      responses: v1({
        200: ok('the handle as held and its agent', { type: 'object', required: ['handle', 'amid'], properties: { handle: { type: 'string' }, amid: amidString } }),
      }, { 400: `not a handle (${E.InvalidArgument})`, 404: `no agent has the handle, or the agent has none (${E.UnknownHandle})` }, noBody),
    },
  },
  '/api/v1/agents/{amid}/role': {
    put: {
      operationId: 'setRole',
      summary: 'Set an agent\'s role (§17.2), by a master (audited role.set).',
      security: anyPrincipal,
      parameters: [amidParam],
      requestBody: { required: true, content: json({ type: 'object', required: ['role'], additionalProperties: false, properties: { role: { enum: ['master', 'warden', 'worker'] } } }) },
      responses: v1({
        200: ok('the role set', { type: 'object', required: ['amid', 'role'], properties: { amid: amidString, role: { enum: ['master', 'warden', 'worker'] } } }),
      }, {
        400: `not an AMID, ${fieldsError('role')}`,
        403: `the caller is not a master (${E.Forbidden})`,
        404: `no agent {amid} is registered (${E.UnknownRecipient})`,
      }),
    },
  },
  '/api/v1/roles': {
    get: {
      operationId: 'listRoles',
      summary: 'The agents with a role other than the default (worker).',
      security: anyPrincipal,
      responses: v1({
        200: ok('the roles', {
          type: 'object',
          required: ['roles', 'default'],
          properties: {
            roles: { type: 'array', items: { type: 'object', required: ['amid', 'role'], properties: { amid: amidString, role: { enum: ['master', 'warden', 'worker'] } } } },
            default: { const: 'worker' },
          },
        }),
      }, {}, noBody),
    },
  },
  '/api/v1/tasks': {
    post: {
      operationId: 'dispatchTask',
      summary: 'Dispatch a task to an agent directly (§17.7), in a room both are members of or without one. The assignee gets a task.request envelope; the state is posted to the room\'s timeline (or to the requester). Audited task.submitted.',
      security: agentOnly,
      requestBody: {
        required: true,
        content: json({
          type: 'object',
          required: ['to', 'command'],
          additionalProperties: false,
          properties: {
            to: { ...agentRef, description: 'the assignee: an AMID or @handle' },
            command: { type: 'string', pattern: '^/?[a-z][a-z0-9_-]{0,31}$', description: 'e.g. "status" (a leading "/" is dropped)' },
            args: { type: 'string', maxLength: 4096, default: '' },
            room: { type: 'string', description: 'a room id (not a DM) both the caller and the assignee are members of' },
            deadline_s: { type: 'integer', minimum: 1, maximum: MAX_TASK_DEADLINE_S, description: `seconds; default task_default_deadline_s (${defaults.taskDefaultDeadlineS})` },
          },
        }),
      },
      responses: v1({ 201: ok('the task, submitted', taskSchema) }, {
        400: `${fieldsError('to, command, args, room, deadline_s')}; a DM as room; to neither an AMID nor a handle`,
        403: `${operatorRefused}; the caller or the assignee is not a member of the room (${E.NotMember})`,
        404: `${unknownAgent}; ${unknownRoom.replace('{id}', 'room')}`,
      }),
    },
    get: {
      operationId: 'listTasks',
      summary: 'Tasks, newest first: the caller\'s (as requester or assignee), a visible room\'s with room, every task for wardens and masters. Page with before = next_before.',
      security: anyPrincipal,
      parameters: [
        { name: 'room', in: 'query', schema: { type: 'string' } },
        { name: 'state', in: 'query', schema: { enum: TASK_STATES } },
        { name: 'before', in: 'query', schema: { type: 'string' }, description: 'a task id: tasks created before it' },
        limitParam,
      ],
      responses: v1({
        200: ok('the tasks', { type: 'object', required: ['tasks'], properties: { tasks: { type: 'array', items: taskSchema }, next_before: { type: 'string', description: 'present when the page is full' } } }),
      }, { 400: `state not a task state, ${limitError}`, 404: unknownRoom.replace('{id}', 'room') }, noBody),
    },
  },
  '/api/v1/tasks/{id}': {
    get: {
      operationId: 'getTask',
      summary: 'A task with its history of transitions.',
      security: anyPrincipal,
      parameters: [taskParam],
      responses: v1({ 200: ok('the task', taskSchema) }, { 404: unknownTask }, noBody),
    },
  },
  '/api/v1/tasks/{id}/status': {
    post: {
      operationId: 'reportTask',
      summary: 'The assignee reports progress: working, input-required, auth-required, or a final completed, failed (from any non-final state) or rejected (from submitted only); audited task.<state>, posted to the timeline.',
      security: agentOnly,
      parameters: [taskParam],
      requestBody: {
        required: true,
        content: json({
          type: 'object',
          required: ['state'],
          additionalProperties: false,
          properties: {
            state: { enum: TASK_STATES },
            message: { type: 'string', maxLength: MAX_TASK_MESSAGE, description: 'a question for input-required, a reason for failed / rejected' },
            result: { description: `any JSON, at most ${MAX_TASK_RESULT_BYTES / 1024} KiB` },
          },
        }),
      },
      responses: v1({ 200: ok('the task after the transition', taskSchema) }, {
        400: `${fieldsError('state, message, result')}`,
        403: `the caller is not the assignee (${E.Forbidden})`,
        404: unknownTask,
        409: `a move the task's state does not allow, a final task, or the task changed meanwhile (${E.InvalidTransition})`,
        413: `a result over ${MAX_TASK_RESULT_BYTES / 1024} KiB as JSON`,
      }),
    },
  },
  '/api/v1/tasks/{id}/cancel': {
    post: {
      operationId: 'cancelTask',
      summary: 'Cancel a task that is not final: by its requester, the owner of its room or a master. The assignee gets a task.cancel envelope; audited task.canceled.',
      security: anyPrincipal,
      parameters: [taskParam],
      requestBody: { required: false, content: json({ type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: MAX_TASK_MESSAGE, default: 'canceled' } } }) },
      responses: v1({ 200: ok('the canceled task', taskSchema) }, {
        400: fieldsError('reason'),
        403: `the caller is not the requester, the room's owner or a master (${E.Forbidden})`,
        404: unknownTask,
        409: `the task is final already, or changed meanwhile (${E.InvalidTransition})`,
      }),
    },
  },
  '/api/v1/audit': {
    get: {
      operationId: 'readAudit',
      summary: 'Audit rows in seq order (§17.8): every row for masters and wardens, a worker\'s own otherwise. Page with after = next_after.',
      security: anyPrincipal,
      parameters: [
        { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'rows with a larger seq' },
        limitParam,
        { name: 'actor', in: 'query', schema: { type: 'string' }, description: 'an AMID, "operator" or "relay"; a worker may only name itself' },
        { name: 'action', in: 'query', schema: { type: 'string', pattern: '^[a-z][a-z0-9._-]{0,63}$' }, description: 'e.g. message.send, room.join' },
      ],
      responses: v1({
        200: ok('the rows', { type: 'object', required: ['entries'], properties: { entries: { type: 'array', items: ref('AuditEntry') }, next_after: { type: 'integer', description: 'present when the page is full' } } }),
      }, { 400: `after, limit or action malformed (${E.InvalidArgument})`, 403: `a worker naming another actor (${E.Forbidden})` }, noBody),
    },
  },
  '/api/v1/audit/verify': {
    get: {
      operationId: 'verifyAudit',
      summary: 'Checks the whole hash chain of the audit log. A broken chain is a 200 answer with ok: false naming the first bad row.',
      security: anyPrincipal,
      responses: v1({
        200: ok('the verdict', {
          oneOf: [
            { type: 'object', required: ['ok', 'rows'], properties: { ok: { const: true }, rows: { type: 'integer' }, last_seq: { type: 'integer' }, last_hash: { type: 'string' }, from_seq: { type: 'integer', description: 'the first row kept, when older rows were dropped for retention (audit.pruned rows say so)' } } },
            { type: 'object', required: ['ok', 'rows', 'seq', 'reason', 'code'], properties: { ok: { const: false }, rows: { type: 'integer' }, seq: { type: 'integer', description: 'the first bad row' }, reason: { type: 'string' }, code: { const: E.AuditTampered } } },
          ],
        }),
      }, {}, noBody),
    },
  },
  '/api/v1/settings': {
    get: {
      operationId: 'getSettings',
      summary: 'The settings the relay runs with.',
      security: anyPrincipal,
      responses: v1({ 200: ok('the settings', { type: 'object', required: ['settings'], properties: { settings: settingsSchema } }) }, {}, noBody),
    },
    patch: {
      operationId: 'patchSettings',
      summary: 'Change settings while the relay runs, by a master: fields left out (and rate_limits keys left out) keep their values. Stored, applied at once, audited settings.set.',
      security: anyPrincipal,
      requestBody: { required: true, content: json(ref('SettingsPatch')) },
      responses: v1({ 200: ok('the settings now', { type: 'object', required: ['settings'], properties: { settings: settingsSchema } }) }, {
        400: fieldsError('presence_idle_ms, task_default_deadline_s, rate_limits'),
        403: `the caller is not a master (${E.Forbidden})`,
      }),
    },
  },
}

const defaultRates = settingsJson(defaults).rate_limits as Record<string, number>
const rateKeys = Object.keys(defaultRates)
const settingsProps = {
  presence_idle_ms: { type: 'integer', minimum: 1000, maximum: 7 * 86_400_000, default: defaults.presenceIdleMs, description: 'quiet time after which an online agent shows as idle' },
  task_default_deadline_s: { type: 'integer', minimum: 1, maximum: MAX_TASK_DEADLINE_S, default: defaults.taskDefaultDeadlineS, description: 'deadline of a task dispatched without one' },
  rate_limits: {
    type: 'object',
    additionalProperties: false,
    description: 'token buckets: REST requests per agent (api_*) and per IP (ip_*), room messages and signals over the WebSocket per agent (chat_*) and per IP (chat_ip_*)',
    properties: Object.fromEntries(rateKeys.map(k => [k, { type: 'integer', minimum: 1, maximum: 1_000_000, default: defaultRates[k] }])),
  },
}
const chatSchemas = {
  Room: {
    type: 'object',
    required: ['id', 'kind', 'created_at', 'members', 'joined', 'last_seq'],
    properties: {
      id: { type: 'string' },
      kind: { enum: ['global', 'public', 'private', 'dm'] },
      topic: { type: 'string' },
      owner: { ...amidString, description: 'the agent that created it (absent for global and DMs)' },
      created_at: ms(),
      members: { type: 'integer', description: 'how many members (for global: registered agents)' },
      joined: { type: 'boolean', description: 'the calling agent is a member' },
      role: { enum: ['owner', 'member'], description: 'the calling agent\'s role in the room, when it is a member (not for global)' },
      last_seq: { type: 'integer', description: 'the newest room seq (0 when empty)' },
    },
  },
  Member: {
    type: 'object',
    required: ['amid', 'role', 'joined_at', 'presence'],
    properties: {
      amid: amidString,
      handle: { type: 'string' },
      role: { enum: ['owner', 'member'] },
      joined_at: ms(),
      presence: { enum: ['online', 'idle', 'offline'] },
      read_up_to: { type: 'integer', description: 'the room seq it read up to (read signals, §17.4)' },
    },
  },
  HistoryMessage: {
    type: 'object',
    required: ['seq', 'id', 'from', 'received_at'],
    description: 'A stored room message, or the tombstone of a deleted one (deleted, without its content).',
    oneOf: [{ required: ['type', 'ts', 'payload', 'envelope'] }, { required: ['deleted'] }],
    properties: {
      seq: { type: 'integer', description: 'room seq, from 1' },
      id: { type: 'string' },
      from: amidString,
      from_handle: { type: 'string', description: 'the sender\'s handle ("relay" for the relay)' },
      received_at: ms(),
      type: { type: 'string' },
      ts: ms('the sender\'s timestamp, ms since the Unix epoch'),
      text: { type: 'string', description: 'payload.text, when a string (not for e2ee.group)' },
      payload: { type: 'object' },
      via: { ...amidString, description: 'the relay that signed it for the sender (§17.6)' },
      envelope: ref('Envelope'),
      deleted: { type: 'object', required: ['by', 'at'], properties: { by: { type: 'string' }, at: ms() } },
    },
  },
  Envelope: envelopeSchema,
  PostMessage: {
    oneOf: [
      {
        type: 'object',
        required: ['to'],
        anyOf: [{ required: ['text'] }, { required: ['payload'] }],
        additionalProperties: false,
        properties: {
          to: { type: 'string', description: '"#room", an AMID or @handle' },
          text: { type: 'string' },
          payload: { type: 'object', description: 'merged under text' },
          type: { type: 'string', pattern: TYPE_PATTERN, default: 'chat', description: 'not e2ee*, task.* or notice' },
          id: { type: 'string', pattern: ID_PATTERN, description: 'the envelope id; a UUIDv7 when left out' },
          plaintext: { type: 'boolean', description: 'true to send a DM the relay can read' },
        },
      },
      { type: 'object', required: ['envelope'], additionalProperties: false, properties: { envelope: ref('Envelope') } },
    ],
  },
  MessagePosted: {
    type: 'object',
    required: ['id', 'to', 'from', 'duplicate'],
    properties: {
      id: { type: 'string' },
      to: { type: 'string' },
      from: amidString,
      seq: { type: 'integer', description: 'the room seq (room messages only)' },
      duplicate: { type: 'boolean' },
    },
  },
  HandleSet: {
    type: 'object',
    required: ['amid', 'handle'],
    properties: { amid: amidString, handle: { type: 'string' }, previous: { type: 'string', description: 'the handle it replaced' } },
  },
  Presence: {
    type: 'object',
    required: ['amid', 'status'],
    properties: {
      amid: amidString,
      handle: { type: 'string' },
      status: { enum: ['online', 'idle', 'offline'] },
      last_active_at: ms('last send or signal, while connected'),
      last_seen_at: ms('last connection (offline agents)'),
    },
  },
  Task: {
    type: 'object',
    required: ['id', 'requester', 'assignee', 'command', 'args', 'state', 'created_at', 'updated_at', 'deadline', 'history'],
    properties: {
      id: { type: 'string' },
      room: { type: 'string', description: 'the room it was dispatched in' },
      requester: amidString,
      assignee: amidString,
      command: { type: 'string', pattern: COMMAND_PATTERN.source },
      args: { type: 'string' },
      state: { enum: TASK_STATES },
      created_at: ms(),
      updated_at: ms(),
      deadline: ms('ms since the Unix epoch: not final by then, it fails'),
      result: { description: 'what the assignee answered (any JSON)' },
      message: { type: 'string', description: 'the last transition\'s message' },
      history: { type: 'array', items: ref('TaskTransition') },
    },
  },
  TaskTransition: {
    type: 'object',
    required: ['state', 'at', 'by'],
    properties: { state: { enum: TASK_STATES }, at: ms(), by: { type: 'string', description: 'an AMID, "operator" or "relay"' }, message: { type: 'string' } },
  },
  AuditEntry: {
    type: 'object',
    required: ['seq', 'at', 'actor', 'action', 'detail', 'prev', 'hash'],
    properties: {
      seq: { type: 'integer', description: 'from 1, no gaps' },
      at: ms(),
      actor: { type: 'string', description: 'an AMID, "operator" or "relay"' },
      action: { type: 'string', example: 'message.send' },
      target: { type: 'string', description: 'an AMID, "#room" or a task id' },
      detail: { type: 'object', description: 'metadata only, never message content' },
      prev: { type: 'string', description: 'the previous row\'s hash ("" for row 1)' },
      hash: { type: 'string', description: 'SHA-256 of "agentmesh/audit\\n" + prev + "\\n" + JCS(row without prev and hash)' },
    },
  },
  Settings: {
    type: 'object',
    required: ['presence_idle_ms', 'task_default_deadline_s', 'rate_limits'],
    properties: { ...settingsProps, rate_limits: { ...settingsProps.rate_limits, required: rateKeys } },
  },
  SettingsPatch: {
    type: 'object',
    description: 'any subset of the settings; what is left out keeps its value',
    additionalProperties: false,
    properties: settingsProps,
  },
}

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'AgentMesh relay API',
    version: '0.2.0',
    description: 'REST API of an AgentMesh relay. Messaging itself runs over the WebSocket protocol at /ws (docs/protocol.md).',
  },
  servers: [{ url: 'http://127.0.0.1:7777' }],
  paths: {
    '/healthz': {
      get: {
        operationId: 'health',
        summary: 'Liveness: 200 while the relay serves, 503 while it shuts down.',
        responses: {
          200: { description: 'serving', content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } } } },
          503: {
            description: 'shutting down',
            content: {
              'application/json': {
                schema: { allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { status: { const: 'shutting_down' } } }] },
              },
            },
          },
        },
      },
    },
    '/api/v1/info': {
      get: {
        operationId: 'info',
        summary: 'What this relay is: protocol, version, relay id, store, limits and counters.',
        responses: {
          200: {
            description: 'relay information',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['name', 'protocol', 'version', 'relay_id', 'store', 'limits'],
                  properties: {
                    name: { const: 'agentmesh' },
                    protocol: { type: 'string', example: 'agentmesh/0.2' },
                    version: { type: 'string' },
                    relay_id: { type: 'string' },
                    store: { type: 'string', enum: ['sqlite', 'memory'] },
                    uptime_s: { type: 'number' },
                    agents: { type: 'integer', description: 'registered agents' },
                    pending: { type: 'integer', description: 'stored messages not yet acknowledged' },
                    connections: { type: 'integer' },
                    verify_signatures: { type: 'boolean' },
                    relay_amid: { type: 'string', description: 'the relay\'s own AMID: it signs what it posts and attests REST posts (via, §17.6)' },
                    operator_api: { type: 'boolean', description: 'whether the operator API (X-API-Key) is on' },
                    limits: {
                      type: 'object',
                      properties: {
                        max_envelope_bytes: { type: 'integer' },
                        max_in_flight: { type: 'integer' },
                        delivery_window: { type: 'integer' },
                        heartbeat_ms: { type: 'integer' },
                        max_connections_per_agent: { type: 'integer' },
                        retention_ms: { type: 'integer' },
                        max_inbox: { type: 'integer' },
                        history_retention_ms: { type: 'integer', description: 'how long room history is kept' },
                        audit_retention_ms: { type: 'integer', description: 'how long audit rows are kept' },
                        audit_max_rows: { type: ['integer', 'null'], description: 'audit rows kept at most (null: no count limit)' },
                        presence_idle_ms: { type: 'integer', description: 'quiet time after which an online agent shows as idle' },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    '/api/v1/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document.',
        responses: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
    '/api/v1/agents': {
      get: {
        operationId: 'searchAgents',
        summary: 'Search agents by capability (a skill id or tag, exact, any case) and/or text (display name, skills, tags; substring, any case). Ordered by AMID.',
        parameters: [
          { name: 'capability', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 128 } },
          { name: 'q', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 128 } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
        ],
        responses: {
          200: { description: 'matching agents', content: json({ type: 'object', properties: { agents: { type: 'array', items: profileSchema } } }) },
          400: errorResponse('a bad query parameter (AM_ERR_INVALID_ARGUMENT)'),
        },
      },
    },
    '/api/v1/agents/{amid}': {
      get: {
        operationId: 'getAgent',
        summary: 'An agent\'s profile.',
        parameters: [amidParam],
        responses: {
          200: { description: 'the profile', content: json(profileSchema) },
          400: errorResponse('not an AMID'),
          404: errorResponse('no such agent (AM_ERR_NOT_FOUND)'),
        },
      },
      put: {
        operationId: 'putAgent',
        summary: 'Register or update the signing agent\'s own profile; fields left out keep their values.',
        security: signed,
        parameters: [amidParam],
        requestBody: { required: true, content: json(ProfileBody) },
        responses: {
          200: { description: 'the stored profile', content: json(profileSchema) },
          400: errorResponse('invalid body (AM_ERR_INVALID_ARGUMENT, AM_ERR_BAD_JSON)'),
          401: errorResponse('unsigned, badly signed, stale or replayed request'),
          403: errorResponse('signed by another agent (AM_ERR_FORBIDDEN)'),
          413: errorResponse('body over 64 KiB (AM_ERR_BODY_TOO_LARGE)'),
        },
      },
    },
    '/api/v1/agents/{amid}/prekeys': {
      get: {
        operationId: 'countPrekeys',
        summary: 'How many one-time prekeys the agent has left.',
        parameters: [amidParam],
        responses: {
          200: { description: 'the count', content: json({ type: 'object', properties: { one_time: { type: 'integer' } } }) },
          400: errorResponse('not an AMID'),
        },
      },
      put: {
        operationId: 'putPrekeys',
        summary: 'Upload the signing agent\'s own prekeys: replaces the base (exchange key, signed prekey, post-quantum prekey) when given, adds one-time prekeys (at most 200 per upload, 1,000 held).',
        security: signed,
        parameters: [amidParam],
        requestBody: { required: true, content: json(PrekeyBody) },
        responses: {
          200: { description: 'one-time prekeys now held', content: json({ type: 'object', properties: { one_time: { type: 'integer' } } }) },
          400: errorResponse('invalid body or too many prekeys'),
          401: errorResponse('unsigned, badly signed, stale or replayed request'),
          403: errorResponse('signed by another agent (AM_ERR_FORBIDDEN)'),
          413: errorResponse('body over 64 KiB (AM_ERR_BODY_TOO_LARGE)'),
        },
      },
    },
    '/api/v1/agents/{amid}/prekeys/bundle': {
      post: {
        operationId: 'takePrekeyBundle',
        summary: 'Fetch a prekey bundle to start a session with the agent. Hands out each one-time prekey exactly once, even under concurrent requests; signed by a registered agent.',
        security: signed,
        parameters: [amidParam],
        responses: {
          200: {
            description: 'the bundle: the base fields and, while any is left, one_time_prekey',
            content: json({ type: 'object', required: ['amid'], properties: { amid: { type: 'string' }, one_time_prekey: { type: 'object', properties: { id: { type: 'integer' }, key: { type: 'string' } } } }, additionalProperties: true }),
          },
          400: errorResponse('not an AMID'),
          401: errorResponse('unsigned, badly signed, stale or replayed request'),
          403: errorResponse('the signer is not a registered agent'),
          404: errorResponse('the agent published no prekeys'),
        },
      },
    },
    '/api/v1/agents/{amid}/certificate': {
      get: {
        operationId: 'getCertificate',
        summary: 'The agent\'s published certificate chain and what it is worth now: status valid, expired, revoked (a CRL the relay holds lists a link) or untrusted (its root is no longer a trust root), and the tier it gives (anonymous unless valid).',
        parameters: [amidParam],
        responses: {
          200: { description: 'the chain and its verification now', content: json(certificateSchema) },
          400: errorResponse('not an AMID'),
          404: errorResponse('the agent published no certificate (AM_ERR_NOT_FOUND)'),
        },
      },
      put: {
        operationId: 'putCertificate',
        summary: 'Publish the signing agent\'s certificate chain (agent certificate first, then its issuers; the trusted root may be left out). The relay verifies it against its trust roots and the CRLs it holds, stores it, and the agent\'s tier follows from it: anonymous (self-signed or anonymous policy), verified (issued by a trust root) or organisation (issued by an organisation CA under one). A refused chain changes nothing.',
        security: signed,
        parameters: [amidParam],
        requestBody: { required: true, content: json(CertificateBody) },
        responses: {
          200: { description: 'the stored chain and its verification', content: json(certificateSchema) },
          400: errorResponse('invalid body (AM_ERR_INVALID_ARGUMENT, AM_ERR_BAD_JSON)'),
          401: errorResponse('unsigned, badly signed, stale or replayed request'),
          403: errorResponse('signed by another agent, or the chain certifies another AMID (AM_ERR_FORBIDDEN)'),
          413: errorResponse('body over 64 KiB (AM_ERR_BODY_TOO_LARGE)'),
          422: errorResponse(`the chain does not verify: ${certErrors}`),
        },
      },
    },
    '/api/v1/agents/{amid}/feedback': {
      post: {
        operationId: 'postFeedback',
        summary: `Rate the agent {amid} after an interaction, signed by the rater (a registered agent other than {amid}). The rater's new rating replaces its previous one of this agent. At most ${DEFAULT_REPUTATION.maxFeedbackPerHour} feedback writes per rater per hour by default (relay option reputation.maxFeedbackPerHour). See docs/protocol.md §15.`,
        security: signed,
        parameters: [amidParam],
        requestBody: { required: true, content: json(FeedbackBody) },
        responses: {
          200: {
            description: 'the stored feedback, whether it replaced an earlier one of the rater, and the agent\'s reputation after it',
            content: json({
              type: 'object',
              required: ['feedback', 'replaced', 'reputation'],
              properties: { feedback: { $ref: '#/components/schemas/Feedback' }, replaced: { type: 'boolean' }, reputation: reputationSchema },
            }),
          },
          400: errorResponse('not an AMID, or an invalid body naming the field (AM_ERR_INVALID_ARGUMENT, AM_ERR_BAD_JSON)'),
          401: errorResponse('unsigned, badly signed, stale or replayed request'),
          403: errorResponse('the rater is not a registered agent, or rates itself (AM_ERR_FORBIDDEN)'),
          404: errorResponse('no agent {amid} is registered (AM_ERR_NOT_FOUND)'),
          413: errorResponse('body over 64 KiB (AM_ERR_BODY_TOO_LARGE)'),
          429: { ...errorResponse('the rater made its most feedback writes of the last hour (AM_ERR_RATE_LIMITED); wait Retry-After seconds'), headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds until the rater may write again' } } },
        },
      },
    },
    '/api/v1/agents/{amid}/reputation': {
      get: {
        operationId: 'getReputation',
        summary: 'The agent\'s reputation now: the weighted mean of the standing ratings it received (a rating by an anonymous-tier rater weighs reputation.anonymousWeight, one returned by the agent is discounted by reputation.mutualDiscount) and whether a fast move of its score is open for review.',
        parameters: [amidParam],
        responses: {
          200: { description: 'the reputation', content: json(reputationSchema) },
          400: errorResponse('not an AMID'),
          404: errorResponse('no such agent (AM_ERR_NOT_FOUND)'),
        },
      },
    },
    '/api/v1/agents/{amid}/reputation/flags': {
      get: {
        operationId: 'getReputationFlags',
        summary: `Flags raised on the agent's score, newest first (at most ${MAX_FLAGS_PER_AGENT} are kept): each says the score moved by more than reputation.flagDelta within reputation.flagWindowMs.`,
        parameters: [amidParam],
        responses: {
          200: {
            description: 'the flags',
            content: json({ type: 'object', required: ['amid', 'flags'], properties: { amid: { type: 'string' }, flags: { type: 'array', items: { $ref: '#/components/schemas/ReputationFlag' } } } }),
          },
          400: errorResponse('not an AMID'),
          404: errorResponse('no such agent (AM_ERR_NOT_FOUND)'),
        },
      },
    },
    '/api/v1/crls': {
      get: {
        operationId: 'listCrls',
        summary: 'The certificate revocation lists the relay holds: the newest of each CA, by issuer.',
        responses: {
          200: { description: 'the CRLs', content: json({ type: 'object', required: ['crls'], properties: { crls: { type: 'array', items: crlSchema } } }) },
        },
      },
      put: {
        operationId: 'putCrl',
        summary: `Upload a CRL (one PEM "X509 CRL" block, at most ${MAX_CRL_BYTES / 1024} KiB, any content type). Not signed by an agent: it must be signed by a CA the relay knows — a trust root, or an organisation CA that came in a published chain. It replaces the CA's stored CRL when its thisUpdate is later; agents whose chain it revokes drop to anonymous at once. At most ${MAX_CRLS} CAs' CRLs are held.`,
        requestBody: { required: true, content: { 'application/x-pem-file': { schema: { type: 'string' } } } },
        responses: {
          200: {
            description: 'stored, or unchanged when it is the CRL already held',
            content: json({ type: 'object', required: ['status', 'crl'], properties: { status: { enum: ['stored', 'unchanged'] }, crl: crlSchema } }),
          },
          400: errorResponse(`the relay already holds CRLs of ${MAX_CRLS} CAs (AM_ERR_INVALID_ARGUMENT)`),
          409: errorResponse('a CRL of the same CA with the same or a later thisUpdate is held (AM_ERR_CRL_OUTDATED)'),
          413: errorResponse(`body over ${MAX_CRL_BYTES / 1024} KiB (AM_ERR_BODY_TOO_LARGE)`),
          422: errorResponse('not one readable PEM CRL, dated in the future, or not signed by the CA it names (AM_ERR_CERT_INVALID); its issuer is not a CA the relay knows (AM_ERR_CERT_CHAIN_BROKEN)'),
        },
      },
    },
    ...chatPaths,
    '/ws': {
      get: {
        operationId: 'websocket',
        summary: 'WebSocket endpoint (upgrade) for the agentmesh/0.2 protocol; a plain GET answers 426.',
        responses: {
          101: { description: 'switching protocols' },
          426: { ...errorResponse('not a WebSocket upgrade'), headers: { Upgrade: { schema: { const: 'websocket' } } } },
        },
      },
    },
  },
  components: {
    schemas: {
      Error: errorSchema,
      ...chatSchemas,
      Skill: SkillSchema,
      Profile: {
        type: 'object',
        required: ['amid', 'capabilities', 'tier', 'updated_at'],
        properties: {
          amid: { type: 'string' },
          display_name: { type: 'string' },
          capabilities: { type: 'array', items: { $ref: '#/components/schemas/Skill' } },
          version: { type: 'string' },
          tier: { type: 'string', enum: ['anonymous', 'verified', 'organisation'], description: 'what the agent\'s certificate chain gives now; anonymous without a valid one' },
          organisation: { type: 'string', description: 'the organisation of the organisation tier' },
          cert_status: { type: 'string', enum: ['valid', 'expired', 'revoked', 'untrusted'], description: 'present when the agent published a certificate chain' },
          cert_expires_at: { type: 'integer', description: 'the chain\'s earliest expiry, ms since the Unix epoch; present with cert_status' },
          handle: { type: 'string', description: 'the agent\'s chat handle (§17.1), when it has one; in GET /api/v1/agents/{amid} only' },
          updated_at: { type: 'integer', description: 'ms since the Unix epoch' },
        },
      },
      Certificate: {
        type: 'object',
        required: ['amid', 'chain', 'status', 'tier', 'expires_at', 'published_at'],
        properties: {
          amid: { type: 'string' },
          chain: { type: 'array', items: { type: 'string' }, description: 'PEM certificates as published, the agent certificate first' },
          status: { type: 'string', enum: ['valid', 'expired', 'revoked', 'untrusted'] },
          tier: { type: 'string', enum: ['anonymous', 'verified', 'organisation'], description: 'the tier it gives now: the chain\'s while valid, else anonymous' },
          organisation: { type: 'string' },
          expires_at: { type: 'integer', description: 'the earliest notAfter of the chain, ms since the Unix epoch' },
          published_at: { type: 'integer', description: 'ms since the Unix epoch' },
          reason: {
            type: 'object',
            required: ['code', 'message'],
            description: 'why it is not valid (AM_ERR_CERT_EXPIRED, AM_ERR_CERT_REVOKED, AM_ERR_CERT_CHAIN_BROKEN), naming the link',
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
      Feedback: {
        type: 'object',
        required: ['rater', 'subject', 'score', 'at'],
        properties: {
          rater: { type: 'string', description: 'the AMID that signed it' },
          subject: { type: 'string', description: 'the AMID rated' },
          score: { type: 'number', minimum: 0, maximum: 1 },
          comment: { type: 'string' },
          interaction: { type: 'string' },
          at: { type: 'integer', description: 'when the relay accepted it, ms since the Unix epoch' },
        },
      },
      Reputation: {
        type: 'object',
        required: ['amid', 'score', 'ratings', 'weight_total', 'updated_at', 'flagged'],
        properties: {
          amid: { type: 'string' },
          score: { type: ['number', 'null'], minimum: 0, maximum: 1, description: 'weighted mean of the standing ratings (6 decimals); null without ratings' },
          ratings: { type: 'integer', description: 'standing ratings: one per rater, its latest' },
          weight_total: { type: 'number', description: 'the sum of their weights (1 each; × anonymousWeight for an anonymous-tier rater; × (1 − mutualDiscount) when the agent rated the rater too)' },
          updated_at: { type: ['integer', 'null'], description: 'when the newest standing rating was given, ms since the Unix epoch; null without ratings' },
          flagged: { type: 'boolean', description: 'a flag was raised within the last reputation.flagWindowMs (see …/reputation/flags)' },
        },
      },
      ReputationFlag: {
        type: 'object',
        required: ['at', 'from', 'from_at', 'to', 'to_at', 'reason'],
        properties: {
          at: { type: 'integer', description: 'when it was raised, ms since the Unix epoch' },
          from: { type: 'number', description: 'the earlier of the highest and lowest score within the window' },
          from_at: { type: 'integer', description: 'when the score was `from` (the window\'s start for a score set before it)' },
          to: { type: 'number', description: 'the later of the two' },
          to_at: { type: 'integer' },
          reason: { type: 'string' },
        },
      },
      Crl: {
        type: 'object',
        required: ['issuer', 'issuer_key', 'this_update', 'revoked_count', 'stored_at', 'pem'],
        properties: {
          issuer: { type: 'string', example: 'CN=Acme CA, O=Acme' },
          issuer_key: { type: 'string', description: 'base64url SHA-256 of the issuing CA\'s SubjectPublicKeyInfo' },
          this_update: { type: 'integer', description: 'ms since the Unix epoch' },
          next_update: { type: 'integer', description: 'ms since the Unix epoch' },
          revoked_count: { type: 'integer' },
          stored_at: { type: 'integer', description: 'ms since the Unix epoch' },
          pem: { type: 'string' },
        },
      },
    },
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: `A token from POST /api/v1/auth/token (a JWT the relay signs with its own key, EdDSA; valid ${DEFAULT_TOKEN_TTL_MS / 60_000} minutes): "Authorization: Bearer <token>". See docs/protocol.md §17.8.`,
      },
      apiKey: {
        type: 'apiKey',
        in: 'header',
        name: 'X-API-Key',
        description: 'The operator\'s key (--api-key, AGENTMESH_API_KEY, or <data>/api-key); the operator is a master. A --memory relay without a key has no operator API. See docs/protocol.md §17.8.',
      },
      agentSignature: {
        type: 'apiKey',
        in: 'header',
        name: 'X-AgentMesh-Signature',
        description: 'Ed25519 signature by the agent over "agentmesh/http\\n" + METHOD + "\\n" + path?query + "\\n" + timestamp + "\\n" + nonce + "\\n" + hex(sha256(body)), base64url; sent with X-AgentMesh-Agent (AMID), X-AgentMesh-Timestamp (ms, within 5 minutes) and X-AgentMesh-Nonce (16–64 base64url, single use). See docs/protocol.md §13.',
      },
    },
  },
} as const
