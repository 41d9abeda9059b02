/**
 * AgentMesh room fan-out: one sender, `members` receiving agents, a relay as `npm start` runs it
 * (`durable`: SQLite under a temporary data directory; `memory`), set up as agents do it:
 *  - public room: the sender creates it (`POST /api/v1/rooms {"id","kind":"public"}`, a signed
 *    request), every member joins it itself (`POST /api/v1/rooms/{id}/join`);
 *  - private room: the sender creates it with its signed genesis (crypto's signMembership, as the
 *    SDK's createRoom does), invites each member with the next signed `add` statement
 *    (`POST …/invite {"agent","statement"}`), and each member joins; messages are `e2ee.group`
 *    envelopes whose payload the sender sealed with crypto's senderKeyEncrypt (a new sender key every
 *    100 messages, as the SDK rotates; the key distributions over pairwise sessions are not part of
 *    the load). Receivers do not decrypt: the bench measures the relay;
 *  - the global room: every registered agent is in it (an agent registers by authenticating once);
 *    nothing to set up.
 * A room message is an envelope `to: "#<room>"` sent like any other (`{"op":"send","env":…}`,
 * answered by `{"op":"ack"}`). Envelopes are signed before anything is timed. Members receive and
 * acknowledge through room-receiver.ts (today's inbox deliveries and the room cursors of fan-out on
 * read). The sequence number the generator counts is read from the envelope id (`fanout-msg-<seq>`).
 *
 * Rate limits: the relay's defaults allow 10 room messages a second per agent (600/min, burst 120)
 * and 20 per IP, and 120 REST requests a minute per agent (600 per IP): sized for agents on the
 * internet, not for one sender at 1,000 msg/s or 1,000 agents behind one loopback address. The room
 * relays raise the four limits to 1,000,000 a minute (the `rateLimits` option, as a config file sets
 * it); everything else is the default.
 */
import { randomUUID } from 'node:crypto'
import { WebSocket } from 'ws'
import {
  createIdentity, createSenderKey, senderKeyEncrypt, signEnvelope, signMembership, type Identity, type MembershipStatement, type SenderKeyState,
} from '@agentmesh/crypto'
import { encodeSend } from '@agentmesh/protocol'
import { startNodeServer, tempDir, removeTempDir, type ServerHandle } from '../children.ts'
import { authenticate, DEFAULT_VERIFIES } from '../targets/agentmesh.ts'
import { HOST, corkForTurn, payloadObject, readIntAfter, socketOf } from '../util.ts'
import { openAll } from './anchors.ts'
import type { FanoutClient, FanoutTarget } from './gen.ts'
import { rest } from './rest.ts'
import { CursorTurn, MemberCursor, authFeatures, readDelivery } from './room-receiver.ts'

export type RoomKind = 'public' | 'private' | 'global'

const RAISED = { perMinute: 1_000_000, burst: 1_000_000 }
export const ROOM_RATE_LIMITS = { chat: RAISED, chatIp: RAISED, api: RAISED, ip: RAISED }

const ID_KEY = '"id":"fanout-msg-'
const OP_ACK = 0x61 // 'a' of {"op":"ack"…
/** Messages a sender key seals before the SDK replaces it. */
const SENDER_KEY_MESSAGES = 100

/** Pre-signed send frames of the sender: message `seq` is frames[seq]. */
function signFrames (sender: Identity, to: string, kind: RoomKind, count: number): Buffer[] {
  const out: Buffer[] = new Array(count)
  let key: SenderKeyState | undefined
  const t = Math.round(performance.now())
  for (let seq = 0; seq < count; seq++) {
    let type = 'bench'
    let payload: Record<string, unknown> = payloadObject(seq, t)
    if (kind === 'private') {
      if (key === undefined || seq % SENDER_KEY_MESSAGES === 0) key = createSenderKey(to.slice(1), sender.amid)
      const sealed = senderKeyEncrypt(key, 'bench', payload)
      key = sealed.state
      type = 'e2ee.group'
      payload = sealed.message as unknown as Record<string, unknown>
    }
    out[seq] = Buffer.from(encodeSend(JSON.stringify(signEnvelope(sender, { id: `fanout-msg-${seq}`, to, type, payload }))))
  }
  return out
}

