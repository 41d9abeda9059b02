/**
 * The direct delivery protocol `/agentmesh/direct/1.0.0` (docs/protocol.md §29): on a libp2p
 * stream between two agents, the sender writes the same envelope it would send to the relay in a
 * `send` frame, and the receiver answers each one, in order, with `ack` (kept durably, or a
 * duplicate of one it has) or `refused` with an AM_ERR code. Frames are JSON, each preceded by its
 * length as an unsigned varint (libp2p's length-prefixed framing, `lpStream`).
 *
 * This file knows nothing of what an envelope means: the receiving side is a function given the
 * Noise-authenticated AMID of the peer and the envelope (the client's connection checks and keeps
 * it); the sending side hands back what the peer answered, or that there was no answer.
 */
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { ErrorCode, constants } from '@agentmesh/protocol'
import type { AgentNode } from './node.ts'
import { amidFromPeerId, peerIdFromAmid } from './identity.ts'

/** The protocol id a direct stream is opened with. */
export const DIRECT_PROTOCOL = '/agentmesh/direct/1.0.0'

/** Bytes a `send` frame may carry besides its envelope (`{"op":"send","env":…}`). */
const FRAME_OVERHEAD = 64

/** Defaults of the direct protocol's bounds (docs/protocol.md §29.5); each can be set in `DirectInit`. */
export const DIRECT_DEFAULTS = Object.freeze({
  /** the largest envelope taken, in bytes: the relay's default (`max_envelope_bytes`, 1 MiB) */
  maxEnvelopeBytes: constants.DEFAULT_MAX_ENVELOPE_BYTES,
  /** `send` frames a sender has unanswered on its stream to one peer; more wait their turn */
  maxInFlight: 64,
  /** direct streams one connection may open towards us at once (and we towards a peer) */
  maxStreams: 4,
  /** a direct stream with nothing sent or unanswered for this long is closed (ms) */
  idleTimeoutMs: 60_000,
  /** a dial (connection + protocol negotiation) gives up after this long (ms) */
  dialTimeoutMs: 2_000,
  /** after a failed dial, a peer is not dialled again for this long (ms): its messages take the relay */
  redialAfterMs: 30_000,
  /** peers with a failed dial remembered at most (the oldest go first) */
  maxFailedPeers: 4_096,
  /** refusals on one stream after which the receiver closes it (a peer sending what it may not) */
  maxRefusalsPerStream: 100,
})

export type DirectLimits = { readonly [K in keyof typeof DIRECT_DEFAULTS]: number }

/** What the receiver answers a `send` frame. */
export type DirectAnswer =
  | { ok: true, duplicate?: boolean }
  | { ok: false, code: string, message: string }

/**
 * The receiving side: `from` is the AMID of the Noise-authenticated peer (never what the envelope
 * says), `env` the parsed envelope, `bytes` its encoded size. Called one frame at a time per stream,
 * in order; answers after the envelope is kept (or refused).
 */
export type DirectReceiver = (from: string, env: unknown, bytes: number) => DirectAnswer | Promise<DirectAnswer>

/** What became of one `send`. */
export type DirectResult =
  | { type: 'ack', duplicate: boolean }
  | { type: 'refused', code: string, message: string }
  /** no answer: no address, the dial failed, the stream broke, or the answer did not come in time */
  | { type: 'unavailable', reason: string }

export interface DirectInit {
  readonly limits?: Partial<DirectLimits>
}

type Frame =
  | { op: 'send', env: Record<string, unknown> }
  | { op: 'ack', id: string, duplicate?: true }
  | { op: 'refused', id: string, code: string, message: string }

const utf8 = new TextEncoder()
const utf8d = new TextDecoder()
const CODE_RE = /^AM_ERR_[A-Z0-9_]{1,48}$/

function encode (f: Frame): Uint8Array { return utf8.encode(JSON.stringify(f)) }

