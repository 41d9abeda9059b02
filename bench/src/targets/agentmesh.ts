/**
 * AgentMesh relay target. The server side runs createRelay() in a child process; the client side
 * speaks the raw WebSocket protocol (docs/protocol.md): challenge → auth (signChallenge) →
 * welcome; pre-signed `{"op":"send","env":…}` frames; `{"op":"ack","id"}` answers; receivers
 * get `{"op":"deliver","seq","env"}` and send one cumulative `{"op":"cursor","seq"}`
 * CURSOR_ACK_DELAY_MS after a delivery, as the SDK does (BENCH_AM_ACK_MS=0: at the end of the
 * turn). The generator does not verify signatures: it measures the relay.
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { WebSocket } from 'ws'
import { CURSOR_ACK_DELAY_MS } from '@agentmesh/client'
import { createIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { PROTOCOL } from '@agentmesh/protocol'
import { join } from 'node:path'
import { createRelay, defaultOptions, silentLogger } from '@agentmesh/server'
import { memoryStore } from '@agentmesh/store'
import { sqliteStore, DB_FILE } from '@agentmesh/store-sqlite'
import { postgresStore } from '@agentmesh/store-postgres'
import { startNodeServer, tempDir, removeTempDir, type ServerHandle } from '../children.ts'
import { HOST, corkForTurn, payloadText, readBseq, readIntAfter, socketOf, withTimeout } from '../util.ts'
import type { SignJob, SignResult } from '../sign-worker.ts'
import type { Client, Sink, Target } from './types.ts'

// ---------------------------------------------------------------- server side (child process)

/**
 * `verifySignatures` undefined: the relay's default (what `npm start` runs). `rateLimits`: the room
 * loads raise the chat and REST rate limits (see fanout/agentmesh.ts).
 */
export interface AgentMeshServerSpec {
  memory: boolean
  dataDir?: string
  verifySignatures?: boolean
  sync?: 'normal' | 'full'
  rateLimits?: Record<string, { perMinute: number, burst: number }>
}

export async function serveAgentMesh (spec: AgentMeshServerSpec): Promise<{ port: number, url: string, close: () => Promise<void>, stats: () => Record<string, number> }> {
  // the relay is given its store, as the CLI's serve gives it (SQLite under the data directory)
  // BENCH_AM_STORE=postgres://…: the durable targets on PostgreSQL (an empty database or ?schema=) instead of SQLite
  const pgUrl = process.env.BENCH_AM_STORE
  const store = spec.memory ? memoryStore()
    : pgUrl !== undefined && pgUrl !== '' ? await postgresStore(pgUrl)
      : sqliteStore(join(spec.dataDir!, DB_FILE), spec.sync === undefined ? {} : { synchronous: spec.sync })
  const relay = await createRelay({
    host: HOST,
    port: 0,
    logger: silentLogger,
    ...(spec.verifySignatures === undefined ? {} : { verifySignatures: spec.verifySignatures }),
    ...(spec.rateLimits === undefined ? {} : { rateLimits: spec.rateLimits }),
  }, { store })
  return {
    port: relay.port,
    url: relay.wsUrl,
    close: () => relay.close(),
    stats: () => {
      const { received, delivered, duplicates, rejected, commits } = relay.stats()
      return { received, delivered, duplicates, rejected, commits }
    },
  }
}

// ---------------------------------------------------------------- identities and pre-signed frames

export interface AgentMeshFixture {
  senders: Identity[]
  receivers: Identity[]
  /** per pair: validly signed frames back to back, and offsets[seq]..offsets[seq+1] */
  frames: Buffer[]
  offsets: Int32Array[]
  /** frames per pair */
  count: number
  /** bytes of the frame of message 0 of pair 0 */
  frameBytes: number
  signMs: number
}

// Node 20 does not pass --import hooks to worker threads: register tsx in the worker first
const WORKER_BOOT = `import('tsx/esm/api').then(({ register }) => { register(); return import(${
  JSON.stringify(new URL('../sign-worker.ts', import.meta.url).href)}) })`

/**
 * Creates 2×`pairs` identities and pre-signs `count` send frames per pair on worker threads
 * (`count` may be 0 when only modes without signature checks run).
 * The same fixture serves every AgentMesh mode: each mode gets a fresh relay, so ids never collide.
 */
