/**
 * Reputation in the registry (docs/protocol.md §15), against real relays on free ports: signed
 * feedback, the weighted score (anonymous raters, mutual pairs), replacement of a rater's earlier
 * rating, flags on fast moves and none on slow ones, every refusal with nothing stored, the rate
 * limit with Retry-After, persistence, and the `reputation` relay option. The 24-hour default
 * window is exercised in process with the registry's injected clock.
 */
import { before, describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { createIdentity, createRootCa, issueAgentCert, signRequest, type CertificateAuthority, type Identity } from '@agentmesh/crypto'
import { createRelay, relayOptions, silentLogger, type Relay, type RelayInit } from '@agentmesh/server'
import { httpApp } from '@agentmesh/server/internal'
import { memoryStore, type Store } from '@agentmesh/store'
import { startRelay, tempDir } from '@agentmesh/testing'

type Json = Record<string, any>
const HOUR = 3_600_000

async function start (t: TestContext, init: RelayInit = {}, now?: () => number): Promise<Relay> {
  const relay = await startRelay(init, now === undefined ? {} : { now })
  t.after(async () => { await relay.close() })
  return relay
}

/** A request as an agent makes it: signed by `who` when given. */
async function call (relay: Relay, who: Identity | undefined, method: string, path: string, body?: unknown): Promise<{ status: number, json: Json, headers: Headers }> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (who !== undefined) Object.assign(headers, signRequest(who, method, path, text))
  const res = await fetch(relay.url + path, { method, headers, ...(text === '' ? {} : { body: text }) })
  return { status: res.status, json: await res.json() as Json, headers: res.headers }
}

function expectError (r: { status: number, json: Json }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.json))
  assert.equal(r.json.error?.code, code, JSON.stringify(r.json))
  if (message !== undefined) assert.match(r.json.error.message, message)
}

const rate = async (relay: Relay, rater: Identity, subject: Identity | string, body: unknown): Promise<{ status: number, json: Json, headers: Headers }> =>
  await call(relay, rater, 'POST', `/api/v1/agents/${typeof subject === 'string' ? subject : subject.amid}/feedback`, body)

async function rateOk (relay: Relay, rater: Identity, subject: Identity, body: Json): Promise<Json> {
  const r = await rate(relay, rater, subject, body)
  assert.equal(r.status, 200, JSON.stringify(r.json))
  return r.json
}

const reputation = async (relay: Relay, who: Identity): Promise<Json> => {
  const r = await call(relay, undefined, 'GET', `/api/v1/agents/${who.amid}/reputation`)
  assert.equal(r.status, 200, JSON.stringify(r.json))
  return r.json
}
const flags = async (relay: Relay, who: Identity): Promise<Json[]> => {
  const r = await call(relay, undefined, 'GET', `/api/v1/agents/${who.amid}/reputation/flags`)
  assert.equal(r.status, 200, JSON.stringify(r.json))
  assert.equal(r.json.amid, who.amid)
  return r.json.flags as Json[]
}

/** A registered agent of the anonymous tier (a profile, no certificate). */
async function anonymous (relay: Relay, name: string): Promise<Identity> {
  const a = createIdentity(name)
  const r = await call(relay, a, 'PUT', `/api/v1/agents/${a.amid}`, { display_name: name })
  assert.equal(r.status, 200, JSON.stringify(r.json))
  return a
}

let root: CertificateAuthority
before(async () => { root = await createRootCa({ name: 'Reputation Test Root' }) })

/** A registered agent of the verified tier: it published a chain issued by the relay's trust root. */
async function verified (relay: Relay, name: string): Promise<Identity> {
  const a = await anonymous(relay, name)
  const cert = await issueAgentCert(root, { amid: a.amid, tier: 'verified' })
  const r = await call(relay, a, 'PUT', `/api/v1/agents/${a.amid}/certificate`, { chain: cert.chainPem })
  assert.equal(r.status, 200, JSON.stringify(r.json))
  assert.equal((await call(relay, undefined, 'GET', `/api/v1/agents/${a.amid}`)).json.tier, 'verified')
  return a
}

