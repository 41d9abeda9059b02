/**
 * The rooms slice (docs/protocol.md §17.3): rooms, members, invites, room messages and their
 * history, read markers.
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AppendItem, MessageStore, RoomStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, DAVE, roomItem, dm, envText, room, seqs, type SuiteInit } from './fixtures.ts'

/**
 * What the cases call: the slice, and the messages calls a room message goes through: commit writes
 * the history, the inbox copies and the room cursors, read, inbox and stats show the copies, and
 * the room cursors of members that read rooms by cursor (fan-out on read).
 */
export type RoomsSuiteStore = RoomStore & Pick<MessageStore, 'commit' | 'read' | 'inbox' | 'stats' | 'setRoomDelivery' | 'roomFeeds' | 'roomFeed' | 'agentsOnline'>

export function roomsSuite (init: SuiteInit<RoomsSuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: rooms`, () => {
    describe('rooms and members', () => {
      it('store - createRoom stores the room and its owner\'s membership; a taken id answers false and changes nothing', async () => {
        await withStore(undefined, async ({ store }) => {
          const ops = room('ops', 'public', { topic: 'deploys', createdAt: T0 + 5 })
          assert.equal(await store.createRoom(ops), true)
          assert.deepEqual(await store.getRoom('ops'), ops)
          assert.deepEqual(await store.getMember('ops', ALICE), { room: 'ops', amid: ALICE, role: 'owner', joinedAt: T0 + 5 })
          assert.deepEqual(await store.listMembers('ops'), [{ room: 'ops', amid: ALICE, role: 'owner', joinedAt: T0 + 5 }])
          assert.equal(await store.countMembers('ops'), 1)
          assert.equal(await store.createRoom(room('ops', 'private', { owner: BOB, createdAt: T0 + 9 })), false)
          assert.deepEqual(await store.getRoom('ops'), ops)
          assert.equal(await store.getMember('ops', BOB), undefined)
          assert.equal(await store.countMembers('ops'), 1)
          // without an owner (the global room) there is no member
          const global = room('global', 'global', { topic: 'everyone' })
          assert.equal(await store.createRoom(global), true)
          assert.deepEqual(await store.getRoom('global'), global)
          assert.deepEqual(await store.listMembers('global'), [])
          // optional fields left out stay out
          assert.equal(await store.createRoom({ id: 'dm-0123', kind: 'dm', createdAt: T0 }), true)
          const d = await store.getRoom('dm-0123')
          assert.deepEqual(d, { id: 'dm-0123', kind: 'dm', createdAt: T0 })
          assert.equal(d !== undefined && ('topic' in d || 'owner' in d), false)
          assert.equal(await store.getRoom('nope'), undefined)
        })
      })

      it('store - setTopic sets and clears a topic; false for an unknown room', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          assert.equal(await store.setTopic('ops', 'é 日本 👋🏽'), true)
          assert.equal((await store.getRoom('ops'))?.topic, 'é 日本 👋🏽')
          assert.equal(await store.setTopic('ops', undefined), true)
          const r = await store.getRoom('ops')
          assert.deepEqual(r, room('ops', 'public'))
          assert.equal(r !== undefined && 'topic' in r, false)
          assert.equal(await store.setTopic('nope', 'x'), false)
          assert.equal(await store.getRoom('nope'), undefined)
        })
      })

      it('store - listRooms by kind, by member, either, paged by id', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('global', 'global'))
          await store.createRoom(room('pub-b', 'public'))
          await store.createRoom(room('pub-a', 'public', { owner: BOB }))
          await store.createRoom(room('priv-x', 'private'))
          await store.createRoom(room('priv-y', 'private', { owner: CAROL }))
          await store.createRoom(room('dm-1', 'dm', { owner: undefined }))
          await store.addMember({ room: 'dm-1', amid: BOB, role: 'member', joinedAt: T0 })
          await store.addMember({ room: 'priv-x', amid: BOB, role: 'member', joinedAt: T0 })
          const list = async (q: Parameters<RoomStore['listRooms']>[0]): Promise<string[]> => (await store.listRooms(q)).map(r => r.id)
          assert.deepEqual(await list({ limit: 100 }), ['dm-1', 'global', 'priv-x', 'priv-y', 'pub-a', 'pub-b'])
          assert.deepEqual(await list({ kinds: ['public'], limit: 100 }), ['pub-a', 'pub-b'])
          assert.deepEqual(await list({ kinds: ['global', 'public'], limit: 100 }), ['global', 'pub-a', 'pub-b'])
          assert.deepEqual(await list({ kinds: [], limit: 100 }), [])
          assert.deepEqual(await list({ member: BOB, limit: 100 }), ['dm-1', 'priv-x', 'pub-a'])
          assert.deepEqual(await list({ member: DAVE, limit: 100 }), [])
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: BOB, limit: 100 }), ['dm-1', 'global', 'priv-x', 'pub-a', 'pub-b'], 'either matches, each once')
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: CAROL, limit: 100 }), ['global', 'priv-y', 'pub-a', 'pub-b'])
          // paging
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: BOB, limit: 2 }), ['dm-1', 'global'])
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: BOB, after: 'global', limit: 2 }), ['priv-x', 'pub-a'])
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: BOB, after: 'pub-a', limit: 2 }), ['pub-b'])
          assert.deepEqual(await list({ kinds: ['global', 'public'], member: BOB, after: 'pub-b', limit: 2 }), [])
          assert.deepEqual(await list({ member: BOB, after: 'dm-1', limit: 1 }), ['priv-x'])
          assert.deepEqual(await list({ kinds: ['private'], after: 'priv-x', limit: 10 }), ['priv-y'])
          assert.deepEqual(await list({ after: 'priv-y', limit: 2 }), ['pub-a', 'pub-b'])
          // the records are whole
          assert.deepEqual(await store.listRooms({ kinds: ['public'], limit: 1 }), [room('pub-a', 'public', { owner: BOB })])
          // a member who left no longer lists the room
          await store.removeMember('priv-x', BOB)
          assert.deepEqual(await list({ member: BOB, limit: 100 }), ['dm-1', 'pub-a'])
        })
      })

      it('store - appendMembership takes the next seq only (0 first), per room; listMembership in seq order, texts as given', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'private', { createdAt: T0 + 10 }))
          assert.deepEqual(await store.listMembership('ops'), [])
          assert.equal(await store.appendMembership('ops', 1, '{"seq":1}'), false, 'no gap before the genesis')
          assert.equal(await store.appendMembership('ops', 0, '{"seq":0,"é":"日本"}'), true)
          assert.equal(await store.appendMembership('ops', 0, '{"seq":0,"other":true}'), false, 'a seq is taken once')
          assert.equal(await store.appendMembership('ops', 1, '{"seq":1}'), true)
          assert.equal(await store.appendMembership('ops', 3, '{"seq":3}'), false)
          assert.equal(await store.appendMembership('other', 0, '{"room":"other"}'), true)
          assert.deepEqual(await store.listMembership('ops'), ['{"seq":0,"é":"日本"}', '{"seq":1}'])
          assert.deepEqual(await store.listMembership('other'), ['{"room":"other"}'])
          assert.deepEqual(await store.listMembership('nope'), [])
        })
      })

      it('store - addMember adds once (the role is kept), removes the invite; removeMember; members by joinedAt then amid', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'private', { createdAt: T0 + 10 }))
          await store.putInvite({ room: 'ops', amid: BOB, by: ALICE, at: T0 + 11 })
          await store.putInvite({ room: 'ops', amid: CAROL, by: ALICE, at: T0 + 11 })
          assert.deepEqual(await store.getInvite('ops', BOB), { room: 'ops', amid: BOB, by: ALICE, at: T0 + 11 })
          // a second invite replaces the first
          await store.putInvite({ room: 'ops', amid: BOB, by: DAVE, at: T0 + 12 })
          assert.deepEqual(await store.getInvite('ops', BOB), { room: 'ops', amid: BOB, by: DAVE, at: T0 + 12 })
          assert.equal(await store.getInvite('ops', DAVE), undefined)
          assert.equal(await store.getInvite('other', BOB), undefined)

          assert.equal(await store.addMember({ room: 'ops', amid: BOB, role: 'member', joinedAt: T0 + 20 }), true)
          assert.equal(await store.getInvite('ops', BOB), undefined, 'joining uses up the invite')
          assert.deepEqual(await store.getInvite('ops', CAROL), { room: 'ops', amid: CAROL, by: ALICE, at: T0 + 11 })
          assert.equal(await store.addMember({ room: 'ops', amid: BOB, role: 'owner', joinedAt: T0 + 30 }), false)
          assert.deepEqual(await store.getMember('ops', BOB), { room: 'ops', amid: BOB, role: 'member', joinedAt: T0 + 20 }, 'the first membership stays as it was')
          await store.addMember({ room: 'ops', amid: DAVE, role: 'member', joinedAt: T0 + 15 })
          await store.addMember({ room: 'ops', amid: CAROL, role: 'member', joinedAt: T0 + 15 })
          assert.deepEqual((await store.listMembers('ops')).map(m => [m.amid, m.role, m.joinedAt]), [
            [ALICE, 'owner', T0 + 10], [CAROL, 'member', T0 + 15], [DAVE, 'member', T0 + 15], [BOB, 'member', T0 + 20],
          ])
          assert.equal(await store.countMembers('ops'), 4)

          assert.equal(await store.removeMember('ops', DAVE), true)
          assert.equal(await store.removeMember('ops', DAVE), false)
          assert.equal(await store.removeMember('nope', DAVE), false)
          assert.equal(await store.getMember('ops', DAVE), undefined)
          assert.equal(await store.countMembers('ops'), 3)
          // joining again after leaving is a new membership
          assert.equal(await store.addMember({ room: 'ops', amid: DAVE, role: 'member', joinedAt: T0 + 40 }), true)
          assert.deepEqual(await store.getMember('ops', DAVE), { room: 'ops', amid: DAVE, role: 'member', joinedAt: T0 + 40 })
          assert.deepEqual(await store.listMembers('nope'), [])
          assert.equal(await store.countMembers('nope'), 0)
        })
      })
    })

    describe('room messages', () => {
      it('store - a room message goes once into the history (room seq) and into every fan-out inbox (inbox seqs)', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([dm(CAROL, 'id-dm0001', BOB)], []) // BOB's inbox is at seq 1 already
          const m = roomItem(ALICE, 'id-000001', 'ops', [BOB, CAROL], { receivedAt: T0 + 7 })
          assert.deepEqual(await store.commit([m], []), [
            { status: 'stored', seq: 1, deliveries: [{ recipient: BOB, seq: 2 }, { recipient: CAROL, seq: 1 }] },
          ])
          assert.deepEqual(await store.readHistory('ops', { limit: 10 }), [{ seq: 1, sender: ALICE, id: 'id-000001', envelope: m.envelope, receivedAt: T0 + 7 }])
          assert.deepEqual(await store.getHistoryEntry('ops', 1), { seq: 1, sender: ALICE, id: 'id-000001', envelope: m.envelope, receivedAt: T0 + 7 })
          assert.equal(await store.lastRoomSeq('ops'), 1)
          assert.deepEqual(await store.read(BOB, 1, 10), [{ seq: 2, sender: ALICE, id: 'id-000001', envelope: m.envelope, receivedAt: T0 + 7 }])
          assert.deepEqual(await store.read(CAROL, 0, 10), [{ seq: 1, sender: ALICE, id: 'id-000001', envelope: m.envelope, receivedAt: T0 + 7 }])
          assert.deepEqual(await store.inbox(ALICE), { cursor: 0, lastSeq: 0, pending: 0 }, 'the sender gets no copy')
          assert.deepEqual(await store.inbox('#ops'), { cursor: 0, lastSeq: 0, pending: 0 }, 'there is no inbox "#ops"')
          assert.deepEqual(await store.stats(), { agents: 0, pending: 3 })

          // the next ones: room seqs grow per room, inbox seqs per inbox, in batch order
          const r = await store.commit([
            roomItem(BOB, 'id-000002', 'ops', [ALICE, CAROL]),
            dm(ALICE, 'id-000003', CAROL),
            roomItem(ALICE, 'id-000004', 'ops', [BOB]),
            roomItem(ALICE, 'id-000005', 'lab', [CAROL]),
            roomItem(ALICE, 'id-000006', 'lab', []),
          ], [{ recipient: BOB, seq: 1 }])
          assert.deepEqual(r, [
            { status: 'stored', seq: 2, deliveries: [{ recipient: ALICE, seq: 1 }, { recipient: CAROL, seq: 2 }] },
            { status: 'stored', seq: 3 },
            { status: 'stored', seq: 3, deliveries: [{ recipient: BOB, seq: 3 }] },
            { status: 'stored', seq: 1, deliveries: [{ recipient: CAROL, seq: 4 }] },
            { status: 'stored', seq: 2, deliveries: [] },
          ])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [1, 2, 3])
          assert.deepEqual(seqs(await store.readHistory('lab', { limit: 10 })), [1, 2])
          assert.deepEqual((await store.read(CAROL, 0, 10)).map(x => [x.seq, x.id]), [[1, 'id-000001'], [2, 'id-000002'], [3, 'id-000003'], [4, 'id-000005']])
          assert.deepEqual(await store.inbox(BOB), { cursor: 1, lastSeq: 3, pending: 2 })
        })
      })

      it('store - a duplicate room message answers its room seq and makes no new copies', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([roomItem(BOB, 'id-000001', 'ops', [ALICE]), roomItem(ALICE, 'id-000002', 'ops', [BOB, CAROL])], [])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000002', 'ops', [BOB, CAROL, DAVE], { envelope: '{"retry":1}' })], []), [{ status: 'duplicate', seq: 2 }])
          // the same batch too, and a plain message with the same (sender, id): one dedupe memory
          assert.deepEqual(await store.commit([
            roomItem(ALICE, 'id-000003', 'ops', [BOB]), roomItem(ALICE, 'id-000003', 'ops', [BOB]), dm(ALICE, 'id-000002', BOB),
          ], []), [{ status: 'stored', seq: 3, deliveries: [{ recipient: BOB, seq: 2 }] }, { status: 'duplicate', seq: 3 }, { status: 'duplicate', seq: 2 }])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [1, 2, 3])
          assert.equal((await store.getHistoryEntry('ops', 2))?.envelope, envText(ALICE, 'id-000002', '#ops'))
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 2, pending: 2 })
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 1, pending: 1 })
          assert.deepEqual(await store.inbox(DAVE), { cursor: 0, lastSeq: 0, pending: 0 })
          assert.equal(await store.lastRoomSeq('ops'), 3)
          // a plain message first, then a room message with its id: also a duplicate
          await store.commit([dm(CAROL, 'id-000009', BOB)], [])
          assert.deepEqual(await store.commit([roomItem(CAROL, 'id-000009', 'ops', [ALICE])], []), [{ status: 'duplicate', seq: 3 }])
          assert.equal(await store.lastRoomSeq('ops'), 3)
        })
      })

      it('store - a full inbox misses the copy, not the message: it is still in the history', async () => {
        await withStore({ maxInbox: 1 }, async ({ store }) => {
          await store.commit([dm(CAROL, 'id-dm0001', BOB)], [])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000001', 'ops', [BOB, CAROL])], []), [
            { status: 'stored', seq: 1, deliveries: [{ recipient: CAROL, seq: 1 }] },
          ])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000002', 'ops', [BOB, CAROL])], []), [{ status: 'stored', seq: 2, deliveries: [] }])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [1, 2])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 1, pending: 1 })
          assert.deepEqual(await store.inbox(CAROL), { cursor: 0, lastSeq: 1, pending: 1 })
          // once acked there is room again
          await store.commit([], [{ recipient: BOB, seq: 1 }])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000003', 'ops', [BOB, CAROL])], []), [
            { status: 'stored', seq: 3, deliveries: [{ recipient: BOB, seq: 2 }] },
          ])
        })
      })

      it('store - readHistory: the newest by default, before pages backwards, after forwards (and wins), always ascending', async () => {
        await withStore(undefined, async ({ store }) => {
          const items = Array.from({ length: 10 }, (_, i) => roomItem(ALICE, `id-${String(i + 1).padStart(6, '0')}`, 'ops', [], { receivedAt: T0 + i }))
          await store.commit(items.slice(0, 4), [])
          await store.commit(items.slice(4), [])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 3 })), [8, 9, 10])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 100 })), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 8, limit: 3 })), [5, 6, 7])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 5, limit: 3 })), [2, 3, 4])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 2, limit: 3 })), [1])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 1, limit: 3 })), [])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 99, limit: 2 })), [9, 10])
          assert.deepEqual(seqs(await store.readHistory('ops', { after: 0, limit: 3 })), [1, 2, 3])
          assert.deepEqual(seqs(await store.readHistory('ops', { after: 7, limit: 2 })), [8, 9])
          assert.deepEqual(seqs(await store.readHistory('ops', { after: 9, limit: 5 })), [10])
          assert.deepEqual(seqs(await store.readHistory('ops', { after: 10, limit: 5 })), [])
          assert.deepEqual(seqs(await store.readHistory('ops', { after: 3, before: 9, limit: 2 })), [4, 5], 'after wins over before')
          const e = (await store.readHistory('ops', { after: 5, limit: 1 }))[0]
          assert.deepEqual(e, { seq: 6, sender: ALICE, id: 'id-000006', envelope: items[5]!.envelope, receivedAt: T0 + 5 })
          assert.equal(e !== undefined && 'deleted' in e, false)
          assert.deepEqual(await store.readHistory('nope', { limit: 10 }), [])
          assert.equal(await store.lastRoomSeq('nope'), 0)
          assert.equal(await store.getHistoryEntry('ops', 11), undefined)
          assert.equal(await store.getHistoryEntry('nope', 1), undefined)
        })
      })

      it('store - history is trimmed to historyMaxPerRoom as messages come in, and room seqs keep growing', async () => {
        await withStore({ historyMaxPerRoom: 3 }, async ({ store }) => {
          const ri = (n: number, r = 'ops'): AppendItem => roomItem(ALICE, `id-${r}-${n}`, r, [BOB])
          assert.deepEqual((await store.commit([ri(1), ri(2), ri(3), ri(4), ri(5)], [])).map(x => x.status === 'stored' ? x.seq : -1), [1, 2, 3, 4, 5])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [3, 4, 5])
          assert.equal(await store.getHistoryEntry('ops', 2), undefined)
          assert.equal(await store.lastRoomSeq('ops'), 5)
          await store.commit([ri(1, 'lab')], [])
          assert.deepEqual(await store.commit([ri(6)], []), [{ status: 'stored', seq: 6, deliveries: [{ recipient: BOB, seq: 7 }] }])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [4, 5, 6])
          assert.deepEqual(seqs(await store.readHistory('ops', { before: 5, limit: 10 })), [4])
          assert.deepEqual(seqs(await store.readHistory('lab', { limit: 10 })), [1], 'another room keeps its own')
          // the inbox copies are not history: they stay until acked
          assert.equal((await store.inbox(BOB)).pending, 7)
          // dedupe outlives the history entry
          assert.deepEqual(await store.commit([ri(1)], []), [{ status: 'duplicate', seq: 1 }])
        })
      })

      it('store - deleteHistoryEntry leaves a tombstone, once; the seq is not reused', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.commit([roomItem(ALICE, 'id-000001', 'ops', []), roomItem(BOB, 'id-000002', 'ops', [], { receivedAt: T0 + 1 })], [])
          assert.equal(await store.deleteHistoryEntry('ops', 2, CAROL, T0 + 50), true)
          const tomb = { seq: 2, sender: BOB, id: 'id-000002', envelope: '', receivedAt: T0 + 1, deleted: { by: CAROL, at: T0 + 50 } }
          assert.deepEqual(await store.getHistoryEntry('ops', 2), tomb)
          assert.deepEqual((await store.readHistory('ops', { limit: 10 }))[1], tomb)
          assert.equal(await store.deleteHistoryEntry('ops', 2, ALICE, T0 + 60), false, 'deleted already')
          assert.deepEqual(await store.getHistoryEntry('ops', 2), tomb, 'the first deletion stays')
          assert.equal(await store.deleteHistoryEntry('ops', 3, ALICE, T0 + 60), false)
          assert.equal(await store.deleteHistoryEntry('nope', 1, ALICE, T0 + 60), false)
          assert.equal((await store.getHistoryEntry('ops', 1))?.envelope, envText(ALICE, 'id-000001', '#ops'))
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000003', 'ops', [])], []), [{ status: 'stored', seq: 3, deliveries: [] }])
          assert.deepEqual(await store.commit([roomItem(BOB, 'id-000002', 'ops', [])], []), [{ status: 'duplicate', seq: 2 }])
        })
      })

      it('store - pruneHistory drops entries received at or before a time and all but the newest maxPerRoom; seqs keep growing', async () => {
        await withStore(undefined, async ({ store }) => {
          const at = (r: string, n: number, t: number): AppendItem => roomItem(ALICE, `id-${r}-${n}`, r, [], { receivedAt: t })
          await store.commit([at('ops', 1, T0), at('ops', 2, T0 + 10), at('ops', 3, T0 + 20), at('ops', 4, T0 + 30), at('ops', 5, T0 + 40)], [])
          await store.commit([at('lab', 1, T0), at('lab', 2, T0 + 40)], [])
          await store.commit([at('old', 1, T0), at('old', 2, T0 + 5)], [])
          assert.equal(await store.pruneHistory(T0 + 10, 100), 5)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [3, 4, 5])
          assert.deepEqual(seqs(await store.readHistory('lab', { limit: 10 })), [2])
          assert.deepEqual(seqs(await store.readHistory('old', { limit: 10 })), [])
          assert.equal(await store.pruneHistory(T0 + 10, 100), 0, 'nothing more to prune')
          assert.equal(await store.pruneHistory(T0, 2), 1)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [4, 5])
          assert.deepEqual(seqs(await store.readHistory('lab', { limit: 10 })), [2])
          // both at once
          await store.commit([at('ops', 6, T0 + 50), at('ops', 7, T0 + 60)], [])
          assert.equal(await store.pruneHistory(T0 + 30, 2), 2)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [6, 7])
          // an emptied room goes on from its last seq
          assert.deepEqual(await store.commit([at('old', 3, T0 + 70)], []), [{ status: 'stored', seq: 3, deliveries: [] }])
          assert.equal(await store.lastRoomSeq('old'), 3)
          assert.equal(await store.lastRoomSeq('ops'), 7)
          // the trim on append counts what pruning left
          await store.commit([at('ops', 8, T0 + 80)], [])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [6, 7, 8])
        })
      })

      it('store - pruning by time then by count keeps a room\'s history trimmed to historyMaxPerRoom exactly', async () => {
        await withStore({ historyMaxPerRoom: 3 }, async ({ store }) => {
          const at = (n: number, t: number): AppendItem => roomItem(ALICE, `id-${n}`, 'ops', [], { receivedAt: t })
          await store.commit([at(1, T0 + 50), at(2, T0), at(3, T0 + 50)], [])
          assert.equal(await store.pruneHistory(T0, 100), 1) // seq 2 goes: the history has a gap
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [1, 3])
          await store.commit([at(4, T0 + 60)], [])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [1, 3, 4])
          await store.commit([at(5, T0 + 70)], [])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [3, 4, 5])
        })
      })
    })

    describe('room cursors (fan-out on read)', () => {
      const member = (r: string, amid: string, at = T0): { room: string, amid: string, role: 'member', joinedAt: number } => ({ room: r, amid, role: 'member', joinedAt: at })

      it('store - a member reading by cursor gets no inbox copy, an \'inbox\' member (the default) does; a room ack raises the cursor only', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          await store.addMember(member('ops', BOB))
          await store.addMember(member('ops', CAROL))
          assert.deepEqual(await store.roomFeeds(BOB), [], 'the default delivery is inbox')
          assert.deepEqual(await store.setRoomDelivery(BOB, 'cursor'), [{ room: 'ops', cursor: 0, lastSeq: 0 }])
          const r = await store.commit([roomItem(ALICE, 'id-000001', 'ops', []), roomItem(ALICE, 'id-000002', 'ops', []), roomItem(CAROL, 'id-000003', 'ops', [])], [])
          assert.deepEqual(r, [
            { status: 'stored', seq: 1, deliveries: [{ recipient: CAROL, seq: 1 }] },
            { status: 'stored', seq: 2, deliveries: [{ recipient: CAROL, seq: 2 }] },
            { status: 'stored', seq: 3, deliveries: [{ recipient: ALICE, seq: 1 }] }, // the owner (inbox) gets it, its sender not
          ])
          assert.deepEqual((await store.inbox(BOB)).lastSeq, 0)
          assert.deepEqual(await store.roomFeed('ops', BOB), { room: 'ops', cursor: 0, lastSeq: 3 })
          assert.equal(await store.roomFeed('ops', CAROL), undefined, 'an inbox member has no feed')
          assert.equal(await store.roomFeed('ops', DAVE), undefined, 'nor has a stranger')
          // a room ack in the commit of appends and inbox acks; beyond the last seq it is clamped, lower ones are no-ops
          await store.commit([], [{ recipient: BOB, room: 'ops', seq: 2 }, { recipient: CAROL, seq: 1 }])
          assert.deepEqual(await store.roomFeed('ops', BOB), { room: 'ops', cursor: 2, lastSeq: 3 })
          assert.deepEqual(await store.inbox(CAROL), { cursor: 1, lastSeq: 2, pending: 1 })
          await store.commit([], [{ recipient: BOB, room: 'ops', seq: 1 }])
          assert.equal((await store.roomFeed('ops', BOB))?.cursor, 2)
          await store.commit([roomItem(ALICE, 'id-000004', 'ops', [])], [{ recipient: BOB, room: 'ops', seq: 99 }])
          assert.deepEqual(await store.roomFeed('ops', BOB), { room: 'ops', cursor: 4, lastSeq: 4 })
          // a stranger's room ack changes nothing
          await store.commit([], [{ recipient: DAVE, room: 'ops', seq: 4 }])
          assert.equal(await store.roomFeed('ops', DAVE), undefined)
          // the fan-out list (the global room) still gets its copies, once each
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000005', 'ops', [CAROL, DAVE, CAROL])], []),
            [{ status: 'stored', seq: 5, deliveries: [{ recipient: CAROL, seq: 4 }, { recipient: DAVE, seq: 1 }] }])
        })
      })

      it('store - a fan-out inbox (the global room) of an agent reading the room by cursor gets no copy; back to inbox it gets what it had not read, then copies', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('global', 'global'))
          await store.commit([roomItem(ALICE, 'id-000001', 'global', [BOB, CAROL, DAVE])], [])
          // BOB reads the global room by cursor from here (its row starts at the last seq), CAROL has an 'inbox' row, DAVE none
          await store.addMember(member('global', BOB))
          await store.addMember(member('global', CAROL))
          assert.deepEqual(await store.setRoomDelivery(BOB, 'cursor'), [{ room: 'global', cursor: 1, lastSeq: 1 }])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000002', 'global', [BOB, CAROL, DAVE]), roomItem(ALICE, 'id-000003', 'global', [DAVE, BOB])], []), [
            { status: 'stored', seq: 2, deliveries: [{ recipient: CAROL, seq: 2 }, { recipient: DAVE, seq: 2 }] },
            { status: 'stored', seq: 3, deliveries: [{ recipient: DAVE, seq: 3 }, { recipient: CAROL, seq: 3 }] },
          ])
          assert.deepEqual(await store.inbox(BOB), { cursor: 0, lastSeq: 1, pending: 1 }, 'only the copy from before it read by cursor')
          assert.deepEqual(await store.roomFeed('global', BOB), { room: 'global', cursor: 1, lastSeq: 3 })
          await store.commit([], [{ recipient: BOB, room: 'global', seq: 2 }])
          assert.deepEqual(await store.setRoomDelivery(BOB, 'inbox'), [])
          assert.deepEqual((await store.read(BOB, 0, 10)).map(m => [m.seq, m.id]), [[1, 'id-000001'], [2, 'id-000003']])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000004', 'global', [BOB])], []), [{ status: 'stored', seq: 4, deliveries: [{ recipient: BOB, seq: 3 }, { recipient: CAROL, seq: 4 }] }])
          assert.deepEqual(await store.setRoomDelivery(BOB, 'cursor'), [{ room: 'global', cursor: 4, lastSeq: 4 }])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000005', 'global', [BOB])], []), [{ status: 'stored', seq: 5, deliveries: [{ recipient: CAROL, seq: 5 }] }])
        })
      })

      it('store - agentsOnline: per agent in order, registration, the global-room row and the delivery; again it keeps the row and its cursor', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('global', 'global'))
          await store.commit([roomItem(ALICE, 'id-000001', 'global', [BOB, CAROL])], [])
          assert.deepEqual(await store.agentsOnline([
            { amid: BOB, name: 'bob', seenAt: T0, delivery: 'cursor', join: member('global', BOB) },
            { amid: CAROL, seenAt: T0, delivery: 'inbox' },
          ]), [{ created: true, feeds: [{ room: 'global', cursor: 1, lastSeq: 1 }] }, { created: true, feeds: [] }])
          assert.equal((await store.stats()).agents, 2)
          assert.equal(await store.getMember('global', CAROL), undefined, 'no row for an agent reading by inbox')
          await store.commit([roomItem(ALICE, 'id-000002', 'global', [BOB, CAROL])], [])
          await store.commit([], [{ recipient: BOB, room: 'global', seq: 2 }])
          // the same agent again (a reconnect): not created, its row and cursor as they were
          assert.deepEqual(await store.agentsOnline([{ amid: BOB, seenAt: T0 + 1, delivery: 'cursor', join: member('global', BOB, T0 + 1) }]),
            [{ created: false, feeds: [{ room: 'global', cursor: 2, lastSeq: 2 }] }])
          assert.equal((await store.getMember('global', BOB))?.joinedAt, T0)
          assert.deepEqual((await store.read(CAROL, 0, 10)).map(m => m.id), ['id-000001', 'id-000002'], 'the inbox reader gets its copies')
        })
      })

      it('store - a member that joins later starts at the room\'s last seq with its agent\'s delivery; one that left has no feed', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          await store.setRoomDelivery(BOB, 'cursor')
          await store.commit([roomItem(ALICE, 'id-000001', 'ops', []), roomItem(ALICE, 'id-000002', 'ops', [])], [])
          await store.addMember(member('ops', BOB, T0 + 1))
          assert.deepEqual(await store.roomFeeds(BOB), [{ room: 'ops', cursor: 2, lastSeq: 2 }])
          await store.createRoom(room('lab', 'public', { owner: BOB }))
          assert.deepEqual(await store.roomFeeds(BOB), [{ room: 'lab', cursor: 0, lastSeq: 0 }, { room: 'ops', cursor: 2, lastSeq: 2 }])
          assert.equal(await store.removeMember('ops', BOB), true)
          assert.deepEqual(await store.roomFeeds(BOB), [{ room: 'lab', cursor: 0, lastSeq: 0 }])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000003', 'ops', [])], [{ recipient: BOB, room: 'ops', seq: 3 }]), [{ status: 'stored', seq: 3, deliveries: [] }])
          assert.equal(await store.roomFeed('ops', BOB), undefined)
        })
      })

      it('store - switching to inbox copies what the log holds after the cursor (not deleted, not its own); back to cursor starts at the last seq', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          await store.addMember(member('ops', BOB))
          await store.setRoomDelivery(BOB, 'cursor')
          const items = [roomItem(ALICE, 'id-000001', 'ops', []), roomItem(ALICE, 'id-000002', 'ops', []), roomItem(BOB, 'id-000003', 'ops', []), roomItem(ALICE, 'id-000004', 'ops', []), roomItem(ALICE, 'id-000005', 'ops', [])]
          await store.commit(items, [{ recipient: BOB, room: 'ops', seq: 1 }])
          assert.equal(await store.deleteHistoryEntry('ops', 4, ALICE, T0 + 1), true)
          assert.deepEqual(await store.setRoomDelivery(BOB, 'inbox'), [])
          assert.deepEqual((await store.read(BOB, 0, 10)).map(m => [m.seq, m.id, m.envelope]), [[1, 'id-000002', items[1]!.envelope], [2, 'id-000005', items[4]!.envelope]])
          assert.deepEqual(await store.roomFeeds(BOB), [])
          assert.deepEqual(await store.commit([roomItem(ALICE, 'id-000006', 'ops', [])], []), [{ status: 'stored', seq: 6, deliveries: [{ recipient: BOB, seq: 3 }] }])
          assert.deepEqual(await store.setRoomDelivery(BOB, 'cursor'), [{ room: 'ops', cursor: 6, lastSeq: 6 }])
          assert.deepEqual(await store.setRoomDelivery(BOB, 'cursor'), [{ room: 'ops', cursor: 6, lastSeq: 6 }], 'setting it again changes nothing')
        })
      })

      it('store - the trim to historyMaxPerRoom keeps what a member has not read, up to the newest maxInbox entries', async () => {
        await withStore({ historyMaxPerRoom: 3, maxInbox: 5 }, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          await store.addMember(member('ops', BOB))
          await store.setRoomDelivery(BOB, 'cursor')
          const at = (n: number): AppendItem => roomItem(ALICE, `id-${n}`, 'ops', [])
          await store.commit([1, 2, 3, 4, 5, 6, 7, 8].map(at), [])
          // BOB read nothing: the newest maxInbox (5) stay, not only historyMaxPerRoom (3)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [4, 5, 6, 7, 8])
          await store.commit([at(9)], [{ recipient: BOB, room: 'ops', seq: 6 }])
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [7, 8, 9])
        })
      })

      it('store - pruneHistory keeps what a member has not read until unreadOlderThan', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.createRoom(room('ops', 'public'))
          await store.createRoom(room('lab', 'public'))
          await store.addMember(member('ops', BOB))
          await store.setRoomDelivery(BOB, 'cursor')
          const at = (r: string, n: number, t: number): AppendItem => roomItem(ALICE, `id-${r}-${n}`, r, [], { receivedAt: t })
          await store.commit([at('ops', 1, T0), at('ops', 2, T0 + 10), at('ops', 3, T0 + 20), at('lab', 1, T0), at('lab', 2, T0 + 10)], [{ recipient: BOB, room: 'ops', seq: 1 }])
          // past retention: ops 1 (read), lab 1 and 2 (no member reads lab by cursor) go; ops 2 and 3 stay (unread)
          assert.equal(await store.pruneHistory(T0 + 20, 100, T0 + 5), 3)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [2, 3])
          assert.deepEqual(seqs(await store.readHistory('lab', { limit: 10 })), [])
          // past the unread retention too: they go
          assert.equal(await store.pruneHistory(T0 + 20, 100, T0 + 10), 1)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [3])
          // by count: the unread one stays
          assert.equal(await store.pruneHistory(T0, 0), 0)
          assert.deepEqual(seqs(await store.readHistory('ops', { limit: 10 })), [3])
        })
      })
    })

    describe('read markers', () => {
      it('store - setReadUpTo only raises and answers the value in force; readMarkers by amid', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.readMarkers('ops'), [])
          assert.equal(await store.setReadUpTo('ops', CAROL, 5), 5)
          assert.equal(await store.setReadUpTo('ops', CAROL, 3), 5)
          assert.equal(await store.setReadUpTo('ops', CAROL, 5), 5)
          assert.equal(await store.setReadUpTo('ops', CAROL, 9), 9)
          assert.equal(await store.setReadUpTo('ops', ALICE, 2), 2)
          assert.equal(await store.setReadUpTo('lab', ALICE, 7), 7)
          assert.deepEqual(await store.readMarkers('ops'), [{ amid: ALICE, upTo: 2 }, { amid: CAROL, upTo: 9 }])
          assert.deepEqual(await store.readMarkers('lab'), [{ amid: ALICE, upTo: 7 }])
          assert.deepEqual(await store.readMarkers('nope'), [])
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
      it('store - room seqs continue after reopen even when the history was pruned away', async () => {
        await withStore(undefined, async (h) => {
          await h.store.commit([roomItem(ALICE, 'id-000001', 'ops', []), roomItem(ALICE, 'id-000002', 'ops', [])], [])
          assert.equal(await h.store.pruneHistory(T0, 100), 2)

          h.store = await reopen(h.store)

          assert.equal(await h.store.lastRoomSeq('ops'), 2)
          assert.deepEqual(await h.store.readHistory('ops', { limit: 10 }), [])
          assert.deepEqual(await h.store.commit([roomItem(BOB, 'id-000003', 'ops', [ALICE])], []), [
            { status: 'stored', seq: 3, deliveries: [{ recipient: ALICE, seq: 1 }] },
          ])
          assert.deepEqual(await h.store.commit([roomItem(ALICE, 'id-000002', 'ops', [])], []), [{ status: 'duplicate', seq: 2 }])
        })
      })
      })
    }
  })
}
