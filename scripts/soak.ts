/**
 * A bounded soak of the default (knock-first) agent: N agents on one durable relay, each knocks on
 * its partners and is accepted by the owner, then every agent sends DMs to its partners at a steady
 * rate while the relay is SIGKILLed and restarted on the same data directory. At the end it counts,
 * per receiver, the messages the relay acknowledged to their senders against what the receivers'
 * applications got: lost, duplicated, out of order. 127.0.0.1 only; stops by itself.
 *
 *   npm run soak                       # defaults below
 *   SOAK_AGENTS=10 SOAK_SECONDS=60 SOAK_RATE=2 SOAK_KILLS=2 npm run soak
 *   SOAK_STORE=postgres://postgres@127.0.0.1:5432/DB?schema=soak npm run soak   # the relay on PostgreSQL (an empty schema)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIdentity, saveIdentity, type Identity } from '@agentmesh/crypto'
import { connect, type Connection } from '@agentmesh/client'
import { freePort, spawnRelay, type RelayProcess } from '@agentmesh/testing'
import { UsageError, fail, numberArg, scriptArgs } from './script-args.ts'

const USAGE = `usage: npm run soak
  N agents on one durable relay send DMs to their partners while the relay is SIGKILLed and
  restarted; counts what was acknowledged against what was received (lost, duplicated, out of
  order). 127.0.0.1 only; stops by itself; exit 1 when anything acknowledged was lost.

  environment:
    SOAK_AGENTS=10    agents (2 or more)
    SOAK_SECONDS=60   length of the run
    SOAK_RATE=2       DMs per second per agent
    SOAK_KILLS=2      SIGKILLs of the relay during the run
    SOAK_STORE=postgres://…   the relay on PostgreSQL (an empty schema) instead of SQLite`
scriptArgs('soak', USAGE, {})
const env = (name: string): { name: string, value: string | undefined } => ({ name, value: process.env[name] })
let N: number, SECONDS: number, RATE: number, KILLS: number
try {
  N = numberArg('', undefined, env('SOAK_AGENTS'), 10, { min: 2, integer: true })
  SECONDS = numberArg('', undefined, env('SOAK_SECONDS'), 60, { min: 1 })
  RATE = numberArg('', undefined, env('SOAK_RATE'), 2, { min: 0.01 }) // DMs per second per agent
  KILLS = numberArg('', undefined, env('SOAK_KILLS'), 2, { min: 0, integer: true })
} catch (err) {
  if (err instanceof UsageError) fail('soak', USAGE, err.message)
  throw err
}
/** `serve --store`: the relay on PostgreSQL instead of SQLite under its data directory */
const STORE = process.env.SOAK_STORE
const STORE_ARGS = STORE === undefined || STORE === '' ? [] : ['--store', STORE]
const PARTNERS = Math.min(3, N - 1)
const KNOCK_FIRST = { version: 1 as const, default_action: 'hold' as const }

