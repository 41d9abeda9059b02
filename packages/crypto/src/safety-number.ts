/**
 * Safety numbers, as Signal computes them (libsignal's NumericFingerprintGenerator, version 2 of
 * the scannable format aside): for each side, 5,200 rounds of SHA-512 over its public key and
 * stable identifier give 30 digits; the two halves, lower first, make the 60-digit number both
 * sides see.
 *
 * An agent's public key here is its Ed25519 identity (the AMID) followed by its X25519 exchange
 * key, so the number changes when either changes. The stable identifier is the AMID.
 */
import { createHash } from 'node:crypto'
import { encodeEd25519 } from './prekeys.ts'
import { encodeX25519 } from './x25519.ts'
import { publicKeyFromAmid } from './keys.ts'

const VERSION = Buffer.from([0x00, 0x00])
export const SAFETY_NUMBER_ITERATIONS = 5200

function half (amid: string, exchangeKey: Uint8Array): string {
  const key = Buffer.concat([encodeEd25519(publicKeyFromAmid(amid)), encodeX25519(exchangeKey)])
  const id = Buffer.from(amid, 'utf8')
  let hash: Buffer = createHash('sha512').update(VERSION).update(key).update(id).digest()
  for (let i = 1; i < SAFETY_NUMBER_ITERATIONS; i++) hash = createHash('sha512').update(hash).update(key).digest()
  let out = ''
  for (let i = 0; i < 30; i += 5) {
    const chunk = hash.readUIntBE(i, 5) % 100000
    out += String(chunk).padStart(5, '0')
  }
  return out
}

/** The 60-digit safety number of two agents (the same whichever side computes it). */
export function safetyNumber (a: { amid: string, exchangeKey: Uint8Array }, b: { amid: string, exchangeKey: Uint8Array }): string {
  const x = half(a.amid, a.exchangeKey)
  const y = half(b.amid, b.exchangeKey)
  return x < y ? x + y : y + x
}

/** 60 digits as 12 groups of 5, as Signal shows them. */
export function formatSafetyNumber (digits: string): string {
  return digits.match(/.{1,5}/g)?.join(' ') ?? digits
}
