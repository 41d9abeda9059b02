/**
 * The shared suite every `Store` implementation must pass (STYLE.md "Tests": each adapter runs it).
 *
 * Each case gets a fresh store from `setup` (with the `StoreInit` it needs) and hands it to
 * `teardown` at the end, pass or fail. When `reopen` is given, the durability cases close the
 * store and open the same data again; `reopen` must reuse the init the store was created with.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chatCases, chatDurabilityCases } from './chat.ts'
import type { AgentProfile, AppendItem, AppendResult, CaCertificateRecord, CertificateRecord, CrlRecord, FeedbackRecord, ReputationFlag, Store, StoreInit, StoredMessage } from '@agentmesh/store'

export interface StoreSuiteInit {
  /** Names the implementation in the test report, e.g. "memory" or "sqlite (file)". */
  name: string
  /** A new, empty store. */
  setup: (init?: StoreInit) => Promise<Store>
  /** Releases what `setup` (or `reopen`) created. */
  teardown: (store: Store) => Promise<void>
  /** Closes `store` and opens the same data again; omit for stores that keep nothing. */
  reopen?: (store: Store) => Promise<Store>
}

/** A fixed clock: the suite never depends on the time it runs at. */
const T0 = 1_700_000_000_000

// A store treats agent ids as opaque strings.
const ALICE = 'am-alice'
const BOB = 'am-bob'
const CAROL = 'am-carol'

// Certificates, CA certificates and CRLs are opaque to a store too: only their fields matter.
function certRecord (amid: string, over: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    amid,
    chain: [`-----BEGIN CERTIFICATE-----\nleaf-of-${amid}\n-----END CERTIFICATE-----\n`, '-----BEGIN CERTIFICATE-----\norg\n-----END CERTIFICATE-----\n'],
    tier: 'organisation',
    organisation: 'Acme',
    notAfter: T0 + 365 * 86_400_000,
    anchorKey: 'key-root',
    links: [{ index: 0, subject: `CN=${amid}, O=Acme`, serial: '0a1b', issuerKey: 'key-org' }, { index: 1, subject: 'CN=Acme CA, O=Acme', serial: '77', issuerKey: 'key-root' }],
    publishedAt: T0,
    ...over,
  }
}

function caRecord (key: string, subject: string): CaCertificateRecord {
  return { key, subject, pem: `-----BEGIN CERTIFICATE-----\n${key}\n-----END CERTIFICATE-----\n`, addedAt: T0 }
}

function crlRecord (issuerKey: string, issuer: string, thisUpdate: number, over: Partial<CrlRecord> = {}): CrlRecord {
  return {
    issuerKey,
    issuer,
    thisUpdate,
    nextUpdate: thisUpdate + 7 * 86_400_000,
    revokedCount: 1,
    pem: `-----BEGIN X509 CRL-----\n${issuerKey}@${thisUpdate}\n-----END X509 CRL-----\n`,
    storedAt: T0,
    ...over,
  }
}

function envText (sender: string, id: string, recipient: string, text = 'hello'): string {
  return `{"v":"agentmesh/0.2","id":"${id}","from":"${sender}","to":"${recipient}","type":"chat","ts":${T0},"payload":{"text":${JSON.stringify(text)}}}`
}

function item (sender: string, id: string, recipient: string, opts: { receivedAt?: number, envelope?: string } = {}): AppendItem {
  return {
    sender,
    id,
    recipient,
    envelope: opts.envelope ?? envText(sender, id, recipient),
    receivedAt: opts.receivedAt ?? T0,
  }
}

const stored = (seq: number): AppendResult => ({ status: 'stored', seq })
const duplicate = (seq: number): AppendResult => ({ status: 'duplicate', seq })
const full: AppendResult = { status: 'inbox_full' }

/** The parts of stored messages a test compares, in the order read() returned them. */
function summary (msgs: StoredMessage[]): Array<[number, string, string]> {
  return msgs.map(m => [m.seq, m.sender, m.id])
}

/** A ~100 KB text with ASCII, 2-, 3- and 4-byte UTF-8 characters and JSON escapes, deterministic. */
function bigText (): string {
  const parts = ['plain ascii ', 'é à ü ß ', '日本語のテキスト ', '👋🏽 🧪 ', '\\"quoted\\" \\\\ \\n ', 'ש ע ر ']
  let s = ''
  for (let i = 0; s.length < 100_000; i++) s += parts[i % parts.length]! + String(i) + ' '
  return s
}

