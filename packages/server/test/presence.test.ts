/**
 * Presence and REST calls (docs/protocol.md §17.4), in process over a memory store with the chat
 * layer's clock in the test's hand: an agent asking who is online is active right now, and an
 * agent that only made a REST call drops out once the quiet time has passed.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createIdentity, signRequest, type Identity } from '@agentmesh/crypto'
import { silentLogger } from '@agentmesh/server'
import { httpApp } from '@agentmesh/server/internal'
import { memoryStore, type AppendItem, type AuditInput } from '@agentmesh/store'
import { readJson } from '../src/api-v1.ts'
import { authenticator } from '../src/auth.ts'
import { ChatService, DEFAULT_CHAT_LIMITS, defaultChatSettings } from '../src/chat.ts'
import { TaskService } from '../src/tasks.ts'

type Json = Record<string, any>

async function setup (agents: Identity[]): Promise<{ chat: ChatService, clock: { t: number }, get: (who: Identity, path: string) => Promise<Json> }> {
  const store = memoryStore()
  for (const a of agents) await store.upsertAgent({ amid: a.amid, seenAt: Date.now() })
  const relayId = await store.relayId()
  const clock = { t: 1_800_000_000_000 }
  const outlet = { post: async (item: AppendItem, audit?: AuditInput[]) => (await store.commit([item], [], audit ?? []))[0]!, event: () => {}, online: () => [] }
  const chat = await ChatService.open(store, { limits: { ...DEFAULT_CHAT_LIMITS }, settings: defaultChatSettings(), log: silentLogger, outlet, now: () => clock.t })
  const tasks = new TaskService(chat, store, silentLogger)
  const app = httpApp({
    log: silentLogger,
    store,
    healthy: () => true,
    info: async () => ({}),
    api: (registry) => ({ store, chat, tasks, auth: authenticator({ store, relay: chat.relay, relayId, signed: registry.signed, apiKey: undefined, readBody: readJson }) }),
  })
  const get = async (who: Identity, path: string): Promise<Json> => {
    const res = await app.request(path, { method: 'GET', headers: signRequest(who, 'GET', path, '') })
    const body = await res.json() as Json
    assert.equal(res.status, 200, JSON.stringify(body))
    return body
  }
  return { chat, clock, get }
}

const rows = (body: Json): Array<[string, string, number | undefined]> => (body.agents as Json[]).map(a => [a.amid, a.status, a.last_active_at])

describe('presence', () => {
  it('presence - the agent asking who is online is online itself, active now; other agents only while they are', async () => {
    const [alice, bob] = [createIdentity('alice'), createIdentity('bob')]
    const { chat, clock, get } = await setup([alice, bob])
    const idle = defaultChatSettings().presenceIdleMs
    const t0 = clock.t

    // alice has no WebSocket connection: her call is what she is doing right now
    assert.deepEqual(rows(await get(alice, '/api/v1/presence')), [[alice.amid, 'online', t0]])

    // bob asks a little later: alice's call was within the quiet time, so both are online
    clock.t = t0 + idle - 1
    assert.deepEqual(rows(await get(bob, '/api/v1/presence')).sort(), [[alice.amid, 'online', t0], [bob.amid, 'online', t0 + idle - 1]].sort())

    // once the quiet time has passed since alice's last call she is no longer listed (not online forever)
    clock.t = t0 + idle
    assert.deepEqual(rows(await get(bob, '/api/v1/presence')), [[bob.amid, 'online', t0 + idle]])
    assert.equal(chat.presenceOf(alice.amid), 'offline')
    assert.equal(chat.lastActive(alice.amid), undefined)
  })

  it('presence - a connected agent\'s REST call is activity: its last_active_at moves; it goes offline when its connection closes', async () => {
    const [alice, bob] = [createIdentity('alice'), createIdentity('bob')]
    const { chat, clock, get } = await setup([alice, bob])
    const t0 = clock.t
    chat.connected(alice.amid)
    clock.t = t0 + 1000
    assert.deepEqual(rows(await get(alice, '/api/v1/presence')), [[alice.amid, 'online', t0 + 1000]])
    chat.disconnected(alice.amid)
    // bob asks: alice's connection closed, and her REST call came while she was connected
    assert.deepEqual(rows(await get(bob, '/api/v1/presence')), [[bob.amid, 'online', t0 + 1000]])
    assert.equal(chat.presenceOf(alice.amid), 'offline')
  })
})
