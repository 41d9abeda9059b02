/**
 * `agentmesh swarm join|publish|listen|peers` (docs/protocol.md, "Swarm topics"): a swarm node over
 * libp2p gossipsub with the agent's home identity, for as long as the command runs. Swarm text
 * comes from peers and is untrusted: printed fenced in text mode, marked `untrusted: true` in
 * --json. The last sequence number used per topic is kept in the agent home (`swarm-seq.json`,
 * 0600), so a later `publish` continues the author's sequence instead of reusing a number (which
 * every validator would take for equivocation).
 *
 * `--encrypted` (listen, publish): an end-to-end encrypted topic (docs/protocol.md §32, the
 * client's `encryptedTopic`): the relay connection (`--server`) carries the sender keys over the
 * pairwise sessions; `--members` makes this agent the topic's owner (it signs the membership),
 * `--owner` names the owner whose signed membership comes with the first key. A plain `join` node
 * relays an encrypted topic as it is (it needs no key).
 */
import { readFileSync, openSync, closeSync, unlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { loadIdentity, writeSecretFile } from '@agentmesh/crypto'
import { connect, encryptedTopic, fenceUntrusted, type Connection, type EncryptedDelivery, type EncryptedTopic, type EncryptedTopicInit } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, stripUnsafeChars } from '@agentmesh/protocol'
import type { Swarm, SwarmDelivery, SwarmPeer } from '@agentmesh/swarm/net'
import { output, parseInteger, parsePositive, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { checkAmid, homeOf, passphraseOf, withCommon, type CommonOpts } from '../common.ts'

export const SWARM_SEQ_FILE = 'swarm-seq.json'
const SEQ_LOCK = 'swarm-seq.lock'
/** A lock older than this was left by a process that died: taken over. */
const STALE_LOCK_MS = 30_000

interface SwarmOpts extends CommonOpts {
  listen?: string[]
  bootstrap?: string[]
  region?: string
  timeout?: string
}

function withSwarm (cmd: Command): Command {
  withCommon(cmd, { server: false })
  cmd.addOption(new Option('--bootstrap <multiaddrs>', 'peers to dial first (the address another node printed, /ip4/…/tcp/…/p2p/…); several separated by commas, or the option repeated').env('AGENTMESH_SWARM_BOOTSTRAP').argParser(collect))
  cmd.addOption(new Option('--listen <multiaddrs>', 'addresses to listen on (default /ip4/127.0.0.1/tcp/0; /ip4/0.0.0.0/tcp/4001 to be reachable from other hosts); several separated by commas, or the option repeated').argParser(collect))
  cmd.option('--region <name>', 'this node\'s region: gossip stays inside it, a few links carry the rest; "auto": the region of the nearest first peers (default "default": no region)')
  return cmd
}

interface EncryptedOpts { encrypted?: boolean, members?: string[], owner?: string }

/** `--encrypted` and its companions (docs/protocol.md §32): the relay carries the sender keys. */
function withEncrypted (cmd: Command): Command {
  cmd.option('--encrypted', 'an end-to-end encrypted topic (its members only read it; sender keys travel over the relay): needs --server, and --members or --owner')
  cmd.addOption(new Option('--members <amids>', 'with --encrypted: this agent owns the topic and signs its membership: these AMIDs (commas, or the option repeated) are its members besides itself; a member left out of a later run is removed (everyone starts a new key)').argParser(collect))
  cmd.option('--owner <amid>', 'with --encrypted: the AMID of the topic\'s owner, whose signed membership comes with the first key')
  cmd.addOption(new Option('--server <url>', 'with --encrypted: the relay that carries the sender keys (ws://host:port)').env('AGENTMESH_SERVER'))
  return cmd
}

/** The encrypted topic's options, checked before any I/O (undefined: a plain topic). */
function encryptedInit (topic: string, o: EncryptedOpts & CommonOpts): EncryptedTopicInit | undefined {
  const members = split(o.members)
  if (o.encrypted !== true) {
    if (members.length > 0 || o.owner !== undefined) throw usage('--members and --owner are for an encrypted topic: add --encrypted')
    return undefined
  }
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(topic)) throw usage(`an encrypted topic's name is 1-64 characters of a-z 0-9 _ - starting with a letter or digit (its signed membership is named after it), not "${stripUnsafeChars(topic.slice(0, 40))}"`)
  if (o.server === undefined || o.server === '') throw usage('--encrypted needs the relay connection that carries the sender keys: give --server ws://host:port (or set AGENTMESH_SERVER)')
  if ((members.length > 0) === (o.owner !== undefined)) throw usage('--encrypted takes --members <amids> (this agent owns the topic) or --owner <amid> (another agent does), one of the two')
  if (o.owner !== undefined) return { owner: checkAmid('--owner', o.owner) }
  return { members: members.map(m => checkAmid('--members', m)) }
}

