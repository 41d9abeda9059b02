/**
 * What the relay posts itself, signed with its own key (§17.6, §17.7): timeline events and notices
 * to rooms, task requests to agents, and envelopes it attests for REST posts.
 */
import { v7 as uuidv7 } from 'uuid'
import type { Envelope } from '@agentmesh/protocol'
import { attestEnvelope, signEnvelope } from '@agentmesh/crypto'
import type { AppendResult } from '@agentmesh/store'
import type { ChatContext } from './context.ts'
import type { RoomState } from './types.ts'

export class RelayPosts {
  /** `membersOf` answers a room's members (the global room: every agent) */
  constructor (private readonly ctx: ChatContext, private readonly membersOf: (s: RoomState) => Iterable<string>) {}

  /** Posts an envelope the relay signs itself to a room: timeline events, notices. */
  async postToRoom (s: RoomState, type: string, payload: Record<string, unknown>): Promise<AppendResult> {
    const env = signEnvelope(this.ctx.relay, { id: uuidv7(), to: '#' + s.room.id, type, payload })
    // members read it by cursor or get an inbox copy (the Store decides by their delivery); the
    // global room's agents get copies unless they read it by cursor (see admission in chat.ts)
    const members = [...this.membersOf(s)]
    return await this.ctx.out.post({
      sender: this.ctx.relay.amid, id: env.id, recipient: env.to, envelope: JSON.stringify(env), receivedAt: this.ctx.now(),
      room: s.room.id, ...(s.members === undefined ? { fanout: members } : {}),
    }, undefined, members)
  }

  /** Sends an envelope the relay signs itself to one agent's inbox (task requests). */
  async postToAgent (amid: string, type: string, payload: Record<string, unknown>): Promise<AppendResult> {
    const env = signEnvelope(this.ctx.relay, { id: uuidv7(), to: amid, type, payload })
    return await this.ctx.out.post({ sender: this.ctx.relay.amid, id: env.id, recipient: amid, envelope: JSON.stringify(env), receivedAt: this.ctx.now() })
  }

  attest (from: string, init: { id: string, to: string, type: string, payload: Record<string, unknown> }): Envelope {
    return from === this.ctx.relay.amid ? signEnvelope(this.ctx.relay, init) : attestEnvelope(this.ctx.relay, { ...init, from })
  }
}
