/**
 * End-to-end against a relay that lies (docs/protocol.md §17.5, §17.1): it stores and forwards
 * honestly, and lies about everything else. The lying relay here is a real relay over a Store that
 * answers what the test tells it to — a ghost member listed in a private room, a handle pointed at
 * another agent, a membership chain of its own — so the relay code serves the lies as a compromised
 * relay would. Each attack must fail on the clients' side with a code or a warning.
 */
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Relay } from '@agentmesh/server'
import { createIdentity, createSenderKey, senderKeyDistribution, senderKeyEncrypt, signMembership, type Identity } from '@agentmesh/crypto'
import { GROUP_TYPE, SENDER_KEY_TYPE, chat, connect, memoryState, type ClientState, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, type ChatEvent } from '@agentmesh/protocol'
import { memoryStore, type MemberRecord, type RoomFeed, type Store } from '@agentmesh/store'
import { startRelay, waitFor, takeMessages as take } from '@agentmesh/testing'

interface Agent { id: Identity, state: ClientState, warnings: AgentMeshError[], conn?: Connection }

/** What the lying Store says instead of the truth. */
interface Lies {
  /** room → agents listed as members besides the real ones */
  ghosts: Map<string, string[]>
  /** handle (lower case) → the AMID answered for it */
  handles: Map<string, string>
  /** room → the membership statements served instead of the stored ones */
  chains: Map<string, string[]>
}

