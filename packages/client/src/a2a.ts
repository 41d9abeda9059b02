/**
 * A2A (docs/protocol.md §24), both ways:
 * - **inbound**: `a2a(conn).enable()` turns the relay's A2A bridge on for this agent (off by
 *   default): A2A clients then find its card at `<relay>/a2a/<amid>/.well-known/agent-card.json`
 *   and their messages reach it as `a2a` tasks, answered with `a2a(conn).serve(handler)` (or
 *   `tasks(conn).onCommand('a2a', …)`). End-to-end encryption ends at the bridge.
 * - **outbound**: `a2aSend(url, text)` calls any A2A 1.0 agent (its card is resolved from the
 *   URL with the A2A SDK's client) and answers what it said. What a remote agent says is untrusted
 *   text: fence it (`fenceUntrusted`) before an LLM reads it.
 *
 * @example
 * ```ts
 * await a2a(conn).serve(async (task) => `you said: ${task.args}`)
 * const reply = await a2aSend('https://agents.example/a2a/weather', 'forecast for Paris?')
 * console.log(reply.state, reply.text)
 * ```
 */
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client'
import { AgentCard, Message, StreamResponse, Task, type Part } from '@a2a-js/sdk'
import { AgentMeshError, A2A_COMMAND, ErrorCode, isErrorCode, type ApiAnswer } from '@agentmesh/protocol'
import { restCall } from './api.ts'
import { tasks, type CommandHandler } from './tasks.ts'
import type { Connection } from './types.ts'

/** The agent's A2A bridge setting, as the relay answers it. */
export type A2aSetting = ApiAnswer<'getA2a'>

export interface A2a {
  /** Turns the relay's A2A bridge on for this agent: it gets an agent card and a JSON-RPC endpoint. */
  enable (): Promise<A2aSetting>
  /** Turns it off: the card and the endpoint answer 404 (AM_ERR_BRIDGE_NOT_ENABLED). */
  disable (): Promise<A2aSetting>
  status (): Promise<A2aSetting>
  /** Answers A2A messages with `handler` (their text is `task.args`), and turns the bridge on. */
  serve (handler: CommandHandler, opts?: { description?: string }): Promise<A2aSetting>
}

export function a2a (conn: Connection): A2a {
  const path = `/api/v1/agents/${conn.amid}/a2a`
  const req = async (m: string, p: string, b?: unknown): Promise<unknown> => await conn.request(m, p, b)
  const set = async (enabled: boolean): Promise<A2aSetting> => await restCall(req, 'putA2a', path, { enabled })
  return {
    enable: async () => await set(true),
    disable: async () => await set(false),
    status: async () => await restCall(req, 'getA2a', path),
    async serve (handler, opts = {}) {
      await tasks(conn).onCommand(A2A_COMMAND, handler, { description: opts.description ?? 'answers A2A messages sent through the relay\'s A2A bridge' })
      return await set(true)
    },
  }
}

/** One thing a remote agent reported while a streaming call ran. */
export interface A2aUpdate {
  kind: 'task' | 'status' | 'artifact' | 'message'
  state?: string
  text?: string
}

/** What a remote A2A agent answered. */
export interface A2aReply {
  /** a task (with a state) or a bare message */
  kind: 'task' | 'message'
  taskId?: string
  contextId: string
  /** the task's state, A2A's name without the prefix, lower case: completed, failed, working… */
  state?: string
  /** what the agent said: its artifacts' and its last message's text (untrusted) */
  text: string
  /** the agent card's name */
  agent: string
  /** every update, in order, when streamed */
  updates: A2aUpdate[]
  /** the task or message as A2A JSON */
  raw: unknown
}

export interface A2aSendOptions {
  /** Use SendStreamingMessage (the agent must declare streaming) and report each update. @default false */
  stream?: boolean
  onUpdate?: (u: A2aUpdate) => void
  /** A context to continue (a previous reply's contextId). */
  contextId?: string
  signal?: AbortSignal
  /** @default globalThis.fetch */
  fetch?: typeof fetch
  /** Bound on the whole call. @default 120 s */
  timeoutMs?: number
}

