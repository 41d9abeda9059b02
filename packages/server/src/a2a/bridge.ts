/**
 * The A2A bridge's mapping (docs/protocol.md §24): an opted-in agent's A2A agent card built from
 * its registry profile, and the A2A SDK's request handler over AgentMesh tasks. An A2A message
 * becomes a task `a2a` for the agent (requested by the relay, args the message's text), the agent
 * answers it with the SDK as usual (`tasks(conn).onCommand('a2a', …)`), and each state the task
 * moves through goes back to the A2A client as a status update, the result as an artifact.
 *
 * The task itself (state, result, messages) is the Store's; what only A2A has (the context id and
 * the A2A message history) is kept in memory (`A2aViews`, bounded), so after a restart GetTask
 * still answers a task, under its own id as context.
 */
import { AgentCard, Artifact, Message, Task, TaskStatus, type Part } from '@a2a-js/sdk'
import {
  AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext, type ServerCallContext,
  type TaskStore as A2aTaskStore,
} from '@a2a-js/sdk/server'
import { RequestMalformedError } from '@a2a-js/sdk/errors'
import { AgentMeshError, A2A_COMMAND, ErrorCode, FINAL_TASK_STATES, MAX_TASK_ARGS, MAX_A2A_TASK_VIEWS, type TaskState } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import type { AgentProfile, Store, TaskRecord } from '@agentmesh/store'
import type { TaskService } from '../tasks.ts'
import type { Principal } from '../chat.ts'
import type { Logger } from '../log.ts'

/** The key of the agent an A2A request is for, in the SDK's ServerCallContext state. */
export const AGENT_KEY = 'agentmesh.agent'
/** The key of the task a SendMessage made, in the same state (a blocking call that runs late answers it). */
export const TASK_KEY = 'agentmesh.task'
/** The extension the card declares: end-to-end encryption ends at this bridge. §24.2 */
export const E2EE_EXTENSION_URI = 'urn:agentmesh:a2a:bridge:v1'
/** How often a waiting request reads its task from the Store (a task moved on another relay node). */
const POLL_MS = 1000
/** A2A messages of a task's history kept in memory. */
const MAX_VIEW_HISTORY = 20

/** The AgentMesh task states as A2A 1.0 names them. */
export const A2A_STATE: Record<TaskState, string> = {
  submitted: 'TASK_STATE_SUBMITTED',
  working: 'TASK_STATE_WORKING',
  'input-required': 'TASK_STATE_INPUT_REQUIRED',
  'auth-required': 'TASK_STATE_AUTH_REQUIRED',
  completed: 'TASK_STATE_COMPLETED',
  failed: 'TASK_STATE_FAILED',
  canceled: 'TASK_STATE_CANCELED',
  rejected: 'TASK_STATE_REJECTED',
}

/** What the card is built from besides the profile. */
export interface CardInput {
  amid: string
  handle?: string
  /** the name the agent registered with (the card's name when its profile has no display name) */
  name?: string
  profile?: AgentProfile
  /** the agent's A2A base URL on this relay (its JSON-RPC endpoint) */
  url: string
  /** the relay's origin */
  origin: string
  version: string
}

/**
 * Message schemas an agent declares in its profile (another feature adds the field): read
 * defensively, as `{type: schema}` or `[{type, schema?, description?}]`, each shown as a skill.
 */
function schemaSkills (profile: AgentProfile | undefined): Array<Record<string, unknown>> {
  const p = profile as unknown as Record<string, unknown> | undefined
  const raw = p?.schemas ?? p?.messageSchemas ?? p?.message_schemas
  const out: Array<Record<string, unknown>> = []
  const add = (type: unknown, description: unknown): void => {
    if (typeof type !== 'string' || type.length === 0 || out.length >= 64) return
    out.push({
      id: 'schema:' + type.slice(0, 128),
      name: type.slice(0, 128),
      description: typeof description === 'string' ? description.slice(0, 1024) : `accepts AgentMesh messages of type ${type.slice(0, 128)} (a declared JSON Schema)`,
      tags: ['message-schema'],
      inputModes: ['application/json'],
    })
  }
  if (Array.isArray(raw)) for (const s of raw) add((s as { type?: unknown })?.type, (s as { description?: unknown })?.description)
  else if (raw !== null && typeof raw === 'object') for (const [type, s] of Object.entries(raw)) add(type, (s as { description?: unknown } | null)?.description)
  return out
}

