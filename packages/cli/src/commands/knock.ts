import type { Command } from 'commander'
import { MAX_GRANT_SCOPES, SCOPE_PATTERN, loadIdentity } from '@agentmesh/crypto'
import { AgentMeshError, ErrorCode, ID_PATTERN } from '@agentmesh/protocol'
import { checkAmid, homeOf, passphraseOf, serverOf, withCommon, withConnection, type CommonOpts } from '../common.ts'
import { output, parseInteger, usage } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { registryRequest } from '../registry.ts'

interface Opts extends CommonOpts { timeout: string }

function scopesOf (text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined
  const list = [...new Set(text.split(',').map(s => s.trim()).filter(s => s !== ''))]
  if (list.length === 0) throw usage('--scopes must name at least one scope, e.g. --scopes chat,command:status')
  const bad = list.find(s => !SCOPE_PATTERN.test(s))
  if (bad !== undefined) throw usage(`--scopes: "${bad.slice(0, 64)}" is not a scope (lowercase, like chat, command:status or task:*)`)
  if (list.length > MAX_GRANT_SCOPES) throw usage(`--scopes: at most ${MAX_GRANT_SCOPES} scopes`)
  return list
}

const when = (ms: number): string => new Date(ms).toISOString()

export function knockCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('knock')
    .description('ask a peer for first contact: its policy (or its owner) accepts with a grant, rejects, or holds it; the answer shows on `agentmesh listen` and in `agentmesh grants`')
    .argument('<peer>', 'the peer\'s AMID')
    .requiredOption('--intent <category>', 'why: question, task, notification, negotiation or other')
    .requiredOption('--summary <text>', 'one line for the peer\'s owner (at most 280 characters)')
    .option('--scopes <list>', 'scopes asked for, comma-separated (default chat)')
    .option('--duration <sec>', 'how long the grant should last, in seconds (default 30 days)')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (peer: string, o: Opts & { intent: string, summary: string, scopes?: string, duration?: string }) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      const scopes = scopesOf(o.scopes)
      const duration = o.duration === undefined ? undefined : parseInteger('--duration', o.duration, 60, 365 * 24 * 3600)
      await withConnection(io, o, out, async (conn) => {
        if (peer === conn.amid) throw usage('that is this agent\'s own AMID; knock on a peer')
        const r = await conn.knock(peer, { category: o.intent, summary: o.summary, ...(scopes === undefined ? {} : { scopes }), ...(duration === undefined ? {} : { duration_s: duration }) })
        out.note(`knocked on ${peer}; the answer arrives on \`agentmesh listen\` (a grant shows in \`agentmesh grants\`)`)
        out.result({ id: r.id, peer, intent: o.intent, status: 'sent' }, r.id)
      }, { flush: true })
    })

  withCommon(program.command('knocks')
    .description('list knocks held for you; `knocks accept <id>` grants, `knocks reject <id>` refuses (with --reason, or --silent)')
    .argument('[action]', 'accept or reject')
    .argument('[id]', 'the knock id, as listed')
    .option('--reason <text>', 'reject: the reason the peer is told')
    .option('--silent', 'reject without telling the peer')
    .option('--scopes <list>', 'accept: scopes to grant, comma-separated (default: what the policy would grant)')
    .option('--duration <sec>', 'accept: grant lifetime in seconds (default: what the policy would grant)')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (action: string | undefined, id: string | undefined, o: Opts & { reason?: string, silent?: boolean, scopes?: string, duration?: string }) => {
      const out = output(o.json === true, io)
      if (action !== undefined && action !== 'accept' && action !== 'reject') throw usage(`unknown action "${action.slice(0, 40)}": use \`agentmesh knocks\`, \`knocks accept <id>\` or \`knocks reject <id>\``)
      if (action !== undefined && id === undefined) throw usage(`missing the knock id: \`agentmesh knocks ${action} <id>\` (\`agentmesh knocks\` lists them)`)
      if (id !== undefined && !new RegExp(ID_PATTERN).test(id)) throw usage(`"${id.slice(0, 80)}" is not a knock id`)
      if (action === 'accept' && (o.reason !== undefined || o.silent === true)) throw usage('--reason and --silent go with reject')
      if (action === 'reject' && (o.scopes !== undefined || o.duration !== undefined)) throw usage('--scopes and --duration go with accept')
      const scopes = scopesOf(o.scopes)
      const duration = o.duration === undefined ? undefined : parseInteger('--duration', o.duration, 1, 365 * 24 * 3600)
      await withConnection(io, o, out, async (conn) => {
        if (action === undefined) {
          const held = conn.knocks()
          if (held.length === 0) out.note('no knocks are waiting')
          for (const k of held) {
            out.result({ id: k.id, from: k.from, tier: k.tier, organisation: k.organisation, reputation: k.reputation, intent: k.intent, policy: k.decision.reason, would_grant: k.decision.scopes, received_at: k.receivedAt },
              `${k.id}  ${k.from} (${k.tier}${k.organisation === null ? '' : `, ${k.organisation}`})  [${k.intent.category}] ${k.intent.summary}  — scopes ${k.intent.scopes.join(',')}`)
          }
          return
        }
        const g = await conn.answerKnock(id!, action, {
          ...(o.reason === undefined ? {} : { reason: o.reason }), ...(o.silent === true ? { silent: true } : {}),
          ...(scopes === undefined ? {} : { scopes }), ...(duration === undefined ? {} : { durationS: duration }),
        })
        if (g !== undefined) out.result({ id, decision: 'accept', grant: g }, `granted ${g.grantee} ${g.scopes.join(',')} until ${when(g.expires_at)}`)
        else out.result({ id, decision: 'reject', silent: o.silent === true }, `rejected${o.silent === true ? ' silently' : ''}`)
      }, { flush: true })
    })

  withCommon(program.command('grants')
    .description('list grants: who may write to you (issued) and whom you may write to (received); `grants revoke <peer>` withdraws one')
    .argument('[action]', 'revoke')
    .argument('[peer]', 'the peer whose grant to revoke')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (action: string | undefined, peer: string | undefined, o: Opts) => {
      const out = output(o.json === true, io)
      if (action !== undefined && action !== 'revoke') throw usage(`unknown action "${action.slice(0, 40)}": use \`agentmesh grants\` or \`grants revoke <peer>\``)
      if (action === 'revoke') checkAmid('peer', peer ?? '')
      await withConnection(io, o, out, async (conn) => {
        if (action === 'revoke') {
          const gone = await conn.revokeGrant(peer!)
          if (!gone) throw new AgentMeshError(ErrorCode.NotFound, `${peer!} holds no grant from this agent (\`agentmesh grants\` lists them)`)
          out.result({ peer, revoked: true }, `revoked the grant of ${peer!}; it is told, and its messages are refused from now on`)
          return
        }
        const { issued, received } = conn.grants()
        if (issued.length + received.length === 0) out.note('no grants')
        for (const g of issued) out.result({ direction: 'issued', ...g }, `issued   to ${g.grantee}  ${g.scopes.join(',')}  until ${when(g.expires_at)}${g.valid ? '' : ' (expired)'}`)
        for (const g of received) out.result({ direction: 'received', ...g }, `received from ${g.grantor}  ${g.scopes.join(',')}  until ${when(g.expires_at)}${g.valid ? '' : ' (expired)'}`)
      }, { flush: true })
    })
}

