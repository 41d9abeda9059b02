/**
 * Private rooms on the agent's side (docs/protocol.md §17.5): this agent's sender key per room,
 * handed to every member over the pairwise sessions before its first message with it, rotated when
 * a member leaves, after 100 messages and after a week; the sender keys of the other members,
 * received the same way. Everything is sealed in the agent's state like the pairwise sessions.
 *
 * History: besides the live chains (which only move forward), the agent keeps each sender key's
 * first chain key it knows (its own from creation, another member's as distributed to it), for the
 * newest MAX_HISTORY_KEYS_PER_SENDER keys of each sender in each room. From it the message keys of
 * that key's later messages are derived again to read the room's history, on copies: the live
 * chains are never moved by reading history.
 *
 * Membership: a private room's members are proven by its chain of signed membership statements
 * (crypto/membership.ts), verified here from the genesis this agent pinned for the room (trust on
 * first use, or its own when it created the room). The sender key goes only to agents the relay
 * lists AND the chain proves; an agent the relay lists without a statement (a ghost member) gets
 * nothing and is named in an AM_ERR_MEMBERSHIP_UNSIGNED warning, and a chain that does not verify
 * stops the send. Members added since the last verification are told as `member` events
 * (`change: "added"`, `by` the signer).
 */
import { AgentMeshError, ErrorCode, type ChatEvent, type Envelope } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import {
  applyMembership, createSenderKey, extendMembership, needsSenderKeyRotation, pinMembership, receiverFromDistribution, senderKeyDecrypt, senderKeyDistribution, senderKeyEncrypt,
  signMembership, unpinMembership, verifyEnvelope,
  type GroupMessage, type Identity, type MembershipOp, type MembershipStatement, type PinnedMembership, type SenderKeyReceiver, type SenderKeyState, type VerifiedMembership,
} from '@agentmesh/crypto'
import type { Decrypted, E2ee } from './e2ee.ts'
import { restCall, type RestRequest } from './api.ts'

export const SENDER_KEY_TYPE = 'agentmesh.senderkey'
export const GROUP_TYPE = 'e2ee.group'
/** Room facts (kind, members) are asked again after this long, or at once after a membership event. */
const ROOM_INFO_TTL_MS = 30_000
/** A room's chain is fetched again for an unknown sender at most this often. */
const REVERIFY_MS = 10_000
/** Rooms whose facts are kept at most (the least recently used go first). */
const MAX_ROOM_INFO = 1000
/** Keys of one sender kept per room: the newest and a few before it, for messages in flight. */
const MAX_KEYS_PER_SENDER = 3
/**
 * Sender keys kept per sender and room to read history (their first known chain key each): a key
 * seals at most 100 messages and lives at most a week, so a sender's messages of its newest 20
 * keys are readable (at most 2,000 messages, over at most 20 weeks). Older ones show as not
 * decrypted (`no_key`).
 */
export const MAX_HISTORY_KEYS_PER_SENDER = 20

const K = { own: 'gsk', peer: 'grk', plain: 'plain', history: 'ghk', deferred: 'gq', membership: 'gmp' } as const

/**
 * A send kept in the agent's state until the relay can be reached: a room message whose room could
 * not be looked up (a private room's members are needed to hand out the sender key, and an unknown
 * room may be private, so nothing of it goes to the relay before), and every send made after it,
 * so that they leave in the order they were made. Sealed like the sessions; the payload is the
 * plaintext, which leaves the agent only once it is known where it goes: encrypted for a private
 * room or a peer, or signed as it is for a public room.
 */
export interface DeferredSend { id: string, to: string, type: string, payload: Record<string, unknown>, encrypt?: boolean, resendOf?: string, at: number }

/** Errors that mean the relay could not be reached (a send needing a look-up is then deferred). */
export function isUnreachable (err: unknown): boolean {
  return AgentMeshError.is(err, ErrorCode.ConnectFailed) || AgentMeshError.is(err, ErrorCode.ShuttingDown)
}

/** A sender key as first known to this agent: its chain key for message `n`. */
interface HistoryKey { keyId: string, chainKey: string, n: number }

