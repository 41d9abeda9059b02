/**
 * A connection that acts with a session key (docs/protocol.md §3, §8, §13.1): the key of a
 * short-lived session certificate the agent's identity key signed (`agentmesh cert session`). The
 * connection answers the relay's challenge with it and signs every envelope with it (the envelope
 * carries the certificate); and every delivered envelope that carries a session certificate is
 * checked here: the certificate is its sender's (signed by the key of `from`), valid at the
 * envelope's `ts`, and the envelope's signature is the session key's. Envelopes without one take
 * the default path in connection.ts, unchanged.
 */
import { AgentMeshError, ErrorCode, type Envelope } from '@agentmesh/protocol'
import {
  CertificateError, loadSession, sessionKeyOf, signChallenge, signEnvelope, signSessionChallenge, signSessionEnvelope,
  verifyEnvelope, type EnvelopeInit, type Identity, type Session,
} from '@agentmesh/crypto'

export type { Session } from '@agentmesh/crypto'

/**
 * The session `connect()` uses: `session` (a loaded Session, or the path of a session certificate
 * file with its `.key` next to it), else `$AGENTMESH_SESSION`; none when both are unset or empty.
 * It must be a session of `identity`'s agent.
 */
export function resolveSession (identity: Identity, session: Session | string | undefined, env: NodeJS.ProcessEnv = process.env): Session | undefined {
  const given = session ?? env.AGENTMESH_SESSION
  if (given === undefined || given === '') return undefined
  const s = typeof given === 'string' ? loadSession(given) : given
  if (s.amid !== identity.amid) {
    throw new AgentMeshError(ErrorCode.CertInvalid, `the session certificate is of ${s.amid}, not of this agent (${identity.amid}); issue one from this home (\`agentmesh cert session\`)`)
  }
  if (Date.now() > s.notAfter.getTime()) {
    throw new AgentMeshError(ErrorCode.CertExpired, `the session certificate expired at ${s.notAfter.toISOString()}; issue a new one (\`agentmesh cert session\`)`)
  }
  return s
}

/** The auth frame's signature fields: by the session key with its certificate, or by the identity key. */
export function authSignature (identity: Identity, session: Session | undefined, nonce: string, relay: string): { sig: string, session_cert?: string, session_chain?: string[] } {
  return session === undefined ? { sig: signChallenge(identity, identity.amid, nonce, relay) } : signSessionChallenge(session, nonce, relay)
}

/** Signs an outgoing envelope: with the session key (carrying its certificate), or the identity key. */
export function signOutgoing (identity: Identity, session: Session | undefined, init: EnvelopeInit): Envelope {
  return session === undefined ? signEnvelope(identity, init) : signSessionEnvelope(session, init)
}

/**
 * Why a delivered envelope carrying a session certificate is dropped, or undefined when its
 * certificate and signature hold: AM_ERR_CERT_* for the certificate, AM_ERR_BAD_SIGNATURE for the
 * signature.
 */
export function sessionEnvelopeError (env: Envelope): AgentMeshError | undefined {
  try {
    return verifyEnvelope(env, sessionKeyOf(env)) ? undefined : new AgentMeshError(ErrorCode.BadSignature, 'bad signature (not the key of its session certificate)')
  } catch (err) {
    if (err instanceof CertificateError) return err
    return new AgentMeshError(ErrorCode.CertInvalid, `its session certificate cannot be checked: ${(err as Error).message}`)
  }
}