/** A memory Store that lies where `lies` says (every other call is the real store's). */
function lyingStore (lies: Lies): Store {
  const real = memoryStore()
  return new Proxy(real, {
    get (target, prop, receiver) {
      if (prop === 'listMembers') {
        return async (room: string): Promise<MemberRecord[]> => {
          const list = await target.listMembers(room)
          const extra = (lies.ghosts.get(room) ?? []).map(amid => ({ room, amid, role: 'member' as const, joinedAt: list.at(-1)?.joinedAt ?? 0 }))
          return [...list, ...extra]
        }
      }
      if (prop === 'roomFeed') {
        // it serves the room's log to the ghost too, from the room's start (rooms read by cursor, §6.1)
        return async (room: string, amid: string): Promise<RoomFeed | undefined> =>
          (lies.ghosts.get(room) ?? []).includes(amid) ? { room, cursor: 0, lastSeq: await target.lastRoomSeq(room) } : await target.roomFeed(room, amid)
      }
      if (prop === 'resolveHandle') {
        return async (h: string): Promise<string | undefined> => lies.handles.get(h.toLowerCase()) ?? await target.resolveHandle(h)
      }
      if (prop === 'listMembership') {
        return async (room: string): Promise<string[]> => lies.chains.get(room) ?? await target.listMembership(room)
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

function collect (conn: Connection): ChatEvent[] {
  const got: ChatEvent[] = []
  void (async () => { for await (const e of conn.events()) if ('amid' in e) got.push(e) })()
  return got
}

const API_KEY = 'k'.repeat(40)

describe('malicious relay', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  const agent = (name: string): Agent => ({ id: createIdentity(name), state: memoryState(), warnings: [] })
  const open = async (relay: Relay, a: Agent): Promise<Connection> => {
    const c = await connect({ server: relay.url, identity: a.id, state: a.state, onWarning: (w) => { a.warnings.push(w) } })
    conns.push(c)
    a.conn = c
    return c
  }
  const lying = async (): Promise<{ relay: Relay, lies: Lies }> => {
    const lies: Lies = { ghosts: new Map(), handles: new Map(), chains: new Map() }
    const relay = await startRelay({ apiKey: API_KEY }, { store: lyingStore(lies) })
    relays.push(relay)
    return { relay, lies }
  }
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close().catch(() => {})
  })

  it('malicious relay - a ghost member the relay lists in a private room gets no sender key, cannot read, and is named in a warning', async () => {
    const { relay, lies } = await lying()
    const [a, b, m] = [agent('alice'), agent('bob'), agent('mallory')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cm = await open(relay, m)
    // the relay lists mallory in #secret from its creation on: it delivers the room's messages to her
    lies.ghosts.set('secret', [m.id.amid])
    await chat(ca).createRoom({ id: 'secret', kind: 'private' })
    await chat(ca).invite('secret', b.id.amid)
    await chat(cb).join('secret')
    assert.deepEqual((await chat(ca).members('secret')).map(x => x.amid).sort(), [a.id.amid, b.id.amid, m.id.amid].sort(), 'the relay lists the ghost')

    await chat(ca).say('secret', 'walrus-one')
    await chat(cb).say('secret', 'walrus-two')
    assert.deepEqual((await take(cb, 1)).map(x => [x.text, x.from]), [['walrus-one', a.id.amid]])
    assert.deepEqual((await take(ca, 1)).map(x => [x.text, x.from]), [['walrus-two', b.id.amid]])

    // each sender warned once, naming the ghost, with the code
    for (const who of [a, b]) {
      const ghostWarnings = who.warnings.filter(w => w.code === ErrorCode.MembershipUnsigned)
      assert.equal(ghostWarnings.length, 1, who.warnings.map(w => w.message).join('\n'))
      assert.match(ghostWarnings[0]!.message, new RegExp(`#secret: the relay lists ${m.id.amid} as a member, but no statement signed`))
    }
    // mallory posts anyway (her SDK hands her own key to the members): bob does not read a sender
    // the room's signed chain does not prove, and says so
    const bobReads = take(cb, 1, 20_000)
    // (a malicious client: the SDK itself refuses to post where the chain does not prove it)
    const ghostKey = createSenderKey('secret', m.id.amid)
    await cm.send(b.id.amid, { ...senderKeyDistribution(ghostKey) }, { type: SENDER_KEY_TYPE })
    await cm.send('#secret', { ...senderKeyEncrypt(ghostKey, 'chat', { text: 'ghost-words' }).message }, { type: GROUP_TYPE, encrypt: false })
    await waitFor(() => b.warnings.some(w => w.code === ErrorCode.MembershipUnsigned && w.message.includes(`from ${m.id.amid}`)), 'bob to drop the ghost\'s post')
    await chat(ca).say('secret', 'walrus-three')
    assert.deepEqual((await bobReads).map(x => [x.text, x.from]), [['walrus-three', a.id.amid]], 'the ghost\'s post never reaches bob\'s application')
    b.warnings.splice(0, b.warnings.length, ...b.warnings.filter(w => !w.message.includes('dropped message')))

    // the verified membership shows who is proven and who is not
    const v = await chat(cb).membership('secret')
    assert.equal(v.owner, a.id.amid)
    assert.deepEqual(v.members.map(x => [x.amid, x.added_by]), [[a.id.amid, a.id.amid], [b.id.amid, a.id.amid]])
    assert.deepEqual(v.unsigned, [m.id.amid])

    // mallory got the sealed messages (the relay forwards honestly) but no key: both are dropped with a warning
    const reading = take(cm, 1, 15_000).catch(() => [])
    await waitFor(() => m.warnings.filter(w => w.code === ErrorCode.UnknownSession).length >= 2, 'mallory\'s two undecryptable deliveries', 15_000)
    assert.ok(m.warnings.every(w => !w.message.includes('walrus')))
    const hist = await chat(cm).readHistory('secret')
    assert.deepEqual(hist.messages.filter(x => x.from !== m.id.amid).map(x => [x.type, x.decrypted, x.not_decrypted?.reason]), [['e2ee.group', false, 'no_key'], ['e2ee.group', false, 'no_key'], ['e2ee.group', false, 'no_key']])
    assert.ok(!hist.messages.some(x => JSON.stringify(x).includes('walrus')))
    await cm.close()
    assert.deepEqual(await reading, [], 'mallory read nothing')
  })

  it('malicious relay - neither the operator nor a master gets an agent into a private room: invite and kick need the owner\'s signature (403)', async () => {
    const { relay } = await lying()
    const [a, boss, m] = [agent('alice'), agent('boss'), agent('mallory')]
    const ca = await open(relay, a)
    const cboss = await open(relay, boss)
    await open(relay, m)
    await chat(ca).createRoom({ id: 'vault', kind: 'private' })
    const headers = { 'x-api-key': API_KEY, 'content-type': 'application/json' }
    const roleSet = await fetch(`${relay.url}/api/v1/agents/${boss.id.amid}/role`, { method: 'PUT', headers, body: JSON.stringify({ role: 'master' }) })
    assert.equal(roleSet.status, 200, await roleSet.text())
    // the operator's API key
    const byOperator = await fetch(`${relay.url}/api/v1/rooms/vault/invite`, { method: 'POST', headers, body: JSON.stringify({ agent: m.id.amid }) })
    assert.equal(byOperator.status, 403)
    assert.equal(((await byOperator.json()) as { error: { code: string } }).error.code, ErrorCode.MembershipUnsigned)
    // a master agent, even with a statement it signed itself
    await assert.rejects(chat(cboss).invite('vault', m.id.amid), (e: unknown) => AgentMeshError.is(e, ErrorCode.MembershipUnsigned))
    const genesis = (await (await fetch(`${relay.url}/api/v1/rooms/vault/membership`, { headers })).json() as { statements: unknown[] }).statements[0]
    const forged = signMembership(boss.id, { room: 'vault', op: 'add', agent: m.id.amid, after: genesis as never })
    const withForged = await fetch(`${relay.url}/api/v1/rooms/vault/invite`, { method: 'POST', headers, body: JSON.stringify({ agent: m.id.amid, statement: forged }) })
    assert.equal(withForged.status, 403)
    assert.match(((await withForged.json()) as { error: { message: string } }).error.message, /neither the owner nor an admin/)
    // mallory cannot join; the owner's invitation works
    const cm = m.conn!
    await assert.rejects(chat(cm).join('vault'), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
    await chat(ca).invite('vault', boss.id.amid)
    await chat(cboss).join('vault')
    const kick = await fetch(`${relay.url}/api/v1/rooms/vault/kick`, { method: 'POST', headers, body: JSON.stringify({ agent: boss.id.amid }) })
    assert.equal(kick.status, 403)
    assert.deepEqual((await chat(ca).membership('vault')).members.map(x => x.amid), [a.id.amid, boss.id.amid])
  })

  it('malicious relay - members are told who added whom; a chain the relay swaps stops the send for everyone', async () => {
    const { relay, lies } = await lying()
    const [a, b, c, m] = [agent('alice'), agent('bob'), agent('carol'), agent('mallory')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    await open(relay, m)
    await chat(ca).createRoom({ id: 'den', kind: 'private' })
    await chat(ca).invite('den', b.id.amid)
    await chat(cb).join('den')
    await chat(cb).say('den', 'first') // bob verifies (and pins) the chain
    await take(ca, 1)
    const events = collect(cb)
    await chat(ca).invite('den', c.id.amid)
    await chat(cc).join('den')
    await chat(cb).say('den', 'second')
    assert.deepEqual(events.filter(e => e.change === 'added').map(e => [e.type, e.room, e.amid, e.by]), [['member', '#den', c.id.amid, a.id.amid]])

    // the relay now serves a chain of its own: mallory's genesis and mallory adding herself
    const g = signMembership(m.id, { room: 'den', op: 'create', agent: m.id.amid })
    lies.chains.set('den', [JSON.stringify(g), JSON.stringify(signMembership(m.id, { room: 'den', op: 'add', agent: b.id.amid, after: g }))])
    lies.ghosts.set('den', [m.id.amid])
    await assert.rejects(chat(cb).say('den', 'third'), (e: unknown) => AgentMeshError.is(e, ErrorCode.MembershipUnsigned) && /genesis is not the one this agent pinned/.test(e.message))
  })

  it('malicious relay - a handle the relay re-points to another agent makes the next DM fail (AM_ERR_HANDLE_CHANGED) instead of reaching it', async () => {
    const { relay, lies } = await lying()
    const [a, b, m] = [agent('alice'), agent('bob'), agent('mallory')]
    const cb = await open(relay, b)
    await open(relay, m)
    await chat(cb).setHandle('bob')
    const ca = await open(relay, a)
    await ca.send('@bob', { text: 'hello bob' })
    assert.deepEqual((await take(cb, 1)).map(x => [x.text, x.from]), [['hello bob', a.id.amid]])
    assert.deepEqual(ca.handlePins().map(p => [p.handle, p.amid]), [['bob', b.id.amid]])
    await ca.close()

    // the relay now answers mallory for @bob; alice's next process (same state) refuses
    lies.handles.set('bob', m.id.amid)
    const ca2 = await open(relay, a)
    await assert.rejects(ca2.send('@bob', { text: 'for bob only' }), (e: unknown) => {
      assert.ok(AgentMeshError.is(e, ErrorCode.HandleChanged))
      assert.ok(e.message.includes(m.id.amid) && e.message.includes(b.id.amid), e.message)
      assert.match(e.message, /agentmesh handle accept @bob/)
      return true
    })
    assert.equal(ca2.pendingSends, 0, 'nothing was queued')
    await assert.rejects(chat(ca2).invite('nowhere', '@bob'))
    // an AMID is not affected
    await ca2.send(b.id.amid, { text: 'by amid' })
    assert.deepEqual((await take(cb, 1)).map(x => x.text), ['by amid'])
    // the owner accepts the new holder knowingly: the pin moves
    const pin = await ca2.acceptHandle('@bob')
    assert.deepEqual([pin.handle, pin.amid, pin.previous], ['bob', m.id.amid, [b.id.amid]])
    assert.equal(await ca2.resolveHandle('@bob'), m.id.amid)
  })

  it('malicious relay - an admin the owner named adds members; a member\'s leave is signed; every change is in the chain members verify', async () => {
    const { relay } = await lying()
    const [a, b, c, d] = [agent('alice'), agent('bob'), agent('carol'), agent('dave')]
    const ca = await open(relay, a)
    const cb = await open(relay, b)
    const cc = await open(relay, c)
    await open(relay, d)
    await chat(ca).createRoom({ id: 'club', kind: 'private' })
    await chat(ca).invite('club', b.id.amid)
    await chat(cb).join('club')
    // bob is no admin yet: his add is refused before it leaves (the relay would refuse it too)
    await assert.rejects(chat(cb).invite('club', c.id.amid), (e: unknown) => AgentMeshError.is(e, ErrorCode.MembershipUnsigned) && /neither the owner nor an admin/.test(e.message))
    const named = await chat(ca).setAdmin('club', b.id.amid)
    assert.deepEqual(named.admins, [b.id.amid])
    await chat(cb).invite('club', c.id.amid)
    await chat(cc).join('club')
    await chat(cc).say('club', 'hi all')
    assert.deepEqual((await take(ca, 1)).map(x => x.text), ['hi all'])
    assert.deepEqual((await take(cb, 1)).map(x => x.text), ['hi all'])
    await chat(cc).leave('club')
    const v = await chat(ca).membership('club')
    assert.deepEqual(v.members.map(x => [x.amid, x.added_by]), [[a.id.amid, a.id.amid], [b.id.amid, a.id.amid]])
    assert.deepEqual(v.unsigned, [])
    const ops = ((await (await fetch(`${relay.url}/api/v1/rooms/club/membership`, { headers: { 'x-api-key': API_KEY } })).json()) as { statements: Array<{ op: string, by: string }> }).statements
    assert.deepEqual(ops.map(x => [x.op, x.by]), [['create', a.id.amid], ['add', a.id.amid], ['admin', a.id.amid], ['add', b.id.amid], ['leave', c.id.amid]])
    // carol left: she cannot rejoin on the old invitation
    await assert.rejects(chat(cc).join('club'), (e: unknown) => AgentMeshError.is(e, ErrorCode.UnknownRoom))
  })
})
