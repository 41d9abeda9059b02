/**
 * PQXDH key agreement (Signal, "The PQXDH Key Agreement Protocol", revision 3), with
 * curve = curve25519, hash = SHA-256, pqkem = ML-KEM-768 (FIPS 203), on Node's X25519 and
 * HKDF and ML-KEM-768 from ml-kem.ts (@noble/post-quantum).
 *
 * The identity key IK of the spec is the agent's X25519 exchange key, itself signed by the agent's
 * Ed25519 identity (prekeys.ts). The associated data binds both halves of both identities:
 *   AD = Encode(IK_A) || Encode(IK_B),  Encode(IK) = EncodeEd25519(identity) || EncodeEC(exchange key)
 *
 * The responder deletes the one-time prekey only once the initial ciphertext has decrypted
 * (§3.4), so `acceptSession` takes the decryption as a callback.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { keyForAmid } from './envelope.ts'
import { mlKem768Decapsulate, mlKem768Encapsulate } from './ml-kem.ts'
import type { Identity } from './identity.ts'
import { decodeB64u, hkdfSha256, isUint32 } from './kdf.ts'
import { isAmid, publicKeyFromAmid, toB64u, verifyBytes } from './keys.ts'
import {
  ML_KEM_768_CIPHERTEXT_BYTES, encodeEd25519, exchangeKeySigningBytes, verifyBundle,
  type ExchangeKeyPair, type PreKeyBundle, type PreKeyStore, type SignedPreKeyRecord,
} from './prekeys.ts'
import { encodeX25519, generateX25519KeyPair, x25519, x25519PrivateKeyObject, x25519PublicKeyObject } from './x25519.ts'

/**
 * HKDF info: PQXDH §2.2 asks for the parameters info, curve, hash and pqkem joined with '_'
 * (its example: "MyProtocol_CURVE25519_SHA-512_CRYSTALS-KYBER-1024").
 */
export const PQXDH_INFO = 'AgentMesh_CURVE25519_SHA-256_ML-KEM-768'

/** PQXDH §2.2: F is 32 0xFF bytes for curve25519, so KM never starts like a valid scalar or point encoding. */
const F = new Uint8Array(32).fill(0xff)
/** PQXDH §2.2: a zero-filled salt as long as the hash output. */
const ZERO_SALT = new Uint8Array(32)
const INFO = new TextEncoder().encode(PQXDH_INFO)

/**
 * What the initiator sends with its first message(s) (PQXDH §3.3): who it is, its ephemeral key,
 * which prekeys it used, and the KEM ciphertext. JSON, keys in base64url.
 */
export interface InitialMessageHeader {
  /** the initiator's AMID (Ed25519 identity) */
  amid: string
  /** IK_A: the initiator's X25519 exchange key, and its identity's signature of it */
  exchange_key: string
  exchange_key_sig: string
  /** EK_A */
  ephemeral_key: string
  signed_prekey_id: number
  /** absent when the bundle had no one-time prekey left */
  one_time_prekey_id?: number
  pq_prekey_id: number
  /** present when the bundle had a one-time PQ prekey: CT is to that key, not to the last-resort `pq_prekey_id` */
  pq_one_time_prekey_id?: number
  /** CT: the ML-KEM-768 ciphertext to the responder's PQ prekey (the one-time one when named) */
  kem_ciphertext: string
}

export interface InitiatedSession {
  /** SK, 32 bytes */
  sharedSecret: Uint8Array
  /** AD = Encode(IK_A) || Encode(IK_B) */
  associatedData: Uint8Array
  /** the responder's AMID */
  peer: string
  /** the responder's signed prekey: its first ratchet public key (Double Ratchet §5.1) */
  peerSignedPreKey: Uint8Array
  initialMessageHeader: InitialMessageHeader
  /** ms since the epoch */
  createdAt: number
}

export interface AcceptedSession {
  sharedSecret: Uint8Array
  associatedData: Uint8Array
  /** the initiator's AMID, its exchange key verified against it */
  peer: string
  /** the responder's signed prekey: its first ratchet key pair (Double Ratchet §5.1) */
  signedPreKey: SignedPreKeyRecord
  header: InitialMessageHeader
  /** ms since the epoch */
  createdAt: number
}

