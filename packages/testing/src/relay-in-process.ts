/**
 * A relay inside the test process, on 127.0.0.1 and a free port, silent (a test asserts on what it
 * sees, not on logs). In memory unless `dataDir` is given (then SQLite there, as `serve` opens it).
 * A relay that must die by SIGKILL, or a real `serve`, is spawnRelay's.
 */
import type { Relay, RelayInit } from '@agentmesh/server'
import { startRelay } from './relay.ts'

export async function relayInProcess (init: RelayInit = {}): Promise<Relay> {
  return await startRelay({ host: '127.0.0.1', ...init })
}
