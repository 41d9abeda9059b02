/**
 * How an AgentMesh member receives room messages — kept in this one module so that it follows the
 * relay's delivery protocol as it changes.
 *
 * Today a room message reaches each member as an ordinary inbox delivery
 * `{"op":"deliver","seq":N,"env":…}`, acknowledged with `{"op":"cursor","seq":N}`. With fan-out on
 * read (being built) it arrives as `{"op":"deliver","room":"<room id>","seq":<room seq>,"env":…}` and
 * is acknowledged per room with `{"op":"cursor","room":"<room id>","seq":N}`; a client declares it
 * understands that with `"features":["room-cursor"]` in its auth frame. This receiver handles both:
 * a deliver frame with a `room` field is acknowledged per room, any other one on the inbox cursor,
 * once per room (and once for the inbox), cumulatively, CURSOR_ACK_DELAY_MS (10 ms) after the
 * first delivery they acknowledge, as the SDK does.
 *
 * BENCH_AM_FEATURES=0 leaves `features` out of the auth frame (today's relay ignores the field: its
 * auth schema accepts unknown fields).
 */
import { WebSocket } from 'ws'
import { CURSOR_ACK_DELAY_MS } from '@agentmesh/client'
import { corkForTurn, readIntAfter, socketOf } from '../util.ts'

/** Extra fields of the auth frame. */
export function authFeatures (): Record<string, unknown> {
  return process.env.BENCH_AM_FEATURES === '0' ? {} : { features: ['room-cursor'] }
}

/** Cursor acks leave as the SDK sends them: CURSOR_ACK_DELAY_MS after the delivery (BENCH_AM_ACK_MS=0: at the end of the turn). */
const ACK_MS = Number(process.env.BENCH_AM_ACK_MS ?? CURSOR_ACK_DELAY_MS)
const OP_DELIVER = 0x64 // 'd' at index 7 of {"op":"deliver"…
const ENV_KEY = '"env":'
const ROOM_KEY = '"room":"'
const SEQ_KEY = '"seq":'

export interface Delivery {
  /** the room of a room delivery (fan-out on read), undefined for an inbox delivery */
  room: string | undefined
  /** the relay's seq (room seq or inbox seq) */
  seq: number
  /** offset of the envelope in the frame */
  envAt: number
}

/** Reads a deliver frame's header (the fields before `"env":`); undefined for any other frame. */
export function readDelivery (data: Buffer): Delivery | undefined {
  if (data[7] !== OP_DELIVER) return undefined
  const envAt = data.indexOf(ENV_KEY)
  if (envAt < 0) return undefined
  const r = data.indexOf(ROOM_KEY)
  let room: string | undefined
  if (r >= 0 && r < envAt) {
    const from = r + ROOM_KEY.length
    room = data.toString('latin1', from, data.indexOf(0x22, from))
  }
  const seq = readIntAfter(data, SEQ_KEY)
  return { room, seq, envAt }
}

/**
 * One member's acknowledgements: `note()` each delivery, and the cursors leave together (one per
 * room, and one for the inbox), corked with the other writes of that moment.
 */
export class MemberCursor {
  private inbox = -1
  private readonly rooms = new Map<string, number>()
  private dirty = false
  constructor (private readonly ws: WebSocket, private readonly turn: CursorTurn) {}

  note (d: Delivery): void {
    if (d.room === undefined) {
      if (d.seq > this.inbox) this.inbox = d.seq
    } else if (d.seq > (this.rooms.get(d.room) ?? -1)) {
      this.rooms.set(d.room, d.seq)
    }
    if (!this.dirty) { this.dirty = true; this.turn.add(this) }
  }

  flush (): number {
    this.dirty = false
    if (this.ws.readyState !== WebSocket.OPEN) return 0
    let frames = 0
    corkForTurn(socketOf(this.ws))
    if (this.inbox >= 0) { this.ws.send('{"op":"cursor","seq":' + String(this.inbox) + '}'); this.inbox = -1; frames++ }
    for (const [room, seq] of this.rooms) { this.ws.send('{"op":"cursor","room":' + JSON.stringify(room) + ',"seq":' + String(seq) + '}'); frames++ }
    this.rooms.clear()
    return frames
  }
}

/** The members with cursors to send at the end of this turn. */
export class CursorTurn {
  private readonly pending: MemberCursor[] = []
  private scheduled = false
  frames = 0
  roomDeliveries = 0
  inboxDeliveries = 0

  add (m: MemberCursor): void {
    this.pending.push(m)
    if (!this.scheduled) { this.scheduled = true; if (ACK_MS > 0) setTimeout(this.flush, ACK_MS); else setImmediate(this.flush) }
  }

  count (d: Delivery): void {
    if (d.room === undefined) this.inboxDeliveries++
    else this.roomDeliveries++
  }

  private readonly flush = (): void => {
    this.scheduled = false
    for (const m of this.pending.splice(0)) this.frames += m.flush()
  }
}
