/**
 * End-to-end encryption figures: the session layer of @agentmesh/crypto (PQXDH + Double Ratchet)
 * measured on the generator's main thread (one core; OpenSSL's work runs on the calling thread),
 * and the helpers the E2EE relay target uses (agents with prekeys, established sessions, the
 * bench's wire form of a ratchet message).
 *
 *  - session setups/s: verify the responder's bundle + PQXDH as the initiator + RatchetInitAlice
 *    (startSession), encrypt the first message, and the responder's acceptInitialMessage (PQXDH as
 *    the responder, RatchetInitBob, decrypting that message, deleting the one-time prekey);
 *  - encrypt+decrypt msg/s: ratchetEncrypt on one side and ratchetDecrypt of its message on the
 *    other, for 256-byte and 64-KiB plaintexts, one direction (the symmetric-key ratchet only), and
 *    alternating directions (a Diffie-Hellman ratchet step on every message).
 */
import { PROTOCOL_E2EE } from '@agentmesh/protocol'
import {
  acceptInitialMessage, createIdentity, envelopeHeaderBinding, createPreKeyBundle, generateExchangeKey, generateOneTimePreKeys, generatePqPreKey,
  generateSignedPreKey, memoryPreKeyStore, ratchetDecrypt, ratchetEncrypt, startSession,
  type ExchangeKeyPair, type Identity, type OneTimePreKeyRecord, type PqPreKeyRecord, type PreKeyBundle, type PreKeyStore,
  type RatchetHeader, type RatchetMessage, type RatchetState, type SignedPreKeyRecord,
} from '@agentmesh/crypto'
import { mlKem768Ready } from '@agentmesh/crypto/internal'
import { round } from './util.ts'

/** The goal: 256-byte messages encrypted and decrypted per second on one core. */
export const GOAL_MESSAGES_PER_S = 20_000

// ---------------------------------------------------------------- agents and sessions

export interface E2eeAgent {
  id: Identity
  xk: ExchangeKeyPair
  store: PreKeyStore
  /** absent for an initiator-only agent */
  spk?: SignedPreKeyRecord
  pq?: PqPreKeyRecord
  /** one-time prekeys not handed out yet (the relay's copy) */
  published: OneTimePreKeyRecord[]
}

/**
 * An agent with an exchange key, a signed prekey, a PQ prekey and `oneTime` one-time prekeys, all
 * stored. An agent that only initiates sessions needs its exchange key alone: `initiatorOnly`
 * skips the prekeys (an ML-KEM key generation each).
 */
export async function makeE2eeAgent (id: Identity, oneTime: number, now = Date.now(), initiatorOnly = false): Promise<E2eeAgent> {
  const xk = generateExchangeKey(id)
  if (initiatorOnly) return { id, xk, store: memoryPreKeyStore(), published: [] }
  const store = memoryPreKeyStore()
  const spk = generateSignedPreKey(id, 1, { now })
  const pq = generatePqPreKey(id, 1, { now })
  const published = oneTime > 0 ? generateOneTimePreKeys(1, oneTime) : []
  await store.storeSignedPreKey(spk)
  await store.storePqPreKey(pq)
  if (published.length > 0) await store.storeOneTimePreKeys(published)
  return { id, xk, store, spk, pq, published: [...published] }
}

/** A bundle as a relay hands it out (its JSON round trip included): each one-time prekey once, then none. */
export function takeBundle (agent: E2eeAgent): PreKeyBundle {
  if (agent.spk === undefined || agent.pq === undefined) throw new Error(`${agent.id.amid} has no prekeys`)
  const opk = agent.published.shift()
  return JSON.parse(JSON.stringify(createPreKeyBundle(agent.id.amid, agent.xk, agent.spk, agent.pq, opk))) as PreKeyBundle
}

const te = new TextEncoder()

/**
 * A full session setup between `a` (initiator) and `b`: a's first message is accepted by b, b
 * answers and a decrypts the answer, so a's later messages no longer carry the PQXDH header.
 */
export async function establish (a: E2eeAgent, b: E2eeAgent, now = Date.now()): Promise<{ a: RatchetState, b: RatchetState }> {
  const s = startSession(a.id, a.xk, takeBundle(b), { now, peer: b.id.amid })
  const first = ratchetEncrypt(s.state, te.encode('hello'))
  const acc = await acceptInitialMessage(b.id, b.xk, b.store, first.message, { now, from: a.id.amid })
  const reply = ratchetEncrypt(acc.state, te.encode('hello back'))
  const got = ratchetDecrypt(first.state, reply.message)
  return { a: got.state, b: reply.state }
}

// ---------------------------------------------------------------- the bench's wire form

/**
 * The envelope payload of an encrypted message, as the SDK sends it (docs/protocol.md §14,
 * envelope type "e2ee"): the ratchet header and the ciphertext (AES-256-GCM, tag included) in
 * base64url, written with a fixed key order.
 */
