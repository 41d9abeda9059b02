/**
 * Keeping the relay's registry stocked with this agent's prekeys (docs/protocol.md §14.1): the
 * bundle base (exchange key, signed prekey, ML-KEM-768 last-resort prekey) when it changed, and
 * one-time prekeys of both kinds — X25519 and signed ML-KEM-768 (PQXDH §3.2) — up to their targets
 * when the relay reports fewer than their low-water marks. The private parts are sealed in the
 * agent's state before the public parts leave; each is deleted when an initial message used it
 * (e2ee.ts).
 */
import {
  generateOneTimePreKeys, generatePqOneTimePreKeys, oneTimePreKeyPublic, pqOneTimePreKeyPublic, preKeyBundleBase, rotatePreKeys,
  type ExchangeKeyPair, type Identity, type OneTimePreKeyRecord, type PqOneTimePreKeyRecord, type PreKeyStore,
} from '@agentmesh/crypto'
import { MAX_PQ_PREKEYS_PER_UPLOAD, MAX_PREKEYS_PER_UPLOAD, type ApiAnswer, type ApiBody, type RouteName } from '@agentmesh/protocol'
import type { ClientState } from './state.ts'

export const DEFAULT_PREKEY_LOW_WATER = 20
export const DEFAULT_PREKEY_TARGET = 100
/**
 * One-time ML-KEM-768 prekeys: top up below 10, to 40. A key pair takes about 1.3 ms to make and
 * 1,184 + 2,400 bytes to keep (about 4.9 KB sealed in the state, 1.7 KB at the relay), so a full
 * batch of 40 costs about 50 ms and two uploads.
 */
export const DEFAULT_PQ_PREKEY_LOW_WATER = 10
export const DEFAULT_PQ_PREKEY_TARGET = 40
export const DEFAULT_PREKEY_CHECK_MS = 6 * 60 * 60 * 1000
/** Most one-time prekeys kept locally (the oldest unused ones go first). */
export const MAX_LOCAL_ONE_TIME_PREKEYS = 5000
/** Most one-time PQ prekeys kept locally (the oldest unused ones go first): about 1 MB sealed. */
export const MAX_LOCAL_PQ_ONE_TIME_PREKEYS = 200

export interface PrekeyPolicy {
  /** Top up when fewer one-time prekeys than this remain on the relay. @default 20 */
  lowWater: number
  /** …up to this many. @default 100 */
  target: number
  /** Top up when fewer one-time ML-KEM-768 prekeys than this remain on the relay. @default 10 */
  pqLowWater?: number
  /** …up to this many (the registry holds at most 100). @default 40 */
  pqTarget?: number
  /** How often to check. @default 6 hours */
  checkMs: number
}

/** Record kinds of the one-time prekeys' private parts in the state (e2ee.ts seals them). */
export const OPK_KIND = 'opk'
export const PQ_OPK_KIND = 'pqo'

/** What the upload needs from the E2EE layer. */
export interface PrekeyUploadContext {
  identity: Identity
  state: ClientState
  httpBase: string
  policy: PrekeyPolicy
  store: PreKeyStore
  exchangeKey: ExchangeKeyPair
  /** seals a record into the state (inside the caller's transaction when there is one) */
  put: (kind: string, key: string, value: unknown) => void
  http: <R extends RouteName>(route: R, path: string, body?: ApiBody<R>, signed?: boolean) => Promise<ApiAnswer<R>>
}

/** Ids `first … first + n - 1` from the counter `name` in the state's meta, reserved in one step. */
function reserveIds (state: ClientState, name: string, n: number): number {
  return state.transaction(() => {
    const first = Number(state.metaGet(name) ?? '1')
    state.metaSet(name, String(first + n))
    return first
  })
}

/** Deletes the oldest records of `kind` past `max`. */
function trim (state: ClientState, kind: string, max: number): void {
  const all = state.recordList(kind)
  for (const r of all.slice(0, Math.max(0, all.length - max))) state.recordDelete(kind, r.key)
}

