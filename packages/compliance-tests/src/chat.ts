/**
 * The chat part of the store suite (docs/protocol.md §17): handles, roles, rooms, members,
 * invites, room messages and their history, read markers, tasks, the audit log and settings.
 * `store.ts` runs these cases with its own setup, teardown and reopen.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AuditVerifier } from '@agentmesh/store'
import type { AppendItem, AuditInput, AuditRecord, RoomRecord, Store, StoreInit, TaskRecord, TaskState } from '@agentmesh/store'

/** Runs `fn` on a fresh store; `fn` may swap the store (after a reopen) through the holder. */
export type WithStore = (init: StoreInit | undefined, fn: (h: { store: Store }) => Promise<void>) => Promise<void>
export type Reopen = (store: Store) => Promise<Store>

/** The suite's fixed clock (the same as in store.ts). */
const T0 = 1_700_000_000_000

// Agent ids, room ids and handles are opaque strings to a store.
const ALICE = 'am-alice'
const BOB = 'am-bob'
const CAROL = 'am-carol'
const DAVE = 'am-dave'

function envText (sender: string, id: string, to: string, text = 'hello'): string {
  return `{"v":"agentmesh/0.2","id":"${id}","from":"${sender}","to":"${to}","type":"chat","ts":${T0},"payload":{"text":${JSON.stringify(text)}}}`
}

/** A room message from `sender` to `room`, copied to the `fanout` inboxes. */
function roomItem (sender: string, id: string, room: string, fanout: readonly string[], opts: { receivedAt?: number, envelope?: string } = {}): AppendItem {
  return {
    sender,
    id,
    recipient: '#' + room,
    room,
    fanout,
    envelope: opts.envelope ?? envText(sender, id, '#' + room),
    receivedAt: opts.receivedAt ?? T0,
  }
}

function dm (sender: string, id: string, recipient: string, receivedAt = T0): AppendItem {
  return { sender, id, recipient, envelope: envText(sender, id, recipient), receivedAt }
}

const room = (id: string, kind: RoomRecord['kind'], over: Partial<RoomRecord> = {}): RoomRecord =>
  ({ id, kind, ...(kind === 'global' ? {} : { owner: ALICE }), createdAt: T0, ...over })

function task (id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    room: 'ops',
    requester: ALICE,
    assignee: BOB,
    command: 'deploy',
    args: 'web --fast',
    state: 'submitted',
    createdAt: T0,
    updatedAt: T0,
    deadline: T0 + 300_000,
    history: [{ state: 'submitted', at: T0, by: ALICE }],
    ...over,
  }
}

const audit = (action: string, actor = ALICE, over: Partial<AuditInput> = {}): AuditInput =>
  ({ at: T0, actor, action, target: '#ops', detail: { id: `id-${action}`, bytes: 12 }, ...over })

/** Every audit row, read page after page, and what the verifier makes of them. */
async function verifyAll (store: Store, page = 2): Promise<{ rows: AuditRecord[], ok: boolean }> {
  const v = new AuditVerifier()
  const rows: AuditRecord[] = []
  let after = 0
  for (;;) {
    const got = await store.readAudit({ after, limit: page })
    if (got.length === 0) break
    v.add(got)
    rows.push(...got)
    after = got[got.length - 1]!.seq
  }
  return { rows, ok: v.result().ok }
}

/** The seqs and ids of history entries. */
const seqs = (es: Array<{ seq: number }>): number[] => es.map(e => e.seq)
const ids = (ts: Array<{ id: string }>): string[] => ts.map(t => t.id)

