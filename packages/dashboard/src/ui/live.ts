/** The live events as a small hub the tabs subscribe to (one WebSocket for the page). */
import { useEffect, useRef } from 'preact/hooks'
import type { LiveEvent } from './api.ts'

type Fn = (e: LiveEvent) => void
const subscribers = new Set<Fn>()

export function publish (e: LiveEvent): void { for (const fn of [...subscribers]) fn(e) }

/** Calls `fn` for every live event while the component is mounted (always the latest `fn`). */
export function useLive (fn: Fn): void {
  const ref = useRef(fn)
  ref.current = fn
  useEffect(() => {
    const sub: Fn = (e) => { ref.current(e) }
    subscribers.add(sub)
    return () => { subscribers.delete(sub) }
  }, [])
}

/** Calls `fn` at most once per `ms` after events that `match` (a reload of a tab's data). */
export function useLiveReload (match: (e: LiveEvent) => boolean, fn: () => void, ms = 300): void {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)
  useLive((e) => {
    if (!match(e) || timer.current !== undefined) return
    timer.current = setTimeout(() => { timer.current = undefined; fn() }, ms)
  })
  useEffect(() => () => { if (timer.current !== undefined) clearTimeout(timer.current) }, [])
}