/** The relay connection (it only sends: keys that arrive are taken in without consuming the agent's messages) and the topic. */
async function openEncrypted (o: CommonOpts, io: CliIo, out: Out, s: Swarm, topic: string, init: EncryptedTopicInit): Promise<{ conn: Connection, t: EncryptedTopic }> {
  const conn = await connect({ server: o.server!, home: homeOf(o, io.env), ...passphraseOf(io.env), deliver: false, onWarning: (w) => { out.warn(w) } })
  try {
    const t = encryptedTopic(conn, s, topic, init)
    t.on('message:undecrypted', (e) => { out.warn(e.detail.error) })
    t.on('key:refused', (e) => { out.warn(e.detail.error) })
    return { conn, t }
  } catch (err) {
    await conn.close()
    throw err
  }
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v]
const split = (xs: string[] | undefined): string[] => (xs ?? []).flatMap(x => x.split(',')).map(x => x.trim()).filter(x => x !== '')

function checkTopicArg (topic: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(topic)) throw usage(`topic "${stripUnsafeChars(topic.slice(0, 40))}" is not a swarm topic (1-128 characters of A-Z a-z 0-9 . _ : / -, starting with a letter or digit)`)
  return topic
}

function readSeqs (home: string): Record<string, number> {
  try {
    const v = JSON.parse(readFileSync(join(home, SWARM_SEQ_FILE), 'utf8')) as unknown
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
    const out: Record<string, number> = {}
    for (const [k, n] of Object.entries(v)) if (Number.isSafeInteger(n) && (n as number) >= 0) out[k] = n as number
    return out
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new AgentMeshError(ErrorCode.InvalidConfig, `${join(home, SWARM_SEQ_FILE)} is not readable JSON: fix or remove it (removing it makes this agent reuse sequence numbers, which peers reject as equivocation)`)
  }
}

