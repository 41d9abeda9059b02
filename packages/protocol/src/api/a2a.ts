/**
 * The A2A bridge's REST contract and bounds (docs/protocol.md §24): whether an agent takes A2A
 * requests through the relay (off unless the agent turns it on), and the limits of the bridge's
 * own endpoints (`/a2a/<agent>/.well-known/agent-card.json`, `POST /a2a/<agent>`), which speak A2A
 * 1.0 (JSON-RPC), not this API.
 */
import { Type, type Static } from '@sinclair/typebox'

/** The task command A2A messages reach an agent as (`tasks(conn).onCommand('a2a', …)`). §24.3 */
export const A2A_COMMAND = 'a2a'
/** Largest JSON-RPC request body the bridge reads, in bytes. §24.5 */
export const MAX_A2A_BODY_BYTES = 64 * 1024
/** A2A tasks one agent may have running through the bridge at once, per relay node. §24.5 */
export const DEFAULT_A2A_TASKS_PER_AGENT = 16
/** Open A2A requests (blocking calls and SSE streams) per relay node. §24.5 */
export const DEFAULT_A2A_OPEN_REQUESTS = 256
/** Longest an A2A request or stream stays open, in ms; the task goes on and GetTask reads it. §24.5 */
export const DEFAULT_A2A_STREAM_MS = 10 * 60 * 1000
/** A2A views (context id, the A2A message history) the relay keeps in memory. §24.4 */
export const MAX_A2A_TASK_VIEWS = 10_000

export const A2aParams = Type.Object({ amid: Type.String({ minLength: 1, maxLength: 128, description: 'the agent\'s AMID (an agent sets its own)' }) })

export const A2aSettingBody = Type.Object({
  enabled: Type.Boolean({ description: 'true: the relay serves an A2A agent card and a JSON-RPC endpoint for this agent; false: it answers 404 (AM_ERR_A2A_NOT_ENABLED)' }),
}, { additionalProperties: false })

export const A2aSetting = Type.Object({
  amid: Type.String(),
  enabled: Type.Boolean(),
  /** where A2A clients find the agent: its base URL on this relay */
  url: Type.String({ description: 'the agent\'s A2A base URL on this relay (JSON-RPC endpoint); its card is at <url>/.well-known/agent-card.json' }),
  card_url: Type.String({ description: 'the agent card\'s URL' }),
  e2ee: Type.Literal(false, { description: 'always false: end-to-end encryption ends at the bridge (the relay reads A2A messages and results)' }),
})
export type A2aSetting = Static<typeof A2aSetting>