/** Decodes an answer frame (sender side); undefined when it is not one. */
export function decodeAnswer (bytes: Uint8Array): Frame | undefined {
  let f: unknown
  try { f = JSON.parse(utf8d.decode(bytes)) } catch { return undefined }
  if (typeof f !== 'object' || f === null) return undefined
  const o = f as Record<string, unknown>
  if (typeof o.id !== 'string' || o.id.length > 128) return undefined
  if (o.op === 'ack') return { op: 'ack', id: o.id, ...(o.duplicate === true ? { duplicate: true as const } : {}) }
  if (o.op === 'refused' && typeof o.code === 'string' && CODE_RE.test(o.code)) {
    return { op: 'refused', id: o.id, code: o.code, message: typeof o.message === 'string' ? o.message.slice(0, 500) : '' }
  }
  return undefined
}

/**
 * Decodes a `send` frame (receiver side): its envelope, or the refusal to answer (an `id` when the
 * frame names one). Never throws.
 */
export function decodeSend (bytes: Uint8Array, maxEnvelopeBytes: number): { env: Record<string, unknown>, id: string } | { refuse: { id: string, code: string, message: string } } {
  let f: unknown
  try { f = JSON.parse(utf8d.decode(bytes)) } catch { return { refuse: { id: '', code: ErrorCode.InvalidFrame, message: 'a direct frame must be one JSON object' } } }
  const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>
  const env = o.env
  const id = typeof env === 'object' && env !== null && typeof (env as { id?: unknown }).id === 'string' ? String((env as { id: string }).id).slice(0, 128) : ''
  if (o.op !== 'send' || typeof env !== 'object' || env === null || Array.isArray(env)) {
    return { refuse: { id, code: ErrorCode.InvalidFrame, message: 'a direct frame is {"op":"send","env":{…}}' } }
  }
  if (bytes.byteLength > maxEnvelopeBytes + FRAME_OVERHEAD) {
    return { refuse: { id, code: ErrorCode.EnvelopeTooLarge, message: `the envelope is over ${maxEnvelopeBytes} bytes, the most a direct link takes` } }
  }
  return { env: env as Record<string, unknown>, id }
}

/**
 * Serves the direct protocol on `node`: each `send` frame's envelope goes to `receive` with the
 * authenticated AMID of the peer, and its answer goes back, in order. Returns a function that stops
 * serving it (streams open then are closed).
 */
export async function serveDirect (node: AgentNode, receive: DirectReceiver, init: DirectInit = {}): Promise<() => Promise<void>> {
  const limits = { ...DIRECT_DEFAULTS, ...init.limits }
  const open = new Set<Stream>()
  await node.handle(DIRECT_PROTOCOL, (stream: Stream, connection: Connection) => {
    open.add(stream)
    void serveStream(stream, connection, receive, limits).catch(() => {}).finally(() => { open.delete(stream) })
  }, { maxInboundStreams: limits.maxStreams, maxOutboundStreams: limits.maxStreams })
  return async () => {
    await node.unhandle(DIRECT_PROTOCOL)
    await Promise.all([...open].map(async s => { await s.close().catch(() => { s.abort(new Error('direct delivery stopped')) }) }))
  }
}

