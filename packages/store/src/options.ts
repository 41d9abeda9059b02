import { constants } from '@agentmesh/protocol'
import type { StoreInit } from './types.ts'

export interface StoreOptions { retentionMs: number, maxInbox: number, maxDedupeEntries: number, historyMaxPerRoom: number }

export const DEFAULT_MAX_DEDUPE_ENTRIES = 1_000_000
/** Room history kept per room by the in-memory store (persistent stores: DEFAULT_HISTORY_MAX_PER_ROOM_PERSISTENT). */
export const DEFAULT_HISTORY_MAX_PER_ROOM = 1000
export const DEFAULT_HISTORY_MAX_PER_ROOM_PERSISTENT = 1_000_000

export function storeOptions (init: StoreInit = {}, persistent = false): StoreOptions {
  const o = {
    historyMaxPerRoom: init.historyMaxPerRoom ?? (persistent ? DEFAULT_HISTORY_MAX_PER_ROOM_PERSISTENT : DEFAULT_HISTORY_MAX_PER_ROOM),
    retentionMs: init.retentionMs ?? constants.DEFAULT_RETENTION_MS,
    maxInbox: init.maxInbox ?? constants.DEFAULT_MAX_INBOX,
    maxDedupeEntries: init.maxDedupeEntries ?? DEFAULT_MAX_DEDUPE_ENTRIES,
  }
  if (!Number.isInteger(o.retentionMs) || o.retentionMs <= 0) throw new RangeError('store option retentionMs must be a positive integer (ms)')
  if (!Number.isInteger(o.maxInbox) || o.maxInbox <= 0) throw new RangeError('store option maxInbox must be a positive integer')
  if (!Number.isInteger(o.maxDedupeEntries) || o.maxDedupeEntries <= 0) throw new RangeError('store option maxDedupeEntries must be a positive integer')
  if (!Number.isInteger(o.historyMaxPerRoom) || o.historyMaxPerRoom <= 0) throw new RangeError('store option historyMaxPerRoom must be a positive integer')
  return o
}
