/**
 * Frame codec (docs/protocol.md §2). Decoding validates against the JSON Schemas and
 * never throws: it answers a frame or an AgentMeshError with a stable code.
 *
 * "Parse once, forward bytes": for a send frame written the canonical way
 * (`{"op":"send","env":<envelope>}`), the envelope's JSON text is sliced out of the
 * frame, parsed once, and kept as received, so the relay stores and forwards it without
 * serialising it again.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { TSchema } from '@sinclair/typebox'
import { AgentMeshError, ErrorCode } from './errors.ts'
import { PROTOCOL_MAJOR, UNSIGNED_ENVELOPE_TYPES } from './constants.ts'
import {
  ClientFrameSchemas, Envelope, RelayFrameSchemas,
  type ClientFrame, type RelayFrame, type Envelope as EnvelopeT,
} from './schemas.ts'

const SEND_PREFIX = '{"op":"send","env":'

function compile<T extends Record<string, TSchema>> (schemas: T): Record<string, TypeCheck<TSchema>> {
  const out: Record<string, TypeCheck<TSchema>> = {}
  for (const [k, s] of Object.entries(schemas)) out[k] = TypeCompiler.Compile(s)
  return out
}
const clientChecks = compile(ClientFrameSchemas)
const relayChecks = compile(RelayFrameSchemas)
const envelopeCheck = TypeCompiler.Compile(Envelope)

/** A decoded send frame keeps the envelope's text exactly as it will be stored and forwarded. */
export type DecodedClientFrame =
  | { ok: true, frame: Exclude<ClientFrame, { op: 'send' }> }
  | { ok: true, frame: { op: 'send', env: EnvelopeT }, envText: string, envBytes: number }
  | { ok: false, error: AgentMeshError, id?: string, op?: string }

function firstError (check: TypeCheck<TSchema>, value: unknown, root = 'the frame'): string {
  const e = check.Errors(value).First()
  if (e === undefined) return 'does not match the schema'
  const where = e.path === '' ? root : `field ${e.path.slice(1).replaceAll('/', '.')}`
  return `${where}: ${e.message}`
}

/** Checks the `v` field: another major version is refused, a newer minor accepted. */
export function checkVersion (v: string): AgentMeshError | undefined {
  const major = Number(v.slice(v.indexOf('/') + 1, v.indexOf('.')))
  if (major !== PROTOCOL_MAJOR) {
    return new AgentMeshError(ErrorCode.UnsupportedVersion,
      `protocol version "${v}" is not supported: this relay speaks agentmesh/${PROTOCOL_MAJOR}.x`)
  }
  return undefined
}

/** The minor version of a `v` that matched VERSION_PATTERN. */
function minorOf (v: string): number {
  return Number(v.slice(v.indexOf('.') + 1))
}

/**
 * True for an envelope that goes without an Ed25519 signature (docs/protocol.md §4, §14.3): an
 * `agentmesh/0.3` (or later minor) end-to-end encrypted direct message (`e2ee`, to an AMID), whose
 * header (v, id, from, to, type, ts) the Double Ratchet binds into its associated data instead.
 * Every other envelope is signed, whatever its version.
 */
export function isUnsignedKind (env: Pick<EnvelopeT, 'v' | 'type' | 'to'>): boolean {
  return UNSIGNED_ENVELOPE_TYPES.has(env.type) && env.to.charCodeAt(0) !== 35 && minorOf(env.v) >= 3
}

/** Validates an envelope object; `bytes` is the size of its JSON text. */
export function validateEnvelope (env: unknown, bytes: number, maxEnvelopeBytes: number): AgentMeshError | undefined {
  if (bytes > maxEnvelopeBytes) {
    return new AgentMeshError(ErrorCode.EnvelopeTooLarge,
      `envelope is ${bytes} bytes, larger than the limit of ${maxEnvelopeBytes} bytes`)
  }
  if (!envelopeCheck.Check(env)) {
    return new AgentMeshError(ErrorCode.InvalidEnvelope, `invalid envelope, ${firstError(envelopeCheck, env, 'the envelope')}`)
  }
  const e = env as EnvelopeT
  const version = checkVersion(e.v)
  if (version !== undefined) return version
  if (isUnsignedKind(e)) {
    // one form per version: the encryption authenticates this header, and nothing signs it
    if (e.sig !== undefined || e.session_cert !== undefined || e.via !== undefined) {
      return new AgentMeshError(ErrorCode.InvalidEnvelope,
        `invalid envelope: an ${e.v} "${e.type}" envelope carries no sig, session_cert or via (its header is bound into the encryption, docs/protocol.md §14.3); send it as agentmesh/0.2 to sign it`)
    }
  } else if (e.sig === undefined) {
    // worded as the schema words a missing field (an agentmesh/0.3 e2ee DM to an AMID is the one kind without)
    return new AgentMeshError(ErrorCode.InvalidEnvelope, 'invalid envelope, field sig: Expected required property')
  }
  return undefined
}

function byteLength (s: string): number {
  // UTF-8 size counted from the UTF-16 units (no Buffer: this package runs in browsers too);
  // a lone surrogate counts as the 3 bytes of U+FFFD it is encoded as
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) { n += 1; continue }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 2; i++; continue }
    n += 2
  }
  return n
}

