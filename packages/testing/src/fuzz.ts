/**
 * A bounded frame and REST fuzzer for the relay (`npm run fuzz`; a short run is in the test suite).
 * It sends mutations of valid frames, truncated and deeply nested JSON, huge values, the relay's
 * reserved types and garbage over WebSocket, and requests to every route of the REST contract,
 * then reports frames sent, answers by code, unregistered codes, 500s, disconnects, crashes and
 * memory before and after, and checks that a normal agent is still served. It only ever talks to
 * 127.0.0.1 (its own relay, or one given by URL on the loopback) and stops by itself: after
 * `frames` frames and `requests` requests or `seconds` seconds, whichever comes first (the frames
 * get at most three quarters of the time). Runs are reproducible by `seed`.
 */
import WebSocket from 'ws'
import { API_ROUTES, PROTOCOL, RELAY_TYPES, isErrorCode } from '@agentmesh/protocol'
import { createIdentity, signChallenge, signEnvelope, type Identity } from '@agentmesh/crypto'
import type { Relay, RelayInit } from '@agentmesh/server'
import { startRelay } from './relay.ts'
import { seededRandom } from '@agentmesh/protocol/internal'

export interface FuzzOptions {
  /** WebSocket frames to send at most. @default 20,000 */
  frames?: number
  /** REST requests to send at most (spread over every route). @default frames / 4 */
  requests?: number
  /** Stop after this long, whatever was sent. @default 60 */
  seconds?: number
  /** PRNG seed: the same seed sends the same inputs. @default 1 */
  seed?: number
  /** A relay to fuzz (http://127.0.0.1:PORT); default: one started in this process (memory store). */
  url?: string
  /** Its operator key, to reach the operator's routes too. */
  apiKey?: string
  /** Relay options of the relay started in this process. */
  relay?: RelayInit
  /** Progress lines. */
  log?: (line: string) => void
}

export interface FuzzReport {
  seed: number
  framesSent: number
  requestsSent: number
  /** answers by kind: relay frame ops, error codes (`error:AM_ERR_…`), HTTP statuses with their code (`http:400:AM_ERR_…`) */
  answers: Record<string, number>
  /** WebSocket closes by code */
  disconnects: Record<string, number>
  /** answers whose error code is not in the registry */
  unregistered: string[]
  /** what counts as a crash: uncaught errors or rejections, 500 answers, the relay not healthy afterwards, a normal agent not served */
  crashes: string[]
  memory: { before: { rssMb: number, heapMb: number }, after: { rssMb: number, heapMb: number } }
  durationMs: number
  /** a fresh agent authenticated, sent a DM and had it delivered after the run */
  stillServes: boolean
}


const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** Throws unless `url` is on the loopback interface: the fuzzer and chaos runs never leave the machine. */
export function assertLoopback (url: string): void {
  const host = new URL(url).hostname
  if (!LOOPBACK.has(host)) throw new Error(`refusing to send to ${host}: only 127.0.0.1 (the loopback) is fuzzed`)
}

const mb = (n: number): number => Math.round(n / 1048576 * 10) / 10
const mem = (): { rssMb: number, heapMb: number } => { const m = process.memoryUsage(); return { rssMb: mb(m.rss), heapMb: mb(m.heapUsed) } }

/** A lean WebSocket agent: counts what it is answered, keeps nothing else. */
class Agent {
  ws!: WebSocket
  nonce = ''
  relay = ''
  open = false
  private pings = new Map<number, () => void>()
  private pingSeq = 0
  delivered: Array<Record<string, unknown>> = []
  keepDeliveries = false
  onDeliver: (() => void) | undefined

  constructor (readonly id: Identity, private readonly wsUrl: string, private readonly count: (k: string) => void, private readonly disconnect: (code: number) => void, private readonly bad: (s: string) => void) {}

