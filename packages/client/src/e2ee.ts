/**
 * End-to-end encryption for direct messages: the agent's exchange key and prekeys (published to
 * the relay's registry and kept topped up), a PQXDH + Double Ratchet session per peer, the peers'
 * keys as first seen (a change stops the conversation until the owner accepts it), and everything
 * sealed at rest in the agent's state (docs/protocol.md §14).
 *
 * Every read-modify-write of a session runs inside one state transaction, re-reading the session
 * there, so two processes sharing a home (`agentmesh listen` and `agentmesh send`) take turns
 * instead of overwriting each other's ratchet.
 */
import {
  acceptInitialMessage, envelopeHeaderBinding, deriveExchangeKey, deriveStateKey, exchangeKeyFromSecret, fromB64u,
  openRecord, parseScryptParams, scryptParamsText, STATE_SCRYPT, STATE_SCRYPT_V1, ratchetDecrypt, ratchetEncrypt, safetyNumber,
  scannableSafetyNumber, sealRecord, startSession, toB64u, verifyInitialMessageHeader,
  type ExchangeKeyPair, type Identity, type InitialMessageHeader, type OneTimePreKeyRecord, type PqOneTimePreKeyRecord, type PqPreKeyRecord,
  type PreKeyBundle, type PreKeyStore, type RatchetMessage, type RatchetState, type SignedPreKeyRecord,
} from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, ID_PATTERN, PROTOCOL_E2EE, TYPE_PATTERN, isUnsignedKind, type ApiAnswer, type ApiBody, type Envelope, type RouteName } from '@agentmesh/protocol'
import { createHash, randomBytes } from 'node:crypto'
import type { ClientState } from './state.ts'
import { registryRequest } from './registry.ts'
import { restCall } from './api.ts'
import { SENT_LOG_TTL_MS } from './sent.ts'
import { OPK_KIND, PQ_OPK_KIND, uploadPrekeys, type PrekeyPolicy } from './prekey-upload.ts'
export {
  DEFAULT_PREKEY_LOW_WATER, DEFAULT_PREKEY_TARGET, DEFAULT_PQ_PREKEY_LOW_WATER, DEFAULT_PQ_PREKEY_TARGET, DEFAULT_PREKEY_CHECK_MS,
  MAX_LOCAL_ONE_TIME_PREKEYS, MAX_LOCAL_PQ_ONE_TIME_PREKEYS, type PrekeyPolicy,
} from './prekey-upload.ts'

/** Envelope type of an end-to-end encrypted message; the application's type travels inside. */
export const E2EE_TYPE = 'e2ee'
/** Envelope type of the notice "I could not decrypt your message(s): start a new session". */
export const E2EE_RESET_TYPE = 'e2ee.reset'
/** The first messages of a new session that carry the sender's grant from the peer, if it holds one. */
const PRESENT_GRANT_IN_FIRST = 3
/** Version of the encrypted payload format. */
export const E2EE_PAYLOAD_VERSION = 1

export const DEFAULT_SESSION_IDLE_MS = 7 * 24 * 60 * 60 * 1000
/** Earlier sessions kept per peer, for messages still in flight when the peer started a new one. */
export const MAX_PREVIOUS_SESSIONS = 2
/** …and for this long after they were replaced: a message waits at the relay for its retention (30 days), not longer. */
export const PREVIOUS_SESSION_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000
/** One reset notice per peer per this interval at most. */
const RESET_INTERVAL_MS = 60_000

const typeRe = new RegExp(TYPE_PATTERN)
const idRe = new RegExp(ID_PATTERN)
const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

/** Record kinds in the state's `records` table. */
const K = {
  key: 'key', spk: 'spk', opk: OPK_KIND, pq: 'pq', pqo: PQ_OPK_KIND, session: 'session', peer: 'peer', plain: 'plain', held: 'held',
  /** initial messages accepted, for as long as the prekeys they name are held (replay of a first message) */
  initial: 'initial',
  /** the day's key for short-lived plaintext records (EPOCH_KINDS) */
  epoch: 'epoch',
} as const

/** Short-lived records holding plaintext: kept messages, the sent log (sent.ts), messages held back by a limit (knock.ts). */
const EPOCH_KINDS: ReadonlySet<string> = new Set([K.plain, 'sent', 'deferred'])
/** One epoch key per day (UTC). */
export const EPOCH_MS = 24 * 60 * 60 * 1000
/** First byte of a record sealed under an epoch key (then the epoch, uint32 big-endian). */
const EPOCH_MARK = 0xe1
function epochOf (now: number): number { return Math.floor(now / EPOCH_MS) }

/** Messages remembered per session to tell a cloned sender from a replay. */
const RECENT_MESSAGES = 64

function ciphertextHash (m: RatchetMessage): string {
  return createHash('sha256').update(m.ciphertext).digest().subarray(0, 12).toString('base64url')
}

function remember (recent: SessionRecord['recent'], m: RatchetMessage): NonNullable<SessionRecord['recent']> {
  const out = [...(recent ?? []), [m.header.dh, m.header.n, ciphertextHash(m)] as [string, number, string]]
  return out.length > RECENT_MESSAGES ? out.slice(out.length - RECENT_MESSAGES) : out
}

/**
 * What is kept of an accepted initial message: the prekeys it names (it is forgotten once the
 * signed or last-resort PQ prekey is gone; a one-time PQ prekey, `pqo`, is deleted at once) and the
 * ratchet header of the message that carried it.
 */
interface InitialRecord { spk: number, pq: number, pqo?: number, dh: string, n: number }

/**
 * The record key of an initial message: SHA-256 of its ephemeral key and KEM ciphertext, which
 * together fix the shared secret (a replay names the same ones; a new message, new ones).
 */
