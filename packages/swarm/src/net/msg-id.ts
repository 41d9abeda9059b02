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
 * On a region's internal topic (`<topic>#region/<r>`, `region-links.ts`) the gossipsub topic name
 * is hashed in too: gossipsub's `publish` refuses an id already in its (topic-blind) seen cache,
 * so an inter-region link could not carry a message from its region to the backbone under the
 * same id. On the public topic the id is unchanged (nodes without a region interoperate).
 */
import { createHash } from 'node:crypto'
import { decodeSwarmMessage, swarmMessageId, type SwarmMessage } from '../message.ts'

export type Decoded = { ok: true, msg: SwarmMessage, contentId: string } | { ok: false, error: unknown }

/** Bytes → decoded message, kept while gossipsub holds the bytes (the same array reaches msgIdFn and the validator). */
export class DecodeCache {
  private readonly cache = new WeakMap<Uint8Array, Decoded>()
  constructor (private readonly maxBytes: number) {}

  decode (data: Uint8Array): Decoded {
    let d = this.cache.get(data)
    if (d === undefined) {
      try {
        const msg = decodeSwarmMessage(data, { maxBytes: this.maxBytes })
        d = { ok: true, msg, contentId: swarmMessageId(msg) }
      } catch (error) {
        d = { ok: false, error }
      }
      this.cache.set(data, d)
    }
    return d
  }

  /** gossipsub's `msgIdFn` (20 bytes); `internalTopic`: the gossipsub topic when it is a region's. */
  msgId (data: Uint8Array, internalTopic?: string): Uint8Array {
    const d = this.decode(data)
    const h = createHash('sha256')
    if (d.ok) h.update('swarm-gossip-id\n' + d.contentId + '.' + d.msg.sig + (internalTopic === undefined ? '' : '\n' + internalTopic))
    else h.update('swarm-gossip-raw\n').update(data)
    return new Uint8Array(h.digest().subarray(0, 20))
  }
}
