/** OpenAPI 3.1 description of the REST API, served at /api/v1/openapi.json. A test checks it against the routes. */
import { PrekeyBody, ProfileBody, SkillSchema } from './registry.ts'

const json = (schema: unknown) => ({ 'application/json': { schema } })
const amidParam = { name: 'amid', in: 'path', required: true, schema: { type: 'string', pattern: '^am[1-9A-HJ-NP-Za-km-z]{42,46}$' }, description: 'agent id' }
const profileSchema = { $ref: '#/components/schemas/Profile' }
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
      Skill: SkillSchema,
      Profile: {
        type: 'object',
        required: ['amid', 'capabilities', 'tier', 'updated_at'],
        properties: {
          amid: { type: 'string' },
          display_name: { type: 'string' },
          capabilities: { type: 'array', items: { $ref: '#/components/schemas/Skill' } },
          version: { type: 'string' },
          tier: { type: 'string', enum: ['anonymous', 'verified', 'organisation'] },
          updated_at: { type: 'integer', description: 'ms since the Unix epoch' },
        },
      },
    },
    securitySchemes: {
      agentSignature: {
        type: 'apiKey',
        in: 'header',
        name: 'X-AgentMesh-Signature',
        description: 'Ed25519 signature by the agent over "agentmesh/http\\n" + METHOD + "\\n" + path?query + "\\n" + timestamp + "\\n" + nonce + "\\n" + hex(sha256(body)), base64url; sent with X-AgentMesh-Agent (AMID), X-AgentMesh-Timestamp (ms, within 5 minutes) and X-AgentMesh-Nonce (16–64 base64url, single use). See docs/protocol.md §13.',
      },
    },
  },
} as const
