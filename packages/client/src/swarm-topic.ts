/**
 * End-to-end encrypted swarm topics (docs/protocol.md §32): a swarm message stays signed by its
 * author, so every forwarding node validates and scores it without a key, but its `body` is a
 * sender-key message (crypto/sender-key.ts) for the topic's members. Who is a member is a signed
 * membership chain (crypto/membership.ts) whose genesis the topic's creator signs; each author hands
 * its sender key to every member over the pairwise end-to-end sessions of the connection, as
 * private rooms do (rooms.ts), and starts a new key when a member is removed.
 *
 *   body (outer type "e2ee.swarm") = { v: 1, key_id, n, ct }   (sender-key message)
 *   sealed for room "swarm/<topic>", sender = the swarm message's author  (the AEAD's associated data)
 *   plaintext = { type, payload: { seq, body } }   seq checked against the swarm message's seq
 *
 * So a ciphertext opens only under its topic and author (associated data) and its seq (checked
 * after opening): it cannot be replayed under another message. Key distributions are encrypted DMs
 * of type `agentmesh.swarmkey` with the chain attached; a stage of every connection keeps them in
 * the agent's sealed state as they arrive (`swarmKeyStage`), and the topic imports those from
 * authors its verified chain proves.
 *
 * The swarm node is any object with the shape of `@agentmesh/swarm/net`'s `Swarm` (`SwarmLike`): the
 * client does not load libp2p.
 */
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import {
  createSenderKey, extendMembership, isAmid, needsSenderKeyRotation, pinMembership, receiverFromDistribution, senderKeyDecrypt, senderKeyDistribution,
  senderKeyEncrypt, signMembership, unpinMembership, verifyMembershipChain,
  type MembershipStatement, type PinnedMembership, type SenderKeyReceiver, type SenderKeyRotationOptions, type SenderKeyState, type VerifiedMembership,
} from '@agentmesh/crypto'
import type { E2ee } from './e2ee.ts'
import type { InboundStage } from './inbound.ts'
import { e2eeOfConnection } from './sealed-records.ts'
import type { Connection } from './types.ts'

/** Inner type of the encrypted DM that hands a member an author's sender key for a topic. */
export const SWARM_KEY_TYPE = 'agentmesh.swarmkey'
/** Outer `type` of an encrypted swarm message (visible to every node; the application's type is inside). */
export const SWARM_E2EE_TYPE = 'e2ee.swarm'
/** Inner type when the application gives none. */
const DEFAULT_INNER_TYPE = 'swarm.message'
/** An encrypted topic's name: a membership chain's room id (1–64 of a-z 0-9 _ -). */
export const ENCRYPTED_TOPIC_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$'
const TOPIC_RE = new RegExp(ENCRYPTED_TOPIC_PATTERN)
/** How long a delivery waits for its author's key before it is reported, ms (protocol §32.4). */
export const DEFAULT_SWARM_KEY_WAIT_MS = 10_000
/** Deliveries waiting for a key at most; past it the oldest is reported at once (protocol §32.4). */
export const DEFAULT_MAX_PENDING_SWARM_DELIVERIES = 1000
/** Keys kept per author and topic (the newest and those before it, for messages in flight; protocol §32.3). */
export const MAX_SWARM_KEYS_PER_AUTHOR = 3
/** Key distributions kept waiting for their topic to be opened, at most (the oldest go first; protocol §32.3). */
export const MAX_SWARM_KEY_INBOX = 1000

/** Own publications remembered to hand back as deliveries ("self"). */
const MAX_OWN_KEPT = 1000

const K = { inbox: 'swk', rx: 'swr', own: 'sws', chain: 'swm' } as const

/** A verified swarm message as the node delivers it (`@agentmesh/swarm/net`'s `SwarmDelivery`). */
export interface SwarmLikeDelivery {
  readonly topic: string
  readonly id: string
  readonly author: string
  readonly seq: number
  readonly ts: number
  readonly type?: string
  readonly body: unknown
  readonly receivedAt: number
  readonly via: 'gossip' | 'reconcile' | 'self'
}

/** The parts of a swarm node (`@agentmesh/swarm/net`'s `Swarm`) an encrypted topic uses. */
export interface SwarmLike {
  readonly amid: string
  join: (topic: string) => void
  publish: (topic: string, body: unknown, opts?: { type?: string }) => Promise<{ readonly id: string, readonly seq: number }>
  subscribe: (topic: string, opts?: { from?: 'start' | 'now', signal?: AbortSignal }) => AsyncIterableIterator<SwarmLikeDelivery>
  /** the highest seq this node used in the topic (the next publication takes the one after) */
  lastSeq: (topic: string) => number
}

