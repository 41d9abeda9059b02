import assert from 'node:assert/strict'
import { sign } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  AgentMeshError, ErrorCode, PROTOCOL, PROTOCOL_E2EE, constants, decodeClientFrame, decodeRelayFrame, encodeDeliver, encodeError,
  encodeFrame, encodeSend, isErrorCode, isUnsignedKind, validateEnvelope, type DecodedClientFrame, type Envelope,
} from '@agentmesh/protocol'
import { createIdentity, envelopeSigningBytes, signChallenge, signEnvelope, toB64u, verifyEnvelope, type Identity } from '@agentmesh/crypto'

const MAX = constants.DEFAULT_MAX_ENVELOPE_BYTES
const alice = createIdentity('alice')
const bob = createIdentity('bob')

function envelope (payload: Record<string, unknown> = { text: 'hello' }, id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'): Envelope {
  return signEnvelope(alice, { id, to: bob.amid, type: 'chat', payload, ts: 1_700_000_000_000 })
}

/** Signs an envelope with arbitrary fields (another version, extra fields), as a sender of that version would. */
function signRaw (who: Identity, unsigned: Record<string, unknown>): Envelope {
  const bytes = envelopeSigningBytes(unsigned as Omit<Envelope, 'sig'>)
  return { ...unsigned, sig: toB64u(sign(null, bytes, who.privateKeyObject)) } as Envelope
}

function expectError (d: DecodedClientFrame, code: ErrorCode, message: string | RegExp, id?: string): void {
  assert.equal(d.ok, false, 'expected the frame to be refused')
  if (d.ok) return
  assert.ok(d.error instanceof AgentMeshError)
  assert.equal(d.error.name, 'AgentMeshError')
  assert.equal(d.error.code, code)
  if (typeof message === 'string') assert.equal(d.error.message, message)
  else assert.match(d.error.message, message)
  assert.equal(d.id, id)
}

function expectSend (d: DecodedClientFrame): { env: Envelope, envText: string, envBytes: number } {
  assert.equal(d.ok, true, d.ok ? '' : `refused: ${d.error.code} ${d.error.message}`)
  if (!d.ok || d.frame.op !== 'send' || !('envText' in d)) assert.fail('expected a decoded send frame')
  return { env: d.frame.env, envText: d.envText, envBytes: d.envBytes }
}

