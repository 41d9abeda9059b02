/**
 * The chat commands (docs/protocol.md §17): rooms, DMs, history, presence, handles, tasks, bearer
 * tokens and roles (the audit log: logs.ts). Messages go over the WebSocket with the SDK; everything else
 * is the REST API v1, each call signed by the agent's identity, or sent with the operator's
 * X-API-Key (`--api-key`, AGENTMESH_API_KEY) when one is given.
 */
import { createInterface } from 'node:readline'
import { Option, type Command } from 'commander'
import { formatSafetyNumber, isAmid, loadIdentity, signChallenge, type Identity } from '@agentmesh/crypto'
import { FINAL_TASK_STATES, GROUP_TYPE, chat, connect, type Connection, type HistoryEntry, type VerifiedRoomMembership } from '@agentmesh/client'
import {
  AgentMeshError, COMMAND_PATTERN, ErrorCode, HANDLE_PATTERN, ID_PATTERN, MAX_PAGE, MAX_TASK_ARGS, MAX_TASK_DEADLINE_S,
  MAX_TOPIC_LENGTH as MAX_TOPIC, RESERVED_HANDLES, ROLES, ROOM_ID_PATTERN, TASK_STATES, isReservedHandle,
  type ApiAnswer, type ApiBody, type HistoryMessage, type RoomInfo, type RouteName, type TaskInfo,
} from '@agentmesh/protocol'
import { homeOf, passphraseOf, serverOf, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, parseInteger, parsePositive, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { registryRequest } from '../registry.ts'

// ------------------------------------------------------------------ arguments

const ROOM_RE = new RegExp(ROOM_ID_PATTERN)
const ID_RE = new RegExp(ID_PATTERN)
// handles (§17.1), commands and task states (§17.7), roles and bounds are the REST contract's (@agentmesh/protocol)
const HANDLE_RE = new RegExp(HANDLE_PATTERN)
const COMMAND_RE = new RegExp(COMMAND_PATTERN)
/** The relay's largest page (REST v1); longer --limit values are read page by page. */
export const PAGE = MAX_PAGE
export const MAX_LIMIT = 10_000
const POLL_MS = 500
/** Stop reading stdin while this many sends wait for their ack. */
const MAX_QUEUED_SENDS = 4096
/** --timeout of the connection a command opens to sign with the agent's state (private rooms, handle pins) */
const CONNECT_TIMEOUT = '10'
const TASK_UPDATE_TYPE = 'task.update'

/** A room id as given (`ops` or `#ops`), without the `#`. */
function roomOf (what: string, s: string): string {
  const id = s.startsWith('#') ? s.slice(1) : s
  if (!ROOM_RE.test(id)) throw usage(`${what} "${s.slice(0, 80)}" is not a room id (1–64 characters of a-z 0-9 _ -, starting with a letter or digit, e.g. global, ops or #ops)`)
  return id
}

/** A handle to take, with or without the `@`. */
function handleOf (what: string, s: string): string {
  const h = s.startsWith('@') ? s.slice(1) : s
  if (!HANDLE_RE.test(h)) throw usage(`${what} "${s.slice(0, 80)}" is not a handle (2–32 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit)`)
  if (isReservedHandle(h)) throw usage(`${what} "${h}" is reserved or looks like a reserved name (${[...RESERVED_HANDLES].join(', ')}); choose another`)
  return h
}

/** An agent: an AMID or `@handle`, as given. */
function agentOf (what: string, s: string): string {
  if (isAmid(s)) return s
  if (s.startsWith('@') && HANDLE_RE.test(s.slice(1))) return s
  throw usage(`${what} "${s.slice(0, 80)}" is neither an AMID nor an @handle (e.g. @bob; \`agentmesh whoami\` prints your AMID)`)
}

function idOf (what: string, s: string): string {
  if (!ID_RE.test(s)) throw usage(`${what} "${s.slice(0, 80)}" is not an id (8 to 128 characters of A-Z a-z 0-9 _ -)`)
  return s
}

export function optInt (name: string, v: string | undefined, min: number, max?: number): number | undefined {
  return v === undefined ? undefined : parseInteger(name, v, min, max)
}

export function apiKeyOf (key: string | undefined): string | undefined {
  if (key === undefined || key === '') return undefined
  if (!/^[\x21-\x7e]{1,256}$/.test(key)) throw usage('--api-key (AGENTMESH_API_KEY) must be 1–256 printable characters without spaces')
  return key
}

function oneLine (s: string): string { return s.replace(/\r?\n/g, ' ') }

export const iso = (ms: number): string => new Date(ms).toISOString()

// ------------------------------------------------------------------ REST

export interface ApiOpts extends CommonOpts { apiKey?: string }

/** REST v1 calls for one command: signed by the agent's identity, or with the operator's key. */
export interface Api {
  /** Route `route` at `path` (its parameters filled in, with its query), typed by the route table. */
  call<R extends RouteName> (route: R, path: string, body?: ApiBody<R>): Promise<ApiAnswer<R>>
  /** The agent's identity (loaded on first use); the operator has none. */
  identity (): Identity
  readonly operator: boolean
}

export function apiOf (o: ApiOpts, io: Pick<CliIo, 'env'>): Api {
  const key = apiKeyOf(o.apiKey)
  const server = serverOf(o, io.env)
  let id: Identity | undefined
  const identity = (): Identity => (id ??= loadIdentity(homeOf(o, io.env), passphraseOf(io.env)))
  return {
    operator: key !== undefined,
    identity,
    async call (route, path, body) {
      const text = body === undefined ? undefined : JSON.stringify(body)
      const auth = key !== undefined ? { apiKey: key } : { identity: identity() }
      return await registryRequest(server, route, path, { ...auth, ...(text === undefined ? {} : { body: text }) })
    },
  }
}

export function query (q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v))
  const s = p.toString()
  return s === '' ? '' : '?' + s
}