/** Everything the relay holds and answers about the reputation of these agents. */
async function snapshot (relay: Relay, agents: Identity[]): Promise<Json> {
  const out: Json = {}
  for (const a of agents) {
    out[a.amid] = {
      for: await relay.store.listFeedbackFor(a.amid),
      by: await relay.store.listFeedbackBy(a.amid),
      points: await relay.store.listScorePoints(a.amid, 0),
      flags: await relay.store.listReputationFlags(a.amid),
      get: (await call(relay, undefined, 'GET', `/api/v1/agents/${a.amid}/reputation`)).json,
    }
  }
  return out
}

const near = (actual: number, expected: number): void => { assert.ok(Math.abs(actual - expected) < 1e-6, `${actual} ≈ ${expected}`) }

describe('reputation - feedback and score', () => {
  it('reputation - an agent without ratings has score null; feedback answers the stored rating and the new reputation', async (t) => {
    const relay = await start(t)
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    assert.deepEqual(await reputation(relay, bob), { amid: bob.amid, score: null, ratings: 0, weight_total: 0, updated_at: null, flagged: false })
    assert.deepEqual(await flags(relay, bob), [])

    const r = await rateOk(relay, alice, bob, { score: 0.8, comment: 'quick and correct', interaction: 'task-42' })
    assert.equal(typeof r.feedback.at, 'number')
    assert.deepEqual(r, {
      feedback: { rater: alice.amid, subject: bob.amid, score: 0.8, comment: 'quick and correct', interaction: 'task-42', at: r.feedback.at },
      replaced: false,
      reputation: { amid: bob.amid, score: 0.8, ratings: 1, weight_total: 0.5, updated_at: r.feedback.at, flagged: false },
    })
    assert.deepEqual(await reputation(relay, bob), r.reputation)
    assert.deepEqual(await relay.store.getFeedback(alice.amid, bob.amid), { rater: alice.amid, subject: bob.amid, score: 0.8, comment: 'quick and correct', interaction: 'task-42', at: r.feedback.at })
    // the rater's own reputation is untouched
    assert.equal((await reputation(relay, alice)).score, null)
    // the bounds are allowed
    assert.equal((await rateOk(relay, bob, alice, { score: 0 })).reputation.score, 0)
    const carol = await anonymous(relay, 'carol')
    // bob's 0 weighs 0.5 × 0.2 (alice rated bob too: discounted 80%), carol's 1 weighs 0.5: 0.5 / 0.6
    assert.equal((await rateOk(relay, carol, alice, { score: 1 })).reputation.score, 0.833333)
  })

  it('reputation - a rating by an anonymous-tier rater weighs half of a verified one\'s', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const subject = await anonymous(relay, 'subject')
    const v = await verified(relay, 'verified rater')
    const a = await anonymous(relay, 'anonymous rater')
    await rateOk(relay, v, subject, { score: 1 })
    const r = await rateOk(relay, a, subject, { score: 0 })
    // (1 × 1 + 0.5 × 0) / 1.5
    assert.equal(r.reputation.score, 0.666667)
    assert.equal(r.reputation.weight_total, 1.5)
    assert.equal(r.reputation.ratings, 2)
    assert.equal(r.reputation.updated_at, r.feedback.at)
    assert.equal((await reputation(relay, subject)).score, 0.666667)
  })

  it('reputation - the anonymous weight is configurable', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem], reputation: { anonymousWeight: 0.25 } })
    assert.equal(relay.options.reputation.anonymousWeight, 0.25)
    assert.equal(relay.options.reputation.mutualDiscount, 0.8, 'the others keep their defaults')
    const subject = await anonymous(relay, 'subject')
    await rateOk(relay, await verified(relay, 'v'), subject, { score: 1 })
    const r = await rateOk(relay, await anonymous(relay, 'a'), subject, { score: 0 })
    assert.equal(r.reputation.score, 0.8) // 1 / 1.25
    assert.equal(r.reputation.weight_total, 1.25)
  })

  it('reputation - a rating between two agents that rated each other is discounted 80%, both ways', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const alice = await verified(relay, 'alice')
    const bob = await verified(relay, 'bob')
    const carol = await verified(relay, 'carol')
    await rateOk(relay, carol, bob, { score: 0 })
    assert.equal((await rateOk(relay, alice, bob, { score: 1 })).reputation.score, 0.5)
    // bob rates alice back: alice's rating of bob is now mutual and weighs 0.2
    const back = await rateOk(relay, bob, alice, { score: 0.3 })
    assert.deepEqual([back.reputation.score, back.reputation.weight_total], [0.3, 0.2])
    const b = await reputation(relay, bob)
    assert.equal(b.score, 0.166667) // (1 × 0 + 0.2 × 1) / 1.2
    assert.equal(b.weight_total, 1.2)
    // a third party's rating is not mutual
    assert.equal((await rateOk(relay, alice, carol, { score: 1 })).reputation.weight_total, 1)
    // the rater's score change caused by making the pair mutual is in its history
    assert.deepEqual((await relay.store.listScorePoints(bob.amid, 0)).map(p => p.score), [0, 0.5, 0.166667])
  })

  it('reputation - an anonymous mutual pair combines both rules; the discount is configurable', async (t) => {
    const relay = await start(t, { reputation: { mutualDiscount: 0.5 } })
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    await rateOk(relay, alice, bob, { score: 0.9 })
    const r = await rateOk(relay, bob, alice, { score: 0.7 })
    near(r.reputation.weight_total, 0.25) // 0.5 × (1 − 0.5)
    near((await reputation(relay, bob)).weight_total, 0.25)
    assert.equal((await reputation(relay, bob)).score, 0.9)
  })

  it('reputation - a rater\'s new rating replaces its earlier one of the same agent', async (t) => {
    const relay = await start(t, { reputation: { flagDelta: 1 } })
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    const carol = await anonymous(relay, 'carol')
    const first = await rateOk(relay, alice, bob, { score: 0.2, comment: 'slow', interaction: 'job-1' })
    await rateOk(relay, carol, bob, { score: 0.6 })
    assert.equal((await reputation(relay, bob)).score, 0.4)
    const second = await rateOk(relay, alice, bob, { score: 1 })
    assert.equal(second.replaced, true)
    assert.equal(first.replaced, false)
    assert.deepEqual(second.feedback, { rater: alice.amid, subject: bob.amid, score: 1, at: second.feedback.at }, 'the comment and interaction of the old one are gone')
    assert.deepEqual(await reputation(relay, bob), { amid: bob.amid, score: 0.8, ratings: 2, weight_total: 1, updated_at: second.feedback.at, flagged: false })
    assert.deepEqual((await relay.store.listFeedbackFor(bob.amid)).map(f => [f.rater, f.score]).sort(), [[alice.amid, 1], [carol.amid, 0.6]].sort())
  })

  it('reputation - the rater\'s tier is the one its certificate gives now', async (t) => {
    const relay = await start(t, { trustRoots: [root.certPem] })
    const subject = await anonymous(relay, 'subject')
    const rater = await anonymous(relay, 'rater')
    await rateOk(relay, rater, subject, { score: 1 })
    assert.equal((await reputation(relay, subject)).weight_total, 0.5)
    const cert = await issueAgentCert(root, { amid: rater.amid, tier: 'verified' })
    assert.equal((await call(relay, rater, 'PUT', `/api/v1/agents/${rater.amid}/certificate`, { chain: cert.chainPem })).status, 200)
    assert.equal((await reputation(relay, subject)).weight_total, 1, 'the rating weighs in full once the rater is verified')
  })

  it('reputation - concurrent feedback from many raters is all counted, and one fast move raises one flag', async (t) => {
    const relay = await start(t)
    const subject = await anonymous(relay, 'subject')
    const raters = await Promise.all(Array.from({ length: 12 }, async (_, i) => await anonymous(relay, `r${i}`)))
    const rs = await Promise.all(raters.map(async (r, i) => await rate(relay, r, subject, { score: i % 2 === 0 ? 1 : 0 })))
    assert.deepEqual(rs.map(r => r.status), raters.map(() => 200))
    const rep = await reputation(relay, subject)
    assert.equal(rep.ratings, 12)
    assert.equal(rep.score, 0.5)
    assert.equal(rep.flagged, true)
    assert.equal((await flags(relay, subject)).length, 1)
  })
})