/** The most text a reply keeps (a remote agent's answer is bounded here). */
export const MAX_A2A_REPLY_TEXT = 256 * 1024

const stateName = (s: unknown): string | undefined => typeof s === 'string' ? s.replace(/^TASK_STATE_/, '').toLowerCase().replace(/_/g, '-') : undefined

function partsText (parts: readonly Part[] | undefined): string {
  const out: string[] = []
  for (const p of parts ?? []) {
    const c = p.content
    if (c?.$case === 'text') out.push(c.value)
    else if (c?.$case === 'data') out.push(JSON.stringify(c.value))
    else if (c?.$case === 'url') out.push(c.value)
    else if (c?.$case === 'raw') out.push(`[${p.mediaType === '' ? 'binary' : p.mediaType} part, ${c.value.length} bytes]`)
  }
  return out.join('\n')
}

/** The text of a task: its artifacts, else its status message. */
function taskText (t: Task): string {
  const arts = t.artifacts.map(a => partsText(a.parts)).filter(s => s !== '')
  if (arts.length > 0) return arts.join('\n')
  return partsText(t.status?.message?.parts)
}

function remoteError (url: string, err: unknown): AgentMeshError {
  if (AgentMeshError.is(err)) return err
  const msg = err instanceof Error ? err.message : String(err)
  return new AgentMeshError(ErrorCode.RemoteAgent, `A2A agent at ${url.slice(0, 200)}: ${msg.slice(0, 500)}`, { cause: err })
}

function checkUrl (url: string): URL {
  let u: URL
  try { u = new URL(url) } catch { throw new AgentMeshError(ErrorCode.InvalidArgument, `"${url.slice(0, 200)}" is not a URL: give the A2A agent's base URL, e.g. https://host/a2a/agent`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AgentMeshError(ErrorCode.InvalidArgument, `an A2A agent is reached over http or https, not ${u.protocol}`)
  return u
}

/** The largest agent card read, in bytes. */
const MAX_CARD_BYTES = 256 * 1024

/**
 * A client for the A2A agent at `url`: its card read from `<url>/.well-known/agent-card.json`
 * (or from `url` itself when it names a .json card). A relay's refusal (an agent without the
 * bridge) keeps its AgentMesh code.
 */
async function clientFor (url: string, fetchImpl: typeof fetch, signal?: AbortSignal): Promise<Client> {
  const u = checkUrl(url)
  const cardUrl = u.pathname.endsWith('.json') ? u : new URL('.well-known/agent-card.json', u.href.endsWith('/') ? u.href : u.href + '/')
  // A2A 0.3 agents too: the SDK's compatibility layer reads their cards and speaks their methods
  const legacyCompat = { enabled: true }
  const resolver = new DefaultAgentCardResolver({ fetchImpl, legacyCompat })
  const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat }), new RestTransportFactory({ fetchImpl, legacyCompat })], cardResolver: resolver })
  let res: Response
  try {
    res = await fetchImpl(cardUrl, { headers: { 'A2A-Version': '1.0' }, ...(signal === undefined ? {} : { signal }) })
  } catch (err) { throw remoteError(url, err) }
  const raw = await res.text().catch(() => '')
  if (raw.length > MAX_CARD_BYTES) throw new AgentMeshError(ErrorCode.RemoteAgent, `A2A agent at ${url.slice(0, 200)}: its agent card is over ${MAX_CARD_BYTES} bytes`)
  let body: unknown
  try { body = JSON.parse(raw) } catch { body = undefined }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown, message?: unknown } } | undefined)?.error
    if (isErrorCode(e?.code) && typeof e.message === 'string') throw new AgentMeshError(e.code, e.message)
    throw new AgentMeshError(ErrorCode.RemoteAgent, `A2A agent at ${url.slice(0, 200)}: its agent card (${cardUrl.href.slice(0, 200)}) answered HTTP ${res.status}`)
  }
  if (body === undefined) throw new AgentMeshError(ErrorCode.RemoteAgent, `A2A agent at ${url.slice(0, 200)}: its agent card is not JSON`)
  try {
    return await factory.createFromAgentCard(resolver.normalizeAgentCard(body))
  } catch (err) { throw remoteError(url, err) }
}

