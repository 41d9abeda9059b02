/**
 * An in-process relay for tests: `createRelay()` given the Store a test asks for, the way the
 * CLI's `serve` gives it one (SQLite under `dataDir`, else memory), without the operator key file
 * (a test that needs the operator API passes `apiKey`).
 */
import { join } from 'node:path'
import { createRelay, relayOptions, silentLogger, type Relay, type RelayComponents, type RelayInit } from '@agentmesh/server'
import { storeInitOf } from '@agentmesh/server/internal'
import { memoryStore } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'

/**
 * Starts a relay in this process. `init.dataDir` (without `memory`) opens SQLite there; otherwise
 * the memory store. Options are validated before the store is opened; the relay closes it.
 * @default port 0 (a free one), a silent logger
 */
export async function startRelay (init: RelayInit = {}, components: RelayComponents = {}): Promise<Relay> {
  const full: RelayInit = { port: 0, ...init }
  const opts = relayOptions(full)
  const store = components.store ?? (init.dataDir !== undefined && init.memory !== true
    ? sqliteStore(join(opts.dataDir, DB_FILE), { ...storeInitOf(opts), synchronous: opts.sync })
    : memoryStore(storeInitOf(opts)))
  const { dataDir: _dataDir, memory: _memory, sync: _sync, store: _store, ...relayInit } = full
  return await createRelay(relayInit, { logger: init.logger ?? silentLogger, ...components, store })
}
