/**
 * The connection's built-in inbound stages (see inbound.ts), each given only what it needs. They
 * are what the connection did in one long chain before, cut along the features, in the same order.
 */
import { AgentMeshError, ErrorCode, RELAY_TYPES, isRelayType, type Envelope } from '@agentmesh/protocol'
import { E2EE_RESET_TYPE, E2EE_TYPE, type E2ee } from './e2ee.ts'
import { GROUP_TYPE, SENDER_KEY_TYPE, type Rooms } from './rooms.ts'
import type { Gate } from './knock.ts'
import { toMessage, type InboundStage } from './inbound.ts'
import type { Message } from './types.ts'

/** Types the relay itself posts (from its own AMID, docs/protocol.md §17.7); one set, in @agentmesh/protocol, that the relay refuses from agents. */
export { RELAY_TYPES }
/**
 * Whether a relay may attest this envelope on its sender's behalf (`via`, a REST post,
 * docs/protocol.md §17.6): an ordinary message to a room only. A direct message, an encrypted one,
 * a reset notice or any other protocol type is vouched for by its sender's own signature or not at
 * all: the relay could otherwise speak for any agent (docs/security.md).
 */
export function attestable (env: Envelope): boolean {
  if (env.to.charCodeAt(0) !== 35) return false
  const t = env.type
  return !t.startsWith('e2ee') && !t.startsWith('agentmesh.') && !isRelayType(t)
}
/** Decrypt failures after which the sender is told to start a new session. */
const RESET_ON = new Set<string>([ErrorCode.UnknownSession, ErrorCode.DecryptFailed, ErrorCode.BadPrekey, ErrorCode.StateCloned])

export interface E2eeStageComponents {
  amid: string
  /** undefined only in tests of the plaintext protocol */
  e2ee: E2ee | undefined
  rooms: Rooms | undefined
  acceptPlaintext: boolean
  relayAmid: () => string | undefined
  closed: () => boolean
  /** tells a peer its message could not be decrypted (an unencrypted reset notice) */
  sendReset: (to: string, payload: Record<string, unknown>) => void
  /** a peer could not decrypt message `id` of this agent: send it again in a new session (sent.ts) */
  onPeerReset?: (peer: string, id: string | undefined) => void
  /** a message from this peer with this id was handed to the application before (a resend's first attempt) */
  seen?: (from: string, id: string) => boolean
  /** records a (sender, id) as handled, so a redelivery of it is dropped before anything is done (reset notices) */
  markSeen?: (from: string, id: string) => void
  /** the grant a peer presented with the first messages of a session (knock.ts restores it) */
  onGrant?: (peer: string, grant: unknown) => void
  warn: (w: AgentMeshError) => void
}

/**
 * End-to-end encryption: on arrival, pairwise and private room messages are set aside to be
 * decrypted in turn, a reset notice is acted on at once, and what this agent must not take is
 * dropped; in turn, the set-aside ones are decrypted.
 */
export function e2eeStage (c: E2eeStageComponents): InboundStage {
  return {
    name: 'e2ee',
    arrive (a) {
      const env = a.envelope
      const toRoom = env.to.charCodeAt(0) === 35
      if (env.via !== undefined && !attestable(env)) {
        // a relay-signed DM, reset or encrypted message: the relay speaking for a peer (docs/security.md)
        c.warn(new AgentMeshError(ErrorCode.AttestationRefused, `dropped delivery ${a.seq} (${env.id}): a ${env.type} ${toRoom ? 'room message' : 'direct message'} "from" ${env.from} signed by the relay (via ${env.via}), not by its sender; the relay may attest room posts only`))
        return 'consumed'
      }
      if (toRoom && env.type === GROUP_TYPE) {
        if (c.rooms === undefined) {
          c.warn(new AgentMeshError(ErrorCode.EncryptionRequired, `dropped private room message ${env.id}: this connection has no end-to-end encryption`))
          return 'consumed'
        }
        a.message = undefined // decrypted in order, when the application asks for it (next)
        return 'continue'
      }
      if (toRoom && env.type === E2EE_TYPE) {
        c.warn(new AgentMeshError(ErrorCode.InvalidEnvelope, `dropped delivery ${a.seq} (${env.id}): a pairwise encrypted message addressed to a room`))
        return 'consumed'
      }
      if (c.e2ee !== undefined && env.type === E2EE_RESET_TYPE) {
        // signed by the peer itself (a relay-attested one was refused above); recorded as handled,
        // so the same notice delivered again (a relay replaying it) is dropped as a duplicate
        c.markSeen?.(env.from, env.id)
        // acted on at once: the next message to the peer starts a new session
        if (c.e2ee.onReset(env.from)) {
          c.warn(new AgentMeshError(ErrorCode.UnknownSession, `${env.from} could not decrypt a message from this agent; the next message to it starts a new session`))
        }
        const failed = env.payload.id
        c.onPeerReset?.(env.from, typeof failed === 'string' ? failed : undefined)
        return 'consumed'
      }
      if (c.e2ee !== undefined && env.type === E2EE_TYPE) {
        a.message = undefined // decrypted in order, when the application asks for it (next)
        return 'continue'
      }
      if (c.e2ee !== undefined && !toRoom && env.from !== c.amid && env.from !== c.relayAmid() && c.e2ee.hasAnySession(env.from)) {
        // a peer this agent has a session with encrypts: its plaintext is a downgrade (docs/security.md)
        c.warn(new AgentMeshError(ErrorCode.PlaintextRefused, `dropped unencrypted message ${env.id} from ${env.from}: this agent has an end-to-end session with it, and takes only encrypted messages from it`))
        return 'consumed'
      }
      if (!c.acceptPlaintext && env.to === c.amid && env.from !== c.relayAmid()) {
        c.warn(new AgentMeshError(ErrorCode.PlaintextRefused, `dropped unencrypted message ${env.id} from ${env.from}: this agent accepts end-to-end encrypted messages only`))
        return 'consumed'
      }
      return 'continue'
    },
    async handle (ctx) {
      if (ctx.message !== undefined) return 'continue'
      const m = await open(c, ctx.envelope, ctx.seq, ctx.inStep)
      if (m === undefined) return 'consumed'
      // a resend whose first attempt was handed over after all (it was not lost): once is enough
      if (m.id !== ctx.envelope.id && c.seen?.(m.from, m.id) === true) return 'consumed'
      ctx.message = m
      return 'continue'
    },
  }
}

