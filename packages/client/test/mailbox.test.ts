import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRelay, silentLogger, type Relay } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { connect, mailbox, memoryState, MAX_KEPT_ACKNOWLEDGED, type Connection, type Message } from '@agentmesh/client'

/** The sealed mailbox the MCP server hands messages out of (docs/protocol.md §23.3). */

const msg = (n: number, from = 'amPeer'): Message => ({
  id: `id-${String(n).padStart(6, '0')}`, from, to: 'amMe', type: 'chat', ts: 1_700_000_000_000 + n, seq: n,
  payload: { text: `m${n}` }, text: `m${n}`, encrypted: true, envelope: {} as Message['envelope'],
})

describe('mailbox', () => {
  const relays: Relay[] = []
  const conns: Connection[] = []
  after(async () => {
    for (const c of conns) await c.close()
    for (const r of relays) await r.close()
  })
  const open = async (id = createIdentity('me'), state = memoryState()): Promise<Connection> => {
    if (relays.length === 0) relays.push(await createRelay({ port: 0, logger: silentLogger }))
    const c = await connect({ server: relays[0]!.url, identity: id, state, deliver: false })
    conns.push(c)
    return c
  }

  it('mailbox - keeps each message once with a rising cursor, answers after a cursor, counts what is pending', async () => {
    const box = mailbox(await open())
    assert.deepEqual([box.keep(msg(1))?.cursor, box.keep(msg(2))?.cursor, box.keep(msg(1)), box.keep(msg(3))?.cursor], [1, 2, undefined, 3])
    assert.deepEqual(box.after(0, 10).map(k => k.text), ['m1', 'm2', 'm3'])
    assert.deepEqual(box.after(1, 1).map(k => k.cursor), [2])
    assert.equal(box.pending(), 3)
    box.ack(2)
    assert.deepEqual(box.position(), { last: 3, acked: 2 })
    assert.equal(box.pending(), 1)
    box.ack(1) // never goes back
    box.ack(99) // never past the newest
    assert.deepEqual(box.position(), { last: 3, acked: 3 })
    assert.deepEqual(box.list({ limit: 2 }).map(k => k.cursor), [2, 3])
    assert.deepEqual(box.list({ limit: 10, peer: 'amOther' }), [])
  })

  it('mailbox - survives a new connection on the same state; acknowledged messages beyond the kept number are deleted', async () => {
    const id = createIdentity('me2')
    const state = memoryState()
    const first = await open(id, state)
    const box = mailbox(first)
    const n = MAX_KEPT_ACKNOWLEDGED + 5
    for (let i = 1; i <= n; i++) box.keep(msg(i))
    await first.close()
    const again = mailbox(await open(id, state))
    assert.deepEqual(again.position(), { last: n, acked: 0 })
    again.ack(n - 2)
    assert.equal(again.pending(), 2)
    const all = again.list({ limit: n })
    assert.equal(all.length, MAX_KEPT_ACKNOWLEDGED + 2)
    assert.equal(all[0]!.cursor, n - 2 - MAX_KEPT_ACKNOWLEDGED + 1)
    // a deleted message's id may be kept again (a redelivery long after is a new message for the box)
    assert.equal(again.keep(msg(1))?.cursor, n + 1)
  })
})