/** Encode(IK) for AD: the Ed25519 identity key, then the X25519 exchange key, each with its type byte. */
function encodeIdentity (identityKey: Uint8Array, exchangeKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(66)
  out.set(encodeEd25519(identityKey), 0)
  out.set(encodeX25519(exchangeKey), 33)
  return out
}

/** AD = Encode(IK_A) || Encode(IK_B) (PQXDH §3.3). */
export function sessionAssociatedData (
  initiator: { identityKey: Uint8Array, exchangeKey: Uint8Array },
  responder: { identityKey: Uint8Array, exchangeKey: Uint8Array },
): Uint8Array {
  const out = new Uint8Array(132)
  out.set(encodeIdentity(initiator.identityKey, initiator.exchangeKey), 0)
  out.set(encodeIdentity(responder.identityKey, responder.exchangeKey), 66)
  return out
}

/** SK = KDF(DH1 || DH2 || DH3 [|| DH4] || SS) (PQXDH §2.2, §3.3). Wipes its inputs. */
function kdf (parts: Uint8Array[]): Uint8Array {
  let len = F.length
  for (const p of parts) len += p.length
  const km = new Uint8Array(len)
  km.set(F, 0)
  let off = F.length
  for (const p of parts) { km.set(p, off); off += p.length; p.fill(0) }
  const sk = new Uint8Array(hkdfSha256(km, ZERO_SALT, INFO, 32))
  km.fill(0)
  return sk
}

export interface InitiateOptions {
  now: number
  /**
   * The AMID whose bundle was asked for. A bundle is self-signed, so whoever hands it out could hand
   * out their own: with this set, a bundle of anyone else is refused. @default no check
   */
  peer?: string
}

/**
 * The initiator's side (PQXDH §3.3): verifies the bundle's signatures, runs the four DHs and the
 * encapsulation, and answers SK, AD and the header to send. Throws AM_ERR_BAD_PREKEY for a bundle
 * that does not verify or holds an unusable key.
 */
export function initiateSession (me: Identity, myExchangeKey: ExchangeKeyPair, bundle: PreKeyBundle, opts: InitiateOptions): InitiatedSession {
  const b = verifyBundle(bundle)
  if (opts.peer !== undefined && b.amid !== opts.peer) {
    throw new AgentMeshError(ErrorCode.BadPrekey, `prekey bundle: it is ${b.amid}'s, not ${opts.peer}'s`)
  }
  const ek = generateX25519KeyPair()
  const dh: Uint8Array[] = []
  let spkB
  try {
    spkB = x25519PublicKeyObject(b.signedPreKey.key) // imported once for DH1 and DH3
    dh.push(x25519(myExchangeKey.privateKeyObject, spkB)) // DH1 = DH(IK_A, SPK_B)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.BadPrekey, 'prekey bundle: signed_prekey.key is not a usable X25519 key', { cause })
  }
  try {
    dh.push(x25519(ek.privateKeyObject, b.exchangeKey)) // DH2 = DH(EK_A, IK_B)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.BadPrekey, 'prekey bundle: exchange_key is not a usable X25519 key', { cause })
  }
  dh.push(x25519(ek.privateKeyObject, spkB)) // DH3 = DH(EK_A, SPK_B)
  if (b.oneTimePreKey !== undefined) {
    try {
      dh.push(x25519(ek.privateKeyObject, b.oneTimePreKey.key)) // DH4 = DH(EK_A, OPK_B)
    } catch (cause) {
      throw new AgentMeshError(ErrorCode.BadPrekey, 'prekey bundle: one_time_prekey.key is not a usable X25519 key', { cause })
    }
  }
  let kem: { cipherText: Uint8Array, sharedSecret: Uint8Array }
  try {
    kem = mlKem768Encapsulate((b.pqOneTimePreKey ?? b.pqPreKey).key) // (CT, SS) = PQKEM-ENC(PQPK_B): the one-time PQOPK when there is one (§3.3)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.BadPrekey, `prekey bundle: ${b.pqOneTimePreKey === undefined ? 'pq_prekey' : 'pq_one_time_prekey'}.key is not a valid ML-KEM-768 key`, { cause })
  }
  dh.push(kem.sharedSecret)
  const sharedSecret = kdf(dh)
  ek.secretKey.fill(0) // the ephemeral private key is not needed again (§3.3: Alice deletes it)

  const associatedData = sessionAssociatedData(
    { identityKey: me.publicKey, exchangeKey: myExchangeKey.publicKey },
    { identityKey: b.identityKey, exchangeKey: b.exchangeKey },
  )
  return {
    sharedSecret,
    associatedData,
    peer: b.amid,
    peerSignedPreKey: b.signedPreKey.key,
    initialMessageHeader: {
      amid: me.amid,
      exchange_key: toB64u(myExchangeKey.publicKey),
      exchange_key_sig: toB64u(myExchangeKey.signature),
      ephemeral_key: toB64u(ek.publicKey),
      signed_prekey_id: b.signedPreKey.id,
      ...(b.oneTimePreKey === undefined ? {} : { one_time_prekey_id: b.oneTimePreKey.id }),
      pq_prekey_id: b.pqPreKey.id,
      ...(b.pqOneTimePreKey === undefined ? {} : { pq_one_time_prekey_id: b.pqOneTimePreKey.id }),
      kem_ciphertext: toB64u(kem.cipherText),
    },
    createdAt: opts.now,
  }
}

