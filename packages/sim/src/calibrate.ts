/**
 * The figures a simulated run and a real-node run are compared on (docs/swarm.md, "Calibration"):
 * per message, the rounds (hops) to full delivery and to 99.9%; per node, the duplicates and the
 * full messages received per message. A real runner fills the same shape from its nodes' hop
 * counts and duplicate counters, and `compareCalibration` puts the two side by side.
 */
import type { SimReport } from './simulate.ts'
import type { CalibrationFigures } from '@agentmesh/swarm'
export type { CalibrationFigures }

export function calibrationFigures (r: SimReport): CalibrationFigures {
  return {
    source: 'sim',
    nodes: r.honestNodes,
    messages: r.messages.honest,
    roundsFull: r.perMessage.map(m => m.roundsFull),
    rounds999: r.perMessage.map(m => m.rounds999),
    rounds: { p50: r.rounds.p50, p90: r.rounds.p90, p99: r.rounds.p99, max: r.rounds.max },
    duplicatesPerNodePerMessage: r.traffic.duplicatesPerNodePerMessage,
    messagesPerNodePerMessage: r.traffic.messagesPerNodePerMessage,
    complete: r.delivery.complete,
  }
}

export interface CalibrationComparison {
  /** |sim − real| of the median and the maximum rounds */
  roundsP50Delta: number
  roundsMaxDelta: number
  /** relative difference of duplicates per node per message, (sim − real) / real */
  duplicatesRelative: number
  /** the tolerance stated in docs/swarm.md: rounds within ±2, duplicates within ±25% */
  withinTolerance: boolean
}

export const CALIBRATION_TOLERANCE = Object.freeze({ rounds: 2, duplicatesRelative: 0.25 })

export function compareCalibration (sim: CalibrationFigures, real: CalibrationFigures): CalibrationComparison {
  const roundsP50Delta = Math.abs(sim.rounds.p50 - real.rounds.p50)
  const roundsMaxDelta = Math.abs(sim.rounds.max - real.rounds.max)
  const duplicatesRelative = real.duplicatesPerNodePerMessage === 0
    ? (sim.duplicatesPerNodePerMessage === 0 ? 0 : Infinity)
    : (sim.duplicatesPerNodePerMessage - real.duplicatesPerNodePerMessage) / real.duplicatesPerNodePerMessage
  return {
    roundsP50Delta,
    roundsMaxDelta,
    duplicatesRelative: Math.round(duplicatesRelative * 1000) / 1000,
    withinTolerance: roundsP50Delta <= CALIBRATION_TOLERANCE.rounds && roundsMaxDelta <= CALIBRATION_TOLERANCE.rounds &&
      Math.abs(duplicatesRelative) <= CALIBRATION_TOLERANCE.duplicatesRelative,
  }
}
