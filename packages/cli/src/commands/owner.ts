/**
 * `agentmesh owner`: verified owners (docs/protocol.md §28). `owner link` starts a link at the
 * relay, prints the provider's sign-in URL for the owner, waits until they signed in, then the agent
 * signs the statement and the link is stored (the agent's tier reads verified); `owner show` reads
 * an agent's owner; `owner unlink` removes this agent's.
 */
import type { Command } from 'commander'
import { httpOrigin, linkOwner, ownerOf, unlinkOwner, relayUrls, type OwnerLink } from '@agentmesh/client'
import { loadIdentity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { checkAmid, homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parseInteger } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

/** The provider's text (a name) is untrusted: no control, bidi or invisible characters reach the terminal. */
const printable = (s: string): string => s.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '?').slice(0, 256)

const describe = (l: OwnerLink): string =>
  `${l.amid} is owned by ${l.name === undefined ? '' : `${printable(l.name)} `}(${printable(l.subject)} at ${printable(l.issuer)}), linked ${new Date(l.linked_at).toISOString()}`

export function ownerCommands (program: Command, io: CliIo = processIo()): void {
  const owner = program.command('owner').description('verified owners: link the identity of this agent\'s owner at the relay\'s OpenID Connect provider (the verified tier)')

  withCommon(owner.command('link')
    .description('link this agent to its owner: prints a sign-in URL for the owner, waits until they signed in, then the agent signs the link')
    .option('--wait <sec>', 'how long to wait for the owner to sign in, in seconds (at most 600)', '600'))
    .action(async (o: CommonOpts & { wait: string }) => {
      const out = output(o.json === true, io)
      const waitS = parseInteger('--wait', o.wait, 1, 600)
      const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
      const origin = httpOrigin(relayUrls(serverOf(o, io.env))[0]!)
      const link = await linkOwner({
        origin, identity: id, timeoutMs: waitS * 1000,
        onAuthorizationUrl: (url, expiresAt) => {
          if (out.json) io.stdout.write(JSON.stringify({ authorization_url: url, expires_at: expiresAt }) + '\n')
          else io.stdout.write(`Open this address and sign in as the owner of ${id.amid} (within 10 minutes):\n${url}\n`)
        },
      })
      out.result(link, `linked: ${describe(link)}; its tier is verified`)
    })

  withCommon(owner.command('show')
    .description('the verified owner of this agent, or of another agent by AMID')
    .argument('[amid]', 'an agent (default: this one)'))
    .action(async (amid: string | undefined, o: CommonOpts) => {
      const out = output(o.json === true, io)
      const who = amid === undefined ? loadIdentity(homeOf(o, io.env), passphraseOf(io.env)).amid : checkAmid('amid', amid)
      const origin = httpOrigin(relayUrls(serverOf(o, io.env))[0]!)
      const l = await ownerOf(origin, who)
      if (l === undefined) throw new AgentMeshError(ErrorCode.NotFound, `${who} has no verified owner on this relay: \`agentmesh owner link\` links one`)
      out.result(l, describe(l))
    })

  withCommon(owner.command('unlink')
    .description('remove this agent\'s verified owner (its tier drops to what its certificate gives)'))
    .action(async (o: CommonOpts) => {
      const out = output(o.json === true, io)
      const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
      const origin = httpOrigin(relayUrls(serverOf(o, io.env))[0]!)
      const r = await unlinkOwner(origin, id)
      out.result(r, `unlinked: ${id.amid} has no verified owner now`)
    })

  // nested subcommands report their errors through run(), like the top-level ones
  owner.exitOverride().configureOutput({ outputError: () => {} })
  for (const s of owner.commands) s.exitOverride().configureOutput({ outputError: () => {} })
}
