/**
 * Wake webhooks (docs/protocol.md §26): an agent registers a URL; when a direct message is stored
 * for it while it has no open connection (on any node, as this node's presence view knows), the
 * relay POSTs a content-free notice `{ amid, pending, ts }` to that URL, signed with the relay's
 * Ed25519 identity key. Notices to one agent are coalesced and at least `webhookMinIntervalMs`
 * apart; a failed one (network error, timeout, 5xx, 429) is tried again with exponential backoff,
 * at most `webhookRetries` times; an agent that comes online meanwhile gets none. Nothing about the
 * sender, the type or the content is ever in a notice, and the URL is never logged.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import type { Context, Hono } from 'hono'
import { API_ROUTES as R, AgentMeshError, ErrorCode, WAKE_HEADERS, WAKE_SIGNING_PREFIX, checkValue, type WakeNotice } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { sign } from 'node:crypto'
import { toB64u } from '@agentmesh/crypto'
import type { RelayFeature } from '../feature.ts'
import type { OpsContext } from '../ops/context.ts'
import type { Principal } from '../chat.ts'
import { answer } from '../rest.ts'
import { VERSION } from '../version.ts'
import { checkedLookup, checkWebhookHost, parseWebhookUrl } from './address.ts'

/** Agents with a notice pending or sent lately, kept at most (the least recent go first). */
export const MAX_WAKE_TRACKED = 100_000
/** How long one POST may take, connection included. */
export const WAKE_TIMEOUT_MS = 5000
/** The first retry's delay; each next one doubles, with up to 50 % jitter. */
export const WAKE_BACKOFF_BASE_MS = 1000
/** The longest delay between two attempts. */
export const WAKE_BACKOFF_MAX_MS = 5 * 60 * 1000
/** Notices in flight at once, relay-wide; more wait their turn. */
export const MAX_WAKE_IN_FLIGHT = 64
/** Bytes of a webhook's answer read at most (the rest is dropped). */
const MAX_ANSWER_BYTES = 4096

interface Tracked {
  /** when the last notice was sent (successfully or given up) */
  lastAt: number
  timer?: ReturnType<typeof setTimeout>
  /** a notice is being sent (or waits for a retry) */
  busy: boolean
  /** something arrived while busy: one more notice after this one */
  again: boolean
}

export interface WakeInit {
  /** the first retry's delay (tests shorten it). @default WAKE_BACKOFF_BASE_MS */
  backoffBaseMs?: number
}

/** The bytes the relay signs for a notice: the domain, the timestamp header and the body. */
export function wakeSigningInput (timestamp: string, body: string): Uint8Array {
  return new TextEncoder().encode(`${WAKE_SIGNING_PREFIX}\n${timestamp}\n${body}`)
}

