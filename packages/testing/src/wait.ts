import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { resolve } from 'node:path'
import { POLICY_CHANGE_CHANNEL, type PolicyChangeEvent } from '@agentmesh/client'

/** Polls `cond` until it is true; throws with `what` after `timeoutMs` (a bound, not a timing assertion). */
export async function waitFor (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/**
 * Resolves once a `PolicyWatcher` of this process has put a change of the file at `path` in force
 * (the client's POLICY_CHANGE_CHANNEL). Call it before writing the file; rejects after
 * `timeoutMs` (a bound, not a timing assertion).
 */
export async function policyApplied (path: string, timeoutMs = 20_000): Promise<PolicyChangeEvent> {
  const full = resolve(path)
  return await new Promise((res, rej) => {
    const done = (): void => { clearTimeout(timer); unsubscribe(POLICY_CHANGE_CHANNEL, on) }
    const on = (e: unknown): void => {
      if ((e as PolicyChangeEvent).path !== full) return
      done()
      res(e as PolicyChangeEvent)
    }
    const timer = setTimeout(() => { done(); rej(new Error(`timed out waiting for ${full} to be reloaded`)) }, timeoutMs)
    subscribe(POLICY_CHANGE_CHANNEL, on)
  })
}
