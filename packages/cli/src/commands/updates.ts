/**
 * `agentmesh update …` (docs/protocol.md §19): a master (or the operator, `--api-key`) announces a
 * system update; agents list and acknowledge them; `update acks` shows the adoption as a table.
 * Titles, notes and announcements are printed without control or invisible characters (an agent's
 * notes are its own text).
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import {
  MAX_PAGE, stripUnsafeChars, UPDATE_ACK_STATUSES, UPDATE_TYPES,
  type ApiAnswer, type ApiBody,
} from '@agentmesh/protocol'
import { output, parseInteger, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { apiOf, iso, query, withApi, type ApiOpts } from './chat.ts'
import { updates, type Connection } from '@agentmesh/client'

type UpdateInfo = ApiAnswer<'getUpdate'>
type Adoption = ApiAnswer<'updateAcks'>

const DURATION = /^(\d{1,6})(s|m|h|d)$/
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** A time option: an ISO 8601 date or date-time, ms since the epoch, or a duration from now ("30s", "90m", "48h", "7d"). */
export function timeOption (name: string, v: string, now = Date.now()): number {
  const d = DURATION.exec(v)
  if (d !== null) return now + Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS]
  if (/^\d{1,16}$/.test(v)) return Number(v)
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN
  if (!Number.isFinite(t)) throw usage(`${name} "${v.slice(0, 40)}" is not a time: give an ISO 8601 date-time (2026-12-31T23:59:59Z), ms since the epoch, or a duration from now: a number and s, m, h or d (30s, 90m, 48h, 7d)`)
  return t
}

