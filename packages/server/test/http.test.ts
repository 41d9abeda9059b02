/**
 * The relay's HTTP side: in process through `httpApp(...).request()` (hono), and against a real
 * relay with fetch. The OpenAPI document is checked against the routes the app really serves,
 * taken from the app's own route list.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import WebSocket from 'ws'
import { ErrorCode, PROTOCOL, constants } from '@agentmesh/protocol'
import { silentLogger, VERSION, type Relay, type RelayInit } from '@agentmesh/server'
import { httpApp, openapi as openapiDocument } from '@agentmesh/server/internal'
import { rawAgent, startRelay as startTestRelay, tempDir } from '@agentmesh/testing'
import { memoryStore, type AppendItem, type AuditInput } from '@agentmesh/store'
import { ChatService, DEFAULT_CHAT_LIMITS, defaultChatSettings } from '../src/chat.ts'
import { TaskService } from '../src/tasks.ts'
import { relayFeatures } from './ops-fixtures.ts'

type Json = Record<string, any>
/** the generated document, read as plain JSON */
const openapi = openapiDocument as Json

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

/**
 * The relay's HTTP app in process, over a memory store, with the chat REST API v1 mounted as
 * createRelay() builds it (no operator key). Room and DM posts are committed to the store directly.
 */
async function inProcess (over: { healthy?: () => boolean, info?: () => Promise<Record<string, unknown>> } = {}): Promise<ReturnType<typeof httpApp>> {
  const store = memoryStore()
  const relayId = await store.relayId()
  const outlet = {
    post: async (item: AppendItem, audit?: AuditInput[]) => (await store.commit([item], [], audit ?? []))[0]!,
    event: () => {},
    online: () => [],
  }
  const chat = await ChatService.open(store, {
    limits: { ...DEFAULT_CHAT_LIMITS },
    settings: defaultChatSettings(),
    log: silentLogger,
    outlet,
  })
  const tasks = new TaskService(chat, store, silentLogger)
  return httpApp({
    log: silentLogger,
    store,
    healthy: over.healthy ?? (() => true),
    info: over.info ?? (async () => ({ name: 'agentmesh', stub: true })),
    // the features as createRelay() lists them: registry, reputation, the chat API, the operations features
    features: relayFeatures({ store, chat, tasks, relayId, apiKey: undefined, outlet }),
  })
}

/** method → paths the app serves, from hono's own route list. */
function servedRoutes (app: ReturnType<typeof httpApp>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const r of app.routes) {
    assert.notEqual(r.method, 'ALL', `unexpected middleware route on ${r.path}`)
    const list = out.get(r.path) ?? []
    list.push(r.method)
    out.set(r.path, list.sort())
  }
  return out
}

async function startRelay (t: TestContext, init: RelayInit = {}): Promise<Relay> {
  const relay = await startTestRelay(init)
  t.after(async () => { await relay.close() })
  return relay
}

async function expectJsonError (res: Response, status: number, code: string, message: string | RegExp): Promise<void> {
  assert.equal(res.status, status)
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
  const body = await res.json() as Json
  assert.deepEqual(Object.keys(body), ['error'])
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'])
  assert.equal(body.error.code, code)
  if (typeof message === 'string') assert.equal(body.error.message, message)
  else assert.match(body.error.message, message)
}

