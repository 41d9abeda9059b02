/**
 * DM conversations (§17.3): the first DM stored between two agents makes their conversation (a
 * 'dm' room with the two as members). Pairs already seen are remembered (least recently used go first).
 */
import { dmRoomId } from '@agentmesh/crypto'
import { LruSet } from '@agentmesh/protocol/internal'
import type { ChatContext } from './context.ts'

/** DM conversations remembered as existing. @default 100,000 */
export const MAX_KNOWN_DMS = 100_000

export class DmBook {
  private readonly knownDms = new LruSet<string>(MAX_KNOWN_DMS)
  /** each sender's last DM peer whose conversation is known: a stream to one peer costs no hash per message (cleared past MAX_KNOWN_DMS) */
  private readonly lastPeer = new Map<string, string>()

  /** `forgetRoom` drops a cached room that changed */
  constructor (private readonly ctx: ChatContext, private readonly forgetRoom: (id: string) => void) {}

  /** A DM was stored: the pair's conversation exists from now on (§17.3). */
  afterDm (from: string, to: string): void {
    if (from === to || from === this.ctx.relay.amid || to === this.ctx.relay.amid) return
    if (this.lastPeer.get(from) === to) return
    const id = dmRoomId(from, to)
    if (this.lastPeer.size >= MAX_KNOWN_DMS) this.lastPeer.clear()
    if (this.knownDms.has(id)) { this.lastPeer.set(from, to); return }
    this.knownDms.add(id)
    void (async () => {
      const at = this.ctx.now()
      if (await this.ctx.store.createRoom({ id, kind: 'dm', createdAt: at })) {
        for (const amid of [from, to]) await this.ctx.store.addMember({ room: id, amid, role: 'member', joinedAt: at })
        this.forgetRoom(id)
        this.ctx.invalidate('room', id)
      }
    })().then(() => { if (this.knownDms.has(id)) this.lastPeer.set(from, to) }, (err) => { this.knownDms.delete(id); this.ctx.log.error({ err }, 'could not record a DM conversation') })
  }
}
