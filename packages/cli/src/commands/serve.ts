import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { createRelay, defaultLogger, loadTrustRoots, relayOptions, type RelayInit } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { writeSecretFile } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { output, parseInteger } from '../output.ts'

/** Config-file keys (JSON), the RelayInit fields. */
const CONFIG_KEYS: Record<string, 'string' | 'number' | 'boolean' | 'object'> = {
  host: 'string',
  port: 'number',
  dataDir: 'string',
  memory: 'boolean',
  sync: 'string',
  maxEnvelopeBytes: 'number',
  maxInFlight: 'number',
  deliveryWindow: 'number',
  maxConnectionsPerAgent: 'number',
  maxConnections: 'number',
  heartbeatMs: 'number',
  authTimeoutMs: 'number',
  retransmitMs: 'number',
  retentionMs: 'number',
  maxInbox: 'number',
  verifySignatures: 'boolean',
  /** { anonymousWeight, mutualDiscount, flagDelta, flagWindowMs, maxFeedbackPerHour } (docs/protocol.md §15); file only */
  reputation: 'object',
  /** the operator API key (X-API-Key); env AGENTMESH_API_KEY */
  apiKey: 'string',
  historyRetentionMs: 'number',
  historyMaxPerRoom: 'number',
  presenceIdleMs: 'number',
  auditRetentionMs: 'number',
  auditMaxRows: 'number',
  /** { api, ip, chat, chatIp: { perMinute, burst } } (docs/protocol.md §17.8); file only */
  rateLimits: 'object',
}

/** Environment variables for numeric limits: AGENTMESH_MAX_ENVELOPE_BYTES → maxEnvelopeBytes, … */
function envName (key: string): string {
  return 'AGENTMESH_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()
}

export function readConfigFile (path: string): RelayInit {
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
  for (const [k, v] of Object.entries(body)) {
    const want = CONFIG_KEYS[k]
    if (want === undefined) throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path}: unknown key "${k}"; known keys: ${Object.keys(CONFIG_KEYS).join(', ')}`)
    const ok = want === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === want
    if (!ok) throw new AgentMeshError(ErrorCode.InvalidConfig, `config file ${path}: "${k}" must be a${want === 'object' ? 'n' : ''} ${want}, got ${JSON.stringify(v)}`)
  }
  return body as RelayInit
}

function fromEnv (env: NodeJS.ProcessEnv): RelayInit {
  const init: Record<string, unknown> = {}
  for (const [k, kind] of Object.entries(CONFIG_KEYS)) {
    if (kind === 'object') continue // nested options come from the config file
    const v = env[envName(k === 'dataDir' ? 'data' : k)]
    if (v === undefined || v === '') continue
    if (kind === 'number') {
      const n = Number(v)
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new AgentMeshError(ErrorCode.InvalidConfig, `${envName(k)} must be a whole number, got "${v}"`)
      init[k] = n
    }
    else if (kind === 'boolean') {
      if (!['1', '0', 'true', 'false'].includes(v)) throw new AgentMeshError(ErrorCode.InvalidConfig, `${envName(k)} must be true or false, got "${v}"`)
      init[k] = v === '1' || v === 'true'
    } else init[k] = v
  }
  return init as RelayInit
}

/** The operator API key's file in a persistent relay's data directory (0600). */
export const API_KEY_FILE = 'api-key'

/**
 * What `serve` gives the relay: the Store (SQLite under the data directory, or memory) and the
 * operator key (given, or kept in the data directory: made at the first start, 0600; a memory
 * relay without one has no operator API). Options are validated before anything is opened.
 */
export function openRelayData (init: RelayInit): { store: Store, apiKey: string | undefined, apiKeyFile: string | undefined } {
  const opts = relayOptions(init)
  if (opts.memory) return { store: memoryStore(storeInitOf(opts)), apiKey: opts.apiKey, apiKeyFile: undefined }
  const store = sqliteStore(join(opts.dataDir, DB_FILE), { ...storeInitOf(opts), synchronous: opts.sync })
  if (opts.apiKey !== undefined) return { store, apiKey: opts.apiKey, apiKeyFile: undefined }
  try {
    return { store, ...operatorKeyFile(opts.dataDir) }
  } catch (err) {
    void store.close()
    throw err
  }
}

function operatorKeyFile (dataDir: string): { apiKey: string, apiKeyFile: string } {
  const file = join(dataDir, API_KEY_FILE)
  try {
    const key = readFileSync(file, 'utf8').trim()
    if (key.length >= 16) return { apiKey: key, apiKeyFile: file }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AgentMeshError(ErrorCode.DataDir, `cannot read the operator API key ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  const key = randomBytes(24).toString('base64url')
  writeSecretFile(file, key + '\n')
  return { apiKey: key, apiKeyFile: file }
}