export function e2eePayloadText (m: RatchetMessage): string {
  const h = m.header
  return '{"v":1,"header":{"dh":"' + h.dh + '","pn":' + String(h.pn) + ',"n":' + String(h.n) +
    '},"ct":"' + Buffer.from(m.ciphertext.buffer, m.ciphertext.byteOffset, m.ciphertext.byteLength).toString('base64url') + '"}'
}

/** The same payload as an object, for signEnvelope (JSON.stringify gives e2eePayloadText's text). */
export function e2eePayloadObject (m: RatchetMessage): Record<string, unknown> {
  return JSON.parse(e2eePayloadText(m)) as Record<string, unknown>
}

/**
 * The header binding of the bench's agentmesh/0.3 envelope `bench-<pair>-<seq>` (docs/protocol.md
 * §14.3): its `ts` is the run's `t`, so sender, worker and receiver all know the header.
 */
export function e2eeBinding (id: string, from: string, to: string, ts: number): Uint8Array {
  return envelopeHeaderBinding({ v: PROTOCOL_E2EE, id, from, to, type: 'e2ee', ts })
}

/** The envelope id in a deliver frame (before its payload). */
export function readE2eeId (frame: Buffer): string {
  return stringAfter(frame, '"id":"', frame.indexOf('"env":'))[0]
}

function stringAfter (data: Buffer, key: string, from: number): [string, number] {
  const at = data.indexOf(key, from)
  if (at < 0) throw new Error(`no ${key} in the frame`)
  const start = at + key.length
  const end = data.indexOf(0x22, start) // the closing quote (base64url has none)
  return [data.toString('latin1', start, end), end]
}

function intAfter (data: Buffer, key: string, from: number): [number, number] {
  const at = data.indexOf(key, from)
  if (at < 0) throw new Error(`no ${key} in the frame`)
  let i = at + key.length
  let n = 0
  for (; i < data.length; i++) {
    const c = data[i]! - 48
    if (c < 0 || c > 9) break
    n = n * 10 + c
  }
  return [n, i]
}

/**
 * Reads the ratchet message out of a deliver frame holding an e2eePayloadText() payload, without
 * parsing the whole frame (the plaintext mode does not parse its frames either).
 */
export function readE2eeMessage (frame: Buffer): RatchetMessage {
  const p = frame.indexOf('"header":{"dh":"')
  if (p < 0) throw new Error('no e2ee payload in the frame')
  const [dh, a] = stringAfter(frame, '"dh":"', p)
  const [pn, b] = intAfter(frame, '"pn":', a)
  const [n, c] = intAfter(frame, '"n":', b)
  const [ct] = stringAfter(frame, '"ct":"', c)
  const header: RatchetHeader = { dh, pn, n }
  return { header, ciphertext: Buffer.from(ct, 'base64url') }
}

// ---------------------------------------------------------------- measurements

export interface Rate {
  /** median of the rounds, per second of wall time */
  per_s: number
  /**
   * median of the rounds, per second of this process's CPU time (user + system): what one core
   * does when it is not shared. On a busy machine wall-time rates fall, this one much less.
   */
  per_cpu_s: number
  rounds: number[]
  /** operations in all rounds */
  n: number
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/** Runs `step` (one operation) in batches for `ms`; answers operations per second. */
async function rate (step: () => void | Promise<void>, ms: number, batch: number): Promise<{ perS: number, perCpuS: number, n: number }> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let n = 0
  let now = t0
  while (now - t0 < ms) {
    for (let i = 0; i < batch; i++) await step()
    n += batch
    now = performance.now()
  }
  const c = process.cpuUsage(c0)
  return { perS: n / ((now - t0) / 1000), perCpuS: n / ((c.user + c.system) / 1e6), n }
}

async function rounds (step: () => void | Promise<void>, warmupMs: number, roundMs: number, count: number, batch: number): Promise<Rate> {
  if (warmupMs > 0) await rate(step, warmupMs, batch)
  const rs: number[] = []
  const cs: number[] = []
  let n = 0
  for (let r = 0; r < count; r++) {
    const x = await rate(step, roundMs, batch)
    rs.push(Math.round(x.perS))
    cs.push(Math.round(x.perCpuS))
    n += x.n
  }
  return { per_s: median(rs), per_cpu_s: median(cs), rounds: rs, n }
}

/**
 * Full session setups per second (see the file comment), each with a fresh one-time prekey. One-time
 * prekeys are made before the rounds (X25519 key generation costs as much as a tenth of a setup here),
 * as many as the warm-up's rate says the rounds need, with a margin.
 */
