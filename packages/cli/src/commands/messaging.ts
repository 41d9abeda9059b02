import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { chat, connect, schemaModeOf, tasks, type Connection, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode, ID_PATTERN, TYPE_PATTERN } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'
import { checkAmid, homeOf, passphraseOf, serverOf, withCommon, type CommonOpts } from '../common.ts'
import { output, parseInteger, parsePositive, usage, type Out } from '../output.ts'
import { watchCatastrophes } from './catastrophe.ts'
import { watchUpdates } from './updates.ts'
import { processIo, type CliIo } from '../io.ts'
import { DEFAULT_EXEC_RETRIES, DEFAULT_EXEC_TIMEOUT_S, MAX_EXEC_CONCURRENCY, MAX_EXEC_RETRIES, execLoop } from './listen-exec.ts'
import { keepPeersFile, p2pOf, p2pOptions, type P2PFlags } from './peers.ts'

/** Stop reading stdin while this many sends wait for their ack. */
const MAX_QUEUED_SENDS = 4096

interface SendOpts extends CommonOpts { stdin?: boolean, type: string, id?: string, timeout?: string, plaintext?: boolean, receipts?: boolean, payload?: string, validate?: boolean }

function deadline (timeout: string | undefined): { ms?: number, signal?: AbortSignal } {
  if (timeout === undefined) return {}
  const ms = parsePositive('--timeout', timeout) * 1000
  return { ms, signal: AbortSignal.timeout(ms) }
}

function timeoutToError (err: unknown, what: string, seconds: number | undefined): unknown {
  if (AgentMeshError.is(err, ErrorCode.Aborted) && seconds !== undefined) {
    return new AgentMeshError(ErrorCode.Timeout, `${what} within ${seconds} s (--timeout)`)
  }
  return err
}

/** --payload: a JSON object, or AM_ERR_INVALID_ARGUMENT. */
function jsonPayload (text: string): Record<string, unknown> {
  let v: unknown
  try { v = JSON.parse(text) } catch { throw usage('--payload must be a JSON object, e.g. \'{"item":"tea","qty":2}\'') }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw usage('--payload must be a JSON object, e.g. \'{"item":"tea","qty":2}\'')
  return v as Record<string, unknown>
}

function printSent (out: Out, r: { id: string, duplicate: boolean, path?: 'direct' }, to: string): void {
  out.result({ id: r.id, to, status: r.duplicate ? 'duplicate' : 'stored', ...(r.path === undefined ? {} : { path: r.path }) }, r.id)
}

async function sendLines (input: NodeJS.ReadableStream, conn: Connection, out: Out, to: string, type: string, encrypt: boolean, signal?: AbortSignal, receipts = false): Promise<number> {
  const rl = createInterface({ input, crlfDelay: Infinity })
  // each id is printed as soon as its ack arrives, in input order; reading pauses while too many wait
  let printed: Promise<void> = Promise.resolve()
  let total = 0
  for await (const line of rl) {
    const p = conn.send(to, { text: line }, { type, encrypt, ...(receipts ? { receipts } : {}), ...(signal === undefined ? {} : { signal }) })
    p.catch(() => {}) // its error surfaces in order through `printed`; not an unhandled rejection meanwhile
    printed = printed.then(async () => { printSent(out, await p, to) })
    printed.catch(() => {}) // surfaced by the awaits below
    total++
    if (conn.pendingSends >= MAX_QUEUED_SENDS) await printed
  }
  await printed
  return total
}

