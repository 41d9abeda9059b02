/**
 * @packageDocumentation
 * The AgentMesh client: `connect()` gives a connection that survives relay restarts, keeps
 * its sends in an on-disk outbox until the relay has persisted them, and hands every
 * message to the application once.
 *
 * @example
 * ```ts
 * import { connect } from '@agentmesh/client'
 * const conn = await connect({ server: 'ws://127.0.0.1:7777', home: './alice' })
 * await conn.send(bobAmid, { text: 'hello' })
 * for await (const msg of conn.messages()) console.log(msg.from, msg.text)
 * ```
 */
export { connect, relayUrl, defaultServer, STATE_FILE } from './connect.ts'
export { memoryState, sqliteState } from './state.ts'
export type { ClientState, OutboxEntry } from './state.ts'
export type { Connection, ConnectOptions, Message, SendOptions, SendResult, Status } from './types.ts'
export { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
