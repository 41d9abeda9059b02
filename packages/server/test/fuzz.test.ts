/**
 * A short run of the frame and REST fuzzer (`npm run fuzz` runs it longer): a few thousand
 * WebSocket frames (mutations of valid frames, truncations, deep nesting, huge values, reserved
 * types, garbage) and requests to every route of the REST contract, against a relay in this
 * process on 127.0.0.1.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { API_ROUTES, ErrorCode, isErrorCode } from '@agentmesh/protocol'
import { assertLoopback, formatFuzzReport, fuzz } from '@agentmesh/testing'

describe('fuzz', () => {
  it('fuzz - thousands of malformed frames and requests: no crash, every answer a registered code, and a normal agent is served afterwards', async () => {
    const routes = Object.keys(API_ROUTES).length
    const r = await fuzz({ frames: 3000, requests: routes * 8, seconds: 240, seed: 20261206 })
    const report = formatFuzzReport(r)
    assert.equal(r.framesSent, 3000, report)
    assert.equal(r.requestsSent, routes * 8, report)
    assert.deepEqual(r.crashes, [], report)
    assert.deepEqual(r.unregistered, [], report)
    assert.equal(r.stillServes, true, report)
    // what was answered: protocol frames, and errors with registered codes only
    for (const k of Object.keys(r.answers)) {
      const code = k.startsWith('error:') ? k.slice(6) : k.startsWith('http:') ? k.split(':')[2] : undefined
      if (code !== undefined) assert.ok(isErrorCode(code), `${k}: ${report}`)
      else if (!k.startsWith('http:')) assert.ok(['ack', 'deliver', 'pong', 'welcome', 'event', 'challenge'].includes(k), `${k}: ${report}`)
    }
    // the inputs reached the checks they are for
    for (const code of [ErrorCode.BadJson, ErrorCode.InvalidFrame, ErrorCode.InvalidEnvelope, ErrorCode.ReservedType, ErrorCode.EnvelopeTooLarge, ErrorCode.UnknownFrame]) {
      assert.ok((r.answers[`error:${code}`] ?? 0) > 0, `no ${code}: ${report}`)
    }
    assert.ok((r.answers.ack ?? 0) > 0 && (r.answers.deliver ?? 0) > 0, `valid sends went through: ${report}`)
  })

  it('fuzz - refuses to send anywhere but the loopback', async () => {
    assert.throws(() => { assertLoopback('http://10.0.0.1:7777') }, /only 127\.0\.0\.1/)
    assert.throws(() => { assertLoopback('http://example.com') }, /only 127\.0\.0\.1/)
    assertLoopback('http://127.0.0.1:7777')
    await assert.rejects(fuzz({ frames: 1, requests: 0, url: 'http://192.0.2.1:7777' }), /refusing to send to 192\.0\.2\.1/)
  })
})