describe('codec - client frames', () => {
  it('codec - decodes a valid auth frame', () => {
    const nonce = 'bm9uY2UtMTIz'
    const sig = signChallenge(alice, alice.amid, nonce, 'relay-1')
    const frame = { op: 'auth', v: PROTOCOL, amid: alice.amid, nonce, sig, name: 'alice', after: 12, deliver: true }
    const d = decodeClientFrame(JSON.stringify(frame), MAX)
    assert.deepEqual(d, { ok: true, frame })
  })

  it('codec - decodes valid cursor, resume and ping frames', () => {
    assert.deepEqual(decodeClientFrame('{"op":"cursor","seq":42}', MAX), { ok: true, frame: { op: 'cursor', seq: 42 } })
    assert.deepEqual(decodeClientFrame('{"op":"cursor","seq":0}', MAX), { ok: true, frame: { op: 'cursor', seq: 0 } })
    assert.deepEqual(decodeClientFrame('{"op":"resume","after":7}', MAX), { ok: true, frame: { op: 'resume', after: 7 } })
    assert.deepEqual(decodeClientFrame('{"op":"ping"}', MAX), { ok: true, frame: { op: 'ping' } })
    assert.deepEqual(decodeClientFrame('{"op":"ping","ts":1700000000000}', MAX), { ok: true, frame: { op: 'ping', ts: 1_700_000_000_000 } })
  })

  it('codec - decodes a valid send frame', () => {
    const env = envelope()
    const { env: decoded, envText, envBytes } = expectSend(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX))
    assert.deepEqual(decoded, env)
    assert.equal(envText, JSON.stringify(env))
    assert.equal(envBytes, Buffer.byteLength(JSON.stringify(env)))
    assert.equal(verifyEnvelope(decoded), true)
  })

  it('codec - malformed JSON is AM_ERR_BAD_JSON', () => {
    for (const text of ['', '{', '{"op":"ping"', 'ping', "{'op':'ping'}", '{"op":"ping"}}']) {
      expectError(decodeClientFrame(text, MAX), ErrorCode.BadJson, 'frame is not valid JSON')
    }
  })

  it('codec - a send frame with trailing garbage is bad JSON, not a shortened envelope', () => {
    const envText = JSON.stringify(envelope())
    expectError(decodeClientFrame(`{"op":"send","env":${envText}},"x":1}`, MAX), ErrorCode.BadJson, 'frame is not valid JSON')
  })

  it('codec - a frame that is not an object is AM_ERR_INVALID_FRAME', () => {
    for (const text of ['null', '[]', '[{"op":"ping"}]', '42', '"ping"', 'true']) {
      expectError(decodeClientFrame(text, MAX), ErrorCode.InvalidFrame, 'frame must be a JSON object with an "op" field')
    }
  })

  it('codec - a frame without an op string is AM_ERR_INVALID_FRAME', () => {
    for (const text of ['{}', '{"op":5}', '{"op":null}', '{"seq":1}']) {
      expectError(decodeClientFrame(text, MAX), ErrorCode.InvalidFrame, 'frame has no "op" string field')
    }
  })

  it('codec - an unknown op is AM_ERR_UNKNOWN_FRAME and lists the known ones', () => {
    expectError(decodeClientFrame('{"op":"subscribe"}', MAX), ErrorCode.UnknownFrame,
      'unknown frame op "subscribe"; expected one of: auth, send, cursor, resume, ping, signal, watch')
    // ops that are names on Object.prototype or relay → client frames are unknown too
    for (const op of ['__proto__', 'toString', 'constructor', 'deliver', 'welcome']) {
      expectError(decodeClientFrame(JSON.stringify({ op }), MAX), ErrorCode.UnknownFrame, new RegExp(`^unknown frame op "${op}";`))
    }
  })

  it('codec - an unknown op is cut to 40 characters in the message', () => {
    const op = 'x'.repeat(1000)
    expectError(decodeClientFrame(JSON.stringify({ op }), MAX), ErrorCode.UnknownFrame,
      `unknown frame op "${'x'.repeat(40)}"; expected one of: auth, send, cursor, resume, ping, signal, watch`)
  })

  it('codec - a known frame with a bad field is AM_ERR_INVALID_FRAME naming the field', () => {
    expectError(decodeClientFrame('{"op":"cursor","seq":-1}', MAX), ErrorCode.InvalidFrame,
      'invalid cursor frame, field seq: Expected integer to be greater or equal to 0')
    expectError(decodeClientFrame('{"op":"cursor","seq":1.5}', MAX), ErrorCode.InvalidFrame, 'invalid cursor frame, field seq: Expected integer')
    expectError(decodeClientFrame('{"op":"resume"}', MAX), ErrorCode.InvalidFrame, 'invalid resume frame, field after: Expected required property')
    expectError(decodeClientFrame('{"op":"send"}', MAX), ErrorCode.InvalidFrame, 'invalid send frame, field env: Expected required property')
    expectError(decodeClientFrame(`{"op":"auth","v":"${PROTOCOL}","amid":"nope","nonce":"abc","sig":"${'A'.repeat(86)}"}`, MAX),
      ErrorCode.InvalidFrame, /^invalid auth frame, field amid: /)
  })

  it('codec - an auth frame of another major version is AM_ERR_UNSUPPORTED_VERSION', () => {
    const nonce = 'bm9uY2U'
    const frame = { op: 'auth', v: 'agentmesh/1.0', amid: alice.amid, nonce, sig: signChallenge(alice, alice.amid, nonce, 'r') }
    expectError(decodeClientFrame(JSON.stringify(frame), MAX), ErrorCode.UnsupportedVersion,
      'protocol version "agentmesh/1.0" is not supported: this relay speaks agentmesh/0.x')
  })

  it('codec - an auth frame of a newer minor version is accepted', () => {
    const nonce = 'bm9uY2U'
    const frame = { op: 'auth', v: 'agentmesh/0.9', amid: alice.amid, nonce, sig: signChallenge(alice, alice.amid, nonce, 'r'), future: 1 }
    assert.deepEqual(decodeClientFrame(JSON.stringify(frame), MAX), { ok: true, frame })
  })
})

