import type { Command } from 'commander'
import { createRelay, defaultLogger } from '@agentmesh/server'
import { ErrorCode } from '@agentmesh/protocol'
import { output } from '../output.ts'
import { addRelayFlags, relayInitFrom } from './serve-config.ts'

export { readConfigFile } from './serve-config.ts'

interface ServeOpts {
  config?: string
  json?: boolean
  /** the relay's own flags, by commander attribute name (see serve-config.ts) */
  [flag: string]: unknown
}

export function serveCommand (program: Command): void {
  const serve = program.command('serve')
    .description('run a relay: WebSocket and HTTP on one port, SQLite under the data directory')
  // the relay's flags come from its option schema (serve-config.ts); --config keeps its place after --memory
  addRelayFlags(serve, { memory: (c) => c.option('--config <file>', 'JSON config file (flags and environment override it; env AGENTMESH_CONFIG)') })
  serve
    .option('--json', 'print the listening address as JSON')
    .action(async (o: ServeOpts, cmd: Command) => {
      const out = output(o.json === true)
      const configPath = o.config ?? process.env.AGENTMESH_CONFIG
      const init = relayInitFrom(o, cmd, process.env, configPath)
      // signal handlers first: a SIGTERM that arrives while starting still stops cleanly
      let stopRequested: ((sig: string) => void) | undefined
      let pendingSignal: string | undefined
      let signals = 0
      const onSignal = (sig: string): void => {
        if (++signals > 1) process.exit(1) // a second signal: leave now
        if (stopRequested !== undefined) stopRequested(sig)
        else pendingSignal = sig
      }
      process.on('SIGINT', () => { onSignal('SIGINT') })
      process.on('SIGTERM', () => { onSignal('SIGTERM') })
      const relay = await createRelay({ ...init, logger: defaultLogger() })
      await new Promise<void>((resolve) => {
        stopRequested = (sig) => {
          out.note(`${sig}: stopping (committing pending messages, closing connections)`)
          relay.close().then(resolve, (err) => {
            process.stderr.write(`agentmesh: error ${ErrorCode.Internal}: shutdown failed: ${(err as Error).message}\n`)
            process.exit(1)
          })
        }
        const operator = relay.apiKeyFile !== undefined
          ? `operator API key: in ${relay.apiKeyFile} (send it as X-API-Key)`
          : relay.operatorApi ? 'operator API key: as given' : 'operator API: off (no --api-key / AGENTMESH_API_KEY)'
        out.result(
          { event: 'listening', url: relay.url, ws_url: relay.wsUrl, port: relay.port, storage: relay.storage, pid: process.pid, relay_amid: relay.relayAmid, ...(relay.apiKeyFile === undefined ? {} : { api_key_file: relay.apiKeyFile }), operator_api: relay.operatorApi },
          `AgentMesh relay listening on ${relay.url} (WebSocket ${relay.wsUrl})\ndata: ${relay.storage}${relay.storage === 'memory' ? ' (nothing survives a restart)' : ''}\n${operator}`,
        )
        if (pendingSignal !== undefined) stopRequested(pendingSignal)
      })
      out.result({ event: 'stopped' }, 'relay stopped')
    })
}
