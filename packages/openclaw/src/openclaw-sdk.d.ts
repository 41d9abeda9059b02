// The OpenClaw plugin SDK subpaths this plugin imports (openclaw@2026.9.6, the gateway supplies them
// at run time; the project's Node 20 install does not have the package). Typed loosely here: the
// gateway test (test/gateway.test.ts) is what checks the plugin against the real SDK.
declare module 'openclaw/plugin-sdk/channel-core' {
  export function defineChannelPluginEntry<T> (opts: { id: string, name: string, description: string, plugin: T, setRuntime?: (runtime: any) => void, registerFull?: (api: any) => void }): any
  export function defineSetupPluginEntry<T> (plugin: T): { plugin: T }
  export function createChatChannelPlugin<T> (opts: { base: Record<string, unknown>, outbound?: Record<string, unknown>, security?: Record<string, unknown>, threading?: Record<string, unknown>, pairing?: Record<string, unknown> }): any
  export function buildChannelOutboundSessionRoute (params: Record<string, unknown>): any
}
declare module 'openclaw/plugin-sdk/channel-inbound' {
  export function resolveChannelInboundRouteEnvelope (params: Record<string, unknown>): { route: { agentId: string, accountId?: string, dmScope?: string, sessionKey: string }, buildEnvelope: (p: Record<string, unknown>) => string }
}
declare module 'openclaw/plugin-sdk/channel-outbound' {
  export function defineChannelMessageAdapter<T> (adapter: T): T
  export function createMessageReceiptFromOutboundResults (p: { results: Array<{ channel: string, messageId: string }>, kind: string }): unknown
  export function waitUntilAbort (signal?: AbortSignal): Promise<void>
}
declare module 'openclaw/plugin-sdk/reply-payload' {
  export function isReplyPayloadTerminalContent (payload: unknown): boolean
}
