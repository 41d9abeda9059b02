/**
 * `agentmesh health`: the fleet's health (docs/protocol.md §21.3) as a table, refreshed in place on
 * a terminal with --watch (one block of plain lines per refresh otherwise, one JSON line with
 * --json); `agentmesh health <agent>`: an agent's status, latest heartbeat and history. REST calls
 * signed by this agent (a warden or master) or sent with the operator's key (--api-key).
 *
 * What agents report (handles, versions, custom metrics) is theirs: printed with control
 * characters removed, never as it came.
 */
import type { Command } from 'commander'
import { stripUnsafeChars, type ApiAnswer } from '@agentmesh/protocol'
import { output, parseInteger, parsePositive, usage, type Out } from '../output.ts'
import { processIo, type CliIo } from '../io.ts'
import { apiOf, iso, query, stopper, withApi, type Api, type ApiOpts } from './chat.ts'

type Dashboard = ApiAnswer<'healthDashboard'>
type AgentHealth = ApiAnswer<'agentHealth'>

/** Refresh period of --watch by default, in seconds. */
const DEFAULT_WATCH_S = '5'
/** Terminal: cursor home, clear the screen (the table is redrawn in place). */
const CLEAR = '\x1b[H\x1b[2J'

const safe = (s: string): string => stripUnsafeChars(s).replace(/\s+/g, ' ')

function ago (ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`
}

function bytes (n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`
}

/** The dashboard as lines of text. */
export function dashboardText (d: Dashboard): string[] {
  const last = d.lastCatastrophe
  const cat = last === null
    ? 'none'
    : safe([last.severity, last.eventType, last.title].filter(x => typeof x === 'string').join(' ') || JSON.stringify(last)).slice(0, 120) +
      // open or over: the line does not say by itself
      (typeof last.status === 'string' ? ` (${safe(last.status)})` : '')
  const lines = [
    `agents ${d.totalAgents}: healthy ${d.healthy}, degraded ${d.degraded}, unhealthy ${d.unhealthy}, offline ${d.offline}, unknown ${d.unknown}`,
    `critical events ${d.criticalEvents}, last catastrophe: ${cat}`,
  ]
  const rows = d.agentList.map(a => ({
    status: a.status,
    who: a.handle === undefined ? a.amid : `@${safe(a.handle)}`,
    seen: a.lastHeartbeatAt === null ? '-' : `${iso(a.lastHeartbeatAt)} (${ago(a.lastHeartbeatAt, d.generatedAt)})`,
    version: a.version === undefined ? '-' : safe(a.version),
  }))
  // the agent column as wide as its widest entry (an AMID when an agent has no handle)
  const width = Math.max(5, ...rows.map(r => r.who.length))
  lines.push(`${'STATUS'.padEnd(10)} ${'AGENT'.padEnd(width)} ${'LAST HEARTBEAT'.padEnd(36)} VERSION`)
  for (const r of rows) lines.push(`${r.status.padEnd(10)} ${r.who.padEnd(width)} ${r.seen.padEnd(36)} ${r.version}`)
  if (d.nextAfter !== undefined) lines.push(`… more agents: --after ${d.nextAfter}`)
  return lines
}

/** An agent's health as lines of text. */
export function agentHealthText (h: AgentHealth, now: number): string[] {
  const who = h.handle === undefined ? h.agentId : `@${safe(h.handle)} (${h.agentId})`
  const lines = [`${who}: ${h.status}${h.connected ? ', connected' : ', not connected'}`]
  const hb = h.lastHeartbeat
  if (hb === null) {
    lines.push('no heartbeat yet')
  } else {
    const figures = [
      hb.uptimeSeconds === undefined ? undefined : `up ${Math.round(hb.uptimeSeconds)} s`,
      hb.cpuUsage === undefined ? undefined : `cpu ${hb.cpuUsage}%`,
      hb.memoryUsage === undefined ? undefined : `memory ${bytes(hb.memoryUsage)}`,
      hb.version === undefined ? undefined : `version ${safe(hb.version)}`,
    ].filter(x => x !== undefined)
    lines.push(`last heartbeat ${iso(hb.at)} (${ago(hb.at, now)}): ${hb.status}${figures.length === 0 ? '' : ', ' + figures.join(', ')}`)
    for (const [k, v] of Object.entries(hb.customMetrics ?? {})) lines.push(`  ${safe(k)}: ${typeof v === 'string' ? safe(v) : String(v)}`)
  }
  if (h.history.length > 0) lines.push('history (newest first):')
  for (const c of h.history) lines.push(`  ${iso(c.at)}  ${c.from} → ${c.to}  (${safe(c.reason)})`)
  return lines
}

async function showDashboard (api: Api, out: Out, io: CliIo, q: { after?: string, limit?: number }, redraw: boolean): Promise<void> {
  const d = await api.call('healthDashboard', '/api/v1/health/dashboard' + query(q))
  if (out.json) { out.result({ ...d }, ''); return }
  const text = dashboardText(d).join('\n')
  io.stdout.write((redraw ? CLEAR : '') + text + '\n')
}

export function healthCommand (program: Command, io: CliIo = processIo()): void {
  withApi(program.command('health')
    .description('the fleet\'s health (wardens and masters): counts and agents; with an agent, its status, latest heartbeat and history')
    .argument('[agent]', 'an agent (AMID or @handle): its health instead of the fleet\'s')
    .option('--watch', 'refresh every --interval seconds until Ctrl-C (in place on a terminal)')
    .option('--interval <sec>', 'seconds between refreshes with --watch', DEFAULT_WATCH_S)
    .option('--count <n>', 'with --watch, stop after this many refreshes')
    .option('--limit <n>', 'agents listed (at most 200)', '100')
    .option('--after <amid>', 'list the agents after this AMID (the next page)')
    .option('--history <n>', 'with an agent, how many of its health changes to show', '20'))
    .action(async (agent: string | undefined, o: ApiOpts & { watch?: boolean, interval: string, count?: string, limit: string, after?: string, history: string }) => {
      const out = output(o.json === true, io)
      const api = apiOf(o, io)
      if (agent !== undefined) {
        if (o.watch === true) throw usage('--watch shows the fleet: leave out the agent')
        const historyLimit = parseInteger('--history', o.history, 0, 200)
        const h = await api.call('agentHealth', `/api/v1/agents/${encodeURIComponent(agent)}/health` + query({ historyLimit }))
        if (out.json) { out.result({ ...h }, ''); return }
        io.stdout.write(agentHealthText(h, Date.now()).join('\n') + '\n')
        return
      }
      const q = { limit: parseInteger('--limit', o.limit, 1, 200), ...(o.after === undefined ? {} : { after: o.after }) }
      if (o.watch !== true) { await showDashboard(api, out, io, q, false); return }
      const every = parsePositive('--interval', o.interval) * 1000
      const count = o.count === undefined ? undefined : parseInteger('--count', o.count, 1)
      const tty = (io.stdout as { isTTY?: boolean }).isTTY === true && !out.json
      const stop = stopper(io, undefined)
      try {
        for (let n = 1; ; n++) {
          await showDashboard(api, out, io, q, tty)
          if (!tty && !out.json) io.stdout.write('\n')
          if ((count !== undefined && n >= count) || stop.signal.aborted) return
          await new Promise<void>((resolve) => {
            const t = setTimeout(done, every)
            function done (): void { clearTimeout(t); stop.signal.removeEventListener('abort', done); resolve() }
            stop.signal.addEventListener('abort', done, { once: true })
          })
          if (stop.signal.aborted) return
        }
      } finally {
        stop.release()
      }
    })
}
