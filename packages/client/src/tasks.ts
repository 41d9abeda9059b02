/**
 * Tasks in chat on the agent's side (docs/protocol.md §17.7): `tasks(conn).onCommand('status', fn)`
 * declares the command as a skill in the agent's profile, so `/status` in a room it is in reaches
 * it, and runs `fn` for every task the relay dispatches with that command: the task goes
 * `working`, then `completed` with what `fn` returned, or `failed` with the error it threw.
 * Dispatching, listing, reading and canceling are REST calls the connection signs.
 *
 * @example
 * ```ts
 * const t = tasks(conn)
 * await t.onCommand('status', async (task) => `up ${process.uptime() | 0} s, args: ${task.args}`)
 * const job = await t.dispatch({ to: '@bob', command: 'status' })
 * const done = await t.wait(job.id)
 * ```
 */
import {
  AgentMeshError, COMMAND_PATTERN, ErrorCode, FINAL_TASK_STATES,
  type ApiAnswer, type ApiBody, type RouteName, type TaskInfo, type TaskState,
} from '@agentmesh/protocol'
import { restCall } from './api.ts'
import type { Connection, Message } from './types.ts'
import { inbound, type Inbound } from './inbound.ts'

// the task states and the REST answers are the protocol's (src/api), under the names the SDK has always used
export { FINAL_TASK_STATES }
export type { TaskInfo, TaskState }
const COMMAND_RE = new RegExp(COMMAND_PATTERN)

/** What a command handler is given: the task, and a signal aborted when it is canceled or its deadline passes. */
export interface TaskRequest {
  id: string
  command: string
  args: string
  requester: string
  room?: string
  deadline: number
  signal: AbortSignal
  /** Reports an intermediate state (working, input-required, auth-required) with a message. */
  update: (state: 'working' | 'input-required' | 'auth-required', message?: string) => Promise<void>
}

/** Returns the result (any JSON; a string is shown as is in the timeline), or throws to fail the task. */
export type CommandHandler = (task: TaskRequest) => unknown

export interface Tasks {
  /** Handles `/name` tasks from now on, and declares `name` in the agent's profile. */
  onCommand (name: string, handler: CommandHandler, opts?: { description?: string }): Promise<void>
  dispatch (init: { to: string, command: string, args?: string, room?: string, deadlineS?: number }): Promise<TaskInfo>
  get (id: string): Promise<TaskInfo>
  list (q?: { room?: string, state?: TaskState, limit?: number, before?: string }): Promise<TaskInfo[]>
  cancel (id: string, reason?: string): Promise<TaskInfo>
  report (id: string, state: TaskState, opts?: { message?: string, result?: unknown }): Promise<TaskInfo>
  /** Polls until the task reaches a final state. */
  wait (id: string, opts?: { signal?: AbortSignal, pollMs?: number }): Promise<TaskInfo>
}

interface Registry {
  handlers: Map<string, CommandHandler>
  running: Map<string, AbortController>
  publishing: Promise<void>
}

const registries = new WeakMap<Connection, Registry>()

function registryOf (conn: Connection): Registry {
  let reg = registries.get(conn)
  if (reg !== undefined) return reg
  const pipe = inbound(conn)
  const r: Registry = { handlers: new Map(), running: new Map(), publishing: Promise.resolve() }
  registries.set(conn, r)
  // task requests and cancels the relay posts, after the connection's own stages
  pipe.use({
    name: 'tasks',
    handle (ctx) {
      const m = ctx.message
      if (m === undefined || m.from !== conn.relayAmid || (m.type !== 'task.request' && m.type !== 'task.cancel')) return 'continue'
      return onTaskMessage(conn, pipe, r, m) ? 'consumed' : 'continue'
    },
  })
  return r
}

/** The slowest `tasks(conn).wait()` polls (it starts at pollMs and slows by half each time). */
export const MAX_WAIT_POLL_MS = 2000

/** Times a task report refused by the relay's rate limit is sent again (each after its Retry-After, within the task's deadline). */
export const MAX_REPORT_RETRIES = 8