describe('http - in process', () => {
  it('http - GET /healthz answers 200 {status: ok}, and 503 with an error while shutting down', async () => {
    let healthy = true
    const app = await inProcess({ healthy: () => healthy })
    const ok = await app.request('/healthz')
    assert.equal(ok.status, 200)
    assert.match(ok.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(await ok.json(), { status: 'ok' })
    healthy = false
    const down = await app.request('/healthz')
    assert.equal(down.status, 503)
    assert.deepEqual(await down.json(), {
      status: 'shutting_down', error: { code: ErrorCode.ShuttingDown, message: 'the relay is shutting down' },
    })
  })

  it('http - GET /api/v1/info answers what the relay reports', async () => {
    let calls = 0
    const app = await inProcess({ info: async () => { calls++; return { name: 'agentmesh', relay_id: 'r-1', agents: 3 } } })
    const res = await app.request('/api/v1/info')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { name: 'agentmesh', relay_id: 'r-1', agents: 3 })
    assert.equal(calls, 1)
  })

  it('http - an error thrown by a handler becomes a JSON error; a non-AgentMesh one a 500 without details', async () => {
    const logged: unknown[] = []
    const app = httpApp({
      log: { ...silentLogger, error: (obj) => { logged.push(obj) } },
      store: memoryStore(),
      healthy: () => true,
      info: async () => { throw new Error('secret internals') },
    })
    await expectJsonError(await app.request('/api/v1/info'), 500, ErrorCode.Internal, 'internal error; the relay logged the details')
    assert.equal(logged.length, 1)
  })

  it('http - an unknown path answers 404 AM_ERR_NOT_FOUND as JSON', async () => {
    const app = await inProcess()
    for (const [method, path] of [['GET', '/nope'], ['GET', '/api/v1'], ['POST', '/api/v2/info'], ['GET', '/healthz/'], ['DELETE', '/']]) {
      await expectJsonError(await app.request(path!, { method }), 404, ErrorCode.NotFound, `no route ${method} ${path}; see /api/v1/openapi.json`)
    }
  })

  it('http - another method on a served path answers 405 AM_ERR_METHOD_NOT_ALLOWED with an Allow header', async () => {
    const app = await inProcess()
    const res = await app.request('/healthz', { method: 'POST' })
    assert.equal(res.headers.get('allow'), 'GET')
    await expectJsonError(res, 405, ErrorCode.MethodNotAllowed, 'POST is not allowed on /healthz; use GET')
    // every served path, every method it does not serve: Allow lists exactly what the app serves
    const routes = servedRoutes(app)
    assert.ok(routes.size >= 4)
    for (const [path, methods] of routes) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'GET'].filter(m => !methods.includes(m))) {
        const r = await app.request(path, { method })
        assert.equal(r.status, 405, `${method} ${path}`)
        assert.deepEqual(r.headers.get('allow')?.split(', ').sort(), methods, `Allow of ${path}`)
        assert.equal((await r.json() as Json).error.code, ErrorCode.MethodNotAllowed)
      }
    }
  })

  it('http - GET /ws without an upgrade answers 426 with an Upgrade header', async () => {
    const res = await (await inProcess()).request('/ws')
    assert.equal(res.headers.get('upgrade'), 'websocket')
    await expectJsonError(res, 426, ErrorCode.InvalidArgument,
      `this is the WebSocket endpoint: connect with a WebSocket client speaking ${PROTOCOL}`)
  })
})