export function chatCases (withStore: WithStore): void {
  describe('chat', () => {
    describe('relay secret and agents', () => {
      it('store - relaySecret is 32 random bytes in base64url, the same on every call, different per store', async () => {
        await withStore(undefined, async ({ store }) => {
          const s = await store.relaySecret()
          assert.match(s, /^[A-Za-z0-9_-]{43}$/)
          assert.equal(Buffer.from(s, 'base64url').length, 32)
          assert.equal(await store.relaySecret(), s)
          await withStore(undefined, async ({ store: other }) => {
            assert.notEqual(await other.relaySecret(), s)
          })
        })
      })

      it('store - listAgents answers the registered AMIDs by amid, from after `after`, limited', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listAgents({ limit: 10 }), [])
          for (const a of [CAROL, ALICE, DAVE, BOB]) await store.upsertAgent({ amid: a, seenAt: T0 })
          await store.commit([dm(ALICE, 'id-000001', 'am-zed')], []) // an inbox is not an agent
          assert.deepEqual(await store.listAgents({ limit: 10 }), [ALICE, BOB, CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ limit: 2 }), [ALICE, BOB])
          assert.deepEqual(await store.listAgents({ after: BOB, limit: 2 }), [CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ after: 'am-b', limit: 10 }), [BOB, CAROL, DAVE])
          assert.deepEqual(await store.listAgents({ after: DAVE, limit: 10 }), [])
        })
      })
    })

    describe('handles', () => {
      it('store - a handle is unique case-insensitively, kept as given; a taken one answers its holder', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.handleOf(BOB), undefined)
          assert.equal(await store.resolveHandle('bob'), undefined)
          assert.deepEqual(await store.setHandle(BOB, 'Bob'), { status: 'set' })
          assert.equal(await store.handleOf(BOB), 'Bob')
          for (const h of ['Bob', 'bob', 'BOB', 'bOb']) assert.equal(await store.resolveHandle(h), BOB, h)
          assert.deepEqual(await store.setHandle(ALICE, 'bOB'), { status: 'taken', by: BOB })
          assert.deepEqual(await store.setHandle(ALICE, 'bob'), { status: 'taken', by: BOB })
          assert.equal(await store.handleOf(ALICE), undefined, 'a refused handle is not set')
          assert.deepEqual(await store.setHandle(ALICE, 'alice.1'), { status: 'set' })
          assert.equal(await store.resolveHandle('ALICE.1'), ALICE)
          assert.equal(await store.resolveHandle('alice'), undefined, 'handles match whole')
          assert.equal(await store.handleOf(BOB), 'Bob', 'the holder keeps it')
        })
      })

      it('store - changing a handle frees the old one at once', async () => {
        await withStore(undefined, async ({ store }) => {
          await store.setHandle(BOB, 'Bob')
          assert.deepEqual(await store.setHandle(BOB, 'robert'), { status: 'set', previous: 'Bob' })
          assert.equal(await store.resolveHandle('bob'), undefined)
          assert.equal(await store.resolveHandle('Robert'), BOB)
          assert.deepEqual(await store.setHandle(ALICE, 'BOB'), { status: 'set' })
          assert.equal(await store.resolveHandle('bob'), ALICE)
          assert.equal(await store.handleOf(ALICE), 'BOB')
          // the holder may change the case of its own handle
          assert.deepEqual(await store.setHandle(BOB, 'Robert'), { status: 'set', previous: 'robert' })
          assert.equal(await store.handleOf(BOB), 'Robert')
          assert.equal(await store.resolveHandle('ROBERT'), BOB)
          assert.deepEqual(await store.setHandle(CAROL, 'robert'), { status: 'taken', by: BOB })
        })
      })
    })

    describe('roles', () => {
      it('store - an agent is a worker until given a role; listRoles lists the others by amid', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.roleOf(ALICE), 'worker')
          assert.deepEqual(await store.listRoles(), [])
          await store.setRole(CAROL, 'warden')
          await store.setRole(ALICE, 'master')
          await store.setRole(DAVE, 'worker')
          assert.equal(await store.roleOf(ALICE), 'master')
          assert.equal(await store.roleOf(CAROL), 'warden')
          assert.equal(await store.roleOf(DAVE), 'worker')
          assert.deepEqual(await store.listRoles(), [{ amid: ALICE, role: 'master' }, { amid: CAROL, role: 'warden' }])
          await store.setRole(CAROL, 'master')
          await store.setRole(ALICE, 'worker')
          assert.equal(await store.roleOf(ALICE), 'worker')
          assert.deepEqual(await store.listRoles(), [{ amid: CAROL, role: 'master' }])
        })
      })
    })

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
          const list = async (q: Parameters<Store['listRooms']>[0]): Promise<string[]> => (await store.listRooms(q)).map(r => r.id)
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
          assert.deepEqual(v.result(), { ok: false, rows: 3, seq: 3, reason: 'rows 3-3 are missing at the start and the newest audit.pruned row says rows up to 2 were dropped' }, 'a row removed at the start by anyone else is found')
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

    describe('settings', () => {
      it('store - putSettings merges into the settings, a null removes a key; both answer the settings in force', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.getSettings(), {})
          assert.deepEqual(await store.putSettings({ presence_idle_ms: 60_000, rate_limits: { api_per_minute: 5, api_burst: 2 } }),
            { presence_idle_ms: 60_000, rate_limits: { api_per_minute: 5, api_burst: 2 } })
          assert.deepEqual(await store.putSettings({ task_default_deadline_s: 30, rate_limits: { chat_burst: 9 } }),
            { presence_idle_ms: 60_000, task_default_deadline_s: 30, rate_limits: { chat_burst: 9 } }, 'a key is replaced as a whole')
          assert.deepEqual(await store.putSettings({ presence_idle_ms: null, missing: null, text: 'é 日本 "q"', flag: false, list: [1, 'a'] }),
            { task_default_deadline_s: 30, rate_limits: { chat_burst: 9 }, text: 'é 日本 "q"', flag: false, list: [1, 'a'] })
          assert.deepEqual(await store.getSettings(), { task_default_deadline_s: 30, rate_limits: { chat_burst: 9 }, text: 'é 日本 "q"', flag: false, list: [1, 'a'] })
          assert.deepEqual(await store.putSettings({}), await store.getSettings())
        })
      })
    })
  })
}

export function chatDurabilityCases (withStore: WithStore, reopen: Reopen): void {
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
}
