/**
 * The per-agent KNOCK policy (docs/policy.md): who may make first contact, on which terms, and
 * what a stranger's knock is answered with.
 *
 * Everything here is pure except `loadPolicy` and `PolicyWatcher`, which read the file. The SDK
 * builds the knock from *verified* facts (the AMID from the signature, the tier and organisation
 * from the certificate chain, the reputation from the registry) and only the intent from what
 * the peer wrote; `parseKnockIntent` validates that part.
 */
import { channel } from 'node:diagnostics_channel'
import { watch, type FSWatcher } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { AgentMeshError, ErrorCode, AMID_PATTERN } from '@agentmesh/protocol'
import type { TrustTier } from '@agentmesh/crypto'

// ---------------------------------------------------------------------------------------------
// Constants (docs/policy.md)

/** The policy file format this module reads (`"version": 1`). */
export const POLICY_VERSION = 1
/** What a knock can be answered with. */
export const KNOCK_ACTIONS = ['accept', 'reject', 'silent', 'hold'] as const
export type KnockAction = typeof KNOCK_ACTIONS[number]
/** Certificate tiers, weakest first (docs/policy.md "Tiers"). */
export const TRUST_TIERS = ['anonymous', 'verified', 'organisation'] as const satisfies readonly TrustTier[]
/** The categories a knock's intent may declare (docs/policy.md "Intent categories"). */
export const INTENT_CATEGORIES = ['question', 'task', 'notification', 'negotiation', 'other'] as const
export type IntentCategory = typeof INTENT_CATEGORIES[number]

/** A scope a knock may request and a grant may carry. */
export const SCOPE_PATTERN = '^[a-z][a-z0-9:._-]{0,63}$'
/** A scope in the policy file: a scope, or a prefix wildcard such as `command:*`. */
export const POLICY_SCOPE_PATTERN = '^[a-z][a-z0-9:._-]{0,61}(:\\*)?$'
/** Longest knock summary, in UTF-16 code units. */
export const MAX_KNOCK_SUMMARY = 280
/** Most scopes one knock may request. */
export const MAX_KNOCK_SCOPES = 16
/** Shortest and longest grant a knock may ask for, in seconds (1 minute … 365 days). */
export const MIN_KNOCK_DURATION_S = 60
export const MAX_KNOCK_DURATION_S = 365 * 24 * 3600

/** Largest policy file read, in bytes: a bound on what a watcher reads on every change. */
export const MAX_POLICY_BYTES = 1024 * 1024
/** Most entries in one allow/deny/scope list of a policy file. */
export const MAX_POLICY_LIST = 10_000

export const DEFAULT_ACTION: KnockAction = 'hold'
export const DEFAULT_DENY_ACTION: 'reject' | 'silent' = 'silent'
export const DEFAULT_KNOCKS_PER_HOUR = 5
/** High enough that thousands of messages between granted peers pass without delay. */
export const DEFAULT_MESSAGES_PER_MINUTE = 6000
/** Largest `messages_per_minute` a policy may set. */
export const MAX_MESSAGES_PER_MINUTE = 1_000_000
/** Messages of one peer held back (deferred) by the receiver at most; beyond, they wait unacknowledged at the relay. */
export const DEFAULT_DEFERRED_PER_PEER = 5000
/** Messages held back (deferred) by the receiver at most, all peers together. */
export const DEFAULT_DEFERRED_TOTAL = 20_000
export const DEFAULT_GRANT_SCOPES: readonly string[] = ['chat']
export const DEFAULT_MAX_GRANT_DURATION_S = 30 * 24 * 3600
/** Turns (a reply within `turn_gap_s`) per window that open the breaker: two bots answering at once for minutes. */
export const DEFAULT_BREAKER_THRESHOLD = 200
/** Bounces (the same content coming back) per window that open the breaker. */
export const DEFAULT_BREAKER_BOUNCES = 20
/** A message the other way within this many seconds of the previous one is a turn. */
export const DEFAULT_BREAKER_TURN_GAP_S = 2
export const DEFAULT_BREAKER_WINDOW_S = 300
export const DEFAULT_BREAKER_COOLDOWN_S = 60
/** 0: the breaker never blocks a peer by itself; the owner blocks (`agentmesh block`). */
export const DEFAULT_AUTO_BLOCK_AFTER = 0
/** Debounce of file-change events in `PolicyWatcher`, in ms. */
export const DEFAULT_WATCH_DEBOUNCE_MS = 100
/** Interval of the `PolicyWatcher` poll that backs up `fs.watch`, in ms. */
export const DEFAULT_WATCH_POLL_MS = 2000
/**
 * The `node:diagnostics_channel` on which every `PolicyWatcher` publishes a `PolicyChangeEvent`
 * once a changed file is in force (after `onChange`). It lets an observer that does not own the
 * watcher (a test, a monitor around a `connect()` or a CLI `listen`) wait for the reload instead
 * of for the debounce or the poll; nothing is published while no one subscribes.
 */
