/**
 * Reputation in the registry (docs/protocol.md §15): signed feedback one agent gives another
 * after an interaction, a score per agent with the anti-gaming rules (anonymous raters weigh less,
 * mutual ratings are discounted), and flags on scores that move too fast, for review.
 *
 * A rater has one standing rating per subject: a new one replaces it. The score is computed from
 * the standing ratings and the raters' tiers *now* (a tier is re-derived on every read, §13.1).
 * The score history behind the flags records the score a feedback write left, for the subject
 * and — when the write makes or changes a mutual pair — for the rater.
 */
import type { Context, Hono } from 'hono'
import { TypeCompiler } from '@sinclair/typebox/compiler'
// the body's schema is the REST contract's (@agentmesh/protocol src/api)
import {
  AgentMeshError, ErrorCode, FeedbackBody,
  type Feedback, type Reputation as ReputationJson, type ReputationFlag as ReputationFlagJson,
} from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import type { FeedbackRecord, ReputationFlag, Store, TrustTier } from '@agentmesh/store'
import { amidParam, invalid } from './registry.ts'
import { answer } from './rest.ts'

/** The reputation rules a relay applies; every one is a relay option (`reputation: {…}`). */
export interface ReputationOptions {
  /** Weight of a rating by an agent whose tier is anonymous (0 to 1). @default 0.5 */
  anonymousWeight: number
  /** Discount on a rating when the subject has rated the rater too (0 to 1). @default 0.2 */
  mutualDiscount: number
  /** A score whose highest and lowest values within the window differ by more than this is flagged (0 to 1). @default 0.2 */
  flagDelta: number
  /** The window of the flag check, ms. @default 24 h */
  flagWindowMs: number
  /** Feedback writes one rater may make per hour. @default 60 */
  maxFeedbackPerHour: number
}

export const DEFAULT_REPUTATION: Readonly<ReputationOptions> = Object.freeze({
  anonymousWeight: 0.5,
  mutualDiscount: 0.8,
  flagDelta: 0.2,
  flagWindowMs: 24 * 60 * 60 * 1000,
  maxFeedbackPerHour: 60,
})

/** Largest `maxFeedbackPerHour`: the limiter keeps one timestamp per write of the last hour. */
export const MAX_FEEDBACK_PER_HOUR_LIMIT = 10_000
/** Flags kept per agent (the newest). */
export const MAX_FLAGS_PER_AGENT = 100
/** Score points kept per agent within the flag window (the newest), besides the one in effect at its start. */
export const MAX_SCORE_POINTS_PER_AGENT = 1_000
/** Raters the in-memory rate limiter tracks at most. */
export const MAX_TRACKED_RATERS = 100_000
/** Scores and weights are answered (and compared) to this many decimals. */
const DECIMALS = 6
const HOUR_MS = 60 * 60 * 1000

const feedbackCheck = TypeCompiler.Compile(FeedbackBody)

/** Validates the `reputation` relay option over the defaults; `fail` builds the error naming the field. */
export function reputationOptions (init: unknown, fail: (field: string, why: string) => Error): ReputationOptions {
  const o: ReputationOptions = { ...DEFAULT_REPUTATION }
  if (init === undefined) return o
  const keys = Object.keys(DEFAULT_REPUTATION)
  if (typeof init !== 'object' || init === null || Array.isArray(init)) {
    throw fail('reputation', `must be an object with any of ${keys.join(', ')}, got ${JSON.stringify(init)}`)
  }
  for (const [k, v] of Object.entries(init)) {
    if (v === undefined) continue
    const field = `reputation.${k}`
    switch (k) {
      case 'anonymousWeight':
      case 'mutualDiscount':
      case 'flagDelta':
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw fail(field, `must be a number from 0 to 1, got ${JSON.stringify(v)}`)
        o[k] = v
        break
      case 'flagWindowMs':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw fail(field, `must be a positive integer (ms), got ${JSON.stringify(v)}`)
        o[k] = v
        break
      case 'maxFeedbackPerHour':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_FEEDBACK_PER_HOUR_LIMIT) {
          throw fail(field, `must be an integer from 1 to ${MAX_FEEDBACK_PER_HOUR_LIMIT}, got ${JSON.stringify(v)}`)
        }
        o[k] = v
        break
      default:
        throw fail(field, `is not an option; the options are ${keys.join(', ')}`)
    }
  }
  return o
}

