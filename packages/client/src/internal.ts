export * from './index.ts'
// the seam features use to see a connection's deliveries (tasks(conn) does)
export { inbound, MAX_INBOUND_STAGES } from './inbound.ts'
export type { Inbound, InboundStage, InboundContext, Arrival, StageResult } from './inbound.ts'
export { RELAY_TYPES } from './stages.ts'
// the end-to-end layer over a state (tests seed an old home's random exchange key with it)
export { E2ee } from './e2ee.ts'
// sealed application records in the agent's state (the owner's console keeps its DM history there)
export { sealedRecords } from './sealed-records.ts'
export type { SealedRecords } from './sealed-records.ts'
// the direct links of a connection made with connect({ p2p }) (tests cut them)
export { directPathOf } from './connection.ts'
export type { DirectPath } from './connection.ts'
