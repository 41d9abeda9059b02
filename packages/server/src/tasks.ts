/**
 * Tasks in chat (docs/protocol.md §17.7): `/command args` or `@agent /command args` in the global
 * room or a public room dispatches a task to the addressed agent; it moves through the A2A states,
 * every transition is posted to the room's timeline, and the result lands there. Tasks have
 * deadlines (the relay fails them when they pass) and can be canceled and listed.
 */
import { v7 as uuidv7 } from 'uuid'
import {
  AgentMeshError, COMMAND_PATTERN as COMMAND, ErrorCode, FINAL_TASK_STATES, MAX_TASK_ARGS, MAX_TASK_DEADLINE_S,
  MAX_TASK_MESSAGE, MAX_TASK_RESULT_BYTES, TASK_STATES,
} from '@agentmesh/protocol'
import type { Envelope, TaskInfo } from '@agentmesh/protocol'
import type { RoomRecord, TaskRecord, TaskState, Store } from '@agentmesh/store'
import {
  TASK_CANCEL_TYPE, TASK_REQUEST_TYPE, TASK_UPDATE_TYPE, NOTICE_TYPE, actorOf, parseSlashCommand,
  type ChatService, type Checked, type Principal,
} from './chat.ts'
import type { Logger } from './log.ts'

const FINAL_STATES = FINAL_TASK_STATES
const STATES: readonly TaskState[] = TASK_STATES
/** What the assignee may move a task to, from each state. */
const ASSIGNEE_MOVES: Record<TaskState, readonly TaskState[]> = {
  submitted: ['working', 'input-required', 'auth-required', 'completed', 'failed', 'rejected'],
  working: ['working', 'input-required', 'auth-required', 'completed', 'failed'],
  'input-required': ['working', 'input-required', 'auth-required', 'completed', 'failed'],
  'auth-required': ['working', 'input-required', 'auth-required', 'completed', 'failed'],
  completed: [],
  failed: [],
  canceled: [],
  rejected: [],
}
/** A task's command (the protocol's COMMAND_PATTERN), built once. */
const COMMAND_PATTERN = new RegExp(COMMAND)
/** Agents one unaddressed command is dispatched to at most. */
export const MAX_TASK_FANOUT = 8
const DEADLINE_SWEEP_MS = 1000

export function taskJson (t: TaskRecord): TaskInfo {
  return {
    id: t.id,
    ...(t.room === undefined ? {} : { room: t.room }),
    requester: t.requester,
    assignee: t.assignee,
    command: t.command,
    args: t.args,
    state: t.state,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    deadline: t.deadline,
    ...(t.result === undefined ? {} : { result: t.result }),
    ...(t.message === undefined ? {} : { message: t.message }),
    history: t.history.map(h => ({ state: h.state, at: h.at, by: h.by, ...(h.message === undefined ? {} : { message: h.message }) })),
  }
}

/** One line for the timeline, e.g. "/status for @bob: completed — all good". */
function summary (t: TaskRecord, who: string): string {
  const tail = t.state === 'completed' && t.result !== undefined
    ? ': ' + (typeof t.result === 'string' ? t.result : JSON.stringify(t.result)).slice(0, 500)
    : t.message !== undefined ? ': ' + t.message.slice(0, 500) : ''
  return `/${t.command} → ${who}: ${t.state}${tail}`
}

export class TaskService {
  private timer: NodeJS.Timeout | undefined
  private sweeping = false
  private unsubscribe: (() => void) | undefined
  /** told of every task this node creates or moves (the A2A bridge waits on its tasks with it) */
  private readonly watchers = new Set<(t: TaskRecord) => void>()

  constructor (private readonly chat: ChatService, private readonly store: Store, private readonly log: Logger) {}

