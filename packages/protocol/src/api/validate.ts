/**
 * Checks a request's body, query or path parameters against a route's schema (routes.ts) and says
 * what is wrong in AM_ERR_INVALID_ARGUMENT, naming the field, as the relay answers it (HTTP 400).
 */
import { Kind, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value'
import { AgentMeshError, ErrorCode } from '../errors.ts'
import { AMID_PATTERN, ID_PATTERN, ROOM_ID_PATTERN, TYPE_PATTERN } from '../schemas.ts'
import { AUDIT_ACTION_PATTERN, COMMAND_PATTERN, HANDLE_PATTERN } from './constants.ts'
import { SEMVER_PATTERN } from './schemas.ts'

export type Where = 'body' | 'query' | 'path'

/** What a pattern asks for, in words, for the message. */
const PATTERN_WORDS: ReadonlyMap<string, string> = new Map([
  [AMID_PATTERN, 'an AMID'],
  [HANDLE_PATTERN, 'a handle: 2–32 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit'],
  [ROOM_ID_PATTERN, 'a room id: 1–64 characters of a-z 0-9 _ -, starting with a letter or digit'],
  [ID_PATTERN, '8–128 characters of A-Z a-z 0-9 _ -'],
  [TYPE_PATTERN, 'a type like chat or app.event (^[a-z][a-z0-9._-]{0,63}$)'],
  [AUDIT_ACTION_PATTERN, 'an action like message.send or room.join'],
  [SEMVER_PATTERN, 'a semantic version like 2.0.0 or 2.1.0-rc.1'],
  ['^/?' + COMMAND_PATTERN.slice(1), 'a command: a-z 0-9 _ -, starting with a letter, at most 32 characters (a leading "/" is dropped)'],
])

/** Errors looked at to pick the one to report: an unknown field is said before a bad value. */
const MAX_ERRORS = 32

export interface CheckOptions {
  /**
   * Paths (JSON Pointer, e.g. "/envelope") the caller checks itself afterwards, with codes of its
   * own: their errors are passed over here.
   */
  defer?: readonly string[]
}

/**
 * `value` as the schema's type, or AM_ERR_INVALID_ARGUMENT naming the first field that does not fit
 * (an unknown field first, as the relay always said).
 */
export function checkValue<T extends TSchema> (schema: T, value: unknown, where: Where = 'body', opts: CheckOptions = {}): Static<T> {
  if (Value.Check(schema, value)) return value
  const errors: ValueError[] = []
  const deferred = (path: string): boolean => opts.defer?.some(d => path === d || path.startsWith(d + '/')) === true
  for (const e of Value.Errors(schema, value)) {
    if (!deferred(e.path)) errors.push(e)
    if (errors.length >= MAX_ERRORS) break
  }
  if (errors.length === 0) return value as Static<T>
  const first = errors.find(e => e.type === ValueErrorType.ObjectAdditionalProperties) ?? errors[0]
  throw new AgentMeshError(ErrorCode.InvalidArgument, first === undefined ? `the ${where} does not fit its schema` : messageOf(first, where))
}

/**
 * `value` as a JSON object whose fields the schema knows, or AM_ERR_INVALID_ARGUMENT as checkValue
 * says it: what the relay checks of a body before it looks at who is asking (a forbidden request
 * answers 403 however its fields are wrong); checkValue checks the rest once the caller may.
 */
export function checkShape (schema: TObject, value: unknown, where: Where = 'body'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, where === 'body' ? 'the body must be a JSON object' : `the ${where} does not fit its schema`)
  }
  if (schema.additionalProperties === false) {
    const known = Object.keys(schema.properties)
    const unknown = Object.keys(value).find(k => !known.includes(k))
    if (unknown !== undefined) throw new AgentMeshError(ErrorCode.InvalidArgument, unknownField(unknown, known))
  }
  return value as Record<string, unknown>
}

/**
 * The query strings of `query` as the schema types them: a whole number where the schema wants an
 * integer (what is not one stays a string, and fails the check with a message saying so).
 */
export function typedQuery (schema: TSchema, query: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const props = (schema.properties ?? {}) as Record<string, TSchema>
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue
    out[k] = props[k]?.type === 'integer' && /^\d{1,16}$/.test(v) ? Number(v) : v
  }
  return out
}

function unknownField (key: string, known: readonly string[]): string {
  return `unknown field "${key.slice(0, 40)}"; expected ${known.join(', ')}`
}

function fieldOf (path: string): string {
  return path.split('/').slice(1).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.')
}

function literals (s: TSchema): unknown[] | undefined {
  if (!Array.isArray(s.anyOf)) return undefined
  const values = (s.anyOf as TSchema[]).map(x => x.const as unknown)
  return values.every(v => v !== undefined) ? values : undefined
}

function messageOf (e: ValueError, where: Where): string {
  const field = fieldOf(e.path)
  const s = e.schema
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    return unknownField(field.split('.').pop() ?? field, Object.keys(s.properties ?? {}))
  }
  if (field === '') return where === 'body' ? 'the body must be a JSON object' : `the ${where} does not fit its schema`
  if (e.type === ValueErrorType.ObjectRequiredProperty) return `${field} is required`
  // a query or path value is quoted as sent, as the relay always did
  const got = (typeof e.value === 'string' || typeof e.value === 'number') && where !== 'body' ? `, got "${String(e.value).slice(0, 20)}"` : ''
  const values = literals(s)
  if (values !== undefined) return `${field} must be one of ${values.join(', ')}${got}`
  if (s.type === 'integer') return `${field} must be a whole number from ${String(s.minimum ?? 0)} to ${String(s.maximum ?? Number.MAX_SAFE_INTEGER)}${got}`
  if (s.type === 'number') return `${field} must be a number from ${String(s.minimum ?? '-∞')} to ${String(s.maximum ?? '∞')}`
  if (s.type === 'boolean') return `${field} must be true or false`
  if (s.type === 'string') {
    if (typeof e.value !== 'string') return `${field} must be a string`
    if (typeof s.maxLength === 'number' && e.value.length > s.maxLength) return `${field} must be at most ${s.maxLength} characters`
    if (typeof s.minLength === 'number' && e.value.length < s.minLength) return `${field} must be at least ${s.minLength} characters`
    if (typeof s.pattern === 'string') {
      const words = PATTERN_WORDS.get(s.pattern)
      return words === undefined ? `${field} must match ${s.pattern}${got}` : `${field} must be ${words}${got}`
    }
    return `${field} must be a string`
  }
  if (s.type === 'object' || s[Kind] === 'Record') return `${field} must be an object`
  if (s.type === 'array') return `${field} must be an array of at most ${String(s.maxItems ?? 'any number of')} items`
  if (Array.isArray(s.anyOf) && typeof s.description === 'string') return `${field} must be ${s.description}`
  return `${field}: ${e.message}`
}