describe('codec - envelopes in send frames', () => {
  const FIELDS = ['v', 'id', 'from', 'to', 'type', 'ts', 'payload', 'sig'] as const

  it('codec - a missing envelope field is AM_ERR_INVALID_ENVELOPE naming the field, with the id', () => {
    for (const field of FIELDS) {
      const env: Record<string, unknown> = { ...envelope() }
      delete env[field]
      const id = field === 'id' ? undefined : envelope().id
      // canonical frame (fast path) and the same frame with another key order (full parse)
      for (const text of [encodeSend(JSON.stringify(env)), JSON.stringify({ env, op: 'send' })]) {
        expectError(decodeClientFrame(text, MAX), ErrorCode.InvalidEnvelope, `invalid envelope, field ${field}: Expected required property`, id)
      }
    }
  })

  describe('codec - unsigned envelopes (agentmesh/0.3 e2ee)', () => {
    const unsigned = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
      v: PROTOCOL_E2EE, id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c', from: alice.amid, to: bob.amid, type: 'e2ee', ts: 1_700_000_000_000,
      payload: { v: 1, header: { dh: 'x', pn: 0, n: 0 }, ct: 'y' }, ...over,
    })
    const NO_SIG = 'invalid envelope, field sig: Expected required property'

    it('codec - an agentmesh/0.3 e2ee envelope to an agent decodes without sig, kept byte for byte; a later minor too', () => {
      assert.equal(PROTOCOL_E2EE, 'agentmesh/0.3')
      for (const v of [PROTOCOL_E2EE, 'agentmesh/0.4', 'agentmesh/0.12']) {
        const env = unsigned({ v })
        const envText = JSON.stringify(env)
        const { env: decoded, envText: kept } = expectSend(decodeClientFrame(encodeSend(envText), MAX))
        assert.equal(kept, envText)
        assert.deepEqual(decoded, env)
        assert.equal(isUnsignedKind(decoded), true)
        assert.equal(validateEnvelope(env, envText.length, MAX), undefined)
      }
    })

    it('codec - an unsigned envelope of any other kind is refused: plaintext, 0.2, to a room, a sender-key message', () => {
      const cases: Array<[string, Record<string, unknown>]> = [
        ['an agentmesh/0.3 chat message', unsigned({ type: 'chat', payload: { text: 'hi' } })],
        ['an agentmesh/0.2 e2ee message', unsigned({ v: PROTOCOL })],
        ['an e2ee message to a room', unsigned({ to: '#ops' })],
        ['a private room message', unsigned({ to: '#ops', type: 'e2ee.group' })],
        ['a reset notice', unsigned({ type: 'e2ee.reset', payload: { id: 'x' } })],
        ['a knock', unsigned({ type: 'agentmesh.knock' })],
      ]
      for (const [what, env] of cases) {
        const d = decodeClientFrame(encodeSend(JSON.stringify(env)), MAX)
        assert.equal(d.ok, false, what)
        expectError(d, ErrorCode.InvalidEnvelope, NO_SIG, env.id as string)
        assert.equal(isUnsignedKind(env as unknown as Envelope), false, what)
      }
    })

    it('codec - an agentmesh/0.3 e2ee envelope carrying sig, session_cert or via is refused: one form per version', () => {
      for (const extra of [{ sig: 'A'.repeat(86) }, { session_cert: 'AAAA' }, { via: bob.amid }]) {
        const env = unsigned(extra)
        expectError(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX), ErrorCode.InvalidEnvelope,
          'invalid envelope: an agentmesh/0.3 "e2ee" envelope carries no sig, session_cert or via (its header is bound into the encryption, docs/protocol.md §14.3); send it as agentmesh/0.2 to sign it',
          env.id as string)
      }
    })
  })

  it('codec - an invalid envelope field is AM_ERR_INVALID_ENVELOPE naming the field, with the id', () => {
    const good = envelope()
    const cases: Array<[string, unknown, string]> = [
      ['id', 'short', "invalid envelope, field id: Expected string to match '^[0-9A-Za-z_-]{8,128}$'"],
      ['id', 'has spaces in it', "invalid envelope, field id: Expected string to match '^[0-9A-Za-z_-]{8,128}$'"],
      ['from', 'am0OIl', "invalid envelope, field from: Expected string to match '^am[1-9A-HJ-NP-Za-km-z]{42,46}$'"],
      ['to', 42, 'invalid envelope, field to: Expected string'],
      ['type', 'Chat', "invalid envelope, field type: Expected string to match '^[a-z][a-z0-9._-]{0,63}$'"],
      ['ts', -1, 'invalid envelope, field ts: Expected integer to be greater or equal to 0'],
      ['ts', 1.5, 'invalid envelope, field ts: Expected integer'],
      ['ts', '1700000000000', 'invalid envelope, field ts: Expected integer'],
      ['payload', [], 'invalid envelope, field payload: Expected object'],
      ['payload', 'text', 'invalid envelope, field payload: Expected object'],
      ['sig', 'abc', 'invalid envelope, field sig: Expected string length greater or equal to 86'],
      ['sig', '+'.repeat(86), "invalid envelope, field sig: Expected string to match '^[A-Za-z0-9_-]*$'"],
      ['v', 'agentmesh-0.2', "invalid envelope, field v: Expected string to match '^agentmesh/[0-9]+\\.[0-9]+$'"],
    ]
    for (const [field, value, message] of cases) {
      const env = { ...good, [field]: value }
      const id = field === 'id' ? value as string : good.id
      expectError(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX), ErrorCode.InvalidEnvelope, message, id)
    }
  })

  it('codec - an envelope that is not an object is AM_ERR_INVALID_ENVELOPE', () => {
    for (const env of ['null', '"text"', '[1,2]', '7']) {
      expectError(decodeClientFrame(`{"op":"send","env":${env}}`, MAX), ErrorCode.InvalidEnvelope, /^invalid envelope, the envelope: Expected object$/)
    }
  })

  it('codec - an id longer than 128 characters is not echoed back', () => {
    const env = { ...envelope(), id: 'a'.repeat(129) }
    expectError(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX), ErrorCode.InvalidEnvelope,
      "invalid envelope, field id: Expected string to match '^[0-9A-Za-z_-]{8,128}$'")
  })

  it('codec - an envelope over the limit is AM_ERR_ENVELOPE_TOO_LARGE with the id', () => {
    const env = envelope({ text: 'é'.repeat(500) })
    const envText = JSON.stringify(env)
    const bytes = Buffer.byteLength(envText)
    assert.ok(bytes > envText.length, 'the limit counts UTF-8 bytes, not characters')
    for (const text of [encodeSend(envText), JSON.stringify({ env, op: 'send' })]) {
      expectError(decodeClientFrame(text, bytes - 1), ErrorCode.EnvelopeTooLarge,
        `envelope is ${bytes} bytes, larger than the limit of ${bytes - 1} bytes`, env.id)
    }
    // exactly at the limit is accepted
    assert.equal(expectSend(decodeClientFrame(encodeSend(envText), bytes)).envBytes, bytes)
  })

  it('codec - an envelope of 1 MiB and more is refused at the default limit', () => {
    const env = envelope({ blob: 'x'.repeat(MAX) })
    const envText = JSON.stringify(env)
    expectError(decodeClientFrame(encodeSend(envText), MAX), ErrorCode.EnvelopeTooLarge,
      `envelope is ${Buffer.byteLength(envText)} bytes, larger than the limit of ${MAX} bytes`, env.id)
  })

  it('codec - an envelope of another major version is AM_ERR_UNSUPPORTED_VERSION with the id', () => {
    const { sig: _sig, ...rest } = envelope()
    const env = signRaw(alice, { ...rest, v: 'agentmesh/1.0' })
    expectError(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX), ErrorCode.UnsupportedVersion,
      'protocol version "agentmesh/1.0" is not supported: this relay speaks agentmesh/0.x', env.id)
  })

  it('codec - an envelope of a newer minor version with unknown fields is accepted and still verifies', () => {
    const { sig: _sig, ...rest } = envelope()
    const env = signRaw(alice, { ...rest, v: 'agentmesh/0.9', thread: 'th-1', meta: { prio: 2 } })
    const envText = JSON.stringify(env)
    const { env: decoded, envText: kept } = expectSend(decodeClientFrame(encodeSend(envText), MAX))
    assert.equal(kept, envText)
    assert.deepEqual(decoded, env)
    assert.equal((decoded as unknown as { thread: string }).thread, 'th-1')
    assert.equal(verifyEnvelope(decoded), true)
  })

  it('codec - the canonical send frame keeps the envelope text exactly as received', () => {
    // hand-written text: escapes, spacing and key order that JSON.stringify would change
    const env = envelope({ text: 'héllo 👋', n: 1 })
    const envText = `{ "sig":"${env.sig}", "payload":{"n":1,"text":"h\\u00e9llo \\ud83d\\udc4b"},"v":"${env.v}","id":"${env.id}",` +
      `"from":"${env.from}","to":"${env.to}","type":"chat","ts":${env.ts} }`
    assert.notEqual(envText, JSON.stringify(env))
    const frame = `{"op":"send","env":${envText}}`
    const d = expectSend(decodeClientFrame(frame, MAX))
    assert.equal(d.envText, envText)
    assert.equal(d.envText, frame.slice('{"op":"send","env":'.length, -1))
    assert.equal(d.envBytes, Buffer.byteLength(envText))
    assert.deepEqual(d.env, env)
    assert.equal(verifyEnvelope(d.env), true)
  })

  it('codec - a non-canonical send frame with the same envelope is accepted', () => {
    const env = envelope({ text: 'héllo' })
    const texts = [
      JSON.stringify({ env, op: 'send' }),
      `{ "op" : "send" , "env" : ${JSON.stringify(env, null, 2)} }`,
      `{"op":"send","env":${JSON.stringify(env)}}\n`,
      JSON.stringify({ op: 'send', env, trace: 'abc' }),
    ]
    for (const text of texts) {
      const d = expectSend(decodeClientFrame(text, MAX))
      assert.deepEqual(d.env, env)
      assert.equal(d.envText, JSON.stringify(env))
      assert.equal(d.envBytes, Buffer.byteLength(JSON.stringify(env)))
      assert.equal(verifyEnvelope(d.env), true)
    }
  })

  it('codec - decoding does not check signatures (the connection is authenticated instead)', () => {
    const env = { ...envelope(), payload: { text: 'changed' } }
    assert.equal(verifyEnvelope(env), false)
    assert.deepEqual(expectSend(decodeClientFrame(encodeSend(JSON.stringify(env)), MAX)).env, env)
  })
})

