/**
 * The REST contract (src/api): the route table is whole (every path parameter has a schema, every
 * error answer is the error shape), the OpenAPI document made from it refers to named schemas by
 * $ref and fills in every relay default, and checkValue says which field is wrong.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Type, type TSchema } from '@sinclair/typebox'
import {
  API_ROUTES, AgentMeshError, CreateRoomBody, ErrorBody, ErrorCode, FINAL_TASK_STATES, HANDLE_PATTERN, NAMED_SCHEMAS,
  RESERVED_HANDLES, TASK_STATES, TasksQuery, checkValue, openApiDocument, typedQuery, type ApiRoute,
} from '@agentmesh/protocol'

type Json = Record<string, any>
const routes: Record<string, ApiRoute> = API_ROUTES
const VALUES = {
  challenge_ttl_s: 60, token_ttl_min: 60, api_per_minute: 120, api_burst: 60, ip_per_minute: 600, ip_burst: 200,
  chat_per_minute: 600, chat_ip_per_minute: 1200, max_rooms_per_agent: 100, max_members_per_room: 10_000,
  max_feedback_per_hour: 60, max_flags_per_agent: 100, max_crl_kib: 256, max_crls: 256,
  file_max_mib: 100, file_json_max_mib: 10, file_quota_gib: 1, file_max_per_agent: '10,000',
}

function rejects (f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(AgentMeshError.is(e, ErrorCode.InvalidArgument), String(e))
    assert.match(e.message, message)
    return true
  })
}

describe('api - the route table', () => {
  it('api - one route per method and path; path parameters and their schema agree; bodies only where a method takes one', () => {
    const seen = new Set<string>()
    for (const [name, r] of Object.entries(routes)) {
      const key = `${r.method} ${r.path}`
      assert.ok(!seen.has(key), `${name}: ${key} twice`)
      seen.add(key)
      const inPath = [...r.path.matchAll(/\{(\w+)\}/g)].map(m => m[1]).sort()
      assert.deepEqual(Object.keys(r.params?.properties ?? {}).sort(), inPath, `${name}: params`)
      if (r.body !== undefined) assert.ok(['post', 'put', 'patch'].includes(r.method), `${name}: a body on ${r.method}`)
      assert.ok(r.summary.length > 0 && r.tags.length > 0, `${name}: summary and tags`)
    }
    // 49 before operations; + files (§18): eleven routes; system updates (§19): five routes under /api/v1 and the plan's /api;
    // catastrophe events (§20): six routes on two paths, checks and backups; agent health and metrics (§21);
    // wake webhooks (§26): three; the A2A bridge (§24): its setting, the agent card and the JSON-RPC endpoint
    // verified owners (§28): six routes; direct links (§30): the peer record, put and delete
    assert.equal(seen.size, 49 + 11 + 10 + 14 + 7 + 3 + 4 + 6 + 2)
  })

  it('api - every route answers success, and every error answer is { error: { code, message } }', () => {
    const isError = (s: TSchema | undefined): boolean => s === ErrorBody || (Array.isArray(s?.allOf) && (s.allOf as TSchema[]).includes(ErrorBody))
    for (const [name, r] of Object.entries(routes)) {
      const statuses = Object.keys(r.responses).map(Number)
      assert.ok(statuses.some(s => s < 300), `${name} has a success answer`)
      for (const s of statuses.filter(s => s >= 400)) assert.ok(isError(r.responses[s]?.schema), `${name} ${s}`)
      // authenticated routes say how they are rate limited
      if (r.security?.some(x => 'bearerAuth' in x) === true) assert.ok(r.responses[429]?.headers?.['Retry-After'] !== undefined, `${name} 429`)
    }
  })

  it('api - the shared constants agree with each other', () => {
    assert.ok([...FINAL_TASK_STATES].every(s => TASK_STATES.includes(s)))
    assert.deepEqual([...FINAL_TASK_STATES], ['completed', 'failed', 'canceled', 'rejected'])
    const handle = new RegExp(HANDLE_PATTERN)
    assert.ok(handle.test('alice') && handle.test('b0b.the-agent_2') && !handle.test('a') && !handle.test('_x') && !handle.test('x'.repeat(33)))
    // reserved handles are handles: reserving them is what keeps them from agents
    assert.ok([...RESERVED_HANDLES].every(h => handle.test(h)))
  })
})

describe('api - the OpenAPI document', () => {
  const doc = openApiDocument({ version: '9.9.9', values: VALUES }) as Json

  it('api - it has every route, by operationId, with its parameters and body', () => {
    assert.equal(doc.openapi, '3.1.0')
    assert.equal(doc.info.version, '9.9.9')
    const ops = Object.values(doc.paths as Record<string, Json>).flatMap(item => Object.values(item) as Json[])
    assert.deepEqual(ops.map(o => o.operationId).sort(), Object.keys(routes).sort())
    const history = doc.paths['/api/v1/rooms/{id}/history'].get
    assert.deepEqual(history.parameters.map((p: Json) => `${p.in}:${p.name}${p.required === true ? '!' : ''}`), ['path:id!', 'query:before', 'query:after', 'query:limit'])
    assert.deepEqual(history.parameters[3].schema, { minimum: 1, maximum: 200, default: 50, type: 'integer' })
    assert.equal(doc.paths['/api/v1/tasks/{id}/cancel'].post.requestBody.required, false)
    assert.ok(doc.paths['/api/v1/crls'].put.requestBody.content['application/x-pem-file'] !== undefined)
    assert.deepEqual(doc.paths['/api/v1/auth/token'].post.security, [])
  })

  it('api - named schemas are components, referred to by $ref, and no $id is left', () => {
    const text = JSON.stringify(doc)
    assert.ok(!text.includes('"$id"'))
    for (const s of NAMED_SCHEMAS) assert.ok(doc.components.schemas[s.$id as string] !== undefined, s.$id)
    assert.deepEqual(doc.paths['/api/v1/rooms/{id}'].get.responses[200].content['application/json'].schema, { $ref: '#/components/schemas/Room' })
    assert.deepEqual(doc.components.schemas.Room.properties.kind.anyOf.map((k: Json) => k.const), ['global', 'public', 'private', 'dm'])
    // every $ref leads to a component
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)) assert.ok(doc.components.schemas[m[1]!] !== undefined, m[1])
  })

  it('api - the relay\'s defaults are filled in; one left out is an error naming it', () => {
    assert.ok(!JSON.stringify(doc).includes('{{'))
    assert.match(doc.paths['/api/v1/auth/challenge'].post.summary, /within 60 s/)
    assert.match(doc.paths['/api/v1/rooms/{id}/join'].post.responses[429].description, /has 10,000 members/)
    const { max_crls: _, ...fewer } = VALUES
    assert.throws(() => openApiDocument({ version: '1', values: fewer }), /\{\{max_crls\}\}/)
  })
})

describe('api - checkValue', () => {
  it('api - answers the value when it fits', () => {
    assert.deepEqual(checkValue(CreateRoomBody, { id: 'ops', topic: null }), { id: 'ops', topic: null })
    assert.deepEqual(checkValue(TasksQuery, typedQuery(TasksQuery, { limit: '5', state: 'working', other: 'x' }), 'query'), { limit: 5, state: 'working', other: 'x' })
  })

  it('api - names the field: unknown fields first, then what is wrong with a value', () => {
    rejects(() => checkValue(CreateRoomBody, { colour: 'red' }), /^unknown field "colour"; expected id, kind, topic, membership$/)
    rejects(() => checkValue(CreateRoomBody, {}), /^id is required$/)
    rejects(() => checkValue(CreateRoomBody, 'ops'), /^the body must be a JSON object$/)
    rejects(() => checkValue(CreateRoomBody, { id: 'ops', kind: 'dm' }), /^kind must be one of public, private$/)
    rejects(() => checkValue(TasksQuery, typedQuery(TasksQuery, { limit: '1.5' }), 'query'), /^limit must be a whole number from 1 to 200, got "1\.5"$/)
    rejects(() => checkValue(TasksQuery, typedQuery(TasksQuery, { limit: '0' }), 'query'), /^limit must be a whole number from 1 to 200, got "0"$/)
    const nested = Type.Object({ a: Type.Object({ b: Type.Integer({ minimum: 1, maximum: 3 }) }) })
    rejects(() => checkValue(nested, { a: { b: 4 } }), /^a\.b must be a whole number from 1 to 3$/)
  })

  it('api - a deferred path is left to the caller', () => {
    const s = Type.Object({ envelope: Type.Object({ v: Type.String() }) }, { additionalProperties: false })
    assert.deepEqual(checkValue(s, { envelope: 7 }, 'body', { defer: ['/envelope'] }), { envelope: 7 })
    rejects(() => checkValue(s, { envelope: 7, x: 1 }, 'body', { defer: ['/envelope'] }), /^unknown field "x"; expected envelope$/)
  })
})
