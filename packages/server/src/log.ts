/**
 * Logging. Only metadata is logged (AMIDs, ids, sizes, codes): never envelope bodies,
 * payloads or keys. `error` is for bugs only.
 */
import { pino } from 'pino'

export interface Logger {
  debug (obj: object, msg: string): void
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export function defaultLogger (level: string = process.env.AGENTMESH_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'agentmesh' } }, pino.destination(2))
}

export const silentLogger: Logger = { debug () {}, info () {}, warn () {}, error () {} }