describe('reputation - flags', () => {
  it('reputation - a score that moves more than 0.2 within the window is flagged once; GET flags shows it', async (t) => {
    const relay = await start(t)
    const subject = await anonymous(relay, 'subject')
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map(async n => await anonymous(relay, n)))
    await rateOk(relay, a!, subject, { score: 1 }) // 1
    assert.equal((await rateOk(relay, b!, subject, { score: 0.6 })).reputation.flagged, false) // 0.8: a move of 0.2 is not more than 0.2
    assert.deepEqual(await flags(relay, subject), [])
    const third = await rateOk(relay, c!, subject, { score: 0.4 }) // 0.666667: 0.333333 below the window's highest
    assert.equal(third.reputation.flagged, true)
    const got = await flags(relay, subject)
    assert.equal(got.length, 1)
    const [flag] = got
    assert.deepEqual(flag, {
      at: third.feedback.at,
      from: 1,
      from_at: flag!.from_at,
      to: 0.666667,
      to_at: third.feedback.at,
      reason: 'the score moved by 0.333333 (from 1 to 0.666667) within 24 h; more than 0.2 is flagged for review',
    })
    assert.ok(flag!.from_at <= third.feedback.at)
    // while it is open, further moves add no flag
    await rateOk(relay, d!, subject, { score: 0 })
    assert.equal((await reputation(relay, subject)).score, 0.5)
    assert.equal((await flags(relay, subject)).length, 1)
    assert.equal((await reputation(relay, subject)).flagged, true)
    assert.deepEqual((await relay.store.listScorePoints(subject.amid, 0)).map(p => p.score), [1, 0.8, 0.666667, 0.5])
  })

  it('reputation - the same total move made slowly, each step of at most 0.2 in its own window, is not flagged', async (t) => {
    // the registry's clock moves only when the test moves it (signed requests stay within its skew)
    const clock = { t: Date.now() }
    const relay = await start(t, { reputation: { flagWindowMs: 300 } }, () => clock.t)
    const subject = await anonymous(relay, 'subject')
    const raters = await Promise.all(['a', 'b', 'c', 'd'].map(async n => await anonymous(relay, n)))
    const scores: number[] = []
    for (const [i, s] of [1, 0.6, 0.4, 0.2].entries()) {
      if (i > 0) clock.t += 400
      const r = await rateOk(relay, raters[i]!, subject, { score: s })
      scores.push(r.reputation.score as number)
      assert.equal(r.reputation.flagged, false)
    }
    assert.deepEqual(scores, [1, 0.8, 0.666667, 0.55]) // 0.45 in all, at most 0.2 within any 300 ms
    assert.deepEqual(await flags(relay, subject), [])
    // one step of more than 0.2 is flagged, however long the score before it held
    clock.t += 400
    const r = await rateOk(relay, raters[0]!, subject, { score: 0 }) // a replaces its 1: 1.2 / 4
    assert.equal(r.reputation.score, 0.3)
    assert.equal(r.reputation.flagged, true)
    const got = await flags(relay, subject)
    assert.equal(got.length, 1)
    assert.deepEqual([got[0]!.from, got[0]!.to, got[0]!.to_at], [0.55, 0.3, r.feedback.at])
    assert.ok(got[0]!.from_at >= r.feedback.at - 300, 'a score set before the window counts from the window\'s start')
    assert.match(got[0]!.reason, /^the score moved by 0\.25 \(from 0\.55 to 0\.3\) within 300 ms; more than 0\.2 is flagged for review$/)
  })

  it('reputation - a flag closes when its window has passed; the next fast move raises a new one', async (t) => {
    const clock = { t: Date.now() }
    const relay = await start(t, { reputation: { flagWindowMs: 300 } }, () => clock.t)
    const subject = await anonymous(relay, 'subject')
    const [a, b] = await Promise.all(['a', 'b'].map(async n => await anonymous(relay, n)))
    await rateOk(relay, a!, subject, { score: 1 })
    assert.equal((await rateOk(relay, b!, subject, { score: 0 })).reputation.flagged, true)
    clock.t += 400
    assert.equal((await reputation(relay, subject)).flagged, false)
    assert.equal((await flags(relay, subject)).length, 1, 'a closed flag stays in the history')
    assert.equal((await rateOk(relay, b!, subject, { score: 1 })).reputation.flagged, true)
    const got = await flags(relay, subject)
    assert.equal(got.length, 2)
    assert.deepEqual(got.map(f => [f.from, f.to]), [[0.5, 1], [1, 0.5]], 'newest first')
  })
})

