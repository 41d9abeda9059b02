/**
 * One account's long-lived AgentMesh connection inside the gateway, with no OpenClaw import (tested
 * in process on Node 20): it connects with the agent's home (identity, outbox, cursor, sessions and
 * the KNOCK policy persist there), hands each inbound DM, room message or task to `dispatch` one at
 * a time, and sends what the turn answers back as an end-to-end encrypted message.
 *
 * At-least-once, never twice: a delivery is committed (its cursor moves, on disk) only when its turn
 * has finished, so a gateway stopped mid-turn runs it again after a restart and one that finished
 * it does not. First contact, rate limits and the circuit breaker are the SDK's, from the home's
 * policy.json: a peer that loops with this agent is held back by the breaker, not by the plugin.
 */
import { chat, connect, tasks, type Connection, type ConnectOptions, type HeldKnock, type Message } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { inboundTurnOf, outboundPayload, parseTarget, RoomTurnGate, taskTurnOf, type InboundTurn, type ResolvedAccount, type Self } from './mapping.ts'

/** Sends one reply of a turn; resolves with the message id once the relay stored it. */
export type Deliver = (text: string) => Promise<{ messageId: string }>
/** Runs one OpenClaw turn for `turn`; its replies go out through `deliver`. */
export type Dispatch = (turn: InboundTurn, deliver: Deliver) => Promise<void>

export interface AccountRun {
  account: ResolvedAccount
  dispatch: Dispatch
  signal: AbortSignal
  /** a line for the gateway's log: metadata only, never a message body */
  log?: (line: string) => void
  /** called once connected (the status "running") */
  onConnected?: (amid: string) => void
  /** extra connect options (tests: the relay URL, a clock) */
  connectOptions?: Partial<ConnectOptions>
  /** the waits before a failed turn is run again (one more attempt per entry). @default RETRY_DELAYS_MS */
  retryDelaysMs?: readonly number[]
  /** the owner's approval of held knocks (OpenClaw's pairing flow in the gateway); none: the CLI answers them */
  approval?: KnockApproval
  /** how often held knocks and approvals are looked at. @default KNOCK_POLL_MS */
  knockPollMs?: number
}

/**
 * Held knocks put to the owner: `request` once per held knock (the gateway's pairing request for
 * the peer), `approved` the peers the owner approved so far; a held knock from an approved peer is
 * accepted (the peer gets its grant). A knock the owner does not approve stays held (it can still
 * be answered with `agentmesh knocks`).
 */
export interface KnockApproval {
  request: (knock: HeldKnock) => Promise<void>
  approved: () => Promise<readonly string[]>
}
export const KNOCK_POLL_MS = 5_000
/** Knocks put to the owner per poll at most (the gateway caps pending pairing requests anyway). */
const MAX_KNOCK_REQUESTS_PER_POLL = 10

/**
 * A turn that fails is run again after these waits (the gateway's own state can be busy for a
 * moment: "another OpenClaw process owns …"); after the last, the delivery is committed unanswered.
 */
export const RETRY_DELAYS_MS: readonly number[] = [2_000, 10_000]

