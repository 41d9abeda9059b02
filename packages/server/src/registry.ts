/**
 * The registry's REST routes (docs/protocol.md §13): agent profiles with A2A-style skills,
 * search by capability or text, and prekeys for end-to-end session setup. Every write is a
 * signed request (`X-AgentMesh-*` headers); an agent writes only its own records.
 */
import type { Context, Hono } from 'hono'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { isAmid, verifyRequest } from '@agentmesh/crypto'
import type { AgentProfile, Store } from '@agentmesh/store'

/** Largest registry write body. */
export const MAX_REGISTRY_BODY_BYTES = 64 * 1024
/** One-time prekeys one upload may carry, and one agent may hold. */
export const MAX_PREKEYS_PER_UPLOAD = 200
export const MAX_PREKEYS_PER_AGENT = 1000
/** Skills one profile may declare. */
export const MAX_SKILLS = 64
/** Search results per page at most. */
export const MAX_SEARCH_LIMIT = 100
/** Signed-request nonces remembered (for the 5-minute window) to refuse replays. */
export const MAX_REMEMBERED_NONCES = 100_000

const B64U = '^[A-Za-z0-9_-]+$'
const Short = (max: number) => Type.String({ minLength: 1, maxLength: max })

export const SkillSchema = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }),
  name: Short(128),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  tags: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }), { maxItems: 32 })),
}, { additionalProperties: false })

export const ProfileBody = Type.Object({
  display_name: Type.Optional(Short(128)),
  capabilities: Type.Optional(Type.Array(SkillSchema, { maxItems: MAX_SKILLS })),
  version: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.+_-]{1,32}$' })),
}, { additionalProperties: false })
type ProfileBody = Static<typeof ProfileBody>

export const PrekeyBody = Type.Object({
  /** exchange key, signed prekey and post-quantum prekey with their signatures (public parts) */
  base: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
  one_time: Type.Optional(Type.Array(Type.Object({
    id: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    key: Type.String({ pattern: B64U, minLength: 43, maxLength: 43, description: 'X25519 public key, base64url' }),
  }, { additionalProperties: false }), { maxItems: MAX_PREKEYS_PER_UPLOAD })),
}, { additionalProperties: false })
type PrekeyBody = Static<typeof PrekeyBody>

const profileCheck = TypeCompiler.Compile(ProfileBody)
const prekeyCheck = TypeCompiler.Compile(PrekeyBody)

function invalid (check: ReturnType<typeof TypeCompiler.Compile>, body: unknown): AgentMeshError {
  const e = check.Errors(body).First()
  const where = e === undefined || e.path === '' ? 'the body' : `field ${e.path.slice(1).replaceAll('/', '.')}`
  return new AgentMeshError(ErrorCode.InvalidArgument, `invalid request: ${where}: ${e?.message ?? 'does not match the schema'}`)
}

/** The wire form of a profile (snake_case, like the protocol). */
export function profileJson (p: AgentProfile): Record<string, unknown> {
  return {
    amid: p.amid,
    ...(p.displayName === undefined ? {} : { display_name: p.displayName }),
    capabilities: p.capabilities,
    ...(p.version === undefined ? {} : { version: p.version }),
    tier: p.tier,
    updated_at: p.updatedAt,
  }
}

class NonceCache {
  private readonly seen = new Map<string, number>()
  /** false when the nonce was used within its window */
  add (key: string, expiresAt: number, now: number): boolean {
    if ((this.seen.get(key) ?? 0) > now) return false
    if (this.seen.size >= MAX_REMEMBERED_NONCES) {
      for (const [k, t] of this.seen) { if (t <= now) this.seen.delete(k) }
      // still full of live nonces: forget the oldest (their requests' timestamps age out soon)
      while (this.seen.size >= MAX_REMEMBERED_NONCES) this.seen.delete(this.seen.keys().next().value as string)
    }
    this.seen.set(key, expiresAt)
    return true
  }
}

