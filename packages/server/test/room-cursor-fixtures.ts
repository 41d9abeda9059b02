/**
 * What the room-cursor tests share (room-cursor.test.ts, room-cursor-global.test.ts): a relay per
 * test, raw agents that declare "room-cursor", signed REST calls, the deliveries and errors an agent
 * received, and a batch of acknowledged posts to a room.
 */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { encodeSend } from '@agentmesh/protocol'
import { createIdentity, signRequest, type Identity } from '@agentmesh/crypto'
import type { Relay, RelayInit } from '@agentmesh/server'
import { rawAgent, startRelay, type RawAgent } from '@agentmesh/testing'

export type Frame = Record<string, any>
export const FEATURES = { features: ['room-cursor'] }

export async function start (t: TestContext, init: RelayInit = {}): Promise<Relay> {
  const relay = await startRelay({ memory: true, ...init })
  t.after(async () => { await relay.close() })
  return relay
}

export async function agent (t: TestContext, relay: { wsUrl: string }, id: Identity = createIdentity(), extra: Record<string, unknown> = FEATURES): Promise<RawAgent & { welcome: Frame }> {
  const a = await rawAgent(relay.wsUrl, id)
  t.after(() => { a.close() })
  const welcome = await a.auth(extra)
  assert.equal(welcome.op, 'welcome', JSON.stringify(welcome))
  return Object.assign(a, { welcome })
}

export async function rest (relay: { url: string }, who: Identity, method: string, path: string, body?: unknown): Promise<Frame> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const res = await fetch(relay.url + path, { method, headers: { 'content-type': 'application/json', ...signRequest(who, method, path, text) }, ...(text === '' ? {} : { body: text }) })
  const json = await res.json() as Frame
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

export const roomDeliveries = (a: RawAgent, room = 'ops'): Frame[] => a.frames.filter(f => f.op === 'deliver' && f.room === room)
export const inboxDeliveries = (a: RawAgent): Frame[] => a.frames.filter(f => f.op === 'deliver' && f.room === undefined)
export const errorsOf = (a: RawAgent): Frame[] => a.frames.filter(f => f.op === 'error')

/** Sends `n` chat messages to #room and waits for their acks; answers the envelopes. */
export async function post (from: RawAgent, n: number, room = 'ops', tag = 'm'): Promise<Array<ReturnType<RawAgent['envelope']>>> {
  const envs = Array.from({ length: n }, (_, i) => from.envelope('#' + room, `${tag}${i + 1}`))
  const before = from.frames.filter(f => f.op === 'ack').length
  from.sendBatch(envs.map(e => encodeSend(JSON.stringify(e))))
  await from.collect(f => f.op === 'ack', before + n)
  return envs
}