async function pause (ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return
  await new Promise<void>(resolve => {
    const t = setTimeout(done, ms)
    function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The open connections, by account id: the outbound adapter sends through them. */
const running = new Map<string, { conn?: Connection, stop: AbortController, done: Promise<void> }>()
/** How long a new run of an account waits for the previous one to stop (a turn in flight) before it goes on. */
export const TAKEOVER_WAIT_MS = 30_000

/** The connection of a running account, or a coded error saying the account is not running. */
export function connectionOf (accountId: string): Connection {
  const c = running.get(accountId)?.conn
  if (c === undefined) {
    throw new AgentMeshError(ErrorCode.ConnectionClosed, `the AgentMesh account "${accountId.slice(0, 64)}" is not running in this gateway; check channels.agentmesh and \`openclaw channels status\``)
  }
  return c
}

/** Sends `text` to an OpenClaw target (AMID, @handle, #room) as this account: E2EE for DMs and private rooms. */
export async function sendText (accountId: string, to: string, text: string): Promise<{ messageId: string, to: string }> {
  const conn = connectionOf(accountId)
  const address = parseTarget(to)
  const resolved = address.startsWith('@') ? await conn.resolveHandle(address) : address
  const r = await conn.send(resolved, outboundPayload(text), { type: 'chat' })
  return { messageId: r.id, to: resolved }
}

function replyTo (conn: Connection, turn: InboundTurn): Deliver {
  const to = turn.kind === 'group' ? turn.conversationId : turn.senderId
  return async (text) => {
    const r = await conn.send(to, outboundPayload(text), { type: 'chat' })
    return { messageId: r.id }
  }
}

/**
 * Runs the account until `signal` aborts: connect, answer tasks (when `taskCommand` is set),
 * hand deliveries to `dispatch` in order. Resolves after the connection closed.
 */
export async function runAccount (outer: AccountRun): Promise<void> {
  const { account } = outer
  const log = outer.log ?? (() => {})
  if (account.home === undefined) {
    throw new AgentMeshError(ErrorCode.InvalidConfig, `channels.agentmesh account "${account.accountId}" has no home: set it to a directory made by \`agentmesh init\``)
  }
  // a new run of an account takes over from one still going (the gateway restarts a channel on a
  // config change or a plugin reload without always waiting for the old run to end): the old one
  // is stopped, and given TAKEOVER_WAIT_MS to finish the turn it is in
  const prev = running.get(account.accountId)
  if (prev !== undefined) {
    log(`agentmesh[${account.accountId}]: a new run takes over from the previous one`)
    prev.stop.abort()
    let t: NodeJS.Timeout | undefined
    await Promise.race([prev.done, new Promise<void>(resolve => { t = setTimeout(resolve, TAKEOVER_WAIT_MS) })])
    clearTimeout(t)
  }
  const stop = new AbortController()
  const onAbort = (): void => { stop.abort() }
  if (outer.signal.aborted) stop.abort()
  else outer.signal.addEventListener('abort', onAbort, { once: true })
  let ended!: () => void
  const me: { conn?: Connection, stop: AbortController, done: Promise<void> } = { stop, done: new Promise<void>(resolve => { ended = resolve }) }
  running.set(account.accountId, me)
  const run: AccountRun = { ...outer, signal: stop.signal }
  const { dispatch, signal } = run
  let conn: Connection | undefined
  try {
    conn = await connect({
      home: account.home,
      ...(account.server === undefined ? {} : { server: account.server }),
      ...run.connectOptions,
    })
    me.conn = conn
    log(`agentmesh[${account.accountId}]: connected as ${conn.amid}`)
    run.onConnected?.(conn.amid)
    if (account.taskCommand !== undefined) {
      await tasks(conn).onCommand(account.taskCommand, async (task) => {
        const turn = taskTurnOf(task, account)
        const replies: string[] = []
        await dispatch(turn, async (text) => { replies.push(text); return { messageId: `${turn.messageId}:${replies.length}` } })
        return outboundPayload(replies.join('\n\n')).text
      })
    }
    if (signal.aborted) return
    // the agent's @handle, for room messages that mention it (none when it has none or the relay cannot say)
    const self: Self = { amid: conn.amid, handle: account.rooms === 'mention' ? await chat(conn).handleOf(conn.amid).catch(() => undefined) : undefined }
    const rooms = new RoomTurnGate(account.roomTurnsPerHour)
    const knocksDone = run.approval === undefined ? Promise.resolve() : pollKnocks(conn, run, run.approval, log)
    // by hand, not for-await: leaving a for-await loop commits the message in hand, and one whose
    // turn the stop interrupted must stay uncommitted (the next start runs it)
    const it = conn.messages({ signal })
    for (;;) {
      let r: IteratorResult<Message>
      try { r = await it.next() } catch (err) { if (signal.aborted) break; throw err }
      if (r.done === true) break
      if (!await handle(conn, run, r.value, self, rooms, log)) break
    }
    await knocksDone
  } finally {
    stop.abort() // the knock poll too, when the loop ended by an error
    if (running.get(account.accountId) === me) running.delete(account.accountId)
    outer.signal.removeEventListener('abort', onAbort)
    try {
      if (conn !== undefined) {
        await conn.close()
        log(`agentmesh[${account.accountId}]: closed`)
      }
    } finally { ended() }
  }
}

/** Until the account stops: held knocks → the owner's approval requests; approved peers' knocks accepted. */
async function pollKnocks (conn: Connection, run: AccountRun, approval: KnockApproval, log: (line: string) => void): Promise<void> {
  const requested = new Set<string>()
  const id = run.account.accountId
  while (!run.signal.aborted) {
    try {
      const held = conn.knocks()
      let asked = 0
      for (const k of held) {
        if (requested.has(k.id) || asked >= MAX_KNOCK_REQUESTS_PER_POLL) continue
        await approval.request(k)
        requested.add(k.id)
        asked++
        log(`agentmesh[${id}]: knock ${k.id} from ${k.from} (${k.intent.category}) is waiting for the owner's approval`)
      }
      if (held.length > 0) {
        // the gateway's allow-from store may normalise entries (case, a channel prefix): compared so
        const ok = new Set((await approval.approved()).map(e => String(e).replace(/^agentmesh:/i, '').toLowerCase()))
        for (const k of held) {
          if (!ok.has(k.from.toLowerCase())) continue
          await conn.answerKnock(k.id, 'accept')
          log(`agentmesh[${id}]: knock ${k.id} from ${k.from} accepted: the owner approved the peer`)
        }
      }
      for (const r of requested) if (!held.some(k => k.id === r)) requested.delete(r)
    } catch (err) {
      log(`agentmesh[${id}]: held knocks could not be put to the owner: ${String((err as Error)?.message ?? err).slice(0, 300)}`)
    }
    await pause(run.knockPollMs ?? KNOCK_POLL_MS, run.signal)
  }
}

/** Runs the turn of one delivery; false when the account was stopped before the turn finished (not committed). */
async function handle (conn: Connection, run: AccountRun, msg: Message, self: Self, rooms: RoomTurnGate, log: (line: string) => void): Promise<boolean> {
  const turn = inboundTurnOf(msg, self, run.account)
  if (turn === undefined) return true
  if (turn.kind === 'group' && !rooms.admit(turn.conversationId, Date.now())) {
    log(`agentmesh[${run.account.accountId}]: ${turn.conversationId} started ${run.account.roomTurnsPerHour} turns within an hour: message ${msg.id} from ${msg.from} starts none`)
    return true
  }
  const delays = run.retryDelaysMs ?? RETRY_DELAYS_MS
  for (let attempt = 0; ; attempt++) {
    try {
      await run.dispatch(turn, replyTo(conn, turn))
      return true
    } catch (err) {
      if (run.signal.aborted) {
        log(`agentmesh[${run.account.accountId}]: stopped during the turn for message ${msg.id}; it runs again at the next start`)
        return false
      }
      // the turn failed (the model, a hook, a busy gateway): said in the log (never the text), run
      // again after a wait; after the last attempt the delivery is committed all the same, so a
      // message that always fails cannot wedge the conversation (the peer sees no answer)
      const code = AgentMeshError.is(err) ? err.code : 'error'
      const again = attempt < delays.length && !run.signal.aborted
      log(`agentmesh[${run.account.accountId}]: turn for message ${msg.id} from ${msg.from} failed (${code}): ${String((err as Error)?.message ?? err).slice(0, 300)}${again ? `; again in ${Math.round(delays[attempt]! / 1000)} s` : '; given up'}`)
      if (!again) return true
      await pause(delays[attempt]!, run.signal)
      // stopped while waiting: not committed, so the next start runs it again
      if (run.signal.aborted) return false
    }
  }
}
