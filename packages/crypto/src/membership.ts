/**
 * Signed membership of private rooms (docs/protocol.md §17.5): a room's membership is a chain of
 * statements, each signed by the agent that makes the change and bound to the one before it by its
 * hash. The creator signs the genesis (`create`: the room id, the owner, when); the owner adds and
 * removes members and names admins (`admin` / `unadmin`); an admin adds and removes members (not
 * the owner, not admins); a member signs its own `leave`. The relay stores and serves the chain,
 * but cannot forge a link: a client hands its sender key only to agents the chain proves.
 *
 *   sig  = Ed25519(by, "agentmesh/membership\n" + RFC 8785 JSON of every field but sig)
 *   hash = base64url(SHA-256(RFC 8785 JSON of the whole statement, sig included))
 */
import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { keyForAmid } from './envelope.ts'
import { fromB64u, isAmid, signBytes, toB64u, verifyBytes, type KeyPair } from './keys.ts'

export const MEMBERSHIP_SIGNING_PREFIX = 'agentmesh/membership\n'
export const MEMBERSHIP_VERSION = 1
/** Statements a room's chain holds at most. */
export const MAX_MEMBERSHIP_STATEMENTS = 10_000

export type MembershipOp = 'create' | 'add' | 'remove' | 'leave' | 'admin' | 'unadmin'
const OPS: ReadonlySet<string> = new Set(['create', 'add', 'remove', 'leave', 'admin', 'unadmin'])
const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/

export interface MembershipStatement {
  v: 1
  room: string
  /** 0 for the genesis, then +1 per statement */
  seq: number
  /** hash of the statement before (absent in the genesis) */
  prev?: string
  op: MembershipOp
  /** the agent the statement is about (the owner in the genesis) */
  agent: string
  /** who signs it */
  by: string
  /** ms since the epoch */
  at: number
  sig: string
}

/** What a verified chain proves. */
export interface VerifiedMembership {
  room: string
  owner: string
  /** the genesis's hash: a room is pinned by it */
  genesis: string
  /** the newest statement's seq and hash (a later chain must extend it) */
  head: { seq: number, hash: string }
  /** members now, with the statement that added each (the owner: the genesis) */
  members: Map<string, { by: string, at: number, seq: number }>
  admins: Set<string>
}

const enc = new TextEncoder()
const jcs = (v: unknown): string => {
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(v)
  if (text === undefined) throw new TypeError('membership statement cannot be canonicalised')
  return text
}

function invalid (what: string): AgentMeshError {
  return new AgentMeshError(ErrorCode.MembershipUnsigned, `membership statement: ${what}`)
}

function signingBytes (s: Omit<MembershipStatement, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...rest } = s
  return enc.encode(MEMBERSHIP_SIGNING_PREFIX + jcs(rest))
}

/** The hash that binds the next statement to this one. */
export function membershipHash (s: MembershipStatement): string {
  return toB64u(createHash('sha256').update(jcs(s)).digest())
}

function checkFields (s: Record<string, unknown>): void {
  if (s.v !== MEMBERSHIP_VERSION) throw invalid(`unknown version ${JSON.stringify(s.v)}`)
  if (typeof s.room !== 'string' || !ROOM_RE.test(s.room)) throw invalid('room is not a room id')
  if (!Number.isSafeInteger(s.seq) || (s.seq as number) < 0) throw invalid('seq must be a whole number from 0')
  if (typeof s.op !== 'string' || !OPS.has(s.op)) throw invalid(`op must be one of ${[...OPS].join(', ')}`)
  for (const f of ['agent', 'by'] as const) if (typeof s[f] !== 'string' || !isAmid(s[f] as string)) throw invalid(`${f} is not an AMID`)
  if (!Number.isSafeInteger(s.at) || (s.at as number) < 0) throw invalid('at must be ms since the epoch')
  if (s.seq === 0 ? s.prev !== undefined : (typeof s.prev !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(s.prev))) throw invalid(s.seq === 0 ? 'the genesis has no prev' : 'prev is not a statement hash')
  if ((s.seq === 0) !== (s.op === 'create')) throw invalid('the genesis (seq 0), and only it, is a create')
  const known = new Set(['v', 'room', 'seq', 'prev', 'op', 'agent', 'by', 'at', 'sig'])
  for (const k of Object.keys(s)) if (!known.has(k)) throw invalid(`unknown field ${k}`)
}

export interface MembershipInit {
  room: string
  op: MembershipOp
  agent: string
  /** the chain it extends (omit for the genesis) */
  after?: MembershipStatement
  at?: number
}

