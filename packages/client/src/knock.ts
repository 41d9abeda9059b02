/**
 * KNOCK, grants and the per-peer guards (docs/protocol.md §16): the agent's gatekeeper.
 *
 * A stranger's first message is a knock (inner type `agentmesh.knock`, end-to-end encrypted like
 * any message): its intent is judged by the agent's policy — accept (a signed grant goes back),
 * reject (with a reason), reject silently, or hold for the owner. With a policy in force, a message
 * from a peer without a valid grant from this agent is dropped with AM_ERR_NO_GRANT and never
 * reaches the application; every delivered message carries its provenance (tier, organisation,
 * grant) and is marked untrusted. Per peer, a limit delays, it never drops: a message over the
 * rate limit, or from a peer whose circuit breaker (a conversation loop) is open, is set aside in
 * the agent's sealed state and processed when the window allows, in order; the sender is told.
 * A peer is blocked only by the owner (`block`), or by the breaker when `auto_block_after` is set.
 *
 * Without a policy file the agent is open: messages need no grant, and knocks are accepted with
 * the default scopes.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { v7 as uuidv7 } from 'uuid'
import { isAmid, signGrant, verifyGrant, type Grant, type Identity, type TrustTier } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, ID_PATTERN, stripUnsafeChars } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { BOUNCE_MEMORY, CircuitBreaker, RateLimiter, breakerInit, knockLimiterInit, messageLimiterInit, type BreakerSnapshot, type BreakerTrip } from './breaker.ts'
import type { E2ee } from './e2ee.ts'
import { DEFAULT_GRANT_SCOPES, DEFAULT_MAX_GRANT_DURATION_S, defaultPolicy, deniedBy, evaluateKnock, parseKnockIntent, PolicyWatcher, type KnockDecision, type KnockIntent, type Policy } from './policy.ts'
import type { Connection, Message } from './types.ts'
import { commandAllowed, parseSlashCommand } from './untrusted.ts'
import { DeferralFull, HeldBack, deferredKey } from './deferred.ts'
export { DeferralFull } from './deferred.ts'
import type { SentLog } from './sent.ts'


export const KNOCK_TYPE = 'agentmesh.knock'
export const KNOCK_ANSWER_TYPE = 'agentmesh.knock.answer'
export const GRANT_REVOKE_TYPE = 'agentmesh.grant.revoke'
/** Held knocks kept for the owner at most (the oldest go first). */
export const MAX_HELD_KNOCKS = 1000
/** How long a peer's registry facts (tier, organisation, reputation) are reused. */
const FACTS_TTL_MS = 5 * 60_000
/** Peers whose registry facts are kept at most (the least recently used go first). */
const MAX_FACTS = 10_000
/** How long a passed first-contact check is reused (a revocation received ends it at once). */
const CONTACT_OK_MS = 60_000
/** Refusal notices to one peer, for one code, at most once in this interval. */
const REFUSAL_NOTICE_MS = 10_000

const idRe = new RegExp(ID_PATTERN)
const K = { issued: 'grant-in', received: 'grant-out', held: 'knock-in', blocked: 'blocked', sent: 'knock-out', audit: 'audit', revoked: 'grant-revoked', trips: 'breaker', outgoing: 'loop-out' } as const
/** Entries kept in the agent's safety log (the oldest go first). */
export const MAX_SAFETY_LOG = 10_000

/** One entry of the agent's own safety log: metadata only, never message content. */
export interface SafetyEvent {
  at: number
  event: 'knock_accepted' | 'knock_rejected' | 'knock_silent' | 'knock_held' | 'knock_answered' | 'grant_revoked' | 'grant_received' | 'grant_restored' | 'breaker_open' | 'peer_blocked' | 'peer_unblocked'
  peer: string
  /** the rule or reason, scopes, counts */
  detail: string
}

/** A knock held for the owner's decision. */
export interface HeldKnock {
  id: string
  from: string
  tier: TrustTier
  organisation: string | null
  reputation: number | null
  intent: KnockIntent
  /** what the policy said, and what accepting would grant */
  decision: KnockDecision
  receivedAt: number
}

/** Registry facts about a peer, as the policy sees them. */
interface Facts {
  tier: TrustTier
  organisation: string | null
  handle: string | null
  reputation: number | null
  /** what the peer published about first contact: 'knock' (a grant is needed), 'open', or unknown */
  contact: 'knock' | 'open' | null
  at: number
}

/** Where a delivered message came from, for the application. */
export interface MessageProvenance {
  tier: TrustTier
  organisation: string | null
  /** the sender's chat handle (§17.1) when it has one, as the relay said */
  handle: string | null
  /** the grant it arrived under (absent when the peer may write because this agent knocked on it: `relation: 'contacted'`) */
  grant?: { id: string, scopes: string[], expiresAt: number }
  /** why the peer may write: this agent granted it, this agent holds a grant from the peer (it made the contact), or the policy is open */
  relation: 'granted' | 'contacted' | 'open'
}

/**
 * What a receiver tells a sender about one of its direct messages that was not handed to the
 * application as it arrived (docs/policy.md "What the sender is told"): refused (with the code, and
 * what to do), or held back by a limit until a time. Sent end-to-end encrypted as the inner type
 * `DELIVERY_NOTICE_TYPE`; never for a peer the policy refuses silently.
 */
export interface DeliveryNotice {
  /** the envelope id of the sender's message */
  id: string
  status: 'refused' | 'held'
  code: ErrorCode
  /** one sentence for the sender (no message content) */
  reason: string
  /** held: when it is processed at the latest, ms since the epoch */
  until?: number
}

