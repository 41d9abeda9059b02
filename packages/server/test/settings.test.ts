/** Runtime settings (PATCH /api/v1/settings): defaults, the JSON form and how stored JSON is read back. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultChatSettings, settingsFromJson, settingsJson, settingsSchema } from '../src/settings.ts'
import { Value } from '@sinclair/typebox/value'
import { Settings as SettingsSchema } from '@agentmesh/protocol'

const DEFAULT_JSON = {
  presence_idle_ms: 300_000,
  task_default_deadline_s: 300,
  rate_limits: {
    api_per_minute: 120, api_burst: 60, ip_per_minute: 600, ip_burst: 200,
    chat_per_minute: 600, chat_burst: 120, chat_ip_per_minute: 1200, chat_ip_burst: 240,
  },
}

describe('settings', () => {
  it('settings - the defaults, as JSON, with the keys in the documented order', () => {
    const json = settingsJson(defaultChatSettings())
    assert.deepEqual(json, DEFAULT_JSON)
    assert.deepEqual(Object.keys(json), ['presence_idle_ms', 'task_default_deadline_s', 'rate_limits'])
    assert.deepEqual(Object.keys(json.rate_limits as object), Object.keys(DEFAULT_JSON.rate_limits))
    assert.deepEqual(defaultChatSettings().rateLimits.chatIp, { perMinute: 1200, burst: 240 })
  })

  it('settings - stored values within bounds are taken, others keep the base value', () => {
    const base = defaultChatSettings()
    const s = settingsFromJson({
      presence_idle_ms: 1000,
      task_default_deadline_s: 7 * 86_400 + 1,
      rate_limits: { api_per_minute: 1_000_000, api_burst: 0, chat_ip_burst: 7, ip_per_minute: 2.5, chat_burst: '9' },
    }, base)
    assert.equal(s.presenceIdleMs, 1000)
    assert.equal(s.taskDefaultDeadlineS, 300, 'over 7 days: the base stays')
    assert.deepEqual(s.rateLimits, {
      api: { perMinute: 1_000_000, burst: 60 },
      ip: { perMinute: 600, burst: 200 },
      chat: { perMinute: 600, burst: 120 },
      chatIp: { perMinute: 1200, burst: 7 },
    })
    assert.deepEqual(settingsJson(base), DEFAULT_JSON, 'the base is not changed')
    assert.equal(settingsFromJson({ presence_idle_ms: 999 }, base).presenceIdleMs, 300_000)
    assert.deepEqual(settingsFromJson({ rate_limits: null }, base), base)
  })

  it('settings - what settingsJson writes, settingsFromJson reads back the same', () => {
    const s = defaultChatSettings()
    s.presenceIdleMs = 61_000
    s.taskDefaultDeadlineS = 30
    s.rateLimits.chat = { perMinute: 5, burst: 2 }
    assert.deepEqual(settingsFromJson(settingsJson(s), defaultChatSettings()), s)
  })

  it('settings - the schema gives every setting its bounds and default', () => {
    const schema = settingsSchema()
    assert.deepEqual(Object.keys(schema.properties), ['presence_idle_ms', 'task_default_deadline_s', 'rate_limits'])
    const p = schema.properties.presence_idle_ms as { minimum: number, maximum: number, default: number }
    assert.deepEqual([p.minimum, p.maximum, p.default], [1000, 7 * 86_400_000, 300_000])
    const rl = schema.properties.rate_limits as { properties: Record<string, { minimum: number, maximum: number, default: number }> }
    assert.deepEqual(Object.fromEntries(Object.entries(rl.properties).map(([k, v]) => [k, v.default])), DEFAULT_JSON.rate_limits)
    for (const v of Object.values(rl.properties)) assert.deepEqual([v.minimum, v.maximum], [1, 1_000_000])
  })
})

describe('settings and the REST contract', () => {
  it('settings - the protocol\'s Settings schema (what the REST API validates with) has the table\'s keys and bounds', () => {
    const table = settingsSchema() as unknown as JsonSchema
    const contract = SettingsSchema as unknown as JsonSchema
    const bounds = (s: JsonSchema): unknown => Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) =>
      [k, v.properties === undefined ? [v.minimum, v.maximum] : bounds(v)]))
    assert.deepEqual(bounds(contract), bounds(table))
    assert.equal(Value.Check(SettingsSchema, settingsJson(defaultChatSettings())), true)
  })
})

interface JsonSchema { properties?: Record<string, JsonSchema>, minimum?: number, maximum?: number }
