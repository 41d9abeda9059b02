/**
 * The relay core without sockets or features: a stub Peer, a memory Store, a stub RoomResolver and
 * an event bus are all it is given (STYLE "drive each layer without sockets").
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode, PROTOCOL } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope } from '@agentmesh/crypto'
import { memoryStore } from '@agentmesh/store'
import { EventBus, relayOptions, silentLogger, type RelayEvents, type RoomResolver } from '@agentmesh/server'
import { RelayCore } from '@agentmesh/server/internal'
import { waitFor } from '@agentmesh/testing'

type Json = Record<string, any>

function peer (): { frames: Json[], closed: Array<[number, string]>, peer: { send: (t: string) => void, close: (c: number, r: string) => void } } {
  const frames: Json[] = []
  const closed: Array<[number, string]> = []
  return { frames, closed, peer: { send: (t) => { frames.push(JSON.parse(t) as Json) }, close: (c, r) => { closed.push([c, r]) } } }
}

describe('core', () => {
  it('core - asks its room resolver about #rooms, tells stored messages and presence as events, and closes with 1001 on shutdown', async () => {
    const store = memoryStore()
    const relayId = await store.relayId()
    const asked: string[] = []
    const rooms: RoomResolver = {
      admitRoomMessage: async (sender, env) => {
        asked.push(`${sender.slice(0, 6)} ${env.to}`)
        return env.to === '#open' ? { room: 'open', fanout: [sender] } : new AgentMeshError(ErrorCode.NotMember, 'stub: join first')
      },
      signal: async () => undefined,
    }
    const events = new EventBus<RelayEvents>()
    const told: string[] = []
    events.on('agent:online', (e) => { told.push('online ' + e.amid.slice(0, 6)) })
    events.on('agent:offline', (e) => { told.push('offline ' + e.amid.slice(0, 6)) })
    events.on('message:stored', (e) => { told.push(`stored ${e.env.to} seq ${e.seq}${e.room === undefined ? '' : ' room ' + e.room} ${e.via}`) })
    const core = new RelayCore({ relayId, relayAmid: 'am-relay', options: relayOptions({ verifySignatures: false }), node: 'node-1' }, { store, logger: silentLogger, events, rooms })
    const a = peer()
    const id = createIdentity('a')
    const handlers = core.open(a.peer, { address: '127.0.0.1', port: 1 })
    const challenge = a.frames[0]!
    assert.equal(challenge.op, 'challenge')
    handlers.message(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce: challenge.nonce, sig: signChallenge(id, id.amid, challenge.nonce, relayId) }))
    await waitFor(() => a.frames.some(f => f.op === 'welcome'), 'the welcome')
    assert.equal(a.frames[1]!.relay_amid, 'am-relay')
    const refused = signEnvelope(id, { id: 'msg-0001', to: '#closed', type: 'chat', payload: { text: 'no' } })
    const dm = signEnvelope(id, { id: 'msg-0002', to: id.amid, type: 'chat', payload: { text: 'to myself' } })
    const room = signEnvelope(id, { id: 'msg-0003', to: '#open', type: 'chat', payload: { text: 'in the room' } })
    for (const env of [refused, dm, room]) handlers.message(JSON.stringify({ op: 'send', env }))
    await waitFor(() => a.frames.filter(f => f.op === 'ack').length === 2, 'two acks')
    assert.deepEqual(asked, [`${id.amid.slice(0, 6)} #closed`, `${id.amid.slice(0, 6)} #open`])
    const error = a.frames.find(f => f.op === 'error')!
    assert.deepEqual([error.code, error.message, error.id], [ErrorCode.NotMember, 'stub: join first', 'msg-0001'])
    assert.deepEqual(a.frames.filter(f => f.op === 'ack').map(f => f.id), ['msg-0002', 'msg-0003'])
    await waitFor(() => a.frames.filter(f => f.op === 'deliver').length === 2, 'both deliveries')
    assert.deepEqual(a.frames.filter(f => f.op === 'deliver').map(f => [f.seq, f.env.id]), [[1, 'msg-0002'], [2, 'msg-0003']])
    await core.shutdown()
    assert.deepEqual(a.closed, [[1001, ErrorCode.ShuttingDown]])
    assert.deepEqual(told, [`online ${id.amid.slice(0, 6)}`, `stored ${id.amid} seq 1 ws`, 'stored #open seq 1 room open ws', `offline ${id.amid.slice(0, 6)}`])
    await store.close()
  })
})
