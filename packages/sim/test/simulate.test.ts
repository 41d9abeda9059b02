import { it } from 'node:test'
import assert from 'node:assert/strict'
import { simulate, calibrationFigures, compareCalibration } from '../src/index.ts'

it('sim - 200 honest nodes: every node gets every message exactly once, within the goal', () => {
  const r = simulate({ nodes: 200, seed: 7 })
  assert.equal(r.messages.honest, 8)
  assert.deepEqual(r.delivery, { expected: 1600, delivered: 1600, missed: 0, duplicateDeliveries: 0, complete: true })
  assert.equal(r.perMessage.length, 8)
  for (const m of r.perMessage) {
    assert.equal(m.delivered, 200)
    assert.ok(m.roundsFull !== null && m.roundsFull >= 2 && m.roundsFull <= r.convergence.goalRounds, `rounds ${String(m.roundsFull)}`)
    assert.equal(m.timeFullMs, (m.roundsFull ?? 0) * 20, 'no jitter: time is hops × 20 ms')
  }
  // every copy beyond the first is counted as a duplicate: copies = 1 + duplicates
  assert.ok(Math.abs(r.traffic.messagesPerNodePerMessage - 1 - r.traffic.duplicatesPerNodePerMessage) < 0.02)
  assert.ok(r.traffic.duplicatesPerNodePerMessage > 1, 'eager push over a mesh of ~6 brings duplicates')
  assert.equal(r.validator['accept:ok'], 1600)
  assert.equal(r.signatureChecks, 8, 'each distinct message verified once')
})

it('sim - the same seed gives the same run; another seed another one', () => {
  const strip = (r: ReturnType<typeof simulate>): unknown => ({ ...r, sim: undefined })
  const a = simulate({ nodes: 300, seed: 3, byzantine: 0.2, floodCount: 40 })
  const b = simulate({ nodes: 300, seed: 3, byzantine: 0.2, floodCount: 40 })
  const c = simulate({ nodes: 300, seed: 4, byzantine: 0.2, floodCount: 40 })
  assert.deepEqual(strip(a), strip(b))
  assert.notDeepEqual(strip(a), strip(c))
})

it('sim - 30% Byzantine (silent, forging, flooding, eclipsing): every honest node gets every honest message, no forgery accepted', () => {
  const r = simulate({ nodes: 400, seed: 11, byzantine: 0.3, floodCount: 60 })
  assert.equal(r.honestNodes, 280)
  assert.deepEqual(r.byzantineNodes, { silent: 30, forging: 30, flooding: 30, eclipsing: 30 })
  assert.equal(r.delivery.missed, 0)
  assert.equal(r.delivery.duplicateDeliveries, 0)
  assert.equal(r.delivery.complete, true)
  assert.equal(r.byzantine.forgedAccepted, 0)
  assert.ok(r.byzantine.forgedRejected > 0, 'the forgers did try')
  assert.equal(r.validator['reject:bad-signature'], r.byzantine.forgedRejected)
  assert.ok(r.byzantine.prunedByzantine > 0, 'scoring pruned Byzantine peers')
  assert.equal(r.byzantine.prunedByScore, r.byzantine.prunedByzantine, 'no honest link was pruned')
  assert.ok(r.byzantine.eclipseVictims >= 1)
  assert.equal(r.byzantine.victimsMissed, 0)
  // the flooders' messages pass only within the per-author bucket (burst 100, 20/s): at most 60 each here, all within the burst
  assert.ok(r.byzantine.floodAcceptedPerNode <= 4 * 60)
})

it('sim - the per-author rate bounds a flood: beyond the burst the first hop rejects it', () => {
  const r = simulate({ nodes: 200, seed: 5, byzantine: 0.05, byzantineKinds: ['flooding'], floodAuthors: 1, floodCount: 100, authorBurst: 10, authorRatePerS: 1 })
  assert.ok(r.byzantine.floodAcceptedPerNode <= 11, `accepted ${r.byzantine.floodAcceptedPerNode}`)
  assert.ok(r.byzantine.floodAcceptedPerNode >= 9)
  assert.ok((r.validator['reject:rate'] ?? 0) > 0, 'the flooder\'s own peers rejected (and penalised) it')
  assert.equal(r.delivery.complete, true)
})

