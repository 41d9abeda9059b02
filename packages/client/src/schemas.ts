/**
 * Capabilities and message schemas (docs/protocol.md §25). An agent declares in its registry
 * profile the message types it accepts, each with a JSON Schema (draft 2020-12) for the payload.
 * The receiver's SDK checks each incoming direct message of a declared type against its own
 * schema: in `warn` mode (the default) the message is handed over with `schemaError` set and an
 * AM_ERR_SCHEMA_MISMATCH warning; in `strict` mode it is refused, and the sender is told with a
 * delivery notice carrying AM_ERR_SCHEMA_MISMATCH (what `agentmesh sent` shows, and a warning on
 * the sender's side). A sender may check before sending (`send(…, { validate: true })`): the
 * receiver's schemas are read from the registry and a payload that does not match is refused
 * locally with the same code, before anything is queued.
 */
import Ajv2020 from 'ajv/dist/2020.js'
import type { ValidateFunction } from 'ajv'
import { AgentMeshError, ErrorCode, TYPE_PATTERN, schemaShapeError, type MessageSchema } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import type { InboundStage } from './inbound.ts'
import type { DeliveryNotice } from './knock.ts'
import type { E2ee } from './e2ee.ts'
import type { Connection, Message } from './types.ts'

export type { MessageSchema }
export type SchemaMode = 'warn' | 'strict'

export interface SchemaOptions {
  /** `warn`: deliver a mismatching payload with a warning; `strict`: refuse it and tell the sender. @default $AGENTMESH_SCHEMA_MODE or 'warn' */
  mode?: SchemaMode
  /** Publish these as the agent's declared message schemas when they differ from what was published last. */
  declare?: readonly MessageSchema[]
}

/** A peer's schemas (validate: true) are read from the registry again after this long. */
export const SCHEMA_CACHE_MS = 60_000
/** Peers whose schemas a sender keeps (validate: true), each for SCHEMA_CACHE_MS. */
export const MAX_CACHED_PEER_SCHEMAS = 256
/** Refusal notices to one peer at most per minute (strict mode); more refusals are only warned. */
export const MAX_SCHEMA_NOTICES_PER_MINUTE = 10

/** The schemas a profile declares, as `{ type, schema, description? }` (what the A2A bridge makes skills of). */
export function declaredSchemas (profile: unknown): MessageSchema[] {
  const list = (profile as { schemas?: unknown } | null)?.schemas
  if (!Array.isArray(list)) return []
  return list.flatMap((s: Record<string, unknown>) => typeof s?.type === 'string' && typeof s.schema === 'object' && s.schema !== null
    ? [{ type: s.type, schema: s.schema as Record<string, unknown>, ...(typeof s.description === 'string' ? { description: s.description } : {}) }]
    : [])
}

/** The mode from an option or the environment; anything else is AM_ERR_INVALID_ARGUMENT. */
export function schemaModeOf (mode: string | undefined, env: Record<string, string | undefined> = process.env): SchemaMode {
  const m = mode ?? env.AGENTMESH_SCHEMA_MODE ?? 'warn'
  if (m === '') return 'warn'
  if (m !== 'warn' && m !== 'strict') throw new AgentMeshError(ErrorCode.InvalidArgument, `the schema mode must be "warn" or "strict", got "${m.slice(0, 40)}" (schemas.mode, AGENTMESH_SCHEMA_MODE)`)
  return m
}

/** Compiled validators of a list of schemas, by type; a schema that does not compile is left out (the registry refuses those). */
class Validators {
  // made on first use: its meta-schemas cost a few ms, and most connections declare nothing
  private static ajv: InstanceType<typeof Ajv2020.default> | undefined
  static compile (schema: Record<string, unknown>): ValidateFunction {
    const shape = schemaShapeError(schema)
    if (shape !== undefined) throw new Error(shape)
    const ajv = (Validators.ajv ??= new Ajv2020.default({ strict: false, allErrors: false, addUsedSchema: false }))
    try { return ajv.compile(schema) } finally { ajv.removeSchema(schema) }
  }

  readonly byType = new Map<string, ValidateFunction>()
  constructor (readonly list: readonly MessageSchema[]) {
    for (const s of list) {
      try { this.byType.set(s.type, Validators.compile(s.schema)) } catch {}
    }
  }