export const DELIVERY_NOTICE_TYPE = 'agentmesh.delivery'

/** A peer the owner (or the breaker, with `auto_block_after`) blocked: its messages are refused. */
export interface BlockedPeer {
  peer: string
  at: number
  /** why, in the owner's words or the breaker's */
  reason: string
}


/** A content hash for the loop guard: the same content coming back is a bounce (never the content itself). */
function contentHash (type: string, payload: Record<string, unknown>): string {
  let text: string
  try { text = JSON.stringify(payload) } catch { text = '' }
  return createHash('sha256').update(type).update('\0').update(text).digest('base64url').slice(0, 22)
}
function checkPeer (peer: unknown): void {
  if (typeof peer !== 'string' || !isAmid(peer)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${String(peer).slice(0, 80)}" is not an AMID`)
}
/** How often a blocked peer is told, at most: once per this interval. */
const BLOCK_NOTICE_MS = 3600_000

export interface GateConfig {
  identity: Identity
  e2ee: E2ee
  /** policy file to watch (home/policy.json), or a fixed policy, or none: open */
  policyPath?: string
  policy?: Policy
  onWarning: (w: AgentMeshError) => void
  onKnock: (k: HeldKnock) => void
  /** sends an (encrypted) message to a peer: answers and revocations */
  send: (to: string, payload: Record<string, unknown>, type: string) => Promise<unknown>
  /** tells a peer what became of its message (refused, held back); set by connect() */
  notify?: (peer: string, notice: DeliveryNotice) => void
  /** this agent's sent log, where notices about its own messages are recorded */
  sentLog?: SentLog
  /** the policy file changed (connect() publishes the contact mode again) */
  onPolicyChange?: () => void
}

export class Gate {
  private watcher: PolicyWatcher | undefined
  private fixed: Policy | undefined
  private enforcing: boolean
  private knockLimiter: RateLimiter
  private messageLimiter: RateLimiter
  private breaker: CircuitBreaker
  private limitsOf: Policy
  private readonly facts = new LruMap<string, Facts>(MAX_FACTS)
  /** peers a first-contact check passed for, until when (beforeFirstContact) */
  private readonly contactOk = new LruMap<string, number>(MAX_FACTS)
  /** messages a limit held back, waiting sealed until due (deferred.ts) */
  private readonly heldBack: HeldBack
  /** `${peer}\n${code}` → until when the peer was told (one notice per limit window) */
  private readonly notified = new LruMap<string, number>(MAX_FACTS)
  /** peer → the newest outgoing message (of any process of this agent) the breaker has counted */
  private readonly outCounted = new LruMap<string, number>(MAX_FACTS)

  private constructor (private readonly cfg: GateConfig, watcher: PolicyWatcher | undefined, enforcing: boolean) {
    this.watcher = watcher
    this.fixed = cfg.policy
    this.enforcing = enforcing
    this.limitsOf = this.policy
    this.knockLimiter = new RateLimiter(knockLimiterInit(this.limitsOf))
    this.messageLimiter = new RateLimiter(messageLimiterInit(this.limitsOf))
    this.breaker = this.makeBreaker(this.limitsOf)
    this.heldBack = new HeldBack(cfg.e2ee)
  }

  /** Opens the gate: loads (and watches) the policy file; an invalid file is AM_ERR_INVALID_POLICY. */
  static async open (cfg: GateConfig): Promise<Gate> {
    if (cfg.policy !== undefined) return new Gate(cfg, undefined, true)
    if (cfg.policyPath === undefined) return new Gate(cfg, undefined, false)
    const path = cfg.policyPath
    let gate: Gate | undefined
    const watcher = await PolicyWatcher.open(path, {
      onChange: () => {
        if (gate === undefined) return
        gate.enforcing = true
        cfg.onPolicyChange?.()
      },
      onError: (err) => { cfg.onWarning(err) },
    })
    gate = new Gate(cfg, watcher, existsSync(path))
    return gate
  }

  /** The policy in force (an open agent's: accept knocks, default scopes). */
  get policy (): Policy {
    const p = this.fixed ?? this.watcher?.policy
    return p !== undefined && this.enforcing ? p : { ...defaultPolicy(), default_action: 'accept' }
  }

  /** True when messages need a grant (a policy is in force). */
  get enforced (): boolean { return this.enforcing }

  close (): void { this.watcher?.close() }

  private makeBreaker (p: Policy): CircuitBreaker {
    const b = new CircuitBreaker({ ...breakerInit(p), onTrip: (t) => { this.tripped(t) } })
    // trips (and an open breaker) outlive a restart and a policy reload, as blocks do
    const now = Date.now()
    for (const r of this.cfg.e2ee.records<BreakerSnapshot>(K.trips)) b.restore({ local: this.cfg.identity.amid, peer: r.key }, r.value, now)
    return b
  }

  /** Rebuilds the limiters when the policy's numbers changed (a reload). */
  private limits (): void {
    const p = this.policy
    const a = this.limitsOf
    if (a.rate_limits.knocks_per_hour !== p.rate_limits.knocks_per_hour) this.knockLimiter = new RateLimiter(knockLimiterInit(p))
    if (a.rate_limits.messages_per_minute !== p.rate_limits.messages_per_minute) this.messageLimiter = new RateLimiter(messageLimiterInit(p))
    if (JSON.stringify(a.breaker) !== JSON.stringify(p.breaker)) this.breaker = this.makeBreaker(p)
    this.limitsOf = p
  }

  /** Appends to the agent's safety log (sealed in its state, bounded). */
  private log (event: SafetyEvent['event'], peer: string, detail: string, at = Date.now()): void {
    this.cfg.e2ee.atomically(() => {
      const seq = Number(this.cfg.e2ee.record<number>('meta-audit', 'next') ?? 0)
      this.cfg.e2ee.saveRecord('meta-audit', 'next', seq + 1, at)
      this.cfg.e2ee.saveRecord(K.audit, String(seq).padStart(12, '0'), { at, event, peer, detail } satisfies SafetyEvent, at)
      const n = this.cfg.e2ee.countRecords(K.audit)
      if (n > MAX_SAFETY_LOG) for (const r of this.cfg.e2ee.records(K.audit).slice(0, n - MAX_SAFETY_LOG)) this.cfg.e2ee.dropRecord(K.audit, r.key)
    })
  }

  /** The safety log, oldest first: knocks decided, grants, breaker trips, blocks. */
  safetyLog (): SafetyEvent[] { return this.cfg.e2ee.records<SafetyEvent>(K.audit).map(r => r.value) }

  private tripped (t: BreakerTrip): void {
    const peer = t.pair.peer
    const now = Date.now()
    this.cfg.e2ee.saveRecord(K.trips, peer, this.breaker.snapshot(t.pair), now)
    this.log('breaker_open', peer, `${t.count} ${t.reason} within the window (a conversation loop); open until ${new Date(t.until).toISOString()} (trip ${t.trips})`, now)
    if (t.autoBlock) {
      this.block(peer, { reason: `circuit breaker: tripped ${t.trips} times within 24 h (auto_block_after)` }, now)
      this.cfg.onWarning(new AgentMeshError(ErrorCode.CircuitOpen, `${peer} tripped the circuit breaker ${t.trips} times within 24 h (auto_block_after): it is now blocked; \`agentmesh unblock ${peer}\` lifts it`))
    }
  }

  private blocked (): Set<string> {
    return new Set(this.cfg.e2ee.records<{ at: number }>(K.blocked).map(r => r.key))
  }

  /**
   * An outgoing message to `peer`: refused (AM_ERR_CIRCUIT_OPEN, nothing sent) while the breaker
   * with it is open. Outgoing messages count as turns and bounces too: a loop trips it from either
   * side. `content` (type and payload) is hashed, never kept.
   */
  beforeSend (peer: string, now = Date.now(), content?: { type: string, payload: Record<string, unknown> }): void {
    if (!this.enforcing) return
    this.limits()
    const r = this.breaker.record({ local: this.cfg.identity.amid, peer }, now, { direction: 'out', ...(content === undefined ? {} : { hash: contentHash(content.type, content.payload) }) })
    if (r.allowed) {
      this.noteOutgoing(peer, now, content === undefined ? undefined : contentHash(content.type, content.payload))
    } else {
      const until = new Date(now + r.retryAfterMs).toISOString()
      if (r.trip !== undefined) this.cfg.onWarning(new AgentMeshError(ErrorCode.CircuitOpen, `circuit breaker with ${peer} opened by a message this agent was sending: ${r.trip.count} ${r.trip.reason} within the window (a conversation loop); sends to it are refused until ${until}`))
      throw new AgentMeshError(ErrorCode.CircuitOpen, `not sent to ${peer}: the circuit breaker with it is open until ${until} (${Math.ceil(r.retryAfterMs / 1000)} s more): the two agents answered each other too often in a short time (a loop); nothing was sent, try again then`)
    }
  }

  /**
   * Outgoing messages are kept (time and content hash, the newest 16 per peer) in the sealed
   * state, so that the process that receives (`agentmesh listen`) counts the turns and bounces of
   * sends made by other processes of this agent (`agentmesh send`).
   */
  private noteOutgoing (peer: string, now: number, hash: string | undefined): void {
    this.outCounted.set(peer, Math.max(now, this.outCounted.get(peer) ?? 0))
    this.cfg.e2ee.atomically(() => {
      const sent = this.cfg.e2ee.record<Array<{ at: number, hash?: string }>>(K.outgoing, peer) ?? []
      sent.push(hash === undefined ? { at: now } : { at: now, hash })
      this.cfg.e2ee.saveRecord(K.outgoing, peer, sent.slice(-BOUNCE_MEMORY), now)
    })
  }

  /** Counts the outgoing messages to `peer` other processes made since this one last looked. */
  private countOutgoing (peer: string): void {
    const sent = this.cfg.e2ee.record<Array<{ at: number, hash?: string }>>(K.outgoing, peer)
    if (sent === undefined) return
    const counted = this.outCounted.get(peer) ?? -1
    const fresh = sent.filter(o => o.at > counted)
    if (fresh.length === 0) return
    this.outCounted.set(peer, Math.max(...fresh.map(o => o.at)))
    const pair = { local: this.cfg.identity.amid, peer }
    for (const o of fresh) {
      const r = this.breaker.record(pair, o.at, { direction: 'out', ...(o.hash === undefined ? {} : { hash: o.hash }) })
      if (!r.allowed && r.trip !== undefined) {
        this.cfg.onWarning(new AgentMeshError(ErrorCode.CircuitOpen, `circuit breaker with ${peer} opened by a message this agent sent: ${r.trip.count} ${r.trip.reason} within the window (a conversation loop); its messages are held back and sends to it refused until ${new Date(r.trip.until).toISOString()}`))
      }
    }
  }

  // ------------------------------------------------------------------ blocks (the owner's)

  /** Blocks `peer`: its messages are refused (it is told) and its knocks get `deny_action`, until `unblock`. */
  block (peer: string, opts: { reason?: string } = {}, now = Date.now()): BlockedPeer & { already: boolean } {
    checkPeer(peer)
    if (opts.reason !== undefined && typeof opts.reason !== 'string') throw new AgentMeshError(ErrorCode.InvalidArgument, 'block: the reason must be a string')
    const had = this.cfg.e2ee.record<{ at: number, reason?: string }>(K.blocked, peer)
    if (had !== undefined) return { peer, at: had.at, reason: had.reason ?? '', already: true }
    const reason = (opts.reason ?? 'blocked by the owner').slice(0, 280)
    this.cfg.e2ee.saveRecord(K.blocked, peer, { at: now, reason }, now)
    this.log('peer_blocked', peer, reason, now)
    return { peer, at: now, reason, already: false }
  }

  /** Lifts a block (and forgets the breaker's trips with the peer); false when it was not blocked. */
  unblock (peer: string, now = Date.now()): boolean {
    checkPeer(peer)
    const pair = { local: this.cfg.identity.amid, peer }
    this.breaker.reset(pair)
    this.cfg.e2ee.dropRecord(K.trips, peer)
    this.notified.delete(`${peer}\nblocked`)
    if (!this.cfg.e2ee.dropRecord(K.blocked, peer)) return false
    this.log('peer_unblocked', peer, 'unblocked by the owner', now)
    return true
  }

  /** Blocked peers, oldest block first. */
  blocks (): BlockedPeer[] {
    return this.cfg.e2ee.records<{ at: number, reason?: string }>(K.blocked).map(r => ({ peer: r.key, at: r.value.at, reason: r.value.reason ?? '' }))
  }

  // ------------------------------------------------------------------ held back (deferred) messages

  /** Messages held back, per peer (for the owner and tests). */
  deferredCounts (): Map<string, number> { return this.heldBack.counts() }

  /** Held-back messages whose time has come, oldest first, to be judged again (deferred.ts). */
  releasable (now = Date.now()): Message[] { return this.heldBack.releasable(now) }

  /** A released message was committed: its record goes unless the limits held it back again. */
  released (env: { from: string, id: string }): void { this.heldBack.released(env) }

  /** Tells the peer once per limit window (never its content). */
  private tell (peer: string, notice: DeliveryNotice, now: number, until: number): void {
    const k = `${peer}\n${notice.status}\n${notice.code}`
    if ((this.notified.get(k) ?? 0) > now) return
    this.notified.set(k, until)
    this.cfg.notify?.(peer, notice)
  }

  /**
   * The per-peer limits, after the grant check: true when `m` is held back (set aside in the
   * sealed state, to be processed when due), false when it may go on. Never drops.
   */
  private holdBack (m: Message, now: number): boolean {
    const key = deferredKey(m.from, m.id)
    const list = this.heldBack.of(m.from)
    const entry = list?.find(e => e.key === key)
    // already set aside (a redelivery after a crash): it comes back when due
    if (entry !== undefined && entry.state !== 'releasing') return true
    const pending = list?.filter(e => e !== entry && e.n < (entry?.n ?? Infinity) && e.state !== 'passed') ?? []
    if (pending.length > 0) {
      // older messages of this peer are still held back: this one waits behind them, in order
      const due = Math.max(now, ...pending.map(e => e.due))
      const code = pending.at(-1)!.code
      if (entry !== undefined) { entry.state = 'waiting'; entry.due = due; return true }
      this.defer(m, due, code, `behind ${pending.length} earlier message(s) of this peer held back`, now)
      return true
    }
    const limit = this.messageLimiter.take(m.from, now)
    if (!limit.ok) {
      const due = now + limit.retryAfterMs
      if (entry !== undefined) { entry.state = 'waiting'; entry.due = due; entry.code = ErrorCode.RateLimited; return true }
      this.defer(m, due, ErrorCode.RateLimited, `over ${this.policy.rate_limits.messages_per_minute} messages per minute`, now)
      return true
    }
    this.countOutgoing(m.from)
    const b = this.breaker.record({ local: this.cfg.identity.amid, peer: m.from }, now, { direction: 'in', hash: contentHash(m.type, m.payload) })
    if (!b.allowed) {
      const due = now + b.retryAfterMs
      if (b.trip !== undefined) {
        this.cfg.onWarning(new AgentMeshError(ErrorCode.CircuitOpen, `circuit breaker with ${m.from} opened by message ${m.id}: ${b.trip.count} ${b.trip.reason} within the window (a conversation loop); its messages are held back and sends to it refused until ${new Date(b.trip.until).toISOString()}`))
      }
      if (entry !== undefined) { entry.state = 'waiting'; entry.due = due; entry.code = ErrorCode.CircuitOpen; return true }
      this.defer(m, due, ErrorCode.CircuitOpen, 'the circuit breaker with this peer is open (a conversation loop)', now)
      return true
    }
    if (entry !== undefined) entry.state = 'passed'
    return false
  }

  /** Sets a message aside until `due` (sealed, with its plaintext), warns naming it, and tells the sender once per window. */
  private defer (m: Message, due: number, code: ErrorCode, why: string, now: number): void {
    const p = this.policy.rate_limits
    const list = this.heldBack.of(m.from) ?? []
    if (list.length >= p.deferred_per_peer || this.heldBack.count >= p.deferred_total) {
      const full = new DeferralFull(`message ${m.id} from ${m.from} waits unacknowledged at the relay: ${list.length} of its messages (${this.heldBack.count} in all) are held back already, the most this agent keeps (rate_limits.deferred_per_peer ${p.deferred_per_peer}, deferred_total ${p.deferred_total}); nothing is lost`)
      const k = `${m.from}\nfull`
      if ((this.notified.get(k) ?? 0) <= now) {
        this.notified.set(k, now + 60_000)
        this.cfg.onWarning(full)
      }
      throw full
    }
    const waiting = this.heldBack.add(m, due, code, now)
    const until = new Date(due).toISOString()
    this.cfg.onWarning(new AgentMeshError(code, `held back message ${m.id} from ${m.from}: ${why}; it is processed at ${until} at the latest, in order (${waiting.length} of its messages waiting)`))
    this.tell(m.from, {
      id: m.envelope?.id ?? m.id,
      status: 'held',
      code,
      reason: code === ErrorCode.CircuitOpen
        ? 'The two agents answered each other too often in a short time (a loop): your messages are held back, not lost, until the circuit breaker closes.'
        : 'Your messages arrive faster than this agent takes them: they are held back, not lost, and processed in order as the rate limit allows.',
      until: due,
    }, now, due)
  }

  // ------------------------------------------------------------------ registry facts

  private async factsOf (peer: string, now = Date.now()): Promise<Facts> {
    const cached = this.facts.get(peer)
    if (cached !== undefined && now - cached.at < FACTS_TTL_MS) return cached
    const [profile, rep] = await Promise.all([
      this.cfg.e2ee.lookup('getAgent', `/api/v1/agents/${peer}`).catch(() => undefined),
      this.cfg.e2ee.lookup('getReputation', `/api/v1/agents/${peer}/reputation`).catch(() => undefined),
    ])
    const tier = profile?.tier === 'verified' || profile?.tier === 'organisation' ? profile.tier : 'anonymous'
    const f: Facts = {
      tier,
      organisation: typeof profile?.organisation === 'string' ? profile.organisation : null,
      handle: typeof profile?.handle === 'string' ? profile.handle : null,
      reputation: typeof rep?.score === 'number' ? rep.score : null,
      contact: profile?.contact === 'knock' || profile?.contact === 'open' ? profile.contact : null,
      at: now,
    }
    this.facts.set(peer, f)
    return f
  }

  // ------------------------------------------------------------------ inbound

  /**
   * Judges a message before the application sees it: knocks, answers and revocations are handled
   * here (undefined); other messages pass with their provenance when the peer may write and its
   * limits allow, and are held back (undefined: set aside, released later by `releasable`)
   * otherwise. Throws `DeferralFull` when one should be held back but the backlog is full.
   */
  async inbound (m: Message, now = Date.now()): Promise<Message | undefined> {
    this.limits()
    switch (m.type) {
      case KNOCK_TYPE: await this.onKnock(m, now); return undefined
      case KNOCK_ANSWER_TYPE: this.onAnswer(m, now); return undefined
      case GRANT_REVOKE_TYPE: this.onRevoke(m); return undefined
      case DELIVERY_NOTICE_TYPE: this.onNotice(m); return undefined
    }
    if (this.cfg.e2ee.record(K.blocked, m.from) !== undefined) {
      // the owner's block holds with or without a policy file
      this.cfg.onWarning(new AgentMeshError(ErrorCode.NoGrant, `dropped message ${m.id} from ${m.from}: the peer is blocked (\`agentmesh unblock ${m.from}\` lifts it)`))
      if (this.policy.deny_action === 'reject') this.tell(m.from, { id: m.envelope?.id ?? m.id, status: 'refused', code: ErrorCode.NoGrant, reason: 'This agent blocked you: your messages are not processed.' }, now, now + BLOCK_NOTICE_MS)
      return undefined
    }
    if (!this.enforcing) return { ...m, untrusted: true } // an open agent: no grant, limits or breaker
    const facts = await this.factsOf(m.from, now)
    const denied = deniedBy(this.policy, { from: m.from, tier: facts.tier, organisation: facts.organisation, handle: facts.handle })
    if (denied !== undefined) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.NoGrant, `dropped message ${m.id} from ${m.from}: the policy denies ${denied}`))
      if (this.policy.deny_action === 'reject') this.refuseNotice(m, ErrorCode.NoGrant, `the policy of ${this.cfg.identity.amid} refuses messages from this agent`, now)
      return undefined
    }
    const grant = this.validIssued(m.from, now)
    // a peer this agent knocked on (and holds a grant from) may answer without knocking back
    const contacted = grant === undefined && this.validReceived(m.from, now)
    // an open policy (`"open": true`) takes messages without a grant; deny list and limits still apply
    if (grant === undefined && !contacted && !this.policy.open) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.NoGrant, `dropped message ${m.id} from ${m.from}: it holds no valid grant from this agent (it must knock first)`))
      this.refuseNotice(m, ErrorCode.NoGrant, `${this.cfg.identity.amid} takes messages only from agents it granted; knock first: agentmesh knock ${this.cfg.identity.amid} "<why you write>"`, now)
      return undefined
    }
    if (this.holdBack(m, now)) return undefined
    const provenance: MessageProvenance = {
      tier: facts.tier,
      organisation: facts.organisation,
      handle: facts.handle,
      ...(grant === undefined ? {} : { grant: { id: grant.id, scopes: grant.scopes, expiresAt: grant.expires_at } }),
      relation: grant !== undefined ? 'granted' : contacted ? 'contacted' : 'open',
    }
    // only the peer's own end-to-end encrypted words carry its grant: an unencrypted or
    // relay-attested message may have been written by the relay (docs/security.md)
    const vouched = m.encrypted && m.via === undefined
    if (!vouched) delete provenance.grant
    const out: Message = { ...m, untrusted: true, provenance }
    if (m.text !== undefined) {
      const cmd = parseSlashCommand(m.text)
      // a peer's slash command is only for running when its grant's scopes say so
      if (cmd !== null) out.command = { ...cmd, allowed: vouched && grant !== undefined && commandAllowed(cmd.command, grant.scopes) }
    }
    return out
  }

  /**
   * A direct delivery's first look (docs/protocol.md §29.3), before it is kept and acknowledged:
   * the refusal when this agent would refuse every message of `peer` whatever it says (blocked, or
   * no grant either way under a knock-first policy), so the sender's send fails with the code;
   * undefined when its messages may pass, to be judged in full in turn like relayed ones.
   */
  refusesDirect (peer: string, now = Date.now()): { code: ErrorCode, reason: string, why: string } | undefined {
    this.limits()
    if (this.cfg.e2ee.record(K.blocked, peer) !== undefined) {
      // a silent block (deny_action "silent") stays silent: taken, and dropped in turn as a relayed one is
      if (this.policy.deny_action !== 'reject') return undefined
      return { code: ErrorCode.NoGrant, reason: 'This agent blocked you: your messages are not processed.', why: 'the peer is blocked' }
    }
    if (!this.enforcing || this.policy.open) return undefined
    if (this.validIssued(peer, now) !== undefined || this.validReceived(peer, now)) return undefined
    return {
      code: ErrorCode.NoGrant,
      reason: `${this.cfg.identity.amid} takes messages only from agents it granted; knock first: agentmesh knock ${this.cfg.identity.amid} "<why you write>"`,
      why: 'it holds no valid grant from this agent (it must knock first)',
    }
  }

  private validReceived (peer: string, now: number): boolean {
    const g = this.cfg.e2ee.record<Grant>(K.received, peer)
    return g !== undefined && g.expires_at > now
  }

  private validIssued (peer: string, now: number): Grant | undefined {
    const g = this.cfg.e2ee.record<Grant>(K.issued, peer)
    if (g === undefined) return undefined
    return g.expires_at > now ? g : undefined
  }

  private async onKnock (m: Message, now: number): Promise<void> {
    const id = m.payload.id
    let intent: KnockIntent
    try {
      if (typeof id !== 'string' || !idRe.test(id)) throw new AgentMeshError(ErrorCode.InvalidKnock, 'knock: id must be 8 to 128 characters of A-Z a-z 0-9 _ -')
      intent = parseKnockIntent(m.payload.intent)
    } catch (err) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.InvalidKnock, `dropped knock ${m.id} from ${m.from}: ${(err as Error).message}`))
      return
    }
    const facts = await this.factsOf(m.from, now)
    const decision = evaluateKnock(this.policy, { from: m.from, tier: facts.tier, organisation: facts.organisation, handle: facts.handle, reputation: facts.reputation, intent }, {
      blocked: this.blocked(),
      rateLimit: this.knockLimiter.take(m.from, now),
    })
    const what = `[${intent.category}] ${decision.rule}: ${decision.reason}`
    switch (decision.action) {
      case 'accept': this.log('knock_accepted', m.from, `${what}; scopes ${decision.scopes.join(',')}`, now); await this.grant(m.from, id, decision.scopes, decision.durationS, now); return
      case 'reject': this.log('knock_rejected', m.from, what, now); await this.refuse(m.from, id, decision.reason); return
      case 'silent': this.log('knock_silent', m.from, what, now); return
      case 'hold': {
        const held: HeldKnock = { id, from: m.from, tier: facts.tier, organisation: facts.organisation, reputation: facts.reputation, intent, decision, receivedAt: now }
        const all = this.cfg.e2ee.records<HeldKnock>(K.held)
        for (const r of all.slice(0, Math.max(0, all.length - MAX_HELD_KNOCKS + 1))) this.cfg.e2ee.dropRecord(K.held, r.key)
        this.cfg.e2ee.saveRecord(K.held, id, held, now)
        this.log('knock_held', m.from, what, now)
        this.cfg.onKnock(held)
      }
    }
  }

  private async grant (peer: string, knockId: string, scopes: readonly string[], durationS: number, now: number): Promise<Grant> {
    const g = signGrant(this.cfg.identity, { id: uuidv7(), grantee: peer, scopes, issuedAt: now, expiresAt: now + durationS * 1000, knockId })
    this.cfg.e2ee.saveRecord(K.issued, peer, g, now)
    await this.cfg.send(peer, { knock_id: knockId, decision: 'accept', grant: g }, KNOCK_ANSWER_TYPE)
    return g
  }

  private async refuse (peer: string, knockId: string, reason: string): Promise<void> {
    await this.cfg.send(peer, { knock_id: knockId, decision: 'reject', ...(reason === '' ? {} : { reason: reason.slice(0, 280) }) }, KNOCK_ANSWER_TYPE)
  }

  private onAnswer (m: Message, now: number): void {
    const p = m.payload
    const knockId = typeof p.knock_id === 'string' ? p.knock_id : '?'
    if (p.decision === 'reject') {
      this.cfg.e2ee.dropRecord(K.sent, `${m.from}\n${knockId}`)
      this.cfg.onWarning(new AgentMeshError(ErrorCode.KnockRejected, `${m.from} rejected knock ${knockId}${typeof p.reason === 'string' ? `: ${p.reason.slice(0, 280)}` : ''}`))
      return
    }
    try {
      const { grant, status } = verifyGrant(p.grant, now)
      if (grant.grantor !== m.from || grant.grantee !== this.cfg.identity.amid) throw new AgentMeshError(ErrorCode.InvalidKnock, `grant: it is from ${grant.grantor} to ${grant.grantee}`)
      if (status === 'expired') throw new AgentMeshError(ErrorCode.InvalidKnock, 'grant: already expired')
      this.cfg.e2ee.saveRecord(K.received, m.from, grant, now)
      this.cfg.e2ee.dropRecord(K.sent, `${m.from}\n${knockId}`)
      this.log('grant_received', m.from, `scopes ${grant.scopes.join(',')} until ${new Date(grant.expires_at).toISOString()}`, now)
    } catch (err) {
      this.cfg.onWarning(new AgentMeshError(ErrorCode.InvalidKnock, `ignored the answer of ${m.from} to knock ${knockId}: ${(err as Error).message}`))
    }
  }

  private onRevoke (m: Message): void {
    const held = this.cfg.e2ee.record<Grant>(K.received, m.from)
    if (held !== undefined && (m.payload.grant_id === undefined || m.payload.grant_id === held.id)) {
      this.cfg.e2ee.dropRecord(K.received, m.from)
      this.contactOk.delete(m.from)
      this.cfg.onWarning(new AgentMeshError(ErrorCode.NoGrant, `${m.from} revoked its grant ${held.id}: knock again to write to it`))
    }
  }

  /** Tells the sender of `m` it was refused (at most one notice per peer and code every 10 s: a burst of refusals is one). */
  private refuseNotice (m: Message, code: ErrorCode, reason: string, now: number): void {
    this.tell(m.from, { id: m.envelope?.id ?? m.id, status: 'refused', code, reason }, now, now + REFUSAL_NOTICE_MS)
  }

  /**
   * A receiver's notice about a message this agent sent it: recorded in the sent log (what
   * `agentmesh sent` shows) and warned. Only about messages this agent sent to that peer: a notice
   * naming anything else is ignored.
   */
  private onNotice (m: Message): void {
    const p = m.payload
    const log = this.cfg.sentLog
    if (log === undefined || typeof p.id !== 'string' || !idRe.test(p.id) || (p.status !== 'refused' && p.status !== 'held')) return
    const entry = log.get(p.id)
    if (entry === undefined || entry.to !== m.from) return
    const code = typeof p.code === 'string' && /^AM_ERR_[A-Z_]{1,48}$/.test(p.code) ? p.code as ErrorCode : ErrorCode.NoGrant
    const reason = typeof p.reason === 'string' ? stripUnsafeChars(p.reason).slice(0, 280) : ''
    const until = typeof p.until === 'number' && Number.isSafeInteger(p.until) ? p.until : undefined
    log.update(p.id, { status: p.status, code, reason, ...(until === undefined ? {} : { until }) })
    const what = p.status === 'refused' ? 'refused' : `held back${until === undefined ? '' : ` until ${new Date(until).toISOString()}`}`
    this.cfg.onWarning(new AgentMeshError(code, `${m.from} ${what} message ${entry.orig ?? entry.id}${reason === '' ? '' : `: ${reason}`}`))
  }

  /**
   * Before this agent's first message to a peer it has no grant relation with: when the peer
   * published that it takes messages only from agents it granted, the send fails with
   * AM_ERR_NO_GRANT and what to do, instead of being dropped on arrival. A peer whose profile cannot
   * be read (the relay is down: the message waits in the outbox) is not checked.
   */
  async beforeFirstContact (peer: string, now = Date.now()): Promise<void> {
    // the answer is kept a while per peer: two sealed reads per message would weigh on a stream
    const until = this.contactOk.get(peer)
    if (until !== undefined && now < until) return
    const received = this.cfg.e2ee.record<Grant>(K.received, peer)
    const issued = this.validIssued(peer, now)
    const grantUntil = Math.max(received !== undefined && received.expires_at > now ? received.expires_at : 0, issued?.expires_at ?? 0)
    if (grantUntil > now) {
      this.contactOk.set(peer, Math.min(grantUntil, now + CONTACT_OK_MS))
      return
    }
    const facts = await this.factsOf(peer, now)
    if (facts.contact === 'knock') {
      throw new AgentMeshError(ErrorCode.NoGrant, `${peer} takes messages only from agents it granted, and this agent holds no grant from it; knock first: agentmesh knock ${peer} "<why you write>"`)
    }
    this.contactOk.set(peer, Math.min(facts.at + FACTS_TTL_MS, now + CONTACT_OK_MS))
  }

  /** The grant this agent holds from `peer`, presented with the first messages of a new session. */
  presentable (peer: string, now = Date.now()): Grant | undefined {
    const g = this.cfg.e2ee.record<Grant>(K.received, peer)
    return g !== undefined && g.expires_at > now ? g : undefined
  }

  /**
   * A grant `peer` presented: one this agent issued to it, signed by this agent's key, valid, and
   * not revoked. Kept again when this agent has none for the peer (it lost its state).
   */
  restore (peer: string, presented: unknown, now = Date.now()): void {
    try {
      const { grant, status } = verifyGrant(presented, now)
      if (status !== 'valid' || grant.grantor !== this.cfg.identity.amid || grant.grantee !== peer) return
      if (this.cfg.e2ee.record(K.revoked, grant.id) !== undefined) return
      const held = this.cfg.e2ee.record<Grant>(K.issued, peer)
      if (held !== undefined && (held.id === grant.id || held.expires_at > now)) return
      this.cfg.e2ee.saveRecord(K.issued, peer, grant, now)
      this.log('grant_restored', peer, `grant ${grant.id} (${grant.scopes.join(',')}) presented by the peer, signed by this agent, until ${new Date(grant.expires_at).toISOString()}`, now)
    } catch {
      // not a grant of ours: nothing to restore, and the message is judged as any other
    }
  }

  /** 'knock' when messages need a grant (what the registry profile says), else 'open'. */
  get contact (): 'knock' | 'open' { return this.enforcing && !this.policy.open ? 'knock' : 'open' }

  // ------------------------------------------------------------------ the owner and the knocker

  /** Sends a knock; the answer arrives as a delivery (a grant is stored, a rejection warned). */
  async knock (peer: string, intentInput: unknown, now = Date.now()): Promise<{ id: string }> {
    // scopes and duration may be left out: the chat scope, for the longest a default policy grants
    const withDefaults = typeof intentInput === 'object' && intentInput !== null && !Array.isArray(intentInput)
      ? { scopes: [...DEFAULT_GRANT_SCOPES], duration_s: DEFAULT_MAX_GRANT_DURATION_S, ...intentInput }
      : intentInput
    const intent = parseKnockIntent(withDefaults)
    const id = uuidv7()
    await this.cfg.send(peer, { id, intent }, KNOCK_TYPE)
    this.cfg.e2ee.saveRecord(K.sent, `${peer}\n${id}`, { id, peer, intent, at: now }, now)
    return { id }
  }

  held (): HeldKnock[] { return this.cfg.e2ee.records<HeldKnock>(K.held).map(r => r.value) }

  /** The owner's answer to a held knock. */
  async answer (id: string, decision: 'accept' | 'reject', opts: { reason?: string, silent?: boolean, scopes?: string[], durationS?: number } = {}, now = Date.now()): Promise<Grant | undefined> {
    const k = this.cfg.e2ee.record<HeldKnock>(K.held, id)
    if (k === undefined) throw new AgentMeshError(ErrorCode.NotFound, `no held knock ${id}; \`agentmesh knocks\` lists them`)
    let g: Grant | undefined
    if (decision === 'accept') {
      g = await this.grant(k.from, k.id, opts.scopes ?? (k.decision.scopes.length > 0 ? k.decision.scopes : this.policy.grant.default_scopes), opts.durationS ?? (k.decision.durationS > 0 ? k.decision.durationS : this.policy.grant.max_duration_s), now)
    } else if (opts.silent !== true) {
      await this.refuse(k.from, k.id, opts.reason ?? '')
    }
    this.cfg.e2ee.dropRecord(K.held, id)
    this.log('knock_answered', k.from, g !== undefined ? `accepted by the owner; scopes ${g.scopes.join(',')} until ${new Date(g.expires_at).toISOString()}` : `rejected by the owner${opts.silent === true ? ' silently' : ''}${opts.reason === undefined ? '' : `: ${opts.reason.slice(0, 280)}`}`, now)
    return g
  }

  /** Grants this agent issued (peers that may write to it) and holds (peers it may write to). */
  grants (now = Date.now()): { issued: Array<Grant & { valid: boolean }>, received: Array<Grant & { valid: boolean }> } {
    const mark = (g: Grant): Grant & { valid: boolean } => ({ ...g, valid: g.expires_at > now })
    return {
      issued: this.cfg.e2ee.records<Grant>(K.issued).map(r => mark(r.value)),
      received: this.cfg.e2ee.records<Grant>(K.received).map(r => mark(r.value)),
    }
  }

  /** Revokes the grant `peer` holds from this agent: its messages are refused from now on; it is told. */
  async revoke (peer: string): Promise<boolean> {
    const g = this.cfg.e2ee.record<Grant>(K.issued, peer)
    if (g === undefined) return false
    this.cfg.e2ee.dropRecord(K.issued, peer)
    this.cfg.e2ee.saveRecord(K.revoked, g.id, { peer, at: Date.now(), expiresAt: g.expires_at })
    this.log('grant_revoked', peer, `grant ${g.id} (${g.scopes.join(',')})`)
    await this.cfg.send(peer, { grant_id: g.id }, GRANT_REVOKE_TYPE).catch(() => {})
    return true
  }
}

