/**
 * The in-process backplane runs the shared Backplane suite; two relays over one Store and one
 * backplane deliver to each other's agents.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import backplaneSuite from '@agentmesh/compliance-tests/backplane'
import { inProcessBackplane } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { createIdentity } from '@agentmesh/crypto'
import { rawAgent, startRelay } from '@agentmesh/testing'

backplaneSuite({
  name: 'in-process',
  setup: async () => {
    const bp = inProcessBackplane()
    await bp.start()
    return { a: bp, b: bp }
  },
  teardown: async ({ a }) => { await a.stop() },
})

describe('backplane - relays sharing a store', () => {
  it('backplane - a message sent on one relay is delivered to the receiver connected to the other', async (t) => {
    const store = memoryStore()
    const backplane = inProcessBackplane()
    // the store and the backplane are shared: neither relay closes them
    const shared = { ...store, close: async () => {} }
    const one = await startRelay({}, { store: shared, backplane })
    const two = await startRelay({}, { store: shared, backplane })
    t.after(async () => { await one.close(); await two.close(); await backplane.stop(); await store.close() })
    const bobId = createIdentity('bob')
    const bob = await rawAgent(two.wsUrl, bobId)
    t.after(() => { bob.close() })
    await bob.auth()
    const alice = await rawAgent(one.wsUrl)
    t.after(() => { alice.close() })
    await alice.auth()
    const env = alice.envelope(bobId.amid, 'across nodes')
    alice.send({ op: 'send', env })
    const [ack] = await alice.collect(f => f.op === 'ack', 1)
    assert.deepEqual(ack, { op: 'ack', id: env.id })
    const [d] = await bob.collect(f => f.op === 'deliver', 1)
    assert.deepEqual(d, { op: 'deliver', seq: 1, env })
  })
})
