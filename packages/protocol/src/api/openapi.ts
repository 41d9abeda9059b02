/**
 * The OpenAPI 3.1 document of the relay's REST API, generated from the route table (routes.ts):
 * TypeBox schemas are JSON Schema already, so this only lays them out as OpenAPI wants them and
 * turns every named schema (an `$id`) into a `$ref` to `#/components/schemas`.
 */
import type { TSchema } from '@sinclair/typebox'
import { API_ROUTES, type ApiResponse, type ApiRoute } from './routes.ts'
import { NAMED_SCHEMAS } from './schemas.ts'

type Json = Record<string, unknown>

export interface OpenApiInit {
  /** the relay's version (info.version) */
  version: string
  /**
   * The relay's defaults the summaries name as `{{name}}`. Every name must be given: a document
   * with one left unfilled is refused.
   */
  values: Readonly<Record<string, string | number>>
  servers?: ReadonlyArray<{ url: string }>
  routes?: Readonly<Record<string, ApiRoute>>
}

const SECURITY_SCHEMES = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'A token from POST /api/v1/auth/token (a JWT the relay signs with its own key, EdDSA; valid {{token_ttl_min}} minutes): "Authorization: Bearer <token>". See docs/protocol.md §17.8.',
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
}

/** The document for `init`'s relay: every route of the table, every named schema once. */
export function openApiDocument (init: OpenApiInit): Json {
  const routes: Readonly<Record<string, ApiRoute>> = init.routes ?? API_ROUTES
  const components = new Map<string, Json>()
  const named = new Map<string, TSchema>(NAMED_SCHEMAS.map(s => [s.$id as string, s]))

  /** JSON of a schema, a named one (other than the component itself) as a $ref. */
  const json = (schema: TSchema, self?: string): Json => {
    const walk = (node: unknown, top: boolean): unknown => {
      if (Array.isArray(node)) return node.map(x => walk(x, false))
      if (typeof node !== 'object' || node === null) return node
      const o = node as Json
      if (typeof o.$id === 'string' && !(top && o.$id === self)) {
        if (!named.has(o.$id)) named.set(o.$id, o as TSchema)
        return { $ref: `#/components/schemas/${o.$id}` }
      }
      const out: Json = {}
      for (const [k, v] of Object.entries(o)) if (k !== '$id') out[k] = walk(v, false)
      return out
    }
    return walk(schema, true) as Json
  }
  const response = (r: ApiResponse): Json => ({
    description: r.description,
    ...(r.headers === undefined ? {} : { headers: Object.fromEntries(Object.entries(r.headers).map(([h, v]) => [h, { schema: json(v.schema), ...(v.description === undefined ? {} : { description: v.description }) }])) }),
    ...(r.schema === undefined ? {} : { content: { [r.contentType ?? 'application/json']: { schema: json(r.schema) } } }),
  })
  const parameters = (route: ApiRoute): Json[] => {
    const out: Json[] = []
    for (const [where, obj] of [['path', route.params], ['query', route.query]] as const) {
      if (obj === undefined) continue
      const required = new Set(obj.required ?? [])
      for (const [name, s] of Object.entries(obj.properties)) {
        const { description, ...schema } = json(s)
        out.push({ name, in: where, ...(where === 'path' || required.has(name) ? { required: true } : {}), schema, ...(description === undefined ? {} : { description }) })
      }
    }
    return out
  }

  const paths: Record<string, Json> = {}
  for (const [operationId, route] of Object.entries(routes)) {
    const op: Json = {
      operationId,
      summary: route.summary,
      tags: [...route.tags],
      ...(route.security === undefined ? {} : { security: route.security.map(s => ({ ...s })) }),
    }
    const params = parameters(route)
    if (params.length > 0) op.parameters = params
    if (route.body !== undefined) op.requestBody = { required: route.bodyOptional !== true, content: { [route.bodyType ?? 'application/json']: { schema: json(route.body) } } }
    op.responses = Object.fromEntries(Object.entries(route.responses).flatMap(([status, r]) => r === undefined ? [] : [[status, response(r)]]))
    paths[route.path] = { ...paths[route.path], [route.method]: op }
  }
  // the named schemas, with those they name in turn
  for (let grew = true; grew;) {
    grew = false
    for (const [name, s] of named) {
      if (components.has(name)) continue
      components.set(name, json(s, name))
      grew = true
    }
  }

  const doc = {
    openapi: '3.1.0',
    info: {
      title: 'AgentMesh relay API',
      version: init.version,
      description: 'REST API of an AgentMesh relay. Messaging itself runs over the WebSocket protocol at /ws (docs/protocol.md).',
    },
    servers: (init.servers ?? [{ url: 'http://127.0.0.1:7777' }]).map(s => ({ ...s })),
    paths,
    components: {
      schemas: Object.fromEntries([...components].sort(([a], [b]) => a === 'Error' ? -1 : b === 'Error' ? 1 : 0)),
      securitySchemes: SECURITY_SCHEMES,
    },
  }
  return fill(doc, init.values) as Json
}

/** Every `{{name}}` in the strings of `value` replaced by its value. */
function fill (value: unknown, values: Readonly<Record<string, string | number>>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const v = values[name]
      if (v === undefined) throw new Error(`the OpenAPI document names {{${name}}} but no value was given for it`)
      return typeof v === 'number' ? v.toLocaleString('en') : v
    })
  }
  if (Array.isArray(value)) return value.map(v => fill(v, values))
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, values)]))
  return value
}
