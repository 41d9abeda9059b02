/**
 * @packageDocumentation
 * Private test harness: real relays (in process, or as a child process that can be SIGKILLed),
 * the CLI (in process by default, or the binary as a child process), temp directories, raw
 * WebSocket agents.
 *
 * @example
 * ```ts
 * const relay = await startRelay()
 * const r = await cli(['send', bob, 'hi'], { home: aliceHome, server: relay.url }) // in process
 * const e2e = await spawnRelay({ dataDir })
 * const p = await cli(['send', bob, 'hi'], { home: aliceHome, server: e2e.url, process: true })
 * await e2e.kill('SIGKILL')
 * ```
 */
export { spawnRelay, cli, cliProcess, tempDir, assertCliError, CLI_BIN } from './processes.ts'
export type { RelayProcess, CliResult, CliOptions } from './processes.ts'
export { cliInProcess, startCli } from './cli-in-process.ts'
export type { RunningCli } from './cli-in-process.ts'
export { startRelay } from './relay.ts'
export { a2aTestAgent } from './a2a-agent.ts'
export { rawAgent } from './raw-agent.ts'
export type { RawAgent } from './raw-agent.ts'
export { waitFor, policyApplied } from './wait.ts'
export { takeMessages, drainUntil } from './messages.ts'
export { freePort, tcpProxy } from './net.ts'
export { makeTestCa } from './tls.ts'
export type { TestCa } from './tls.ts'
export type { TcpProxy } from './net.ts'
export { fuzz, formatFuzzReport, assertLoopback } from './fuzz.ts'
export type { FuzzOptions, FuzzReport } from './fuzz.ts'
export { chaos, formatChaosReport } from './chaos.ts'
export type { ChaosOptions, ChaosReport } from './chaos.ts'