/** Decrypts a delivery; undefined (after a warning) when it cannot be. */
async function open (c: E2eeStageComponents, env: Envelope, seq: number, inStep?: () => void): Promise<Message | undefined> {
  const e2ee = c.e2ee!
  try {
    if (env.type === GROUP_TYPE && c.rooms !== undefined) {
      // only a member the room's signed chain proves is read from: not a ghost the relay let in
      if (!await c.rooms.provenMember(env.to.slice(1), env.from)) {
        c.warn(new AgentMeshError(ErrorCode.MembershipUnsigned, `dropped message ${env.id} in ${env.to} from ${env.from}: the room's signed membership does not list it (the relay let it in without the owner's signature)`))
        return undefined
      }
      return toMessage(env, seq, c.rooms.decrypt(env, inStep), true)
    }
    const d = await e2ee.decrypt(env, inStep)
    if (d.grant !== undefined) c.onGrant?.(env.from, d.grant)
    return toMessage(env, seq, d, true)
  } catch (err) {
    if (env.type === GROUP_TYPE) {
      c.warn(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.DecryptFailed, `dropped message ${env.id} in ${env.to}: ${(err as Error).message}`))
      return undefined
    }
    const e = AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.DecryptFailed, `dropped message ${env.id} from ${env.from}: ${(err as Error).message}`)
    c.warn(e)
    if (RESET_ON.has(e.code) && e2ee.shouldReset(env.from) && !c.closed()) {
      // tell the sender, so that its next message starts a new session instead of failing too
      c.sendReset(env.from, { id: env.id, code: e.code })
    }
    return undefined
  }
}

/** A member's sender key for a private room (a pairwise encrypted DM): kept, never handed over. */
export function senderKeyStage (c: { rooms: Rooms | undefined, warn: (w: AgentMeshError) => void }): InboundStage {
  return {
    name: 'sender-keys',
    handle (ctx) {
      const m = ctx.message
      if (m === undefined || m.type !== SENDER_KEY_TYPE || !m.encrypted || m.room !== undefined) return 'continue'
      try { c.rooms?.accept(m.from, m.payload) } catch (err) {
        c.warn(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.InvalidArgument, `dropped a sender key from ${m.from}: ${(err as Error).message}`))
      }
      return 'consumed'
    },
  }
}

/** The relay's own posts (task requests, timeline events): not a peer, no grant needed; only its own types, or room events. */
export function relayStage (c: { relayAmid: () => string | undefined }): InboundStage {
  return {
    name: 'relay',
    handle (ctx) {
      const m = ctx.message
      if (m === undefined || m.from !== c.relayAmid()) return 'continue'
      return !RELAY_TYPES.has(m.type) && m.room === undefined ? 'consumed' : 'continue'
    },
  }
}

/** A peer's room message: the room is the consent (the agent joined it); still a peer's words. */
export function roomStage (c: { relayAmid: () => string | undefined }): InboundStage {
  return {
    name: 'room',
    handle (ctx) {
      const m = ctx.message
      if (m !== undefined && m.room !== undefined && m.from !== c.relayAmid()) ctx.message = { ...m, untrusted: true }
      return 'continue'
    },
  }
}

/** A peer's direct message: knocks and answers are handled here; a peer without a grant is refused. */
export function gateStage (c: { gate: () => Gate | undefined, relayAmid: () => string | undefined }): InboundStage {
  return {
    name: 'gate',
    async handle (ctx) {
      const m = ctx.message
      const gate = c.gate()
      if (m === undefined || gate === undefined || m.room !== undefined || m.from === c.relayAmid()) return 'continue'
      const judged = await gate.inbound(m)
      if (judged === undefined) return 'consumed'
      ctx.message = judged
      return 'continue'
    },
  }
}