export function wakeFeature (ctx: OpsContext, init: WakeInit = {}): RelayFeature & { readonly sent: number } {
  const { store, chat, logger: log, events, options } = ctx
  const allowPrivate = options.webhookAllowPrivate
  const minInterval = options.webhookMinIntervalMs
  const retries = options.webhookRetries
  const base = init.backoffBaseMs ?? WAKE_BACKOFF_BASE_MS
  const tracked = new LruMap<string, Tracked>(MAX_WAKE_TRACKED)
  const offs: Array<() => void> = []
  const inFlight = new Set<AbortController>()
  let running = 0
  const queue: Array<() => void> = []
  let stopped = false
  let sent = 0

  ctx.metrics.counter('agentmesh_wake_notices_sent_total', 'Wake notices a webhook accepted (2xx), docs/protocol.md §26', () => sent)

  const offline = (amid: string): boolean => !chat.hasConnection(amid)

  const agentOf = (p: Principal): string => {
    if (p.kind !== 'agent') throw new AgentMeshError(ErrorCode.Forbidden, 'a wake webhook is registered by an agent for itself, not with the operator key')
    return p.amid
  }

  const info = (url: string | null, createdAt: number | null) => ({ url, created_at: createdAt, relay_amid: chat.relayAmid, signing: 'ed25519' as const })

  /** One POST; resolves with the answer's status, rejects on a network error or timeout. */
  const post = async (url: URL, body: string, timestamp: string, signature: string): Promise<number> => {
    const ac = new AbortController()
    inFlight.add(ac)
    const timer = setTimeout(() => { ac.abort() }, WAKE_TIMEOUT_MS)
    try {
      return await new Promise<number>((resolve, reject) => {
        const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
          method: 'POST',
          signal: ac.signal,
          lookup: checkedLookup(allowPrivate) as never,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': `agentmesh-relay/${VERSION}`,
            [WAKE_HEADERS.timestamp]: timestamp,
            [WAKE_HEADERS.signature]: `ed25519=${signature}`,
            [WAKE_HEADERS.relay]: chat.relayAmid,
          },
        }, (res: IncomingMessage) => {
          let n = 0
          res.on('data', (b: Buffer) => { n += b.length; if (n > MAX_ANSWER_BYTES) res.destroy() })
          res.on('end', () => { resolve(res.statusCode ?? 0) })
          res.on('close', () => { resolve(res.statusCode ?? 0) })
          res.on('error', () => { resolve(res.statusCode ?? 0) })
        })
        req.on('error', reject)
        req.end(body)
      })
    } finally {
      clearTimeout(timer)
      inFlight.delete(ac)
    }
  }

  /** Waits for a slot among MAX_WAKE_IN_FLIGHT. */
  const slot = async (): Promise<void> => {
    if (running < MAX_WAKE_IN_FLIGHT) { running++; return }
    // a slot is handed over by release() with the count unchanged
    await new Promise<void>((resolve) => { queue.push(resolve) })
  }
  const release = (): void => {
    const next = queue.shift()
    if (next !== undefined) next()
    else running--
  }

  const sleep = async (ms: number): Promise<void> => {
    await new Promise<void>((resolve) => { const t = setTimeout(resolve, ms); t.unref?.() })
  }

  /** Sends one notice to `amid`'s webhook, with its retries; answers whether one was delivered. */
  const notify = async (amid: string): Promise<void> => {
    for (let attempt = 0; attempt <= retries && !stopped; attempt++) {
      if (attempt > 0) {
        const delay = Math.min(WAKE_BACKOFF_MAX_MS, base * 2 ** (attempt - 1))
        await sleep(delay + Math.floor(Math.random() * delay / 2))
        if (stopped) return
      }
      // checked again at each attempt: the agent came online, removed its webhook, or read its inbox
      if (!offline(amid)) return
      const hook = await store.getWebhook(amid)
      if (hook === undefined) return
      const { pending } = await store.inbox(amid)
      if (pending === 0) return
      let url: URL
      try {
        url = parseWebhookUrl(hook.url, allowPrivate)
        // an IP literal is not looked up by the socket (checkedLookup does not see it): checked here
        if (isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) await checkWebhookHost(url, allowPrivate)
      } catch (err) {
        log.warn({ amid, code: (err as AgentMeshError).code }, 'wake webhook refused at send time; no notice sent')
        return
      }
      const ts = Date.now()
      const notice: WakeNotice = { amid, pending, ts }
      const body = JSON.stringify(notice)
      const timestamp = String(ts)
      const signature = toB64u(sign(null, wakeSigningInput(timestamp, body), chat.relay.privateKeyObject))
      await slot()
      if (stopped) { release(); return }
      let status = 0
      let code: string | undefined
      try {
        status = await post(url, body, timestamp, signature)
      } catch (err) {
        code = (err as { code?: string }).code ?? 'network'
      } finally {
        release()
      }
      if (status >= 200 && status < 300) { sent++; return }
      log.info({ amid, status, code, attempt }, 'wake webhook failed')
      // the name resolves to an address notices may not go to now (checked as the socket connected)
      if (code === ErrorCode.WebhookAddressRefused) return
      // a refusal that will not change (4xx but 408 and 429): given up
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return
    }
  }

  const fire = (amid: string): void => {
    const t = tracked.get(amid)
    if (t === undefined || stopped) return
    delete t.timer
    t.busy = true
    t.again = false
    void notify(amid).catch((err: unknown) => {
      log.warn({ amid, code: (err as { code?: string }).code }, 'wake notice failed')
    }).finally(() => {
      t.busy = false
      t.lastAt = Date.now()
      if (t.again && !stopped) schedule(amid)
    })
  }

  /** Something arrived for `amid`: a notice now, or coalesced into the next one. */
  const schedule = (amid: string): void => {
    let t = tracked.get(amid)
    if (t === undefined) {
      t = { lastAt: 0, busy: false, again: false }
      tracked.set(amid, t)
    }
    if (t.busy) { t.again = true; return }
    if (t.timer !== undefined) return
    const wait = Math.max(0, t.lastAt + minInterval - Date.now())
    t.timer = setTimeout(() => { fire(amid) }, wait)
    t.timer.unref?.()
  }

  const setHook = async (c: Context): Promise<ReturnType<typeof info>> => {
    const { p, body } = await ctx.gate().enter(c)
    const amid = agentOf(p)
    const b = checkValue(R.putWebhook.body, body)
    const url = parseWebhookUrl(b.url, allowPrivate)
    await checkWebhookHost(url, allowPrivate)
    const createdAt = ctx.now()
    await store.putWebhook({ amid, url: url.href, createdAt })
    // the URL may hold the receiver's secret: only its scheme is audited
    await chat.audit(p, 'webhook.set', amid, { scheme: url.protocol.slice(0, -1) })
    return info(url.href, createdAt)
  }

  return {
    name: 'wake',
    get sent () { return sent },
    routes (app: Hono) {
      app.put(R.putWebhook.path, async (c) => answer(c, 'putWebhook', await setHook(c)))
      app.get(R.getWebhook.path, async (c) => {
        const { p } = await ctx.gate().enter(c)
        const hook = await store.getWebhook(agentOf(p))
        return answer(c, 'getWebhook', info(hook?.url ?? null, hook?.createdAt ?? null))
      })
      app.delete(R.deleteWebhook.path, async (c) => {
        const { p } = await ctx.gate().enter(c)
        const amid = agentOf(p)
        const removed = await store.deleteWebhook(amid)
        if (removed) await chat.audit(p, 'webhook.clear', amid, {})
        const t = tracked.get(amid)
        if (t?.timer !== undefined) { clearTimeout(t.timer); delete t.timer }
        return answer(c, 'deleteWebhook', { removed })
      })
    },
    start () {
      offs.push(events.on('message:stored', (e) => {
        // direct messages only (a room is read from its log when the agent comes back)
        if (e.room !== undefined) return
        const to = e.env.to
        if (to === chat.relayAmid || !offline(to)) return
        schedule(to)
      }))
      offs.push(events.on('agent:online', (e) => {
        // it reads what waits itself: no notice
        const t = tracked.get(e.amid)
        if (t?.timer !== undefined) { clearTimeout(t.timer); delete t.timer }
      }))
    },
    stop () {
      stopped = true
      for (const off of offs.splice(0)) off()
      for (const [, t] of tracked) if (t.timer !== undefined) clearTimeout(t.timer)
      for (const ac of inFlight) ac.abort()
      for (const w of queue.splice(0)) w()
    },
  }
}
