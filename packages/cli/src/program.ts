import type { EventEmitter } from 'node:events'
import { Command, CommanderError, type Option } from 'commander'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { VERSION } from '@agentmesh/server'
import { trustRelayCaFromEnv } from '@agentmesh/client'
import { identityCommands } from './commands/identity.ts'
import { identitySealCommands } from './commands/identity-seal.ts'
import { messagingCommands } from './commands/messaging.ts'
import { serveCommand } from './commands/serve.ts'
import { migrateCommand } from './commands/migrate.ts'
import { certCommands } from './commands/cert.ts'
import { e2eeCommands } from './commands/e2ee.ts'
import { blockCommands, knockCommands, reputationCommands, safetyLogCommand } from './commands/knock.ts'
import { chatCommands } from './commands/chat.ts'
import { logsCommand } from './commands/logs.ts'
import { policyCommands } from './commands/policy.ts'
import { sentCommand } from './commands/sent.ts'
import { fileCommands } from './commands/files.ts'
import { updateCommands } from './commands/updates.ts'
import { healthCommand } from './commands/health.ts'
import { webhookCommands } from './commands/webhook.ts'
import { ownerCommands } from './commands/owner.ts'
import { catastropheCommands } from './commands/catastrophe.ts'
import { mcpCommand } from './commands/mcp.ts'
import { schemaCommands } from './commands/schemas.ts'
import { a2aCommands } from './commands/a2a.ts'
import { dashboardCommand } from './commands/dashboard.ts'
import { swarmCommands } from './commands/swarm.ts'
import { reportError, EXIT_USAGE } from './output.ts'
import { processIo, type CliIo } from './io.ts'

export function buildProgram (io: CliIo = processIo()): Command {
  const program = new Command('agentmesh')
    .description('AgentMesh: the messaging network for AI agents')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    // the program's own options (-V, --version) come before a command: after one, they are the
    // command's (`update create --version 2.0.0`)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      outputError: () => {}, // commander's errors are reported by run() as one coded line
      writeOut: (s) => { io.stdout.write(s) },
      writeErr: (s) => { io.stderr.write(s) },
      ...(io.stdout === process.stdout ? {} : { getOutHelpWidth: () => io.helpWidth ?? 80, getErrHelpWidth: () => io.helpWidth ?? 80, getOutHasColors: () => false, getErrHasColors: () => false }),
    })
  if (io.env !== process.env) program.hook('preAction', (_, action) => { optionsFromEnv(action, io.env) })
  // a private CA for wss:// relays (AGENTMESH_CA_FILE), trusted by every command's connections and REST calls
  program.hook('preAction', () => { trustRelayCaFromEnv(io.env) })
  serveCommand(program, io)
  migrateCommand(program, io)
  identityCommands(program, io)
  identitySealCommands(program, io)
  messagingCommands(program, io)
  certCommands(program, io)
  e2eeCommands(program, io)
  knockCommands(program, io)
  blockCommands(program, io)
  reputationCommands(program, io)
  safetyLogCommand(program, io)
  policyCommands(program, io)
  sentCommand(program, io)
  chatCommands(program, io)
  logsCommand(program, io)
  // ---- operations: files (§18)
  fileCommands(program, io)
  // ---- operations: system updates (§19)
  updateCommands(program, io)
  // ---- operations: catastrophe events, backups, read-only mode (§20)
  catastropheCommands(program, io)
  // ---- operations: agent health and metrics (§21)
  healthCommand(program, io)
  // ---- verified owners: OpenID Connect owner links (issue 21, §28)
  ownerCommands(program, io)
  // ---- dashboard: the owner's console (issue 16)
  dashboardCommand(program, io)
  // ---- bridges: MCP server (issue 18)
  mcpCommand(program, io)
  // ---- capabilities and message schemas (issue 18, §25)
  schemaCommands(program, io)
  // ---- bridges: A2A (issue 18)
  a2aCommands(program, io)
  // ---- wake-ups: listen --exec, wake webhooks (issue 18)
  webhookCommands(program, io)
  // ---- OpenClaw (issue 18)
  // ---- swarm mode: gossip topics over libp2p (issue 20)
  swarmCommands(program, io)
  for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} })
  return program
}

/**
 * Commander reads `.env()` options from process.env: with an environment of its own, an option
 * set from process.env is set again from `env`, the way commander would (a flag still wins).
 */
function optionsFromEnv (cmd: Command, env: CliIo['env']): void {
  for (const option of cmd.options as readonly Option[]) {
    if (option.envVar === undefined) continue
    const key = option.attributeName()
    const source = cmd.getOptionValueSource(key)
    if (source !== undefined && source !== 'default' && source !== 'env') continue
    const value = env[option.envVar]
    // the event commander itself emits for an env value: parsed and checked like one
    if (value !== undefined) (cmd as unknown as EventEmitter).emit(`optionEnv:${option.name()}`, value)
    else if (source === 'env') cmd.setOptionValueWithSource(key, option.defaultValue, 'default')
  }
}

/** Runs the CLI with the process's streams, environment and signals, or with `io`; resolves to the exit code. */
export async function run (argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io)
  const json = argv.includes('--json')
  try {
    await program.parseAsync(argv, { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0
      if (err.code === 'commander.help') return EXIT_USAGE // help shown because no command was given
      if (err.code === 'commander.executeSubCommandAsync') return err.exitCode
      const message = err.message.replace(/^error: /, '')
      if (argv.length === 0) {
        program.outputHelp()
        return EXIT_USAGE
      }
      // the deepest command the words name: `file upload` for a mistake in `file upload …`
      const path: string[] = []
      let cmd: Command = program
      for (const word of argv) {
        const sub = cmd.commands.find(c => c.name() === word || c.aliases().includes(word))
        if (sub === undefined) break
        path.push(sub.name())
        cmd = sub
      }
      const help = ['agentmesh', ...path, '--help'].join(' ')
      return reportError(new AgentMeshError(ErrorCode.InvalidArgument, `${message} (see \`${help}\`)`), json, io)
    }
    return reportError(err, json, io)
  }
}