  /** undefined when `payload` matches (or no schema is declared for `type`), else what is wrong, in one line. */
  check (type: string, payload: unknown): string | undefined {
    const v = this.byType.get(type)
    if (v === undefined || v(payload)) return undefined
    const e = v.errors?.[0]
    return e === undefined ? 'does not match the schema' : `${e.instancePath === '' ? 'the payload' : e.instancePath} ${e.message ?? 'does not match'}`.slice(0, 200)
  }
}

interface SchemaStateInit {
  mode: SchemaMode
  /** the agent's sealed state, where the schemas it declared are kept */
  e2ee: E2ee
  notify: (peer: string, notice: DeliveryNotice) => void
  warn: (w: AgentMeshError) => void
}

/** Record of the schemas this agent declared last (through the SDK or the CLI), in its sealed state. */
const DECLARED = ['meta-schemas', 'declared'] as const
/** The declared schemas are read from the state again after this long (another process of the agent may declare). */
export const OWN_SCHEMAS_RECHECK_MS = 1000

/** Per connection: its own declared schemas (from its state), the peers' (for validate: true), the mode. */
class SchemaState {
  private own: { v: Validators, text: string, at: number } | undefined
  private readonly peers = new LruMap<string, { v: Validators, at: number }>(MAX_CACHED_PEER_SCHEMAS)
  private readonly notices = new LruMap<string, { n: number, since: number }>(MAX_CACHED_PEER_SCHEMAS)
  constructor (private readonly conn: Connection, readonly init: SchemaStateInit) {}

  async profileOf (amid: string): Promise<MessageSchema[]> {
    return declaredSchemas(await this.conn.request('GET', `/api/v1/agents/${amid}`))
  }

  /**
   * This agent's validators: the schemas it declared, as kept in its state when declared (no
   * network: a message is never held up by the registry); compiled again only when they changed.
   */
  ownValidators (now = Date.now()): Validators {
    if (this.own !== undefined && now - this.own.at < OWN_SCHEMAS_RECHECK_MS) return this.own.v
    const list = this.init.e2ee.record<MessageSchema[]>(...DECLARED) ?? []
    const text = JSON.stringify(list)
    if (this.own?.text === text) { this.own.at = now; return this.own.v }
    this.own = { v: new Validators(list), text, at: now }
    return this.own.v
  }

  setOwn (list: readonly MessageSchema[]): void {
    this.init.e2ee.saveRecord(...DECLARED, list)
    this.own = { v: new Validators(list), text: JSON.stringify(list), at: Date.now() }
  }

  async peerValidators (peer: string, now = Date.now()): Promise<Validators> {
    const hit = this.peers.get(peer)
    if (hit !== undefined && now - hit.at < SCHEMA_CACHE_MS) return hit.v
    let list: MessageSchema[] = []
    try { list = await this.profileOf(peer) } catch (err) { if (!AgentMeshError.is(err, ErrorCode.NotFound)) throw err }
    const v = new Validators(list)
    this.peers.set(peer, { v, at: now })
    return v
  }

  /** Whether a refusal notice may go to `peer` now (MAX_SCHEMA_NOTICES_PER_MINUTE). */
  mayNotify (peer: string, now = Date.now()): boolean {
    const s = this.notices.get(peer)
    if (s === undefined || now - s.since >= 60_000) { this.notices.set(peer, { n: 1, since: now }); return true }
    s.n++
    return s.n <= MAX_SCHEMA_NOTICES_PER_MINUTE
  }
}

const states = new WeakMap<Connection, SchemaState>()

/** Made by connect(): the connection's schema state and its inbound stage. */
export function attachSchemas (conn: Connection, init: SchemaStateInit): InboundStage {
  const st = new SchemaState(conn, init)
  states.set(conn, st)
  return schemaStage(conn, st)
}

/**
 * The inbound stage: a peer's direct message of a type this agent declared is checked against its
 * schema. Room messages, the relay's posts and the protocol's own types are not checked.
 */