describe('http - OpenAPI document', () => {
  it('http - /api/v1/openapi.json serves the OpenAPI 3.1 document', async () => {
    const res = await (await inProcess()).request('/api/v1/openapi.json')
    assert.equal(res.status, 200)
    const doc = await res.json() as Json
    assert.deepEqual(doc, JSON.parse(JSON.stringify(openapi)))
    assert.match(doc.openapi, /^3\.1\.\d+$/)
    assert.equal(typeof doc.info.title, 'string')
    assert.equal(doc.info.version, VERSION)
  })

  it('http - its paths and methods are exactly the routes the app serves', async () => {
    const app = await inProcess()
    const documented = new Map<string, string[]>()
    for (const [path, item] of Object.entries(openapi.paths as Record<string, Json>)) {
      documented.set(path.replace(/\{(\w+)\}/g, ':$1'), Object.keys(item).filter(k => HTTP_METHODS.includes(k)).map(k => k.toUpperCase()).sort())
    }
    const served = servedRoutes(app)
    assert.deepEqual([...documented].sort(), [...served].sort())
  })

  it('http - every operation has responses, and every error response references the Error schema', async () => {
    const app = await inProcess()
    const refersToError = (schema: Json | undefined): boolean =>
      schema?.$ref === '#/components/schemas/Error' ||
      (Array.isArray(schema?.allOf) && (schema.allOf as Json[]).some(s => s.$ref === '#/components/schemas/Error'))
    assert.deepEqual(openapi.components.schemas.Error.required, ['error'])
    assert.deepEqual(openapi.components.schemas.Error.properties.error.required, ['code', 'message'])
    let errorResponses = 0
    for (const [path, item] of Object.entries(openapi.paths as Record<string, Json>)) {
      for (const [method, op] of Object.entries(item).filter(([k]) => HTTP_METHODS.includes(k)) as Array<[string, Json]>) {
        const where = `${method.toUpperCase()} ${path}`
        assert.equal(typeof op.operationId, 'string', `${where} has an operationId`)
        const responses = Object.entries((op.responses ?? {}) as Record<string, Json>)
        assert.ok(responses.length > 0, `${where} has responses`)
        for (const [status, r] of responses) {
          assert.match(status, /^([1-5]\d\d|default)$/, `${where} ${status}`)
          assert.equal(typeof r.description, 'string', `${where} ${status} has a description`)
          if (status === 'default' || Number(status) >= 400) {
            errorResponses++
            assert.ok(refersToError(r.content?.['application/json']?.schema), `${where} ${status} references the Error schema`)
          }
        }
        // what a plain request to the operation answers is one of its documented responses
        if (method === 'get') {
          const res = await app.request(path)
          assert.ok(Object.keys(op.responses as object).includes(String(res.status)), `${where} answered an undocumented ${res.status}`)
        }
      }
    }
    assert.ok(errorResponses >= 2)
    // the shutting-down health answer is documented too
    const down = await (await inProcess({ healthy: () => false })).request('/healthz')
    assert.ok(Object.keys(openapi.paths['/healthz'].get.responses).includes(String(down.status)))
  })
})