export const POLICY_CHANGE_CHANNEL = 'agentmesh:policy:change'
const policyChange = channel(POLICY_CHANGE_CHANNEL)

// ---------------------------------------------------------------------------------------------
// Types

/** Who a list names; a knock matches a list when any one key matches. */
export interface PeerList {
  /** Exact AMIDs. */
  amids: string[]
  /** Registry handles, compared case-insensitively. */
  handles: string[]
  /** Organisation names from the certificate chain, compared case-insensitively. */
  organisations: string[]
  tiers: TrustTier[]
}

/**
 * A policy with every default filled in (the file's fields, snake_case as in the file). Each
 * call of `parsePolicy`/`defaultPolicy` returns a fresh object; peers blocked at run time are
 * better passed in `KnockContext.blocked` than written into `deny`.
 */
export interface Policy {
  version: 1
  /** true: messages need no grant (knocks are still answered; deny list and limits still apply) */
  open: boolean
  default_action: KnockAction
  allow: PeerList
  deny: PeerList
  deny_action: 'reject' | 'silent'
  /** `null`: no reputation requirement. */
  min_reputation: number | null
  allow_unrated: boolean
  intents: { allowed: IntentCategory[] }
  rate_limits: { knocks_per_hour: number, messages_per_minute: number, deferred_per_peer: number, deferred_total: number }
  grant: { default_scopes: string[], max_duration_s: number, allowed_scopes: string[] }
  breaker: { threshold: number, bounces: number, turn_gap_s: number, window_s: number, cooldown_s: number, auto_block_after: number }
}

/** What a knock asks for, as the peer wrote it (validated by `parseKnockIntent`). */
export interface KnockIntent {
  category: IntentCategory
  /** One line for the owner, 1–280 characters, no control characters. */
  summary: string
  /** Scopes asked for, at most 16, each matching `SCOPE_PATTERN`. */
  scopes: string[]
  /** How long the grant should last, 60 s … 365 days. */
  duration_s: number
}

/** A knock as the policy sees it: verified facts about the sender, and its declared intent. */
export interface Knock {
  /** The sender's AMID (from the envelope signature). */
  from: string
  /** From the sender's verified certificate chain. */
  tier: TrustTier
  /** The organisation the chain names, if any. */
  organisation?: string | null
  /** Registry reputation, 0–1; `null` when unrated. */
  reputation: number | null
  /** Registry handle, if any. */
  handle?: string | null
  intent: KnockIntent
}

/** Facts about the moment of the knock that the policy file does not hold. */
export interface KnockContext {
  /** Peers blocked at run time (the breaker's auto-block, the owner): treated like the deny list. */
  blocked?: ReadonlySet<string>
  /** The answer of the knock `RateLimiter` for this peer (`knocks_per_hour`), when taken. */
  rateLimit?: { ok: true } | { ok: false, retryAfterMs: number }
}

/** Which rule decided, in the order they are checked. */
export type KnockRule = 'deny' | 'blocked' | 'rate_limit' | 'intent' | 'allow' | 'reputation' | 'default'

export interface KnockDecision {
  action: KnockAction
  /** Which rule decided and why; shown to the owner, and sent to the peer only on "reject". */
  reason: string
  rule: KnockRule
  /** The grant's scopes on "accept"; on "hold", what accepting would grant; otherwise []. */
  scopes: string[]
  /** Requested scopes left out of the grant because `grant.allowed_scopes` does not cover them. */
  dropped: string[]
  /** The grant's lifetime in seconds (accept/hold), else 0. */
  durationS: number
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The policy file does not parse or does not match its schema. */
export class InvalidPolicyError extends AgentMeshError {
  /** The file (or other source) the policy came from. */
  readonly source: string
  /** The field path (`deny.handles[2]`), or '' for the whole document. */
  readonly field: string

