/**
 * The registry's REST routes (docs/protocol.md §13): agent profiles with A2A-style skills,
 * search by capability or text, prekeys for end-to-end session setup, certificate chains that
 * give an agent its trust tier, and the CRLs the relay holds (§13.1). Every write to an agent's
 * records is a signed request (`X-AgentMesh-*` headers); an agent writes only its own records.
 * A CRL is not signed by an agent: it must be signed by a CA the relay knows.
 */
import type { Context, Hono } from 'hono'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import { API_ROUTES, AgentMeshError, DEFAULT_SEARCH_LIMIT, ErrorCode, unsafeCharIn, type Certificate, type Crl, type Profile } from '@agentmesh/protocol'
import { LruMap, RateLimiter, type RateLimit } from '@agentmesh/protocol/internal'
import type { IncomingMessage } from 'node:http'
import { ipKey, rateLimited } from './chat/limits.ts'
// the bodies' schemas and their bounds are the REST contract's (@agentmesh/protocol src/api)
import {
  AmidParams, CertificateBody, MAX_PQ_PREKEYS_PER_AGENT, MAX_PREKEYS_PER_AGENT, MAX_REGISTRY_BODY_BYTES, PrekeyBody, ProfileBody,
} from '@agentmesh/protocol'
import { isAmid, verifyPqOneTimePreKey, verifyRequest } from '@agentmesh/crypto'
import type { AgentProfile, CertificateRecord, CrlRecord, OwnerLinkRecord, Store, TrustTier } from '@agentmesh/store'
import { MAX_CRL_BYTES, createTrust, type CertificateStatus } from './certificates.ts'
import { answer, queryOf } from './rest.ts'
import { checkMessageSchemas } from './message-schemas.ts'

/** Signed-request nonces remembered (for the 5-minute window) to refuse replays. */
export const MAX_REMEMBERED_NONCES = 100_000

const profileCheck = TypeCompiler.Compile(ProfileBody)
const prekeyCheck = TypeCompiler.Compile(PrekeyBody)
const certificateCheck = TypeCompiler.Compile(CertificateBody)

/** AM_ERR_INVALID_ARGUMENT naming the first field of `body` that does not match `check`. */
export function invalid (check: ReturnType<typeof TypeCompiler.Compile>, body: unknown): AgentMeshError {
  const e = check.Errors(body).First()
  const where = e === undefined || e.path === '' ? 'the body' : `field ${e.path.slice(1).replaceAll('/', '.')}`
  return new AgentMeshError(ErrorCode.InvalidArgument, `invalid request: ${where}: ${e?.message ?? 'does not match the schema'}`)
}

/** A stored chain with what it is worth now. */
interface Certified { record: CertificateRecord, status: CertificateStatus }

/**
 * The wire form of a profile (snake_case, like the protocol). The tier is the one the agent's
 * stored certificate chain gives now (`anonymous` without one): re-derived on every read.
 */
export function profileJson (p: AgentProfile, cert?: Certified, owner?: OwnerLinkRecord): Profile {
  // a verified owner link (§28) gives the verified tier; a certificate's organisation tier stays above it
  const certTier = cert?.status.tier ?? 'anonymous'
  return {
    amid: p.amid,
    ...(p.displayName === undefined ? {} : { display_name: p.displayName }),
    capabilities: p.capabilities,
    ...(p.version === undefined ? {} : { version: p.version }),
    ...(p.contact === undefined ? {} : { contact: p.contact }),
    ...(p.schemas === undefined || p.schemas.length === 0 ? {} : { schemas: p.schemas }),
    tier: owner !== undefined && certTier === 'anonymous' ? 'verified' : certTier,
    ...(owner === undefined ? {} : { owner: { issuer: owner.issuer, subject: owner.subject, ...(owner.name === undefined ? {} : { name: owner.name }), linked_at: owner.linkedAt } }),
    ...(cert?.status.organisation === undefined ? {} : { organisation: cert.status.organisation }),
    ...(cert === undefined ? {} : { cert_status: cert.status.state, cert_expires_at: cert.record.notAfter }),
    updated_at: p.updatedAt,
  }
}

/** The wire form of a published chain and its verification now. */
export function certificateJson (c: Certified): Certificate {
  const { record, status } = c
  return {
    amid: record.amid,
    chain: record.chain,
    status: status.state,
    tier: status.tier,
    ...(status.organisation === undefined ? {} : { organisation: status.organisation }),
    expires_at: record.notAfter,
    published_at: record.publishedAt,
    ...(status.error === undefined ? {} : { reason: { code: status.error.code, message: status.error.message } }),
  }
}

