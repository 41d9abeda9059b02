/**
 * @packageDocumentation
 * The swarm simulator (docs/swarm.md, "The simulator"): `simulate(scenario)` runs a discrete-event
 * model of 10 to 1,000,000 swarm nodes with the real rules of `@agentmesh/swarm` and returns its
 * figures; `calibrationFigures(report)` is the shape a real-node run prints beside it.
 */
export { simulate, TOPIC } from './simulate.ts'
export type { SimReport, MessageFigures, Percentiles } from './simulate.ts'
export { DEFAULT_SCENARIO, SCENARIOS, BYZANTINE_KINDS, checkScenario, regionCount } from './scenario.ts'
export type { Scenario, ByzantineKind } from './scenario.ts'
export { calibrationFigures, compareCalibration, CALIBRATION_TOLERANCE } from './calibrate.ts'
export type { CalibrationFigures, CalibrationComparison } from './calibrate.ts'
