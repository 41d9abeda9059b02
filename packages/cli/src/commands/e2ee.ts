import type { Command } from 'commander'
import { formatSafetyNumber } from '@agentmesh/crypto'
import type { PeerStatus } from '@agentmesh/client'
import { AgentMeshError, ErrorCode } from '@agentmesh/protocol'
import { checkAmid, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'

function statusLine (s: PeerStatus): string {
  if (s.keyChanged) return 'KEY CHANGED: messages to and from this peer are stopped until you accept the new key (--accept), after comparing the new number with the peer'
  return s.verified ? 'verified' : 'not verified: compare this number with the peer\'s (out of band), then run with --accept to mark it verified'
}

export function e2eeCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('verify')
    .description('print the safety number shared with a peer (60 digits, the same on both sides) and whether its key changed; --accept marks it verified or accepts a changed key')
    .argument('<peer>', 'the peer\'s AMID')
    .option('--accept', 'accept the peer\'s current key (after comparing the numbers): a stopped conversation resumes and held messages come through on the next `listen`')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (peer: string, o: CommonOpts & { accept?: boolean, timeout: string }) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      await withConnection(io, o, out, async (conn) => {
        if (peer === conn.amid) throw new AgentMeshError(ErrorCode.InvalidArgument, 'that is this agent\'s own AMID; give the peer\'s')
        let s = await conn.peer(peer)
        let held: number | undefined
        if (o.accept === true) {
          const before = s
          const r = await conn.acceptPeerKey(peer)
          s = r
          held = r.held
          out.note(before.keyChanged ? `accepted the new key of ${peer}${held > 0 ? `; ${held} held message(s) come through on the next \`agentmesh listen\`` : ''}` : `marked ${peer} as verified`)
        }
        const number = s.newSafetyNumber ?? s.safetyNumber ?? ''
        out.result({
          peer,
          safety_number: number,
          ...(s.newSafetyNumber !== undefined ? { previous_safety_number: s.safetyNumber } : {}),
          verified: s.verified,
          key_changed: s.keyChanged,
          session: s.session,
          // for a QR code the peer scans (libsignal's CombinedFingerprints v1, base64url)
          ...(s.scannable === undefined ? {} : { scannable: s.scannable }),
          ...(held === undefined ? {} : { held }),
        }, `${formatSafetyNumber(number)}\n${s.keyChanged && s.safetyNumber !== undefined ? `(was ${formatSafetyNumber(s.safetyNumber)})\n` : ''}${statusLine(s)}${s.scannable === undefined ? '' : `\nscannable: ${s.scannable}`}`)
      })
    })

  withCommon(program.command('sessions')
    .description('list the end-to-end sessions this agent holds; --reset <peer> deletes one (its keys are overwritten) so the next message starts a new session')
    .option('--reset <peer>', 'delete the session with this peer')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (o: CommonOpts & { reset?: string, timeout: string }) => {
      const out = output(o.json === true, io)
      if (o.reset !== undefined) checkAmid('--reset', o.reset)
      await withConnection(io, o, out, async (conn) => {
        if (o.reset !== undefined) {
          const gone = await conn.resetSession(o.reset)
          out.result({ peer: o.reset, deleted: gone }, gone ? `deleted the session with ${o.reset}` : `no session with ${o.reset}`)
          return
        }
        const list = conn.sessions()
        if (list.length === 0) out.note('no sessions')
        for (const s of list) out.result({ peer: s.peer, used_at: s.usedAt }, `${s.peer}  last used ${new Date(s.usedAt).toISOString()}`)
      })
    })
}
