/** The reputation slice of the in-memory store: standing ratings, score history, flags. */
import type { FeedbackRecord, ReputationFlag, ReputationStore, ScorePoint } from '../types.ts'
import { byKey, nested } from './util.ts'

/** `live` throws once the store is closed; every call checks it first. */
export function memoryReputation (live: () => void): ReputationStore {
  /** subject → rater → standing rating, and rater → subject → the same record */
  const feedbackFor = new Map<string, Map<string, FeedbackRecord>>()
  const feedbackBy = new Map<string, Map<string, FeedbackRecord>>()
  const scorePoints = new Map<string, ScorePoint[]>()
  const flags = new Map<string, ReputationFlag[]>()

  return {
    async putFeedback (f) {
      live()
      const previous = feedbackFor.get(f.subject)?.get(f.rater)
      const copy = { ...f }
      nested(feedbackFor, f.subject).set(f.rater, copy)
      nested(feedbackBy, f.rater).set(f.subject, copy)
      return previous === undefined ? {} : { previous: { ...previous } }
    },
    async getFeedback (rater, subject) { live(); const f = feedbackFor.get(subject)?.get(rater); return f === undefined ? undefined : { ...f } },
    async listFeedbackFor (subject) {
      live()
      return [...(feedbackFor.get(subject)?.values() ?? [])].sort((a, b) => byKey(a.rater, b.rater)).map(f => ({ ...f }))
    },
    async listFeedbackBy (rater) {
      live()
      return [...(feedbackBy.get(rater)?.values() ?? [])].sort((a, b) => byKey(a.subject, b.subject)).map(f => ({ ...f }))
    },
    async addScorePoint (subject, point, keep) {
      live()
      const points = [...(scorePoints.get(subject) ?? []), { at: point.at, score: point.score }]
      // the newest point before `since` stays: it is the score in effect at `since`
      let older = -1
      for (let i = 0; i < points.length; i++) if (points[i]!.at < keep.since) older = i
      const kept = points.filter((p, i) => p.at >= keep.since || i === older)
      scorePoints.set(subject, kept.slice(Math.max(0, kept.length - keep.max)))
    },
    async listScorePoints (subject, since) {
      live()
      const points = scorePoints.get(subject) ?? []
      let older = -1
      for (let i = 0; i < points.length; i++) if (points[i]!.at < since) older = i
      return points.filter((p, i) => p.at >= since || i === older).map(p => ({ ...p }))
    },
    async addReputationFlag (subject, flag, max) {
      live()
      const list = [...(flags.get(subject) ?? []), { ...flag }]
      flags.set(subject, list.slice(Math.max(0, list.length - max)))
    },
    async listReputationFlags (subject) { live(); return [...(flags.get(subject) ?? [])].reverse().map(f => ({ ...f })) },
  }
}
