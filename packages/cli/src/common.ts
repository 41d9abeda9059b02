import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { defaultHome, isAmid } from '@agentmesh/crypto'
import { defaultServer } from '@agentmesh/client'
import { usage } from './output.ts'

export interface CommonOpts { json?: boolean, server?: string, home?: string }

/** Options every client command takes. */
export function withCommon (cmd: Command, { server = true } = {}): Command {
  cmd.option('--json', 'one JSON object per line on stdout; errors as JSON on stderr')
  cmd.addOption(new Option('--home <dir>', 'agent home (identity, outbox, cursor)').env('AGENTMESH_HOME'))
  if (server) cmd.addOption(new Option('--server <url>', 'relay address, ws://host:port or http://host:port').env('AGENTMESH_SERVER'))
  return cmd
}

export function homeOf (o: CommonOpts): string {
  return o.home !== undefined && o.home !== '' ? resolve(o.home) : defaultHome()
}

export function serverOf (o: CommonOpts): string {
  return o.server !== undefined && o.server !== '' ? o.server : defaultServer()
}

export function checkAmid (what: string, s: string): string {
  if (!isAmid(s)) throw usage(`${what} "${s.slice(0, 80)}" is not an AMID (it starts with "am" followed by 43–46 base58 characters; \`agentmesh whoami\` prints yours)`)
  return s
}
