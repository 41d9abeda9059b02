/**
 * @packageDocumentation
 * Swarm mode's pure core (docs/swarm.md): the signed swarm message, the validation rules, the
 * anti-entropy reconciliation, the gossipsub peer-score parameters and the choice of inter-region
 * links. No networking here: real nodes (`@agentmesh/swarm`'s net side) and the simulator
 * (`@agentmesh/sim`) run these same functions.
 *
 * @example
 * ```ts
 * import { signSwarmMessage, createValidator } from '@agentmesh/swarm'
 * const m = signSwarmMessage(me, { topic: 'weather', seq: 1, body: { t: 21 } })
 * createValidator({ topic: 'weather' }).validate(m, { from: me.amid }) // { result: 'accept', reason: 'ok' }
 * ```
 */
export {
  signSwarmMessage, verifySwarmMessage, memoizeVerifier, encodeSwarmMessage, decodeSwarmMessage,
  checkSwarmFields, swarmMessageId, swarmSigningBytes, TOPIC_PATTERN, SWARM_TYPE_PATTERN,
} from './message.ts'
export type { SwarmMessage, SwarmMessageInit, SwarmVerifier, DecodeOptions } from './message.ts'
export { createValidator, createValidatorState, VALIDATION_REASONS } from './validate.ts'
export type {
  Validator, ValidatorInit, ValidatorState, AuthorState, ValidateContext, Verdict, ValidationResult, ValidationReason,
} from './validate.ts'
export { RangeSet, diff, checkSummary, createSwarmStore } from './reconcile.ts'
export type { SeqRange, Summary, Want, SwarmStore, SwarmStoreInit } from './reconcile.ts'
export {
  SWARM_MESH, SWARM_TOPIC_SCORE, SWARM_PEER_SCORE, SWARM_SCORE_THRESHOLDS, peerScore, scoreDecay,
} from './scoring.ts'
export type { PeerCounters } from './scoring.ts'
export { linkWeight, chooseLinks, DEFAULT_REGION_LINKS } from './regions.ts'
export {
  SWARM_MESSAGE_VERSION, SWARM_SIGNING_PREFIX, SWARM_ID_PREFIX, DEFAULT_MAX_SWARM_MESSAGE_BYTES,
  MAX_SWARM_TOPIC_LENGTH, MAX_SWARM_BODY_DEPTH, DEFAULT_AUTHOR_RATE_PER_S, DEFAULT_AUTHOR_BURST,
  DEFAULT_MAX_SEQ_AHEAD, DEFAULT_SEQ_WINDOW, DEFAULT_MAX_TRACKED_AUTHORS, DEFAULT_VERIFY_CACHE,
  DEFAULT_STORE_MAX_MESSAGES, DEFAULT_STORE_MAX_BYTES, DEFAULT_RETENTION_MS, MAX_SUMMARY_RANGES_PER_AUTHOR,
  MAX_SUMMARY_AUTHORS, DEFAULT_MAX_RECONCILE_MESSAGES,
} from './constants.ts'
export type { CalibrationFigures } from './calibration.ts'
