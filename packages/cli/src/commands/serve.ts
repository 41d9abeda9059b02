import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { CommanderError, type Command } from 'commander'
import { createRelay, defaultLogger, relayOptions, storageOf, type RelayInit } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { writeSecretFile } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { output } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { addRelayFlags, relayInitFrom } from './serve-config.ts'

export { readConfigFile } from './serve-config.ts'

/** The operator API key's file in a persistent relay's data directory (0600). */
export const API_KEY_FILE = 'api-key'

/**
 * What `serve` gives the relay: the Store (SQLite under the data directory, or memory) and the
 * operator key (given, or kept in the data directory: made at the first start, 0600; a memory
 * relay without one has no operator API). Options are validated before anything is opened.
 */
export function openRelayData (init: RelayInit): { store: Store, apiKey: string | undefined, apiKeyFile: string | undefined } {
  const opts = relayOptions(init)
  const storage = storageOf(opts)
  if (storage.type === 'memory') return { store: memoryStore(storeInitOf(opts)), apiKey: opts.apiKey, apiKeyFile: undefined }
  const store = sqliteStore(join(storage.dataDir, DB_FILE), { ...storeInitOf(opts), synchronous: storage.sync })
  if (opts.apiKey !== undefined) return { store, apiKey: opts.apiKey, apiKeyFile: undefined }
  try {
    return { store, ...operatorKeyFile(storage.dataDir) }
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
  config?: string
  json?: boolean
  /** the relay's own flags, by commander attribute name (see serve-config.ts) */
  [flag: string]: unknown
}

/**
 * Ends the command with `code` and prints nothing more: `run()` answers a CommanderError's exit
 * code as it is (the binary exits with it, as `process.exit(code)` did; in process the run ends).
 */
function exitNow (code: number): CommanderError {
  return new CommanderError(code, 'commander.executeSubCommandAsync', '')
}

export function serveCommand (program: Command, io: CliIo = processIo()): void {
  const serve = program.command('serve')
    .description('run a relay: WebSocket and HTTP on one port, SQLite under the data directory')
  // the relay's flags come from its option schema (serve-config.ts); --config keeps its place after --memory
  addRelayFlags(serve, { memory: (c) => c.option('--config <file>', 'JSON config file (flags and environment override it; env AGENTMESH_CONFIG)') })
  serve
    .option('--json', 'print the listening address as JSON')
    .action(async (o: ServeOpts, cmd: Command) => {
      const out = output(o.json === true, io)
      const configPath = o.config ?? io.env.AGENTMESH_CONFIG
      const init = relayInitFrom(o, cmd, io.env, configPath)
      // a second signal (or a shutdown that fails) ends the command at once, with exit 1
      let leave!: (code: number) => void
      const left = new Promise<never>((_resolve, reject) => { leave = (code) => { reject(exitNow(code)) } })
      left.catch(() => {}) // raced below; unobserved until the relay is up
      // the interrupt handler first: a SIGTERM that arrives while starting still stops cleanly
      let stopRequested: ((sig: string) => void) | undefined
      let pendingSignal: string | undefined
      // The process's interrupts pass the signal's name (Node's signal events do); another io's count
      // as SIGTERM. The handlers stay until the process ends (as they always did): a signal in the
      // moment between "relay stopped" and the exit must not kill the process with the default action.
      const releaseFirst = io.onInterrupt((sig?: unknown) => {
        releaseFirst()
        io.onInterrupt(() => { leave(1) })
        const name = typeof sig === 'string' ? sig : 'SIGTERM'
        if (stopRequested !== undefined) stopRequested(name)
        else pendingSignal = name
      })
      const { store, apiKey, apiKeyFile } = openRelayData(init)
      const { dataDir: _dataDir, memory: _memory, sync: _sync, store: _store, ...relayInit } = init
      const starting = createRelay({ ...relayInit, ...(apiKey === undefined ? {} : { apiKey }) }, { store, logger: defaultLogger(io.env.AGENTMESH_LOG_LEVEL ?? 'info') })
      // left while starting: a relay that comes up after all is closed, not left listening
      left.catch(() => { starting.then(async (r) => { await r.close() }, () => {}) })
      const relay = await Promise.race([starting, left])
      await Promise.race([left, new Promise<void>((resolve) => {
        stopRequested = (sig) => {
          out.note(`${sig}: stopping (committing pending messages, closing connections)`)
          relay.close().then(resolve, (err) => {
            io.stderr.write(`agentmesh: error ${ErrorCode.Internal}: shutdown failed: ${(err as Error).message}\n`)
            leave(1)
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
      })])
      out.result({ event: 'stopped' }, 'relay stopped')
    })
}