function amidParam (c: Context): string {
  const amid = c.req.param('amid') ?? ''
  if (!isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${amid.slice(0, 80)}" is not an AMID`)
  return amid
}

export function registryRoutes (app: Hono, store: Store, opts: { skewMs?: number, now?: () => number } = {}): void {
  const nonces = new NonceCache()
  const now = opts.now ?? Date.now
  const skewMs = opts.skewMs ?? 5 * 60 * 1000

  /** Reads the body, checks the signature; answers the signer's AMID and the parsed JSON body. */
  async function signed (c: Context): Promise<{ signer: string, body: unknown }> {
    const declared = Number(c.req.header('content-length') ?? '0')
    if (declared > MAX_REGISTRY_BODY_BYTES) {
      throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${declared} bytes; registry writes take at most ${MAX_REGISTRY_BODY_BYTES}`)
    }
    const raw = new Uint8Array(await c.req.arrayBuffer())
    if (raw.byteLength > MAX_REGISTRY_BODY_BYTES) {
      throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${raw.byteLength} bytes; registry writes take at most ${MAX_REGISTRY_BODY_BYTES}`)
    }
    const url = new URL(c.req.url)
    const t = now()
    const r = verifyRequest((h) => c.req.header(h), c.req.method, url.pathname + url.search, raw, t, skewMs)
    if (!r.ok) {
      throw new AgentMeshError(r.reason === 'missing' ? ErrorCode.NotAuthenticated : r.reason === 'malformed' ? ErrorCode.InvalidArgument : ErrorCode.AuthFailed, r.message)
    }
    if (!nonces.add(`${r.amid}\n${r.nonce}`, r.ts + skewMs, t)) {
      throw new AgentMeshError(ErrorCode.AuthReplayed, 'this signed request was already used (same nonce); sign every request afresh')
    }
    let body: unknown = {}
    if (raw.byteLength > 0) {
      try { body = JSON.parse(new TextDecoder().decode(raw)) } catch {
        throw new AgentMeshError(ErrorCode.BadJson, 'the body is not valid JSON')
      }
    }
    return { signer: r.amid, body }
  }

  /** A write to the agent's own records: signed by that agent, with a body matching `check`. */
  async function ownWrite<T> (c: Context, check: ReturnType<typeof TypeCompiler.Compile>): Promise<{ amid: string, body: T }> {
    const amid = amidParam(c)
    const { signer, body } = await signed(c)
    if (signer !== amid) throw new AgentMeshError(ErrorCode.Forbidden, `the request is signed by ${signer}; only ${amid} may change its records`)
    if (!check.Check(body)) throw invalid(check, body)
    return { amid, body: body as T }
  }

  app.put('/api/v1/agents/:amid', async (c) => {
    const { amid, body: b } = await ownWrite<ProfileBody>(c, profileCheck)
    const t = now()
    const old = await store.getProfile(amid)
    // fields left out of the body keep their old values
    const displayName = b.display_name ?? old?.displayName
    const version = b.version ?? old?.version
    const profile: AgentProfile = {
      amid,
      ...(displayName === undefined ? {} : { displayName }),
      capabilities: (b.capabilities ?? old?.capabilities ?? []).map(s => ({ id: s.id, name: s.name, ...(s.description === undefined ? {} : { description: s.description }), tags: s.tags ?? [] })),
      ...(version === undefined ? {} : { version }),
      // tiers above anonymous come from a verified certificate chain (not published yet)
      tier: old?.tier ?? 'anonymous',
      updatedAt: t,
    }
    await store.upsertAgent({ amid, ...(profile.displayName === undefined ? {} : { name: profile.displayName }), seenAt: t })
    await store.putProfile(profile)
    return c.json(profileJson(profile))
  })

  app.get('/api/v1/agents/:amid', async (c) => {
    const amid = amidParam(c)
    const p = await store.getProfile(amid)
    if (p !== undefined) return c.json(profileJson(p))
    const a = await store.getAgent(amid)
    if (a === undefined) throw new AgentMeshError(ErrorCode.NotFound, `no agent ${amid} is registered on this relay`)
    return c.json(profileJson({ amid, ...(a.name === undefined ? {} : { displayName: a.name }), capabilities: [], tier: 'anonymous', updatedAt: a.registeredAt }))
  })

  app.get('/api/v1/agents', async (c) => {
    const capability = c.req.query('capability')
    const text = c.req.query('q')
    const limitText = c.req.query('limit') ?? '20'
    if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > MAX_SEARCH_LIMIT) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `limit must be a whole number from 1 to ${MAX_SEARCH_LIMIT}, got "${limitText.slice(0, 20)}"`)
    }
    for (const [name, v] of [['capability', capability], ['q', text]] as const) {
      if (v !== undefined && (v.length === 0 || v.length > 128)) throw new AgentMeshError(ErrorCode.InvalidArgument, `${name} must be 1 to 128 characters`)
    }
    const found = await store.searchProfiles({
      ...(capability === undefined ? {} : { capability }),
      ...(text === undefined ? {} : { text }),
      limit: Number(limitText),
    })
    return c.json({ agents: found.map(profileJson) })
  })

  app.put('/api/v1/agents/:amid/prekeys', async (c) => {
    const { amid, body: b } = await ownWrite<PrekeyBody>(c, prekeyCheck)
    const oneTime = b.one_time ?? []
    const have = await store.countOneTimePrekeys(amid)
    if (have + oneTime.length > MAX_PREKEYS_PER_AGENT) {
      throw new AgentMeshError(ErrorCode.InvalidArgument, `an agent holds at most ${MAX_PREKEYS_PER_AGENT} one-time prekeys; ${have} are stored, this upload has ${oneTime.length}`)
    }
    await store.upsertAgent({ amid, seenAt: now() })
    const r = await store.putPrekeys(amid, { ...(b.base === undefined ? {} : { base: b.base }), oneTime })
    return c.json({ one_time: r.oneTime })
  })

  app.get('/api/v1/agents/:amid/prekeys', async (c) => {
    const amid = amidParam(c)
    return c.json({ one_time: await store.countOneTimePrekeys(amid) })
  })

  app.post('/api/v1/agents/:amid/prekeys/bundle', async (c) => {
    const amid = amidParam(c)
    const { signer } = await signed(c)
    if (await store.getAgent(signer) === undefined) {
      throw new AgentMeshError(ErrorCode.Forbidden, `only registered agents may fetch prekey bundles; ${signer} is not registered`)
    }
    const taken = await store.takePrekeyBundle(amid)
    if (taken === undefined) throw new AgentMeshError(ErrorCode.NotFound, `agent ${amid} has published no prekeys`)
    return c.json({ amid, ...taken.base, ...(taken.oneTime === undefined ? {} : { one_time_prekey: taken.oneTime }) })
  })
}