function schemaStage (conn: Connection, st: SchemaState): InboundStage {
  return {
    name: 'schemas',
    async handle (ctx) {
      const m = ctx.message
      if (m === undefined || m.room !== undefined || m.from === conn.relayAmid || m.from === conn.amid || m.type.startsWith('agentmesh.')) return 'continue'
      const v = st.ownValidators()
      if (!v.byType.has(m.type)) return 'continue'
      const wrong = v.check(m.type, m.payload)
      if (wrong === undefined) return 'continue'
      const what = `message ${m.id} from ${m.from} (type ${m.type}) does not match this agent's declared schema: ${wrong}`
      if (st.init.mode === 'strict') {
        st.init.warn(new AgentMeshError(ErrorCode.SchemaMismatch, `refused ${what}`))
        if (st.mayNotify(m.from)) {
          st.init.notify(m.from, { id: m.envelope.id, status: 'refused', code: ErrorCode.SchemaMismatch, reason: `The payload of type ${m.type} does not match the receiver's declared schema: ${wrong}. Read its schemas in its registry profile, or send with validate: true.` })
        }
        return 'consumed'
      }
      st.init.warn(new AgentMeshError(ErrorCode.SchemaMismatch, `${what} (delivered: warn mode)`))
      ctx.message = { ...m, schemaError: wrong } satisfies Message
      return 'continue'
    },
  }
}

function stateOf (conn: Connection): SchemaState {
  const st = states.get(conn)
  if (st === undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, 'this connection has no schema state; it was not made by connect()')
  return st
}

/** The message schemas of a connection's agent and its peers. */
export interface Schemas {
  /** 'warn' or 'strict', as configured for this connection. */
  readonly mode: SchemaMode
  /** Publishes this agent's declared message schemas in its profile (replacing the list; [] clears it). AM_ERR_INVALID_SCHEMA when one is not a schema. */
  declare (list: readonly MessageSchema[]): Promise<MessageSchema[]>
  /** The schemas an agent (this one by default) declares in its profile, `{ type, schema, description? }[]`. */
  of (amid?: string): Promise<MessageSchema[]>
  /** Checks a payload against what `peer` declares for `type`: AM_ERR_SCHEMA_MISMATCH when it does not match (nothing declared: passes). */
  check (peer: string, type: string, payload: Record<string, unknown>): Promise<void>
}

export function schemas (conn: Connection): Schemas {
  const st = stateOf(conn)
  return {
    get mode () { return st.init.mode },
    async declare (list) {
      for (const [i, s] of list.entries()) {
        if (typeof s?.type !== 'string' || !new RegExp(TYPE_PATTERN).test(s.type)) throw new AgentMeshError(ErrorCode.InvalidSchema, `"${String(s?.type).slice(0, 64)}" is not a message type (a-z 0-9 . _ -, starting with a letter)`)
        // compiled here first: the registry checks a schema against the meta-schema only
        try { Validators.compile(s.schema) } catch (err) {
          throw new AgentMeshError(ErrorCode.InvalidSchema, `schemas[${i}] (type "${s.type}") is not a valid JSON Schema (draft 2020-12): ${(err as Error).message.slice(0, 300)}`)
        }
      }
      const answer = await conn.request('PUT', `/api/v1/agents/${conn.amid}`, { schemas: list })
      const declared = declaredSchemas(answer)
      st.setOwn(declared)
      return declared
    },
    async of (amid = conn.amid) { return await st.profileOf(amid) },
    async check (peer, type, payload) { await checkOutgoing(conn, peer, type, payload) },
  }
}

/**
 * `send(…, { validate: true })`: the receiver's declared schema for `type` (from the registry, kept
 * SCHEMA_CACHE_MS per peer) must match `payload`. A room has no single receiver: not checked.
 */
export async function checkOutgoing (conn: Connection, to: string, type: string, payload: Record<string, unknown>): Promise<void> {
  if (to.startsWith('#')) return
  const peer = to.startsWith('@') ? await conn.resolveHandle(to) : to
  const st = stateOf(conn)
  const wrong = (await st.peerValidators(peer)).check(type, payload)
  if (wrong !== undefined) {
    throw new AgentMeshError(ErrorCode.SchemaMismatch, `not sent: the payload of type ${type} does not match the schema ${peer} declares for it: ${wrong}`)
  }
}
