import type { Command } from 'commander'
import { MAX_SENT_LOG } from '@agentmesh/client'
import { stripUnsafeChars } from '@agentmesh/protocol'
import { checkAmid, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, parseInteger } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'


export function sentCommand (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('sent')
    .description('what became of the direct messages this agent sent lately: stored (queued at the relay), delivered and processed (receipts, for messages sent with --receipts), refused or held back by the receiver, or resent after it lost its state (newest last)')
    .argument('[amid]', 'only messages to this agent')
    .option('--limit <n>', 'show at most this many (the newest)', '20')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (peer: string | undefined, o: CommonOpts & { limit: string, timeout: string }) => {
      const out = output(o.json === true, io)
      if (peer !== undefined) checkAmid('recipient', peer)
      const limit = parseInteger('--limit', o.limit, 1, MAX_SENT_LOG)
      // the connection acts on notices waiting for this agent before the log is read
      const entries = await withConnection(io, o, out, async (c) => c.sent({ ...(peer === undefined ? {} : { peer }), limit }))
      if (o.json === true) {
        for (const e of entries) out.result({ ...e }, '')
        return
      }
      if (entries.length === 0) { io.stdout.write('no direct messages sent lately\n'); return }
      for (const e of entries) {
        const when = new Date(e.at).toISOString()
        const extra = e.status === 'refused' || e.status === 'held'
          ? ` ${e.code ?? ''}${e.until === undefined ? '' : ` until ${new Date(e.until).toISOString()}`}${e.reason === undefined ? '' : `: ${stripUnsafeChars(e.reason)}`}`
          : e.status === 'resent' ? ` as ${e.resentAs ?? '?'}`
            : e.status === 'processed' ? ` at ${new Date(e.processedAt ?? 0).toISOString()}`
              : e.status === 'delivered' ? ` at ${new Date(e.deliveredAt ?? 0).toISOString()}` : ''
        io.stdout.write(`${when} ${e.id} → ${e.to} [${e.type}] ${e.status}${extra}\n`)
      }
    })
}