  async connect (auth: boolean): Promise<void> {
    this.ws = new WebSocket(this.wsUrl, { maxPayload: 64 * 1024 * 1024 })
    this.ws.on('error', () => {})
    const challenge = new Promise<void>((resolve, reject) => {
      this.ws.once('close', (code) => { reject(new Error(`closed ${code} before the challenge`)) })
      this.ws.on('message', (d) => {
        let f: Record<string, any>
        try { f = JSON.parse(d.toString()) as Record<string, any> } catch { this.bad('a relay frame that is not JSON'); return }
        if (f.op === 'challenge') { this.nonce = f.nonce; this.relay = f.relay; resolve(); return }
        if (f.op === 'pong' && typeof f.ts === 'number') { this.pings.get(f.ts)?.(); this.pings.delete(f.ts) }
        if (f.op === 'deliver') {
          if (this.keepDeliveries) { this.delivered.push(f); this.onDeliver?.() }
          // move the cursor so the delivery window never stalls the run
          this.ws.send(JSON.stringify({ op: 'cursor', seq: f.seq }))
        }
        if (f.op === 'error') {
          if (!isErrorCode(f.code)) this.bad(`ws error frame with an unregistered code ${JSON.stringify(f.code)}`)
          this.count(`error:${String(f.code)}`)
        } else this.count(String(f.op))
      })
    })
    this.ws.once('close', (code) => { this.open = false; if (!this.closing) this.disconnect(code); for (const r of this.pings.values()) r(); this.pings.clear() })
    await challenge
    this.open = true
    if (auth) {
      const welcome = new Promise<void>((resolve) => {
        const on = (d: WebSocket.RawData): void => {
          const f = JSON.parse(d.toString()) as { op?: string }
          if (f.op === 'welcome' || f.op === 'error') { this.ws.off('message', on); resolve() }
        }
        this.ws.on('message', on)
      })
      this.ws.send(JSON.stringify(this.authFrame()))
      await welcome
    }
  }

  authFrame (): Record<string, unknown> {
    return { op: 'auth', v: PROTOCOL, amid: this.id.amid, nonce: this.nonce, sig: signChallenge(this.id, this.id.amid, this.nonce, this.relay) }
  }

  send (data: string | Buffer): void { if (this.open) this.ws.send(data) }

  /** Resolves once every frame sent before has been read by the relay and answered (or the socket closed). */
  barrier (): Promise<void> {
    if (!this.open) return Promise.resolve()
    const ts = ++this.pingSeq
    return new Promise((resolve) => { this.pings.set(ts, resolve); this.ws.send(JSON.stringify({ op: 'ping', ts })) })
  }

  /** Ends the connection from this side (not counted as a disconnect). */
  close (): void { this.closing = true; this.ws.terminate() }
  private closing = false
}

