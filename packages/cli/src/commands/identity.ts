import type { Command } from 'commander'
import { createIdentity, loadIdentity, saveIdentity } from '@agentmesh/crypto'
import { connect, relayUrl } from '@agentmesh/client'
import { AgentMeshError } from '@agentmesh/protocol'
import { checkName } from '../names.ts'
import { homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parsePositive } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

async function registerAt (env: CliIo['env'], server: string, home: string, timeoutMs: number): Promise<string> {
  const conn = await connect({ server, home, ...passphraseOf(env), deliver: false, connectTimeoutMs: timeoutMs })
  await conn.close()
  return relayUrl(server)
}

export function identityCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('init')
    .description('create this agent\'s identity (Ed25519 key) and print its AMID; registers with the relay when one answers')
    .option('--name <name>', 'display name sent to the relay')
    .option('--force', 'replace an existing identity (its AMID is lost)')
    .option('--offline', 'do not try to register with the relay'))
    .action(async (o: CommonOpts & { name?: string, force?: boolean, offline?: boolean }) => {
      const out = output(o.json === true, io)
      const home = homeOf(o, io.env)
      const name = o.name === undefined ? undefined : checkName(o.name)
      const id = createIdentity(name)
      const path = saveIdentity(home, id, { force: o.force === true })
      let registered: string | undefined
      if (o.offline !== true) {
        try {
          registered = await registerAt(io.env, serverOf(o, io.env), home, 2000)
        } catch (err) {
          out.note(`note: not registered yet (${AgentMeshError.is(err) ? err.message : String(err)}); the agent registers on its first connection`)
        }
      }
      out.note(`identity written to ${path}${registered !== undefined ? `; registered at ${registered}` : ''}`)
      out.result({ amid: id.amid, ...(name === undefined ? {} : { name }), home, registered: registered !== undefined, ...(registered === undefined ? {} : { server: registered }) }, id.amid)
    })

  withCommon(program.command('whoami')
    .description('print this agent\'s AMID'), { server: false })
    .action((o: CommonOpts) => {
      const home = homeOf(o, io.env)
      const id = loadIdentity(home)
      output(o.json === true, io).result({ amid: id.amid, ...(id.name === undefined ? {} : { name: id.name }), home }, id.amid)
    })

  withCommon(program.command('register')
    .description('register this agent with the relay (connect once), so others can send to it')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (o: CommonOpts & { timeout: string }) => {
      const home = homeOf(o, io.env)
      const id = loadIdentity(home)
      const url = await registerAt(io.env, serverOf(o, io.env), home, parsePositive('--timeout', o.timeout) * 1000)
      output(o.json === true, io).result({ amid: id.amid, server: url, registered: true }, `${id.amid} registered at ${url}`)
    })
}
