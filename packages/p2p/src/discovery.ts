/**
 * Discovery (docs/protocol.md §30): where an agent can be reached, as a libp2p signed peer record
 * (RFC 0003 in an RFC 0002 envelope, signed by the agent's AMID key) published in its registry
 * profile, and as its entry in a Kademlia DHT among agents. `findPeer` asks the DHT first when a
 * bootstrap peer answers, and falls back to the registry's record — and says so — when none does.
 * The relay is not trusted with the record: a client verifies it again, so a relay can hide or
 * replay an old record, not forge one.
 */
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { MemoryDatastore } from 'datastore-core'
import type { PeerId } from '@libp2p/interface'
import { AgentMeshError, ErrorCode, isErrorCode } from '@agentmesh/protocol'
import { signRequest, type KeyPair } from '@agentmesh/crypto'
import { libp2pKey, peerIdFromAmid } from './identity.ts'
import type { AgentNode } from './node.ts'

/** The protocol of the agents' DHT: its own, apart from the IPFS (Amino) DHT. */
export const DHT_PROTOCOL = '/agentmesh/kad/1.0.0'
/** Addresses one peer record may list (§30.1). */
export const MAX_PEER_RECORD_ADDRS = 16
/** The largest peer record envelope, in bytes (§30.1). */
export const MAX_PEER_RECORD_BYTES = 4096
/** DHT records and provider entries a node stores for others, and the largest value (§30.2). */
export const DEFAULT_MAX_DHT_RECORDS = 10_000
export const DEFAULT_MAX_DHT_RECORD_BYTES = 16 * 1024
/** How long `findPeer` waits for a bootstrap peer, then for the DHT, by default (ms). */
export const DEFAULT_FIND_PEER_TIMEOUT_MS = 5000

/** Where `findPeer` found the addresses. */
export type DiscoverySource = 'dht' | 'registry'

/** A peer record, opened and verified. */
export interface OpenedPeerRecord {
  readonly amid: string
  readonly addrs: string[]
  readonly seq: bigint
}

const invalid = (why: string): AgentMeshError => new AgentMeshError(ErrorCode.PeerRecordInvalid, `peer record refused: ${why}`)

function parseAddrs (addrs: ReadonlyArray<string | Multiaddr>): Multiaddr[] {
  if (addrs.length === 0) throw invalid('it lists no address')
  if (addrs.length > MAX_PEER_RECORD_ADDRS) throw invalid(`it lists ${addrs.length} addresses; at most ${MAX_PEER_RECORD_ADDRS}`)
  return addrs.map((a, i) => {
    try { return typeof a === 'string' ? multiaddr(a) : a } catch {
      throw invalid(`address ${i} is not a multiaddr`)
    }
  })
}

/**
 * Seals a signed peer record of the agent: `addrs` (1–16 multiaddrs) and `seq` (default: now in
 * ms, so a later record has a higher one). Answers the marshalled envelope.
 */
export async function sealPeerRecord (keys: Pick<KeyPair, 'secretKey'>, addrs: ReadonlyArray<string | Multiaddr>, seq: bigint = BigInt(Date.now())): Promise<Uint8Array> {
  const key = await libp2pKey(keys)
  const record = new PeerRecord({ peerId: peerIdFromPrivateKey(key), multiaddrs: parseAddrs(addrs), seqNumber: seq })
  const bytes = (await RecordEnvelope.seal(record, key)).marshal()
  if (bytes.byteLength > MAX_PEER_RECORD_BYTES) throw invalid(`it is ${bytes.byteLength} bytes; at most ${MAX_PEER_RECORD_BYTES}`)
  return bytes
}

/**
 * Opens a peer record (bytes, or base64url as the registry carries it) and checks it is `amid`'s:
 * a peer-record envelope, its signature valid, signed by the AMID key, naming that peer, 1–16
 * addresses, at most 4096 bytes. Throws AM_ERR_PEER_RECORD_INVALID otherwise.
 */