interface ServeOpts {
  host?: string
  port?: string
  data?: string
  memory?: boolean
  config?: string
  sync?: string
  verifySignatures?: boolean
  trustRoots?: string
  apiKey?: string
  historyRetentionDays?: string
  historyMaxPerRoom?: string
  presenceIdle?: string
  auditRetentionDays?: string
  auditMaxRows?: string
  json?: boolean
}

export function serveCommand (program: Command): void {
  program.command('serve')
    .description('run a relay: WebSocket and HTTP on one port, SQLite under the data directory')
    .option('--host <host>', 'address to listen on (default 127.0.0.1; env AGENTMESH_HOST)')
    .option('--port <port>', 'port to listen on, 0 for any free port (default 7777; env AGENTMESH_PORT)')
    .option('--data <dir>', 'data directory for the SQLite database (default ./data; env AGENTMESH_DATA)')
    .option('--memory', 'keep everything in memory: nothing survives a restart (env AGENTMESH_MEMORY=1)')
    .option('--config <file>', 'JSON config file (flags and environment override it; env AGENTMESH_CONFIG)')
    .addOption(new Option('--sync <mode>', 'SQLite durability: normal survives a crash, full also power loss (default normal)').choices(['normal', 'full']))
    .option('--no-verify-signatures', 'store envelopes without checking their signature (receivers still verify)')
    .option('--trust-roots <file>', 'PEM file of root CA certificates that published agent certificates are verified against; without it only anonymous (self-signed) certificates count (env AGENTMESH_TRUST_ROOTS)')
    .option('--api-key <key>', 'the operator API key (X-API-Key), 16+ characters; default: made once in <data>/api-key (none with --memory) (env AGENTMESH_API_KEY)')
    .option('--history-retention-days <days>', 'room history is kept this many days (default 30; env AGENTMESH_HISTORY_RETENTION_MS in ms)')
    .option('--history-max-per-room <n>', 'room history entries kept per room (default 1,000 with --memory, 1,000,000 persisted)')
    .option('--presence-idle <sec>', 'an agent that sent nothing this long shows as idle (default 300)')
    .option('--audit-retention-days <days>', 'audit log rows are kept this many days (default 90; env AGENTMESH_AUDIT_RETENTION_MS in ms)')
    .option('--audit-max-rows <n>', 'audit log rows kept at most (default 100,000 with --memory, no count limit persisted)')
    .option('--json', 'print the listening address as JSON')
    .action(async (o: ServeOpts, cmd: Command) => {
      const out = output(o.json === true)
      const configPath = o.config ?? process.env.AGENTMESH_CONFIG
      const fileInit = configPath !== undefined && configPath !== '' ? readConfigFile(configPath) : {}
      const envInit = fromEnv(process.env)
      const flagInit: RelayInit = {}
      if (o.host !== undefined) flagInit.host = o.host
      if (o.port !== undefined) flagInit.port = parseInteger('--port', o.port, 0, 65535)
      if (o.data !== undefined) flagInit.dataDir = o.data
      if (o.memory === true) flagInit.memory = true
      if (o.sync !== undefined) flagInit.sync = o.sync as 'normal' | 'full'
      if (cmd.getOptionValueSource('verifySignatures') === 'cli') flagInit.verifySignatures = o.verifySignatures !== false
      if (o.apiKey !== undefined) flagInit.apiKey = o.apiKey
      if (o.historyRetentionDays !== undefined) flagInit.historyRetentionMs = parseInteger('--history-retention-days', o.historyRetentionDays, 1, 36_500) * 86_400_000
      if (o.historyMaxPerRoom !== undefined) flagInit.historyMaxPerRoom = parseInteger('--history-max-per-room', o.historyMaxPerRoom, 1, 100_000_000)
      if (o.auditRetentionDays !== undefined) flagInit.auditRetentionMs = parseInteger('--audit-retention-days', o.auditRetentionDays, 1, 36_500) * 86_400_000
      if (o.auditMaxRows !== undefined) flagInit.auditMaxRows = parseInteger('--audit-max-rows', o.auditMaxRows, 1, 1_000_000_000)
      if (o.presenceIdle !== undefined) flagInit.presenceIdleMs = parseInteger('--presence-idle', o.presenceIdle, 1, 7 * 86_400) * 1000
      const init: RelayInit = { ...fileInit, ...envInit, ...flagInit }
      // a more specific source picking --memory or --data wins over the other mode from a less specific one
      if (flagInit.memory === true || (envInit.memory === true && flagInit.dataDir === undefined)) delete init.dataDir
      else if (flagInit.dataDir !== undefined || envInit.dataDir !== undefined) delete init.memory
      if (flagInit.memory === true && flagInit.dataDir !== undefined) {
        throw new AgentMeshError(ErrorCode.InvalidArgument, '--memory and --data are mutually exclusive')
      }
      const trustRootsFile = o.trustRoots ?? process.env.AGENTMESH_TRUST_ROOTS
      if (trustRootsFile !== undefined && trustRootsFile !== '') init.trustRoots = loadTrustRoots(trustRootsFile)
      // signal handlers first: a SIGTERM that arrives while starting still stops cleanly
      let stopRequested: ((sig: string) => void) | undefined
      let pendingSignal: string | undefined
      let signals = 0
      const onSignal = (sig: string): void => {
        if (++signals > 1) process.exit(1) // a second signal: leave now
        if (stopRequested !== undefined) stopRequested(sig)
        else pendingSignal = sig
      }
      process.on('SIGINT', () => { onSignal('SIGINT') })
      process.on('SIGTERM', () => { onSignal('SIGTERM') })
      const { store, apiKey, apiKeyFile } = openRelayData(init)
      const { dataDir: _dataDir, memory: _memory, sync: _sync, store: _store, ...relayInit } = init
      const relay = await createRelay({ ...relayInit, ...(apiKey === undefined ? {} : { apiKey }) }, { store, logger: defaultLogger() })
      await new Promise<void>((resolve) => {
        stopRequested = (sig) => {
          out.note(`${sig}: stopping (committing pending messages, closing connections)`)
          relay.close().then(resolve, (err) => {
            process.stderr.write(`agentmesh: error ${ErrorCode.Internal}: shutdown failed: ${(err as Error).message}\n`)
            process.exit(1)
          })
        }
        const operator = apiKeyFile !== undefined
          ? `operator API key: in ${apiKeyFile} (send it as X-API-Key)`
          : relay.operatorApi ? 'operator API key: as given' : 'operator API: off (no --api-key / AGENTMESH_API_KEY)'
        out.result(
          { event: 'listening', url: relay.url, ws_url: relay.wsUrl, port: relay.port, storage: relay.storage, pid: process.pid, relay_amid: relay.relayAmid, ...(apiKeyFile === undefined ? {} : { api_key_file: apiKeyFile }), operator_api: relay.operatorApi },
          `AgentMesh relay listening on ${relay.url} (WebSocket ${relay.wsUrl})\ndata: ${relay.storage}${relay.storage === 'memory' ? ' (nothing survives a restart)' : ''}\n${operator}`,
        )
        if (pendingSignal !== undefined) stopRequested(pendingSignal)
      })
      out.result({ event: 'stopped' }, 'relay stopped')
    })
}
