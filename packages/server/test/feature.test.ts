/**
 * Features: one added from outside the core (a route and a 'message:stored' counter) sees what the
 * core tells, in order, and is stopped with the relay; the event bus keeps listeners apart.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { EventBus, silentLogger, type FeatureFactory, type RelayEvents } from '@agentmesh/server'
import { createIdentity } from '@agentmesh/crypto'
import { rawAgent, startRelay } from '@agentmesh/testing'

type Json = Record<string, any>

/** Counts stored messages and presence changes; serves them at GET /test/stored. */
function counterFeature (log: string[]): FeatureFactory {
  return ({ events }) => {
    const seen: Array<{ id: string, via: string, room?: string, seq: number }> = []
    const offs: Array<() => void> = []
    return {
      name: 'counter',
      routes (app) { app.get('/test/stored', (c) => c.json({ count: seen.length, seen })) },
      start () {
        log.push('start')
        offs.push(events.on('message:stored', (e) => { seen.push({ id: e.env.id, via: e.via, seq: e.seq, ...(e.room === undefined ? {} : { room: e.room }) }) }))
        offs.push(events.on('agent:online', (e) => { log.push(`online ${e.amid.slice(0, 6)}`) }))
      },
      stop () { log.push('stop'); for (const off of offs) off() },
    }
  }
}

describe('features', () => {
  it('feature - a feature added at createRelay serves its route and counts stored messages in order', async (t) => {
    const log: string[] = []
    const relay = await startRelay({}, { features: [counterFeature(log)] })
    let closed = false
    t.after(async () => { if (!closed) await relay.close() })
    const bobId = createIdentity('bob')
    const bob = await rawAgent(relay.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(relay.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const dm1 = alice.envelope(bobId.amid, 'one')
    const dm2 = alice.envelope(bobId.amid, 'two')
    const room = alice.envelope('#global', 'hello room')
    for (const env of [dm1, dm2, room]) alice.send({ op: 'send', env })
    await alice.collect(f => f.op === 'ack', 3)
    // a duplicate is acked again but not stored again: not counted
    alice.send({ op: 'send', env: dm1 })
    const [dup] = await alice.collect(f => f.op === 'ack' && f.duplicate === true, 1)
    assert.equal(dup!.id, dm1.id)
    const body = await (await fetch(relay.url + '/test/stored')).json() as Json
    assert.equal(body.count, 3)
    assert.deepEqual(body.seen, [
      { id: dm1.id, via: 'ws', seq: 1 },
      { id: dm2.id, via: 'ws', seq: 2 },
      { id: room.id, via: 'ws', seq: 1, room: 'global' },
    ])
    assert.deepEqual(log, ['start', `online ${bobId.amid.slice(0, 6)}`, `online ${alice.id.amid.slice(0, 6)}`])
    await relay.close()
    closed = true
    assert.equal(log.at(-1), 'stop')
  })

  it('feature - event bus: listeners run in order, a throwing one is logged and does not stop the next, unsubscribing works', () => {
    const errors: unknown[] = []
    const bus = new EventBus<RelayEvents>({ ...silentLogger, error: (obj) => { errors.push(obj) } })
    const order: string[] = []
    assert.equal(bus.listening('agent:online'), false)
    const offFirst = bus.on('agent:online', (e) => { order.push('first ' + e.amid) })
    bus.on('agent:online', () => { throw new Error('boom') })
    bus.on('agent:online', (e) => { order.push('third ' + e.amid) })
    assert.equal(bus.listening('agent:online'), true)
    bus.emit('agent:online', { amid: 'am-1' })
    offFirst()
    bus.emit('agent:online', { amid: 'am-2' })
    bus.emit('agent:offline', { amid: 'am-3' })
    assert.deepEqual(order, ['first am-1', 'third am-1', 'third am-2'])
    assert.equal(errors.length, 2)
  })

  it('feature - the clock component drives the features: presence turns idle when the given clock passes the idle time', async (t) => {
    const clock = { t: 1_700_000_000_000 }
    // the shortest idle time: the relay looks for idle agents every 250 ms (of real time)
    const relay = await startRelay({ presenceIdleMs: 1000 }, { now: () => clock.t })
    t.after(async () => { await relay.close() })
    const bob = await rawAgent(relay.wsUrl)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(relay.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    // bob shares no room with alice: he watches her (answered with her presence now)
    bob.send({ op: 'watch', agents: [alice.id.amid] })
    const [online] = await bob.collect(f => f.op === 'event' && f.event.amid === alice.id.amid, 1)
    assert.deepEqual([online!.event.status, online!.event.ts], ['online', clock.t])
    clock.t += 1000
    const [idle] = await bob.collect(f => f.op === 'event' && f.event.amid === alice.id.amid && f.event.status === 'idle', 1)
    assert.deepEqual([idle!.event.type, idle!.event.ts], ['presence', clock.t])
  })
})