/** An AMID for an agent given as an AMID or @handle. */
async function resolveAgent (api: Api, ref: string): Promise<string> {
  if (isAmid(ref)) return ref
  const r = await api.call('resolveHandle', `/api/v1/handles/${encodeURIComponent(ref.slice(1))}`)
  return r.amid
}

/**
 * An @handle's AMID as the agent's connection resolves it: checked against the AMID pinned for the
 * handle (AM_ERR_HANDLE_CHANGED when the relay now names another agent); on first contact the AMID
 * (and the safety number, when the peer published keys) is shown and pinned.
 */
async function resolvePinned (conn: Connection, out: Out, handle: string): Promise<string> {
  const key = handle.replace(/^@/, '').toLowerCase()
  const first = !conn.handlePins().some(p => p.handle === key)
  const amid = await conn.resolveHandle(handle)
  if (first && conn.handlePins().some(p => p.handle === key)) {
    let sn = ''
    try {
      const st = await conn.peer(amid)
      if (st.safetyNumber !== undefined) sn = `, safety number ${formatSafetyNumber(st.safetyNumber)}`
    } catch { /* no keys published: the AMID alone */ }
    out.note(`first contact with @${key}: it is ${amid}${sn}. Pinned: should @${key} ever resolve to another agent, sends are refused (AM_ERR_HANDLE_CHANGED); compare with its holder: \`agentmesh verify ${amid}\``)
  }
  return amid
}

/** Options shared by every REST command. */
export function withApi (cmd: Command): Command {
  return withCommon(cmd).addOption(new Option('--api-key <key>', 'the relay operator\'s API key: send X-API-Key (acting as the operator) instead of signing as this agent').env('AGENTMESH_API_KEY'))
}

// ------------------------------------------------------------------ waiting

const sleep = async (ms: number, signal: AbortSignal): Promise<void> => {
  if (signal.aborted) return
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms)
    function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Aborted by SIGINT/SIGTERM, or after `seconds` (when given); `release()` removes the handlers. */
export function stopper (io: Pick<CliIo, 'onInterrupt'>, seconds: number | undefined): { signal: AbortSignal, interrupted: () => boolean, release: () => void } {
  const stop = new AbortController()
  const release = io.onInterrupt(() => { stop.abort() })
  const signal = seconds === undefined ? stop.signal : AbortSignal.any([stop.signal, AbortSignal.timeout(seconds * 1000)])
  return {
    signal,
    interrupted: () => stop.signal.aborted,
    release,
  }
}

/** Runs `poll` every POLL_MS until `signal`; a rate-limited poll waits a little longer. */
export async function pollUntil (signal: AbortSignal, poll: () => Promise<boolean | void>): Promise<void> {
  while (!signal.aborted) {
    await sleep(POLL_MS, signal)
    if (signal.aborted) return
    try {
      if (await poll() === true) return
    } catch (err) {
      if (!AgentMeshError.is(err, ErrorCode.RateLimited)) throw err
      await sleep(2000, signal)
    }
  }
}

function timeoutToError (err: unknown, what: string, seconds: number): unknown {
  if (AgentMeshError.is(err, ErrorCode.Aborted)) return new AgentMeshError(ErrorCode.Timeout, `${what} within ${seconds} s (--timeout)`)
  return err
}

// ------------------------------------------------------------------ sending

function printSent (out: Out, r: { id: string, duplicate: boolean }, where: Record<string, string>): void {
  out.result({ id: r.id, ...where, status: r.duplicate ? 'duplicate' : 'stored' }, r.id)
}

/** Sends one message per stdin line, printing each id once acknowledged, in input order. */
async function sendLines (input: NodeJS.ReadableStream, conn: Connection, out: Out, to: string, opts: { encrypt?: boolean, signal?: AbortSignal }, where: Record<string, string>): Promise<number> {
  const rl = createInterface({ input, crlfDelay: Infinity })
  let printed: Promise<void> = Promise.resolve()
  let total = 0
  for await (const line of rl) {
    if (line === '') continue
    const p = conn.send(to, { text: line }, { type: 'chat', ...(opts.signal === undefined ? {} : { signal: opts.signal }), ...(opts.encrypt === undefined ? {} : { encrypt: opts.encrypt }) })
    p.catch(() => {}) // surfaces in order through `printed`
    printed = printed.then(async () => { printSent(out, await p, where) })
    printed.catch(() => {})
    total++
    if (conn.pendingSends >= MAX_QUEUED_SENDS) await printed
  }
  await printed
  return total
}

interface SendOpts extends ApiOpts { stdin?: boolean, id?: string, timeout?: string }

function checkSendOpts (o: SendOpts, text: string | undefined, how: string): void {
  if (o.stdin === true && text !== undefined) throw usage(`give the text ${how} or use --stdin, not both`)
  if (text !== undefined && text.trim() === '') throw usage('the message text is empty')
  if (o.id !== undefined) {
    if (o.stdin === true) throw usage('--id applies to a single message, not to --stdin')
    idOf('--id', o.id)
  }
}

/**
 * The message as sent: a single text, or --stdin; over a connection that receives nothing. A
 * single message while the relay cannot be reached is queued in the agent's home (the outbox; a
 * room message whose room cannot be looked up is kept sealed, to be encrypted for the room once the
 * relay answers) and goes out with the next connection from this home: printed with status
 * "queued" (docs/protocol.md §17.5).
 */