/** Signs a membership statement by `keys` (AM_ERR_MEMBERSHIP_UNSIGNED for out-of-range fields). */
export function signMembership (keys: KeyPair & { amid: string }, init: MembershipInit): MembershipStatement {
  const unsigned: Omit<MembershipStatement, 'sig'> = {
    v: MEMBERSHIP_VERSION,
    room: init.room,
    seq: init.after === undefined ? 0 : init.after.seq + 1,
    ...(init.after === undefined ? {} : { prev: membershipHash(init.after) }),
    op: init.op,
    agent: init.agent,
    by: keys.amid,
    at: init.at ?? Date.now(),
  }
  checkFields(unsigned as unknown as Record<string, unknown>)
  return { ...unsigned, sig: toB64u(signBytes(keys.privateKeyObject, signingBytes(unsigned))) }
}

/** Checks one statement's shape and its signer's signature (AM_ERR_MEMBERSHIP_UNSIGNED). */
export function verifyMembershipStatement (statement: unknown): MembershipStatement {
  if (typeof statement !== 'object' || statement === null || Array.isArray(statement)) throw invalid('not an object')
  const s = statement as Record<string, unknown>
  checkFields(s)
  if (typeof s.sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(s.sig)) throw invalid('sig is not an Ed25519 signature')
  if (!verifyBytes(keyForAmid(s.by as string), signingBytes(s as unknown as MembershipStatement), fromB64u(s.sig))) {
    throw invalid(`seq ${s.seq as number}: the signature does not verify with the identity of ${s.by as string}`)
  }
  return s as unknown as MembershipStatement
}

/**
 * Applies one more statement to a verified chain (`state` undefined: `s` must be the genesis).
 * Throws AM_ERR_MEMBERSHIP_UNSIGNED when it is not signed, does not extend the chain, or its
 * signer may not make that change. Answers the new state (the old one is not changed).
 */
export function applyMembership (state: VerifiedMembership | undefined, statement: unknown): VerifiedMembership {
  const s = verifyMembershipStatement(statement)
  const hash = membershipHash(s)
  if (state === undefined) {
    if (s.op !== 'create') throw invalid('the chain does not start with a create')
    if (s.by !== s.agent) throw invalid('the genesis is signed by the owner it names')
    return { room: s.room, owner: s.agent, genesis: hash, head: { seq: 0, hash }, members: new Map([[s.agent, { by: s.by, at: s.at, seq: 0 }]]), admins: new Set() }
  }
  if (s.room !== state.room) throw invalid(`seq ${s.seq}: a statement of room ${s.room} in the chain of ${state.room}`)
  if (s.seq !== state.head.seq + 1 || s.prev !== state.head.hash) throw invalid(`seq ${s.seq}: it does not follow statement ${state.head.seq}`)
  const members = new Map(state.members)
  const admins = new Set(state.admins)
  const byOwner = s.by === state.owner
  const mayManage = byOwner || admins.has(s.by)
  switch (s.op) {
    case 'create':
      throw invalid(`seq ${s.seq}: a second create`)
    case 'add':
      if (!mayManage) throw invalid(`seq ${s.seq}: ${s.by} adds ${s.agent} but is neither the owner nor an admin`)
      if (members.has(s.agent)) throw invalid(`seq ${s.seq}: ${s.agent} is a member already`)
      members.set(s.agent, { by: s.by, at: s.at, seq: s.seq })
      break
    case 'remove':
      if (!mayManage) throw invalid(`seq ${s.seq}: ${s.by} removes ${s.agent} but is neither the owner nor an admin`)
      if (s.agent === state.owner) throw invalid(`seq ${s.seq}: the owner cannot be removed`)
      if (!byOwner && admins.has(s.agent)) throw invalid(`seq ${s.seq}: an admin is removed by the owner only`)
      if (!members.delete(s.agent)) throw invalid(`seq ${s.seq}: ${s.agent} is not a member`)
      admins.delete(s.agent)
      break
    case 'leave':
      if (s.by !== s.agent) throw invalid(`seq ${s.seq}: a leave is signed by the member who leaves`)
      if (s.agent === state.owner) throw invalid(`seq ${s.seq}: the owner cannot leave its room`)
      if (!members.delete(s.agent)) throw invalid(`seq ${s.seq}: ${s.agent} is not a member`)
      admins.delete(s.agent)
      break
    case 'admin':
    case 'unadmin':
      if (!byOwner) throw invalid(`seq ${s.seq}: only the owner names admins`)
      if (!members.has(s.agent) || s.agent === state.owner) throw invalid(`seq ${s.seq}: ${s.agent} is not a member other than the owner`)
      if (s.op === 'admin') admins.add(s.agent)
      else admins.delete(s.agent)
      break
  }
  return { ...state, head: { seq: s.seq, hash }, members, admins }
}

