/**
 * The shared suite every `Store` implementation must pass (STYLE.md "Tests": each adapter runs it).
 *
 * It runs one suite per slice of the Store (./store/*.ts), each of which can also be run on its
 * own against an adapter that implements only that slice, then the cases that need every slice at
 * once. Each case gets a fresh store from `setup` (with the `StoreInit` it needs) and hands it to
 * `teardown` at the end, pass or fail. When `reopen` is given, the durability cases close the
 * store and open the same data again; `reopen` must reuse the init the store was created with.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AppendItem, Store } from '@agentmesh/store'
import { ALICE, BOB, CAROL, audit, room, roomItem, seqs, task, T0, verifyAll, withStoreOf, type SuiteInit } from './store/fixtures.ts'
import { auditSuite } from './store/audit.ts'
import { certificatesSuite } from './store/certificates.ts'
import { handlesSuite } from './store/handles.ts'
import { messagesSuite } from './store/messages.ts'
import { registrySuite } from './store/registry.ts'
import { reputationSuite } from './store/reputation.ts'
import { rolesSuite } from './store/roles.ts'
import { roomsSuite } from './store/rooms.ts'
import { settingsSuite } from './store/settings.ts'
import { tasksSuite } from './store/tasks.ts'
import { filesSuite } from './store/files.ts'
import { updatesSuite } from './store/updates.ts'
import { healthSuite } from './store/health.ts'
import { ownersSuite } from './store/owners.ts'
import { catastrophesSuite } from './store/catastrophes.ts'
import { webhooksSuite } from './store/webhooks.ts'

export type StoreSuiteInit = SuiteInit<Store>

export default function storeSuite (init: StoreSuiteInit): void {
  registrySuite(init)
  messagesSuite(init)
  certificatesSuite(init)
  reputationSuite(init)
  handlesSuite(init)
  rolesSuite(init)
  roomsSuite(init)
  tasksSuite(init)
  auditSuite(init)
  settingsSuite(init)
  filesSuite(init)
  updatesSuite(init)
  healthSuite(init)
  ownersSuite(init)
  catastrophesSuite(init)
  webhooksSuite(init)

  const withStore = withStoreOf(init)
  const { reopen } = init
  if (reopen !== undefined) {
    describe(`store compliance: ${init.name}: every slice`, () => {
      describe('durability', () => {
      it('store - handles, roles, rooms, members, invites, history, read markers, tasks, audit and settings survive reopen', async () => {
        await withStore({ historyMaxPerRoom: 3 }, async (h) => {
          const secret = await h.store.relaySecret()
          await h.store.upsertAgent({ amid: BOB, seenAt: T0 })
          await h.store.upsertAgent({ amid: ALICE, seenAt: T0 })
          await h.store.setHandle(BOB, 'Bob')
          await h.store.setHandle(ALICE, 'al')
          await h.store.setHandle(ALICE, 'Alice')
          await h.store.setRole(CAROL, 'warden')
          const ops = room('ops', 'private', { topic: 'deploys' })
          await h.store.createRoom(ops)
          await h.store.createRoom(room('global', 'global'))
          await h.store.addMember({ room: 'ops', amid: BOB, role: 'member', joinedAt: T0 + 1 })
          await h.store.putInvite({ room: 'ops', amid: CAROL, by: ALICE, at: T0 + 2 })
          const ri = (n: number): AppendItem => roomItem(ALICE, `id-${n}`, 'ops', [BOB], { receivedAt: T0 + n })
          await h.store.commit([ri(1), ri(2), ri(3), ri(4)], [], [audit('message.send')])
          await h.store.deleteHistoryEntry('ops', 3, ALICE, T0 + 9)
          await h.store.setReadUpTo('ops', BOB, 4)
          const t = task('task-01', { result: { x: 1 } })
          await h.store.putTask(t)
          await h.store.appendAudit([audit('room.create'), audit('handle.set', BOB)])
          await h.store.putSettings({ presence_idle_ms: 1000, gone: 1 })
          await h.store.putSettings({ gone: null })
          const history = await h.store.readHistory('ops', { limit: 10 })
          const auditBefore = await h.store.readAudit({ limit: 100 })

          h.store = await reopen(h.store)

          assert.equal(await h.store.relaySecret(), secret)
          assert.deepEqual(await h.store.listAgents({ limit: 10 }), [ALICE, BOB])
          assert.equal(await h.store.handleOf(ALICE), 'Alice')
          assert.equal(await h.store.resolveHandle('bob'), BOB)
          assert.equal(await h.store.resolveHandle('al'), undefined)
          assert.deepEqual(await h.store.setHandle(CAROL, 'ALICE'), { status: 'taken', by: ALICE })
          assert.deepEqual(await h.store.listRoles(), [{ amid: CAROL, role: 'warden' }])
          assert.deepEqual(await h.store.getRoom('ops'), ops)
          assert.equal(await h.store.createRoom(room('ops', 'public')), false)
          assert.deepEqual((await h.store.listMembers('ops')).map(m => [m.amid, m.role]), [[ALICE, 'owner'], [BOB, 'member']])
          assert.deepEqual((await h.store.listRooms({ member: BOB, limit: 10 })).map(r => r.id), ['ops'])
          assert.deepEqual(await h.store.getInvite('ops', CAROL), { room: 'ops', amid: CAROL, by: ALICE, at: T0 + 2 })
          assert.deepEqual(history.map(e => e.seq), [2, 3, 4])
          assert.deepEqual(await h.store.readHistory('ops', { limit: 10 }), history)
          assert.deepEqual((await h.store.getHistoryEntry('ops', 3))?.deleted, { by: ALICE, at: T0 + 9 })
          assert.deepEqual(await h.store.readMarkers('ops'), [{ amid: BOB, upTo: 4 }])
          assert.equal(await h.store.setReadUpTo('ops', BOB, 2), 4)
          assert.deepEqual(await h.store.getTask('task-01'), t)
          assert.equal(await h.store.updateTask({ ...t, state: 'working' }, 'submitted'), true)
          assert.deepEqual(await h.store.getSettings(), { presence_idle_ms: 1000 })
          assert.deepEqual(await h.store.readAudit({ limit: 100 }), auditBefore)

          // room seqs, the trim and dedupe go on; the audit chain continues (seq and prev)
          assert.equal(await h.store.lastRoomSeq('ops'), 4)
          assert.deepEqual(await h.store.commit([ri(4), ri(5)], [], [audit('message.send', BOB)]), [
            { status: 'duplicate', seq: 4 }, { status: 'stored', seq: 5, deliveries: [{ recipient: BOB, seq: 5 }] },
          ])
          assert.deepEqual(seqs(await h.store.readHistory('ops', { limit: 10 })), [3, 4, 5])
          const [next] = await h.store.appendAudit([audit('room.leave', BOB)])
          assert.equal(next?.seq, 5)
          const { rows, ok } = await verifyAll(h.store)
          assert.ok(ok, 'the chain verifies across the reopen')
          assert.deepEqual(rows.map(r => r.seq), [1, 2, 3, 4, 5])
          assert.equal(rows[3]!.prev, auditBefore[2]!.hash)
          assert.deepEqual(await h.store.lastAudit(), next)
        })
      })
      })
    })
  }
}