/** Writes per key in a sliding hour, in memory, bounded by the number of keys tracked. */
export class RateLimiter {
  /** least recently active first: when full of active raters, those are forgotten first */
  private readonly log: LruMap<string, number[]>
  constructor (private readonly max: number, private readonly windowMs = HOUR_MS, private readonly maxKeys = MAX_TRACKED_RATERS) {
    this.log = new LruMap(maxKeys)
  }

  /** Records a write by `key` at `now` and answers 0, or refuses it and answers the ms until one is allowed. */
  take (key: string, now: number): number {
    const times = (this.log.peek(key) ?? []).filter(t => t > now - this.windowMs)
    if (times.length >= this.max) {
      this.log.set(key, times)
      return times[0]! + this.windowMs - now
    }
    times.push(now)
    this.log.delete(key) // re-inserted last: the most recently active
    if (this.log.size >= this.maxKeys) {
      for (const [k, ts] of [...this.log]) if (ts[ts.length - 1]! <= now - this.windowMs) this.log.delete(k)
    }
    this.log.set(key, times)
    return 0
  }
}

const round = (n: number): number => Number(n.toFixed(DECIMALS))

/** An agent's score now. */
export interface Reputation {
  amid: string
  score: number | null
  ratings: number
  weightTotal: number
  updatedAt: number | null
  flagged: boolean
}

export function reputationJson (r: Reputation): ReputationJson {
  return { amid: r.amid, score: r.score, ratings: r.ratings, weight_total: r.weightTotal, updated_at: r.updatedAt, flagged: r.flagged }
}

export function feedbackJson (f: FeedbackRecord): Feedback {
  return {
    rater: f.rater,
    subject: f.subject,
    score: f.score,
    ...(f.comment === undefined ? {} : { comment: f.comment }),
    ...(f.interaction === undefined ? {} : { interaction: f.interaction }),
    at: f.at,
  }
}

export function flagJson (f: ReputationFlag): ReputationFlagJson {
  return { at: f.at, from: f.from, from_at: f.fromAt, to: f.to, to_at: f.toAt, reason: f.reason }
}

export interface ReputationDeps {
  store: Store
  now: () => number
  options: ReputationOptions
  /** Reads and checks a signed request (registry.ts): the signer and the parsed body. */
  signed: (c: Context) => Promise<{ signer: string, body: unknown }>
  /** The tier an agent's published certificate gives at `t` (anonymous without one), as profiles show it. */
  tierOf: (amid: string, t: number) => Promise<TrustTier>
}

function hours (ms: number): string {
  const h = ms / HOUR_MS
  return Number.isInteger(h) ? `${h} h` : `${ms} ms`
}