describe('reputation - 24 hours with an injected clock (in process)', () => {
  /** The relay's HTTP app over a memory store, with the registry's clock at `clock.t`. */
  function app (): { request: (who: Identity, path: string, body: unknown) => Promise<{ status: number, json: Json }>, get: (path: string) => Promise<Json>, store: Store, clock: { t: number } } {
    const clock = { t: 1_763_900_000_000 }
    const store = memoryStore()
    const a = httpApp({ log: silentLogger, store, healthy: () => true, info: async () => ({}), now: () => clock.t })
    return {
      store,
      clock,
      request: async (who, path, body) => {
        const text = JSON.stringify(body)
        const res = await a.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(who, 'POST', path, text, clock.t) }, body: text })
        return { status: res.status, json: await res.json() as Json }
      },
      get: async (path) => await (await a.request(path)).json() as Json,
    }
  }

  it('reputation - with the default 24-hour window: 1 → 0.8 → 0.6 within 23 hours is flagged, the same steps 25 hours apart are not', async () => {
    for (const gap of [11.5 * HOUR, 25 * HOUR]) {
      const h = app()
      const [subject, a, b, c] = ['s', 'a', 'b', 'c'].map(n => createIdentity(n)) as [Identity, Identity, Identity, Identity]
      for (const x of [subject, a, b, c]) await h.store.upsertAgent({ amid: x.amid, seenAt: h.clock.t })
      const path = `/api/v1/agents/${subject.amid}`
      const post = async (who: Identity, score: number): Promise<Json> => {
        const r = await h.request(who, `${path}/feedback`, { score })
        assert.equal(r.status, 200, JSON.stringify(r.json))
        return r.json
      }
      const t0 = h.clock.t
      assert.equal((await post(a, 1)).reputation.score, 1)
      h.clock.t += gap
      assert.equal((await post(b, 0.6)).reputation.score, 0.8)
      h.clock.t += gap
      const r = await post(c, 0.2)
      assert.equal(r.reputation.score, 0.6)
      const got = (await h.get(`${path}/reputation/flags`)).flags as Json[]
      if (gap > 24 * HOUR) {
        assert.equal(r.reputation.flagged, false)
        assert.deepEqual(got, [])
        continue
      }
      assert.equal(r.reputation.flagged, true)
      assert.deepEqual(got, [{
        at: h.clock.t, from: 1, from_at: t0, to: 0.6, to_at: h.clock.t,
        reason: 'the score moved by 0.4 (from 1 to 0.6) within 24 h; more than 0.2 is flagged for review',
      }])
      // open for 24 hours, then closed (and kept)
      h.clock.t += 24 * HOUR
      assert.equal((await h.get(`${path}/reputation`)).flagged, true)
      h.clock.t += 1
      assert.equal((await h.get(`${path}/reputation`)).flagged, false)
      assert.equal(((await h.get(`${path}/reputation/flags`)).flags as Json[]).length, 1)
    }
  })

  it('reputation - the rate limit is per rater per sliding hour, answered with Retry-After', async () => {
    const h = app()
    const [subject, other, a, b] = ['s', 'o', 'a', 'b'].map(n => createIdentity(n))
    for (const x of [subject, other, a, b]) await h.store.upsertAgent({ amid: x!.amid, seenAt: h.clock.t })
    const post = async (who: Identity, to: Identity): Promise<number> => (await h.request(who, `/api/v1/agents/${to.amid}/feedback`, { score: 0.5 })).status
    const start = h.clock.t
    for (let i = 0; i < 60; i++) { assert.equal(await post(a!, i % 2 === 0 ? subject! : other!), 200); h.clock.t += 1000 }
    assert.equal(await post(a!, subject!), 429)
    assert.equal(await post(b!, subject!), 200, 'another rater is not limited')
    h.clock.t = start + HOUR // the first write is an hour old: one more is allowed
    assert.equal(await post(a!, subject!), 200)
    assert.equal(await post(a!, subject!), 429)
  })
})

