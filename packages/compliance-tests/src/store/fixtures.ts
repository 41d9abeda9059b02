/**
 * What every slice suite of the store compliance suite shares: how a suite gets its stores, the
 * fixed clock, agent ids and the records the cases build. A store treats agent ids, room ids,
 * envelopes, certificates and CRLs as opaque: only their fields matter.
 */
import { AuditVerifier } from '@agentmesh/store'
import type { AppendItem, AppendResult, AuditInput, AuditRecord, AuditStore, RoomRecord, StoreInit, StoredMessage, TaskRecord } from '@agentmesh/store'

/**
 * How a suite gets the stores it runs on. `S` is what its cases call: one slice of the Store,
 * sometimes with a few methods of another slice a case reads back through (named in the suite's
 * own type, e.g. `MessagesSuiteStore`).
 *
 * Methods rather than function properties: a whole-store init (`SuiteInit<Store>`) is then
 * accepted by every slice suite, which is how `storeSuite` runs them all.
 */
export interface SuiteInit<S> {
  /** Names the implementation in the test report, e.g. "memory" or "sqlite (file)". */
  name: string
  /** A new, empty store, with the `StoreInit` the case needs. */
  setup (init?: StoreInit): Promise<S>
  /** Releases what `setup` (or `reopen`) created; called at the end of each case, pass or fail. */
  teardown (store: S): Promise<void>
  /** Closes `store` and opens the same data again, with the init it was created with; omit for stores that keep nothing. */
  reopen? (store: S): Promise<S>
}

/** Runs `fn` on a fresh store; `fn` may swap the store (after a reopen) through the holder. */
export type WithStore<S> = (init: StoreInit | undefined, fn: (h: { store: S }) => Promise<void>) => Promise<void>

export function withStoreOf<S> (suite: SuiteInit<S>): WithStore<S> {
  return async (storeInit, fn) => {
    const h = { store: await suite.setup(storeInit) }
    try {
      await fn(h)
    } finally {
      await suite.teardown(h.store)
    }
  }
}

/** A fixed clock: the suite never depends on the time it runs at. */
export const T0 = 1_700_000_000_000

export const ALICE = 'am-alice'
export const BOB = 'am-bob'
export const CAROL = 'am-carol'
export const DAVE = 'am-dave'

export function envText (sender: string, id: string, recipient: string, text = 'hello'): string {
  return `{"v":"agentmesh/0.2","id":"${id}","from":"${sender}","to":"${recipient}","type":"chat","ts":${T0},"payload":{"text":${JSON.stringify(text)}}}`
}

export function item (sender: string, id: string, recipient: string, opts: { receivedAt?: number, envelope?: string } = {}): AppendItem {
  return {
    sender,
    id,
    recipient,
    envelope: opts.envelope ?? envText(sender, id, recipient),
    receivedAt: opts.receivedAt ?? T0,
  }
}

/** A room message from `sender` to `room`, copied to the `fanout` inboxes. */
export function roomItem (sender: string, id: string, room: string, fanout: readonly string[], opts: { receivedAt?: number, envelope?: string } = {}): AppendItem {
  return {
    sender,
    id,
    recipient: '#' + room,
    room,
    fanout,
    envelope: opts.envelope ?? envText(sender, id, '#' + room),
    receivedAt: opts.receivedAt ?? T0,
  }
}

export function dm (sender: string, id: string, recipient: string, receivedAt = T0): AppendItem {
  return { sender, id, recipient, envelope: envText(sender, id, recipient), receivedAt }
}

export const stored = (seq: number): AppendResult => ({ status: 'stored', seq })
export const duplicate = (seq: number): AppendResult => ({ status: 'duplicate', seq })
export const full: AppendResult = { status: 'inbox_full' }

/** The parts of stored messages a test compares, in the order read() returned them. */
export function summary (msgs: StoredMessage[]): Array<[number, string, string]> {
  return msgs.map(m => [m.seq, m.sender, m.id])
}

/** A ~100 KB text with ASCII, 2-, 3- and 4-byte UTF-8 characters and JSON escapes, deterministic. */
export function bigText (): string {
  const parts = ['plain ascii ', 'é à ü ß ', '日本語のテキスト ', '👋🏽 🧪 ', '\\"quoted\\" \\\\ \\n ', 'ש ע ر ']
  let s = ''
  for (let i = 0; s.length < 100_000; i++) s += parts[i % parts.length]! + String(i) + ' '
  return s
}

export const room = (id: string, kind: RoomRecord['kind'], over: Partial<RoomRecord> = {}): RoomRecord =>
  ({ id, kind, ...(kind === 'global' ? {} : { owner: ALICE }), createdAt: T0, ...over })

export function task (id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    room: 'ops',
    requester: ALICE,
    assignee: BOB,
    command: 'deploy',
    args: 'web --fast',
    state: 'submitted',
    createdAt: T0,
    updatedAt: T0,
    deadline: T0 + 300_000,
    history: [{ state: 'submitted', at: T0, by: ALICE }],
    ...over,
  }
}

export const audit = (action: string, actor = ALICE, over: Partial<AuditInput> = {}): AuditInput =>
  ({ at: T0, actor, action, target: '#ops', detail: { id: `id-${action}`, bytes: 12 }, ...over })

/** Every audit row, read page after page, and what the verifier makes of them. */
export async function verifyAll (store: Pick<AuditStore, 'readAudit'>, page = 2): Promise<{ rows: AuditRecord[], ok: boolean }> {
  const v = new AuditVerifier()
  const rows: AuditRecord[] = []
  let after = 0
  for (;;) {
    const got = await store.readAudit({ after, limit: page })
    if (got.length === 0) break
    v.add(got)
    rows.push(...got)
    after = got[got.length - 1]!.seq
  }
  return { rows, ok: v.result().ok }
}

/** The seqs of history entries, the ids of tasks. */
export const seqs = (es: Array<{ seq: number }>): number[] => es.map(e => e.seq)
export const ids = (ts: Array<{ id: string }>): string[] => ts.map(t => t.id)