interface Agent { id: Identity, home: string, conn?: Connection, got: Map<string, number>, order: Array<{ from: string, n: number }> }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-soak-'))
  const port = await freePort()
  const data = join(dir, 'relay')
  let relay: RelayProcess = await spawnRelay({ dataDir: data, port, args: STORE_ARGS })
  const agents: Agent[] = Array.from({ length: N }, (_, i) => {
    const id = createIdentity(`a${i}`)
    const home = join(dir, `a${i}`)
    saveIdentity(home, id)
    return { id, home, got: new Map(), order: [] }
  })
  const warnings = new Map<string, number>()
  for (const a of agents) {
    a.conn = await connect({ server: relay.url, home: a.home, policy: KNOCK_FIRST, connectTimeoutMs: 30_000, onWarning: (w) => { warnings.set(w.code, (warnings.get(w.code) ?? 0) + 1) } })
  }
  const partners = (i: number): number[] => Array.from({ length: PARTNERS }, (_, k) => (i + k + 1) % N)
  // each agent knocks on its partners; the owners accept what is held
  for (let i = 0; i < N; i++) for (const j of partners(i)) await agents[i]!.conn!.knock(agents[j]!.id.amid, { category: 'question', summary: `soak ${i}` })
  const readers = agents.map(a => (async () => {
    for await (const m of a.conn!.messages()) {
      const n = Number((m.payload as { n?: number }).n)
      if (!Number.isFinite(n)) continue
      const key = `${m.from}/${n}`
      a.got.set(key, (a.got.get(key) ?? 0) + 1)
      a.order.push({ from: m.from, n })
    }
  })())
  const deadline = Date.now() + 30_000
  for (;;) {
    for (const a of agents) for (const k of a.conn!.knocks()) await a.conn!.answerKnock(k.id, 'accept')
    if (agents.every((a, i) => partners(i).every(j => a.conn!.grants().received.some(g => g.grantor === agents[j]!.id.amid)))) break
    if (Date.now() > deadline) throw new Error('the knocks were not all answered within 30 s')
    await sleep(200)
  }
  // the stream, with SIGKILLs of the relay
  const acked = new Map<string, Set<number>>() // receiver → `${from}/${n}`
  let sent = 0
  let failed = 0
  const start = Date.now()
  const killAt = Array.from({ length: KILLS }, (_, k) => start + (k + 1) * SECONDS * 1000 / (KILLS + 1))
  const senders = agents.map((a, i) => (async () => {
    let n = 0
    const pending: Array<Promise<void>> = []
    while (Date.now() - start < SECONDS * 1000) {
      for (const j of partners(i)) {
        if (Math.random() > 1 / PARTNERS) continue
        const to = agents[j]!
        const my = n++
        sent++
        pending.push(a.conn!.send(to.id.amid, { text: `soak ${my}`, n: my }).then(() => {
          let s = acked.get(to.id.amid)
          if (s === undefined) { s = new Set(); acked.set(to.id.amid, s) }
          s.add(my * 1000 + i)
        }, () => { failed++ }))
      }
      await sleep(1000 / RATE)
    }
    await Promise.all(pending)
  })())
  const killer = (async () => {
    for (const t of killAt) {
      await sleep(Math.max(0, t - Date.now()))
      await relay.kill('SIGKILL')
      await sleep(500)
      relay = await spawnRelay({ dataDir: data, port, args: STORE_ARGS })
    }
  })()
  await Promise.all([...senders, killer])
  // drain: wait until every acknowledged message arrived, or 60 s
  const expected = (): number => [...acked.values()].reduce((s, x) => s + x.size, 0)
  const receivedOf = (a: Agent): number => a.got.size
  const drainUntil = Date.now() + 60_000
  while (agents.reduce((s, a) => s + receivedOf(a), 0) < expected() && Date.now() < drainUntil) await sleep(250)
  let lost = 0
  let dup = 0
  let outOfOrder = 0
  for (const a of agents) {
    for (const [, c] of a.got) if (c > 1) dup += c - 1
    const last = new Map<string, number>()
    for (const { from, n } of a.order) {
      if ((last.get(from) ?? -1) > n) outOfOrder++
      last.set(from, n)
    }
    const want = acked.get(a.id.amid) ?? new Set()
    for (const x of want) {
      const n = Math.floor(x / 1000)
      const from = agents[x % 1000]!.id.amid
      if (!a.got.has(`${from}/${n}`)) lost++
    }
  }
  console.log(JSON.stringify({ agents: N, seconds: SECONDS, rate_per_agent: RATE, relay_kills: KILLS, sent, acknowledged: expected(), send_failed: failed, delivered: agents.reduce((s, a) => s + receivedOf(a), 0), lost, duplicated: dup, out_of_order: outOfOrder, warnings: Object.fromEntries(warnings) }))
  for (const a of agents) await a.conn!.close()
  await Promise.race([Promise.all(readers), sleep(2000)])
  await relay.kill()
  rmSync(dir, { recursive: true, force: true })
  process.exit(lost === 0 && dup === 0 ? 0 : 1)
}

main().catch((err) => { console.error(err); process.exit(2) })