describe('reputation - refusals', () => {
  it('reputation - self-rating, unregistered rater, unknown subject, bad body, unsigned: refused, nothing stored', async (t) => {
    const relay = await start(t)
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    await rateOk(relay, alice, bob, { score: 0.7, comment: 'fine' })
    await rateOk(relay, bob, alice, { score: 0.4 })
    const stranger = createIdentity('stranger')
    const nobody = createIdentity('nobody')
    const before = await snapshot(relay, [alice, bob])
    const path = `/api/v1/agents/${bob.amid}/feedback`

    expectError(await rate(relay, bob, bob, { score: 1 }), 403, ErrorCode.Forbidden, /cannot rate itself/)
    expectError(await rate(relay, stranger, bob, { score: 1 }), 403, ErrorCode.Forbidden, /only registered agents may give feedback/)
    expectError(await rate(relay, alice, nobody, { score: 1 }), 404, ErrorCode.NotFound, new RegExp(`no agent ${nobody.amid}`))
    expectError(await rate(relay, alice, 'not-an-amid', { score: 1 }), 400, ErrorCode.InvalidArgument, /not an AMID/)
    for (const [body, field] of [
      [{ score: 1.5 }, /^invalid request: field score: /],
      [{ score: -0.1 }, /field score/],
      [{ score: '0.5' }, /field score/],
      [{}, /field score/],
      [{ score: 0.5, comment: 'x'.repeat(501) }, /field comment/],
      [{ score: 0.5, comment: 7 }, /field comment/],
      [{ score: 0.5, interaction: 'i'.repeat(129) }, /field interaction/],
      [{ score: 0.5, interaction: '' }, /field interaction/],
      [{ score: 0.5, stars: 5 }, /field stars: Unexpected property/],
      [[0.5], /the body: Expected object/],
    ] as const) {
      expectError(await rate(relay, alice, bob, body), 400, ErrorCode.InvalidArgument, field)
    }
    expectError(await rate(relay, alice, bob, '{"score":'), 400, ErrorCode.BadJson)
    expectError(await call(relay, undefined, 'POST', path, { score: 1 }), 401, ErrorCode.NotAuthenticated)
    // a signature over another body
    const headers = { 'content-type': 'application/json', ...signRequest(alice, 'POST', path, JSON.stringify({ score: 0 })) }
    const res = await fetch(relay.url + path, { method: 'POST', headers, body: JSON.stringify({ score: 1 }) })
    expectError({ status: res.status, json: await res.json() as Json }, 401, ErrorCode.AuthFailed)
    expectError(await call(relay, undefined, 'GET', `/api/v1/agents/${nobody.amid}/reputation`), 404, ErrorCode.NotFound)
    expectError(await call(relay, undefined, 'GET', `/api/v1/agents/${nobody.amid}/reputation/flags`), 404, ErrorCode.NotFound)
    expectError(await call(relay, undefined, 'GET', '/api/v1/agents/xyz/reputation'), 400, ErrorCode.InvalidArgument)

    assert.deepEqual(await snapshot(relay, [alice, bob]), before)
    assert.equal(await relay.store.getAgent(stranger.amid), undefined, 'a refused rater is not registered by it')
    // exactly 500 characters and 128-character interaction ids are fine
    assert.equal((await rate(relay, alice, bob, { score: 0.5, comment: 'x'.repeat(500), interaction: 'i'.repeat(128) })).status, 200)
  })

  it('reputation - past maxFeedbackPerHour a rater gets 429 AM_ERR_RATE_LIMITED with Retry-After, and nothing is stored', async (t) => {
    const relay = await start(t, { reputation: { maxFeedbackPerHour: 3 } })
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    const carol = await anonymous(relay, 'carol')
    await rateOk(relay, alice, bob, { score: 0.1 })
    await rateOk(relay, alice, carol, { score: 0.2 })
    await rateOk(relay, alice, bob, { score: 0.3 }) // a replacement counts too
    const before = await snapshot(relay, [alice, bob, carol])
    const r = await rate(relay, alice, bob, { score: 0.9 })
    expectError(r, 429, ErrorCode.RateLimited, /3 feedback in the last hour.*try again in \d+ s/)
    const retry = Number(r.headers.get('retry-after'))
    assert.ok(Number.isInteger(retry) && retry > 3590 && retry <= 3600, `Retry-After ${r.headers.get('retry-after')}`)
    expectError(await rate(relay, alice, carol, { score: 0.9 }), 429, ErrorCode.RateLimited)
    assert.deepEqual(await snapshot(relay, [alice, bob, carol]), before)
    // refusals of other kinds do not use up the allowance of another rater
    expectError(await rate(relay, bob, bob, { score: 1 }), 403, ErrorCode.Forbidden)
    expectError(await rate(relay, bob, alice, { score: 2 }), 400, ErrorCode.InvalidArgument)
    for (let i = 0; i < 3; i++) await rateOk(relay, bob, alice, { score: i / 2 })
    expectError(await rate(relay, bob, alice, { score: 1 }), 429, ErrorCode.RateLimited)
  })
})

