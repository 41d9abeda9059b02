import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import storeSuite from '@agentmesh/compliance-tests/store'
import { memoryStore, storeOptions } from '@agentmesh/store'

storeSuite({
  name: 'memory',
  setup: async (init) => memoryStore(init),
  teardown: async (store) => { await store.close() },
})

describe('memory store', () => {
  it('memory store - kind is "memory"', () => {
    assert.equal(memoryStore().kind, 'memory')
  })

  it('memory store - operations after close are refused', async () => {
    const store = memoryStore()
    await store.close()
    const closed = { code: 'AM_ERR_INTERNAL', message: 'the store is closed' }
    await assert.rejects(store.commit([], []), closed)
    await assert.rejects(store.read('am-bob', 0, 10), closed)
    await assert.rejects(store.upsertAgent({ amid: 'am-bob', seenAt: 1 }), closed)
    await assert.rejects(store.relayId(), closed)
    await assert.rejects(store.stats(), closed)
    await assert.rejects(store.relaySecret(), closed)
    await assert.rejects(store.appendAudit([]), closed)
    await assert.rejects(store.readHistory('ops', { limit: 1 }), closed)
  })

  it('memory store - the default history keeps the newest 1,000 entries of a room', async () => {
    const store = memoryStore()
    const items = Array.from({ length: 1005 }, (_, i) => ({ sender: 'am-alice', id: `id-${i}`, recipient: '#ops', room: 'ops', fanout: [], envelope: '{}', receivedAt: 1 }))
    await store.commit(items, [])
    const h = await store.readHistory('ops', { after: 0, limit: 2000 })
    assert.equal(h.length, 1000)
    assert.equal(h[0]?.seq, 6)
    assert.equal(await store.lastRoomSeq('ops'), 1005)
  })

  it('memory store - what a caller keeps of a record it passed in or got back does not change the store', async () => {
    const store = memoryStore()
    const detail: Record<string, unknown> = { list: [1] }
    const [rec] = await store.appendAudit([{ at: 1, actor: 'am-alice', action: 'x', detail }]);
    (detail.list as number[]).push(2);
    (rec!.detail.list as number[]).push(3)
    assert.deepEqual((await store.readAudit({ limit: 1 }))[0]?.detail, { list: [1] })
    const settings = await store.putSettings({ a: { b: 1 } });
    (settings.a as Record<string, number>).b = 2
    assert.deepEqual(await store.getSettings(), { a: { b: 1 } })
  })

  it('store options - defaults are 30 days of retention, 100,000 messages per inbox, 1,000,000 remembered ids, 1,000 history entries per room (1,000,000 persistent)', () => {
    assert.deepEqual(storeOptions(), { retentionMs: 30 * 24 * 60 * 60 * 1000, maxInbox: 100_000, maxDedupeEntries: 1_000_000, historyMaxPerRoom: 1000 })
    assert.deepEqual(storeOptions({ maxInbox: 5 }), { retentionMs: 30 * 24 * 60 * 60 * 1000, maxInbox: 5, maxDedupeEntries: 1_000_000, historyMaxPerRoom: 1000 })
    assert.equal(storeOptions({}, true).historyMaxPerRoom, 1_000_000)
    assert.equal(storeOptions({ historyMaxPerRoom: 7 }, true).historyMaxPerRoom, 7)
    assert.throws(() => storeOptions({ historyMaxPerRoom: 0 }), { name: 'RangeError', message: 'store option historyMaxPerRoom must be a positive integer' })
    assert.throws(() => storeOptions({ maxDedupeEntries: 0 }), { name: 'RangeError', message: 'store option maxDedupeEntries must be a positive integer' })
  })

  it('memory store - dedupe memory is bounded: past maxDedupeEntries the oldest ids are forgotten first', async () => {
    const store = memoryStore({ maxDedupeEntries: 3 })
    const item = (id: string) => ({ sender: 'am-alice', id, recipient: 'am-bob', envelope: `{"id":"${id}"}`, receivedAt: 1 })
    await store.commit(['a1', 'a2', 'a3', 'a4'].map(item), [])
    assert.deepEqual(await store.commit([item('a2'), item('a3'), item('a4')], []),
      [{ status: 'duplicate', seq: 2 }, { status: 'duplicate', seq: 3 }, { status: 'duplicate', seq: 4 }])
    assert.deepEqual(await store.commit([item('a1')], []), [{ status: 'stored', seq: 5 }], 'the oldest id was forgotten')
  })

  it('store options - a non-positive or fractional limit is refused with the option named', () => {
    assert.throws(() => storeOptions({ retentionMs: 0 }), { name: 'RangeError', message: 'store option retentionMs must be a positive integer (ms)' })
    assert.throws(() => storeOptions({ retentionMs: 1.5 }), { name: 'RangeError', message: 'store option retentionMs must be a positive integer (ms)' })
    assert.throws(() => storeOptions({ maxInbox: -1 }), { name: 'RangeError', message: 'store option maxInbox must be a positive integer' })
    assert.throws(() => memoryStore({ maxInbox: 0 }), { name: 'RangeError', message: 'store option maxInbox must be a positive integer' })
  })
})
