/**
 * A heartbeat's figures checked before anything is stored (docs/protocol.md §21.1): a figure that
 * is not a number or out of its range, a custom metric name or value that is not allowed answer
 * AM_ERR_INVALID_METRIC; custom metrics past their bounds AM_ERR_METRICS_TOO_LARGE. The rest of the
 * body (unknown fields, the status) is the route schema's (AM_ERR_INVALID_ARGUMENT).
 */
import {
  AgentMeshError, CUSTOM_METRIC_NAME_PATTERN, ErrorCode, MAX_CUSTOM_METRICS, MAX_CUSTOM_METRICS_BYTES, MAX_CUSTOM_METRIC_STRING, MAX_UPTIME_SECONDS,
} from '@agentmesh/protocol'

const METRIC_NAME = new RegExp(CUSTOM_METRIC_NAME_PATTERN)

const bad = (message: string): AgentMeshError => new AgentMeshError(ErrorCode.InvalidMetric, `${message}; nothing was stored`)

/** A figure's name and value as a message may show them (the value is the caller's: cut short). */
const shown = (v: unknown): string => {
  // JSON.parse reads 1e309 as Infinity, which JSON.stringify would show as null
  const t = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v)
  return t.length > 40 ? t.slice(0, 40) + '…' : t
}

function figure (body: Record<string, unknown>, name: string, max: number, what: string, integer = false): void {
  const v = body[name]
  if (v === undefined) return
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${name} must be a number (${what}), not ${shown(v)}`)
  if (v < 0 || v > max) throw bad(`${name} must be from 0 to ${max} (${what}), not ${v}`)
  if (integer && !Number.isInteger(v)) throw bad(`${name} must be a whole number (${what}), not ${v}`)
}

/** Checks the figures of a heartbeat body (an object); the route schema checks the rest after. */
export function checkHeartbeatFigures (body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return // the schema answers that
  const b = body as Record<string, unknown>
  figure(b, 'uptimeSeconds', MAX_UPTIME_SECONDS, 'seconds')
  figure(b, 'cpuUsage', 100, '% of the machine\'s CPU')
  figure(b, 'memoryUsage', Number.MAX_SAFE_INTEGER, 'bytes', true)
  const cm = b.customMetrics
  if (cm === undefined) return
  if (typeof cm !== 'object' || cm === null || Array.isArray(cm)) throw bad('customMetrics must be an object of names to numbers, strings or booleans')
  const entries = Object.entries(cm)
  if (entries.length > MAX_CUSTOM_METRICS) {
    throw new AgentMeshError(ErrorCode.MetricsTooLarge, `customMetrics has ${entries.length} names; at most ${MAX_CUSTOM_METRICS} are taken; nothing was stored`)
  }
  for (const [k, v] of entries) {
    if (!METRIC_NAME.test(k)) throw bad(`customMetrics name ${shown(k)} is not allowed: 1–64 of A-Z a-z 0-9 _ . : -`)
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw bad(`customMetrics.${k} must be a finite number`)
    } else if (typeof v === 'string') {
      if (v.length > MAX_CUSTOM_METRIC_STRING) throw bad(`customMetrics.${k} is a string of ${v.length} characters; at most ${MAX_CUSTOM_METRIC_STRING}`)
    } else if (typeof v !== 'boolean') {
      throw bad(`customMetrics.${k} must be a number, a string or a boolean, not ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`)
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(cm))
  if (bytes > MAX_CUSTOM_METRICS_BYTES) {
    throw new AgentMeshError(ErrorCode.MetricsTooLarge, `customMetrics is ${bytes} bytes as JSON; at most ${MAX_CUSTOM_METRICS_BYTES}; nothing was stored`)
  }
}