export async function openPeerRecord (data: Uint8Array | string, amid: string): Promise<OpenedPeerRecord> {
  const bytes = typeof data === 'string' ? fromB64u(data) : data
  if (bytes.byteLength > MAX_PEER_RECORD_BYTES) throw invalid(`it is ${bytes.byteLength} bytes; at most ${MAX_PEER_RECORD_BYTES}`)
  let expected: PeerId
  try { expected = peerIdFromAmid(amid) } catch { throw invalid(`"${amid.slice(0, 80)}" is not an AMID`) }
  let envelope: RecordEnvelope
  try { envelope = await RecordEnvelope.openAndCertify(bytes, PeerRecord.DOMAIN) } catch (err) {
    throw invalid(`not a signed envelope whose signature verifies (${(err as Error).name})`)
  }
  if (!sameBytes(envelope.payloadType, PeerRecord.CODEC)) throw invalid('the envelope does not hold a peer record')
  let record: PeerRecord
  try { record = PeerRecord.createFromProtobuf(envelope.payload) } catch { throw invalid('the peer record does not decode') }
  const signer = peerIdFromPublicKey(envelope.publicKey)
  if (!signer.equals(expected)) throw invalid(`it is signed by ${signer.toString()}, not by ${amid}'s key`)
  if (!record.peerId.equals(expected)) throw invalid(`it names peer ${record.peerId.toString()}, not ${amid}`)
  const addrs = parseAddrs(record.multiaddrs).map(a => a.toString())
  return { amid, addrs, seq: record.seqNumber }
}

/** The addresses of a node worth publishing: what it listens on and is reached at, at most 16. */
export function publishableAddrs (node: Pick<AgentNode, 'getMultiaddrs'>): string[] {
  return [...new Set(node.getMultiaddrs().map(a => a.toString()))].slice(0, MAX_PEER_RECORD_ADDRS)
}

/** What the registry holds of an agent's peer record: the envelope as base64url, or undefined. */
export type RegistryLookup = (amid: string, signal: AbortSignal) => Promise<string | undefined>

/** Reads `GET {relayUrl}/api/v1/agents/{amid}` and answers its `p2p.record`. */
export function registryLookup (relayUrl: string, fetchImpl: typeof fetch = fetch): RegistryLookup {
  const base = relayUrl.replace(/^ws/, 'http').replace(/\/+$/, '')
  return async (amid, signal) => {
    const res = await fetchImpl(`${base}/api/v1/agents/${encodeURIComponent(amid)}`, { signal })
    if (res.status === 404) return undefined
    if (!res.ok) throw await httpError(res)
    const body = await res.json() as { p2p?: { record?: unknown } }
    return typeof body.p2p?.record === 'string' ? body.p2p.record : undefined
  }
}

/**
 * Publishes the agent's signed peer record in its registry profile (`PUT /api/v1/agents/{amid}/p2p`).
 * Answers what the relay stored.
 */
export async function publishPeerRecord (relayUrl: string, keys: KeyPair & { amid: string }, addrs: ReadonlyArray<string | Multiaddr>, opts: { seq?: bigint, fetch?: typeof fetch, signal?: AbortSignal } = {}): Promise<{ addrs: string[], seq: bigint }> {
  const record = await sealPeerRecord(keys, addrs, opts.seq)
  const base = relayUrl.replace(/^ws/, 'http').replace(/\/+$/, '')
  const path = `/api/v1/agents/${keys.amid}/p2p`
  const body = JSON.stringify({ record: toB64u(record) })
  const res = await (opts.fetch ?? fetch)(base + path, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...signRequest(keys, 'PUT', path, body) },
    body,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  })
  if (!res.ok) throw await httpError(res)
  const stored = await res.json() as { addrs: string[], seq: string }
  return { addrs: stored.addrs, seq: BigInt(stored.seq) }
}

/** Bootstrap peers one configuration may list. */
export const MAX_BOOTSTRAP_PEERS = 16

/**
 * The DHT bootstrap peers of `AGENTMESH_P2P_BOOTSTRAP` (multiaddrs ending in /p2p/<peer id>,
 * separated by commas or spaces; at most 16), or [] when unset. Throws AM_ERR_INVALID_CONFIG.
 */