describe('codec - encoders and relay frames', () => {
  it('codec - encodeDeliver wraps the stored text verbatim and parses back', () => {
    const envText = `{ "v":"${PROTOCOL}" , "id":"x" }`
    const text = encodeDeliver(17, envText)
    assert.equal(text, `{"op":"deliver","seq":17,"env":${envText}}`)
    assert.deepEqual(JSON.parse(text), { op: 'deliver', seq: 17, env: { v: PROTOCOL, id: 'x' } })
  })

  it('codec - encodeDeliver of a real envelope decodes as a relay frame', () => {
    const env = envelope({ text: 'héllo 👋' })
    assert.deepEqual(decodeRelayFrame(encodeDeliver(3, JSON.stringify(env))), { op: 'deliver', seq: 3, env })
  })

  it('codec - encodeSend output is the canonical frame the decoder fast-paths', () => {
    const envText = JSON.stringify(envelope())
    assert.equal(encodeSend(envText), `{"op":"send","env":${envText}}`)
    assert.equal(expectSend(decodeClientFrame(encodeSend(envText), MAX)).envText, envText)
  })

  it('codec - encodeError carries code, message and the envelope id when given', () => {
    const error = new AgentMeshError(ErrorCode.InboxFull, 'inbox of am… is full')
    assert.deepEqual(JSON.parse(encodeError(error)), { op: 'error', code: 'AM_ERR_INBOX_FULL', message: 'inbox of am… is full' })
    assert.deepEqual(decodeRelayFrame(encodeError(error, 'id-000001')),
      { op: 'error', code: 'AM_ERR_INBOX_FULL', message: 'inbox of am… is full', id: 'id-000001' })
  })

  it('codec - encodeError of a rate limit carries retry_after (seconds), as the protocol document promises', () => {
    const error = new AgentMeshError(ErrorCode.RateLimited, 'too many; try again in 7 s', { retryAfterS: 7 })
    assert.deepEqual(decodeRelayFrame(encodeError(error, 'id-000002')),
      { op: 'error', code: 'AM_ERR_RATE_LIMITED', message: 'too many; try again in 7 s', id: 'id-000002', retry_after: 7 })
    assert.deepEqual(JSON.parse(encodeError(error)), { op: 'error', code: 'AM_ERR_RATE_LIMITED', message: 'too many; try again in 7 s', retry_after: 7 })
  })

  it('codec - encodeFrame of a client frame decodes to the same frame', () => {
    const frame = { op: 'resume' as const, after: 99 }
    assert.deepEqual(decodeClientFrame(encodeFrame(frame), MAX), { ok: true, frame })
  })

  it('codec - decodeRelayFrame refuses bad JSON, unknown ops and invalid frames with their codes', () => {
    assert.throws(() => decodeRelayFrame('{"op":'), { name: 'AgentMeshError', code: ErrorCode.BadJson, message: 'relay sent a frame that is not valid JSON' })
    assert.throws(() => decodeRelayFrame('{"op":"send"}'), { code: ErrorCode.UnknownFrame, message: 'relay sent an unknown frame op "send"' })
    assert.throws(() => decodeRelayFrame('null'), { code: ErrorCode.UnknownFrame, message: 'relay sent an unknown frame op "undefined"' })
    assert.throws(() => decodeRelayFrame('{"op":"ack"}'), { code: ErrorCode.InvalidFrame, message: 'relay sent an invalid ack frame, field id: Expected required property' })
    assert.deepEqual(decodeRelayFrame('{"op":"ack","id":"id-000001","duplicate":true}'), { op: 'ack', id: 'id-000001', duplicate: true })
  })
})