describe('reputation - persistence and configuration', () => {
  it('reputation - feedback, score history and flags survive a relay restart', async (t) => {
    const dir = tempDir()
    t.after(() => { dir.cleanup() })
    const relay = await startRelay({ dataDir: dir.path })
    let alice: Identity, bob: Identity, carol: Identity
    let rep: Json, got: Json[]
    try {
      [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async n => await anonymous(relay, n))) as [Identity, Identity, Identity]
      await rateOk(relay, alice, bob, { score: 1, comment: 'great' })
      await rateOk(relay, carol, bob, { score: 0 })
      rep = await reputation(relay, bob)
      got = await flags(relay, bob)
      assert.equal(got.length, 1)
    } finally {
      await relay.close()
    }
    const again = await start(t, { dataDir: dir.path })
    assert.deepEqual(await reputation(again, bob), rep)
    assert.deepEqual(await flags(again, bob), got)
    assert.equal((await again.store.getFeedback(alice.amid, bob.amid))?.comment, 'great')
    assert.equal((await rateOk(again, alice, bob, { score: 0.5 })).replaced, true)
  })

  it('reputation - bad reputation options are refused with AM_ERR_INVALID_CONFIG naming the option', async () => {
    const invalid = (reputation: unknown, field: string, message: RegExp): void => {
      assert.throws(() => relayOptions({ reputation } as RelayInit), (err: unknown) => {
        assert.ok(err instanceof AgentMeshError)
        assert.equal(err.code, ErrorCode.InvalidConfig)
        assert.ok(err.message.startsWith(`relay option ${field} `), err.message)
        assert.match(err.message, message)
        return true
      })
    }
    for (const k of ['anonymousWeight', 'mutualDiscount', 'flagDelta']) {
      invalid({ [k]: 1.5 }, `reputation.${k}`, /must be a number from 0 to 1, got 1\.5$/)
      invalid({ [k]: -0.1 }, `reputation.${k}`, /got -0\.1$/)
      invalid({ [k]: '0.5' }, `reputation.${k}`, /got "0\.5"$/)
      invalid({ [k]: Number.NaN }, `reputation.${k}`, /got null$/)
    }
    invalid({ flagWindowMs: 0 }, 'reputation.flagWindowMs', /must be a positive integer \(ms\), got 0$/)
    invalid({ flagWindowMs: 1.5 }, 'reputation.flagWindowMs', /got 1\.5$/)
    invalid({ maxFeedbackPerHour: 0 }, 'reputation.maxFeedbackPerHour', /must be an integer from 1 to 10000, got 0$/)
    invalid({ maxFeedbackPerHour: 2.5 }, 'reputation.maxFeedbackPerHour', /got 2\.5$/)
    invalid({ maxFeedbackPerHour: 10_001 }, 'reputation.maxFeedbackPerHour', /got 10001$/)
    invalid({ anonymousWieght: 0.5 }, 'reputation.anonymousWieght', /is not an option; the options are anonymousWeight, mutualDiscount, flagDelta, flagWindowMs, maxFeedbackPerHour$/)
    invalid(0.5, 'reputation', /must be an object/)
    invalid([], 'reputation', /must be an object/)
    invalid(null, 'reputation', /must be an object/)

    assert.deepEqual(relayOptions().reputation, { anonymousWeight: 0.5, mutualDiscount: 0.8, flagDelta: 0.2, flagWindowMs: 86_400_000, maxFeedbackPerHour: 60 })
    assert.deepEqual(relayOptions({ reputation: { flagDelta: 0, anonymousWeight: 1, mutualDiscount: 0, maxFeedbackPerHour: 10_000, flagWindowMs: 1 } }).reputation,
      { anonymousWeight: 1, mutualDiscount: 0, flagDelta: 0, flagWindowMs: 1, maxFeedbackPerHour: 10_000 })
    await assert.rejects(createRelay({ port: 0, logger: silentLogger, reputation: { mutualDiscount: 2 } }),
      (err: unknown) => AgentMeshError.is(err, ErrorCode.InvalidConfig) && /reputation\.mutualDiscount/.test((err as Error).message))
  })

  it('reputation - with all weights 0 the ratings count but give no score', async (t) => {
    const relay = await start(t, { reputation: { anonymousWeight: 0 } })
    const alice = await anonymous(relay, 'alice')
    const bob = await anonymous(relay, 'bob')
    const r = await rateOk(relay, alice, bob, { score: 1 })
    assert.deepEqual([r.reputation.score, r.reputation.ratings, r.reputation.weight_total], [null, 1, 0])
  })
})