  constructor (source: string, field: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidPolicy, message, options)
    this.name = 'InvalidPolicyError'
    this.source = source
    this.field = field
  }
}

/** A knock's intent is malformed. */
export class InvalidKnockError extends AgentMeshError {
  /** The field path (`intent.scopes[3]`). */
  readonly field: string

  constructor (field: string, message: string) {
    super(ErrorCode.InvalidKnock, message)
    this.name = 'InvalidKnockError'
    this.field = field
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas. `expected` is our own keyword: the phrase an error message uses for that field.

const oneOf = (values: readonly string[]): string => `one of ${values.map(v => `"${v}"`).join(', ')}`
const literals = <T extends readonly string[]>(values: T): TUnion<Array<TLiteral<T[number]>>> =>
  Type.Union(values.map(v => Type.Literal(v as T[number])), { expected: oneOf(values) })
const int = (min: number, max: number, what: string) =>
  Type.Integer({ minimum: min, maximum: max, expected: `${what}, an integer from ${min} to ${max}` })
const list = <T extends TSchema>(item: T, what: string) =>
  Type.Array(item, { maxItems: MAX_POLICY_LIST, expected: `a list of ${what} (at most ${MAX_POLICY_LIST})` })
const name = Type.String({ minLength: 1, maxLength: 256, expected: 'a non-empty string of at most 256 characters' })
const policyScope = Type.String({ pattern: POLICY_SCOPE_PATTERN, expected: `a scope matching ${POLICY_SCOPE_PATTERN}` })
const allowedScope = Type.Union([Type.Literal('*'), policyScope], {
  expected: `"*" or a scope matching ${POLICY_SCOPE_PATTERN}`,
})

const PeerListSchema = Type.Object({
  amids: Type.Optional(list(Type.String({ pattern: AMID_PATTERN, expected: 'an AMID ("am" + base58)' }), 'AMIDs')),
  handles: Type.Optional(list(name, 'handles')),
  organisations: Type.Optional(list(name, 'organisation names')),
  tiers: Type.Optional(list(literals(TRUST_TIERS), 'tiers')),
}, { additionalProperties: false })

export const PolicyFileSchema = Type.Object({
  version: Type.Literal(POLICY_VERSION, { expected: `${POLICY_VERSION} (the only version of this format)` }),
  default_action: Type.Optional(literals(KNOCK_ACTIONS)),
  allow: Type.Optional(PeerListSchema),
  deny: Type.Optional(PeerListSchema),
  deny_action: Type.Optional(literals(['reject', 'silent'] as const)),
  min_reputation: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], {
    expected: 'a number from 0 to 1, or null',
  })),
  allow_unrated: Type.Optional(Type.Boolean({ expected: 'true or false' })),
  intents: Type.Optional(Type.Object({
    allowed: Type.Optional(Type.Array(literals(INTENT_CATEGORIES), { uniqueItems: true, expected: 'a list of distinct intent categories' })),
  }, { additionalProperties: false })),
  rate_limits: Type.Optional(Type.Object({
    knocks_per_hour: Type.Optional(int(1, 3600, 'knocks per hour per peer')),
    messages_per_minute: Type.Optional(int(1, MAX_MESSAGES_PER_MINUTE, 'messages per minute per peer')),
    deferred_per_peer: Type.Optional(int(1, 1_000_000, 'messages held back per peer')),
    deferred_total: Type.Optional(int(1, 1_000_000, 'messages held back in all')),
  }, { additionalProperties: false })),
  grant: Type.Optional(Type.Object({
    default_scopes: Type.Optional(Type.Array(policyScope, { maxItems: 64, uniqueItems: true, expected: 'a list of at most 64 distinct scopes' })),
    max_duration_s: Type.Optional(int(MIN_KNOCK_DURATION_S, MAX_KNOCK_DURATION_S, 'seconds')),
    allowed_scopes: Type.Optional(Type.Array(allowedScope, { maxItems: MAX_POLICY_LIST, uniqueItems: true, expected: 'a list of distinct scopes' })),
  }, { additionalProperties: false })),
  breaker: Type.Optional(Type.Object({
    threshold: Type.Optional(int(1, 1_000_000, 'turns per window')),
    bounces: Type.Optional(int(1, 1_000_000, 'bounces per window')),
    turn_gap_s: Type.Optional(int(1, 3600, 'seconds')),
    window_s: Type.Optional(int(1, 86_400, 'seconds')),
    cooldown_s: Type.Optional(int(1, 7 * 86_400, 'seconds')),
    auto_block_after: Type.Optional(int(0, 1000, 'trips within 24 h (0 = never)')),
  }, { additionalProperties: false })),
  open: Type.Optional(Type.Boolean({ expected: 'true or false' })),
}, { additionalProperties: false })
export type PolicyFile = Static<typeof PolicyFileSchema>