/** Holds the home's swarm sequence lock while `fn` runs (one publisher per identity at a time). */
async function withSeqLock<T> (home: string, fn: () => Promise<T>): Promise<T> {
  const path = join(home, SEQ_LOCK)
  for (let attempt = 0; ; attempt++) {
    try {
      closeSync(openSync(path, 'wx', 0o600))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      try { if (Date.now() - statSync(path).mtimeMs > STALE_LOCK_MS) { unlinkSync(path); continue } } catch { continue }
      if (attempt >= 100) throw new AgentMeshError(ErrorCode.Timeout, `another swarm command of this agent holds ${path}; try again when it ends`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  try { return await fn() } finally { try { unlinkSync(path) } catch {} }
}

async function startNode (o: SwarmOpts, io: CliIo, seqs: Record<string, number> = {}): Promise<Swarm> {
  const identity = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
  const { swarm } = await import('@agentmesh/swarm/net')
  const listen = split(o.listen)
  return await swarm({
    keys: identity,
    bootstrap: split(o.bootstrap),
    ...(listen.length === 0 ? {} : { listen }),
    ...(o.region === undefined ? {} : { region: o.region }),
    lastSeq: (topic) => seqs[topic] ?? 0,
  })
}

/** Waits (bounded) until the topic has a subscribed peer, or the time is up. */
async function waitForPeers (s: Swarm, topic: string, ms: number, signal: AbortSignal): Promise<number> {
  const end = Date.now() + ms
  for (;;) {
    const n = s.peers(topic).length
    if (n > 0 || Date.now() >= end || signal.aborted) return n
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

function stopSignal (io: CliIo, seconds: number | undefined): { signal: AbortSignal, release: () => void } {
  const ac = new AbortController()
  const release = io.onInterrupt(() => { ac.abort() })
  const timer = seconds === undefined ? undefined : setTimeout(() => { ac.abort() }, seconds * 1000)
  return { signal: ac.signal, release: () => { release(); if (timer !== undefined) clearTimeout(timer) } }
}

/** The node's addresses: a JSON line on stdout with --json, a note on stderr in text mode (stdout stays the messages). */
function printListening (out: Out, s: Swarm, topic: string): void {
  if (out.json) out.result({ listening: s.multiaddrs(), amid: s.amid, topic, region: s.region }, '')
  else out.note(`swarm node ${s.amid} in region ${s.region} on topic ${topic}; others bootstrap from:\n${s.multiaddrs().map(a => `  ${a}`).join('\n')}`)
}

function printMessage (out: Out, d: SwarmDelivery): void {
  const json = { topic: d.topic, id: d.id, author: d.author, seq: d.seq, ts: d.ts, ...(d.type === undefined ? {} : { type: d.type }), body: d.body, via: d.via, received_at: d.receivedAt, untrusted: true }
  const text = typeof d.body === 'string' ? d.body : JSON.stringify(d.body)
  const head = `${new Date(d.receivedAt).toISOString()} ${d.author} #${stripUnsafeChars(d.topic)} seq ${d.seq}${d.type === undefined ? '' : ` [${stripUnsafeChars(d.type)}]`}${d.via === 'reconcile' ? ' (recovered)' : ''}:`
  out.result(json, `${head}\n${fenceUntrusted(stripUnsafeChars(text), { from: d.author, tier: 'anonymous', scopes: [] })}`)
}

function printDecrypted (out: Out, d: EncryptedDelivery): void {
  const json = { topic: d.topic, id: d.id, author: d.author, seq: d.seq, ts: d.ts, ...(d.type === undefined ? {} : { type: d.type }), body: d.body, via: d.via, received_at: d.receivedAt, encrypted: true, untrusted: true }
  const text = typeof d.body === 'string' ? d.body : JSON.stringify(d.body)
  const head = `${new Date(d.receivedAt).toISOString()} ${d.author} #${stripUnsafeChars(d.topic)} seq ${d.seq}${d.type === undefined ? '' : ` [${stripUnsafeChars(d.type)}]`} (encrypted)${d.via === 'reconcile' ? ' (recovered)' : ''}:`
  out.result(json, `${head}\n${fenceUntrusted(stripUnsafeChars(text), { from: d.author, tier: 'anonymous', scopes: [] })}`)
}

function peerJson (p: SwarmPeer): Record<string, unknown> {
  return { amid: p.amid, peer_id: p.peerId, score: Number(p.score.toFixed(3)), mesh: p.mesh }
}

export function swarmCommands (program: Command, io: CliIo = processIo()): void {
  const cmd = program.command('swarm').description('swarm mode: topics gossiped between agents over libp2p, without a relay (the agent\'s home identity signs what it publishes)')

  withSwarm(cmd.command('join')
    .description('run a swarm node on a topic that relays its messages (and serves as a bootstrap for others) until Ctrl-C or --timeout; prints its addresses')
    .argument('<topic>', 'the topic')
    .option('--timeout <sec>', 'stop after this many seconds (default: until Ctrl-C)'))
    .action(async (topic: string, o: SwarmOpts) => {
      const out = output(o.json === true, io)
      checkTopicArg(topic)
      const seconds = o.timeout === undefined ? undefined : parsePositive('--timeout', o.timeout)
      const s = await startNode(o, io)
      const stop = stopSignal(io, seconds)
      try {
        s.join(topic)
        printListening(out, s, topic)
        await new Promise<void>(resolve => { if (stop.signal.aborted) resolve(); else stop.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
      } finally {
        stop.release()
        await s.close()
      }
    })

  withEncrypted(withSwarm(cmd.command('listen')
    .description('run a swarm node on a topic and print each verified message once (swarm text is untrusted: fenced, or "untrusted": true in --json); with --encrypted, each message decrypted (what cannot be is reported on stderr)')
    .argument('<topic>', 'the topic')
    .option('--count <n>', 'stop after this many messages')
    .option('--timeout <sec>', 'stop after this many seconds (default: until Ctrl-C); with --count, not having them all by then is an error')))
    .action(async (topic: string, o: SwarmOpts & EncryptedOpts & { count?: string }) => {
      const out = output(o.json === true, io)
      checkTopicArg(topic)
      const enc = encryptedInit(topic, o)
      const count = o.count === undefined ? undefined : parseInteger('--count', o.count, 1)
      const seconds = o.timeout === undefined ? undefined : parsePositive('--timeout', o.timeout)
      const s = await startNode(o, io)
      const stop = stopSignal(io, seconds)
      let n = 0
      let conn: Connection | undefined
      try {
        if (enc !== undefined) {
          const e = await openEncrypted(o, io, out, s, topic, enc)
          conn = e.conn
          const it = e.t.subscribe({ signal: stop.signal })
          printListening(out, s, topic)
          for await (const d of it) {
            if (d.via === 'self') continue
            printDecrypted(out, d)
            n++
            if (count !== undefined && n >= count) break
          }
        } else {
          const it = s.subscribe(topic, { signal: stop.signal })
          printListening(out, s, topic)
          for await (const d of it) {
            printMessage(out, d)
            n++
            if (count !== undefined && n >= count) break
          }
        }
      } finally {
        stop.release()
        await s.close()
        await conn?.close()
      }
      if (count !== undefined && n < count && seconds !== undefined) {
        throw new AgentMeshError(ErrorCode.Timeout, `received ${n} of ${count} swarm messages within ${seconds} s (--timeout)`)
      }
    })

  withEncrypted(withSwarm(cmd.command('publish')
    .description('sign a message as this agent and publish it on a topic: starts a node, dials --bootstrap, waits for a peer on the topic (up to --wait), publishes, lets the message leave, stops; with --encrypted, the body is encrypted for the topic\'s members (this agent\'s sender key handed to them over the relay first)')
    .argument('<topic>', 'the topic')
    .argument('<text>', 'the message (a string; with --json-body, a JSON value)')
    .option('--type <type>', 'an application type (a-z 0-9 . _ : -)')
    .option('--json-body', 'the text is a JSON value, sent as such')
    .option('--wait <sec>', 'how long to wait for a peer on the topic before publishing anyway (default 5)', '5')
    .option('--linger <sec>', 'how long to stay after publishing, so peers can fetch the message (default 1)', '1')))
    .action(async (topic: string, text: string, o: SwarmOpts & EncryptedOpts & { type?: string, jsonBody?: boolean, wait: string, linger: string }) => {
      const out = output(o.json === true, io)
      checkTopicArg(topic)
      const enc = encryptedInit(topic, o)
      if (o.type !== undefined && !/^[a-z][a-z0-9._:-]{0,63}$/.test(o.type)) throw usage('--type must be 1-64 characters of a-z 0-9 . _ : - starting with a letter')
      let body: unknown = text
      if (o.jsonBody === true) {
        try { body = JSON.parse(text) } catch { throw usage('with --json-body the text must be a JSON value') }
      }
      const wait = parsePositive('--wait', o.wait)
      const linger = parsePositive('--linger', o.linger)
      const home = homeOf(o, io.env)
      await withSeqLock(home, async () => {
        const seqs = readSeqs(home)
        const s = await startNode(o, io, seqs)
        const stop = stopSignal(io, undefined)
        let conn: Connection | undefined
        try {
          const t = enc === undefined ? undefined : await openEncrypted(o, io, out, s, topic, enc)
          conn = t?.conn
          s.join(topic)
          const peers = await waitForPeers(s, topic, wait * 1000, stop.signal)
          const opts = o.type === undefined ? {} : { type: o.type }
          const r: { id: string, seq: number, recipients?: number, keyId?: string } = t === undefined ? await s.publish(topic, body, opts) : await t.t.publish(body, opts)
          // the number is kept before anything else can fail: it was used
          writeSecretFile(join(home, SWARM_SEQ_FILE), JSON.stringify({ ...readSeqs(home), [topic]: r.seq }) + '\n')
          if (peers === 0) out.warn(new AgentMeshError(ErrorCode.Timeout, `no peer on ${topic} within ${wait} s: the message was kept by no one else (check --bootstrap)`))
          await new Promise(resolve => setTimeout(resolve, linger * 1000))
          if (r.keyId !== undefined) {
            const members = t!.t.membership()?.members.size ?? 0
            out.result({ topic, id: r.id, seq: r.seq, author: s.amid, encrypted: true, key_id: r.keyId, members }, `published ${r.id} (seq ${r.seq}) on ${topic}, encrypted for its ${members} member(s)`)
          } else {
            out.result({ topic, id: r.id, seq: r.seq, author: s.amid, recipients: r.recipients }, `published ${r.id} (seq ${r.seq}) on ${topic} to ${r.recipients ?? 0} peer(s)`)
          }
        } finally {
          stop.release()
          await s.close()
          await conn?.close()
        }
      })
    })

  withSwarm(cmd.command('peers')
    .description('the peers on a topic this node reaches, with their gossipsub scores: starts a node, dials --bootstrap, waits --wait seconds, prints, stops')
    .argument('<topic>', 'the topic')
    .option('--wait <sec>', 'how long to let the mesh form before printing (default 3)', '3'))
    .action(async (topic: string, o: SwarmOpts & { wait: string }) => {
      const out = output(o.json === true, io)
      checkTopicArg(topic)
      const wait = parsePositive('--wait', o.wait)
      const s = await startNode(o, io)
      const stop = stopSignal(io, wait)
      try {
        s.join(topic)
        await new Promise<void>(resolve => { if (stop.signal.aborted) resolve(); else stop.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
        const peers = s.peers(topic)
        if (out.json) out.result({ topic, peers: peers.map(peerJson) }, '')
        else out.result({}, peers.length === 0 ? `no peers on ${topic}` : peers.map(p => `${p.amid} score ${p.score.toFixed(2)}${p.mesh ? ' mesh' : ''}`).join('\n'))
      } finally {
        stop.release()
        await s.close()
      }
    })
}