export function bootstrapFromEnv (env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const raw = env.AGENTMESH_P2P_BOOTSTRAP?.trim() ?? ''
  if (raw === '') return []
  const list = raw.split(/[\s,]+/).filter(a => a !== '')
  if (list.length > MAX_BOOTSTRAP_PEERS) throw new AgentMeshError(ErrorCode.InvalidConfig, `AGENTMESH_P2P_BOOTSTRAP lists ${list.length} peers; at most ${MAX_BOOTSTRAP_PEERS}`)
  for (const a of list) {
    let ok = false
    try { ok = multiaddr(a).getComponents().some(c => c.name === 'p2p') } catch { ok = false }
    if (!ok) throw new AgentMeshError(ErrorCode.InvalidConfig, `AGENTMESH_P2P_BOOTSTRAP: "${a.slice(0, 120)}" is not a multiaddr ending in /p2p/<peer id>`)
  }
  return list
}

/**
 * What a relay offers as circuit relay and DHT bootstrap (`GET /api/v1/info`, field p2p): its
 * multiaddrs, or [] when it runs none.
 */
export async function relayP2pAddrs (relayUrl: string, opts: { fetch?: typeof fetch, signal?: AbortSignal } = {}): Promise<string[]> {
  const base = relayUrl.replace(/^ws/, 'http').replace(/\/+$/, '').replace(/\/ws$/, '')
  const res = await (opts.fetch ?? fetch)(`${base}/api/v1/info`, opts.signal === undefined ? {} : { signal: opts.signal })
  if (!res.ok) throw await httpError(res)
  const info = await res.json() as { p2p?: { addrs?: unknown } | null }
  const addrs = info.p2p?.addrs
  return Array.isArray(addrs) ? addrs.filter((a): a is string => typeof a === 'string').slice(0, MAX_BOOTSTRAP_PEERS) : []
}

/** What `findPeer` found. */
export interface FoundPeer {
  readonly amid: string
  readonly peerId: PeerId
  readonly addrs: Multiaddr[]
  readonly source: DiscoverySource
  /** the record's sequence number (registry) */
  readonly seq?: bigint
  /** one line saying why the registry was used, for a CLI to print (source 'registry' only) */
  readonly notice?: string
}

