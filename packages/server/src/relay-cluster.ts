/**
 * The core's side of several relay nodes over one Store (docs/architecture.md, "Several relays"):
 * telling the other nodes what a commit stored, taking in what they stored, and reading the Store
 * again for what the bus may have lost (catch-up). The bus only wakes: the truth is the Store.
 */
import type { AppendItem, AppendResult, Store } from '@agentmesh/store'
import type { Backplane, BackplaneMessage } from './backplane.ts'
import type { Logger } from './log.ts'
import type { AgentFeeds, RoomFeeds } from './room-feeds.ts'

export interface CatchUpResult { agents: number, inboxes: number, rooms: number, roomsLeft: number }

/** An agent's inbox as the link sees it: the highest seq known on this node, its rooms, its connections. */
export interface ClusterInbox {
  lastSeq: number
  readonly rf: AgentFeeds
  readonly conns: { readonly size: number }
}

/** What the link needs of the core. */
export interface ClusterHost<B extends ClusterInbox> {
  /** this node's id on the bus */
  readonly node: string
  readonly store: Pick<Store, 'inbox' | 'roomFeeds'>
  readonly feeds: RoomFeeds
  readonly log: Logger
  /** the inboxes of the agents this node holds, by AMID */
  readonly inboxes: ReadonlyMap<string, B>
  /** pumps what `box` holds to its connections that deliver */
  wake (box: B): void
  /** an event frame to these agents' connections on this node */
  event (amids: Iterable<string>, frame: string): void
  stopping (): boolean
}

export class ClusterLink<B extends ClusterInbox> {
  readonly #host: ClusterHost<B>
  readonly #backplane: Backplane
  #catchingUp: Promise<CatchUpResult> | undefined

  constructor (host: ClusterHost<B>, backplane: Backplane) {
    this.#host = host
    this.#backplane = backplane
  }

  /** Tells the other nodes which inboxes and rooms a commit grew (they pump their own connections). */
  tell (appends: ReadonlyArray<{ item: AppendItem }>, results: readonly AppendResult[]): void {
    const inboxes: Array<{ recipient: string, seq: number }> = []
    const rooms = new Map<string, number>()
    for (let i = 0; i < appends.length; i++) {
      const r = results[i]!
      if (r.status !== 'stored') continue
      const room = appends[i]!.item.room
      if (room !== undefined) rooms.set(room, Math.max(rooms.get(room) ?? 0, r.seq))
      if (r.deliveries !== undefined) inboxes.push(...r.deliveries)
      else if (room === undefined) inboxes.push({ recipient: appends[i]!.item.recipient, seq: r.seq })
    }
    const { node, log } = this.#host
    if (inboxes.length > 0) {
      this.#backplane.publish({ type: 'inbox:stored', origin: node, inboxes }).catch((err) => {
        log.warn({ err, inboxes: inboxes.length }, 'could not tell other nodes about stored envelopes')
      })
    }
    if (rooms.size > 0) {
      this.#backplane.publish({ type: 'room:stored', origin: node, rooms: [...rooms].map(([room, seq]) => ({ room, seq })) }).catch((err) => {
        log.warn({ err, rooms: rooms.size }, 'could not tell other nodes about stored room messages')
      })
    }
  }

  /** A message of another node: wakes the agents it names that this node holds. */
  receive (m: BackplaneMessage): void {
    const host = this.#host
    if (m.origin === host.node) return // applied here already
    if (m.type === 'inbox:stored') {
      for (const { recipient, seq } of m.inboxes) {
        const box = host.inboxes.get(recipient)
        if (box === undefined || seq <= box.lastSeq) continue
        box.lastSeq = seq
        host.wake(box)
      }
    } else if (m.type === 'room:stored') {
      host.feeds.stored(m.rooms)
    } else if (m.type === 'event') {
      host.event(m.amids, m.frame)
    }
  }

  /**
   * Reads every connected agent's inbox and rooms read by cursor from the Store again and pumps what
   * this node had not heard of: what a backplane message lost while the bus was away would have
   * woken. Called when the backplane reports a gap and every backplaneCatchUpMs; one at a time (a
   * call while one runs answers that one). Agents are read one after the other, two Store reads each.
   */
  async catchUp (): Promise<CatchUpResult> {
    if (this.#catchingUp !== undefined) return await this.#catchingUp
    const host = this.#host
    const run = async (): Promise<CatchUpResult> => {
      const out: CatchUpResult = { agents: 0, inboxes: 0, rooms: 0, roomsLeft: 0 }
      for (const [amid, box] of [...host.inboxes]) {
        if (host.stopping()) break
        if (box.conns.size === 0) continue
        out.agents++
        try {
          const st = await host.store.inbox(amid)
          if (st.lastSeq > box.lastSeq) {
            box.lastSeq = st.lastSeq
            out.inboxes++
            host.wake(box)
          }
          if (box.rf.byCursor) {
            // the rooms it read before the Store is asked: one of them missing from the answer was left
            const before = host.feeds.readyFeeds(box.rf)
            const r = host.feeds.caughtUp(box.rf, await host.store.roomFeeds(amid), before)
            out.rooms += r.grown
            out.roomsLeft += r.left
          }
        } catch (err) {
          host.log.error({ err, amid }, 'store read failed while catching up after the backplane')
        }
      }
      if (out.inboxes + out.rooms + out.roomsLeft > 0) host.log.info(out, 'caught up from the store: deliveries the backplane did not announce')
      return out
    }
    this.#catchingUp = run().finally(() => { this.#catchingUp = undefined })
    return await this.#catchingUp
  }
}
