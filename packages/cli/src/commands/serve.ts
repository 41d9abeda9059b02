import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Command } from 'commander'
import { createRelay, defaultLogger, relayOptions, storageOf, type RelayInit } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { writeSecretFile } from '@agentmesh/crypto'
import { memoryStore, type Store } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { output } from '../output.ts'
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

export function serveCommand (program: Command): void {
  const serve = program.command('serve')
    .description('run a relay: WebSocket and HTTP on one port, SQLite under the data directory')
  // the relay's flags come from its option schema (serve-config.ts); --config keeps its place after --memory
  addRelayFlags(serve, { memory: (c) => c.option('--config <file>', 'JSON config file (flags and environment override it; env AGENTMESH_CONFIG)') })
  serve
    .option('--json', 'print the listening address as JSON')
    .action(async (o: ServeOpts, cmd: Command) => {
      const out = output(o.json === true)
      const configPath = o.config ?? process.env.AGENTMESH_CONFIG
      const init = relayInitFrom(o, cmd, process.env, configPath)
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