export interface FindPeerOptions {
  /** the DHT bootstrap peers the node was given (multiaddrs ending in /p2p/<id>) @default none */
  readonly bootstrap?: readonly string[]
  /** the registry to fall back to: a relay URL or a lookup function @default none: no fallback */
  readonly registry?: string | RegistryLookup
  /** the time a bootstrap peer has to answer, then the DHT, then the registry @default 5000 ms each */
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

/**
 * Where `amid` can be reached: through the DHT when a bootstrap peer answers, else (or when the
 * DHT does not know it) from the agent's signed record in the registry, verified here, with a
 * `notice` saying so. Throws AM_ERR_NOT_FOUND when neither knows it, AM_ERR_PEER_RECORD_INVALID
 * when the registry's record does not verify.
 */
export async function findPeer (node: AgentNode, amid: string, opts: FindPeerOptions = {}): Promise<FoundPeer> {
  const peerId = peerIdFromAmid(amid)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FIND_PEER_TIMEOUT_MS
  const signal = (): AbortSignal => opts.signal === undefined ? AbortSignal.timeout(timeoutMs) : AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
  const boot = opts.bootstrap ?? []
  let why: string
  if (boot.length === 0) {
    why = 'no DHT bootstrap peer is configured'
  } else if (await bootstrapAnswers(node, boot, signal())) {
    try {
      const info = await node.peerRouting.findPeer(peerId, { signal: signal() })
      if (info.multiaddrs.length > 0) return { amid, peerId, addrs: info.multiaddrs.slice(0, MAX_PEER_RECORD_ADDRS), source: 'dht' }
      why = `the DHT knows no address of ${amid}`
    } catch {
      why = `the DHT did not find ${amid}`
    }
  } else {
    why = `no DHT bootstrap peer answered (${boot.length} tried)`
  }
  if (opts.registry === undefined) throw new AgentMeshError(ErrorCode.NotFound, `${why}, and no registry to fall back to`)
  const lookup = typeof opts.registry === 'string' ? registryLookup(opts.registry) : opts.registry
  const record = await lookup(amid, signal())
  if (record === undefined) throw new AgentMeshError(ErrorCode.NotFound, `${why}, and ${amid} published no peer record in the registry`)
  const opened = await openPeerRecord(record, amid)
  return {
    amid,
    peerId,
    addrs: opened.addrs.map(a => multiaddr(a)),
    source: 'registry',
    seq: opened.seq,
    notice: `discovery: ${why}; using the addresses ${amid} signed in the registry (record seq ${opened.seq})`,
  }
}

/** Whether one of the bootstrap peers is connected, or answers a dial within the signal's time. */
async function bootstrapAnswers (node: AgentNode, boot: readonly string[], signal: AbortSignal): Promise<boolean> {
  const addrs = boot.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
  const ids = addrs.map(a => a.getComponents().findLast(c => c.name === 'p2p')?.value)
  if (ids.some(id => id !== undefined && node.getConnections().some(c => c.remotePeer.toString() === id))) return true
  try {
    await Promise.any(addrs.map(async a => await node.dial(a, { signal })))
    return true
  } catch {
    return false
  }
}

/** The DHT mode a node gets: a node reached only through circuits is a client; else a server. */
export function dhtModeOf (mode: 'client' | 'server' | undefined, listen: readonly string[]): 'client' | 'server' {
  if (mode !== undefined) return mode
  return listen.some(a => /^\/(ip4|ip6|dns|dns4|dns6)\//.test(a) && !a.includes('/p2p-circuit')) ? 'server' : 'client'
}

/**
 * The node's datastore (in memory) with the DHT's share bounded: at most `maxRecords` DHT records
 * and provider entries (keys under /dht/record and /dht/provider), each at most `maxRecordBytes`;
 * past either a put is refused (the DHT answers the peer with an error), nothing is evicted.
 */
export class BoundedDatastore extends MemoryDatastore {
  private readonly dhtKeys = new Set<string>()
  private readonly maxRecords: number
  private readonly maxRecordBytes: number
  constructor (init: { maxRecords: number, maxRecordBytes: number }) {
    super()
    this.maxRecords = init.maxRecords
    this.maxRecordBytes = init.maxRecordBytes
  }

  override put (...args: Parameters<MemoryDatastore['put']>): ReturnType<MemoryDatastore['put']> {
    const [key, val] = args
    const k = key.toString()
    if (k.startsWith('/dht/record') || k.startsWith('/dht/provider')) {
      if (val.byteLength > this.maxRecordBytes) throw new AgentMeshError(ErrorCode.BodyTooLarge, `DHT value of ${val.byteLength} bytes refused; at most ${this.maxRecordBytes}`)
      if (!this.dhtKeys.has(k) && this.dhtKeys.size >= this.maxRecords) throw new AgentMeshError(ErrorCode.RateLimited, `DHT store full: ${this.maxRecords} records held`)
      this.dhtKeys.add(k)
    }
    return super.put(...args)
  }

  override delete (...args: Parameters<MemoryDatastore['delete']>): ReturnType<MemoryDatastore['delete']> {
    this.dhtKeys.delete(args[0].toString())
    return super.delete(...args)
  }

  /** DHT records and provider entries held. */
  get dhtRecords (): number { return this.dhtKeys.size }
}

async function httpError (res: Response): Promise<AgentMeshError> {
  let code: unknown
  let message = `HTTP ${res.status}`
  try {
    const j = await res.json() as { error?: { code?: unknown, message?: unknown } }
    code = j.error?.code
    if (typeof j.error?.message === 'string') message = j.error.message
  } catch { /* not JSON */ }
  return new AgentMeshError(isErrorCode(code) ? code : ErrorCode.ConnectFailed, message)
}

function toB64u (b: Uint8Array): string { return Buffer.from(b).toString('base64url') }
function fromB64u (s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw invalid('the record is not base64url')
  return new Uint8Array(Buffer.from(s, 'base64url'))
}
function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}
