/**
 * PQXDH and the Double Ratchet put together (Double Ratchet §5.1: SK becomes the first root key,
 * AD the associated data, and the responder's signed prekey its first ratchet key pair).
 *
 * The initiator's messages carry the PQXDH header (`message.prekey`) until one of the responder's
 * replies has decrypted. On the responder:
 * - no session with the sender yet: `acceptInitialMessage`;
 * - a session whose `state.base` equals `message.prekey.ephemeral_key`: the message belongs to it,
 *   use `ratchetDecrypt` (this is how a duplicated initial message is caught as a replay);
 * - any other message with `prekey`: the peer started over; accepting it makes a new session.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import type { Identity } from './identity.ts'
import { acceptSession, initiateSession, type InitiateOptions } from './pqxdh.ts'
import type { ExchangeKeyPair, PreKeyBundle, PreKeyStore } from './prekeys.ts'
import { ratchetDecrypt, ratchetInitAlice, ratchetInitBob, type RatchetLimits, type RatchetMessage, type RatchetState } from './ratchet.ts'

/**
 * Starts a session from a peer's bundle: PQXDH as the initiator, then RatchetInitAlice. Encrypt
 * with `ratchetEncrypt`; the messages carry the PQXDH header until the peer has answered.
 * Throws AM_ERR_BAD_PREKEY for a bundle that does not verify.
 */
export function startSession (me: Identity, myExchangeKey: ExchangeKeyPair, bundle: PreKeyBundle, opts: InitiateOptions): { state: RatchetState, peer: string } {
  const s = initiateSession(me, myExchangeKey, bundle, opts)
  const state = ratchetInitAlice(s.sharedSecret, s.associatedData, s.peerSignedPreKey, { now: opts.now, prekey: s.initialMessageHeader })
  s.sharedSecret.fill(0)
  return { state, peer: s.peer }
}

/**
 * Accepts a first message carrying a PQXDH header: PQXDH as the responder, RatchetInitBob, and the
 * decryption of the message; the one-time prekey is deleted only when that succeeded. Pass the
 * envelope's sender as `from` (or compare it with the answered `peer`).
 * Throws AM_ERR_UNKNOWN_SESSION for a message without a PQXDH header, AM_ERR_BAD_PREKEY for a
 * header naming prekeys not held (a one-time prekey used before) or failing its signature, and
 * the ratchet's errors (AM_ERR_DECRYPT_FAILED …) for the message itself. `opts.binding`: the header
 * binding of the envelope that carried it (agentmesh/0.3, docs/protocol.md §14.3), appended to the
 * PQXDH AD and the ratchet header exactly as for every later message.
 */
export async function acceptInitialMessage (
  me: Identity, myExchangeKey: ExchangeKeyPair, store: PreKeyStore, message: RatchetMessage,
  opts: { now: number, from?: string, binding?: Uint8Array } & RatchetLimits,
): Promise<{ state: RatchetState, plaintext: Uint8Array, peer: string }> {
  const header = message.prekey
  if (header === undefined) {
    throw new AgentMeshError(ErrorCode.UnknownSession, 'no session with this peer, and the message carries no PQXDH header to start one')
  }
  const accepted = await acceptSession(me, myExchangeKey, store, header, {
    now: opts.now,
    ...(opts.from === undefined ? {} : { from: opts.from }),
    open: (s) => ratchetDecrypt(
      ratchetInitBob(s.sharedSecret, s.associatedData, s.signedPreKey, { now: opts.now, base: header.ephemeral_key }), message, opts, opts.binding),
  })
  accepted.sharedSecret.fill(0)
  return { state: accepted.opened.state, plaintext: accepted.opened.plaintext, peer: accepted.peer }
}