/**
 * Makes sure the relay holds this agent's current prekeys: rotates the signed and PQ prekeys when
 * due, uploads the bundle base when it changed, and one-time prekeys of each kind up to its target
 * when fewer than its low-water mark remain.
 */
export async function uploadPrekeys (ctx: PrekeyUploadContext): Promise<void> {
  const { state, policy } = ctx
  const now = Date.now()
  const rotated = await rotatePreKeys(ctx.identity, ctx.store, { now })
  const base = preKeyBundleBase(ctx.exchangeKey, rotated.signedPreKey, rotated.pqPreKey)
  const baseText = JSON.stringify(base)
  const baseKey = `uploaded_base ${ctx.httpBase}`
  const path = `/api/v1/agents/${ctx.identity.amid}/prekeys`
  // the first upload from this state to this relay replaces whatever one-time prekeys it holds:
  // after a lost state their secrets are gone, and a bundle with one would start a dead session
  const fresh = state.metaGet(baseKey) === undefined
  const counts = await ctx.http('countPrekeys', path, undefined, false) as Partial<ApiAnswer<'countPrekeys'>> | undefined
  const have = fresh ? 0 : Number(counts?.one_time ?? 0)
  // a relay that does not count one-time PQ prekeys does not take them either
  const pqSupported = typeof counts?.pq_one_time === 'number'
  const havePq = fresh ? 0 : Number(counts?.pq_one_time ?? 0)

  let send: OneTimePreKeyRecord[] = []
  if (have < policy.lowWater) {
    const n = Math.max(0, policy.target - have)
    send = state.transaction(() => {
      const first = reserveIds(state, 'next_one_time_id', n)
      const made = generateOneTimePreKeys(first, n)
      for (const r of made) ctx.put(OPK_KIND, String(r.id), r)
      // keep the local store bounded: the oldest unused keys were handed out long ago or lost with a relay's data
      trim(state, OPK_KIND, MAX_LOCAL_ONE_TIME_PREKEYS)
      return made
    })
  }
  let sendPq: PqOneTimePreKeyRecord[] = []
  if (pqSupported && havePq < (policy.pqLowWater ?? DEFAULT_PQ_PREKEY_LOW_WATER)) {
    const n = Math.max(0, (policy.pqTarget ?? DEFAULT_PQ_PREKEY_TARGET) - havePq)
    // made outside the state's write lock (about 1.3 ms each), under ids reserved first
    const made = generatePqOneTimePreKeys(ctx.identity, reserveIds(state, 'next_pq_one_time_id', n), n)
    sendPq = state.transaction(() => {
      for (const r of made) ctx.put(PQ_OPK_KIND, String(r.id), r)
      trim(state, PQ_OPK_KIND, MAX_LOCAL_PQ_ONE_TIME_PREKEYS)
      return made
    })
  }
  // the base goes with every one-time upload too: a relay that lost its data has neither
  let uploadBase = send.length > 0 || sendPq.length > 0 || state.metaGet(baseKey) !== baseText || rotated.rotated.signed || rotated.rotated.pq
  if (!uploadBase && send.length === 0 && sendPq.length === 0) return
  let replace = fresh
  do {
    const chunk = send.splice(0, MAX_PREKEYS_PER_UPLOAD)
    const pqChunk = sendPq.splice(0, MAX_PQ_PREKEYS_PER_UPLOAD)
    await ctx.http('putPrekeys', path, {
      ...(uploadBase ? { base } : {}),
      ...(chunk.length > 0 ? { one_time: chunk.map(oneTimePreKeyPublic) } : {}),
      ...(pqChunk.length > 0 ? { pq_one_time: pqChunk.map(pqOneTimePreKeyPublic) } : {}),
      ...(replace ? { replace_one_time: true } : {}),
    })
    replace = false
    if (uploadBase) state.metaSet(baseKey, baseText)
    uploadBase = false
  } while (send.length > 0 || sendPq.length > 0)
}