async function sendChat (io: Pick<CliIo, 'env' | 'stdin'>, o: SendOpts, out: Out, to: string, text: string | undefined, where: Record<string, string>, encrypt?: boolean): Promise<void> {
  const seconds = parsePositive('--timeout', o.timeout ?? '30')
  // one message: within --timeout (30 s by default); --stdin: as long as the input lasts, unless --timeout
  const signal = o.stdin === true && o.timeout === undefined ? undefined : AbortSignal.timeout(seconds * 1000)
  try {
    if (o.stdin === true) {
      await withConnection(io, { ...o, timeout: String(seconds) }, out, async (conn) => {
        const n = await sendLines(io.stdin, conn, out, to, { ...(signal === undefined ? {} : { signal }), ...(encrypt === undefined ? {} : { encrypt }) }, where)
        out.note(`${n} message(s) stored by the relay`)
      }, { flush: true })
      return
    }
    const conn = await connect({
      server: serverOf(o, io.env), home: homeOf(o, io.env), ...passphraseOf(io.env), deliver: false, connectTimeoutMs: seconds * 1000, queueWhenUnreachable: true, onWarning: (w) => { out.warn(w) },
    })
    try {
      let markQueued!: (id: string) => void
      const queued = new Promise<string>((resolve) => { markQueued = resolve })
      const sent = conn.send(to, { text: text! }, { type: 'chat', onQueued: markQueued, ...(signal === undefined ? {} : { signal }), ...(o.id === undefined ? {} : { id: o.id }), ...(encrypt === undefined ? {} : { encrypt }) })
      sent.catch(() => {}) // awaited below, or left in the queue
      if (!conn.connected) {
        const id = await Promise.race([queued, sent.then(r => r.id)])
        if (!conn.connected) {
          out.result({ id, ...where, status: 'queued' }, id)
          out.note(`queued: the relay at ${serverOf(o, io.env)} cannot be reached; the message is kept in this agent's home and sent, in order, with its next connection (\`agentmesh listen\`, or the next message sent)`)
          return
        }
      }
      printSent(out, await sent, where)
    } finally {
      await conn.close()
    }
  } catch (err) {
    throw timeoutToError(err, 'not every message was acknowledged by the relay', seconds)
  }
}

// ------------------------------------------------------------------ printing

function messageText (m: HistoryEntry): string {
  if (m.deleted !== undefined) return '[deleted]'
  if (typeof m.text === 'string') return oneLine(m.text)
  if (m.type === GROUP_TYPE) return m.not_decrypted === undefined ? '[encrypted]' : `[encrypted] (${m.not_decrypted.message})`
  if (m.type === TASK_UPDATE_TYPE && typeof m.payload?.text === 'string') return oneLine(m.payload.text)
  return JSON.stringify(m.payload ?? {})
}

function printMessage (out: Out, room: string, m: HistoryEntry): void {
  const { envelope: _envelope, ...shown } = m
  void _envelope
  const at = m.ts ?? m.received_at
  const tag = m.deleted !== undefined || m.type === undefined || m.type === 'chat' || m.type === GROUP_TYPE ? '' : ` [${m.type}]`
  out.result({ room, ...shown }, `${typeof at === 'number' ? iso(at) : '-'} #${m.seq} ${m.from_handle ?? m.from}${tag}: ${messageText(m)}`)
}

/** Opens private rooms' sealed history messages with the agent's own sender keys (docs/protocol.md §17.5). */
interface HistoryDecryptor {
  decrypt (room: string, messages: HistoryMessage[]): Promise<HistoryEntry[]>
  close (): Promise<void>
}

/**
 * The agent's sender keys live in its state (state.db in its home): a connection that receives
 * nothing is opened the first time a sealed message is read, and closed at the end. The operator
 * holds no keys: its history stays sealed, as before. When the keys cannot be opened (a wrong
 * passphrase, say), a warning says so once and the messages are listed sealed.
 */
function historyDecryptor (io: Pick<CliIo, 'env'>, o: ApiOpts, out: Out, api: Api): HistoryDecryptor {
  let conn: Promise<Connection> | undefined
  let failed: AgentMeshError | undefined
  return {
    async decrypt (room, messages) {
      if (api.operator || failed !== undefined || !messages.some(m => m.type === GROUP_TYPE && m.envelope !== undefined)) return messages
      conn ??= connect({ server: serverOf(o, io.env), home: homeOf(o, io.env), ...passphraseOf(io.env), deliver: false, onWarning: (w) => { out.warn(w) } })
      try {
        return chat(await conn).decryptHistory(room, messages)
      } catch (err) {
        failed = AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, (err as Error).message)
        out.warn(new AgentMeshError(failed.code, `private messages are listed sealed: this agent's sender keys could not be opened (${failed.message})`))
        return messages
      }
    },
    async close () { await (await conn?.catch(() => undefined))?.close() },
  }
}

/**
 * Up to `limit` messages in seq order: the newest (before `before` when given), or the oldest
 * after `after`; read page by page. `more` is where an older (or newer) page starts.
 */
