/**
 * Signals (§17.5): typing and "read up to" from a member of a room or DM conversation, told to the
 * other members that are online; a room's read marker is kept, a DM's is not. Rate-limited with
 * room messages.
 */
import { AgentMeshError, ErrorCode, type SignalFrame } from '@agentmesh/protocol'
import type { TakeResult } from '@agentmesh/protocol/internal'
import type { ChatContext } from './context.ts'
import type { Presences } from './presence.ts'
import type { Rooms } from './rooms.ts'
import { rateLimited } from './limits.ts'

export interface SignalDeps {
  ctx: ChatContext
  rooms: Rooms
  presences: Presences
  /** takes one from the sender's and its IP's chat buckets */
  take: (amid: string, remote: string) => TakeResult
}

/** A signal frame from an authenticated agent; answers an error to send back, if any. */
export async function handleSignal (d: SignalDeps, amid: string, f: SignalFrame, remote: string): Promise<AgentMeshError | undefined> {
  const limited = d.take(amid, remote)
  if (!limited.ok) return rateLimited(limited.retryAfterS, 'room messages and signals')
  const id = f.room.slice(1)
  const s = await d.rooms.roomState(id)
  if (s === undefined || !d.rooms.isMember(s, amid)) {
    return new AgentMeshError(ErrorCode.UnknownRoom, `no room "${id}" you are a member of`)
  }
  d.presences.active(amid)
  const others = [...d.rooms.membersOf(s)].filter(a => a !== amid)
  if (f.kind === 'typing') {
    d.presences.emit(others, { type: 'typing', amid, room: f.room, ts: d.ctx.now() })
    return undefined
  }
  if (s.room.kind === 'dm') {
    // the peer learns which of its messages were read; the relay keeps nothing
    if (f.id === undefined) return new AgentMeshError(ErrorCode.InvalidFrame, 'a read signal in a DM conversation needs id: the envelope id read up to')
    d.presences.emit(others, { type: 'read', amid, room: f.room, id: f.id, ts: d.ctx.now() })
    return undefined
  }
  if (f.up_to === undefined) return new AgentMeshError(ErrorCode.InvalidFrame, 'a read signal needs up_to: the room seq read up to')
  const last = await d.ctx.store.lastRoomSeq(id)
  if (f.up_to > last) return new AgentMeshError(ErrorCode.InvalidCursor, `up_to ${f.up_to} is beyond the newest message of ${id} (${last})`)
  const upTo = await d.ctx.store.setReadUpTo(id, amid, f.up_to)
  d.presences.emit(others, { type: 'read', amid, room: f.room, up_to: upTo, ts: d.ctx.now() })
  return undefined
}
