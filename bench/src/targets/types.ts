/**
 * What a target gives the load generator. The generator owns sequence numbers, send times,
 * windows and statistics; a target only moves messages.
 */
import type { ServerHandle } from '../children.ts'

/** Events a target reports to the generator. */
export interface Sink {
  /** The receiver of `pair` got message `seq` (the payload's `bseq`). */
  delivered (pair: number, seq: number): void
  /** The sender of `pair` got one acknowledgement (a relay ack, a Socket.IO ack, a JetStream PubAck). */
  acked (pair: number): void
  /** Something went wrong on `pair` (an error frame, a closed connection, a rejected publish). */
  failed (pair: number, what: string): void
}

export interface Client {
  /**
   * Sends message `seq` of `pair`; `t` is its send time (performance.now()) for the payload.
   * Returns false when the target cannot send it (the pre-signed pool is exhausted).
   */
  send (pair: number, seq: number, t: number): boolean
  /** Target-specific counters for the report. */
  stats? (): Record<string, number>
  close (): Promise<void>
}

export interface Target {
  /** Key in the JSON output. */
  readonly name: string
  /** Human label for the table. */
  readonly label: string
  /** What advances a sender's window: acknowledgements, or deliveries (targets without acks). */
  readonly windowBy: 'ack' | 'delivery'
  /** Extra facts for the report (frame sizes, options). */
  readonly info: Record<string, unknown>
  start (): Promise<ServerHandle>
  connect (server: ServerHandle, pairs: number, sink: Sink): Promise<Client>
  /** Called after the server is stopped (temporary directories). */
  cleanup? (): void
}