/** Knocks and grants over a connection, as a feature function: `knock(conn).held()`. */
export interface Knocks {
  /** Knocks on `peer` (first contact); the answer arrives as a delivery. */
  knock: Connection['knock']
  /** Knocks held for the owner's decision. */
  held: () => HeldKnock[]
  /** The owner accepts (a grant goes back) or rejects a held knock. */
  answer: Connection['answerKnock']
  /** Grants this agent issued and holds. */
  grants: Connection['grants']
  /** Revokes the grant a peer holds from this agent. */
  revoke: Connection['revokeGrant']
  /** The safety log, oldest first (metadata only). */
  safetyLog: () => SafetyEvent[]
  /** Blocks a peer: its messages are refused (it is told), its knocks get `deny_action`. */
  block: Connection['block']
  /** Lifts a block; false when the peer was not blocked. */
  unblock: Connection['unblock']
  /** Blocked peers. */
  blocks: Connection['blocks']
}

export function knock (conn: Connection): Knocks {
  return {
    knock: async (peer, intent) => await conn.knock(peer, intent),
    held: () => conn.knocks(),
    answer: async (id, decision, opts) => await conn.answerKnock(id, decision, opts),
    grants: () => conn.grants(),
    revoke: async (peer) => await conn.revokeGrant(peer),
    safetyLog: () => conn.safetyLog(),
    block: (peer, opts) => conn.block(peer, opts),
    unblock: (peer) => conn.unblock(peer),
    blocks: () => conn.blocks(),
  }
}