export function messagingCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(p2pOptions(program.command('send')
    .description('send a text message to an agent; returns once the relay has stored it and prints the envelope id (without --timeout, while the relay cannot be reached, one message is queued in the home: status "queued")')
    .argument('<amid>', 'recipient AMID')
    .argument('[text]', 'message text (or use --stdin)')
    .option('--stdin', 'send one message per input line; returns when every line is acknowledged')
    .option('--type <type>', 'envelope type', 'chat')
    .option('--id <id>', 'envelope id (for a single message): sending the same id again is stored once')
    .option('--timeout <sec>', 'give up after this many seconds (default: wait through relay restarts)')
    .option('--plaintext', 'send without end-to-end encryption (the relay can read it; for peers that published no prekeys)')
    .option('--receipts', 'ask the receiver for delivery receipts: `agentmesh sent` then shows delivered and processed')
    .option('--payload <json>', 'send this JSON object as the payload instead of a text (with --type)')
    .option('--validate', 'check the payload against the schema the recipient declares for --type first (AM_ERR_SCHEMA_MISMATCH, nothing sent)')))
    .action(async (to: string, text: string | undefined, o: SendOpts & P2PFlags) => {
      const out = output(o.json === true, io)
      checkAmid('recipient', to)
      const payload = o.payload === undefined ? undefined : jsonPayload(o.payload)
      if (payload !== undefined && (text !== undefined || o.stdin === true)) throw usage('give a text, --stdin or --payload, one of them')
      if (o.stdin === true && text !== undefined) throw usage('give the text as an argument or use --stdin, not both')
      if (o.stdin !== true && text === undefined && payload === undefined) throw usage('missing message text: `agentmesh send <amid> <text>`, or --stdin')
      if (o.id !== undefined && (o.stdin === true || !new RegExp(ID_PATTERN).test(o.id))) {
        throw usage(o.stdin === true ? '--id applies to a single message, not to --stdin' : '--id must be 8 to 128 characters of A-Z a-z 0-9 _ -')
      }
      if (!new RegExp(TYPE_PATTERN).test(o.type)) throw usage('--type must start with a lowercase letter and use a-z 0-9 . _ - (at most 64)')
      if (o.receipts === true && o.plaintext === true) throw usage('--receipts travel inside the end-to-end encryption: not with --plaintext')
      const { ms, signal } = deadline(o.timeout)
      const seconds = ms === undefined ? undefined : ms / 1000
      // direct links (§29): the peer may acknowledge it while the relay is away
      const p2p = p2pOf(o, io.env)
      let conn: Connection | undefined
      try {
        conn = await connect({
          server: serverOf(o, io.env),
          home: homeOf(o, io.env),
          ...passphraseOf(io.env),
          deliver: false,
          // one message while the relay cannot be reached is queued in the home, as `dm` does;
          // with --timeout the caller wants it stored within that time, or an error
          ...(o.stdin === true || ms !== undefined ? {} : { queueWhenUnreachable: true }),
          onWarning: (w) => { out.warn(w) }, // e.g. a leftover of an earlier run refused by the relay
          ...(ms === undefined ? {} : { connectTimeoutMs: ms }),
          ...(p2p === undefined ? {} : { p2p }),
        })
        if (o.stdin === true) {
          const n = await sendLines(io.stdin, conn, out, to, o.type, o.plaintext !== true, signal, o.receipts === true)
          await conn.flush(signal === undefined ? {} : { signal }) // leftovers of an earlier run, too
          out.note(`${n} message(s) stored by the relay`)
        } else {
          let markQueued!: (id: string) => void
          const queued = new Promise<string>((resolve) => { markQueued = resolve })
          const sent = conn.send(to, payload ?? { text: text! }, { type: o.type, encrypt: o.plaintext !== true, onQueued: markQueued, ...(o.receipts === true ? { receipts: true } : {}), ...(o.validate === true ? { validate: true } : {}), ...(o.id === undefined ? {} : { id: o.id }), ...(signal === undefined ? {} : { signal }) })
          sent.catch(() => {}) // awaited below, or left in the outbox
          if (!conn.connected) {
            // with direct links, the peer's answer is awaited first (its ack timeout, 2 s)
            const direct = p2p === undefined ? undefined : await Promise.race([sent, new Promise<undefined>((resolve) => { setTimeout(() => { resolve(undefined) }, (p2p.directAckTimeoutMs ?? 2000) + 500).unref() })])
            if (direct !== undefined) { printSent(out, direct, to); return }
            const id = await Promise.race([queued, sent.then(r => r.id)])
            if (!conn.connected) {
              out.result({ id, to, status: 'queued' }, id)
              out.note(`queued: the relay at ${serverOf(o, io.env)} cannot be reached; the message is kept in this agent's home and sent, in order, with its next connection (\`agentmesh listen\`, or the next message sent)`)
              return
            }
          }
          printSent(out, await sent, to)
        }
      } catch (err) {
        throw timeoutToError(err, 'not every message was acknowledged by the relay', seconds)
      } finally {
        await conn?.close()
      }
    })

  withCommon(p2pOptions(program.command('listen')
    .description('print incoming messages, each once, acknowledging them; continues where it stopped')
    .option('--count <n>', 'exit after this many messages')
    .option('--timeout <sec>', 'exit after this many seconds (an error if --count was not reached)')
    .option('--no-plaintext', 'drop unencrypted messages (AM_ERR_PLAINTEXT_REFUSED warning) instead of showing them marked [unencrypted]')
    .option('--no-commands', 'do not answer the built-in /status and /ping tasks while listening')
    // ---- wake-ups: listen --exec (§26)
    .option('--exec <command>', 'run this command (through sh -c) once per message instead of printing it: the message as JSON on its stdin, AGENTMESH_MESSAGE_ID/FROM/TO/TYPE/SEQ/ROOM in its environment; a message counts as processed only when its command exits 0')
    .option('--exec-concurrency <n>', `commands running at once (1 keeps the order; at most ${MAX_EXEC_CONCURRENCY})`, '1')
    .option('--exec-retries <n>', `runs again after a failure, with backoff from 1 s; then listen stops with AM_ERR_EXEC_FAILED and the message stays (at most ${MAX_EXEC_RETRIES})`, String(DEFAULT_EXEC_RETRIES))
    .option('--exec-timeout <sec>', 'a command still running after this long is killed (a failure)', String(DEFAULT_EXEC_TIMEOUT_S))
    .option('--schema-mode <mode>', 'payloads that do not match this agent\'s declared schemas: warn (shown, marked) or strict (refused, the sender told) (env AGENTMESH_SCHEMA_MODE)')))
    .action(async (o: CommonOpts & P2PFlags & { count?: string, timeout?: string, plaintext: boolean, commands: boolean, exec?: string, execConcurrency: string, execRetries: string, execTimeout: string, schemaMode?: string }) => {
      const out = output(o.json === true, io)
      const count = o.count === undefined ? undefined : parseInteger('--count', o.count, 1)
      if (o.exec !== undefined && o.exec.trim() === '') throw usage('--exec needs a command')
      const exec = o.exec === undefined
        ? undefined
        : { command: o.exec, concurrency: parseInteger('--exec-concurrency', o.execConcurrency, 1, MAX_EXEC_CONCURRENCY), retries: parseInteger('--exec-retries', o.execRetries, 0, MAX_EXEC_RETRIES), timeoutMs: parsePositive('--exec-timeout', o.execTimeout) * 1000 }
      const { ms, signal } = deadline(o.timeout)
      // direct links (§29): off unless asked for
      const p2p = p2pOf(o, io.env)
      let stopPeersFile: (() => void) | undefined
      const stop = new AbortController()
      const release = io.onInterrupt(() => { stop.abort() })
      const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal])
      let conn: Connection | undefined
      let n = 0
      try {
        conn = await connect({
          server: serverOf(o, io.env),
          home: homeOf(o, io.env),
          ...passphraseOf(io.env),
          ...(ms === undefined ? {} : { connectTimeoutMs: ms }),
          signal: stop.signal,
          acceptPlaintext: o.plaintext,
          schemas: { mode: schemaModeOf(o.schemaMode, io.env) },
          onKnock: (k) => {
            // on stderr: stdout holds messages only
            io.stderr.write(o.json === true
              ? JSON.stringify({ knock: { id: k.id, from: k.from, tier: k.tier, intent: k.intent, policy: k.decision.reason } }) + '\n'
              : `agentmesh: knock ${k.id} from ${k.from} is held for you: [${k.intent.category}] ${k.intent.summary.replaceAll('\n', ' ')} (${k.decision.reason}); answer with \`agentmesh knocks accept ${k.id}\` or \`agentmesh knocks reject ${k.id}\`\n`)
          },
          onWarning: (w) => { out.warn(w) }, // e.g. a delivery dropped for a bad signature
          ...(p2p === undefined ? {} : { p2p }),
        })
        if (p2p !== undefined) {
          const addrs = conn.p2pAddresses()
          io.stderr.write(o.json === true ? JSON.stringify({ p2p: { addrs } }) + '\n' : `agentmesh: direct links listen on ${addrs.join(', ')}\n`)
          stopPeersFile = keepPeersFile(conn, homeOf(o, io.env))
        }
        if (o.commands) {
          // a listening agent answers /status and /ping tasks (docs/protocol.md §17.7)
          const started = Date.now()
          const c = conn
          const t = tasks(c)
          try {
            await t.onCommand('status', () => ({ amid: c.amid, status: 'online', uptime_s: Math.round((Date.now() - started) / 1000), pending_sends: c.pendingSends, received: n }), { description: 'this agent\'s status' })
            await t.onCommand('ping', (task) => task.args === '' ? 'pong' : `pong ${task.args}`, { description: 'answers pong' })
          } catch (err) {
            // listening goes on; tasks are just not answered
            out.warn(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, `could not declare /status and /ping: ${(err as Error).message}`))
          }
        }
        watchMembership(conn, io, out, o.json === true)
        watchCatastrophes(conn, io, o.json === true)
        watchUpdates(conn, io, o.json === true)
        const names = senderNames(conn)
        const verified = safetyNumbers(conn)
        if (exec !== undefined) {
          const c = conn
          n = await execLoop(conn, io, out, {
            ...exec,
            signal: both,
            ...(count === undefined ? {} : { count }),
            json: async (m) => messageJson(m, await names(m.from), { fromRelay: m.from === c.relayAmid, safetyNumberVerified: await verified(m) }),
          })
        } else {
          for await (const m of conn.messages({ signal: both })) {
            printMessage(out, m, await names(m.from), { fromRelay: m.from === conn.relayAmid, safetyNumberVerified: await verified(m) })
            n++
            if (count !== undefined && n >= count) break
          }
        }
      } catch (err) {
        if (!(AgentMeshError.is(err, ErrorCode.Aborted) && stop.signal.aborted)) {
          throw timeoutToError(err, 'could not connect', ms === undefined ? undefined : ms / 1000)
        }
      } finally {
        stopPeersFile?.()
        await conn?.close()
        release()
      }
      if (count !== undefined && n < count && !stop.signal.aborted) {
        throw new AgentMeshError(ErrorCode.Timeout, `received ${n} of ${count} messages within ${ms! / 1000} s (--timeout)`)
      }
    })
}