/** The agent's A2A agent card (A2A 1.0 JSON), from its registry profile. §24.2 */
export function agentCardJson (c: CardInput): unknown {
  const p = c.profile
  const who = c.handle === undefined ? c.amid : `@${c.handle}`
  const skills: Array<Record<string, unknown>> = (p?.capabilities ?? []).slice(0, 64).map(s => ({
    id: s.id, name: s.name, description: s.description ?? s.name, tags: s.tags, inputModes: ['text/plain'], outputModes: ['text/plain', 'application/json'],
  }))
  skills.push(...schemaSkills(p))
  if (!skills.some(s => s.id === A2A_COMMAND)) {
    skills.unshift({ id: A2A_COMMAND, name: 'message', description: `Send ${who} a message; it answers it as an AgentMesh task.`, tags: ['agentmesh'], inputModes: ['text/plain', 'application/json'], outputModes: ['text/plain', 'application/json'] })
  }
  const card = AgentCard.fromJSON({
    name: (p?.displayName ?? c.name ?? who).slice(0, 200),
    description: `AgentMesh agent ${who} (${c.amid}), reached through the A2A bridge of an AgentMesh relay. ` +
      'End-to-end encryption ends at this bridge: the relay reads the messages sent here and the answers. ' +
      'Messages reach the agent as tasks; text parts are its input.',
    supportedInterfaces: [{ url: c.url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
    provider: { organization: 'AgentMesh relay', url: c.origin },
    version: p?.version ?? c.version,
    capabilities: {
      streaming: true,
      pushNotifications: false,
      extensions: [{
        uri: E2EE_EXTENSION_URI,
        description: 'AgentMesh bridge: end-to-end encryption ends here. What A2A clients send and what the agent answers is readable by the relay, unlike AgentMesh direct messages.',
        required: false,
        params: { amid: c.amid, e2ee: false, ...(c.handle === undefined ? {} : { handle: c.handle }), tier: p?.tier ?? 'anonymous' },
      }],
    },
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills,
  })
  return AgentCard.toJSON(card)
}

/** The text a message gives the agent: text parts, data parts as JSON, URLs; undefined when it has none. */
export function messageText (parts: readonly Part[]): string | undefined {
  const out: string[] = []
  for (const p of parts) {
    const c = p.content
    if (c === undefined) continue
    if (c.$case === 'text') out.push(c.value)
    else if (c.$case === 'data') out.push(JSON.stringify(c.value))
    else if (c.$case === 'url') out.push(c.value)
    else throw new RequestMalformedError({ message: 'raw (file) parts are not taken by the AgentMesh bridge: send text, data or a URL', metadata: { agentmesh_code: ErrorCode.InvalidArgument } })
  }
  const text = out.join('\n')
  return text.length === 0 ? undefined : text
}

interface View { amid: string, contextId: string, history: unknown[] }

/** What only A2A knows of a task, in memory: its context and message history (JSON). */
export class A2aViews {
  private readonly views = new LruMap<string, View>(MAX_A2A_TASK_VIEWS)

  get (id: string): View | undefined { return this.views.get(id) }
  set (id: string, v: View): void { this.views.set(id, { ...v, history: v.history.slice(-MAX_VIEW_HISTORY) }) }
  /** Task ids of one agent's context, newest first. */
  inContext (amid: string, contextId: string): string[] {
    const out: string[] = []
    for (const [id, v] of this.views.entries()) if (v.amid === amid && v.contextId === contextId) out.push(id)
    return out.reverse()
  }
}

function agentOf (context: ServerCallContext): string {
  const amid = context.state.get(AGENT_KEY)
  if (typeof amid !== 'string') throw new Error('A2A request without its agent in the call context')
  return amid
}

function agentMessage (t: TaskRecord, contextId: string, text: string): unknown {
  return { messageId: `${t.id}-${t.state}-${t.updatedAt}`, contextId, taskId: t.id, role: 'ROLE_AGENT', parts: [{ text }] }
}

function resultPart (result: unknown): unknown {
  return typeof result === 'string' ? { text: result, mediaType: 'text/plain' } : { data: result, mediaType: 'application/json' }
}

/** The text a state says to the A2A client: the result when completed (as text), else the task's message. */
function statusText (t: TaskRecord): string | undefined {
  if (t.state === 'completed' && t.result !== undefined) return typeof t.result === 'string' ? t.result : JSON.stringify(t.result)
  return t.message
}

/** The A2A status of an AgentMesh task. */
export function a2aStatus (t: TaskRecord, contextId: string): unknown {
  const text = statusText(t)
  return { state: A2A_STATE[t.state], timestamp: new Date(t.updatedAt).toISOString(), ...(text === undefined ? {} : { message: agentMessage(t, contextId, text) }) }
}

function resultArtifact (t: TaskRecord): unknown {
  return { artifactId: `${t.id}-result`, name: 'result', parts: [resultPart(t.result)] }
}

/** The relay as the requester of bridge tasks (cancels them). */
function relayPrincipal (relayAmid: string): Principal { return { kind: 'agent', amid: relayAmid, role: 'master' } }

/** Is `t` a bridge task for `amid`? */
function isBridgeTask (t: TaskRecord | undefined, amid: string, relayAmid: string): t is TaskRecord {
  return t !== undefined && t.requester === relayAmid && t.assignee === amid && t.command === A2A_COMMAND
}

/** The SDK's task store over AgentMesh tasks: the Store's task, the A2A view from memory. */
export class BridgeTaskStore implements A2aTaskStore {
  constructor (private readonly c: { store: Store, tasks: TaskService, views: A2aViews, relayAmid: () => string, log: Logger }) {}

  async save (task: Task, context: ServerCallContext): Promise<void> {
    const amid = agentOf(context)
    const json = Task.toJSON(task) as { history?: unknown[] }
    this.c.views.set(task.id, { amid, contextId: task.contextId, history: json.history ?? [] })
    // a cancel the SDK records without a running execution (another node ran it, or a restart):
    // the AgentMesh task is canceled too
    if (task.status?.state === 5 /* TASK_STATE_CANCELED */) {
      const t = await this.c.store.getTask(task.id)
      if (isBridgeTask(t, amid, this.c.relayAmid()) && !FINAL_TASK_STATES.has(t.state)) await cancelQuietly(this.c.tasks, this.c.relayAmid(), t.id)
    }
  }

  async load (taskId: string, context: ServerCallContext): Promise<Task | undefined> {
    const amid = agentOf(context)
    const t = await this.c.store.getTask(taskId)
    if (!isBridgeTask(t, amid, this.c.relayAmid())) return undefined
    return Task.fromJSON(this.json(t))
  }

  /** The A2A task (JSON) of a bridge task. */
  json (t: TaskRecord): Record<string, unknown> {
    const view = this.c.views.get(t.id)
    const contextId = view?.contextId ?? t.id
    const history = view?.history ?? [{ messageId: `${t.id}-request`, contextId, taskId: t.id, role: 'ROLE_USER', parts: [{ text: t.args }] }]
    return {
      id: t.id,
      contextId,
      status: a2aStatus(t, contextId),
      history,
      ...(t.state === 'completed' && t.result !== undefined ? { artifacts: [resultArtifact(t)] } : {}),
      metadata: { agentmesh_task: t.id, agentmesh_agent: t.assignee },
    }
  }

  async list (params: { contextId: string, pageSize?: number | undefined }, context: ServerCallContext): Promise<{ tasks: Task[], nextPageToken: string, pageSize: number, totalSize: number }> {
    const amid = agentOf(context)
    // anyone may call an agent's A2A endpoint: the context id (answered with each task) scopes what a caller lists
    if (params.contextId === '') {
      throw new RequestMalformedError({ message: 'ListTasks on an AgentMesh bridge takes a contextId (answered with each task): anyone may call this endpoint, so a context is what a caller lists', metadata: { agentmesh_code: ErrorCode.InvalidArgument } })
    }
    const pageSize = Math.min(Math.max(params.pageSize ?? 50, 1), 100)
    const ids = this.c.views.inContext(amid, params.contextId)
    const tasks: Task[] = []
    for (const id of ids.slice(0, pageSize)) {
      const t = await this.load(id, context)
      if (t !== undefined) tasks.push(t)
    }
    return { tasks, nextPageToken: '', pageSize, totalSize: ids.length }
  }
}

async function cancelQuietly (tasks: TaskService, relayAmid: string, id: string): Promise<TaskRecord | undefined> {
  try {
    return await tasks.cancel(relayPrincipal(relayAmid), id, 'canceled by the A2A client')
  } catch (err) {
    if (AgentMeshError.is(err, ErrorCode.InvalidTransition)) return undefined
    throw err
  }
}

/**
 * Slots of running executions on this node, per agent (the busy bound) and the tasks running
 * (cancel). A request takes its agent's slot when it is admitted (`take`, before the SDK runs), so
 * requests arriving together cannot pass the bound; the executor it starts owns the slot from then
 * on (`SLOT_KEY` in the call's state) and gives it back when the task is followed no more.
 */
export class Executions {
  readonly byAgent = new Map<string, number>()
  readonly running = new Set<string>()
  count (amid: string): number { return this.byAgent.get(amid) ?? 0 }
  take (amid: string): void { this.byAgent.set(amid, this.count(amid) + 1) }
  give (amid: string): void {
    const n = this.count(amid) - 1
    if (n <= 0) this.byAgent.delete(amid)
    else this.byAgent.set(amid, n)
  }
}

/** The call's slot (Executions): 'admitted' by the request, 'executor' once its executor owns it. */
export const SLOT_KEY = 'agentmesh.slot'

/**
 * The SDK's executor: makes the AgentMesh task and tells the A2A client each state it reaches,
 * until a final state or input-required (the bridge takes no follow-up messages).
 */
export function bridgeExecutor (c: { store: Store, tasks: TaskService, views: A2aViews, relayAmid: () => string, deadlineS: () => number, executions: Executions, log: Logger }): AgentExecutor {
  return {
    async execute (rc: RequestContext, bus: ExecutionEventBus): Promise<void> {
      const amid = agentOf(rc.context)
      const text = messageText(rc.userMessage.parts) ?? ''
      const user = Message.toJSON(rc.userMessage)
      c.views.set(rc.taskId, { amid, contextId: rc.contextId, history: [user] })
      rc.context.state.set(TASK_KEY, rc.taskId)
      // the slot the request took when it was admitted is this execution's now
      if (rc.context.state.get(SLOT_KEY) !== 'admitted') c.executions.take(amid)
      rc.context.state.set(SLOT_KEY, 'executor')
      c.executions.running.add(rc.taskId)
      let stop = (): void => {}
      try {
        const created = await c.tasks.bridge({ id: rc.taskId, assignee: amid, command: A2A_COMMAND, args: text.slice(0, MAX_TASK_ARGS), deadlineS: c.deadlineS() })
        bus.publish(AgentEvent.task(Task.fromJSON({ id: created.id, contextId: rc.contextId, status: a2aStatus(created, rc.contextId), history: [user] })))
        // every state the task reaches, from this node's transitions, or read from the Store (another node)
        let last = created
        const tell = (t: TaskRecord): void => {
          if (t.updatedAt < last.updatedAt || (t.updatedAt === last.updatedAt && t.state === last.state && t.history.length <= last.history.length)) return
          last = t
          if (t.state === 'completed' && t.result !== undefined) {
            bus.publish(AgentEvent.artifactUpdate({ taskId: t.id, contextId: rc.contextId, artifact: Artifact.fromJSON(resultArtifact(t)), append: false, lastChunk: true, metadata: undefined }))
          }
          bus.publish(AgentEvent.statusUpdate({ taskId: t.id, contextId: rc.contextId, status: TaskStatus.fromJSON(a2aStatus(t, rc.contextId)), metadata: undefined }))
        }
        const ended = (t: TaskRecord): boolean => FINAL_TASK_STATES.has(t.state) || t.state === 'input-required'
        await new Promise<void>((resolve) => {
          const check = (t: TaskRecord): void => {
            if (t.id !== created.id) return
            tell(t)
            if (ended(t)) { stop(); resolve() }
          }
          const unwatch = c.tasks.watch(check)
          const timer = setInterval(() => {
            c.store.getTask(created.id).then((t) => { if (t !== undefined) check(t) }, (err: unknown) => { c.log.warn({ err, task: created.id }, 'A2A bridge: reading a task failed') })
          }, POLL_MS)
          timer.unref()
          stop = () => { unwatch(); clearInterval(timer) }
        })
      } finally {
        stop()
        c.executions.running.delete(rc.taskId)
        c.executions.give(amid)
      }
    },
    async cancelTask (taskId: string, bus: ExecutionEventBus): Promise<void> {
      const done = await cancelQuietly(c.tasks, c.relayAmid(), taskId)
      // no execution of it runs here (it waits for input, or ran elsewhere): tell the bus ourselves
      if (!c.executions.running.has(taskId)) {
        const t = done ?? await c.store.getTask(taskId)
        if (t !== undefined) {
          const contextId = c.views.get(taskId)?.contextId ?? taskId
          bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status: TaskStatus.fromJSON(a2aStatus(t, contextId)), metadata: undefined }))
        }
      }
    },
  }
}