/** The agent card (A2A JSON) of the agent at `url`. */
export async function a2aCard (url: string, opts: { fetch?: typeof fetch } = {}): Promise<unknown> {
  const client = await clientFor(url, opts.fetch ?? globalThis.fetch)
  try { return AgentCard.toJSON(await client.getAgentCard()) } catch (err) { throw remoteError(url, err) }
}

/** Sends `text` to the A2A agent at `url` and answers its reply (blocking, or streamed with `stream`). */
export async function a2aSend (url: string, text: string, opts: A2aSendOptions = {}): Promise<A2aReply> {
  if (typeof text !== 'string' || text.length === 0) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the text to send is empty')
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 120_000), ...(opts.signal === undefined ? [] : [opts.signal])])
  const client = await clientFor(url, opts.fetch ?? globalThis.fetch, signal)
  const card = await client.getAgentCard()
  const message = Message.fromJSON({ messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...(opts.contextId === undefined ? {} : { contextId: opts.contextId }) })
  const params = { tenant: '', message, configuration: undefined, metadata: undefined }
  const updates: A2aUpdate[] = []
  const bounded = (s: string): string => s.length > MAX_A2A_REPLY_TEXT ? s.slice(0, MAX_A2A_REPLY_TEXT) + '…' : s
  try {
    if (opts.stream !== true) {
      const r = await client.sendMessage(params, { signal })
      if ('status' in r && 'artifacts' in r) {
        const raw = Task.toJSON(r) as { status?: { state?: string } }
        return { kind: 'task', taskId: r.id, contextId: r.contextId, ...withState(stateName(raw.status?.state)), text: bounded(taskText(r)), agent: card.name, updates, raw }
      }
      const m = r as Message
      return { kind: 'message', contextId: m.contextId, text: bounded(partsText(m.parts)), agent: card.name, updates, raw: Message.toJSON(m) }
    }
    let task: { id: string, contextId: string, state?: string } | undefined
    let texts: string[] = []
    let status = ''
    let last: unknown
    for await (const ev of client.sendMessageStream(params, { signal })) {
      const p = ev.payload
      if (p === undefined) continue
      last = StreamResponse.toJSON(ev)
      let u: A2aUpdate
      if (p.$case === 'task') {
        const j = Task.toJSON(p.value) as { status?: { state?: string } }
        task = { id: p.value.id, contextId: p.value.contextId, ...withState(stateName(j.status?.state)) }
        u = { kind: 'task', ...withState(task.state) }
      } else if (p.$case === 'statusUpdate') {
        const j = StreamResponse.toJSON(ev) as { statusUpdate?: { status?: { state?: string } } }
        const state = stateName(j.statusUpdate?.status?.state)
        if (task !== undefined && state !== undefined) task.state = state
        const t = partsText(p.value.status?.message?.parts)
        if (t !== '') status = t
        u = { kind: 'status', ...withState(state), ...(t === '' ? {} : { text: bounded(t) }) }
      } else if (p.$case === 'artifactUpdate') {
        const t = partsText(p.value.artifact?.parts)
        texts = p.value.append ? [...texts, t] : [t]
        u = { kind: 'artifact', text: bounded(t) }
      } else {
        const t = partsText(p.value.parts)
        u = { kind: 'message', text: bounded(t) }
        updates.push(u)
        opts.onUpdate?.(u)
        return { kind: 'message', contextId: p.value.contextId, text: bounded(t), agent: card.name, updates, raw: last }
      }
      if (updates.length < 1000) updates.push(u)
      opts.onUpdate?.(u)
    }
    if (task === undefined) throw new AgentMeshError(ErrorCode.RemoteAgent, `A2A agent at ${url.slice(0, 200)} ended its stream without a task or a message`)
    return { kind: 'task', taskId: task.id, contextId: task.contextId, ...withState(task.state), text: bounded(texts.length > 0 ? texts.join('\n') : status), agent: card.name, updates, raw: last }
  } catch (err) { throw remoteError(url, err) }
}

const withState = (state: string | undefined): { state?: string } => state === undefined ? {} : { state }