/** No C0/C1 control characters and no bidirectional overrides: the owner reads summaries in a terminal. */
const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]*$'

export const KnockIntentSchema = Type.Object({
  category: literals(INTENT_CATEGORIES),
  summary: Type.String({
    minLength: 1,
    maxLength: MAX_KNOCK_SUMMARY,
    pattern: NO_CONTROL,
    expected: `a string of 1–${MAX_KNOCK_SUMMARY} characters without control characters`,
  }),
  scopes: Type.Array(Type.String({ pattern: SCOPE_PATTERN, expected: `a scope matching ${SCOPE_PATTERN}` }), {
    maxItems: MAX_KNOCK_SCOPES,
    uniqueItems: true,
    expected: `a list of at most ${MAX_KNOCK_SCOPES} distinct scopes`,
  }),
  duration_s: int(MIN_KNOCK_DURATION_S, MAX_KNOCK_DURATION_S, 'seconds (60 s … 365 days)'),
})

const policyCheck = TypeCompiler.Compile(PolicyFileSchema)
const intentCheck = TypeCompiler.Compile(KnockIntentSchema)

/** `/allow/handles/0` → `allow.handles[0]`. */
function fieldPath (pointer: string, root = ''): string {
  let out = root
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~')
    out += /^[0-9]+$/.test(key) ? `[${key}]` : (out === '' ? key : `.${key}`)
  }
  return out
}

