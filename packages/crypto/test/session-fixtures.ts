/** Agents with prekeys, bundles as the relay hands them out, and small helpers for the session tests. */
import assert from 'node:assert/strict'
import { AgentMeshError, type ErrorCode } from '@agentmesh/protocol'
import {
  createIdentity, createPreKeyBundle, generateExchangeKey, generateOneTimePreKeys, generatePqPreKey, generateSignedPreKey,
  memoryPreKeyStore,
  type ExchangeKeyPair, type Identity, type OneTimePreKeyRecord, type PqPreKeyRecord, type PreKeyBundle, type PreKeyStore,
  type SignedPreKeyRecord,
} from '@agentmesh/crypto'

export const T0 = 1_763_900_000_000

export interface Agent {
  id: Identity
  xk: ExchangeKeyPair
  store: PreKeyStore
  spk: SignedPreKeyRecord
  pq: PqPreKeyRecord
  /** one-time prekeys not handed out yet (the relay's copy) */
  published: OneTimePreKeyRecord[]
}

export async function makeAgent (name: string, oneTime = 3): Promise<Agent> {
  const id = createIdentity(name)
  const xk = generateExchangeKey(id)
  const store = memoryPreKeyStore()
  const spk = generateSignedPreKey(id, 1, { now: T0 })
  const pq = generatePqPreKey(id, 1, { now: T0 })
  const published = generateOneTimePreKeys(100, oneTime)
  await store.storeSignedPreKey(spk)
  await store.storePqPreKey(pq)
  await store.storeOneTimePreKeys(published)
  return { id, xk, store, spk, pq, published: [...published] }
}

/** A bundle as the relay hands it out: each one-time prekey once, then none (last resort). JSON round-tripped. */
export function takeBundle (agent: Agent): PreKeyBundle {
  const opk = agent.published.shift()
  return JSON.parse(JSON.stringify(createPreKeyBundle(agent.id.amid, agent.xk, agent.spk, agent.pq, opk))) as PreKeyBundle
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)

/** The AgentMeshError `fn` threw (sync or async), after checking its code and, when given, its message. */
export async function rejects (fn: () => unknown, code: ErrorCode, message?: RegExp): Promise<AgentMeshError> {
  let err: unknown
  try {
    await fn()
  } catch (e) {
    err = e
  }
  assert.ok(err !== undefined, `expected ${code}, but nothing was thrown`)
  assert.ok(err instanceof AgentMeshError, `expected an AgentMeshError, got ${String(err)}`)
  assert.equal(err.code, code, err.message)
  assert.equal(err.name, 'AgentMeshError')
  if (message !== undefined) assert.match(err.message, message)
  return err
}

/** A seeded PRNG (mulberry32), so shuffled deliveries are reproducible. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function shuffle<T> (items: T[], rnd: () => number): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[a[i], a[j]] = [a[j]!, a[i]!]
  }
  return a
}