describe('http - real relay', () => {
  it('http - GET /healthz answers 200 {status: ok}', async (t) => {
    const relay = await startRelay(t)
    const res = await fetch(relay.url + '/healthz')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { status: 'ok' })
  })

  it('http - /api/v1/info reports protocol, relay id, store, counters and default limits', async (t) => {
    const relay = await startRelay(t)
    const info = await (await fetch(relay.url + '/api/v1/info')).json() as Json
    assert.equal(info.name, 'agentmesh')
    assert.equal(info.protocol, 'agentmesh/0.2')
    assert.equal(info.protocol, PROTOCOL)
    assert.equal(info.version, VERSION)
    assert.equal(info.relay_id, await relay.store.relayId())
    assert.equal(info.store, 'memory')
    assert.equal(info.verify_signatures, false, 'the relay checks signatures only when asked to (--verify-signatures)')
    assert.ok(Number.isInteger(info.uptime_s) && info.uptime_s >= 0)
    assert.deepEqual([info.agents, info.pending, info.connections], [0, 0, 0])
    assert.deepEqual(info.limits, {
      max_envelope_bytes: 1048576,
      max_in_flight: 1024,
      delivery_window: 1024,
      heartbeat_ms: 30000,
      max_connections_per_agent: 8,
      retention_ms: 30 * 24 * 60 * 60 * 1000,
      max_inbox: 100000,
      history_retention_ms: 30 * 24 * 60 * 60 * 1000,
      audit_retention_ms: 90 * 24 * 60 * 60 * 1000,
      audit_max_rows: 100_000,
      presence_idle_ms: 5 * 60 * 1000,
    })
    assert.equal(info.relay_amid, relay.relayAmid)
    assert.equal(info.operator_api, false)
    assert.equal(info.limits.max_envelope_bytes, constants.DEFAULT_MAX_ENVELOPE_BYTES)
    // every field is documented, and the required ones are there
    const schema = openapi.paths['/api/v1/info'].get.responses[200].content['application/json'].schema
    assert.deepEqual(Object.keys(info).sort(), Object.keys(schema.properties).sort())
    assert.deepEqual(Object.keys(info.limits).sort(), Object.keys(schema.properties.limits.properties).sort())
    for (const k of schema.required) assert.ok(k in info, `required ${k}`)
  })

  it('http - /api/v1/info follows the relay: its limits, store, agents and connections', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const relay = await startRelay(t, {
      memory: undefined, dataDir: dir.path, apiKey: 'operator-key-0123456789', maxEnvelopeBytes: 4096, maxInFlight: 7, deliveryWindow: 9,
      heartbeatMs: 20_000, maxConnectionsPerAgent: 2, retentionMs: 60_000, maxInbox: 5, verifySignatures: false,
    })
    const a = await rawAgent(relay.wsUrl)
    t.after(() => { a.close() })
    await a.auth()
    const info = await (await fetch(relay.url + '/api/v1/info')).json() as Json
    assert.equal(info.store, 'sqlite')
    assert.equal(info.relay_id, a.challenge.relay)
    assert.equal(info.verify_signatures, false)
    assert.deepEqual([info.agents, info.pending, info.connections], [1, 0, 1])
    assert.deepEqual(info.limits, {
      max_envelope_bytes: 4096, max_in_flight: 7, delivery_window: 9, heartbeat_ms: 20_000,
      max_connections_per_agent: 2, retention_ms: 60_000, max_inbox: 5, history_retention_ms: 30 * 24 * 60 * 60 * 1000, presence_idle_ms: 5 * 60 * 1000,
      audit_retention_ms: 90 * 24 * 60 * 60 * 1000, audit_max_rows: null,
    })
    // an operator key was given (the CLI's serve makes one for a persistent relay: cli serve-data.test.ts)
    assert.equal(info.operator_api, true)
  })

  it('http - errors over the network: 404, 405 with Allow, 426 with Upgrade', async (t) => {
    const relay = await startRelay(t)
    await expectJsonError(await fetch(relay.url + '/nope'), 404, ErrorCode.NotFound, 'no route GET /nope; see /api/v1/openapi.json')
    const post = await fetch(relay.url + '/healthz', { method: 'POST', body: '{}' })
    assert.equal(post.headers.get('allow'), 'GET')
    await expectJsonError(post, 405, ErrorCode.MethodNotAllowed, 'POST is not allowed on /healthz; use GET')
    const ws = await fetch(relay.url + '/ws')
    assert.equal(ws.headers.get('upgrade'), 'websocket')
    await expectJsonError(ws, 426, ErrorCode.InvalidArgument, /^this is the WebSocket endpoint/)
  })

  it('http - /api/v1/openapi.json over the network is the same document', async (t) => {
    const relay = await startRelay(t)
    const res = await fetch(relay.url + '/api/v1/openapi.json')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(openapi)))
  })

  it('http - a WebSocket upgrade on an unknown path is refused with 404 and a JSON error', async (t) => {
    const relay = await startRelay(t)
    for (const path of ['/nope', '/api/v1/info', '/ws/x']) {
      const ws = new WebSocket(relay.url.replace('http', 'ws') + path)
      const res = await new Promise<{ status: number, type: string | undefined, body: string }>((resolve, reject) => {
        ws.on('unexpected-response', (_req, r) => {
          let body = ''
          r.on('data', (d: Buffer) => { body += d.toString() })
          r.on('end', () => { resolve({ status: r.statusCode ?? 0, type: r.headers['content-type'], body }) })
        })
        ws.on('open', () => { ws.close(); reject(new Error(`the upgrade on ${path} was accepted`)) })
        ws.on('error', () => {})
      })
      assert.equal(res.status, 404, path)
      assert.equal(res.type, 'application/json')
      assert.deepEqual(JSON.parse(res.body), { error: { code: ErrorCode.NotFound, message: 'the WebSocket endpoint is /ws' } })
    }
    assert.equal(relay.stats().connections, 0)
    // the right path still upgrades, with a query string too
    const a = await rawAgent(relay.wsUrl + '?client=test')
    t.after(() => { a.close() })
    assert.equal((await a.auth()).op, 'welcome')
  })
})
