/**
 * Where `agentmesh serve` reads the relay's configuration: the `--config` JSON file, `AGENTMESH_*`
 * environment variables and flags, in that order of precedence (flags win). Every key, variable
 * and flag comes from the relay's one option schema (`relayOptionSpecs()` in @agentmesh/server),
 * so this file lists none of them.
 */
import { readFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import { jsonTypeOf, literalsOf, relayOptionSpecs, type RelayConfig, type RelayInit, type RelayOptionName } from '@agentmesh/server'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { parseInteger } from '../output.ts'

type JsonKind = ReturnType<typeof jsonTypeOf>
const jsonKind = jsonTypeOf

/** Config-file keys (JSON): the options the file may set, under their own names, in schema order. */
const FILE_KEYS = relayOptionSpecs().filter(([, spec]) => spec.file).map(([k, spec]) => [k, jsonKind(spec)] as const)

export function readConfigFile (path: string): RelayConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new AgentMeshError(ErrorCode.InvalidConfig, `cannot read config file ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`)
  }
  let body: unknown
  try { body = JSON.parse(text) } catch (cause) {
    throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path} is not valid JSON: ${(cause as Error).message}`)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path} must hold a JSON object`)
  }
  const kinds = new Map<string, JsonKind>(FILE_KEYS)
  for (const [k, v] of Object.entries(body)) {
    const want = kinds.get(k)
    if (want === undefined) throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path}: unknown key "${k}"; known keys: ${[...kinds.keys()].join(', ')}`)
    const ok = want === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === want
    if (!ok) throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path}: "${k}" must be a${want === 'object' ? 'n' : ''} ${want}, got ${JSON.stringify(v)}`)
  }
  // the values themselves are checked by relayOptions, which names the field
  return body as RelayConfig
}

/**
 * The options set by environment variables (AGENTMESH_MAX_INBOX → maxInbox, …; and PORT for the
 * port when AGENTMESH_PORT is not set); nested ones come from the file only.
 */
export function configFromEnv (env: Readonly<Record<string, string | undefined>>): RelayConfig {
  const init: Record<string, unknown> = {}
  for (const [k, spec] of relayOptionSpecs()) {
    if (spec.env === undefined || spec.load !== undefined) continue // a variable naming a file is read with the flags
    const v = env[spec.env]
    if (v === undefined || v === '') continue
    const kind = jsonKind(spec)
    if (kind === 'number') {
      const n = Number(v)
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new AgentMeshError(ErrorCode.InvalidConfig, `${spec.env} must be a whole number, got "${v}"`)
      init[k] = n
    } else if (kind === 'boolean') {
      if (!['1', '0', 'true', 'false'].includes(v)) throw new AgentMeshError(ErrorCode.InvalidConfig, `${spec.env} must be true or false, got "${v}"`)
      init[k] = v === '1' || v === 'true'
    } else init[k] = v
  }
  // PORT, as platforms that run a container set it (Railway, Heroku, Cloud Run): AGENTMESH_PORT wins
  const port = env.PORT
  if (init.port === undefined && port !== undefined && port !== '') {
    const n = Number(port)
    if (!/^\d+$/.test(port.trim()) || !Number.isSafeInteger(n)) throw new AgentMeshError(ErrorCode.InvalidConfig, `PORT must be a whole number, got "${port}"`)
    init.port = n
  }
  return init as RelayConfig
}

/** The commander option of each relay option that has a flag, by option name. */
const flagOptions = new Map<RelayOptionName, Option>()
/** A boolean's opposite flag (`--no-verify-signatures`), same attribute as its option's. */
const negations = new Map<RelayOptionName, Option>()
for (const [k, spec] of relayOptionSpecs()) {
  if (spec.flag === undefined) continue
  const opt = new Option(spec.flag.flags, spec.flag.help)
  const choices = literalsOf(spec.schema)
  if (choices !== undefined) opt.choices(choices.map(String))
  flagOptions.set(k, opt)
  if (spec.flag.negation !== undefined) negations.set(k, new Option(spec.flag.negation.flags, spec.flag.negation.help))
}

/**
 * Declares the relay's flags on `cmd`, in schema order; `after` adds the command's own flags
 * right after a given option's (so `--help` reads in its usual order).
 */
export function addRelayFlags (cmd: Command, after: Partial<Record<RelayOptionName, (cmd: Command) => void>> = {}): Command {
  for (const [k] of relayOptionSpecs()) {
    const opt = flagOptions.get(k)
    if (opt !== undefined) cmd.addOption(opt)
    const neg = negations.get(k)
    if (neg !== undefined) cmd.addOption(neg)
    after[k]?.(cmd)
  }
  return cmd
}

/** The options set by flags; a number flag in another unit (days, seconds) is converted to the option's. */
function configFromFlags (values: Record<string, unknown>, cmd: Command): RelayConfig {
  const init: Record<string, unknown> = {}
  for (const [k, spec] of relayOptionSpecs()) {
    const opt = flagOptions.get(k)
    if (opt === undefined || spec.flag === undefined || spec.load !== undefined) continue
    const attr = opt.attributeName()
    // a boolean flag has a value even when not given (--no-x defaults to true): only one given counts
    if (cmd.getOptionValueSource(attr) !== 'cli') continue
    const v = values[attr]
    const int = spec.flag.int
    if (int !== undefined) init[k] = parseInteger(opt.long ?? spec.flag.flags, String(v), int.min, int.max) * (int.scale ?? 1)
    else init[k] = v
  }
  return init as RelayConfig
}

/**
 * Merges the config file, the environment and the flags (flags winning) into the relay's init;
 * relayOptions then validates it, naming the field.
 */
export function relayInitFrom (values: Record<string, unknown>, cmd: Command, env: Readonly<Record<string, string | undefined>>, configPath: string | undefined): RelayInit {
  const fileInit = configPath !== undefined && configPath !== '' ? readConfigFile(configPath) : {}
  const envInit = configFromEnv(env)
  const flagInit = configFromFlags(values, cmd)
  const init: RelayInit = { ...fileInit, ...envInit, ...flagInit }
  // a more specific source picking --memory or --data wins over the other mode from a less specific one
  if (flagInit.memory === true || (envInit.memory === true && flagInit.dataDir === undefined)) delete init.dataDir
  else if (flagInit.dataDir !== undefined || envInit.dataDir !== undefined) delete init.memory
  // --memory given as a flag wins over a PostgreSQL store from the environment or the file
  if (flagInit.memory === true && flagInit.storeUrl === undefined) delete init.storeUrl
  if (flagInit.memory === true && flagInit.dataDir !== undefined) {
    throw new AgentMeshError(ErrorCode.InvalidArgument, '--memory and --data are mutually exclusive')
  }
  // options whose flag or variable names a file (--trust-roots): the flag's file, else the variable's
  for (const [k, spec] of relayOptionSpecs()) {
    if (spec.load === undefined) continue
    const opt = flagOptions.get(k)
    const fromFlag = opt === undefined ? undefined : values[opt.attributeName()]
    const path = typeof fromFlag === 'string' ? fromFlag : spec.env === undefined ? undefined : env[spec.env]
    if (path !== undefined && path !== '') (init as Record<string, unknown>)[k] = spec.load(path)
  }
  return init
}
