/**
 * @packageDocumentation
 * The part of the client that runs in a browser (`@agentmesh/client/browser`): the relay's REST
 * API over `fetch` with signing given as a function, the memory state store, tasks over a
 * connection, the untrusted-content helpers, and the types. It imports nothing Node-only (no
 * `node:*`, `ws` or `better-sqlite3`); test/browser.test.ts bundles it for the browser to keep it so.
 */
export { apiRequest, httpRequest, restCall, DEFAULT_API_TIMEOUT_MS } from './api.ts'
export type { ApiRequestInit, RequestSigner, RestRequest } from './api.ts'
export { memoryState } from './state.ts'
export type { ClientState, OutboxEntry } from './state.ts'
export { tasks, FINAL_TASK_STATES } from './tasks.ts'
export type { Tasks, TaskInfo, TaskRequest, TaskState, CommandHandler } from './tasks.ts'
export type { Chat, RoomInfo, RoomMember, HistoryMessage, PresenceEntry } from './chat.ts'
export { fenceUntrusted, isSlashCommand, parseSlashCommand, commandAllowed, UNTRUSTED_NOTICE } from './untrusted.ts'
export type { Provenance, FenceOptions, SlashCommand } from './untrusted.ts'
export type { WebSocketConstructor, WebSocketLike } from './transport.ts'
export type { Connection, ConnectOptions, Message, SendOptions, SendResult, Status } from './types.ts'
export { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