function badInitial (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.BadPrekey, `initial message: ${what}`)
}

/** Checks an initial message header's shape and the initiator's exchange-key signature. */
export function verifyInitialMessageHeader (header: InitialMessageHeader): {
  identityKey: Uint8Array, exchangeKey: Uint8Array, ephemeralKey: Uint8Array, kemCiphertext: Uint8Array,
} {
  const h = header as unknown as Record<string, unknown>
  if (typeof h !== 'object' || h === null) throw badInitial('the prekey header is not an object')
  if (typeof h.amid !== 'string' || !isAmid(h.amid)) throw badInitial('amid is not an AMID')
  const exchangeKey = decodeB64u(h.exchange_key, 32)
  if (exchangeKey === undefined) throw badInitial('exchange_key is not a 32-byte base64url key')
  const sig = decodeB64u(h.exchange_key_sig, 64)
  if (sig === undefined || !verifyBytes(keyForAmid(h.amid), exchangeKeySigningBytes(exchangeKey), sig)) {
    throw badInitial(`exchange_key_sig does not verify with the identity of ${h.amid}`)
  }
  const ephemeralKey = decodeB64u(h.ephemeral_key, 32)
  if (ephemeralKey === undefined) throw badInitial('ephemeral_key is not a 32-byte base64url key')
  if (!isUint32(h.signed_prekey_id)) throw badInitial('signed_prekey_id is not an integer in 0…4294967295')
  if (h.one_time_prekey_id !== undefined && !isUint32(h.one_time_prekey_id)) throw badInitial('one_time_prekey_id is not an integer in 0…4294967295')
  if (!isUint32(h.pq_prekey_id)) throw badInitial('pq_prekey_id is not an integer in 0…4294967295')
  if (h.pq_one_time_prekey_id !== undefined && !isUint32(h.pq_one_time_prekey_id)) throw badInitial('pq_one_time_prekey_id is not an integer in 0…4294967295')
  const kemCiphertext = decodeB64u(h.kem_ciphertext, ML_KEM_768_CIPHERTEXT_BYTES)
  if (kemCiphertext === undefined) throw badInitial(`kem_ciphertext is not a ${ML_KEM_768_CIPHERTEXT_BYTES}-byte base64url ML-KEM-768 ciphertext`)
  return { identityKey: publicKeyFromAmid(h.amid), exchangeKey, ephemeralKey, kemCiphertext }
}

export interface AcceptOptions<T> {
  now: number
  /** The AMID the initial message came from (the envelope's verified sender); a header naming another is refused. @default no check */
  from?: string
  /**
   * Decrypts the initial ciphertext with SK and AD (PQXDH §3.4) and answers what it got; throwing
   * aborts the protocol: nothing is deleted and the error propagates.
   */
  open: (session: AcceptedSession) => T | Promise<T>
}