async function serveStream (stream: Stream, connection: Connection, receive: DirectReceiver, limits: DirectLimits): Promise<void> {
  const from = amidFromPeerId(connection.remotePeer)
  if (from === undefined) { stream.abort(new Error('not an agent key')); return }
  const lp = lpStream(stream, { maxDataLength: limits.maxEnvelopeBytes + FRAME_OVERHEAD * 16 })
  let refusals = 0
  try {
    while (refusals < limits.maxRefusalsPerStream) {
      const idle = AbortSignal.timeout(limits.idleTimeoutMs)
      let bytes: Uint8Array
      try { bytes = (await lp.read({ signal: idle })).subarray() } catch { break } // closed, idle, reset or a frame over the bound
      const d = decodeSend(bytes, limits.maxEnvelopeBytes)
      let answer: Frame
      if ('refuse' in d) {
        answer = { op: 'refused', ...d.refuse }
      } else {
        let a: DirectAnswer
        try { a = await receive(from, d.env, bytes.byteLength) } catch (err) {
          a = { ok: false, code: ErrorCode.Internal, message: (err as Error).message.slice(0, 200) }
        }
        answer = a.ok ? { op: 'ack', id: d.id, ...(a.duplicate === true ? { duplicate: true as const } : {}) } : { op: 'refused', id: d.id, code: a.code, message: a.message }
      }
      if (answer.op === 'refused') refusals++
      try { await lp.write(encode(answer)) } catch { break } // the stream broke: the sender sends what is unanswered again
    }
  } finally {
    await stream.close().catch(() => { stream.abort(new Error('closing')) })
  }
}

interface Link {
  stream: Stream
  lp: LengthPrefixedStream
  waiting: Map<string, (r: DirectResult) => void>
  /** writes go one at a time, in call order */
  chain: Promise<void>
  slots: Array<() => void>
  idle: ReturnType<typeof setTimeout> | undefined
  closed: boolean
}

/**
 * The sending side: one stream per peer, opened on first use and reused; frames are written in
 * call order and answered in order. A peer whose dial failed is not dialled again for
 * `redialAfterMs`: `send` answers `unavailable` at once meanwhile.
 */
export class DirectSender {
  readonly limits: DirectLimits
  private readonly links = new Map<string, Promise<Link>>()
  /** the open link per peer, once its stream is open */
  private readonly current = new Map<string, Link>()
  private readonly failed = new Map<string, number>()
  private stopped = false

  constructor (private readonly node: AgentNode, init: DirectInit = {}) {
    this.limits = { ...DIRECT_DEFAULTS, ...init.limits }
  }

  /**
   * Sends one envelope (`envText`, its JSON as it would go to the relay) to `peer` (an AMID) and
   * waits for the answer at most `timeoutMs`. `addrs` are multiaddrs to dial when no connection is
   * open (none: only an existing connection is used).
   */
  async send (peer: string, id: string, envText: string, addrs: readonly string[], timeoutMs: number): Promise<DirectResult> {
    if (this.stopped) return { type: 'unavailable', reason: 'direct links are stopped' }
    const until = this.failed.get(peer)
    // a peer that connected to us since is reached over that connection
    if (until !== undefined && until > Date.now() && this.node.getConnections(peerIdFromAmid(peer)).length === 0) return { type: 'unavailable', reason: 'the last dial failed; the peer is dialled again later' }
    let link: Link
    try {
      link = await this.link(peer, addrs)
    } catch (err) {
      this.failed.set(peer, Date.now() + this.limits.redialAfterMs)
      while (this.failed.size > this.limits.maxFailedPeers) this.failed.delete(this.failed.keys().next().value!)
      return { type: 'unavailable', reason: (err as Error).message }
    }
    this.failed.delete(peer)
    return await new Promise<DirectResult>((resolve) => {
      // the time runs from when the frame is written: waiting for a slot (maxInFlight) is bounded by the answers or timeouts of those ahead
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (r: DirectResult): void => {
        clearTimeout(timer)
        if (link.waiting.get(id) === done) link.waiting.delete(id)
        const next = link.slots.shift()
        next?.()
        resolve(r)
      }
      const go = (): void => {
        if (link.closed) { done({ type: 'unavailable', reason: 'the direct stream closed' }); return }
        link.waiting.set(id, done)
        timer = setTimeout(() => { done({ type: 'unavailable', reason: `no answer within ${timeoutMs} ms` }) }, timeoutMs)
        this.touch(peer, link)
        const frame = utf8.encode(`{"op":"send","env":${envText}}`)
        link.chain = link.chain.then(async () => { await link.lp.write(frame) }).catch((err: Error) => { this.drop(peer, link, err.message) })
      }
      if (link.waiting.size < this.limits.maxInFlight) go()
      else link.slots.push(go)
    })
  }