/**
 * Membership changes of private rooms, on stderr while listening: when the relay says someone was
 * invited, the room's signed chain is verified (docs/protocol.md §17.5) and each verified change
 * is printed with who signed it; a change the chain does not prove is a warning.
 */
function watchMembership (conn: Connection, io: CliIo, out: ReturnType<typeof output>, json: boolean): void {
  void (async () => {
    for await (const e of conn.events()) {
      if (e.type !== 'member' || e.room === undefined) continue
      if (e.change === 'invited' && e.by !== undefined) {
        await chat(conn).membership(e.room.slice(1)).catch((err: unknown) => { out.warn(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, (err as Error).message)) })
      } else if ((e.change === 'added' || e.change === 'removed') && e.by !== undefined) {
        io.stderr.write(json
          ? JSON.stringify({ member: { room: e.room, amid: e.amid, change: e.change, by: e.by, ts: e.ts } }) + '\n'
          : `agentmesh: ${e.room}: ${e.amid} was ${e.change} by ${e.by} (signed)\n`)
      }
    }
  })().catch(() => {})
}

/** Facts about a sender kept for a minute, then asked again: at most this many senders are kept. */
const SENDER_CACHE_MS = 60_000
const MAX_CACHED_SENDERS = 10_000

/** A per-sender answer, computed once a minute per sender (the LRU bounds the memory). */
function perSender<T> (compute: (amid: string) => Promise<T>): (amid: string) => Promise<T> {
  const cache = new LruMap<string, { value: T, at: number }>(MAX_CACHED_SENDERS)
  return async (amid) => {
    const hit = cache.get(amid)
    if (hit !== undefined && Date.now() - hit.at < SENDER_CACHE_MS) return hit.value
    const value = await compute(amid)
    cache.set(amid, { value, at: Date.now() })
    return value
  }
}