/** A file given on the command line, as text: a usage error naming it when it cannot be read. */
function readText (flag: string, file: string): string {
  try {
    return readFileSync(resolve(file), 'utf8')
  } catch (err) {
    throw usage(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

/** Text from an agent or another person, on one line, without control or invisible characters. */
const clean = (s: string): string => stripUnsafeChars(s.replace(/\r?\n/g, ' '))

function updateLine (u: UpdateInfo): string {
  const flags = [
    u.updateType,
    ...(u.breakingChange ? ['breaking'] : []),
    ...(u.requiredVersion === undefined ? [] : [`requires ${clean(u.requiredVersion)} from ${iso(u.enforceAt!)}`]),
    ...(u.active ? [] : ['expired']),
    ...(u.status === undefined ? [] : [`you: ${u.status}${u.belowRequired === true ? ', below the required version' : ''}`]),
  ]
  return `${u.updateId}  ${clean(u.version)}  ${clean(u.title)}  (${flags.join(', ')})`
}

function showUpdate (out: Out, u: UpdateInfo): void {
  const lines = [
    updateLine(u),
    `  created ${iso(u.createdAt)} by ${u.createdBy}${u.expiresAt === undefined ? '' : `, expires ${iso(u.expiresAt)}`}`,
    ...(u.description === undefined ? [] : [`  ${clean(u.description)}`]),
    // Markdown as written, line by line, each line cleaned
    ...(u.announcement === undefined ? [] : ['', ...u.announcement.split(/\r?\n/).map(l => '  ' + stripUnsafeChars(l))]),
  ]
  out.result({ ...u }, lines.join('\n'))
}

/**
 * System updates while `listen` runs — those told at connect (the agent was offline when they were
 * announced, or has not answered them) and those announced meanwhile — on stderr, once per update
 * and status: `{"update": {…}}` with --json, a line otherwise (messages stay on stdout).
 */
export function watchUpdates (conn: Connection, io: Pick<CliIo, 'stderr'>, json: boolean): void {
  updates(conn).onUpdate((u) => {
    const below = u.belowRequired === true && u.requiredVersion !== undefined
      ? `; this agent is below the required version ${clean(u.requiredVersion)}${u.enforceAt === undefined ? '' : `: its sends are refused from ${iso(u.enforceAt)}`}`
      : ''
    io.stderr.write(json
      ? JSON.stringify({ update: u }) + '\n'
      : `agentmesh: system update ${clean(u.version)} "${clean(u.title).slice(0, 200)}" (${u.updateType}${u.breakingChange ? ', breaking' : ''}; you: ${u.status}${below}; \`agentmesh update show ${u.updateId}\`, then \`agentmesh update ack ${u.updateId} --status accepted|rejected|completed\`)\n`)
  })
}

const BAR = 30

/** The adoption view as a table: a bar per status, who has not answered, the versions reported. */
export function adoptionText (a: Adoption): string {
  const total = Math.max(1, a.totalAgents)
  const rows = (['completed', 'accepted', 'rejected', 'pending'] as const).map((s) => {
    const n = a.counts[s]
    const filled = Math.round(BAR * n / total)
    const pct = a.totalAgents === 0 ? 0 : Math.round(100 * n / a.totalAgents)
    return `  ${s.padEnd(9)} ${'█'.repeat(filled)}${'░'.repeat(BAR - filled)} ${String(n).padStart(6)}  ${String(pct).padStart(3)}%`
  })
  const versions = Object.entries(a.versions).sort(([, x], [, y]) => y - x).map(([v, n]) => `${clean(v)} ×${n}`).join(', ')
  const shown = a.notAnswered.slice(0, 20)
  const more = a.counts.pending - shown.length
  return [
    `update ${a.updateId}: ${a.totalAgents} agent(s)`,
    ...rows,
    ...(a.belowRequired === undefined ? [] : [`  below the required version: ${a.belowRequired}`]),
    `  versions reported: ${versions === '' ? 'none' : versions}`,
    a.counts.pending === 0 ? '  every agent has answered' : `  not answered: ${shown.join(', ')}${more > 0 ? `, … (+${more} more; --json lists up to ${a.notAnswered.length})` : ''}`,
  ].join('\n')
}

async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c)
  return Buffer.concat(chunks).toString('utf8')
}

export function updateCommands (program: Command, io: CliIo = processIo()): void {
  const update = program.command('update')
    .description('system updates (docs/protocol.md §19): `update create` (masters, the operator), `update list`, `update show <id>`, `update ack <id>`, `update acks <id>` (the adoption view)')

  withApi(update.command('create')
    .description('announce a system update to every agent (masters, or the operator with --api-key): sent now to connected agents, at their next connect to the others')
    .requiredOption('--version <v>', 'the update\'s version, e.g. 2.0.0')
    .requiredOption('--type <type>', UPDATE_TYPES.join(', '))
    .requiredOption('--title <text>', 'one line')
    .option('--description <text>', 'a short description')
    .option('--required-version <semver>', 'with --breaking, agents below this version are refused after the deadline (without it, they are only told)')
    .option('--breaking', 'a breaking change')
    .option('--announcement <file>', 'the announcement, Markdown, from a file (- reads stdin)')
    .option('--expires <time>', 'when it stops being announced: ISO 8601, ms, or from now (30s, 90m, 48h, 7d)')
    .option('--deadline <time>', 'when agents below --required-version start being refused (default: --expires, else the relay\'s grace, 7 days)'))
    .action(async (o: ApiOpts & { version: string, type: string, title: string, description?: string, requiredVersion?: string, breaking?: boolean, announcement?: string, expires?: string, deadline?: string }) => {
      const out = output(o.json === true, io)
      if (!(UPDATE_TYPES as readonly string[]).includes(o.type)) throw usage(`--type must be one of ${UPDATE_TYPES.join(', ')}, got "${o.type.slice(0, 40)}"`)
      if (o.deadline !== undefined && (o.requiredVersion === undefined || o.breaking !== true)) throw usage('--deadline goes with --breaking and --required-version (it is when older agents start being refused)')
      const announcement = o.announcement === undefined
        ? undefined
        : o.announcement === '-' ? await readAll(io.stdin) : readText('--announcement', o.announcement)
      const body: ApiBody<'createUpdate'> = {
        version: o.version,
        updateType: o.type as ApiBody<'createUpdate'>['updateType'],
        title: o.title,
        ...(o.description === undefined ? {} : { description: o.description }),
        ...(o.requiredVersion === undefined ? {} : { requiredVersion: o.requiredVersion }),
        ...(o.breaking === true ? { breakingChange: true } : {}),
        ...(announcement === undefined ? {} : { announcement }),
        ...(o.expires === undefined ? {} : { expiresAt: timeOption('--expires', o.expires) }),
        ...(o.deadline === undefined ? {} : { enforceAt: timeOption('--deadline', o.deadline) }),
      }
      const r = await apiOf(o, io).call('createUpdate', '/api/v1/updates', body)
      out.result({ ...r }, `update ${r.updateId} announced to every agent (\`agentmesh update acks ${r.updateId}\` shows who answered)`)
    })

  withApi(update.command('list')
    .description('system updates, newest first (to an agent: with its own answer)')
    .option('--active', 'only those not expired')
    .option('--since <time>', 'created at or after: ISO 8601, ms, or a duration ago (30s, 90m, 48h, 7d)')
    .option('--limit <n>', `at most this many (default 50, at most ${MAX_PAGE})`))
    .action(async (o: ApiOpts & { active?: boolean, since?: string, limit?: string }) => {
      const out = output(o.json === true, io)
      const limit = o.limit === undefined ? undefined : parseInteger('--limit', o.limit, 1, MAX_PAGE)
      // a duration here is how long ago
      const now = Date.now()
      const since = o.since === undefined ? undefined : DURATION.test(o.since) ? now - (timeOption('--since', o.since, now) - now) : timeOption('--since', o.since)
      const r = await apiOf(o, io).call('listUpdates', '/api/v1/updates' + query({ activeOnly: o.active === true ? 'true' : undefined, since, limit }))
      for (const u of r.updates) out.result({ ...u }, updateLine(u))
      if (r.updates.length === 0) out.note('no updates')
    })

  withApi(update.command('show')
    .description('one system update, with its announcement')
    .argument('<id>', 'the update id'))
    .action(async (id: string, o: ApiOpts) => {
      showUpdate(output(o.json === true, io), await apiOf(o, io).call('getUpdate', `/api/v1/updates/${encodeURIComponent(id)}`))
    })

  withApi(update.command('ack')
    .description('answer a system update for this agent (the operator answers for --agent)')
    .argument('<id>', 'the update id')
    .requiredOption('--status <status>', UPDATE_ACK_STATUSES.join(', '))
    .option('--notes <text>', 'a note for the operator')
    .option('--agent-version <v>', 'the version this agent runs now (recorded as its reported version)')
    .option('--agent <amid>', 'with --api-key (or as a master): the agent answered for'))
    .action(async (id: string, o: ApiOpts & { status: string, notes?: string, agentVersion?: string, agent?: string }) => {
      const out = output(o.json === true, io)
      if (!(UPDATE_ACK_STATUSES as readonly string[]).includes(o.status)) throw usage(`--status must be one of ${UPDATE_ACK_STATUSES.join(', ')}, got "${o.status.slice(0, 40)}"`)
      const r = await apiOf(o, io).call('ackUpdate', `/api/v1/updates/${encodeURIComponent(id)}/acknowledge`, {
        status: o.status as typeof UPDATE_ACK_STATUSES[number],
        ...(o.agent === undefined ? {} : { agentId: o.agent }),
        ...(o.notes === undefined ? {} : { notes: o.notes }),
        ...(o.agentVersion === undefined ? {} : { agentVersion: o.agentVersion }),
      })
      out.result({ ...r }, `${r.agentId} ${r.status} update ${r.updateId}${r.agentVersion === undefined ? '' : ` (runs ${clean(r.agentVersion)})`}`)
    })

  withApi(update.command('acks')
    .description('the adoption view of an update (masters, wardens, the operator): answers by status, who has not answered, versions reported')
    .argument('<id>', 'the update id'))
    .action(async (id: string, o: ApiOpts) => {
      const out = output(o.json === true, io)
      const a = await apiOf(o, io).call('updateAcks', `/api/v1/updates/${encodeURIComponent(id)}/acknowledgments`)
      out.result({ ...a }, adoptionText(a))
    })
}