/** The wire form of a CRL the relay holds. */
export function crlJson (crl: CrlRecord): Crl {
  return {
    issuer: crl.issuer,
    issuer_key: crl.issuerKey,
    this_update: crl.thisUpdate,
    ...(crl.nextUpdate === undefined ? {} : { next_update: crl.nextUpdate }),
    revoked_count: crl.revokedCount,
    stored_at: crl.storedAt,
    pem: crl.pem,
  }
}

class NonceCache {
  // still full of live nonces: the oldest are forgotten (their requests' timestamps age out soon)
  private readonly seen = new LruMap<string, number>(MAX_REMEMBERED_NONCES)
  /** false when the nonce was used within its window */
  add (key: string, expiresAt: number, now: number): boolean {
    if ((this.seen.peek(key) ?? 0) > now) return false
    if (this.seen.size >= MAX_REMEMBERED_NONCES) {
      for (const [k, t] of [...this.seen]) { if (t <= now) this.seen.delete(k) }
    }
    this.seen.set(key, expiresAt)
    return true
  }
}

/** The `{amid}` path parameter, checked. */
/**
 * The {amid} path parameter: what the route table's AmidParams matches and a 32-byte key once
 * decoded (isAmid). The message is the one the registry has always given.
 */
export function amidParam (c: Context): string {
  const amid = c.req.param('amid') ?? ''
  if (!Value.Check(AmidParams, { amid }) || !isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, `"${amid.slice(0, 80)}" is not an AMID`)
  return amid
}

export interface RegistryInit {
  /** Allowed clock difference of signed requests. @default 5 minutes */
  skewMs?: number
  /** @default Date.now */
  now?: () => number
  /** Root CA certificates (PEM, one per entry, checked by relayOptions) chains are verified against. @default none: only anonymous */
  trustRoots?: readonly string[]
  /** Registry reads (profiles, search, prekey counts and bundles, certificates, CRLs) per IP. @default 600 a minute, bursts of 200 */
  readLimit?: RateLimit
}

/** Registry reads per IP when the relay options do not say. */
export const DEFAULT_REGISTRY_READ_LIMIT: RateLimit = { perMinute: 600, burst: 200 }