export async function buildFixture (pairs: number, count: number): Promise<AgentMeshFixture> {
  const t0 = performance.now()
  const senders = Array.from({ length: pairs }, (_, i) => createIdentity(`bench-sender-${i}`))
  const receivers = Array.from({ length: pairs }, (_, i) => createIdentity(`bench-receiver-${i}`))
  if (count === 0) return { senders, receivers, frames: [], offsets: [], count: 0, frameBytes: 0, signMs: 0 }
  const jobs: SignJob[] = senders.map((id, p) => ({ pair: p, secret: id.secretKey, to: receivers[p]!.amid }))
  const { frames, offsets } = await signOnWorkers(jobs, count)
  return { senders, receivers, frames, offsets, count, frameBytes: offsets[0]![1]! - offsets[0]![0]!, signMs: performance.now() - t0 }
}

/** Runs sign-worker.ts jobs on one worker thread per core (at most one per job); answers each pair's bytes and offsets. */
export async function signOnWorkers (jobs: SignJob[], count: number): Promise<{ frames: Buffer[], offsets: Int32Array[] }> {
  const nWorkers = Math.max(1, Math.min(availableParallelism(), jobs.length))
  const jobsByWorker: SignJob[][] = Array.from({ length: nWorkers }, () => [])
  jobs.forEach((job, i) => { jobsByWorker[i % nWorkers]!.push(job) })
  const frames: Buffer[] = new Array(jobs.length)
  const offsets: Int32Array[] = new Array(jobs.length)
  const workers: Worker[] = []
  try {
    await Promise.all(jobsByWorker.map((mine) => new Promise<void>((resolve, reject) => {
      const w = new Worker(WORKER_BOOT, { eval: true, workerData: { jobs: mine, count } })
      workers.push(w)
      let left = mine.length
      w.on('message', (r: SignResult) => {
        frames[r.pair] = Buffer.from(r.bytes)
        offsets[r.pair] = r.offsets
        if (--left === 0) resolve()
      })
      w.once('error', reject)
      w.once('exit', (code) => { if (left > 0) reject(new Error(`signing worker exited with code ${code}`)) })
    })))
  } finally {
    for (const w of workers) void w.terminate()
  }
  return { frames, offsets }
}

// ---------------------------------------------------------------- client side (generator)

export interface Handshaken { ws: WebSocket }

/**
 * Opens a connection and authenticates `id` (`extra`: more fields of the auth frame, e.g.
 * `features`); afterwards every frame goes to `onFrame`.
 */
export function authenticate (
  url: string, id: Identity, onFrame: (data: Buffer) => void, onClose: (code: number) => void, extra: Record<string, unknown> = {}, timeoutMs = 15_000,
): Promise<Handshaken> {
  return withTimeout(new Promise<Handshaken>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    let ready = false
    ws.on('message', (data: Buffer) => {
      if (ready) { onFrame(data); return }
      let f: { op?: string, nonce?: string, relay?: string }
      try { f = JSON.parse(data.toString()) } catch { reject(new Error('handshake: bad JSON')); return }
      if (f.op === 'challenge') {
        ws.send(JSON.stringify({ op: 'auth', v: PROTOCOL, amid: id.amid, nonce: f.nonce, sig: signChallenge(id, id.amid, f.nonce!, f.relay!), ...extra }))
      } else if (f.op === 'welcome') {
        ready = true
        resolve({ ws })
      } else {
        reject(new Error(`handshake: unexpected frame ${data.toString().slice(0, 200)}`))
      }
    })
    ws.on('error', (err) => { if (!ready) reject(err) })
    ws.on('close', (code) => { if (!ready) reject(new Error(`handshake: closed with ${code}`)); else onClose(code) })
  }), timeoutMs, `authenticating ${id.amid.slice(0, 10)}…`)
}

const OP_DELIVER = 0x64 // 'd' at index 7 of {"op":"deliver"…
const OP_ACK = 0x61 // 'a' of {"op":"ack"…
const SEQ_KEY = '"seq":'

/**
 * Builds send frames on the fly for a relay that does not check signatures: the same fields in
 * the same order and of the same sizes as signEnvelope()'s, with a well-formed (86-character)
 * signature that is not valid. Costs the generator about a microsecond per message, like the
 * other targets' on-the-fly messages; signing (~50 µs) would cost more than the relay.
 */
function unsignedFrames (fx: AgentMeshFixture, pairs: number): (p: number, seq: number, t: number) => string {
  const heads = Array.from({ length: pairs }, (_, p) => `{"op":"send","env":{"v":"${PROTOCOL}","id":"bench-${p}-`)
  const mids = Array.from({ length: pairs }, (_, p) =>
    `","from":"${fx.senders[p]!.amid}","to":"${fx.receivers[p]!.amid}","type":"bench","ts":`)
  const tails = Array.from({ length: pairs }, () => `,"sig":"${randomBytes(64).toString('base64url')}"}}`)
  return (p, seq, t) => heads[p]! + String(seq) + mids[p]! + String(Date.now()) + ',"payload":' +
    payloadText(seq, Math.round(t)) + tails[p]!
}