function show (value: unknown): string {
  let s: string
  try { s = JSON.stringify(value) ?? String(value) } catch { s = String(value) }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

/** The first schema error as `[field, "field x: expected …, got …"]`. */
function describeError (check: TypeCheck<TSchema>, value: unknown, root: string): [string, string] {
  const e: ValueError | undefined = check.Errors(value).First()
  if (e === undefined) return [root, 'does not match the schema']
  const field = fieldPath(e.path, root)
  const label = field === '' ? 'the document' : `field ${field}`
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const known = Object.keys((e.schema as { properties?: object }).properties ?? {})
    return [field, `${label}: unknown field (expected one of ${known.join(', ')})`]
  }
  const expected = (e.schema as { expected?: string }).expected
  if (e.type === ValueErrorType.ObjectRequiredProperty || e.value === undefined) {
    return [field, `${label}: missing${expected === undefined ? '' : `, expected ${expected}`}`]
  }
  if (e.type === ValueErrorType.Object) {
    return [field, `${label}: expected an object${expected === undefined ? '' : ` (${expected})`}, got ${show(e.value)}`]
  }
  return [field, `${label}: expected ${expected ?? e.message.replace(/^Expected /, '').toLowerCase()}, got ${show(e.value)}`]
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** The policy in force when an agent has no policy file: hold every knock for the owner. */
export function defaultPolicy (): Policy {
  return resolvePolicy({ version: 1 }, '(default)')
}

function peerList (l: PolicyFile['allow']): PeerList {
  return {
    amids: [...(l?.amids ?? [])],
    handles: [...(l?.handles ?? [])],
    organisations: [...(l?.organisations ?? [])],
    tiers: [...(l?.tiers ?? [])],
  }
}

function resolvePolicy (f: PolicyFile, source: string): Policy {
  const defaultScopes = [...(f.grant?.default_scopes ?? DEFAULT_GRANT_SCOPES)]
  const allowedScopes = [...(f.grant?.allowed_scopes ?? defaultScopes)]
  defaultScopes.forEach((s, i) => {
    if (!scopeCovered(s, allowedScopes)) {
      throw new InvalidPolicyError(source, `grant.default_scopes[${i}]`,
        `invalid policy in ${source}: field grant.default_scopes[${i}]: "${s}" is not covered by grant.allowed_scopes; ` +
        'expected every default scope to be an allowed scope')
    }
  })
  return {
    version: 1,
    open: f.open ?? false,
    default_action: f.default_action ?? (f.open === true ? 'accept' : DEFAULT_ACTION),
    allow: peerList(f.allow),
    deny: peerList(f.deny),
    deny_action: f.deny_action ?? DEFAULT_DENY_ACTION,
    min_reputation: f.min_reputation ?? null,
    allow_unrated: f.allow_unrated ?? false,
    intents: { allowed: [...(f.intents?.allowed ?? INTENT_CATEGORIES)] },
    rate_limits: {
      knocks_per_hour: f.rate_limits?.knocks_per_hour ?? DEFAULT_KNOCKS_PER_HOUR,
      messages_per_minute: f.rate_limits?.messages_per_minute ?? DEFAULT_MESSAGES_PER_MINUTE,
      deferred_per_peer: f.rate_limits?.deferred_per_peer ?? DEFAULT_DEFERRED_PER_PEER,
      deferred_total: f.rate_limits?.deferred_total ?? DEFAULT_DEFERRED_TOTAL,
    },
    grant: {
      default_scopes: defaultScopes,
      max_duration_s: f.grant?.max_duration_s ?? DEFAULT_MAX_GRANT_DURATION_S,
      allowed_scopes: allowedScopes,
    },
    breaker: {
      threshold: f.breaker?.threshold ?? DEFAULT_BREAKER_THRESHOLD,
      bounces: f.breaker?.bounces ?? DEFAULT_BREAKER_BOUNCES,
      turn_gap_s: f.breaker?.turn_gap_s ?? DEFAULT_BREAKER_TURN_GAP_S,
      window_s: f.breaker?.window_s ?? DEFAULT_BREAKER_WINDOW_S,
      cooldown_s: f.breaker?.cooldown_s ?? DEFAULT_BREAKER_COOLDOWN_S,
      auto_block_after: f.breaker?.auto_block_after ?? DEFAULT_AUTO_BLOCK_AFTER,
    },
  }
}

/**
 * Parses a policy file's text. Throws `InvalidPolicyError` (AM_ERR_INVALID_POLICY) naming
 * `source`, the field and what was expected; unknown fields are errors (a typo must not
 * silently weaken a policy).
 */
export function parsePolicy (text: string, source: string): Policy {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new InvalidPolicyError(source, '', `invalid policy in ${source}: not valid JSON (${(err as Error).message})`, { cause: err })
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidPolicyError(source, '', `invalid policy in ${source}: expected a JSON object, got ${show(doc)}`)
  }
  if (!policyCheck.Check(doc)) {
    const [field, msg] = describeError(policyCheck, doc, '')
    throw new InvalidPolicyError(source, field, `invalid policy in ${source}: ${msg}`)
  }
  return resolvePolicy(doc, source)
}

/** Reads up to `max` bytes; more is an error rather than an unbounded read. */
async function readBounded (path: string, max: number): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(max + 1)
    let n = 0
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n)
      if (bytesRead === 0) break
      n += bytesRead
    }
    if (n > max) throw new RangeError(`larger than ${max} bytes`)
    return buf.subarray(0, n).toString('utf8')
  } finally {
    await fh.close()
  }
}

/** Reads and parses a policy file; any failure is an `InvalidPolicyError` naming the file. */
export async function loadPolicy (path: string): Promise<Policy> {
  let text: string
  try {
    text = await readBounded(path, MAX_POLICY_BYTES)
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new InvalidPolicyError(path, '', `invalid policy in ${path}: cannot read the file (${why})`, { cause: err })
  }
  return parsePolicy(text, path)
}

/**
 * Validates a knock's intent as the peer sent it. Throws `InvalidKnockError`
 * (AM_ERR_INVALID_KNOCK) naming the field. Unknown fields are ignored (a newer peer may send
 * more) and left out of the result.
 */