/** Reads a request body of at most `max` bytes. */
async function readBody (c: Context, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > max) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${declared} bytes; ${what} take at most ${max}`)
  const raw = new Uint8Array(await c.req.arrayBuffer())
  if (raw.byteLength > max) throw new AgentMeshError(ErrorCode.BodyTooLarge, `the body is ${raw.byteLength} bytes; ${what} take at most ${max}`)
  return raw
}

/** What other route groups (reputation.ts) use of the registry: its signed-request check and the tiers it derives. */
export interface RegistryHelpers {
  /** Reads the body, checks the signature and the nonce; answers the signer's AMID and the parsed JSON body. */
  signed: (c: Context) => Promise<{ signer: string, body: unknown }>
  /** The tier the agent's stored certificate chain gives at `t`, as profiles show it (anonymous without one). */
  tierOf: (amid: string, t: number) => Promise<TrustTier>
}

export function registryRoutes (app: Hono, store: Store, opts: RegistryInit = {}): RegistryHelpers {
  const nonces = new NonceCache()
  const now = opts.now ?? Date.now
  const skewMs = opts.skewMs ?? 5 * 60 * 1000
  const trust = createTrust(store, opts.trustRoots ?? [])
  const reads = new RateLimiter(opts.readLimit ?? DEFAULT_REGISTRY_READ_LIMIT, now)

  /** A registry read counts against its client's IP bucket (429 AM_ERR_RATE_LIMITED with Retry-After past it). */
  function read (c: Context): void {
    const address = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress ?? 'local'
    const r = reads.take(ipKey(address))
    if (!r.ok) throw rateLimited(r.retryAfterS, 'registry reads from this address')
  }

  /** The agent's stored chain and its status at `t`, or undefined without one. */
  async function certified (amid: string, t: number): Promise<Certified | undefined> {
    const record = await store.getCertificate(amid)
    return record === undefined ? undefined : { record, status: await trust.status(record, t) }
  }

  /** Reads the body, checks the signature; answers the signer's AMID and the parsed JSON body. */
  async function signed (c: Context): Promise<{ signer: string, body: unknown }> {
    const raw = await readBody(c, MAX_REGISTRY_BODY_BYTES, 'registry writes')
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
    const bad = b.display_name === undefined ? undefined : unsafeCharIn(b.display_name)
    if (bad !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, `display_name holds ${bad}, a bidi control, invisible or control character; remove it`)
    if (b.schemas !== undefined) checkMessageSchemas(b.schemas)
    const t = now()
    const old = await store.getProfile(amid)
    // fields left out of the body keep their old values
    const displayName = b.display_name ?? old?.displayName
    const version = b.version ?? old?.version
    const contact = b.contact ?? old?.contact
    const schemas = b.schemas ?? old?.schemas
    const profile: AgentProfile = {
      amid,
      ...(displayName === undefined ? {} : { displayName }),
      capabilities: (b.capabilities ?? old?.capabilities ?? []).map(s => ({ id: s.id, name: s.name, ...(s.description === undefined ? {} : { description: s.description }), tags: s.tags ?? [] })),
      ...(version === undefined ? {} : { version }),
      ...(contact === undefined ? {} : { contact }),
      ...(schemas === undefined || schemas.length === 0 ? {} : { schemas: schemas.map(s => ({ type: s.type, schema: s.schema, ...(s.description === undefined ? {} : { description: s.description }) })) }),
      // tiers above anonymous come from a published certificate chain (PUT …/certificate)
      tier: old?.tier ?? 'anonymous',
      // the signed peer record (§30.1) is written by its own route and kept here
      ...(old?.p2p === undefined ? {} : { p2p: old.p2p }),
      updatedAt: t,
    }
    await store.upsertAgent({ amid, ...(profile.displayName === undefined ? {} : { name: profile.displayName }), seenAt: t })
    await store.putProfile(profile)
    return answer(c, 'putAgent', profileJson(profile, await certified(amid, t), await store.getOwnerLink(amid)))
  })

  app.get('/api/v1/agents/:amid', async (c) => {
    read(c)
    const amid = amidParam(c)
    const t = now()
    // the chat handle (§17.1) rides along: KNOCK policies match senders by it (docs/policy.md)
    const handle = await store.handleOf(amid)
    const withHandle = (j: Profile): Profile => handle === undefined ? j : { ...j, handle }
    const p = await store.getProfile(amid)
    // where it can be reached directly (§30.1), as it signed it
    const p2p = (j: Profile): Profile => p?.p2p === undefined ? j : { ...j, p2p: { addrs: p.p2p.addrs, seq: p.p2p.seq, record: p.p2p.record, updated_at: p.p2p.updatedAt } }
    if (p !== undefined) return answer(c, 'getAgent', p2p(withHandle(profileJson(p, await certified(amid, t), await store.getOwnerLink(amid)))))
    const a = await store.getAgent(amid)
    if (a === undefined) throw new AgentMeshError(ErrorCode.NotFound, `no agent ${amid} is registered on this relay`)
    return answer(c, 'getAgent', withHandle(profileJson({ amid, ...(a.name === undefined ? {} : { displayName: a.name }), capabilities: [], tier: 'anonymous', updatedAt: a.registeredAt }, await certified(amid, t), await store.getOwnerLink(amid))))
  })

  app.get('/api/v1/agents', async (c) => {
    read(c)
    const { capability, q: text, limit = DEFAULT_SEARCH_LIMIT } = queryOf(c, API_ROUTES.searchAgents.query)
    const found = await store.searchProfiles({
      ...(capability === undefined ? {} : { capability }),
      ...(text === undefined ? {} : { text }),
      limit,
    })
    const t = now()
    return answer(c, 'searchAgents', { agents: await Promise.all(found.map(async p => profileJson(p, await certified(p.amid, t), await store.getOwnerLink(p.amid)))) })
  })

  app.put('/api/v1/agents/:amid/prekeys', async (c) => {
    const { amid, body: b } = await ownWrite<PrekeyBody>(c, prekeyCheck)
    const oneTime = b.one_time ?? []
    const pqOneTime = b.pq_one_time ?? []
    // every one-time PQ prekey is checked before anything is stored: a bundle hands it out as the agent's
    const ids = new Set<number>()
    pqOneTime.forEach((k, i) => {
      if (ids.has(k.id)) throw new AgentMeshError(ErrorCode.DuplicatePrekey, `pq_one_time[${i}]: id ${k.id} appears twice in this upload; give each one-time PQ prekey its own id`)
      ids.add(k.id)
      verifyPqOneTimePreKey(amid, k, `pq_one_time[${i}]`)
    })
    const replace = b.replace_one_time === true
    const have = replace ? 0 : await store.countOneTimePrekeys(amid)
    if (have + oneTime.length > MAX_PREKEYS_PER_AGENT) {
      throw new AgentMeshError(ErrorCode.TooManyPrekeys, `an agent holds at most ${MAX_PREKEYS_PER_AGENT} one-time prekeys; ${have} are stored, this upload has ${oneTime.length}: upload fewer`)
    }
    const havePq = replace ? 0 : await store.countPqOneTimePrekeys(amid)
    if (havePq + pqOneTime.length > MAX_PQ_PREKEYS_PER_AGENT) {
      throw new AgentMeshError(ErrorCode.TooManyPrekeys, `an agent holds at most ${MAX_PQ_PREKEYS_PER_AGENT} one-time PQ prekeys; ${havePq} are stored, this upload has ${pqOneTime.length}: upload fewer`)
    }
    await store.upsertAgent({ amid, seenAt: now() })
    const r = await store.putPrekeys(amid, {
      ...(b.base === undefined ? {} : { base: b.base }),
      oneTime,
      ...(pqOneTime.length === 0 ? {} : { pqOneTime }),
      ...(replace ? { replaceOneTime: true } : {}),
    })
    return answer(c, 'putPrekeys', { one_time: r.oneTime, pq_one_time: r.pqOneTime })
  })

  app.get('/api/v1/agents/:amid/prekeys', async (c) => {
    read(c)
    const amid = amidParam(c)
    return answer(c, 'countPrekeys', { one_time: await store.countOneTimePrekeys(amid), pq_one_time: await store.countPqOneTimePrekeys(amid) })
  })

  app.post('/api/v1/agents/:amid/prekeys/bundle', async (c) => {
    read(c)
    const amid = amidParam(c)
    const { signer } = await signed(c)
    if (await store.getAgent(signer) === undefined) {
      throw new AgentMeshError(ErrorCode.Forbidden, `only registered agents may fetch prekey bundles; ${signer} is not registered`)
    }
    const taken = await store.takePrekeyBundle(amid)
    if (taken === undefined) throw new AgentMeshError(ErrorCode.NotFound, `agent ${amid} has published no prekeys`)
    return answer(c, 'takePrekeyBundle', {
      amid,
      ...taken.base,
      ...(taken.oneTime === undefined ? {} : { one_time_prekey: taken.oneTime }),
      ...(taken.pqOneTime === undefined ? {} : { pq_one_time_prekey: taken.pqOneTime }),
    })
  })

  app.put('/api/v1/agents/:amid/certificate', async (c) => {
    const { amid, body: b } = await ownWrite<CertificateBody>(c, certificateCheck)
    const t = now()
    // verified before anything is written: a refused chain leaves the stored data as it was
    const { record, cas } = await trust.verify(amid, b.chain, t)
    for (const ca of cas) await store.putCaCertificate(ca)
    await store.upsertAgent({ amid, seenAt: t })
    await store.putCertificate(record)
    const p = await store.getProfile(amid)
    if (p !== undefined && p.tier !== record.tier) await store.putProfile({ ...p, tier: record.tier })
    return answer(c, 'putCertificate', certificateJson({ record, status: await trust.status(record, t) }))
  })

  app.get('/api/v1/agents/:amid/certificate', async (c) => {
    read(c)
    const amid = amidParam(c)
    const cert = await certified(amid, now())
    if (cert === undefined) throw new AgentMeshError(ErrorCode.NotFound, `agent ${amid} has published no certificate on this relay`)
    return answer(c, 'getCertificate', certificateJson(cert))
  })

  app.put('/api/v1/crls', async (c) => {
    const raw = await readBody(c, MAX_CRL_BYTES, 'CRLs')
    const { crl, result } = await trust.acceptCrl(new TextDecoder().decode(raw), now())
    return answer(c, 'putCrl', { status: result.status, crl: crlJson(crl) })
  })

  app.get('/api/v1/crls', async (c) => {
    read(c)
    return answer(c, 'listCrls', { crls: (await store.listCrls()).map(crlJson) })
  })

  return {
    signed,
    tierOf: async (amid, t) => {
      const tier = (await certified(amid, t))?.status.tier ?? 'anonymous'
      return tier === 'anonymous' && await store.getOwnerLink(amid) !== undefined ? 'verified' : tier
    },
  }
}