/** Why a private room message of the history was not decrypted. */
export type UndecryptedReason = 'no_key' | 'before_key' | 'failed'

/** A private room message of the history, opened or not. */
export type HistoryOpened =
  | { ok: true, type: string, payload: Record<string, unknown> }
  | { ok: false, reason: UndecryptedReason, message: string }

interface OwnKey {
  state: SenderKeyState
  /** members this key was handed to: when one of them is no longer a member, the key is replaced */
  sentTo: string[]
}

interface RoomInfo {
  kind: string
  /** the members a sender key goes to: for a private room, those the relay lists and the signed chain proves */
  members: string[]
  /** private rooms: agents the relay lists that no signed statement adds (ghost members) */
  ghosts: string[]
  at: number
}

export interface RoomsConfig {
  e2ee: E2ee
  amid: string
  /** signs membership statements (the agent's identity key) */
  identity: Identity
  /** a warning (a ghost member) */
  warn: (w: AgentMeshError) => void
  /** a verified membership change (someone added or removed), as a chat event */
  notify: (e: ChatEvent) => void
  /** A signed REST call to the relay. */
  request: RestRequest
  /** Queues an end-to-end encrypted DM (in the outbox when it resolves; acked later). */
  queueDm: (to: string, payload: Record<string, unknown>, type: string) => Promise<void>
}

export class Rooms {
  private readonly info = new LruMap<string, RoomInfo>(MAX_ROOM_INFO)
  private readonly locks = new Map<string, Promise<unknown>>()
  /** ghost members already warned about (room + AMID), so a warning is not repeated at every send */
  private readonly warned = new LruMap<string, true>(MAX_ROOM_INFO)
  /** when a room's chain was last fetched for a sender it did not prove (provenMember) */
  private readonly reverified = new LruMap<string, number>(MAX_ROOM_INFO)
  /** the `at` of the newest deferred send (read from the state on first use) */
  private lastDeferredAt: number | undefined

  constructor (private readonly cfg: RoomsConfig) {}

  /** Forgets what is known of a room (a membership event came). */
  invalidate (room: string): void { this.info.delete(room) }

  /** Sends deferred while the relay could not be reached, in the order they were made. */
  deferredSends (): DeferredSend[] {
    return this.cfg.e2ee.records<DeferredSend>(K.deferred).map(r => r.value).sort((a, b) => a.at - b.at)
  }

  /** Keeps a send for later (see DeferredSend); `at` orders it after every send kept before. */
  defer (d: Omit<DeferredSend, 'at'>): DeferredSend {
    this.lastDeferredAt ??= this.cfg.e2ee.records<DeferredSend>(K.deferred).reduce((m, r) => Math.max(m, r.value.at), 0)
    const kept: DeferredSend = { ...d, at: Math.max(Date.now(), this.lastDeferredAt + 1) }
    this.lastDeferredAt = kept.at
    this.cfg.e2ee.saveRecord(K.deferred, d.id, kept, kept.at)
    return kept
  }

  /** The deferred send is in the outbox now (or failed for good). */
  undefer (id: string): void { this.cfg.e2ee.dropRecord(K.deferred, id) }

  async roomInfo (room: string, fresh = false): Promise<RoomInfo> {
    const cached = this.info.get(room)
    if (!fresh && cached !== undefined && Date.now() - cached.at < ROOM_INFO_TTL_MS) return cached
    const r = await restCall(this.cfg.request, 'getRoom', `/api/v1/rooms/${room}`)
    let members: string[] = []
    let ghosts: string[] = []
    if (r.kind === 'private' || r.kind === 'public') {
      const m = await restCall(this.cfg.request, 'listMembers', `/api/v1/rooms/${room}/members`)
      members = m.members.map(x => x.amid)
    }
    if (r.kind === 'private') {
      // the relay's list is not trusted: only members the signed chain proves count
      const proven = (await this.membership(room)).members
      ghosts = members.filter(a => !proven.has(a))
      members = members.filter(a => proven.has(a))
    }
    const info = { kind: String(r.kind), members, ghosts, at: Date.now() }
    this.info.set(room, info)
    return info
  }

