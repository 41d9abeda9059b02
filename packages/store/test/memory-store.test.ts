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
  })

  it('store options - defaults are 30 days of retention, 100,000 messages per inbox, 1,000,000 remembered ids', () => {
    assert.deepEqual(storeOptions(), { retentionMs: 30 * 24 * 60 * 60 * 1000, maxInbox: 100_000, maxDedupeEntries: 1_000_000 })
    assert.deepEqual(storeOptions({ maxInbox: 5 }), { retentionMs: 30 * 24 * 60 * 60 * 1000, maxInbox: 5, maxDedupeEntries: 1_000_000 })
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