function initialKey (h: InitialMessageHeader): string {
  return createHash('sha256').update('agentmesh/initial\n').update(String(h.ephemeral_key)).update('\n').update(String(h.kem_ciphertext)).digest('base64url')
}

export interface E2eeConfig {
  identity: Identity
  state: ClientState
  /** The relay's HTTP origin, e.g. http://127.0.0.1:7777 */
  httpBase: string
  passphrase?: string
  prekeys: PrekeyPolicy
  sessionIdleMs: number
  onWarning: (w: AgentMeshError) => void
}

/** What a peer's key looked like when first seen, and whether the owner has compared it. */
interface PeerRecord {
  exchangeKey: string
  firstSeen: number
  verified: boolean
  /** a different key seen later and not (yet) accepted */
  pending?: { exchangeKey: string, seenAt: number }
}

interface SessionRecord {
  current: RatchetState
  previous: RatchetState[]
  /** when each of `previous` was replaced (ms since the epoch; records saved before have none) */
  previousAt?: number[]
  /** the last messages decrypted, as [ratchet key, n, hash of the ciphertext]: two different ones under one key mean a cloned sender */
  recent?: Array<[string, number, string]>
  /** the peer's exchange key the session was agreed with (base64url) */
  peerKey: string
  usedAt: number
  /** the peer could not decrypt (reset notice): the next message starts a new session; this one still decrypts what is in flight */
  reset?: boolean
}

/** What `encrypt` may add to the message. */
export interface EncryptExtra {
  /** a resend of this message id (the receiver shows it under that id, once) */
  orig?: string
  /** the sender asks for delivery receipts (receipts.ts): `rr` in the inner message */
  receipts?: boolean
  /** asked only for the first messages of a new session: the grant from the peer this agent presents */
  grant?: () => unknown
  /** the envelope's header binding (agentmesh/0.3, docs/protocol.md §14.3), appended to the associated data */
  binding?: Uint8Array
}

/** The wire form of an encrypted payload. */
export interface EncryptedPayload {
  v: 1
  header: { dh: string, pn: number, n: number }
  /** AES-256-GCM ciphertext and tag, base64url, of the JSON `{ "type", "payload" }` */
  ct: string
  prekey?: InitialMessageHeader
}

export interface Decrypted {
  type: string
  payload: Record<string, unknown>
  /** a resend of this message id (the sender's first attempt could not be decrypted) */
  orig?: string
  /** the sender asks for delivery receipts */
  rr?: true
  /** the grant the sender holds from this agent, presented with the first messages of a session */
  grant?: unknown
}

/** Why a peer's conversation is stopped, or that it is fine. */
export interface PeerStatus {
  peer: string
  /** 60 digits; absent while the peer's key is unknown */
  safetyNumber?: string
  /** the 60 digits for the new key, when it changed */
  newSafetyNumber?: string
  /** the scannable form of the safety number this agent shows the peer (libsignal's CombinedFingerprints v1, base64url), for a QR code */
  scannable?: string
  verified: boolean
  keyChanged: boolean
  session: boolean
  firstSeen?: number
}

function json (v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v, function (this: Record<string, unknown>, k, value) {
    const o = this[k]
    return o instanceof Uint8Array ? { $b: Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('base64url') } : value
  }))
}

function parse<T> (bytes: Uint8Array): T {
  return JSON.parse(dec.decode(bytes), (_k, v) => {
    if (typeof v === 'object' && v !== null && typeof v.$b === 'string' && Object.keys(v).length === 1) return new Uint8Array(Buffer.from(v.$b, 'base64url'))
    return v
  }) as T
}

function dropped (code: ErrorCode, env: Envelope, why: string): AgentMeshError {
  return new AgentMeshError(code, `dropped message ${env.id} from ${env.from}: ${why}`)
}

export class E2ee {
  private readonly key: Buffer
  private readonly identity: Identity
  private readonly state: ClientState
  private exchange: ExchangeKeyPair | undefined
  private timer: NodeJS.Timeout | undefined
  private topUpRunning: Promise<void> | undefined
  private readonly lastReset = new Map<string, number>()
  /** one-time prekeys an accepted initial message used: deleted in the step that saves the session */
  private readonly usedOneTime = new Set<number>()
  private readonly usedPqOneTime = new Set<number>()
  /** epoch keys read or made by this process */
  private readonly epochs = new Map<number, Buffer>()

  constructor (private readonly cfg: E2eeConfig) {
    this.identity = cfg.identity
    this.state = cfg.state
    this.key = this.openKey(cfg.passphrase)
  }

  // ------------------------------------------------------------------ at rest

  private openKey (passphrase: string | undefined): Buffer {
    const st = this.state
    return st.transaction(() => {
      let salt = st.metaGet('state_salt')
      const fresh = salt === undefined
      if (fresh) {
        salt = randomBytes(32).toString('base64url')
        st.metaSet('state_salt', salt)
        st.metaSet('state_passphrase', passphrase !== undefined && passphrase !== '' ? 'yes' : 'no')
        st.metaSet('state_scrypt', scryptParamsText(STATE_SCRYPT))
      }
      // a state made before the parameters were recorded used the first ones
      const recorded = st.metaGet('state_scrypt')
      const params = recorded === undefined ? STATE_SCRYPT_V1 : parseScryptParams(recorded)
      const key = deriveStateKey(this.identity.secretKey, Buffer.from(salt!, 'base64url'), passphrase, params)
      const check = st.recordGet('meta', 'check')
      if (check === undefined) {
        st.recordPut('meta', 'check', sealRecord(key, 'meta', 'check', enc.encode(this.identity.amid)), Date.now())
      } else {
        let ok = false
        try { ok = dec.decode(openRecord(key, 'meta', 'check', check)) === this.identity.amid } catch {}
        if (!ok) {
          const had = st.metaGet('state_passphrase') === 'yes'
          throw new AgentMeshError(ErrorCode.BadPassphrase, had
            ? (passphrase === undefined || passphrase === '' ? 'the agent state is protected by a passphrase and none was given; set AGENTMESH_PASSPHRASE' : 'the passphrase does not open the agent state; set AGENTMESH_PASSPHRASE to the one it was created with')
            : 'the agent state was sealed by another identity, or without the passphrase now given; unset AGENTMESH_PASSPHRASE, or move state.db aside to start over (its sessions are lost)')
        }
      }
      return key
    })
  }