/** Senders' handles, asked of the relay once a minute per sender; undefined when none (or the relay does not answer). */
function senderNames (conn: Connection): (amid: string) => Promise<string | undefined> {
  const c = chat(conn)
  const ask = perSender(async (amid) => await c.handleOf(amid).catch(() => undefined))
  return async (amid) => amid === conn.relayAmid ? 'relay' : await ask(amid)
}

/**
 * Whether the user compared and accepted the sender's safety number (`agentmesh verify --accept`).
 * Asked only for encrypted messages: their sender's key is known already, so nothing goes to the
 * network and no session starts for a peer that only sent plaintext. A safety number costs
 * thousands of hash iterations, so the answer is kept a minute per sender (a `verify --accept` run
 * meanwhile shows within that minute), as handles are.
 */
function safetyNumbers (conn: Connection): (m: Message) => Promise<boolean> {
  const ask = perSender(async (amid) => (await conn.peer(amid).catch(() => undefined))?.verified === true)
  return async (m) => !m.encrypted || m.from === conn.relayAmid ? false : await ask(m.from)
}

/** The SDK's provenance in snake_case, as the other fields of listen --json; null when no policy is in force. */
function provenanceJson (m: Message): Record<string, unknown> | null {
  const p = m.provenance
  if (p === undefined) return null
  return {
    tier: p.tier,
    organisation: p.organisation,
    handle: p.handle,
    relation: p.relation,
    ...(p.grant === undefined ? {} : { grant: { id: p.grant.id, scopes: p.grant.scopes, expires_at: p.grant.expiresAt } }),
  }
}