/**
 * What an E2EE client adds (targets/agentmesh-e2ee.ts): the sender's frame of message `seq` of
 * `pair`, encrypted now (undefined when its pool is exhausted), and the receiver's decryption of a
 * deliver frame, answering the plaintext's `bseq` (or throwing).
 */
export interface E2eeHooks {
  frame (pair: number, seq: number): Buffer | undefined
  open (pair: number, deliverFrame: Buffer): number
  stats? (): Record<string, number>
}

export async function connectAgentMesh (
  url: string, fx: AgentMeshFixture, pairs: number, sink: Sink, signed: boolean, e2ee?: E2eeHooks,
  /** the senders' relay when it is not the receivers' (another node of a cluster, bench/src/cluster.ts) */
  senderUrl: string = url,
): Promise<Client> {
  if (pairs > fx.senders.length) throw new Error(`fixture has ${fx.senders.length} pairs, ${pairs} asked`)
  const build = signed || e2ee !== undefined ? undefined : unsignedFrames(fx, pairs)
  const receivers: WebSocket[] = new Array(pairs)
  const senders: WebSocket[] = new Array(pairs)
  const pendingCursor = new Float64Array(pairs)
  const dirty: number[] = []
  const isDirty = new Uint8Array(pairs)
  const ACK_MS = Number(process.env.BENCH_AM_ACK_MS ?? CURSOR_ACK_DELAY_MS)
  let cursorScheduled = false
  let closing = false
  let cursorFrames = 0
  let duplicateAcks = 0

  const flushCursors = (): void => {
    cursorScheduled = false
    for (const p of dirty.splice(0)) {
      isDirty[p] = 0
      const ws = receivers[p]!
      if (ws.readyState !== WebSocket.OPEN) continue
      corkForTurn(socketOf(ws))
      ws.send('{"op":"cursor","seq":' + String(pendingCursor[p]) + '}')
      cursorFrames++
    }
  }

  const onReceiver = (p: number) => (data: Buffer): void => {
    if (data[7] === OP_DELIVER) {
      const relaySeq = readIntAfter(data, SEQ_KEY)
      if (e2ee === undefined) {
        sink.delivered(p, readBseq(data, 22))
      } else {
        let bseq: number | undefined
        try { bseq = e2ee.open(p, data) } catch (err) { sink.failed(p, `receiver: ${err instanceof Error ? err.message : String(err)}`) }
        if (bseq !== undefined) sink.delivered(p, bseq)
      }
      if (relaySeq > pendingCursor[p]!) {
        if (isDirty[p] === 0) { isDirty[p] = 1; dirty.push(p) }
        pendingCursor[p] = relaySeq
        if (!cursorScheduled) { cursorScheduled = true; if (ACK_MS > 0) setTimeout(flushCursors, ACK_MS); else setImmediate(flushCursors) }
      }
      return
    }
    const text = data.toString()
    if (text.startsWith('{"op":"error"')) sink.failed(p, `receiver: ${text.slice(0, 300)}`)
  }
  const onSender = (p: number) => (data: Buffer): void => {
    if (data[7] === OP_ACK) {
      if (data.length > 40 && data.includes('"duplicate":true')) duplicateAcks++
      sink.acked(p)
      return
    }
    const text = data.toString()
    if (text.startsWith('{"op":"error"')) sink.failed(p, `sender: ${text.slice(0, 300)}`)
  }
  const onClose = (who: string, p: number) => (code: number): void => {
    if (!closing) sink.failed(p, `${who} connection closed with ${code}`)
  }

  // receivers register (authenticate once) before anyone sends to them
  await Promise.all(fx.receivers.slice(0, pairs).map(async (id, p) => {
    receivers[p] = (await authenticate(url, id, onReceiver(p), onClose('receiver', p))).ws
  }))
  await Promise.all(fx.senders.slice(0, pairs).map(async (id, p) => {
    senders[p] = (await authenticate(senderUrl, id, onSender(p), onClose('sender', p))).ws
  }))

  return {
    send (p, seq, t) {
      const ws = senders[p]!
      if (e2ee !== undefined) {
        const f = e2ee.frame(p, seq)
        if (f === undefined) return false
        corkForTurn(socketOf(ws))
        ws.send(f, { binary: false })
        return true
      }
      if (build !== undefined) {
        corkForTurn(socketOf(ws))
        ws.send(build(p, seq, t))
        return true
      }
      if (seq >= fx.count) return false
      const off = fx.offsets[p]!
      corkForTurn(socketOf(ws))
      ws.send(fx.frames[p]!.subarray(off[seq]!, off[seq + 1]!), { binary: false })
      return true
    },
    stats: () => ({ cursor_frames: cursorFrames, duplicate_acks: duplicateAcks, ...e2ee?.stats?.() }),
    async close () {
      closing = true
      for (const ws of [...senders, ...receivers]) ws?.terminate()
    },
  }
}

