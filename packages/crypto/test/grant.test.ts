import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { createIdentity, grantAllows, signGrant, verifyGrant, MAX_GRANT_DURATION_MS } from '@agentmesh/crypto'

const bob = createIdentity('bob')
const alice = createIdentity('alice')
const T = 1_763_900_000_000
const DAY = 24 * 60 * 60 * 1000

describe('grants', () => {
  it('grant - signed by the grantor, verifies, in force until it expires', () => {
    const g = signGrant(bob, { id: 'grant-0001', grantee: alice.amid, scopes: ['chat', 'command:status', 'chat'], issuedAt: T, expiresAt: T + DAY, knockId: 'knock-0001' })
    assert.equal(g.grantor, bob.amid)
    assert.deepEqual(g.scopes, ['chat', 'command:status'], 'deduplicated and sorted')
    assert.equal(verifyGrant(g, T + 1000).status, 'valid')
    assert.equal(verifyGrant(g, T + DAY).status, 'expired')
    assert.equal(verifyGrant(g, T - DAY).status, 'not-yet-valid')
    // survives a JSON round trip (another key order too)
    const reordered = Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(g)) as Record<string, unknown>).reverse())
    assert.equal(verifyGrant(reordered, T + 1).status, 'valid')
  })

  it('grant - an altered or forged grant is AM_ERR_INVALID_KNOCK naming what failed', () => {
    const g = signGrant(bob, { id: 'grant-0002', grantee: alice.amid, scopes: ['chat'], issuedAt: T, expiresAt: T + DAY })
    const bad = (v: unknown, re: RegExp): void => {
      assert.throws(() => verifyGrant(v, T), (e: unknown) => AgentMeshError.is(e, ErrorCode.InvalidKnock) && re.test(e.message))
    }
    bad({ ...g, scopes: ['chat', 'command:*'] }, /signature does not verify/)
    bad({ ...g, expires_at: g.expires_at + DAY }, /signature does not verify/)
    bad({ ...g, grantor: alice.amid, grantee: bob.amid }, /signature does not verify/)
    // alice signs a grant claiming to be from bob: the signature is checked against the grantor
    const forged = signGrant(alice, { id: 'grant-0003', grantee: createIdentity().amid, scopes: ['chat'], issuedAt: T, expiresAt: T + DAY })
    bad({ ...forged, grantor: bob.amid }, /signature does not verify/)
    bad({ ...g, sig: 'x' }, /sig is not/)
    bad({ ...g, v: 2 }, /unknown version/)
    bad({ ...g, scopes: ['Not A Scope'] }, /scopes/)
    bad(null, /not an object/)
    bad({ ...g, grantee: 'nobody' }, /grantee is not an AMID/)
  })

  it('grant - out-of-range grants are refused when signing', () => {
    const base = { id: 'grant-0004', grantee: alice.amid, scopes: ['chat'], issuedAt: T }
    assert.throws(() => signGrant(bob, { ...base, expiresAt: T }), { code: ErrorCode.InvalidKnock })
    assert.throws(() => signGrant(bob, { ...base, expiresAt: T + MAX_GRANT_DURATION_MS + 1 }), { code: ErrorCode.InvalidKnock })
    assert.throws(() => signGrant(bob, { ...base, grantee: bob.amid, expiresAt: T + DAY }), /does not grant itself/)
    assert.throws(() => signGrant(bob, { ...base, scopes: Array.from({ length: 17 }, (_, i) => `s${i}`), expiresAt: T + DAY }), /at most 16/)
  })

  it('grant - scopes allow exactly or by a prefix wildcard', () => {
    const g = { scopes: ['chat', 'command:*', 'task:translate'] }
    assert.equal(grantAllows(g, 'chat'), true)
    assert.equal(grantAllows(g, 'command:status'), true)
    assert.equal(grantAllows(g, 'task:translate'), true)
    assert.equal(grantAllows(g, 'task:delete'), false)
    assert.equal(grantAllows({ scopes: ['chat'] }, 'command:status'), false)
  })
})
