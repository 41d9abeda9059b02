/**
 * The figures a swarm run is compared on, whoever ran it: the simulator (`@agentmesh/sim`,
 * `calibrationFigures`) or real libp2p nodes (`net/run-real.ts`). One shape, so the two sides of
 * a calibration cannot drift apart (docs/swarm.md, "Calibration").
 */
export interface CalibrationFigures {
  source: 'sim' | 'real'
  nodes: number
  messages: number
  /** per message: hops until every node had it (null: some never did) */
  roundsFull: Array<number | null>
  /** per message: hops until 99.9% had it */
  rounds999: Array<number | null>
  /** hops of every first delivery */
  rounds: { p50: number, p90: number, p99: number, max: number }
  duplicatesPerNodePerMessage: number
  messagesPerNodePerMessage: number
  /** every node got every message, once */
  complete: boolean
}