async function readHistory (api: Api, room: string, q: { limit: number, before?: number, after?: number }): Promise<{ messages: HistoryMessage[], more?: number, lastSeq?: number }> {
  const path = `/api/v1/rooms/${room}/history`
  let messages: HistoryMessage[] = []
  let lastSeq: number | undefined
  if (q.after !== undefined) {
    let after = q.after
    for (;;) {
      const want = Math.min(PAGE, q.limit - messages.length)
      const r = await api.call('roomHistory', path + query({ after, limit: want }))
      lastSeq = r.last_seq
      messages.push(...r.messages)
      const last = r.messages.at(-1)?.seq
      if (r.messages.length < want || last === undefined || last <= after) return { messages, lastSeq }
      after = last
      if (messages.length >= q.limit) return { messages, more: after, lastSeq }
    }
  }
  let before = q.before
  for (;;) {
    const want = Math.min(PAGE, q.limit - messages.length)
    const r = await api.call('roomHistory', path + query({ before, limit: want }))
    lastSeq ??= r.last_seq
    messages = [...r.messages, ...messages]
    const first = r.messages[0]?.seq
    const next = r.next_before ?? (r.messages.length === want ? first : undefined)
    if (next === undefined || first === undefined || first <= 1 || (before !== undefined && next >= before)) return { messages, lastSeq }
    before = next
    if (messages.length >= q.limit) return { messages, more: before, lastSeq }
  }
}

function taskLine (t: TaskInfo): string {
  const args = typeof t.args === 'string' && t.args !== '' ? ' ' + oneLine(t.args) : ''
  const result = t.result === undefined ? '' : ' ' + (typeof t.result === 'string' ? oneLine(t.result) : JSON.stringify(t.result))
  return `${t.id}  /${t.command}${args} → ${t.assignee}${t.room === undefined ? '' : ` in #${t.room}`}  ${t.state}${t.message === undefined ? '' : `: ${oneLine(t.message)}`}${result}`
}

function printTask (out: Out, t: TaskInfo): void { out.result({ ...t }, taskLine(t)) }

function roomLine (r: RoomInfo): string {
  return `${r.id}  ${r.kind}  ${r.members} member(s)${r.joined ? `, joined${r.role === undefined ? '' : ` (${r.role})`}` : ''}${r.topic === undefined ? '' : `  — ${oneLine(r.topic)}`}`
}


// ------------------------------------------------------------------ commands

