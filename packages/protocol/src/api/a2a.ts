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
  enabled: Type.Boolean({ description: 'true: the relay serves an A2A agent card and a JSON-RPC endpoint for this agent; false: it answers 404 (AM_ERR_BRIDGE_NOT_ENABLED)' }),
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

export const A2aAgentParams = Type.Object({ agent: Type.String({ minLength: 1, maxLength: 128, description: 'the agent\'s AMID, or @handle (a bare handle works too)' }) })

export const A2aAgentCard = Type.Object({
  name: Type.String(),
  description: Type.String(),
  supportedInterfaces: Type.Array(Type.Object({ url: Type.String(), protocolBinding: Type.String(), protocolVersion: Type.String() }, { additionalProperties: true })),
  skills: Type.Array(Type.Object({ id: Type.String(), name: Type.String() }, { additionalProperties: true })),
}, { additionalProperties: true, description: 'An A2A 1.0 AgentCard (a2a-protocol.org/v1.0.0/specification), built from the agent\'s registry profile' })

export const A2aRpcRequest = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Null()])),
  method: Type.String({ description: 'SendMessage, SendStreamingMessage, GetTask, ListTasks, CancelTask or SubscribeToTask' }),
  params: Type.Optional(Type.Object({}, { additionalProperties: true })),
}, { additionalProperties: true, description: 'A JSON-RPC 2.0 request of the A2A 1.0 JSON-RPC binding' })

export const A2aRpcResponse = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Union([Type.String(), Type.Number(), Type.Null()]),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.Object({
    code: Type.Integer({ description: 'the JSON-RPC / A2A error code' }),
    message: Type.String(),
    data: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { description: 'A2A ErrorInfo details; one with domain "agentmesh" carries AgentMesh\'s code as its reason' })),
  })),
}, { description: 'A JSON-RPC 2.0 response; for SendStreamingMessage and SubscribeToTask a text/event-stream of them' })
