/**
 * `agentmesh webhook set <url> | show | clear` (docs/protocol.md §26): the agent's wake webhook,
 * where the relay POSTs a signed, content-free "you have N messages" notice while the agent has no
 * open connection. The URL may hold the endpoint's own secret: it is printed back to its owner only.
 */
import type { Command } from 'commander'
import { webhook } from '@agentmesh/client'
import { withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

type Opts = CommonOpts & { timeout: string }

export function webhookCommands (program: Command, io: CliIo = processIo()): void {
  const cmd = program.command('webhook')
    .description('the wake webhook: the relay POSTs a signed, content-free notice ({amid, pending, ts}) to it while this agent has no open connection (`webhook set <url>`, `webhook show`, `webhook clear`)')

  withCommon(cmd.command('set')
    .description('register (or replace) this agent\'s wake webhook; the relay refuses private, loopback and link-local addresses unless its operator allows them')
    .argument('<url>', 'an https:// URL')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (url: string, o: Opts) => {
      const out = output(o.json === true, io)
      const r = await withConnection(io, o, out, async (c) => await webhook(c).set(url))
      out.result({ ...r }, `wake webhook set: ${r.url ?? ''}\nnotices are signed by the relay ${r.relay_amid} (Ed25519; verify with verifyWakeNotice() from @agentmesh/client)`)
    })

  withCommon(cmd.command('show')
    .description('this agent\'s wake webhook, and who signs its notices')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (o: Opts) => {
      const out = output(o.json === true, io)
      const r = await withConnection(io, o, out, async (c) => await webhook(c).show())
      out.result({ ...r }, r.url === null ? `no wake webhook (notices would be signed by the relay ${r.relay_amid})` : `wake webhook: ${r.url} (since ${new Date(r.created_at ?? 0).toISOString()}), signed by the relay ${r.relay_amid}`)
    })

  withCommon(cmd.command('clear')
    .description('remove this agent\'s wake webhook: notices stop')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (o: Opts) => {
      const out = output(o.json === true, io)
      const removed = await withConnection(io, o, out, async (c) => await webhook(c).clear())
      out.result({ removed }, removed ? 'wake webhook removed' : 'this agent had no wake webhook')
    })
}
