/**
 * The A2A bridge (docs/protocol.md §24): agents that turn it on (`PUT /api/v1/agents/{amid}/a2a`,
 * off by default) get an A2A 1.0 agent card at `/a2a/<amid or @handle>/.well-known/agent-card.json`
 * and a JSON-RPC endpoint at `/a2a/<amid or @handle>` (SendMessage, SendStreamingMessage over SSE,
 * GetTask, ListTasks, CancelTask, SubscribeToTask), served by the A2A SDK's request handler over
 * AgentMesh tasks (a2a/bridge.ts). End-to-end encryption ends here: the relay reads what A2A
 * clients send and what the agent answers. Bounded: the request body, the tasks running per agent,
 * open requests and streams per node and their duration, and the REST rate limit per IP.
 */
import type { Context, Hono } from 'hono'
import { A2A_PROTOCOL_VERSION, A2A_VERSION_HEADER, AgentCard, Message, SSE_HEADERS, Task, formatSSEEvent, formatSSEErrorEvent } from '@a2a-js/sdk'
import {
  DefaultExecutionEventBusManager, DefaultRequestHandler, JsonRpcTransportHandler, ServerCallContext, validateVersion,
} from '@a2a-js/sdk/server'
import { ERROR_INFO_TYPE, RequestMalformedError } from '@a2a-js/sdk/errors'
import {
  AgentMeshError, API_ROUTES as R, DEFAULT_A2A_OPEN_REQUESTS, DEFAULT_A2A_STREAM_MS, DEFAULT_A2A_TASKS_PER_AGENT, ErrorCode,
  MAX_A2A_BODY_BYTES, MAX_TASK_ARGS, checkValue, isErrorCode, type A2aSetting,
} from '@agentmesh/protocol'
import type { RelayFeature, FeatureComponents } from '../feature.ts'
import type { ChatService } from '../chat.ts'
import type { TaskService } from '../tasks.ts'
import type { ApiGate } from '../api-v1.ts'
import { answer, paramsOf } from '../rest.ts'
import { VERSION } from '../version.ts'
import { A2aViews, AGENT_KEY, SLOT_KEY, TASK_KEY, BridgeTaskStore, Executions, agentCardJson, bridgeExecutor, messageText } from '../a2a/bridge.ts'

export interface A2aInit {
  /** A2A tasks one agent may have running at once (per node). @default DEFAULT_A2A_TASKS_PER_AGENT (16) */
  tasksPerAgent?: number
  /** Open A2A requests and streams per node. @default DEFAULT_A2A_OPEN_REQUESTS (256) */
  openRequests?: number
  /** Longest an A2A request or stream stays open, ms. @default DEFAULT_A2A_STREAM_MS (10 min) */
  streamMs?: number
}

export interface A2aContext extends FeatureComponents {
  chat: ChatService
  tasks: TaskService
  /** the REST gate (authenticator, rate limits); call it in routes(), not before */
  gate: () => ApiGate
  a2a?: A2aInit
}

/** The stored setting of one agent (a key of the relay's settings; a missing key: off). */
const settingKey = (amid: string): string => `a2a:${amid}`
/** How long this node trusts what it read of an agent's setting (another node may change it). */
const SETTING_TTL_MS = 5000

/** AgentMesh's code for each JSON-RPC / A2A error code (§24.6). */
const AM_CODE_OF: Record<number, ErrorCode> = {
  [-32700]: ErrorCode.BadJson,
  [-32600]: ErrorCode.InvalidArgument,
  [-32601]: ErrorCode.NotFound,
  [-32602]: ErrorCode.InvalidArgument,
  [-32603]: ErrorCode.Internal,
  [-32001]: ErrorCode.UnknownTask,
  [-32002]: ErrorCode.InvalidTransition,
  [-32003]: ErrorCode.InvalidArgument,
  [-32004]: ErrorCode.InvalidArgument,
  [-32005]: ErrorCode.InvalidArgument,
  [-32006]: ErrorCode.Internal,
  [-32007]: ErrorCode.NotFound,
  [-32008]: ErrorCode.InvalidArgument,
  [-32009]: ErrorCode.UnsupportedVersion,
}

interface RpcError { code: number, message: string, data?: unknown }
interface RpcResponse { jsonrpc: string, id: string | number | null, result?: unknown, error?: RpcError }