/**
 * A decrypted message of an encrypted topic: the node's delivery with the application's `type` and
 * `body` from inside the encryption. Both are the author's: untrusted.
 */
export interface EncryptedDelivery extends SwarmLikeDelivery {
  readonly encrypted: true
}

/** A delivery that could not be decrypted (reported, never silently dropped). */
export interface UndecryptedDelivery {
  readonly topic: string
  readonly id: string
  readonly author: string
  readonly seq: number
  /** AM_ERR_UNKNOWN_SESSION: no key from the author within `keyWaitMs` (or too many waiting); AM_ERR_DECRYPT_FAILED: altered or not bound to this message; AM_ERR_MEMBERSHIP_UNSIGNED: the author is not a member; AM_ERR_INVALID_ENVELOPE: not an encrypted body */
  readonly error: AgentMeshError
}

export interface EncryptedTopicStats {
  /** deliveries decrypted and handed over */
  decrypted: number
  /** reported because no key came in time (or too many were waiting) */
  noKey: number
  /** dropped: the ciphertext did not open, or was not bound to its swarm message (tampered, replayed) */
  decryptFailed: number
  /** dropped: from an author the chain does not prove, or not an encrypted body */
  refused: number
  /** waiting for a key now */
  pending: number
  /** key distributions refused (bad chain, sender not a member) */
  keysRefused: number
}

export interface EncryptedTopicEvents {
  /** a delivery was not decrypted (its reason in `error.code`) */
  'message:undecrypted': CustomEvent<UndecryptedDelivery>
  /** an author's key arrived and was accepted */
  'key:accepted': CustomEvent<{ author: string, keyId: string }>
  /** a key distribution was refused */
  'key:refused': CustomEvent<{ from: string, error: AgentMeshError }>
}

export type EncryptedTopicInit =
  | ({ /** this agent creates the topic (or extends its own chain): these AMIDs are its members besides itself */ members: readonly string[] } & EncryptedTopicLimits)
  | ({ /** the AMID of the topic's creator: the first chain signed by it is pinned */ owner: string } & EncryptedTopicLimits)
  | ({ /** the topic's chain, as its creator gave it (`membership()`); its genesis is pinned */ membership: readonly unknown[] } & EncryptedTopicLimits)

export interface EncryptedTopicLimits {
  /** How long a delivery waits for its author's key, ms. @default DEFAULT_SWARM_KEY_WAIT_MS (10 s) */
  keyWaitMs?: number
  /** Deliveries waiting for keys at most. @default DEFAULT_MAX_PENDING_SWARM_DELIVERIES (1000) */
  maxPending?: number
  /** When this agent's own key is replaced besides member removals. @default 100 messages, 7 days */
  rotation?: SenderKeyRotationOptions
}

export interface EncryptedTopic {
  readonly topic: string
  /** Encrypts `body` with this agent's sender key (handing it to members who lack it first) and publishes. AM_ERR_NOT_MEMBER when the chain does not list this agent. */
  publish: (body: unknown, opts?: { type?: string }) => Promise<{ id: string, seq: number, keyId: string }>
  /** Decrypted deliveries, each once, in order; undecryptable ones are reported as `message:undecrypted` events and counted. */
  subscribe: (opts?: { from?: 'start' | 'now', signal?: AbortSignal }) => AsyncIterableIterator<EncryptedDelivery>
  /** The verified chain (members, owner), or undefined before one is known. */
  membership: () => VerifiedMembership | undefined
  /** The chain's statements (give them to members out of band, or they come with the keys). */
  statements: () => MembershipStatement[]
  /** The owner adds a member (signs `add`); the member gets this agent's key with the next publish. */
  add: (amid: string) => Promise<void>
  /** The owner removes a member (signs `remove`) and starts a new key at once, handed to the remaining members with the new chain: the removed member cannot read what follows. */
  remove: (amid: string) => Promise<void>
  stats: () => EncryptedTopicStats
  on: <E extends keyof EncryptedTopicEvents>(type: E, fn: (ev: EncryptedTopicEvents[E]) => void) => () => void
  /** Stops listening for keys (subscriptions end with the node's). */
  close: () => void
}