export function parseKnockIntent (obj: unknown): KnockIntent {
  if (!intentCheck.Check(obj)) {
    const [field, msg] = describeError(intentCheck, obj, 'intent')
    throw new InvalidKnockError(field, `invalid knock: ${msg}`)
  }
  const o = obj as KnockIntent
  return { category: o.category, summary: o.summary, scopes: [...o.scopes], duration_s: o.duration_s }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Case-insensitive key: NFKC folds look-alike forms (full-width letters), then lower case. */
function fold (s: string): string {
  return s.normalize('NFKC').trim().toLowerCase()
}

interface CompiledList { sig: string, amids: Set<string>, handles: Set<string>, organisations: Set<string>, tiers: Set<string> }
/** Indexed lists, rebuilt when a list changed (a caller may edit a policy object in place). */
const compiled = new WeakMap<PeerList, CompiledList>()

function compile (l: PeerList): CompiledList {
  // the signature costs one stringify; folding and indexing 10 000 names costs far more
  const sig = JSON.stringify([l.amids, l.handles, l.organisations, l.tiers])
  let c = compiled.get(l)
  if (c === undefined || c.sig !== sig) {
    c = {
      sig,
      amids: new Set(l.amids),
      handles: new Set(l.handles.map(fold)),
      organisations: new Set(l.organisations.map(fold)),
      tiers: new Set(l.tiers),
    }
    compiled.set(l, c)
  }
  return c
}

/** Which key of the list matches the knock, as words for the reason; undefined when none. */
function matchList (l: PeerList, k: Knock): string | undefined {
  const c = compile(l)
  if (c.amids.has(k.from)) return `amid ${k.from}`
  if (typeof k.handle === 'string' && c.handles.has(fold(k.handle))) return `handle ${JSON.stringify(k.handle)}`
  if (typeof k.organisation === 'string' && c.organisations.has(fold(k.organisation))) {
    return `organisation ${JSON.stringify(k.organisation)}`
  }
  if (c.tiers.has(k.tier)) return `tier ${k.tier}`
  return undefined
}

/**
 * Whether the policy's deny list names this peer (by AMID, handle, organisation or tier), as words
 * for the reason; undefined when it does not. Checked for every message, not only for knocks: a
 * peer denied after it was granted is refused from then on.
 */
export function deniedBy (policy: Policy, peer: Pick<Knock, 'from' | 'tier' | 'organisation' | 'handle'>): string | undefined {
  return matchList(policy.deny, { ...peer, reputation: null, intent: { category: 'other', summary: '-', scopes: [], duration_s: 60 } })
}

/** Whether `scope` is covered by an allowed-scopes list (exact, `prefix:*`, or `*`). */
export function scopeCovered (scope: string, allowed: readonly string[]): boolean {
  for (const a of allowed) {
    if (a === '*' || a === scope) return true
    if (a.endsWith(':*') && scope.startsWith(a.slice(0, -1))) return true
  }
  return false
}

function grantTerms (policy: Policy, intent: KnockIntent): { scopes: string[], dropped: string[], durationS: number } {
  const scopes = [...policy.grant.default_scopes]
  const dropped: string[] = []
  for (const s of intent.scopes) {
    if (scopes.includes(s)) continue
    if (scopeCovered(s, policy.grant.allowed_scopes)) scopes.push(s)
    else dropped.push(s)
  }
  return { scopes, dropped, durationS: Math.min(intent.duration_s, policy.grant.max_duration_s) }
}

/**
 * Decides a knock. Rules in order, first match wins:
 * 1. deny list (or `ctx.blocked`) → `deny_action`;
 * 2. over `knocks_per_hour` (`ctx.rateLimit`) → reject;
 * 3. category not in `intents.allowed` → reject;
 * 4. allow list → accept;
 * 5. reputation below `min_reputation` (or unrated, unless `allow_unrated`) → reject;
 * 6. `default_action`.
 * Accepted (and held) knocks get `grant.default_scopes` plus the requested scopes that
 * `grant.allowed_scopes` covers, for at most `grant.max_duration_s`.
 */
export function evaluateKnock (policy: Policy, knock: Knock, ctx: KnockContext = {}): KnockDecision {
  const no = (action: KnockAction, rule: KnockRule, reason: string): KnockDecision =>
    ({ action, rule, reason, scopes: [], dropped: [], durationS: 0 })
  const yes = (action: KnockAction, rule: KnockRule, reason: string): KnockDecision => {
    const t = grantTerms(policy, knock.intent)
    const note = t.dropped.length === 0 ? '' : `; scopes not granted: ${t.dropped.join(', ')}`
    return { action, rule, reason: reason + note, ...t }
  }

  const denied = matchList(policy.deny, knock)
  if (denied !== undefined) return no(policy.deny_action, 'deny', `deny list: ${denied}`)
  if (ctx.blocked?.has(knock.from) === true) return no(policy.deny_action, 'blocked', 'blocked: this peer is blocked')

  if (ctx.rateLimit !== undefined && !ctx.rateLimit.ok) {
    const s = Math.ceil(ctx.rateLimit.retryAfterMs / 1000)
    return no('reject', 'rate_limit',
      `rate limit: more than ${policy.rate_limits.knocks_per_hour} knocks per hour; retry in ${s} s`)
  }

  const category = knock.intent.category
  if (!policy.intents.allowed.includes(category)) {
    return no('reject', 'intent', `intent: category "${category}" is not accepted (accepted: ${policy.intents.allowed.join(', ') || 'none'})`)
  }

  const allowed = matchList(policy.allow, knock)
  if (allowed !== undefined) return yes('accept', 'allow', `allow list: ${allowed}`)

  const min = policy.min_reputation
  if (min !== null) {
    if (knock.reputation === null) {
      if (!policy.allow_unrated) return no('reject', 'reputation', `reputation: unrated, and min_reputation is ${min}`)
    } else if (knock.reputation < min) {
      return no('reject', 'reputation', `reputation: ${knock.reputation} is below min_reputation ${min}`)
    }
  }

  const action = policy.default_action
  const reason = `default_action: ${action}`
  return action === 'accept' || action === 'hold' ? yes(action, 'default', reason) : no(action, 'default', reason)
}

// ---------------------------------------------------------------------------------------------
// Watching the file

/** What `POLICY_CHANGE_CHANNEL` carries: the watched file (an absolute path) and its policies. */
export interface PolicyChangeEvent {
  path: string
  policy: Policy
  previous: Policy
}

export interface PolicyWatcherInit {
  /** Called after a change to the file produced a new valid policy. */
  onChange?: (policy: Policy, previous: Policy) => void
  /** Called when the file changed into something invalid, or was removed; the old policy stays. */
  onError?: (err: InvalidPolicyError) => void
  /** Quiet time after the last change event before the file is read. @default 100 ms */
  debounceMs?: number
  /** Interval of the stat() poll that catches what `fs.watch` misses. @default 2000 ms */
  pollMs?: number
  /** Use `fs.watch`; false leaves only the poll (e.g. network file systems). @default true */
  watch?: boolean
  /** The policy while the file does not exist at start. @default defaultPolicy() */
  fallback?: Policy
}

/**
 * Keeps an agent's policy in step with its file, without a restart. Watches the file's
 * directory (editors replace files by renaming, which a watch on the file itself would miss),
 * debounces bursts, and polls `stat()` as a fallback for file systems where `fs.watch` is
 * silent or unavailable. When a change is invalid, or the file is removed, the last valid
 * policy stays in force and `onError` is told (once per distinct change).
 *
 * Resources: one directory watcher, one unref'd interval, one debounce timer, at most one
 * read in flight (`MAX_POLICY_BYTES` at most); `close()` releases them.
 */
export class PolicyWatcher {
  readonly path: string
  #policy: Policy
  #init: PolicyWatcherInit
  #watcher: FSWatcher | undefined
  #poll: NodeJS.Timeout | undefined
  #debounce: NodeJS.Timeout | undefined
  #stamp: string
  #lastText: string | undefined
  #reading: Promise<void> | undefined
  #again = false
  #closed = false

  private constructor (path: string, policy: Policy, text: string | undefined, stamp: string, init: PolicyWatcherInit) {
    this.path = path
    this.#policy = policy
    this.#lastText = text
    this.#stamp = stamp
    this.#init = init
  }

  /**
   * Loads the file and starts watching it. Rejects with `InvalidPolicyError` when the file
   * exists but is invalid (fail at start rather than run with a policy the owner did not
   * write); a missing file gives `init.fallback` until the file appears.
   */
  static async open (path: string, init: PolicyWatcherInit = {}): Promise<PolicyWatcher> {
    const full = resolve(path)
    const stamp = await stampOf(full)
    let policy: Policy
    let text: string | undefined
    if (stamp === 'missing') {
      policy = init.fallback ?? defaultPolicy()
    } else {
      text = await readText(full)
      policy = parsePolicy(text, full)
    }
    const w = new PolicyWatcher(full, policy, text, stamp, init)
    w.#start()
    return w
  }

  /** The policy in force. */
  get policy (): Policy { return this.#policy }

  /** Reads the file now (also what a change event triggers); resolves when done. */
  async reload (): Promise<void> {
    if (this.#closed) return
    if (this.#reading !== undefined) {
      this.#again = true
      return await this.#reading
    }
    this.#reading = this.#read().finally(() => { this.#reading = undefined })
    await this.#reading
    if (this.#again && !this.#closed) {
      this.#again = false
      await this.reload()
    }
  }

  /** Stops watching; the last policy stays readable. Idempotent. */
  close (): void {
    this.#closed = true
    this.#watcher?.close()
    this.#watcher = undefined
    if (this.#poll !== undefined) clearInterval(this.#poll)
    if (this.#debounce !== undefined) clearTimeout(this.#debounce)
    this.#poll = this.#debounce = undefined
  }

  #start (): void {
    const file = basename(this.path)
    if (this.#init.watch !== false) {
      try {
        this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
          // some platforms give no file name: then any change in the directory is a candidate
          if (name === null || name === undefined || name.toString() === file) this.#schedule()
        })
        // the directory vanished or the platform gave up: the poll carries on alone
        this.#watcher.on('error', () => { this.#watcher?.close(); this.#watcher = undefined })
      } catch {
        this.#watcher = undefined // e.g. out of inotify watches: the poll carries on alone
      }
    }
    this.#poll = setInterval(() => {
      void stampOf(this.path).then((s) => { if (s !== this.#stamp) this.#schedule() }, () => {})
    }, this.#init.pollMs ?? DEFAULT_WATCH_POLL_MS)
    this.#poll.unref()
  }

  #schedule (): void {
    if (this.#closed) return
    if (this.#debounce !== undefined) clearTimeout(this.#debounce)
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined
      void this.reload()
    }, this.#init.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS)
    this.#debounce.unref()
  }

  async #read (): Promise<void> {
    const stamp = await stampOf(this.path)
    if (stamp === this.#stamp && stamp !== 'missing' && this.#lastText !== undefined) {
      // the stamp can miss a same-size rewrite within the mtime resolution: compare the text too
      const text = await readText(this.path).catch(() => undefined)
      if (text === undefined || text === this.#lastText) return
    }
    const previousStamp = this.#stamp
    this.#stamp = stamp
    if (stamp === 'missing') {
      if (previousStamp !== 'missing') {
        this.#report(new InvalidPolicyError(this.path, '',
          `invalid policy in ${this.path}: the file was removed; the previous policy stays in force`))
      }
      this.#lastText = undefined
      return
    }
    let text: string
    try {
      text = await readText(this.path)
    } catch (err) {
      this.#report(err instanceof InvalidPolicyError ? err : new InvalidPolicyError(this.path, '', String(err)))
      return
    }
    if (text === this.#lastText) return
    this.#lastText = text
    let next: Policy
    try {
      next = parsePolicy(text, this.path)
    } catch (err) {
      this.#report(err as InvalidPolicyError)
      return
    }
    if (this.#closed) return
    const previous = this.#policy
    this.#policy = next
    try { this.#init.onChange?.(next, previous) } catch { /* a throwing callback must not stop the watcher */ }
    if (policyChange.hasSubscribers) policyChange.publish({ path: this.path, policy: next, previous } satisfies PolicyChangeEvent)
  }

  #report (err: InvalidPolicyError): void {
    if (this.#closed) return
    try { this.#init.onError?.(err) } catch { /* as above */ }
  }
}

/** What changes when the file changes: inode, size, mtime; 'missing' when it does not exist. */
async function stampOf (path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true })
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch {
    return 'missing'
  }
}

async function readText (path: string): Promise<string> {
  try {
    return await readBounded(path, MAX_POLICY_BYTES)
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new InvalidPolicyError(path, '', `invalid policy in ${path}: cannot read the file (${why})`, { cause: err })
  }
}
