/**
 * `agentmesh mcp`: the agent of this home as an MCP server over stdio (docs/protocol.md §23), for
 * MCP clients such as Claude Code or Cursor. stdout carries MCP JSON-RPC only; warnings go to
 * stderr. It ends when stdin closes (the client went away) or on Ctrl-C / SIGTERM.
 */
import type { Readable, Writable } from 'node:stream'
import type { Command } from 'commander'
import { connect, SDK_VERSION, type Connection } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { parsePositive } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

interface McpOpts extends CommonOpts { schemaMode?: string, timeout: string }

export function mcpCommand (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('mcp')
    .description('serve this agent as an MCP server over stdio (tools: send_message, wait_for_messages, knock, rooms, tasks, peer_info, …); stdout carries MCP only, warnings go to stderr; ends when stdin closes')
    .option('--schema-mode <mode>', 'incoming payloads that do not match this agent\'s declared schemas: warn (delivered, marked) or strict (refused, the sender told) (env AGENTMESH_SCHEMA_MODE)')
    .option('--timeout <sec>', 'wait this long for the relay at start; after that the server runs and sends wait in the outbox until it can be reached', '10'))
    .action(async (o: McpOpts) => {
      const ms = parsePositive('--timeout', o.timeout) * 1000
      const mode = o.schemaMode ?? io.env.AGENTMESH_SCHEMA_MODE
      if (mode !== undefined && mode !== '' && mode !== 'warn' && mode !== 'strict') throw new AgentMeshError(ErrorCode.InvalidArgument, `--schema-mode must be warn or strict, got "${mode.slice(0, 40)}"`)
      // warnings on stderr, one line each: stdout is the MCP channel
      const warn = (w: AgentMeshError): void => { io.stderr.write(`agentmesh mcp: ${w.code}: ${w.message.replaceAll('\n', ' ')}\n`) }
      const stop = new AbortController()
      const release = io.onInterrupt(() => { stop.abort() })
      let conn: Connection | undefined
      try {
        const server = serverOf(o, io.env)
        conn = await connect({
          server,
          home: homeOf(o, io.env),
          ...passphraseOf(io.env),
          connectTimeoutMs: ms,
          queueWhenUnreachable: true,
          ...(mode === undefined || mode === '' ? {} : { schemas: { mode: mode as 'warn' | 'strict' } }),
          onWarning: warn,
          onKnock: (k) => { io.stderr.write(`agentmesh mcp: knock ${k.id} from ${k.from} is held (answer with the answer_knock tool)\n`) },
        })
        if (!conn.connected) warn(new AgentMeshError(ErrorCode.ConnectFailed, `the relay at ${server} cannot be reached yet; serving anyway, sends wait in the outbox`))
        const own = io.stdout === process.stdout && io.stdin === process.stdin ? {} : { stdin: io.stdin as Readable, stdout: io.stdout as unknown as Writable }
        // loaded when served: the MCP SDK and its schemas are not every command's start-up cost
        const { serveMcpStdio } = await import('@agentmesh/mcp')
        const mcp = serveMcpStdio(conn, { server, version: SDK_VERSION, onError: warn, ...own })
        await Promise.race([mcp.closed, new Promise<void>((resolve) => { stop.signal.addEventListener('abort', () => { resolve() }, { once: true }) })])
        await mcp.close()
      } finally {
        await conn?.close()
        release()
      }
    })
}