export default function storeSuite (init: StoreSuiteInit): void {
  const { name, setup, teardown, reopen } = init

  /** Runs `fn` on a fresh store; `fn` may swap the store (after a reopen) through the returned holder. */
  async function withStore (storeInit: StoreInit | undefined, fn: (h: { store: Store }) => Promise<void>): Promise<void> {
    const h = { store: await setup(storeInit) }
    try {
      await fn(h)
    } finally {
      await teardown(h.store)
    }
  }

  describe(`store compliance: ${name}`, () => {
    describe('identity and agents', () => {
      it('store - relayId is a non-empty string that does not change', async () => {
        await withStore(undefined, async ({ store }) => {
          const a = await store.relayId()
          assert.equal(typeof a, 'string')
          assert.ok(a.length > 0, 'relayId is empty')
          await store.commit([item(ALICE, 'id-000001', BOB)], [])
          assert.equal(await store.relayId(), a)
        })
      })

      it('store - two new stores have different relay ids', async () => {
        await withStore(undefined, async ({ store: s1 }) => {
          await withStore(undefined, async ({ store: s2 }) => {
            assert.notEqual(await s1.relayId(), await s2.relayId())
          })
        })
      })

      it('store - upsertAgent answers created true the first time and false after', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 }), { created: true })
          assert.deepEqual(await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 + 10 }), { created: false })
          assert.deepEqual(await store.upsertAgent({ amid: BOB, seenAt: T0 + 20 }), { created: true })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 + 10 })
          assert.deepEqual(await store.stats(), { agents: 2, pending: 0 })
        })
      })

      it('store - upsertAgent without a name keeps the name, with a name updates it', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 })
          await store.upsertAgent({ amid: ALICE, seenAt: T0 + 5 })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 + 5 })
          await store.upsertAgent({ amid: ALICE, name: 'alice-2', seenAt: T0 + 9 })
          assert.deepEqual(await store.getAgent(ALICE), { amid: ALICE, name: 'alice-2', registeredAt: T0, lastSeenAt: T0 + 9 })
        })
      })

      it('store - an agent registered without a name has no name', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: BOB, seenAt: T0 })
          const bob = await store.getAgent(BOB)
          assert.ok(bob !== undefined)
          assert.equal(bob.amid, BOB)
          assert.equal(bob.name, undefined)
          assert.equal(bob.registeredAt, T0)
          assert.equal(bob.lastSeenAt, T0)
        })
      })

      it('store - getAgent of an unknown agent is undefined', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.upsertAgent({ amid: ALICE, seenAt: T0 })
          assert.equal(await store.getAgent(BOB), undefined)
        })
      })
    })

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

    describe('registry', () => {
      const profile = (amid: string, over: Partial<AgentProfile> = {}): AgentProfile => ({
        amid,
        displayName: `Agent ${amid}`,
        capabilities: [{ id: 'translate', name: 'Translation', description: 'French to English', tags: ['language', 'nlp'] }],
        tier: 'anonymous',
        updatedAt: T0,
        ...over,
      })

      it('store - a profile round-trips, and a second put replaces it', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getProfile(ALICE), undefined)
          await store.putProfile(profile(ALICE, { version: '1.0.0' }))
          assert.deepEqual(await store.getProfile(ALICE), profile(ALICE, { version: '1.0.0' }))
          const next = profile(ALICE, { displayName: 'Alice 2', capabilities: [], tier: 'verified', updatedAt: T0 + 5 })
          await store.putProfile(next)
          assert.deepEqual(await store.getProfile(ALICE), next)
        })
      })

      it('store - search by capability (skill id or tag, any case) and by text, ordered by amid, limited', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putProfile(profile(CAROL))
          await store.putProfile(profile(ALICE))
          await store.putProfile(profile(BOB, { displayName: 'Weather bot', capabilities: [{ id: 'forecast', name: 'Forecast', tags: ['weather'] }] }))
          const ids = (ps: AgentProfile[]): string[] => ps.map(p => p.amid)
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'translate', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'NLP', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ capability: 'nl', limit: 10 })), [], 'a capability matches whole ids and tags only')
          assert.deepEqual(ids(await store.searchProfiles({ text: 'WEATHER', limit: 10 })), [BOB])
          assert.deepEqual(ids(await store.searchProfiles({ text: 'french', limit: 10 })), [ALICE, CAROL])
          assert.deepEqual(ids(await store.searchProfiles({ text: 'french', capability: 'forecast', limit: 10 })), [])
          assert.deepEqual(ids(await store.searchProfiles({ limit: 2 })), [ALICE, BOB])
          assert.deepEqual(ids(await store.searchProfiles({ text: '%', limit: 10 })), [], 'LIKE wildcards are matched literally')
          assert.deepEqual(ids(await store.searchProfiles({ text: '_', limit: 10 })), [])
        })
      })

      it('store - one-time prekeys are handed out once each, lowest id first, then the bundle has none', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.takePrekeyBundle(BOB), undefined, 'no bundle before an upload')
          const base = { exchange_key: 'xk', signed_prekey: { id: 1, key: 'spk', sig: 's' } }
          assert.deepEqual(await store.putPrekeys(BOB, { base, oneTime: [{ id: 3, key: 'k3' }, { id: 1, key: 'k1' }, { id: 2, key: 'k2' }] }), { oneTime: 3 })
          assert.deepEqual(await store.putPrekeys(BOB, { oneTime: [{ id: 2, key: 'other' }] }), { oneTime: 3 }, 'an id already there is ignored')
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 1, key: 'k1' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 2, key: 'k2' } })
          assert.equal(await store.countOneTimePrekeys(BOB), 1)
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base, oneTime: { id: 3, key: 'k3' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base })
          assert.equal(await store.countOneTimePrekeys(BOB), 0)
          assert.equal(await store.countOneTimePrekeys(ALICE), 0)
        })
      })

      it('store - concurrent bundle requests never get the same one-time prekey', async () => {
        await withStore(undefined, async ({ store }) => {
          const oneTime = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, key: `k${i + 1}` }))
          await store.putPrekeys(BOB, { base: { b: 1 }, oneTime })
          const taken = await Promise.all(Array.from({ length: 25 }, async () => await store.takePrekeyBundle(BOB)))
          const ids = taken.map(t => t?.oneTime?.id).filter((id): id is number => id !== undefined)
          assert.equal(ids.length, 20)
          assert.equal(new Set(ids).size, 20)
          assert.equal(taken.filter(t => t !== undefined && t.oneTime === undefined).length, 5)
        })
      })

      it('store - a new base replaces the old one and keeps the one-time prekeys', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putPrekeys(BOB, { base: { v: 1 }, oneTime: [{ id: 1, key: 'k1' }] })
          await store.putPrekeys(BOB, { base: { v: 2 }, oneTime: [] })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 1, key: 'k1' } })
        })
      })

      it('store - replaceOneTime drops the one-time prekeys held before (same ids included) and keeps only the new ones', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.putPrekeys(BOB, { base: { v: 1 }, oneTime: [{ id: 1, key: 'old1' }, { id: 2, key: 'old2' }, { id: 9, key: 'old9' }] })
          await store.putPrekeys(ALICE, { base: { v: 1 }, oneTime: [{ id: 1, key: 'alice1' }] })
          assert.deepEqual(await store.putPrekeys(BOB, { base: { v: 2 }, oneTime: [{ id: 1, key: 'new1' }, { id: 2, key: 'new2' }], replaceOneTime: true }), { oneTime: 2 })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 1, key: 'new1' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 }, oneTime: { id: 2, key: 'new2' } })
          assert.deepEqual(await store.takePrekeyBundle(BOB), { base: { v: 2 } })
          assert.equal(await store.countOneTimePrekeys(ALICE), 1, 'another agent\'s prekeys are untouched')
        })
      })
    })

    describe('certificates and CRLs', () => {
      it('store - a certificate record round-trips, a second put replaces it, others are undefined', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getCertificate(ALICE), undefined)
          await store.putCertificate(certRecord(ALICE))
          await store.putCertificate(certRecord(BOB, { tier: 'anonymous', chain: ['self-signed'], links: [], organisation: undefined, anchorKey: undefined }))
          assert.deepEqual(await store.getCertificate(ALICE), certRecord(ALICE))
          const next = certRecord(ALICE, { tier: 'verified', chain: ['other'], notAfter: T0 + 1, links: [], publishedAt: T0 + 5 })
          delete next.organisation
          await store.putCertificate(next)
          assert.deepEqual(await store.getCertificate(ALICE), next)
          assert.equal((await store.getCertificate(BOB))?.tier, 'anonymous')
          assert.equal(await store.getCertificate(CAROL), undefined)
        })
      })

      it('store - CA certificates are found by subject, ordered by key; a known key keeps its first record', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.findCaCertificates('CN=Acme CA, O=Acme'), [])
          await store.putCaCertificate(caRecord('k2', 'CN=Acme CA, O=Acme'))
          await store.putCaCertificate(caRecord('k1', 'CN=Acme CA, O=Acme'))
          await store.putCaCertificate(caRecord('k3', 'CN=Other CA, O=Other'))
          await store.putCaCertificate({ ...caRecord('k1', 'CN=Acme CA, O=Acme'), pem: 'replaced?', addedAt: T0 + 9 })
          assert.deepEqual(await store.findCaCertificates('CN=Acme CA, O=Acme'), [caRecord('k1', 'CN=Acme CA, O=Acme'), caRecord('k2', 'CN=Acme CA, O=Acme')])
          assert.deepEqual(await store.findCaCertificates('CN=Other CA, O=Other'), [caRecord('k3', 'CN=Other CA, O=Other')])
          assert.deepEqual(await store.findCaCertificates('CN=acme ca, O=Acme'), [], 'subjects match exactly')
        })
      })

      it('store - the newest CRL per issuer key wins: older and equal ones are refused, the same one is unchanged', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listCrls(), [])
          const first = crlRecord('k-org', 'CN=Acme CA, O=Acme', T0)
          assert.deepEqual(await store.putCrl(first), { status: 'stored' })
          assert.deepEqual(await store.putCrl({ ...first, storedAt: T0 + 1 }), { status: 'unchanged' })
          assert.deepEqual(await store.putCrl(crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 - 1000)), { status: 'outdated', current: first })
          assert.deepEqual(await store.putCrl({ ...first, pem: 'another CRL with the same thisUpdate', revokedCount: 5 }), { status: 'outdated', current: first })
          const second = crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 + 1000, { revokedCount: 3 })
          delete second.nextUpdate
          assert.deepEqual(await store.putCrl(second), { status: 'stored' })
          // another CA, and another key under the same name: each has its own CRL
          const root = crlRecord('k-root', 'CN=Root', T0)
          const twin = crlRecord('k-twin', 'CN=Acme CA, O=Acme', T0 - 5000)
          assert.deepEqual(await store.putCrl(root), { status: 'stored' })
          assert.deepEqual(await store.putCrl(twin), { status: 'stored' })
          assert.deepEqual(await store.listCrls(), [second, twin, root])
        })
      })

      it('store - concurrent CRL uploads of one issuer leave the newest', async () => {
        await withStore(undefined, async ({ store }) => {
          const times = [5, 1, 9, 3, 7, 2, 8].map(n => T0 + n * 1000)
          await Promise.all(times.map(async t => await store.putCrl(crlRecord('k-org', 'CN=Acme CA, O=Acme', t))))
          assert.deepEqual(await store.listCrls(), [crlRecord('k-org', 'CN=Acme CA, O=Acme', T0 + 9000)])
        })
      })
    })

    describe('reputation', () => {
      const fb = (rater: string, subject: string, score: number, over: Partial<FeedbackRecord> = {}): FeedbackRecord =>
        ({ rater, subject, score, comment: `from ${rater}`, interaction: 'task-1', at: T0, ...over })
      const flag = (at: number, over: Partial<ReputationFlag> = {}): ReputationFlag =>
        ({ at, from: 0.9, fromAt: at - 10, to: 0.5, toAt: at, reason: `moved at ${at}`, ...over })

      it('store - feedback round-trips; a second one from the same rater replaces the first and answers it', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getFeedback(ALICE, BOB), undefined)
          assert.deepEqual(await store.putFeedback(fb(ALICE, BOB, 0.75)), {})
          assert.deepEqual(await store.getFeedback(ALICE, BOB), fb(ALICE, BOB, 0.75))
          assert.equal(await store.getFeedback(BOB, ALICE), undefined, 'a rating has a direction')
          const plain: FeedbackRecord = { rater: ALICE, subject: BOB, score: 0, at: T0 + 5 }
          assert.deepEqual(await store.putFeedback(plain), { previous: fb(ALICE, BOB, 0.75) })
          const got = await store.getFeedback(ALICE, BOB)
          assert.deepEqual(got, plain, 'optional fields left out stay out')
          assert.equal(got !== undefined && 'comment' in got, false)
          assert.deepEqual(await store.listFeedbackFor(BOB), [plain], 'one standing rating per rater and subject')
        })
      })

      it('store - the ratings of a subject are listed by rater, those a rater gave by subject; scores keep full precision', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listFeedbackFor(BOB), [])
          assert.deepEqual(await store.listFeedbackBy(ALICE), [])
          await store.putFeedback(fb(CAROL, BOB, 0.1))
          await store.putFeedback(fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }))
          await store.putFeedback(fb(ALICE, CAROL, 1))
          await store.putFeedback(fb(BOB, ALICE, 0.5))
          assert.deepEqual(await store.listFeedbackFor(BOB), [fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }), fb(CAROL, BOB, 0.1)])
          assert.deepEqual(await store.listFeedbackBy(ALICE), [fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }), fb(ALICE, CAROL, 1)])
          assert.deepEqual(await store.listFeedbackFor(ALICE), [fb(BOB, ALICE, 0.5)])
          assert.deepEqual(await store.listFeedbackBy(CAROL), [fb(CAROL, BOB, 0.1)])
          // a replacement shows in both lists
          await store.putFeedback(fb(ALICE, BOB, 0.9, { at: T0 + 1 }))
          assert.deepEqual((await store.listFeedbackFor(BOB)).map(f => [f.rater, f.score, f.at]), [[ALICE, 0.9, T0 + 1], [CAROL, 0.1, T0]])
          assert.deepEqual((await store.listFeedbackBy(ALICE)).map(f => [f.subject, f.score]), [[BOB, 0.9], [CAROL, 1]])
        })
      })

      it('store - score history: points since a time, with the one in effect at that time; older ones and those beyond max are forgotten', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listScorePoints(BOB, 0), [])
          const keep = (since: number, max = 100): { since: number, max: number } => ({ since, max })
          await store.addScorePoint(BOB, { at: T0, score: 0.5 }, keep(0))
          await store.addScorePoint(BOB, { at: T0 + 10, score: 0.6 }, keep(0))
          await store.addScorePoint(BOB, { at: T0 + 20, score: 0.7 }, keep(0))
          await store.addScorePoint(ALICE, { at: T0 + 5, score: 0.1 }, keep(0))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0, score: 0.5 }, { at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }])
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 10), [{ at: T0, score: 0.5 }, { at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }], 'since is inclusive, plus the one before')
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 15), [{ at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }])
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 99), [{ at: T0 + 20, score: 0.7 }], 'the score in effect stays known')
          assert.deepEqual(await store.listScorePoints(ALICE, 0), [{ at: T0 + 5, score: 0.1 }])
          // adding with a later `since` forgets what came before it, except the score in effect then
          await store.addScorePoint(BOB, { at: T0 + 30, score: 0.8 }, keep(T0 + 15))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }, { at: T0 + 30, score: 0.8 }])
          await store.addScorePoint(BOB, { at: T0 + 40, score: 0.9 }, keep(T0 + 35))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 30, score: 0.8 }, { at: T0 + 40, score: 0.9 }])
          await store.addScorePoint(BOB, { at: T0 + 45, score: 0.95 }, keep(T0 + 100))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 45, score: 0.95 }], 'all before since: only the newest stays')
          // at most `max`, the newest
          for (let i = 0; i < 5; i++) await store.addScorePoint(BOB, { at: T0 + 50 + i, score: i / 10 }, keep(0, 3))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 52, score: 0.2 }, { at: T0 + 53, score: 0.3 }, { at: T0 + 54, score: 0.4 }])
          assert.deepEqual(await store.listScorePoints(ALICE, 0), [{ at: T0 + 5, score: 0.1 }], 'another agent\'s history is untouched')
          // points of the same time keep the order they were added in
          await store.addScorePoint(CAROL, { at: T0, score: 0.3 }, keep(0))
          await store.addScorePoint(CAROL, { at: T0, score: 0.2 }, keep(0))
          assert.deepEqual((await store.listScorePoints(CAROL, 0)).map(p => p.score), [0.3, 0.2])
        })
      })

      it('store - flags are listed newest first, at most max of them per agent', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listReputationFlags(BOB), [])
          for (let i = 1; i <= 5; i++) await store.addReputationFlag(BOB, flag(T0 + i), 3)
          await store.addReputationFlag(ALICE, flag(T0, { reason: 'é 日本 "q"', from: 1 / 3 }), 3)
          assert.deepEqual(await store.listReputationFlags(BOB), [flag(T0 + 5), flag(T0 + 4), flag(T0 + 3)])
          assert.deepEqual(await store.listReputationFlags(ALICE), [flag(T0, { reason: 'é 日本 "q"', from: 1 / 3 })])
          assert.deepEqual(await store.listReputationFlags(CAROL), [])
        })
      })

      it('store - concurrent feedback from many raters is all kept', async () => {
        await withStore(undefined, async ({ store }) => {
          const raters = Array.from({ length: 30 }, (_, i) => `am-rater-${String(i).padStart(2, '0')}`)
          await Promise.all(raters.map(async (r, i) => await store.putFeedback(fb(r, BOB, i / 29))))
          assert.deepEqual((await store.listFeedbackFor(BOB)).map(f => f.rater), raters)
        })
      })
    })

    chatCases(withStore)

    if (reopen !== undefined) {
      describe('durability', () => {
        chatDurabilityCases(withStore, reopen)

        it('store - everything committed survives close and reopen', async () => {
          await withStore(undefined, async (h) => {
            const relayId = await h.store.relayId()
            await h.store.upsertAgent({ amid: ALICE, name: 'alice', seenAt: T0 })
            await h.store.upsertAgent({ amid: BOB, seenAt: T0 + 1 })
            const big = envText(ALICE, 'id-000002', BOB, bigText())
            await h.store.commit([
              item(ALICE, 'id-000001', BOB), item(ALICE, 'id-000002', BOB, { envelope: big, receivedAt: T0 + 2 }),
              item(ALICE, 'id-000003', BOB), item(BOB, 'id-000004', CAROL),
            ], [{ recipient: BOB, seq: 1 }])

            h.store = await reopen(h.store)

            assert.equal(await h.store.relayId(), relayId)
            assert.deepEqual(await h.store.getAgent(ALICE), { amid: ALICE, name: 'alice', registeredAt: T0, lastSeenAt: T0 })
            assert.equal((await h.store.getAgent(BOB))?.registeredAt, T0 + 1)
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

        it('store - profiles and prekeys survive reopen; a handed-out prekey stays gone', async () => {
          await withStore(undefined, async (h) => {
            const p: AgentProfile = { amid: ALICE, capabilities: [{ id: 'x', name: 'X', tags: [] }], tier: 'verified', updatedAt: T0 }
            await h.store.putProfile(p)
            await h.store.putPrekeys(BOB, { base: { b: 1 }, oneTime: [{ id: 1, key: 'k1' }, { id: 2, key: 'k2' }] })
            await h.store.takePrekeyBundle(BOB)

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getProfile(ALICE), p)
            assert.deepEqual(await h.store.takePrekeyBundle(BOB), { base: { b: 1 }, oneTime: { id: 2, key: 'k2' } })
          })
        })

        it('store - certificates, CA certificates and CRLs survive reopen', async () => {
          await withStore(undefined, async (h) => {
            await h.store.putCertificate(certRecord(ALICE))
            await h.store.putCaCertificate(caRecord('k1', 'CN=Acme CA, O=Acme'))
            await h.store.putCrl(crlRecord('k1', 'CN=Acme CA, O=Acme', T0 + 1000))

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getCertificate(ALICE), certRecord(ALICE))
            assert.deepEqual(await h.store.findCaCertificates('CN=Acme CA, O=Acme'), [caRecord('k1', 'CN=Acme CA, O=Acme')])
            assert.deepEqual(await h.store.listCrls(), [crlRecord('k1', 'CN=Acme CA, O=Acme', T0 + 1000)])
            assert.equal((await h.store.putCrl(crlRecord('k1', 'CN=Acme CA, O=Acme', T0))).status, 'outdated', 'the newest is still known')
          })
        })

        it('store - feedback, score history and flags survive reopen', async () => {
          await withStore(undefined, async (h) => {
            const f: FeedbackRecord = { rater: ALICE, subject: BOB, score: 0.7, comment: 'good', interaction: 'i-1', at: T0 }
            await h.store.putFeedback(f)
            await h.store.addScorePoint(BOB, { at: T0, score: 0.7 }, { since: 0, max: 10 })
            const fl: ReputationFlag = { at: T0, from: 0.1, fromAt: T0 - 1, to: 0.7, toAt: T0, reason: 'r' }
            await h.store.addReputationFlag(BOB, fl, 10)

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getFeedback(ALICE, BOB), f)
            assert.deepEqual(await h.store.listFeedbackFor(BOB), [f])
            assert.deepEqual(await h.store.listScorePoints(BOB, 0), [{ at: T0, score: 0.7 }])
            assert.deepEqual(await h.store.listReputationFlags(BOB), [fl])
            assert.deepEqual(await h.store.putFeedback({ ...f, score: 0.2 }), { previous: f }, 'the standing rating is still known')
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