/** A block's reason: one line the owner reads in `agentmesh events`. */
function reasonOf (text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  // eslint-disable-next-line no-control-regex
  if (text.trim() === '' || text.length > 280 || /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(text)) throw usage('--reason must be one line of 1 to 280 characters')
  return text
}

export function blockCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('block')
    .description('block a peer: its messages are refused (it is told) and its knocks get your deny_action, until `agentmesh unblock`; logged in `agentmesh events`')
    .argument('<peer>', 'the peer\'s AMID')
    .option('--reason <text>', 'why, for your safety log (one line, at most 280 characters)')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (peer: string, o: Opts & { reason?: string }) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      const reason = reasonOf(o.reason)
      await withConnection(io, o, out, async (conn) => {
        if (peer === conn.amid) throw usage('that is this agent\'s own AMID; block a peer')
        const b = conn.block(peer, reason === undefined ? {} : { reason })
        out.result({ peer, blocked: true, already: b.already, at: b.at, reason: b.reason },
          b.already ? `${peer} is already blocked (since ${when(b.at)})` : `blocked ${peer}: its messages are refused from now on; \`agentmesh unblock ${peer}\` lifts it`)
      }, { flush: true })
    })

  withCommon(program.command('unblock')
    .description('lift a block: the peer\'s messages are taken again (under your policy), and the circuit breaker forgets its trips with it')
    .argument('<peer>', 'the peer\'s AMID')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (peer: string, o: Opts) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      await withConnection(io, o, out, async (conn) => {
        if (!conn.unblock(peer)) throw new AgentMeshError(ErrorCode.NotFound, `${peer} is not blocked (\`agentmesh blocks\` lists the blocked peers)`)
        out.result({ peer, blocked: false }, `unblocked ${peer}`)
      }, { flush: true })
    })

  withCommon(program.command('blocks')
    .description('list the peers you blocked (or the circuit breaker did, with auto_block_after), oldest first')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (o: Opts) => {
      const out = output(o.json === true, io)
      await withConnection(io, o, out, async (conn) => {
        const list = conn.blocks()
        if (list.length === 0) out.note('no peer is blocked')
        for (const b of list) out.result({ peer: b.peer, at: b.at, reason: b.reason }, `${b.peer}  since ${when(b.at)}  ${b.reason}`)
      }, { flush: true })
    })
}

