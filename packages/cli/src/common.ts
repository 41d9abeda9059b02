import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { defaultHome, isAmid } from '@agentmesh/crypto'
import { connect, defaultServer, type Connection } from '@agentmesh/client'
import { parsePositive, usage, type Out } from './output.ts'
import type { CliIo } from './io.ts'

export interface CommonOpts { json?: boolean, server?: string, home?: string }

/** Options every client command takes. */
export function withCommon (cmd: Command, { server = true } = {}): Command {
  cmd.option('--json', 'one JSON object per line on stdout; errors as JSON on stderr')
  cmd.addOption(new Option('--home <dir>', 'agent home (identity, outbox, cursor)').env('AGENTMESH_HOME'))
  if (server) cmd.addOption(new Option('--server <url>', 'relay address, ws://host:port or http://host:port; several nodes of one cluster separated by commas (failover)').env('AGENTMESH_SERVER'))
  return cmd
}

export function homeOf (o: CommonOpts, env: CliIo['env'] = process.env): string {
  return o.home !== undefined && o.home !== '' ? resolve(o.home) : defaultHome(env)
}

export function serverOf (o: CommonOpts, env: CliIo['env'] = process.env): string {
  return o.server !== undefined && o.server !== '' ? o.server : defaultServer(env)
}

/**
 * What connect() would read from process.env, read from `env` instead: the passphrase of the agent's
 * state database, and the session certificate to act with (AGENTMESH_SESSION, `agentmesh cert session`).
 */
export function passphraseOf (env: CliIo['env']): { passphrase: string, session: string } {
  return { passphrase: env.AGENTMESH_PASSPHRASE ?? '', session: env.AGENTMESH_SESSION ?? '' }
}

export function checkAmid (what: string, s: string): string {
  if (!isAmid(s)) throw usage(`${what} "${s.slice(0, 80)}" is not an AMID (it starts with "am" followed by 43–46 base58 characters; \`agentmesh whoami\` prints yours)`)
  return s
}

/**
 * Runs `fn` with a connection that receives nothing (commands that read or change the agent's
 * state, or send), closing it afterwards. With `flush`, what `fn` sent is acknowledged by the
 * relay first (within --timeout).
 */
export async function withConnection<T> (io: Pick<CliIo, 'env'>, o: CommonOpts & { timeout: string }, out: Out, fn: (c: Connection) => Promise<T>, { flush = false } = {}): Promise<T> {
  const ms = parsePositive('--timeout', o.timeout) * 1000
  const conn = await connect({ server: serverOf(o, io.env), home: homeOf(o, io.env), ...passphraseOf(io.env), deliver: false, connectTimeoutMs: ms, onWarning: (w) => { out.warn(w) } })
  try {
    const r = await fn(conn)
    if (flush) await conn.flush({ signal: AbortSignal.timeout(ms) })
    return r
  } finally {
    await conn.close()
  }
}
