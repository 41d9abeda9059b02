/**
 * The reputation slice: standing ratings, score history and flags (docs/protocol.md §15).
 * Part of the store compliance suite; `storeSuite` runs it with the others.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FeedbackRecord, ReputationFlag, ReputationStore } from '@agentmesh/store'
import { withStoreOf, T0, ALICE, BOB, CAROL, type SuiteInit } from './fixtures.ts'

/** What the cases call: the slice only. */
export type ReputationSuiteStore = ReputationStore

export function reputationSuite (init: SuiteInit<ReputationSuiteStore>): void {
  const withStore = withStoreOf(init)
  const { reopen } = init

  describe(`store compliance: ${init.name}: reputation`, () => {
    describe('reputation', () => {
      const fb = (rater: string, subject: string, score: number, over: Partial<FeedbackRecord> = {}): FeedbackRecord =>
        ({ rater, subject, score, comment: `from ${rater}`, interaction: 'task-1', at: T0, ...over })
      const flag = (at: number, over: Partial<ReputationFlag> = {}): ReputationFlag =>
        ({ at, from: 0.9, fromAt: at - 10, to: 0.5, toAt: at, reason: `moved at ${at}`, ...over })

      it('store - feedback round-trips; a second one from the same rater replaces the first and answers it', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.equal(await store.getFeedback(ALICE, BOB), undefined)
          assert.deepEqual(await store.putFeedback(fb(ALICE, BOB, 0.75)), {})
          assert.deepEqual(await store.getFeedback(ALICE, BOB), fb(ALICE, BOB, 0.75))
          assert.equal(await store.getFeedback(BOB, ALICE), undefined, 'a rating has a direction')
          const plain: FeedbackRecord = { rater: ALICE, subject: BOB, score: 0, at: T0 + 5 }
          assert.deepEqual(await store.putFeedback(plain), { previous: fb(ALICE, BOB, 0.75) })
          const got = await store.getFeedback(ALICE, BOB)
          assert.deepEqual(got, plain, 'optional fields left out stay out')
          assert.equal(got !== undefined && 'comment' in got, false)
          assert.deepEqual(await store.listFeedbackFor(BOB), [plain], 'one standing rating per rater and subject')
        })
      })

      it('store - the ratings of a subject are listed by rater, those a rater gave by subject; scores keep full precision', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listFeedbackFor(BOB), [])
          assert.deepEqual(await store.listFeedbackBy(ALICE), [])
          await store.putFeedback(fb(CAROL, BOB, 0.1))
          await store.putFeedback(fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }))
          await store.putFeedback(fb(ALICE, CAROL, 1))
          await store.putFeedback(fb(BOB, ALICE, 0.5))
          assert.deepEqual(await store.listFeedbackFor(BOB), [fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }), fb(CAROL, BOB, 0.1)])
          assert.deepEqual(await store.listFeedbackBy(ALICE), [fb(ALICE, BOB, 1 / 3, { comment: 'é 日本 👋🏽 "q" \\ \n' }), fb(ALICE, CAROL, 1)])
          assert.deepEqual(await store.listFeedbackFor(ALICE), [fb(BOB, ALICE, 0.5)])
          assert.deepEqual(await store.listFeedbackBy(CAROL), [fb(CAROL, BOB, 0.1)])
          // a replacement shows in both lists
          await store.putFeedback(fb(ALICE, BOB, 0.9, { at: T0 + 1 }))
          assert.deepEqual((await store.listFeedbackFor(BOB)).map(f => [f.rater, f.score, f.at]), [[ALICE, 0.9, T0 + 1], [CAROL, 0.1, T0]])
          assert.deepEqual((await store.listFeedbackBy(ALICE)).map(f => [f.subject, f.score]), [[BOB, 0.9], [CAROL, 1]])
        })
      })

      it('store - score history: points since a time, with the one in effect at that time; older ones and those beyond max are forgotten', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listScorePoints(BOB, 0), [])
          const keep = (since: number, max = 100): { since: number, max: number } => ({ since, max })
          await store.addScorePoint(BOB, { at: T0, score: 0.5 }, keep(0))
          await store.addScorePoint(BOB, { at: T0 + 10, score: 0.6 }, keep(0))
          await store.addScorePoint(BOB, { at: T0 + 20, score: 0.7 }, keep(0))
          await store.addScorePoint(ALICE, { at: T0 + 5, score: 0.1 }, keep(0))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0, score: 0.5 }, { at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }])
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 10), [{ at: T0, score: 0.5 }, { at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }], 'since is inclusive, plus the one before')
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 15), [{ at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }])
          assert.deepEqual(await store.listScorePoints(BOB, T0 + 99), [{ at: T0 + 20, score: 0.7 }], 'the score in effect stays known')
          assert.deepEqual(await store.listScorePoints(ALICE, 0), [{ at: T0 + 5, score: 0.1 }])
          // adding with a later `since` forgets what came before it, except the score in effect then
          await store.addScorePoint(BOB, { at: T0 + 30, score: 0.8 }, keep(T0 + 15))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 10, score: 0.6 }, { at: T0 + 20, score: 0.7 }, { at: T0 + 30, score: 0.8 }])
          await store.addScorePoint(BOB, { at: T0 + 40, score: 0.9 }, keep(T0 + 35))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 30, score: 0.8 }, { at: T0 + 40, score: 0.9 }])
          await store.addScorePoint(BOB, { at: T0 + 45, score: 0.95 }, keep(T0 + 100))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 45, score: 0.95 }], 'all before since: only the newest stays')
          // at most `max`, the newest
          for (let i = 0; i < 5; i++) await store.addScorePoint(BOB, { at: T0 + 50 + i, score: i / 10 }, keep(0, 3))
          assert.deepEqual(await store.listScorePoints(BOB, 0), [{ at: T0 + 52, score: 0.2 }, { at: T0 + 53, score: 0.3 }, { at: T0 + 54, score: 0.4 }])
          assert.deepEqual(await store.listScorePoints(ALICE, 0), [{ at: T0 + 5, score: 0.1 }], 'another agent\'s history is untouched')
          // points of the same time keep the order they were added in
          await store.addScorePoint(CAROL, { at: T0, score: 0.3 }, keep(0))
          await store.addScorePoint(CAROL, { at: T0, score: 0.2 }, keep(0))
          assert.deepEqual((await store.listScorePoints(CAROL, 0)).map(p => p.score), [0.3, 0.2])
        })
      })

      it('store - flags are listed newest first, at most max of them per agent', async () => {
        await withStore(undefined, async ({ store }) => {
          assert.deepEqual(await store.listReputationFlags(BOB), [])
          for (let i = 1; i <= 5; i++) await store.addReputationFlag(BOB, flag(T0 + i), 3)
          await store.addReputationFlag(ALICE, flag(T0, { reason: 'é 日本 "q"', from: 1 / 3 }), 3)
          assert.deepEqual(await store.listReputationFlags(BOB), [flag(T0 + 5), flag(T0 + 4), flag(T0 + 3)])
          assert.deepEqual(await store.listReputationFlags(ALICE), [flag(T0, { reason: 'é 日本 "q"', from: 1 / 3 })])
          assert.deepEqual(await store.listReputationFlags(CAROL), [])
        })
      })

      it('store - concurrent feedback from many raters is all kept', async () => {
        await withStore(undefined, async ({ store }) => {
          const raters = Array.from({ length: 30 }, (_, i) => `am-rater-${String(i).padStart(2, '0')}`)
          await Promise.all(raters.map(async (r, i) => await store.putFeedback(fb(r, BOB, i / 29))))
          assert.deepEqual((await store.listFeedbackFor(BOB)).map(f => f.rater), raters)
        })
      })
    })

    if (reopen !== undefined) {
      describe('durability', () => {
        it('store - feedback, score history and flags survive reopen', async () => {
          await withStore(undefined, async (h) => {
            const f: FeedbackRecord = { rater: ALICE, subject: BOB, score: 0.7, comment: 'good', interaction: 'i-1', at: T0 }
            await h.store.putFeedback(f)
            await h.store.addScorePoint(BOB, { at: T0, score: 0.7 }, { since: 0, max: 10 })
            const fl: ReputationFlag = { at: T0, from: 0.1, fromAt: T0 - 1, to: 0.7, toAt: T0, reason: 'r' }
            await h.store.addReputationFlag(BOB, fl, 10)

            h.store = await reopen(h.store)

            assert.deepEqual(await h.store.getFeedback(ALICE, BOB), f)
            assert.deepEqual(await h.store.listFeedbackFor(BOB), [f])
            assert.deepEqual(await h.store.listScorePoints(BOB, 0), [{ at: T0, score: 0.7 }])
            assert.deepEqual(await h.store.listReputationFlags(BOB), [fl])
            assert.deepEqual(await h.store.putFeedback({ ...f, score: 0.2 }), { previous: f }, 'the standing rating is still known')
          })
        })
      })
    }
  })
}
