/**
 * @packageDocumentation
 * The swarm simulator (docs/swarm.md, "The simulator"). Being written: `simulate(scenario)` lands here.
 */
export {}
