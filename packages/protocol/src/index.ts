/**
 * @packageDocumentation
 * The AgentMesh wire protocol (`agentmesh/0.2`): envelope and frame types, their JSON
 * Schemas, the codec, and the stable error-code registry. See docs/protocol.md.
 *
 * @example
 * ```ts
 * import { decodeClientFrame, ErrorCode } from '@agentmesh/protocol'
 * const d = decodeClientFrame('{"op":"ping"}', 1 << 20)
 * if (!d.ok && d.error.code === ErrorCode.BadJson) { ... }
 * ```
 */
export * as constants from './constants.ts'
export {
  PROTOCOL, PROTOCOL_MAJOR, PROTOCOL_MINOR, DEFAULT_PORT, DEFAULT_HOST,
  AUTH_SIGNING_PREFIX, ENVELOPE_SIGNING_PREFIX,
} from './constants.ts'
export { AgentMeshError, ErrorCode, CloseCode, ErrorRegistry, HttpStatus, isErrorCode, httpStatusOf, closeCodeOf, isRetryable } from './errors.ts'
export type { AgentMeshErrorOptions, ErrorInfo } from './errors.ts'
export {
  decodeClientFrame, decodeRelayFrame, encodeSend, encodeDeliver, encodeError, encodeFrame,
  validateEnvelope, checkVersion,
} from './codec.ts'
export type { DecodedClientFrame } from './codec.ts'
export {
  Envelope as EnvelopeSchema, ClientFrameSchemas, RelayFrameSchemas,
  AMID_PATTERN, ID_PATTERN, TYPE_PATTERN, ROOM_ID_PATTERN, ROOM_ADDRESS_PATTERN, ADDRESS_PATTERN,
} from './schemas.ts'
export type * from './types.ts'