function idOf (env: unknown): string | undefined {
  if (typeof env === 'object' && env !== null) {
    const id = (env as { id?: unknown }).id
    if (typeof id === 'string' && id.length <= 128) return id
  }
  return undefined
}

/** Decodes one client → relay frame. */
export function decodeClientFrame (text: string, maxEnvelopeBytes: number): DecodedClientFrame {
  // fast path: canonical send frame, parse only the envelope
  if (text.startsWith(SEND_PREFIX) && text.endsWith('}')) {
    const envText = text.slice(SEND_PREFIX.length, -1)
    let env: unknown
    let parsed = true
    try { env = JSON.parse(envText) } catch { parsed = false }
    if (parsed) {
      const bytes = byteLength(envText)
      const error = validateEnvelope(env, bytes, maxEnvelopeBytes)
      if (error !== undefined) return { ok: false, error, id: idOf(env) }
      return { ok: true, frame: { op: 'send', env: env as EnvelopeT }, envText, envBytes: bytes }
    }
  }
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch {
    return { ok: false, error: new AgentMeshError(ErrorCode.BadJson, 'frame is not valid JSON') }
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return { ok: false, error: new AgentMeshError(ErrorCode.InvalidFrame, 'frame must be a JSON object with an "op" field') }
  }
  const op = (frame as { op?: unknown }).op
  if (typeof op !== 'string') {
    return { ok: false, error: new AgentMeshError(ErrorCode.InvalidFrame, 'frame has no "op" string field') }
  }
  const check = Object.hasOwn(clientChecks, op) ? clientChecks[op] : undefined
  if (check === undefined) {
    return {
      ok: false,
      error: new AgentMeshError(ErrorCode.UnknownFrame,
        `unknown frame op "${op.slice(0, 40)}"; expected one of: ${Object.keys(clientChecks).join(', ')}`),
    }
  }
  if (!check.Check(frame)) {
    return { ok: false, error: new AgentMeshError(ErrorCode.InvalidFrame, `invalid ${op} frame, ${firstError(check, frame)}`) }
  }
  if (op === 'send') {
    const env = (frame as { env: unknown }).env
    const envText = JSON.stringify(env)
    const bytes = byteLength(envText)
    const error = validateEnvelope(env, bytes, maxEnvelopeBytes)
    if (error !== undefined) return { ok: false, error, id: idOf(env) }
    return { ok: true, frame: { op: 'send', env: env as EnvelopeT }, envText, envBytes: bytes }
  }
  if (op === 'auth') {
    const error = checkVersion((frame as { v: string }).v)
    if (error !== undefined) return { ok: false, error, op }
  }
  return { ok: true, frame: frame as Exclude<ClientFrame, { op: 'send' }> }
}

/** Decodes one relay → client frame; throws AgentMeshError(AM_ERR_INVALID_FRAME) on a frame that breaks the protocol. */
export function decodeRelayFrame (text: string): RelayFrame {
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.BadJson, 'relay sent a frame that is not valid JSON', { cause })
  }
  const op = (frame as { op?: unknown } | null)?.op
  const check = typeof op === 'string' && Object.hasOwn(relayChecks, op) ? relayChecks[op] : undefined
  if (check === undefined) {
    throw new AgentMeshError(ErrorCode.UnknownFrame, `relay sent an unknown frame op "${String(op).slice(0, 40)}"`)
  }
  // deliver frames are checked in full by the client (envelope schema + signature); others here
  if (op !== 'deliver' && !check.Check(frame)) {
    throw new AgentMeshError(ErrorCode.InvalidFrame, `relay sent an invalid ${op} frame, ${firstError(check, frame)}`)
  }
  return frame as RelayFrame
}

/** Encodes a send frame around an envelope's JSON text (the canonical form the relay fast-paths). */
export function encodeSend (envText: string): string {
  return SEND_PREFIX + envText + '}'
}

/** Encodes a deliver frame around stored envelope text, without re-serialising it. */
export function encodeDeliver (seq: number, envText: string): string {
  return '{"op":"deliver","seq":' + String(seq) + ',"env":' + envText + '}'
}

/** Encodes the deliver frame of a room read by cursor (`seq` is the room seq, §6.1); `room` is a room id (no quoting needed). */
export function encodeRoomDeliver (room: string, seq: number, envText: string): string {
  return '{"op":"deliver","room":"' + room + '","seq":' + String(seq) + ',"env":' + envText + '}'
}

/** Encodes an error frame. */
export function encodeError (error: AgentMeshError, id?: string): string {
  // retry_after: seconds to wait, for AM_ERR_RATE_LIMITED (REST answers carry it as Retry-After)
  const retry = error.retryAfterS === undefined ? {} : { retry_after: error.retryAfterS }
  return JSON.stringify(id === undefined
    ? { op: 'error', code: error.code, message: error.message, ...retry }
    : { op: 'error', code: error.code, message: error.message, id, ...retry })
}

/** Encodes any frame. */
export function encodeFrame (frame: ClientFrame | RelayFrame): string {
  return JSON.stringify(frame)
}
