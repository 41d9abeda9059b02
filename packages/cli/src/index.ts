/**
 * @packageDocumentation
 * The `agentmesh` command-line interface: a thin shell over @agentmesh/client and @agentmesh/server.
 *
 * @example
 * ```ts
 * import { run } from '@agentmesh/cli'
 * process.exitCode = await run(['whoami', '--json'])
 * ```
 */
export { run, buildProgram } from './program.ts'
export { processIo } from './io.ts'
export type { CliIo, CliWritable } from './io.ts'