/** Runs the fuzzer; resolves with its report (it never throws for what it finds). */
export async function fuzz (o: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = o.seed ?? 1
  const rnd = seededRandom(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const int = (n: number): number => Math.floor(rnd() * n)
  const maxFrames = o.frames ?? 20_000
  const maxRequests = o.requests ?? Math.ceil(maxFrames / 4)
  const seconds = o.seconds ?? 60
  const deadline = Date.now() + seconds * 1000
  // the frames get at most three quarters of the time, so the routes are always reached
  const wsDeadline = Date.now() + seconds * 750
  const log = o.log ?? (() => {})
  if (o.url !== undefined) assertLoopback(o.url)
  const answers: Record<string, number> = {}
  const disconnects: Record<string, number> = {}
  const unregistered: string[] = []
  const crashes: string[] = []
  const count = (k: string): void => { answers[k] = (answers[k] ?? 0) + 1 }
  const bad = (s: string): void => { if (unregistered.length < 50) unregistered.push(s) }
  const onCrash = (err: unknown): void => { crashes.push(`uncaught: ${(err as Error)?.stack?.split('\n').slice(0, 3).join(' | ') ?? String(err)}`) }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)

  let relay: Relay | undefined
  let url = o.url
  let apiKey = o.apiKey
  if (url === undefined) {
    apiKey = 'fuzz-operator-key-0123456789'
    relay = await startRelay({ host: '127.0.0.1', apiKey, ...o.relay })
    url = relay.url
  }
  assertLoopback(url)
  const wsUrl = url.replace(/^http/, 'ws') + '/ws'
  const started = Date.now()
  const before = mem()
  let framesSent = 0
  let requestsSent = 0

  try {
    // ---- WebSocket
    const agents: Agent[] = []
    const newAgent = async (auth: boolean): Promise<Agent> => {
      const a = new Agent(createIdentity(), wsUrl, count, (code) => { disconnects[code] = (disconnects[code] ?? 0) + 1 }, bad)
      await a.connect(auth)
      return a
    }
    for (let i = 0; i < 4; i++) agents.push(await newAgent(true))
    let unauth = await newAgent(false)
    let n = 0
    const envelope = (a: Agent, over: Record<string, unknown> = {}): Record<string, unknown> => {
      const to = rnd() < 0.5 ? '#global' : pick(agents).id.amid
      const type = typeof over.type === 'string' ? over.type : 'chat'
      return signEnvelope(a.id, { id: `fz${seed}x${++n}`, to, type, payload: { text: `fuzz ${n}` } }) as unknown as Record<string, unknown>
    }
    const weird = (): unknown => pick<() => unknown>([
      () => null, () => -1, () => 0, () => 2 ** 53 + 1, () => 1e308, () => -0.5, () => true, () => '', () => 'x'.repeat(int(5000)),
      () => '\u202e\u0000\ud800', () => [], () => ({}), () => ({ __proto__: { polluted: true } }), () => JSON.parse('{"__proto__":{"polluted":1}}'),
      () => Array.from({ length: int(50) }, () => int(10)), () => 'am' + 'x'.repeat(44), () => '#' + 'r'.repeat(int(300)),
    ])()
    const mutate = (v: Record<string, any>, depth = 0): Record<string, any> => {
      const keys = Object.keys(v)
      const k = pick([...keys, 'extra', '__proto__', 'constructor'])
      const r = rnd()
      if (r < 0.3 && keys.length > 0) delete v[pick(keys)]
      else if (r < 0.7) v[k] = weird()
      else if (typeof v[k] === 'object' && v[k] !== null && depth < 3) v[k] = mutate({ ...v[k] }, depth + 1)
      else v[k] = weird()
      return v
    }
    const deep = (d: number, open = '[', close = ']'): string => open.repeat(d) + close.repeat(d)
    const frameMakers: Array<(a: Agent) => string | Buffer> = [
      (a) => JSON.stringify({ op: 'send', env: envelope(a) }),
      (a) => { const f: Record<string, any> = { op: 'send', env: envelope(a) }; for (let i = 0, m = 1 + int(3); i < m; i++) mutate(rnd() < 0.5 || typeof f.env !== 'object' || f.env === null ? f : f.env); return JSON.stringify(f) },
      (a) => { const t = JSON.stringify({ op: 'send', env: envelope(a) }); return t.slice(0, int(t.length)) },
      () => deep(1 + int(200_000)),
      () => `{"op":"send","env":{"payload":${deep(1 + int(50_000), '{"a":', '}').replace(/\}+$/, (m) => '1' + m)}}}`,
      (a) => JSON.stringify({ op: 'send', env: signEnvelope(a.id, { id: `fz${seed}x${++n}`, to: '#global', type: 'chat', payload: { text: 'x'.repeat(int(1_200_000)) } }) }),
      (a) => JSON.stringify({ op: 'send', env: envelope(a, { type: pick([...RELAY_TYPES, 'relay.restart', 'system.x']) }) }),
      () => JSON.stringify({ op: pick(['auth', 'send', 'cursor', 'resume', 'ping', 'signal', 'nope', '__proto__', 'constructor', 'toString', '']), ...mutate({ seq: int(100), ts: int(100), room: '#global', kind: 'typing' }) }),
      () => Buffer.from(Array.from({ length: int(512) }, () => int(256))),
      () => pick(['', ' ', 'null', '[]', '"op"', '1e999999', '{"op":"ping","ts":1e999}', '{"op":"ping","op":"send"}', '\u0000', '{"op":"cursor","seq":-1}', '{"op":"cursor","seq":1e300}']),
      (a) => JSON.stringify({ ...a.authFrame(), sig: 'AAAA' }),
    ]
    const batch = 50
    while (framesSent < maxFrames && Date.now() < wsDeadline) {
      for (let i = 0; i < batch && framesSent < maxFrames; i++) {
        const useUnauth = rnd() < 0.1
        const a = useUnauth ? unauth : pick(agents)
        const maker = pick(frameMakers)
        a.send(maker(a))
        framesSent++
      }
      // pace: every connection's frames read and answered before the next batch
      await Promise.all([...agents, unauth].map(async a => await a.barrier()))
      for (let i = 0; i < agents.length; i++) if (!agents[i]!.open) agents[i] = await newAgent(true)
      if (!unauth.open) unauth = await newAgent(false)
      if (framesSent % 2000 < batch) log(`frames ${framesSent}`)
    }
    for (const a of [...agents, unauth]) a.close()

    // ---- REST: every route of the contract
    const routes = Object.values(API_ROUTES)
    const paramValues = ['global', 'ops', '@relay', 'am' + '1'.repeat(44), createIdentity().amid, '..%2F..%2Fetc', '%00', 'x'.repeat(300), '%E2%80%AE', '-1', '0', '1e9', '9007199254740993', '%ZZ', '@', '']
    const bodies: Array<() => string | undefined> = [
      () => undefined, () => '{', () => 'null', () => '[]', () => '"x"', () => JSON.stringify(mutate({ handle: 'bob', text: 'hi', to: '#global', topic: 't', id: 'x', kind: 'public' })),
      () => deep(1 + int(100_000)), () => JSON.stringify({ text: 'x'.repeat(70_000) }), () => JSON.stringify({ envelope: mutate({ v: 'x' }) }),
      () => JSON.stringify({ topic: 'a\u202eb' }), () => Buffer.from(Array.from({ length: 64 }, () => int(256))).toString('latin1'),
    ]
    const auths: Array<() => Record<string, string>> = [() => ({}), () => (apiKey === undefined ? {} : { 'x-api-key': apiKey }), () => ({ authorization: 'Bearer ' + 'x'.repeat(int(100)) }), () => ({ 'x-api-key': 'wrong' }), () => ({ authorization: 'Basic x' })]
    while (requestsSent < maxRequests && Date.now() < deadline) {
      const r = routes[requestsSent % routes.length]!
      const path = r.path.replace(/\{(\w+)\}/g, () => pick(paramValues)) + (rnd() < 0.3 ? `?limit=${pick(['0', '-1', '99999', 'x', '10'])}&after=${pick(['-1', 'a', '5'])}&before=${pick(['0', 'z'])}` : '')
      const body = rnd() < 0.8 ? pick(bodies)() : undefined
      const method = rnd() < 0.9 ? r.method.toUpperCase() : pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
      const headers: Record<string, string> = { ...pick(auths)(), ...(body === undefined ? {} : { 'content-type': pick(['application/json', 'text/plain', 'application/json; charset=utf-16']) }) }
      requestsSent++
      try {
        const res = await fetch(url + path, { method, headers, ...(body === undefined || method === 'GET' || method === 'DELETE' ? {} : { body }) })
        const text = await res.text()
        let code = ''
        if (res.status >= 400) {
          try {
            code = String((JSON.parse(text) as { error?: { code?: unknown } }).error?.code ?? '')
          } catch {}
          if (!isErrorCode(code)) bad(`${method} ${r.path} answered ${res.status} with no registered code: ${text.slice(0, 120)}`)
        }
        if (res.status >= 500 && res.status !== 503) crashes.push(`${method} ${path.slice(0, 80)} answered ${res.status}: ${text.slice(0, 200)}`)
        count(`http:${res.status}${code === '' ? '' : ':' + code}`)
      } catch (err) {
        crashes.push(`${method} ${path.slice(0, 80)}: no answer (${(err as Error).message})`)
      }
    }

    // ---- afterwards: healthy, and a normal agent is served
    const health = await fetch(url + '/healthz').then(r => r.status, () => 0)
    if (health !== 200) crashes.push(`/healthz answered ${health} after the run`)
  } catch (err) {
    crashes.push(`the run itself failed: ${(err as Error).message}`)
  }
  let stillServes = false
  try {
    const seen: string[] = []
    stillServes = await servesAnAgent(wsUrl, (s) => { seen.push(s) })
    if (!stillServes) crashes.push(`a fresh agent was not served after the run (${seen.join(', ') || 'no answer'})`)
  } catch (err) {
    crashes.push(`a fresh agent was not served after the run: ${(err as Error).message}`)
  }
  const after = mem()
  process.off('uncaughtException', onCrash)
  process.off('unhandledRejection', onCrash)
  if (relay !== undefined) await relay.close()
  return { seed, framesSent, requestsSent, answers, disconnects, unregistered, crashes, memory: { before, after }, durationMs: Date.now() - started, stillServes }
}

