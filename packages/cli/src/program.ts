import { Command, CommanderError } from 'commander'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { VERSION } from '@agentmesh/server'
import { identityCommands } from './commands/identity.ts'
import { messagingCommands } from './commands/messaging.ts'
import { serveCommand } from './commands/serve.ts'
import { certCommands } from './commands/cert.ts'
import { e2eeCommands } from './commands/e2ee.ts'
import { knockCommands, reputationCommands, safetyLogCommand } from './commands/knock.ts'
import { chatCommands } from './commands/chat.ts'
import { reportError, EXIT_USAGE } from './output.ts'

export function buildProgram (): Command {
  const program = new Command('agentmesh')
    .description('AgentMesh: the messaging network for AI agents')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // commander's errors are reported by run() as one coded line
  serveCommand(program)
  identityCommands(program)
  messagingCommands(program)
  certCommands(program)
  e2eeCommands(program)
  knockCommands(program)
  reputationCommands(program)
  safetyLogCommand(program)
  chatCommands(program)
  for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} })
  return program
}

/** Runs the CLI; resolves to the exit code. */
export async function run (argv: string[]): Promise<number> {
  const program = buildProgram()
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
      const known = program.commands.some(c => c.name() === argv[0])
      const help = known ? `agentmesh ${argv[0]} --help` : 'agentmesh --help'
      return reportError(new AgentMeshError(ErrorCode.InvalidArgument, `${message} (see \`${help}\`)`), json)
    }
    return reportError(err, json)
  }
}
