/**
 * @packageDocumentation
 * Private test harness: real relays (in process or as a child process that can be SIGKILLed),
 * the real CLI as a child process, temp directories, raw WebSocket agents.
 *
 * @example
 * ```ts
 * const relay = await spawnRelay({ dataDir })
 * const r = await cli(['send', bob, 'hi'], { home: aliceHome, server: relay.url })
 * await relay.kill('SIGKILL')
 * ```
 */
export { spawnRelay, cli, cliProcess, tempDir, assertCliError, CLI_BIN } from './processes.ts'
export type { RelayProcess, CliResult } from './processes.ts'
export { startRelay } from './relay.ts'
export { rawAgent } from './raw-agent.ts'
export type { RawAgent } from './raw-agent.ts'
export { waitFor } from './wait.ts'
export { freePort } from './net.ts'
