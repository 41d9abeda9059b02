/**
 * Who hears a presence change (docs/protocol.md §17.4): the agents sharing a room other than the
 * global one with the subject, and those watching it; gathered per interval, the latest status of
 * each agent once. The chat layer over a memory store, with an outlet that counts the frames it is
 * asked to write; the interval is flushed by hand (no timers in the assertions).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createIdentity } from '@agentmesh/crypto'
import { silentLogger } from '@agentmesh/server'
import { memoryStore, type AppendItem, type AuditInput } from '@agentmesh/store'
import { ChatService, DEFAULT_CHAT_LIMITS, defaultChatSettings } from '../src/chat.ts'
import type { Principal } from '../src/chat/types.ts'

type Json = Record<string, any>

async function setup (n: number): Promise<{ chat: ChatService, amids: string[], frames: Array<{ to: string, event: Json }> }> {
  const store = memoryStore()
  const amids = Array.from({ length: n }, (_, i) => createIdentity(`agent${i}`).amid)
  for (const a of amids) await store.upsertAgent({ amid: a, seenAt: Date.now() })
  const frames: Array<{ to: string, event: Json }> = []
  const outlet = {
    post: async (item: AppendItem, audit?: AuditInput[]) => (await store.commit([item], [], audit ?? []))[0]!,
    event: (to: Iterable<string>, frame: string) => { for (const a of to) frames.push({ to: a, event: (JSON.parse(frame) as Json).event as Json }) },
    online: () => [],
  }
  // an interval longer than any test: nothing is told until the test flushes
  const chat = await ChatService.open(store, { limits: { ...DEFAULT_CHAT_LIMITS }, settings: defaultChatSettings(), log: silentLogger, outlet, presenceIntervalMs: 3_600_000 })
  for (const a of amids) chat.noteAgent(a)
  return { chat, amids, frames }
}

const agent = (amid: string): Principal => ({ kind: 'agent', amid, role: 'worker' })
const presence = (frames: Array<{ event: Json }>): number => frames.filter(f => f.event.type === 'presence').length

describe('presence fanout', () => {
  it('presence - 60 agents logging in with no shared room send no presence frames; in rooms of 6, each change reaches its 5 roommates', async () => {
    const n = 60
    // no shared room: nobody is told (the global room's presence is a request: GET /api/v1/presence)
    {
      const { chat, amids, frames } = await setup(n)
      for (const a of amids) chat.connected(a)
      await chat.flushPresence()
      assert.equal(presence(frames), 0)
      assert.equal(chat.onlineAgents().length, n)
    }
    // ten rooms of six: 60 changes × 5 roommates, not 60 × 59
    {
      const { chat, amids, frames } = await setup(n)
      for (let r = 0; r < 10; r++) {
        const members = amids.slice(r * 6, r * 6 + 6)
        await chat.createRoom(agent(members[0]!), () => ({ id: `room-${r}`, kind: 'public' }))
        for (const m of members.slice(1)) await chat.join(agent(m), `room-${r}`)
      }
      frames.length = 0
      for (const a of amids) chat.connected(a)
      await chat.flushPresence()
      assert.equal(presence(frames), n * 5)
      assert.equal(chat.presenceEvents, n * 5)
      // each agent heard exactly its roommates
      const heard = frames.filter(f => f.to === amids[0]).map(f => f.event.amid).sort()
      assert.deepEqual(heard, amids.slice(1, 6).sort())
      assert.ok(frames.every(f => f.event.status === 'online'))
    }
  })

  it('presence - changes within one interval are told once, with the latest status; a watcher hears an agent it shares no room with', async () => {
    const { chat, amids, frames } = await setup(4)
    const [a, b, c, d] = amids as [string, string, string, string]
    // a public room of two (a private one needs a signed membership chain: the SDK's part)
    await chat.createRoom(agent(a), () => ({ id: 'pair', kind: 'public' }))
    await chat.join(agent(b), 'pair')
    for (const x of amids) chat.connected(x)
    await chat.flushPresence()
    frames.length = 0
    // c watches d: answered with d's presence now
    assert.equal(chat.watch(c, [d]), undefined)
    await waitForFrames(frames, 1)
    assert.deepEqual(frames.map(f => [f.to, f.event.amid, f.event.status]), [[c, d, 'online']])
    frames.length = 0
    // b goes offline and d comes back several times in one interval: one frame each, latest status
    chat.disconnected(b)
    chat.disconnected(d)
    chat.connected(d)
    chat.disconnected(d)
    await chat.flushPresence()
    assert.deepEqual(frames.map(f => [f.to, f.event.amid, f.event.status]).sort(), [[a, b, 'offline'], [c, d, 'offline']].sort())
    // a watcher that goes offline stops watching
    frames.length = 0
    chat.disconnected(c)
    chat.connected(c)
    chat.connected(d)
    await chat.flushPresence()
    assert.deepEqual(frames.map(f => [f.to, f.event.amid]), [])
  })
})

async function waitForFrames (frames: unknown[], count: number): Promise<void> {
  for (let i = 0; i < 100 && frames.length < count; i++) await new Promise(resolve => setImmediate(resolve))
}