  /** Opens the direct stream to `peer` ahead of the first send (a configured peer); false when it cannot be now. */
  async connect (peer: string, addrs: readonly string[]): Promise<boolean> {
    if (this.stopped) return false
    try {
      await this.link(peer, addrs)
      return true
    } catch {
      this.failed.set(peer, Date.now() + this.limits.redialAfterMs)
      while (this.failed.size > this.limits.maxFailedPeers) this.failed.delete(this.failed.keys().next().value!)
      return false
    }
  }

  /** Closes the direct stream to `peer` (its unanswered sends answer `unavailable`). */
  async close (peer: string): Promise<void> {
    const link = await this.links.get(peer)?.catch(() => undefined)
    if (link !== undefined) this.drop(peer, link, 'closed')
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const peer of [...this.links.keys()]) await this.close(peer)
  }

  private async link (peer: string, addrs: readonly string[]): Promise<Link> {
    let l = this.links.get(peer)
    if (l === undefined) {
      l = this.open(peer, addrs)
      this.links.set(peer, l)
      l.catch(() => { if (this.links.get(peer) === l) this.links.delete(peer) })
    }
    return await l
  }

  private async open (peer: string, addrs: readonly string[]): Promise<Link> {
    const id: PeerId = peerIdFromAmid(peer)
    const signal = AbortSignal.timeout(this.limits.dialTimeoutMs)
    if (this.node.getConnections(id).length === 0) {
      if (addrs.length === 0) throw new Error('no known address for this peer')
      // the address must name this peer: Noise then refuses any other key on the other end
      const ma = addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${id.toString()}`))
      await this.node.dial(ma, { signal })
    }
    const stream = await this.node.dialProtocol(id, DIRECT_PROTOCOL, { signal, maxOutboundStreams: this.limits.maxStreams })
    const link: Link = { stream, lp: lpStream(stream, { maxDataLength: 4096 }), waiting: new Map(), chain: Promise.resolve(), slots: [], idle: undefined, closed: false }
    this.current.set(peer, link)
    void this.readAnswers(peer, link)
    this.touch(peer, link)
    return link
  }

  private async readAnswers (peer: string, link: Link): Promise<void> {
    try {
      for (;;) {
        const f = decodeAnswer((await link.lp.read()).subarray())
        if (f === undefined || f.op === 'send') throw new Error('the peer answered with an invalid frame')
        const w = link.waiting.get(f.id)
        if (w === undefined) continue // answered after its sender stopped waiting
        w(f.op === 'ack' ? { type: 'ack', duplicate: f.duplicate === true } : { type: 'refused', code: f.code, message: f.message })
        this.touch(peer, link)
      }
    } catch (err) {
      this.drop(peer, link, (err as Error).message)
    }
  }

  /** (Re)arms the idle timer: a stream with nothing unanswered for idleTimeoutMs is closed. */
  private touch (peer: string, link: Link): void {
    clearTimeout(link.idle)
    link.idle = setTimeout(() => {
      if (link.waiting.size === 0) this.drop(peer, link, 'idle')
      else this.touch(peer, link)
    }, this.limits.idleTimeoutMs)
    link.idle.unref?.()
  }

  private drop (peer: string, link: Link, reason: string): void {
    if (link.closed) return
    link.closed = true
    clearTimeout(link.idle)
    if (this.current.get(peer) === link) { this.current.delete(peer); this.links.delete(peer) }
    for (const w of [...link.waiting.values()]) w({ type: 'unavailable', reason: `the direct stream broke: ${reason}` })
    link.waiting.clear()
    for (const go of link.slots.splice(0)) go()
    void link.stream.close().catch(() => { link.stream.abort(new Error(reason)) })
  }
}
