/**
 * Runtime settings: what an operator (a master) changes while the relay runs, through
 * `PATCH /api/v1/settings` (docs/protocol.md §17.8). One table gives each setting its JSON name,
 * default and bounds; the defaults, the stored JSON form and its reading all derive from it.
 */
import { Type, type TObject, type TInteger } from '@sinclair/typebox'
import type { RateLimit } from '@agentmesh/protocol/internal'
import { MAX_PRESENCE_IDLE_MS, MAX_RATE_SETTING, MAX_TASK_DEADLINE_S, MIN_PRESENCE_IDLE_MS, type Settings } from '@agentmesh/protocol'

/** A whole-number setting: its JSON name, bounds and default. */
export interface IntSetting {
  /** The key in GET/PATCH /api/v1/settings and in the stored settings. */
  readonly json: string
  readonly min: number
  readonly max: number
  readonly default: number
  readonly doc: string
}

/** The settings that are one number. */
export const SCALAR_SETTINGS = {
  presenceIdleMs: { json: 'presence_idle_ms', min: MIN_PRESENCE_IDLE_MS, max: MAX_PRESENCE_IDLE_MS, default: 5 * 60_000, doc: 'Quiet time after which an online agent shows as idle, in ms. @default 5 minutes' },
  taskDefaultDeadlineS: { json: 'task_default_deadline_s', min: 1, max: MAX_TASK_DEADLINE_S, default: 300, doc: 'Deadline of a task dispatched without one, in seconds. @default 300 s' },
} as const satisfies Record<string, IntSetting>

/** Bounds of both numbers of a rate limit (per minute, burst), at start-up and at run time (the REST contract's). */
export const RATE_LIMIT_MIN = 1
export const RATE_LIMIT_MAX = MAX_RATE_SETTING

/** The rate limits (token buckets, docs/protocol.md §17.8): JSON prefix, default and what each counts. */
export const RATE_LIMIT_SETTINGS = {
  api: { json: 'api', default: { perMinute: 120, burst: 60 }, doc: 'REST requests per agent (and per operator key)' },
  ip: { json: 'ip', default: { perMinute: 600, burst: 200 }, doc: 'REST requests per IP' },
  chat: { json: 'chat', default: { perMinute: 600, burst: 120 }, doc: 'room messages and signals per agent over the WebSocket' },
  chatIp: { json: 'chat_ip', default: { perMinute: 1200, burst: 240 }, doc: 'room messages and signals per IP over the WebSocket' },
} as const satisfies Record<string, { json: string, default: RateLimit, doc: string }>

export type RateLimitName = keyof typeof RATE_LIMIT_SETTINGS
export const RATE_LIMIT_NAMES = Object.keys(RATE_LIMIT_SETTINGS) as RateLimitName[]

/** Settings an operator may change while the relay runs (PATCH /api/v1/settings). */
export type ChatSettings = { -readonly [K in keyof typeof SCALAR_SETTINGS]: number } & {
  rateLimits: Record<RateLimitName, RateLimit>
}

/** The two JSON keys of a rate limit: `<prefix>_per_minute` and `<prefix>_burst`. */
function rateKeys (name: RateLimitName): { perMinute: string, burst: string } {
  const p = RATE_LIMIT_SETTINGS[name].json
  return { perMinute: `${p}_per_minute`, burst: `${p}_burst` }
}

export function defaultChatSettings (): ChatSettings {
  const rateLimits = {} as Record<RateLimitName, RateLimit>
  for (const n of RATE_LIMIT_NAMES) rateLimits[n] = { ...RATE_LIMIT_SETTINGS[n].default }
  return { presenceIdleMs: SCALAR_SETTINGS.presenceIdleMs.default, taskDefaultDeadlineS: SCALAR_SETTINGS.taskDefaultDeadlineS.default, rateLimits }
}

const int = (v: unknown, min: number, max: number): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined

/** Settings as stored (snake_case JSON) over the defaults; invalid stored values keep the default. */
export function settingsFromJson (j: Record<string, unknown>, base: ChatSettings): ChatSettings {
  const s: ChatSettings = structuredClone(base)
  for (const [k, spec] of Object.entries(SCALAR_SETTINGS) as Array<[keyof typeof SCALAR_SETTINGS, IntSetting]>) {
    s[k] = int(j[spec.json], spec.min, spec.max) ?? s[k]
  }
  const rl = j.rate_limits
  if (typeof rl === 'object' && rl !== null) {
    const r = rl as Record<string, unknown>
    for (const n of RATE_LIMIT_NAMES) {
      const keys = rateKeys(n)
      const pm = int(r[keys.perMinute], RATE_LIMIT_MIN, RATE_LIMIT_MAX)
      const b = int(r[keys.burst], RATE_LIMIT_MIN, RATE_LIMIT_MAX)
      if (pm !== undefined) s.rateLimits[n].perMinute = pm
      if (b !== undefined) s.rateLimits[n].burst = b
    }
  }
  return s
}

/**
 * The settings as JSON (what GET /api/v1/settings answers and the store keeps): the shape of the
 * protocol's `Settings` schema, which a test holds to this table (keys and bounds).
 */
export function settingsJson (s: ChatSettings): Settings {
  const out: Record<string, unknown> = {}
  for (const [k, spec] of Object.entries(SCALAR_SETTINGS) as Array<[keyof typeof SCALAR_SETTINGS, IntSetting]>) out[spec.json] = s[k]
  const rl: Record<string, number> = {}
  for (const n of RATE_LIMIT_NAMES) {
    const keys = rateKeys(n)
    rl[keys.perMinute] = s.rateLimits[n].perMinute
    rl[keys.burst] = s.rateLimits[n].burst
  }
  out.rate_limits = rl
  return out as Settings
}

/** The JSON form as a schema (bounds and defaults included), for documents such as the OpenAPI one. */
export function settingsSchema (): TObject<Record<string, TInteger | TObject<Record<string, TInteger>>>> {
  const props: Record<string, TInteger | TObject<Record<string, TInteger>>> = {}
  for (const spec of Object.values(SCALAR_SETTINGS) as IntSetting[]) {
    props[spec.json] = Type.Integer({ minimum: spec.min, maximum: spec.max, default: spec.default, description: spec.doc })
  }
  const rl: Record<string, TInteger> = {}
  for (const n of RATE_LIMIT_NAMES) {
    const keys = rateKeys(n)
    const { doc, default: d } = RATE_LIMIT_SETTINGS[n]
    rl[keys.perMinute] = Type.Integer({ minimum: RATE_LIMIT_MIN, maximum: RATE_LIMIT_MAX, default: d.perMinute, description: `${doc}: per minute` })
    rl[keys.burst] = Type.Integer({ minimum: RATE_LIMIT_MIN, maximum: RATE_LIMIT_MAX, default: d.burst, description: `${doc}: burst` })
  }
  props.rate_limits = Type.Object(rl)
  return Type.Object(props)
}
