/** The tasks slice of the in-memory store. */
import type { TaskRecord, TaskState, TaskStore } from '../types.ts'
import { asJson, byKey } from './util.ts'

/** The states a task can still leave (overdueTasks fails those past their deadline). */
const OPEN_TASK_STATES: readonly TaskState[] = ['submitted', 'working', 'input-required', 'auth-required']

/** The order of `Store.listTasks`: newest first by createdAt, then id descending. */
function compareTasksNewestFirst (a: { createdAt: number, id: string }, b: { createdAt: number, id: string }): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/** `live` throws once the store is closed; every call checks it first. */
export function memoryTasks (live: () => void): TaskStore {
  const tasks = new Map<string, TaskRecord>()

  return {
    async putTask (t) {
      live()
      if (tasks.has(t.id)) return false
      tasks.set(t.id, asJson(t))
      return true
    },
    async getTask (id) { live(); const t = tasks.get(id); return t === undefined ? undefined : structuredClone(t) },
    async updateTask (t, expect) {
      live()
      const old = tasks.get(t.id)
      if (old === undefined || old.state !== expect) return false
      tasks.set(t.id, asJson(t))
      return true
    },
    async listTasks (q) {
      live()
      let cursor: ((t: TaskRecord) => boolean) | undefined
      if (q.before !== undefined) {
        const before = q.before
        const ref = tasks.get(before)
        // an unknown id still pages: ids are time-ordered
        cursor = ref === undefined ? t => t.id < before : t => compareTasksNewestFirst(t, ref) > 0
      }
      const out: TaskRecord[] = []
      for (const t of tasks.values()) {
        if (q.room !== undefined && t.room !== q.room) continue
        if (q.agent !== undefined && t.requester !== q.agent && t.assignee !== q.agent) continue
        if (q.state !== undefined && t.state !== q.state) continue
        if (cursor !== undefined && !cursor(t)) continue
        out.push(t)
      }
      return out.sort(compareTasksNewestFirst).slice(0, Math.max(0, q.limit)).map(t => structuredClone(t))
    },
    async overdueTasks (now, limit) {
      live()
      const out: TaskRecord[] = []
      for (const t of tasks.values()) if (OPEN_TASK_STATES.includes(t.state) && t.deadline <= now) out.push(t)
      return out.sort((a, b) => a.deadline !== b.deadline ? a.deadline - b.deadline : byKey(a.id, b.id)).slice(0, Math.max(0, limit)).map(t => structuredClone(t))
    },
  }
}