interface OwnKey { state: SenderKeyState, sentTo: string[] }
interface KeptChain { statements: MembershipStatement[], pinned: PinnedMembership }
interface InboxEntry { topic: string, from: string, payload: Record<string, unknown> }

/** Listeners of key arrivals, per connection (the stage calls them; topics register). */
const keyListeners = new WeakMap<object, Set<(topic: string) => void>>()

function bad (code: ErrorCode, message: string): AgentMeshError { return new AgentMeshError(code, message) }

/**
 * The stage that keeps `agentmesh.swarmkey` distributions from end-to-end encrypted peers in the
 * agent's sealed state (a topic imports them: it checks the chain and the sender's membership).
 * Never handed to the application.
 */
export function swarmKeyStage (conn: object, e2ee: E2ee | undefined, warn: (w: AgentMeshError) => void): InboundStage {
  return {
    name: 'swarm-keys',
    handle (ctx) {
      const m = ctx.message
      if (m === undefined || m.type !== SWARM_KEY_TYPE || m.room !== undefined) return 'continue'
      if (!m.encrypted || e2ee === undefined) {
        warn(bad(ErrorCode.EncryptionRequired, `dropped a swarm topic key from ${m.from}: it did not come end-to-end encrypted`))
        return 'consumed'
      }
      const topic = m.payload.topic
      if (typeof topic !== 'string' || !TOPIC_RE.test(topic)) {
        warn(bad(ErrorCode.InvalidArgument, `dropped a swarm topic key from ${m.from}: topic is not an encrypted topic's name`))
        return 'consumed'
      }
      const key = `${topic}\n${m.from}\n${String(m.payload.key_id).slice(0, 32)}`
      const entry: InboxEntry = { topic, from: m.from, payload: m.payload }
      e2ee.atomically(() => {
        e2ee.saveRecord(K.inbox, key, entry)
        const keys = e2ee.recordKeys(K.inbox)
        for (let i = 0; i < keys.length - MAX_SWARM_KEY_INBOX; i++) e2ee.dropRecord(K.inbox, keys[i]!.key)
      })
      for (const fn of keyListeners.get(conn) ?? []) fn(topic)
      return 'consumed'
    },
  }
}

function checkLimit (v: number | undefined, fallback: number, name: string, min: number): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < min) throw bad(ErrorCode.InvalidArgument, `encryptedTopic: ${name} must be an integer ≥ ${min}`)
  return v
}

const roomOf = (topic: string): string => `swarm/${topic}`

/**
 * Opens an encrypted swarm topic over a connection (key distribution, sealed state) and a swarm
 * node (the messages). Options are checked before anything is done:
 * `{ members }` (this agent creates the topic, or extends its own chain to exactly these members),
 * `{ owner }` (the creator's AMID: its chain comes with the first key), or `{ membership }`.
 *
 * Keys arrive as direct messages: the application must be reading `conn.messages()` (or the
 * connection must be `deliver: false`, which acts on them by itself), as for tasks.
 */
