/**
 * The tasks slice (docs/protocol.md §17.7).
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { TaskRecord, TaskState, TaskStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, DAVE, task, ids, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type TasksSuiteStore = TaskStore

export function tasksSuite (init: SuiteInit<TasksSuiteStore>): void {
  const withStore = withStoreOf(init)

  describe(`store compliance: ${init.name}: tasks`, () => {
    describe('tasks', () => {
      it('store - a task round-trips; putTask of an existing id answers false and keeps the first', async () => {
        await withStore(undefined, async ({ store }) => {
          const t = task('task-01', { result: { ok: true, n: [1, 2], text: 'é 日本' }, message: 'done' })
          assert.equal(await store.putTask(t), true)
          assert.deepEqual(await store.getTask('task-01'), t)
          assert.equal(await store.putTask(task('task-01', { command: 'other' })), false)
          assert.deepEqual(await store.getTask('task-01'), t)
          const direct = task('task-02')
          delete direct.room
          await store.putTask(direct)
          const got = await store.getTask('task-02')
          assert.deepEqual(got, direct)
          assert.equal(got !== undefined && ('room' in got || 'result' in got || 'message' in got), false, 'optional fields left out stay out')
          assert.equal(await store.getTask('task-99'), undefined)
        })
      })

      it('store - updateTask replaces a task only while its stored state is the expected one', async () => {
        await withStore(undefined, async ({ store }) => {
          const t = task('task-01')
          await store.putTask(t)
          const working: TaskRecord = { ...t, state: 'working', updatedAt: T0 + 5, history: [...t.history, { state: 'working', at: T0 + 5, by: BOB }] }
          assert.equal(await store.updateTask(working, 'submitted'), true)
          assert.deepEqual(await store.getTask('task-01'), working)
          // a second writer that read the task before the first one wrote loses
          const stale: TaskRecord = { ...t, state: 'canceled', updatedAt: T0 + 6, history: [...t.history, { state: 'canceled', at: T0 + 6, by: ALICE }] }
          assert.equal(await store.updateTask(stale, 'submitted'), false)
          assert.deepEqual(await store.getTask('task-01'), working, 'unchanged')
          const done: TaskRecord = { ...working, state: 'completed', updatedAt: T0 + 9, result: { url: 'https://x' }, history: [...working.history, { state: 'completed', at: T0 + 9, by: BOB, message: 'ok' }] }
          assert.equal(await store.updateTask(done, 'working'), true)
          assert.deepEqual(await store.getTask('task-01'), done)
          assert.equal(await store.updateTask(task('task-99', { state: 'working' }), 'submitted'), false, 'an unknown task')
          assert.equal(await store.getTask('task-99'), undefined)
        })
      })

      it('store - concurrent updates with the same expected state: exactly one wins', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putTask(task('task-01'))
          const states: TaskState[] = ['working', 'completed', 'failed', 'rejected', 'input-required']
          const wins = await Promise.all(states.map(async s => await store.updateTask(task('task-01', { state: s }), 'submitted')))
          assert.equal(wins.filter(w => w).length, 1)
          assert.equal((await store.getTask('task-01'))?.state, states[wins.indexOf(true)])
        })
      })

      it('store - listTasks: newest first (createdAt, then id), filtered by room, agent and state, paged by a task id', async () => {
        await withStore(undefined, async ({ store }) => {
          const all = [
            task('t-01', { createdAt: T0 + 1, room: 'ops', requester: ALICE, assignee: BOB }),
            task('t-02', { createdAt: T0 + 2, room: 'lab', requester: BOB, assignee: CAROL, state: 'working' }),
            task('t-03', { createdAt: T0 + 3, room: 'ops', requester: CAROL, assignee: ALICE, state: 'completed' }),
            task('t-05', { createdAt: T0 + 3, room: 'ops', requester: DAVE, assignee: CAROL }),
            task('t-04', { createdAt: T0 + 3, requester: ALICE, assignee: ALICE, state: 'working' }),
            task('t-06', { createdAt: T0 + 6, room: 'lab', requester: CAROL, assignee: DAVE }),
          ]
          delete all[4]!.room
          for (const t of [all[3]!, all[0]!, all[5]!, all[2]!, all[4]!, all[1]!]) await store.putTask(t)
          assert.deepEqual(ids(await store.listTasks({ limit: 100 })), ['t-06', 't-05', 't-04', 't-03', 't-02', 't-01'])
          assert.deepEqual(await store.listTasks({ limit: 1 }), [all[5]], 'whole records')
          assert.deepEqual(ids(await store.listTasks({ room: 'ops', limit: 100 })), ['t-05', 't-03', 't-01'])
          assert.deepEqual(ids(await store.listTasks({ agent: ALICE, limit: 100 })), ['t-04', 't-03', 't-01'], 'requested or assigned, each once')
          assert.deepEqual(ids(await store.listTasks({ agent: CAROL, limit: 100 })), ['t-06', 't-05', 't-03', 't-02'])
          assert.deepEqual(ids(await store.listTasks({ agent: CAROL, limit: 2 })), ['t-06', 't-05'])
          assert.deepEqual(ids(await store.listTasks({ state: 'working', limit: 100 })), ['t-04', 't-02'])
          assert.deepEqual(ids(await store.listTasks({ state: 'submitted', room: 'ops', limit: 100 })), ['t-05', 't-01'])
          assert.deepEqual(ids(await store.listTasks({ agent: CAROL, room: 'lab', state: 'working', limit: 100 })), ['t-02'])
          assert.deepEqual(ids(await store.listTasks({ agent: 'am-nobody', limit: 100 })), [])
          assert.deepEqual(ids(await store.listTasks({ state: 'canceled', limit: 100 })), [])
          // paging: tasks created before the given one, ties by id
          assert.deepEqual(ids(await store.listTasks({ before: 't-05', limit: 2 })), ['t-04', 't-03'])
          assert.deepEqual(ids(await store.listTasks({ before: 't-03', limit: 2 })), ['t-02', 't-01'])
          assert.deepEqual(ids(await store.listTasks({ before: 't-01', limit: 2 })), [])
          assert.deepEqual(ids(await store.listTasks({ before: 't-06', agent: CAROL, limit: 2 })), ['t-05', 't-03'])
          assert.deepEqual(ids(await store.listTasks({ before: 't-05', room: 'ops', limit: 10 })), ['t-03', 't-01'])
          // walking every page of a filter visits each task once
          const walked: string[] = []
          let before: string | undefined
          for (;;) {
            const page = await store.listTasks({ agent: CAROL, limit: 1, ...(before === undefined ? {} : { before }) })
            if (page.length === 0) break
            walked.push(...ids(page))
            before = page[page.length - 1]!.id
          }
          assert.deepEqual(walked, ['t-06', 't-05', 't-03', 't-02'])
          // a state change moves a task between filters
          await store.updateTask({ ...all[0]!, state: 'working' }, 'submitted')
          assert.deepEqual(ids(await store.listTasks({ state: 'working', limit: 100 })), ['t-04', 't-02', 't-01'])
        })
      })

      it('store - overdueTasks: tasks not in an end state whose deadline is at or before now, oldest deadline first', async () => {
        await withStore(undefined, async ({ store }) => {
          const states: TaskState[] = ['submitted', 'working', 'input-required', 'auth-required', 'completed', 'failed', 'canceled', 'rejected']
          for (const [i, s] of states.entries()) await store.putTask(task(`t-${s}`, { state: s, deadline: T0 + 100 - i }))
          await store.putTask(task('t-later', { deadline: T0 + 200 }))
          assert.deepEqual(ids(await store.overdueTasks(T0 + 100, 10)), ['t-auth-required', 't-input-required', 't-working', 't-submitted'])
          assert.deepEqual(ids(await store.overdueTasks(T0 + 99, 10)), ['t-auth-required', 't-input-required', 't-working'], 'the deadline itself counts')
          assert.deepEqual(ids(await store.overdueTasks(T0 + 1000, 2)), ['t-auth-required', 't-input-required'])
          assert.deepEqual(ids(await store.overdueTasks(T0, 10)), [])
          assert.deepEqual(await store.overdueTasks(T0 + 97, 10), [task('t-auth-required', { state: 'auth-required', deadline: T0 + 97 })])
          // once failed it is no longer overdue
          await store.updateTask(task('t-working', { state: 'failed', deadline: T0 + 99, message: 'deadline passed' }), 'working')
          assert.deepEqual(ids(await store.overdueTasks(T0 + 1000, 10)), ['t-auth-required', 't-input-required', 't-submitted', 't-later'])
        })
      })
    })
  })
}
