/**
 * A relay inside the test process, on 127.0.0.1 and a free port: the one place the harness calls
 * createRelay, so that a change of its signature is made here only. A relay that must die by
 * SIGKILL, or a real `serve`, is spawnRelay's.
 */
import { createRelay, silentLogger, type Relay, type RelayInit } from '@agentmesh/server'

/** In memory unless `dataDir` is given; silent (a test asserts on what it sees, not on logs). */
export async function relayInProcess (init: RelayInit = {}): Promise<Relay> {
  return await createRelay({
    host: '127.0.0.1',
    port: 0,
    ...(init.dataDir === undefined && init.store === undefined ? { memory: true } : {}),
    logger: silentLogger,
    ...init,
  })
}