function onTaskMessage (conn: Connection, pipe: Inbound, reg: Registry, m: Message): boolean {
  const task = (m.payload as { task?: TaskInfo }).task
  if (task === undefined || typeof task.id !== 'string') return false
  if (m.type === 'task.cancel') {
    const ac = reg.running.get(task.id)
    if (ac === undefined) return false
    ac.abort(new AgentMeshError(ErrorCode.Aborted, `task ${task.id} was ${task.state}`))
    return true
  }
  if (reg.handlers.size === 0) return false // the application handles task requests itself
  const handler = reg.handlers.get(task.command)
  // a report the relay's rate limit refused is sent again after its Retry-After, while the task's
  // deadline allows (an agent answering many tasks at once spends its REST budget in bursts)
  const report = async (state: TaskState, body: { message?: string, result?: unknown }): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await restCall(async (m, p, b) => await conn.request(m, p, b), 'reportTask', `/api/v1/tasks/${task.id}/status`, { state, ...body })
        return
      } catch (err) {
        const waitMs = AgentMeshError.is(err, ErrorCode.RateLimited) ? Math.max(1, err.retryAfterS ?? 1) * 1000 : undefined
        if (waitMs === undefined || attempt >= MAX_REPORT_RETRIES || Date.now() + waitMs >= task.deadline) throw err
        await new Promise(resolve => setTimeout(resolve, waitMs))
      }
    }
  }
  const warn = (err: unknown): void => { pipe.warn(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, `task ${task.id}: ${(err as Error).message}`)) }
  if (handler === undefined) {
    report('rejected', { message: `this agent has no handler for /${task.command}` }).catch(warn)
    return true
  }
  const ac = new AbortController()
  const timer = setTimeout(() => { ac.abort(new AgentMeshError(ErrorCode.Timeout, `task ${task.id} passed its deadline`)) }, Math.max(0, task.deadline - Date.now()))
  timer.unref()
  reg.running.set(task.id, ac)
  void (async () => {
    try {
      await report('working', {})
      const result = await handler({
        id: task.id,
        command: task.command,
        args: task.args,
        requester: task.requester,
        ...(task.room === undefined ? {} : { room: task.room }),
        deadline: task.deadline,
        signal: ac.signal,
        update: async (state, message) => { await report(state, message === undefined ? {} : { message }) },
      })
      if (!ac.signal.aborted) await report('completed', result === undefined ? {} : { result })
    } catch (err) {
      if (!ac.signal.aborted) await report('failed', { message: String((err as Error)?.message ?? err).slice(0, 2000) }).catch(warn)
    } finally {
      clearTimeout(timer)
      reg.running.delete(task.id)
    }
  })().catch(warn)
  return true
}

function checkCommand (name: string): string {
  const c = name.replace(/^\//, '')
  if (!COMMAND_RE.test(c)) throw new AgentMeshError(ErrorCode.InvalidArgument, `command "${name.slice(0, 40)}" must be 1–32 characters of a-z 0-9 _ -, starting with a letter`)
  return c
}

export function tasks (conn: Connection): Tasks {
  const r = async <N extends RouteName>(route: N, path: string, body?: ApiBody<N>): Promise<ApiAnswer<N>> => await restCall(async (m, p, b) => await conn.request(m, p, b), route, path, body)
  const self: Tasks = {
    async onCommand (name, handler, opts = {}) {
      const command = checkCommand(name)
      if (typeof handler !== 'function') throw new AgentMeshError(ErrorCode.InvalidArgument, 'the handler must be a function')
      const reg = registryOf(conn)
      reg.handlers.set(command, handler)
      // declared as a skill, so that an unaddressed /command in a room finds this agent
      const publish = reg.publishing.then(async () => {
        const profile = await r('getAgent', `/api/v1/agents/${conn.amid}`)
        const caps = profile.capabilities
        if (caps.some(c => c.id === command)) return
        const skill = { id: command, name: '/' + command, tags: ['command'], ...(opts.description === undefined ? {} : { description: opts.description.slice(0, 1024) }) }
        await r('putAgent', `/api/v1/agents/${conn.amid}`, { capabilities: [...caps.map(c => ({ id: c.id, name: c.name, ...(c.description === undefined ? {} : { description: c.description }), tags: c.tags ?? [] })), skill] })
      })
      reg.publishing = publish.catch(() => {})
      await publish
    },
    async dispatch (init) {
      return await r('dispatchTask', '/api/v1/tasks', {
        to: init.to,
        command: checkCommand(init.command),
        ...(init.args === undefined ? {} : { args: init.args }),
        ...(init.room === undefined ? {} : { room: init.room.replace(/^#/, '') }),
        ...(init.deadlineS === undefined ? {} : { deadline_s: init.deadlineS }),
      })
    },
    async get (id) { return await r('getTask', `/api/v1/tasks/${encodeURIComponent(id)}`) },
    async list (q = {}) {
      const qs = new URLSearchParams()
      for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v))
      return (await r('listTasks', `/api/v1/tasks${qs.size > 0 ? '?' + qs.toString() : ''}`)).tasks
    },
    async cancel (id, reason) { return await r('cancelTask', `/api/v1/tasks/${encodeURIComponent(id)}/cancel`, reason === undefined ? {} : { reason }) },
    async report (id, state, opts = {}) { return await r('reportTask', `/api/v1/tasks/${encodeURIComponent(id)}/status`, { state, ...opts }) },
    async wait (id, opts = {}) {
      // polls from pollMs, slowing by half each time up to MAX_WAIT_POLL_MS, so a long task does not
      // spend the caller's REST budget; a poll the rate limit refused waits for its Retry-After
      let poll = opts.pollMs ?? 250
      let state = 'unknown'
      for (;;) {
        let waitMs = poll
        try {
          const t = await self.get(id)
          if (FINAL_TASK_STATES.has(t.state)) return t
          state = t.state
          poll = Math.min(Math.max(poll, Math.round(poll * 1.5)), Math.max(opts.pollMs ?? 0, MAX_WAIT_POLL_MS))
        } catch (err) {
          if (!AgentMeshError.is(err, ErrorCode.RateLimited)) throw err
          waitMs = Math.max(1, err.retryAfterS ?? 1) * 1000
        }
        if (opts.signal?.aborted === true) throw new AgentMeshError(ErrorCode.Aborted, `stopped waiting for task ${id} (${state})`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs)
          opts.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
        })
      }
    },
  }
  return self
}