/**
 * Verifies a room's whole chain (genesis first). With `pinned` (what this agent verified before),
 * the chain must start with the same genesis and contain the same statement at the pinned head:
 * a relay cannot swap the room's owner or rewrite what was seen. Throws AM_ERR_MEMBERSHIP_UNSIGNED.
 */
export function verifyMembershipChain (room: string, statements: readonly unknown[], pinned?: { genesis: string, head: { seq: number, hash: string } }): VerifiedMembership {
  if (statements.length === 0) throw invalid(`#${room} has no signed membership (no genesis signed by its owner)`)
  if (statements.length > MAX_MEMBERSHIP_STATEMENTS) throw invalid(`more than ${MAX_MEMBERSHIP_STATEMENTS} statements`)
  let state: VerifiedMembership | undefined
  for (const st of statements) {
    state = applyMembership(state, st)
    if (state.room !== room) throw invalid(`the chain is of room ${state.room}, not ${room}`)
    if (pinned !== undefined && state.head.seq === 0 && state.genesis !== pinned.genesis) {
      throw invalid(`#${room}'s genesis is not the one this agent pinned: the room was replaced (its owner is now ${state.owner})`)
    }
    if (pinned !== undefined && state.head.seq === pinned.head.seq && state.head.hash !== pinned.head.hash) {
      throw invalid(`#${room}'s statement ${pinned.head.seq} is not the one this agent verified before: the chain was rewritten`)
    }
  }
  if (pinned !== undefined && state!.head.seq < pinned.head.seq) throw invalid(`#${room}'s chain ends at ${state!.head.seq}, before statement ${pinned.head.seq} this agent verified`)
  return state!
}

/** A verified chain as an agent keeps it (JSON: maps and sets as arrays). */
export interface PinnedMembership {
  room: string
  owner: string
  genesis: string
  head: { seq: number, hash: string }
  members: Array<[string, { by: string, at: number, seq: number }]>
  admins: string[]
}

export function pinMembership (v: VerifiedMembership): PinnedMembership {
  return { room: v.room, owner: v.owner, genesis: v.genesis, head: v.head, members: [...v.members], admins: [...v.admins] }
}

export function unpinMembership (p: PinnedMembership): VerifiedMembership {
  return { room: p.room, owner: p.owner, genesis: p.genesis, head: p.head, members: new Map(p.members), admins: new Set(p.admins) }
}

/**
 * Verifies what a room's chain holds beyond what this agent verified before (`pinned`): the
 * genesis and the pinned head must be the same statements (by hash), and every later one must
 * apply. Answers the new state and the statements that were new. Without `pinned` the whole chain
 * is verified (trust on first use of its genesis). Throws AM_ERR_MEMBERSHIP_UNSIGNED.
 */
export function extendMembership (room: string, statements: readonly unknown[], pinned?: PinnedMembership): { state: VerifiedMembership, added: MembershipStatement[] } {
  if (pinned === undefined) {
    const state = verifyMembershipChain(room, statements)
    return { state, added: statements as MembershipStatement[] }
  }
  if (statements.length === 0) throw invalid(`#${room} has no signed membership any more (this agent verified ${pinned.head.seq + 1} statements)`)
  const first = verifyMembershipStatement(statements[0])
  if (membershipHash(first) !== pinned.genesis) throw invalid(`#${room}'s genesis is not the one this agent pinned: the room was replaced (its owner is now ${first.agent}, was ${pinned.owner})`)
  const atHead = statements[pinned.head.seq]
  if (atHead === undefined) throw invalid(`#${room}'s chain ends at ${statements.length - 1}, before statement ${pinned.head.seq} this agent verified`)
  if (membershipHash(verifyMembershipStatement(atHead)) !== pinned.head.hash) throw invalid(`#${room}'s statement ${pinned.head.seq} is not the one this agent verified before: the chain was rewritten`)
  let state = unpinMembership(pinned)
  const added: MembershipStatement[] = []
  for (const st of statements.slice(pinned.head.seq + 1)) {
    state = applyMembership(state, st)
    added.push(st as MembershipStatement)
  }
  return { state, added }
}
