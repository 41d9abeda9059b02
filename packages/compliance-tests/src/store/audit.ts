/**
 * The audit slice (docs/protocol.md §17.8): one hash chain, appended on its own or with a commit.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AuditVerifier } from '@agentmesh/store'
import type { AuditInput, AuditRecord, AuditStore, MessageStore, RoomStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, DAVE, roomItem, dm, audit, verifyAll, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice, and commit (which appends audit rows in the same step as its messages), with inbox and the room history to check a failed commit left nothing. */
export type AuditSuiteStore = AuditStore & Pick<MessageStore, 'commit' | 'inbox'> & Pick<RoomStore, 'lastRoomSeq' | 'readHistory'>

export function auditSuite (init: SuiteInit<AuditSuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: audit`, () => {
    describe('audit', () => {
      it('store - audit rows are chained from seq 1 without gaps through appendAudit and commit; the verifier accepts them', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.lastAudit(), undefined)
          assert.deepEqual(await store.readAudit({ limit: 10 }), [])
          assert.deepEqual(await store.appendAudit([]), [])
          const first = await store.appendAudit([audit('room.create'), audit('handle.set', BOB, { target: undefined, detail: { handle: 'bob' } })])
          assert.deepEqual(first.map(r => [r.seq, r.action]), [[1, 'room.create'], [2, 'handle.set']])
          assert.equal(first[0]!.prev, '')
          assert.equal(first[1]!.prev, first[0]!.hash)
          assert.match(first[0]!.hash, /^[0-9a-f]{64}$/)
          assert.equal('target' in first[1]!, false, 'an absent target stays absent')
          // rows in a commit: after the appends and acks, in the same step
          const r = await store.commit([roomItem(ALICE, 'id-000001', 'ops', [BOB]), dm(ALICE, 'id-000002', BOB)], [{ recipient: BOB, seq: 1 }],
            [audit('message.send', ALICE, { detail: { id: 'id-000001', type: 'chat', bytes: 99 } }), audit('message.send', ALICE, { target: BOB, detail: { id: 'id-000002' } })])
          assert.equal(r.length, 2)
          // rows with no appends
          assert.deepEqual(await store.commit([], [], [audit('room.join', CAROL)]), [])
          const more = await store.appendAudit([audit('role.set', 'operator', { target: DAVE, detail: { role: 'warden', from: 'worker', nested: { a: [1, 'x', null], 'é': true } } })])
          assert.equal(more[0]!.seq, 6)
          const { rows, ok } = await verifyAll(store)
          assert.ok(ok, 'the verifier accepts the chain')
          assert.deepEqual(rows.map(x => x.seq), [1, 2, 3, 4, 5, 6])
          for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.prev, rows[i - 1]!.hash)
          assert.deepEqual(rows.slice(0, 2), first, 'read back exactly as appended')
          assert.deepEqual(rows[5], more[0])
          assert.deepEqual(rows[2], { seq: 3, at: T0, actor: ALICE, action: 'message.send', target: '#ops', detail: { id: 'id-000001', type: 'chat', bytes: 99 }, prev: rows[1]!.hash, hash: rows[2]!.hash })
          assert.deepEqual(await store.lastAudit(), more[0])
        })
      })

      it('store - a commit writes one message.batch row for its batch-audited sends, stored ones only, in order, before the items\' own rows; the verifier accepts it and finds an edited send', async () => {
        await withStore(undefined, async ({ store }) => {
          const b = (type: string, bytes: number, at = T0) => ({ actor: 'am-relay', type, bytes, at })
          await store.commit([{ ...dm(ALICE, 'id-000001', BOB), batchAudit: b('chat', 10) }], [])
          const r = await store.commit([
            { ...dm(ALICE, 'id-000001', BOB), batchAudit: b('chat', 10) }, // a duplicate: not listed again
            { ...dm(BOB, 'id-000002', ALICE), batchAudit: b('e2ee', 20, T0 + 5) },
            { ...dm(CAROL, 'id-000003', BOB), audit: audit('message.send', CAROL, { target: BOB, detail: { id: 'id-000003' } }) },
            { ...roomItem(DAVE, 'id-000004', 'ops', [BOB]), batchAudit: b('chat', 30, T0 + 2) },
          ], [], [audit('room.join', CAROL)])
          assert.deepEqual(r.map(x => x.status), ['duplicate', 'stored', 'stored', 'stored'])
          const { rows, ok } = await verifyAll(store)
          assert.ok(ok)
          assert.deepEqual(rows.map(x => [x.seq, x.actor, x.action]), [[1, 'am-relay', 'message.batch'], [2, 'am-relay', 'message.batch'], [3, CAROL, 'message.send'], [4, CAROL, 'room.join']])
          assert.deepEqual(rows[0]!.detail, { sends: [[ALICE, BOB, 'id-000001', 'chat', 10]] })
          assert.deepEqual([rows[1]!.at, rows[1]!.detail], [T0 + 5, { sends: [[BOB, ALICE, 'id-000002', 'e2ee', 20], [DAVE, '#ops', 'id-000004', 'chat', 30]] }])
          // a commit with nothing batch-audited stored writes no batch row
          await store.commit([{ ...dm(ALICE, 'id-000001', BOB), batchAudit: b('chat', 10) }], [])
          assert.equal((await store.lastAudit())!.seq, 4)
          // an edited send (or a key added to the row) no longer matches its hash
          const v = new AuditVerifier()
          const edited = { ...rows[1]!, detail: { sends: [[BOB, ALICE, 'id-000002', 'chat', 20], [DAVE, '#ops', 'id-000004', 'chat', 30]] } }
          const added = { ...rows[1]!, detail: { ...rows[1]!.detail, note: 'x' } }
          for (const row of [edited, added]) {
            const check = new AuditVerifier()
            check.add([rows[0]!, row])
            assert.equal(check.result().ok, false)
          }
          v.add(rows)
          assert.equal(v.result().ok, true)
        })
      })

      it('store - pruneAudit drops the oldest rows by time and by count, never the newest, notes it in the chain, and the log still verifies', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.pruneAudit(T0 + 100, 10, { at: T0 + 100, actor: 'relay' }), 0, 'an empty log')
          await store.appendAudit([1, 2, 3, 4, 5].map(i => audit(`a.${i}`, ALICE, { at: T0 + i * 10 })))
          assert.equal(await store.pruneAudit(T0, 100, { at: T0 + 60, actor: 'relay' }), 0, 'nothing that old')
          assert.equal((await store.readAudit({ limit: 10 })).length, 5, 'no note when nothing went')
          // rows at or before T0 + 20 go
          assert.equal(await store.pruneAudit(T0 + 20, 100, { at: T0 + 60, actor: 'relay' }), 2)
          let { rows, ok } = await verifyAll(store)
          assert.deepEqual(rows.map(r => [r.seq, r.action]), [[3, 'a.3'], [4, 'a.4'], [5, 'a.5'], [6, 'audit.pruned']])
          assert.deepEqual([rows[3]!.actor, rows[3]!.detail], ['relay', { rows: 2, up_to_seq: 2 }])
          assert.ok(ok, 'a log pruned by the store verifies')
          const v = new AuditVerifier()
          v.add(rows.slice(1))
          assert.deepEqual(v.result(), { ok: false, rows: 3, seq: 3, reason: 'rows 3-3 are missing at the start and the newest audit.pruned row says rows up to 2 were dropped', problem: 'start' }, 'a row removed at the start by anyone else is found')
          assert.deepEqual((await store.readAudit({ after: 4, limit: 10 })).map(r => r.seq), [5, 6])
          assert.deepEqual((await store.readAudit({ after: 0, limit: 1, action: 'a.4' })).map(r => r.seq), [4])
          // by count: 3 rows stay, the note among them
          assert.equal(await store.pruneAudit(T0, 3, { at: T0 + 70, actor: 'relay' }), 2)
          ;({ rows, ok } = await verifyAll(store))
          assert.deepEqual(rows.map(r => r.seq), [5, 6, 7])
          assert.deepEqual(rows[2]!.detail, { rows: 2, up_to_seq: 4 })
          assert.ok(ok)
          // everything is old: all but the newest row go
          assert.equal(await store.pruneAudit(T0 + 1000, 100, { at: T0 + 80, actor: 'relay' }), 2)
          ;({ rows, ok } = await verifyAll(store))
          assert.deepEqual(rows.map(r => [r.seq, r.action]), [[7, 'audit.pruned'], [8, 'audit.pruned']])
          assert.ok(ok)
          const next = await store.appendAudit([audit('room.join')])
          assert.deepEqual([next[0]!.seq, next[0]!.prev], [9, rows[1]!.hash])
        })
      })

      it('store - thousands of audit rows read by actor and action, page after page, in order, before and after a prune', async () => {
        await withStore(undefined, async ({ store }) => {
          const actors = [ALICE, BOB, CAROL]
          for (let b = 0; b < 6; b++) {
            await store.appendAudit(Array.from({ length: 1000 }, (_, k) => {
              const i = b * 1000 + k
              return audit(i % 5 === 0 ? 'room.join' : 'message.send', actors[i % 3], { at: T0 + i, detail: { i } })
            }))
          }
          await store.commit([dm(ALICE, 'id-000001', BOB)], [], [audit('message.send', BOB, { at: T0 + 6000, detail: { i: 6000 } })])
          const all = async (q: { actor?: string, action?: string }, page: number): Promise<number[]> => {
            const out: number[] = []
            let after = 0
            for (;;) {
              const got = await store.readAudit({ ...q, after, limit: page })
              out.push(...got.map(r => r.detail.i as number))
              if (got.length < page) return out
              after = got[got.length - 1]!.seq
            }
          }
          const expect = (pred: (i: number) => boolean): number[] => Array.from({ length: 6001 }, (_, i) => i).filter(pred)
          assert.deepEqual(await all({ actor: BOB }, 700), expect(i => i === 6000 || (i < 6000 && i % 3 === 1)))
          assert.deepEqual(await all({ actor: CAROL, action: 'room.join' }, 50), expect(i => i < 6000 && i % 3 === 2 && i % 5 === 0))
          assert.deepEqual(await all({ action: 'room.join' }, 999), expect(i => i < 6000 && i % 5 === 0))
          assert.equal(await store.pruneAudit(T0 + 2999, 100_000, { at: T0 + 7000, actor: 'relay' }), 3000)
          assert.deepEqual(await all({ actor: ALICE }, 333), expect(i => i >= 3000 && i < 6000 && i % 3 === 0))
          assert.deepEqual((await store.readAudit({ actor: 'relay', limit: 10 })).map(r => r.action), ['audit.pruned'])
          assert.ok((await verifyAll(store, 1000)).ok)
        })
      })

      it('store - pruneAudit keeps the chain going in a commit after it', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.appendAudit([audit('a.1', ALICE, { at: T0 }), audit('a.2', ALICE, { at: T0 + 50 })])
          assert.equal(await store.pruneAudit(T0, 100, { at: T0 + 60, actor: 'relay' }), 1)
          await store.commit([dm(ALICE, 'id-000001', BOB)], [], [audit('message.send')])
          const { rows, ok } = await verifyAll(store)
          assert.deepEqual(rows.map(r => r.seq), [2, 3, 4])
          assert.ok(ok)
        })
      })

      it('store - an item\'s own audit row is written only when the item is stored (a duplicate leaves none), before the commit\'s rows', async () => {
        await withStore(undefined, async ({ store }) => {
          const send = (id: string): AuditInput => audit('message.send', ALICE, { target: '#ops', detail: { id } })
          const first = await store.commit([{ ...roomItem(ALICE, 'id-000001', 'ops', [BOB]), audit: send('id-000001') }, { ...dm(ALICE, 'id-000002', BOB), audit: send('id-000002') }], [], [audit('room.join', CAROL)])
          assert.deepEqual(first.map(r => r.status), ['stored', 'stored'])
          const again = await store.commit([{ ...roomItem(ALICE, 'id-000001', 'ops', [BOB]), audit: send('id-000001') }, { ...dm(ALICE, 'id-000003', BOB), audit: send('id-000003') }], [])
          assert.deepEqual(again.map(r => r.status), ['duplicate', 'stored'])
          const rows = await store.readAudit({ limit: 10 })
          assert.deepEqual(rows.map(r => [r.seq, r.action, r.detail.id ?? null]), [[1, 'message.send', 'id-000001'], [2, 'message.send', 'id-000002'], [3, 'room.join', 'id-room.join'], [4, 'message.send', 'id-000003']])
          assert.ok((await verifyAll(store)).ok)
        })
      })

      it('store - readAudit pages by seq and filters by actor and action', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.appendAudit([audit('message.send', ALICE), audit('room.join', BOB), audit('message.send', BOB), audit('message.send', ALICE), audit('room.join', ALICE)])
          const seqOf = (rs: AuditRecord[]): number[] => rs.map(r => r.seq)
          assert.deepEqual(seqOf(await store.readAudit({ limit: 2 })), [1, 2])
          assert.deepEqual(seqOf(await store.readAudit({ after: 2, limit: 2 })), [3, 4])
          assert.deepEqual(seqOf(await store.readAudit({ after: 4, limit: 2 })), [5])
          assert.deepEqual(seqOf(await store.readAudit({ after: 5, limit: 2 })), [])
          assert.deepEqual(seqOf(await store.readAudit({ actor: ALICE, limit: 10 })), [1, 4, 5])
          assert.deepEqual(seqOf(await store.readAudit({ actor: ALICE, after: 1, limit: 1 })), [4])
          assert.deepEqual(seqOf(await store.readAudit({ action: 'message.send', limit: 10 })), [1, 3, 4])
          assert.deepEqual(seqOf(await store.readAudit({ action: 'message.send', actor: BOB, limit: 10 })), [3])
          assert.deepEqual(seqOf(await store.readAudit({ action: 'nothing', limit: 10 })), [])
          // before without after: the newest rows below it, in seq order
          assert.deepEqual(seqOf(await store.readAudit({ before: Number.MAX_SAFE_INTEGER, limit: 2 })), [4, 5])
          assert.deepEqual(seqOf(await store.readAudit({ before: 4, limit: 2 })), [2, 3])
          assert.deepEqual(seqOf(await store.readAudit({ before: 1, limit: 2 })), [])
          assert.deepEqual(seqOf(await store.readAudit({ actor: ALICE, before: 5, limit: 10 })), [1, 4])
          assert.deepEqual(seqOf(await store.readAudit({ after: 1, before: 3, limit: 2 })), [2, 3], 'after wins')
          assert.equal((await store.lastAudit())?.seq, 5)
        })
      })

      it('store - a commit whose audit row cannot be stored changes nothing', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.appendAudit([audit('room.create')])
          const circular: Record<string, unknown> = {}
          circular.self = circular
          await assert.rejects(store.commit([dm(ALICE, 'id-000001', BOB), roomItem(ALICE, 'id-000002', 'ops', [CAROL])], [], [audit('message.send'), audit('message.send', ALICE, { detail: circular })]))
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 0, pending: 0 })
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 0, pending: 0 })
          assert.equal(await store.lastRoomSeq('ops'), 0)
          assert.deepEqual(await store.readHistory('ops', { limit: 10 }), [])
          assert.equal((await store.lastAudit())?.seq, 1)
          // nothing was remembered either: the same messages are stored now
          assert.deepEqual(await store.commit([dm(ALICE, 'id-000001', BOB), roomItem(ALICE, 'id-000002', 'ops', [CAROL])], [], [audit('message.send')]), [
            { status: 'stored', seq: 1 }, { status: 'stored', seq: 1, deliveries: [{ recipient: CAROL, seq: 1 }] },
          ])
          const { rows, ok } = await verifyAll(store)
          assert.ok(ok)
          assert.deepEqual(rows.map(r => r.seq), [1, 2])
        })
      })

      it('store - concurrent appends and commits with audit rows make one chain without gaps', async () => {
        await withStore(undefined, async ({ store }) => {
          await Promise.all(Array.from({ length: 10 }, async (_, i) => i % 2 === 0
            ? await store.appendAudit([audit(`a.${i}`), audit(`b.${i}`)])
            : await store.commit([dm(ALICE, `id-${i}`, BOB)], [], [audit(`c.${i}`)])))
          const { rows, ok } = await verifyAll(store, 4)
          assert.ok(ok)
          assert.deepEqual(rows.map(r => r.seq), Array.from({ length: 15 }, (_, i) => i + 1))
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
      it('store - a pruned audit log goes on from its last seq after reopening', async () => {
        await withStore(undefined, async (h) => {
          await h.store.appendAudit([audit('a.1', ALICE, { at: T0 }), audit('a.2', ALICE, { at: T0 + 50 })])
          assert.equal(await h.store.pruneAudit(T0 + 1000, 100, { at: T0 + 60, actor: 'relay' }), 1)
          h.store = await reopen(h.store)
          await h.store.appendAudit([audit('a.4')])
          const { rows, ok } = await verifyAll(h.store)
          assert.deepEqual(rows.map(r => [r.seq, r.action]), [[2, 'a.2'], [3, 'audit.pruned'], [4, 'a.4']])
          assert.ok(ok)
        })
      })

      it('store - the first audit rows after reopening an empty log start at seq 1', async () => {
        await withStore(undefined, async (h) => {
          h.store = await reopen(h.store)
          assert.deepEqual(await h.store.commit([], [], [audit('settings.set', 'operator')]), [])
          const rows = await h.store.readAudit({ limit: 10 })
          assert.deepEqual(rows.map(x => [x.seq, x.prev]), [[1, '']])
        })
      })
      })
    }
  })
}