/** The error with AgentMesh's code added to its `data` (an A2A ErrorInfo, domain "agentmesh"). */
function withCode (e: RpcError, code?: ErrorCode): RpcError {
  const details = Array.isArray(e.data) ? e.data as Array<Record<string, unknown>> : []
  const given = details.map(d => (d.metadata as Record<string, unknown> | undefined)?.agentmesh_code).find(isErrorCode)
  const am = code ?? given ?? AM_CODE_OF[e.code] ?? ErrorCode.Internal
  return { ...e, data: [...details, { '@type': ERROR_INFO_TYPE, reason: am, domain: 'agentmesh', metadata: {} }] }
}

function rpcError (id: RpcResponse['id'], code: number, message: string, am: ErrorCode): RpcResponse {
  return { jsonrpc: '2.0', id, error: withCode({ code, message }, am) }
}

function idOf (body: unknown): RpcResponse['id'] {
  const id = (body as { id?: unknown } | null)?.id
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

/** The request body, at most MAX_A2A_BODY_BYTES; undefined when it is not JSON. */
async function readBody (c: Context): Promise<{ ok: true, body: unknown } | { ok: false, error: RpcResponse }> {
  // too large is refused at the HTTP level (413, the REST error shape), as an unknown agent (404)
  const tooLarge = (n: number): AgentMeshError => new AgentMeshError(ErrorCode.BodyTooLarge, `the request is ${n} bytes; the A2A bridge takes at most ${MAX_A2A_BODY_BYTES}`)
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > MAX_A2A_BODY_BYTES) throw tooLarge(declared)
  const raw = new Uint8Array(await c.req.arrayBuffer())
  if (raw.byteLength > MAX_A2A_BODY_BYTES) throw tooLarge(raw.byteLength)
  try {
    return { ok: true, body: JSON.parse(new TextDecoder().decode(raw)) }
  } catch {
    return { ok: false, error: rpcError(null, -32700, 'Parse error: the body is not JSON', ErrorCode.BadJson) }
  }
}