/** A message as `listen --json` prints it (and `listen --exec` gives its command on stdin). */
function messageJson (m: Message, handle: string | undefined, sender: { fromRelay: boolean, safetyNumberVerified: boolean }): Record<string, unknown> {
  return {
    id: m.id,
    from: m.from,
    ...(handle === undefined ? {} : { from_handle: handle }),
    to: m.to,
    ts: m.ts,
    type: m.type,
    seq: m.seq,
    encrypted: m.encrypted,
    ...(m.room === undefined ? {} : { room: m.room }),
    ...(m.via === undefined ? {} : { via: m.via }),
    ...(m.text === undefined ? {} : { text: m.text }),
    payload: m.payload,
    untrusted: m.untrusted === true,
    provenance: provenanceJson(m),
    safety_number_verified: sender.safetyNumberVerified,
    ...(m.schemaError === undefined ? {} : { schema_error: m.schemaError }),
    ...(m.path === undefined ? {} : { path: m.path }),
  }
}

function printMessage (out: Out, m: Message, handle: string | undefined, sender: { fromRelay: boolean, safetyNumberVerified: boolean }): void {
  const body = m.text ?? JSON.stringify(m.payload)
  // room messages of public rooms are signed plaintext by design: not marked
  const marker = m.room !== undefined ? ` #${m.room}` : m.encrypted ? '' : ' [unencrypted]'
  // the relay this agent connected to is not a peer; anyone else is unverified until its owner
  // accepted its safety number (`verify --accept`), whatever its certificate tier (shown in --json)
  const unverified = !sender.fromRelay && !sender.safetyNumberVerified ? ' [unverified]' : ''
  out.result(messageJson(m, handle, sender), `${new Date(m.ts).toISOString()} ${m.from}${handle === undefined ? '' : ` (@${handle})`}${unverified}${marker}${m.type === 'chat' ? '' : ` [${m.type}]`}${m.schemaError === undefined ? '' : ` [schema: ${m.schemaError}]`}: ${body}`)
}