// ---------------------------------------------------------------- targets

export type AgentMeshMode = 'durable' | 'durable_verify' | 'durable_noverify' | 'memory' | 'memory_verify' | 'memory_noverify'
export const AM_MODES: AgentMeshMode[] = ['durable', 'durable_verify', 'durable_noverify', 'memory', 'memory_verify', 'memory_noverify']

/** Whether the relay as `npm start` runs it checks every envelope's signature (its default). */
export const DEFAULT_VERIFIES: boolean = defaultOptions().verifySignatures

/**
 * What a mode sets: `durable` and `memory` take the relay's defaults (what `npm start` runs, so a
 * change of default shows up here without bench edits); `_verify` and `_noverify` set the
 * signature check explicitly. Whether the relay checks signatures decides whether the generator
 * pre-signs (checked) or builds frames on the fly (not checked).
 */
export function modeSpec (mode: AgentMeshMode): { memory: boolean, verifySignatures: boolean | undefined, verifies: boolean } {
  const memory = mode.startsWith('memory')
  const verifySignatures = mode.endsWith('_noverify') ? false : mode.endsWith('_verify') ? true : undefined
  return { memory, verifySignatures, verifies: verifySignatures ?? DEFAULT_VERIFIES }
}

/**
 * A relay in `mode`. With `e2ee` (targets/agentmesh-e2ee.ts), the target `agentmesh_<mode>_e2ee`:
 * the same relay, every message ratchet-encrypted by its sender and decrypted by its receiver.
 */
export function agentMeshTarget (
  mode: AgentMeshMode, fixture: () => AgentMeshFixture, prof: { dir?: string } = {}, e2ee?: () => { hooks: E2eeHooks, info: Record<string, unknown> },
): Target {
  let dataDir: string | undefined
  const { memory, verifySignatures: explicit, verifies: verifySignatures } = modeSpec(mode)
  const name = `agentmesh_${mode}${e2ee === undefined ? '' : '_e2ee'}`
  const check = explicit === undefined ? '' : explicit ? ', verify' : ', no verify'
  const pg = process.env.BENCH_AM_STORE !== undefined && process.env.BENCH_AM_STORE !== ''
  const label = `AgentMesh ${memory ? 'memory' : pg ? 'durable (PostgreSQL)' : 'durable (SQLite)'}${check}${e2ee === undefined ? '' : ', E2EE'}`
  return {
    name,
    label,
    windowBy: 'ack',
    info: {
      store: memory ? 'memory' : pg ? 'postgres (group commit, synchronous_commit on)' : 'sqlite (WAL, synchronous=NORMAL)',
      verifySignatures: explicit === undefined ? `the relay's default (${String(DEFAULT_VERIFIES)})` : explicit,
      envelopes: e2ee !== undefined
        ? 'signed before the run around ciphertexts that each sender encrypts again (the same bytes) when it sends; receivers decrypt'
        : verifySignatures ? 'pre-signed before the run' : 'built on the fly, signature well-formed but not valid',
    },
    async start (): Promise<ServerHandle> {
      if (!memory) dataDir = tempDir('relay')
      return startNodeServer(
        { kind: 'agentmesh', memory, ...(explicit === undefined ? {} : { verifySignatures: explicit }), ...(dataDir === undefined ? {} : { dataDir }) },
        prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: name },
      )
    },
    async connect (server, pairs, sink) {
      const fx = fixture()
      if (e2ee !== undefined) {
        const { hooks, info } = e2ee()
        Object.assign(this.info, info)
        return connectAgentMesh(server.url, fx, pairs, sink, true, hooks)
      }
      if (verifySignatures) (this.info as Record<string, unknown>).send_frame_bytes = fx.frameBytes
      return connectAgentMesh(server.url, fx, pairs, sink, verifySignatures)
    },
    cleanup () {
      if (dataDir !== undefined) removeTempDir(dataDir)
      dataDir = undefined
    },
  }
}
