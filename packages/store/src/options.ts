import { constants } from '@agentmesh/protocol'
import type { StoreInit } from './types.ts'

export interface StoreOptions { retentionMs: number, maxInbox: number, maxDedupeEntries: number }

export const DEFAULT_MAX_DEDUPE_ENTRIES = 1_000_000

export function storeOptions (init: StoreInit = {}): StoreOptions {
  const o = {
    retentionMs: init.retentionMs ?? constants.DEFAULT_RETENTION_MS,
    maxInbox: init.maxInbox ?? constants.DEFAULT_MAX_INBOX,
    maxDedupeEntries: init.maxDedupeEntries ?? DEFAULT_MAX_DEDUPE_ENTRIES,
  }
  if (!Number.isInteger(o.retentionMs) || o.retentionMs <= 0) throw new RangeError('store option retentionMs must be a positive integer (ms)')
  if (!Number.isInteger(o.maxInbox) || o.maxInbox <= 0) throw new RangeError('store option maxInbox must be a positive integer')
  if (!Number.isInteger(o.maxDedupeEntries) || o.maxDedupeEntries <= 0) throw new RangeError('store option maxDedupeEntries must be a positive integer')
  return o
}