  /**
   * A private room's membership, verified: the relay's chain checked from the genesis (and the
   * head) this agent pinned for the room, the pin moved to the new head. Members added or removed
   * since the last verification are told (`notify`). Throws AM_ERR_MEMBERSHIP_UNSIGNED when the
   * chain does not verify (nothing is pinned then).
   */
  async membership (room: string): Promise<VerifiedMembership> { return (await this.verify(room)).state }

  private async verify (room: string): Promise<{ state: VerifiedMembership, last: MembershipStatement }> {
    const a = await restCall(this.cfg.request, 'roomMembership', `/api/v1/rooms/${room}/membership`)
    const pinned = this.cfg.e2ee.record<PinnedMembership>(K.membership, room)
    let r
    try {
      r = extendMembership(room, a.statements, pinned)
    } catch (err) {
      const e = AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.MembershipUnsigned, (err as Error).message)
      throw new AgentMeshError(ErrorCode.MembershipUnsigned, `the relay's membership of #${room} does not verify, so nobody gets this agent's sender key: ${e.message.replace(/^membership statement: /, '')}`)
    }
    if (pinned === undefined || r.state.head.seq !== pinned.head.seq) this.cfg.e2ee.saveRecord(K.membership, room, pinMembership(r.state))
    if (pinned !== undefined) {
      for (const st of r.added) {
        if (st.by === this.cfg.amid || (st.op !== 'add' && st.op !== 'remove')) continue
        this.cfg.notify({ type: 'member', amid: st.agent, room: '#' + room, change: st.op === 'add' ? 'added' : 'removed', by: st.by, ts: st.at })
      }
    }
    return { state: r.state, last: a.statements[r.state.head.seq] as MembershipStatement }
  }

  /**
   * Whether `sender` is a member of the private room by its signed chain: the pinned membership
   * first, then (once per room per interval) the relay's chain verified again, for a member added
   * since. A sender the chain does not prove — a ghost the relay let in — is not read from
   * (docs/protocol.md §17.5). A room without a verifiable chain proves nobody.
   */
  async provenMember (room: string, sender: string, now = Date.now()): Promise<boolean> {
    if (sender === this.cfg.amid) return true
    const pinned = this.cfg.e2ee.record<PinnedMembership>(K.membership, room)
    if (pinned?.members.some(([a]) => a === sender) === true) return true
    const last = this.reverified.get(room)
    if (last !== undefined && now - last < REVERIFY_MS) return false
    this.reverified.set(room, now)
    try {
      return (await this.membership(room)).members.has(sender)
    } catch {
      return false
    }
  }

  /** The genesis of a private room this agent creates (send it with the create). */
  genesis (room: string): MembershipStatement {
    return signMembership(this.cfg.identity, { room, op: 'create', agent: this.cfg.amid })
  }

  /** Pins this agent's own genesis once the relay created the room: it is the room from now on. */
  pinGenesis (room: string, genesis: MembershipStatement): void {
    const v = extendMembership(room, [genesis]).state
    this.cfg.e2ee.saveRecord(K.membership, room, pinMembership(v))
  }

  /**
   * Signs the next statement of a private room's chain (verified first): `add` to invite, `remove`
   * to kick, `leave`, `admin`/`unadmin`. Answers undefined for an `add` of an agent the chain proves
   * a member already (its invitation needs no new statement).
   */
  async signChange (room: string, op: MembershipOp, agent: string): Promise<MembershipStatement | undefined> {
    const { state, last } = await this.verify(room)
    if (op === 'add' && state.members.has(agent)) return undefined
    const st = signMembership(this.cfg.identity, { room, op, agent, after: last })
    applyMembership(state, st) // this agent may make the change (else AM_ERR_MEMBERSHIP_UNSIGNED here, as the relay would answer)
    return st
  }

  /** The verified membership as kept (no relay call), or undefined before the first verification. */
  pinned (room: string): VerifiedMembership | undefined {
    const p = this.cfg.e2ee.record<PinnedMembership>(K.membership, room)
    return p === undefined ? undefined : unpinMembership(p)
  }

  /** Runs `fn` after every earlier call for the same room (sender-key state is read, changed and saved). */
  serial<T> (room: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(room) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => {})
    this.locks.set(room, tail)
    void tail.then(() => { if (this.locks.get(room) === tail) this.locks.delete(room) })
    return next
  }

  /**
   * Encrypts a message for a private room with this agent's sender key: a new key when due, and
   * the key queued (as encrypted DMs, before the message) to members that do not have it yet.
   * Call inside `serial(room, …)` and queue the room message before the lock is released.
   */
  async encrypt (room: string, type: string, payload: Record<string, unknown>): Promise<GroupMessage> {
    const info = await this.roomInfo(room, true)
    if (!info.members.includes(this.cfg.amid)) throw new AgentMeshError(ErrorCode.NotMember, `join ${room} before posting to it`)
    for (const g of info.ghosts) {
      if (this.warned.get(`${room}\n${g}`) !== undefined) continue
      this.warned.set(`${room}\n${g}`, true)
      this.cfg.warn(new AgentMeshError(ErrorCode.MembershipUnsigned, `#${room}: the relay lists ${g} as a member, but no statement signed by the room's owner or an admin adds it; it gets no sender key (added by the relay or its operator?) — tell the room's owner`))
    }
    const now = Date.now()
    const others = info.members.filter(m => m !== this.cfg.amid)
    let own = this.cfg.e2ee.record<OwnKey>(K.own, room)
    let created = false
    if (own === undefined || needsSenderKeyRotation(own.state, now) || own.sentTo.some(m => !info.members.includes(m))) {
      own = { state: createSenderKey(room, this.cfg.amid, now), sentTo: [] }
      created = true
    }
    const missing = others.filter(m => !own!.sentTo.includes(m))
    if (missing.length > 0) {
      const dist = senderKeyDistribution(own.state)
      for (const m of missing) await this.cfg.queueDm(m, { ...dist }, SENDER_KEY_TYPE)
      own = { ...own, sentTo: [...own.sentTo, ...missing] }
    }
    const r = senderKeyEncrypt(own.state, type, payload)
    const state = own.state
    this.cfg.e2ee.atomically(() => {
      if (created) this.keepHistoryKey(room, this.cfg.amid, { keyId: state.keyId, chainKey: state.chainKey, n: state.n }, now)
      this.cfg.e2ee.saveRecord(K.own, room, { ...own, state: r.state }, now)
    })
    return r.message
  }

  /** A member's sender key arrived over the pairwise session from `from`. */
  accept (from: string, payload: Record<string, unknown>): { room: string } {
    const rx = receiverFromDistribution(payload, { sender: from })
    const key = `${rx.room}\n${from}`
    const held = this.cfg.e2ee.record<SenderKeyReceiver[]>(K.peer, key) ?? []
    const rest = held.filter(h => h.keyId !== rx.keyId)
    this.cfg.e2ee.atomically(() => {
      this.cfg.e2ee.saveRecord(K.peer, key, [rx, ...rest].slice(0, MAX_KEYS_PER_SENDER))
      this.keepHistoryKey(rx.room, from, { keyId: rx.keyId, chainKey: rx.chainKey, n: rx.n })
    })
    return { room: rx.room }
  }

  /** Keeps a sender key's earliest known chain key for reading history (the newest keys first, bounded). */
  private keepHistoryKey (room: string, sender: string, k: HistoryKey, at = Date.now()): void {
    const key = `${room}\n${sender}`
    const held = this.cfg.e2ee.record<HistoryKey[]>(K.history, key) ?? []
    const same = held.find(h => h.keyId === k.keyId)
    if (same !== undefined && same.n <= k.n) return // the same key handed out again, later in its chain
    const rest = held.filter(h => h.keyId !== k.keyId)
    this.cfg.e2ee.saveRecord(K.history, key, [k, ...rest].slice(0, MAX_HISTORY_KEYS_PER_SENDER), at)
  }

  /**
   * Opens a private room message read from the history (`env` as the relay stored it) with the
   * sender keys this agent holds: its own and those other members handed it. Never throws and
   * changes nothing: the live chains stay where they are. `no_key`: no key with that id from that
   * sender (sent before this agent joined, its key has not reached this agent yet, or it is older
   * than the keys kept); `before_key`: sent with that key before it was handed to this agent;
   * `failed`: a bad signature, or the message does not open.
   */
  openHistory (room: string, env: Envelope): HistoryOpened {
    const failed = (why: string): HistoryOpened => ({ ok: false, reason: 'failed', message: `could not be decrypted: ${why}` })
    if (env.type !== GROUP_TYPE || env.to !== '#' + room) return failed(`not a message of #${room} sealed with a sender key`)
    if (env.via !== undefined || !verifyEnvelope(env)) return failed('its signature does not verify')
    const gm = env.payload as { key_id?: unknown, n?: unknown }
    const own = env.from === this.cfg.amid
    const known = this.cfg.e2ee.record<HistoryKey[]>(K.history, `${room}\n${env.from}`) ?? []
    // keys held before history keys were kept: the live receivers (copies), as a fallback
    const live = own ? [] : (this.cfg.e2ee.record<SenderKeyReceiver[]>(K.peer, `${room}\n${env.from}`) ?? [])
    const candidates: SenderKeyReceiver[] = [
      ...known.filter(k => k.keyId === gm.key_id).map(k => ({ room, sender: env.from, keyId: k.keyId, chainKey: k.chainKey, n: k.n, skipped: {} })),
      ...live.filter(r => r.keyId === gm.key_id),
    ]
    if (candidates.length === 0) {
      return {
        ok: false,
        reason: 'no_key',
        message: own
          ? 'no key: your sender key for it is no longer kept'
          : 'no key: sent before you joined, or its sender\'s key has not reached you',
      }
    }
    if (typeof gm.n === 'number' && candidates.every(c => gm.n as number < c.n && !Object.hasOwn(c.skipped, String(gm.n)))) {
      return { ok: false, reason: 'before_key', message: 'no key: sent before you joined (before its sender\'s key was handed to you)' }
    }
    let last: unknown
    for (const c of candidates) {
      try {
        const r = senderKeyDecrypt(c, room, env.from, env.payload, { maxSkipped: 0 })
        return { ok: true, type: r.type, payload: r.payload }
      } catch (err) {
        last = err
      }
    }
    return failed(AgentMeshError.is(last) ? last.code : 'it does not open')
  }

  /**
   * Decrypts a private room message (signature already checked), saving the receiver's new chain
   * state and the plaintext in one step; `inStep` runs inside it.
   */
  decrypt (env: Envelope, inStep?: () => void): Decrypted {
    const kept = this.cfg.e2ee.kept(env)
    if (kept !== undefined) return kept
    const room = env.to.slice(1)
    const key = `${room}\n${env.from}`
    return this.cfg.e2ee.atomically(() => {
      inStep?.()
      const held = this.cfg.e2ee.record<SenderKeyReceiver[]>(K.peer, key) ?? []
      const keyId = (env.payload as { key_id?: unknown }).key_id
      const rx = held.find(h => h.keyId === keyId)
      if (rx === undefined) {
        throw new AgentMeshError(ErrorCode.UnknownSession, `dropped message ${env.id} in #${room} from ${env.from}: this agent has not received that sender's key (it joined later, or the key was lost)`)
      }
      let r
      try {
        r = senderKeyDecrypt(rx, room, env.from, env.payload)
      } catch (err) {
        const e = err as AgentMeshError
        throw new AgentMeshError(AgentMeshError.is(e) ? e.code : ErrorCode.DecryptFailed, `dropped message ${env.id} in #${room} from ${env.from}: ${e.message}`)
      }
      this.cfg.e2ee.saveRecord(K.peer, key, held.map(h => h.keyId === rx.keyId ? r.receiver : h))
      const out: Decrypted = { type: r.type, payload: r.payload }
      this.cfg.e2ee.saveRecord(K.plain, `${env.from}\n${env.id}`, out)
      return out
    })
  }
}