export function encryptedTopic (conn: Connection, node: SwarmLike, topic: string, init: EncryptedTopicInit): EncryptedTopic {
  if (typeof topic !== 'string' || !TOPIC_RE.test(topic)) {
    throw bad(ErrorCode.InvalidArgument, `encryptedTopic: topic must be 1 to 64 of a-z 0-9 _ - starting with a letter or digit (a membership chain's id), got "${String(topic).slice(0, 80)}"`)
  }
  if (node.amid !== conn.amid) throw bad(ErrorCode.InvalidArgument, `encryptedTopic: the swarm node is ${node.amid}, the connection ${conn.amid}: both must be the same agent`)
  const e2ee = e2eeOfConnection(conn)
  if (e2ee === undefined) throw bad(ErrorCode.EncryptionRequired, 'encryptedTopic: this connection has no end-to-end encryption (sender keys travel over it)')
  const modes = ['members', 'owner', 'membership'].filter(k => (init as unknown as Record<string, unknown>)[k] !== undefined)
  if (modes.length !== 1) throw bad(ErrorCode.InvalidArgument, 'encryptedTopic: give exactly one of members, owner, membership')
  const keyWaitMs = checkLimit(init.keyWaitMs, DEFAULT_SWARM_KEY_WAIT_MS, 'keyWaitMs', 0)
  const maxPending = checkLimit(init.maxPending, DEFAULT_MAX_PENDING_SWARM_DELIVERIES, 'maxPending', 1)
  const me = conn.amid
  const events = new EventTarget()
  const counts = { decrypted: 0, noKey: 0, decryptFailed: 0, refused: 0, keysRefused: 0 }
  let pendingNow = 0
  const room = roomOf(topic)

  // ---- the chain
  const kept = (): KeptChain | undefined => e2ee.record<KeptChain>(K.chain, topic)
  const verified = (): VerifiedMembership | undefined => { const k = kept(); return k === undefined ? undefined : unpinMembership(k.pinned) }
  const keep = (statements: MembershipStatement[], v: VerifiedMembership): void => { e2ee.saveRecord(K.chain, topic, { statements, pinned: pinMembership(v) }) }
  const signer = signerOf(conn)
  const expectOwner = 'owner' in init && init.owner !== undefined ? init.owner : undefined
  if (expectOwner !== undefined && (typeof expectOwner !== 'string' || !isAmid(expectOwner))) {
    throw bad(ErrorCode.InvalidArgument, `encryptedTopic: owner "${String(expectOwner).slice(0, 80)}" is not an AMID`)
  }

  if ('membership' in init && init.membership !== undefined) {
    const st = [...init.membership] as MembershipStatement[]
    const k = kept()
    const r = extendMembership(topic, st, k?.pinned)
    keep(st, r.state)
  } else if ('members' in init && init.members !== undefined) {
    if (signer === undefined) throw bad(ErrorCode.InvalidArgument, 'encryptedTopic: signing a membership chain needs the agent\'s identity (a connection made by connect())')
    const want = new Set(init.members.filter(a => a !== me))
    for (const a of want) {
      if (typeof a !== 'string' || !isAmid(a)) throw bad(ErrorCode.InvalidArgument, `encryptedTopic: member "${String(a).slice(0, 80)}" is not an AMID`)
    }
    let k = kept()
    if (k !== undefined && unpinMembership(k.pinned).owner !== me) {
      throw bad(ErrorCode.MembershipUnsigned, `encryptedTopic: ${topic}'s chain pinned here was created by ${k.pinned.owner}, not this agent: open it with { owner } instead of { members }`)
    }
    let statements = k?.statements ?? []
    let v = k === undefined ? undefined : unpinMembership(k.pinned)
    const append = (op: 'create' | 'add' | 'remove', agent: string): void => {
      const st = signMembership(signer, { room: topic, op, agent, ...(statements.length === 0 ? {} : { after: statements[statements.length - 1] }) })
      v = v === undefined ? verifyMembershipChain(topic, [st]) : extendMembership(topic, [...statements, st], pinMembership(v)).state
      statements = [...statements, st]
    }
    if (v === undefined) append('create', me)
    for (const a of want) if (!v!.members.has(a)) append('add', a)
    for (const a of [...v!.members.keys()]) if (a !== me && !want.has(a)) append('remove', a)
    if (k === undefined || statements.length !== k.statements.length) keep(statements, v!)
    k = kept()
  }

  /** Takes a chain that came with a key: it must extend the pinned one (or, first, be signed by the expected owner). */
  const takeChain = (statements: unknown): void => {
    if (!Array.isArray(statements) || statements.length === 0) return
    const k = kept()
    if (k !== undefined && statements.length <= k.statements.length) return // not newer than what is pinned
    if (k === undefined) {
      if (expectOwner === undefined) throw bad(ErrorCode.MembershipUnsigned, `no chain is pinned for ${topic} and no owner was given to check one`)
      const v = verifyMembershipChain(topic, statements)
      if (v.owner !== expectOwner) throw bad(ErrorCode.MembershipUnsigned, `the chain of ${topic} is signed by ${v.owner}, not by the owner ${expectOwner}`)
      keep(statements as MembershipStatement[], v)
      return
    }
    const r = extendMembership(topic, statements, k.pinned)
    keep(statements as MembershipStatement[], r.state)
  }

  // ---- keys received
  const importKeys = (): void => {
    for (const { key, value } of e2ee.records<InboxEntry>(K.inbox)) {
      if (value.topic !== topic) continue
      e2ee.dropRecord(K.inbox, key)
      try {
        takeChain(value.payload.membership)
        const v = verified()
        if (v === undefined) throw bad(ErrorCode.MembershipUnsigned, `no verified chain for ${topic} yet`)
        if (!v.members.has(value.from)) throw bad(ErrorCode.MembershipUnsigned, `${value.from} is not a member of ${topic} by its signed chain`)
        const rx = receiverFromDistribution(value.payload, { room, sender: value.from })
        const rk = `${topic}\n${value.from}`
        const held = e2ee.record<SenderKeyReceiver[]>(K.rx, rk) ?? []
        const same = held.find(h => h.keyId === rx.keyId)
        if (same !== undefined && same.n <= rx.n) continue // handed out again, later in its chain: the one held opens more
        e2ee.saveRecord(K.rx, rk, [rx, ...held.filter(h => h.keyId !== rx.keyId)].slice(0, MAX_SWARM_KEYS_PER_AUTHOR))
        events.dispatchEvent(new CustomEvent('key:accepted', { detail: { author: value.from, keyId: rx.keyId } }))
      } catch (err) {
        counts.keysRefused++
        const error = AgentMeshError.is(err) ? err : bad(ErrorCode.InvalidArgument, (err as Error).message)
        events.dispatchEvent(new CustomEvent('key:refused', { detail: { from: value.from, error } }))
      }
    }
    for (const w of keyWaiters.splice(0)) w()
  }
  const keyWaiters: Array<() => void> = []
  let listeners = keyListeners.get(conn)
  if (listeners === undefined) { listeners = new Set(); keyListeners.set(conn, listeners) }
  const onKey = (t: string): void => { if (t === topic) importKeys() }
  listeners.add(onKey)
  importKeys()

  // ---- sending
  let sendChain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = sendChain.then(fn, fn)
    sendChain = next.catch(() => {})
    return next
  }
  const distribute = async (own: OwnKey, to: readonly string[]): Promise<OwnKey> => {
    if (to.length === 0) return own
    const payload = { v: 1, topic, ...senderKeyDistribution(own.state), membership: kept()?.statements ?? [] }
    // each over the pairwise session (direct path or relay: the connection chooses); awaited so the
    // key is stored before the first message sealed with it is published
    await Promise.all(to.map(async m => await conn.send(m, { ...payload }, { type: SWARM_KEY_TYPE })))
    return { ...own, sentTo: [...own.sentTo, ...to.filter(m => !own.sentTo.includes(m))] }
  }
  const ownKey = async (forceNew: boolean): Promise<OwnKey> => {
    const v = verified()
    if (v === undefined || !v.members.has(me)) {
      throw bad(ErrorCode.NotMember, v === undefined
        ? `${topic}: no signed membership is known here yet (it comes with the owner's key, or give { membership })`
        : `${topic}: this agent is not a member by the topic's signed chain (owner ${v.owner})`)
    }
    const now = Date.now()
    let own = e2ee.record<OwnKey>(K.own, topic)
    if (forceNew || own === undefined || needsSenderKeyRotation(own.state, now, init.rotation) || own.sentTo.some(m => !v.members.has(m))) {
      // a removed member never gets the new key: it cannot read what follows
      own = { state: createSenderKey(room, me, now), sentTo: [] }
    }
    const others = [...v.members.keys()].filter(m => m !== me)
    own = await distribute(own, others.filter(m => !own!.sentTo.includes(m)))
    e2ee.saveRecord(K.own, topic, own)
    return own
  }

  node.join(topic)
  /** what this agent published in this process, by seq (handed back as its own deliveries) */
  const ownSent = new Map<number, { type: string, body: unknown }>()

  const publish = async (body: unknown, opts: { type?: string } = {}): Promise<{ id: string, seq: number, keyId: string }> => await serial(async () => {
    const type = opts.type ?? DEFAULT_INNER_TYPE
    const own = await ownKey(false)
    // the seq the node will give this message: bound inside the ciphertext
    const seq = node.lastSeq(topic) + 1
    const r = senderKeyEncrypt(own.state, type, { seq, body })
    // the chain moves on before anything is sent: a message key is never used twice, even when the
    // publication fails (receivers skip the unused key)
    e2ee.saveRecord(K.own, topic, { ...own, state: r.state })
    // kept before publishing: the node delivers its own message ("self") while publishing
    ownSent.set(seq, { type, body })
    if (ownSent.size > MAX_OWN_KEPT) ownSent.delete(ownSent.keys().next().value!)
    const p = await node.publish(topic, r.message, { type: SWARM_E2EE_TYPE })
    if (p.seq !== seq) throw bad(ErrorCode.Internal, `encryptedTopic: the node published seq ${p.seq}, not ${seq} (another publisher on this node and topic?)`)
    return { id: p.id, seq: p.seq, keyId: own.state.keyId }
  })

  // ---- receiving
  type Raw = SwarmLikeDelivery
  const report = (d: Raw, error: AgentMeshError): void => {
    events.dispatchEvent(new CustomEvent('message:undecrypted', { detail: { topic, id: d.id, author: d.author, seq: d.seq, error } }))
  }
  /** The delivery decrypted, 'wait' when its author's key is not here (yet), or undefined after reporting it. */
  const open = (d: Raw): EncryptedDelivery | 'wait' | undefined => {
    if (d.type !== SWARM_E2EE_TYPE || typeof d.body !== 'object' || d.body === null) {
      counts.refused++
      report(d, bad(ErrorCode.InvalidEnvelope, `message ${d.seq} of ${d.author} in ${topic} is not encrypted (type ${d.type ?? 'none'}): not shown on an encrypted topic`))
      return undefined
    }
    const v = verified()
    if (d.author !== me && v !== undefined && !v.members.has(d.author)) {
      counts.refused++
      report(d, bad(ErrorCode.MembershipUnsigned, `message ${d.seq} in ${topic}: its author ${d.author} is not a member by the signed chain`))
      return undefined
    }
    const keyId = (d.body as { key_id?: unknown }).key_id
    if (d.author === me) {
      // this agent's own message (via "self"): what it published in this process, else not shown
      const mine = ownSent.get(d.seq)
      if (mine === undefined) return undefined
      return { topic, id: d.id, author: d.author, seq: d.seq, ts: d.ts, ...(mine.type === DEFAULT_INNER_TYPE ? {} : { type: mine.type }), body: mine.body, receivedAt: d.receivedAt, via: d.via, encrypted: true }
    }
    const rk = `${topic}\n${d.author}`
    const rx = (e2ee.record<SenderKeyReceiver[]>(K.rx, rk) ?? []).find(h => h.keyId === keyId)
    if (rx === undefined) return 'wait'
    try {
      const r = senderKeyDecrypt(rx, room, d.author, d.body)
      const inner = r.payload as { seq?: unknown, body?: unknown }
      if (inner.seq !== d.seq) {
        throw bad(ErrorCode.DecryptFailed, `the ciphertext was sealed for seq ${String(inner.seq)}, not for this message's seq ${d.seq} (a replayed ciphertext)`)
      }
      const held = e2ee.record<SenderKeyReceiver[]>(K.rx, rk) ?? []
      e2ee.saveRecord(K.rx, rk, held.map(h => h.keyId === rx!.keyId ? r.receiver : h))
      counts.decrypted++
      return {
        topic, id: d.id, author: d.author, seq: d.seq, ts: d.ts,
        ...(r.type === DEFAULT_INNER_TYPE ? {} : { type: r.type }),
        body: inner.body, receivedAt: d.receivedAt, via: d.via, encrypted: true,
      }
    } catch (err) {
      counts.decryptFailed++
      const e = AgentMeshError.is(err) ? err : bad(ErrorCode.DecryptFailed, (err as Error).message)
      report(d, new AgentMeshError(e.code === ErrorCode.InvalidEnvelope ? ErrorCode.InvalidEnvelope : ErrorCode.DecryptFailed,
        `dropped message ${d.seq} of ${d.author} in ${topic}: ${e.message}`))
      return undefined
    }
  }

  const subscribe = (opts: { from?: 'start' | 'now', signal?: AbortSignal } = {}): AsyncIterableIterator<EncryptedDelivery> => {
    const src = node.subscribe(topic, opts)
    const out: EncryptedDelivery[] = []
    const pending: Array<{ d: Raw, until: number }> = []
    let wake: (() => void) | undefined
    let ended = false
    let failure: unknown
    const poke = (): void => { const w = wake; wake = undefined; w?.() }
    const retry = (now: number): void => {
      for (let i = 0; i < pending.length;) {
        const p = pending[i]!
        const r = open(p.d)
        if (r === 'wait' && p.until > now) { i++; continue }
        pending.splice(i, 1)
        if (r === 'wait') {
          counts.noKey++
          report(p.d, bad(ErrorCode.UnknownSession, `message ${p.d.seq} of ${p.d.author} in ${topic}: its author's key did not arrive within ${keyWaitMs} ms (is the application reading conn.messages()? is this agent a member by the author's chain?)`))
        } else if (r !== undefined) out.push(r)
      }
      pendingNow = pending.length
    }
    keyWaiters.push(function again () { if (!ended) { keyWaiters.push(again); poke() } })
    const timer = setInterval(poke, Math.max(50, Math.min(1000, keyWaitMs / 4)))
    timer.unref?.()
    void (async () => {
      try {
        for await (const d of src) {
          if (pending.length > 0) {
            // keep the order: behind a message waiting for a key, others wait too (only from the same author)
            if (pending.some(p => p.d.author === d.author)) {
              pending.push({ d, until: Date.now() + keyWaitMs })
            } else {
              const r = open(d)
              if (r === 'wait') pending.push({ d, until: Date.now() + keyWaitMs })
              else if (r !== undefined) out.push(r)
            }
          } else {
            const r = open(d)
            if (r === 'wait') pending.push({ d, until: Date.now() + keyWaitMs })
            else if (r !== undefined) out.push(r)
          }
          while (pending.length > maxPending) {
            const p = pending.shift()!
            counts.noKey++
            report(p.d, bad(ErrorCode.UnknownSession, `message ${p.d.seq} of ${p.d.author} in ${topic}: more than ${maxPending} deliveries were waiting for keys`))
          }
          pendingNow = pending.length
          poke()
        }
      } catch (err) {
        failure = err
      } finally {
        ended = true
        poke()
      }
    })()
    const it: AsyncIterableIterator<EncryptedDelivery> = {
      [Symbol.asyncIterator] () { return it },
      async next () {
        for (;;) {
          if (pending.length > 0) retry(Date.now())
          const x = out.shift()
          if (x !== undefined) return { value: x, done: false }
          if (ended && pending.length === 0) {
            clearInterval(timer)
            if (failure !== undefined) throw failure
            return { value: undefined, done: true }
          }
          if (ended) { await new Promise(resolve => setTimeout(resolve, 50)); continue }
          await new Promise<void>(resolve => { wake = resolve })
        }
      },
      async return () {
        ended = true
        clearInterval(timer)
        await src.return?.()
        return { value: undefined, done: true }
      },
    }
    return it
  }

  const change = async (op: 'add' | 'remove', amid: string): Promise<void> => await serial(async () => {
    if (signer === undefined) throw bad(ErrorCode.InvalidArgument, 'encryptedTopic: signing a membership statement needs the agent\'s identity')
    const k = kept()
    if (k === undefined) throw bad(ErrorCode.MembershipUnsigned, `${topic}: no chain is known here`)
    const st = signMembership(signer, { room: topic, op, agent: amid, after: k.statements[k.statements.length - 1] })
    const statements = [...k.statements, st]
    const r = extendMembership(topic, statements, k.pinned) // AM_ERR_MEMBERSHIP_UNSIGNED when this agent may not
    keep(statements, r.state)
    if (op === 'remove') {
      // a new key at once, handed to the remaining members with the new chain (so they rotate too)
      await ownKey(true)
    } else {
      const own = e2ee.record<OwnKey>(K.own, topic)
      // the new chain to everyone who holds the key already, and the key to the new member
      if (own !== undefined) {
        const others = [...r.state.members.keys()].filter(m => m !== me)
        await distribute({ ...own, sentTo: [] }, others)
        e2ee.saveRecord(K.own, topic, { ...own, sentTo: others })
      }
    }
  })

  return {
    topic,
    publish,
    subscribe,
    membership: verified,
    statements: () => kept()?.statements ?? [],
    add: async (amid) => { await change('add', amid) },
    remove: async (amid) => { await change('remove', amid) },
    stats: () => ({ ...counts, pending: pendingNow }),
    on: (type, fn) => {
      const h = fn as unknown as (ev: Event) => void
      events.addEventListener(type, h)
      return () => { events.removeEventListener(type, h) }
    },
    close: () => { listeners.delete(onKey) },
  }
}

/** The identity a connection signs membership statements with. */
function signerOf (conn: Connection): Parameters<typeof signMembership>[0] | undefined {
  return identityOf.get(conn)
}

/** The connection ties itself to its identity (connection.ts), for membership statements. */
export const identityOf = new WeakMap<object, Parameters<typeof signMembership>[0]>()