  /** Kinds whose records hold byte arrays (prekeys); the others are plain JSON. */
  private static readonly BINARY = new Set<string>([K.key, K.spk, K.opk, K.pq, K.pqo, K.epoch])

  // Short-lived records that hold plaintext (kept messages, the sent log, messages held back by a
  // limit) are sealed under an epoch key instead of the state key: a random key per day, itself
  // sealed under the state key. Epoch keys older than yesterday are destroyed (secure delete) once
  // the live records under them are sealed again under today's key, so a stale copy of such a
  // record (in free space, an old disk block, a backup) no longer opens even with the identity.

  private epochKey (epoch: number, create: boolean): Buffer | undefined {
    const cached = this.epochs.get(epoch)
    if (cached !== undefined) return cached
    const load = (): Buffer | undefined => {
      const r = this.get<{ key: Uint8Array }>(K.epoch, String(epoch))
      return r === undefined ? undefined : Buffer.from(r.key)
    }
    // made in one step with the look-up: two processes of the agent agree on one key per epoch
    const key = create ? this.state.transaction(() => load() ?? this.newEpochKey(epoch)) : load()
    if (key !== undefined) this.epochs.set(epoch, key)
    return key
  }

  private newEpochKey (epoch: number): Buffer {
    const key = randomBytes(32)
    this.put(K.epoch, String(epoch), { key: new Uint8Array(key) })
    return key
  }

