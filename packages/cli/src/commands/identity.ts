import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { createIdentity, IDENTITY_FILE, loadIdentity, saveIdentity, type Identity } from '@agentmesh/crypto'
import { connect, POLICY_FILE } from '@agentmesh/client'
import { KNOCK_FIRST_POLICY, OPEN_POLICY, writePolicy } from './policy.ts'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { checkName } from '../names.ts'
import { homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parsePositive, usage } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

async function registerAt (env: CliIo['env'], server: string, home: string, timeoutMs: number): Promise<string> {
  const conn = await connect({ server, home, ...passphraseOf(env), deliver: false, connectTimeoutMs: timeoutMs })
  // of several addresses (a cluster), the one that answered
  const at = conn.url
  await conn.close()
  return at
}

/** `init --force` over an identity: its AMID is lost for good, so a person says yes first (or --yes says it for a script). */
async function confirmReplace (io: CliIo, amid: string | undefined, path: string, yes: boolean): Promise<void> {
  if (yes) return
  const what = `an identity${amid === undefined ? '' : ` (${amid})`}`
  if (io.confirm === undefined) {
    throw new AgentMeshError(ErrorCode.IdentityExists, `${what} already exists at ${path}; --force replaces it and its AMID is lost for good: with no terminal to confirm on, add --yes`)
  }
  if (!await io.confirm(`Replace ${what} at ${path}? Its AMID is lost for good.`)) {
    throw new AgentMeshError(ErrorCode.IdentityExists, `${what} already exists at ${path}; kept (not confirmed)`)
  }
}

export function identityCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('init')
    .description('create this agent\'s identity (Ed25519 key) and print its AMID; registers with the relay when one answers. With an identity already there, print its AMID (and register) instead')
    .option('--name <name>', 'display name sent to the relay')
    .option('--force', 'replace an existing identity (its AMID is lost); asks first on a terminal')
    .option('--yes', 'with --force: replace without asking (needed when there is no terminal)')
    .option('--offline', 'do not try to register with the relay')
    .option('--open', 'a new agent takes messages from anyone (default: strangers knock first, held for you)'))
    .action(async (o: CommonOpts & { name?: string, force?: boolean, yes?: boolean, offline?: boolean, open?: boolean }) => {
      const out = output(o.json === true, io)
      const home = homeOf(o, io.env)
      const name = o.name === undefined ? undefined : checkName(o.name)
      if (o.yes === true && o.force !== true) throw usage('--yes goes with --force')
      const path = join(home, IDENTITY_FILE)
      // init is re-run (scripts, the README's tour): an identity already there is the answer, not an error
      let id: Identity
      let created = true
      if (!existsSync(path)) {
        id = createIdentity(name)
        saveIdentity(home, id, passphraseOf(io.env))
      } else if (o.force !== true) {
        id = loadIdentity(home, passphraseOf(io.env))
        created = false
        out.note(`an identity already exists at ${path}; kept (\`agentmesh init --force\` replaces it)${name !== undefined && name !== id.name ? `; --name ${name} is not applied to it` : ''}`)
      } else {
        // a damaged file is what --force is for: it is replaced too, just not named by its AMID
        let old: string | undefined
        try { old = loadIdentity(home, passphraseOf(io.env)).amid } catch {}
        await confirmReplace(io, old, path, o.yes === true)
        id = createIdentity(name)
        saveIdentity(home, id, { force: true, ...passphraseOf(io.env) })
      }
      // a new agent is knock-first unless told otherwise; a policy already there is the owner's
      let policyPath: string | undefined
      if (created || o.force === true) {
        if (!existsSync(join(home, POLICY_FILE))) policyPath = writePolicy(home, o.open === true ? OPEN_POLICY : KNOCK_FIRST_POLICY)
      } else if (o.open === true) {
        out.note(`--open applies to a new agent; for this one: \`agentmesh policy open\``)
      }
      let registered: string | undefined
      if (o.offline !== true) {
        try {
          registered = await registerAt(io.env, serverOf(o, io.env), home, 2000)
        } catch (err) {
          out.note(`note: not registered yet (${AgentMeshError.is(err) ? err.message : String(err)}); the agent registers on its first connection`)
        }
      }
      if (created) out.note(`identity written to ${path}${registered !== undefined ? `; registered at ${registered}` : ''}`)
      if (policyPath !== undefined) {
        out.note(o.open === true
          ? `policy written to ${policyPath}: open, anyone may write (\`agentmesh policy knock-first\` changes it)`
          : `policy written to ${policyPath}: strangers knock first and wait for you (\`agentmesh knocks\`); \`agentmesh policy open\` takes messages from anyone`)
      }
      else if (registered !== undefined) out.note(`registered at ${registered}`)
      const shownName = created ? name : id.name
      out.result({ amid: id.amid, ...(shownName === undefined ? {} : { name: shownName }), home, created, registered: registered !== undefined, ...(registered === undefined ? {} : { server: registered }) }, id.amid)
    })

  withCommon(program.command('whoami')
    .description('print this agent\'s AMID'), { server: false })
    .action((o: CommonOpts) => {
      const home = homeOf(o, io.env)
      const id = loadIdentity(home, passphraseOf(io.env))
      output(o.json === true, io).result({ amid: id.amid, ...(id.name === undefined ? {} : { name: id.name }), home }, id.amid)
    })

  withCommon(program.command('register')
    .description('register this agent with the relay (connect once), so others can send to it')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (o: CommonOpts & { timeout: string }) => {
      const home = homeOf(o, io.env)
      const id = loadIdentity(home, passphraseOf(io.env))
      const url = await registerAt(io.env, serverOf(o, io.env), home, parsePositive('--timeout', o.timeout) * 1000)
      output(o.json === true, io).result({ amid: id.amid, server: url, registered: true }, `${id.amid} registered at ${url}`)
    })
}
