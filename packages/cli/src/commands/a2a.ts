/**
 * `agentmesh a2a …` (docs/protocol.md §24): the A2A bridge.
 * - `a2a enable|disable|status`: this agent's setting on the relay (off by default); enabled, A2A
 *   clients find it at `<relay>/a2a/<amid>/` and their messages reach it as `a2a` tasks.
 * - `a2a card [target]`: an agent card (this agent's on the relay; an agent's on the relay by AMID
 *   or @handle; or any A2A agent's by URL).
 * - `a2a send <target> <text>`: calls an A2A agent (a URL, or an agent on the relay by AMID or
 *   @handle) and prints its answer, fenced as untrusted text (`--json`: one object, `untrusted: true`).
 */
import type { Command } from 'commander'
import { a2aCard, a2aSend, fenceUntrusted, httpOrigin, relayUrls, type A2aUpdate } from '@agentmesh/client'
import { stripUnsafeChars } from '@agentmesh/protocol'
import { output, parsePositive, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { serverOf, withCommon, type CommonOpts } from '../common.ts'
import { apiOf, stopper } from './chat.ts'

type SendOpts = CommonOpts & { stream?: boolean, timeout: string, context?: string }

/** A URL as given, else an agent on the relay (AMID or @handle) as its bridge URL. */
function targetUrl (target: string, o: CommonOpts, io: Pick<CliIo, 'env'>): string {
  if (/^https?:\/\//i.test(target)) return target
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) throw usage(`an A2A agent is reached over http or https: "${target.slice(0, 80)}" is neither (give its URL, or an AMID or @handle on the relay)`)
  const origin = httpOrigin(relayUrls(serverOf(o, io.env))[0]!)
  return `${origin}/a2a/${encodeURIComponent(target).replace(/^%40/, '@')}/`
}

const safe = (s: string): string => stripUnsafeChars(s)

function printUpdate (out: Out, io: CliIo, u: A2aUpdate): void {
  if (out.json) { out.result({ update: { kind: u.kind, ...(u.state === undefined ? {} : { state: u.state }), ...(u.text === undefined ? {} : { text: u.text }) }, untrusted: true }, ''); return }
  io.stderr.write(`a2a: ${u.kind}${u.state === undefined ? '' : ` ${u.state}`}\n`)
}

async function setting (o: CommonOpts, io: CliIo, enabled: boolean | undefined): Promise<void> {
  const out = output(o.json === true, io)
  const api = apiOf(o, io)
  const path = `/api/v1/agents/${api.identity().amid}/a2a`
  const s = enabled === undefined ? await api.call('getA2a', path) : await api.call('putA2a', path, { enabled })
  out.result({ ...s }, s.enabled
    ? `A2A bridge on for ${s.amid}\n  card:     ${s.card_url}\n  endpoint: ${s.url} (JSON-RPC)\n  end-to-end encryption ends at the bridge: the relay reads A2A messages and the answers`
    : `A2A bridge off for ${s.amid} (its card answers 404)`)
}

export function a2aCommands (program: Command, io: CliIo = processIo()): void {
  const a2a = program.command('a2a').description('the A2A bridge: let A2A clients reach this agent through the relay, and call A2A agents')
  withCommon(a2a.command('enable').description('serve this agent\'s A2A card and JSON-RPC endpoint on the relay (end-to-end encryption ends at the bridge)'))
    .action(async (o: CommonOpts) => { await setting(o, io, true) })
  withCommon(a2a.command('disable').description('stop serving them (the card answers 404)'))
    .action(async (o: CommonOpts) => { await setting(o, io, false) })
  withCommon(a2a.command('status').description('whether the bridge is on for this agent, and its URLs'))
    .action(async (o: CommonOpts) => { await setting(o, io, undefined) })

  withCommon(a2a.command('card')
    .description('an A2A agent card: this agent\'s on the relay, an agent\'s on the relay (AMID or @handle), or any A2A agent\'s (URL)')
    .argument('[target]', 'a URL (the agent\'s base URL or its card\'s), or an AMID or @handle on the relay; default: this agent'))
    .action(async (target: string | undefined, o: CommonOpts) => {
      const out = output(o.json === true, io)
      const ref = target ?? apiOf(o, io).identity().amid
      const card = await a2aCard(targetUrl(ref, o, io)) as Record<string, unknown>
      // a remote card is the remote's text: printed as JSON (escaped), never as terminal output of its own
      out.result(card, JSON.stringify(card, null, 2))
    })

  withCommon(a2a.command('send')
    .description('send text to an A2A agent and print its answer (untrusted: fenced)')
    .argument('<target>', 'the A2A agent: its URL, or an AMID or @handle on the relay (through its bridge)')
    .argument('<text>', 'what to send')
    .option('--stream', 'stream the task\'s updates (SendStreamingMessage) instead of waiting for the answer')
    .option('--context <id>', 'continue a context (a previous answer\'s context_id)')
    .option('--timeout <sec>', 'give up after this many seconds', '120'))
    .action(async (target: string, text: string, o: SendOpts) => {
      const out = output(o.json === true, io)
      const url = targetUrl(target, o, io)
      const stop = stopper(io, parsePositive('--timeout', o.timeout))
      try {
        const reply = await a2aSend(url, text, {
          signal: stop.signal,
          ...(o.stream === true ? { stream: true, onUpdate: (u: A2aUpdate) => { printUpdate(out, io, u) } } : {}),
          ...(o.context === undefined ? {} : { contextId: o.context }),
        })
        const json = {
          url,
          agent: reply.agent,
          kind: reply.kind,
          ...(reply.taskId === undefined ? {} : { task_id: reply.taskId }),
          context_id: reply.contextId,
          ...(reply.state === undefined ? {} : { state: reply.state }),
          text: reply.text,
          untrusted: true,
        }
        const header = `${safe(reply.agent).slice(0, 200)} (${url})${reply.state === undefined ? '' : `: ${reply.state}`}${reply.taskId === undefined ? '' : ` · task ${reply.taskId}`} · context ${reply.contextId}`
        out.result(json, `${header}\n${fenceUntrusted(safe(reply.text), { from: url, tier: 'anonymous', scopes: [] })}`)
      } finally {
        stop.release()
      }
    })
}
