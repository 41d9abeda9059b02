/**
 * The messages slice: commit, seqs, dedupe, reads, cursor acks, inbox limits, retention and stats.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { MessageStore, RegistryStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, envText, item, stored, duplicate, full, summary, bigText, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice, and upsertAgent: stats counts the registered agents. */
export type MessagesSuiteStore = MessageStore & Pick<RegistryStore, 'upsertAgent'>

export function messagesSuite (init: SuiteInit<MessagesSuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: messages`, () => {
    describe('commit and sequence numbers', () => {
      it('store - seqs start at 1 and grow by one per inbox, in batch order', async () => {
        await withStore(undefined, async ({ store }) => {
          const r1 = await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(CAROL, 'id-000003', BOB)], [])
          assert.deepEqual(r1, [stored(1), stored(2), stored(3)])
          const r2 = await store.commit([item(ALICE, 'id-000004', BOB), item(CAROL, 'id-000005', BOB)], [])
          assert.deepEqual(r2, [stored(4), stored(5)])
          assert.deepEqual(summary(await store.read(BOB, 0, 100)), [
            [1, ALICE, 'id-000001'], [2, ALICE, 'id-000002'], [3, CAROL, 'id-000003'],
            [4, ALICE, 'id-000004'], [5, CAROL, 'id-000005'],
          ])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 5, pending: 5 })
        })
      })

      it('store - each recipient has its own seqs', async () => {
        await withStore(undefined, async ({ store }) => {
          const r = await store.commit([
            item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', CAROL),
            item(ALICE, 'id-000003', BOB), item(BOB, 'id-000004', CAROL), item(CAROL, 'id-000005', ALICE),
          ], [])
          assert.deepEqual(r, [stored(1), stored(1), stored(2), stored(2), stored(1)])
          assert.deepEqual(summary(await store.read(BOB, 0, 100)), [[1, ALICE, 'id-000001'], [2, ALICE, 'id-000003']])
          assert.deepEqual(summary(await store.read(CAROL, 0, 100)), [[1, ALICE, 'id-000002'], [2, BOB, 'id-000004']])
          assert.deepEqual(summary(await store.read(ALICE, 0, 100)), [[1, CAROL, 'id-000005']])
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 2, pending: 2 })
        })
      })

      it('store - read returns every field of a stored message', async () => {
        await withStore(undefined, async ({ store }) => {
          const m = item(ALICE, 'id-000001', BOB, { receivedAt: T0 + 123, envelope: envText(ALICE, 'id-000001', BOB, 'fields') })
          await store.commit([m], [])
          assert.deepEqual(await store.read(BOB, 0, 10), [
            { seq: 1, sender: ALICE, id: 'id-000001', envelope: m.envelope, receivedAt: T0 + 123 },
          ])
        })
      })

      it('store - an empty commit answers an empty list and changes nothing', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.commit([], []), [])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 0, pending: 0 })
          assert.deepEqual(await store.stats(), { agents: 0, pending: 0 })
        })
      })

      it('store - concurrent commits to one inbox get distinct consecutive seqs', async () => {
        await withStore(undefined, async ({ store }) => {
          const [a, b] = await Promise.all([
            store.commit([item(ALICE, 'id-a00001', BOB), item(ALICE, 'id-a00002', BOB)], []),
            store.commit([item(CAROL, 'id-c00001', BOB), item(CAROL, 'id-c00002', BOB)], []),
          ])
          const seqs = [...a, ...b].map(r => (r.status === 'stored' ? r.seq : -1)).sort((x, y) => x - y)
          assert.deepEqual(seqs, [1, 2, 3, 4])
          // within each batch the order is kept
          assert.ok(a[0]?.status === 'stored' && a[1]?.status === 'stored' && a[0].seq < a[1].seq)
          assert.ok(b[0]?.status === 'stored' && b[1]?.status === 'stored' && b[0].seq < b[1].seq)
          const read = await store.read(BOB, 0, 10)
          assert.deepEqual(read.map(m => m.seq), [1, 2, 3, 4])
          assert.deepEqual(read.map(m => m.id).sort(), ['id-a00001', 'id-a00002', 'id-c00001', 'id-c00002'])
        })
      })
    })

    describe('dedupe', () => {
      it('store - a duplicate id in a later commit answers the original seq and is not stored again', async () => {
        await withStore(undefined, async ({ store }) => {
          const original = item(ALICE, 'id-000001', BOB, { envelope: envText(ALICE, 'id-000001', BOB, 'original') })
          assert.deepEqual(await store.commit([original, item(ALICE, 'id-000002', BOB)], []), [stored(1), stored(2)])
          const retry = item(ALICE, 'id-000001', BOB, { envelope: envText(ALICE, 'id-000001', BOB, 'retry'), receivedAt: T0 + 50 })
          assert.deepEqual(await store.commit([retry, item(ALICE, 'id-000003', BOB)], []), [duplicate(1), stored(3)])
          const msgs = await store.read(BOB, 0, 100)
          assert.deepEqual(summary(msgs), [[1, ALICE, 'id-000001'], [2, ALICE, 'id-000002'], [3, ALICE, 'id-000003']])
          assert.equal(msgs[0]!.envelope, original.envelope)
          assert.equal(msgs[0]!.receivedAt, T0)
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 3, pending: 3 })
        })
      })

      it('store - a duplicate id in the same batch is stored once', async () => {
        await withStore(undefined, async ({ store }) => {
          const r = await store.commit([
            item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB),
          ], [])
          assert.deepEqual(r, [stored(1), stored(2), duplicate(1), duplicate(2)])
          assert.deepEqual(summary(await store.read(BOB, 0, 100)), [[1, ALICE, 'id-000001'], [2, ALICE, 'id-000002']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 2, pending: 2 })
          assert.deepEqual(await store.stats(), { agents: 0, pending: 2 })
        })
      })

      it('store - the same id from another sender is not a duplicate', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.commit([item(ALICE, 'id-000001', BOB), item(CAROL, 'id-000001', BOB)], []), [stored(1), stored(2)])
          assert.deepEqual(await store.commit([item(CAROL, 'id-000001', BOB)], []), [duplicate(2)])
          assert.deepEqual(summary(await store.read(BOB, 0, 100)), [[1, ALICE, 'id-000001'], [2, CAROL, 'id-000001']])
        })
      })

      it('store - a duplicate is still recognised after the message was acked', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB)], [])
          await store.commit([], [{ recipient: BOB, seq: 2 }])
          assert.deepEqual(await store.read(BOB, 0, 100), [])
          // far later, but within the retention period
          const r = await store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 + 24 * 3600_000 })], [])
          assert.deepEqual(r, [duplicate(1)])
          assert.deepEqual(await store.read(BOB, 0, 100), [])
          assert.deepEqual(await store.inbox(BOB), { cursor: 2, lastSeq: 2, pending: 0 })
        })
      })
    })

    describe('read', () => {
      it('store - read pages through an inbox by afterSeq and limit, in seq order', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([1, 2, 3, 4, 5].map(i => item(ALICE, `id-00000${i}`, BOB)), [])
          assert.deepEqual((await store.read(BOB, 0, 2)).map(m => m.seq), [1, 2])
          assert.deepEqual((await store.read(BOB, 2, 2)).map(m => m.seq), [3, 4])
          assert.deepEqual((await store.read(BOB, 4, 2)).map(m => m.seq), [5])
          assert.deepEqual((await store.read(BOB, 5, 2)).map(m => m.seq), [])
          assert.deepEqual((await store.read(BOB, 1, 100)).map(m => m.seq), [2, 3, 4, 5])
          assert.deepEqual((await store.read(BOB, 3, 1)).map(m => m.id), ['id-000004'])
        })
      })

      it('store - read of an inbox that never received anything is empty', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB)], [])
          assert.deepEqual(await store.read(CAROL, 0, 10), [])
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 0, pending: 0 })
        })
      })
    })

    describe('cursor acks', () => {
      it('store - an ack removes the acked messages from read and from pending', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([1, 2, 3, 4, 5].map(i => item(ALICE, `id-00000${i}`, BOB)), [])
          assert.deepEqual(await store.commit([], [{ recipient: BOB, seq: 3 }]), [])
          assert.deepEqual(await store.inbox(BOB), { cursor: 3, lastSeq: 5, pending: 2 })
          assert.deepEqual((await store.read(BOB, 0, 100)).map(m => m.seq), [4, 5])
          assert.deepEqual(await store.stats(), { agents: 0, pending: 2 })
        })
      })

      it('store - the cursor only moves forward: a lower ack is ignored', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([1, 2, 3, 4, 5].map(i => item(ALICE, `id-00000${i}`, BOB)), [{ recipient: BOB, seq: 3 }])
          await store.commit([], [{ recipient: BOB, seq: 1 }])
          assert.deepEqual(await store.inbox(BOB), { cursor: 3, lastSeq: 5, pending: 2 })
          await store.commit([], [{ recipient: BOB, seq: 4 }, { recipient: BOB, seq: 2 }])
          assert.deepEqual(await store.inbox(BOB), { cursor: 4, lastSeq: 5, pending: 1 })
          assert.deepEqual((await store.read(BOB, 0, 100)).map(m => m.seq), [5])
        })
      })

      it('store - an ack beyond lastSeq is clamped and does not ack later messages', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB)], [])
          await store.commit([], [{ recipient: BOB, seq: 99 }])
          assert.deepEqual(await store.inbox(BOB), { cursor: 2, lastSeq: 2, pending: 0 })
          assert.deepEqual(await store.commit([item(ALICE, 'id-000003', BOB)], []), [stored(3)])
          assert.deepEqual(summary(await store.read(BOB, 0, 100)), [[3, ALICE, 'id-000003']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 2, lastSeq: 3, pending: 1 })
        })
      })

      it('store - an ack on an empty inbox does not ack its future messages', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([], [{ recipient: CAROL, seq: 5 }])
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 0, pending: 0 })
          assert.deepEqual(await store.commit([item(ALICE, 'id-000001', CAROL)], []), [stored(1)])
          assert.deepEqual(summary(await store.read(CAROL, 0, 10)), [[1, ALICE, 'id-000001']])
        })
      })

      it('store - acks in a commit apply after its appends', async () => {
        await withStore(undefined, async ({ store }) => {
          const r = await store.commit(
            [item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(ALICE, 'id-000003', CAROL)],
            [{ recipient: BOB, seq: 2 }, { recipient: CAROL, seq: 1 }],
          )
          assert.deepEqual(r, [stored(1), stored(2), stored(1)])
          assert.deepEqual(await store.inbox(BOB), { cursor: 2, lastSeq: 2, pending: 0 })
          assert.deepEqual(await store.inbox(CAROL), { cursor: 1, lastSeq: 1, pending: 0 })
          assert.deepEqual(await store.read(BOB, 0, 10), [])
          assert.deepEqual(await store.stats(), { agents: 0, pending: 0 })
        })
      })

      it('store - an ack of one inbox leaves the others alone', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', CAROL), item(ALICE, 'id-000003', CAROL)], [])
          await store.commit([], [{ recipient: BOB, seq: 1 }])
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 2, pending: 2 })
          assert.deepEqual((await store.read(CAROL, 0, 10)).map(m => m.seq), [1, 2])
        })
      })
    })

    describe('limits', () => {
      it('store - a full inbox answers inbox_full and stores nothing', async () => {
        await withStore({ maxInbox: 2 }, async ({ store }) => {
          const r = await store.commit([
            item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(ALICE, 'id-000003', BOB), item(ALICE, 'id-000004', CAROL),
          ], [])
          assert.deepEqual(r, [stored(1), stored(2), full, stored(1)])
          assert.deepEqual(summary(await store.read(BOB, 0, 10)), [[1, ALICE, 'id-000001'], [2, ALICE, 'id-000002']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 2, pending: 2 })
          assert.deepEqual(await store.commit([item(CAROL, 'id-000005', BOB)], []), [full])
          assert.deepEqual(await store.stats(), { agents: 0, pending: 3 })
        })
      })

      it('store - an ack frees space in a full inbox and a refused id can be sent again', async () => {
        await withStore({ maxInbox: 2 }, async ({ store }) => {
          assert.deepEqual(
            await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(ALICE, 'id-000003', BOB)], []),
            [stored(1), stored(2), full],
          )
          await store.commit([], [{ recipient: BOB, seq: 1 }])
          // the refused message was not remembered: it is stored now, with the next seq
          assert.deepEqual(await store.commit([item(ALICE, 'id-000003', BOB), item(ALICE, 'id-000004', BOB)], []), [stored(3), full])
          assert.deepEqual(summary(await store.read(BOB, 0, 10)), [[2, ALICE, 'id-000002'], [3, ALICE, 'id-000003']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 1, lastSeq: 3, pending: 2 })
        })
      })

      it('store - a duplicate of a stored message is answered even when the inbox is full', async () => {
        await withStore({ maxInbox: 1 }, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB)], [])
          assert.deepEqual(await store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB)], []), [duplicate(1), full])
        })
      })
    })

    describe('retention', () => {
      it('store - prune removes expired messages and dedupe entries and keeps fresh ones', async () => {
        await withStore({ retentionMs: 1000 }, async ({ store }) => {
          await store.commit([
            item(ALICE, 'id-000001', BOB, { receivedAt: T0 }), // acked below: only its dedupe entry remains
            item(ALICE, 'id-000002', BOB, { receivedAt: T0 }), // expires undelivered
            item(ALICE, 'id-000003', BOB, { receivedAt: T0 + 1000 }), // fresh until T0 + 2000
          ], [{ recipient: BOB, seq: 1 }])
          assert.deepEqual(await store.prune(T0 + 1500), { messages: 1, dedupe: 2 })
          assert.deepEqual(summary(await store.read(BOB, 0, 10)), [[3, ALICE, 'id-000003']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 1, lastSeq: 3, pending: 1 })
          assert.deepEqual(await store.stats(), { agents: 0, pending: 1 })
          // nothing left to prune at the same time
          assert.deepEqual(await store.prune(T0 + 1500), { messages: 0, dedupe: 0 })
        })
      })

      it('store - after prune an expired id can be stored again, a fresh one is still a duplicate', async () => {
        await withStore({ retentionMs: 1000 }, async ({ store }) => {
          await store.commit([
            item(ALICE, 'id-000001', BOB, { receivedAt: T0 }),
            item(ALICE, 'id-000002', BOB, { receivedAt: T0 }),
            item(ALICE, 'id-000003', BOB, { receivedAt: T0 + 1000 }),
          ], [{ recipient: BOB, seq: 1 }])
          await store.prune(T0 + 1500)
          const r = await store.commit([
            item(ALICE, 'id-000001', BOB, { receivedAt: T0 + 1600 }),
            item(ALICE, 'id-000002', BOB, { receivedAt: T0 + 1600 }),
            item(ALICE, 'id-000003', BOB, { receivedAt: T0 + 1600 }),
          ], [])
          assert.deepEqual(r, [stored(4), stored(5), duplicate(3)])
          assert.deepEqual(summary(await store.read(BOB, 0, 10)), [[3, ALICE, 'id-000003'], [4, ALICE, 'id-000001'], [5, ALICE, 'id-000002']])
        })
      })

      it('store - prune before anything expired removes nothing', async () => {
        await withStore({ retentionMs: 1000 }, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 }), item(ALICE, 'id-000002', CAROL, { receivedAt: T0 })], [])
          assert.deepEqual(await store.prune(T0 + 500), { messages: 0, dedupe: 0 })
          assert.deepEqual(await store.stats(), { agents: 0, pending: 2 })
          assert.deepEqual(await store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 + 600 })], []), [duplicate(1)])
        })
      })

      it('store - a full inbox has room again after its messages expire', async () => {
        await withStore({ retentionMs: 1000, maxInbox: 1 }, async ({ store }) => {
          await store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 })], [])
          assert.deepEqual(await store.commit([item(ALICE, 'id-000002', BOB, { receivedAt: T0 + 10 })], []), [full])
          assert.deepEqual(await store.prune(T0 + 1500), { messages: 1, dedupe: 1 })
          assert.deepEqual(await store.commit([item(ALICE, 'id-000002', BOB, { receivedAt: T0 + 1600 })], []), [stored(2)])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 2, pending: 1 })
        })
      })
    })

    describe('stats', () => {
      it('store - stats counts agents and pending messages over every inbox', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.stats(), { agents: 0, pending: 0 })
          await store.upsertAgent({ amid: ALICE, seenAt: T0 })
          await store.upsertAgent({ amid: BOB, seenAt: T0 })
          await store.upsertAgent({ amid: ALICE, seenAt: T0 + 1 })
          await store.commit([
            item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB), item(ALICE, 'id-000003', BOB), item(BOB, 'id-000004', CAROL),
          ], [])
          assert.deepEqual(await store.stats(), { agents: 2, pending: 4 })
          await store.commit([], [{ recipient: BOB, seq: 2 }])
          assert.deepEqual(await store.stats(), { agents: 2, pending: 2 })
        })
      })
    })

    describe('envelope text', () => {
      it('store - envelope text with non-ASCII characters round-trips byte-exact', async () => {
        await withStore(undefined, async ({ store }) => {
          // odd spacing and key order are kept too: the relay forwards the bytes it received
          const text = '{ "v":"agentmesh/0.2" ,"payload":{"text":"héllo wörld — 日本語 👋🏽 \\u00e9 \u2028 \\n"},"id":"id-000001"  }'
          await store.commit([item(ALICE, 'id-000001', BOB, { envelope: text })], [])
          const [m] = await store.read(BOB, 0, 1)
          assert.ok(m !== undefined)
          assert.equal(m.envelope, text)
          assert.ok(Buffer.from(m.envelope, 'utf8').equals(Buffer.from(text, 'utf8')))
        })
      })

      it('store - a ~100 KB envelope round-trips byte-exact', async () => {
        await withStore(undefined, async ({ store }) => {
          const text = envText(ALICE, 'id-000001', BOB, bigText())
          assert.ok(Buffer.byteLength(text) > 100_000)
          await store.commit([item(ALICE, 'id-000001', BOB, { envelope: text }), item(ALICE, 'id-000002', BOB)], [])
          const msgs = await store.read(BOB, 0, 10)
          assert.equal(msgs.length, 2)
          assert.equal(msgs[0]!.envelope.length, text.length)
          assert.ok(Buffer.from(msgs[0]!.envelope, 'utf8').equals(Buffer.from(text, 'utf8')))
          assert.equal(msgs[1]!.envelope, envText(ALICE, 'id-000002', BOB))
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
        it('store - everything committed survives close and reopen', async () => {
          await withStore(undefined, async (h) => {
            await h.store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 })
            await h.store.upsertAgent({ amid: BOB, seenAt: T0 + 1 })
            const big = envText(ALICE, 'id-000002', BOB, bigText())
            await h.store.commit([
              item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB, { envelope: big, receivedAt: T0 + 2 }),
              item(ALICE, 'id-000003', BOB), item(BOB, 'id-000004', CAROL),
            ], [{ recipient: BOB, seq: 1 }])

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.inbox(BOB), { cursor: 1, lastSeq: 3, pending: 2 })
            assert.deepEqual(await h.store.inbox(CAROL), { cursor: 0, lastSeq: 1, pending: 1 })
            const msgs = await h.store.read(BOB, 0, 10)
            assert.deepEqual(summary(msgs), [[2, ALICE, 'id-000002'], [3, ALICE, 'id-000003']])
            assert.equal(msgs[0]!.envelope, big)
            assert.equal(msgs[0]!.receivedAt, T0 + 2)
            assert.deepEqual(await h.store.stats(), { agents: 2, pending: 3 })
          })
        })

        it('store - seqs, cursor and dedupe continue after reopen', async () => {
          await withStore(undefined, async (h) => {
            await h.store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB)], [{ recipient: BOB, seq: 2 }])
            assert.deepEqual(await h.store.inbox(BOB), { cursor: 2, lastSeq: 2, pending: 0 })

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.inbox(BOB), { cursor: 2, lastSeq: 2, pending: 0 })
            const r = await h.store.commit([item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000003', BOB)], [{ recipient: BOB, seq: 1 }])
            assert.deepEqual(r, [duplicate(1), stored(3)])
            assert.deepEqual(summary(await h.store.read(BOB, 0, 10)), [[3, ALICE, 'id-000003']])
            assert.deepEqual(await h.store.inbox(BOB), { cursor: 2, lastSeq: 3, pending: 1 })
          })
        })

        it('store - limits given at creation still apply after reopen', async () => {
          await withStore({ maxInbox: 1, retentionMs: 1000 }, async (h) => {
            await h.store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 })], [])

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.commit([item(ALICE, 'id-000002', BOB, { receivedAt: T0 + 10 })], []), [full])
            assert.deepEqual(await h.store.prune(T0 + 1500), { messages: 1, dedupe: 1 })
            assert.deepEqual(await h.store.commit([item(ALICE, 'id-000001', BOB, { receivedAt: T0 + 1600 })], []), [stored(2)])
          })
        })
      })
    }
  })
}