/** Two fresh agents: one sends the other a DM, which is acked and delivered. */
async function servesAnAgent (wsUrl: string, why: (s: string) => void): Promise<boolean> {
  const noop = (): void => {}
  const alice = new Agent(createIdentity(), wsUrl, (k) => { if (k !== 'pong') why(`alice got ${k}`) }, noop, noop)
  const bob = new Agent(createIdentity(), wsUrl, noop, noop, noop)
  bob.keepDeliveries = true
  await alice.connect(true)
  await bob.connect(true)
  try {
    const env = signEnvelope(alice.id, { id: 'after-the-fuzz', to: bob.id.amid, type: 'chat', payload: { text: 'still here?' } })
    // the relay may still be working through the run's backlog: wait for the delivery (bounded)
    const delivered = new Promise<void>((resolve) => { bob.onDeliver = resolve })
    alice.send(JSON.stringify({ op: 'send', env: env }))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([delivered, new Promise<void>((resolve) => { timer = setTimeout(resolve, 60_000) })])
    clearTimeout(timer)
    const d = bob.delivered[0] as { env?: { id?: string, payload?: { text?: string } } } | undefined
    return d?.env?.id === 'after-the-fuzz' && d.env.payload?.text === 'still here?'
  } finally {
    alice.close()
    bob.close()
  }
}

/** The report as lines a person reads. */
export function formatFuzzReport (r: FuzzReport): string {
  const top = Object.entries(r.answers).sort((a, b) => b[1] - a[1])
  return [
    `fuzz seed ${r.seed}: ${r.framesSent} frames, ${r.requestsSent} REST requests in ${(r.durationMs / 1000).toFixed(1)} s`,
    `answers: ${top.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `disconnects: ${Object.entries(r.disconnects).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `memory: rss ${r.memory.before.rssMb} → ${r.memory.after.rssMb} MB, heap ${r.memory.before.heapMb} → ${r.memory.after.heapMb} MB`,
    `unregistered codes: ${r.unregistered.length === 0 ? 'none' : r.unregistered.join('; ')}`,
    `crashes: ${r.crashes.length === 0 ? 'none' : r.crashes.join('; ')}`,
    `a normal agent is served afterwards: ${r.stillServes ? 'yes' : 'NO'}`,
  ].join('\n')
}