/**
 * The responder's side (PQXDH §3.4): loads the prekeys the header names, repeats the DHs and the
 * decapsulation, and hands SK and AD to `opts.open`. Only when that succeeds are the one-time
 * prekeys (curve and PQ) deleted, atomically: of two messages naming one, at most one is accepted.
 * Throws AM_ERR_BAD_PREKEY for a malformed header, a bad exchange-key signature, or a prekey that
 * is not held (a one-time prekey already used, a signed prekey rotated out).
 */
export async function acceptSession<T> (
  me: Identity, myExchangeKey: ExchangeKeyPair, store: PreKeyStore, header: InitialMessageHeader, opts: AcceptOptions<T>,
): Promise<AcceptedSession & { opened: T }> {
  const h = verifyInitialMessageHeader(header)
  if (opts.from !== undefined && header.amid !== opts.from) throw badInitial(`its header names ${header.amid}, but it came from ${opts.from}`)
  const spk = await store.loadSignedPreKey(header.signed_prekey_id)
  if (spk === undefined) throw badInitial(`signed prekey ${header.signed_prekey_id} is not held (replaced longer ago than the grace period, or never issued)`)
  // a one-time PQ prekey, when named, is the one CT is for; the last-resort key is not needed then
  const pqoId = header.pq_one_time_prekey_id
  const pq = pqoId === undefined ? await store.loadPqPreKey(header.pq_prekey_id) : await store.loadPqOneTimePreKey(pqoId)
  if (pqoId !== undefined && pq === undefined) throw badInitial(`one-time PQ prekey ${pqoId} is not held: already used, or never issued`)
  if (pq === undefined) throw badInitial(`PQ prekey ${header.pq_prekey_id} is not held (replaced longer ago than the grace period, or never issued)`)
  const opkId = header.one_time_prekey_id
  const opk = opkId === undefined ? undefined : await store.loadOneTimePreKey(opkId)
  if (opkId !== undefined && opk === undefined) throw badInitial(`one-time prekey ${opkId} is not held: already used, or never issued`)

  const spkKey = x25519PrivateKeyObject(spk.secretKey, true, spk.publicKey)
  const dh: Uint8Array[] = []
  try {
    const ekA = x25519PublicKeyObject(h.ephemeralKey) // imported once for DH2, DH3, DH4
    dh.push(x25519(spkKey, h.exchangeKey)) // DH1 = DH(SPK_B, IK_A)
    dh.push(x25519(myExchangeKey.privateKeyObject, ekA)) // DH2 = DH(IK_B, EK_A)
    dh.push(x25519(spkKey, ekA)) // DH3 = DH(SPK_B, EK_A)
    // a one-time key is used once: not cached
    if (opk !== undefined) dh.push(x25519(x25519PrivateKeyObject(opk.secretKey, false, opk.publicKey), ekA)) // DH4 = DH(OPK_B, EK_A)
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.BadPrekey, 'initial message: exchange_key or ephemeral_key is not a usable X25519 key', { cause })
  }
  dh.push(mlKem768Decapsulate(h.kemCiphertext, pq.secretKey)) // SS = PQKEM-DEC(PQPK_B, CT)
  const session: AcceptedSession = {
    sharedSecret: kdf(dh),
    associatedData: sessionAssociatedData(
      { identityKey: h.identityKey, exchangeKey: h.exchangeKey },
      { identityKey: me.publicKey, exchangeKey: myExchangeKey.publicKey },
    ),
    peer: header.amid,
    signedPreKey: spk,
    header,
    createdAt: opts.now,
  }
  let opened: T
  try {
    opened = await opts.open(session)
  } catch (err) {
    session.sharedSecret.fill(0) // §3.4: "Bob aborts the protocol and deletes SK"
    throw err
  }
  // §3.4: the one-time prekey's private key is deleted for forward secrecy, once
  if (opkId !== undefined && !(await store.removeOneTimePreKey(opkId))) {
    throw badInitial(`one-time prekey ${opkId} was used by another initial message meanwhile`)
  }
  if (pqoId !== undefined && !(await store.removePqOneTimePreKey(pqoId))) {
    throw badInitial(`one-time PQ prekey ${pqoId} was used by another initial message meanwhile`)
  }
  return { ...session, opened }
}
