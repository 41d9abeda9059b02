/**
 * Direct links on the command line (docs/protocol.md §29): `listen --p2p` (its options here) and
 * `agentmesh peers`. The libp2p node lives in the `listen` process; it writes what it knows of
 * its peers to `p2p-peers.json` in the agent's home (0600, every few seconds), which `peers` reads.
 * Without a listening process, `peers` lists the agents this one has sessions with, on the relay path.
 */
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { Connection, P2POptions, PeerInfo } from '@agentmesh/client'
import { isAmid } from '@agentmesh/crypto'
import { stripUnsafeChars } from '@agentmesh/protocol'
import { homeOf, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, usage } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

/** The file `listen --p2p` keeps its peers in, in the agent's home. */
export const PEERS_FILE = 'p2p-peers.json'
/** How often `listen --p2p` writes it (ms); `peers` takes it as live when it is younger than three times that. */
export const PEERS_FILE_EVERY_MS = 5_000
/** Peers written at most. */
export const MAX_PEERS_LISTED = 256
/** --p2p-listen and --p2p-peer values taken at most. */
const MAX_P2P_ARGS = 16

export interface P2PFlags { p2p?: boolean, p2pListen?: string[], p2pPeer?: string[], p2pBootstrap?: string[], p2pPrivate?: boolean }

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

/** Adds listen's direct-link options. */
export function p2pOptions (cmd: Command): Command {
  return cmd
    .option('--p2p', 'also take and send direct messages over direct links (libp2p), the relay as fallback; opens a listening port (env AGENTMESH_P2P=1)')
    .option('--p2p-listen <multiaddr>', 'where the direct links listen (repeatable) [default: /ip4/127.0.0.1/tcp/0]', collect)
    .option('--p2p-peer <amid=multiaddr>', 'a peer\'s address, for direct messages to it (repeatable)', collect)
    .option('--p2p-bootstrap <multiaddr>', 'a DHT bootstrap peer, ending in /p2p/<peer id> (repeatable; env AGENTMESH_P2P_BOOTSTRAP, comma-separated); without one, peers are found in the registry', collect)
    .option('--p2p-private', 'do not publish this agent\'s direct addresses in its registry profile (peers then need --p2p-peer or the DHT)')
}

/** connect()'s `p2p` option from listen's flags; undefined when direct links are off. */
export function p2pOf (o: P2PFlags, env: CliIo['env']): P2POptions | undefined {
  const on = o.p2p === true || env.AGENTMESH_P2P === '1' || o.p2pListen !== undefined || o.p2pPeer !== undefined || o.p2pBootstrap !== undefined || o.p2pPrivate === true
  if (!on) return undefined
  const listen = o.p2pListen ?? []
  const peerArgs = o.p2pPeer ?? []
  const bootstrap = o.p2pBootstrap ?? (env.AGENTMESH_P2P_BOOTSTRAP ?? '').split(',').map(a => a.trim()).filter(a => a !== '')
  if (listen.length > MAX_P2P_ARGS || peerArgs.length > MAX_P2P_ARGS || bootstrap.length > MAX_P2P_ARGS) throw usage(`--p2p-listen, --p2p-peer and --p2p-bootstrap are taken at most ${MAX_P2P_ARGS} times each`)
  for (const a of listen) if (!a.startsWith('/')) throw usage(`--p2p-listen takes a multiaddr such as /ip4/127.0.0.1/tcp/4001, got "${stripUnsafeChars(a).slice(0, 80)}"`)
  for (const a of bootstrap) if (!a.startsWith('/') || !a.includes('/p2p/')) throw usage(`--p2p-bootstrap (or AGENTMESH_P2P_BOOTSTRAP) takes multiaddrs ending in /p2p/<peer id>, such as /ip4/10.0.0.5/tcp/4001/p2p/12D3Koo…, got "${stripUnsafeChars(a).slice(0, 80)}"`)
  const peers: Record<string, string[]> = {}
  for (const p of peerArgs) {
    const i = p.indexOf('=')
    const amid = p.slice(0, i)
    const addr = p.slice(i + 1)
    if (i < 0 || !isAmid(amid) || !addr.startsWith('/')) throw usage(`--p2p-peer takes <amid>=<multiaddr>, e.g. am_…=/ip4/127.0.0.1/tcp/4001, got "${stripUnsafeChars(p).slice(0, 80)}"`)
    ;(peers[amid] ??= []).push(addr)
  }
  return { ...(listen.length > 0 ? { listen } : {}), ...(peerArgs.length > 0 ? { peers } : {}), ...(bootstrap.length > 0 ? { bootstrap } : {}), ...(o.p2pPrivate === true ? { publish: false } : {}) }
}