  /** The record's bytes, or undefined when its epoch key was destroyed. */
  private open (kind: string, key: string, sealed: Uint8Array): Buffer | undefined {
    if (!EPOCH_KINDS.has(kind) || sealed[0] !== EPOCH_MARK || sealed.byteLength < 5) return openRecord(this.key, kind, key, sealed)
    const epoch = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).readUInt32BE(1)
    const k = this.epochKey(epoch, false)
    try {
      if (k !== undefined) return openRecord(k, kind, key, sealed.subarray(5))
    } catch { /* a record sealed before epoch keys, whose nonce starts with the mark: below */ }
    try { return openRecord(this.key, kind, key, sealed) } catch (err) { if (k !== undefined) throw err }
    return undefined
  }

  private get<T> (kind: string, key: string): T | undefined {
    const sealed = this.state.recordGet(kind, key)
    if (sealed === undefined) return undefined
    const bytes = this.open(kind, key, sealed)
    if (bytes === undefined) return undefined
    return E2ee.BINARY.has(kind) ? parse<T>(bytes) : JSON.parse(dec.decode(bytes)) as T
  }

  private put (kind: string, key: string, value: unknown, at = Date.now()): void {
    const bytes = E2ee.BINARY.has(kind) ? json(value) : enc.encode(JSON.stringify(value))
    if (!EPOCH_KINDS.has(kind)) {
      this.state.recordPut(kind, key, sealRecord(this.key, kind, key, bytes), at)
      return
    }
    const epoch = epochOf(Date.now())
    const head = Buffer.alloc(5)
    head[0] = EPOCH_MARK
    head.writeUInt32BE(epoch, 1)
    this.state.recordPut(kind, key, Buffer.concat([head, sealRecord(this.epochKey(epoch, true)!, kind, key, bytes)]), at)
  }

  /**
   * Destroys the epoch keys older than yesterday's, after sealing the live records under them again
   * under today's key (sent log entries past their 24 hours are deleted instead).
   */
  rotateEpochs (now = Date.now()): number {
    const current = epochOf(now)
    const old = this.state.recordList(K.epoch).map(r => Number(r.key)).filter(e => e < current - 1)
    if (old.length === 0) return 0
    const dead = new Set(old)
    return this.state.secureDelete(() => {
      for (const kind of EPOCH_KINDS) {
        for (const r of this.state.recordList(kind)) {
          const v = r.value
          if (v[0] !== EPOCH_MARK || v.byteLength < 5 || !dead.has(Buffer.from(v.buffer, v.byteOffset, v.byteLength).readUInt32BE(1))) continue
          const bytes = this.open(kind, r.key, v)
          if (bytes === undefined || (kind === 'sent' && r.at < now - SENT_LOG_TTL_MS)) { this.state.recordDelete(kind, r.key); continue }
          this.put(kind, r.key, E2ee.BINARY.has(kind) ? parse(bytes) : JSON.parse(dec.decode(bytes)), r.at)
        }
      }
      for (const e of old) {
        this.state.recordDelete(K.epoch, String(e))
        this.epochs.get(e)?.fill(0)
        this.epochs.delete(e)
      }
      return old.length
    })
  }

  // ------------------------------------------------------------------ sealed records for other layers (knock.ts)

  record<T> (kind: string, key: string): T | undefined { return this.get<T>(kind, key) }
  saveRecord (kind: string, key: string, value: unknown, at = Date.now()): void { this.put(kind, key, value, at) }
  dropRecord (kind: string, key: string): boolean { return this.state.recordDelete(kind, key) }
  countRecords (kind: string): number { return this.state.recordCount(kind) }
  /** Runs `fn` as one atomic step of the agent's state. */
  atomically<T> (fn: () => T): T { return this.state.transaction(fn) }
  /** Keys and times of a kind's records, oldest first, without opening them. */
  recordKeys (kind: string): Array<{ key: string, at: number }> {
    return this.state.recordList(kind).map(r => ({ key: r.key, at: r.at }))
  }
  /** Oldest first. */
  records<T> (kind: string): Array<{ key: string, value: T, at: number }> {
    const out: Array<{ key: string, value: T, at: number }> = []
    for (const r of this.state.recordList(kind)) {
      const bytes = this.open(kind, r.key, r.value)
      if (bytes !== undefined) out.push({ key: r.key, value: parse<T>(bytes), at: r.at })
    }
    return out
  }

  /** A registry read (unsigned GET). */
  async lookup<R extends RouteName> (route: R, path: string): Promise<ApiAnswer<R>> { return await this.http(route, path, undefined, false) }

  // ------------------------------------------------------------------ own keys

  /**
   * The agent's X25519 exchange key: the one saved in the state, or (a new state) the one derived
   * from the identity key, so a lost state does not change the key peers know.
   */
  exchangeKey (): ExchangeKeyPair {
    if (this.exchange !== undefined) return this.exchange
    this.exchange = this.state.transaction(() => {
      const saved = this.get<{ secretKey: Uint8Array }>(K.key, 'exchange')
      if (saved !== undefined) return exchangeKeyFromSecret(this.identity, saved.secretKey)
      const kp = deriveExchangeKey(this.identity)
      this.put(K.key, 'exchange', { secretKey: kp.secretKey })
      return kp
    })
    return this.exchange
  }

  /** The prekey store over the sealed records; one-time prekeys used are deleted with the session. */
  private prekeyStore (): PreKeyStore {
    const self = this
    const list = <T>(kind: string): T[] => self.state.recordList(kind).map(r => parse<T>(openRecord(self.key, kind, r.key, r.value)))
    return {
      async storeSignedPreKey (r) { self.put(K.spk, String(r.id), r, r.createdAt) },
      async loadSignedPreKey (id) { return self.get<SignedPreKeyRecord>(K.spk, String(id)) },
      async listSignedPreKeys () { return list<SignedPreKeyRecord>(K.spk) },
      async removeSignedPreKey (id) { self.state.recordDelete(K.spk, String(id)) },
      async storeOneTimePreKeys (rs) { self.state.transaction(() => { for (const r of rs) self.put(K.opk, String(r.id), r) }) },
      async loadOneTimePreKey (id) { return self.usedOneTime.has(id) ? undefined : self.get<OneTimePreKeyRecord>(K.opk, String(id)) },
      async removeOneTimePreKey (id) {
        if (self.usedOneTime.has(id) || self.state.recordGet(K.opk, String(id)) === undefined) return false
        self.usedOneTime.add(id)
        return true
      },
      async countOneTimePreKeys () { return self.state.recordCount(K.opk) },
      async storePqPreKey (r) { self.put(K.pq, String(r.id), r, r.createdAt) },
      async loadPqPreKey (id) { return self.get<PqPreKeyRecord>(K.pq, String(id)) },
      async listPqPreKeys () { return list<PqPreKeyRecord>(K.pq) },
      async removePqPreKey (id) { self.state.recordDelete(K.pq, String(id)) },
      async storePqOneTimePreKeys (rs) { self.state.transaction(() => { for (const r of rs) self.put(K.pqo, String(r.id), r) }) },
      async loadPqOneTimePreKey (id) { return self.usedPqOneTime.has(id) ? undefined : self.get<PqOneTimePreKeyRecord>(K.pqo, String(id)) },
      async removePqOneTimePreKey (id) {
        if (self.usedPqOneTime.has(id) || self.state.recordGet(K.pqo, String(id)) === undefined) return false
        self.usedPqOneTime.add(id)
        return true
      },
      async countPqOneTimePreKeys () { return self.state.recordCount(K.pqo) },
    }
  }

  // ------------------------------------------------------------------ registry

  /** Route `route` of the relay's registry, signed by this agent unless `signed` is false. */
  private async http<R extends RouteName> (route: R, path: string, body?: ApiBody<R>, signed = true): Promise<ApiAnswer<R>> {
    return await restCall(async (method, p, b) => await registryRequest(this.cfg.httpBase, method, p, {
      ...(signed ? { identity: this.identity } : {}),
      ...(b === undefined ? {} : { body: JSON.stringify(b) }),
    }), route, path, body)
  }


  /**
   * Makes sure the relay holds this agent's current prekeys (prekey-upload.ts): rotates the signed
   * and PQ prekeys when due, uploads the bundle base when it changed, and one-time prekeys of each
   * kind up to the target when fewer than the low-water mark remain.
   */
  topUp (): Promise<void> {
    this.topUpRunning ??= this.doTopUp().finally(() => { this.topUpRunning = undefined })
    return this.topUpRunning
  }

  private async doTopUp (): Promise<void> {
    await uploadPrekeys({
      identity: this.identity,
      state: this.state,
      httpBase: this.cfg.httpBase,
      policy: this.cfg.prekeys,
      store: this.prekeyStore(),
      exchangeKey: this.exchangeKey(),
      put: (kind, key, value) => { this.put(kind, key, value) },
      http: async (route, path, body, signed) => await this.http(route, path, body, signed),
    })
  }

  /** Top up now and then every `checkMs`; cleans idle sessions. */
  async start (): Promise<void> {
    this.cleanIdle()
    try {
      await this.topUp()
    } catch (err) {
      this.cfg.onWarning(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.Internal, `could not publish prekeys: ${(err as Error).message}`))
    }
    this.timer ??= setInterval(() => {
      this.cleanIdle()
      this.topUp().catch((err: Error) => { this.cfg.onWarning(new AgentMeshError(AgentMeshError.is(err) ? err.code : ErrorCode.Internal, `could not top up prekeys: ${err.message}`)) })
    }, this.cfg.prekeys.checkMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Forgets accepted initial messages whose signed or PQ prekey is gone: they could not be accepted again anyway. */
  private pruneInitial (): void {
    const rows = this.state.recordList(K.initial)
    if (rows.length === 0) return
    const spks = new Set(this.state.recordList(K.spk).map(r => r.key))
    const pqs = new Set(this.state.recordList(K.pq).map(r => r.key))
    const gone = rows.filter(r => {
      const v = this.get<InitialRecord>(K.initial, r.key)
      return v === undefined || !spks.has(String(v.spk)) || !pqs.has(String(v.pq))
    })
    if (gone.length > 0) this.state.transaction(() => { for (const r of gone) this.state.recordDelete(K.initial, r.key) })
  }

  /** The earlier sessions kept when `latest` is replaced at `now`. */
  private static replaced (latest: SessionRecord | undefined, now: number): Pick<SessionRecord, 'previous' | 'previousAt'> {
    if (latest === undefined) return { previous: [], previousAt: [] }
    return {
      previous: [latest.current, ...latest.previous].slice(0, MAX_PREVIOUS_SESSIONS),
      previousAt: [now, ...(latest.previousAt ?? latest.previous.map(() => latest.usedAt))].slice(0, MAX_PREVIOUS_SESSIONS),
    }
  }

  /** Deletes earlier sessions replaced longer than PREVIOUS_SESSION_MAX_AGE_MS ago; answers how many. */
  private expirePrevious (now: number): number {
    let n = 0
    for (const r of this.state.recordList(K.session)) {
      const rec = this.get<SessionRecord>(K.session, r.key)
      if (rec === undefined || rec.previous.length === 0) continue
      const at = rec.previousAt ?? rec.previous.map(() => rec.usedAt)
      const keep = rec.previous.map((_, i) => (at[i] ?? 0) >= now - PREVIOUS_SESSION_MAX_AGE_MS)
      if (keep.every(Boolean)) continue
      n += keep.filter(k => !k).length
      this.put(K.session, r.key, { ...rec, previous: rec.previous.filter((_, i) => keep[i]), previousAt: at.filter((_, i) => keep[i]) } satisfies SessionRecord, r.at)
    }
    return n
  }

  /** Deletes sessions unused for `sessionIdleMs`, and earlier sessions past their age (their keys are overwritten in the file). */
  cleanIdle (now = Date.now()): number {
    this.pruneInitial()
    this.rotateEpochs(now)
    this.state.secureDelete(() => this.expirePrevious(now))
    const before = now - this.cfg.sessionIdleMs
    if (!this.state.recordList(K.session).some(r => r.at < before)) return 0
    return this.state.secureDelete(() => {
      let n = 0
      for (const r of this.state.recordList(K.session)) {
        if (r.at < before && this.state.recordDelete(K.session, r.key)) n++
      }
      return n
    })
  }

  // ------------------------------------------------------------------ peers

  /** Records a peer's key when new; false (and the new key noted as pending) when it differs from the known one. */
  private notePeerKey (peer: string, exchangeKey: string, now: number): boolean {
    const known = this.get<PeerRecord>(K.peer, peer)
    if (known === undefined) {
      this.put(K.peer, peer, { exchangeKey, firstSeen: now, verified: false } satisfies PeerRecord)
      return true
    }
    if (known.exchangeKey === exchangeKey) return true
    if (known.pending?.exchangeKey !== exchangeKey) this.put(K.peer, peer, { ...known, pending: { exchangeKey, seenAt: now } } satisfies PeerRecord)
    return false
  }

  private keyChanged (peer: string, what = 'the conversation is stopped'): AgentMeshError {
    const known = this.get<PeerRecord>(K.peer, peer)
    const since = known === undefined ? '' : ` since ${new Date(known.firstSeen).toISOString()}`
    return new AgentMeshError(ErrorCode.PeerKeyChanged,
      `the key of ${peer} changed${since}: ${what}. ` +
      `Compare safety numbers with \`agentmesh verify ${peer}\` on both sides, then accept with \`agentmesh verify ${peer} --accept\``)
  }

  /** Accepts a peer's changed key (after comparing safety numbers): its sessions start over and held messages are let through. */
  acceptPeerKey (peer: string): { changed: boolean, held: number } {
    return this.state.secureDelete(() => {
      const known = this.get<PeerRecord>(K.peer, peer)
      if (known === undefined) throw new AgentMeshError(ErrorCode.NotFound, `no key of ${peer} is known here yet: exchange a message first`)
      const changed = known.pending !== undefined
      this.put(K.peer, peer, { exchangeKey: known.pending?.exchangeKey ?? known.exchangeKey, firstSeen: known.pending?.seenAt ?? known.firstSeen, verified: true } satisfies PeerRecord)
      if (changed) this.state.recordDelete(K.session, peer)
      return { changed, held: this.heldFrom(peer).length }
    })
  }

  /** Safety number and state of the conversation with `peer`. */
  peerStatus (peer: string): PeerStatus {
    const me = { amid: this.identity.amid, exchangeKey: this.exchangeKey().publicKey }
    const known = this.get<PeerRecord>(K.peer, peer)
    const session = this.state.recordGet(K.session, peer) !== undefined
    if (known === undefined) return { peer, verified: false, keyChanged: false, session }
    return {
      peer,
      safetyNumber: safetyNumber(me, { amid: peer, exchangeKey: fromB64u(known.exchangeKey) }),
      scannable: scannableSafetyNumber(me, { amid: peer, exchangeKey: fromB64u(known.exchangeKey) }),
      ...(known.pending === undefined ? {} : { newSafetyNumber: safetyNumber(me, { amid: peer, exchangeKey: fromB64u(known.pending.exchangeKey) }) }),
      verified: known.verified,
      keyChanged: known.pending !== undefined,
      session,
      firstSeen: known.firstSeen,
    }
  }

  /** Learns an unknown peer's key from its prekey bundle, starting the session the next message will use. */
  async learnPeerKey (peer: string): Promise<void> {
    if (this.get<PeerRecord>(K.peer, peer) !== undefined) return
    await this.establish(peer)
  }

  sessions (): Array<{ peer: string, usedAt: number }> {
    return this.state.recordList(K.session)
      .filter(r => this.get<SessionRecord>(K.session, r.key)?.reset !== true)
      .map(r => ({ peer: r.key, usedAt: r.at }))
  }

  /** Whether any session with `peer` is held (one it asked to replace included): its messages come encrypted. */
  hasAnySession (peer: string): boolean {
    return this.state.recordGet(K.session, peer) !== undefined
  }

  deleteSession (peer: string): boolean {
    return this.state.secureDelete(() => this.state.recordDelete(K.session, peer))
  }

  // ------------------------------------------------------------------ sending

  /** A session messages to `peer` can be encrypted with (not one the peer asked to replace). */
  hasSession (peer: string): boolean {
    const rec = this.get<SessionRecord>(K.session, peer)
    return rec !== undefined && rec.reset !== true
  }

  private async fetchBundle (peer: string): Promise<PreKeyBundle> {
    try {
      // the route types what the relay adds (amid, one_time_prekey); the rest is the base the peer
      // uploaded, crypto's PreKeyBundle, which startSession verifies against the peer's key
      return await this.http('takePrekeyBundle', `/api/v1/agents/${peer}/prekeys/bundle`) as PreKeyBundle
    } catch (err) {
      if (!AgentMeshError.is(err, ErrorCode.NotFound)) throw err
      const registered = await this.http('getAgent', `/api/v1/agents/${peer}`, undefined, false).then(() => true, () => false)
      if (!registered) throw new AgentMeshError(ErrorCode.UnknownRecipient, `no agent ${peer} is registered on this relay`)
      throw new AgentMeshError(ErrorCode.NoPrekeys, `${peer} has published no prekeys, so no encrypted session can be started; it publishes them when it connects with a current SDK (\`agentmesh register\`), or send with --plaintext`)
    }
  }

  /** Starts a session with `peer` from its prekey bundle, unless one exists. */
  async establish (peer: string): Promise<void> {
    if (this.hasSession(peer)) return
    // a change already seen and not accepted: refuse before using up another of the peer's one-time prekeys
    if (this.get<PeerRecord>(K.peer, peer)?.pending !== undefined) throw this.keyChanged(peer)
    const bundle = await this.fetchBundle(peer)
    const now = Date.now()
    const { state } = startSession(this.identity, this.exchangeKey(), bundle, { now, peer })
    const ok = this.state.transaction(() => {
      const latest = this.get<SessionRecord>(K.session, peer)
      if (latest !== undefined && latest.reset !== true) return true // another process started one meanwhile: use that
      if (!this.notePeerKey(peer, bundle.exchange_key, now)) return false
      // a replaced session is kept a while for the peer's messages still in flight
      this.put(K.session, peer, { current: state, ...E2ee.replaced(latest, now), peerKey: bundle.exchange_key, usedAt: now } satisfies SessionRecord, now)
      return true
    })
    if (!ok) throw this.keyChanged(peer)
  }

  /**
   * Encrypts one message with the session (call `establish` first). Synchronous, so the caller can
   * run it in the same state transaction as the outbox write.
   */
  /**
   * Encrypts `{ type, payload }` for the peer's current session. `extra.orig`: this is a resend of
   * that message id (the receiver shows it under that id, once). `extra.grant`: asked only for the
   * first messages of a new session, the grant from the peer that this agent presents with them, so
   * a peer that lost its state learns its grant again (docs/policy.md "A peer that lost its state").
   */
  encrypt (peer: string, type: string, payload: Record<string, unknown>, extra: EncryptExtra = {}): EncryptedPayload {
    const rec = this.get<SessionRecord>(K.session, peer)
    if (rec === undefined || rec.reset === true) throw new AgentMeshError(ErrorCode.UnknownSession, `no session with ${peer}`)
    const known = this.get<PeerRecord>(K.peer, peer)
    if (known?.pending !== undefined) throw this.keyChanged(peer)
    const inner: Decrypted = { type, payload }
    if (extra.orig !== undefined) inner.orig = extra.orig
    if (extra.receipts === true) inner.rr = true
    if (rec.current.prekey !== undefined && rec.current.ns < PRESENT_GRANT_IN_FIRST && extra.grant !== undefined) {
      const g = extra.grant()
      if (g !== undefined) inner.grant = g
    }
    const { state, message } = ratchetEncrypt(rec.current, enc.encode(JSON.stringify(inner)), extra.binding)
    const now = Date.now()
    this.put(K.session, peer, { ...rec, current: state, usedAt: now } satisfies SessionRecord, now)
    return {
      v: E2EE_PAYLOAD_VERSION,
      header: message.header,
      ct: toB64u(message.ciphertext),
      ...(message.prekey === undefined ? {} : { prekey: message.prekey }),
    }
  }

  /**
   * The `agentmesh/0.3` envelope of `{ type, payload }` to `peer` (docs/protocol.md §14.3): type
   * `e2ee`, no signature; its header (v, id, from, to, type, ts) is bound into the encryption's
   * associated data, so the peer's decryption authenticates it. Synchronous, like `encrypt`.
   */
  envelope (peer: string, id: string, type: string, payload: Record<string, unknown>, extra: Omit<EncryptExtra, 'binding'> = {}, ts = Date.now()): Envelope {
    const header = { v: PROTOCOL_E2EE, id, from: this.identity.amid, to: peer, type: E2EE_TYPE, ts }
    const sealed = this.encrypt(peer, type, payload, { ...extra, binding: envelopeHeaderBinding(header) })
    return { ...header, payload: { ...sealed } }
  }

  // ------------------------------------------------------------------ receiving

  private plainKey (env: Envelope): string { return `${env.from}\n${env.id}` }

  /** A message decrypted before and not yet processed (a redelivery after a crash). */
  kept (env: Envelope): Decrypted | undefined {
    return this.get<Decrypted>(K.plain, this.plainKey(env))
  }

  /** Forgets the kept plaintext once the application has processed the message (inside the commit). */
  forget (env: { from: string, id: string }): void {
    this.state.recordDelete(K.plain, `${env.from}\n${env.id}`)
  }

  /**
   * Decrypts an encrypted envelope (a signed agentmesh/0.2 one with its signature already checked;
   * an unsigned agentmesh/0.3 one is authenticated here, header included), saving the ratchet and the
   * plaintext in one step before answering. Throws the session layer's coded errors; a message
   * from a peer whose key changed is held (AM_ERR_PEER_KEY_CHANGED). `inStep` runs inside that
   * step (the caller commits the previous message there: one transaction instead of two).
   */
  async decrypt (env: Envelope, inStep?: () => void): Promise<Decrypted> {
    const kept = this.kept(env)
    if (kept !== undefined) return kept
    const message = this.readPayload(env)
    const binding = this.bindingOf(env)
    const now = Date.now()
    const prekey = message.prekey
    const rec = prekey === undefined ? undefined : this.get<SessionRecord>(K.session, env.from)
    // the initiator repeats its header until it hears back: once accepted, the session it names is used
    const belongs = rec !== undefined && prekey !== undefined && [rec.current, ...rec.previous].some(s => s.base === prekey.ephemeral_key)
    if (prekey !== undefined && !belongs) {
      try { verifyInitialMessageHeader(prekey) } catch (err) { throw dropped(ErrorCode.BadPrekey, env, (err as Error).message) }
      if (prekey.amid !== env.from) throw dropped(ErrorCode.BadPrekey, env, `its prekey header names ${prekey.amid}`)
      // a first message accepted before (its session since deleted, reset or pushed out): a replay,
      // refused while the prekeys it names are held (PQXDH §4.2; without a one-time prekey nothing else stops it)
      const before = this.get<InitialRecord>(K.initial, initialKey(prekey))
      if (before !== undefined) {
        if (before.dh === message.header.dh && before.n === message.header.n) {
          throw dropped(ErrorCode.MessageReplayed, env, 'its PQXDH initial message (ephemeral key and KEM ciphertext) was accepted before; a session is not started twice from one')
        }
        // a later message of that session (the sender repeats the header until it hears back): the sender starts over
        throw dropped(ErrorCode.UnknownSession, env, 'the session its PQXDH header started was deleted here, and a session is not started twice from one header')
      }
      const known = this.get<PeerRecord>(K.peer, env.from)
      if (known !== undefined && known.exchangeKey !== prekey.exchange_key) {
        this.state.transaction(() => {
          this.hold(env, now)
          this.notePeerKey(env.from, prekey.exchange_key, now)
        })
        throw this.keyChanged(env.from, `message ${env.id} is held until the new key is accepted`)
      }
      return await this.acceptNew(env, message, rec, now, inStep, binding)
    }
    return this.state.transaction(() => {
      inStep?.()
      const rec = this.get<SessionRecord>(K.session, env.from)
      if (rec === undefined) throw dropped(ErrorCode.UnknownSession, env, 'no session with this peer (deleted, expired or never made) and the message cannot start one')
      const states = [rec.current, ...rec.previous]
      let first: unknown
      let replay = false
      for (let i = 0; i < states.length; i++) {
        let r: { state: RatchetState, plaintext: Uint8Array }
        try {
          r = ratchetDecrypt(states[i]!, message, { now }, binding)
        } catch (err) {
          first ??= err
          if (AgentMeshError.is(err, ErrorCode.MessageReplayed)) replay = true
          continue
        }
        const out = this.readPlaintext(env, r.plaintext)
        const next: SessionRecord = i === 0 ? { ...rec, current: r.state, usedAt: now } : { ...rec, previous: rec.previous.map((s, j) => j === i - 1 ? r.state : s), usedAt: now }
        next.recent = remember(rec.recent, message)
        this.put(K.session, env.from, next, now)
        this.put(K.plain, this.plainKey(env), out, now)
        return out
      }
      // the same message key with another ciphertext: not a replay, a second copy of the sender's state
      const h = message.header
      const seen = replay ? rec.recent?.find(x => x[0] === h.dh && x[1] === h.n) : undefined
      if (seen !== undefined && seen[2] !== ciphertextHash(message)) {
        throw dropped(ErrorCode.StateCloned, env, `a different message under the message key of one decrypted before (chain ${h.dh.slice(0, 8)}…, message ${h.n}): ${env.from} runs from a copy of its state (a restored backup, a cloned home); it is told to start a new session`)
      }
      const e = first as AgentMeshError
      throw dropped(AgentMeshError.is(e) ? e.code : ErrorCode.DecryptFailed, env, e.message)
    })
  }

  private async acceptNew (
    env: Envelope, message: RatchetMessage, rec: SessionRecord | undefined, now: number, inStep: (() => void) | undefined, binding: Uint8Array | undefined,
  ): Promise<Decrypted> {
    this.usedOneTime.clear()
    this.usedPqOneTime.clear()
    let accepted: Awaited<ReturnType<typeof acceptInitialMessage>>
    try {
      accepted = await acceptInitialMessage(this.identity, this.exchangeKey(), this.prekeyStore(), message, { now, from: env.from, ...(binding === undefined ? {} : { binding }) })
    } catch (err) {
      this.usedOneTime.clear()
      this.usedPqOneTime.clear()
      const e = err as AgentMeshError
      throw dropped(AgentMeshError.is(e) ? e.code : ErrorCode.DecryptFailed, env, e.message)
    }
    const out = this.readPlaintext(env, accepted.plaintext)
    const peerKey = message.prekey!.exchange_key
    this.state.secureDelete(() => {
      inStep?.()
      for (const id of this.usedOneTime) this.state.recordDelete(K.opk, String(id))
      this.usedOneTime.clear()
      // the one-time PQ prekey's decapsulation key goes in the same step (zeroed in the file: secure delete)
      for (const id of this.usedPqOneTime) this.state.recordDelete(K.pqo, String(id))
      this.usedPqOneTime.clear()
      const h = message.prekey!
      if (this.state.recordGet(K.initial, initialKey(h)) !== undefined) throw dropped(ErrorCode.MessageReplayed, env, 'its PQXDH initial message was accepted meanwhile')
      this.put(K.initial, initialKey(h), {
        spk: h.signed_prekey_id, pq: h.pq_prekey_id, ...(h.pq_one_time_prekey_id === undefined ? {} : { pqo: h.pq_one_time_prekey_id }), dh: message.header.dh, n: message.header.n,
      } satisfies InitialRecord, now)
      this.notePeerKey(env.from, peerKey, now)
      const latest = this.get<SessionRecord>(K.session, env.from) ?? rec
      this.put(K.session, env.from, { current: accepted.state, ...E2ee.replaced(latest, now), peerKey, usedAt: now, recent: remember(undefined, message) } satisfies SessionRecord, now)
      this.put(K.plain, this.plainKey(env), out, now)
    })
    return out
  }

  /**
   * The header binding an unsigned `agentmesh/0.3` envelope was sealed with (docs/protocol.md
   * §14.3); none for a signed `agentmesh/0.2` one, whose signature covers the header instead.
   */
  private bindingOf (env: Envelope): Uint8Array | undefined {
    if (!isUnsignedKind(env)) return undefined
    try { return envelopeHeaderBinding(env) } catch (err) { throw dropped(ErrorCode.DecryptFailed, env, `its header cannot be bound: ${(err as Error).message}`) }
  }

  private readPayload (env: Envelope): RatchetMessage {
    const p = env.payload as Partial<EncryptedPayload>
    const h = p.header
    if (p.v !== E2EE_PAYLOAD_VERSION) throw dropped(ErrorCode.DecryptFailed, env, `unknown encrypted payload version ${JSON.stringify(p.v)}`)
    if (typeof h !== 'object' || h === null || typeof h.dh !== 'string' || typeof p.ct !== 'string') throw dropped(ErrorCode.DecryptFailed, env, 'the encrypted payload has no header or ciphertext')
    return {
      header: { dh: h.dh, pn: h.pn, n: h.n },
      ciphertext: Buffer.from(p.ct, 'base64url'),
      ...(p.prekey === undefined ? {} : { prekey: p.prekey }),
    }
  }

  private readPlaintext (env: Envelope, bytes: Uint8Array): Decrypted {
    let inner: unknown
    try { inner = JSON.parse(dec.decode(bytes)) } catch { throw dropped(ErrorCode.DecryptFailed, env, 'it decrypted to something other than JSON') }
    const m = inner as Partial<Decrypted>
    if (typeof m !== 'object' || m === null || typeof m.type !== 'string' || !typeRe.test(m.type) || typeof m.payload !== 'object' || m.payload === null || Array.isArray(m.payload)) {
      throw dropped(ErrorCode.DecryptFailed, env, 'it decrypted to something other than a { type, payload } message')
    }
    const out: Decrypted = { type: m.type, payload: m.payload }
    if (typeof m.orig === 'string' && idRe.test(m.orig)) out.orig = m.orig
    if (m.grant !== undefined) out.grant = m.grant
    if (m.rr === true) out.rr = true
    return out
  }

  // ------------------------------------------------------------------ held messages and resets

  private hold (env: Envelope, now: number): void {
    this.put(K.held, this.plainKey(env), env, now)
  }

  private heldFrom (peer: string): string[] {
    return this.state.recordList(K.held).filter(r => r.key.startsWith(peer + '\n')).map(r => r.key)
  }

  /** Held envelopes whose peer key was accepted since, oldest first. */
  releasable (): Envelope[] {
    const out: Envelope[] = []
    for (const r of this.state.recordList(K.held)) {
      const env = parse<Envelope>(openRecord(this.key, K.held, r.key, r.value))
      const known = this.get<PeerRecord>(K.peer, env.from)
      if (known !== undefined && known.pending === undefined) out.push(env)
    }
    return out
  }

  unhold (env: { from: string, id: string }): void {
    this.state.recordDelete(K.held, `${env.from}\n${env.id}`)
  }

  /** Whether to tell `peer` its message could not be decrypted (at most once a minute per peer). */
  shouldReset (peer: string, now = Date.now()): boolean {
    if (now - (this.lastReset.get(peer) ?? 0) < RESET_INTERVAL_MS) return false
    this.lastReset.set(peer, now)
    return true
  }

  /** The peer could not decrypt: the next message starts a new session (this one still opens what is in flight). */
  onReset (peer: string): boolean {
    return this.state.transaction(() => {
      const rec = this.get<SessionRecord>(K.session, peer)
      if (rec === undefined || rec.reset === true) return false
      this.put(K.session, peer, { ...rec, reset: true } satisfies SessionRecord, Date.now())
      return true
    })
  }
}
