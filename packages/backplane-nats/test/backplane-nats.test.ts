/**
 * The NATS backplane against the real NATS on 127.0.0.1:4222: the shared Backplane suite (each case
 * on its own subject prefix, so runs do not collide), a NATS that does not answer at start, and
 * messages on the subjects that are not backplane messages.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import backplaneSuite from '@agentmesh/compliance-tests/backplane'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { BackplaneMessage } from '@agentmesh/server'
import { natsBackplane, asBackplaneMessage } from '@agentmesh/backplane-nats'

const NATS_URL = process.env.AGENTMESH_TEST_NATS ?? 'nats://127.0.0.1:4222'
const uniquePrefix = (): string => `agentmesh-test.${randomBytes(6).toString('hex')}`

backplaneSuite({
  name: 'nats',
  setup: async () => {
    const prefix = uniquePrefix()
    const a = natsBackplane({ servers: NATS_URL, prefix })
    const b = natsBackplane({ servers: NATS_URL, prefix })
    await a.start()
    await b.start()
    return { a, b }
  },
  teardown: async ({ a, b }) => { await a.stop(); await b.stop() },
})

describe('backplane-nats', () => {
  it('backplane-nats - a NATS that does not answer at start: AM_ERR_BACKPLANE_UNAVAILABLE naming the server, on one line', async () => {
    // a port nothing listens on (the socket is refused at once)
    const bp = natsBackplane({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 2000 })
    await assert.rejects(bp.start(), (err: unknown) => {
      assert.ok(AgentMeshError.is(err, ErrorCode.BackplaneUnavailable))
      assert.match((err as Error).message, /NATS backplane at nats:\/\/127\.0\.0\.1:1 did not answer/)
      assert.doesNotMatch((err as Error).message, /\n/)
      return true
    })
    await assert.rejects(bp.publish({ type: 'presence', origin: 'n', amid: 'am-x', status: 'online' }), (err: unknown) => AgentMeshError.is(err, ErrorCode.ShuttingDown))
  })

  it('backplane-nats - credentials in a server address are not repeated in the error', async () => {
    const bp = natsBackplane({ servers: 'nats://user:secret@127.0.0.1:1,nats://other:secret2@127.0.0.1:2', connectTimeoutMs: 2000 })
    await assert.rejects(bp.start(), (err: unknown) => {
      assert.doesNotMatch((err as Error).message, /secret/)
      assert.match((err as Error).message, /nats:\/\/127\.0\.0\.1:1, nats:\/\/127\.0\.0\.1:2/)
      return true
    })
  })

  it('backplane-nats - a bad subject prefix and an empty server list are refused before any I/O', () => {
    assert.throws(() => natsBackplane({ servers: NATS_URL, prefix: 'a.>' }), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig))
    assert.throws(() => natsBackplane({ servers: ' , ' }), (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig))
  })

  it('backplane-nats - what is on the subjects but not a backplane message is dropped and counted; what follows still arrives', async (t) => {
    const prefix = uniquePrefix()
    const errors: unknown[] = []
    const bp = natsBackplane({ servers: NATS_URL, prefix, onError: (err) => { errors.push(err) } })
    await bp.start()
    const raw = await connect({ servers: NATS_URL })
    t.after(async () => { await bp.stop(); await raw.close() })
    const got: BackplaneMessage[] = []
    let wake: (() => void) | undefined
    bp.subscribe((m) => { got.push(m); wake?.() })
    raw.publish(`${prefix}.inbox`, 'not json')
    raw.publish(`${prefix}.inbox`, JSON.stringify({ type: 'inbox:stored', origin: 'x', inboxes: [{ recipient: 'am-bob', seq: -1 }] }))
    raw.publish(`${prefix}.event`, JSON.stringify({ type: 'nope', origin: 'x' }))
    await raw.flush()
    const good: BackplaneMessage = { type: 'cache:invalidate', origin: 'x', kind: 'room', key: 'ops' }
    await bp.publish(good)
    if (got.length === 0) await new Promise<void>((resolve) => { wake = resolve })
    assert.deepEqual(got, [good])
    assert.equal(bp.counters.malformed, 3)
    assert.equal(errors.length, 3)
    assert.ok(errors.every(e => AgentMeshError.is(e, ErrorCode.InvalidFrame)))
    // the error names the size, never the contents
    assert.ok(errors.every(e => !(e as Error).message.includes('not json')))
  })

  it('backplane-nats - asBackplaneMessage checks every field of every type', () => {
    const ok: BackplaneMessage[] = [
      { type: 'inbox:stored', origin: 'a', inboxes: [{ recipient: 'am-b', seq: 1 }] },
      { type: 'room:stored', origin: 'a', rooms: [{ room: 'ops', seq: 0 }] },
      { type: 'presence', origin: 'a', amid: 'am-b', status: 'offline' },
      { type: 'cache:invalidate', origin: 'a', kind: 'agent', key: 'am-b' },
      { type: 'event', origin: 'a', amids: ['am-b'], frame: '{}' },
      { type: 'node:heartbeat', origin: 'a' },
      { type: 'node:leaving', origin: 'a' },
      { type: 'rate:spent', origin: 'a', spent: { api: [['am-b', 2]], chat: [] } },
    ]
    for (const m of ok) assert.deepEqual(asBackplaneMessage(m), m)
    const bad: unknown[] = [
      null, 'x', { type: 'inbox:stored', inboxes: [] },
      { type: 'inbox:stored', origin: 'a', inboxes: [{ recipient: 1, seq: 1 }] },
      { type: 'room:stored', origin: 'a', rooms: [{ room: 'ops', seq: 1.5 }] },
      { type: 'presence', origin: 'a', amid: 'am-b', status: 'away' },
      { type: 'cache:invalidate', origin: 'a', kind: 'everything', key: 'k' },
      { type: 'event', origin: 'a', amids: [1], frame: '{}' },
      { type: 'node:heartbeat' }, { type: 'node:heartbeat', origin: 7 },
      { type: 'node:leaving' }, { type: 'node:leaving', origin: null },
      { type: 'rate:spent', origin: 'a' }, { type: 'rate:spent', origin: 'a', spent: [] },
      { type: 'rate:spent', origin: 'a', spent: { api: [['am-b', -1]] } }, { type: 'rate:spent', origin: 'a', spent: { api: [['am-b']] } },
      { type: 'rate:spent', origin: 'a', spent: { api: [[1, 1]] } }, { type: 'rate:spent', origin: 'a', spent: { api: 'x' } },
    ]
    for (const b of bad) assert.equal(asBackplaneMessage(b), undefined, JSON.stringify(b))
  })

  it('backplane-nats - a gap notice from another node calls the onGap handlers; its own does not, and no subscriber sees it', async (t) => {
    const prefix = uniquePrefix()
    const bp = natsBackplane({ servers: NATS_URL, prefix })
    await bp.start()
    const raw = await connect({ servers: NATS_URL })
    t.after(async () => { await bp.stop(); await raw.close() })
    let gaps = 0
    let wake: (() => void) | undefined
    const off = bp.onGap(() => { gaps++; wake?.() })
    const got: BackplaneMessage[] = []
    bp.subscribe((m) => { got.push(m); wake?.() })
    raw.publish(`${prefix}.gap`, 'another-node')
    await raw.flush()
    if (gaps === 0) await new Promise<void>((resolve) => { wake = resolve })
    assert.equal(gaps, 1)
    assert.equal(bp.counters.gapsHeard, 1)
    off()
    raw.publish(`${prefix}.gap`, 'another-node')
    const marker: BackplaneMessage = { type: 'presence', origin: 'x', amid: 'am-z', status: 'online' }
    await bp.publish(marker)
    if (got.length === 0) await new Promise<void>((resolve) => { wake = resolve })
    assert.deepEqual(got, [marker], 'a gap notice is not a backplane message')
    assert.equal(gaps, 1, 'a removed handler is not called')
  })
})
