/**
 * An agent's libp2p identity is its AMID key: the same Ed25519 key pair, so the peer id a
 * Noise handshake authenticates names exactly one AMID, and the other way round.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { amidFromPublicKey, publicKeyFromAmid, type KeyPair } from '@agentmesh/crypto'

/** The libp2p private key of an agent: its Ed25519 seed, as libp2p's key type. */
export async function libp2pKey (keys: Pick<KeyPair, 'secretKey'>): Promise<Ed25519PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', keys.secretKey)
}

/** The peer id an AMID is reached as. Throws RangeError when `amid` is not one. */
export function peerIdFromAmid (amid: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromAmid(amid)))
}

/**
 * The AMID behind a peer id, or undefined when the peer's key is not an Ed25519 key (an
 * RSA or secp256k1 peer cannot be an agent).
 */
export function amidFromPeerId (peer: PeerId | string): string | undefined {
  const id = typeof peer === 'string' ? safePeerId(peer) : peer
  if (id === undefined || id.type !== 'Ed25519' || id.publicKey === undefined) return undefined
  return amidFromPublicKey(id.publicKey.raw)
}

function safePeerId (s: string): PeerId | undefined {
  try { return peerIdFromString(s) } catch { return undefined }
}
