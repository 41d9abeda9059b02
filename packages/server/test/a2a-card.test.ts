/**
 * The A2A bridge's agent card (docs/protocol.md §24.2), built from a registry profile without a
 * relay: capabilities and declared message schemas (read defensively, either shape) become skills,
 * the card says end-to-end encryption ends at the bridge, and message parts become the task's text.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Part } from '@a2a-js/sdk'
import { A2A_STATE, agentCardJson, messageText } from '../src/a2a/bridge.ts'
import type { AgentProfile } from '@agentmesh/store'
import { TASK_STATES } from '@agentmesh/protocol'

type Json = Record<string, any>
const AMID = 'am' + 'x'.repeat(44)
const base = { amid: AMID, url: `http://relay/a2a/${AMID}`, origin: 'http://relay', version: '0.2.0' }
const profile = (extra: Record<string, unknown> = {}): AgentProfile => ({
  amid: AMID, displayName: 'Weather bot', capabilities: [{ id: 'forecast', name: 'Forecast', description: 'a city\'s forecast', tags: ['weather'] }], tier: 'verified', updatedAt: 0, version: '1.2.3', ...extra,
} as AgentProfile)

describe('a2a card', () => {
  it('a2a card - the profile\'s name, version and capabilities; the a2a skill; one JSON-RPC 1.0 interface; E2EE ends at the bridge', () => {
    const c = agentCardJson({ ...base, handle: 'weather', profile: profile() }) as Json
    assert.equal(c.name, 'Weather bot')
    assert.equal(c.version, '1.2.3')
    assert.match(c.description, new RegExp(`^AgentMesh agent @weather \\(${AMID}\\)`))
    assert.match(c.description, /End-to-end encryption ends at this bridge/)
    assert.deepEqual(c.supportedInterfaces, [{ url: base.url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }])
    assert.deepEqual(c.provider, { organization: 'AgentMesh relay', url: 'http://relay' })
    assert.deepEqual(c.skills.map((s: Json) => s.id), ['a2a', 'forecast'])
    assert.deepEqual(c.skills[1].tags, ['weather'])
    const ext = c.capabilities.extensions[0]
    assert.equal(ext.uri, 'urn:agentmesh:a2a:bridge:v1')
    assert.deepEqual(ext.params, { amid: AMID, e2ee: false, handle: 'weather', tier: 'verified' })
    assert.equal(c.capabilities.streaming, true)
  })

  it('a2a card - without a profile: the registered name, else @handle, else the AMID', () => {
    assert.equal((agentCardJson({ ...base, name: 'bob', handle: 'b' }) as Json).name, 'bob')
    assert.equal((agentCardJson({ ...base, handle: 'b' }) as Json).name, '@b')
    assert.equal((agentCardJson(base) as Json).name, AMID)
    assert.deepEqual((agentCardJson(base) as Json).skills.map((s: Json) => s.id), ['a2a'])
  })

  it('a2a card - declared message schemas are skills, as a record or a list; anything else is ignored', () => {
    const asRecord = agentCardJson({ ...base, profile: profile({ schemas: { 'order.create': { description: 'an order', type: 'object' }, 'order.cancel': {} } }) }) as Json
    assert.deepEqual(asRecord.skills.filter((s: Json) => s.tags.includes('message-schema')).map((s: Json) => [s.id, s.description]), [
      ['schema:order.create', 'an order'],
      ['schema:order.cancel', 'accepts AgentMesh messages of type order.cancel (a declared JSON Schema)'],
    ])
    const asList = agentCardJson({ ...base, profile: profile({ messageSchemas: [{ type: 'ping', schema: {} }, { nope: 1 }, 'junk'] }) }) as Json
    assert.deepEqual(asList.skills.filter((s: Json) => s.tags.includes('message-schema')).map((s: Json) => s.id), ['schema:ping'])
    const junk = agentCardJson({ ...base, profile: profile({ schemas: 42 }) }) as Json
    assert.deepEqual(junk.skills.map((s: Json) => s.id), ['a2a', 'forecast'])
  })

  it('a2a card - a message\'s text: text, data as JSON and URLs joined; none is undefined; a raw part is refused', () => {
    const parts = [Part.fromJSON({ text: 'hello' }), Part.fromJSON({ data: { n: 1 } }), Part.fromJSON({ url: 'https://x.example/f' })]
    assert.equal(messageText(parts), 'hello\n{"n":1}\nhttps://x.example/f')
    assert.equal(messageText([]), undefined)
    assert.throws(() => messageText([Part.fromJSON({ raw: Buffer.from('abc').toString('base64') })]), /raw \(file\) parts are not taken/)
  })

  it('a2a card - every AgentMesh task state has its A2A name', () => {
    assert.deepEqual(TASK_STATES.map(s => A2A_STATE[s]), [
      'TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING', 'TASK_STATE_INPUT_REQUIRED', 'TASK_STATE_AUTH_REQUIRED',
      'TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', 'TASK_STATE_REJECTED',
    ])
  })
})