export function chatCommands (program: Command, io: CliIo = processIo()): void {
  withApi(program.command('chat')
    .description('post to a room (--msg, or --stdin: one message per line); without them, print the room\'s newest messages and follow new ones')
    .requiredOption('--room <id>', 'the room: global, or a room id such as ops or #ops')
    .option('--msg <text>', 'the message to post')
    .option('--stdin', 'post one message per input line')
    .option('--id <id>', 'envelope id (for --msg): posting the same id again is stored once')
    .option('--limit <n>', 'reading: how many of the newest messages to print first', '20')
    .option('--timeout <sec>', 'posting: give up after this many seconds (default 30 for --msg; --stdin: none); reading: stop following after this many seconds (default: until Ctrl-C)'))
    .action(async (o: SendOpts & { room: string, msg?: string, limit: string }) => {
      const out = output(o.json === true, io)
      const room = roomOf('--room', o.room)
      if (o.msg !== undefined || o.stdin === true) {
        checkSendOpts(o, o.msg, 'with --msg')
        await sendChat(io, o, out, '#' + room, o.msg, { room })
        return
      }
      if (o.id !== undefined) throw usage('--id goes with --msg')
      const limit = parseInteger('--limit', o.limit, 1, MAX_LIMIT)
      const seconds = o.timeout === undefined ? undefined : parsePositive('--timeout', o.timeout)
      const api = apiOf(o, io)
      const keys = historyDecryptor(io, o, out, api)
      const stop = stopper(io, seconds)
      try {
        const first = await readHistory(api, room, { limit })
        for (const m of await keys.decrypt(room, first.messages)) printMessage(out, room, m)
        let last = first.messages.at(-1)?.seq ?? first.lastSeq ?? 0
        await pollUntil(stop.signal, async () => {
          for (;;) {
            const r = await api.call('roomHistory', `/api/v1/rooms/${room}/history${query({ after: last, limit: PAGE })}`)
            for (const m of await keys.decrypt(room, r.messages.filter(m => m.seq > last))) {
              printMessage(out, room, m)
              last = m.seq
            }
            if (r.messages.length < PAGE || stop.signal.aborted) return
          }
        })
      } finally {
        stop.release()
        await keys.close()
      }
    })

  withApi(program.command('dm')
    .description('send an end-to-end encrypted direct message to an agent (an AMID or @handle); prints the envelope id once the relay stored it')
    .argument('<peer>', 'the recipient: an AMID or @handle')
    .argument('[text]', 'message text (or use --stdin)')
    .option('--stdin', 'send one message per input line')
    .option('--id <id>', 'envelope id (for a single message): sending the same id again is stored once')
    .option('--timeout <sec>', 'give up after this many seconds (default 30 for one message; --stdin: none)')
    .option('--plaintext', 'send without end-to-end encryption (the relay can read it; for peers that published no prekeys)'))
    .action(async (peer: string, text: string | undefined, o: SendOpts & { plaintext?: boolean }) => {
      const out = output(o.json === true, io)
      agentOf('peer', peer)
      if (o.stdin !== true && text === undefined) throw usage('missing message text: `agentmesh dm <peer> <text>`, or --stdin')
      checkSendOpts(o, text, 'as an argument')
      parsePositive('--timeout', o.timeout ?? '30')
      // an @handle is resolved by this agent's state: pinned on first contact, refused when it changed
      const to = isAmid(peer) ? peer : await withConnection(io, { ...o, timeout: CONNECT_TIMEOUT }, out, async (conn) => await resolvePinned(conn, out, peer))
      await sendChat(io, o, out, to, text, { to, ...(peer === to ? {} : { peer }) }, o.plaintext !== true)
    })

  withApi(program.command('rooms')
    .description('list the rooms you can see: global, the public rooms and yours'))
    .action(async (o: ApiOpts) => {
      const out = output(o.json === true, io)
      const api = apiOf(o, io)
      let after: string | undefined
      let n = 0
      for (;;) {
        const r = await api.call('listRooms', '/api/v1/rooms' + query({ after, limit: PAGE }))
        for (const room of r.rooms) out.result({ ...room }, roomLine(room))
        n += r.rooms.length
        const last = r.rooms.at(-1)?.id
        if (r.rooms.length < PAGE || last === undefined || last === after) break
        after = last
      }
      if (n === 0) out.note('no rooms')
    })

  const room = program.command('room')
    .description('create, join, leave, moderate and list the members of rooms (`agentmesh room <command> --help`)')

  withApi(room.command('create')
    .description('create a room; you own it (it is public unless --private)')
    .argument('<id>', 'the room id: 1–64 characters of a-z 0-9 _ -')
    .option('--private', 'a private room: invited members only, end-to-end encrypted (sender keys)')
    .option('--topic <text>', `the room's topic (at most ${MAX_TOPIC} characters)`))
    .action(async (id: string, o: ApiOpts & { private?: boolean, topic?: string }) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', id)
      if (o.topic !== undefined) checkTopic('--topic', o.topic)
      const api = apiOf(o, io)
      const kind = o.private === true ? 'private' : 'public'
      try {
        // a private room starts with the creator's signed genesis, pinned in its state (docs/protocol.md §17.5)
        const r = kind === 'private' && !api.operator
          ? await withConnection(io, { ...o, timeout: CONNECT_TIMEOUT }, out, async (conn) => await chat(conn).createRoom({ id: rid, kind, ...(o.topic === undefined ? {} : { topic: o.topic }) }))
          : await api.call('createRoom', '/api/v1/rooms', { id: rid, kind, ...(o.topic === undefined ? {} : { topic: o.topic }) })
        out.result({ ...r }, `created ${r.kind} room ${r.id}`)
      } catch (err) {
        // created before by this agent, of the same kind (a script or the README's tour run again): kept
        if (!AgentMeshError.is(err, ErrorCode.RoomExists)) throw err
        const have = await api.call('getRoom', `/api/v1/rooms/${rid}`).catch(() => undefined)
        if (have === undefined || have.role !== 'owner' || have.kind !== kind) throw err
        out.note(`room ${rid} exists already and is yours (${have.kind}); kept${o.topic !== undefined && o.topic !== have.topic ? ' (its topic is unchanged: `agentmesh room topic` sets it)' : ''}`)
        out.result({ ...have, existed: true }, `${have.kind} room ${rid} (yours, kept)`)
      }
    })

  withApi(room.command('join')
    .description('join a public room, or a private one you were invited to')
    .argument('<id>', 'the room id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', id)
      const r = await apiOf(o, io).call('joinRoom', `/api/v1/rooms/${rid}/join`)
      // the answer's room (the room as JSON) is what `--json` has always shown
      out.result({ ...r }, r.already ? `already in ${rid}` : `joined ${rid}`)
    })

  withApi(room.command('leave')
    .description('leave a room')
    .argument('<id>', 'the room id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', id)
      const api = apiOf(o, io)
      if (!api.operator && (await api.call('getRoom', `/api/v1/rooms/${rid}`)).kind === 'private') {
        // a private room's leave is signed by the member who leaves
        await withConnection(io, { ...o, timeout: CONNECT_TIMEOUT }, out, async (conn) => { await chat(conn).leave(rid) })
        out.result({ room: rid, left: true }, `left ${rid}`)
        return
      }
      const r = await api.call('leaveRoom', `/api/v1/rooms/${rid}/leave`)
      out.result({ ...r }, `left ${rid}`)
    })

  for (const [verb, done, what] of [['invite', 'invited', 'invite an agent to a room (to a private room: its owner or an admin, who signs the add; any member of a public one)'], ['kick', 'kicked', 'remove a member from a room (a private room: its owner or an admin, who signs the removal; a public room: its owner, a warden, a master)']] as const) {
    withApi(room.command(verb)
      .description(what)
      .argument('<id>', 'the room id')
      .argument('<agent>', 'the agent: an AMID or @handle'))
      .action(async (id: string, agent: string, o: ApiOpts) => {
        const out = output(o.json === true, io)
        const rid = roomOf('room', id)
        agentOf('agent', agent)
        const api = apiOf(o, io)
        const path = `/api/v1/rooms/${rid}/${verb}`
        if (!api.operator && (await api.call('getRoom', `/api/v1/rooms/${rid}`)).kind === 'private') {
          // signed by this agent (the owner or an admin): the relay's roles cannot do it (docs/protocol.md §17.5)
          const amid = await withConnection(io, { ...o, timeout: CONNECT_TIMEOUT }, out, async (conn) => {
            const target = isAmid(agent) ? agent : await conn.resolveHandle(agent)
            if (verb === 'invite') await chat(conn).invite(rid, target)
            else await chat(conn).kick(rid, target)
            return target
          })
          out.result({ room: rid, agent: amid, [done]: true }, `${done} ${agent}${amid !== agent ? ` (${amid})` : ''} ${verb === 'invite' ? 'to' : 'from'} ${rid} (signed)`)
          return
        }
        const r = verb === 'invite' ? await api.call('inviteToRoom', path, { agent }) : await api.call('kickFromRoom', path, { agent })
        out.result({ ...r }, `${done} ${agent}${r.agent !== agent ? ` (${r.agent})` : ''} ${verb === 'invite' ? 'to' : 'from'} ${rid}`)
      })
  }

  withApi(room.command('topic')
    .description('set a room\'s topic (its owner, a warden for public rooms, a master)')
    .argument('<id>', 'the room id')
    .argument('<text>', `the topic (at most ${MAX_TOPIC} characters)`))
    .action(async (id: string, text: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', id)
      checkTopic('topic', text)
      const r = await apiOf(o, io).call('setRoomTopic', `/api/v1/rooms/${rid}/topic`, { topic: text })
      out.result({ ...r }, `topic of ${rid}: ${r.topic ?? text}`)
    })

  withApi(room.command('members')
    .description('list a room\'s members with their role and presence')
    .argument('<id>', 'the room id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', id)
      const api = apiOf(o, io)
      const r = await api.call('listMembers', `/api/v1/rooms/${rid}/members`)
      // a private room: who added whom, as this agent verified the signed chain; an agent the relay lists unsigned is a warning
      let verified: VerifiedRoomMembership | undefined
      if (!api.operator && (await api.call('getRoom', `/api/v1/rooms/${rid}`)).kind === 'private') {
        verified = await withConnection(io, { ...o, timeout: CONNECT_TIMEOUT }, out, async (conn) => await chat(conn).membership(rid))
      }
      const name = (amid: string): string => { const m = r.members.find(x => x.amid === amid); return m?.handle === undefined ? amid : '@' + m.handle }
      for (const m of r.members) {
        const v = verified?.members.find(x => x.amid === m.amid)
        const signed = verified === undefined ? {} : v === undefined ? { signed: false } : { signed: true, added_by: v.added_by, added_at: v.added_at, ...(verified.admins.includes(m.amid) ? { admin: true } : {}) }
        const how = verified === undefined ? '' : v === undefined ? '  UNSIGNED: no statement by the owner or an admin adds it (it gets no sender key)' : v.added_by === m.amid ? '  (created the room)' : `  added by ${name(v.added_by)}${verified.admins.includes(m.amid) ? ', admin' : ''}`
        out.result({ room: r.room ?? rid, ...m, ...signed }, `${m.handle ?? '-'}  ${m.amid}  ${m.role}  ${m.presence}${m.read_up_to === undefined ? '' : `  read up to #${m.read_up_to}`}${how}`)
      }
      for (const g of verified?.unsigned ?? []) out.warn(new AgentMeshError(ErrorCode.MembershipUnsigned, `#${rid}: the relay lists ${g} as a member, but no statement signed by the room's owner or an admin adds it; it gets no sender key — tell the room's owner`))
      if (r.members.length === 0) out.note('no members')
    })

  withApi(program.command('history')
    .description('print a room\'s messages, oldest first: the newest --limit, or those before/after a room seq; a private room\'s messages decrypted with the sender keys you hold ([encrypted] with the reason when you hold none)')
    .argument('<room>', 'the room: global, or a room id such as ops or #ops')
    .option('--limit <n>', 'at most this many messages', '50')
    .option('--before <seq>', 'the newest messages older than this room seq')
    .option('--after <seq>', 'the oldest messages newer than this room seq'))
    .action(async (roomArg: string, o: ApiOpts & { limit: string, before?: string, after?: string }) => {
      const out = output(o.json === true, io)
      const rid = roomOf('room', roomArg)
      const limit = parseInteger('--limit', o.limit, 1, MAX_LIMIT)
      const before = optInt('--before', o.before, 1)
      const after = optInt('--after', o.after, 0)
      if (before !== undefined && after !== undefined) throw usage('give --before or --after, not both')
      const api = apiOf(o, io)
      const r = await readHistory(api, rid, { limit, ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }) })
      const keys = historyDecryptor(io, o, out, api)
      try {
        for (const m of await keys.decrypt(rid, r.messages)) printMessage(out, rid, m)
      } finally {
        await keys.close()
      }
      if (r.messages.length === 0) out.note(`no messages in ${rid}${before !== undefined ? ` before #${before}` : after !== undefined ? ` after #${after}` : ''}`)
      if (r.more !== undefined) out.note(after !== undefined ? `more: \`agentmesh history ${rid} --after ${r.more}\`` : `older: \`agentmesh history ${rid} --before ${r.more}\``)
    })

  withApi(program.command('who')
    .description('who is online (and idle); with --room, a room\'s members, offline ones included')
    .option('--room <id>', 'the room'))
    .action(async (o: ApiOpts & { room?: string }) => {
      const out = output(o.json === true, io)
      const rid = o.room === undefined ? undefined : roomOf('--room', o.room)
      const r = await apiOf(o, io).call('presence', '/api/v1/presence' + query({ room: rid }))
      for (const a of r.agents) {
        const seen = a.last_active_at ?? a.last_seen_at
        out.result({ ...(rid === undefined ? {} : { room: rid }), ...a }, `${a.status.padEnd(7)}  ${a.handle ?? '-'}  ${a.amid}${seen === undefined ? '' : `  ${a.last_active_at !== undefined ? 'active' : 'seen'} ${iso(seen)}`}`)
      }
      if (r.agents.length === 0) out.note(rid === undefined ? 'nobody is online' : `${rid} has no members`)
    })

  const handle = program.command('handle')
    .description('your @handle: `handle set <name>`, `handle show [agent]`; handles pinned to agents: `handle pins`, `handle accept @name`')

  withCommon(handle.command('accept')
    .description('accept the agent the relay now gives for an @handle pinned to another (after checking with its holder): sends to it are refused until then (AM_ERR_HANDLE_CHANGED)')
    .argument('<handle>', 'the @handle')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', CONNECT_TIMEOUT))
    .action(async (name: string, o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      const h = handleOf('handle', name)
      await withConnection(io, o, out, async (conn) => {
        const before = conn.handlePins().find(p => p.handle === h.toLowerCase())
        const pin = await conn.acceptHandle('@' + h)
        const changed = before !== undefined && before.amid !== pin.amid
        out.result({ handle: pin.handle, amid: pin.amid, ...(changed ? { previous: before.amid } : {}) },
          changed ? `@${pin.handle} is now pinned to ${pin.amid} (was ${before.amid})` : `@${pin.handle} is pinned to ${pin.amid}`)
      })
    })

  withCommon(handle.command('pins')
    .description('the @handles this agent pinned to agents (on first contact, or accepted)')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', CONNECT_TIMEOUT))
    .action(async (o: CommonOpts & { timeout: string }) => {
      const out = output(o.json === true, io)
      await withConnection(io, o, out, async (conn) => {
        const pins = conn.handlePins()
        for (const p of pins) out.result({ handle: p.handle, amid: p.amid, at: p.at, ...(p.previous === undefined ? {} : { previous: p.previous }) }, `@${p.handle}  ${p.amid}  since ${iso(p.at)}`)
        if (pins.length === 0) out.note('no handles pinned')
      })
    })

  withApi(handle.command('set')
    .description('take a handle (2–32 characters; unique on the relay, case-insensitively); your old one is freed')
    .argument('<name>', 'the handle, with or without the @'))
    .action(async (name: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const h = handleOf('handle', name)
      // taking the handle you hold already answers 200 with previous = the same
      const r = await apiOf(o, io).call('setHandle', '/api/v1/handles', { handle: h })
      out.result({ ...r }, `@${r.handle} is ${r.amid}${r.previous === r.handle ? ' (unchanged)' : r.previous === undefined ? '' : ` (was @${r.previous})`}`)
    })

  withApi(handle.command('show')
    .description('the AMID of an @handle, or the handle of an agent (default: you)')
    .argument('[agent]', 'an @handle or AMID'))
    .action(async (agent: string | undefined, o: ApiOpts) => {
      const out = output(o.json === true, io)
      if (agent !== undefined) agentOf('agent', agent)
      const api = apiOf(o, io)
      if (agent !== undefined && agent.startsWith('@')) {
        const r = await api.call('resolveHandle', `/api/v1/handles/${encodeURIComponent(agent.slice(1))}`)
        out.result({ ...r }, `@${r.handle} is ${r.amid}`)
        return
      }
      if (agent === undefined && api.operator) throw usage('the operator has no handle: name the agent, `agentmesh handle show <@handle|amid>`')
      const amid = agent ?? api.identity().amid
      const h = await handleOfAmid(api, amid)
      if (h === null) {
        out.result({ amid, handle: null }, `${amid} has no handle${amid === (api.operator ? undefined : api.identity().amid) ? '; take one with `agentmesh handle set <name>`' : ''}`)
        return
      }
      out.result({ amid, handle: h }, `@${h} is ${amid}`)
    })

  const task = program.command('task')
    .description('tasks: `task dispatch`, `task list`, `task show`, `task cancel`')

  withApi(task.command('dispatch')
    .description('ask an agent to run a command; prints the task (with --wait: once it has ended)')
    .argument('<agent>', 'the assignee: an AMID or @handle')
    .argument('<command>', 'the command, e.g. status (a-z 0-9 _ -, starting with a letter)')
    .argument('[args...]', 'its arguments')
    .option('--room <id>', 'dispatch in this room (you and the assignee are members); its timeline shows the task')
    .option('--deadline <sec>', 'the task fails if it has not ended by then (default: the relay\'s, 5 minutes)')
    .option('--wait', 'wait until the task has ended (completed, failed, canceled or rejected) and print it; exit 1 (AM_ERR_TASK_FAILED) unless it completed')
    .option('--timeout <sec>', 'with --wait: give up waiting after this many seconds (default: until the task ends)'))
    .action(async (agent: string, command: string, args: string[], o: ApiOpts & { room?: string, deadline?: string, wait?: boolean, timeout?: string }) => {
      const out = output(o.json === true, io)
      agentOf('agent', agent)
      const cmd = command.startsWith('/') ? command.slice(1) : command
      if (!COMMAND_RE.test(cmd)) throw usage(`command "${command.slice(0, 40)}" must be 1–32 characters of a-z 0-9 _ -, starting with a letter (e.g. status)`)
      const argText = args.join(' ')
      if (argText.length > MAX_TASK_ARGS) throw usage(`the arguments are ${argText.length} characters; at most ${MAX_TASK_ARGS}`)
      const rid = o.room === undefined ? undefined : roomOf('--room', o.room)
      const deadline = optInt('--deadline', o.deadline, 1, MAX_TASK_DEADLINE_S)
      if (o.timeout !== undefined && o.wait !== true) throw usage('--timeout goes with --wait')
      const seconds = o.timeout === undefined ? undefined : parsePositive('--timeout', o.timeout)
      const api = apiOf(o, io)
      let t = await api.call('dispatchTask', '/api/v1/tasks', {
        to: agent, command: cmd, ...(argText === '' ? {} : { args: argText }), ...(rid === undefined ? {} : { room: rid }), ...(deadline === undefined ? {} : { deadline_s: deadline }),
      })
      if (o.wait !== true) { printTask(out, t); return }
      out.note(`dispatched task ${t.id} to ${t.assignee}; waiting for it to end`)
      const stop = stopper(io, seconds)
      try {
        if (!FINAL_TASK_STATES.has(t.state)) {
          await pollUntil(stop.signal, async () => {
            t = await api.call('getTask', `/api/v1/tasks/${t.id}`)
            return FINAL_TASK_STATES.has(t.state)
          })
        }
      } finally {
        stop.release()
      }
      if (!FINAL_TASK_STATES.has(t.state)) {
        if (stop.interrupted()) { printTask(out, t); return }
        throw new AgentMeshError(ErrorCode.Timeout, `task ${t.id} is still ${t.state} after ${seconds!} s (--timeout); \`agentmesh task show ${t.id}\` shows it later`)
      }
      printTask(out, t)
      // the task is printed either way; a script waiting on it learns from the exit code whether it did its work
      if (t.state !== 'completed') {
        throw new AgentMeshError(ErrorCode.TaskFailed, `task ${t.id} ended ${t.state}${t.message === undefined ? '' : `: ${oneLine(t.message)}`}; \`agentmesh task show ${t.id}\` shows its history`)
      }
    })

  withApi(task.command('list')
    .description('tasks you dispatched or were given (newest first)')
    .option('--room <id>', 'only those of this room')
    .option('--state <state>', `only those in this state (${TASK_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50'))
    .action(async (o: ApiOpts & { room?: string, state?: string, limit: string }) => {
      const out = output(o.json === true, io)
      const rid = o.room === undefined ? undefined : roomOf('--room', o.room)
      if (o.state !== undefined && !(TASK_STATES as readonly string[]).includes(o.state)) throw usage(`--state must be one of ${TASK_STATES.join(', ')}, got "${o.state.slice(0, 40)}"`)
      const limit = parseInteger('--limit', o.limit, 1, MAX_LIMIT)
      const api = apiOf(o, io)
      let before: string | undefined
      let n = 0
      for (;;) {
        const want = Math.min(PAGE, limit - n)
        const r = await api.call('listTasks', '/api/v1/tasks' + query({ room: rid, state: o.state, limit: want, before }))
        for (const t of r.tasks) printTask(out, t)
        n += r.tasks.length
        if (r.next_before === undefined || r.tasks.length < want || r.next_before === before || n >= limit) break
        before = r.next_before
      }
      if (n === 0) out.note('no tasks')
    })

  withApi(task.command('show')
    .description('a task, with its history')
    .argument('<id>', 'the task id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      idOf('task id', id)
      const t = await apiOf(o, io).call('getTask', `/api/v1/tasks/${id}`)
      out.result({ ...t }, taskLine(t) + (t.history ?? []).map(h => `\n  ${iso(h.at)} ${h.state} by ${h.by}${h.message === undefined ? '' : `: ${oneLine(h.message)}`}`).join(''))
    })

  withApi(task.command('cancel')
    .description('cancel a task (its requester, the room\'s owner, a master); the assignee is told')
    .argument('<id>', 'the task id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      idOf('task id', id)
      printTask(out, await apiOf(o, io).call('cancelTask', `/api/v1/tasks/${id}/cancel`))
    })

  withCommon(program.command('token')
    .description('print a bearer token for the REST API (valid for an hour): `Authorization: Bearer <token>`'))
    .action(async (o: CommonOpts) => {
      const out = output(o.json === true, io)
      const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
      const server = serverOf(o, io.env)
      const ch = await registryRequest(server, 'authChallenge', '/api/v1/auth/challenge', { body: JSON.stringify({ amid: id.amid }) })
      const sig = signChallenge(id, id.amid, ch.nonce, ch.relay)
      const t = await registryRequest(server, 'authToken', '/api/v1/auth/token', { body: JSON.stringify({ amid: id.amid, nonce: ch.nonce, sig }) })
      out.note(`bearer token for ${id.amid}, valid until ${iso(t.expires_at)}`)
      out.result({ amid: id.amid, token: t.token, expires_at: t.expires_at }, t.token)
    })

  const role = program.command('role')
    .description('agent roles (master, warden, worker): `role set <agent> <role>` (masters and the operator)')

  withApi(role.command('set')
    .description('give an agent a role: master (everything), warden (moderates public rooms, reads the audit log) or worker (the default)')
    .argument('<agent>', 'the agent: an AMID or @handle')
    .argument('<role>', ROLES.join(', ')))
    .action(async (agent: string, roleName: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      agentOf('agent', agent)
      if (!isRole(roleName)) throw usage(`role must be one of ${ROLES.join(', ')}, got "${roleName.slice(0, 40)}"`)
      const api = apiOf(o, io)
      const amid = await resolveAgent(api, agent)
      const r = await api.call('setRole', `/api/v1/agents/${amid}/role`, { role: roleName })
      out.result({ ...r }, `${agent === amid ? amid : `${agent} (${amid})`} is now ${r.role}`)
    })
}

function isRole (s: string): s is typeof ROLES[number] { return (ROLES as readonly string[]).includes(s) }

function checkTopic (what: string, t: string): void {
  if (t.length > MAX_TOPIC) throw usage(`${what} is ${t.length} characters; at most ${MAX_TOPIC}`)
  if (/[\r\n]/.test(t)) throw usage(`${what} must be one line`)
}

/** An agent's handle, asked of the relay; null when it has none. */
async function handleOfAmid (api: Api, amid: string): Promise<string | null> {
  try {
    return (await api.call('resolveHandle', `/api/v1/handles/${amid}`)).handle
  } catch (err) {
    if (AgentMeshError.is(err, ErrorCode.UnknownHandle)) return null
    throw err
  }
}
