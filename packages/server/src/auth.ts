/**
 * Who is calling the REST API v1 (docs/protocol.md §17.8): the operator with `X-API-Key`, or an
 * agent with a bearer token (obtained by signing a challenge) or a signed request (§13).
 * Tokens are JWTs the relay signs with its own Ed25519 key (jose, EdDSA): they need no storage
 * and keep working across restarts of a relay that keeps its data.
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto'
import type { Context } from 'hono'
import { SignJWT, jwtVerify } from 'jose'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { isAmid, verifyChallenge, SIGNATURE_HEADERS, type Identity } from '@agentmesh/crypto'
import type { Store } from '@agentmesh/store'
import { LruMap } from '@agentmesh/protocol/internal'
import type { Principal } from './chat.ts'
import type { RegistryHelpers } from './registry.ts'

/** Lifetime of a bearer token. */
export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000
/** A challenge must be answered within this time. */
export const CHALLENGE_TTL_MS = 60_000
/** Open challenges at most (the oldest are forgotten). */
export const MAX_OPEN_CHALLENGES = 10_000
const AUDIENCE = 'agentmesh/api/v1'

export interface Authenticator {
  /**
   * The caller, and the request's JSON body (read once, checked against the signature when signed).
   * `readBody` replaces how the body is read for the operator key and bearer tokens (a route with
   * a larger or streamed body: the files upload); a signed request always reads it as the registry does.
   */
  principal (c: Context, readBody?: (c: Context) => Promise<unknown>): Promise<{ principal: Principal, body: unknown }>
  challenge (amid: unknown): { nonce: string, relay: string, expires_at: number }
  token (body: { amid?: unknown, nonce?: unknown, sig?: unknown }): Promise<{ token: string, token_type: 'Bearer', expires_at: number }>
  readonly operatorEnabled: boolean
}

export function authenticator (init: {
  store: Store
  relay: Identity
  relayId: string
  apiKey: string | undefined
  signed: RegistryHelpers['signed']
  readBody: (c: Context) => Promise<unknown>
  tokenTtlMs?: number
  now?: () => number
}): Authenticator {
  const now = init.now ?? Date.now
  const ttl = init.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS
  // full of open challenges: the oldest are forgotten first
  const challenges = new LruMap<string, { amid: string, expiresAt: number }>(MAX_OPEN_CHALLENGES)
  const keyDigest = init.apiKey === undefined ? undefined : createHash('sha256').update(init.apiKey).digest()

  const agent = async (amid: string): Promise<Principal> => {
    if (await init.store.getAgent(amid) === undefined) {
      throw new AgentMeshError(ErrorCode.Forbidden, `agent ${amid} is not registered on this relay; connect once (\`agentmesh register\`) first`)
    }
    return { kind: 'agent', amid, role: await init.store.roleOf(amid) }
  }

  return {
    operatorEnabled: keyDigest !== undefined,
    async principal (c, readBody = init.readBody) {
      const key = c.req.header('x-api-key')
      if (key !== undefined) {
        // compared as digests: constant time whatever the length
        if (keyDigest === undefined || !timingSafeEqual(createHash('sha256').update(key).digest(), keyDigest)) {
          throw new AgentMeshError(ErrorCode.AuthFailed, keyDigest === undefined
            ? 'this relay has no operator API key (set --api-key or AGENTMESH_API_KEY when starting it)'
            : 'the X-API-Key is not this relay\'s operator key')
        }
        return { principal: { kind: 'operator', role: 'master' }, body: await readBody(c) }
      }
      const auth = c.req.header('authorization')
      if (auth !== undefined) {
        const m = /^Bearer\s+(\S+)$/i.exec(auth)
        if (m === null) throw new AgentMeshError(ErrorCode.InvalidArgument, 'the Authorization header must be "Bearer <token>"')
        let sub: string | undefined
        try {
          const r = await jwtVerify(m[1]!, init.relay.publicKeyObject, { issuer: init.relayId, audience: AUDIENCE, algorithms: ['EdDSA'], currentDate: new Date(now()) })
          sub = r.payload.sub
        } catch (err) {
          const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED'
          throw new AgentMeshError(ErrorCode.AuthFailed, expired ? 'the bearer token has expired; get a new one (`agentmesh token`)' : 'the bearer token is not valid for this relay; get one with POST /api/v1/auth/token')
        }
        if (sub === undefined || !isAmid(sub)) throw new AgentMeshError(ErrorCode.AuthFailed, 'the bearer token names no agent')
        return { principal: await agent(sub), body: await readBody(c) }
      }
      if (c.req.header(SIGNATURE_HEADERS.agent) !== undefined) {
        const { signer, body } = await init.signed(c)
        return { principal: await agent(signer), body }
      }
      throw new AgentMeshError(ErrorCode.NotAuthenticated,
        'authenticate: send "Authorization: Bearer <token>" (POST /api/v1/auth/token), a signed request (X-AgentMesh-* headers), or the operator\'s X-API-Key')
    },
    challenge (amid) {
      if (typeof amid !== 'string' || !isAmid(amid)) throw new AgentMeshError(ErrorCode.InvalidArgument, 'amid must be an AMID')
      const t = now()
      if (challenges.size >= MAX_OPEN_CHALLENGES) {
        for (const [k, v] of [...challenges]) if (v.expiresAt <= t) challenges.delete(k)
      }
      const nonce = randomBytes(24).toString('base64url')
      challenges.set(nonce, { amid, expiresAt: t + CHALLENGE_TTL_MS })
      return { nonce, relay: init.relayId, expires_at: t + CHALLENGE_TTL_MS }
    },
    async token (body) {
      const { amid, nonce, sig } = body
      if (typeof amid !== 'string' || !isAmid(amid) || typeof nonce !== 'string' || typeof sig !== 'string') {
        throw new AgentMeshError(ErrorCode.InvalidArgument, 'send {"amid", "nonce", "sig"}: the nonce from POST /api/v1/auth/challenge, signed as in the WebSocket auth')
      }
      const open = challenges.get(nonce)
      challenges.delete(nonce) // answered once, right or wrong
      if (open === undefined || open.amid !== amid || open.expiresAt < now()) {
        throw new AgentMeshError(ErrorCode.AuthReplayed, 'this challenge is unknown, used or expired; ask for a new one')
      }
      if (!verifyChallenge(amid, nonce, init.relayId, sig)) throw new AgentMeshError(ErrorCode.AuthFailed, 'the challenge signature does not verify for this AMID')
      await agent(amid)
      const exp = now() + ttl
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer(init.relayId)
        .setAudience(AUDIENCE)
        .setSubject(amid)
        .setIssuedAt(Math.floor(now() / 1000))
        .setExpirationTime(Math.floor(exp / 1000))
        .sign(init.relay.privateKeyObject)
      return { token, token_type: 'Bearer', expires_at: exp }
    },
  }
}