  /** Listens for slash commands in rooms ('room:chat') and fails overdue tasks every second. */
  start (): void {
    this.unsubscribe ??= this.chat.events.on('room:chat', (e) => {
      void this.fromChat(e.room, e.env, e.seq).catch((err) => { this.log.error({ err }, 'task dispatch from chat failed') })
    })
    clearInterval(this.timer)
    this.timer = setInterval(() => { void this.sweep() }, DEADLINE_SWEEP_MS).unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  /** A plaintext chat message was stored in a room: a slash command makes tasks. */
  private async fromChat (room: RoomRecord, env: Envelope, _seq: number): Promise<void> {
    const cmd = parseSlashCommand(env.payload.text as string)
    if (cmd === undefined) return
    const requester = env.from
    const s = await this.chat.roomState(room.id)
    if (s === undefined) return
    let assignees: string[]
    if (cmd.target !== undefined) {
      let amid: string
      try {
        amid = await this.chat.resolveAgent(cmd.target.startsWith('am') && cmd.target.length > 40 ? cmd.target : '@' + cmd.target)
      } catch (err) {
        await this.chat.postToRoom(s, NOTICE_TYPE, { text: `/${cmd.command}: ${(err as Error).message}`, code: (err as AgentMeshError).code ?? ErrorCode.UnknownHandle, reply_to: env.id })
        return
      }
      if (!this.chat.isMember(s, amid)) {
        await this.chat.postToRoom(s, NOTICE_TYPE, { text: `/${cmd.command}: @${cmd.target} is not in this room`, code: ErrorCode.NotMember, reply_to: env.id })
        return
      }
      assignees = [amid]
    } else {
      const members = new Set(this.chat.membersOf(s))
      const handlers = await this.store.searchProfiles({ capability: cmd.command, limit: 1000 })
      assignees = handlers.map(p => p.amid).filter(a => members.has(a) && a !== requester && p_hasCommand(handlers, a, cmd.command)).slice(0, MAX_TASK_FANOUT)
      if (assignees.length === 0) {
        await this.chat.postToRoom(s, NOTICE_TYPE, {
          text: `/${cmd.command}: no member of this room handles it; address one with @agent /${cmd.command}`,
          code: ErrorCode.NoHandler,
          reply_to: env.id,
        })
        return
      }
    }
    for (const assignee of assignees) {
      await this.create({ requester, assignee, command: cmd.command, args: cmd.args, room: room.id, deadlineS: this.chat.settings.taskDefaultDeadlineS, origin: env.id })
    }
  }

  /** POST /api/v1/tasks: a task dispatched directly. */
  async dispatch (p: Principal, checked: Checked<{ to?: unknown, command?: unknown, args?: unknown, room?: unknown, deadline_s?: unknown }>): Promise<TaskRecord> {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'tasks are dispatched by agents; use an agent\'s token or signed request')
    const body = checked()
    if (typeof body.command !== 'string' || !COMMAND_PATTERN.test(body.command.replace(/^\//, ''))) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, 'command must be 1–32 characters of a-z 0-9 _ -, starting with a letter (e.g. "status")')
    }
    if (body.args !== undefined && (typeof body.args !== 'string' || body.args.length > MAX_TASK_ARGS)) throw new AgentMeshError(ErrorCode.InvalidArgument, `args must be a string of at most ${MAX_TASK_ARGS.toLocaleString('en')} characters`)
    let deadlineS = this.chat.settings.taskDefaultDeadlineS
    if (body.deadline_s !== undefined) {
      if (typeof body.deadline_s !== 'number' || !Number.isInteger(body.deadline_s) || body.deadline_s < 1 || body.deadline_s > MAX_TASK_DEADLINE_S) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, `deadline_s must be a whole number of seconds from 1 to ${MAX_TASK_DEADLINE_S}`)
      }
      deadlineS = body.deadline_s
    }
    const assignee = await this.chat.resolveAgent(body.to, 'to')
    let room: string | undefined
    if (body.room !== undefined) {
      if (typeof body.room !== 'string') throw new AgentMeshError(ErrorCode.InvalidArgument, 'room must be a room id')
      const s = await this.chat.visibleRoom(p, body.room)
      if (s.room.kind === 'dm') throw new AgentMeshError(ErrorCode.InvalidArgument, 'tasks are dispatched in rooms, or directly without a room')
      if (!this.chat.isMember(s, p.amid)) throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} before dispatching tasks in it`)
      if (!this.chat.isMember(s, assignee)) throw new AgentMeshError(ErrorCode.NotMember, `${assignee} is not a member of ${s.room.id}`)
      room = s.room.id
    }
    return await this.create({ requester: p.amid, assignee, command: body.command.replace(/^\//, ''), args: (body.args as string | undefined) ?? '', ...(room === undefined ? {} : { room }), deadlineS })
  }

  /** Calls `fn` with every task this node creates or moves from now on; answers the unsubscribe. */
  watch (fn: (t: TaskRecord) => void): () => void {
    this.watchers.add(fn)
    return () => { this.watchers.delete(fn) }
  }

  private told (t: TaskRecord): void {
    for (const fn of this.watchers) {
      try { fn(t) } catch (err) { this.log.error({ err }, 'task watcher failed') }
    }
  }

  /**
   * A task the relay itself requests for a bridge (A2A, §24): requester the relay's AMID, `id`
   * chosen by the bridge; its states are not posted back to the relay.
   */
  async bridge (t: { id: string, assignee: string, command: string, args: string, deadlineS: number }): Promise<TaskRecord> {
    return await this.create({ ...t, requester: this.chat.relayAmid })
  }

  private async create (t: { id?: string, requester: string, assignee: string, command: string, args: string, room?: string, deadlineS: number, origin?: string }): Promise<TaskRecord> {
    const now = this.chat.now()
    const task: TaskRecord = {
      id: t.id ?? uuidv7(),
      ...(t.room === undefined ? {} : { room: t.room }),
      requester: t.requester,
      assignee: t.assignee,
      command: t.command,
      args: t.args,
      state: 'submitted',
      createdAt: now,
      updatedAt: now,
      deadline: now + t.deadlineS * 1000,
      history: [{ state: 'submitted', at: now, by: t.requester }],
    }
    await this.store.putTask(task)
    await this.chat.audit(t.requester, 'task.submitted', task.id, { command: task.command, assignee: task.assignee, ...(task.room === undefined ? {} : { room: '#' + task.room }) })
    await this.chat.postToAgent(task.assignee, TASK_REQUEST_TYPE, { task: taskJson(task), ...(t.origin === undefined ? {} : { reply_to: t.origin }) })
    await this.timeline(task)
    this.told(task)
    return task
  }

  /** Posts the task's state to its room's timeline, or to the requester when it has no room. */
  private async timeline (t: TaskRecord): Promise<void> {
    const who = (await this.chat.handleOf(t.assignee)) ?? t.assignee
    const payload = { task: taskJson(t), text: summary(t, '@' + who) }
    if (t.room !== undefined) {
      const s = await this.chat.roomState(t.room)
      if (s !== undefined && s.room.kind !== 'private') { await this.chat.postToRoom(s, TASK_UPDATE_TYPE, payload); return }
    }
    // a bridge's task (requested by the relay itself) is followed by the bridge, not by a post to the relay
    if (t.requester === this.chat.relayAmid) return
    if (t.requester !== t.assignee || t.state !== 'submitted') await this.chat.postToAgent(t.requester, TASK_UPDATE_TYPE, payload)
  }

  /** Who may see a task: its two parties, members of its room, wardens and masters. */
  async visible (p: Principal, id: string): Promise<TaskRecord> {
    const t = await this.store.getTask(id)
    const unknown = new AgentMeshError(ErrorCode.UnknownTask, `no task ${id.slice(0, 80)} that you can see; \`agentmesh task list\` lists yours`)
    if (t === undefined) throw unknown
    if (p.role === 'master' || p.role === 'warden') return t
    if (p.kind === 'agent' && (t.requester === p.amid || t.assignee === p.amid)) return t
    if (p.kind === 'agent' && t.room !== undefined) {
      const s = await this.chat.roomState(t.room)
      if (s !== undefined && this.chat.isMember(s, p.amid)) return t
    }
    throw unknown
  }

  async list (p: Principal, q: { room?: string, state?: string, before?: string, limit: number }): Promise<TaskRecord[]> {
    if (q.state !== undefined && !STATES.includes(q.state as TaskState)) throw new AgentMeshError(ErrorCode.InvalidArgument, `state must be one of ${STATES.join(', ')}`)
    let room: string | undefined
    if (q.room !== undefined) {
      const s = await this.chat.visibleRoom(p, q.room)
      if (p.role !== 'master' && p.role !== 'warden' && !(p.kind === 'agent' && this.chat.isMember(s, p.amid))) {
        throw new AgentMeshError(ErrorCode.NotMember, `join ${s.room.id} to see its tasks`)
      }
      room = s.room.id
    }
    const all = p.role === 'master' || p.role === 'warden' || room !== undefined
    return await this.store.listTasks({
      ...(room === undefined ? {} : { room }),
      ...(all || p.kind !== 'agent' ? {} : { agent: p.amid }),
      ...(q.state === undefined ? {} : { state: q.state as TaskState }),
      ...(q.before === undefined ? {} : { before: q.before }),
      limit: q.limit,
    })
  }

  /** POST /api/v1/tasks/{id}/status, by the assignee. */
  async report (p: Principal, id: string, body: { state?: unknown, message?: unknown, result?: unknown }): Promise<TaskRecord> {
    const t = await this.visible(p, id)
    if (p.kind !== 'agent' || p.amid !== t.assignee) throw new AgentMeshError(ErrorCode.Forbidden, 'only the assignee reports a task\'s progress; the requester may cancel it')
    const state = body.state as TaskState
    if (!STATES.includes(state)) throw new AgentMeshError(ErrorCode.InvalidArgument, `state must be one of ${STATES.join(', ')}`)
    if (body.message !== undefined && (typeof body.message !== 'string' || body.message.length > MAX_TASK_MESSAGE)) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `message must be a string of at most ${MAX_TASK_MESSAGE} characters`)
    }
    if (body.result !== undefined && Buffer.byteLength(JSON.stringify(body.result)) > MAX_TASK_RESULT_BYTES) {
      throw new AgentMeshError(ErrorCode.BodyTooLarge, `a result takes at most ${MAX_TASK_RESULT_BYTES} bytes as JSON`)
    }
    if (!ASSIGNEE_MOVES[t.state].includes(state)) {
      throw new AgentMeshError(ErrorCode.InvalidTransition, FINAL_STATES.has(t.state)
        ? `task ${t.id} is ${t.state} already: it cannot change any more`
        : `task ${t.id} cannot go from ${t.state} to ${state}`)
    }
    return await this.transition(t, state, p.amid, body.message as string | undefined, body.result)
  }

  /** POST /api/v1/tasks/{id}/cancel: the requester, the room owner or a master. */
  async cancel (p: Principal, id: string, reason?: unknown): Promise<TaskRecord> {
    const t = await this.visible(p, id)
    let allowed = p.role === 'master' || (p.kind === 'agent' && p.amid === t.requester)
    if (!allowed && p.kind === 'agent' && t.room !== undefined) allowed = (await this.chat.roomState(t.room))?.room.owner === p.amid
    if (!allowed) throw new AgentMeshError(ErrorCode.Forbidden, 'only the requester, the room\'s owner or a master cancels a task')
    if (FINAL_STATES.has(t.state)) throw new AgentMeshError(ErrorCode.InvalidTransition, `task ${t.id} is ${t.state} already: it cannot be canceled`)
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_TASK_MESSAGE)) throw new AgentMeshError(ErrorCode.InvalidArgument, `reason must be a string of at most ${MAX_TASK_MESSAGE} characters`)
    const done = await this.transition(t, 'canceled', actorOf(p), (reason as string | undefined) ?? 'canceled')
    await this.chat.postToAgent(t.assignee, TASK_CANCEL_TYPE, { task: taskJson(done) })
    return done
  }

  /** Applies a transition (compare-and-set on the state), audits it and posts it to the timeline. */
  private async transition (t: TaskRecord, state: TaskState, by: string, message?: string, result?: unknown): Promise<TaskRecord> {
    const at = this.chat.now()
    const next: TaskRecord = {
      ...t,
      state,
      updatedAt: at,
      ...(message === undefined ? {} : { message }),
      ...(result === undefined ? {} : { result }),
      history: [...t.history, { state, at, by, ...(message === undefined ? {} : { message }) }],
    }
    if (message === undefined) delete next.message
    if (!await this.store.updateTask(next, t.state)) {
      throw new AgentMeshError(ErrorCode.InvalidTransition, `task ${t.id} changed meanwhile; read it again (\`agentmesh task show ${t.id}\`)`)
    }
    await this.chat.audit(by, 'task.' + state, t.id, { command: t.command, from: t.state })
    await this.timeline(next)
    this.told(next)
    return next
  }

  /** Fails the tasks whose deadline passed. */
  async sweep (): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    try {
      for (const t of await this.store.overdueTasks(this.chat.now(), 100)) {
        try {
          const done = await this.transition(t, 'failed', 'relay', 'deadline passed')
          await this.chat.postToAgent(t.assignee, TASK_CANCEL_TYPE, { task: taskJson(done) })
        } catch (err) {
          if (!AgentMeshError.is(err, ErrorCode.InvalidTransition)) throw err
        }
      }
    } catch (err) {
      this.log.error({ err }, 'task deadline sweep failed')
    } finally {
      this.sweeping = false
    }
  }
}

/** The profile declares the command as a skill id (not just a tag). */
function p_hasCommand (profiles: ReadonlyArray<{ amid: string, capabilities: Array<{ id: string }> }>, amid: string, command: string): boolean {
  const p = profiles.find(x => x.amid === amid)
  return p !== undefined && p.capabilities.some(c => c.id.toLowerCase() === command)
}
