/**
 * Incoming messages for MCP clients (docs/protocol.md §23.3): a pump reads the connection's
 * messages and keeps each in the agent's sealed mailbox before asking for the next one (so the
 * connection's cursor never moves past a message that was not kept), and `wait_for_messages`
 * hands them over by local cursor. Peer text goes out fenced as untrusted, with its provenance.
 */
import { fenceUntrusted, mailbox, MAX_MAILBOX, type Connection, type KeptMessage, type Mailbox } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { LruMap } from '@agentmesh/protocol/internal'

/** Facts about a sender (its handle, tier and organisation in the registry) are kept this long per sender. */
const FACTS_MS = 60_000
const MAX_FACTS = 10_000

type Tier = 'anonymous' | 'verified' | 'organisation'
interface Facts { handle: string | null, tier: Tier, organisation: string | null, at: number }

/** A message as a tool answers it: metadata as data, the peer's words only inside the fence. */
export interface MessageOut {
  cursor: number
  id: string
  from: string
  from_handle: string | null
  to: string
  room: string | null
  type: string
  ts: string
  encrypted: boolean
  /** every message from a peer is untrusted: its words are data, never instructions */
  untrusted: true
  tier: Tier
  /** why the peer may write (granted, contacted, open), when a policy is in force */
  relation: string | null
  schema_error: string | null
  /** the text (chat) or the payload as JSON (other types), fenced with the sender's provenance */
  content: string
}

export class Inbox {
  readonly box: Mailbox
  private readonly waiters = new Set<() => void>()
  private readonly roomWaiters = new Set<() => void>()
  private readonly facts = new LruMap<string, Facts>(MAX_FACTS)
  private pumping: Promise<void> | undefined

  constructor (private readonly conn: Connection, private readonly onError: (e: AgentMeshError) => void) {
    this.box = mailbox(conn)
  }

  /** Reads the connection's messages into the mailbox until `signal` aborts; waits while MAX_MAILBOX are pending. */
  start (signal: AbortSignal): void {
    this.pumping ??= (async () => {
      try {
        for await (const m of this.conn.messages({ signal })) {
          this.box.keep(m)
          for (const w of [...this.waiters]) w()
          while (this.box.pending() >= MAX_MAILBOX && !signal.aborted) await this.nextAck(signal)
        }
      } catch (err) {
        if (!signal.aborted) this.onError(AgentMeshError.is(err) ? err : new AgentMeshError(ErrorCode.Internal, `reading messages stopped: ${(err as Error).message}`))
      }
    })()
  }

  async stopped (): Promise<void> { await this.pumping }

  private async nextAck (signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => { this.roomWaiters.delete(done); signal.removeEventListener('abort', done); resolve() }
      this.roomWaiters.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /** Everything up to `cursor` was handed over. */
  ack (cursor: number): void {
    this.box.ack(cursor)
    for (const w of [...this.roomWaiters]) w()
  }

  /**
   * Messages after `after` (default: the last acknowledged cursor), acknowledging everything up to
   * it; when there are none, waits until one is kept, `timeoutMs` passes or `signal` aborts.
   */
  async wait (after: number | undefined, limit: number, timeoutMs: number, signal?: AbortSignal): Promise<{ messages: KeptMessage[], cursor: number }> {
    const pos = this.box.position()
    if (after !== undefined && after > pos.last) {
      throw new AgentMeshError(ErrorCode.InvalidCursor, `cursor ${after} is ahead of the newest message kept (${pos.last}); pass the cursor a previous call returned, or leave it out`)
    }
    const from = after ?? pos.acked
    this.ack(from)
    let got = this.box.after(from, limit)
    if (got.length > 0 || timeoutMs <= 0) return { messages: got, cursor: got.at(-1)?.cursor ?? from }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs)
      function done (): void { clearTimeout(timer); cleanup(); resolve() }
      const cleanup = (): void => { this.waiters.delete(done); signal?.removeEventListener('abort', done) }
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
    got = this.box.after(from, limit)
    return { messages: got, cursor: got.at(-1)?.cursor ?? from }
  }

  /** The registry's facts about a sender, kept FACTS_MS; anonymous and no handle when it does not answer. */
  async factsOf (amid: string, now = Date.now()): Promise<Facts> {
    const hit = this.facts.get(amid)
    if (hit !== undefined && now - hit.at < FACTS_MS) return hit
    let f: Facts = { handle: null, tier: 'anonymous', organisation: null, at: now }
    if (amid === this.conn.relayAmid) f = { ...f, handle: 'relay' }
    else {
      try {
        const p = await this.conn.request('GET', `/api/v1/agents/${amid}`) as { handle?: string, tier?: Tier, organisation?: string }
        f = { handle: p.handle ?? null, tier: p.tier ?? 'anonymous', organisation: p.organisation ?? null, at: now }
      } catch {}
    }
    this.facts.set(amid, f)
    return f
  }

  /** A kept message for a tool's answer: its words fenced with who sent it (fenceUntrusted). */
  async present (k: KeptMessage): Promise<MessageOut> {
    const f = await this.factsOf(k.from)
    const p = k.provenance
    const tier = p?.tier ?? f.tier
    const handle = p?.handle ?? f.handle
    const body = k.type === 'chat' && k.text !== undefined ? k.text : JSON.stringify(k.payload)
    return {
      cursor: k.cursor,
      id: k.id,
      from: k.from,
      from_handle: handle,
      to: k.to,
      room: k.room === undefined ? null : `#${k.room}`,
      type: k.type,
      ts: new Date(k.ts).toISOString(),
      encrypted: k.encrypted,
      untrusted: true,
      tier,
      relation: p?.relation ?? null,
      schema_error: k.schemaError ?? null,
      content: fenceUntrusted(body, { from: k.from, tier, organisation: p?.organisation ?? f.organisation, handle, scopes: p?.grant?.scopes ?? [] }),
    }
  }
}

/** The lines a tool's text answer shows for messages: a header of metadata per message, then its fenced content. */
export function messagesText (list: readonly MessageOut[], cursor: number, note?: string): string {
  const lines = [`${list.length} message(s); cursor ${cursor} (pass it as "after" next time)${note === undefined ? '' : `; ${note}`}`]
  for (const m of list) {
    lines.push('', `#${m.cursor} ${m.ts} from ${m.from}${m.from_handle === null ? '' : ` (@${m.from_handle})`}${m.room === null ? '' : ` in ${m.room}`} type ${m.type}${m.encrypted ? '' : ' [unencrypted]'}${m.schema_error === null ? '' : ` [schema: ${m.schema_error}]`}`, m.content)
  }
  return lines.join('\n')
}
