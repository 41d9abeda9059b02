/** OpenAPI 3.1 description of the REST API, served at /api/v1/openapi.json. A test checks it against the routes. */
import { CertificateBody, PrekeyBody, ProfileBody, SkillSchema } from './registry.ts'
import { MAX_CRL_BYTES, MAX_CRLS } from './certificates.ts'
import { DEFAULT_REPUTATION, FeedbackBody, MAX_FLAGS_PER_AGENT } from './reputation.ts'

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
          tier: { type: 'string', enum: ['anonymous', 'verified', 'organisation'], description: 'what the agent\'s certificate chain gives now; anonymous without a valid one' },
          organisation: { type: 'string', description: 'the organisation of the organisation tier' },
          cert_status: { type: 'string', enum: ['valid', 'expired', 'revoked', 'untrusted'], description: 'present when the agent published a certificate chain' },
          cert_expires_at: { type: 'integer', description: 'the chain\'s earliest expiry, ms since the Unix epoch; present with cert_status' },
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
      agentSignature: {
        type: 'apiKey',
        in: 'header',
        name: 'X-AgentMesh-Signature',
        description: 'Ed25519 signature by the agent over "agentmesh/http\\n" + METHOD + "\\n" + path?query + "\\n" + timestamp + "\\n" + nonce + "\\n" + hex(sha256(body)), base64url; sent with X-AgentMesh-Agent (AMID), X-AgentMesh-Timestamp (ms, within 5 minutes) and X-AgentMesh-Nonce (16–64 base64url, single use). See docs/protocol.md §13.',
      },
    },
  },
} as const