it('sim - a partition: both sides keep working, the heal reconciles, every message delivered once', () => {
  const r = simulate({ nodes: 300, seed: 2, partition: { cutAtMs: 400, healAtMs: 3000 }, messagesPerPublisher: 3, publishIntervalMs: 500 })
  assert.ok(r.partition !== undefined)
  assert.ok(r.partition.cutLinks > 0)
  assert.ok(r.partition.detectedNodes > 0)
  assert.ok(r.partition.reconciledMessages > 0, 'messages crossed through reconciliation')
  assert.deepEqual(r.delivery, { expected: 12 * 300, delivered: 12 * 300, missed: 0, duplicateDeliveries: 0, complete: true })
  // messages published during the cut reached the other side only after the heal (3000 ms)
  const during = r.perMessage.filter(m => m.publishedAtMs > 400)
  assert.ok(during.length > 0)
  for (const m of during) assert.ok((m.timeFullMs ?? 0) >= 3000 - m.publishedAtMs, `message ${m.index} complete at ${String(m.timeFullMs)}`)
})

it('sim - regions with inter-region links and aggregators converge, with loss and churn', () => {
  const r = simulate({ nodes: 4000, seed: 9, regions: 40, aggregateAbove: 16, loss: 0.02, churn: 0.02, messagesPerPublisher: 3, publishIntervalMs: 300 })
  assert.equal(r.regions, 40)
  assert.ok(r.groups > 1)
  assert.equal(r.delivery.missed, 0)
  assert.equal(r.delivery.duplicateDeliveries, 0)
  assert.ok(r.churn !== undefined && r.churn.wentDown > 0)
  assert.ok(r.traffic.iwant > 0, 'lazy gossip repaired losses')
})

it('sim - plain flooding delivers too, with more copies per node than the gossipsub mesh', () => {
  const g = simulate({ nodes: 500, seed: 1 })
  const f = simulate({ nodes: 500, seed: 1, mode: 'flood' })
  assert.equal(f.delivery.complete, true)
  assert.ok(f.traffic.messagesPerNodePerMessage > g.traffic.messagesPerNodePerMessage + 2)
})

it('sim - calibration figures and their comparison', () => {
  const r = simulate({ nodes: 200, seed: 7 })
  const c = calibrationFigures(r)
  assert.equal(c.nodes, 200)
  assert.equal(c.roundsFull.length, 8)
  const same = compareCalibration(c, { ...c, source: 'real' })
  assert.deepEqual(same, { roundsP50Delta: 0, roundsMaxDelta: 0, duplicatesRelative: 0, withinTolerance: true })
  const off = compareCalibration(c, { ...c, source: 'real', rounds: { ...c.rounds, max: c.rounds.max + 3 } })
  assert.equal(off.withinTolerance, false)
})

it('sim - refuses a scenario out of range, naming the field', () => {
  assert.throws(() => simulate({ nodes: 5 }), /nodes must be an integer from 10/)
  assert.throws(() => simulate({ byzantine: 0.9 }), /byzantine must be a number from 0 to 0.5/)
  assert.throws(() => simulate({ byzantineKinds: ['sneaky' as 'silent'], byzantine: 0.1 }), /unknown Byzantine kind/)
})

it('sim - excluding known holders and a processing delay: still complete, fewer duplicates, later by the delay per hop', () => {
  const base = simulate({ nodes: 500, seed: 6 })
  const ex = simulate({ nodes: 500, seed: 6, excludeHolders: true, processingMs: 5 })
  assert.equal(ex.delivery.complete, true)
  assert.ok(ex.traffic.duplicatesPerNodePerMessage < base.traffic.duplicatesPerNodePerMessage - 0.5, `${ex.traffic.duplicatesPerNodePerMessage} vs ${base.traffic.duplicatesPerNodePerMessage}`)
  // the publisher pushes at once and every relay after it waits 5 ms: the median first delivery
  // (by eager push) moves by 5 ms per relay on its path
  assert.equal(ex.timeMs.p50, ex.rounds.p50 * 20 + (ex.rounds.p50 - 1) * 5)
  assert.ok(ex.timeMs.p50 > base.timeMs.p50)
})

it('sim - the calibration topology (each node dials 5, flood publish): complete; the publisher reaches all its connections in one hop', () => {
  const r = simulate({ nodes: 200, seed: 1, dialDegree: 5, floodPublish: true })
  assert.equal(r.delivery.complete, true)
  const mesh = simulate({ nodes: 200, seed: 1, dialDegree: 5, floodPublish: false })
  assert.equal(mesh.delivery.complete, true)
  // more first-hop receivers with flood publish: more nodes at hop 1, so the median is not later
  assert.ok(r.rounds.p50 <= mesh.rounds.p50)
  assert.ok(r.traffic.ihave > 0)
})