export function reputationRoutes (app: Hono, deps: ReputationDeps): void {
  const { store, now, options: o, signed, tierOf } = deps
  const limiter = new RateLimiter(o.maxFeedbackPerHour)
  // feedback writes run one at a time: the score, its history and the one-open-flag rule stay consistent
  let tail: Promise<unknown> = Promise.resolve()
  const exclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn)
    tail = run.catch(() => {})
    return await run
  }

  async function registered (amid: string): Promise<void> {
    if (await store.getAgent(amid) === undefined) throw new AgentMeshError(ErrorCode.NotFound, `no agent ${amid} is registered on this relay`)
  }

  /** The latest flag is open while it is at most flagWindowMs old. */
  async function openFlag (amid: string, t: number): Promise<boolean> {
    const [latest] = await store.listReputationFlags(amid)
    return latest !== undefined && latest.at >= t - o.flagWindowMs
  }

  async function reputation (amid: string, t: number): Promise<Reputation> {
    const ratings = await store.listFeedbackFor(amid)
    const rated = new Set((await store.listFeedbackBy(amid)).map(f => f.subject))
    let weightTotal = 0
    let sum = 0
    let updatedAt: number | null = null
    for (const f of ratings) {
      let w = 1
      if (await tierOf(f.rater, t) === 'anonymous') w *= o.anonymousWeight
      if (rated.has(f.rater)) w *= 1 - o.mutualDiscount
      weightTotal += w
      sum += w * f.score
      updatedAt = Math.max(updatedAt ?? f.at, f.at)
    }
    return {
      amid,
      score: weightTotal > 0 ? round(sum / weightTotal) : null,
      ratings: ratings.length,
      weightTotal: round(weightTotal),
      updatedAt,
      flagged: await openFlag(amid, t),
    }
  }

  /** After a write: records the agent's score when it changed, and flags it when it moved too far within the window. */
  async function record (amid: string, t: number): Promise<void> {
    const { score } = await reputation(amid, t)
    if (score === null) return
    const since = t - o.flagWindowMs
    const points = await store.listScorePoints(amid, since)
    if (points.length > 0 && points[points.length - 1]!.score === score) return
    await store.addScorePoint(amid, { at: t, score }, { since, max: MAX_SCORE_POINTS_PER_AGENT })
    // the scores the agent had in the window: the one in effect at its start (held from `since`), those since, the new one
    const window = [...points.map(p => ({ at: Math.max(p.at, since), score: p.score })), { at: t, score }]
    let hi = window[0]!
    let lo = window[0]!
    for (const p of window) {
      if (p.score > hi.score) hi = p
      if (p.score < lo.score) lo = p
    }
    const delta = round(hi.score - lo.score)
    if (delta <= o.flagDelta || await openFlag(amid, t)) return
    const [first, second] = hi.at <= lo.at ? [hi, lo] : [lo, hi]
    await store.addReputationFlag(amid, {
      at: t,
      from: first.score,
      fromAt: first.at,
      to: second.score,
      toAt: second.at,
      reason: `the score moved by ${delta} (from ${first.score} to ${second.score}) within ${hours(o.flagWindowMs)}; more than ${o.flagDelta} is flagged for review`,
    }, MAX_FLAGS_PER_AGENT)
  }

  app.post('/api/v1/agents/:amid/feedback', async (c) => {
    const subject = amidParam(c)
    const { signer: rater, body } = await signed(c)
    if (rater === subject) throw new AgentMeshError(ErrorCode.Forbidden, `${rater} cannot rate itself`)
    if (await store.getAgent(rater) === undefined) {
      throw new AgentMeshError(ErrorCode.Forbidden, `only registered agents may give feedback; ${rater} is not registered`)
    }
    if (!feedbackCheck.Check(body)) throw invalid(feedbackCheck, body)
    const b = body as FeedbackBody
    await registered(subject)
    const wait = limiter.take(rater, now())
    if (wait > 0) {
      const seconds = Math.max(1, Math.ceil(wait / 1000))
      c.header('Retry-After', String(seconds))
      throw new AgentMeshError(ErrorCode.RateLimited, `${rater} gave ${o.maxFeedbackPerHour} feedback in the last hour, the most a rater may; try again in ${seconds} s`)
    }
    return await exclusive(async () => {
      const t = now()
      const feedback: FeedbackRecord = {
        rater,
        subject,
        score: b.score,
        ...(b.comment === undefined ? {} : { comment: b.comment }),
        ...(b.interaction === undefined ? {} : { interaction: b.interaction }),
        at: t,
      }
      const { previous } = await store.putFeedback(feedback)
      await record(subject, t)
      // the subject rated the rater: that rating is (now) mutual, the rater's score may have changed too
      if (await store.getFeedback(subject, rater) !== undefined) await record(rater, t)
      return answer(c, 'postFeedback', { feedback: feedbackJson(feedback), replaced: previous !== undefined, reputation: reputationJson(await reputation(subject, t)) })
    })
  })

  app.get('/api/v1/agents/:amid/reputation', async (c) => {
    const amid = amidParam(c)
    await registered(amid)
    return answer(c, 'getReputation', reputationJson(await reputation(amid, now())))
  })

  app.get('/api/v1/agents/:amid/reputation/flags', async (c) => {
    const amid = amidParam(c)
    await registered(amid)
    return answer(c, 'getReputationFlags', { amid, flags: (await store.listReputationFlags(amid)).map(flagJson) })
  })
}
