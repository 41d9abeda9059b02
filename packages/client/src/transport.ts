/**
 * What a connection needs of a WebSocket: the WHATWG interface, which a browser's global
 * `WebSocket` has and which `ws` (the default in Node) implements too. Text frames only.
 */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'message', listener: (ev: { data: unknown }) => void): void
  addEventListener (type: 'close', listener: (ev: { code: number, reason: string }) => void, options?: { once?: boolean }): void
  addEventListener (type: 'error', listener: (ev: { error?: unknown, message?: string }) => void): void
  /** `ws` only: drops the socket without the closing handshake */
  terminate?: () => void
}

/** A WebSocket class: `connect({ WebSocket: globalThis.WebSocket })` in a browser. */
export type WebSocketConstructor = new (url: string) => WebSocketLike

/** readyState of a closed socket (the same number everywhere). */
export const WS_CLOSED = 3