export async function measureSetups (roundMs: number, count: number): Promise<Rate & { one_time_prekeys: boolean }> {
  const alice = await makeE2eeAgent(createIdentity('bench-e2ee-alice'), 0, Date.now(), true)
  const bob = await makeE2eeAgent(createIdentity('bench-e2ee-bob'), 0)
  let nextId = 1
  const publish = async (n: number): Promise<void> => {
    const keys = generateOneTimePreKeys(nextId, n)
    nextId += n
    await bob.store.storeOneTimePreKeys(keys)
    bob.published.push(...keys)
  }
  const hello = te.encode('hello bob')
  const now = Date.now()
  let withoutOneTime = 0
  const step = async (): Promise<void> => {
    if (bob.published.length === 0) withoutOneTime++
    const s = startSession(alice.id, alice.xk, takeBundle(bob), { now, peer: bob.id.amid })
    const first = ratchetEncrypt(s.state, hello)
    await acceptInitialMessage(bob.id, bob.xk, bob.store, first.message, { now, from: alice.id.amid })
  }
  await publish(24)
  const warm = await rate(step, Math.min(300, roundMs / 2), 4)
  await publish(Math.ceil(Math.max(warm.perS, warm.perCpuS) * 2 * roundMs * count / 1000) + 32)
  withoutOneTime = 0
  const r = await rounds(step, 0, roundMs, count, 4)
  return { ...r, one_time_prekeys: withoutOneTime === 0 }
}

export interface MessageRates {
  bytes: number
  /** one direction: the symmetric-key ratchet only */
  one_way: Rate
  /** alternating directions: a Diffie-Hellman ratchet step on every message */
  alternating?: Rate
  /** one direction, plaintext megabytes (10^6 bytes) per second */
  one_way_mb_per_s: number
}

/** Encrypt on one side and decrypt on the other, `bytes` of plaintext per message. */
export async function measureMessages (bytes: number, roundMs: number, count: number, alternating: boolean): Promise<MessageRates> {
  const alice = await makeE2eeAgent(createIdentity('bench-e2ee-alice'), 0, Date.now(), true)
  const bob = await makeE2eeAgent(createIdentity('bench-e2ee-bob'), 1)
  let { a, b } = await establish(alice, bob)
  const plaintext = new Uint8Array(bytes).fill(0x61)
  const oneWay = (): void => {
    const e = ratchetEncrypt(a, plaintext)
    a = e.state
    b = ratchetDecrypt(b, e.message).state
  }
  const batch = bytes >= 16_384 ? 16 : 256
  const one = await rounds(oneWay, Math.min(300, roundMs / 2), roundMs, count, batch)
  const out: MessageRates = { bytes, one_way: one, one_way_mb_per_s: round(one.per_s * bytes / 1e6, 1) }
  if (alternating) {
    let turn = 0
    const pingPong = (): void => {
      if ((turn++ & 1) === 0) {
        const e = ratchetEncrypt(a, plaintext)
        a = e.state
        b = ratchetDecrypt(b, e.message).state
      } else {
        const e = ratchetEncrypt(b, plaintext)
        b = e.state
        a = ratchetDecrypt(a, e.message).state
      }
    }
    out.alternating = await rounds(pingPong, Math.min(200, roundMs / 2), roundMs, count, 16)
  }
  return out
}

export interface E2eeMicroResult {
  setups: Rate & { one_time_prekeys: boolean }
  messages_256: MessageRates
  messages_64k: MessageRates
  goal_256_per_s: number
  wall_s: number
}

/** Every micro figure; `roundMs` × `count` per figure (3 × 700 ms by default: about 10 s in all). */
export async function runE2eeMicro (roundMs: number, count: number, log: (s: string) => void): Promise<E2eeMicroResult> {
  // PQXDH's ML-KEM implementation may load asynchronously (ml-kem.ts); the rounds below never yield to I/O
  await mlKem768Ready
  const t0 = performance.now()
  const setups = await measureSetups(roundMs, count)
  log(`  session setups: ${setups.per_s}/s (rounds ${setups.rounds.join(', ')})`)
  const m256 = await measureMessages(256, roundMs, count, true)
  log(`  256 B: ${m256.one_way.per_s} msg/s encrypt+decrypt (rounds ${m256.one_way.rounds.join(', ')}; goal ≥ ${GOAL_MESSAGES_PER_S}), ` +
    `alternating directions ${m256.alternating!.per_s} msg/s`)
  const m64k = await measureMessages(65_536, roundMs, count, false)
  log(`  64 KiB: ${m64k.one_way.per_s} msg/s, ${m64k.one_way_mb_per_s} MB/s (rounds ${m64k.one_way.rounds.join(', ')})`)
  return { setups, messages_256: m256, messages_64k: m64k, goal_256_per_s: GOAL_MESSAGES_PER_S, wall_s: round((performance.now() - t0) / 1000, 1) }
}

// standalone: node --import tsx bench/src/e2ee.ts [roundMs] [rounds]
if (import.meta.url === `file://${process.argv[1]}`) {
  const roundMs = Number(process.argv[2] ?? 700)
  const count = Number(process.argv[3] ?? 3)
  const r = await runE2eeMicro(roundMs, count, (s) => { process.stderr.write(s + '\n') })
  process.stdout.write(JSON.stringify(r, null, 2) + '\n')
}
