/** OpenAPI 3.1 description of the REST API, served at /api/v1/openapi.json. A test checks it against the routes. */
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
  components: { schemas: { Error: errorSchema } },
} as const