export function safetyLogCommand (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('events')
    .description('this agent\'s safety log, oldest first: knocks decided (and by which rule), grants, circuit-breaker trips, blocks; metadata only')
    .option('--timeout <sec>', 'give up reaching the relay after this many seconds', '10'))
    .action(async (o: Opts) => {
      const out = output(o.json === true, io)
      await withConnection(io, o, out, async (conn) => {
        const log = conn.safetyLog()
        if (log.length === 0) out.note('nothing logged yet')
        for (const e of log) out.result({ ...e }, `${when(e.at)}  ${e.event.padEnd(14)} ${e.peer}  ${e.detail}`)
      }, { flush: true })
    })
}

export function reputationCommands (program: Command, io: CliIo = processIo()): void {
  withCommon(program.command('feedback')
    .description('rate a peer after an interaction (0 to 1); your newest rating of it replaces the earlier one')
    .argument('<peer>', 'the peer\'s AMID')
    .requiredOption('--score <n>', 'from 0 (bad) to 1 (good)')
    .option('--comment <text>', 'at most 500 characters')
    .option('--interaction <id>', 'what it was about (a task or message id)'))
    .action(async (peer: string, o: CommonOpts & { score: string, comment?: string, interaction?: string }) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      const score = Number(o.score)
      if (o.score.trim() === '' || !Number.isFinite(score) || score < 0 || score > 1) throw usage(`--score must be a number from 0 to 1, got "${o.score.slice(0, 40)}"`)
      const id = loadIdentity(homeOf(o, io.env), passphraseOf(io.env))
      if (peer === id.amid) throw usage('an agent does not rate itself')
      const body = JSON.stringify({ score, ...(o.comment === undefined ? {} : { comment: o.comment }), ...(o.interaction === undefined ? {} : { interaction: o.interaction }) })
      const r = await registryRequest(serverOf(o, io.env), 'postFeedback', `/api/v1/agents/${peer}/feedback`, { identity: id, body })
      const rep = r.reputation
      out.result(r, `${r.replaced === true ? 'replaced your rating' : 'rated'}: ${peer} now scores ${rep.score ?? 'n/a'} from ${rep.ratings} rating(s)${rep.flagged ? ' (flagged for review)' : ''}`)
    })

  withCommon(program.command('reputation')
    .description('a peer\'s reputation score and the flags raised on it')
    .argument('<peer>', 'the peer\'s AMID'))
    .action(async (peer: string, o: CommonOpts) => {
      const out = output(o.json === true, io)
      checkAmid('peer', peer)
      const rep = await registryRequest(serverOf(o, io.env), 'getReputation', `/api/v1/agents/${peer}/reputation`)
      const flags = await registryRequest(serverOf(o, io.env), 'getReputationFlags', `/api/v1/agents/${peer}/reputation/flags`)
      out.result({ ...rep, flags: flags.flags }, `${peer}: score ${rep.score ?? 'n/a (unrated)'} from ${rep.ratings} rating(s), weight ${rep.weight_total}${rep.flagged ? ', FLAGGED' : ''}` +
        flags.flags.map(f => `\n  flag ${new Date(f.at).toISOString()}: ${f.reason}`).join(''))
    })
}