describe('errors', () => {
  it('errors - AgentMeshError.is narrows by code', () => {
    const err: unknown = new AgentMeshError(ErrorCode.UnknownRecipient, 'no such agent', { cause: new Error('inner'), closeCode: 4000 })
    assert.equal(AgentMeshError.is(err), true)
    assert.equal(AgentMeshError.is(err, ErrorCode.UnknownRecipient), true)
    assert.equal(AgentMeshError.is(err, ErrorCode.InboxFull), false)
    assert.equal(AgentMeshError.is(new Error('plain')), false)
    assert.equal(AgentMeshError.is({ code: ErrorCode.UnknownRecipient }), false)
    assert.equal(AgentMeshError.is(Object.assign(new Error('x'), { code: 'ENOENT' })), false)
    if (AgentMeshError.is(err)) {
      assert.equal(err.closeCode, 4000)
      assert.equal((err.cause as Error).message, 'inner')
      assert.deepEqual(err.toJSON(), { code: 'AM_ERR_UNKNOWN_RECIPIENT', message: 'no such agent' })
    }
  })

  it('errors - isErrorCode accepts exactly the registry', () => {
    for (const code of Object.values(ErrorCode)) assert.equal(isErrorCode(code), true, code)
    assert.equal(isErrorCode('AM_ERR_NOPE'), false)
    assert.equal(isErrorCode(undefined), false)
    assert.equal(new Set(Object.values(ErrorCode)).size, Object.values(ErrorCode).length, 'codes are unique')
  })
})