export function a2aFeature (ctx: A2aContext): RelayFeature {
  const { store, chat, tasks, logger: log } = ctx
  // the relay's options (a2aTasksPerAgent, a2aOpenRequests, a2aStreamMs) unless given
  const tasksPerAgent = ctx.a2a?.tasksPerAgent ?? ctx.options.a2aTasksPerAgent ?? DEFAULT_A2A_TASKS_PER_AGENT
  const openLimit = ctx.a2a?.openRequests ?? ctx.options.a2aOpenRequests ?? DEFAULT_A2A_OPEN_REQUESTS
  const streamMs = ctx.a2a?.streamMs ?? ctx.options.a2aStreamMs ?? DEFAULT_A2A_STREAM_MS
  const views = new A2aViews()
  const executions = new Executions()
  const relayAmid = (): string => chat.relayAmid
  const taskStore = new BridgeTaskStore({ store, tasks, views, relayAmid, log })
  const executor = bridgeExecutor({ store, tasks, views, relayAmid, deadlineS: () => chat.settings.taskDefaultDeadlineS, executions, log })
  // one bus per running task, shared by every request (a cancel or a resubscribe finds the running one)
  const buses = new DefaultExecutionEventBusManager()
  const cache = new Map<string, { enabled: boolean, at: number }>()
  let open = 0

  const enabled = async (amid: string): Promise<boolean> => {
    const hit = cache.get(amid)
    if (hit !== undefined && ctx.now() - hit.at < SETTING_TTL_MS) return hit.enabled
    const on = (await store.getSettings())[settingKey(amid)] != null
    if (cache.size >= 10_000) cache.clear()
    cache.set(amid, { enabled: on, at: ctx.now() })
    return on
  }
  const urls = (c: Context, amid: string): { origin: string, url: string, card_url: string } => {
    const origin = new URL(c.req.url).origin
    const url = `${origin}/a2a/${amid}`
    return { origin, url, card_url: `${url}/.well-known/agent-card.json` }
  }
  const settingJson = (c: Context, amid: string, on: boolean): A2aSetting => {
    const u = urls(c, amid)
    return { amid, enabled: on, url: u.url, card_url: u.card_url, e2ee: false }
  }
  /** The opted-in agent a URL names (AMID, @handle or bare handle); AM_ERR_BRIDGE_NOT_ENABLED otherwise. */
  const target = async (ref: string): Promise<string> => {
    const notEnabled = new AgentMeshError(ErrorCode.BridgeNotEnabled, `no agent ${ref.slice(0, 80)} takes A2A requests on this relay: an agent turns the bridge on with \`agentmesh a2a enable\``)
    let amid: string
    try {
      amid = await chat.resolveAgent(ref.startsWith('am') && ref.length > 40 ? ref : '@' + ref.replace(/^@/, ''))
    } catch (err) {
      if (AgentMeshError.is(err, ErrorCode.UnknownHandle) || AgentMeshError.is(err, ErrorCode.UnknownRecipient) || AgentMeshError.is(err, ErrorCode.InvalidArgument)) throw notEnabled
      throw err
    }
    if (!await enabled(amid)) throw notEnabled
    return amid
  }
  const card = async (c: Context, amid: string): Promise<unknown> => {
    const u = urls(c, amid)
    const handle = await chat.handleOf(amid)
    const name = (await store.getAgent(amid))?.name
    return agentCardJson({ amid, ...(handle === undefined ? {} : { handle }), ...(name === undefined ? {} : { name }), profile: await store.getProfile(amid), url: u.url, origin: u.origin, version: VERSION })
  }

  /** Checks a SendMessage's message before the SDK runs it (its executor's errors become failed tasks). */
  const checkSend = (amid: string, params: unknown): void => {
    const m = (params as { message?: unknown } | null)?.message
    if (m === null || typeof m !== 'object') return // the SDK answers the malformed request
    const msg = Message.fromJSON(m)
    if (msg.taskId !== '') {
      throw new RequestMalformedError({ message: 'the AgentMesh bridge takes no follow-up messages on a task: send a new message (no taskId) with what the agent asked for', metadata: { agentmesh_code: ErrorCode.InvalidArgument } })
    }
    const text = messageText(msg.parts)
    if (text === undefined) throw new RequestMalformedError({ message: 'the message has no text: send at least one text or data part', metadata: { agentmesh_code: ErrorCode.InvalidArgument } })
    if (text.length > MAX_TASK_ARGS) throw new RequestMalformedError({ message: `the message's text is ${text.length} characters; an agent takes at most ${MAX_TASK_ARGS}`, metadata: { agentmesh_code: ErrorCode.BodyTooLarge } })
    if (executions.count(amid) >= tasksPerAgent) throw new AgentMeshError(ErrorCode.BridgeBusy, `the agent has ${tasksPerAgent} A2A tasks running already; wait for one to end or cancel one`)
  }

  const rpc = async (c: Context): Promise<Response> => {
    ctx.gate().limitIp(c)
    // an agent that takes no A2A requests is no endpoint: 404 in the REST error shape, like its card
    const amid = await target(c.req.param('agent') ?? '')
    const read = await readBody(c)
    if (!read.ok) return c.json(read.error)
    const body = read.body
    const id = idOf(body)
    const method = (body as { method?: unknown } | null)?.method
    const streaming = method === 'SendStreamingMessage' || method === 'SubscribeToTask'
    const sends = method === 'SendMessage' || method === 'SendStreamingMessage'
    try {
      if (open >= openLimit) throw new AgentMeshError(ErrorCode.BridgeBusy, `the relay has ${openLimit} A2A requests open; try again shortly`)
      if (sends) checkSend(amid, (body as { params?: unknown }).params)
    } catch (err) {
      if (AgentMeshError.is(err)) return c.json(rpcError(id, -32603, err.message, err.code))
      const e = JsonRpcTransportHandler.mapToJSONRPCError(err)
      return c.json({ jsonrpc: '2.0', id, error: withCode(e) })
    }
    const context = new ServerCallContext({ state: new Map([[AGENT_KEY, amid]]), requestedVersion: c.req.header(A2A_VERSION_HEADER) ?? A2A_PROTOCOL_VERSION })
    // the agent's slot is taken now (no await since checkSend): its executor takes it over, else the request gives it back
    if (sends) { executions.take(amid); context.state.set(SLOT_KEY, 'admitted') }
    open++
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      open--
      if (context.state.get(SLOT_KEY) === 'admitted') { context.state.delete(SLOT_KEY); executions.give(amid) }
    }
    let handler: DefaultRequestHandler
    try {
      handler = new DefaultRequestHandler(AgentCard.fromJSON(await card(c, amid)), taskStore, executor, buses)
      validateVersion(context.requestedVersion, await handler.getAgentCard(), 'JSONRPC')
    } catch (err) {
      close()
      return c.json({ jsonrpc: '2.0', id, error: withCode(JsonRpcTransportHandler.mapToJSONRPCError(err)) })
    }
    try {
      const handled = new JsonRpcTransportHandler(handler).handle(body as Record<string, unknown>, context)
      // a blocking SendMessage waits for the task at most streamMs: then it answers the task as it stands
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late') }, streamMs); timer.unref() })
      const out = await Promise.race([handled, late]).finally(() => { clearTimeout(timer) })
      if (out === 'late') {
        close()
        handled.then(() => {}, () => {}) // it ends with the task (its deadline at the latest)
        const taskId = context.state.get(TASK_KEY)
        const task = typeof taskId === 'string' ? await taskStore.load(taskId, context) : undefined
        if (task === undefined) return c.json(rpcError(id, -32603, `no answer within ${streamMs / 1000} s; the request was closed`, ErrorCode.Timeout))
        return c.json({ jsonrpc: '2.0', id, result: { task: Task.toJSON(task) } })
      }
      if (!streaming || typeof (out as AsyncGenerator)[Symbol.asyncIterator] !== 'function') {
        close()
        const r = out as RpcResponse
        return c.json(r.error === undefined ? r : { ...r, error: withCode(r.error) })
      }
      return sse(out as AsyncGenerator<RpcResponse>, id, close)
    } catch (err) {
      close()
      log.warn({ err }, 'A2A bridge: request failed')
      return c.json({ jsonrpc: '2.0', id, error: withCode(JsonRpcTransportHandler.mapToJSONRPCError(err)) })
    }
  }

  /** An SSE answer: each JSON-RPC response an event; closed after streamMs (the task goes on). */
  const sse = (gen: AsyncGenerator<RpcResponse>, id: RpcResponse['id'], close: () => void): Response => {
    const enc = new TextEncoder()
    const it = gen[Symbol.asyncIterator]()
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<IteratorResult<RpcResponse>>((resolve) => {
      timer = setTimeout(() => { resolve({ done: true, value: undefined }) }, streamMs)
      timer.unref()
    })
    const end = (): void => { clearTimeout(timer); close(); void it.return?.(undefined).catch(() => {}) }
    const stream = new ReadableStream<Uint8Array>({
      async pull (controller) {
        try {
          const r = await Promise.race([it.next(), expired])
          if (r.done === true) { end(); controller.close(); return }
          const v = r.value
          controller.enqueue(enc.encode(formatSSEEvent(v.error === undefined ? v : { ...v, error: withCode(v.error) })))
        } catch (err) {
          controller.enqueue(enc.encode(formatSSEErrorEvent({ jsonrpc: '2.0', id, error: withCode(JsonRpcTransportHandler.mapToJSONRPCError(err)) })))
          end()
          controller.close()
        }
      },
      cancel () { end() },
    })
    return new Response(stream, { status: 200, headers: SSE_HEADERS })
  }

  return {
    name: 'a2a',
    routes (app: Hono) {
      const gate = (): ApiGate => ctx.gate()
      const own = async (c: Context): Promise<{ amid: string, p: Awaited<ReturnType<ApiGate['enter']>>['p'], body: unknown }> => {
        const { p, body } = await gate().enter(c)
        const { amid: ref } = paramsOf(c, R.getA2a.params)
        const amid = await chat.resolveAgent(ref)
        const reading = c.req.method === 'GET'
        const allowed = p.kind === 'agent' ? p.amid === amid || (reading && p.role === 'master') : reading
        if (!allowed) {
          throw new AgentMeshError(ErrorCode.Forbidden, p.kind === 'agent' ? `an agent sets its own A2A bridge: you are ${p.amid}` : 'an agent turns its A2A bridge on or off itself; the operator\'s key cannot')
        }
        return { amid, p, body }
      }
      app.get('/api/v1/agents/:amid/a2a', async (c) => {
        const { amid } = await own(c)
        return answer(c, 'getA2a', settingJson(c, amid, await enabled(amid)))
      })
      app.put('/api/v1/agents/:amid/a2a', async (c) => {
        const { amid, p, body } = await own(c)
        const b = checkValue(R.putA2a.body, body)
        await store.putSettings({ [settingKey(amid)]: b.enabled ? { at: ctx.now() } : null })
        cache.set(amid, { enabled: b.enabled, at: ctx.now() })
        await chat.audit(p, b.enabled ? 'a2a.enabled' : 'a2a.disabled', amid, {})
        return answer(c, 'putA2a', settingJson(c, amid, b.enabled))
      })
      app.get('/a2a/:agent/.well-known/agent-card.json', async (c) => {
        gate().limitIp(c)
        const amid = await target(c.req.param('agent'))
        return c.json(await card(c, amid))
      })
      app.post('/a2a/:agent', rpc)
    },
  }
}
