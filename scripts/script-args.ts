/**
 * Arguments of the repository's own scripts (`npm run chaos|fuzz|soak`): `--help` prints the usage,
 * and a mistyped option or a bad number is one line naming it, then the usage, exit 2 — never a
 * stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

/** A mistake in what the user typed (the script prints its message and the usage, exit 2). */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Parses `argv` (default: the process's) with `options` plus `--help`. On `--help` prints `usage`
 * and exits 0; on an unknown option or a missing value, prints the reason and `usage` and exits 2.
 */
/** The parsed values: a string for each string option given, true for each flag given. */
export type ScriptValues<O extends Options> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string }

export function scriptArgs<O extends Options> (script: string, usage: string, options: O, argv = process.argv.slice(2)): ScriptValues<O> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true })
  } catch (err) {
    fail(script, usage, (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''))
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(usage.trimEnd() + '\n')
    process.exit(0)
  }
  return parsed.values as never
}

/** Prints `npm run <script>: <reason>` and the usage on stderr, exit 2. */
export function fail (script: string, usage: string, reason: string): never {
  process.stderr.write(`npm run ${script}: ${reason}\n\n${usage.trimEnd()}\n`)
  process.exit(2)
}

/**
 * A number from an option or its environment variable, `d` when neither is given. `min` is the
 * smallest accepted; `integer` refuses fractions.
 */
export function numberArg (name: string, v: string | undefined, env: { name: string, value: string | undefined } | undefined, d: number, check: { min: number, integer?: boolean }): number {
  const s = v ?? env?.value
  if (s === undefined || s === '') return d
  const n = Number(s)
  const whole = check.integer === true
  if (!Number.isFinite(n) || n < check.min || (whole && !Number.isSafeInteger(n))) {
    const from = v !== undefined ? `--${name}` : env!.name
    throw new UsageError(`${from} must be ${whole ? 'a whole number' : 'a number'} from ${check.min}, got ${JSON.stringify(s)}`)
  }
  return n
}