/** Creates the room and makes every member a member of it, as agents do (signed REST calls). */
async function setUpRoom (base: string, kind: RoomKind, room: string, sender: Identity, members: Identity[]): Promise<void> {
  if (kind === 'global') return
  if (kind === 'public') {
    await rest(base, sender, 'POST', '/api/v1/rooms', { id: room, kind: 'public' })
  } else {
    let last: MembershipStatement = signMembership(sender, { room, op: 'create', agent: sender.amid })
    await rest(base, sender, 'POST', '/api/v1/rooms', { id: room, kind: 'private', membership: last })
    for (const m of members) {
      last = signMembership(sender, { room, op: 'add', agent: m.amid, after: last })
      await rest(base, sender, 'POST', `/api/v1/rooms/${room}/invite`, { agent: m.amid, statement: last })
    }
  }
  await openAll(members.length, 20, async (i) => await rest(base, members[i]!, 'POST', `/api/v1/rooms/${room}/join`))
}

export function agentMeshFanout (memory: boolean, kind: RoomKind, prof: { dir?: string } = {}): FanoutTarget {
  let dataDir: string | undefined
  const name = `agentmesh_${memory ? 'memory' : 'durable'}`
  return {
    name,
    label: `AgentMesh ${memory ? 'memory' : 'durable (SQLite)'}${kind === 'private' ? ', private room' : ''}`,
    acks: true,
    info: {
      relay: 'the defaults (as npm start), chat and REST rate limits raised to 1,000,000/min',
      verifySignatures: `the relay's default (${String(DEFAULT_VERIFIES)})`,
      envelopes: kind === 'private' ? 'e2ee.group, sealed with senderKeyEncrypt and signed before the run; receivers do not decrypt' : 'signed before the run',
      auth_features: authFeatures().features ?? 'none',
    },
    async start (): Promise<ServerHandle> {
      if (!memory) dataDir = tempDir('relay-fan')
      return await startNodeServer(
        { kind: 'agentmesh', memory, rateLimits: ROOM_RATE_LIMITS, ...(dataDir === undefined ? {} : { dataDir }) },
        prof.dir === undefined ? {} : { profileDir: prof.dir, profileName: `fanout_${kind}_${name}` },
      )
    },
    async connect (server, n, sink, messages): Promise<FanoutClient> {
      const base = `http://${HOST}:${server.port}`
      const room = kind === 'global' ? 'global' : `fan-${randomUUID().slice(0, 8)}`
      const sender = createIdentity('bench-fan-sender')
      const members = Array.from({ length: n }, (_, i) => createIdentity(`bench-fan-${i}`))
      const frames = signFrames(sender, '#' + room, kind, messages)
      const turn = new CursorTurn()
      const sockets: WebSocket[] = []
      let closing = false
      const extra = authFeatures()
      try {
        // members register (authenticate) first, then the sender, then the room is set up
        await openAll(n, 50, async (i) => {
          let cursor: MemberCursor | undefined
          const { ws } = await authenticate(server.url, members[i]!, (data) => {
            const d = readDelivery(data)
            if (d === undefined) {
              if (data.toString('latin1', 0, 14) === '{"op":"error",') sink.failed(`member ${i}`, data.toString().slice(0, 300))
              return
            }
            turn.count(d)
            sink.delivered(i, readIntAfter(data, ID_KEY, d.envAt))
            cursor!.note(d)
          }, (code) => { if (!closing) sink.failed(`member ${i}`, `closed with ${code}`) }, extra, 60_000)
          cursor = new MemberCursor(ws, turn)
          sockets.push(ws)
        })
        const { ws } = await authenticate(server.url, sender, (data) => {
          if (data[7] === OP_ACK) { sink.acked(); return }
          if (data.toString('latin1', 0, 14) === '{"op":"error",') sink.failed('sender', data.toString().slice(0, 300))
        }, (code) => { if (!closing) sink.failed('sender', `closed with ${code}`) }, extra)
        sockets.push(ws)
        await setUpRoom(base, kind, room, sender, members)
        return {
          send (seq) {
            if (seq >= frames.length) return false
            corkForTurn(socketOf(ws))
            ws.send(frames[seq]!, { binary: false })
            return true
          },
          stats: () => ({ cursor_frames: turn.frames, room_deliveries: turn.roomDeliveries, inbox_deliveries: turn.inboxDeliveries }),
          async close () {
            closing = true
            for (const s of sockets) s.terminate()
          },
        }
      } catch (err) {
        closing = true
        for (const s of sockets) s.terminate()
        throw err
      }
    },
    cleanup () {
      if (dataDir !== undefined) removeTempDir(dataDir)
      dataDir = undefined
    },
  }
}
