/**
 * gossipsub's message id for a swarm message, and the one decode both the id function and the
 * topic validator share.
 *
 * gossipsub computes the id *before* validation and puts it in its seen cache whatever the verdict.
 * An id an attacker chooses (the `id` field as sent) would let a forged copy claim a real message's
 * id first, and the real one would then be dropped as a duplicate everywhere the forgery got first
 * (seen-cache poisoning). So the gossip id is SHA-256 over the content id *recomputed* from the
 * content (`swarmMessageId`) and the signature: a copy with other content or another signature
 * has another gossip id, while two encodings of the same signed message share one. Undecodable
 * bytes get an id of their bytes' hash (and the validator rejects them).
 *
 * Copies. gossipsub forwards the bytes it received, so nearly every duplicate copy is
 * byte-identical to the first; decoding it and canonicalising it again only to find its gossip id
 * in the seen cache was most of what a duplicate cost (docs/swarm.md, "Figures measured here").
 * `fastMsgId` (gossipsub's `fastMsgIdFn`) is SHA-256 over the raw bytes, truncated to 128 bits:
 * gossipsub maps it to the gossip id of the first copy and drops a copy with the same bytes
 * before any decode. It must resist collisions, not just spread well: a forgery whose bytes
 * collided with a real message's fast id, sent first, would have the real one dropped.
 *
 * The content id computed here for the gossip id is also the one the signature check needs
 * (`verify`): the validator does not hash the content a second time.
 *
 * On a region's internal topic (`<topic>#region/<r>`, `region-links.ts`) the gossipsub topic name
 * is hashed in too: gossipsub's `publish` refuses an id already in its (topic-blind) seen cache,
 * so an inter-region link could not carry a message from its region to the backbone under the
 * same id. On the public topic the id is unchanged (nodes without a region interoperate).
 */
import { createHash } from 'node:crypto'
import { decodeSwarmMessage, swarmMessageId, verifySwarmMessage, type SwarmMessage } from '../message.ts'

export type Decoded = { ok: true, msg: SwarmMessage, contentId: string } | { ok: false, error: unknown }

/** Bytes → decoded message, kept while gossipsub holds the bytes (the same array reaches msgIdFn and the validator). */
export class DecodeCache {
  private readonly cache = new WeakMap<Uint8Array, Decoded>()
  /** content ids of the messages decoded here, for `verify` (kept while the message object lives) */
  private readonly contentIds = new WeakMap<SwarmMessage, string>()
  constructor (private readonly maxBytes: number) {}

  decode (data: Uint8Array): Decoded {
    let d = this.cache.get(data)
    if (d === undefined) {
      try {
        const msg = decodeSwarmMessage(data, { maxBytes: this.maxBytes })
        d = { ok: true, msg, contentId: swarmMessageId(msg) }
        this.contentIds.set(msg, d.contentId)
      } catch (error) {
        d = { ok: false, error }
      }
      this.cache.set(data, d)
    }
    return d
  }

  /** gossipsub's `fastMsgIdFn`: SHA-256 of the raw bytes, 128 bits, base64url. */
  fastMsgId (data: Uint8Array | undefined): string {
    return createHash('sha256').update(data ?? new Uint8Array(0)).digest().subarray(0, 16).toString('base64url')
  }

  /** The validator's signature check, with the content id already computed for a message decoded here. */
  readonly verify = (m: SwarmMessage): boolean => verifySwarmMessage(m, undefined, this.contentIds.get(m))

  /** gossipsub's `msgIdFn` (20 bytes); `internalTopic`: the gossipsub topic when it is a region's. */
  msgId (data: Uint8Array, internalTopic?: string): Uint8Array {
    const d = this.decode(data)
    const h = createHash('sha256')
    if (d.ok) h.update('swarm-gossip-id\n' + d.contentId + '.' + d.msg.sig + (internalTopic === undefined ? '' : '\n' + internalTopic))
    else h.update('swarm-gossip-raw\n').update(data)
    return new Uint8Array(h.digest().subarray(0, 20))
  }
}