/** A peer as `peers --json` prints it. */
export function peerJson (p: PeerInfo): Record<string, unknown> {
  return { amid: p.amid, path: p.path, rtt_ms: p.rttMs === null ? null : Math.round(p.rttMs * 10) / 10, addrs: p.addrs }
}

/**
 * While `listen --p2p` runs: writes the node's addresses and peers to the home's PEERS_FILE every
 * PEERS_FILE_EVERY_MS (0600, replaced in one rename); the returned function stops and removes it.
 */
export function keepPeersFile (conn: Connection, home: string): () => void {
  const path = join(home, PEERS_FILE)
  let writing = false
  const write = async (): Promise<void> => {
    if (writing) return
    writing = true
    try {
      const peers = (await conn.peers()).slice(0, MAX_PEERS_LISTED)
      const tmp = `${path}.${process.pid}.tmp`
      writeFileSync(tmp, JSON.stringify({ updated_at: Date.now(), pid: process.pid, addrs: conn.p2pAddresses(), peers: peers.map(peerJson) }) + '\n', { mode: 0o600 })
      chmodSync(tmp, 0o600)
      renameSync(tmp, path)
    } catch {
      // the next round tries again; `peers` falls back to the sessions meanwhile
    } finally {
      writing = false
    }
  }
  void write()
  const t = setInterval(() => { void write() }, PEERS_FILE_EVERY_MS)
  t.unref()
  return () => { clearInterval(t); rmSync(path, { force: true }) }
}

interface PeersFile { updated_at: number, addrs: string[], peers: Array<Record<string, unknown>> }

function readPeersFile (home: string, now = Date.now()): PeersFile | undefined {
  try {
    const f = JSON.parse(readFileSync(join(home, PEERS_FILE), 'utf8')) as PeersFile
    if (typeof f.updated_at !== 'number' || now - f.updated_at > 3 * PEERS_FILE_EVERY_MS || !Array.isArray(f.peers)) return undefined
    return f
  } catch {
    return undefined
  }
}

export function peersCommand (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('peers')
    .description('the agents this one knows and the path a direct message to each takes: direct, relayed-circuit or relay, with the round-trip time of a direct link (from a running `agentmesh listen --p2p`, else the agents it has sessions with)')
    .option('--timeout <sec>', 'give up after this many seconds', '10'))
    .action(async (o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      const live = readPeersFile(homeOf(o, io.env))
      const peers = live !== undefined
        ? live.peers.filter(p => typeof p.amid === 'string' && isAmid(p.amid)).slice(0, MAX_PEERS_LISTED)
        : (await withConnection(io, o, out, async (c) => await c.peers())).map(peerJson)
      if (live === undefined) out.note('no `agentmesh listen --p2p` runs for this agent: the agents it has sessions with, on the relay path')
      else out.note(`this agent's direct links listen on ${live.addrs.map(a => stripUnsafeChars(String(a))).join(', ') || 'nothing'}`)
      if (o.json === true) {
        for (const p of peers) out.result(p, '')
        return
      }
      if (peers.length === 0) { io.stdout.write('no known peers\n'); return }
      for (const p of peers) {
        const rtt = typeof p.rtt_ms === 'number' ? `${p.rtt_ms} ms` : '-'
        const addrs = Array.isArray(p.addrs) ? p.addrs.map(a => stripUnsafeChars(String(a))).join(' ') : ''
        io.stdout.write(`${String(p.amid)} ${stripUnsafeChars(String(p.path))} ${rtt}${addrs === '' ? '' : ` ${addrs}`}\n`)
      }
    })
}
