import type { Connection, Message } from '@agentmesh/client'
import { waitFor } from './wait.ts'

/** The next `n` messages a connection hands to the application; rejects after `ms` (a bound, not a timing assertion). */
export async function takeMessages (conn: Connection, n: number, ms = 15_000): Promise<Message[]> {
  const out: Message[] = []
  if (n === 0) return out
  for await (const m of conn.messages({ signal: AbortSignal.timeout(ms) })) {
    out.push(m)
    if (out.length === n) break
  }
  return out
}

/**
 * Messages handed to the application by the time `decided()` holds (for "nothing else arrives":
 * `decided` waits for the warning that says what became of the message instead).
 */
export async function drainUntil (conn: Connection, decided: () => boolean, what: string): Promise<Message[]> {
  const out: Message[] = []
  const stop = new AbortController()
  const reading = (async () => {
    try { for await (const m of conn.messages({ signal: stop.signal })) out.push(m) } catch { /* aborted */ }
  })()
  try {
    await waitFor(decided, what)
  } finally {
    stop.abort()
    await reading
  }
  return out
}
