/** Small helpers the in-memory store's slices share. */

/** The inner map of `k`, created when missing. */
export function nested<V> (m: Map<string, Map<string, V>>, k: string): Map<string, V> {
  let inner = m.get(k)
  if (inner === undefined) { inner = new Map(); m.set(k, inner) }
  return inner
}

export const byKey = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/** A copy as a persistent store reads it back (tasks are kept as JSON text there). */
export const asJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T
